//! `cargo xtask ci`: the one test command of the README, and what `.ci/run` calls.
//!
//! Steps, in order, each failing fast with a clear message:
//! 1. set-up: cargo-deny (installed with `cargo install --locked` when missing),
//!    `redis-server` for the Redis store's tests (`apt-get install -y redis-server` when
//!    missing and run as root, else a clear instruction), the interop server's npm packages
//!    (`npm ci --prefix tests/interop`);
//! 2. `cargo fmt --all -- --check`;
//! 3. `cargo clippy --workspace --all-targets --features tokensmith-core/metrics -- -D warnings`
//!    (the feature on, so its code is linted; off is linted by the test build's warnings);
//! 4. `cargo test --workspace --exclude tokensmith-tests` (unit, integration and doc tests);
//! 5. `cargo test -p tokensmith-tests` in its own invocation, so the facade is built with
//!    only the features that package asks for (the single-adapter test depends on it);
//!    then core's metrics test with the `metrics` feature (`--test it -- metrics::`);
//! 6. every example (`crates/*/examples/*.rs`) run with `cargo run -p CRATE --example NAME`:
//!    they run offline against the testkit, and fail when what they show stops working;
//! 7. `cargo xtask public-api --check`: the checked-in public-API listings are current;
//! 8. `cargo doc --workspace --no-deps` with rustdoc warnings denied;
//! 9. `cargo deny check` (offline, against `../shared/advisory-db` when that copy exists).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

/// The cargo-deny version line we install and test with.
const CARGO_DENY: &str = "cargo-deny@0.20.2";

