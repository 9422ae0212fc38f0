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

use pg_tls_probe::cli::{self, Args, Format, ServeArgs};
use pg_tls_probe::policy::Report;
use pg_tls_probe::{plan, render, serve, Outcome};

fn main() -> ExitCode {
    let started = Instant::now();
    let raw: Vec<OsString> = std::env::args_os().collect();
    if raw.get(1).is_some_and(|a| a == "serve") {
        return serve(&raw[1..]);
    }
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

/// `pg-tls-probe serve`: runs until SIGTERM; a configuration it cannot
/// use is an error before it listens (exit 2, as daemons do, not a
/// Nagios status).
fn serve(raw: &[OsString]) -> ExitCode {
    let args = match ServeArgs::try_parse_from(raw) {
        Ok(args) => args,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(
                std::io::stderr(),
                "pg-tls-probe serve: {}; try 'pg-tls-probe serve --help'",
                cli::argument_error(&e)
            );
            return ExitCode::from(2);
        }
    };
    match serve::Exporter::bind(&args, plan::Environment::process()) {
        Ok(exporter) => {
            if let Some(addr) = exporter.local_addr() {
                let _ = writeln!(
                    std::io::stderr(),
                    "pg-tls-probe serve: listening on http://{addr}/"
                );
            }
            exporter.run();
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "pg-tls-probe serve: {e}");
            ExitCode::from(2)
        }
    }
}
