//! The emulator API itself: vendors, URLs, config snippets, records,
//! counters, fixtures, ports and shutdown.

use tokensmith_testkit::{Emulator, Vendor, fixtures};

use crate::{client, json, post, read, start};

#[test]
fn vendor_kinds_round_trip() {
    let kinds: Vec<&str> = Vendor::ALL.iter().map(|v| v.kind()).collect();
    assert_eq!(kinds, ["soti-connect", "configapi", "oauth2", "deyel"]);
    for vendor in Vendor::ALL {
        assert_eq!(vendor.kind().parse::<Vendor>().unwrap(), vendor);
        assert_eq!(vendor.to_string(), vendor.kind());
    }
    assert_eq!("SOTI-Connect".parse::<Vendor>().unwrap(), Vendor::SotiConnect);
    assert!(
        "okta"
            .parse::<Vendor>()
            .unwrap_err()
            .to_string()
            .contains("soti-connect, configapi, oauth2, deyel")
    );
}

#[tokio::test]
async fn urls_and_config_snippets() {
    let soti = start(Vendor::SotiConnect).await;
    let port = soti.addr().port();
    assert_eq!(soti.token_url(), format!("http://127.0.0.1:{port}/Connect/api/token"));
    assert_eq!(
        soti.config_snippet("mdm"),
        format!(
            "[providers.mdm]\nkind = \"soti-connect\"\ntoken_url = \"http://127.0.0.1:{port}/Connect/api/token\"\n\
             client_id = \"Application1\"\nclient_secret = \"Application1Password\"\ngrant = \"password\"\n\
             username = \"Administrator\"\npassword = \"1\"\n"
        )
    );
    assert!(soti.config_snippet("my mdm").starts_with("[providers.\"my mdm\"]\n"));

    let oauth2 = start(Vendor::OAuth2).await;
    let snippet = oauth2.config_snippet("saas");
    assert!(snippet.contains("kind = \"oauth2\"\n"));
    assert!(snippet.contains("client_secret = \"s3cr3t+key/==\"\ngrant = \"client_credentials\"\nscope = \"read write\"\n"));
    let deyel = start(Vendor::Deyel).await;
    assert!(
        deyel.config_snippet("lowcode").ends_with("client_secret = \"Deyel-API-user-key-8.7\"\n")
    );
    assert!(deyel.token_url().ends_with("/deyel/oauth/token"));
}

#[tokio::test]
async fn other_paths_are_404_and_not_counted() {
    let emulator = start(Vendor::ConfigApi).await;
    let response =
        client().post(format!("{}/oauth/token", emulator.base_url())).send().await.unwrap();
    assert_eq!(read(response).await.0, 404);
    assert_eq!(emulator.requests(), 0);
    assert!(emulator.last_request().is_none());
}

#[tokio::test]
async fn records_and_counters() {
    let emulator = start(Vendor::SotiConnect).await;
    let form = [("grant_type", "password"), ("username", "Administrator"), ("password", "1")];
    post(&emulator, Some(("Application1", "Application1Password")), &form).await;
    post(&emulator, None, &[("grant_type", "authorization_code"), ("code", "c")]).await;

    let recorded = emulator.recorded_requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].method(), "POST");
    assert_eq!(recorded[0].target(), "/Connect/api/token");
    assert_eq!(recorded[0].header("authorization"), Some(fixtures::SOTI_AUTHORIZATION_HEADER));
    assert_eq!(recorded[0].form()[0], ("grant_type".to_owned(), "password".to_owned()));
    assert_eq!(recorded[1].header("authorization"), None);
    let debug = format!("{:?}", recorded[0]);
    assert!(debug.contains("authorization") && debug.contains("password"), "{debug}");
    assert!(!debug.contains("QXBw") && !debug.contains("Administrator"), "{debug}");

    assert_eq!(
        (emulator.grant_requests("password"), emulator.grant_requests("authorization_code")),
        (1, 1)
    );
    emulator.reset_counters();
    assert_eq!(
        (emulator.requests(), emulator.tokens_issued(), emulator.grant_requests("password")),
        (0, 0, 0)
    );
    assert!(emulator.recorded_requests().is_empty());
}

#[test]
fn credentials_debug_hides_secrets() {
    for vendor in Vendor::ALL {
        let creds = vendor.credentials();
        let debug = format!("{creds:?}");
        assert!(debug.contains(creds.client_id()));
        assert!(!debug.contains(creds.client_secret().unwrap()), "{debug}");
        if let Some(password) = creds.password() {
            assert!(!debug.contains(&format!("\"{password}\"")), "{debug}");
        }
    }
}

#[test]
fn fixtures_are_the_documented_bodies() {
    assert_eq!(json(fixtures::SOTI_TOKEN_RESPONSE)["expires_in"], 3600);
    assert_eq!(json(fixtures::OAUTH2_TOKEN_RESPONSE)["token_type"], "bearer");
    assert_eq!(json(fixtures::OAUTH2_ERROR_RESPONSE)["errors"][0]["httpcode"], 0);
    assert_eq!(json(fixtures::DEYEL_TOKEN_RESPONSE)["expires_in"], 86400);
    assert_eq!(json(fixtures::DEYEL_ERROR_RESPONSE)["error"], "Invalid_request");
    assert!(fixtures::CONFIGAPI_TOKEN_RESPONSE.ends_with("\"expires_in\":\"3599\",\n}"));
    assert!(fixtures::CONFIGAPI_REQUEST_BODY.ends_with("&scope=example.com"));
}

#[tokio::test]
async fn ports_in_use_are_an_error_and_shutdown_releases_them() {
    let first = start(Vendor::Deyel).await;
    let port = first.addr().port();
    assert!(Emulator::start_on(Vendor::Deyel, port).await.is_err());
    first.shutdown().await;
    let second = Emulator::start_on(Vendor::Deyel, port).await.unwrap();
    assert_eq!(second.addr().port(), port);
    second.shutdown().await;
    assert!(
        client().post(format!("http://127.0.0.1:{port}/deyel/oauth/token")).send().await.is_err()
    );
}
