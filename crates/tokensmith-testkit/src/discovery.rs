//! The scoped OAuth 2.0 emulator's authorization server metadata (RFC 8414,
//! OIDC Discovery 1.0): what [`Discovery`] says and where it is served.

use std::fmt::Write as _;

use hyper::{Method, Response, StatusCode};

use crate::emulator::Shared;
use crate::server::{EmuBody, json_string, response};
use crate::vendor::Vendor;

/// The RFC 8414 §3 well-known suffix.
const RFC8414: &str = "/.well-known/oauth-authorization-server";
/// The OIDC Discovery §4 well-known suffix.
const OPENID: &str = "/.well-known/openid-configuration";

/// What the scoped OAuth 2.0 emulator's discovery document says and where it
/// is served, set with [`Emulator::set_discovery`](crate::Emulator::set_discovery).
///
/// By default ([`Discovery::new`]) the document is served at both
/// `/.well-known/oauth-authorization-server` (RFC 8414) and
/// `/.well-known/openid-configuration` (OIDC) of the emulator's
/// [`issuer`](crate::Emulator::issuer), names that issuer and the token
/// endpoint, and lists `client_secret_basic`, `client_secret_post` and `none`.
/// The setters bend it the ways real servers do.
///
/// ```
/// use tokensmith_testkit::Discovery;
///
/// // Only the OpenID location, advertising only client_secret_post.
/// let discovery = Discovery::new().openid_only().auth_methods(Some(&["client_secret_post"]));
/// # let _ = discovery;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovery {
    rfc8414: bool,
    openid: bool,
    issuer: Option<String>,
    token_endpoint: Option<String>,
    auth_methods: Option<Vec<String>>,
}

impl Default for Discovery {
    fn default() -> Self {
        Self::new()
    }
}

impl Discovery {
    /// The document at both locations, naming the emulator.
    pub fn new() -> Self {
        Self {
            rfc8414: true,
            openid: true,
            issuer: None,
            token_endpoint: None,
            auth_methods: Some(
                ["client_secret_basic", "client_secret_post", "none"].map(str::to_owned).to_vec(),
            ),
        }
    }

    /// No document at either location (both answer 404).
    pub fn none() -> Self {
        Self { rfc8414: false, openid: false, ..Self::new() }
    }

    /// Only at `<issuer>/.well-known/openid-configuration`: the RFC 8414
    /// location answers 404, as many `OpenID` providers do.
    #[must_use]
    pub fn openid_only(mut self) -> Self {
        self.rfc8414 = false;
        self
    }

    /// Only at the RFC 8414 location.
    #[must_use]
    pub fn rfc8414_only(mut self) -> Self {
        self.openid = false;
        self
    }

    /// Names this `issuer` instead of the emulator's (a document a client
    /// must refuse, RFC 8414 §3.3).
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Names this `token_endpoint` instead of the emulator's.
    #[must_use]
    pub fn token_endpoint(mut self, url: impl Into<String>) -> Self {
        self.token_endpoint = Some(url.into());
        self
    }

    /// The `token_endpoint_auth_methods_supported` list; `None` leaves the
    /// field out (RFC 8414's default is then `client_secret_basic`).
    #[must_use]
    pub fn auth_methods(mut self, methods: Option<&[&str]>) -> Self {
        self.auth_methods = methods.map(|m| m.iter().map(|&s| s.to_owned()).collect());
        self
    }

    /// The document as JSON.
    fn document(&self, shared: &Shared) -> String {
        let issuer = self.issuer.clone().unwrap_or_else(|| shared.base_url.clone());
        let token_endpoint = self
            .token_endpoint
            .clone()
            .unwrap_or_else(|| format!("{}{}", shared.base_url, shared.vendor.token_path()));
        let mut out = format!(
            "{{\n  \"issuer\": {},\n  \"token_endpoint\": {}",
            json_string(&issuer),
            json_string(&token_endpoint)
        );
        let list = |items: &[&str]| {
            let items: Vec<String> = items.iter().map(|s| json_string(s)).collect();
            format!("[{}]", items.join(", "))
        };
        if let Some(methods) = &self.auth_methods {
            let methods: Vec<&str> = methods.iter().map(String::as_str).collect();
            let _ =
                write!(out, ",\n  \"token_endpoint_auth_methods_supported\": {}", list(&methods));
        }
        for (name, values) in [
            (
                "grant_types_supported",
                &["client_credentials", "authorization_code", "refresh_token"][..],
            ),
            ("scopes_supported", &["read", "write", "openid"][..]),
            ("code_challenge_methods_supported", &["S256"][..]),
        ] {
            let _ = write!(out, ",\n  \"{name}\": {}", list(values));
        }
        out.push_str("\n}\n");
        out
    }
}

/// Answers a request for a path under `/.well-known/` (scoped OAuth 2.0
/// only; recorded for [`Emulator::discovery_requests`](crate::Emulator::discovery_requests)),
/// or `None` for any other path.
pub(crate) fn answer(shared: &Shared, method: &Method, path: &str) -> Option<Response<EmuBody>> {
    if shared.vendor != Vendor::OAuth2 || !path.contains("/.well-known/") {
        return None;
    }
    let discovery = shared.record_discovery(path);
    let found = (discovery.rfc8414 && path == RFC8414) || (discovery.openid && path == OPENID);
    Some(match (found, method) {
        (true, &Method::GET) => {
            response(StatusCode::OK, "application/json", discovery.document(shared))
        }
        (true, _) => response(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "Method Not Allowed\n",
        ),
        (false, _) => response(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "Not Found\n"),
    })
}
