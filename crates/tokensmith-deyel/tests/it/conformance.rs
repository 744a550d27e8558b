//! The testkit's conformance suite against the Deyel emulator.

#[tokio::test]
async fn conforms_to_the_testkit_suite() {
    tokensmith_testkit::conformance::run(
        &tokensmith_deyel::Deyel,
        tokensmith_testkit::Vendor::Deyel,
    )
    .await;
}
