//! `token`, `token --json`, `header`, and the per-user on-disk cache.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use tokensmith_testkit::{Fault, Vendor};

use crate::support::{TestEnv, provider, toml_str};

#[test]
fn token_prints_the_token_alone_for_every_vendor() {
    let env = TestEnv::new();
    let emulators: Vec<_> = Vendor::ALL.iter().map(|v| env.emulator(*v)).collect();
    let config: Vec<String> = emulators.iter().map(|e| provider(e, e.vendor().kind())).collect();
    env.write_config(&config.join("\n"));
    for emulator in &emulators {
        let out = env.run(&["token", emulator.vendor().kind()]).ok().to_owned();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out:?}");
        assert!(lines[0].len() > 10 && !lines[0].contains(' '), "{out:?}");
        assert_eq!(emulator.tokens_issued(), 1, "{}", emulator.vendor());
    }
}

#[test]
fn header_prints_a_bearer_header_even_for_a_lowercase_token_type() {
    let env = TestEnv::new();
    let soti = env.emulator(Vendor::SotiConnect); // answers `"token_type":"bearer"`
    env.write_config(&provider(&soti, "mdm"));
    let token = env.run(&["token", "mdm"]).ok().trim().to_owned();
    let header = env.run(&["header", "mdm"]).ok().to_owned();
    assert_eq!(header, format!("Bearer {token}\n"));
    assert_eq!(soti.requests(), 1, "the header came from the cache");
}

#[test]
fn header_line_prints_name_and_value_ready_for_curl() {
    let env = TestEnv::new();
    let soti = env.emulator(Vendor::SotiConnect);
    env.write_config(&provider(&soti, "mdm"));
    let token = env.run(&["token", "mdm"]).ok().trim().to_owned();
    assert_eq!(
        env.run(&["header", "mdm", "--line"]).ok(),
        format!("Authorization: Bearer {token}\n")
    );
    assert_eq!(env.run(&["header", "--line", "mdm", "--no-cache"]).ok().lines().count(), 1);
    assert_eq!(soti.requests(), 2, "the first --line came from the cache, --no-cache fetched");
}

#[test]
fn json_has_the_contract_fields_and_an_integer_expires_in() {
    let env = TestEnv::new();
    let configapi = env.emulator(Vendor::ConfigApi); // `"expires_in":"3599",`
    let oauth2 = env.emulator(Vendor::OAuth2);
    env.write_config(&format!("{}\n{}", provider(&configapi, "tenant"), provider(&oauth2, "saas")));

    let out = env.run(&["token", "tenant", "--json"]).ok().to_owned();
    assert_eq!(out.lines().count(), 1, "{out:?}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected =
        ["provider", "kind", "token_type", "access_token", "expires_in", "expires_at", "scope"];
    expected.sort_unstable();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected);
    assert_eq!(json["provider"], "tenant");
    assert_eq!(json["kind"], "configapi");
    assert_eq!(json["token_type"], "Bearer");
    let expires_in = json["expires_in"].as_u64().expect("expires_in is an integer");
    assert!((3500..=3599).contains(&expires_in), "{expires_in}");
    let expires_at = json["expires_at"].as_str().unwrap();
    let at = humantime::parse_rfc3339(expires_at).expect("RFC 3339");
    assert!(at > std::time::SystemTime::UNIX_EPOCH);
    assert!(json["scope"].is_null());
    let token = json["access_token"].as_str().unwrap();
    assert_eq!(env.run(&["token", "tenant"]).ok().trim(), token, "the same, cached token");

    let json: serde_json::Value =
        serde_json::from_str(env.run(&["token", "saas", "--json"]).ok()).unwrap();
    assert_eq!(json["kind"], "oauth2");
    assert_eq!(json["scope"], "read write");
    assert_eq!(json["token_type"], "Bearer");
}

#[test]
fn consecutive_calls_hit_the_vendor_once() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&deyel, "lowcode"));
    let first = env.run(&["token", "lowcode"]).ok().to_owned();
    let second = env.run(&["token", "lowcode"]).ok().to_owned();
    env.run(&["header", "lowcode"]).ok();
    assert_eq!(first, second);
    assert_eq!(deyel.requests(), 1);
}

/// A cache hit sends nothing, so it builds no HTTP client (rustls config,
/// roots, connector: most of what loading a provider cost), neither for the
/// provider asked for nor for the others in the config; a miss builds the
/// one it uses. Seen through the `-v` log (core's `HTTP client built`).
#[test]
fn a_cache_hit_builds_no_http_client() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    let soti = env.emulator(Vendor::SotiConnect);
    env.write_config(&format!("{}\n{}", provider(&deyel, "lowcode"), provider(&soti, "mdm")));
    let built = |stderr: &str| stderr.lines().filter(|l| l.contains("HTTP client built")).count();
    let miss = env.run(&["-v", "token", "lowcode"]);
    let token = miss.ok().to_owned();
    assert_eq!(built(&miss.stderr), 1, "a miss builds its provider's client:\n{}", miss.stderr);
    let hit = env.run(&["-v", "token", "lowcode"]);
    assert_eq!(hit.ok(), token, "served from the cache");
    assert_eq!(built(&hit.stderr), 0, "a hit builds no client:\n{}", hit.stderr);
    assert_eq!(deyel.requests(), 1);
    assert_eq!(soti.requests(), 0);
}

