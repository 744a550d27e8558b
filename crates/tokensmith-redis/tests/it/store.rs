//! The store's own calls: round trip, key names, lease, integrity, removal,
//! unencrypted mode, config validation.

use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use tokensmith_core::{StoreConfig, StoreErrorKind, StoreFactory as _, TokenError, TokenStore};
use tokensmith_redis::{RedisStoreConfig, RedisStoreFactory, RedisTokenStore};
use tokensmith_testkit::redis::RedisServer;

use crate::support::{new_key, provider_key, sleep, store, token};

const HOUR: Duration = Duration::from_hours(1);

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[tokio::test]
async fn a_token_round_trips_under_prefix_token_hmac_with_its_ttl() {
    let server = RedisServer::start();
    let key = new_key();
    let a = store(&server, &key);
    let pk = provider_key(&a, "p").await;
    assert!(is_hex64(pk.as_str()));
    assert!(a.load(&pk).await.unwrap().is_none(), "empty");
    let sent = token("tok-ROUND-TRIP", HOUR);
    a.store(&pk, &sent, Duration::from_mins(10)).await.unwrap();

    // Another instance (another process) with the same config reads it.
    let b = store(&server, &key);
    assert_eq!(provider_key(&b, "p").await, pk, "the naming key is derived, fleet-wide");
    let back = b.load(&pk).await.unwrap().expect("stored");
    assert_eq!(back.secret().expose_secret(), "tok-ROUND-TRIP");
    let ms =
        |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    assert_eq!(ms(back.expires_at().unwrap()), ms(sent.expires_at().unwrap()));

    let dump = server.dump().unwrap();
    let names: Vec<String> =
        dump.iter().map(|(k, _)| String::from_utf8(k.clone()).unwrap()).collect();
    assert_eq!(names, [format!("t:token:{pk}")]);
    let pttl: i64 = server.command(&["PTTL", &names[0]]).unwrap()[1..].parse().unwrap();
    assert!((1..=600_000).contains(&pttl), "PX = the ttl given: {pttl}");

    // Replaced atomically by a newer token.
    b.store(&pk, &token("tok-NEWER", HOUR), Duration::from_mins(10)).await.unwrap();
    assert_eq!(a.load(&pk).await.unwrap().unwrap().secret().expose_secret(), "tok-NEWER");
}

#[tokio::test]
async fn two_stores_race_for_a_lease_one_wins_and_only_its_owner_releases_it() {
    let server = RedisServer::start();
    let key = new_key();
    let (a, b) = (store(&server, &key), store(&server, &key));
    let pk = provider_key(&a, "p").await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..16 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let pk = pk.clone();
        set.spawn(async move { s.try_lock(&pk, Duration::from_secs(30)).await.unwrap() });
    }
    let mut held = Vec::new();
    while let Some(lease) = set.join_next().await {
        held.extend(lease.unwrap());
    }
    assert_eq!(held.len(), 1, "exactly one winner");
    let first = held.pop().unwrap();
    let lock = a.lock_key(&pk);
    assert_eq!(server.command(&["EXISTS", &lock]).unwrap(), ":1");

    // Its lease expires (simulated by deleting it) and `b` takes the next.
    assert_eq!(server.command(&["DEL", &lock]).unwrap(), ":1");
    let second = b.try_lock(&pk, Duration::from_secs(30)).await.unwrap().expect("free again");
    // The first holder's late release is not the owner's: nothing happens.
    first.release().await.unwrap();
    assert_eq!(server.command(&["EXISTS", &lock]).unwrap(), ":1", "a non-owner never releases");
    assert!(a.try_lock(&pk, Duration::from_secs(30)).await.unwrap().is_none());
    second.release().await.unwrap();
    assert_eq!(server.command(&["EXISTS", &lock]).unwrap(), ":0", "the owner releases");
    assert!(a.try_lock(&pk, Duration::from_secs(30)).await.unwrap().is_some());
}

