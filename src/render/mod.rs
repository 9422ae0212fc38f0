//! Pure functions from a [`Report`] to the text the user sees.
//!
//! Nothing here decides a status or touches the network; `main` prints what
//! these return.

mod audit;
mod fleet;
mod json;
mod junit;
pub mod metrics;
mod nagios;
mod text;

use crate::cli::Format;
use crate::policy::fleet::FleetReport;
use crate::policy::{Report, Status};

pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Nagios => nagios::render(report),
        Format::Json => json::render(report),
        Format::Text => text::render(report),
        Format::Junit => junit::render(report),
    }
}

/// A fleet's report (`--services`, or a host list).
pub fn fleet(report: &FleetReport, format: Format) -> String {
    fleet::render(report, format)
}

/// The longest text of Nagios's first line, before the perfdata: peer
/// text (a 16 KB certificate subject, a server's 1 MB error message) is cut
/// there, so the status and the perfdata always fit a monitoring log.
pub const STATUS_LINE_MAX: usize = 500;

/// The longest any other line of line-oriented output gets (characters).
pub const LINE_MAX: usize = 1000;

/// Makes text safe for a line-oriented output: control characters (a
/// newline in a certificate subject or a server message would forge a line
/// of Nagios output) are shown escaped, and the result is cut at [`LINE_MAX`].
pub fn one_line(text: &str) -> String {
    cut(&escape_controls(text), LINE_MAX)
}

fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4 * LINE_MAX));
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` cut to `max` characters, "…" marking the cut.
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// One line saying what matters most: on success the key facts, otherwise
/// the reasons of the findings that set the run's status.
pub fn summary(report: &Report) -> String {
    if report.status == Status::Ok {
        if let Some(line) = ok_summary(report) {
            return line;
        }
    }
    join_reasons(
        report
            .findings
            .iter()
            .filter(|f| f.status == report.status)
            .map(|f| f.summary.as_str()),
    )
}

/// Reasons joined by "; ", where a reason that already ends with a
/// semicolon (a GRANT statement) is not given a second one.
fn join_reasons<'a>(reasons: impl Iterator<Item = &'a str>) -> String {
    let mut line = String::new();
    for reason in reasons {
        if !line.is_empty() {
            if !line.ends_with(';') {
                line.push(';');
            }
            line.push(' ');
        }
        line.push_str(reason);
    }
    line
}

fn ok_summary(report: &Report) -> Option<String> {
    let facts = report.facts.as_ref()?;
    let target = report.target.as_ref()?;
    // The probe's own TLS: behind a pooler pg_stat_ssl is the pooler's link.
    let version = match (&facts.session.negotiated, &report.pooler) {
        (Some(n), _) => n.version.name().to_string(),
        (None, None) => facts.session.pg_stat_ssl.as_ref()?.version.clone()?,
        (None, Some(_)) => return None,
    };
    let via = report.pooler.as_ref().map_or_else(String::new, |p| {
        format!(" via {}", p.name.as_deref().unwrap_or("a pooler"))
    });
    let mut parts = vec![format!("{}:{} {version}{via}", target.host, target.port)];
    if let Some(e) = &report.expiry {
        parts.push(format!("{} expires in {} days", e.role.name(), e.days_left));
    }
    parts.push(match facts.plaintext {
        Some(_) => "plaintext rejected".to_string(),
        None => "plaintext not checked".to_string(),
    });
    parts.extend(report.audit.as_ref().map(audit::ok_part));
    Some(parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{PlaintextOutcome, SessionFailure, Stage};
    use crate::fixtures::{healthy, target, thresholds};
    use crate::policy::{evaluate, Check};

    #[test]
    fn nagios_golden_ok() {
        let report = evaluate(healthy(), target(), thresholds());
        let want = "\
PGTLS OK: localhost:5432 TLSv1.3, leaf expires in 365 days, plaintext rejected | cert_days_left=365;30:;7: connect_time=0.004000s plaintext_time=0.002000s total_time=0.005000s
OK connection: logged in to localhost:5432 as probe over TLSv1.3 in 4 ms
OK certificate: chains to CN=PostgreSQL CA, name localhost matches
OK certificate_expiry: leaf CN=localhost expires in 365 days (2028-01-15)
OK strict_clients: strict verifiers (webpki) accept the certificate too
OK tls_session: TLSv1.3 TLS_AES_256_GCM_SHA384 256 bits
OK authentication: SCRAM-SHA-256-PLUS (channel binding tls-server-end-point)
OK plaintext: plaintext rejected before authentication (SQLSTATE 28000: no pg_hba.conf entry)
";
        assert_eq!(render(&report, Format::Nagios), want);
    }

    #[test]
    fn nagios_summary_names_the_worst_and_never_leaks_a_pipe() {
        let mut facts = healthy();
        facts.plaintext.as_mut().unwrap().outcome = PlaintextOutcome::Error {
            sqlstate: "XX000".into(),
            severity: "FATAL".into(),
            message: "odd | message".into(),
        };
        facts.session.failure = Some(SessionFailure::Timeout {
            stage: Stage::Query,
            after_ms: 1500,
        });
        let out = render(&evaluate(facts, target(), thresholds()), Format::Nagios);
        let first = out.lines().next().unwrap();
        assert!(
            first.starts_with("PGTLS CRITICAL: timed out at query after 1.5 s | "),
            "{first}"
        );
        assert_eq!(out.matches('|').count(), 1, "{out}");
    }

    /// A newline chosen by the peer (here in a certificate subject and an
    /// unauthenticated error message) cannot add lines to the output.
    #[test]
    fn peer_text_cannot_forge_lines() {
        let mut facts = healthy();
        facts.session.chain.presented[0].subject = "CN=x\nOK fake: all good".into();
        facts.session.chain.libpq = Some(Err(crate::facts::CertProblem::Expired {
            subject: "CN=x\nOK fake: all good".into(),
            not_after: 0,
        }));
        facts.plaintext.as_mut().unwrap().outcome = PlaintextOutcome::Error {
            sqlstate: "28000".into(),
            severity: "FATAL".into(),
            message: format!("no\r\nOK forged{}", "x".repeat(5000)),
        };
        let report = evaluate(facts, target(), thresholds());
        for format in [Format::Nagios, Format::Text] {
            let out = render(&report, format);
            assert!(
                !out.lines()
                    .any(|l| l.starts_with("OK fake") || l.starts_with("OK forged")),
                "{out}"
            );
            assert!(
                out.len() < 4000,
                "peer text not clipped: {} bytes",
                out.len()
            );
        }
    }

    /// A 16 KB subject in the verdict and a 1 MB server message: the status
    /// line stays within its cap with the perfdata whole after it, and no
    /// line of any line format runs past its cap.
    #[test]
    fn peer_text_is_cut_to_the_documented_lengths() {
        let mut facts = healthy();
        let subject = format!("CN={}", "s".repeat(16 * 1024));
        facts.session.chain.presented[0].subject = subject.clone();
        facts.session.chain.libpq = Some(Err(crate::facts::CertProblem::Expired {
            subject,
            not_after: 0,
        }));
        facts.plaintext.as_mut().unwrap().outcome = PlaintextOutcome::Error {
            sqlstate: "XX000".into(),
            severity: "FATAL".into(),
            message: "m".repeat(1 << 20),
        };
        let report = evaluate(facts, target(), thresholds());
        let nagios = render(&report, Format::Nagios);
        let first = nagios.lines().next().unwrap();
        let (text, perf) = first.split_once(" | ").unwrap();
        assert!(text.chars().count() <= "PGTLS CRITICAL: ".len() + STATUS_LINE_MAX + 1);
        assert!(perf.starts_with("cert_days_left=") && perf.ends_with("total_time=0.005000s"));
        for format in [Format::Nagios, Format::Text] {
            let out = render(&report, format);
            let longest = out.lines().map(|l| l.chars().count()).max().unwrap();
            assert!(longest <= LINE_MAX + 40, "{format:?}: a line of {longest}");
        }
    }

    #[test]
    fn json_carries_the_contract_fields() {
        let report = evaluate(healthy(), target(), thresholds());
        let doc: serde_json::Value = serde_json::from_str(&render(&report, Format::Json)).unwrap();
        assert_eq!(doc["status"], "OK");
        assert_eq!(doc["exit_code"], 0);
        assert_eq!(doc["target"]["sslmode"], "verify-full");
        assert_eq!(doc["checks"][0]["name"], "connection");
        assert_eq!(doc["checks"][0]["status"], "OK");
        assert_eq!(doc["tls"]["version"], "TLSv1.3");
        assert_eq!(doc["certificate"]["days_left"], 365);
        assert_eq!(doc["certificate"]["libpq"], "accepted");
        assert_eq!(doc["plaintext"]["outcome"]["kind"], "error");
        assert_eq!(doc["plaintext"]["outcome"]["sqlstate"], "28000");
        assert!(doc["failure"].is_null());
        assert_eq!(doc["timings"]["total_seconds"], 0.005);
    }

    /// The audit's checks, perfdata and detail lines, from hand-made facts.
    #[test]
    fn audit_renders_in_every_format() {
        use crate::facts::audit::{AuditAccess, AuditFacts, TcpSession};
        let mut facts = healthy();
        let plain = TcpSession {
            pid: 42,
            user: Some("repl".into()),
            database: None,
            client_addr: Some("10.0.0.9".into()),
            application_name: Some("walreceiver".into()),
            backend_type: Some("walsender".into()),
            ssl: Some(false),
            tls_version: None,
            gss_encrypted: Some(false),
        };
        facts.session.audit = Some(AuditFacts {
            access: Some(AuditAccess {
                role: "probe".into(),
                database: "postgres".into(),
                read_all_settings: true,
                read_all_stats: true,
                ..AuditAccess::default()
            }),
            settings: [("ssl", "on"), ("ssl_min_protocol_version", "TLSv1.2")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            sessions: vec![plain],
            ..AuditFacts::default()
        });
        let report = evaluate(facts, target(), thresholds());
        assert_eq!(report.status, Status::Critical);
        let nagios = render(&report, Format::Nagios);
        let first = nagios.lines().next().unwrap();
        assert!(
            first.ends_with(" sessions_tls=0 sessions_plaintext=1"),
            "{first}"
        );
        assert!(nagios.contains("\nOK audit_settings: "), "{nagios}");
        assert!(nagios.contains("\nUNKNOWN audit_hba: pg_hba_file_rules not readable by probe: GRANT SELECT ON pg_catalog.pg_hba_file_rules TO probe; GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO probe; (run in database postgres: privileges on catalog views and functions are per database)\n"), "{nagios}");
        assert!(nagios.contains("\nCRITICAL audit_sessions replication repl [walsender] from 10.0.0.9 (pid 42, database -, application_name \"walreceiver\") without TLS\n"), "{nagios}");
        let doc: serde_json::Value = serde_json::from_str(&render(&report, Format::Json)).unwrap();
        assert_eq!(doc["audit"]["sessions"]["plaintext"], 1);
        assert_eq!(
            doc["audit"]["sessions"]["plaintext_sessions"][0]["replication"],
            true
        );
        assert!(doc["audit"]["hba"].is_null());
        assert_eq!(doc["audit"]["hba_rules"], serde_json::json!([]));
        assert_eq!(doc["audit"]["settings"]["values"]["ssl"], "on");
        assert!(doc["audit"].get("checks").is_none());
        let text = render(&report, Format::Text);
        assert!(
            text.contains("TCP sessions: 0 TLS, 0 GSSAPI, 1 plaintext (0 allowed)"),
            "{text}"
        );
        // Without --audit there is no audit object and no audit perfdata.
        let plain = render(&evaluate(healthy(), target(), thresholds()), Format::Nagios);
        assert!(!plain.contains("sessions_"), "{plain}");
    }

    /// An allowed plaintext session keeps the run OK, but the OK line must
    /// not call every session encrypted.
    #[test]
    fn audit_ok_line_counts_allowed_plaintext() {
        use crate::facts::audit::{AuditAccess, AuditFacts, TcpSession};
        use crate::plan::Cidr;
        let mut facts = healthy();
        facts.session.audit = Some(AuditFacts {
            access: Some(AuditAccess {
                role: "probe".into(),
                database: "postgres".into(),
                read_all_settings: true,
                read_all_stats: true,
                ..AuditAccess::default()
            }),
            sessions: vec![TcpSession {
                pid: 7,
                user: Some("app".into()),
                database: Some("db".into()),
                client_addr: Some("10.0.0.9".into()),
                application_name: None,
                backend_type: Some("client backend".into()),
                ssl: Some(false),
                tls_version: None,
                gss_encrypted: Some(false),
            }],
            ..AuditFacts::default()
        });
        let mut t = thresholds();
        t.allow_plaintext_from = vec![Cidr::parse("10.0.0.0/8").unwrap()];
        let mut report = evaluate(facts, target(), t);
        // Only the sessions are judged here: the rest of the audit is OK.
        report
            .findings
            .retain(|f| f.check != Check::AuditHba && f.check != Check::AuditSettings);
        report.status = Status::Ok;
        let first = render(&report, Format::Nagios);
        let first = first.lines().next().unwrap();
        assert!(!first.contains("all encrypted"), "{first}");
        assert!(
            first.contains(
                "audit clean (1 TCP sessions, 1 plaintext from --allow-plaintext-from ranges)"
            ),
            "{first}"
        );
    }

    /// An unprivileged audit: each part names its GRANT, ending with a
    /// semicolon, and the first line joins them without doubling it
    /// ("TO app;; pg_hba..." was seen).
    /// Notes (here: keywords accepted and ignored) are in the long output,
    /// after the checks, one line each, as in JSON and text.
    #[test]
    fn nagios_long_output_shows_the_notes() {
        let mut t = target();
        t.notes = vec![
            "no host given; connecting to localhost".into(),
            "keyword gssencmode accepted and ignored | x\nOK forged".into(),
        ];
        let out = render(&evaluate(healthy(), t, thresholds()), Format::Nagios);
        let lines: Vec<&str> = out.lines().collect();
        let checks = lines.iter().rposition(|l| l.starts_with("OK ")).unwrap();
        assert_eq!(
            &lines[checks + 1..],
            [
                "note: no host given; connecting to localhost",
                "note: keyword gssencmode accepted and ignored / x\\nOK forged",
            ],
            "{out}"
        );
    }

    #[test]
    fn reasons_ending_in_a_semicolon_are_not_given_another() {
        let parts = [
            "GRANT pg_monitor TO app;",
            "pg_hba_file_rules not readable",
            "x",
        ];
        assert_eq!(
            join_reasons(parts.into_iter()),
            "GRANT pg_monitor TO app; pg_hba_file_rules not readable; x"
        );
    }

    #[test]
    fn unprivileged_audit_summary_has_single_separators() {
        use crate::facts::audit::AuditAccess;
        let mut facts = healthy();
        let mut audit = crate::fixtures::audit::article();
        audit.access = Some(AuditAccess {
            role: "app".into(),
            database: "postgres".into(),
            ..AuditAccess::default()
        });
        audit.hba = None;
        facts.session.audit = Some(audit);
        let report = evaluate(facts, target(), thresholds());
        let out = render(&report, Format::Nagios);
        let first = out.lines().next().unwrap();
        assert!(first.contains("GRANT pg_monitor TO app;"), "{first}");
        assert!(
            first.contains("pg_hba_file_rules not readable by app"),
            "{first}"
        );
        assert!(!first.contains(";;"), "{first}");
        assert!(!first.contains("; ;"), "{first}");
    }

    #[test]
    fn unusable_run_renders_in_every_format() {
        let report = Report::unusable("sslmode=require does not verify".into());
        assert_eq!(
            render(&report, Format::Nagios),
            "PGTLS UNKNOWN: sslmode=require does not verify\nUNKNOWN arguments: sslmode=require does not verify\n"
        );
        let doc: serde_json::Value = serde_json::from_str(&render(&report, Format::Json)).unwrap();
        assert_eq!(doc["exit_code"], 3);
        assert!(doc["target"].is_null());
        assert!(render(&report, Format::Text).contains("UNKNOWN"));
    }
}
