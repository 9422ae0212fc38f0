//! `audit_settings`: the TLS settings against the recipe's postgresql.conf
//! lines. Only those below are judged; a cipher list other than the
//! article's `HIGH:!aNULL` is shown, not graded.

use std::collections::BTreeMap;

use super::{worst, RECIPE_HOSTSSL, RECIPE_MIN, RECIPE_SSL};
use crate::facts::audit::{AuditAccess, AuditFacts, SUPERUSER_ONLY};
use crate::facts::TlsVersion;
use crate::policy::{finding, Check, Finding, Status};

#[derive(Debug, Clone)]
pub struct SettingsReport {
    pub status: Status,
    /// The audited settings the role could see, as pg_settings shows them.
    pub values: BTreeMap<String, String>,
    pub findings: Vec<SettingFinding>,
}

#[derive(Debug, Clone)]
pub struct SettingFinding {
    pub setting: String,
    pub value: Option<String>,
    pub status: Status,
    pub reason: String,
}

pub(super) fn judge(facts: &AuditFacts, access: &AuditAccess) -> (Finding, Option<SettingsReport>) {
    let values = &facts.settings;
    let get = |name: &str| values.get(name).map(String::as_str);
    let mut findings = Vec::new();
    let mut add = |setting: &str, status, reason: String| {
        findings.push(SettingFinding {
            setting: setting.into(),
            value: values.get(setting).cloned(),
            status,
            reason,
        })
    };
    if get("ssl") == Some("off") {
        add(
            "ssl",
            Status::Critical,
            format!("ssl = off breaks the recipe line `{RECIPE_SSL}`"),
        );
    }
    match get("ssl_min_protocol_version") {
        Some(v) if TlsVersion::parse(v).is_some_and(|v| v < TlsVersion::Tls12) => add(
            "ssl_min_protocol_version",
            Status::Warning,
            format!("ssl_min_protocol_version = '{v}' is below the recipe line `{RECIPE_MIN}`"),
        ),
        // Visible settings but no such row: a server before PostgreSQL 12.
        None if access.read_all_settings => add(
            "ssl_min_protocol_version",
            Status::Warning,
            format!("the server has no ssl_min_protocol_version (before PostgreSQL 12), so TLS 1.0 and 1.1 are not excluded (recipe line `{RECIPE_MIN}`)"),
        ),
        _ => {}
    }
    if let Some(v) = get("ssl_max_protocol_version")
        .filter(|v| TlsVersion::parse(v).is_some_and(|v| v < TlsVersion::Tls12))
    {
        add(
            "ssl_max_protocol_version",
            Status::Warning,
            format!("ssl_max_protocol_version = '{v}' keeps TLS below the recipe's floor `{RECIPE_MIN}`"),
        );
    }
    // "on" is md5 before PostgreSQL 14.
    if let Some(v) = get("password_encryption").filter(|v| *v == "md5" || *v == "on") {
        add(
            "password_encryption",
            Status::Warning,
            format!("password_encryption = {v} stores new passwords as MD5, which cannot log in through the recipe line `{RECIPE_HOSTSSL}`; set scram-sha-256"),
        );
    }
    let mut status = worst(findings.iter().map(|f| f.status));
    let mut parts: Vec<String> = findings.iter().map(|f| f.reason.clone()).collect();
    if !access.read_all_settings {
        let hidden: Vec<&str> = SUPERUSER_ONLY
            .iter()
            .copied()
            .filter(|n| !values.contains_key(*n))
            .collect();
        status = status.max(Status::Unknown);
        parts.push(format!(
            "{} not visible to {role}: GRANT pg_monitor TO {role}; (in any database: role membership is cluster-wide)",
            hidden.join(", "),
            role = access.role
        ));
    }
    let summary = if parts.is_empty() {
        format!(
            "ssl on, minimum {}, password_encryption {}",
            get("ssl_min_protocol_version").unwrap_or("?"),
            get("password_encryption").unwrap_or("?")
        )
    } else {
        parts.join("; ")
    };
    let mut shown = values.clone();
    shown.remove("data_directory");
    (
        finding(Check::AuditSettings, status, summary),
        Some(SettingsReport {
            status,
            values: shown,
            findings,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fixtures::audit::article;
    use crate::policy::audit::evaluate;

    /// PostgreSQL 12 as an unprivileged role sees it: ssl_crl_dir does not
    /// exist there (14+), so it is not "hidden"; the five that are, are named.
    #[test]
    fn hidden_settings_are_the_superuser_only_ones() {
        let mut facts = article();
        facts.access.as_mut().unwrap().read_all_settings = false;
        facts.settings = [
            "password_encryption",
            "ssl",
            "ssl_ca_file",
            "ssl_cert_file",
            "ssl_crl_file",
            "ssl_key_file",
            "ssl_prefer_server_ciphers",
        ]
        .iter()
        .map(|k| (k.to_string(), "x".to_string()))
        .collect();
        let check = &evaluate(&facts, &[]).checks[0];
        assert_eq!(check.status, Status::Unknown);
        assert!(
            check.summary.starts_with("ssl_min_protocol_version, ssl_max_protocol_version, ssl_ciphers, ssl_ecdh_curve, hba_file not visible to monitor"),
            "{}",
            check.summary
        );
    }

    #[test]
    fn settings_against_the_recipe() {
        let mut facts = article();
        let set = |f: &mut AuditFacts, k: &str, v: &str| {
            f.settings.insert(k.into(), v.into());
        };
        set(&mut facts, "ssl_min_protocol_version", "TLSv1.1");
        set(&mut facts, "password_encryption", "md5");
        let report = evaluate(&facts, &[]);
        assert_eq!(report.checks[0].status, Status::Warning);
        let s = report.settings.unwrap();
        assert_eq!(s.findings.len(), 2);
        assert!(
            s.findings[0].reason.contains(RECIPE_MIN),
            "{}",
            s.findings[0].reason
        );
        set(&mut facts, "ssl", "off");
        assert_eq!(evaluate(&facts, &[]).checks[0].status, Status::Critical);
        // Without pg_read_all_settings the hidden ones are named with the GRANT.
        let mut facts = article();
        facts.access.as_mut().unwrap().read_all_settings = false;
        facts.settings.remove("ssl_min_protocol_version");
        let check = &evaluate(&facts, &[]).checks[0];
        assert_eq!(check.status, Status::Unknown);
        assert!(
            check.summary.contains("ssl_min_protocol_version"),
            "{}",
            check.summary
        );
        assert!(check.summary.contains("GRANT pg_monitor TO monitor;"));
    }
}
