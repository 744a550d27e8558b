//! The testkit's conformance suite against the configapi emulator.

#[tokio::test]
async fn conforms_to_the_testkit_suite() {
    tokensmith_testkit::conformance::run(
        &tokensmith_configapi::ConfigApi,
        tokensmith_testkit::Vendor::ConfigApi,
    )
    .await;
}
