//! Runs every check concurrently under one deadline and gathers [`Facts`].
//!
//! Each probe owns its connection(s) and returns typed facts; none prints,
//! none sees thresholds. The host is resolved once and the addresses are
//! shared, so the checks start their TCP connects at the same moment.

mod audit;
mod direct;
mod handshake;
mod plaintext;
mod scan;
mod session;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;

use crate::facts::{
    Facts, PlaintextFacts, PlaintextOutcome, ScanFacts, ScanLevel, SessionFacts, SessionFailure,
    Stage,
};
use crate::conn::{SslNegotiation, Target};
use crate::tls::{ClientIdentity, TrustStore};

/// Everything the probes need, validated before any network I/O.
#[derive(Debug)]
pub struct Plan {
    pub target: Target,
    pub trust: TrustStore,
    pub identity: Option<ClientIdentity>,
    /// When the whole run must be over.
    pub deadline: Instant,
    pub plaintext_check: bool,
    /// None with `--scan none`.
    pub scan: Option<ScanLevel>,
    /// Run the server-side audit over the verify-full session (`--audit`).
    pub audit: bool,
    /// Report whether the server speaks direct TLS (a separate connection,
    /// unless the session itself negotiates directly).
    pub direct_tls_check: bool,
}

pub async fn run_all(plan: &Plan) -> Facts {
    let start = Instant::now();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let remaining = plan.deadline.saturating_duration_since(start);
    let resolved = tokio::time::timeout(remaining, resolve(&plan.target)).await;
    let mut direct_tls = None;
    let (session, plaintext, scan) = match resolved {
        Ok(Ok(addrs)) => {
            let budget = plan.deadline.saturating_duration_since(Instant::now());
            let plaintext = async {
                if plan.plaintext_check {
                    let limit = budget_with(plan.target.connect_timeout, budget);
                    Some(plaintext::probe(&plan.target, &addrs, limit).await)
                } else {
                    None
                }
            };
            let scan = async {
                let limit = budget_with(plan.target.connect_timeout, budget);
                match plan.scan {
                    // Boxed: the scan's many handshakes make a large future, which
                    // should cost nothing (no copy, no stack) when not scanning.
                    Some(level) => {
                        Some(Box::pin(scan::probe(&plan.target, &addrs, level, limit)).await)
                    }
                    None => None,
                }
            };
            let main =
                async { tokio::join!(session::probe(plan, &addrs, budget), plaintext, scan) };
            // A direct session answers the question itself: no extra connection.
            if plan.direct_tls_check && plan.target.sslnegotiation == SslNegotiation::Postgres {
                let (main, direct) = direct::alongside(plan, &addrs, budget, main).await;
                direct_tls = Some(direct);
                main
            } else {
                let (session, plaintext, scan) = main.await;
                direct_tls = session.direct_tls.clone();
                (session, plaintext, scan)
            }
        }
        Ok(Err(detail)) => unresolved(
            plan,
            SessionFailure::Resolve {
                detail: detail.clone(),
            },
            PlaintextOutcome::Unreachable { detail },
        ),
        Err(_) => {
            let after_ms = elapsed_ms(start);
            let stage = Stage::Resolve;
            unresolved(
                plan,
                SessionFailure::Timeout { stage, after_ms },
                PlaintextOutcome::Timeout { stage, after_ms },
            )
        }
    };
    // A direct session's own answer is reported even without the check.
    let direct_tls = match direct_tls {
        None if plan.direct_tls_check => Some(direct::undecided(
            "no direct TLS handshake took place or finished".into(),
        )),
        known => known,
    };
    Facts {
        session,
        plaintext,
        direct_tls,
        total_seconds: start.elapsed().as_secs_f64(),
        now,
        scan,
    }
}

fn unresolved(
    plan: &Plan,
    failure: SessionFailure,
    outcome: PlaintextOutcome,
) -> (SessionFacts, Option<PlaintextFacts>, Option<ScanFacts>) {
    let scan_detail = match &failure {
        SessionFailure::Resolve { detail } => detail.clone(),
        _ => "timed out at name resolution".to_string(),
    };
    let scan = plan.scan.map(|level| scan::undecided(level, &scan_detail));
    let session = SessionFacts {
        failure: Some(failure),
        ..SessionFacts::default()
    };
    let plaintext = plan.plaintext_check.then_some(PlaintextFacts {
        outcome,
        seconds: 0.0,
    });
    (session, plaintext, scan)
}

/// Addresses to dial: `hostaddr` when given (no lookup), else the host's.
async fn resolve(target: &Target) -> Result<Vec<SocketAddr>, String> {
    if let Some(ip) = target.hostaddr {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    if let Ok(ip) = target.host.parse() {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("cannot resolve host \"{}\": {e}", target.host))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("host \"{}\" has no addresses", target.host));
    }
    Ok(addrs)
}

/// Tries each address in turn, as libpq does; the error names the last failure.
async fn connect_any(addrs: &[SocketAddr]) -> Result<TcpStream, String> {
    let mut last = String::from("no address to connect to");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                // Small request/response exchanges: do not let Nagle delay them.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    Err(last)
}

fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Remaining time for a step that must also respect a per-attempt limit.
fn budget_with(limit: Option<Duration>, budget: Duration) -> Duration {
    limit.map_or(budget, |l| l.min(budget))
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
