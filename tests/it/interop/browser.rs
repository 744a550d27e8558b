//! Plays the user agent of the authorization code flow against oidc-provider:
//! the authorization request with PKCE (S256), the login and consent forms of
//! its development interactions, and the redirect carrying the code.
//!
//! Cookies are kept by hand (name, path, value): enough for one server on
//! loopback, and no cookie-store dependency.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use sha2::{Digest, Sha256};
use url::Url;

use super::server::InteropServer;

/// The most requests one authorization may take (auth, login, resume,
/// consent, resume and a few spare).
const MAX_STEPS: usize = 12;

/// A PKCE pair (RFC 7636).
pub(crate) struct Pkce {
    /// The `code_verifier` (secret, sent with the code).
    pub(crate) verifier: String,
    /// `BASE64URL(SHA256(verifier))`.
    pub(crate) challenge: String,
}

impl Pkce {
    /// A pair for `verifier` (43 to 128 unreserved characters).
    pub(crate) fn s256(verifier: &str) -> Self {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self { verifier: verifier.to_owned(), challenge }
    }
}

/// What the authorization request asks for.
pub(crate) struct AuthRequest<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) redirect_uri: &'a str,
    pub(crate) scope: &'a str,
    pub(crate) state: &'a str,
    pub(crate) pkce: &'a Pkce,
    /// The account the test logs in as.
    pub(crate) login: &'a str,
}

#[derive(Default)]
struct CookieJar {
    cookies: Vec<(String, String, String)>, // name, path, value
}

impl CookieJar {
    fn store(&mut self, resp: &reqwest::Response) {
        for header in resp.headers().get_all(SET_COOKIE) {
            let Ok(header) = header.to_str() else { continue };
            let mut parts = header.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let path = parts
                .filter_map(|a| a.trim().split_once('='))
                .find(|(k, _)| k.eq_ignore_ascii_case("path"))
                .map_or("/", |(_, v)| v);
            let (name, value, path) = (name.trim(), value.trim(), path.trim());
            self.cookies.retain(|(n, p, _)| !(n == name && p == path));
            // An empty value is how the server deletes a cookie.
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), path.to_owned(), value.to_owned()));
            }
        }
    }

    fn header(&self, url: &Url) -> Option<String> {
        let cookies: Vec<String> = self
            .cookies
            .iter()
            .filter(|(_, path, _)| url.path().starts_with(path.as_str()))
            .map(|(name, _, value)| format!("{name}={value}"))
            .collect();
        (!cookies.is_empty()).then(|| cookies.join("; "))
    }
}

/// Runs the authorization code flow up to the redirect and returns the code.
pub(crate) async fn authorize(server: &InteropServer, req: &AuthRequest<'_>) -> String {
    let http = server.http();
    let discovery = http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery request")
        .text()
        .await
        .expect("discovery body");
    let discovery: serde_json::Value = serde_json::from_str(&discovery).expect("discovery JSON");
    let mut url =
        Url::parse(discovery["authorization_endpoint"].as_str().expect("authorization_endpoint"))
            .expect("authorization_endpoint is a URL");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", req.client_id)
        .append_pair("redirect_uri", req.redirect_uri)
        .append_pair("scope", req.scope)
        .append_pair("state", req.state)
        .append_pair("code_challenge", &req.pkce.challenge)
        .append_pair("code_challenge_method", "S256")
        // offline_access (a refresh token) is only granted with explicit consent.
        .append_pair("prompt", "consent");

    let mut jar = CookieJar::default();
    let mut form: Option<Vec<(&str, &str)>> = None;
    for _ in 0..MAX_STEPS {
        let mut builder = match &form {
            Some(fields) => http.post(url.clone()).form(fields),
            None => http.get(url.clone()),
        };
        if let Some(cookie) = jar.header(&url) {
            builder = builder.header(COOKIE, cookie);
        }
        let resp = builder.send().await.expect("authorization step");
        jar.store(&resp);
        let status = resp.status();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .expect("redirect has a Location");
            let next = url.join(location).expect("Location is a URL");
            if next.as_str().starts_with(req.redirect_uri) {
                return code_from_redirect(server, &next, req.state);
            }
            url = next;
            form = None;
            continue;
        }
        let body = resp.text().await.expect("interaction page");
        assert_eq!(status, StatusCode::OK, "unexpected page at {url}: {body}\n{}", server.stderr());
        let action = attribute(&body, "action=\"").expect("interaction page has a form");
        url = url.join(&action).expect("form action is a URL");
        form = Some(if body.contains("name=\"prompt\" value=\"login\"") {
            vec![("prompt", "login"), ("login", req.login), ("password", "any password")]
        } else if body.contains("name=\"prompt\" value=\"consent\"") {
            vec![("prompt", "consent")]
        } else {
            panic!("unknown interaction page at {url}: {body}");
        });
    }
    panic!("no authorization code after {MAX_STEPS} requests; last URL {url}\n{}", server.stderr())
}

fn code_from_redirect(server: &InteropServer, redirect: &Url, state: &str) -> String {
    let param =
        |name: &str| redirect.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    if let Some(error) = param("error") {
        panic!(
            "authorization failed: {error}: {}\n{}",
            param("error_description").unwrap_or_default(),
            server.stderr()
        );
    }
    assert_eq!(param("state").as_deref(), Some(state), "state round-trips");
    // RFC 9207: the server names itself in the response.
    assert_eq!(param("iss").as_deref(), Some(server.issuer()), "iss in the authorization response");
    param("code").expect("redirect carries a code")
}

/// The value of the first `prefix…"` in `html`, HTML entities for `&` undone.
fn attribute(html: &str, prefix: &str) -> Option<String> {
    let start = html.find(prefix)? + prefix.len();
    let len = html[start..].find('"')?;
    Some(html[start..start + len].replace("&amp;", "&"))
}
