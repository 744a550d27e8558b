//! Every adapter can be built in code: a provider built from its typed
//! config sends the emulator exactly the request the same provider read from
//! a TOML table sends, and is cached exactly once.
//!
//! One table, one row per case: the vendor, the provider as TOML, the same
//! provider as code. A case that spends a single-use code gets a fresh one
//! for each build (`code`), replaced by `<code>` before the requests are
//! compared.

use std::time::Duration;

use tokensmith_core::secrecy::SecretString;
use tokensmith_core::{
    CommonConfig, ConfigSecret, Providers, ProvidersBuilder, RefreshTokenStoreConfig, Registry,
    TokenProvider, Url,
};
use tokensmith_testkit::{Emulator, RecordedRequest, Vendor};

/// What one request looked like on the wire.
type Wire = (String, String, Vec<(String, String)>, String);

/// One case: how to write the provider `p` as TOML, and how to build it in
/// code, for the emulator `e` and the single-use `code` (when the case
/// uses one).
struct Case {
    what: &'static str,
    vendor: Vendor,
    toml: fn(e: &Emulator, code: &str) -> String,
    code: fn(e: &Emulator, code: &str, builder: ProvidersBuilder) -> ProvidersBuilder,
}

fn url(e: &Emulator) -> Url {
    Url::parse(&e.token_url()).unwrap()
}

fn secret(value: Option<&str>) -> SecretString {
    SecretString::from(value.unwrap().to_owned())
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            what: "deyel, client_credentials",
            vendor: Vendor::Deyel,
            toml: |e, _| format!("{}timeout = \"7s\"\n", e.config_snippet("p")),
            code: |e, _, b| {
                let c = e.credentials();
                let config = tokensmith_deyel::DeyelConfig::new(
                    url(e),
                    c.client_id(),
                    secret(c.client_secret()),
                )
                .with_common(|common| common.with_timeout(Duration::from_secs(7)));
                b.add("p", config)
            },
        },
        Case {
            what: "configapi, client_credentials with a tenant scope",
            vendor: Vendor::ConfigApi,
            toml: |e, _| e.config_snippet("p"),
            code: |e, _, b| {
                let c = e.credentials();
                let config = tokensmith_configapi::ConfigApiConfig::new(
                    url(e),
                    c.client_id(),
                    secret(c.client_secret()),
                    c.scope().unwrap(),
                );
                b.add("p", config)
            },
        },
        Case {
            what: "soti-connect, password",
            vendor: Vendor::SotiConnect,
            toml: |e, _| e.config_snippet("p"),
            code: |e, _, b| {
                let c = e.credentials();
                let config = tokensmith_soti::SotiConfig::password(
                    url(e),
                    c.client_id(),
                    secret(c.client_secret()),
                    c.username().unwrap(),
                    ConfigSecret::literal(c.password().unwrap()),
                );
                b.add("p", config)
            },
        },
        Case {
            what: "soti-connect, authorization_code with an in-memory store",
            vendor: Vendor::SotiConnect,
            toml: |e, code| {
                let c = e.credentials();
                format!(
                    "[providers.p]\nkind = \"soti-connect\"\ntoken_url = {:?}\nclient_id = {:?}\nclient_secret = {:?}\n\
                     grant = \"authorization_code\"\ncode = {code:?}\nrefresh_token_store = \"memory\"\n",
                    e.token_url(),
                    c.client_id(),
                    c.client_secret().unwrap(),
                )
            },
            code: |e, code, b| {
                let c = e.credentials();
                let config = tokensmith_soti::SotiConfig::authorization_code(
                    url(e),
                    c.client_id(),
                    secret(c.client_secret()),
                    SecretString::from(code.to_owned()),
                )
                .with_common(|common| {
                    common.with_refresh_token_store(RefreshTokenStoreConfig::Memory)
                });
                b.add("p", config)
            },
        },
        // oauth2: its rows go here (one per grant and client-auth style),
        // added with its typed config.
    ]
}

/// The requests `e` received since the last call, as compared: method,
/// target, headers and body, with the single-use `code` replaced.
fn take_requests(e: &Emulator, code: &str) -> Vec<Wire> {
    let wire = |r: &RecordedRequest| {
        let body = String::from_utf8_lossy(r.body()).into_owned();
        let body = if code.is_empty() { body } else { body.replace(code, "<code>") };
        (r.method().to_owned(), r.target().to_owned(), r.headers().to_vec(), body)
    };
    let requests = e.recorded_requests().iter().map(wire).collect();
    e.reset_counters();
    requests
}

/// Builds the case's provider one way, asks it for a token twice (one
/// request: cached once), and returns what the emulator saw.
async fn serve(what: &str, e: &Emulator, providers: &Providers, code: &str) -> Vec<Wire> {
    let provider = providers.get("p").unwrap_or_else(|err| panic!("{what}: {err}"));
    let shown = format!("{provider:?}");
    assert_eq!(shown.matches("CachedProvider").count(), 1, "{what}: cached once: {shown}");
    for _ in 0..2 {
        provider.token().await.unwrap_or_else(|err| panic!("{what}: {err}"));
    }
    assert_eq!(providers.cache_stats("p").unwrap().fetches, 1, "{what}");
    take_requests(e, code)
}

fn registry() -> Registry {
    Registry::new()
        .with(tokensmith_soti::SotiConnect)
        .with(tokensmith_configapi::ConfigApi)
        .with(tokensmith_oauth2::OAuth2)
        .with(tokensmith_deyel::Deyel)
}

