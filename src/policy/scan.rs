//! Findings from the protocol and cipher scan: `protocols` and `ciphers`.
//!
//! Each attempt's typed outcome becomes accepted, refused or undecided
//! here: a hang-up refuses a version after an SSLRequest, but under direct
//! TLS a server before PostgreSQL 17 hangs up on any ClientHello, so there
//! it decides nothing. A version or class the server positively accepted
//! costs the status the user chose (`--legacy-tls`, `--weak-ciphers`;
//! WARNING by default). One that matters but could not be decided
//! (timeout, not PostgreSQL) is UNKNOWN: "not seen" is not "refused".

use super::{finding, Check, Finding, Status, Thresholds};
use crate::conn::{SslNegotiation, Target};
use crate::facts::{
    suite_name, AttemptOutcome, CipherClass, Refusal, ScanFacts, ScanLevel, TlsVersion,
};

/// What accepted legacy versions and weak ciphers cost; None ignores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPolicy {
    pub legacy: Option<Status>,
    pub weak: Option<Status>,
}

impl Default for ScanPolicy {
    fn default() -> Self {
        ScanPolicy {
            legacy: Some(Status::Warning),
            weak: Some(Status::Warning),
        }
    }
}

/// One version's answer: accepted (true), refused (false) or undecided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionReport {
    pub version: TlsVersion,
    pub accepted: Option<bool>,
    pub detail: String,
}

/// One weak class's answer, with the suite the server chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CipherReport {
    pub class: CipherClass,
    pub accepted: Option<bool>,
    pub chosen: Option<String>,
    /// Dated, not broken: reported, never alarming.
    pub informational: bool,
    pub detail: String,
}

/// The judged scan.
#[derive(Debug, Clone)]
pub struct ScanReport {
    pub level: ScanLevel,
    pub protocols: Vec<VersionReport>,
    pub ciphers: Option<Vec<CipherReport>>,
    pub seconds: f64,
    pub findings: Vec<Finding>,
}

/// Still sound today, only dated: CBC with HMAC-SHA1.
pub fn is_informational(class: CipherClass) -> bool {
    class == CipherClass::CbcSha1
}

/// What an outcome says about the version or class offered.
fn settle(outcome: &AttemptOutcome, target: &Target) -> (Option<bool>, String) {
    let hung_up = |r: &Refusal| match r {
        Refusal::HungUp(_) => true,
        Refusal::Range { refusal, .. } => matches!(**refusal, Refusal::HungUp(_)),
        _ => false,
    };
    match outcome {
        AttemptOutcome::Accepted { .. }
        | AttemptOutcome::Negotiated { .. }
        | AttemptOutcome::AcceptedByOpenssl(_) => (Some(true), outcome.to_string()),
        AttemptOutcome::Refused(hang_up)
            if hung_up(hang_up) && target.sslnegotiation == SslNegotiation::Direct =>
        {
            (
                None,
                format!(
                    "{hang_up}; under direct TLS that is also how a server without it \
                     (PostgreSQL 16 or older) answers"
                ),
            )
        }
        AttemptOutcome::Refused(r) => (Some(false), r.to_string()),
        AttemptOutcome::Undecided(u) => (None, u.to_string()),
    }
}

pub fn judge(scan: &ScanFacts, target: &Target, thresholds: &Thresholds) -> ScanReport {
    let protocols: Vec<VersionReport> = scan
        .protocols
        .iter()
        .map(|p| {
            let (accepted, detail) = settle(&p.outcome, target);
            VersionReport {
                version: p.version,
                accepted,
                detail,
            }
        })
        .collect();
    let ciphers: Option<Vec<CipherReport>> = scan.ciphers.as_ref().map(|attempts| {
        attempts
            .iter()
            .map(|c| {
                let (accepted, mut detail) = settle(&c.outcome, target);
                let chosen = match c.outcome {
                    AttemptOutcome::Accepted { version, suite } => {
                        let name = suite_name(suite);
                        detail = format!("ServerHello {} chose {name}", version.name());
                        Some(name)
                    }
                    _ => None,
                };
                CipherReport {
                    class: c.class,
                    accepted,
                    chosen,
                    informational: is_informational(c.class),
                    detail,
                }
            })
            .collect()
    });
    let mut findings = vec![protocols_finding(&protocols, thresholds)];
    findings.extend(
        ciphers
            .as_ref()
            .map(|c| ciphers_finding(c, thresholds.scan.weak)),
    );
    ScanReport {
        level: scan.level,
        protocols,
        ciphers,
        seconds: scan.seconds,
        findings,
    }
}