pub(crate) fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    if let Some(a) = args.first() {
        bail!("`cargo xtask ci` takes no arguments (got {a:?})");
    }
    setup(root)?;
    step(root, "fmt", cargo(&["fmt", "--all", "--", "--check"]))?;
    step(
        root,
        "clippy",
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            "tokensmith-core/metrics",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    let mut tally = Tally::default();
    test_step(
        root,
        "test",
        cargo(&["test", "--workspace", "--exclude", "tokensmith-tests", "--locked"]),
        &mut tally,
    )?;
    test_step(
        root,
        "test (cross-crate)",
        cargo(&["test", "-p", "tokensmith-tests", "--locked"]),
        &mut tally,
    )?;
    test_step(
        root,
        "test (core metrics)",
        cargo(&[
            "test",
            "-p",
            "tokensmith-core",
            "--features",
            "metrics",
            "--locked",
            "--test",
            "it",
            "--",
            "metrics::",
        ]),
        &mut tally,
    )?;
    if tally.passed == 0 {
        bail!("the test steps ran no test");
    }
    for (package, example) in examples(root)? {
        let name = format!("example {package}/{example}");
        step(root, &name, cargo(&["run", "-p", &package, "--example", &example, "--locked"]))?;
    }
    say("==> public-api: cargo xtask public-api --check");
    crate::public_api::run(root, &["--check".to_owned()])?;
    say("<== public-api: ok");
    let mut doc = cargo(&["doc", "--workspace", "--no-deps", "--locked"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    step(root, "doc", doc)?;
    deny(root)?;
    say("ci: all steps passed");
    // The plain closing line CI runners read: every test of both test steps.
    say(&format!("{} passed, {} failed, {} skipped", tally.passed, tally.failed, tally.ignored));
    Ok(())
}

/// Every `crates/CRATE/examples/NAME.rs`, as (package, example) pairs, sorted
/// (a crate's directory is named after its package).
fn examples(root: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root.join("crates")).context("reading crates/")? {
        let dir = entry?.path();
        let Ok(files) = std::fs::read_dir(dir.join("examples")) else { continue };
        let package = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
        for file in files {
            let path = file?.path();
            if path.extension().is_some_and(|e| e == "rs")
                && let Some(stem) = path.file_stem()
            {
                found.push((package.clone(), stem.to_string_lossy().into_owned()));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Test counts summed over every `test result:` line cargo test printed.
#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Tally {
    /// Adds a libtest summary line (`test result: ok. 12 passed; 0 failed; 1 ignored; …`).
    fn add(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else { return };
        for part in rest.split(['.', ';']) {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else { continue };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// Like [`step`], but echoes the test harness output while tallying its results.
#[allow(clippy::print_stdout, reason = "xtask passes cargo test's output through")]
fn test_step(root: &Path, name: &str, mut cmd: Command, tally: &mut Tally) -> anyhow::Result<()> {
    use std::io::BufRead as _;
    say(&format!("==> {name}: {}", render(&cmd)));
    let mut child = cmd
        .current_dir(root)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let stdout = child.stdout.take().context("capturing cargo test output")?;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.context("reading cargo test output")?;
        tally.add(&line);
        println!("{line}");
    }
    let status = child.wait().with_context(|| format!("waiting for {name}"))?;
    if !status.success() {
        bail!("step `{name}` failed ({status}): {}", render(&cmd));
    }
    say(&format!("<== {name}: ok"));
    Ok(())
}

/// Installs what the tests need when it is missing, or says how.
fn setup(root: &Path) -> anyhow::Result<()> {
    if !has_cargo_subcommand("deny") {
        say(&format!(
            "setup: cargo-deny missing, installing {CARGO_DENY} (cargo install --locked)"
        ));
        step(root, "install cargo-deny", cargo(&["install", "--locked", CARGO_DENY]))?;
    }
    setup_redis(root)?;
    let interop = root.join("tests/interop");
    if interop.join("package.json").exists() {
        if Command::new("npm").arg("--version").output().is_err() {
            bail!(
                "the interop tests need Node.js 20+ and npm (oidc-provider runs on them): \
                 install them (Debian: `apt-get install nodejs npm`) and run `cargo xtask ci` again"
            );
        }
        let mut npm = Command::new("npm");
        npm.args(["ci", "--no-audit", "--no-fund", "--prefix"]).arg(&interop);
        step(root, "npm ci (tests/interop)", npm)?;
    }
    Ok(())
}

/// The Redis store's tests start their own `redis-server`: installs the
/// Debian package when it is missing and this runs as root, else says how.
fn setup_redis(root: &Path) -> anyhow::Result<()> {
    let installed = || Command::new("redis-server").arg("--version").output().is_ok();
    if installed() {
        return Ok(());
    }
    let hint = "the Redis store's tests need redis-server: run `apt-get update && apt-get install -y redis-server` \
                as root (Debian/Ubuntu), or put redis-server on PATH, and run `cargo xtask ci` again";
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    if !root_user || Command::new("apt-get").arg("--version").output().is_err() {
        bail!("{hint}");
    }
    say(
        "setup: redis-server missing, installing it (apt-get update; apt-get install -y redis-server)",
    );
    let mut update = Command::new("apt-get");
    update.arg("update");
    let mut install = Command::new("apt-get");
    install.args(["install", "-y", "redis-server"]).env("DEBIAN_FRONTEND", "noninteractive");
    if step(root, "apt-get update", update)
        .and_then(|()| step(root, "apt-get install redis-server", install))
        .is_err()
        || !installed()
    {
        bail!("installing redis-server failed; {hint}");
    }
    Ok(())
}

/// `cargo deny check`, offline against the shared advisory snapshot when present.
pub(crate) fn deny(root: &Path) -> anyhow::Result<()> {
    let snapshot = root.join("../shared/advisory-db");
    let mut cmd = cargo(&["deny"]);
    if snapshot.join("crates").is_dir() {
        // cargo-deny looks for `<db-path>/advisory-db-<hash of the default URL>` (a git checkout).
        let db_root = root.join("target/advisory-dbs");
        let db = db_root.join("advisory-db-3157b0e258782691");
        if !db.join(".git").is_dir() {
            say("setup: preparing the offline advisory database from ../shared/advisory-db");
            std::fs::create_dir_all(&db).context("creating target/advisory-dbs")?;
            copy_dir(&snapshot, &db)?;
            let git = |args: &[&str]| -> anyhow::Result<()> {
                let status = Command::new("git")
                    .args(["-c", "user.name=ci", "-c", "user.email=ci@localhost"])
                    .args(args)
                    .current_dir(&db)
                    .status()
                    .context("running git")?;
                if !status.success() {
                    bail!("git {args:?} failed in {}", db.display());
                }
                Ok(())
            };
            git(&["init", "-q"])?;
            git(&["add", "-A"])?;
            git(&["commit", "-qm", "advisory-db snapshot"])?;
        }
        // --offline also stops cargo from downloading crates: fetch them first.
        step(root, "fetch", cargo(&["fetch", "--locked"]))?;
        // deny.toml's `db-path` points at target/advisory-dbs.
        cmd.args(["--offline", "check"]);
    } else {
        cmd.args(["check"]);
    }
    step(root, "deny", cmd)
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

pub(crate) fn has_cargo_subcommand(name: &str) -> bool {
    Command::new("cargo").args([name, "--version"]).output().is_ok_and(|o| o.status.success())
}

pub(crate) fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    cmd.args(args);
    cmd
}

#[allow(clippy::disallowed_methods, reason = "xtask reports how long each CI step took")]
pub(crate) fn step(root: &Path, name: &str, mut cmd: Command) -> anyhow::Result<()> {
    say(&format!("==> {name}: {}", render(&cmd)));
    let start = Instant::now();
    let status = cmd.current_dir(root).status().with_context(|| format!("starting {name}"))?;
    let took = start.elapsed().as_secs();
    if !status.success() {
        bail!("step `{name}` failed ({status}) after {took}s: {}", render(&cmd));
    }
    say(&format!("<== {name}: ok in {took}s"));
    Ok(())
}

fn render(cmd: &Command) -> String {
    let mut out = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        out.push(' ');
        out.push_str(&a.to_string_lossy());
    }
    out
}

#[allow(clippy::print_stderr, reason = "xtask talks to the developer on stderr")]
pub(crate) fn say(msg: &str) {
    eprintln!("{msg}");
}

#[cfg(test)]
mod tests {
    use super::Tally;

    #[test]
    fn tally_reads_libtest_summaries() {
        let mut t = Tally::default();
        t.add("test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        t.add("test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out");
        t.add("running 3 tests");
        assert_eq!((t.passed, t.failed, t.ignored), (15, 2, 1));
    }
}
