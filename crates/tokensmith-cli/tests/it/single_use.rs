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
