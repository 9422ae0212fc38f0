//! The `--audit` details for the line-oriented outputs: one line per
//! pg_hba.conf finding and per plaintext session (the JSON `audit` object
//! carries them all; these lists stop at [`SHOWN`] to keep Nagios output
//! readable).

use std::fmt::Write;

use super::one_line;
use crate::facts::audit::ReloadCheck;
use crate::policy::audit::{describe_session, AuditReport, RuleFinding};

const SHOWN: usize = 20;

fn rule_line(f: &RuleFinding) -> String {
    format!(
        "{}:{}{}: {}",
        f.file,
        f.line.map_or_else(|| "-".to_string(), |l| l.to_string()),
        f.rule
            .as_deref()
            .map(|r| format!(" [{r}]"))
            .unwrap_or_default(),
        f.reason
    )
}

/// Lines to follow the checks in Nagios long output.
pub fn detail_lines(audit: &AuditReport) -> Vec<String> {
    let mut lines: Vec<String> = audit
        .hba_rules
        .iter()
        .take(SHOWN)
        .map(|f| format!("{} audit_hba {}", f.status.label(), rule_line(f)))
        .collect();
    if audit.hba_rules.len() > SHOWN {
        lines.push(format!(
            "... {} more pg_hba.conf findings (see --format json)",
            audit.hba_rules.len() - SHOWN
        ));
    }
    if let Some(sessions) = &audit.sessions {
        let listed = &sessions.plaintext_sessions;
        lines.extend(listed.iter().take(SHOWN).map(|p| {
            format!(
                "{} audit_sessions {}{}",
                p.status.label(),
                describe_session(p),
                if p.allowed { " (allowed)" } else { "" }
            )
        }));
        if listed.len() > SHOWN {
            lines.push(format!(
                "... {} more plaintext sessions (see --format json)",
                listed.len() - SHOWN
            ));
        }
    }
    lines
}

/// The run's OK summary gains this when the audit ran (and so was clean).
pub fn ok_part(audit: &AuditReport) -> String {
    match &audit.sessions {
        Some(s) if s.plaintext_allowed > 0 => format!(
            "audit clean ({} TCP sessions, {} plaintext from --allow-plaintext-from ranges)",
            s.total, s.plaintext_allowed
        ),
        Some(s) => format!("audit clean ({} TCP sessions, all encrypted)", s.total),
        None => "audit clean".to_string(),
    }
}

/// The audit block of `--format text`.
pub fn text_section(out: &mut String, audit: &AuditReport) {
    let _ = writeln!(out, "\naudit:");
    if let Some(reason) = &audit.failure {
        let _ = writeln!(out, "  not run: {}", one_line(reason));
        return;
    }
    if let Some(settings) = &audit.settings {
        let _ = writeln!(out, "  settings:");
        for (name, value) in &settings.values {
            let _ = writeln!(out, "    {name:<26} {}", one_line(value));
        }
    }
    if let Some(hba) = &audit.hba {
        let _ = writeln!(
            out,
            "  pg_hba.conf: {} ({} rules)",
            one_line(&hba.file),
            hba.rules
        );
        let reload = match &hba.reload {
            ReloadCheck::Checked { pending: true, .. } => "changed since the last reload".into(),
            ReloadCheck::Checked { .. } => "loaded as on disk".into(),
            ReloadCheck::NotChecked(why) => why.to_string(),
            ReloadCheck::NotRun => "not checked".into(),
        };
        let _ = writeln!(out, "    reload: {}", one_line(&reload));
    }
    for f in audit.hba_rules.iter().take(SHOWN) {
        let _ = writeln!(
            out,
            "    {:<8} {}",
            f.status.label(),
            one_line(&rule_line(f))
        );
    }
    if audit.hba_rules.len() > SHOWN {
        let _ = writeln!(
            out,
            "    ... {} more (see --format json)",
            audit.hba_rules.len() - SHOWN
        );
    }
    if let Some(s) = &audit.sessions {
        let _ = writeln!(
            out,
            "  TCP sessions: {} TLS, {} GSSAPI, {} plaintext ({} allowed)",
            s.tls, s.gss, s.plaintext, s.plaintext_allowed
        );
        for p in s.plaintext_sessions.iter().take(SHOWN) {
            let _ = writeln!(
                out,
                "    {:<8} {}{}",
                p.status.label(),
                one_line(&describe_session(p)),
                if p.allowed { " (allowed)" } else { "" }
            );
        }
        if s.plaintext_sessions.len() > SHOWN {
            let _ = writeln!(
                out,
                "    ... {} more (see --format json)",
                s.plaintext_sessions.len() - SHOWN
            );
        }
    }
}
