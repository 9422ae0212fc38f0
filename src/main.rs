//! pg-tls-probe: parse → resolve → probe → evaluate → render.
//!
//! The only place that prints or chooses the exit code. Every failure to
//! even start (bad flags, unreadable CA file) is still a report: UNKNOWN,
//! exit 3, in the format asked for.

mod certs;
mod cli;
mod facts;
mod policy;
mod probe;
mod render;
mod target;
mod tls;

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::cli::{Args, Format};
use crate::policy::{Report, Thresholds, TlsVersion};
use crate::probe::Plan;

fn main() -> ExitCode {
    let started = Instant::now();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // clap would exit 2, which Nagios reads as CRITICAL; bad arguments are UNKNOWN.
            let _ = e.print();
            let reason = e.kind().to_string();
            return emit(
                &Report::unusable(format!("invalid arguments: {reason}")),
                Format::Nagios,
            );
        }
    };
    let format = args.format;
    let report = match plan(&args, started) {
        Ok((plan, thresholds)) => run(plan, thresholds),
        Err(reason) => Report::unusable(reason),
    };
    emit(&report, format)
}

fn emit(report: &Report, format: Format) -> ExitCode {
    let text = render::render(report, format);
    let mut stdout = std::io::stdout().lock();
    // A closed pipe must not turn a verdict into a panic.
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    ExitCode::from(report.status.exit_code())
}

/// Validates everything that does not need the network.
fn plan(args: &Args, started: Instant) -> Result<(Plan, Thresholds), String> {
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 3600.0) {
        return Err(format!(
            "--timeout must be between 0 and 3600 seconds, not {}",
            args.timeout
        ));
    }
    if args.critical_days > args.warning_days {
        return Err(format!(
            "--critical-days ({}) must not exceed --warning-days ({})",
            args.critical_days, args.warning_days
        ));
    }
    let min_tls = TlsVersion::parse(&args.min_tls_version).ok_or_else(|| {
        format!(
            "--min-tls-version must be TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3, not \"{}\"",
            args.min_tls_version
        )
    })?;
    let flags = target::Flags {
        conninfo: args.conninfo.clone(),
        host: args.host.clone(),
        port: args.port.clone(),
        username: args.username.clone(),
        dbname: args.dbname.clone(),
    };
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let os_user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "postgres".into());
    let target = target::resolve(
        &flags,
        &|name| std::env::var(name).ok(),
        home.as_deref(),
        &os_user,
    )
    .map_err(|e| e.to_string())?;
    let trust = tls::load_trust(&target.sslrootcert).map_err(|e| e.to_string())?;
    let identity = match (&target.sslcert, &target.sslkey) {
        (Some(cert), Some(key)) => Some(tls::load_identity(cert, key).map_err(|e| e.to_string())?),
        _ => None,
    };
    let plan = Plan {
        target,
        trust,
        identity,
        deadline: started + Duration::from_secs_f64(args.timeout),
        plaintext_check: !args.skip_plaintext_check,
    };
    let thresholds = Thresholds {
        warning_days: args.warning_days,
        critical_days: args.critical_days,
        min_tls,
    };
    Ok((plan, thresholds))
}

fn run(plan: Plan, thresholds: Thresholds) -> Report {
    // One thread is plenty for a handful of sockets, and keeps memory low.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Report::unusable(format!("cannot start the async runtime: {e}")),
    };
    let facts = runtime.block_on(probe::run_all(&plan));
    // Do not wait for stragglers (a blocked name lookup, a session closing):
    // the deadline has been honoured and the verdict is known.
    runtime.shutdown_background();
    policy::evaluate(facts, plan.target, thresholds)
}
