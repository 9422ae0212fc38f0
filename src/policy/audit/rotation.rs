//! `audit_rotation`: does the server serve what is on disk and in its
//! settings? Rotation most often fails one way: the renewed certificate
//! is written, the server is never reloaded, and the old one is served
//! until it expires. A failed reload of the SSL settings does the same
//! quietly: PostgreSQL keeps its previous SSL context while pg_settings
//! already shows the new values (docs/rotation.md).
//!
//! - By content (the shipped `pg_tls_probe_certificates()`): the leaf in
//!   ssl_cert_file against the one the session was served; a difference
//!   is a WARNING naming the file, both expiry dates and the fix. The CA
//!   in ssl_ca_file is held to the expiry windows: client-certificate
//!   verification breaks when it expires.
//! - By time (pg_stat_file only): a TLS file modified after the last
//!   configuration load is a WARNING, worded as a likely pending reload.
//! - Settings against what the session and the scan saw: versions below
//!   ssl_min_protocol_version or above ssl_max_protocol_version accepted,
//!   or a key exchange outside ssl_ecdh_curve: a WARNING that the running
//!   TLS configuration is not the one in the settings.
//!
//! Behind a pooler the served certificate and the handshake are the
//! pooler's: only the settings, files and CA expiry are judged.

use crate::facts::audit::{FilesCheck, OnDisk};
use crate::facts::{date, AttemptOutcome, CertFacts, Facts, TlsVersion};
use crate::policy::{days_left, finding, Check, Finding, Status, Thresholds};

const RELOAD: &str = "SELECT pg_reload_conf()";

/// The judged rotation, for the JSON `audit.rotation` object.
#[derive(Debug, Clone)]
pub struct RotationReport {
    pub status: Status,
    /// `content`, `mtime` or `not_checked`.
    pub method: &'static str,
    /// The served leaf differs from ssl_cert_file's (None when not compared).
    pub served_differs: Option<bool>,
    /// TLS files modified after the last configuration load (by time).
    pub changed_files: Vec<String>,
    /// Settings the running configuration does not follow.
    pub mismatches: Vec<String>,
    /// Each problem or observation, worst first in the summary.
    pub findings: Vec<(Status, String)>,
}

