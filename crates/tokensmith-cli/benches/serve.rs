//! The token agent's cost (`cargo bench -p tokensmith-cli --bench serve`;
//! the numbers are recorded in `docs/BENCHMARKS.md`): requests per second
//! and p50/p99 latency of `GET /v1/header/NAME` over a Unix socket, served
//! by the built `tokensmith serve` from a warm token, next to a hyper
//! server with the agent's HTTP/1.1 settings answering a constant string
//! over a Unix socket too, in a process of its own as well (this binary,
//! started again). Both are measured by the same client (keep-alive
//! connections, each sending its requests one after another), in
//! alternating rounds so machine drift hits both.
//!
//! Environment: `SERVE_BENCH_CLIENTS` (default 32 connections),
//! `SERVE_BENCH_REQUESTS` (per connection and round, default 1,000),
//! `SERVE_BENCH_ROUNDS` (default 5).

#![allow(dead_code, reason = "the shared test client has more than the bench uses")]

#[path = "../tests/it/agent_client.rs"]
mod agent_client;

use std::convert::Infallible;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokensmith_core::{Clock as _, SystemClock};
use tokensmith_testkit::{Emulator, Vendor};

use crate::agent_client::{Client, Target};

/// The constant answer: as long as a typical bearer header.
const CONSTANT: &str = "Bearer 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // The baseline server, in a process of its own like the agent: this
    // binary started again with `--constant-server SOCKET`.
    if let Some(i) = args.iter().position(|a| a == "--constant-server") {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let listener = tokio::net::UnixListener::bind(&args[i + 1]).unwrap();
            constant_server(listener).await;
        });
        return;
    }
    // `cargo bench` passes `--bench`; a test run (`cargo test --benches`) does not.
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let clients = env_or("SERVE_BENCH_CLIENTS", 32);
    let requests = env_or("SERVE_BENCH_REQUESTS", 1000);
    let rounds = env_or("SERVE_BENCH_ROUNDS", 5);
    let dir = tempfile::tempdir().unwrap();

    // The token endpoint, on its own runtime.
    let upstream =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let emulator = upstream.block_on(Emulator::start(Vendor::Deyel)).unwrap();
    let config = dir.path().join("tokensmith.toml");
    std::fs::write(&config, emulator.config_snippet("lowcode")).unwrap();

    // The agent, as users run it.
    let agent_socket = dir.path().join("agent.sock");
    let _agent = Agent(
        Command::new(env!("CARGO_BIN_EXE_tokensmith"))
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .arg("--socket")
            .arg(&agent_socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // The baseline: the agent's hyper settings, a constant answer, on a
    // runtime of its own (as the agent's process has).
    let constant_socket = dir.path().join("constant.sock");
    let baseline = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let listener =
        baseline.block_on(async { tokio::net::UnixListener::bind(&constant_socket) }).unwrap();
    baseline.spawn(constant_server(listener));

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let agent = Target::Unix(agent_socket.clone());
    let constant = Target::Unix(constant_socket.clone());
    rt.block_on(wait_ready(&agent_socket));
    rt.block_on(wait_ready(&constant_socket));
    let issued_before = emulator.tokens_issued();

    let mut results: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
    for round in 0..=rounds {
        for (i, target) in [&constant, &agent].into_iter().enumerate() {
            let measured = rt.block_on(measure(target, clients, requests));
            // Round 0 warms up both (connections, caches, CPU frequency).
            if round > 0 {
                results[i].push(measured);
            }
        }
    }
    assert_eq!(emulator.tokens_issued(), issued_before, "every answer came from the warm token");

    report(&format!(
        "serve/header: {clients} connections x {requests} requests, {rounds} rounds (median round shown)"
    ));
    report("| | requests/s | p50 | p99 |");
    report("|---|---|---|---|");
    let medians: Vec<Round> = results.iter().map(|r| median(r)).collect();
    for (name, m) in ["constant string (hyper)", "tokensmith serve"].iter().zip(&medians) {
        report(&format!(
            "| {name} | {:.0} | {:.1} us | {:.1} us |",
            m.per_second,
            micros(m.p50),
            micros(m.p99)
        ));
    }
    report(&format!(
        "| **ratio** | **{:.3}x** (throughput) | **{:.3}x** | **{:.3}x** |",
        medians[0].per_second / medians[1].per_second,
        micros(medians[1].p50) / micros(medians[0].p50),
        micros(medians[1].p99) / micros(medians[0].p99)
    ));
}

/// Kills a server process when the bench ends.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One round's result.
#[derive(Clone, Copy)]
struct Round {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn median(rounds: &[Round]) -> Round {
    let mut sorted = rounds.to_vec();
    sorted.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
    sorted[sorted.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// `clients` connections, each sending `requests` requests in a row.
async fn measure(target: &Target, clients: usize, requests: usize) -> Round {
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(Client::connect(target).await.unwrap());
    }
    let start = SystemClock.monotonic();
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(requests);
                for _ in 0..requests {
                    let sent = SystemClock.monotonic();
                    let answer = client.get("/v1/header/lowcode").await.unwrap();
                    latencies.push(SystemClock.monotonic().saturating_sub(sent));
                    assert_eq!(answer.status, 200, "{answer:?}");
                    assert!(answer.body.starts_with("Bearer "));
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(clients * requests);
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = SystemClock.monotonic().saturating_sub(start);
    latencies.sort_unstable();
    let at = |q: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "an index into the sorted latencies"
        )]
        let i = ((latencies.len() - 1) as f64 * q).round() as usize;
        latencies[i]
    };
    #[allow(clippy::cast_precision_loss, reason = "a request count")]
    let per_second = latencies.len() as f64 / elapsed.as_secs_f64();
    Round { per_second, p50: at(0.50), p99: at(0.99) }
}

/// Waits until the agent answers.
async fn wait_ready(socket: &Path) {
    for _ in 0..1000 {
        if let Ok(mut client) = Client::connect(&Target::Unix(socket.to_path_buf())).await
            && client.get("/v1/header/lowcode").await.is_ok_and(|a| a.status == 200)
        {
            return;
        }
        tokio::task::yield_now().await;
        #[allow(clippy::disallowed_methods, reason = "polling a child process that is starting")]
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("tokensmith serve did not start");
}

/// The baseline server: hyper with the agent's settings, answering
/// [`CONSTANT`] to every request.
async fn constant_server(listener: tokio::net::UnixListener) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5))
        .max_headers(64)
        .max_buf_size(8 * 1024);
    let http = Arc::new(http);
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let http = http.clone();
        tokio::spawn(async move {
            let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
                let mut response =
                    Response::new(Full::new(Bytes::from_static(CONSTANT.as_bytes())));
                response.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                Ok::<_, Infallible>(response)
            });
            let _ = http.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

#[allow(clippy::print_stdout, reason = "a benchmark reports to the terminal, as criterion does")]
fn report(line: &str) {
    println!("{line}");
}
