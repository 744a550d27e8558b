//! The token agent's cost next to a constant string (`cargo bench -p
//! tokensmith-cli --bench serve`; the numbers are recorded in
//! `docs/BENCHMARKS.md`): `GET /v1/header/NAME` over a Unix socket, served
//! by the built `tokensmith serve` from a warm token, against the same hyper
//! server answering a constant string: this binary started again
//! (`--constant-server SOCKET`), in a process of its own like the agent, on
//! the agent's own runtime and HTTP/1.1 settings (`src/serve/settings.rs`,
//! included below), answering the agent's exact bytes (the same body, the
//! same `Content-Type` and `Cache-Control` headers).
//!
//! **Timing** (the default): one client (hyper, keep-alive connections, each
//! sending its requests one after another) measures both servers in many
//! short batches, alternating them batch by batch (A B, then B A, …), so
//! drift and the other processes of a shared machine hit both alike. Each
//! pair of batches gives three ratios, agent over baseline: throughput
//! (baseline requests/s over the agent's), p50 and p99 latency; the report
//! shows the median of each over all pairs, with its interquartile range.
//!
//! **Instructions** (`SERVE_BENCH_CALLGRIND=1`): each server runs under
//! `valgrind --tool=callgrind`; after a warm-up, the instructions of two
//! windows of `N` requests on one connection are counted (the counters
//! zeroed and dumped with `callgrind_control`), immune to the machine's
//! noise. The profiles of the windows stay in `target/serve-callgrind/` for
//! `callgrind_annotate`.
//!
//! Environment: `SERVE_BENCH_CLIENTS` (connection counts, comma-separated,
//! default `1,32`), `SERVE_BENCH_BATCH` (requests per batch, all connections
//! together, default 3,200), `SERVE_BENCH_PAIRS` (measured batch pairs per
//! connection count, default 100, after 5 warm-up pairs);
//! `SERVE_BENCH_CALLGRIND_REQUESTS` (`N`, default 5,000);
//! `SERVE_BENCH_AGENT`: the `tokensmith` binary to run instead of the one
//! cargo built. Under valgrind it must be one built with
//! `RUSTFLAGS="--cfg rustix_use_libc"` (rustix's own vDSO lookup crashes
//! under valgrind, rustix#1559; see `docs/BENCHMARKS.md`).

#![allow(dead_code, reason = "the shared test client has more than the bench uses")]

#[path = "../tests/it/agent_client.rs"]
mod agent_client;
#[path = "../src/serve/settings.rs"]
mod settings;

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokensmith_core::{Clock as _, SystemClock};
use tokensmith_testkit::{Emulator, Vendor};

use crate::agent_client::{Client, Target};

/// The provider the agent serves.
const PATH: &str = "/v1/header/lowcode";
/// Where the baseline gets the body it answers (the agent's answer).
const BODY_ENV: &str = "SERVE_BENCH_BODY";
/// Warm-up batch pairs before the measured ones.
const WARM_UP_PAIRS: usize = 5;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name)
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect::<Vec<_>>())
        .filter(|list| !list.is_empty())
        .unwrap_or_else(|| default.to_vec())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // The baseline server, in a process of its own like the agent: this
    // binary started again with `--constant-server SOCKET`.
    if let Some(i) = args.iter().position(|a| a == "--constant-server") {
        let body = std::env::var(BODY_ENV).expect("the body to answer");
        let rt = settings::runtime().unwrap();
        rt.block_on(constant_server(Path::new(&args[i + 1]), body));
        return;
    }
    // `cargo bench` passes `--bench`; a test run (`cargo test --benches`) does not.
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();

    // The token endpoint, on its own runtime.
    let upstream =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let emulator = upstream.block_on(Emulator::start(Vendor::Deyel)).unwrap();
    let config = dir.path().join("tokensmith.toml");
    std::fs::write(&config, emulator.config_snippet("lowcode")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let bench = Bench { dir: dir.path().to_path_buf(), config };

    if std::env::var_os("SERVE_BENCH_CALLGRIND").is_some() {
        count_instructions(&rt, &bench);
        return;
    }

    let agent = bench.start_agent(&rt, &[]);
    let body = rt.block_on(header(&agent.target));
    let constant = bench.start_constant(&rt, &[], &body);
    let issued_before = emulator.tokens_issued();
    let batch = env_or("SERVE_BENCH_BATCH", 3200);
    let pairs = env_or("SERVE_BENCH_PAIRS", 100);
    for clients in env_list("SERVE_BENCH_CLIENTS", &[1, 32]) {
        let per_connection = (batch / clients).max(1);
        let (base, served) = rt.block_on(async {
            (connect(&constant.target, clients).await, connect(&agent.target, clients).await)
        });
        let mut sides = [base, served];
        let mut ratios = Vec::with_capacity(pairs);
        let mut figures: [Vec<Batch>; 2] = [Vec::new(), Vec::new()];
        for pair in 0..WARM_UP_PAIRS + pairs {
            // A B, then B A: neither side always runs first.
            let order = if pair % 2 == 0 { [0, 1] } else { [1, 0] };
            let mut measured = [None, None];
            for side in order {
                let (connections, result) =
                    rt.block_on(run_batch(std::mem::take(&mut sides[side]), per_connection));
                sides[side] = connections;
                measured[side] = Some(result);
            }
            let [Some(b), Some(a)] = measured else { unreachable!() };
            if pair >= WARM_UP_PAIRS {
                ratios.push(Ratios::of(&b, &a));
                figures[0].push(b);
                figures[1].push(a);
            }
        }
        assert_eq!(
            emulator.tokens_issued(),
            issued_before,
            "every answer came from the warm token"
        );
        report_timing(clients, per_connection, &figures, &ratios);
    }
    drop((agent, constant));
}