/// `token` builds only the provider asked for: another provider's secret
/// file is not read (a file others may read draws a warning when it is,
/// as `check` shows), whether the token is a hit or a fetch.
#[cfg(unix)]
#[test]
fn token_reads_no_other_provider_s_secret() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    let soti = env.emulator(Vendor::SotiConnect);
    let secret_file = env.dir().join("soti-secret");
    let secret = soti.credentials().client_secret().unwrap();
    std::fs::write(&secret_file, secret).unwrap();
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mdm = provider(&soti, "mdm").replace(
        &toml_str(secret),
        &format!("{{ file = {} }}", toml_str(secret_file.to_str().unwrap())),
    );
    assert!(mdm.contains("file ="), "{mdm}");
    env.write_config(&format!("{}\n{mdm}", provider(&deyel, "lowcode")));
    let warned = |stderr: &str| stderr.contains("readable by group or others");
    let check = env.run(&["-v", "check"]);
    check.ok();
    assert!(warned(&check.stderr), "check reads it:\n{}", check.stderr);
    for run in ["fetch", "hit"] {
        let token = env.run(&["-v", "token", "lowcode"]);
        token.ok();
        assert!(!warned(&token.stderr), "{run}: read:\n{}", token.stderr);
        assert!(!token.stderr.contains("soti-secret"), "{run}:\n{}", token.stderr);
    }
    assert_eq!(deyel.requests(), 1);
    let other = env.run(&["-v", "token", "mdm"]);
    other.ok();
    assert!(warned(&other.stderr), "its own provider reads it:\n{}", other.stderr);
}

#[test]
fn no_cache_asks_every_time_and_leaves_the_cache_alone() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&deyel, "lowcode"));
    let first = env.run(&["token", "lowcode", "--no-cache"]).ok().to_owned();
    let second = env.run(&["token", "lowcode", "--no-cache"]).ok().to_owned();
    env.run(&["header", "lowcode", "--no-cache"]).ok();
    assert_ne!(first, second, "two fetches, two tokens");
    assert_eq!(deyel.requests(), 3);
    assert!(env.cache_files().is_empty(), "--no-cache writes nothing");
    // A cached token is bypassed too.
    env.run(&["token", "lowcode"]).ok();
    env.run(&["token", "lowcode", "--no-cache"]).ok();
    assert_eq!(deyel.requests(), 5);
}

#[test]
fn the_cache_file_is_private_and_holds_no_client_secret() {
    let env = TestEnv::new();
    let soti = env.emulator(Vendor::SotiConnect);
    env.write_config(&provider(&soti, "mdm"));
    let token = env.run(&["token", "mdm"]).ok().trim().to_owned();
    let files = env.cache_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let creds = soti.credentials();
    assert!(!text.contains(creds.client_secret().unwrap()), "{text}");
    assert!(!text.contains("Application1Password"));
    assert!(text.contains(&token), "the access token is what the cache is for");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(env.cache_dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}

#[test]
fn cache_clear_empties_the_cache() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&deyel, "lowcode"));
    env.run(&["token", "lowcode"]).ok();
    assert_eq!(env.cache_files().len(), 1);
    let out = env.run(&["cache", "clear"]).ok().to_owned();
    assert!(out.starts_with("removed 1 cached token from "), "{out}");
    assert!(env.cache_files().is_empty());
    env.run(&["token", "lowcode"]).ok();
    assert_eq!(deyel.requests(), 2, "a cleared cache asks again");
    // Clearing an empty or missing cache is fine.
    env.run(&["cache", "clear"]).ok();
    let out = env.run(&["cache", "clear"]).ok().to_owned();
    assert!(out.starts_with("removed 0 cached tokens"), "{out}");
}

#[test]
fn an_expired_token_is_not_reused() {
    let env = TestEnv::new();
    let configapi = env.emulator(Vendor::ConfigApi);
    // A JWT whose `exp` has passed and no `expires_in`: expired on arrival,
    // an invalid response (exit 4), never printed nor cached.
    // (`"expires_in": 0` would read as "not said", as in golang/oauth2.)
    let payload = URL_SAFE_NO_PAD.encode(r#"{"exp":1000000000}"#);
    configapi.set_fault(Fault::Custom {
        status: 200,
        content_type: "application/json".to_owned(),
        body: format!(
            r#"{{"access_token":"eyJhbGciOiJub25lIn0.{payload}.sig","token_type":"Bearer"}}"#
        ),
    });
    env.write_config(&provider(&configapi, "tenant"));
    for _ in 0..2 {
        let run = env.run(&["token", "tenant"]);
        assert_eq!(run.code, 4, "{run:?}");
        assert!(run.stdout.is_empty() && run.stderr.contains("expire on arrival"), "{run:?}");
    }
    assert!(env.cache_files().is_empty());
    assert_eq!(configapi.requests(), 2);
}

#[test]
fn a_changed_provider_identity_misses() {
    let env = TestEnv::new();
    let one = env.emulator(Vendor::Deyel);
    let two = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&one, "lowcode"));
    env.run(&["token", "lowcode"]).ok();
    // Same name, another token URL: another identity.
    env.write_config(&provider(&two, "lowcode"));
    env.run(&["token", "lowcode"]).ok();
    assert_eq!((one.requests(), two.requests()), (1, 1));
    // Another name, same identity: the same entry.
    env.write_config(&provider(&two, "renamed"));
    env.run(&["token", "renamed"]).ok();
    assert_eq!(two.requests(), 1);
    assert_eq!(env.cache_files().len(), 2);
}

