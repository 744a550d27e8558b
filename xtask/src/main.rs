//! `cargo xtask`: the project's own tasks, in Rust so they run the same everywhere.
//!
//! - `cargo xtask ci`: everything CI checks, in order (see [`ci`]).
//! - `cargo xtask fuzz [--seconds N] [TARGET…]`: the cargo-fuzz targets, N seconds each (see
//!   [`fuzz`]).
//! - `cargo xtask deny`: only `cargo deny check` (with the offline advisory copy when present).
//! - `cargo xtask public-api [--check]`: regenerate (or check) the public-API listings in
//!   `docs/public-api/` (see [`public_api`]).
//!
//! The house rules that are plain assertions live in `tidy.rs` as a `#[test]`.

mod ci;
mod fuzz;
mod public_api;
#[cfg(test)]
mod tidy;

use std::path::{Path, PathBuf};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    match args.first().map(String::as_str) {
        Some("ci") => ci::run(&root, &args[1..]),
        Some("deny") => ci::deny(&root),
        Some("fuzz") => fuzz::run(&root, &args[1..]),
        Some("public-api") => public_api::run(&root, &args[1..]),
        Some("help" | "--help" | "-h") | None => {
            usage();
            Ok(())
        }
        Some(other) => {
            usage();
            anyhow::bail!("unknown task {other:?}")
        }
    }
}

#[allow(clippy::print_stderr, reason = "xtask talks to the developer on stderr")]
fn usage() {
    eprintln!(
        "usage: cargo xtask <task>\n\n\
         tasks:\n  \
         ci     fmt check, clippy -D warnings, all tests and doctests, rustdoc -D warnings, cargo deny\n         \
         (installs cargo-deny and the interop server's npm packages when missing)\n  \
         deny   cargo deny check only\n  \
         fuzz [--seconds N] [TARGET...]\n         \
         run the fuzz targets N seconds each (default 60; installs cargo-fuzz when missing)\n  \
         public-api [--check]\n         \
         write docs/public-api/<crate>.txt from rustdoc JSON (--check: fail when stale)"
    );
}

/// The workspace root (the parent of this crate's directory).
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}
