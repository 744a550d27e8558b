//! The token stores' part of the audit: where a token is written, and
//! what the stores' error paths show.
//!
//! - The file store (contract §4, §6): every file name holds no secret, no
//!   token and no unkeyed hash of one; an access token is in its entry
//!   (`<ProviderKey>.json`, mode 0600) and nowhere else; no file of the store
//!   holds a client secret, password, code or refresh token (those live in
//!   the `refresh_token_store` file, whose only secret is the refresh
//!   token). Hostile entries, a symlinked entry and a world-readable key
//!   are refetched without a caller error, and `decode_token` refuses them
//!   without showing them.
//! - The Redis store (contract §6), against a real `redis-server` with an
//!   ACL password: every key and value holds no secret, no plaintext token
//!   and no unkeyed hash of one; a wrong `encryption_key`, a tampered value,
//!   a hostile unencrypted value and Redis down show nothing in errors,
//!   `Debug` or the TRACE log. The scan of Redis is shown to fail on a
//!   planted key and on the plaintext values of `encrypt = false`.

use std::collections::hash_map::RandomState;
use std::fmt::Write as _;
use std::hash::BuildHasher as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use sha2::{Digest as _, Sha256};
use tokensmith_core::secrecy::{ExposeSecret as _, SecretString};
use tokensmith_core::{
    AccessToken, Clock as _, ProviderIdentity, Registry, StoreConfig, SystemClock, TokenStore as _,
    decode_token,
};
use tokensmith_redis::{RedisStoreConfig, RedisStoreFactory, RedisTokenStore};
use tokensmith_testkit::leak::{Scanner, json_escaped};
use tokensmith_testkit::redis::{QuotingRedis, RedisServer};
use tokensmith_testkit::{Emulator, Vendor};

use super::{Audit, SECRETS, adapters, toml_str};

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// Looks for the unkeyed SHA-256 of `value` (hex in both cases, base64):
/// what a store key must never be (contract §6).
fn unkeyed_hashes(scanner: &Scanner, label: &str, value: &str) {
    let digest = Sha256::digest(value.as_bytes());
    let label = format!("unkeyed hash of the {label}");
    scanner.exact(&label, &hex(&digest));
    scanner.exact(&label, &hex(&digest).to_uppercase());
    scanner.exact(&label, &STANDARD.encode(digest));
    scanner.exact(&label, &URL_SAFE_NO_PAD.encode(digest));
}

/// The providers every store test shares, with real credentials the
/// emulators accept, and the secrets they hold (label, value).
struct StoreWorld {
    config: String,
    names: Vec<&'static str>,
    secrets: Vec<(&'static str, String)>,
    refresh_dir: tempfile::TempDir,
    _emulators: Vec<Emulator>,
}

impl StoreWorld {
    async fn start() -> Self {
        let deyel = Emulator::start(Vendor::Deyel).await.unwrap();
        let soti = Emulator::start(Vendor::SotiConnect).await.unwrap();
        let configapi = Emulator::start(Vendor::ConfigApi).await.unwrap();
        let oauth2 = Emulator::start(Vendor::OAuth2).await.unwrap();
        let refresh_dir = tempfile::tempdir().unwrap();
        let refresh_store = |name: &str| {
            let path = refresh_dir.path().join(format!("{name}.refresh"));
            format!(
                "refresh_token_store = {{ file = {} }}\n",
                toml_str(&path.display().to_string())
            )
        };
        let refresh = oauth2.issue_refresh_token();
        let code = oauth2.issue_code();
        let creds = oauth2.credentials();
        let client_credentials = "grant = \"client_credentials\"\n";
        let refresh_table = oauth2.config_snippet("rotating").replace(
            client_credentials,
            &format!(
                "grant = \"refresh_token\"\nrefresh_token = {}\n{}",
                toml_str(&refresh),
                refresh_store("rotating")
            ),
        );
        let code_table = oauth2.config_snippet("code").replace(
            client_credentials,
            &format!(
                "grant = \"authorization_code\"\ncode = {}\nredirect_uri = {}\n{}",
                toml_str(&code),
                toml_str(creds.redirect_uri().unwrap()),
                refresh_store("code")
            ),
        );
        assert!(refresh_table.contains("refresh_token =") && code_table.contains("code ="));
        let config = [
            deyel.config_snippet("deyel"),
            soti.config_snippet("soti"),
            configapi.config_snippet("configapi"),
            oauth2.config_snippet("oauth2"),
            refresh_table,
            code_table,
        ]
        .join("\n");
        let mut secrets = vec![("refresh token", refresh), ("code", code)];
        for emulator in [&deyel, &soti, &configapi, &oauth2] {
            let creds = emulator.credentials();
            secrets.extend(creds.client_secret().map(|s| ("client secret", s.to_owned())));
            // SOTI's example password ("1") is too short to search for.
            secrets.extend(
                creds.password().filter(|p| p.len() >= 8).map(|p| ("password", p.to_owned())),
            );
        }
        Self {
            config,
            names: vec!["deyel", "soti", "configapi", "oauth2", "rotating", "code"],
            secrets,
            refresh_dir,
            _emulators: vec![deyel, soti, configapi, oauth2],
        }
    }