#[test]
fn racing_invocations_make_one_upstream_request() {
    let env = TestEnv::new();
    let oauth2 = env.emulator(Vendor::OAuth2);
    // A slow endpoint widens the window in which the invocations overlap.
    oauth2.set_fault(Fault::Delay(Duration::from_millis(300)));
    env.write_config(&provider(&oauth2, "saas"));
    let children: Vec<_> = (0..4)
        .map(|_| {
            let mut cmd = env.command();
            cmd.arg("--config").arg(env.config_path()).args(["token", "saas"]);
            cmd.stdout(std::process::Stdio::piped()).spawn().unwrap()
        })
        .collect();
    let outputs: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap()
        })
        .collect();
    assert_eq!(oauth2.requests(), 1);
    assert!(outputs.iter().all(|o| *o == outputs[0]), "{outputs:?}");
}

/// `--config /dev/stdin` (or `<(…)`): the config is a pipe, read once.
#[cfg(unix)]
#[test]
fn the_config_may_come_from_a_pipe() {
    use std::io::Write as _;
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    let run = |args: &[&str]| {
        let mut child = env
            .command()
            .args(["--config", "/dev/stdin"])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(provider(&deyel, "lowcode").as_bytes()).unwrap();
        drop(stdin);
        crate::support::Run::from(child.wait_with_output().unwrap())
    };
    let first = run(&["token", "lowcode"]).ok().to_owned();
    let second = run(&["token", "lowcode"]).ok().to_owned();
    assert_eq!(first, second, "the second call is a cache hit");
    assert_eq!(deyel.requests(), 1);
    assert_eq!(run(&["list"]).ok(), "lowcode  deyel\n");
}

#[test]
fn header_prints_a_token_with_non_ascii_characters() {
    let env = TestEnv::new();
    let configapi = env.emulator(Vendor::ConfigApi);
    configapi.set_fault(Fault::Custom {
        status: 200,
        content_type: "application/json".into(),
        body: r#"{"access_token":"tök€n-1","token_type":"Bearer","expires_in":3600}"#.into(),
    });
    env.write_config(&provider(&configapi, "tenant"));
    assert_eq!(env.run(&["header", "tenant", "--no-cache"]).ok(), "Bearer tök€n-1\n");
    assert_eq!(env.run(&["token", "tenant", "--no-cache"]).ok(), "tök€n-1\n");
}

#[test]
fn the_store_table_moves_the_cache_and_shared_false_keeps_a_provider_out() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    // `[store] kind = "file"` with a path: the tokens go there.
    let elsewhere = env.dir().join("shared-tokens");
    let store = format!(
        "[store]\nkind = \"file\"\npath = {}\n",
        toml_str(&elsewhere.display().to_string())
    );
    env.write_config(&format!("{store}{}", provider(&deyel, "lowcode")));
    let first = env.run(&["token", "lowcode"]).ok().to_owned();
    assert_eq!(env.run(&["token", "lowcode"]).ok(), first, "a hit from the configured store");
    assert_eq!(deyel.requests(), 1);
    assert!(env.cache_files().is_empty(), "not in the default cache");
    let json = |dir: &std::path::Path| {
        std::fs::read_dir(dir).map_or(0, |d| {
            d.filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
                .count()
        })
    };
    assert_eq!(json(&elsewhere), 1);
    let out = env.run(&["cache", "clear"]).ok().to_owned();
    assert!(
        out.starts_with("removed 1 cached token from ") && out.contains("shared-tokens"),
        "{out}"
    );
    // `shared = false`: each run asks, nothing is written.
    env.write_config(&format!("{}shared = false\n", provider(&deyel, "lowcode")));
    env.run(&["token", "lowcode"]).ok();
    env.run(&["token", "lowcode"]).ok();
    assert_eq!(deyel.requests(), 3);
    assert!(env.cache_files().is_empty());
    // A Redis store without its URL: a config error naming the field.
    env.write_config(&format!("[store]\nkind = \"redis\"\n{}", provider(&deyel, "lowcode")));
    let line = env.run(&["token", "lowcode"]).fails(2).to_owned();
    assert!(line.contains("store.url"), "{line}");
    assert_eq!(deyel.requests(), 3);
}
