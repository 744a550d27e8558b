//! Every exit code of contract §4: 2 usage or config error, 3 refused by the
//! token endpoint, 4 transport or server failure. Each failure is one line
//! on stderr naming the provider.
//!
//! The failing cases are data ([`failing_cases`]), shared with the
//! secret-leak audit (`leak_audit.rs`), which runs them all again at `-vvv`.

use std::time::Duration;

use tokensmith_testkit::{Emulator, Fault, Vendor};

use crate::support::{Run, TestEnv, UNSET_VAR, provider, toml_str, with_wrong_secret};

/// One failing invocation: its config, its expected exit code and a
/// fragment of the expected stderr line.
pub(crate) struct Case {
    pub(crate) what: &'static str,
    pub(crate) config: String,
    pub(crate) args: Vec<&'static str>,
    pub(crate) code: i32,
    pub(crate) stderr_contains: Vec<&'static str>,
    /// A clap usage error: its message is several lines (the error, a tip,
    /// the usage), like every clap program's.
    pub(crate) usage: bool,
    /// Emulators that must stay up while the case runs.
    pub(crate) _emulators: Vec<Emulator>,
}

/// A secret used in the config-error cases (never to be printed).
pub(crate) const CASE_SECRET: &str = "case-secret-Hx71pQ";

/// Every failing case, with emulators started in `env`.
pub(crate) fn failing_cases(env: &TestEnv) -> Vec<Case> {
    let mut cases = config_cases(env);
    cases.extend(refused_cases(env));
    cases.extend(failure_cases(env));
    cases
}

/// Exit 2: usage and config errors (no network).
fn config_cases(env: &TestEnv) -> Vec<Case> {
    let mut cases = Vec::new();
    let secret_line = format!("client_secret = {}\n", toml_str(CASE_SECRET));
    cases.push(Case {
        what: "unknown kind",
        config: format!(
            "[providers.x]\nkind = \"okta\"\ntoken_url = \"https://idp.example.com/token\"\n\
             client_id = \"app\"\n{secret_line}"
        ),
        args: vec!["token", "x"],
        code: 2,
        stderr_contains: vec!["provider \"x\"", "okta"],
        usage: false,
        _emulators: Vec::new(),
    });
    cases.push(Case {
        what: "missing environment variable",
        config: format!(
            "[providers.lowcode]\nkind = \"deyel\"\ntoken_url = \"https://deyel.example.com/token\"\n\
             client_id = \"app\"\nclient_secret = {{ env = \"{UNSET_VAR}\" }}\n"
        ),
        args: vec!["header", "lowcode"],
        code: 2,
        stderr_contains: vec!["provider \"lowcode\"", UNSET_VAR],
        usage: false,
        _emulators: Vec::new(),
    });
    cases.push(Case {
        what: "colon in a SOTI client_id",
        config: format!(
            "[providers.mdm]\nkind = \"soti-connect\"\n\
             token_url = \"https://mdm.example.com/Connect/api/token\"\n\
             client_id = \"App:1\"\n{secret_line}grant = \"password\"\n\
             username = \"Administrator\"\npassword = \"pw-Kq2-secret\"\n"
        ),
        args: vec!["token", "mdm"],
        code: 2,
        stderr_contains: vec!["provider \"mdm\"", "client_id"],
        usage: false,
        _emulators: Vec::new(),
    });
    cases.push(Case {
        what: "plain http to a non-loopback host",
        config: format!(
            "[providers.tenant]\nkind = \"configapi\"\n\
             token_url = \"http://config.example.com/configapi/v2/oauth/token\"\n\
             client_id = \"app\"\n{secret_line}scope = \"example.com\"\n"
        ),
        args: vec!["token", "tenant"],
        code: 2,
        stderr_contains: vec!["provider \"tenant\"", "http"],
        usage: false,
        _emulators: Vec::new(),
    });
    let deyel = env.emulator(Vendor::Deyel);
    cases.push(Case {
        what: "no such provider",
        config: provider(&deyel, "lowcode"),
        args: vec!["token", "nope"],
        code: 2,
        stderr_contains: vec!["\"nope\"", "lowcode"],
        usage: false,
        _emulators: vec![deyel],
    });
    cases.push(Case {
        what: "bad usage",
        config: String::new(),
        args: vec!["token", "a", "--bogus"],
        code: 2,
        stderr_contains: vec!["--bogus"],
        usage: true,
        _emulators: Vec::new(),
    });

    cases
}

/// Exit 3: each vendor refuses a wrong client secret.
fn refused_cases(env: &TestEnv) -> Vec<Case> {
    let mut cases = Vec::new();
    for vendor in Vendor::ALL {
        let emulator = env.emulator(vendor);
        cases.push(Case {
            what: vendor.kind(),
            config: with_wrong_secret(&emulator, "p"),
            args: vec!["token", "p"],
            code: 3,
            stderr_contains: vec!["provider \"p\"", "refused", "HTTP 4"],
            usage: false,
            _emulators: vec![emulator],
        });
    }
    // A refusal without any error body is still a refusal.
    let bare = env.emulator(Vendor::Deyel);
    bare.set_fault(Fault::Custom { status: 401, content_type: String::new(), body: String::new() });
    cases.push(Case {
        what: "401 without a body",
        config: provider(&bare, "p"),
        args: vec!["header", "p"],
        code: 3,
        stderr_contains: vec!["provider \"p\"", "HTTP 401"],
        usage: false,
        _emulators: vec![bare],
    });
    // A single-use code the server does not know: a new authorization is needed.
    let soti = env.emulator(Vendor::SotiConnect);
    let config = provider(&soti, "p").replace(
        "grant = \"password\"\nusername = \"Administrator\"\npassword = \"1\"\n",
        &format!(
            "grant = \"authorization_code\"\ncode = \"never-issued\"\nrefresh_token_store = {{ file = {} }}\n",
            toml_str(&env.dir().join("p.refresh").display().to_string())
        ),
    );
    assert!(config.contains("never-issued"), "{config}");
    cases.push(Case {
        what: "authorization code refused",
        config,
        args: vec!["token", "p"],
        code: 3,
        stderr_contains: vec!["provider \"p\""],
        usage: false,
        _emulators: vec![soti],
    });

    cases
}

