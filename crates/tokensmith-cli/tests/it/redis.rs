//! `[store] kind = "redis"`: separate invocations (other users, other
//! machines) share one upstream fetch through a real `redis-server`, and a
//! fleet of processes fetches once per token lifetime.

use std::time::Duration;

use tokensmith_core::{Clock as _, SystemClock};
use tokensmith_testkit::Vendor;
use tokensmith_testkit::redis::RedisServer;

use crate::support::{TestEnv, provider};

/// A fixed test key (32 bytes, base64).
const KEY: &str = "c3RvcmUta2V5LWZvci10aGUtY2xpLXRlc3RzLTMyYnk=";

fn store_table(server: &RedisServer) -> String {
    format!(
        "[store]\nkind = \"redis\"\nurl = \"{}\"\nencryption_key = \"{KEY}\"\nlock_timeout = \"5s\"\n",
        server.url()
    )
}

#[test]
fn two_invocations_with_different_homes_share_one_fetch() {
    let server = RedisServer::start();
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&format!("{}\n{}", store_table(&server), provider(&deyel, "lowcode")));
    let first = env.run(&["token", "lowcode"]).ok().to_owned();
    // Another user: another HOME and cache directory, the same config.
    let other = tempfile::tempdir().unwrap();
    let output = env
        .command()
        .env("HOME", other.path())
        .env("XDG_CACHE_HOME", other.path().join("cache"))
        .arg("--config")
        .arg(env.config_path())
        .args(["token", "lowcode"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8(output.stdout).unwrap(), first);
    assert_eq!(deyel.tokens_issued(), 1, "one upstream fetch for both");
    assert!(env.cache_files().is_empty(), "Redis replaces the file cache");
    assert!(!other.path().join("cache").join("tokensmith").exists());
}

/// Runs 8 processes calling `tokensmith token NAME` in loops for `run`;
/// returns the upstream fetches and the token lifetimes that passed.
fn fleet(env: &TestEnv, name: &str, run: Duration) -> u64 {
    let config = env.config_path();
    let clock = SystemClock;
    let began = clock.monotonic();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                while clock.monotonic().saturating_sub(began) < run {
                    let output = env
                        .command()
                        .arg("--config")
                        .arg(&config)
                        .args(["token", name])
                        .output()
                        .unwrap();
                    assert!(output.status.success(), "no caller ever fails: {output:?}");
                }
            });
        }
    });
    let elapsed = clock.monotonic().saturating_sub(began);
    elapsed.as_millis().div_ceil(LIFETIME.as_millis()).try_into().unwrap()
}

const LIFETIME: Duration = Duration::from_secs(2);

#[test]
#[allow(clippy::print_stdout, reason = "the acceptance asks for both counts printed")]
fn a_fleet_of_eight_processes_fetches_once_per_lifetime_and_without_sharing_each_fetches() {
    let server = RedisServer::start();
    let env = TestEnv::new();
    let (shared, alone) = (env.emulator(Vendor::Deyel), env.emulator(Vendor::Deyel));
    shared.set_token_lifetime(LIFETIME);
    alone.set_token_lifetime(LIFETIME);
    env.write_config(&format!(
        "{}\n{}\n{}shared = false\n",
        store_table(&server),
        provider(&shared, "shared"),
        provider(&alone, "alone")
    ));
    let run = LIFETIME * 5;
    let (lifetimes, lifetimes_alone) = std::thread::scope(|scope| {
        let a = scope.spawn(|| fleet(&env, "shared", run));
        let b = scope.spawn(|| fleet(&env, "alone", run));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (fetches, fetches_alone) = (shared.tokens_issued(), alone.tokens_issued());
    println!(
        "fleet of 8 processes, {lifetimes} token lifetimes of {LIFETIME:?}: shared through Redis {fetches} upstream fetches; shared = false {fetches_alone} upstream fetches ({lifetimes_alone} lifetimes)"
    );
    assert!(lifetimes >= 5);
    assert!(fetches <= lifetimes + 1, "{fetches} fetches in {lifetimes} lifetimes");
    assert!(
        fetches_alone >= 8 * lifetimes_alone,
        "{fetches_alone} fetches in {lifetimes_alone} lifetimes"
    );
    assert!(env.cache_files().is_empty());
}
