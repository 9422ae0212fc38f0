//! Runs every check concurrently under one deadline and gathers [`Facts`].
//!
//! Each probe is `async fn(&ProbeCtx, ..) -> XFacts`: it owns its
//! connection(s), returns typed facts, never prints and never sees a
//! threshold. The context carries the only two instants a probe waits
//! for: the run's [`ProbeCtx::deadline`] and one connection attempt's
//! [`ProbeCtx::attempt_deadline`] (libpq's connect_timeout), both derived
//! once here. The host is resolved once and the addresses shared, so the
//! checks start their TCP connects at the same moment. The futures are
//! `Send`, so a multi-threaded server can spawn them.

mod audit;
mod direct;
mod handshake;
mod openssl_hello;
mod plaintext;
mod scan;
mod session;
mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::conn::{SslNegotiation, Target};
use crate::facts::{
    ConnectFailure, DirectTlsFacts, Facts, Negotiated, PlaintextFacts, PlaintextOutcome,
    ResolveFailure, ScanFacts, ScanLevel, SessionFacts, SessionFailure, Stage, Undecided,
};
use crate::tls::{ClientIdentity, TrustStore};

/// Which checks run besides the verify-full session; part of a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checks {
    pub plaintext: bool,
    /// None with `--scan none`.
    pub scan: Option<ScanLevel>,
    /// The server-side audit over the verify-full session (`--audit`).
    pub audit: bool,
    /// Whether the server speaks direct TLS (a separate connection,
    /// unless the session itself negotiates directly).
    pub direct_tls: bool,
}

/// One server to probe: the resolved target and the files it names, loaded.
#[derive(Debug)]
pub struct Endpoint {
    pub target: Target,
    pub trust: TrustStore,
    pub identity: Option<ClientIdentity>,
    /// The client certificate's facts (its expiry is a finding).
    pub client_cert: Option<crate::facts::CertFacts>,
}

/// What the verify-full session learns early, published for the other
/// probes so they can skip connections whose answer is already known: the
/// protocol version and suite its handshake negotiated (the scan need not
/// ask that version again), and the server's major version from its
/// ParameterStatus (a server before PostgreSQL 17 cannot speak direct TLS).
/// Each is `None` until known, then `Some(answer)`, `Some(None)` when the
/// session could not tell; the session always publishes both, even when it
/// fails or is cut short.
#[derive(Debug)]
pub struct Early {
    handshake: watch::Sender<Option<Option<Negotiated>>>,
    server_major: watch::Sender<Option<Option<u32>>>,
}

impl Default for Early {
    fn default() -> Self {
        Early {
            handshake: watch::channel(None).0,
            server_major: watch::channel(None).0,
        }
    }
}

impl Early {
    /// The session's negotiated version and suite (None: none negotiated).
    pub fn publish_handshake(&self, negotiated: Option<Negotiated>) {
        self.handshake
            .send_if_modified(|v| v.is_none() && v.replace(negotiated).is_none());
    }

    /// The server's major version (None: the session did not log in).
    pub fn publish_server_major(&self, major: Option<u32>) {
        self.server_major
            .send_if_modified(|v| v.is_none() && v.replace(major).is_none());
    }

    /// Publishes "could not tell" for whatever is still unknown.
    fn close(&self) {
        self.publish_handshake(None);
        self.publish_server_major(None);
    }

    /// Waits for the session's handshake.
    pub async fn handshake(&self) -> Option<Negotiated> {
        let mut rx = self.handshake.subscribe();
        let known = rx.wait_for(Option::is_some).await;
        known.ok().and_then(|v| v.clone().flatten())
    }

    /// Waits for the session's login.
    pub async fn server_major(&self) -> Option<u32> {
        let mut rx = self.server_major.subscribe();
        let known = rx.wait_for(Option::is_some).await;
        known.ok().and_then(|v| v.flatten())
    }
}

/// Publishes "could not tell" for whatever the session did not publish
/// when it ends, however it ends (the deadline may cut it short).
pub struct EarlyGuard<'a>(pub &'a Early);

