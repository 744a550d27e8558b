//! A [`reqwest_middleware`] middleware that puts a tokensmith access token on
//! every request, and recovers from a refused token by itself.
//!
#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

use std::fmt;

use async_trait::async_trait;
use http::Extensions;
use reqwest::header::WWW_AUTHENTICATE;
use reqwest::{Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};
use tokensmith_core::{AccessToken, SharedTokenProvider};

/// Presents a token from a [`TokenProvider`](tokensmith_core::TokenProvider)
/// on every request, and on a refusal invalidates it and retries once.
///
/// For each request it
///
/// 1. asks the provider for a token (a cache hit, normally: the registry's
///    providers are [`CachedProvider`](tokensmith_core::CachedProvider)s)
///    and sets the header the token's
///    [presentation](tokensmith_core::AccessToken::header) names
///    (`Authorization: Bearer …` for most vendors), replacing one the
///    request already had;
/// 2. sends the request;
/// 3. when the answer says the token was refused — a `401`, or another
///    status but `403` whose `WWW-Authenticate` challenge says
///    `error="invalid_token"` — [invalidates](tokensmith_core::TokenProvider::invalidate)
///    exactly the token it sent, so the next `token()` fetches a fresh one;
/// 4. if the request can be sent again ([`Request::try_clone`]: its body is
///    not a stream) and the provider hands out a different token, sends it
///    once more with that token and returns that answer, whatever it is.
///
/// So it never loops: at most two requests per call. A request with a
/// streaming body is never sent twice (the refusal goes back to the caller,
/// and the token is still invalidated for the next request), and a `403`
/// (the token is valid but not allowed) is never retried.
///
/// A provider error (the token endpoint refused the credentials, or could
/// not be reached) fails the request before it is sent, as
/// [`reqwest_middleware::Error::Middleware`] holding the
/// [`TokenError`](tokensmith_core::TokenError): read it back with
/// [`token_error`]. Errors carry no secret.
///
/// ```
/// use std::sync::Arc;
/// use tokensmith_core::{AccessToken, Clock as _, SharedTokenProvider, SystemClock};
/// use tokensmith_reqwest::TokenMiddleware;
///
/// # fn demo(client: reqwest::Client) {
/// // Usually `providers.get("api")?` from a registry.
/// let provider: SharedTokenProvider = Arc::new(AccessToken::builder("abc", SystemClock.now()).build());
/// let client = reqwest_middleware::ClientBuilder::new(client)
///     .with(TokenMiddleware::new(provider))
///     .build();
/// # let _ = client; }
/// ```
#[derive(Clone)]
pub struct TokenMiddleware {
    provider: SharedTokenProvider,
}

impl TokenMiddleware {
    /// A middleware presenting the tokens of `provider`.
    pub fn new(provider: SharedTokenProvider) -> Self {
        Self { provider }
    }

    /// The provider the tokens come from.
    pub fn provider(&self) -> &SharedTokenProvider {
        &self.provider
    }

    async fn token(&self) -> reqwest_middleware::Result<AccessToken> {
        self.provider.token().await.map_err(reqwest_middleware::Error::middleware)
    }
}

impl fmt::Debug for TokenMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenMiddleware").field("provider", &self.provider).finish()
    }
}

#[async_trait]
impl Middleware for TokenMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let token = self.token().await?;
        // Taken before the header is set, so the replay carries none of the
        // refused token. `None` for a streaming body: it is sent only once.
        let replay = request.try_clone();
        present(&mut request, &token)?;
        let response = next.clone().run(request, extensions).await?;
        if !refuses_token(&response) {
            return Ok(response);
        }
        self.provider.invalidate(&token);
        let Some(mut replay) = replay else {
            tracing::debug!(
                status = response.status().as_u16(),
                "the token was refused and invalidated; the request has a streaming body, so it is not sent again"
            );
            return Ok(response);
        };
        let fresh = self.token().await?;
        if fresh.same_token(&token) {
            // A provider that cannot renew (a fixed token): sending the
            // same token again would be refused again.
            return Ok(response);
        }
        tracing::debug!(
            status = response.status().as_u16(),
            "the token was refused and invalidated; sending the request once more with a fresh one"
        );
        drop(response);
        present(&mut replay, &fresh)?;
        next.run(replay, extensions).await
    }
}

