//! Discovery: `issuer = "https://…"` instead of `token_url` (RFC 8414,
//! OIDC Discovery 1.0).
//!
//! Loading the config only validates the issuer URL (the https rule, no
//! query or fragment): no network. The first token request fetches the
//! metadata document, once; later requests reuse what it said (a failed
//! discovery is retried by the next request). Two locations are tried, in
//! order:
//!
//! 1. `/.well-known/oauth-authorization-server` inserted before the issuer's
//!    path (RFC 8414 §3.1);
//! 2. `/.well-known/openid-configuration` appended to the issuer (OIDC
//!    Discovery §4), when the first answers with a 4xx.
//!
//! Each fetch has the same safety limits as token requests (timeout, body
//! cap, no redirects, the https rule, `ca_file`). The document must name the
//! configured issuer (RFC 8414 §3.3) and a `token_endpoint` that passes the
//! https rule (and is https whenever the issuer is: no downgrade, not even to
//! loopback or with `allow_insecure_http`); its `token_endpoint_auth_methods_supported` picks the client
//! authentication when `auth_method` is not configured and a secret is set:
//! `client_secret_basic` when listed (or when the list is absent, its RFC
//! 8414 default), else `client_secret_post`.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use tokensmith_core::{
    HttpSettings, ProviderContext, SharedClock, TokenEndpoint, TokenError, Url, check_url,
    fetch_json,
};
use tokio::sync::OnceCell;

/// Where the token endpoint comes from: `token_url`, or discovery from
/// `issuer`.
pub(crate) enum EndpointSource {
    /// `token_url`, with the configured (or default) client authentication.
    Configured(TokenEndpoint),
    /// Discovered from `issuer` on first use.
    Discovered(Box<Discovery>),
}

impl fmt::Debug for EndpointSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Configured(endpoint) => fmt::Debug::fmt(endpoint, f),
            Self::Discovered(discovery) => fmt::Debug::fmt(discovery, f),
        }
    }
}

impl EndpointSource {
    /// `token_url` or `issuer` (exactly one of them), validated without
    /// network.
    pub(crate) fn from_context(
        ctx: &ProviderContext,
        issuer: Option<&str>,
    ) -> Result<Self, TokenError> {
        match (issuer, ctx.common().token_url.is_some()) {
            (Some(_), true) => {
                Err(ctx.error("issuer", "set either token_url or issuer (discovery), not both"))
            }
            (Some(issuer), false) => {
                Discovery::new(ctx, issuer).map(|d| Self::Discovered(Box::new(d)))
            }
            (None, true) => ctx.endpoint().map(Self::Configured),
            (None, false) => {
                Err(ctx.error("token_url", "missing field `token_url` (or `issuer` for discovery)"))
            }
        }
    }

    /// The token endpoint, and whether its discovery document prefers
    /// `client_secret_post` (lists it, and not `client_secret_basic`).
    pub(crate) async fn resolve(&self) -> Result<(&TokenEndpoint, bool), TokenError> {
        match self {
            Self::Configured(endpoint) => Ok((endpoint, false)),
            Self::Discovered(discovery) => {
                let found = discovery.resolve().await?;
                Ok((&found.endpoint, found.prefers_post))
            }
        }
    }
}

/// Discovery of one provider's token endpoint from its issuer.
pub(crate) struct Discovery {
    provider: Arc<str>,
    issuer: String,
    issuer_url: Url,
    settings: HttpSettings,
    clock: SharedClock,
    found: OnceCell<Found>,
}

/// The fields of an RFC 8414 / `OpenID` Provider metadata document that
/// tokensmith reads; the rest are ignored.
#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    issuer: String,
    token_endpoint: Option<String>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// What the metadata document said.
struct Found {
    endpoint: TokenEndpoint,
    /// `client_secret_post` is listed and `client_secret_basic` is not.
    prefers_post: bool,
}

impl fmt::Debug for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discovery")
            .field("issuer", &self.issuer)
            .field("token_endpoint", &self.found.get().map(|found| found.endpoint.url().as_str()))
            .finish_non_exhaustive()
    }
}

