//! The integrations' part of the audit: the reqwest middleware and the tower
//! layer on every error path — the provider refusing the credentials, a
//! token endpoint echoing them, a 401 and its retry, a second 401, the
//! token endpoint failing on the retry (surfaced as the integration's
//! error), the API unreachable or the inner service failing — with their
//! errors (`Display`, `Debug`, source chain, the `TokenError` behind them,
//! the panic of unwrapping them), the requests as the next layer sees them
//! (`Debug`: the token header is marked sensitive) and the TRACE log; and
//! the tonic interceptor without a current token and with one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokensmith_core::secrecy::ExposeSecret as _;
use tokensmith_core::{Providers, Registry, TokenProvider as _, async_trait};
use tokensmith_testkit::{Emulator, Fault, INVALID_TOKEN_CHALLENGE, ResourceServer, Vendor};

use super::{Audit, SECRETS, echo, log_text, toml_str};

fn reqwest_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A Deyel provider with the audit's client secret (refused) and one with
/// the emulator's (served).
fn deyel_providers(emulator: &Emulator, audit: &Audit) -> (Providers, Providers) {
    let good = emulator.config_snippet("api");
    let secret = emulator.credentials().client_secret().unwrap();
    audit.scanner.basic("test client secret", "APIUSER", secret);
    let bad = good.replace(&toml_str(secret), &toml_str(&SECRETS.client_secret));
    let registry = || Registry::new().with(tokensmith_deyel::Deyel).without_store();
    (registry().load_str(&bad).unwrap(), registry().load_str(&good).unwrap())
}

