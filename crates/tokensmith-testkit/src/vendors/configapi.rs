//! configapi: `client_credentials` with `client_id`, `client_secret` and the
//! tenant `scope` in the form body, never an `Authorization` header; the
//! answer has a string `expires_in` and a trailing comma, as documented.

use hyper::header::AUTHORIZATION;

use super::{Code, Problem, refuse, required};
use crate::emulator::Shared;
use crate::server::{Form, Request, json_string};
use crate::vendor::Vendor;

pub(super) fn handle(shared: &Shared, request: &Request, form: &Form) -> Result<String, Problem> {
    let creds = Vendor::ConfigApi.credentials();
    if request.headers.contains_key(AUTHORIZATION) {
        return refuse(
            Code::InvalidRequest,
            "Client credentials belong in the form body; the Authorization header is not accepted",
        );
    }
    let grant = required(form, "grant_type")?;
    if grant != "client_credentials" {
        return refuse(Code::UnsupportedGrantType, format!("Unsupported grant_type `{grant}`"));
    }
    let client_id = required(form, "client_id")?;
    let client_secret = required(form, "client_secret")?;
    let scope = required(form, "scope")?;
    if client_id != creds.client_id() || Some(client_secret) != creds.client_secret() {
        return refuse(Code::InvalidClient, "The client id or secret is incorrect");
    }
    if Some(scope) != creds.scope() {
        return refuse(Code::InvalidScope, format!("Unknown tenant `{scope}`"));
    }
    let access_token = shared.random_token("", 96);
    let expires_in = shared.lock().expires_in();
    Ok(format!(
        "{{\n\"access_token\":{},\n\"token_type\":\"Bearer\",\n\"expires_in\":\"{expires_in}\",\n}}",
        json_string(&access_token)
    ))
}
