//! `--format junit`: a JUnit XML test report, so a deploy pipeline's smoke
//! test shows in GitLab, Jenkins and GitHub Actions as tests.
//!
//! One `<testsuite>` per target (a single run has one, a fleet one per
//! target), one `<testcase>` per check. How a status maps (docs/junit.md):
//!
//! - OK: a passed test case;
//! - WARNING: a passed test case too (the tools know no "passed with a
//!   warning"), its reason in `<system-out>` as for every case, and the
//!   suite's `status` property says WARNING; the exit code (1) is what a
//!   pipeline decides on;
//! - CRITICAL: `<failure>` (the server failed its clients);
//! - UNKNOWN: `<error>` (the probe could not tell);
//! - a check a default run makes that gave no verdict: `<skipped>` with the
//!   reason (`--scan none`, `--skip-plaintext-check`, or the session having
//!   stopped before it). Opt-in checks not asked for (`--audit`,
//!   `--scan full`'s ciphers) are not listed.
//!
//! Valid against the Jenkins xunit plugin's junit-10.xsd (tests/fixtures/
//! junit/), which GitLab and the GitHub Actions report actions also read.
//! Peer text is escaped for XML 1.0: markup characters as entities, and
//! characters XML cannot carry at all (most control characters, U+FFFE,
//! U+FFFF) shown escaped, as in the line formats; no CDATA, so a `]]>`
//! from a peer is just text.

use std::fmt::Write;

use super::{cut, summary, LINE_MAX};
use crate::policy::fleet::FleetReport;
use crate::policy::{Check, Report, Status};

/// The checks every default run makes: when one has no finding, the
/// report lists it as skipped rather than leaving a reader to notice its
/// absence.
const DEFAULT_CHECKS: [Check; 7] = [
    Check::Certificate,
    Check::CertificateExpiry,
    Check::StrictClients,
    Check::TlsSession,
    Check::Authentication,
    Check::Plaintext,
    Check::Protocols,
];

pub fn render(report: &Report) -> String {
    let name = suite_name(report);
    let suite = Suite::of(&name, report);
    document(&[suite], seconds(report))
}

/// A fleet: one suite per target, under its name. An empty fleet gets one
/// suite with an error, so the report does not read as "nothing failed".
pub fn fleet(fleet: &FleetReport) -> String {
    if fleet.targets.is_empty() {
        let empty = Suite {
            name: "pg-tls-probe".into(),
            status: fleet.status,
            summary: "no targets".into(),
            time: Some(fleet.total_seconds),
            timestamp: None,
            cases: vec![Case {
                name: "targets",
                status: Status::Unknown,
                verdict: Verdict::Error,
                text: "no targets to probe".into(),
                time: None,
            }],
            notes: Vec::new(),
        };
        return document(&[empty], Some(fleet.total_seconds));
    }
    let suites: Vec<Suite> = fleet
        .targets
        .iter()
        .map(|t| Suite::of(&t.name, &t.report))
        .collect();
    document(&suites, Some(fleet.total_seconds))
}

fn suite_name(report: &Report) -> String {
    report.target.as_ref().map_or_else(
        || "pg-tls-probe".to_string(),
        |t| format!("{}:{}", t.host, t.port),
    )
}

fn seconds(report: &Report) -> Option<f64> {
    report.facts.as_ref().map(|f| f.total_seconds)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Failure,
    Error,
    Skipped,
}

struct Case {
    name: &'static str,
    status: Status,
    verdict: Verdict,
    text: String,
    time: Option<f64>,
}

struct Suite {
    name: String,
    status: Status,
    summary: String,
    time: Option<f64>,
    timestamp: Option<i64>,
    cases: Vec<Case>,
    notes: Vec<String>,
}