    /// Registers every secret of the world, and its unkeyed hash.
    fn register(&self, audit: &Audit) {
        for (label, value) in &self.secrets {
            audit.scanner.secret(label, value);
            unkeyed_hashes(&audit.scanner, label, value);
        }
    }

    /// A token from every provider of `registry` (each registered as an
    /// access token, with its unkeyed hash).
    async fn tokens(&self, audit: &Audit, registry: &Registry) -> Vec<String> {
        self.tokens_with(audit, registry, &self.config).await
    }

    /// As [`tokens`](Self::tokens), from `config` (these providers under
    /// another `[store]`).
    async fn tokens_with(&self, audit: &Audit, registry: &Registry, config: &str) -> Vec<String> {
        let providers = registry.load_str(config).unwrap();
        audit.text("providers", &format!("{providers:?}"));
        let mut tokens = Vec::new();
        for name in &self.names {
            let token = providers.get(name).unwrap().token().await.unwrap();
            let value = token.secret().expose_secret().to_owned();
            audit.scanner.exact("access token", &value);
            unkeyed_hashes(&audit.scanner, "access token", &value);
            audit.text(name, &format!("{token:?} {:?}", providers.cache(name)));
            tokens.push(value);
        }
        tokens
    }

    /// The rotated refresh tokens, read from their stores (looked for from
    /// now on).
    fn rotated_refresh_tokens(&self, audit: &Audit) {
        for file in files(self.refresh_dir.path()) {
            if file.extension().is_some_and(|e| e == "refresh") {
                let stored = std::fs::read_to_string(&file).unwrap();
                audit.scanner.exact("refresh token", stored.trim());
                unkeyed_hashes(&audit.scanner, "refresh token", stored.trim());
            }
        }
    }
}

/// Every file under `dir`, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    out.sort();
    out
}

// ---------------------------------------------------------------------------
// The file store: what its files hold

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_store_keeps_each_token_in_its_entry_and_no_secret_in_any_name_or_file() {
    use std::os::unix::fs::PermissionsExt as _;

    let audit = Audit::new();
    let world = StoreWorld::start().await;
    world.register(&audit);
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let registry = adapters().with_default_store(StoreConfig::file(&store_dir));
    let tokens = world.tokens(&audit, &registry).await;
    world.rotated_refresh_tokens(&audit);
    // Read back from the store by a second "process": the same tokens.
    let again = world.tokens(&audit, &registry).await;
    assert_eq!(again, tokens, "served from the file store");

    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&store_dir), 0o700);
    let mut holders = vec![0; tokens.len()];
    let store_files = files(&store_dir);
    assert!(store_files.len() > tokens.len(), "entries, locks and the key: {store_files:?}");
    for file in &store_files {
        let name = file.file_name().unwrap().to_str().unwrap();
        audit.text(&format!("file store: the name {name}"), name);
        let contents = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
        let entry = file.extension().is_some_and(|e| e == "json");
        // A token's place is its entry (contract §4: the per-user cache).
        let allowed: &[&str] = if entry { &["access token"] } else { &[] };
        audit.scanner.check_except(&format!("file store: {name}"), &contents, allowed);
        for (i, token) in tokens.iter().enumerate() {
            if contents.contains(token.as_str()) {
                assert!(entry, "{name} holds a token");
                assert_eq!(mode(file), 0o600, "{name}");
                holders[i] += 1;
                // The contents are really scanned: not allowed, the token is found.
                assert!(!audit.scanner.scan(name, &contents).is_empty(), "{name}");
            }
        }
    }
    assert_eq!(holders, vec![1; tokens.len()], "each token in exactly one entry");
    // The refresh token store: its file holds the refresh token, nothing else.
    let refresh_files = files(world.refresh_dir.path());
    assert!(refresh_files.len() >= 2, "{refresh_files:?}");
    for file in refresh_files {
        let name = file.file_name().unwrap().to_str().unwrap().to_owned();
        let contents = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        audit.scanner.check_except(
            &format!("refresh token store: {name}"),
            &contents,
            &["refresh token"],
        );
    }
    audit.finish(store_files.len() * 2 + tokens.len());
}

