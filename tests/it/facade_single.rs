//! The `tokensmith` facade built with a single adapter feature (`deyel`,
//! see `tests/Cargo.toml`): `Registry::with_enabled_adapters()` serves that
//! kind, and asking for another kind is the clear "add crate X" error. The
//! `redis` feature (also on here) registers the Redis token store.

use tokensmith::secrecy::ExposeSecret;
use tokensmith::{Registry, RegistryExt, TokenError};
use tokensmith_testkit::redis::RedisServer;
use tokensmith_testkit::{Emulator, Vendor};

#[test]
fn only_the_enabled_adapter_is_registered() {
    assert_eq!(Registry::with_enabled_adapters().kinds().collect::<Vec<_>>(), ["deyel"]);
    assert_eq!(tokensmith::registry().kinds().collect::<Vec<_>>(), ["deyel"]);
}

#[tokio::test]
async fn the_enabled_adapter_serves_tokens() {
    let emulator = Emulator::start(Vendor::Deyel).await.unwrap();
    let providers =
        Registry::with_enabled_adapters().load_str(&emulator.config_snippet("bpm")).unwrap();
    let token = providers.get("bpm").unwrap().token().await.unwrap();
    assert!(!token.secret().expose_secret().is_empty());
    assert_eq!(emulator.requests(), 1);
    // The adapter crate is reachable through the facade's module.
    assert_eq!(tokensmith::deyel::KIND, "deyel");
}

#[test]
fn another_kind_names_the_crate_and_feature_to_add() {
    let err = Registry::with_enabled_adapters()
        .load_str(
            r#"
            [providers.mdm]
            kind = "soti-connect"
            token_url = "https://mdm.example.com/Connect/api/token"
            client_id = "Application1"
            client_secret = "Application1Password"
            grant = "password"
            username = "Administrator"
            password = "1"
            "#,
        )
        .unwrap_err();
    assert!(err.is_config(), "{err}");
    let TokenError::Config { provider, field, message, .. } = &err else {
        panic!("not a config error: {err}");
    };
    assert_eq!(provider.as_deref(), Some("mdm"));
    assert_eq!(field.as_deref(), Some("kind"));
    assert!(message.contains("`tokensmith-soti`"), "{err}");
    assert!(message.contains("`soti` feature"), "{err}");
    assert!(message.contains("available kinds: deyel"), "{err}");
    assert!(!err.to_string().contains("Application1Password"), "{err}");
}

#[tokio::test]
async fn the_redis_feature_registers_the_redis_store_for_the_store_table() {
    // The store crate is reachable through the facade's module.
    assert_eq!(tokensmith::StoreFactory::kind(&tokensmith::redis::RedisStoreFactory), "redis");
    let server = RedisServer::start();
    let emulator = Emulator::start(Vendor::Deyel).await.unwrap();
    let config = format!(
        "[store]\nkind = \"redis\"\nurl = \"{}\"\nencryption_key = \"{}\"\n\n{}",
        server.url(),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7_u8; 32]),
        emulator.config_snippet("bpm")
    );
    // Two "processes": separate registries, caches and connections, one fetch.
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let providers = Registry::with_enabled_adapters().load_str(&config).unwrap();
        assert_eq!(providers.cache("bpm").unwrap().store_kind(), Some("redis"));
        tokens.push(providers.get("bpm").unwrap().token().await.unwrap());
    }
    assert_eq!(emulator.tokens_issued(), 1, "the second instance read the shared token");
    assert_eq!(tokens[0].secret().expose_secret(), tokens[1].secret().expose_secret());
}
