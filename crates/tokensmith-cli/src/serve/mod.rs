//! `tokensmith serve`: the token agent (contract §10). It keeps the config's
//! providers warm and hands their tokens to local processes over a Unix
//! socket (or loopback TCP), on hyper's HTTP/1.1 server.
//!
//! - `listen`: where it listens (the socket file created 0600, stale ones
//!   replaced, a live one refused);
//! - `agent`: the providers of the current config (swapped whole on SIGHUP,
//!   unchanged ones kept) and the warm-up loop;
//! - `router`: one request answered: the header rule, the endpoints, the
//!   JSON errors;
//! - `settings`: the runtime and hyper's HTTP/1.1 options (shared with the
//!   benchmark's baseline server).
//!
//! SIGHUP reloads the config; SIGTERM or SIGINT stops accepting, drains the
//! requests in flight (at most [`DRAIN_TIMEOUT`]) and exits 0.

mod agent;
mod listen;
mod request;
mod router;
mod settings;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

use self::agent::{Agent, Snapshot, WARM_INTERVAL};
use self::listen::{Address, Connection, Listener};
use self::router::Router;
use self::settings::http;
use crate::commands::Context;
use crate::output;

/// The most connections served at once; more wait in the listen queue.
const MAX_CONNECTIONS: usize = 4096;
/// How long SIGTERM waits for requests in flight.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// `tokensmith serve [--socket PATH | --listen 127.0.0.1:PORT]`
pub(crate) fn run(
    ctx: &Context,
    socket: Option<PathBuf>,
    listen: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let address = Address::choose(socket, listen, std::env::var_os("XDG_RUNTIME_DIR"))?;
    let snapshot = Snapshot::load(&ctx.config_path, None)?;
    let rt = settings::runtime().context("cannot start the async runtime")?;
    rt.block_on(async {
        // Bound before anything else runs, so a second agent on the same
        // socket is refused before it fetches a token.
        let listener = Listener::bind(&address)?;
        let metrics = PrometheusBuilder::new()
            .install_recorder()
            .map_err(|e| tracing::warn!(error = %e, "no /metrics: cannot install the recorder"))
            .ok();
        let providers = snapshot.providers.len();
        metrics::gauge!("tokensmith_agent_providers").set(agent::count(providers));
        let agent = Arc::new(Agent::new(ctx.config_path.clone(), snapshot));
        output::stderr(&format!(
            "tokensmith serve: listening on {} ({providers} provider{})",
            listener.describe(),
            if providers == 1 { "" } else { "s" }
        ));
        let warm = tokio::spawn(warm_loop(agent.clone(), metrics.clone()));
        let result = serve(listener, Router::new(agent, metrics)).await;
        warm.abort();
        result
    })
}

/// Calls every provider every [`WARM_INTERVAL`], starting now: the first
/// round fetches each token, later ones are cache hits that start the
/// cache's refresh-ahead in time.
async fn warm_loop(agent: Arc<Agent>, metrics: Option<PrometheusHandle>) {
    let mut ticks = tokio::time::interval(WARM_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_ok = HashMap::new();
    loop {
        ticks.tick().await;
        agent.warm(&mut last_ok).await;
        if let Some(handle) = &metrics {
            handle.run_upkeep();
        }
    }
}

/// Accepts connections until SIGTERM or SIGINT, reloading on SIGHUP; then
/// drains.
async fn serve(listener: Listener, router: Router) -> anyhow::Result<()> {
    let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let http = http();
    let drain = Arc::new(Drain::default());
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            slot = slots.clone().acquire_owned() => {
                let Ok(slot) = slot else { break };
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(Connection::Unix(stream)) => spawn(&http, &drain, &router, stream, slot),
                        Ok(Connection::Tcp(stream)) => spawn(&http, &drain, &router, stream, slot),
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            pause().await;
                        }
                    },
                    _ = hangup.recv() => reload(&router),
                    _ = terminate.recv() => break,
                    _ = interrupt.recv() => break,
                }
            }
            _ = hangup.recv() => reload(&router),
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    // No new connections; the socket file goes with the listener.
    drop(listener);
    let open = drain.stop_all();
    tracing::info!(open, "stopping: draining the requests in flight");
    // Every slot back: every connection's task has ended.
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_TIMEOUT, slots.acquire_many(all)).await.is_err() {
        tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; exiting anyway");
    }
    output::stderr("tokensmith serve: stopped");
    Ok(())
}

/// SIGHUP: reloads the config off the async workers (it reads files),
/// while requests go on being answered from the current one.
fn reload(router: &Router) {
    let agent = router.agent().clone();
    tokio::task::spawn_blocking(move || {
        let _ = agent.reload();
    });
}

/// Serves one connection on its own task, until it ends or `drain` stops
/// it (then hyper finishes the request in hand and closes).
fn spawn<S>(
    http: &http1::Builder,
    drain: &Arc<Drain>,
    router: &Router,
    stream: S,
    slot: tokio::sync::OwnedSemaphorePermit,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let router = router.clone();
    let service = service_fn(move |req| router.handle(req));
    let connection = http.serve_connection(TokioIo::new(stream), service);
    let (open, stop) = OpenConnection::new(slot, drain.clone());
    tokio::spawn(async move {
        let mut connection = std::pin::pin!(connection);
        let ended = tokio::select! {
            biased;
            ended = connection.as_mut() => ended,
            _ = stop => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = ended {
            tracing::debug!(error = %e, "connection ended with an error");
        }
        drop(open);
    });
}

/// The stop signals of the open connections: on SIGTERM each is told to
/// finish the request in hand and close. A connection's task checks its own
/// one-shot channel when woken, an atomic read (hyper-util's
/// `GracefulShutdown`, used before, had every connection poll one shared
/// `watch` channel, a lock, at every wake-up).
#[derive(Default)]
struct Drain(std::sync::Mutex<(u64, HashMap<u64, oneshot::Sender<()>>)>);

impl Drain {
    fn open(&self) -> std::sync::MutexGuard<'_, (u64, HashMap<u64, oneshot::Sender<()>>)> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new connection: its id, and the channel that tells it to stop.
    fn register(&self) -> (u64, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let mut open = self.open();
        open.0 += 1;
        let id = open.0;
        open.1.insert(id, tx);
        (id, rx)
    }

    /// Tells every open connection to stop; how many there were.
    fn stop_all(&self) -> usize {
        let open = std::mem::take(&mut self.open().1);
        let count = open.len();
        for stop in open.into_values() {
            let _ = stop.send(());
        }
        count
    }
}

/// One open connection: counted in `tokensmith_agent_connections`, holding
/// one of the [`MAX_CONNECTIONS`] slots and its place in the [`Drain`] until
/// dropped, however its task ends.
struct OpenConnection {
    _slot: tokio::sync::OwnedSemaphorePermit,
    drain: Arc<Drain>,
    id: u64,
}

impl OpenConnection {
    fn new(
        slot: tokio::sync::OwnedSemaphorePermit,
        drain: Arc<Drain>,
    ) -> (Self, oneshot::Receiver<()>) {
        metrics::gauge!("tokensmith_agent_connections").increment(1.0);
        let (id, stop) = drain.register();
        (Self { _slot: slot, drain, id }, stop)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.drain.open().1.remove(&self.id);
        metrics::gauge!("tokensmith_agent_connections").decrement(1.0);
    }
}

/// A short pause after a failed `accept` (out of file descriptors), so the
/// loop does not spin.
#[expect(
    clippy::disallowed_methods,
    reason = "a real-time back-off of a long-running server's accept loop; no test waits on it"
)]
async fn pause() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}