impl Suite {
    fn of(name: &str, report: &Report) -> Suite {
        let mut cases: Vec<Case> = report
            .findings
            .iter()
            .map(|f| Case {
                name: f.check.name(),
                status: f.status,
                verdict: match f.status {
                    Status::Ok | Status::Warning => Verdict::Pass,
                    Status::Critical => Verdict::Failure,
                    Status::Unknown => Verdict::Error,
                },
                text: f.summary.clone(),
                time: check_seconds(report, f.check),
            })
            .collect();
        if let Some(facts) = &report.facts {
            let connected = report
                .finding(Check::Connection)
                .is_some_and(|f| f.status == Status::Ok);
            for check in DEFAULT_CHECKS {
                if report.finding(check).is_some() {
                    continue;
                }
                let why = match check {
                    Check::Plaintext if facts.plaintext.is_none() => {
                        "not run: --skip-plaintext-check"
                    }
                    Check::Protocols if facts.scan.is_none() => "not run: --scan none",
                    _ if !connected => {
                        "not checked: the session stopped before it (see connection)"
                    }
                    _ => "not checked in this run",
                };
                cases.push(Case {
                    name: check.name(),
                    status: Status::Ok,
                    verdict: Verdict::Skipped,
                    text: why.into(),
                    time: None,
                });
            }
        }
        Suite {
            name: name.to_string(),
            status: report.status,
            summary: summary(report),
            time: seconds(report),
            timestamp: report.facts.as_ref().map(|f| f.now),
            cases,
            notes: report
                .target
                .as_ref()
                .map(|t| t.notes.clone())
                .unwrap_or_default(),
        }
    }

    fn count(&self, verdict: Verdict) -> usize {
        self.cases.iter().filter(|c| c.verdict == verdict).count()
    }
}

/// The checks that have a time of their own in the facts.
fn check_seconds(report: &Report, check: Check) -> Option<f64> {
    let facts = report.facts.as_ref()?;
    match check {
        Check::Connection => facts.session.connect_seconds,
        Check::Plaintext => facts.plaintext.as_ref().map(|p| p.seconds),
        Check::Protocols => report.scan.as_ref().map(|s| s.seconds),
        _ => None,
    }
}

fn document(suites: &[Suite], time: Option<f64>) -> String {
    let total = |v: Verdict| suites.iter().map(|s| s.count(v)).sum::<usize>();
    let tests: usize = suites.iter().map(|s| s.cases.len()).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = write!(
        out,
        "<testsuites name=\"pg-tls-probe\" tests=\"{tests}\" failures=\"{}\" errors=\"{}\"",
        total(Verdict::Failure),
        total(Verdict::Error)
    );
    if let Some(t) = time {
        let _ = write!(out, " time=\"{}\"", duration(t));
    }
    out.push_str(">\n");
    for suite in suites {
        write_suite(&mut out, suite);
    }
    out.push_str("</testsuites>\n");
    out
}

fn write_suite(out: &mut String, s: &Suite) {
    let _ = write!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\"",
        attr(&s.name),
        s.cases.len(),
        s.count(Verdict::Failure),
        s.count(Verdict::Error),
        s.count(Verdict::Skipped)
    );
    if let Some(t) = s.time {
        let _ = write!(out, " time=\"{}\"", duration(t));
    }
    if let Some(ts) = s.timestamp.and_then(timestamp) {
        let _ = write!(out, " timestamp=\"{ts}\"");
    }
    out.push_str(">\n    <properties>\n");
    let _ = writeln!(
        out,
        "      <property name=\"status\" value=\"{}\"/>",
        s.status.label()
    );
    let _ = writeln!(
        out,
        "      <property name=\"exit_code\" value=\"{}\"/>",
        s.status.exit_code()
    );
    let _ = writeln!(
        out,
        "      <property name=\"summary\" value=\"{}\"/>",
        attr(&s.summary)
    );
    for note in &s.notes {
        let _ = writeln!(
            out,
            "      <property name=\"note\" value=\"{}\"/>",
            attr(note)
        );
    }
    out.push_str("    </properties>\n");
    for c in &s.cases {
        let _ = write!(
            out,
            "    <testcase name=\"{}\" classname=\"{}\"",
            c.name,
            attr(&s.name)
        );
        if let Some(t) = c.time {
            let _ = write!(out, " time=\"{}\"", duration(t));
        }
        out.push_str(">\n");
        let reason = attr(&c.text);
        let label = c.status.label();
        match c.verdict {
            Verdict::Pass => {}
            Verdict::Failure => {
                let _ = writeln!(
                    out,
                    "      <failure type=\"{label}\" message=\"{reason}\">{reason}</failure>"
                );
            }
            Verdict::Error => {
                let _ = writeln!(
                    out,
                    "      <error type=\"{label}\" message=\"{reason}\">{reason}</error>"
                );
            }
            Verdict::Skipped => {
                let _ = writeln!(out, "      <skipped message=\"{reason}\"/>");
            }
        }
        if c.verdict != Verdict::Skipped {
            let _ = writeln!(
                out,
                "      <system-out>{label} {}: {reason}</system-out>",
                c.name
            );
        }
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n");
}