// ---------------------------------------------------------------------------
// The file store: hostile files, `decode_token`

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_store_error_shows_a_token_or_the_store_key() {
    let audit = Audit::new();
    let emulator = Emulator::start(Vendor::Deyel).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let load = || {
        Registry::new()
            .with(tokensmith_deyel::Deyel)
            .with_default_store(StoreConfig::file(&store_dir))
            .load_str(&emulator.config_snippet("bpm"))
            .unwrap()
    };
    let first = load().get("bpm").unwrap().token().await.unwrap();
    let access = first.secret().expose_secret().to_owned();
    audit.scanner.exact("stored access token", &access);
    let key = std::fs::read(store_dir.join("key")).unwrap();
    assert_eq!(key.len(), 32);
    let hex = hex(&key);
    audit.scanner.exact("store key (hex)", &hex);
    audit.scanner.exact("store key (HEX)", &hex.to_uppercase());
    audit.scanner.exact("store key (base64)", &STANDARD.encode(&key));
    audit.scanner.exact("store key (base64url)", &URL_SAFE_NO_PAD.encode(&key));
    audit.scanner.exact("store key (debug bytes)", &format!("{:?}", &key[..8]));
    let entry = std::fs::read_dir(&store_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("the stored entry");
    let good = std::fs::read_to_string(&entry).unwrap();
    assert!(good.contains(&access), "the entry holds the token");

    let planted = json_escaped(&SECRETS.planted_access);
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good.as_bytes()[..good.len() / 2].to_vec()),
        ("wrong types", good.replace("\"access_token\"", "\"access_token\":1,\"x\"").into_bytes()),
        (
            "planted token, broken",
            format!(r#"{{"access_token":"{planted}","expires_at":"soon"}}"#).into_bytes(),
        ),
        ("not UTF-8", [b"\xff\xfe".as_slice(), good.as_bytes()].concat()),
        ("huge", format!("{good}{}", " ".repeat(2 * 1024 * 1024)).into_bytes()),
        (
            "control characters",
            good.replace(&access, &format!("{access}\u{1b}[31m\n")).into_bytes(),
        ),
    ];
    for (what, bytes) in &hostile {
        let err = decode_token(bytes).expect_err(what);
        audit.error(&format!("decode_token / {what}"), &err);
        audit.panic_of(&format!("decode_token / {what}"), decode_token(bytes));
        // The same bytes as the stored entry: the cache refetches, logging why.
        std::fs::write(&entry, bytes).unwrap();
        let token = load().get("bpm").unwrap().token().await.unwrap();
        audit.scanner.exact("refetched access token", token.secret().expose_secret());
    }
    // The store's own refusals: a symlinked entry, a world-readable key.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let elsewhere = dir.path().join("elsewhere.json");
        std::fs::write(&elsewhere, &good).unwrap();
        std::fs::remove_file(&entry).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &entry).unwrap();
        let token = load().get("bpm").unwrap().token().await.unwrap();
        audit.scanner.exact("refetched access token", token.secret().expose_secret());
        let key_file = store_dir.join("key");
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let token = load().get("bpm").unwrap().token().await.unwrap();
        audit.scanner.exact("refetched access token", token.secret().expose_secret());
    }
    let providers = load();
    audit.text("providers", &format!("{providers:?} {:?}", providers.cache("bpm")));
    assert!(emulator.tokens_issued() >= 2, "hostile entries were refetched");
    audit.finish(hostile.len() * 2);
}

