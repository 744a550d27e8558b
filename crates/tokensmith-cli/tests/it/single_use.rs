//! Single-use credentials in the CLI: refresh tokens rotated by one run and
//! spent by the next, across processes sharing one `refresh_token_store`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokensmith_testkit::{Emulator, Fault, Vendor};

use crate::support::{Run, TestEnv, provider, toml_str};

/// The oauth2 emulator's table with `grant = "refresh_token"`, its
/// `refresh_token` and `store_line` (a `refresh_token_store = …` line, or
/// nothing).
fn refresh_grant(emulator: &Emulator, refresh_token: &str, store_line: &str) -> String {
    let table = provider(emulator, "saas").replace(
        "grant = \"client_credentials\"\n",
        &format!(
            "grant = \"refresh_token\"\nrefresh_token = {}\n{store_line}",
            toml_str(refresh_token)
        ),
    );
    assert!(table.contains("refresh_token ="), "{table}");
    table
}

fn file_store(path: &Path) -> String {
    format!("refresh_token_store = {{ file = {} }}\n", toml_str(&path.display().to_string()))
}

#[test]
fn two_processes_sharing_a_store_exchange_each_refresh_token_once() {
    let env = TestEnv::new();
    let oauth2 = env.emulator(Vendor::OAuth2);
    let original = oauth2.issue_refresh_token();
    let store = env.dir().join("saas.refresh");
    env.write_config(&refresh_grant(&oauth2, &original, &file_store(&store)));
    // Each exchange takes long enough that both processes are up and
    // reading the store while the first is still waiting for its answer.
    oauth2.set_fault(Fault::Delay(Duration::from_millis(700)));
    let children: Vec<_> = (0..2)
        .map(|_| {
            let mut cmd = env.command();
            cmd.arg("--config")
                .arg(env.config_path())
                .args(["token", "--no-cache", "saas"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let runs: Vec<Run> =
        children.into_iter().map(|c| Run::from(c.wait_with_output().unwrap())).collect();
    for run in &runs {
        run.ok();
    }
    // One exchange per rotation: the second process sent the refresh token
    // the first one received, never the (revoked) original again.
    assert_eq!(oauth2.grant_requests("refresh_token"), 2);
    let sent: Vec<String> =
        oauth2.recorded_requests().iter().filter_map(|r| r.form_value("refresh_token")).collect();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], original);
    assert_ne!(sent[1], original);
    oauth2.clear_fault();
    let stored = std::fs::read_to_string(&store).unwrap().trim().to_owned();
    assert!(!sent.contains(&stored), "the newest refresh token is stored");
    env.run(&["token", "--no-cache", "saas"]).ok();
    assert_eq!(oauth2.grant_requests("refresh_token"), 3);
}

#[test]
fn a_single_use_grant_without_a_file_store_is_refused_before_anything_is_sent() {
    let env = TestEnv::new();
    let oauth2 = env.emulator(Vendor::OAuth2);
    let soti = env.emulator(Vendor::SotiConnect);
    let original = oauth2.issue_refresh_token();
    let code = oauth2.issue_code();
    let soti_code = soti.issue_code();
    let configs = [
        refresh_grant(&oauth2, &original, ""),
        refresh_grant(&oauth2, &original, "refresh_token_store = \"memory\"\n"),
        provider(&oauth2, "saas").replace(
            "grant = \"client_credentials\"\n",
            &format!(
                "grant = \"authorization_code\"\ncode = {}\nredirect_uri = \"https://app.example/cb\"\n",
                toml_str(&code)
            ),
        ),
        provider(&soti, "saas").replace(
            "grant = \"password\"\nusername = \"Administrator\"\npassword = \"1\"\n",
            &format!("grant = \"authorization_code\"\ncode = {}\n", toml_str(&soti_code)),
        ),
    ];
    for config in configs {
        assert!(
            config.contains("grant = \"authorization_code\"") || config.contains("refresh_token =")
        );
        env.write_config(&config);
        for args in [&["token", "saas"][..], &["token", "--no-cache", "saas"], &["header", "saas"]]
        {
            let line = env.run(args).fails(2).to_owned();
            for fragment in ["provider \"saas\"", "refresh_token_store", "{ file ="] {
                assert!(line.contains(fragment), "{fragment:?} in {line}");
            }
            for secret in [&original, &code, &soti_code] {
                assert!(!line.contains(secret.as_str()), "{line}");
            }
        }
    }
    assert_eq!(oauth2.requests() + soti.requests(), 0, "a single-use credential was sent");
    // `check` validates without spending anything: such a config is valid
    // for the library, which keeps renewing in memory.
    env.run(&["check"]).ok();
}

#[test]
fn a_rotated_refresh_token_that_cannot_be_saved_is_said_on_stderr_and_exits_4() {
    let env = TestEnv::new();
    let oauth2 = env.emulator(Vendor::OAuth2);
    let original = oauth2.issue_refresh_token();
    // A name the token file and its lock can have, but the temporary file a
    // save writes first (the name and a suffix) cannot: longer than 255
    // bytes. So the save fails whoever runs the test (root included).
    let store = env.dir().join("r".repeat(240));
    env.write_config(&refresh_grant(&oauth2, &original, &file_store(&store)));
    let run = env.run(&["token", "--no-cache", "saas"]);
    assert_eq!(run.code, 4, "{run:#?}");
    // The access token is good: it is printed.
    let printed = run.stdout.trim().to_owned();
    assert_eq!(run.stdout.lines().count(), 1, "{run:#?}");
    assert!(!printed.is_empty());
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{run:#?}");
    for fragment in ["provider \"saas\"", "refresh token", "could not be saved", "cannot write"] {
        assert!(lines[0].contains(fragment), "{fragment:?} in {}", lines[0]);
    }
    assert!(!run.stderr.contains(&original) && !run.stderr.contains(&printed), "{run:#?}");
    assert_eq!(oauth2.grant_requests("refresh_token"), 1);
    assert!(!store.exists());
}
