//! The testkit's conformance suite against the SOTI Connect emulator.

#[tokio::test]
async fn conforms_to_the_testkit_suite() {
    tokensmith_testkit::conformance::run(
        &tokensmith_soti::SotiConnect,
        tokensmith_testkit::Vendor::SotiConnect,
    )
    .await;
}