impl Drop for EarlyGuard<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// What every probe reads.
#[derive(Debug)]
pub struct ProbeCtx<'a> {
    pub endpoint: &'a Endpoint,
    /// Where to dial, in order (libpq tries each in turn).
    pub addrs: Vec<SocketAddr>,
    /// When the probes started; timings and "after N s" count from here.
    pub started: Instant,
    /// The run's end: nothing waits past it.
    pub deadline: Instant,
    /// The end of one connection attempt, connect through login:
    /// `connect_timeout` after the start, never after [`Self::deadline`].
    pub attempt_deadline: Instant,
    /// What the session learned early, for the others.
    pub early: Early,
}

impl ProbeCtx<'_> {
    pub fn target(&self) -> &Target {
        &self.endpoint.target
    }

    /// Milliseconds since the probes started.
    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs `step` until the attempt deadline; None when it ran out.
    pub async fn within_attempt<T>(&self, step: impl Future<Output = T>) -> Option<T> {
        tokio::time::timeout_at(self.attempt_deadline.into(), step)
            .await
            .ok()
    }

    /// Runs `step` until the run's deadline; None when it ran out.
    pub async fn within_run<T>(&self, step: impl Future<Output = T>) -> Option<T> {
        tokio::time::timeout_at(self.deadline.into(), step)
            .await
            .ok()
    }
}

/// Probes `endpoint` with `checks`, everything over by `deadline`.
pub async fn run_all(checks: &Checks, endpoint: &Endpoint, deadline: Instant) -> Facts {
    let started = Instant::now();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let target = &endpoint.target;
    let resolved = tokio::time::timeout_at(deadline.into(), resolve(target)).await;
    let attempt_deadline = target
        .connect_timeout
        .map_or(deadline, |limit| deadline.min(started + limit));
    let addrs = match resolved {
        Ok(Ok(addrs)) => addrs,
        Ok(Err(failure)) => {
            return unresolved(
                checks,
                endpoint,
                started,
                deadline,
                now,
                SessionFailure::Resolve(failure),
            );
        }
        Err(_) => {
            let after_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let stage = Stage::Resolve;
            let failure = SessionFailure::Timeout { stage, after_ms };
            return unresolved(checks, endpoint, started, deadline, now, failure);
        }
    };
    let ctx = ProbeCtx {
        endpoint,
        addrs,
        started,
        deadline,
        attempt_deadline,
        early: Early::default(),
    };
    let plaintext = async {
        if checks.plaintext {
            Some(plaintext::probe(&ctx).await)
        } else {
            None
        }
    };
    let scan = async {
        match checks.scan {
            // Boxed: the scan's many handshakes make a large future, which
            // should cost nothing (no copy, no stack) when not scanning.
            Some(level) => Some(Box::pin(scan::probe(&ctx, level)).await),
            None => None,
        }
    };
    let main = async { tokio::join!(session::probe(&ctx, checks.audit), plaintext, scan) };
    // A direct session answers the question itself: no extra connection.
    let ((session, plaintext, scan), direct_tls) =
        if checks.direct_tls && target.sslnegotiation == SslNegotiation::Postgres {
            let (main, direct) = direct::alongside(&ctx, main).await;
            (main, Some(direct))
        } else {
            let (session, plaintext, scan) = main.await;
            // A direct session's own answer is reported even without the check.
            let direct = session
                .direct_tls
                .clone()
                .or_else(|| checks.direct_tls.then_some(DirectTlsFacts::NotAttempted));
            ((session, plaintext, scan), direct)
        };
    Facts {
        session,
        plaintext,
        direct_tls,
        total_seconds: started.elapsed().as_secs_f64(),
        budget_seconds: deadline.saturating_duration_since(started).as_secs_f64(),
        queued_seconds: 0.0,
        now,
        scan,
        client_cert: endpoint.client_cert.clone(),
    }
}

