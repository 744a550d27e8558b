//! What the CLI writes besides tokens: `--json` errors as one JSON object,
//! a transport error's cause said once, and `--verbose` logs that are
//! tokensmith's own.

use tokensmith_testkit::Vendor;

use crate::support::{TestEnv, provider, with_wrong_secret};

/// The one stderr line of a failed `--json` run, parsed.
#[track_caller]
fn json_error(env: &TestEnv, args: &[&str], code: i32) -> serde_json::Value {
    let line = env.run(args).fails(code).to_owned();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn json_commands_write_their_errors_as_one_json_object() {
    let env = TestEnv::new();
    let configapi = env.emulator(Vendor::ConfigApi);
    env.write_config(&with_wrong_secret(&configapi, "tenant"));
    let err = json_error(&env, &["token", "tenant", "--json"], 3);
    assert_eq!(err["error"], "rejected", "{err}");
    assert_eq!(err["provider"], "tenant");
    assert_eq!(err["status"], 401);
    assert_eq!(err["vendor_error"], "invalid_client");
    assert!(err["message"].as_str().unwrap().contains("HTTP 401"), "{err}");
    // The contract's fields, in its order, and no others.
    assert_eq!(err.as_object().unwrap().len(), 5, "{err}");
    let line = env.run(&["token", "tenant", "--json"]).fails(3).to_owned();
    assert!(
        line.starts_with(
            r#"{"error":"rejected","provider":"tenant","status":401,"vendor_error":"invalid_client","message":"#
        ),
        "{line}"
    );

    let err = json_error(&env, &["token", "nope", "--json"], 2);
    assert_eq!(err["error"], "unknown_provider", "{err}");
    assert_eq!(err["provider"], "nope");
    assert!(err["status"].is_null() && err["vendor_error"].is_null(), "{err}");

    env.write_config("[providers.x]\nkind = \"okta\"\nclient_id = \"a\"\n");
    let err = json_error(&env, &["token", "x", "--json"], 2);
    assert_eq!(err["error"], "config", "{err}");
    assert!(err["message"].as_str().unwrap().contains("okta"), "{err}");

    let closed = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&closed, "lowcode"));
    drop(closed);
    let err = json_error(&env, &["token", "lowcode", "--json"], 4);
    assert_eq!(err["error"], "unavailable", "{err}");
    // Without --json, the plain line.
    let line = env.run(&["token", "lowcode"]).fails(4).to_owned();
    assert!(line.starts_with("tokensmith: provider \"lowcode\""), "{line}");
}

#[test]
fn a_transport_error_says_its_cause_once() {
    let env = TestEnv::new();
    let closed = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&closed, "lowcode"));
    drop(closed);
    let line = env.run(&["token", "lowcode"]).fails(4).to_owned();
    assert!(line.contains("could not connect"), "{line}");
    for layer in ["error sending request", "client error", "tcp connect error"] {
        assert!(!line.contains(layer), "{line:?} repeats the layer {layer:?}");
    }
    assert!(line.to_lowercase().contains("refused"), "{line}");
}

#[test]
fn verbose_shows_tokensmith_events_not_connection_pool_internals() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&deyel, "lowcode"));
    let run = env.run(&["--verbose", "token", "lowcode", "--no-cache"]);
    run.ok();
    assert!(run.stderr.contains("token received"), "{run:#?}");
    for internal in ["pooling idle connection", "starting new connection", "connecting to", "hyper"]
    {
        assert!(!run.stderr.contains(internal), "{internal:?} in {}", run.stderr);
    }
}
