//! Findings from the protocol and cipher scan: `protocols` and `ciphers`.
//!
//! A version or class the server positively accepted costs the status the
//! user chose (`--legacy-tls`, `--weak-ciphers`; WARNING by default). One
//! that matters but could not be decided (timeout, not PostgreSQL) is
//! UNKNOWN: "not seen" is not "refused".

use super::{finding, Finding, Status, Thresholds, TlsVersion};
use crate::facts::{CipherAttempt, ProtocolAttempt, ScanFacts, ScanVersion};

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

pub fn findings(scan: &ScanFacts, thresholds: &Thresholds) -> Vec<Finding> {
    let mut out = vec![protocols(&scan.protocols, thresholds)];
    out.extend(
        scan.ciphers
            .as_ref()
            .map(|c| ciphers(c, thresholds.scan.weak)),
    );
    out
}

/// SSLv3 to TLSv1.1 always; TLSv1.2 too when --min-tls-version is TLSv1.3.
fn unwanted(v: ScanVersion, min: TlsVersion) -> bool {
    let as_tls = match v {
        ScanVersion::Ssl3 => return true,
        ScanVersion::Tls10 => TlsVersion::Tls10,
        ScanVersion::Tls11 => TlsVersion::Tls11,
        ScanVersion::Tls12 => TlsVersion::Tls12,
        ScanVersion::Tls13 => TlsVersion::Tls13,
    };
    v.is_legacy() || as_tls < min
}

fn names<'a>(attempts: impl Iterator<Item = &'a ProtocolAttempt>) -> String {
    attempts
        .map(|p| p.version.name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn protocols(attempts: &[ProtocolAttempt], t: &Thresholds) -> Finding {
    let min = t.min_tls;
    let accepted = || attempts.iter().filter(|p| p.accepted == Some(true));
    let accepted_list = match names(accepted()) {
        list if list.is_empty() => "none".to_string(),
        list => list,
    };
    let flagged: Vec<&ProtocolAttempt> = accepted().filter(|p| unwanted(p.version, min)).collect();
    if !flagged.is_empty() {
        let what = format!(
            "server accepts {} (legacy or below {}); accepted: {accepted_list}",
            names(flagged.iter().copied()),
            min.name()
        );
        return match t.scan.legacy {
            Some(status) => finding("protocols", status, what),
            None => finding(
                "protocols",
                Status::Ok,
                format!("{what} (ignored: --legacy-tls ignore)"),
            ),
        };
    }
    if let Some(first) = attempts.iter().find(|p| p.accepted.is_none()) {
        if attempts.iter().all(|p| p.accepted.is_none()) {
            return finding(
                "protocols",
                Status::Unknown,
                format!("could not scan protocol versions: {}", first.detail),
            );
        }
    }
    let open: Vec<&ProtocolAttempt> = attempts
        .iter()
        .filter(|p| p.accepted.is_none() && unwanted(p.version, min))
        .collect();
    if let (Some(first), Some(_)) = (open.first(), t.scan.legacy) {
        return finding(
            "protocols",
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
    finding("protocols", Status::Ok, summary)
}

fn class_list<'a>(attempts: impl Iterator<Item = &'a CipherAttempt>) -> String {
    attempts
        .map(|c| match &c.chosen {
            Some(suite) => format!("{} ({suite})", c.class.name()),
            None => c.class.name().to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn ciphers(attempts: &[CipherAttempt], weak: Option<Status>) -> Finding {
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
            Some(status) => finding("ciphers", status, what),
            None => finding(
                "ciphers",
                Status::Ok,
                format!("{what} (ignored: --weak-ciphers ignore)"),
            ),
        };
    }
    let open: Vec<&CipherAttempt> = weak_ones().filter(|c| c.accepted.is_none()).collect();
    if let (Some(first), Some(_)) = (open.first(), weak) {
        return finding(
            "ciphers",
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
        "ciphers",
        Status::Ok,
        format!("no weak cipher class accepted{undecided}{info_note}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{CipherClass, ScanLevel};
    use crate::policy::tests::thresholds;

    fn scan(accepted: [Option<bool>; 5]) -> ScanFacts {
        ScanFacts {
            level: ScanLevel::Protocols,
            protocols: ScanVersion::ALL
                .iter()
                .zip(accepted)
                .map(|(v, a)| ProtocolAttempt {
                    version: *v,
                    accepted: a,
                    detail: "fatal alert 70 protocol_version".into(),
                })
                .collect(),
            ciphers: None,
            seconds: 0.01,
        }
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

    fn cipher(class: CipherClass, accepted: Option<bool>, chosen: Option<&str>) -> CipherAttempt {
        CipherAttempt {
            class,
            accepted,
            chosen: chosen.map(str::to_string),
            informational: class.is_informational(),
            detail: "fatal alert 40 handshake_failure".into(),
        }
    }

    #[test]
    fn weak_ciphers_name_the_chosen_suite_and_cbc_is_informational() {
        let mut facts = scan(MODERN);
        facts.ciphers = Some(vec![
            cipher(CipherClass::Null, Some(false), None),
            cipher(
                CipherClass::Des,
                Some(true),
                Some("TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
            ),
            cipher(
                CipherClass::CbcSha1,
                Some(true),
                Some("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
            ),
        ]);
        let mut t = thresholds();
        let f = &findings(&facts, &t)[1];
        assert_eq!(f.status, Status::Warning);
        assert_eq!(
            f.summary,
            "server accepts weak cipher suites: DES/3DES (TLS_RSA_WITH_3DES_EDE_CBC_SHA); \
             informational: accepts CBC-SHA1 (TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA)"
        );
        t.scan.weak = None;
        assert_eq!(findings(&facts, &t)[1].status, Status::Ok);
        facts.ciphers.as_mut().unwrap()[1].accepted = Some(false);
        t.scan.weak = Some(Status::Critical);
        let f = &findings(&facts, &t)[1];
        assert_eq!(f.status, Status::Ok);
        assert!(
            f.summary
                .starts_with("no weak cipher class accepted; informational"),
            "{}",
            f.summary
        );
        facts.ciphers.as_mut().unwrap()[0].accepted = None;
        assert_eq!(findings(&facts, &t)[1].status, Status::Unknown);
    }

    /// With `--weak-ciphers ignore` an undecided class is no finding, but the
    /// summary must not claim what was not seen.
    #[test]
    fn ignored_undecided_classes_are_not_called_refused() {
        let mut facts = scan(MODERN);
        facts.ciphers = Some(vec![
            cipher(CipherClass::Null, None, None),
            cipher(CipherClass::Rc4, Some(false), None),
        ]);
        let mut t = thresholds();
        t.scan.weak = None;
        let f = &findings(&facts, &t)[1];
        assert_eq!(f.status, Status::Ok);
        assert_eq!(f.summary, "no weak cipher class accepted; undecided: NULL");
    }
}
