//! Every adapter can be built in code: a provider built from its typed
//! config sends the emulator exactly the request the same provider read from
//! a TOML table sends, and is cached exactly once.
//!
//! One table, one row per case: the vendor, the provider as TOML, the same
//! provider as code. A case that spends a single-use credential (a code or
//! a refresh token) gets a fresh one for each build (`code`), replaced by
//! `<code>` before the requests are compared.

use std::time::Duration;

use tokensmith_core::secrecy::SecretString;
use tokensmith_core::{
    CommonConfig, ConfigSecret, Providers, ProvidersBuilder, RefreshTokenStoreConfig, Registry,
    TokenProvider, Url,
};
use tokensmith_testkit::{CodeRequest, Emulator, RecordedRequest, Vendor};

/// What one request looked like on the wire.
type Wire = (String, String, Vec<(String, String)>, String);

/// One case: how to write the provider `p` as TOML, and how to build it in
/// code, for the emulator `e` and the single-use `code` (when the case
/// uses one).
struct Case {
    what: &'static str,
    vendor: Vendor,
    /// Prepares the emulator and returns a fresh single-use credential for
    /// one build, or an empty string when the case spends none.
    issue: fn(e: &Emulator) -> String,
    toml: fn(e: &Emulator, code: &str) -> String,
    code: fn(e: &Emulator, code: &str, builder: ProvidersBuilder) -> ProvidersBuilder,
}

fn url(e: &Emulator) -> Url {
    Url::parse(&e.token_url()).unwrap()
}

fn secret(value: Option<&str>) -> SecretString {
    SecretString::from(value.unwrap().to_owned())
}

/// `issue` of a case that spends no single-use credential.
fn none(_: &Emulator) -> String {
    String::new()
}

/// The PKCE verifier of the oauth2 code cases.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// The oauth2 provider `p`'s first lines: kind, client id and grant.
fn oauth2_toml(e: &Emulator, client_id: &str, grant: &str) -> String {
    format!(
        "[providers.p]\nkind = \"oauth2\"\ntoken_url = {:?}\nclient_id = {client_id:?}\ngrant = {grant:?}\n",
        e.token_url()
    )
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            what: "deyel, client_credentials",
            vendor: Vendor::Deyel,
            issue: none,
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
            issue: none,
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
            issue: none,
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
            issue: Emulator::issue_code,
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
    ]
    .into_iter()
    .chain(custom())
    .chain(oauth2_client_credentials())
    .chain(oauth2_renewals())
    .collect()
}

/// Deyel described as `kind = "custom"`: the description part, shared by the
/// table and the code.
const CUSTOM_DEYEL: &str = r#"
request = { auth = "basic", fields = { grant_type = "client_credentials" }, headers = { X-Operator = "{username}", X-Tenant-Key = "{tenant_key}" } }
response = { token = "/access_token", expires_in = "/expires_in", error_code = "/error" }
present = { header = "X-Auth-Token", value = "{token}" }
"#;

/// custom: a vendor described in config, and the same description with
/// typed credentials in code.
fn custom() -> Vec<Case> {
    vec![Case {
        what: "custom: Deyel described (Basic, form, pointers, a presentation)",
        vendor: Vendor::Deyel,
        issue: none,
        toml: |e, _| {
            let c = e.credentials();
            format!(
                "[providers.p]\nkind = \"custom\"\ntoken_url = {:?}\nclient_id = {:?}\nclient_secret = {:?}\n\
                     username = \"ops\"\nsecrets = {{ tenant_key = \"north-key-1\" }}\n{CUSTOM_DEYEL}",
                e.token_url(),
                c.client_id(),
                c.client_secret().unwrap(),
            )
        },
        code: |e, _, b| {
            let c = e.credentials();
            let config = tokensmith_custom::CustomConfig::new(url(e), c.client_id(), CUSTOM_DEYEL)
                .unwrap()
                .with_client_secret(secret(c.client_secret()))
                .with_username("ops")
                .with_secret("tenant_key", ConfigSecret::literal("north-key-1"));
            b.add("p", config)
        },
    }]
}