impl Discovery {
    /// Validates `issuer` (no network).
    fn new(ctx: &ProviderContext, issuer: &str) -> Result<Self, TokenError> {
        let url =
            Url::parse(issuer).map_err(|e| ctx.error("issuer", format!("invalid URL: {e}")))?;
        let settings = ctx.http_settings();
        check_url(ctx.name(), "issuer", &url, settings.allow_insecure_http)?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ctx.error("issuer", "an issuer has no query or fragment (RFC 8414 §2)"));
        }
        Ok(Self {
            provider: ctx.name().into(),
            issuer: issuer.to_owned(),
            issuer_url: url,
            settings,
            clock: ctx.clock().clone(),
            found: OnceCell::new(),
        })
    }

    async fn resolve(&self) -> Result<&Found, TokenError> {
        self.found.get_or_try_init(|| self.discover()).await
    }

    async fn discover(&self) -> Result<Found, TokenError> {
        let provider = &*self.provider;
        let [rfc8414, openid] = well_known_urls(&self.issuer_url);
        let document = match fetch_json(provider, &rfc8414, &self.settings, &*self.clock).await {
            Err(TokenError::InvalidResponse { status: 400..=499, .. }) => {
                fetch_json(provider, &openid, &self.settings, &*self.clock).await.map_err(|e| {
                    match e {
                        TokenError::InvalidResponse {
                            status: status @ 400..=499, body, ..
                        } => {
                            let reason = format!(
                                "no discovery document for issuer {} (HTTP 4xx at {} and {})",
                                self.issuer,
                                rfc8414.path(),
                                openid.path()
                            );
                            TokenError::invalid_response(
                                provider,
                                status,
                                reason,
                                body.as_str().as_bytes(),
                            )
                        }
                        other => other,
                    }
                })?
            }
            other => other?,
        };
        self.read(&document)
    }

    /// Reads the metadata document.
    fn read(&self, document: &Value) -> Result<Found, TokenError> {
        let provider = &*self.provider;
        let invalid = |reason: String| {
            TokenError::invalid_response(provider, 200, reason, document.to_string().as_bytes())
        };
        let metadata = Metadata::deserialize(document).map_err(|e| {
            invalid(format!("the discovery document is not RFC 8414 metadata: {e}"))
        })?;
        let issuer = &metadata.issuer;
        if !same_issuer(issuer, &self.issuer) {
            return Err(invalid(format!(
                "the discovery document names issuer {issuer:?}, not the configured {:?} (RFC 8414 §3.3)",
                self.issuer
            )));
        }
        let token_endpoint = metadata
            .token_endpoint
            .ok_or_else(|| invalid("the discovery document has no token_endpoint".to_owned()))?;
        let url = Url::parse(&token_endpoint)
            .map_err(|e| invalid(format!("the discovered token_endpoint is not a URL: {e}")))?;
        check_url(provider, "issuer", &url, self.settings.allow_insecure_http).map_err(
            |e| match e {
                TokenError::Config { provider, field, message, .. } => TokenError::config(
                    provider.as_deref(),
                    field.as_deref(),
                    format!("the discovered token_endpoint: {message}"),
                ),
                other => other,
            },
        )?;
        // No downgrade: what an https issuer names must be https too, even on
        // loopback or with allow_insecure_http, or the client secret would
        // travel in cleartext on the word of one document.
        if self.issuer_url.scheme() == "https" && url.scheme() != "https" {
            return Err(TokenError::config(
                Some(provider),
                Some("issuer"),
                format!(
                    "the discovered token_endpoint {} is not https while the issuer is: refused (credentials are never sent in cleartext)",
                    url.origin().ascii_serialization()
                ),
            ));
        }
        let prefers_post = metadata.token_endpoint_auth_methods_supported.is_some_and(|m| {
            let listed = |name: &str| m.iter().any(|method| method == name);
            !listed("client_secret_basic") && listed("client_secret_post")
        });
        let endpoint = TokenEndpoint::new(provider, url, &self.settings, self.clock.clone())?;
        Ok(Found { endpoint, prefers_post })
    }
}

/// The issuer in the document matches the configured one: exactly, or up to
/// the trailing slash of an empty path (`https://as.example` and
/// `https://as.example/` are the same URL).
fn same_issuer(found: &str, configured: &str) -> bool {
    found == configured
        || (found.trim_end_matches('/') == configured.trim_end_matches('/')
            && Url::parse(found).is_ok_and(|u| u.path() == "/"))
}