/// Exit 4: transport and server failures, and a token endpoint that is not
/// one (a 4xx without an OAuth or vendor error).
fn failure_cases(env: &TestEnv) -> Vec<Case> {
    let mut cases = Vec::new();
    let faults: [(&'static str, Fault, &'static str); 4] = [
        ("5xx", Fault::Status(503), "HTTP 503"),
        ("timeout", Fault::NeverAnswer, "timed out"),
        ("oversized body", Fault::OversizedBody, "larger than"),
        ("redirect", Fault::Redirect, "redirect"),
    ];
    for (what, fault, fragment) in faults {
        let emulator = env.emulator(Vendor::SotiConnect);
        emulator.set_fault(fault);
        cases.push(Case {
            what,
            config: format!("{}timeout = \"1s\"\n", provider(&emulator, "mdm")),
            args: vec!["token", "mdm"],
            code: 4,
            stderr_contains: vec!["provider \"mdm\"", fragment],
            usage: false,
            _emulators: vec![emulator],
        });
    }
    // A wrong token URL is not a bad secret: a 4xx the vendor does not
    // explain names token_url.
    let wrong_path = env.emulator(Vendor::OAuth2);
    let config = provider(&wrong_path, "api").replace("/token\"", "/tokn\"");
    assert!(config.contains("/tokn\""), "{config}");
    cases.push(Case {
        what: "404 Not Found at a wrong token_url",
        config,
        args: vec!["token", "api"],
        code: 4,
        stderr_contains: vec!["provider \"api\"", "HTTP 404", "token_url"],
        usage: false,
        _emulators: vec![wrong_path],
    });
    let html = env.emulator(Vendor::Deyel);
    html.set_fault(Fault::Custom {
        status: 405,
        content_type: "text/html".to_owned(),
        body: "<html><body><h1>405 Method Not Allowed</h1></body></html>".to_owned(),
    });
    cases.push(Case {
        what: "405 HTML page",
        config: provider(&html, "lowcode"),
        args: vec!["header", "lowcode"],
        code: 4,
        stderr_contains: vec!["provider \"lowcode\"", "HTTP 405", "token_url"],
        usage: false,
        _emulators: vec![html],
    });
    let closed = env.emulator(Vendor::Deyel);
    let config = provider(&closed, "lowcode");
    drop(closed); // nothing listens on its port any more
    cases.push(Case {
        what: "connection refused",
        config,
        args: vec!["token", "lowcode"],
        code: 4,
        stderr_contains: vec!["provider \"lowcode\""],
        usage: false,
        _emulators: Vec::new(),
    });
    cases
}

/// Runs `case` in `env` (with `extra` arguments first).
pub(crate) fn run_case(env: &TestEnv, case: &Case, extra: &[&str]) -> Run {
    env.write_config(&case.config);
    let mut args = extra.to_vec();
    args.extend(&case.args);
    env.run(&args)
}

#[test]
fn every_failure_has_its_exit_code_and_one_clear_line() {
    let env = TestEnv::new();
    for case in failing_cases(&env) {
        let run = run_case(&env, &case, &[]);
        let line = if case.usage {
            assert_eq!(run.code, case.code, "{}: {run:#?}", case.what);
            run.stderr.as_str()
        } else {
            run.fails(case.code)
        };
        for fragment in &case.stderr_contains {
            assert!(line.contains(fragment), "{}: {line:?} lacks {fragment:?}", case.what);
        }
    }
}

#[test]
fn a_redirect_is_never_followed() {
    let env = TestEnv::new();
    let soti = env.emulator(Vendor::SotiConnect);
    soti.set_fault(Fault::Redirect);
    env.write_config(&provider(&soti, "mdm"));
    env.run(&["token", "mdm"]).fails(4);
    assert_eq!(soti.redirect_follows(), 0);
}

#[test]
fn a_refusal_names_the_status_and_the_vendor_error() {
    let env = TestEnv::new();
    let configapi = env.emulator(Vendor::ConfigApi);
    env.write_config(&with_wrong_secret(&configapi, "tenant"));
    let line = env.run(&["token", "tenant"]).fails(3).to_owned();
    assert!(line.contains("HTTP 401") && line.contains("invalid_client"), "{line}");
    assert!(env.cache_files().is_empty(), "failures are not cached");
}

#[test]
fn a_failure_after_a_good_token_does_not_evict_it() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&deyel, "lowcode"));
    let token = env.run(&["token", "lowcode"]).ok().to_owned();
    deyel.set_fault(Fault::Status(500));
    assert_eq!(env.run(&["token", "lowcode"]).ok(), token, "served from the cache");
    env.run(&["token", "lowcode", "--no-cache"]).fails(4);
    assert_eq!(deyel.requests(), 2);
}

#[test]
fn a_slow_but_timely_endpoint_succeeds() {
    let env = TestEnv::new();
    let configapi = env.emulator(Vendor::ConfigApi);
    configapi.set_fault_next(1, Fault::Delay(Duration::from_millis(200)));
    env.write_config(&format!("{}timeout = \"10s\"\n", provider(&configapi, "tenant")));
    env.run(&["token", "tenant"]).ok();
}