pub fn judge(
    facts: &Facts,
    thresholds: &Thresholds,
    behind_pooler: bool,
) -> Option<(Finding, RotationReport)> {
    let audit = facts.session.audit.as_ref()?;
    if audit.failure.is_some() || audit.access.is_none() {
        return None;
    }
    let mut report = RotationReport {
        status: Status::Ok,
        method: "not_checked",
        served_differs: None,
        changed_files: Vec::new(),
        mismatches: Vec::new(),
        findings: Vec::new(),
    };
    let served = facts.session.chain.presented.first();
    match &audit.files {
        FilesCheck::Content(files) => {
            report.method = "content";
            for file in files {
                content(
                    file,
                    served,
                    behind_pooler,
                    thresholds,
                    facts.now,
                    &mut report,
                );
            }
        }
        FilesCheck::Times(times) => {
            report.method = "mtime";
            for t in times {
                if let Some(modified) = t.modified.filter(|m| *m > t.loaded) {
                    report.changed_files.push(t.path.clone());
                    report.findings.push((
                        Status::Warning,
                        format!(
                            "likely pending reload: {} {} changed on {} after the last configuration load ({}); {RELOAD} (a renewal tool that rewrites identical content trips this too; the content check of docs/rotation.md does not)",
                            t.setting,
                            t.path,
                            date(modified as i64),
                            date(t.loaded as i64)
                        ),
                    ));
                }
            }
            if report.changed_files.is_empty() {
                report.findings.push((
                    Status::Ok,
                    "no TLS file changed since the last configuration load".into(),
                ));
            }
        }
        FilesCheck::NotChecked(reason) => report.findings.push((
            Status::Ok,
            format!("served versus on-disk certificate {reason}"),
        )),
        FilesCheck::NotRun => {}
    }
    if !behind_pooler {
        settings_vs_reality(facts, &mut report);
    }
    if report.findings.is_empty() {
        return None;
    }
    report.status = report
        .findings
        .iter()
        .map(|(s, _)| *s)
        .max()
        .unwrap_or(Status::Ok);
    // The worst findings; when all is well, every observation.
    let summary = report
        .findings
        .iter()
        .filter(|(s, _)| *s == report.status || report.status == Status::Ok)
        .map(|(_, text)| text.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Some((
        finding(Check::AuditRotation, report.status, summary),
        report,
    ))
}

fn content(
    file: &OnDisk,
    served: Option<&CertFacts>,
    behind_pooler: bool,
    thresholds: &Thresholds,
    now: i64,
    report: &mut RotationReport,
) {
    let certs = match &file.certs {
        Ok(certs) => certs,
        Err(why) => {
            report.findings.push((
                Status::Warning,
                format!(
                    "{} {} cannot be read as certificates ({why}): the next reload or restart will not load it",
                    file.setting, file.path
                ),
            ));
            return;
        }
    };
    match file.setting.as_str() {
        "ssl_cert_file" => {
            let (Some(on_disk), Some(served)) = (certs.first(), served) else {
                return;
            };
            if behind_pooler {
                report.findings.push((
                    Status::Ok,
                    format!(
                        "served certificate not compared with {}: it is the pooler's",
                        file.path
                    ),
                ));
                return;
            }
            let differs = on_disk.sha256_fingerprint != served.sha256_fingerprint;
            report.served_differs = Some(differs);
            report.findings.push(if differs {
                (
                    Status::Warning,
                    format!(
                        "{} holds another certificate than the server serves: on disk {} (expires {}), served {} (expires {}); the file was replaced without a reload: {RELOAD}",
                        file.path,
                        on_disk.subject,
                        date(on_disk.not_after),
                        served.subject,
                        date(served.not_after)
                    ),
                )
            } else {
                (
                    Status::Ok,
                    format!("the served certificate is the one in {}", file.path),
                )
            })
        }
        "ssl_ca_file" => {
            let Some(soonest) = certs.iter().min_by_key(|c| c.not_after) else {
                return;
            };
            let days = days_left(soonest.not_after, now);
            let status = if days < thresholds.critical_days {
                Status::Critical
            } else if days < thresholds.warning_days {
                Status::Warning
            } else {
                Status::Ok
            };
            let when = if days < 0 {
                format!("expired {} days ago ({})", -days, date(soonest.not_after))
            } else {
                format!("expires in {days} days ({})", date(soonest.not_after))
            };
            let why = if status == Status::Ok {
                String::new()
            } else {
                ": client-certificate verification breaks when it expires".to_string()
            };
            report.findings.push((
                status,
                format!("ssl_ca_file {}: {} {when}{why}", file.path, soonest.subject),
            ));
        }
        _ => {}
    }
}

/// OpenSSL's curve names as rustls names the groups.
fn group_name(openssl: &str) -> String {
    match openssl.trim().to_ascii_lowercase().as_str() {
        "prime256v1" | "p-256" | "secp256r1" => "secp256r1".into(),
        "p-384" | "secp384r1" => "secp384r1".into(),
        "p-521" | "secp521r1" => "secp521r1".into(),
        other => other.to_string(),
    }
}

fn settings_vs_reality(facts: &Facts, report: &mut RotationReport) {
    let Some(audit) = facts.session.audit.as_ref() else {
        return;
    };
    let setting = |name: &str| audit.settings.get(name).map(String::as_str);
    let accepted: Vec<TlsVersion> = facts
        .scan
        .iter()
        .flat_map(|s| s.protocols.iter())
        .filter(|p| matches!(p.outcome, AttemptOutcome::Accepted { .. }))
        .map(|p| p.version)
        .chain(facts.session.negotiated.as_ref().map(|n| n.version))
        .collect();
    let mut mismatches = Vec::new();
    if let Some((text, min)) =
        setting("ssl_min_protocol_version").and_then(|t| TlsVersion::parse(t).map(|v| (t, v)))
    {
        if let Some(low) = accepted.iter().filter(|v| **v < min).min() {
            mismatches.push(format!(
                "ssl_min_protocol_version = '{text}', but the server accepted {}",
                low.name()
            ));
        }
    }
    if let Some((text, max)) =
        setting("ssl_max_protocol_version").and_then(|t| TlsVersion::parse(t).map(|v| (t, v)))
    {
        if let Some(high) = accepted.iter().filter(|v| **v > max).max() {
            mismatches.push(format!(
                "ssl_max_protocol_version = '{text}', but the server accepted {}",
                high.name()
            ));
        }
    }
    if let (Some(curves), Some(group)) = (
        setting("ssl_ecdh_curve").filter(|c| !c.is_empty()),
        facts
            .session
            .negotiated
            .as_ref()
            .and_then(|n| n.group.as_deref()),
    ) {
        let allowed: Vec<String> = curves.split(':').map(group_name).collect();
        if !allowed.contains(&group_name(group)) {
            mismatches.push(format!(
                "ssl_ecdh_curve = '{curves}', but the session's key exchange used {group}"
            ));
        }
    }
    if !mismatches.is_empty() {
        report.findings.push((
            Status::Warning,
            format!(
                "the running TLS configuration is not the one in the settings: {}. PostgreSQL keeps its previous SSL context when reloading the SSL settings fails (its log says \"SSL configuration was not reloaded\"): fix the setting, then {RELOAD}",
                mismatches.join("; ")
            ),
        ));
    }
    report.mismatches = mismatches;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::audit::FileTime;
    use crate::fixtures::audit::article;
    use crate::fixtures::{healthy, target, thresholds, DAY, NOW};
    use crate::policy::evaluate;

    fn audited(files: FilesCheck) -> Facts {
        let mut facts = healthy();
        let mut audit = article();
        audit.files = files;
        facts.session.audit = Some(audit);
        facts
    }

    fn rotation(facts: Facts) -> Finding {
        let report = evaluate(facts, target(), thresholds());
        report.finding(Check::AuditRotation).unwrap().clone()
    }

    fn on_disk(setting: &str, cert: CertFacts) -> OnDisk {
        OnDisk {
            setting: setting.into(),
            path: format!("/etc/pg/{setting}.pem"),
            certs: Ok(vec![cert]),
        }
    }

    #[test]
    fn a_replaced_certificate_not_yet_loaded_is_named_with_the_fix() {
        let served = healthy().session.chain.presented[0].clone();
        let mut renewed = served.clone();
        renewed.sha256_fingerprint = "AA:BB".into();
        renewed.not_after = NOW + 400 * DAY;
        let f = rotation(audited(FilesCheck::Content(vec![on_disk(
            "ssl_cert_file",
            renewed,
        )])));
        assert_eq!(f.status, Status::Warning, "{}", f.summary);
        for part in [
            "/etc/pg/ssl_cert_file.pem",
            "SELECT pg_reload_conf()",
            &date(NOW + 400 * DAY),
            &date(served.not_after),
        ] {
            assert!(f.summary.contains(part), "{part}: {}", f.summary);
        }
        let same = rotation(audited(FilesCheck::Content(vec![on_disk(
            "ssl_cert_file",
            served,
        )])));
        assert_eq!(same.status, Status::Ok, "{}", same.summary);
    }

    #[test]
    fn files_newer_than_the_last_load_are_a_likely_pending_reload() {
        let time = |modified: f64| FileTime {
            setting: "ssl_key_file".into(),
            path: "server.key".into(),
            modified: Some(modified),
            loaded: 1000.0,
        };
        let f = rotation(audited(FilesCheck::Times(vec![time(2000.0)])));
        assert_eq!(f.status, Status::Warning);
        assert!(
            f.summary
                .starts_with("likely pending reload: ssl_key_file server.key"),
            "{}",
            f.summary
        );
        assert!(f.summary.contains("identical content"), "{}", f.summary);
        assert_eq!(
            rotation(audited(FilesCheck::Times(vec![time(500.0)]))).status,
            Status::Ok
        );
    }

    #[test]
    fn the_client_certificate_ca_is_held_to_the_windows() {
        let mut ca = healthy().session.chain.anchor.unwrap();
        ca.not_after = NOW + 10 * DAY + 60;
        let f = rotation(audited(FilesCheck::Content(vec![on_disk(
            "ssl_ca_file",
            ca,
        )])));
        assert_eq!(f.status, Status::Warning);
        assert!(f.summary.contains("expires in 10 days"), "{}", f.summary);
        assert!(
            f.summary.contains("client-certificate verification"),
            "{}",
            f.summary
        );
    }

    /// A failed SSL reload: pg_settings shows the new values, the session
    /// and the scan see the old context.
    #[test]
    fn settings_the_running_tls_does_not_follow() {
        let mut facts = audited(FilesCheck::NotRun);
        let audit = facts.session.audit.as_mut().unwrap();
        audit
            .settings
            .insert("ssl_ecdh_curve".into(), "X25519".into());
        audit
            .settings
            .insert("ssl_max_protocol_version".into(), "TLSv1.2".into());
        let f = rotation(facts);
        assert_eq!(f.status, Status::Warning);
        assert!(
            f.summary.contains("not the one in the settings"),
            "{}",
            f.summary
        );
        assert!(
            f.summary.contains("ssl_ecdh_curve = 'X25519'"),
            "{}",
            f.summary
        );
        assert!(
            f.summary
                .contains("ssl_max_protocol_version = 'TLSv1.2', but the server accepted TLSv1.3"),
            "{}",
            f.summary
        );
        let mut facts = audited(FilesCheck::NotRun);
        let audit = facts.session.audit.as_mut().unwrap();
        audit
            .settings
            .insert("ssl_ecdh_curve".into(), "prime256v1".into());
        let report = evaluate(facts, target(), thresholds());
        assert!(report.finding(Check::AuditRotation).is_none());
    }
}