/// oauth2 with `client_credentials`: one row per client-auth style, and discovery.
fn oauth2_client_credentials() -> Vec<Case> {
    vec![
        Case {
            what: "oauth2, client_credentials, client_secret_basic (form), scope, extra_params, timeout",
            vendor: Vendor::OAuth2,
            issue: none,
            toml: |e, _| {
                format!(
                    "{}extra_params = {{ audience = \"https://api.example.com\" }}\ntimeout = \"7s\"\n",
                    e.config_snippet("p")
                )
            },
            code: |e, _, b| {
                let c = e.credentials();
                let config =
                    tokensmith_oauth2::OAuth2Config::client_credentials(url(e), c.client_id())
                        .with_client_secret(secret(c.client_secret()))
                        .with_scope(c.scope().unwrap().split(' '))
                        .with_extra_param("audience", "https://api.example.com")
                        .with_common(|common| common.with_timeout(Duration::from_secs(7)));
                b.add("p", config)
            },
        },
        Case {
            what: "oauth2, client_credentials, client_secret_post, scope as one string",
            vendor: Vendor::OAuth2,
            issue: none,
            toml: |e, _| {
                let c = e.credentials();
                format!(
                    "{}client_secret = {:?}\nauth_method = \"client_secret_post\"\nscope = {:?}\n",
                    oauth2_toml(e, c.client_id(), "client_credentials"),
                    c.client_secret().unwrap(),
                    c.scope().unwrap(),
                )
            },
            code: |e, _, b| {
                let c = e.credentials();
                let config =
                    tokensmith_oauth2::OAuth2Config::client_credentials(url(e), c.client_id())
                        .with_client_secret(secret(c.client_secret()))
                        .with_auth_method(tokensmith_oauth2::AuthMethod::ClientSecretPost)
                        .with_scope([c.scope().unwrap()]);
                b.add("p", config)
            },
        },
        Case {
            what: "oauth2, client_credentials, client_secret_basic (raw)",
            vendor: Vendor::OAuth2,
            issue: |e| {
                e.set_basic_encoding(tokensmith_testkit::BasicEncoding::Raw);
                String::new()
            },
            toml: |e, _| {
                let c = e.credentials();
                format!(
                    "{}client_secret = {:?}\nauth_method = \"client_secret_basic\"\nbasic_encoding = \"raw\"\n",
                    oauth2_toml(e, c.client_id(), "client_credentials"),
                    c.client_secret().unwrap(),
                )
            },
            code: |e, _, b| {
                let c = e.credentials();
                let config =
                    tokensmith_oauth2::OAuth2Config::client_credentials(url(e), c.client_id())
                        .with_client_secret(secret(c.client_secret()))
                        .with_auth_method(tokensmith_oauth2::AuthMethod::ClientSecretBasic)
                        .with_basic_encoding(tokensmith_oauth2::BasicEncoding::Raw);
                b.add("p", config)
            },
        },
        Case {
            what: "oauth2, client_credentials, token endpoint and client auth discovered from the issuer",
            vendor: Vendor::OAuth2,
            issue: none,
            toml: |e, _| {
                let c = e.credentials();
                format!(
                    "[providers.p]\nkind = \"oauth2\"\nissuer = {:?}\nclient_id = {:?}\nclient_secret = {:?}\nscope = {:?}\n",
                    e.issuer(),
                    c.client_id(),
                    c.client_secret().unwrap(),
                    c.scope().unwrap(),
                )
            },
            code: |e, _, b| {
                let c = e.credentials();
                let issuer = tokensmith_oauth2::Endpoint::Issuer(e.issuer());
                let config =
                    tokensmith_oauth2::OAuth2Config::client_credentials(issuer, c.client_id())
                        .with_client_secret(secret(c.client_secret()))
                        .with_scope([c.scope().unwrap()]);
                b.add("p", config)
            },
        },
    ]
}

/// oauth2 with a single-use credential: a code (confidential and public clients) or a refresh token.
fn oauth2_renewals() -> Vec<Case> {
    vec![
        Case {
            what: "oauth2, authorization_code, client_secret_basic, PKCE, in-memory store",
            vendor: Vendor::OAuth2,
            issue: |e| e.issue_code_with(CodeRequest::new().pkce_verifier(VERIFIER)),
            toml: |e, code| {
                let c = e.credentials();
                format!(
                    "{}client_secret = {:?}\ncode = {code:?}\nredirect_uri = {:?}\ncode_verifier = {VERIFIER:?}\n\
                     refresh_token_store = \"memory\"\n",
                    oauth2_toml(e, c.client_id(), "authorization_code"),
                    c.client_secret().unwrap(),
                    c.redirect_uri().unwrap(),
                )
            },
            code: |e, code, b| {
                let c = e.credentials();
                let config = tokensmith_oauth2::OAuth2Config::authorization_code(
                    url(e),
                    c.client_id(),
                    SecretString::from(code.to_owned()),
                    c.redirect_uri().unwrap(),
                )
                .with_client_secret(secret(c.client_secret()))
                .with_code_verifier(SecretString::from(VERIFIER))
                .with_common(|common| {
                    common.with_refresh_token_store(RefreshTokenStoreConfig::Memory)
                });
                b.add("p", config)
            },
        },
        Case {
            what: "oauth2, authorization_code, public client (auth_method = none), PKCE",
            vendor: Vendor::OAuth2,
            issue: |e| {
                let public = e.credentials().public_client_id().unwrap();
                e.issue_code_with(CodeRequest::new().client_id(public).pkce_verifier(VERIFIER))
            },
            toml: |e, code| {
                let c = e.credentials();
                format!(
                    "{}auth_method = \"none\"\ncode = {code:?}\nredirect_uri = {:?}\ncode_verifier = {VERIFIER:?}\n",
                    oauth2_toml(e, c.public_client_id().unwrap(), "authorization_code"),
                    c.redirect_uri().unwrap(),
                )
            },
            code: |e, code, b| {
                let c = e.credentials();
                let config = tokensmith_oauth2::OAuth2Config::authorization_code(
                    url(e),
                    c.public_client_id().unwrap(),
                    ConfigSecret::literal(code),
                    c.redirect_uri().unwrap(),
                )
                .with_auth_method(tokensmith_oauth2::AuthMethod::None)
                .with_code_verifier(ConfigSecret::literal(VERIFIER));
                b.add("p", config)
            },
        },
        Case {
            what: "oauth2, refresh_token, client_secret_basic, scope",
            vendor: Vendor::OAuth2,
            issue: Emulator::issue_refresh_token,
            toml: |e, token| {
                let c = e.credentials();
                format!(
                    "{}client_secret = {:?}\nrefresh_token = {token:?}\nscope = [\"read\", \"write\"]\n",
                    oauth2_toml(e, c.client_id(), "refresh_token"),
                    c.client_secret().unwrap(),
                )
            },
            code: |e, token, b| {
                let c = e.credentials();
                let config = tokensmith_oauth2::OAuth2Config::refresh_token(
                    url(e),
                    c.client_id(),
                    SecretString::from(token.to_owned()),
                )
                .with_client_secret(secret(c.client_secret()))
                .with_scope(["read", "write"]);
                b.add("p", config)
            },
        },
    ]
}

