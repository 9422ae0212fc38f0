//! `audit_sessions`: the TCP sessions open right now, each TLS, GSSAPI or
//! plaintext; plaintext replication is never excused, other plaintext
//! only from `--allow-plaintext-from` ranges.

use std::net::IpAddr;

use super::{named, worst};
use crate::facts::audit::{AuditAccess, AuditFacts, TcpSession};
use crate::plan::Cidr;
use crate::policy::{finding, Check, Finding, Status};

#[derive(Debug, Clone)]
pub struct SessionsReport {
    pub status: Status,
    /// TCP sessions only: Unix-socket sessions are not a TLS matter.
    pub total: usize,
    pub tls: usize,
    /// Encrypted by GSSAPI rather than TLS (not counted as plaintext).
    pub gss: usize,
    /// Neither TLS nor GSSAPI, including the allowed ones.
    pub plaintext: usize,
    pub plaintext_allowed: usize,
    pub plaintext_sessions: Vec<PlaintextSession>,
}

#[derive(Debug, Clone)]
pub struct PlaintextSession {
    /// As read from the server (pid, user, database, client_addr, ...).
    pub session: TcpSession,
    pub replication: bool,
    /// Matched `--allow-plaintext-from` (never for replication).
    pub allowed: bool,
    pub status: Status,
}

pub(super) fn judge(
    facts: &AuditFacts,
    access: &AuditAccess,
    allow: &[Cidr],
) -> (Finding, Option<SessionsReport>) {
    if !access.read_all_stats {
        return (
            finding(
                Check::AuditSessions,
                Status::Unknown,
                format!(
                    "other roles' sessions are hidden from {role}: GRANT pg_monitor TO {role}; (in any database: role membership is cluster-wide)",
                    role = access.role
                ),
            ),
            None,
        );
    }
    let mut report = SessionsReport {
        status: Status::Ok,
        total: facts.sessions.len(),
        tls: 0,
        gss: 0,
        plaintext: 0,
        plaintext_allowed: 0,
        plaintext_sessions: Vec::new(),
    };
    for s in &facts.sessions {
        if s.ssl == Some(true) {
            report.tls += 1;
        } else if s.gss_encrypted == Some(true) {
            report.gss += 1;
        } else {
            report.plaintext += 1;
            report.plaintext_sessions.push(plaintext_session(s, allow));
        }
    }
    report.plaintext_allowed = report
        .plaintext_sessions
        .iter()
        .filter(|p| p.allowed)
        .count();
    report.status = worst(report.plaintext_sessions.iter().map(|p| p.status));
    let mut summary = format!(
        "TCP sessions: {} ({} TLS, {} plaintext",
        report.total, report.tls, report.plaintext
    );
    if report.gss > 0 {
        summary.push_str(&format!(", {} GSSAPI-encrypted", report.gss));
    }
    if report.plaintext_allowed > 0 {
        summary.push_str(&format!(
            ", {} of them from --allow-plaintext-from ranges",
            report.plaintext_allowed
        ));
    }
    summary.push(')');
    let refused: Vec<&PlaintextSession> = report
        .plaintext_sessions
        .iter()
        .filter(|p| !p.allowed)
        .collect();
    if !refused.is_empty() {
        summary.push_str(": ");
        summary.push_str(&named(&refused, |p| describe_session(p)));
    }
    (
        finding(Check::AuditSessions, report.status, summary),
        Some(report),
    )
}

fn plaintext_session(s: &TcpSession, allow: &[Cidr]) -> PlaintextSession {
    let replication = s.backend_type.as_deref() == Some("walsender");
    let addr = s
        .client_addr
        .as_deref()
        .and_then(|a| a.parse::<IpAddr>().ok());
    let allowed = !replication && addr.is_some_and(|a| allow.iter().any(|c| c.contains(a)));
    PlaintextSession {
        session: s.clone(),
        replication,
        allowed,
        status: if allowed {
            Status::Ok
        } else {
            Status::Critical
        },
    }
}

pub fn describe_session(p: &PlaintextSession) -> String {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let s = &p.session;
    format!(
        "{} {}{} from {} (pid {}, database {}, application_name \"{}\") without TLS",
        if p.replication {
            "replication"
        } else {
            "client"
        },
        or_dash(&s.user),
        s.backend_type
            .as_deref()
            .map(|b| format!(" [{b}]"))
            .unwrap_or_default(),
        or_dash(&s.client_addr),
        s.pid,
        or_dash(&s.database),
        or_dash(&s.application_name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fixtures::audit::{article, session};
    use crate::plan::Cidr;
    use crate::policy::audit::evaluate;

    #[test]
    fn sessions_replication_is_never_allowed() {
        let mut facts = article();
        facts
            .sessions
            .push(session(2, "client backend", Some(false)));
        facts.sessions.push(session(3, "walsender", Some(false)));
        let mut gss = session(4, "client backend", Some(false));
        gss.gss_encrypted = Some(true);
        facts.sessions.push(gss);
        let allow = [Cidr::parse("10.0.0.0/8").unwrap()];
        let report = evaluate(&facts, &allow);
        let s = report.sessions.unwrap();
        assert_eq!(
            (s.total, s.tls, s.gss, s.plaintext, s.plaintext_allowed),
            (4, 1, 1, 2, 1)
        );
        assert_eq!(s.status, Status::Critical);
        assert!(s.plaintext_sessions[0].allowed && !s.plaintext_sessions[1].allowed);
        assert!(s.plaintext_sessions[1].replication);
        assert!(report.checks[2]
            .summary
            .contains("replication app [walsender] from 10.0.0.5"));
        let mut facts = article();
        facts.access.as_mut().unwrap().read_all_stats = false;
        let check = &evaluate(&facts, &[]).checks[2];
        assert_eq!(check.status, Status::Unknown);
        assert!(check.summary.contains("GRANT pg_monitor TO monitor;"));
    }
}