/// Where the bench keeps its files and the agent's config.
struct Bench {
    dir: PathBuf,
    config: PathBuf,
}

impl Bench {
    /// The agent, as users run it, behind `wrapper` (a profiler, or none).
    fn start_agent(&self, rt: &tokio::runtime::Runtime, wrapper: &[String]) -> Server {
        let socket = self.dir.join("agent.sock");
        let _ = std::fs::remove_file(&socket);
        let built = PathBuf::from(env!("CARGO_BIN_EXE_tokensmith"));
        let program = std::env::var_os("SERVE_BENCH_AGENT").map_or(built, PathBuf::from);
        let mut cmd = wrapped(wrapper, &program);
        cmd.arg("--config").arg(&self.config).arg("serve").arg("--socket").arg(&socket);
        Server::start(rt, cmd, socket)
    }

    /// The baseline answering `body`, behind `wrapper`.
    fn start_constant(
        &self,
        rt: &tokio::runtime::Runtime,
        wrapper: &[String],
        body: &str,
    ) -> Server {
        let socket = self.dir.join("constant.sock");
        let _ = std::fs::remove_file(&socket);
        let mut cmd = wrapped(wrapper, &std::env::current_exe().unwrap());
        cmd.arg("--constant-server").arg(&socket).env(BODY_ENV, body);
        Server::start(rt, cmd, socket)
    }
}

