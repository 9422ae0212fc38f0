//! Command-line flags exactly as typed: no I/O, no validation beyond types.
//!
//! `plan` validates them: `conn::resolve` merges the connection flags with
//! the connection string, PG* variables and .pgpass, the rest become the
//! module (checks and thresholds). `-h` is psql's `--host`, so help is
//! `--help` only.

use std::ffi::OsString;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Monitoring-plugins line with perfdata, then one line per check.
    Nagios,
    /// One JSON document (schema in README).
    Json,
    /// A report for a person at a terminal.
    Text,
    /// JUnit XML: one testcase per check, a testsuite per target.
    Junit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scan {
    /// No extra connections.
    None,
    /// One handshake per protocol version, SSLv3 to TLSv1.3.
    Protocols,
    /// Protocols, then one handshake per weak cipher class.
    Full,
}

/// What a scan result should cost the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Severity {
    Warning,
    Critical,
    /// Reported as OK with a note.
    Ignore,
}

// Help headings: the flags grouped as a newcomer looks for them.
const CONNECTION: &str = "Connection";
const CHECKS: &str = "Checks";
const THRESHOLDS: &str = "Thresholds";
const OUTPUT: &str = "Output";
const FLEET: &str = "Fleet (many targets in one run)";

#[derive(Debug, Parser)]
#[command(
    name = "pg-tls-probe",
    version,
    disable_help_flag = true,
    disable_version_flag = true,
    about = "Checks that a PostgreSQL server's TLS is set up right, as libpq clients see it",
    long_about = "Checks that a PostgreSQL server's TLS is set up right: a verify-full session (certificate by libpq's rules, expiry, login, pg_stat_ssl), plaintext rejection, a protocol scan, direct TLS (PostgreSQL 17+), and with --audit the server's settings, pg_hba.conf and open sessions.",
    after_help = "The server's certificate must chain to the CA file in PGSSLROOTCERT (or sslrootcert= in CONNINFO; default ~/.postgresql/root.crt). The password comes from PGPASSWORD or the password file (PGPASSFILE, default ~/.pgpass), never from a flag. Connection keywords and PG* variables follow libpq.\n\nExit codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also for bad arguments).\n\nExample: PGSSLROOTCERT=/etc/ssl/pg-ca.crt pg-tls-probe 'host=db.example.com user=monitor dbname=postgres' --scan none\n\n'pg-tls-probe serve --help': the Prometheus exporter. man pg-tls-probe, README and docs/ for the rest."
)]
pub struct Args {
    /// libpq connection string ("host=db.example.com hostaddr=192.0.2.10
    /// port=5432 ...") or postgresql:// URI; a bare word is a database name.
    /// hostaddr= is the address dialled, host= the name the certificate
    /// must match.
    #[arg(value_name = "CONNINFO", help_heading = CONNECTION)]
    pub conninfo: Option<String>,

    /// Server host name or IP address (psql -h), also the name checked
    /// against the certificate [default: PGHOST, else localhost].
    #[arg(short = 'h', long, visible_short_alias = 'H', help_heading = CONNECTION)]
    pub host: Option<String>,

    /// Server port (psql -p) [default: PGPORT, else 5432].
    #[arg(short = 'p', long, help_heading = CONNECTION)]
    pub port: Option<String>,

    /// User name to log in as (psql -U) [default: PGUSER, else the OS user].
    #[arg(short = 'U', long, help_heading = CONNECTION)]
    pub username: Option<String>,

    /// Database name (psql -d) [default: PGDATABASE, else the user name].
    /// A value containing '=' or a URI is a connection string, as in psql.
    #[arg(short = 'd', long, help_heading = CONNECTION)]
    pub dbname: Option<String>,

    /// How TLS starts: postgres (SSLRequest first, the default) or direct
    /// (PostgreSQL 17+: TLS at once, ALPN "postgresql"). As libpq's sslnegotiation.
    #[arg(long, value_name = "MODE", help_heading = CONNECTION)]
    pub sslnegotiation: Option<String>,

    #[command(flatten)]
    pub module: ModuleFlags,

    /// Probe every service of the service files whose name matches this
    /// shell pattern ('*' for all); repeatable. One run, one report per
    /// service, the worst status as the exit code.
    #[arg(long, value_name = "PATTERN", help_heading = FLEET)]
    pub services: Vec<String>,

    /// In a run over several targets (--services, or a host list), at most
    /// this many are probed at once.
    #[arg(long, default_value_t = 32, value_name = "N", help_heading = FLEET)]
    pub concurrency: usize,

    /// In a run over several targets, at most this many of one server
    /// (host and port as written) at once: each opens up to four
    /// connections, and many databases of one cluster must not exhaust
    /// its max_connections.
    #[arg(long, default_value_t = 4, value_name = "N", help_heading = FLEET)]
    pub per_server: usize,

    /// Output format (junit: a JUnit XML test report for CI pipelines).
    #[arg(long, value_enum, default_value_t = Format::Nagios, help_heading = OUTPUT)]
    pub format: Format,

    /// Print help.
    #[arg(long, action = clap::ArgAction::Help, help_heading = OUTPUT)]
    pub help: Option<bool>,

    /// Print the version.
    #[arg(short = 'V', long, action = clap::ArgAction::Version, help_heading = OUTPUT)]
    pub version: Option<bool>,
}

