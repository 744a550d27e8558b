//! Integration tests of the emulators over real HTTP on 127.0.0.1.

mod api;
mod configapi;
mod conformance;
mod deyel;
mod discovery;
mod faults;
mod oauth2;
mod soti;

use serde_json::Value;
use tokensmith_testkit::{Emulator, Vendor};

/// A client that never follows redirects (as tokensmith's).
fn client() -> reqwest::Client {
    client_builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A reqwest client builder. reqwest 0.13 with `rustls-no-provider` (as
/// tokensmith-core enables it) needs a process-wide rustls provider before
/// `build()`: ring, the one TLS stack of the workspace.
fn client_builder() -> reqwest::ClientBuilder {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// Status and body text of a response.
async fn read(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// POSTs `form` to the emulator's token URL, with optional Basic credentials.
async fn post(
    emulator: &Emulator,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, String) {
    let mut request = client().post(emulator.token_url()).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    read(request.send().await.unwrap()).await
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

async fn start(vendor: Vendor) -> Emulator {
    Emulator::start(vendor).await.unwrap()
}
