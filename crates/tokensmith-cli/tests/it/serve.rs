//! `tokensmith serve`, the token agent (contract §10): the built binary
//! serving emulators' tokens over a real Unix socket and real loopback TCP.

use std::io::BufRead as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Child, Stdio};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::Method;
use tokensmith_testkit::{Fault, Vendor};

use crate::agent_client::{Answer, Client, Target};
use crate::support::{TestEnv, WRONG_SECRET, provider, toml_str, with_wrong_secret};

/// A running `tokensmith serve`, killed when dropped.
pub(crate) struct Served {
    child: Child,
    stderr: Arc<Mutex<String>>,
    pub(crate) target: Target,
}

/// How long a test waits for the agent to do something it was asked to.
const PATIENCE: Duration = Duration::from_secs(10);

impl Served {
    /// Starts `tokensmith -v --config … serve ARGS…` and waits for its
    /// "listening on" line.
    pub(crate) fn start(env: &TestEnv, args: &[&str]) -> Served {
        Self::start_with(env, env.command(), "--verbose", args)
    }

    /// Starts `cmd` (from `env.command()`, with the caller's environment)
    /// as `tokensmith VERBOSE --config … serve ARGS…` and waits for its
    /// "listening on" line.
    pub(crate) fn start_with(
        env: &TestEnv,
        mut cmd: std::process::Command,
        verbose: &str,
        args: &[&str],
    ) -> Served {
        cmd.arg(verbose).arg("--config").arg(env.config_path()).arg("serve").args(args);
        cmd.env("XDG_RUNTIME_DIR", env.dir()).stdin(Stdio::null()).stdout(Stdio::null());
        let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let mut served = Served { child, stderr, target: Target::Tcp(([0, 0, 0, 0], 0).into()) };
        let line = served.wait_for_line("listening on ");
        let at = line.split("listening on ").nth(1).unwrap().split(' ').next().unwrap();
        served.target = if let Some(path) = at.strip_prefix("unix:") {
            Target::Unix(path.into())
        } else {
            Target::Tcp(at.strip_prefix("tcp:").unwrap().parse().unwrap())
        };
        served
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it wrote on stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until a stderr line contains `needle`; returns the line.
    #[track_caller]
    fn wait_for_line(&mut self, needle: &str) -> String {
        let found =
            wait_until(|| self.stderr().lines().find(|l| l.contains(needle)).map(str::to_owned));
        found.unwrap_or_else(|| {
            let status = self.child.try_wait();
            panic!("no line with {needle:?} (exit: {status:?}): {}", self.stderr())
        })
    }

    /// Waits until `n` stderr lines (counting from 1) contain `needle`;
    /// returns the `n`-th.
    #[track_caller]
    fn wait_for_nth_line(&mut self, needle: &str, n: usize) -> String {
        let found = wait_until(|| {
            self.stderr().lines().filter(|l| l.contains(needle)).nth(n - 1).map(str::to_owned)
        });
        found.unwrap_or_else(|| panic!("no {n}th line with {needle:?}: {}", self.stderr()))
    }

    pub(crate) fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, signal).unwrap();
    }

    /// Waits for it to exit; its exit code.
    pub(crate) fn wait_exit(&mut self) -> Option<i32> {
        wait_until(|| self.child.try_wait().unwrap()).and_then(|s| s.code())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` (every 10 ms, for at most [`PATIENCE`]).
pub(crate) fn wait_until<T>(mut check: impl FnMut() -> Option<T>) -> Option<T> {
    for _ in 0..PATIENCE.as_millis() / 10 {
        if let Some(found) = check() {
            return Some(found);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

pub(crate) fn client_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// One request on a new connection.
pub(crate) fn call(
    rt: &tokio::runtime::Runtime,
    target: &Target,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    rt.block_on(async {
        let mut client = Client::connect(target).await.unwrap();
        client.send(method, path, headers, body).await.unwrap()
    })
}

pub(crate) fn get(rt: &tokio::runtime::Runtime, target: &Target, path: &str) -> Answer {
    call(rt, target, Method::GET, path, &[("Tokensmith-Request", "1")], "")
}

#[track_caller]
fn assert_error(answer: &Answer, status: u16, error: &str) -> serde_json::Value {
    assert_eq!(answer.status, status, "{answer:#?}");
    assert_eq!(answer.content_type, "application/json", "{answer:#?}");
    let json = answer.json();
    let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["error", "message", "provider", "status", "vendor_error"], "{answer:#?}");
    assert_eq!(json["error"], error, "{answer:#?}");
    json
}

#[test]
fn every_endpoint_answers_over_the_unix_socket() {
    let env = TestEnv::new();
    let soti = env.emulator(Vendor::SotiConnect);
    let oauth2 = env.emulator(Vendor::OAuth2);
    env.write_config(&format!("{}\n{}", provider(&soti, "mdm"), provider(&oauth2, "saas")));
    let served = Served::start(&env, &[]);
    let Target::Unix(socket) = &served.target else { panic!("{:?}", served.target) };
    assert_eq!(socket, &env.dir().join("tokensmith.sock"), "the default socket");
    let mode = std::fs::metadata(socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let rt = client_rt();
    let t = &served.target;

    let health = call(&rt, t, Method::GET, "/healthz", &[], "");
    assert_eq!((health.status, health.body.as_str()), (200, "ok"), "no header needed");

    let providers = get(&rt, t, "/v1/providers");
    assert_eq!(providers.status, 200);
    assert_eq!(providers.content_type, "application/json");
    assert_eq!(
        providers.json(),
        serde_json::json!([{ "name": "mdm", "kind": "soti-connect" }, { "name": "saas", "kind": "oauth2" }])
    );

    let token = get(&rt, t, "/v1/token/saas");
    assert_eq!(token.status, 200, "{token:#?}");
    assert_eq!(token.headers["cache-control"], "no-store");
    let json = token.json();
    assert_eq!(json["provider"], "saas");
    assert_eq!(json["kind"], "oauth2");
    assert_eq!(json["token_type"], "Bearer");
    assert_eq!(json["scope"], "read write");
    assert!((3500..=3600).contains(&json["expires_in"].as_u64().unwrap()), "{json}");
    let access = json["access_token"].as_str().unwrap().to_owned();
    let cli: serde_json::Value =
        serde_json::from_str(env.run(&["token", "saas", "--json"]).ok()).unwrap();
    let mut cli_keys: Vec<_> = cli.as_object().unwrap().keys().collect();
    let mut agent_keys: Vec<_> = json.as_object().unwrap().keys().collect();
    cli_keys.sort();
    agent_keys.sort();
    assert_eq!(agent_keys, cli_keys, "the object of `token NAME --json`");

    let header = get(&rt, t, "/v1/header/saas");
    assert_eq!(header.status, 200);
    assert_eq!(header.content_type, "text/plain; charset=utf-8");
    assert_eq!(header.body, format!("Bearer {access}"));
    let header = get(&rt, t, "/v1/header/mdm"); // SOTI answers `"token_type":"bearer"`
    assert!(header.body.starts_with("Bearer "), "{header:#?}");
    // The agent and the CLI share the per-user file store: one fetch for both.
    assert_eq!(oauth2.tokens_issued(), 1, "the agent's one fetch, reused by the CLI run");

    // Invalidate: a token that is not the current one changes nothing…
    let post = |body: &str| {
        call(&rt, t, Method::POST, "/v1/invalidate/saas", &[("Tokensmith-Request", "1")], body)
    };
    assert_eq!(post("not-the-token").status, 204);
    assert_eq!(get(&rt, t, "/v1/token/saas").json()["access_token"], access.as_str());
    // …the current one is dropped, and the next request fetches a new one.
    assert_eq!(post(&format!("{access}\n")).status, 204);
    let fresh = get(&rt, t, "/v1/token/saas").json()["access_token"].as_str().unwrap().to_owned();
    assert_ne!(fresh, access);
    assert_eq!(oauth2.tokens_issued(), 2);
    assert_eq!(post("").status, 400);
    let too_big = post(&"x".repeat(17 * 1024));
    assert_error(&too_big, 413, "body_too_large");
    let wrong_method = get(&rt, t, "/v1/invalidate/saas");
    assert_error(&wrong_method, 405, "method_not_allowed");
    assert_eq!(wrong_method.headers["allow"], "POST");

    let unknown = get(&rt, t, "/v1/token/nope");
    let json = assert_error(&unknown, 404, "unknown_provider");
    assert_eq!(json["provider"], "nope");
    assert!(json["message"].as_str().unwrap().contains("configured: mdm, saas"), "{json}");
    assert_error(
        &call(&rt, t, Method::POST, "/v1/invalidate/nope", &[("Tokensmith-Request", "1")], "x"),
        404,
        "unknown_provider",
    );
    assert_error(&get(&rt, t, "/v2/whatever"), 404, "not_found");

    let metrics = get(&rt, t, "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.content_type.starts_with("text/plain"), "{metrics:#?}");
    for line in [
        r#"tokensmith_agent_requests_total{endpoint="token",status="200"} 3"#,
        r#"tokensmith_agent_requests_total{endpoint="header",status="200"} 2"#,
        r#"tokensmith_agent_requests_total{endpoint="invalidate",status="204"} 2"#,
        r#"tokensmith_agent_requests_total{endpoint="token",status="404"} 1"#,
        "tokensmith_agent_providers 2",
    ] {
        assert!(metrics.body.lines().any(|l| l == line), "{line} in {}", metrics.body);
    }
    // The caches' own metrics (core's `metrics` feature), labelled by provider and kind.
    for prefix in [
        r#"tokensmith_fetches_total{provider="saas",kind="oauth2",outcome="ok"} "#,
        r#"tokensmith_cache_hits_total{provider="saas",kind="oauth2"} "#,
        r#"tokensmith_token_seconds_left{provider="saas",kind="oauth2"} "#,
    ] {
        assert!(
            metrics.body.lines().any(|l| l.starts_with(prefix)),
            "{prefix} in {}",
            metrics.body
        );
    }
    for secret in [access.as_str(), fresh.as_str(), oauth2.credentials().client_secret().unwrap()] {
        assert!(!metrics.body.contains(secret), "/metrics shows a secret");
        assert!(!served.stderr().contains(secret), "the log shows a secret: {}", served.stderr());
    }
}

#[test]
fn the_header_rule_refuses_browsers_and_forwarded_requests() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&deyel, "lowcode"));
    let served = Served::start(&env, &["--socket", env.dir().join("a.sock").to_str().unwrap()]);
    let rt = client_rt();
    let t = &served.target;
    let ok = [("Tokensmith-Request", "1")];
    for (what, headers) in [
        ("no header", &[][..]),
        ("another value", &[("Tokensmith-Request", "true")][..]),
        ("an Origin", &[ok[0], ("Origin", "https://evil.example")][..]),
        ("X-Forwarded-For", &[ok[0], ("X-Forwarded-For", "10.1.2.3")][..]),
    ] {
        for path in [
            "/v1/token/lowcode",
            "/v1/header/lowcode",
            "/v1/providers",
            "/metrics",
            "/v1/token/nope",
        ] {
            let answer = call(&rt, t, Method::GET, path, headers, "");
            let json = assert_error(&answer, 403, "forbidden");
            assert!(!answer.body.contains("Bearer"), "{what}: {answer:#?}");
            assert!(json["provider"].is_null());
        }
        let post = call(&rt, t, Method::POST, "/v1/invalidate/lowcode", headers, "x");
        assert_error(&post, 403, "forbidden");
    }
    let browser = call(&rt, t, Method::GET, "/healthz", &[("Origin", "https://evil.example")], "");
    assert_eq!(browser.status, 403, "healthz needs no header, but a browser is still refused");
    assert_eq!(get(&rt, t, "/v1/token/lowcode").status, 200);
}

#[test]
fn over_tcp_refusals_are_502_failures_503_and_a_valid_token_outlives_its_endpoint() {
    let env = TestEnv::new();
    let good = env.emulator(Vendor::ConfigApi);
    let refusing = env.emulator(Vendor::ConfigApi); // 401 `invalid_client`
    // A port nothing listens on.
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let gone =
        provider(&good, "gone").replace(&good.token_url(), &format!("http://{down}/oauth/token"));
    env.write_config(&format!(
        "{}\n{}\n{gone}",
        provider(&good, "tenant"),
        with_wrong_secret(&refusing, "saas"),
    ));
    let served = Served::start(&env, &["--listen", "127.0.0.1:0"]);
    let rt = client_rt();
    let t = &served.target;
    assert!(matches!(t, Target::Tcp(addr) if addr.ip().is_loopback()));

    let refused = get(&rt, t, "/v1/token/saas");
    let json = assert_error(&refused, 502, "rejected");
    assert_eq!(json["provider"], "saas");
    assert_eq!(json["vendor_error"], "invalid_client", "{json}");
    assert_eq!(json["status"], 401, "{json}");
    // The CLI's `--json` error for the same refusal is the same object.
    let cli = env.run(&["token", "saas", "--json", "--no-cache"]);
    let cli_json: serde_json::Value = serde_json::from_str(cli.fails(3)).unwrap();
    assert_eq!(cli_json, json);
    assert_error(&get(&rt, t, "/v1/header/saas"), 502, "rejected");

    let unavailable = get(&rt, t, "/v1/token/gone");
    let json = assert_error(&unavailable, 503, "unavailable");
    assert!(json["status"].is_null() && json["vendor_error"].is_null(), "{json}");

    let first = get(&rt, t, "/v1/token/tenant");
    assert_eq!(first.status, 200);
    good.set_fault(Fault::Status(503));
    let cached = get(&rt, t, "/v1/token/tenant");
    assert_eq!(cached.status, 200, "the cached token is still valid: {cached:#?}");
    assert_eq!(cached.json()["access_token"], first.json()["access_token"]);
    // Invalidating it leaves nothing valid: the endpoint's 503 shows.
    let token = first.json()["access_token"].as_str().unwrap().to_owned();
    let post =
        call(&rt, t, Method::POST, "/v1/invalidate/tenant", &[("Tokensmith-Request", "1")], &token);
    assert_eq!(post.status, 204);
    let failed = get(&rt, t, "/v1/token/tenant");
    let json = assert_error(&failed, 503, "unavailable");
    assert_eq!(json["status"], 503);

    let log = served.stderr();
    for secret in [WRONG_SECRET, token.as_str(), good.credentials().client_secret().unwrap()] {
        assert!(!log.contains(secret), "the log shows a secret: {log}");
        for answer in [&refused, &unavailable, &failed] {
            assert!(!answer.body.contains(secret), "{answer:#?}");
        }
    }
    assert!(log.contains("keeping the token warm failed"), "{log}");
}

#[test]
fn listening_elsewhere_than_loopback_is_refused() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&deyel, "lowcode"));
    let run = env.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert!(run.fails(2).contains("loopback"), "{run:#?}");
    assert_eq!(deyel.requests(), 0);
}

#[test]
fn a_second_agent_on_the_same_socket_refuses_to_start_and_a_stale_one_is_replaced() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&deyel, "lowcode"));
    let socket = env.dir().join("agent.sock");
    // A stale socket: bound once, nobody listening.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let mut served = Served::start(&env, &["--socket", socket.to_str().unwrap()]);
    let second = env.run(&["serve", "--socket", socket.to_str().unwrap()]);
    let line = second.fails(2);
    assert_eq!(
        line,
        format!("tokensmith: another tokensmith serve is running on {}", socket.display())
    );
    let rt = client_rt();
    assert_eq!(
        get(&rt, &served.target, "/v1/header/lowcode").status,
        200,
        "the first still serves"
    );

    served.signal(rustix::process::Signal::TERM);
    assert_eq!(served.wait_exit(), Some(0));
    assert!(!socket.exists(), "the socket is removed on exit");

    // Never a file that is not a socket.
    std::fs::write(&socket, "precious").unwrap();
    let refused = env.run(&["serve", "--socket", socket.to_str().unwrap()]);
    assert!(refused.fails(2).contains("not a socket"), "{refused:#?}");
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "precious");
}

#[test]
fn sighup_keeps_unchanged_providers_drops_removed_ones_and_refuses_a_broken_config() {
    let env = TestEnv::new();
    let kept = env.emulator(Vendor::Deyel);
    let removed = env.emulator(Vendor::ConfigApi);
    let added = env.emulator(Vendor::SotiConnect);
    env.write_config(&format!("{}\n{}", provider(&kept, "kept"), provider(&removed, "removed")));
    let mut served = Served::start(&env, &[]);
    let rt = client_rt();
    let t = served.target.clone();
    let before = get(&rt, &t, "/v1/token/kept").json()["access_token"].clone();
    assert_eq!(get(&rt, &t, "/v1/token/removed").status, 200);

    env.write_config(&format!("{}\n{}", provider(&kept, "kept"), provider(&added, "added")));
    served.signal(rustix::process::Signal::HUP);
    served.wait_for_line("config reloaded");
    let names = get(&rt, &t, "/v1/providers").json();
    assert_eq!(
        names,
        serde_json::json!([{ "name": "added", "kind": "soti-connect" }, { "name": "kept", "kind": "deyel" }])
    );
    assert_eq!(get(&rt, &t, "/v1/token/kept").json()["access_token"], before, "kept its token");
    assert_eq!(kept.tokens_issued(), 1);
    assert_error(&get(&rt, &t, "/v1/token/removed"), 404, "unknown_provider");
    assert_eq!(get(&rt, &t, "/v1/token/added").status, 200);

    env.write_config("[providers.broken\nkind = ");
    served.signal(rustix::process::Signal::HUP);
    served.wait_for_line("config reload refused");
    assert_eq!(
        get(&rt, &t, "/v1/providers").json().as_array().unwrap().len(),
        2,
        "the old config stays"
    );
    assert_eq!(get(&rt, &t, "/v1/token/kept").json()["access_token"], before);
}

#[test]
fn sighup_rebuilds_a_provider_whose_secret_file_changed_behind_an_unchanged_table() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    let secret = deyel.credentials().client_secret().unwrap().to_owned();
    let file = env.dir().join("deyel.secret");
    std::fs::write(&file, &secret).unwrap();
    let table = provider(&deyel, "lowcode")
        .replace(&toml_str(&secret), &format!("{{ file = {} }}", toml_str(file.to_str().unwrap())));
    assert!(table.contains("{ file = "), "{table}");
    env.write_config(&table);
    let mut served = Served::start(&env, &[]);
    let rt = client_rt();
    let t = served.target.clone();
    assert_eq!(get(&rt, &t, "/v1/token/lowcode").status, 200);

    // Same table, same secret: kept with its token.
    served.signal(rustix::process::Signal::HUP);
    assert!(served.wait_for_nth_line("config reloaded", 1).contains("kept=1"));
    assert_eq!(get(&rt, &t, "/v1/token/lowcode").status, 200);
    assert_eq!(deyel.requests(), 1);

    // The secret rotated in its file (here to one the vendor refuses): the
    // provider is rebuilt and asks with the new secret at once, rather than
    // serving the old token until a restart.
    std::fs::write(&file, WRONG_SECRET).unwrap();
    served.signal(rustix::process::Signal::HUP);
    assert!(served.wait_for_nth_line("config reloaded", 2).contains("kept=0"));
    assert_error(&get(&rt, &t, "/v1/token/lowcode"), 502, "rejected");
    assert_eq!(deyel.requests(), 2);

    // Back to the right secret: served again.
    std::fs::write(&file, &secret).unwrap();
    served.signal(rustix::process::Signal::HUP);
    assert!(served.wait_for_nth_line("config reloaded", 3).contains("kept=0"));
    assert_eq!(get(&rt, &t, "/v1/token/lowcode").status, 200);
}

/// What the clients of the load test share with it.
#[derive(Default)]
struct Load {
    /// Clients that have had their first answer.
    started: AtomicUsize,
    /// Requests answered 200.
    answered: AtomicUsize,
    /// Per config (by its number of providers less one): the answers to
    /// `GET /v1/providers` that came from it.
    seen: [AtomicUsize; LOAD_RELOADS + 1],
    /// Set once the last reload has been seen: the clients finish.
    stop: AtomicBool,
}

/// The SIGHUPs of the load test.
const LOAD_RELOADS: usize = 3;

/// 200 clients keep sending requests on their keep-alive connections while
/// the config is reloaded [`LOAD_RELOADS`] times; every third request is
/// `GET /v1/providers`, whose length tells which config answered it (config
/// `k` has `k + 1` providers). The load starts before the first SIGHUP
/// (every client has had an answer from the first config) and goes on after
/// the last (each config, once its reload is logged, answers 200 requests
/// on those connections before the next SIGHUP is sent; each client ends
/// with one more `/v1/providers` after the last reload), so the reloads
/// overlap the load by construction, and the answers prove it: on every
/// connection the configs seen run from the first to the last, never back.
#[test]
fn two_hundred_clients_get_one_upstream_fetch_and_sighups_during_the_load_fail_no_request() {
    const CLIENTS: usize = 200;
    const REQUESTS: usize = 50;
    let env = TestEnv::new();
    let oauth2 = env.emulator(Vendor::OAuth2);
    let others: Vec<_> = (0..LOAD_RELOADS).map(|_| env.emulator(Vendor::Deyel)).collect();
    // Config `k`: the provider under load, unchanged, and `k` others.
    let config = |k: usize| {
        let mut text = provider(&oauth2, "saas");
        for (i, other) in others[..k].iter().enumerate() {
            text.push('\n');
            text.push_str(&provider(other, &format!("other{i}")));
        }
        text
    };
    env.write_config(&config(0));
    let mut served = Served::start(&env, &[]);
    let rt = client_rt();
    let target = served.target.clone();
    let load = Arc::new(Load::default());
    let shared = load.clone();
    let clients = rt.spawn(async move {
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (target, load) = (target.clone(), shared.clone());
                tokio::spawn(async move {
                    let mut client = Client::connect(&target).await.unwrap();
                    // The config of each `/v1/providers` answer, in order.
                    let mut configs = Vec::new();
                    for j in 0.. {
                        let last = j % 3 == 0 && j >= REQUESTS && load.stop.load(SeqCst);
                        let path = ["/v1/providers", "/v1/header/saas", "/v1/token/saas"][j % 3];
                        match client.get(path).await {
                            Ok(answer) if answer.status == 200 => {
                                if j % 3 == 0 {
                                    let config = answer.json().as_array().unwrap().len() - 1;
                                    load.seen[config].fetch_add(1, SeqCst);
                                    configs.push(config);
                                }
                                if j == 0 {
                                    load.started.fetch_add(1, SeqCst);
                                }
                                load.answered.fetch_add(1, SeqCst);
                            }
                            other => return Err(format!("{path}: {other:?}")),
                        }
                        if last {
                            break;
                        }
                    }
                    Ok(configs)
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    });
    let count = |counter: &AtomicUsize| counter.load(SeqCst);
    // Hang guards only: each wait is for something the load does at once.
    let under_way = wait_until(|| (count(&load.started) == CLIENTS).then_some(()));
    assert!(under_way.is_some(), "{} of {CLIENTS} clients answered", count(&load.started));
    for k in 1..=LOAD_RELOADS {
        // Reload `k` adds a provider; the one under load is kept.
        env.write_config(&config(k));
        served.signal(rustix::process::Signal::HUP);
        let line = served.wait_for_nth_line("config reloaded", k);
        assert!(line.contains(&format!("kept={k}")), "{line}");
        let answered_by_k = wait_until(|| (count(&load.seen[k]) >= CLIENTS).then_some(()));
        assert!(answered_by_k.is_some(), "config {k} answered {} requests", count(&load.seen[k]));
    }
    load.stop.store(true, SeqCst);
    let results = rt.block_on(clients).unwrap();
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} clients failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    for configs in results.iter().flatten() {
        assert_eq!(configs.first(), Some(&0), "{configs:?}");
        assert_eq!(configs.last(), Some(&LOAD_RELOADS), "{configs:?}");
        assert!(configs.windows(2).all(|w| w[0] <= w[1]), "never an older config: {configs:?}");
    }
    let answered = count(&load.answered);
    assert!(answered >= CLIENTS * REQUESTS, "{answered}");
    assert_eq!(oauth2.tokens_issued(), 1, "one upstream fetch for {answered} requests");
    let metrics = get(&rt, &served.target, "/metrics").body;
    let served_ok: usize = metrics
        .lines()
        .filter(|l| {
            l.starts_with("tokensmith_agent_requests_total")
                && l.contains(r#"status="200""#)
                && !l.contains("metrics")
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(served_ok, answered, "{metrics}");
}

#[test]
fn sigterm_drains_the_request_in_flight_and_exits_0() {
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&deyel, "lowcode"));
    let mut served = Served::start(&env, &[]);
    let socket = match &served.target {
        Target::Unix(path) => path.clone(),
        Target::Tcp(_) => unreachable!(),
    };
    let rt = client_rt();
    let t = served.target.clone();
    // Warm-up done: one token fetched. Drop it and slow the endpoint, so the
    // next request is in flight for a while.
    let token =
        get(&rt, &t, "/v1/token/lowcode").json()["access_token"].as_str().unwrap().to_owned();
    let post = call(
        &rt,
        &t,
        Method::POST,
        "/v1/invalidate/lowcode",
        &[("Tokensmith-Request", "1")],
        &token,
    );
    assert_eq!(post.status, 204);
    deyel.set_fault(Fault::Delay(Duration::from_millis(700)));
    let slow = rt.spawn(async move {
        let mut client = Client::connect(&t).await.unwrap();
        client.get("/v1/token/lowcode").await
    });
    // The agent is asking the endpoint: the request is in flight.
    wait_until(|| (deyel.requests() >= 2).then_some(())).unwrap();
    served.signal(rustix::process::Signal::TERM);
    let answer = rt.block_on(slow).unwrap().unwrap();
    assert_eq!(answer.status, 200, "{answer:#?}");
    assert_ne!(answer.json()["access_token"], token.as_str());
    assert_eq!(served.wait_exit(), Some(0), "{}", served.stderr());
    assert!(!socket.exists(), "the socket is removed on exit");
    assert!(served.stderr().contains("tokensmith serve: stopped"), "{}", served.stderr());
}

#[test]
fn a_single_use_grant_without_a_file_store_is_refused() {
    let env = TestEnv::new();
    let oauth2 = env.emulator(Vendor::OAuth2);
    let refresh = oauth2.issue_refresh_token();
    let table = provider(&oauth2, "app").replace(
        "grant = \"client_credentials\"\n",
        &format!("grant = \"refresh_token\"\nrefresh_token = {}\n", toml_str(&refresh)),
    );
    env.write_config(&table);
    let run = env.run(&["serve", "--socket", env.dir().join("x.sock").to_str().unwrap()]);
    assert!(run.fails(2).contains("refresh_token_store"), "{run:#?}");
    assert_eq!(oauth2.requests(), 0);
    assert!(!env.dir().join("x.sock").exists());
}

#[test]
fn slow_clients_time_out_and_oversized_heads_are_refused_while_others_are_served() {
    use std::fmt::Write as _;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&deyel, "lowcode"));
    let served = Served::start(&env, &[]);
    let Target::Unix(socket) = served.target.clone() else { unreachable!() };
    let rt = client_rt();
    rt.block_on(async {
        // Headers that never end: the agent hangs up (5 s header read timeout).
        let mut slow = tokio::net::UnixStream::connect(&socket).await.unwrap();
        slow.write_all(b"GET /v1/providers HTTP/1.1\r\nHost: agent\r\nTokensmith-Request: 1\r\n")
            .await
            .unwrap();
        // Meanwhile others are served.
        let mut client = Client::connect(&served.target).await.unwrap();
        assert_eq!(client.get("/v1/header/lowcode").await.unwrap().status, 200);
        let mut rest = Vec::new();
        let read = tokio::time::timeout(PATIENCE, slow.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the slow client is still connected after {PATIENCE:?}");

        // Too many headers, and too large a head: refused (431), the connection closed.
        let many = (0..100).fold(String::new(), |mut all, i| {
            write!(all, "X-H{i}: v\r\n").unwrap();
            all
        });
        let large = format!("X-Big: {}\r\n", "a".repeat(16 * 1024));
        for extra in [many, large] {
            let mut stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
            let request = format!(
                "GET /v1/providers HTTP/1.1\r\nHost: a\r\nTokensmith-Request: 1\r\n{extra}\r\n"
            );
            let _ = stream.write_all(request.as_bytes()).await;
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await.unwrap();
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
        }
        // (An idle keep-alive connection is closed after the same 5 s.)
        let mut client = Client::connect(&served.target).await.unwrap();
        assert_eq!(client.get("/v1/providers").await.unwrap().status, 200);
    });
}

/// The agent's open file descriptors (`/proc/PID/fd`).
fn open_fds(served: &Served) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", served.child.id())).unwrap().count()
}

/// The agent's `tokensmith_agent_connections` gauge, read over a connection
/// of its own (which it counts).
fn open_connections(rt: &tokio::runtime::Runtime, target: &Target) -> u64 {
    let metrics = get(rt, target, "/metrics").body;
    let line = metrics.lines().find(|l| l.starts_with("tokensmith_agent_connections "));
    let value = line.unwrap_or_else(|| panic!("no connections gauge in {metrics}"));
    value.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Requests the misbehaving clients below send (whole or in part).
const TOKEN_REQUEST: &[u8] =
    b"GET /v1/token/lowcode HTTP/1.1\r\nHost: agent\r\nTokensmith-Request: 1\r\n\r\n";
const METRICS_REQUEST: &[u8] =
    b"GET /metrics HTTP/1.1\r\nHost: agent\r\nTokensmith-Request: 1\r\n\r\n";
/// A head promising a 100-byte body.
const INVALIDATE_HEAD: &[u8] = b"POST /v1/invalidate/lowcode HTTP/1.1\r\nHost: agent\r\n\
    Tokensmith-Request: 1\r\nContent-Length: 100\r\n\r\n";
/// The same with 9 bytes of the body.
const INVALIDATE_PART: &[u8] = b"POST /v1/invalidate/lowcode HTTP/1.1\r\nHost: agent\r\n\
    Tokensmith-Request: 1\r\nContent-Length: 100\r\n\r\nonly-part";

/// `each` connections to `socket` per item of `sends`, each having sent it:
/// returned open, with what they sent.
fn connect_and_send(
    rt: &tokio::runtime::Runtime,
    socket: &std::path::Path,
    sends: &[&'static [u8]],
    each: usize,
) -> Vec<(&'static [u8], tokio::net::UnixStream)> {
    use tokio::io::AsyncWriteExt as _;
    rt.block_on(async {
        let mut open = Vec::new();
        for &sent in sends {
            for _ in 0..each {
                let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
                stream.write_all(sent).await.unwrap();
                open.push((sent, stream));
            }
        }
        open
    })
}

/// The fault table's row "an agent client that disconnects mid-response"
/// (`docs/robustness.md`): clients that send a request and close before
/// reading the answer (while the agent waits on a slow endpoint, and for a
/// finished answer), that close half-way through the request, and that
/// stall (nothing sent, a head that never ends, a body that never comes).
/// Meanwhile other clients are served; the stalled ones are cut by the
/// agent's timeouts (5 s for a head, 10 s for a body, within a generous
/// guard); afterwards the agent counts one open connection (the one asking)
/// and holds no more file descriptors than before.
#[test]
fn clients_that_disconnect_or_stall_are_cut_and_leak_nothing() {
    use tokio::io::AsyncReadExt as _;

    /// Misbehaving connections of each kind.
    const EACH: usize = 100;
    /// Well past the agent's longest timeout (10 s for a body).
    const CUT_GUARD: Duration = Duration::from_secs(40);
    const UNFINISHED_HEAD: &[u8] = TOKEN_REQUEST.split_at(TOKEN_REQUEST.len() - 2).0;

    let env = TestEnv::new();
    let deyel = env.emulator(Vendor::Deyel);
    env.write_config(&provider(&deyel, "lowcode"));
    let served = Served::start(&env, &[]);
    let Target::Unix(socket) = served.target.clone() else { unreachable!() };
    let rt = client_rt();
    let t = served.target.clone();
    let token =
        get(&rt, &t, "/v1/token/lowcode").json()["access_token"].as_str().unwrap().to_owned();
    // Settled: only the asking connection is open.
    wait_until(|| (open_connections(&rt, &t) == 1).then_some(())).expect("connections settle");
    let baseline = open_fds(&served);

    // 1. A full request, then gone before the answer: while the agent
    // waits for a fetch (the token dropped, the endpoint slow)…
    let headers = [("Tokensmith-Request", "1")];
    let post = call(&rt, &t, Method::POST, "/v1/invalidate/lowcode", &headers, &token);
    assert_eq!(post.status, 204);
    deyel.set_latency(Duration::from_millis(500));
    let issued = deyel.tokens_issued();
    drop(connect_and_send(&rt, &socket, &[TOKEN_REQUEST, METRICS_REQUEST], EACH));
    wait_until(|| (deyel.tokens_issued() > issued).then_some(())).expect("the fetch ends");
    deyel.set_latency(Duration::ZERO);
    // …and with the answer ready (a cache hit, /metrics): closed unread.
    for _ in 0..EACH {
        drop(connect_and_send(&rt, &socket, &[TOKEN_REQUEST, METRICS_REQUEST], 1));
    }
    assert_eq!(deyel.tokens_issued(), issued + 1, "one fetch for every client that left");

    // 2. Gone half-way through the request: the head, or the body.
    let partial = [&TOKEN_REQUEST[..20], UNFINISHED_HEAD, INVALIDATE_PART];
    for _ in 0..EACH {
        drop(connect_and_send(&rt, &socket, &partial, 1));
    }

    // 3. Stalled: nothing sent, a head that never ends, a body that never
    // comes. Each is cut by the agent; others are served meanwhile.
    let stalled = connect_and_send(&rt, &socket, &[b"", UNFINISHED_HEAD, INVALIDATE_HEAD], EACH);
    // The agent holds them (so the counts below can see a leak). Read at
    // once and with room to spare: the first ones are cut 5 s after they
    // connected, which a loaded machine can reach while the last connect.
    let (held, stalled_count) = (open_connections(&rt, &t), stalled.len());
    let fds = open_fds(&served);
    assert!(held > u64::try_from(stalled_count / 2).unwrap(), "{held} connections counted");
    assert!(fds >= baseline + stalled_count / 2, "{fds} fds, {baseline} before");
    for _ in 0..20 {
        assert_eq!(get(&rt, &t, "/v1/header/lowcode").status, 200, "others are served");
    }
    rt.block_on(async {
        let cuts: Vec<_> = stalled
            .into_iter()
            .map(|(sent, mut stream)| {
                tokio::spawn(async move {
                    let mut answer = Vec::new();
                    let read =
                        tokio::time::timeout(CUT_GUARD, stream.read_to_end(&mut answer)).await;
                    assert!(read.is_ok(), "a stalled connection ({sent:?}) is still open");
                    (sent, String::from_utf8_lossy(&answer).into_owned())
                })
            })
            .collect();
        for cut in cuts {
            let (sent, answer) = cut.await.unwrap();
            if sent == INVALIDATE_HEAD {
                // The body timed out: the agent says so before hanging up.
                assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
            }
        }
    });

    // Nothing left behind: one connection (the one asking), no more file
    // descriptors than before, still serving, no panic.
    wait_until(|| (open_connections(&rt, &t) == 1).then_some(()))
        .unwrap_or_else(|| panic!("connections left open: {}", open_connections(&rt, &t)));
    wait_until(|| (open_fds(&served) <= baseline).then_some(()))
        .unwrap_or_else(|| panic!("{} fds open, {baseline} before", open_fds(&served)));
    let after = get(&rt, &t, "/v1/token/lowcode");
    assert_eq!(after.status, 200, "{after:#?}");
    assert!(!served.stderr().contains("panicked"), "{}", served.stderr());
}
