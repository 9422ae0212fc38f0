//! Judges `--audit` facts against the recipe: three checks
//! (`audit_settings`, `audit_hba`, `audit_sessions`), one judge each, plus
//! the details the JSON `audit` object carries.
//!
//! A part the login role may not read is UNKNOWN with the GRANT that would
//! fix it; the other parts are judged all the same. Findings quote the
//! recipe line they break, so the fix is in the message.

pub mod hba;
pub mod rotation;
pub mod sessions;
pub mod settings;

use super::{finding, Check, Finding, Status};
use crate::facts::audit::AuditFacts;
use crate::plan::Cidr;

pub use hba::{CatchAll, HbaReport, RuleFinding};
pub use sessions::{describe_session, PlaintextSession, SessionsReport};
pub use settings::{SettingFinding, SettingsReport};

const RECIPE_SSL: &str = "ssl = on";
const RECIPE_MIN: &str = "ssl_min_protocol_version = 'TLSv1.2'";
const RECIPE_HOSTSSL: &str = "hostssl all all 0.0.0.0/0 scram-sha-256";
const RECIPE_REJECT_V4: &str = "host all all 0.0.0.0/0 reject";
const RECIPE_REJECT_V6: &str = "host all all ::/0 reject";

/// At most this many items are named in a one-line summary.
const NAMED: usize = 3;

/// The judged audit: the three checks and the details.
#[derive(Debug, Clone)]
pub struct AuditReport {
    pub checks: Vec<Finding>,
    pub settings: Option<SettingsReport>,
    /// One finding per rule that breaks the recipe, plus one per missing
    /// catch-all reject (with no line).
    pub hba_rules: Vec<RuleFinding>,
    pub hba: Option<HbaReport>,
    pub sessions: Option<SessionsReport>,
    /// Served versus on-disk certificates and settings versus the running
    /// TLS (set by `policy::evaluate`, which has the session's facts).
    pub rotation: Option<rotation::RotationReport>,
    /// Why the audit could not run at all.
    pub failure: Option<String>,
}

pub fn evaluate(facts: &AuditFacts, allow: &[Cidr]) -> AuditReport {
    let Some(access) = facts.access.as_ref().filter(|_| facts.failure.is_none()) else {
        let reason = facts
            .failure
            .as_ref()
            .map_or_else(|| "the audit did not run".into(), ToString::to_string);
        return AuditReport {
            checks: [Check::AuditSettings, Check::AuditHba, Check::AuditSessions]
                .into_iter()
                .map(|check| finding(check, Status::Unknown, reason.clone()))
                .collect(),
            settings: None,
            hba_rules: Vec::new(),
            hba: None,
            sessions: None,
            rotation: None,
            failure: Some(reason),
        };
    };
    let (settings_check, settings) = settings::judge(facts, access);
    let (hba_check, hba_rules, hba) = hba::judge(facts, access);
    let (sessions_check, sessions) = sessions::judge(facts, access, allow);
    AuditReport {
        checks: vec![settings_check, hba_check, sessions_check],
        settings,
        hba_rules,
        hba,
        sessions,
        rotation: None,
        failure: None,
    }
}

fn worst(statuses: impl Iterator<Item = Status>) -> Status {
    statuses.max().unwrap_or(Status::Ok)
}

fn named<T>(items: &[T], show: impl Fn(&T) -> String) -> String {
    let mut text = items
        .iter()
        .take(NAMED)
        .map(show)
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > NAMED {
        text.push_str(&format!("; and {} more", items.len() - NAMED));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::audit::AuditFailure;
    use crate::fixtures::audit::{article, statuses};

    #[test]
    fn article_setup_is_clean() {
        let report = evaluate(&article(), &[]);
        assert_eq!(
            statuses(&report),
            [
                ("audit_settings", Status::Ok),
                ("audit_hba", Status::Ok),
                ("audit_sessions", Status::Ok)
            ]
        );
        assert!(report.hba_rules.is_empty());
        let hba = report.hba.unwrap();
        assert_eq!(
            (hba.catch_all_reject.ipv4, hba.catch_all_reject.ipv6),
            (Some(6), Some(7))
        );
        assert_eq!(hba.differs_from_running, None);
    }

    #[test]
    fn failed_audit_is_unknown_everywhere() {
        let facts = AuditFacts {
            failure: Some(AuditFailure::Timeout {
                what: "audit queries",
                after_ms: 9000,
            }),
            ..AuditFacts::default()
        };
        let report = evaluate(&facts, &[]);
        assert_eq!(report.checks.len(), 3);
        assert!(report.checks.iter().all(|c| c.status == Status::Unknown));
    }
}
