//! Monitoring-plugins output: `PGTLS STATUS: summary | perfdata`, then one
//! line per check (Nagios shows the first line; Icinga keeps the rest),
//! then the run's notes (`note: ...`) and the audit's details.

use std::fmt::Write;

use crate::policy::Report;

pub fn render(report: &Report) -> String {
    let text = super::cut(
        &super::one_line(&super::summary(report)),
        super::STATUS_LINE_MAX,
    );
    let mut out = format!(
        "PGTLS {}: {}",
        report.status.label(),
        text.replace('|', "/")
    );
    let perf = perfdata(report);
    if !perf.is_empty() {
        let _ = write!(out, " | {}", perf.join(" "));
    }
    out.push('\n');
    for f in &report.findings {
        // '|' would start perfdata on a continuation line.
        let _ = writeln!(
            out,
            "{} {}: {}",
            f.status.label(),
            f.check.name(),
            super::one_line(&f.summary).replace('|', "/")
        );
    }
    // What the run assumed (no host given, keywords ignored): JSON and
    // text show these too, and a monitoring user should not have to switch
    // formats to learn that localhost was checked.
    for note in report.target.iter().flat_map(|t| &t.notes) {
        let _ = writeln!(out, "note: {}", super::one_line(note).replace('|', "/"));
    }
    if let Some(audit) = &report.audit {
        for line in super::audit::detail_lines(audit) {
            let _ = writeln!(out, "{}", super::one_line(&line).replace('|', "/"));
        }
    }
    out
}

/// `label=value[UOM];warn;crit` items. Days use ranges "30:" (alert below 30).
pub fn perfdata(report: &Report) -> Vec<String> {
    let mut perf = Vec::new();
    if let (Some(e), Some(t)) = (&report.expiry, &report.thresholds) {
        perf.push(format!(
            "cert_days_left={};{}:;{}:",
            e.days_left, t.warning_days, t.critical_days
        ));
    }
    if let Some(facts) = &report.facts {
        if let Some(s) = facts.session.connect_seconds {
            perf.push(format!("connect_time={s:.6}s"));
        }
        if let Some(p) = &facts.plaintext {
            perf.push(format!("plaintext_time={:.6}s", p.seconds));
        }
        perf.push(format!("total_time={:.6}s", facts.total_seconds));
    }
    if let Some(scan) = &report.scan {
        perf.push(format!("scan_time={:.6}s", scan.seconds));
    }
    if let Some(s) = report.audit.as_ref().and_then(|a| a.sessions.as_ref()) {
        perf.push(format!("sessions_tls={}", s.tls));
        perf.push(format!("sessions_plaintext={}", s.plaintext));
    }
    perf
}