/// `program` run by `wrapper[0] wrapper[1..]`, or directly.
fn wrapped(wrapper: &[String], program: &Path) -> Command {
    match wrapper.split_first() {
        Some((first, rest)) => {
            let mut cmd = Command::new(first);
            cmd.args(rest).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// A server process, stopped (SIGTERM, then waited for) when dropped.
struct Server {
    child: Child,
    target: Target,
}

impl Server {
    /// Starts `cmd`, listening on `socket` (its stderr in `SOCKET.log`).
    fn start(rt: &tokio::runtime::Runtime, mut cmd: Command, socket: PathBuf) -> Server {
        let log = socket.with_extension("log");
        let stderr = std::fs::File::create(&log).unwrap();
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr).spawn().unwrap();
        let server = Server { child, target: Target::Unix(socket) };
        let ready = rt.block_on(wait_ready(&server.target));
        assert!(
            ready,
            "{cmd:?} did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        server
    }

    /// SIGTERM (both servers exit cleanly on it, so a profiler writes its
    /// output), then waits.
    fn stop(mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One batch's result.
#[derive(Clone, Copy)]
struct Batch {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// One pair of batches: the agent over the baseline.
#[derive(Clone, Copy)]
struct Ratios {
    throughput: f64,
    p50: f64,
    p99: f64,
}

impl Ratios {
    fn of(baseline: &Batch, agent: &Batch) -> Ratios {
        Ratios {
            throughput: baseline.per_second / agent.per_second,
            p50: agent.p50.as_secs_f64() / baseline.p50.as_secs_f64(),
            p99: agent.p99.as_secs_f64() / baseline.p99.as_secs_f64(),
        }
    }
}

/// The 25th, 50th and 75th percentiles of `values`.
fn quartiles(mut values: Vec<f64>) -> [f64; 3] {
    values.sort_by(f64::total_cmp);
    [0.25, 0.5, 0.75].map(|q| values[index(values.len(), q)])
}

/// The index of quantile `q` in a sorted list of `len`.
fn index(len: usize, q: f64) -> usize {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a sorted list"
    )]
    let i = ((len - 1) as f64 * q).round() as usize;
    i
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn report_timing(clients: usize, per_connection: usize, figures: &[Vec<Batch>; 2], r: &[Ratios]) {
    report(&format!(
        "serve/header: {clients} connection(s) x {per_connection} requests per batch, {} interleaved batch pairs",
        r.len()
    ));
    report("| | requests/s | p50 | p99 |");
    report("|---|---|---|---|");
    for (name, side) in ["constant string (hyper)", "tokensmith serve"].iter().zip(figures) {
        let [_, per_second, _] = quartiles(side.iter().map(|b| b.per_second).collect());
        let [_, p50, _] = quartiles(side.iter().map(|b| micros(b.p50)).collect());
        let [_, p99, _] = quartiles(side.iter().map(|b| micros(b.p99)).collect());
        report(&format!("| {name} (median batch) | {per_second:.0} | {p50:.1} us | {p99:.1} us |"));
    }
    let show = |values: Vec<f64>| {
        let [q1, median, q3] = quartiles(values);
        format!("**{median:.3}x** ({q1:.3}-{q3:.3})")
    };
    report(&format!(
        "| **ratio** (median of the pairs' ratios; quartiles) | {} | {} | {} |",
        show(r.iter().map(|r| r.throughput).collect()),
        show(r.iter().map(|r| r.p50).collect()),
        show(r.iter().map(|r| r.p99).collect()),
    ));
}

/// `clients` connections to `target`.
async fn connect(target: &Target, clients: usize) -> Vec<Client> {
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(Client::connect(target).await.unwrap());
    }
    connections
}

/// One batch: each connection sends `requests` requests in a row; the
/// connections are handed back for the next batch.
async fn run_batch(connections: Vec<Client>, requests: usize) -> (Vec<Client>, Batch) {
    let start = SystemClock.monotonic();
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(requests);
                for _ in 0..requests {
                    let sent = SystemClock.monotonic();
                    let answer = client.get(PATH).await.unwrap();
                    latencies.push(SystemClock.monotonic().saturating_sub(sent));
                    assert_eq!(answer.status, 200, "{answer:?}");
                    assert!(answer.body.starts_with("Bearer "));
                }
                (client, latencies)
            })
        })
        .collect();
    let mut connections = Vec::with_capacity(tasks.len());
    let mut latencies = Vec::with_capacity(tasks.len() * requests);
    for task in tasks {
        let (client, measured) = task.await.unwrap();
        connections.push(client);
        latencies.extend(measured);
    }
    let elapsed = SystemClock.monotonic().saturating_sub(start);
    latencies.sort_unstable();
    #[allow(clippy::cast_precision_loss, reason = "a request count")]
    let per_second = latencies.len() as f64 / elapsed.as_secs_f64();
    let at = |q: f64| latencies[index(latencies.len(), q)];
    (connections, Batch { per_second, p50: at(0.50), p99: at(0.99) })
}

/// The agent's answer to [`PATH`]: the body the baseline answers too.
async fn header(target: &Target) -> String {
    let answer = Client::connect(target).await.unwrap().get(PATH).await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body
}

