//! Usage errors: bad flags, weak sslmode, unusable files. Each is UNKNOWN
//! (exit 3, never clap's 2, which Nagios reads as CRITICAL) with one line
//! saying why, in the format asked for; `--help` and `--version` exit 0.

use crate::util::pg::free_port;
use crate::util::{Outcome, Probe};

/// Asserts exit 3 with a one-line JSON summary containing every `needle`.
#[track_caller]
fn expect_usage_error(out: &Outcome, needles: &[&str]) {
    out.expect_exit(3).expect_check("arguments", "UNKNOWN");
    let summary = out.at("/summary").as_str().unwrap_or_default();
    for needle in needles {
        assert!(
            summary.contains(needle) && !summary.contains('\n'),
            "summary should be one line naming {needle:?}\n{}",
            out.context()
        );
    }
}

#[test]
fn unknown_flag_is_unknown_not_clap_exit_2() {
    let out = Probe::bare().arg("--bogus").run_raw();
    out.expect_code(3);
    let reason = out.first_line().strip_prefix("PGTLS UNKNOWN: ");
    assert!(
        reason.is_some_and(|r| !r.trim().is_empty()),
        "first line should be \"PGTLS UNKNOWN: <reason>\"\n{}",
        out.context()
    );
}

/// A flag clap rejects still answers in the format asked for, naming the flag.
#[test]
fn unknown_flag_is_reported_in_json_naming_the_flag() {
    let out = Probe::new().arg("--bogus").run();
    expect_usage_error(&out, &["--bogus"]);
}

#[test]
fn unparsable_flag_value_is_named_with_its_value() {
    let out = Probe::new().arg("--timeout").arg("abc").run();
    expect_usage_error(&out, &["--timeout", "\"abc\""]);
}

#[test]
fn sslmode_require_from_environment_is_refused() {
    let out = Probe::new().env("PGSSLMODE", "require").run();
    expect_usage_error(&out, &["require", "verify-full"]);
}

/// The connection string outranks the environment's PGSSLMODE=verify-full.
#[test]
fn sslmode_disable_in_conninfo_is_refused() {
    let out = Probe::new().arg("host=127.0.0.1 sslmode=disable").run();
    expect_usage_error(&out, &["sslmode=disable"]);
}

#[test]
fn missing_root_certificate_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-ca.pem");
    let out = Probe::new()
        .env("PGSSLROOTCERT", missing.display().to_string())
        .run();
    expect_usage_error(&out, &[&missing.display().to_string()]);
}

#[test]
fn root_certificate_file_that_is_not_pem_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.txt");
    std::fs::write(&file, "this is not a certificate\n").unwrap();
    let out = Probe::new()
        .env("PGSSLROOTCERT", file.display().to_string())
        .run();
    expect_usage_error(&out, &[&file.display().to_string(), "PEM"]);
}

#[test]
fn zero_timeout_is_refused() {
    let out = Probe::new().arg("--timeout").arg("0").run();
    expect_usage_error(&out, &["--timeout"]);
}

#[test]
fn critical_days_above_warning_days_is_refused() {
    let out = Probe::new()
        .args(["--critical-days", "40", "--warning-days", "30"])
        .run();
    expect_usage_error(&out, &["--critical-days", "--warning-days"]);
}

/// TLS needs TCP: a socket directory as host is refused, not dialled.
#[test]
fn unix_socket_host_is_refused() {
    let out = Probe::new().args(["-h", "/tmp"]).run();
    expect_usage_error(&out, &["/tmp", "Unix"]);
}

#[test]
fn help_exits_0_and_documents_format() {
    let out = Probe::bare().arg("--help").run_raw();
    out.expect_code(0);
    assert!(out.stdout.contains("--format"), "{}", out.context());
}

/// What a newcomer needs from --help: every check named up front (the scan
/// and the audit too), the flags grouped, the defaults of host and port,
/// and where the CA comes from.
#[test]
fn help_names_the_checks_groups_the_flags_and_names_pgsslrootcert() {
    let out = Probe::bare().arg("--help").run_raw();
    out.expect_code(0);
    let help = &out.stdout;
    let first = out.first_line();
    for check in [
        "verify-full",
        "plaintext",
        "protocol scan",
        "direct TLS",
        "--audit",
    ] {
        assert!(first.contains(check), "first line lacks {check}: {first}");
    }
    for heading in ["Connection:", "Checks:", "Thresholds:", "Output:", "Fleet"] {
        assert!(
            help.contains(&format!("\n{heading}")),
            "no heading {heading}\n{help}"
        );
    }
    assert!(help.contains("[default: PGHOST, else localhost]"), "{help}");
    assert!(help.contains("[default: PGPORT, else 5432]"), "{help}");
    assert!(help.contains("PGSSLROOTCERT"), "{help}");
}

