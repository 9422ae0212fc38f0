//! pg-tls-probe: is this PostgreSQL server's TLS set up right, right now?
//!
//! Data flows one way, each layer in its own module:
//! [`cli`] (flags as typed) → [`plan`] (validated module and target, no
//! network) → [`probe`] (connections under one deadline, typed facts) →
//! [`policy`] (findings, the worst decides) → [`render`] (pure text).
//! `main.rs` is the only place that prints or exits. A library, so the
//! parsers a peer or a user feeds can be fuzzed and benchmarked directly.

pub mod certs;
pub mod cli;
pub mod conn;
pub mod facts;
pub mod fleet;
pub mod hex;
pub mod plan;
pub mod policy;
pub mod probe;
pub mod render;
pub mod serve;
pub mod tls;

#[cfg(test)]
mod fixtures;

use crate::plan::Plan;
use crate::policy::fleet::FleetReport;
use crate::policy::{Report, Status};

/// What a run found: one report, or one per target of a fleet.
#[derive(Debug)]
pub enum Outcome {
    Single(Box<Report>),
    Fleet(FleetReport),
}

impl Outcome {
    pub fn status(&self) -> Status {
        match self {
            Outcome::Single(r) => r.status,
            Outcome::Fleet(f) => f.status,
        }
    }
}

/// Probes and judges a planned run on a runtime of its own: one thread for
/// a single target (a handful of sockets; keeps memory low), a worker per
/// core for a fleet (TLS and SCRAM are CPU work).
pub fn check(plan: Plan) -> Outcome {
    let runtime = match &plan {
        Plan::Single(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Plan::Fleet(_) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            return Outcome::Single(Box::new(Report::unusable(format!(
                "cannot start the async runtime: {e}"
            ))))
        }
    };
    let outcome = match plan {
        Plan::Single(single) => Outcome::Single(Box::new(runtime.block_on(fleet::check(
            &single.module,
            &single.endpoint,
            single.deadline,
            std::time::Duration::ZERO,
        )))),
        Plan::Fleet(fleet) => Outcome::Fleet(runtime.block_on(fleet::run(&fleet))),
    };
    // Do not wait for stragglers (a blocked name lookup, a session closing):
    // the deadline has been honoured and the verdict is known.
    runtime.shutdown_background();
    outcome
}