/// The RFC 8414 and OIDC Discovery metadata URLs of `issuer`.
fn well_known_urls(issuer: &Url) -> [Url; 2] {
    let path = issuer.path().trim_end_matches('/');
    let mut rfc8414 = issuer.clone();
    rfc8414.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    let mut openid = issuer.clone();
    openid.set_path(&format!("{path}/.well-known/openid-configuration"));
    [rfc8414, openid]
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokensmith_core::{Registry, SystemClock};

    use super::*;

    #[test]
    fn metadata_urls_follow_rfc8414_and_openid_discovery() {
        for (issuer, rfc8414, openid) in [
            (
                "https://as.example",
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration",
            ),
            (
                "https://as.example/",
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration",
            ),
            (
                "https://as.example:8443/tenant/v2.0",
                "https://as.example:8443/.well-known/oauth-authorization-server/tenant/v2.0",
                "https://as.example:8443/tenant/v2.0/.well-known/openid-configuration",
            ),
            (
                "http://127.0.0.1:9000/realms/x/",
                "http://127.0.0.1:9000/.well-known/oauth-authorization-server/realms/x",
                "http://127.0.0.1:9000/realms/x/.well-known/openid-configuration",
            ),
        ] {
            let [a, b] = well_known_urls(&Url::parse(issuer).unwrap());
            assert_eq!((a.as_str(), b.as_str()), (rfc8414, openid), "{issuer}");
        }
    }

    #[test]
    fn issuer_comparison_is_exact_but_for_an_empty_path() {
        for (found, configured, same) in [
            ("https://as.example", "https://as.example", true),
            ("https://as.example/", "https://as.example", true),
            ("https://as.example", "https://as.example/", true),
            ("https://as.example/t", "https://as.example/t/", false),
            ("https://as.example/t", "https://as.example/u", false),
            ("https://evil.example", "https://as.example", false),
            ("", "https://as.example", false),
        ] {
            assert_eq!(same_issuer(found, configured), same, "{found} vs {configured}");
        }
    }

    /// An https issuer's document naming a plain-http token endpoint, even
    /// on loopback or with `allow_insecure_http`, is refused: the secret
    /// would travel in cleartext.
    #[test]
    fn an_https_issuer_never_discovers_a_plain_http_endpoint() {
        let discovery = |extra: &str| {
            let toml = format!(
                "kind = \"oauth2\"\nissuer = \"https://as.example\"\nclient_id = \"id\"\nclient_secret = \"s\"\n{extra}"
            );
            let ctx =
                ProviderContext::new("p", toml.parse().unwrap(), Arc::new(SystemClock)).unwrap();
            Discovery::new(&ctx, "https://as.example").unwrap()
        };
        let document = |endpoint: &str| serde_json::json!({"issuer": "https://as.example", "token_endpoint": endpoint});
        for extra in ["", "allow_insecure_http = true"] {
            for endpoint in
                ["http://127.0.0.1:8080/token", "http://localhost/token", "http://as.example/token"]
            {
                let Err(err) = discovery(extra).read(&document(endpoint)) else {
                    panic!("{extra}: {endpoint} was accepted");
                };
                let TokenError::Config { field, message, .. } = &err else { panic!("{err}") };
                assert_eq!(field.as_deref(), Some("issuer"), "{err}");
                assert!(message.contains("discovered token_endpoint"), "{err}");
                assert!(message.contains("https"), "{err}");
            }
            let found = discovery(extra).read(&document("https://as.example/token")).unwrap();
            assert_eq!(found.endpoint.url().as_str(), "https://as.example/token");
        }
    }

    #[test]
    fn issuer_config_is_validated_at_load() {
        let load = |fields: &str| {
            let toml = format!(
                "[providers.p]\nkind = \"oauth2\"\nclient_id = \"id\"\nclient_secret = \"s\"\n{fields}"
            );
            Registry::new().with(crate::OAuth2).load_str(&toml).map(|_| ())
        };
        for (fields, field, needle) in [
            ("issuer = \"http://as.example\"", "issuer", "plain http"),
            ("issuer = \"https://as.example?x=1\"", "issuer", "no query"),
            ("issuer = \"not a url\"", "issuer", "invalid URL"),
            (
                "issuer = \"https://as.example\"\ntoken_url = \"https://as.example/token\"",
                "issuer",
                "not both",
            ),
            ("", "token_url", "or `issuer`"),
        ] {
            let err = load(fields).unwrap_err();
            let TokenError::Config { field: got, message, .. } = &err else { panic!("{err}") };
            assert_eq!(got.as_deref(), Some(field), "{fields}: {err}");
            assert!(message.contains(needle), "{fields}: {err}");
        }
        load("issuer = \"https://as.example/tenant\"").unwrap();
    }
}