/// Waits until a server answers (at most two minutes: under callgrind, on
/// a busy machine, starting is slow); whether it did.
async fn wait_ready(target: &Target) -> bool {
    for _ in 0..12_000 {
        if let Ok(mut client) = Client::connect(target).await
            && client.get(PATH).await.is_ok_and(|a| a.status == 200)
        {
            return true;
        }
        #[allow(clippy::disallowed_methods, reason = "polling a child process that is starting")]
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Instructions per request of each server, by callgrind: after a warm-up
/// on one connection the counters are zeroed (`callgrind_control -z`),
/// then each of [`WINDOWS`] windows of `N` requests is dumped on its own
/// (`callgrind_control -d`: `NAME.callgrind.1`, `.2`): start-up (and its
/// time-dependent clock calibrations) and shut-down are left out.
fn count_instructions(rt: &tokio::runtime::Runtime, bench: &Bench) {
    const WINDOWS: usize = 2;
    let n = env_or("SERVE_BENCH_CALLGRIND_REQUESTS", 5000);
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/serve-callgrind");
    std::fs::create_dir_all(&out).unwrap();
    let body = {
        let agent = bench.start_agent(rt, &[]);
        rt.block_on(header(&agent.target))
    };
    let mut per_request = Vec::new();
    for name in ["constant", "agent"] {
        let file = out.join(format!("{name}.callgrind"));
        for part in 0..=WINDOWS {
            let _ = std::fs::remove_file(part_file(&file, part));
        }
        let wrapper = vec![
            "valgrind".to_owned(),
            "--tool=callgrind".to_owned(),
            format!("--callgrind-out-file={}", file.display()),
        ];
        let server = if name == "agent" {
            bench.start_agent(rt, &wrapper)
        } else {
            bench.start_constant(rt, &wrapper, &body)
        };
        let mut client = rt.block_on(Client::connect(&server.target)).unwrap();
        let mut send = |count: usize| {
            rt.block_on(async {
                for _ in 0..count {
                    let answer = client.get(PATH).await.unwrap();
                    assert_eq!(answer.status, 200, "{answer:?}");
                }
            });
        };
        send(1000);
        callgrind_control("-z", &server);
        let mut windows = Vec::new();
        for part in 1..=WINDOWS {
            send(n);
            callgrind_control("-d", &server);
            #[allow(clippy::cast_precision_loss, reason = "instruction and request counts")]
            windows.push(callgrind_total(&part_file(&file, part)) as f64 / n as f64);
        }
        drop(client);
        server.stop();
        let shown: Vec<String> = windows.iter().map(|w| format!("{w:.0}")).collect();
        report(&format!(
            "serve/instructions {name}: per request over {WINDOWS} windows of {n} requests: {}",
            shown.join(", ")
        ));
        #[allow(clippy::cast_precision_loss, reason = "two windows")]
        per_request.push(windows.iter().sum::<f64>() / WINDOWS as f64);
    }
    report(&format!(
        "serve/instructions: tokensmith serve / constant string = {:.3}x ({:.0} more per request); profiles in {}",
        per_request[1] / per_request[0],
        per_request[1] - per_request[0],
        out.display()
    ));
}

/// Dump `part` of the callgrind profile `file` (`0`: the one written at
/// exit).
fn part_file(file: &Path, part: usize) -> PathBuf {
    if part == 0 { file.to_path_buf() } else { PathBuf::from(format!("{}.{part}", file.display())) }
}

/// Runs `callgrind_control FLAG PID` on `server` and waits for it.
fn callgrind_control(flag: &str, server: &Server) {
    let status = Command::new("callgrind_control")
        .arg(flag)
        .arg(server.child.id().to_string())
        .stdout(Stdio::null())
        .status()
        .expect("callgrind_control (valgrind) is installed");
    assert!(status.success(), "callgrind_control {flag}: {status}");
}

/// The total instruction count of a callgrind profile.
fn callgrind_total(file: &Path) -> u64 {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e} (is valgrind installed?)", file.display()));
    let line = text
        .lines()
        .find(|l| l.starts_with("totals:"))
        .or_else(|| text.lines().find(|l| l.starts_with("summary:")))
        .unwrap_or_else(|| panic!("{}: no totals", file.display()));
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap()
}

/// The baseline server: hyper on the agent's runtime and settings,
/// answering `body` with the agent's headers to every request, until
/// SIGTERM.
async fn constant_server(socket: &Path, body: String) {
    let listener = tokio::net::UnixListener::bind(socket).unwrap();
    let body = Bytes::from(body);
    let http = Arc::new(settings::http());
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            _ = terminate.recv() => return,
        };
        let (http, body) = (http.clone(), body.clone());
        tokio::spawn(async move {
            let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                let mut response = Response::new(Full::new(body.clone()));
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

#[allow(clippy::print_stdout, reason = "a benchmark reports to the terminal, as criterion does")]
fn report(line: &str) {
    println!("{line}");
}