#[tokio::test]
async fn a_lease_whose_holder_died_frees_itself_by_expiry() {
    let server = RedisServer::start();
    let key = new_key();
    let (a, b) = (store(&server, &key), store(&server, &key));
    let pk = provider_key(&a, "p").await;
    // The holder dies: its lease is never released.
    let lease = a.try_lock(&pk, Duration::from_millis(300)).await.unwrap().expect("free");
    drop(lease);
    assert!(b.try_lock(&pk, Duration::from_secs(30)).await.unwrap().is_none(), "still held");
    let mut tries = 0;
    let taken = loop {
        tries += 1;
        if let Some(lease) = b.try_lock(&pk, Duration::from_secs(30)).await.unwrap() {
            break lease;
        }
        assert!(tries < 200, "the dead holder's lease never expired");
        sleep(Duration::from_millis(25)).await;
    };
    assert!(tries > 1, "not before its expiry");
    taken.release().await.unwrap();
}

#[tokio::test]
async fn tampered_moved_and_wrong_key_values_are_corrupt_misses() {
    let server = RedisServer::start();
    let key = new_key();
    let a = store(&server, &key);
    let (p, q) = (provider_key(&a, "p").await, provider_key(&a, "q").await);
    a.store(&p, &token("tok-INTEGRITY", HOUR), Duration::from_mins(10)).await.unwrap();

    // A store with another encryption_key reading that same Redis key.
    let other = store(&server, &new_key());
    let err = other.load(&p).await.unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::Corrupt, "{err}");
    assert!(!err.to_string().contains("INTEGRITY"));

    // Moved to another provider's key: bound to its key, does not open.
    let (from, to) = (a.token_key(&p), a.token_key(&q));
    assert_eq!(server.command(&["COPY", &from, &to]).unwrap(), ":1");
    assert_eq!(a.load(&q).await.unwrap_err().kind(), StoreErrorKind::Corrupt);

    // One byte changed (the ciphertext's first).
    assert!(server.command(&["SETRANGE", &from, "13", "X"]).unwrap().starts_with(':'));
    assert_eq!(a.load(&p).await.unwrap_err().kind(), StoreErrorKind::Corrupt);
    // Garbage.
    assert_eq!(server.command(&["SET", &from, "{\"v\":1}"]).unwrap(), "+OK");
    assert_eq!(a.load(&p).await.unwrap_err().kind(), StoreErrorKind::Corrupt);
    // A store call overwrites it.
    a.store(&p, &token("tok-FRESH", HOUR), Duration::from_mins(10)).await.unwrap();
    assert_eq!(a.load(&p).await.unwrap().unwrap().secret().expose_secret(), "tok-FRESH");
}

#[tokio::test]
async fn remove_if_same_deletes_only_the_token_it_names() {
    let server = RedisServer::start();
    let a = store(&server, &new_key());
    let pk = provider_key(&a, "p").await;
    let (old, new) = (token("tok-OLD", HOUR), token("tok-NEW", HOUR));
    a.store(&pk, &new, Duration::from_mins(10)).await.unwrap();
    assert!(!a.remove_if_same(&pk, &old).await.unwrap(), "a newer token stays");
    assert!(a.load(&pk).await.unwrap().is_some());
    assert!(a.remove_if_same(&pk, &new).await.unwrap());
    assert!(a.load(&pk).await.unwrap().is_none());
    assert!(!a.remove_if_same(&pk, &new).await.unwrap(), "nothing left");
    a.store(&pk, &old, Duration::from_mins(10)).await.unwrap();
    assert!(a.remove(&pk).await.unwrap());
    assert!(!a.remove(&pk).await.unwrap());
}

fn table(text: &str) -> StoreConfig {
    toml::from_str(text).unwrap()
}

fn field(err: &TokenError) -> Option<String> {
    match err {
        TokenError::Config { field, .. } => field.clone(),
        _ => None,
    }
}

