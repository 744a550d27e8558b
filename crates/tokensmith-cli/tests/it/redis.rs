//! `[store] kind = "redis"`: separate invocations (other users, other
//! machines) share one upstream fetch through a real `redis-server`, a
//! fleet of processes fetches once per token lifetime, survives Redis
//! killed and shares again once it is back, and a lease whose holder was
//! killed frees itself by expiry.

use std::path::PathBuf;
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

/// What one `tokensmith token` invocation of the fleet saw.
struct Invocation {
    /// The phase when it started and when it ended.
    phases: (u8, u8),
    ok: bool,
}

/// The phases of [`a_fleet_survives_redis_killed_and_shares_again_once_it_is_restarted`].
const SHARING: u8 = 0;
const OUTAGE: u8 = 1;
const RESTARTED: u8 = 2;
const DONE: u8 = 3;

#[test]
#[allow(clippy::print_stdout, reason = "the acceptance asks for the counts printed")]
fn a_fleet_survives_redis_killed_and_shares_again_once_it_is_restarted() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU8, Ordering};

    let mut server = RedisServer::start();
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    deyel.set_token_lifetime(LIFETIME);
    env.write_config(&format!("{}\n{}", store_table(&server), provider(&deyel, "shared")));
    let config = env.config_path();
    let phase = AtomicU8::new(SHARING);
    let seen = Mutex::new(Vec::new());
    let clock = SystemClock;
    let (at_kill, at_restart, settled, windows) = std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                loop {
                    let before = phase.load(Ordering::SeqCst);
                    if before == DONE {
                        break;
                    }
                    let output = env
                        .command()
                        .arg("--config")
                        .arg(&config)
                        .args(["token", "shared"])
                        .output()
                        .unwrap();
                    let ok = output.status.success() && output.stdout.len() > 1;
                    let phases = (before, phase.load(Ordering::SeqCst));
                    seen.lock().unwrap().push(Invocation { phases, ok });
                }
            });
        }
        std::thread::sleep(LIFETIME);
        let at_kill = deyel.tokens_issued();
        server.kill();
        phase.store(OUTAGE, Ordering::SeqCst);
        std::thread::sleep(LIFETIME);
        let at_restart = deyel.tokens_issued();
        // The same port, empty; the invocations that began during the
        // outage end meanwhile.
        server.restart();
        phase.store(RESTARTED, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(500));
        let settled = deyel.tokens_issued();
        // Upstream fetches per token lifetime from here.
        let mut windows = Vec::new();
        for _ in 0..3 {
            let began = deyel.tokens_issued();
            let until = clock.monotonic() + LIFETIME;
            while clock.monotonic() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            windows.push(deyel.tokens_issued() - began);
        }
        phase.store(DONE, Ordering::SeqCst);
        (at_kill, at_restart, settled, windows)
    });
    let seen = seen.into_inner().unwrap();
    let failed = seen.iter().filter(|i| !i.ok).count();
    let in_outage = seen.iter().filter(|i| i.phases == (OUTAGE, OUTAGE)).count();
    let outage_fetches = at_restart - at_kill;
    println!(
        "fleet of 8 processes, token lifetime {LIFETIME:?}: {} invocations, {failed} failed; before the kill {at_kill} upstream fetches in one lifetime; Redis down for one lifetime: {in_outage} invocations entirely in it, {outage_fetches} upstream fetches; restarted: {} fetches while it settled (500 ms), then {windows:?} per lifetime",
        seen.len(),
        settled - at_restart,
    );
    assert_eq!(failed, 0, "zero caller errors");
    assert!(in_outage > 0, "invocations ran while Redis was down");
    assert!(
        outage_fetches >= u64::try_from(in_outage).unwrap(),
        "each invocation during the outage fetched for itself: {outage_fetches} < {in_outage}"
    );
    for (i, fetches) in windows.iter().enumerate() {
        assert!(*fetches <= 2, "lifetime {i} after the restart: {fetches} fetches ({windows:?})");
    }
    let after: u64 = windows.iter().sum();
    assert!(after <= 4, "sharing resumed: {after} fetches in 3 lifetimes ({windows:?})");
    assert!(env.cache_files().is_empty(), "no fallback to the file cache");
}