/// Every check stopped at name resolution, for the same reason.
fn unresolved(
    checks: &Checks,
    endpoint: &Endpoint,
    started: Instant,
    deadline: Instant,
    now: i64,
    failure: SessionFailure,
) -> Facts {
    let (undecided, outcome) = match &failure {
        SessionFailure::Resolve(f) => (
            Undecided::Unresolved(f.clone()),
            PlaintextOutcome::Unresolved(f.clone()),
        ),
        _ => (
            Undecided::ResolveTimeout,
            PlaintextOutcome::Timeout {
                stage: Stage::Resolve,
                after_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            },
        ),
    };
    Facts {
        session: SessionFacts {
            failure: Some(failure),
            ..SessionFacts::default()
        },
        plaintext: checks.plaintext.then_some(PlaintextFacts {
            outcome,
            seconds: 0.0,
        }),
        direct_tls: checks.direct_tls.then_some(DirectTlsFacts::NotAttempted),
        total_seconds: started.elapsed().as_secs_f64(),
        budget_seconds: deadline.saturating_duration_since(started).as_secs_f64(),
        queued_seconds: 0.0,
        now,
        scan: checks
            .scan
            .map(|level| ScanFacts::all_undecided(level, &undecided)),
        client_cert: endpoint.client_cert.clone(),
    }
}

/// Addresses to dial: `hostaddr` when given (no lookup), else the host's.
async fn resolve(target: &Target) -> Result<Vec<SocketAddr>, ResolveFailure> {
    if let Some(ip) = target.hostaddr {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    if let Ok(ip) = target.host.parse() {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    let host = || target.host.clone();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| ResolveFailure::Lookup {
            host: host(),
            error: (&e).into(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(ResolveFailure::NoAddresses { host: host() });
    }
    Ok(addrs)
}

/// Tries each address in turn, as libpq does; the error names the last failure.
async fn connect_any(addrs: &[SocketAddr]) -> Result<TcpStream, ConnectFailure> {
    let mut last = ConnectFailure::NoAddress;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                // Small request/response exchanges: do not let Nagle delay them.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => {
                last = ConnectFailure::Refused {
                    addr: *addr,
                    error: (&e).into(),
                }
            }
        }
    }
    Err(last)
}

/// Reads and discards until the peer closes, an error, or `cap` bytes: after
/// our goodbye, so the server ends the connection first and logs no reset.
/// Callers bound the time.
async fn read_until_closed<R: AsyncRead + Unpin>(reader: &mut R, cap: usize) {
    let mut sink = [0u8; 4096];
    let mut total = 0;
    while total < cap {
        let room = sink.len().min(cap - total);
        match reader.read(&mut sink[..room]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// An exporter spawns probes on a multi-threaded runtime: the whole
    /// run's future must be `Send` (and `'static` once it owns its inputs).
    #[test]
    fn the_probe_future_is_send() {
        fn assert_send<T: Send + 'static>(_: T) {}
        let checks = Checks {
            plaintext: true,
            scan: Some(ScanLevel::Full),
            audit: true,
            direct_tls: true,
        };
        let endpoint = crate::fixtures::endpoint();
        let deadline = Instant::now() + Duration::from_secs(1);
        assert_send(async move { run_all(&checks, &endpoint, deadline).await });
    }

    /// And it runs there: spawned on worker threads, against a closed port.
    #[test]
    fn run_all_runs_spawned_on_a_multi_thread_runtime() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let mut endpoint = crate::fixtures::endpoint();
        endpoint.target.host = "127.0.0.1".into();
        endpoint.target.port = port;
        let checks = Checks {
            plaintext: true,
            scan: Some(ScanLevel::Protocols),
            audit: false,
            direct_tls: true,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let run = async move { run_all(&checks, &endpoint, deadline).await };
        let facts = runtime.block_on(async { tokio::spawn(run).await }).unwrap();
        assert!(
            matches!(facts.session.failure, Some(SessionFailure::Connect(_))),
            "{:?}",
            facts.session.failure
        );
        assert!(matches!(
            facts.plaintext.map(|p| p.outcome),
            Some(PlaintextOutcome::Unreachable(_))
        ));
    }
}
