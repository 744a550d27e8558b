//! `cargo xtask fuzz [--seconds N] [TARGET…]`: runs the cargo-fuzz targets of
//! `fuzz/` one after another, `N` seconds each (default 60), on one core.
//!
//! cargo-fuzz needs nightly features; on a stable toolchain the runs set
//! `RUSTC_BOOTSTRAP=1`. cargo-fuzz itself is installed (`cargo install
//! cargo-fuzz --locked`) when missing. New crashes land in
//! `fuzz/artifacts/<target>/`; keep them: the normal test run replays them
//! (`tests/it/fuzz_corpus.rs`). See `docs/robustness.md`.

use std::path::Path;

use anyhow::{Context as _, bail};

use crate::ci::{cargo, has_cargo_subcommand, say, step};

/// Every target, in the order they run (`fuzz/fuzz_targets/<name>.rs`).
pub(crate) const TARGETS: &[&str] = &[
    "token_response",
    "error_body",
    "jwt_exp",
    "config",
    "response_shape",
    "store_decode",
    "agent_request",
    "custom_request",
];

/// Seconds per target when `--seconds` is not given.
const DEFAULT_SECONDS: u64 = 60;

/// What the command line asked for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) seconds: u64,
    pub(crate) targets: Vec<String>,
}

/// Reads `[--seconds N] [TARGET…]`.
pub(crate) fn plan(args: &[String]) -> anyhow::Result<Plan> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--seconds" {
            let n = args.next().context("--seconds needs a number")?;
            seconds = n.parse().with_context(|| format!("--seconds {n:?}: not a number"))?;
            if seconds == 0 {
                bail!("--seconds must be at least 1");
            }
        } else if let Some(n) = arg.strip_prefix("--seconds=") {
            seconds = n.parse().with_context(|| format!("--seconds {n:?}: not a number"))?;
        } else if TARGETS.contains(&arg.as_str()) {
            targets.push(arg.clone());
        } else {
            bail!("unknown fuzz target or option {arg:?}; targets: {}", TARGETS.join(", "));
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    Ok(Plan { seconds, targets })
}

/// Runs the plan `args` describe.
pub(crate) fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let plan = plan(args)?;
    if !has_cargo_subcommand("fuzz") {
        say("fuzz: cargo-fuzz is missing; installing it with `cargo install cargo-fuzz --locked` \
             (a few minutes, once)");
        step(root, "install cargo-fuzz", cargo(&["install", "cargo-fuzz", "--locked"]))?;
    }
    let fuzz = root.join("fuzz");
    let seconds = plan.seconds.to_string();
    for target in &plan.targets {
        // New inputs go to the ignored `target/corpus/`; `corpus/` holds the
        // committed seeds (`cargo fuzz cmin` them in by hand).
        let work = format!("target/corpus/{target}");
        std::fs::create_dir_all(fuzz.join(&work))
            .with_context(|| format!("creating fuzz/{work}"))?;
        let corpus = format!("corpus/{target}");
        let mut cmd = cargo(&[
            "fuzz",
            "run",
            // The crates forbid unsafe code: no sanitizer, twice the executions.
            "--sanitizer",
            "none",
            "--debug-assertions",
            target,
            &work,
            &corpus,
            "--",
            &format!("-max_total_time={seconds}"),
            "-print_final_stats=1",
        ]);
        // cargo-fuzz passes `-Z` flags: allowed on stable with this.
        cmd.env("RUSTC_BOOTSTRAP", "1");
        step(&fuzz, &format!("fuzz {target} for {seconds}s"), cmd).with_context(|| {
            format!("fuzz target {target} failed: the input is in fuzz/artifacts/{target}/")
        })?;
    }
    say(&format!("fuzz: {} target(s) ran {seconds}s each without a finding", plan.targets.len()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_command_line() {
        let all = plan(&[]).unwrap();
        assert_eq!(all.seconds, 60);
        assert_eq!(all.targets.len(), TARGETS.len());
        let one = plan(&args(&["--seconds", "30", "jwt_exp"])).unwrap();
        assert_eq!(one, Plan { seconds: 30, targets: vec!["jwt_exp".to_owned()] });
        assert!(plan(&args(&["--seconds"])).is_err());
        assert!(plan(&args(&["--seconds", "0"])).is_err());
        assert!(plan(&args(&["nope"])).is_err());
    }

    #[test]
    fn every_target_has_a_binary_and_a_corpus() {
        let fuzz = crate::project_root().join("fuzz");
        let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
        for target in TARGETS {
            assert!(fuzz.join(format!("fuzz_targets/{target}.rs")).is_file(), "{target}");
            assert!(manifest.contains(&format!("name = \"{target}\"")), "{target}");
            assert!(fuzz.join(format!("corpus/{target}")).read_dir().unwrap().next().is_some());
        }
    }

    /// This list is the one `cargo xtask fuzz` runs: every binary in
    /// `fuzz/fuzz_targets/` and every body in `fuzz/src/lib.rs`'s `TARGETS`
    /// (which the stable replay, `tests/it/fuzz_corpus.rs`, runs) is on it.
    #[test]
    fn no_target_is_left_out_of_the_list() {
        let fuzz = crate::project_root().join("fuzz");
        let mut binaries: Vec<String> = std::fs::read_dir(fuzz.join("fuzz_targets"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().trim_end_matches(".rs").to_owned())
            .collect();
        binaries.sort();
        let mut listed: Vec<String> = TARGETS.iter().map(|t| (*t).to_owned()).collect();
        listed.sort();
        assert_eq!(binaries, listed, "fuzz/fuzz_targets/ and xtask's TARGETS");
        let lib = std::fs::read_to_string(fuzz.join("src/lib.rs")).unwrap();
        let start = lib.find("pub const TARGETS").expect("TARGETS in fuzz/src/lib.rs");
        let end = start + lib[start..].find("];").unwrap();
        let mut bodies: Vec<String> = lib[start..end]
            .lines()
            .filter_map(|l| l.trim().strip_prefix("(\"")?.split('"').next().map(str::to_owned))
            .collect();
        bodies.sort();
        assert_eq!(bodies, listed, "fuzz/src/lib.rs's TARGETS and xtask's TARGETS");
    }
}
