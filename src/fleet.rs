//! Many targets in one run (`--services`, or a host list): each probed and
//! judged exactly as a single run would be, all under the run's one
//! deadline, at most `--concurrency` at a time.
//!
//! One slow or silent target must not delay the others' verdicts: a target
//! still running after [`PATIENCE`] gives its slot back and goes on under
//! its own deadlines (connect_timeout, the run's), so the queue keeps
//! moving. Slots given back are not free: at most [`ALIVE_FACTOR`] times
//! `--concurrency` targets run in all, which bounds sockets and memory. A
//! target whose turn does not come before the deadline is UNKNOWN ("not
//! probed"), never blamed for a timeout that was the queue's.
//!
//! Targets of one server (many databases of one cluster, one pooler) take
//! turns at most `--per-server` at a time, and keep that turn until they
//! end: a run must not exhaust the max_connections it is judging, nor pile
//! onto a server that is slow to answer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::Semaphore;

use crate::plan::{Fleet, FleetTarget, Module};
use crate::policy::fleet::{FleetReport, NamedReport};
use crate::policy::{self, finding, Check, Report, Status};
use crate::probe;

/// How long a target holds its slot before it must share it.
pub const PATIENCE: Duration = Duration::from_secs(1);

/// Targets alive at once, slots given back included, per slot.
pub const ALIVE_FACTOR: usize = 4;

/// Probes every target of `fleet`; the reports keep the fleet's order.
pub async fn run(fleet: &Fleet) -> FleetReport {
    let started = Instant::now();
    let slots = Semaphore::new(fleet.concurrency);
    let alive = Semaphore::new(fleet.concurrency.saturating_mul(ALIVE_FACTOR));
    let mut servers: HashMap<(String, u16), Semaphore> = HashMap::new();
    for target in &fleet.targets {
        if let Ok(endpoint) = &target.endpoint {
            servers
                .entry(server(endpoint))
                .or_insert_with(|| Semaphore::new(fleet.per_server));
        }
    }
    let servers = &servers;
    let reports = join_all(fleet.targets.iter().map(|target| async {
        let report = one(fleet, target, started, servers, &slots, &alive).await;
        NamedReport {
            name: target.name.clone(),
            report,
        }
    }))
    .await;
    FleetReport::new(reports, started.elapsed().as_secs_f64())
}

/// The server a target reaches, as written: its hostaddr or host, and port.
fn server(endpoint: &probe::Endpoint) -> (String, u16) {
    let t = &endpoint.target;
    let host = t.hostaddr.map_or_else(|| t.host.clone(), |a| a.to_string());
    (host, t.port)
}

async fn one(
    fleet: &Fleet,
    target: &FleetTarget,
    started: Instant,
    servers: &HashMap<(String, u16), Semaphore>,
    slots: &Semaphore,
    alive: &Semaphore,
) -> Report {
    let endpoint = match &target.endpoint {
        Ok(endpoint) => endpoint,
        Err(reason) => return Report::unusable(reason.clone()),
    };
    let deadline = fleet.deadline;
    // The server's turn first, so that waiting for it holds no slot.
    let turn = async {
        let server = servers.get(&server(endpoint))?.acquire().await.ok()?;
        let alive = alive.acquire().await.ok()?;
        let slot = slots.acquire().await.ok()?;
        Some((server, alive, slot))
    };
    let Ok(Some((_server, _alive, slot))) = tokio::time::timeout_at(deadline.into(), turn).await
    else {
        return not_probed(fleet);
    };
    let queued = started.elapsed();
    let work = check(&fleet.module, endpoint, deadline, queued);
    tokio::pin!(work);
    tokio::select! {
        report = &mut work => report,
        () = tokio::time::sleep(PATIENCE) => {
            drop(slot);
            work.await
        }
    }
}

/// Probes and judges one endpoint with `module`, over by `deadline`;
/// `queued` is how long it waited for its turn (zero in a single run).
pub async fn check(
    module: &Module,
    endpoint: &probe::Endpoint,
    deadline: Instant,
    queued: Duration,
) -> Report {
    let mut facts = probe::run_all(&module.checks, endpoint, deadline).await;
    facts.queued_seconds = queued.as_secs_f64();
    policy::evaluate(facts, endpoint.target.clone(), module.thresholds.clone())
}

fn not_probed(fleet: &Fleet) -> Report {
    let mut report = Report::unusable(String::new());
    report.findings = vec![finding(
        Check::Connection,
        Status::Unknown,
        format!(
            "not probed: the run's deadline came before this target's turn ({} targets, --concurrency {}, --per-server {})",
            fleet.targets.len(),
            fleet.concurrency,
            fleet.per_server
        ),
    )];
    report
}
