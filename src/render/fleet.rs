//! A fleet's report in each format: the counts and the worst targets
//! first, then one entry per target (JSON: each the single-target document
//! plus its name).

use std::fmt::Write;

use super::{cut, one_line, summary, STATUS_LINE_MAX};
use crate::cli::Format;
use crate::policy::fleet::{FleetReport, NamedReport};
use crate::policy::Status;

/// Lines after the first in Nagios output: one per non-OK target, at most
/// this many (the JSON has them all).
pub const NAGIOS_TARGET_LINES: usize = 100;

/// Worst targets named on the first line.
const NAMED: usize = 3;

pub fn render(fleet: &FleetReport, format: Format) -> String {
    match format {
        Format::Nagios => nagios(fleet),
        Format::Json => super::json::fleet(fleet, first_line(fleet)),
        Format::Text => text(fleet),
        Format::Junit => super::junit::fleet(fleet),
    }
}

/// "N targets: a OK, b WARNING, c CRITICAL, d UNKNOWN; CRITICAL: x (why), ..."
pub fn first_line(fleet: &FleetReport) -> String {
    let c = fleet.counts;
    let mut line = format!(
        "{} targets: {} OK, {} WARNING, {} CRITICAL, {} UNKNOWN",
        c.total(),
        c.ok,
        c.warning,
        c.critical,
        c.unknown
    );
    if fleet.status != Status::Ok {
        let worst: Vec<&NamedReport> = fleet
            .targets
            .iter()
            .filter(|t| t.report.status == fleet.status)
            .collect();
        let named: Vec<String> = worst
            .iter()
            .take(NAMED)
            .map(|t| format!("{} ({})", t.name, summary(&t.report)))
            .collect();
        let _ = write!(line, "; {}: {}", fleet.status.label(), named.join(", "));
        if worst.len() > NAMED {
            let _ = write!(line, ", and {} more", worst.len() - NAMED);
        }
    }
    line
}

fn nagios(fleet: &FleetReport) -> String {
    let c = fleet.counts;
    let mut out = format!(
        "PGTLS {}: {} | targets={} ok={} warning={} critical={} unknown={} total_time={:.6}s\n",
        fleet.status.label(),
        cut(&one_line(&first_line(fleet)), STATUS_LINE_MAX).replace('|', "/"),
        c.total(),
        c.ok,
        c.warning,
        c.critical,
        c.unknown,
        fleet.total_seconds
    );
    let not_ok: Vec<&NamedReport> = fleet
        .worst_first()
        .into_iter()
        .filter(|t| t.report.status != Status::Ok)
        .collect();
    for t in not_ok.iter().take(NAGIOS_TARGET_LINES) {
        let _ = writeln!(
            out,
            "{} {}",
            t.report.status.label(),
            one_line(&format!("{}: {}", t.name, summary(&t.report))).replace('|', "/")
        );
    }
    if not_ok.len() > NAGIOS_TARGET_LINES {
        let _ = writeln!(
            out,
            "... {} more targets not OK (see --format json)",
            not_ok.len() - NAGIOS_TARGET_LINES
        );
    }
    out
}

fn text(fleet: &FleetReport) -> String {
    let c = fleet.counts;
    let mut out = format!(
        "pg-tls-probe: {} ({} targets: {} OK, {} WARNING, {} CRITICAL, {} UNKNOWN) in {:.1} s\n\n",
        fleet.status.label(),
        c.total(),
        c.ok,
        c.warning,
        c.critical,
        c.unknown,
        fleet.total_seconds
    );
    let width = fleet
        .targets
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(6, 40);
    let _ = writeln!(out, "{:<8}  {:<width$}  SUMMARY", "STATUS", "TARGET");
    for t in fleet.worst_first() {
        let _ = writeln!(
            out,
            "{:<8}  {:<width$}  {}",
            t.report.status.label(),
            one_line(&t.name),
            one_line(&summary(&t.report))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{healthy, target, thresholds};
    use crate::policy::evaluate;
    use crate::policy::fleet::FleetReport;

    fn fleet() -> FleetReport {
        let ok = evaluate(healthy(), target(), thresholds());
        let mut facts = healthy();
        facts.session.failure = Some(crate::facts::SessionFailure::Timeout {
            stage: crate::facts::Stage::SslRequest,
            after_ms: 3000,
        });
        let silent = evaluate(facts, target(), thresholds());
        let named = |name: &str, report: &crate::policy::Report| NamedReport {
            name: name.into(),
            report: report.clone(),
        };
        FleetReport::new(
            vec![
                named("db1", &ok),
                named("silent", &silent),
                named("db2", &ok),
            ],
            0.25,
        )
    }

    #[test]
    fn nagios_counts_first_then_the_targets_not_ok() {
        let out = render(&fleet(), Format::Nagios);
        let mut lines = out.lines();
        assert_eq!(
            lines.next().unwrap(),
            "PGTLS CRITICAL: 3 targets: 2 OK, 0 WARNING, 1 CRITICAL, 0 UNKNOWN; CRITICAL: silent \
             (timed out at SSLRequest after 3.0 s) | targets=3 ok=2 warning=0 critical=1 unknown=0 \
             total_time=0.250000s"
        );
        assert_eq!(
            lines.next().unwrap(),
            "CRITICAL silent: timed out at SSLRequest after 3.0 s"
        );
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn json_is_the_single_documents_with_names() {
        let doc: serde_json::Value = serde_json::from_str(&render(&fleet(), Format::Json)).unwrap();
        assert_eq!(doc["status"], "CRITICAL");
        assert_eq!(doc["exit_code"], 2);
        assert_eq!(doc["counts"]["ok"], 2);
        assert_eq!(doc["counts"]["total"], 3);
        assert_eq!(doc["targets"][1]["name"], "silent");
        assert_eq!(doc["targets"][1]["failure"]["kind"], "timeout");
        assert_eq!(doc["targets"][0]["checks"][0]["name"], "connection");
        assert!(doc["summary"]
            .as_str()
            .unwrap()
            .starts_with("3 targets: 2 OK"));
    }

    #[test]
    fn text_is_a_table_worst_first() {
        let out = render(&fleet(), Format::Text);
        let rows: Vec<&str> = out.lines().skip(3).collect();
        assert!(rows[0].starts_with("CRITICAL  silent"), "{out}");
        assert!(rows[1].starts_with("OK        db1"), "{out}");
    }
}
