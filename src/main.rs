//! pg-tls-probe: parse → plan → probe → evaluate → render.
//!
//! The only place that prints or chooses the exit code. Every failure to
//! even start (bad flags, unreadable CA file) is still a report: UNKNOWN,
//! exit 3, in the format asked for.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use pg_tls_probe::cli::{self, Args, Format};
use pg_tls_probe::policy::Report;
use pg_tls_probe::{plan, render, Outcome};

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
                &Outcome::Single(Box::new(Report::unusable(cli::argument_error(&e)))),
                cli::requested_format(&raw),
            );
        }
    };
    let outcome = match plan::plan(&args, started, &plan::Environment::process()) {
        Ok(plan) => pg_tls_probe::check(plan),
        Err(reason) => Outcome::Single(Box::new(Report::unusable(reason))),
    };
    emit(&outcome, args.format)
}

fn emit(outcome: &Outcome, format: Format) -> ExitCode {
    let text = match outcome {
        Outcome::Single(report) => render::render(report, format),
        Outcome::Fleet(fleet) => render::fleet(fleet, format),
    };
    let mut stdout = std::io::stdout().lock();
    // A closed pipe must not turn a verdict into a panic.
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    ExitCode::from(outcome.status().exit_code())
}