/// `pg-tls-probe serve`: a Prometheus exporter on the blackbox_exporter
/// multi-target pattern (`/probe?target=NAME&module=M`, `/metrics`).
#[derive(Debug, Parser)]
#[command(
    name = "pg-tls-probe serve",
    version,
    disable_help_flag = true,
    about = "Serves probes to Prometheus: GET /probe?target=NAME[&module=M] probes a service of the service files (or a target of --config) and answers Prometheus metrics; GET /metrics has the exporter's own. The probe flags below make the default module.",
    after_help = "Targets come only from the service files and --config: /probe with any other name is a 404 and nothing is connected to. See docs/exporter.md."
)]
pub struct ServeArgs {
    /// Address and port to listen on (10543: outside 9100-9999, which
    /// Prometheus's default-port list has full).
    #[arg(long, default_value = "127.0.0.1:10543", value_name = "ADDR:PORT")]
    pub listen: String,

    /// TOML file with more modules ([modules.NAME]) and targets
    /// ([targets.NAME] conninfo = "..."), see docs/exporter.md.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,

    /// Probes running at once; a scrape beyond this gets 503 at once.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub max_in_flight: usize,

    /// Seconds taken off Prometheus's X-Prometheus-Scrape-Timeout-Seconds,
    /// so the answer arrives before Prometheus gives up (as blackbox_exporter).
    #[arg(long, default_value_t = 0.5, value_name = "SECONDS")]
    pub timeout_offset: f64,

    #[command(flatten)]
    pub module: ModuleFlags,

    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

/// What to check and how to judge it: the flags a probe run and `serve`
/// share (in `serve`, the default module).
#[derive(Debug, Clone, clap::Args)]
pub struct ModuleFlags {
    /// Whole-run deadline in seconds; the process exits within it plus one second.
    #[arg(short = 't', long, default_value_t = 10.0, value_name = "SECONDS", help_heading = CHECKS)]
    pub timeout: f64,

    /// WARNING when a certificate expires within this many days.
    #[arg(short = 'w', long, default_value_t = 30, value_name = "DAYS", help_heading = THRESHOLDS)]
    pub warning_days: i64,

    /// CRITICAL when a certificate expires within this many days.
    #[arg(short = 'c', long, default_value_t = 7, value_name = "DAYS", help_heading = THRESHOLDS)]
    pub critical_days: i64,

    /// Lowest acceptable negotiated protocol (TLSv1, TLSv1.1, TLSv1.2, TLSv1.3).
    #[arg(long, default_value = "TLSv1.2", value_name = "VERSION", help_heading = THRESHOLDS)]
    pub min_tls_version: String,

    /// Do not check that the server rejects a plaintext connection.
    #[arg(long, help_heading = CHECKS)]
    pub skip_plaintext_check: bool,

    /// Also audit the server itself over the verify-full session: TLS settings,
    /// pg_hba.conf rules and unencrypted TCP sessions (needs privileges; see README).
    #[arg(long, help_heading = CHECKS)]
    pub audit: bool,

    /// With --audit: accept plaintext client sessions from this address or
    /// CIDR range (repeatable; never replication).
    #[arg(long, value_name = "CIDR", help_heading = CHECKS)]
    pub allow_plaintext_from: Vec<String>,

    /// Protocol scan: one handshake per version (protocols), plus weak
    /// cipher classes (full). Each handshake is a server connection (and
    /// log lines with log_connections): use none on frequent checks.
    #[arg(long, value_enum, default_value_t = Scan::Protocols, help_heading = CHECKS)]
    pub scan: Scan,

    /// Status when the server accepts SSLv3, TLSv1 or TLSv1.1.
    #[arg(long, value_enum, default_value_t = Severity::Warning, help_heading = THRESHOLDS)]
    pub legacy_tls: Severity,

    /// Status when the server accepts a weak cipher class (--scan full).
    #[arg(long, value_enum, default_value_t = Severity::Warning, help_heading = THRESHOLDS)]
    pub weak_ciphers: Severity,
}

/// clap's own message quotes the offending text, which may be a
/// connection string with a password in it: name flags (never what follows
/// a '=' in one), show values only where a flag's value failed to parse
/// (numbers, enums) with the values it takes, never a stray word. clap's
/// "did you mean" is passed on for a mistyped flag only: for a stray word
/// it would be derived from, and so hint at, the secret.
pub fn argument_error(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let arg = context(ContextKind::InvalidArg);
    // "--pasword=hunter2" is named as "--pasword".
    let flag = arg
        .as_deref()
        .filter(|a| a.starts_with('-'))
        .map(|a| a.split_once('=').map_or(a, |(name, _)| name));
    match (e.kind(), flag) {
        (ErrorKind::InvalidValue | ErrorKind::ValueValidation, Some(flag)) => {
            let value = context(ContextKind::InvalidValue).unwrap_or_default();
            match e.get(ContextKind::ValidValue) {
                Some(ContextValue::Strings(valid)) => format!(
                    "invalid value \"{value}\" for {flag} (possible values: {})",
                    valid.join(", ")
                ),
                _ => format!("invalid value \"{value}\" for {flag}"),
            }
        }
        (ErrorKind::UnknownArgument, Some(flag)) => {
            let suggestion = context(ContextKind::SuggestedArg)
                .filter(|s| flag.starts_with("--") && s.starts_with("--"));
            match suggestion {
                Some(s) => format!("unknown option {flag} (did you mean {s}?)"),
                None => format!("unknown option {flag}"),
            }
        }
        (ErrorKind::UnknownArgument, None) => {
            "unexpected extra argument (not shown: it may hold a secret); give one connection string"
                .to_string()
        }
        (kind, Some(flag)) => format!("{flag}: {kind}"),
        (kind, None) => format!("invalid arguments: {kind}"),
    }
}

/// `--format` as typed, for reporting a parse failure the way it was asked.
pub fn requested_format(raw: &[OsString]) -> Format {
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
        Some("junit") => Format::Junit,
        _ => Format::Nagios,
    }
}