#[test]
#[allow(clippy::print_stdout, reason = "the wait, for the record")]
fn a_lease_holder_killed_mid_fetch_frees_the_lease_by_expiry_and_the_waiter_fetches() {
    use tokensmith_testkit::Fault;

    const LOCK_TIMEOUT: Duration = Duration::from_secs(3);
    let server = RedisServer::start();
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&format!(
        "{}\n{}",
        store_table(&server).replace("lock_timeout = \"5s\"", "lock_timeout = \"3s\""),
        provider(&deyel, "lowcode")
    ));
    // A's request is never answered: A holds the lease, stuck upstream.
    deyel.set_fault_next(1, Fault::NeverAnswer);
    let token = |env: &TestEnv| {
        let mut cmd = env.command();
        cmd.arg("--config").arg(env.config_path()).args(["token", "lowcode"]);
        cmd
    };
    let mut a = token(&env).stdout(std::process::Stdio::null()).spawn().unwrap();
    let clock = SystemClock;
    let patience = clock.monotonic() + Duration::from_secs(10);
    while deyel.requests() == 0 {
        assert!(clock.monotonic() < patience, "A never asked upstream");
        std::thread::sleep(Duration::from_millis(10));
    }
    let locks = || {
        let dump = server.dump().unwrap();
        dump.iter().filter(|(k, _)| k.windows(6).any(|w| w == b":lock:")).count()
    };
    assert_eq!(locks(), 1, "A holds the lease while it fetches");
    // B waits for A's token.
    let b_started = clock.monotonic();
    let b = token(&env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(deyel.requests(), 1, "B does not fetch while the lease is held");
    a.kill().unwrap(); // SIGKILL: A never releases the lease.
    a.wait().unwrap();
    let output = b.wait_with_output().unwrap();
    let waited = clock.monotonic().saturating_sub(b_started);
    assert!(output.status.success(), "{output:?}");
    let b_token = String::from_utf8(output.stdout).unwrap();
    assert!(!b_token.trim().is_empty());
    assert_eq!(deyel.requests(), 2, "upstream saw B's fetch");
    assert_eq!(deyel.tokens_issued(), 1, "A's request was never answered");
    // A generous bound that catches a hang: lock_timeout plus one fetch
    // (and two process starts) on a loaded machine.
    println!(
        "B waited {waited:?} for a lease whose holder was killed (lock_timeout {LOCK_TIMEOUT:?})"
    );
    assert!(waited < LOCK_TIMEOUT + Duration::from_secs(7), "B waited {waited:?}");
    assert_eq!(locks(), 0, "B released the lease it took after A's expired");
    // B's token is shared: another invocation takes it from Redis.
    assert_eq!(env.run(&["token", "lowcode"]).ok(), b_token);
    assert_eq!(deyel.requests(), 2);
}

/// A private CA and a certificate for `localhost` and 127.0.0.1 signed by
/// it, as PEM files in `dir`: (chain, key, CA).
fn tls_files(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca = tokensmith_testkit::tls::PrivateCa::new("tokensmith redis test CA");
    let cert = ca.issue(&["localhost", "127.0.0.1"]);
    let (chain, key_file, ca_file) =
        (dir.join("chain.pem"), dir.join("key.pem"), dir.join("ca.pem"));
    std::fs::write(&chain, cert.chain_pem()).unwrap();
    std::fs::write(&key_file, cert.key_pem()).unwrap();
    std::fs::write(&ca_file, ca.pem()).unwrap();
    (chain, key_file, ca_file)
}

#[test]
fn rediss_shares_over_rustls_when_the_ca_is_trusted_and_falls_back_when_not() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, key, ca) = tls_files(dir.path());
    let server = RedisServer::start_tls(&chain, &key);
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    let url = server.tls_url("localhost").unwrap();
    env.write_config(&format!(
        "[store]\nkind = \"redis\"\nurl = \"{url}\"\nencryption_key = \"{KEY}\"\nlock_timeout = \"5s\"\n\n{}",
        provider(&deyel, "lowcode")
    ));
    // Each run is another user; `SSL_CERT_FILE` is where rustls-native-certs
    // (the roots redis-rs' rustls uses) reads the trusted CAs from.
    let run = |user: &str, ca: Option<&std::path::Path>| {
        let home = dir.path().join(user);
        let mut cmd = env.command();
        cmd.env("HOME", &home).env("XDG_CACHE_HOME", home.join("cache")).env_remove("SSL_CERT_DIR");
        match ca {
            Some(ca) => cmd.env("SSL_CERT_FILE", ca),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        let output =
            cmd.arg("--config").arg(env.config_path()).args(["token", "lowcode"]).output().unwrap();
        crate::support::Run::from(output)
    };
    let first = run("a", Some(&ca));
    let token = first.ok().to_owned();
    assert_eq!(first.stderr, "", "{first:#?}");
    let second = run("b", Some(&ca));
    assert_eq!(second.ok(), token, "shared over TLS");
    assert_eq!(deyel.tokens_issued(), 1);
    let names: Vec<String> = server
        .dump()
        .unwrap()
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert!(names.iter().any(|n| n.starts_with("tokensmith:token:")), "{names:?}");
    // The CA not trusted: the certificate is refused, the run fetches for
    // itself and says why.
    let third = run("c", None);
    assert_ne!(third.ok(), token);
    assert_eq!(deyel.tokens_issued(), 2);
    assert!(third.stderr.starts_with("tokensmith: warning: "), "{third:#?}");
    assert!(third.stderr.contains("certificate"), "{third:#?}");
    assert!(!third.stderr.contains(KEY), "{third:#?}");
}
