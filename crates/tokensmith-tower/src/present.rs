//! How a token goes on a request: the one place the layer and the
//! interceptor build the header.

use http::header::{HeaderName, HeaderValue, InvalidHeaderValue};
use tokensmith_core::AccessToken;

/// The header carrying `token`, as the token says it is presented
/// (contract §7; `Authorization: <token_type> <token>` by default), its
/// value marked sensitive. Fails only for a token holding bytes a header
/// cannot carry.
pub(crate) fn present(
    token: &AccessToken,
) -> Result<(HeaderName, HeaderValue), InvalidHeaderValue> {
    token.header()
}
