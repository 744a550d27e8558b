//! House rules as a test (`cargo test -p xtask`), in the manner of rust-analyzer's tidy.

use std::path::{Path, PathBuf};

use crate::project_root;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "target" || name == "node_modules" || name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn all_rust_files() -> Vec<PathBuf> {
    let root = project_root();
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(!files.is_empty(), "tidy found no Rust files under {}", root.display());
    files
}

fn crate_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(project_root().join("crates"))
        .expect("crates/ exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let offenders: Vec<String> = all_rust_files()
        .into_iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "files without a leading `//!` doc comment:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn no_forbidden_markers() {
    // Built by concatenation so this file does not trip itself.
    let needles = [
        ["to", "do!("].concat(),
        ["unimple", "mented!("].concat(),
        ["db", "g!("].concat(),
        ["#[ig", "nore"].concat(),
        ["#[should", "_panic"].concat(),
    ];
    let mut offenders = Vec::new();
    for path in all_rust_files() {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            for needle in &needles {
                if line.contains(needle.as_str()) {
                    offenders.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "forbidden markers:\n{}", offenders.join("\n"));
}

#[test]
fn every_crate_has_a_readme_and_forbids_unsafe() {
    let mut problems = Vec::new();
    for dir in crate_dirs() {
        if !dir.join("README.md").exists() {
            problems.push(format!("{}: no README.md", dir.display()));
        }
        let root_file =
            ["src/lib.rs", "src/main.rs"].iter().map(|f| dir.join(f)).find(|p| p.exists());
        match root_file {
            Some(f) => {
                let text = std::fs::read_to_string(&f).unwrap_or_default();
                if !text.contains("#![forbid(unsafe_code)]") {
                    problems.push(format!("{}: no #![forbid(unsafe_code)]", f.display()));
                }
            }
            None => problems.push(format!("{}: no src/lib.rs or src/main.rs", dir.display())),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn architecture_doc_maps_every_crate() {
    let arch = std::fs::read_to_string(project_root().join("docs/ARCHITECTURE.md"))
        .expect("docs/ARCHITECTURE.md exists");
    let missing: Vec<String> = crate_dirs()
        .iter()
        .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|name| !arch.contains(&format!("`{name}`")))
        .collect();
    assert!(missing.is_empty(), "docs/ARCHITECTURE.md does not describe: {}", missing.join(", "));
}

#[test]
fn changelog_has_an_unreleased_section() {
    let text =
        std::fs::read_to_string(project_root().join("CHANGELOG.md")).expect("CHANGELOG.md exists");
    assert!(text.contains("# Unreleased"), "CHANGELOG.md needs a `# Unreleased` section");
}

#[test]
fn readme_names_the_two_commands_and_ci_runs_the_test_one() {
    let root = project_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md exists");
    assert!(
        readme.contains("tokensmith demo") || readme.contains("-- demo"),
        "README must show how to run the demo"
    );
    assert!(
        readme.contains("cargo xtask ci"),
        "README must give the test command `cargo xtask ci`"
    );
    let ci = std::fs::read_to_string(root.join(".ci/run")).expect(".ci/run exists");
    assert!(ci.contains("cargo xtask ci"), ".ci/run must call the README's test command");
}

/// The lines of `text` before its `#[cfg(test)]` module that are code, not
/// comments.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, line)| line.trim() != "#[cfg(test)]")
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
}

/// docs/ARCHITECTURE.md's invariants that a text search can check: core
/// names no kind outside `KNOWN_KINDS`; an adapter parses no JSON text
/// (discovery documents arrive parsed from core's `fetch_json`) and depends
/// on no workspace crate but core; the testkit depends on no adapter.
#[test]
fn architecture_invariants_hold() {
    let root = project_root();
    let kinds = ["\"soti-connect\"", "\"configapi\"", "\"oauth2\"", "\"deyel\""];
    let mut problems = Vec::new();
    let mut core_files = Vec::new();
    rust_files(&root.join("crates/tokensmith-core/src"), &mut core_files);
    for path in core_files {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (i, line) in code_lines(&text) {
            // KNOWN_KINDS' rows: `("soti-connect", "tokensmith-soti", "soti"),`
            let known_kinds_row =
                line.trim_start().starts_with("(\"") && line.contains("tokensmith-");
            if kinds.iter().any(|k| line.contains(k)) && !known_kinds_row {
                problems.push(format!(
                    "{}:{}: core names a kind: {}",
                    path.display(),
                    i + 1,
                    line.trim()
                ));
            }
        }
    }
    for adapter in ["soti", "configapi", "oauth2", "deyel"] {
        let dir = root.join(format!("crates/tokensmith-{adapter}"));
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for (i, line) in code_lines(&text) {
                if line.contains("serde_json::from_") {
                    problems.push(format!(
                        "{}:{}: an adapter parses JSON: {}",
                        path.display(),
                        i + 1,
                        line.trim()
                    ));
                }
            }
        }
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
        let deps = manifest.split("[dependencies]").nth(1).unwrap_or_default();
        let deps = deps.split("\n[").next().unwrap_or_default();
        for line in deps
            .lines()
            .filter(|l| l.starts_with("tokensmith") && !l.starts_with("tokensmith-core"))
        {
            problems.push(format!("tokensmith-{adapter} depends on {line}"));
        }
    }
    let manifest = std::fs::read_to_string(root.join("crates/tokensmith-testkit/Cargo.toml"))
        .unwrap_or_default();
    let deps = manifest.split("[dependencies]").nth(1).unwrap_or_default();
    let deps = deps.split("\n[").next().unwrap_or_default();
    for line in
        deps.lines().filter(|l| l.starts_with("tokensmith") && !l.starts_with("tokensmith-core"))
    {
        problems.push(format!("the testkit depends on {line}"));
    }
    assert!(problems.is_empty(), "docs/ARCHITECTURE.md's invariants:\n{}", problems.join("\n"));
}