/// SSLv3 to TLSv1.1 always; TLSv1.2 too when --min-tls-version is TLSv1.3.
fn unwanted(v: TlsVersion, min: TlsVersion) -> bool {
    v.is_legacy() || v < min
}

fn names<'a>(attempts: impl Iterator<Item = &'a VersionReport>) -> String {
    attempts
        .map(|p| p.version.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn protocols_finding(attempts: &[VersionReport], t: &Thresholds) -> Finding {
    let min = t.min_tls;
    let accepted = || attempts.iter().filter(|p| p.accepted == Some(true));
    let accepted_list = match names(accepted()) {
        list if list.is_empty() => "none".to_string(),
        list => list,
    };
    let flagged: Vec<&VersionReport> = accepted().filter(|p| unwanted(p.version, min)).collect();
    if !flagged.is_empty() {
        let what = format!(
            "server accepts {} (legacy or below {}); accepted: {accepted_list}",
            names(flagged.iter().copied()),
            min.name()
        );
        return match t.scan.legacy {
            Some(status) => finding(Check::Protocols, status, what),
            None => finding(
                Check::Protocols,
                Status::Ok,
                format!("{what} (ignored: --legacy-tls ignore)"),
            ),
        };
    }
    if let Some(first) = attempts.iter().find(|p| p.accepted.is_none()) {
        if attempts.iter().all(|p| p.accepted.is_none()) {
            return finding(
                Check::Protocols,
                Status::Unknown,
                format!("could not scan protocol versions: {}", first.detail),
            );
        }
    }
    let open: Vec<&VersionReport> = attempts
        .iter()
        .filter(|p| p.accepted.is_none() && unwanted(p.version, min))
        .collect();
    if let (Some(first), Some(_)) = (open.first(), t.scan.legacy) {
        return finding(
            Check::Protocols,
            Status::Unknown,
            format!(
                "could not tell whether {} is accepted: {}; accepted: {accepted_list}",
                names(open.iter().copied()),
                first.detail
            ),
        );
    }
    let mut summary = format!("accepted: {accepted_list}; refused: {}", {
        let refused = names(attempts.iter().filter(|p| p.accepted == Some(false)));
        if refused.is_empty() {
            "none".to_string()
        } else {
            refused
        }
    });
    let undecided = names(attempts.iter().filter(|p| p.accepted.is_none()));
    if !undecided.is_empty() {
        summary.push_str(&format!("; undecided: {undecided}"));
    }
    finding(Check::Protocols, Status::Ok, summary)
}

fn class_list<'a>(attempts: impl Iterator<Item = &'a CipherReport>) -> String {
    attempts
        .map(|c| match &c.chosen {
            Some(suite) => format!("{} ({suite})", c.class.name()),
            None => c.class.name().to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn ciphers_finding(attempts: &[CipherReport], weak: Option<Status>) -> Finding {
    let weak_ones = || attempts.iter().filter(|c| !c.informational);
    let info = class_list(
        attempts
            .iter()
            .filter(|c| c.informational && c.accepted == Some(true)),
    );
    let info_note = if info.is_empty() {
        String::new()
    } else {
        format!("; informational: accepts {info}")
    };
    let accepted = class_list(weak_ones().filter(|c| c.accepted == Some(true)));
    if !accepted.is_empty() {
        let what = format!("server accepts weak cipher suites: {accepted}{info_note}");
        return match weak {
            Some(status) => finding(Check::Ciphers, status, what),
            None => finding(
                Check::Ciphers,
                Status::Ok,
                format!("{what} (ignored: --weak-ciphers ignore)"),
            ),
        };
    }
    let open: Vec<&CipherReport> = weak_ones().filter(|c| c.accepted.is_none()).collect();
    if let (Some(first), Some(_)) = (open.first(), weak) {
        return finding(
            Check::Ciphers,
            Status::Unknown,
            format!(
                "could not tell whether {} suites are accepted: {}",
                class_list(open.iter().copied()),
                first.detail
            ),
        );
    }
    // Only with --weak-ciphers ignore: undecided is then no finding, but named.
    let undecided = match class_list(open.iter().copied()) {
        list if list.is_empty() => list,
        list => format!("; undecided: {list}"),
    };
    finding(
        Check::Ciphers,
        Status::Ok,
        format!("no weak cipher class accepted{undecided}{info_note}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{CipherAttempt, HangUp, ProtocolAttempt, Undecided};
    use crate::fixtures::{target, thresholds};

    fn outcome(version: TlsVersion, accepted: Option<bool>) -> AttemptOutcome {
        match accepted {
            Some(true) => AttemptOutcome::Accepted {
                version,
                suite: 0xc02f,
            },
            Some(false) => AttemptOutcome::Refused(Refusal::Alert {
                fatal: true,
                code: 70,
            }),
            None => AttemptOutcome::Undecided(Undecided::Timeout { after_ms: 2000 }),
        }
    }

    fn scan(accepted: [Option<bool>; 5]) -> ScanFacts {
        ScanFacts {
            level: ScanLevel::Protocols,
            protocols: TlsVersion::ALL
                .iter()
                .zip(accepted)
                .map(|(v, a)| ProtocolAttempt {
                    version: *v,
                    outcome: outcome(*v, a),
                })
                .collect(),
            ciphers: None,
            seconds: 0.01,
        }
    }

    fn findings(scan: &ScanFacts, t: &Thresholds) -> Vec<Finding> {
        judge(scan, &target(), t).findings
    }

    const MODERN: [Option<bool>; 5] = [
        Some(false),
        Some(false),
        Some(false),
        Some(true),
        Some(true),
    ];
    const LEGACY: [Option<bool>; 5] = [Some(false), Some(true), Some(true), Some(true), Some(true)];

    #[test]
    fn modern_only_is_ok_and_lists_versions() {
        let f = findings(&scan(MODERN), &thresholds());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].status, Status::Ok);
        assert_eq!(
            f[0].summary,
            "accepted: TLSv1.2, TLSv1.3; refused: SSLv3, TLSv1, TLSv1.1"
        );
    }

    #[test]
    fn legacy_versions_cost_the_chosen_status() {
        let mut t = thresholds();
        let f = &findings(&scan(LEGACY), &t)[0];
        assert_eq!(f.status, Status::Warning);
        assert!(
            f.summary
                .starts_with("server accepts TLSv1, TLSv1.1 (legacy or below TLSv1.2)"),
            "{}",
            f.summary
        );
        t.scan.legacy = Some(Status::Critical);
        assert_eq!(findings(&scan(LEGACY), &t)[0].status, Status::Critical);
        t.scan.legacy = None;
        let f = &findings(&scan(LEGACY), &t)[0];
        assert_eq!(f.status, Status::Ok);
        assert!(f.summary.contains("ignored"), "{}", f.summary);
    }

    #[test]
    fn tls12_is_unwanted_below_a_tls13_minimum() {
        let mut t = thresholds();
        t.min_tls = TlsVersion::Tls13;
        let f = &findings(&scan(MODERN), &t)[0];
        assert_eq!(f.status, Status::Warning);
        assert!(
            f.summary
                .starts_with("server accepts TLSv1.2 (legacy or below TLSv1.3)"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn undecided_is_unknown_only_where_it_matters() {
        let f = &findings(&scan([None; 5]), &thresholds())[0];
        assert_eq!(f.status, Status::Unknown);
        assert!(
            f.summary.starts_with("could not scan protocol versions"),
            "{}",
            f.summary
        );
        let f = &findings(
            &scan([Some(false), None, Some(false), Some(true), Some(true)]),
            &thresholds(),
        )[0];
        assert_eq!(f.status, Status::Unknown);
        assert!(
            f.summary
                .starts_with("could not tell whether TLSv1 is accepted"),
            "{}",
            f.summary
        );
        let f = &findings(
            &scan([Some(false), Some(false), Some(false), Some(true), None]),
            &thresholds(),
        )[0];
        assert_eq!(f.status, Status::Ok);
        assert!(f.summary.ends_with("; undecided: TLSv1.3"), "{}", f.summary);
    }

    /// After an SSLRequest a hang-up refuses the version; under direct TLS
    /// it is what a server without direct TLS does to any hello.
    #[test]
    fn a_hang_up_refuses_only_after_an_sslrequest() {
        let mut target = target();
        let hung_up = AttemptOutcome::Refused(Refusal::HungUp(HangUp::Closed));
        assert_eq!(settle(&hung_up, &target).0, Some(false));
        target.sslnegotiation = SslNegotiation::Direct;
        let (accepted, detail) = settle(&hung_up, &target);
        assert_eq!(accepted, None);
        assert!(detail.contains("PostgreSQL 16 or older"), "{detail}");
        let alert = outcome(TlsVersion::Tls10, Some(false));
        assert_eq!(
            settle(&alert, &target),
            (Some(false), "fatal alert 70 protocol_version".to_string())
        );
    }

    fn cipher(class: CipherClass, accepted: Option<bool>, suite: u16) -> CipherAttempt {
        let outcome = match accepted {
            Some(true) => AttemptOutcome::Accepted {
                version: TlsVersion::Tls12,
                suite,
            },
            other => outcome(TlsVersion::Tls12, other),
        };
        CipherAttempt { class, outcome }
    }

    #[test]
    fn weak_ciphers_name_the_chosen_suite_and_cbc_is_informational() {
        let mut facts = scan(MODERN);
        facts.ciphers = Some(vec![
            cipher(CipherClass::Null, Some(false), 0),
            cipher(CipherClass::Des, Some(true), 0x000a),
            cipher(CipherClass::CbcSha1, Some(true), 0xc014),
        ]);
        let mut t = thresholds();
        let report = judge(&facts, &target(), &t);
        let des = &report.ciphers.as_ref().unwrap()[1];
        assert_eq!(des.chosen.as_deref(), Some("TLS_RSA_WITH_3DES_EDE_CBC_SHA"));
        assert_eq!(
            des.detail,
            "ServerHello TLSv1.2 chose TLS_RSA_WITH_3DES_EDE_CBC_SHA"
        );
        let f = &report.findings[1];
        assert_eq!(f.status, Status::Warning);
        assert_eq!(
            f.summary,
            "server accepts weak cipher suites: DES/3DES (TLS_RSA_WITH_3DES_EDE_CBC_SHA); \
             informational: accepts CBC-SHA1 (TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA)"
        );
        t.scan.weak = None;
        assert_eq!(findings(&facts, &t)[1].status, Status::Ok);
        facts.ciphers.as_mut().unwrap()[1] = cipher(CipherClass::Des, Some(false), 0);
        t.scan.weak = Some(Status::Critical);
        let f = &findings(&facts, &t)[1];
        assert_eq!(f.status, Status::Ok);
        assert!(
            f.summary
                .starts_with("no weak cipher class accepted; informational"),
            "{}",
            f.summary
        );
        facts.ciphers.as_mut().unwrap()[0] = cipher(CipherClass::Null, None, 0);
        assert_eq!(findings(&facts, &t)[1].status, Status::Unknown);
    }

    /// With `--weak-ciphers ignore` an undecided class is no finding, but the
    /// summary must not claim what was not seen.
    #[test]
    fn ignored_undecided_classes_are_not_called_refused() {
        let mut facts = scan(MODERN);
        facts.ciphers = Some(vec![
            cipher(CipherClass::Null, None, 0),
            cipher(CipherClass::Rc4, Some(false), 0),
        ]);
        let mut t = thresholds();
        t.scan.weak = None;
        let f = &findings(&facts, &t)[1];
        assert_eq!(f.status, Status::Ok);
        assert_eq!(f.summary, "no weak cipher class accepted; undecided: NULL");
    }
}
