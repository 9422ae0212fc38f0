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
    let reports = join_all(fleet.targets.iter().map(|target| async {
        let report = one(fleet, target, started, &slots, &alive).await;
        NamedReport {
            name: target.name.clone(),
            report,
        }
    }))
    .await;
    FleetReport::new(reports, started.elapsed().as_secs_f64())
}

async fn one(
    fleet: &Fleet,
    target: &FleetTarget,
    started: Instant,
    slots: &Semaphore,
    alive: &Semaphore,
) -> Report {
    let endpoint = match &target.endpoint {
        Ok(endpoint) => endpoint,
        Err(reason) => return Report::unusable(reason.clone()),
    };
    let deadline = fleet.deadline;
    let turn = async {
        let alive = alive.acquire().await.ok()?;
        let slot = slots.acquire().await.ok()?;
        Some((alive, slot))
    };
    let Ok(Some((_alive, slot))) = tokio::time::timeout_at(deadline.into(), turn).await else {
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
            "not probed: the run's deadline came before this target's turn ({} targets, --concurrency {})",
            fleet.targets.len(),
            fleet.concurrency
        ),
    )];
    report
}