// ---------------------------------------------------------------------------
// The Redis store

/// A `redis-server` whose user `audit` has a distinctive password, and an
/// `encryption_key`: both looked for by `audit`.
struct RedisWorld {
    server: RedisServer,
    url: String,
    key: SecretString,
}

/// 32 random bytes (not for production: a test's key).
fn random_bytes() -> Vec<u8> {
    (0..4_u64).flat_map(|i| RandomState::new().hash_one(i).to_le_bytes()).collect()
}

impl RedisWorld {
    fn start(audit: &Audit) -> Self {
        let server = RedisServer::start();
        // URL-safe: the password is written into the URL as is.
        let password = format!("Red1sPw-{}", hex(&random_bytes()[..12]));
        let acl = ["ACL", "SETUSER", "audit", "on", &format!(">{password}"), "~*", "&*", "+@all"];
        assert_eq!(server.command(&acl).unwrap(), "+OK");
        let url = format!("redis://audit:{password}@127.0.0.1:{}", server.port());
        audit.scanner.secret("redis password", &password);
        audit.scanner.secret("redis URL", &url);
        let bytes = random_bytes();
        let key = STANDARD.encode(&bytes);
        audit.scanner.secret("encryption key", &key);
        audit.scanner.exact("encryption key", &STANDARD_NO_PAD.encode(&bytes));
        audit.scanner.exact("encryption key (hex)", &hex(&bytes));
        unkeyed_hashes(&audit.scanner, "encryption key", &key);
        Self { server, url, key: SecretString::from(key) }
    }

    /// `[store]` for this server, with `key` (its own by default).
    fn store_table(&self, key: Option<&str>) -> String {
        let key = key.unwrap_or(self.key.expose_secret());
        format!(
            "[store]\nkind = \"redis\"\nurl = {}\nencryption_key = {}\nprefix = \"audit\"\nlock_timeout = \"2s\"\n",
            toml_str(&self.url),
            toml_str(key)
        )
    }

    /// A store built in code on this server.
    fn store(&self, key: &SecretString) -> RedisTokenStore {
        let config = RedisStoreConfig::new(self.url.clone(), key).unwrap().with_prefix("audit");
        RedisTokenStore::new(config.unwrap().with_call_timeout(Duration::from_millis(500))).unwrap()
    }

    /// Scans every key and value in Redis; returns how many keys there are.
    fn scan(&self, audit: &Audit) -> usize {
        let dump = self.server.dump().unwrap();
        for (key, value) in &dump {
            let name = String::from_utf8_lossy(key).into_owned();
            audit.scanner.check_bytes("a Redis key", key);
            audit.scanner.check_bytes(&format!("the Redis value of {name}"), value);
        }
        dump.len()
    }
}