/// The token requests `e` received since the last call, as compared:
/// method, target, headers and body, with the single-use `code` replaced;
/// and the paths of its discovery requests.
fn take_requests(e: &Emulator, code: &str) -> (Vec<Wire>, Vec<String>) {
    let wire = |r: &RecordedRequest| {
        let body = String::from_utf8_lossy(r.body()).into_owned();
        let body = if code.is_empty() { body } else { body.replace(code, "<code>") };
        (r.method().to_owned(), r.target().to_owned(), r.headers().to_vec(), body)
    };
    let requests = e.recorded_requests().iter().map(wire).collect();
    let discovery = e.discovery_requests();
    e.reset_counters();
    (requests, discovery)
}

/// Builds the case's provider one way, asks it for a token twice (one
/// request: cached once), and returns what the emulator saw.
async fn serve(
    what: &str,
    e: &Emulator,
    providers: &Providers,
    code: &str,
) -> (Vec<Wire>, Vec<String>) {
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
        .with(tokensmith_custom::Custom)
}

#[tokio::test]
async fn every_adapter_built_in_code_sends_what_its_table_sends() {
    for case in cases() {
        let Case { what, vendor, issue, toml, code: build } = case;
        let e = Emulator::start(vendor).await.unwrap();

        let code = issue(&e);
        let from_toml = registry().load_str(&toml(&e, &code)).unwrap();
        let toml_requests = serve(what, &e, &from_toml, &code).await;

        let code = issue(&e);
        let from_code = build(&e, &code, Providers::builder()).build().unwrap();
        let code_requests = serve(what, &e, &from_code, &code).await;

        assert_eq!(toml_requests.0.len(), 1, "{what}");
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
    let blank = tokensmith_configapi::ConfigApiConfig::new(
        url.clone(),
        "a",
        ConfigSecret::literal("s"),
        " ",
    );
    let err = Registry::new().build("cfg", blank).unwrap_err();
    assert!(err.to_string().contains("scope"), "{err}");
    // custom's: the description's own checks at build, as for a table (an
    // unknown name, a secret written out in a literal), and the text's shape
    // at `new` (credentials belong in the typed methods).
    let custom = |description: &str| {
        tokensmith_custom::CustomConfig::new(url.clone(), "app", description)
            .map(|c| c.with_password(ConfigSecret::literal("S3CRET-pw")))
    };
    let unknown =
        custom("response = { token = \"/t\" }\nrequest = { fields = { a = \"{nope}\" } }");
    let err = Registry::new().build("acme", unknown.unwrap()).unwrap_err();
    assert!(
        err.to_string().contains("request.fields.a") && err.to_string().contains("nope"),
        "{err}"
    );
    let literal =
        custom("response = { token = \"/t\" }\nrequest = { fields = { a = \"S3CRET-pw\" } }");
    let err = Registry::new().build("acme", literal.unwrap()).unwrap_err();
    assert!(err.is_config() && !err.to_string().contains("S3CRET"), "{err}");
    let err = custom("password = \"S3CRET-pw\"\nresponse = { token = \"/t\" }").unwrap_err();
    assert!(
        err.to_string().contains("with_password") && !err.to_string().contains("S3CRET"),
        "{err}"
    );
    let err = custom("response = { token = \"/t\" }\nrequest = { frields = {} }").unwrap_err();
    assert!(err.to_string().contains("frields"), "{err}");
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
