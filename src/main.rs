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
mod conn;
mod tls;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::cli::{Args, Format, Scan, Severity};
use crate::policy::{Report, Thresholds, TlsVersion};
use crate::probe::Plan;

fn main() -> ExitCode {
    let started = Instant::now();
    let raw: Vec<OsString> = std::env::args_os().collect();
    let args = match Args::try_parse_from(&raw) {
        Ok(args) => args,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // clap would exit 2, which Nagios reads as CRITICAL: bad
            // arguments are UNKNOWN, reported in the format asked for.
            let _ = writeln!(
                std::io::stderr(),
                "Usage: pg-tls-probe [OPTIONS] [CONNINFO]; try '--help'"
            );
            return emit(
                &Report::unusable(argument_error(&e)),
                requested_format(&raw),
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

/// clap's own message quotes the offending text, which may be a
/// connection string with a password in it: name flags, show values only
/// where a flag's value failed to parse (numbers, enums), never a stray word.
fn argument_error(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let arg = context(ContextKind::InvalidArg);
    let flag = arg.as_deref().filter(|a| a.starts_with('-'));
    match (e.kind(), flag) {
        (ErrorKind::InvalidValue | ErrorKind::ValueValidation, Some(flag)) => {
            let value = context(ContextKind::InvalidValue).unwrap_or_default();
            format!("invalid value \"{value}\" for {flag}")
        }
        (ErrorKind::UnknownArgument, Some(flag)) => format!("unknown option {flag}"),
        (ErrorKind::UnknownArgument, None) => {
            "unexpected extra argument (not shown: it may hold a secret); give one connection string"
                .to_string()
        }
        (kind, Some(flag)) => format!("{flag}: {kind}"),
        (kind, None) => format!("invalid arguments: {kind}"),
    }
}

/// `--format` as typed, for reporting a parse failure the way it was asked.
fn requested_format(raw: &[OsString]) -> Format {
    let mut words = raw.iter().skip(1).map(|w| w.to_string_lossy());
    let mut value = None;
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        } else if word == "--format" {
            value = words.next().map(|v| v.into_owned());
        } else if let Some(v) = word.strip_prefix("--format=") {
            value = Some(v.to_string());
        }
    }
    match value.as_deref() {
        Some("json") => Format::Json,
        Some("text") => Format::Text,
        _ => Format::Nagios,
    }
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
            "--timeout must be more than 0 and at most 3600 seconds, not {}",
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
    if !args.audit && !args.allow_plaintext_from.is_empty() {
        return Err("--allow-plaintext-from only applies with --audit".into());
    }
    let allow_plaintext_from = args
        .allow_plaintext_from
        .iter()
        .map(|c| policy::audit::Cidr::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let flags = conn::Flags {
        conninfo: args.conninfo.clone(),
        host: args.host.clone(),
        port: args.port.clone(),
        username: args.username.clone(),
        dbname: args.dbname.clone(),
        sslnegotiation: args.sslnegotiation.clone(),
    };
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let os_user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "postgres".into());
    let target = conn::resolve(
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
        scan: match args.scan {
            Scan::None => None,
            Scan::Protocols => Some(facts::ScanLevel::Protocols),
            Scan::Full => Some(facts::ScanLevel::Full),
        },
        audit: args.audit,
        // A capability probe like the scan: skipped with --scan none.
        direct_tls_check: args.scan != Scan::None,
    };
    let thresholds = Thresholds {
        warning_days: args.warning_days,
        critical_days: args.critical_days,
        min_tls,
        scan: policy::scan::ScanPolicy {
            legacy: severity(args.legacy_tls),
            weak: severity(args.weak_ciphers),
        },
        allow_plaintext_from,
    };
    Ok((plan, thresholds))
}

/// `--legacy-tls`/`--weak-ciphers`: the status an accepted one costs, None to ignore.
fn severity(s: Severity) -> Option<policy::Status> {
    match s {
        Severity::Warning => Some(policy::Status::Warning),
        Severity::Critical => Some(policy::Status::Critical),
        Severity::Ignore => None,
    }
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
