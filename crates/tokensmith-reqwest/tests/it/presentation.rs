//! A vendor that takes another header: the middleware sends the token's
//! presentation, on the first request and on the retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokensmith_core::{
    AccessToken, CacheConfig, CachedProvider, Clock as _, ManualClock, Presentation,
    SharedTokenProvider, TokenError, TokenProvider, async_trait,
};
use tokensmith_testkit::ResourceServer;

/// Issues `tok-1`, `tok-2`, … presented as `X-Auth-Token: <token>`.
#[derive(Debug)]
struct Counting {
    issued: AtomicU64,
    clock: ManualClock,
}

#[async_trait]
impl TokenProvider for Counting {
    async fn token(&self) -> Result<AccessToken, TokenError> {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(AccessToken::builder(format!("tok-{n}"), self.clock.timestamp())
            .expires_in(Duration::from_hours(1))
            .presentation(Presentation::header("X-Auth-Token").unwrap())
            .build())
    }
}

#[tokio::test]
async fn another_header_is_sent_and_refreshed_on_refusal() {
    let clock = ManualClock::default();
    let counting = Arc::new(Counting { issued: AtomicU64::new(0), clock: clock.clone() });
    let cached = Arc::new(CachedProvider::new(
        "xauth",
        counting.clone(),
        CacheConfig::default(),
        Arc::new(clock),
    ));
    let provider: SharedTokenProvider = cached.clone();
    let api = ResourceServer::start_with("X-Auth-Token", "").await.unwrap();
    let client = crate::client(provider);

    assert_eq!(client.get(api.url("/v1/items")).send().await.unwrap().status(), 200);
    api.rotate();
    assert_eq!(client.get(api.url("/v1/items")).send().await.unwrap().status(), 200);
    let tokens = api.tokens();
    assert_eq!(
        tokens,
        [Some("tok-1".to_owned()), Some("tok-1".to_owned()), Some("tok-2".to_owned())]
    );
    assert_eq!(api.statuses(), [200, 401, 200]);
    assert_eq!(counting.issued.load(Ordering::SeqCst), 2);
    assert_eq!(cached.stats().invalidations, 1);
}

#[tokio::test]
async fn an_existing_header_of_the_same_name_is_replaced() {
    let s = crate::Setup::new().await;
    let response = s
        .client
        .get(s.api.url("/devices"))
        .header("authorization", "Bearer stale-from-the-caller")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(s.api.tokens(), [Some(s.current_token().await)]);
}
