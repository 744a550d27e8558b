//! [`RecordedRequest`]: what a client sent to an emulator, for assertions.

use std::fmt;

use url::form_urlencoded;

use crate::server::Request;

/// One request to an emulator's token endpoint, as received.
///
/// Tests use it to check what an adapter sends, e.g. the exact
/// `Authorization` header or that no header was sent:
///
/// ```
/// # async fn demo() -> std::io::Result<()> {
/// use tokensmith_testkit::{Emulator, Vendor};
///
/// let emulator = Emulator::start(Vendor::ConfigApi).await?;
/// // ... let the code under test fetch a token ...
/// if let Some(request) = emulator.last_request() {
///     assert_eq!(request.header("authorization"), None);
///     assert_eq!(request.form_value("grant_type").as_deref(), Some("client_credentials"));
/// }
/// # Ok(()) }
/// ```
///
/// It holds whatever the client sent, secrets included, so its `Debug`
/// shows only the method, path, header names and form field names.
#[derive(Clone)]
pub struct RecordedRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RecordedRequest {
    pub(crate) fn new(request: &Request, target: String) -> Self {
        let headers = request
            .headers
            .iter()
            .map(|(name, value)| {
                (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
            })
            .collect();
        Self {
            method: request.method.as_str().to_owned(),
            target,
            headers,
            body: request.body.to_vec(),
        }
    }

    /// The HTTP method, e.g. `POST`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target: the path and any query string.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Every header as (lowercase name, value), in the order received.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The first value of the header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body decoded as `application/x-www-form-urlencoded`, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }

    /// The first value of the form field `name`.
    pub fn form_value(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(&self.body).find(|(n, _)| n == name).map(|(_, v)| v.into_owned())
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        let fields: Vec<String> =
            form_urlencoded::parse(&self.body).map(|(n, _)| n.into_owned()).collect();
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.target.split('?').next().unwrap_or_default())
            .field("headers", &headers)
            .field("form_fields", &fields)
            .finish_non_exhaustive()
    }
}
