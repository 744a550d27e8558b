//! Deyel: Basic `client_credentials` only; a JWT access token (issuer
//! `Deyel`) with `expires_in` 86400; errors as
//! `{"error_description": "Invalid client_id", "error": "Invalid_request"}`.

use super::{Code, Problem, has_body_credentials, refuse};
use crate::emulator::Shared;
use crate::server::{Basic, BasicEncoding, Form, Request, basic, json_string};
use crate::vendor::Vendor;

/// Deyel's answer to any client-authentication failure.
const INVALID_CLIENT_ID: &str = "Invalid client_id";

pub(super) fn handle(shared: &Shared, request: &Request, form: &Form) -> Result<String, Problem> {
    let creds = Vendor::Deyel.credentials();
    if has_body_credentials(form) {
        return refuse(
            Code::InvalidRequest,
            "Credentials must be sent in the Authorization: Basic header",
        );
    }
    match basic(&request.headers, BasicEncoding::Raw) {
        Basic::Credentials { id, secret }
            if id == creds.client_id() && Some(secret.as_str()) == creds.client_secret() => {}
        _ => return refuse(Code::InvalidClient, INVALID_CLIENT_ID),
    }
    let Some(grant) = form.get("grant_type").filter(|g| !g.is_empty()) else {
        return refuse(Code::InvalidRequest, "Invalid grant_type");
    };
    if grant != "client_credentials" {
        return refuse(Code::UnsupportedGrantType, "Unsupported grant_type");
    }
    let inner = shared.lock();
    let iat = inner.unix_now();
    let exp = iat.saturating_add(inner.expires_in());
    drop(inner);
    let payload = format!(
        r#"{{"iss":"Deyel","exp":{exp},"cdOrgUnit":"0000000001","grant_type":"client_credentials","company":"CST","jti":{},"iat":{iat},"sub":{}}}"#,
        json_string(&shared.random_token("", 16)),
        json_string(creds.client_id()),
    );
    let token = shared.jwt(r#"{"kid":"k1","alg":"RS256"}"#, &payload);
    Ok(format!(
        "{{\n    \"access_token\": {},\n    \"token_type\": \"Bearer\",\n    \"expires_in\": {}\n}}",
        json_string(&token),
        exp - iat
    ))
}

/// Deyel's error body: the description first, the code capitalised.
pub(super) fn error_body(code: Code, message: &str) -> String {
    let code = match code {
        Code::InvalidRequest | Code::InvalidClient => "Invalid_request",
        Code::InvalidGrant => "Invalid_grant",
        Code::UnauthorizedClient => "Unauthorized_client",
        Code::UnsupportedGrantType => "Unsupported_grant_type",
        Code::InvalidScope => "Invalid_scope",
        Code::ServerError => "Server_error",
        Code::TemporarilyUnavailable => "Temporarily_unavailable",
    };
    format!(
        "{{\n    \"error_description\": {},\n    \"error\": {}\n}}",
        json_string(message),
        json_string(code)
    )
}