#[test]
fn version_exits_0_with_the_version() {
    let out = Probe::bare().arg("--version").run_raw();
    out.expect_code(0);
    assert!(
        out.stdout.contains(env!("CARGO_PKG_VERSION")),
        "{}",
        out.context()
    );
}

#[test]
fn usage_error_in_text_format() {
    let out = Probe::new()
        .format("text")
        .env("PGSSLMODE", "require")
        .run_raw();
    out.expect_code(3);
    assert_eq!(
        out.first_line(),
        "pg-tls-probe: UNKNOWN",
        "{}",
        out.context()
    );
    assert!(
        out.stdout.contains("sslmode=require"),
        "the reason is missing\n{}",
        out.context()
    );
}

/// The default format: status line without perfdata, then the check line.
#[test]
fn usage_error_in_default_nagios_format() {
    let out = Probe::bare().env("PGSSLMODE", "require").run_raw();
    out.expect_code(3);
    let first = out.first_line();
    assert!(
        first.starts_with("PGTLS UNKNOWN: sslmode=require") && !first.contains('|'),
        "unexpected status line {first:?}\n{}",
        out.context()
    );
    assert!(
        out.stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("UNKNOWN arguments: ")),
        "second line should be the check\n{}",
        out.context()
    );
}

/// A password in the connection string is in no output of a failed run,
/// whether the failure is the network (closed port) or the arguments.
#[test]
fn conninfo_password_never_appears_in_output() {
    const SECRET: &str = "S3cr3t-xyz";
    let port = free_port();
    let runs = [
        (
            format!("host=127.0.0.1 port={port} user=probe password={SECRET}"),
            2,
        ),
        (
            format!("host=127.0.0.1 port={port} password={SECRET} sslmode=require"),
            3,
        ),
        (
            format!("postgresql://probe:{SECRET}@127.0.0.1:{port}/postgres"),
            2,
        ),
    ];
    for (conninfo, code) in &runs {
        for format in ["json", "text", "nagios"] {
            let out = Probe::new().format(format).arg(conninfo).run_raw();
            out.expect_code(*code).expect_absent(SECRET);
        }
    }
    // A stray second argument is refused by the flag parser, whose own
    // message would quote it.
    for format in ["json", "text", "nagios"] {
        let out = Probe::new()
            .format(format)
            .arg(format!("host=127.0.0.1 port={port}"))
            .arg(format!("password={SECRET}"))
            .run_raw();
        out.expect_code(3).expect_absent(SECRET);
    }
}

/// A device or FIFO named as sslrootcert must not block or fill memory.
#[test]
fn root_certificate_that_is_not_a_regular_file_is_refused() {
    let out = Probe::new().env("PGSSLROOTCERT", "/dev/zero").run();
    expect_usage_error(&out, &["/dev/zero", "not a regular file"]);
}

/// A mistyped flag gets clap's suggestion; a bad value of an enum flag the
/// values it takes.
#[test]
fn mistyped_flag_gets_a_suggestion_and_bad_value_the_valid_ones() {
    let out = Probe::new().arg("--scna").arg("none").run();
    expect_usage_error(&out, &["unknown option --scna (did you mean --scan?)"]);
    let out = Probe::bare().args(["--format", "jsn"]).run_raw();
    out.expect_code(3);
    assert_eq!(
        out.first_line(),
        "PGTLS UNKNOWN: invalid value \"jsn\" for --format <FORMAT> (possible values: nagios, json, text, junit)",
        "{}",
        out.context()
    );
}

/// What follows '=' in a mistyped flag, and a stray word however close to
/// a flag's name, is never echoed, nor hinted at by a suggestion.
#[test]
fn mistyped_flag_value_and_stray_words_are_not_echoed() {
    const SECRET: &str = "hunter2-S3cr3t";
    for format in ["json", "text", "nagios", "junit"] {
        let out = Probe::new()
            .format(format)
            .arg(format!("--pasword={SECRET}"))
            .run_raw();
        out.expect_code(3).expect_absent(SECRET);
        assert!(out.stdout.contains("--pasword"), "{}", out.context());
        let out = Probe::new()
            .format(format)
            .arg("dbname=postgres")
            .arg(format!("formt{SECRET}"))
            .run_raw();
        out.expect_code(3)
            .expect_absent(SECRET)
            .expect_absent("did you mean");
    }
}
