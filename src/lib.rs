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
pub mod hex;
pub mod plan;
pub mod policy;
pub mod probe;
pub mod render;
pub mod tls;

#[cfg(test)]
mod fixtures;

use crate::plan::Plan;
use crate::policy::Report;

/// Probes and judges one planned run on a runtime of its own.
pub fn check(plan: Plan) -> Report {
    // One thread is plenty for a handful of sockets, and keeps memory low.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Report::unusable(format!("cannot start the async runtime: {e}")),
    };
    let facts = runtime.block_on(probe::run_all(
        &plan.module.checks,
        &plan.endpoint,
        plan.deadline,
    ));
    // Do not wait for stragglers (a blocked name lookup, a session closing):
    // the deadline has been honoured and the verdict is known.
    runtime.shutdown_background();
    policy::evaluate(facts, plan.endpoint.target, plan.module.thresholds)
}
