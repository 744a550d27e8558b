//! Integration tests of the middleware over real HTTP on 127.0.0.1: a testkit
//! emulator as the token endpoint (through a registry, so the provider is a
//! real `CachedProvider`) or a counting provider, and the testkit's
//! `ResourceServer` as the API.

mod errors;
mod presentation;
mod retry;

use std::sync::Arc;

use reqwest_middleware::ClientWithMiddleware;
use tokensmith_core::{Providers, Registry, SharedTokenProvider};
use tokensmith_reqwest::TokenMiddleware;
use tokensmith_testkit::{Emulator, ResourceServer, Vendor};

/// A plain reqwest client (reqwest's `rustls-no-provider` needs a process
/// crypto provider; ring, the one the workspace builds) that never uses a
/// proxy.
fn reqwest_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// `provider` behind the middleware.
fn client(provider: SharedTokenProvider) -> ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest_client())
        .with(TokenMiddleware::new(provider))
        .build()
}

/// A token endpoint (the Deyel emulator), a registry loaded from its
/// snippet, the API, and a client with the middleware.
struct Setup {
    emulator: Emulator,
    providers: Providers,
    provider: SharedTokenProvider,
    api: ResourceServer,
    client: ClientWithMiddleware,
}

impl Setup {
    async fn new() -> Self {
        let emulator = Emulator::start(Vendor::Deyel).await.unwrap();
        let providers = Registry::new()
            .with(tokensmith_deyel::Deyel)
            .load_str(&emulator.config_snippet("api"))
            .unwrap();
        let provider = providers.get("api").unwrap();
        let api = ResourceServer::start().await.unwrap();
        let client = client(Arc::clone(&provider));
        Self { emulator, providers, provider, api, client }
    }

    /// The token the provider holds now.
    async fn current_token(&self) -> String {
        use tokensmith_core::secrecy::ExposeSecret as _;
        self.provider.token().await.unwrap().secret().expose_secret().to_owned()
    }

    fn invalidations(&self) -> u64 {
        self.providers.cache_stats("api").unwrap().invalidations
    }
}
