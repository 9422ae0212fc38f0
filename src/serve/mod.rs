//! `pg-tls-probe serve`: the probe as a Prometheus exporter, on
//! blackbox_exporter's multi-target pattern, so existing dashboards,
//! relabelling and alert rules work unchanged:
//!
//! - `GET /probe?target=NAME[&module=M]` probes one target and answers its
//!   metrics (render/metrics.rs). `NAME` is a group of the service files or
//!   a target of `--config`; anything else is a 404 and nothing is
//!   connected to (no relay for requests to arbitrary hosts). Passwords
//!   come from the password file or the exporter's environment, never
//!   from a URL.
//! - `GET /metrics`: the exporter's own metrics.
//!
//! Each scrape's deadline is the smaller of the module's timeout and
//! Prometheus's `X-Prometheus-Scrape-Timeout-Seconds` minus an offset, as
//! blackbox_exporter computes it. Scrapes of different targets run in
//! parallel on a worker per core, at most `--max-in-flight` at once (one
//! more gets 503 at once, counted). HTTP is hyper's HTTP/1.1 with a bound
//! on the request head, a header-read timeout that also ends idle
//! connections, and a cap on open connections; SIGTERM and SIGINT stop
//! accepting and let the scrapes under way finish.

pub mod config;
mod http;
mod own;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::cli::ServeArgs;
use crate::plan::{self, Environment, Module};

/// The request line and headers together; beyond, the connection is closed.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// A client must send its request head within this (and an idle
/// keep-alive connection is closed after it).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Open connections at most; more are closed at once.
pub const MAX_CONNECTIONS: usize = 512;

/// What every request reads.
struct State {
    default_module: Module,
    modules: BTreeMap<String, Module>,
    targets: BTreeMap<String, String>,
    env: Environment,
    in_flight: Semaphore,
    offset: Duration,
    own: own::Metrics,
}

/// A bound, configured exporter, ready to run.
pub struct Exporter {
    listener: TcpListener,
    state: Arc<State>,
    runtime: tokio::runtime::Runtime,
}

impl Exporter {
    /// Validates the flags and the configuration and binds the address.
    pub fn bind(args: &ServeArgs, env: Environment) -> Result<Exporter, String> {
        let default_module = plan::module(&args.module)?;
        let config = match &args.config {
            Some(path) => config::load(path)?,
            None => config::Config::default(),
        };
        if !(1..=4096).contains(&args.max_in_flight) {
            return Err(format!(
                "--max-in-flight must be 1 to 4096, not {}",
                args.max_in_flight
            ));
        }
        if !(args.timeout_offset.is_finite() && (0.0..60.0).contains(&args.timeout_offset)) {
            return Err("--timeout-offset must be 0 to 60 seconds".into());
        }
        let listen: SocketAddr = args
            .listen
            .parse()
            .map_err(|_| format!("--listen: \"{}\" is not ADDRESS:PORT", args.listen))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let listener = runtime
            .block_on(TcpListener::bind(listen))
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let modules: Vec<&str> = config.modules.keys().map(String::as_str).collect();
        let own = own::Metrics::new(&modules);
        Ok(Exporter {
            listener,
            state: Arc::new(State {
                default_module,
                modules: config.modules,
                targets: config.targets,
                env,
                in_flight: Semaphore::new(args.max_in_flight),
                offset: Duration::from_secs_f64(args.timeout_offset),
                own,
            }),
            runtime,
        })
    }

    /// Where it listens (the port may have been 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until SIGTERM or SIGINT, then lets the scrapes under way end.
    pub fn run(self) {
        let Exporter {
            listener,
            state,
            runtime,
        } = self;
        runtime.block_on(serve(listener, state));
        runtime.shutdown_timeout(Duration::from_secs(1));
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // At the cap, the connection is closed unanswered.
                let Ok(slot) = connections.clone().try_acquire_owned() else { continue };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let service = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, std::convert::Infallible>(http::handle(&state, req).await) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .max_buf_size(MAX_REQUEST_HEAD)
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(slot);
                });
            }
            () = &mut stop => break,
        }
    }
    drop(listener);
    // The longest scrape a module allows, then go regardless.
    let longest = state
        .modules
        .values()
        .map(|m| m.timeout)
        .chain([state.default_module.timeout])
        .max()
        .unwrap_or_default();
    let _ = tokio::time::timeout(longest + Duration::from_secs(1), graceful.shutdown()).await;
}

/// SIGTERM (systemd, Kubernetes) or SIGINT (a terminal).
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        // Without signal handling the process still stops when killed.
        _ => std::future::pending().await,
    }
}