/// Sets the token's header on `request`.
fn present(request: &mut Request, token: &AccessToken) -> reqwest_middleware::Result<()> {
    let (name, value) = token.header().map_err(|e| {
        reqwest_middleware::Error::Middleware(
            anyhow::Error::new(e)
                .context("the access token holds bytes an HTTP header cannot carry"),
        )
    })?;
    request.headers_mut().insert(name, value);
    Ok(())
}

/// Whether `response` says the token was refused: a 401, or any status but
/// 403 with a challenge saying `error="invalid_token"`.
fn refuses_token(response: &Response) -> bool {
    match response.status() {
        StatusCode::UNAUTHORIZED => true,
        StatusCode::FORBIDDEN => false,
        _ => response
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(says_invalid_token),
    }
}

/// Whether a `WWW-Authenticate` value carries the auth-param
/// `error=invalid_token` (quoted or not, any challenge scheme; RFC 9110
/// §11.6.1, RFC 6750 §3).
fn says_invalid_token(header: &str) -> bool {
    let separators = |c: char| c == ',' || c == ' ' || c == '\t';
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches(separators);
        if rest.is_empty() {
            return false;
        }
        let end = rest.find(|c: char| c == '=' || separators(c)).unwrap_or(rest.len());
        let name = &rest[..end];
        rest = rest[end..].trim_start_matches([' ', '\t']);
        let Some(after) = rest.strip_prefix('=') else { continue };
        let after = after.trim_start_matches([' ', '\t']);
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            quoted_string(quoted)
        } else {
            let end = after.find(separators).unwrap_or(after.len());
            (after[..end].to_owned(), &after[end..])
        };
        if name.eq_ignore_ascii_case("error") && value == "invalid_token" {
            return true;
        }
        rest = remaining;
    }
}

/// The value of a quoted-string whose opening quote is already consumed,
/// and what follows its closing quote.
fn quoted_string(text: &str) -> (String, &str) {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (value, &text[i + 1..]),
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            _ => value.push(c),
        }
    }
    (value, "")
}

/// The [`TokenError`](tokensmith_core::TokenError) behind a failed request,
/// when the provider failed (rather than the request itself).
///
/// ```
/// // The vendor refused the credentials: a config problem, not a network one.
/// fn is_refused_credentials(err: &reqwest_middleware::Error) -> bool {
///     tokensmith_reqwest::token_error(err).is_some_and(|e| e.is_rejected())
/// }
/// ```
pub fn token_error(error: &reqwest_middleware::Error) -> Option<&tokensmith_core::TokenError> {
    match error {
        reqwest_middleware::Error::Middleware(e) => e.downcast_ref(),
        reqwest_middleware::Error::Reqwest(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::says_invalid_token;

    #[test]
    fn the_invalid_token_error_is_found_in_any_spelling_and_nowhere_else() {
        for yes in [
            r#"Bearer error="invalid_token""#,
            r#"Bearer realm="api", error="invalid_token", error_description="expired""#,
            r"Bearer error=invalid_token",
            r#"Bearer ERROR = "invalid_token""#,
            r#"Basic realm="x", Bearer error="invalid_token""#,
            r#"DPoP algs="ES256", error="invalid_token""#,
            r#"Bearer error_description="a \"quoted\" word", error="invalid_token""#,
        ] {
            assert!(says_invalid_token(yes), "{yes}");
        }
        for no in [
            "Bearer",
            r#"Bearer realm="api""#,
            r#"Bearer error="insufficient_scope""#,
            r#"Bearer error="invalid_request""#,
            r#"Bearer error_description="error=\"invalid_token\"""#,
            r#"Bearer realm="error=invalid_token""#,
            r#"Bearer error="invalid_token_x""#,
            r#"Bearer xerror="invalid_token""#,
            r#"Bearer error=""#,
            "",
        ] {
            assert!(!says_invalid_token(no), "{no}");
        }
    }
}
