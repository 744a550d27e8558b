//! The on-disk cache's trust rules seen from the command line: a linked
//! cache directory is not used, `cache clear` deletes only the cache's own
//! files, a stopped peer holding a lock delays an invocation but never
//! blocks it, and the file names are keyed per user.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokensmith_testkit::Vendor;

use crate::support::{Run, TestEnv, provider};

/// `tokensmith token lowcode` with the extra environment `vars`, under a
/// 20 s bound on the test itself that turns a hang into a failure (`what`
/// names the hang).
fn token_guarded(env: &TestEnv, vars: &[(&str, &str)], what: &str) -> Run {
    let mut cmd = env.command();
    cmd.envs(vars.iter().copied())
        .arg("--config")
        .arg(env.config_path())
        .args(["token", "lowcode"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut polls = 0;
    while child.try_wait().unwrap().is_none() {
        if polls == 400 {
            child.kill().unwrap();
            panic!("{what}");
        }
        polls += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    Run::from(child.wait_with_output().unwrap())
}

/// The files of `dir` whose name ends with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().ends_with(suffix))
        .collect()
}

#[cfg(unix)]
#[test]
fn a_cache_directory_that_is_a_symbolic_link_is_neither_used_nor_cleared() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&deyel, "lowcode"));
    // A directory of this user, private, reached through a link.
    let elsewhere = env.dir().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o700)).unwrap();
    }
    fs::create_dir_all(env.cache_dir().parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&elsewhere, env.cache_dir()).unwrap();
    let run = env.run(&["token", "lowcode"]);
    run.ok();
    assert!(run.stderr.contains("symbolic link"), "{run:#?}");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing written through the link");
    // `cache clear` refuses it too, and deletes nothing behind it.
    let planted = elsewhere.join(format!("{}.json", "a".repeat(64)));
    fs::write(&planted, "{}").unwrap();
    let line = env.run(&["cache", "clear"]).fails(2).to_owned();
    assert!(line.contains("symbolic link"), "{line}");
    assert!(planted.exists());
}

#[test]
fn cache_clear_deletes_only_the_cache_s_own_files() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&deyel, "lowcode"));
    env.run(&["token", "lowcode"]).ok();
    let dir = env.cache_dir();
    let foreign = ["notes.txt", "backup.json", "key.old", &format!("{}.json", "A".repeat(64))];
    for name in foreign {
        fs::write(dir.join(name), "mine").unwrap();
    }
    fs::create_dir(dir.join("sub")).unwrap();
    let out = env.run(&["cache", "clear"]).ok().to_owned();
    assert!(out.starts_with("removed 1 cached token from "), "{out}");
    let mut left: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    let mut expected: Vec<String> = foreign.iter().map(|s| (*s).to_owned()).collect();
    expected.push("sub".to_owned());
    expected.sort();
    assert_eq!(left, expected);
}

#[test]
fn a_stopped_peer_holding_the_lock_delays_an_invocation_but_never_blocks_it() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&deyel, "lowcode"));
    let first = env.run(&["token", "lowcode"]).ok().to_owned();
    // The peer: this test, holding the entry's lock and never letting go.
    let locks = files_ending(&env.cache_dir(), ".lock");
    assert_eq!(locks.len(), 1, "{locks:?}");
    let held = fs::OpenOptions::new().write(true).open(&locks[0]).unwrap();
    held.lock().unwrap();
    for entry in env.cache_files() {
        fs::remove_file(entry).unwrap();
    }
    // The guard is far above the 200 ms the binary may wait: before the fix
    // the wait had no end.
    let run = token_guarded(
        &env,
        &[("TOKENSMITH_CACHE_LOCK_TIMEOUT", "200ms")],
        "the invocation is still waiting for the lock",
    );
    let token = run.ok().to_owned();
    assert_ne!(token, "");
    assert_ne!(token, first, "a new token from the endpoint");
    assert!(run.stderr.contains("lock") && run.stderr.contains("without the cache"), "{run:#?}");
    assert_eq!(deyel.requests(), 2);
    assert!(env.cache_files().is_empty(), "not stored without the lock");
    drop(held);
    // A lock timeout that is not a duration is a usage error.
    let mut cmd = env.command();
    cmd.env("TOKENSMITH_CACHE_LOCK_TIMEOUT", "soon")
        .arg("--config")
        .arg(env.config_path())
        .args(["token", "lowcode"]);
    let line = Run::from(cmd.output().unwrap()).fails(2).to_owned();
    assert!(line.contains("TOKENSMITH_CACHE_LOCK_TIMEOUT"), "{line}");
}

#[test]
fn cache_file_names_are_keyed_per_user() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&deyel, "lowcode"));
    env.run(&["token", "lowcode"]).ok();
    // Another user (another cache home), the same provider and secret.
    let other = env.dir().join("other-cache");
    let mut cmd = env.command();
    cmd.env("XDG_CACHE_HOME", &other).arg("--config").arg(env.config_path());
    Run::from(cmd.args(["token", "lowcode"]).output().unwrap()).ok();
    let name = |dir: &Path| {
        let files = files_ending(dir, ".json");
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].file_name().unwrap().to_owned()
    };
    assert_ne!(
        name(&env.cache_dir()),
        name(&other.join("tokensmith")),
        "the name depends on a per-user key, not only on the config"
    );
    let key = env.cache_dir().join("key");
    assert_eq!(fs::metadata(&key).unwrap().len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    env.run(&["token", "lowcode"]).ok();
    assert_eq!(deyel.requests(), 2, "the names are stable: the third call is a hit");
}

/// An entry whose name is a link (even to a copy of a good entry) or a FIFO
/// is not read: the token comes from the endpoint, and a FIFO nobody writes
/// to does not hold the invocation.
#[cfg(unix)]
#[test]
fn an_entry_that_is_a_link_or_a_fifo_is_not_read() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&deyel, "lowcode"));
    let first = env.run(&["token", "lowcode"]).ok().to_owned();
    assert_eq!(env.run(&["token", "lowcode"]).ok(), first, "a hit");
    assert_eq!(deyel.requests(), 1);
    let entries = files_ending(&env.cache_dir(), ".json");
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    // A link to a copy of the good entry, in another private directory.
    let elsewhere = env.dir().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let copy = elsewhere.join("copy.json");
    fs::copy(entry, &copy).unwrap();
    fs::remove_file(entry).unwrap();
    std::os::unix::fs::symlink(&copy, entry).unwrap();
    let run = env.run(&["token", "lowcode"]);
    assert_ne!(run.ok(), first, "a new token from the endpoint, not the linked one");
    assert_eq!(deyel.requests(), 2);
    // A FIFO at the entry's name: open would wait for a writer forever.
    fs::remove_file(entry).unwrap();
    rustix::fs::mkfifoat(rustix::fs::CWD, entry.as_path(), rustix::fs::Mode::from_raw_mode(0o600))
        .unwrap();
    let run = token_guarded(&env, &[], "the invocation is held by the FIFO");
    assert_ne!(run.ok(), "");
    assert_eq!(deyel.requests(), 3);
}