#[tokio::test]
async fn every_adapter_built_in_code_sends_what_its_table_sends() {
    for case in cases() {
        let Case { what, vendor, toml, code: build } = case;
        let e = Emulator::start(vendor).await.unwrap();
        let uses_code = toml(&e, "CODE-MARK").contains("CODE-MARK");
        let fresh_code = || if uses_code { e.issue_code() } else { String::new() };

        let code = fresh_code();
        let from_toml = registry().load_str(&toml(&e, &code)).unwrap();
        let toml_requests = serve(what, &e, &from_toml, &code).await;

        let code = fresh_code();
        let from_code = build(&e, &code, Providers::builder()).build().unwrap();
        let code_requests = serve(what, &e, &from_code, &code).await;

        assert_eq!(toml_requests.len(), 1, "{what}");
        assert_eq!(toml_requests, code_requests, "{what}");
        let (toml_info, code_info) = (from_toml.info("p").unwrap(), from_code.info("p").unwrap());
        assert_eq!(toml_info, code_info, "{what}");
    }
}

#[test]
fn a_config_built_in_code_is_validated_as_a_table_is() {
    let url = Url::parse("https://deyel.example.com/token").unwrap();
    let cases: [(&str, tokensmith_deyel::DeyelConfig, &str, &str); 4] = [
        (
            "a colon in a raw Basic client id",
            tokensmith_deyel::DeyelConfig::new(url.clone(), "rest:api", ConfigSecret::literal("s")),
            "client_id",
            "':'",
        ),
        (
            "an empty secret",
            tokensmith_deyel::DeyelConfig::new(url.clone(), "api", ConfigSecret::literal("")),
            "client_secret",
            "empty",
        ),
        (
            "an empty client id",
            tokensmith_deyel::DeyelConfig::new(url.clone(), " ", ConfigSecret::literal("s")),
            "client_id",
            "empty",
        ),
        (
            "a credential in the token URL",
            tokensmith_deyel::DeyelConfig::new(
                Url::parse("https://deyel.example.com/token?client_secret=S3CRET").unwrap(),
                "api",
                ConfigSecret::literal("s"),
            ),
            "token_url",
            "credentials never go in the URL",
        ),
    ];
    for (what, config, field, needle) in cases {
        let err = Registry::new().build("bpm", config).unwrap_err();
        let tokensmith_core::TokenError::Config { provider, field: got, message, .. } = &err else {
            panic!("{what}: {err}")
        };
        assert_eq!((provider.as_deref(), got.as_deref()), (Some("bpm"), Some(field)), "{what}");
        assert!(message.contains(needle), "{what}: {err}");
        assert!(!err.to_string().contains("S3CRET"), "{what}: {err}");
    }
    // SOTI's own rules hold too: no ':' in its secret, no empty password.
    let soti = |secret: &str, password: &str| {
        tokensmith_soti::SotiConfig::password(
            url.clone(),
            "Application1",
            ConfigSecret::literal(secret),
            "Administrator",
            ConfigSecret::literal(password),
        )
    };
    let err = Registry::new().build("mdm", soti("a:b", "1")).unwrap_err();
    assert!(err.to_string().contains("client_secret") && err.to_string().contains("':'"), "{err}");
    let err = Registry::new().build("mdm", soti("s", "")).unwrap_err();
    assert!(err.to_string().contains("\"password\"") && err.to_string().contains("empty"), "{err}");
    // configapi's: a blank scope.
    let blank =
        tokensmith_configapi::ConfigApiConfig::new(url, "a", ConfigSecret::literal("s"), " ");
    let err = Registry::new().build("cfg", blank).unwrap_err();
    assert!(err.to_string().contains("scope"), "{err}");
}

#[test]
fn providers_built_in_code_share_the_registry_s_load_time_rules() {
    let url = Url::parse("https://deyel.example.com/token").unwrap();
    let store = RefreshTokenStoreConfig::File("/tmp/tokensmith-shared-store".into());
    let soti = |code: &str| {
        tokensmith_soti::SotiConfig::authorization_code(
            url.clone(),
            "Application1",
            ConfigSecret::literal("s"),
            ConfigSecret::literal(code),
        )
        .with_common(|common| common.with_refresh_token_store(store.clone()))
    };
    let report = Providers::builder().add("a", soti("c1")).add("b", soti("c2")).build_lenient();
    assert_eq!(report.providers().names().collect::<Vec<_>>(), ["a"]);
    let err = report.error("b").unwrap();
    assert!(err.to_string().contains("also used by provider \"a\""), "{err}");
    // A name added twice is refused, not silently replaced.
    let twice = Providers::builder()
        .add("a", soti("c1"))
        .add("a", tokensmith_deyel::DeyelConfig::new(url.clone(), "x", ConfigSecret::literal("s")))
        .build()
        .unwrap_err();
    assert!(twice.to_string().contains("added twice"), "{twice}");
    // The kind comes from the config's type, whatever the common fields say.
    let deyel = tokensmith_deyel::DeyelConfig::new(url, "x", ConfigSecret::literal("s"))
        .with_common(|mut common: CommonConfig| {
            common.kind = "soti-connect".to_owned();
            common
        });
    let providers = Providers::builder().add("d", deyel).build().unwrap();
    assert_eq!(providers.info("d").unwrap().kind, "deyel");
}
