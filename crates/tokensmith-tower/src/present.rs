//! How a token goes on a request: the one place the layer and the
//! interceptor build the header.

use http::header::{AUTHORIZATION, HeaderName, HeaderValue, InvalidHeaderValue};
use tokensmith_core::AccessToken;

/// The header carrying `token`: `Authorization: <token_type> <token>`, its
/// value marked sensitive. Fails only for a token holding bytes a header
/// cannot carry.
pub(crate) fn present(
    token: &AccessToken,
) -> Result<(HeaderName, HeaderValue), InvalidHeaderValue> {
    Ok((AUTHORIZATION, token.authorization_header()?))
}