#[tokio::test]
async fn unencrypted_needs_encrypt_false_and_names_keys_by_a_random_key_kept_in_redis() {
    let server = RedisServer::start();
    let url = server.url();
    let err =
        RedisStoreConfig::from_store_config(&table(&format!("kind = \"redis\"\nurl = \"{url}\"")))
            .unwrap_err();
    assert_eq!(field(&err).as_deref(), Some("store.encryption_key"), "{err}");
    let config = RedisStoreConfig::from_store_config(&table(&format!(
        "kind = \"redis\"\nurl = \"{url}\"\nencrypt = false\nprefix = \"plain\""
    )))
    .unwrap();
    assert!(!config.is_encrypted());
    let (a, b) =
        (RedisTokenStore::new(config.clone()).unwrap(), RedisTokenStore::new(config).unwrap());
    let pk = provider_key(&a, "p").await;
    assert_eq!(provider_key(&b, "p").await, pk, "one naming key for every process");
    let naming = server.command(&["GET", "plain:naming-key"]).unwrap();
    assert_eq!(naming, "$64", "32 random bytes, hex");
    a.store(&pk, &token("tok-PLAIN", HOUR), Duration::from_mins(10)).await.unwrap();
    assert_eq!(b.load(&pk).await.unwrap().unwrap().secret().expose_secret(), "tok-PLAIN");
    // An encrypting store refuses the plaintext value.
    let dump = server.dump().unwrap();
    assert!(dump.iter().any(|(_, v)| v.starts_with(b"{\"v\":1")));
}

#[test]
fn config_errors_name_the_field_and_quote_no_secret() {
    let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let ok = |extra: &str| {
        format!(
            "kind = \"redis\"\nurl = \"redis://:PASSWORD@127.0.0.1:6379/0\"\nencryption_key = \"{key}\"\n{extra}"
        )
    };
    let config = RedisStoreConfig::from_store_config(&table(&ok(""))).unwrap();
    assert_eq!(config.prefix(), "tokensmith");
    assert!(!format!("{config:?}").contains("PASSWORD"));
    assert!(format!("{config:?}").contains("call_timeout: 1s"), "{config:?}");
    let config =
        RedisStoreConfig::from_store_config(&table(&ok("call_timeout = \"250ms\""))).unwrap();
    assert!(format!("{config:?}").contains("call_timeout: 250ms"), "{config:?}");
    for (text, expected) in [
        (ok("").replace("redis://", "http://"), "store.url"),
        (ok("").replace("redis://", "rediss://").replace("/0", "/0#insecure"), "store.url"),
        (ok("").replace(key, "c2hvcnQ="), "store.encryption_key"),
        (ok("").replace(key, "not base64 at all!"), "store.encryption_key"),
        (ok("prefix = \"has space\""), "store.prefix"),
        (ok("prefix = \"\""), "store.prefix"),
        (ok("path = \"/tmp/x\""), "store.path"),
        (ok("encrypt = false"), "store.encrypt"),
        (ok("call_timeout = \"5ms\""), "store.call_timeout"),
        (ok("call_timeout = \"3s\""), "store.call_timeout"),
        ("kind = \"redis\"".to_owned(), "store.url"),
    ] {
        let err = RedisStoreConfig::from_store_config(&table(&text)).unwrap_err();
        assert_eq!(field(&err).as_deref(), Some(expected), "{text}: {err}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("PASSWORD") && !shown.contains("c2hvcnQ"), "{shown}");
    }
    // The factory refuses the same way (and builds without touching the network).
    assert!(RedisStoreFactory.build(&table(&ok(""))).is_ok());
    assert!(RedisStoreFactory.build(&table(&ok("prefix = \"a b\""))).is_err());
    let plain = SecretString::from(key);
    assert!(RedisStoreConfig::new("redis://127.0.0.1", &plain).is_ok());
}
