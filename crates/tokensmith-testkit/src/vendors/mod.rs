//! The vendors' token endpoints: the checks every vendor makes, the
//! vendor-neutral [`Problem`], and each vendor's own error shape.

mod configapi;
mod deyel;
mod oauth2;
mod soti;

use hyper::header::{CACHE_CONTROL, HeaderValue, PRAGMA, WWW_AUTHENTICATE};
use hyper::{Method, Response, StatusCode};

use crate::emulator::Shared;
use crate::server::{EmuBody, Form, Request, is_form, json_string, response, status_code};
use crate::vendor::Vendor;

/// An RFC 6749 §5.2 error code; each vendor renders it its own way.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Code {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    ServerError,
    TemporarilyUnavailable,
}

impl Code {
    fn as_str(self) -> &'static str {
        match self {
            Code::InvalidRequest => "invalid_request",
            Code::InvalidClient => "invalid_client",
            Code::InvalidGrant => "invalid_grant",
            Code::UnauthorizedClient => "unauthorized_client",
            Code::UnsupportedGrantType => "unsupported_grant_type",
            Code::InvalidScope => "invalid_scope",
            Code::ServerError => "server_error",
            Code::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// Why a request is refused, before the vendor renders it.
#[derive(Debug)]
pub(crate) struct Problem {
    code: Code,
    message: String,
    /// Overrides the vendor's status for `code`.
    status: Option<StatusCode>,
}

impl Problem {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Problem { code, message: message.into(), status: None }
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }
}

/// Shorthand for an `Err(Problem)`.
pub(crate) fn refuse<T>(code: Code, message: impl Into<String>) -> Result<T, Problem> {
    Err(Problem::new(code, message))
}

/// The value of a required form parameter.
pub(crate) fn required<'f>(form: &'f Form, name: &str) -> Result<&'f str, Problem> {
    match form.get(name) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => refuse(Code::InvalidRequest, format!("missing parameter `{name}`")),
    }
}

/// Whether the body carries a client credential parameter.
pub(crate) fn has_body_credentials(form: &Form) -> bool {
    form.pairs().iter().any(|(name, _)| name == "client_id" || name == "client_secret")
}

/// Answers a token request normally (no fault).
pub(crate) fn answer(shared: &Shared, request: &Request) -> Response<EmuBody> {
    let vendor = shared.vendor;
    let result = common_checks(request).and_then(|form| match vendor {
        Vendor::SotiConnect => soti::handle(shared, request, &form),
        Vendor::ConfigApi => configapi::handle(shared, request, &form),
        Vendor::OAuth2 => oauth2::handle(shared, request, &form),
        Vendor::Deyel => deyel::handle(shared, request, &form),
    });
    match result {
        Ok(body) => {
            shared.count_issued();
            let mut resp = response(StatusCode::OK, success_content_type(vendor), body);
            resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp.headers_mut().insert(PRAGMA, HeaderValue::from_static("no-cache"));
            resp
        }
        Err(problem) => error_response(vendor, &problem),
    }
}

/// The answer of the `Location` of `Fault::Redirect`: a token, so a client
/// that follows the redirect visibly gets one.
pub(crate) fn redirect_target(shared: &Shared) -> Response<EmuBody> {
    let body = format!(
        r#"{{"access_token":{},"token_type":"bearer","expires_in":3600}}"#,
        json_string(&shared.random_token("redirected-", 16))
    );
    response(StatusCode::OK, "application/json", body)
}

/// `Fault::Status(status)` (and 429): the vendor's error body with `status`.
pub(crate) fn fault_status(vendor: Vendor, status: u16) -> Response<EmuBody> {
    let status = status_code(status);
    let problem = match status.as_u16() {
        429 => Problem::new(Code::TemporarilyUnavailable, "Too many requests, retry later"),
        503 => Problem::new(Code::TemporarilyUnavailable, "The service is temporarily unavailable"),
        401 | 403 => Problem::new(Code::InvalidClient, "Access denied"),
        500.. => Problem::new(Code::ServerError, "Internal server error"),
        _ => Problem::new(Code::InvalidRequest, "The request was refused"),
    };
    error_response(vendor, &problem.with_status(status))
}

/// Method, query string, content type and form syntax: checked alike by
/// every vendor, each answering with its own error shape.
fn common_checks(request: &Request) -> Result<Form, Problem> {
    if request.method != Method::POST {
        return Err(Problem::new(Code::InvalidRequest, "The token endpoint accepts only POST")
            .with_status(StatusCode::METHOD_NOT_ALLOWED));
    }
    if request.query.as_deref().is_some_and(|q| !q.is_empty()) {
        return refuse(
            Code::InvalidRequest,
            "Parameters belong in the form body, not in the URL query",
        );
    }
    if !is_form(&request.headers) {
        return refuse(
            Code::InvalidRequest,
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    Form::parse(&request.body)
        .or_else(|name| refuse(Code::InvalidRequest, format!("Parameter `{name}` is repeated")))
}

fn success_content_type(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::SotiConnect => "application/json; charset=utf-8",
        Vendor::ConfigApi | Vendor::OAuth2 | Vendor::Deyel => "application/json",
    }
}

/// Renders `problem` in the vendor's own error shape and status.
fn error_response(vendor: Vendor, problem: &Problem) -> Response<EmuBody> {
    let status = problem.status.unwrap_or(match (vendor, problem.code) {
        (Vendor::OAuth2, Code::InvalidClient | Code::UnauthorizedClient) => StatusCode::FORBIDDEN,
        (_, Code::InvalidClient) => StatusCode::UNAUTHORIZED,
        (_, Code::ServerError) => StatusCode::INTERNAL_SERVER_ERROR,
        (_, Code::TemporarilyUnavailable) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    });
    let body = match vendor {
        Vendor::SotiConnect | Vendor::ConfigApi => rfc6749_error(problem.code, &problem.message),
        Vendor::OAuth2 => oauth2::error_body(status, &problem.message),
        Vendor::Deyel => deyel::error_body(problem.code, &problem.message),
    };
    let mut resp = response(status, success_content_type(vendor), body);
    if status == StatusCode::UNAUTHORIZED && vendor == Vendor::SotiConnect {
        resp.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        resp.headers_mut().insert(hyper::header::ALLOW, HeaderValue::from_static("POST"));
    }
    resp
}

/// `{"error":"…","error_description":"…"}` (RFC 6749 §5.2).
fn rfc6749_error(code: Code, message: &str) -> String {
    format!(
        r#"{{"error":{},"error_description":{}}}"#,
        json_string(code.as_str()),
        json_string(message)
    )
}