/// A 400 from the token endpoint echoing the client secret the request sent
/// (`secret`) in every spelling.
fn echoing_refusal(secret: &str) -> Fault {
    let echoed = echo(&[("APIUSER".to_owned(), secret.to_owned())]);
    let json = tokensmith_testkit::leak::json_escaped(&echoed);
    Fault::Custom {
        status: 400,
        content_type: "application/json".to_owned(),
        body: format!(r#"{{"error":"invalid_client","error_description":"{json}"}}"#),
    }
}

/// Records how each request looks to the next middleware (`Debug`).
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

#[async_trait]
impl reqwest_middleware::Middleware for Recorder {
    async fn handle(
        &self,
        request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        self.0.lock().unwrap().push(format!("{request:?} {:?}", request.headers()));
        next.run(request, extensions).await
    }
}

/// Scans a failed request: its error, the `TokenError` behind it when
/// there is one, and the panic of unwrapping it.
fn scan_reqwest_error(audit: &Audit, what: &str, err: reqwest_middleware::Error) {
    audit.error(what, &err);
    if let Some(token_err) = tokensmith_reqwest::token_error(&err) {
        audit.token_error(what, token_err);
    }
    audit.panic_of(what, Err::<(), _>(err));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_middleware_shows_no_secret_on_any_error_path() {
    let audit = Audit::new();
    let emulator = Emulator::start(Vendor::Deyel).await.unwrap();
    let api = ResourceServer::start().await.unwrap();
    let (bad, good) = deyel_providers(&emulator, &audit);
    let recorder = Recorder::default();
    let client = |providers: &Providers| {
        reqwest_middleware::ClientBuilder::new(reqwest_client())
            .with(tokensmith_reqwest::TokenMiddleware::new(providers.get("api").unwrap()))
            .with(recorder.clone())
            .build()
    };

    // The credentials refused: the request is never sent.
    let err = client(&bad).get(api.url("/devices")).send().await.unwrap_err();
    assert!(
        tokensmith_reqwest::token_error(&err).is_some_and(tokensmith_core::TokenError::is_rejected),
        "{err}"
    );
    scan_reqwest_error(&audit, "middleware / refused", err);
    // The token endpoint echoing them.
    emulator.set_fault(echoing_refusal(&SECRETS.client_secret));
    let err = client(&bad).get(api.url("/devices")).send().await.unwrap_err();
    scan_reqwest_error(&audit, "middleware / 400 echo", err);
    emulator.clear_fault();
    assert_eq!(api.requests(), 0);

    let test_secret = emulator.credentials().client_secret().unwrap();
    let client = client(&good);
    audit.text("middleware / client", &format!("{client:?}"));
    assert_eq!(client.get(api.url("/devices")).send().await.unwrap().status(), 200);
    // A 401: invalidated, retried once with a fresh token.
    api.rotate();
    let response = client.post(api.url("/devices")).body("replayable").send().await.unwrap();
    assert_eq!(response.status(), 200);
    audit.text("middleware / 401 retried", &format!("{response:?}"));
    // A second 401: the refusal goes back to the caller.
    api.fail_next(2, 401, Some(INVALID_TOKEN_CHALLENGE));
    let response = client.post(api.url("/devices")).body("replayable").send().await.unwrap();
    assert_eq!(response.status(), 401);
    audit.text("middleware / second 401", &format!("{response:?} {:?}", response.headers()));
    audit.text("middleware / second 401 body", &response.text().await.unwrap());
    assert_eq!(api.statuses(), [200, 401, 200, 401, 401], "each 401 retried once");
    // The API unreachable: reqwest's own error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let err = client.get(format!("http://{closed}/devices")).send().await.unwrap_err();
    assert!(tokensmith_reqwest::token_error(&err).is_none(), "{err}");
    scan_reqwest_error(&audit, "middleware / API unreachable", err);

    // A 401, then the token endpoint refuses: the middleware's error (last:
    // the cache then backs off).
    api.rotate();
    emulator.set_fault(echoing_refusal(test_secret));
    let err = client.post(api.url("/devices")).body("replayable").send().await.unwrap_err();
    let token_err = tokensmith_reqwest::token_error(&err).expect("the token endpoint's error");
    assert_eq!(token_err.status(), Some(400), "{token_err}");
    scan_reqwest_error(&audit, "middleware / token failure on the retry", err);
    emulator.clear_fault();
    // Every token presented is looked for in what was seen and logged.
    let presented: Vec<String> = api.tokens().into_iter().flatten().collect();
    assert!(presented.len() >= 4, "{presented:?}");
    for token in &presented {
        audit.scanner.exact("presented access token", token);
    }
    let seen = recorder.0.lock().unwrap().clone();
    assert!(seen.len() >= 7, "{seen:#?}");
    for request in &seen {
        assert!(request.contains("Sensitive"), "the header is marked sensitive: {request}");
        audit.text("middleware / the request as the next middleware sees it", request);
    }
    assert!(log_text().contains("invalidated"), "the 401 was logged");
    audit.finish(16);
}

/// What the fake API answers next: a status, or the inner service failing.
type Plan = Arc<Mutex<VecDeque<Result<u16, ()>>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tower_layer_shows_no_secret_on_any_error_path() {
    use tower::{Layer as _, ServiceExt as _};

    let audit = Audit::new();
    let emulator = Emulator::start(Vendor::Deyel).await.unwrap();
    let (bad, good) = deyel_providers(&emulator, &audit);
    let plan: Plan = Arc::default();
    let seen = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let upstream = {
        let (plan, seen) = (plan.clone(), seen.clone());
        tower::service_fn(move |request: http::Request<String>| {
            let (plan, seen) = (plan.clone(), seen.clone());
            async move {
                let header = request.headers()[http::header::AUTHORIZATION].to_str().unwrap();
                let shown = format!("{request:?}");
                seen.lock().unwrap().push((header.to_owned(), shown));
                match plan.lock().unwrap().pop_front().unwrap_or(Ok(200)) {
                    Ok(status) => Ok(http::Response::builder()
                        .status(status)
                        .header("www-authenticate", INVALID_TOKEN_CHALLENGE)
                        .body(String::new())
                        .unwrap()),
                    Err(()) => Err(std::io::Error::other("the API hung up")),
                }
            }
        })
    };
    let request =
        || http::Request::post("http://api.test/devices").body("replayable".to_owned()).unwrap();
    let scan = |what: &str, err: tokensmith_tower::AuthError<std::io::Error>| {
        audit.error(what, &err);
        if let tokensmith_tower::AuthError::Token(token_err) = &err {
            audit.token_error(what, token_err);
        }
        audit.panic_of(what, Err::<(), _>(err));
    };

    // The credentials refused, and echoed: nothing is sent.
    let layer = tokensmith_tower::AuthLayer::new(bad.get("api").unwrap());
    let err = layer.layer(upstream.clone()).oneshot(request()).await.unwrap_err();
    assert!(matches!(err, tokensmith_tower::AuthError::Token(_)), "{err:?}");
    scan("tower / refused", err);
    emulator.set_fault(echoing_refusal(&SECRETS.client_secret));
    let err = layer.layer(upstream.clone()).oneshot(request()).await.unwrap_err();
    scan("tower / 400 echo", err);
    emulator.clear_fault();
    assert!(seen.lock().unwrap().is_empty());

    let test_secret = emulator.credentials().client_secret().unwrap();
    let layer = tokensmith_tower::AuthLayer::new(good.get("api").unwrap());
    let service = layer.layer(upstream);
    audit.text("tower / service", &format!("{service:?}"));
    // A 401, retried once with a fresh token.
    plan.lock().unwrap().push_back(Ok(401));
    let response = service.clone().oneshot(request()).await.unwrap();
    assert_eq!(response.status(), 200);
    audit.text("tower / 401 retried", &format!("{response:?}"));
    // A second 401: returned.
    plan.lock().unwrap().extend([Ok(401), Ok(401)]);
    let response = service.clone().oneshot(request()).await.unwrap();
    assert_eq!(response.status(), 401);
    audit.text("tower / second 401", &format!("{response:?}"));
    // The inner service fails.
    plan.lock().unwrap().push_back(Err(()));
    let err = service.clone().oneshot(request()).await.unwrap_err();
    assert!(matches!(err, tokensmith_tower::AuthError::Service(_)), "{err:?}");
    scan("tower / inner service error", err);

    // A 401, then the token endpoint refuses: the layer's error (last: the
    // cache then backs off).
    plan.lock().unwrap().push_back(Ok(401));
    emulator.set_fault(echoing_refusal(test_secret));
    let err = service.clone().oneshot(request()).await.unwrap_err();
    assert!(matches!(&err, tokensmith_tower::AuthError::Token(e) if e.status() == Some(400)));
    scan("tower / token failure on the retry", err);
    emulator.clear_fault();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 6, "{seen:#?}");
    for (header, _) in &seen {
        audit.scanner.exact("presented access token", header.trim_start_matches("Bearer "));
    }
    for (_, request) in &seen {
        assert!(request.contains("Sensitive"), "the header is marked sensitive: {request}");
        audit.text("tower / the request as the inner service sees it", request);
    }
    audit.finish(16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tonic_interceptor_shows_no_secret_with_or_without_a_token() {
    use tonic::service::Interceptor as _;

    let audit = Audit::new();
    let emulator = Emulator::start(Vendor::Deyel).await.unwrap();
    let (bad, good) = deyel_providers(&emulator, &audit);
    for (what, providers) in [("refused", &bad), ("served", &good)] {
        let cache = providers.cache("api").unwrap().clone();
        let mut interceptor = tokensmith_tower::AuthInterceptor::new(cache.clone());
        audit.text(&format!("interceptor / {what}"), &format!("{interceptor:?}"));
        // No current token yet.
        let status = interceptor.call(tonic::Request::new(())).unwrap_err();
        audit.text(&format!("interceptor / {what}: no token"), &format!("{status} {status:?}"));
        if let Ok(token) = providers.get("api").unwrap().token().await {
            let value = token.secret().expose_secret();
            audit.scanner.exact("presented access token", value);
            let request = interceptor.call(tonic::Request::new(())).unwrap();
            let shown = format!("{request:?} {:?}", request.metadata());
            assert!(shown.contains("Sensitive"), "the metadata is marked sensitive: {shown}");
            audit.text(&format!("interceptor / {what}: the request"), &shown);
        }
    }
    audit.finish(6);
}