/// Seconds with three decimals: the schema's SUREFIRE_TIME allows no more.
fn duration(seconds: f64) -> String {
    format!("{:.3}", seconds.max(0.0))
}

/// ISO 8601 without a zone, as Ant writes it (UTC here).
fn timestamp(unix: i64) -> Option<String> {
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()?
        .format(&format)
        .ok()
}

/// Text for an attribute or element: one line, cut at [`LINE_MAX`], and
/// escaped (the same escaping serves both, quotes included).
fn attr(text: &str) -> String {
    escape(&cut(text, LINE_MAX))
}

/// XML 1.0 escaping. Markup characters become entities; a character XML
/// 1.0 cannot hold even as a reference (C0 controls, U+FFFE, U+FFFF), and
/// line breaks and tabs (which attribute normalisation would turn into
/// spaces, and which would forge lines in a tool showing the text), are
/// written as their Rust escape (`\n`, `\u{1b}`), as the line formats do.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                out.extend(c.escape_default())
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{PlaintextOutcome, SessionFailure, Stage};
    use crate::fixtures::{healthy, target, thresholds};
    use crate::policy::evaluate;
    use crate::policy::fleet::NamedReport;

    #[test]
    fn escaping_keeps_peer_text_inside_its_element() {
        assert_eq!(
            escape("a]]><b>&\"'\u{0}\u{1b}\n\t\u{7f}\u{FFFF}ok é"),
            "a]]&gt;&lt;b&gt;&amp;&quot;&apos;\\u{0}\\u{1b}\\n\\t\\u{7f}\\u{ffff}ok é"
        );
    }

    /// A server error message with markup, a CDATA end and control
    /// characters: every character of it lands escaped inside the
    /// failure, and no markup of its own appears.
    #[test]
    fn hostile_reason_cannot_break_the_document() {
        let mut facts = healthy();
        facts.plaintext.as_mut().unwrap().outcome = PlaintextOutcome::Error {
            sqlstate: "XX000".into(),
            severity: "FATAL".into(),
            message: "]]></failure><testcase name=\"forged\"/>\u{1}\u{8}\r\n<!--".into(),
        };
        facts.session.failure = Some(SessionFailure::Timeout {
            stage: Stage::Query,
            after_ms: 1500,
        });
        let xml = render(&evaluate(facts, target(), thresholds()));
        assert!(!xml.contains("forged\"/>"), "{xml}");
        assert!(!xml.contains("<!--"), "{xml}");
        assert!(!xml.contains("]]>"), "{xml}");
        assert!(!xml.chars().any(|c| c.is_control() && c != '\n'), "{xml:?}");
        assert_eq!(
            xml.matches("<testcase ").count(),
            xml.matches("</testcase>").count()
        );
    }

    #[test]
    fn golden_ok() {
        let xml = render(&evaluate(healthy(), target(), thresholds()));
        let want = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="pg-tls-probe" tests="8" failures="0" errors="0" time="0.005">
  <testsuite name="localhost:5432" tests="8" failures="0" errors="0" skipped="1" time="0.005" timestamp="2027-01-15T08:00:00">
    <properties>
      <property name="status" value="OK"/>
      <property name="exit_code" value="0"/>
      <property name="summary" value="localhost:5432 TLSv1.3, leaf expires in 365 days, plaintext rejected"/>
    </properties>
    <testcase name="connection" classname="localhost:5432" time="0.004">
      <system-out>OK connection: logged in to localhost:5432 as probe over TLSv1.3 in 4 ms</system-out>
    </testcase>
"#;
        assert!(xml.starts_with(want), "{xml}");
        assert!(
            xml.contains(
                "    <testcase name=\"protocols\" classname=\"localhost:5432\">\n      <skipped message=\"not run: --scan none\"/>\n    </testcase>\n"
            ),
            "{xml}"
        );
        assert!(xml.ends_with("  </testsuite>\n</testsuites>\n"), "{xml}");
    }

    /// CRITICAL is a failure, UNKNOWN an error, WARNING a pass whose
    /// reason is in system-out; checks the session did not reach are
    /// skipped.
    #[test]
    fn statuses_map_to_failure_error_and_pass() {
        let mut facts = healthy();
        facts.session.failure = Some(SessionFailure::Timeout {
            stage: Stage::SslRequest,
            after_ms: 3000,
        });
        facts.session.pg_stat_ssl = None;
        facts.session.auth = None;
        let xml = render(&evaluate(facts, target(), thresholds()));
        assert!(
            xml.contains(
                "<failure type=\"CRITICAL\" message=\"timed out at SSLRequest after 3.0 s\">"
            ),
            "{xml}"
        );
        assert!(xml.contains("<testcase name=\"tls_session\" classname=\"localhost:5432\">\n      <skipped message=\"not checked: the session stopped before it (see connection)\"/>"), "{xml}");

        let unusable = render(&Report::unusable("sslmode=require does not verify".into()));
        assert!(unusable.contains("<testsuite name=\"pg-tls-probe\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\">"), "{unusable}");
        assert!(
            unusable
                .contains("<error type=\"UNKNOWN\" message=\"sslmode=require does not verify\">"),
            "{unusable}"
        );

        let mut t = thresholds();
        t.warning_days = 400;
        let warning = render(&evaluate(healthy(), target(), t));
        assert!(
            warning.contains("<property name=\"status\" value=\"WARNING\"/>"),
            "{warning}"
        );
        assert!(
            warning.contains(
                "<system-out>WARNING certificate_expiry: leaf CN=localhost expires in 365 days"
            ),
            "{warning}"
        );
        assert!(
            !warning.contains("<failure") && !warning.contains("<error"),
            "{warning}"
        );
    }

    #[test]
    fn fleet_has_a_suite_per_target() {
        let ok = evaluate(healthy(), target(), thresholds());
        let report = FleetReport::new(
            vec![
                NamedReport {
                    name: "db1".into(),
                    report: ok.clone(),
                },
                NamedReport {
                    name: "a&b".into(),
                    report: ok,
                },
            ],
            0.25,
        );
        let xml = fleet(&report);
        assert!(xml.contains("<testsuites name=\"pg-tls-probe\" tests=\"16\" failures=\"0\" errors=\"0\" time=\"0.250\">"), "{xml}");
        assert!(xml.contains("<testsuite name=\"db1\" "), "{xml}");
        assert!(xml.contains("<testsuite name=\"a&amp;b\" "), "{xml}");
        let empty = super::fleet(&FleetReport::new(Vec::new(), 0.0));
        assert!(
            empty.contains("<error type=\"UNKNOWN\" message=\"no targets to probe\">"),
            "{empty}"
        );
    }

    /// Every shape above, validated with xmllint against the vendored
    /// junit-10.xsd (the integration test does the same for real runs).
    #[test]
    fn documents_are_valid_against_the_junit_schema() {
        if !crate::fixtures::have_tool("xmllint", "libxml2-utils") {
            return;
        }
        let mut hostile = healthy();
        hostile.plaintext.as_mut().unwrap().outcome = PlaintextOutcome::Error {
            sqlstate: "XX000".into(),
            severity: "FATAL".into(),
            message: "]]><x>\u{1}\u{FFFF}&".into(),
        };
        hostile.session.chain.presented[0].subject = "CN=<evil>\"'\n".into();
        let ok = evaluate(healthy(), target(), thresholds());
        let docs = [
            render(&ok),
            render(&evaluate(hostile, target(), thresholds())),
            render(&Report::unusable("bad <flag>".into())),
            fleet(&FleetReport::new(
                vec![NamedReport {
                    name: "db1".into(),
                    report: ok,
                }],
                1234.5678,
            )),
            fleet(&FleetReport::new(Vec::new(), 0.0)),
        ];
        let schema = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/junit/junit-10.xsd"
        );
        let dir = tempfile::tempdir().unwrap();
        for (i, doc) in docs.iter().enumerate() {
            let file = dir.path().join(format!("{i}.xml"));
            std::fs::write(&file, doc).unwrap();
            let out = std::process::Command::new("xmllint")
                .args(["--noout", "--schema", schema])
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}\n{doc}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
