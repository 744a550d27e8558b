//! The testkit's conformance suite against the scoped OAuth 2.0 emulator.

#[tokio::test]
async fn conforms_to_the_testkit_suite() {
    tokensmith_testkit::conformance::run(
        &tokensmith_oauth2::OAuth2,
        tokensmith_testkit::Vendor::OAuth2,
    )
    .await;
}
