//! The fuzz corpus and every crash found, replayed on stable: each file of
//! `fuzz/corpus/<target>/` and `fuzz/artifacts/<target>/` goes through the
//! same function the cargo-fuzz target runs (`fuzz/src/lib.rs`, included by
//! path), so a fixed crash stays fixed without a nightly toolchain.

use std::path::Path;

#[path = "../../fuzz/src/lib.rs"]
#[allow(unreachable_pub, reason = "public for the fuzz binaries, private here")]
mod targets;

/// The files of `fuzz/<dir>/<target>/` for every target that has them.
fn inputs(dir: &str) -> Vec<(String, std::path::PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz").join(dir);
    let mut found = Vec::new();
    let Ok(targets) = std::fs::read_dir(&root) else { return found };
    for target in targets {
        let target = target.expect("a readable fuzz directory").path();
        let name = target.file_name().unwrap().to_string_lossy().into_owned();
        for file in std::fs::read_dir(&target).expect("a readable target directory") {
            let file = file.expect("a readable entry").path();
            if file.is_file() {
                found.push((name.clone(), file));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_corpus_input_and_crash_replays() {
    let corpus = inputs("corpus");
    for (name, _) in targets::TARGETS {
        assert!(corpus.iter().any(|(target, _)| target == name), "fuzz/corpus/{name}/ has no seed");
    }
    let all: Vec<_> = corpus.into_iter().chain(inputs("artifacts")).collect();
    for (target, file) in &all {
        let data = std::fs::read(file).expect("a readable input");
        assert!(targets::run(target, &data), "{}: no fuzz target {target:?}", file.display());
    }
}
