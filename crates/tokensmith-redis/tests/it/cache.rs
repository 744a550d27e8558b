//! The store under the cache: providers loaded from a config with
//! `[store] kind = "redis"` (the factory), sharing one upstream fetch, and
//! what Redis and the logs hold afterwards.

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret as _;
use tokensmith_core::{CacheConfig, CachedProvider, Registry, SystemClock, TokenProvider as _};
use tokensmith_redis::RedisStoreFactory;
use tokensmith_testkit::leak::Scanner;
use tokensmith_testkit::redis::RedisServer;
use tokensmith_testkit::{Emulator, Vendor};

use crate::support::{Upstream, capture, identity, new_key, store};

fn registry() -> Registry {
    Registry::new().with(tokensmith_deyel::Deyel).with_store_factory(RedisStoreFactory)
}

#[test]
fn processes_loaded_from_one_config_share_one_fetch_and_redis_and_logs_hold_no_secret() {
    let server = RedisServer::start();
    let key = new_key();
    let ((config, access, secret), logs) = capture(async {
        let emulator = Emulator::start(Vendor::Deyel).await.unwrap();
        let config = format!(
            "[store]\nkind = \"redis\"\nurl = \"{}\"\nencryption_key = \"{}\"\nprefix = \"fleet\"\nlock_timeout = \"5s\"\n\n{}",
            server.url(),
            key.expose_secret(),
            emulator.config_snippet("deyel")
        );
        // Three "processes": separate registries, caches and connections.
        let mut tokens = Vec::new();
        for _ in 0..3 {
            let providers = registry().load_str(&config).unwrap();
            assert_eq!(providers.cache("deyel").unwrap().store_kind(), Some("redis"));
            tokens.push(providers.get("deyel").unwrap().token().await.unwrap());
        }
        assert_eq!(emulator.tokens_issued(), 1, "one upstream fetch for all of them");
        let access = tokens[0].secret().expose_secret().to_owned();
        assert!(tokens.iter().all(|t| t.secret().expose_secret() == access));
        let secret = emulator.credentials().client_secret().unwrap().to_owned();
        (config, access, secret)
    });
    let dump = server.dump().unwrap();
    assert!(!dump.is_empty());
    // The secrets, by the secret-leak audit's scanner; and no plaintext
    // token document (the values are sealed).
    let scanner = Scanner::new();
    scanner.exact("access token", &access);
    scanner.secret("client secret", &secret);
    scanner.secret("encryption key", key.expose_secret());
    for (k, v) in &dump {
        let name = String::from_utf8_lossy(k);
        assert!(name.starts_with("fleet:token:") || name.starts_with("fleet:lock:"), "{name}");
        scanner.check_bytes("a Redis key", k);
        scanner.check_bytes(&format!("the Redis value of {name}"), v);
        for marker in ["client_secret", "access_token", "Bearer"] {
            let hit = |hay: &[u8]| hay.windows(marker.len()).any(|w| w == marker.as_bytes());
            assert!(!hit(k) && !hit(v), "{marker:?} found in Redis under {name}");
        }
    }
    assert!(logs.contains("tokensmith::store"), "the store tier logged: {logs}");
    assert!(!logs.contains(&server.url()), "the URL in the logs");
    scanner.check("the TRACE log", &logs);
    scanner.assert_clean(1 + 2 * dump.len());
    let _ = config;
}

#[tokio::test]
async fn eight_cold_instances_racing_fetch_once() {
    let server = RedisServer::start();
    let key = new_key();
    let upstream = Arc::new(Upstream::default());
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let cached = CachedProvider::new(
            "p",
            upstream.clone(),
            CacheConfig::default(),
            Arc::new(SystemClock),
        )
        .with_store(Arc::new(store(&server, &key)), identity("p"), Duration::from_secs(5));
        set.spawn(async move {
            let token = cached.token().await.unwrap();
            (token.secret().expose_secret().to_owned(), cached.stats().fetches)
        });
    }
    let mut seen = Vec::new();
    while let Some(result) = set.join_next().await {
        seen.push(result.unwrap());
    }
    assert_eq!(upstream.calls(), 1, "one fetch under the lease, seven readers: {seen:?}");
    assert!(seen.iter().all(|(t, _)| t == &seen[0].0));
    assert_eq!(seen.iter().map(|(_, f)| f).sum::<u64>(), 1);
}

#[tokio::test]
async fn a_wrong_key_or_tampered_value_is_refetched_without_a_caller_error() {
    let server = RedisServer::start();
    let upstream = Arc::new(Upstream::default());
    let cached = |key| {
        CachedProvider::new("p", upstream.clone(), CacheConfig::default(), Arc::new(SystemClock))
            .with_store(Arc::new(store(&server, key)), identity("p"), Duration::from_secs(5))
    };
    let key = new_key();
    cached(&key).token().await.unwrap();
    assert_eq!(upstream.calls(), 1);
    // Same key: shared.
    cached(&key).token().await.unwrap();
    assert_eq!(upstream.calls(), 1);
    // Tampered: every value's last byte (the tag) flipped.
    for (name, value) in server.dump().unwrap() {
        let name = String::from_utf8(name).unwrap();
        if name.starts_with("t:token:") {
            let last = value.len() - 1;
            let flipped = [value[last] ^ 0x20];
            let text = String::from_utf8_lossy(&flipped).into_owned();
            server.command(&["SETRANGE", &name, &last.to_string(), &text]).unwrap();
        }
    }
    let fresh = cached(&key);
    let token = fresh.token().await.unwrap();
    assert_eq!(upstream.calls(), 2, "refetched");
    assert_eq!(token.secret().expose_secret(), "upstream-token-2-PLAINTEXT");
    // A wrong key: other names, its own entry; never an error.
    cached(&new_key()).token().await.unwrap();
    assert_eq!(upstream.calls(), 3);
}