fn redis_registry() -> Registry {
    adapters().with_store_factory(RedisStoreFactory)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_redis_key_or_value_holds_a_secret_or_a_plaintext_token_and_no_redis_failure_shows_one()
{
    let audit = Audit::new();
    let world = StoreWorld::start().await;
    world.register(&audit);
    let mut redis = RedisWorld::start(&audit);
    let config = format!("{}\n{}", redis.store_table(None), world.config);
    let tokens = world.tokens_with(&audit, &redis_registry(), &config).await;
    world.rotated_refresh_tokens(&audit);
    let again = world.tokens_with(&audit, &redis_registry(), &config).await;
    assert_eq!(again, tokens, "shared through Redis");
    let keys = redis.scan(&audit);
    assert!(keys >= tokens.len(), "a key per provider: {keys}");
    for (key, _) in redis.server.dump().unwrap() {
        let key = String::from_utf8(key).unwrap();
        let hmac = key.strip_prefix("audit:token:").or_else(|| key.strip_prefix("audit:lock:"));
        assert!(
            hmac.is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())),
            "{key}"
        );
    }

    // The store in code: a planted access token stored, then every failure.
    let store = redis.store(&redis.key);
    audit.text("store Debug", &format!("{store:?}"));
    let identity = ProviderIdentity::new("audit")
        .field("token_url", "https://id.example.com/token")
        .secret("client_secret", SECRETS.client_secret.as_str());
    audit.text("identity Debug", &format!("{identity:?}"));
    let key = identity.key(&store.naming_key().await.unwrap());
    audit.text("provider key", &format!("{key} {key:?}"));
    let planted = AccessToken::builder(SECRETS.planted_access.as_str(), SystemClock.now())
        .expires_in(Duration::from_hours(1))
        .refresh_token(Some(SecretString::from(SECRETS.refresh_token.as_str())))
        .build();
    store.store(&key, &planted, Duration::from_mins(10)).await.unwrap();
    let loaded = store.load(&key).await.unwrap().unwrap();
    assert!(
        loaded.same_token(&planted) || loaded.secret().expose_secret() == SECRETS.planted_access
    );
    redis.scan(&audit);
    let name = store.token_key(&key);

    // A wrong `encryption_key`: the value, copied under the name the
    // other key gives the provider, does not open.
    let other = SecretString::from(STANDARD.encode(random_bytes()));
    audit.scanner.secret("the other encryption key", other.expose_secret());
    let wrong = redis.store(&other);
    let wrong_key = identity.key(&wrong.naming_key().await.unwrap());
    let copy = ["COPY", name.as_str(), &wrong.token_key(&wrong_key), "REPLACE"];
    assert_eq!(redis.server.command(&copy).unwrap(), ":1");
    let err = wrong.load(&wrong_key).await.unwrap_err();
    audit.error("redis / wrong key", &err);
    // A tampered value.
    assert!(redis.server.command(&["SETRANGE", &name, "20", "X"]).unwrap().starts_with(':'));
    let err = store.load(&key).await.unwrap_err();
    audit.error("redis / tampered value", &err);
    // A hostile value without encryption: planted tokens in a broken document.
    let unencrypted = RedisTokenStore::new(
        RedisStoreConfig::unencrypted(redis.url.clone()).unwrap().with_prefix("audit").unwrap(),
    )
    .unwrap();
    let plain_key = identity.key(&unencrypted.naming_key().await.unwrap());
    let plain_name = unencrypted.token_key(&plain_key);
    let hostile = format!(
        r#"{{"v":1,"access_token":"{}","refresh_token":"{}","expires_at":"soon"}}"#,
        json_escaped(&SECRETS.planted_access),
        json_escaped(&SECRETS.refresh_token)
    );
    assert_eq!(redis.server.command(&["SET", &plain_name, &hostile]).unwrap(), "+OK");
    let err = unencrypted.load(&plain_key).await.unwrap_err();
    audit.error("redis / hostile unencrypted value", &err);
    assert!(decode_token(hostile.as_bytes()).is_err());
    redis.server.command(&["DEL", &plain_name]).unwrap();

    // The cache over tampered values: refetched, no caller error.
    for (key, _) in redis.server.dump().unwrap() {
        let key = String::from_utf8(key).unwrap();
        if key.starts_with("audit:token:") {
            redis.server.command(&["SETRANGE", &key, "30", "tampered"]).unwrap();
        }
    }
    let refetched = world.tokens_with(&audit, &redis_registry(), &config).await;
    assert_ne!(refetched, tokens, "tampered values are refetched");
    world.rotated_refresh_tokens(&audit);
    redis.scan(&audit);

    // A wrong password, and Redis down.
    let bad_url = redis.url.replace("Red1sPw-", "Wr0ngPw-");
    let bad_config = RedisStoreConfig::new(bad_url, &redis.key).unwrap();
    audit.text("config Debug", &format!("{bad_config:?}"));
    let err = RedisTokenStore::connect(bad_config.with_call_timeout(Duration::from_millis(500)))
        .await
        .unwrap_err();
    audit.token_error("redis / wrong password", &err);
    redis.server.kill();
    let err = store.load(&key).await.unwrap_err();
    audit.error("redis / down: load", &err);
    let err = store.store(&key, &planted, Duration::from_mins(1)).await.unwrap_err();
    audit.error("redis / down: store", &err);
    let err = store.try_lock(&key, Duration::from_secs(1)).await.unwrap_err();
    audit.error("redis / down: lock", &err);
    let down =
        RedisTokenStore::connect(RedisStoreConfig::new(redis.url.clone(), &redis.key).unwrap())
            .await
            .unwrap_err();
    audit.token_error("redis / down: connect", &down);
    // The cache fetches for itself, and says why in the log.
    world.tokens_with(&audit, &redis_registry(), &config).await;
    assert!(super::log_text().contains("redis unusable"), "the outage was logged");
    audit.finish(40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_scan_reports_a_planted_key_and_the_plaintext_values_of_encrypt_false() {
    let audit = Audit::new();
    let redis = RedisWorld::start(&audit);
    let planted = format!("audit:planted:{}", SECRETS.client_secret);
    assert_eq!(redis.server.command(&["SET", &planted, "x"]).unwrap(), "+OK");
    // `encrypt = false`: the token is stored as plaintext.
    let store = RedisTokenStore::new(
        RedisStoreConfig::unencrypted(redis.url.clone()).unwrap().with_prefix("audit").unwrap(),
    )
    .unwrap();
    let key = ProviderIdentity::new("audit").key(&store.naming_key().await.unwrap());
    let token = AccessToken::builder(SECRETS.planted_access.as_str(), SystemClock.now())
        .expires_in(Duration::from_hours(1))
        .build();
    store.store(&key, &token, Duration::from_mins(10)).await.unwrap();
    redis.scan(&audit);
    let findings = audit.scanner.findings();
    assert!(
        findings.iter().any(|f| f.starts_with("a Redis key: shows the client secret")),
        "{findings:#?}"
    );
    assert!(
        findings.iter().any(|f| f.contains("the Redis value of audit:token:")
            && f.contains("shows the planted access token")),
        "{findings:#?}"
    );
    let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| audit.finish(2)));
    assert!(report.is_err(), "the audit fails on them");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_quotes_what_it_was_sent_shows_no_password_and_no_token() {
    let audit = Audit::new();
    let password = format!("Red1sPw-{}", hex(&random_bytes()[..12]));
    audit.scanner.secret("redis password", &password);
    let planted = AccessToken::builder(SECRETS.planted_access.as_str(), SystemClock.now())
        .expires_in(Duration::from_hours(1))
        .build();
    for auth_ok in [false, true] {
        let quoting = QuotingRedis::start(auth_ok);
        let url = format!("redis://audit:{password}@127.0.0.1:{}", quoting.port());
        audit.scanner.secret("redis URL", &url);
        for encrypted in [true, false] {
            let what =
                format!("redis quoting (set-up answered: {auth_ok}, encrypted: {encrypted})");
            let config = if encrypted {
                RedisStoreConfig::new(
                    url.clone(),
                    &SecretString::from(STANDARD.encode(random_bytes())),
                )
            } else {
                RedisStoreConfig::unencrypted(url.clone())
            };
            let store =
                RedisTokenStore::new(config.unwrap().with_call_timeout(Duration::from_millis(500)))
                    .unwrap();
            let key = ProviderIdentity::new("audit").key(&tokensmith_core::NamingKey::new(b"k"));
            let scan =
                |call: &str, result: Result<String, tokensmith_core::StoreError>| match result {
                    Ok(shown) => audit.text(&format!("{what}: {call}"), &shown),
                    Err(err) => audit.error(&format!("{what}: {call}"), &err),
                };
            // The SET of the value is quoted back, whatever else succeeds.
            let stored = store.store(&key, &planted, Duration::from_mins(1)).await;
            assert!(stored.is_err(), "{what}: {stored:?}");
            scan("store", stored.map(|()| String::new()));
            scan("load", store.load(&key).await.map(|t| format!("{t:?}")));
            scan("naming key", store.naming_key().await.map(|k| format!("{k:?}")));
            scan(
                "lock",
                store.try_lock(&key, Duration::from_secs(1)).await.map(|l| format!("{l:?}")),
            );
            scan("ping", store.ping().await.map(|()| String::new()));
        }
    }
    assert!(super::log_text().contains("redis unusable"), "the failures were logged");
    audit.finish(10);
}
