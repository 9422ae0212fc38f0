//! A probe's report as Prometheus metrics (text exposition 0.0.4), for
//! `serve`'s `/probe`: blackbox_exporter's names where they mean the same
//! thing, so its dashboards and alert rules work unchanged, and `pgtls_`
//! names for what only this probe knows. A pure function of the report:
//! nothing is written into a registry while probing. Every metric, its type
//! and help text are listed in docs/exporter.md.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::facts::{CertFacts, PlaintextOutcome};
use crate::policy::{Check, Report, Status};

type Value = Gauge<f64, AtomicU64>;
type Labels = Vec<(String, String)>;

/// The `/probe` response body for `report`, which took `seconds`.
pub fn probe(report: &Report, seconds: f64) -> String {
    let mut m = Metrics::default();
    m.set(
        "probe_success",
        "Whether the probe succeeded: 1 when its verdict is OK or WARNING, 0 when CRITICAL or UNKNOWN",
        match report.status {
            Status::Ok | Status::Warning => 1.0,
            Status::Critical | Status::Unknown => 0.0,
        },
    );
    m.set(
        "probe_duration_seconds",
        "Returns how long the probe took to complete in seconds",
        seconds,
    );
    m.set(
        "pgtls_status",
        "The probe's verdict as a Nagios exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
        f64::from(report.status.exit_code()),
    );
    let checks = m.family(
        "pgtls_check_status",
        "Each check's verdict as a Nagios exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN",
    );
    for check in Check::ALL {
        if let Some(f) = report.finding(check) {
            checks
                .get_or_create(&label("check", check.name()))
                .set(f64::from(f.status.exit_code()));
        }
    }
    if let Some(facts) = &report.facts {
        certificates(&mut m, report, facts);
        session(&mut m, facts);
        if let Some(p) = &facts.plaintext {
            let rejected = match &p.outcome {
                PlaintextOutcome::Error { sqlstate, .. } if sqlstate == "28000" => Some(1.0),
                PlaintextOutcome::AuthRequested { .. }
                | PlaintextOutcome::AuthOk
                | PlaintextOutcome::NotPostgres(_) => Some(0.0),
                _ => None,
            };
            if let Some(v) = rejected {
                m.set(
                    "pgtls_plaintext_rejected",
                    "Whether the server refused a plaintext connection before authentication (absent when undecided)",
                    v,
                );
            }
        }
    }
    scan(&mut m, report);
    if let Some(supported) = report.direct_tls.as_ref().and_then(|d| d.supported) {
        m.set(
            "pgtls_direct_tls_supported",
            "Whether the server speaks PostgreSQL 17's direct TLS (absent when undecided)",
            f64::from(u8::from(supported)),
        );
    }
    audit(&mut m, report);
    m.encode()
}

fn certificates(m: &mut Metrics, report: &Report, facts: &crate::facts::Facts) {
    let chain = &facts.session.chain;
    if let Some(e) = &report.expiry {
        m.set(
            "probe_ssl_earliest_cert_expiry",
            "Returns last SSL chain expiry in unixtime",
            e.not_after as f64,
        );
        m.set(
            "pgtls_cert_days_left",
            "Whole days until the soonest-expiring certificate of the chain expires",
            e.days_left as f64,
        );
        if chain.libpq == Some(Ok(())) {
            m.set(
                "probe_ssl_last_chain_expiry_timestamp_seconds",
                "Returns last SSL chain expiry in timestamp",
                e.not_after as f64,
            );
        }
    }
    if let Some(leaf) = chain.presented.first() {
        m.family(
            "probe_ssl_last_chain_info",
            "Contains SSL leaf certificate information",
        )
        .get_or_create(&leaf_labels(leaf))
        .set(1.0);
    }
}

/// blackbox_exporter's labels: fingerprint and serial as lowercase hex
/// without separators, names as they read.
fn leaf_labels(leaf: &CertFacts) -> Labels {
    let bare = |hex: &str| hex.replace(':', "").to_ascii_lowercase();
    let mut sans: Vec<&str> = leaf.san_dns.iter().map(String::as_str).collect();
    sans.extend(leaf.san_ip.iter().map(String::as_str));
    vec![
        ("fingerprint_sha256".into(), bare(&leaf.sha256_fingerprint)),
        ("subject".into(), leaf.subject.clone()),
        ("issuer".into(), leaf.issuer.clone()),
        ("subjectalternative".into(), sans.join(",")),
        ("serialnumber".into(), bare(&leaf.serial)),
    ]
}

fn session(m: &mut Metrics, facts: &crate::facts::Facts) {
    let session = &facts.session;
    // The probe's own handshake: behind a pooler, pg_stat_ssl describes
    // the pooler's link to the server, not the one clients use.
    let version = session
        .negotiated
        .as_ref()
        .map(|n| n.version.name().to_string())
        .or_else(|| session.pg_stat_ssl.as_ref().and_then(|s| s.version.clone()));
    if let Some(version) = version {
        // blackbox_exporter's spelling ("TLS 1.3"), from PostgreSQL's ("TLSv1.3").
        let blackbox = match version.as_str() {
            "TLSv1" => "TLS 1.0".to_string(),
            v => v.replacen("TLSv", "TLS ", 1),
        };
        m.family(
            "probe_tls_version_info",
            "Returns the TLS version used or NaN when unknown",
        )
        .get_or_create(&label("version", &blackbox))
        .set(1.0);
    }
    if let Some(s) = session.connect_seconds {
        m.set(
            "pgtls_connect_seconds",
            "Seconds from the TCP connect to a logged-in verify-full session",
            s,
        );
    }
}

fn scan(m: &mut Metrics, report: &Report) {
    let Some(scan) = &report.scan else { return };
    let versions = m.family(
        "pgtls_protocol_accepted",
        "Whether the server accepts this protocol version (absent when undecided)",
    );
    for p in &scan.protocols {
        if let Some(a) = p.accepted {
            versions
                .get_or_create(&label("version", p.version.name()))
                .set(f64::from(u8::from(a)));
        }
    }
    if let Some(ciphers) = &scan.ciphers {
        let classes = m.family(
            "pgtls_cipher_class_accepted",
            "Whether the server accepts a suite of this weak cipher class (absent when undecided)",
        );
        for c in ciphers {
            if let Some(a) = c.accepted {
                classes
                    .get_or_create(&label("class", c.class.name()))
                    .set(f64::from(u8::from(a)));
            }
        }
    }
}

fn audit(m: &mut Metrics, report: &Report) {
    let Some(audit) = &report.audit else { return };
    if audit.hba.is_some() {
        let findings = m.family(
            "pgtls_audit_hba_findings",
            "pg_hba.conf findings of the audit, by status",
        );
        for status in [Status::Warning, Status::Critical] {
            let n = audit
                .hba_rules
                .iter()
                .filter(|r| r.status == status)
                .count();
            findings
                .get_or_create(&label("status", status.label()))
                .set(n as f64);
        }
    }
    if let Some(s) = &audit.sessions {
        let sessions = m.family(
            "pgtls_audit_sessions",
            "TCP sessions on the server by encryption (plaintext_allowed: from --allow-plaintext-from ranges)",
        );
        for (kind, n) in [
            ("tls", s.tls),
            ("gss", s.gss),
            ("plaintext", s.plaintext),
            ("plaintext_allowed", s.plaintext_allowed),
        ] {
            sessions
                .get_or_create(&label("encryption", kind))
                .set(n as f64);
        }
    }
}

fn label(name: &str, value: &str) -> Labels {
    vec![(name.to_string(), value.to_string())]
}

/// One request's registry.
#[derive(Default)]
struct Metrics {
    registry: Registry,
}

impl Metrics {
    fn set(&mut self, name: &str, help: &str, value: f64) {
        let gauge = Value::default();
        gauge.set(value);
        self.registry.register(name, help, gauge);
    }

    fn family(&mut self, name: &str, help: &str) -> Family<Labels, Value> {
        let family = Family::<Labels, Value>::default();
        self.registry.register(name, help, family.clone());
        family
    }

    fn encode(&self) -> String {
        let mut out = String::new();
        match prometheus_text::encode(&mut out, &self.registry) {
            Ok(()) => out,
            // Writing to a String does not fail; if it ever did, say so
            // in a form Prometheus still parses.
            Err(_) => "# pg-tls-probe: metrics could not be encoded\nprobe_success 0\n".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{AttemptOutcome, ProtocolAttempt, ScanFacts, ScanLevel, TlsVersion};
    use crate::fixtures::{healthy, target, thresholds};
    use crate::policy::evaluate;

    /// The blackbox names and the pgtls ones, as a dashboard reads them.
    #[test]
    fn a_healthy_probe_as_metrics() {
        let mut facts = healthy();
        facts.scan = Some(ScanFacts {
            level: ScanLevel::Protocols,
            protocols: TlsVersion::ALL
                .map(|version| ProtocolAttempt {
                    version,
                    outcome: if version.is_legacy() {
                        AttemptOutcome::Refused(crate::facts::Refusal::Alert {
                            fatal: true,
                            code: 70,
                        })
                    } else {
                        AttemptOutcome::Accepted {
                            version,
                            suite: 0x1302,
                        }
                    },
                })
                .to_vec(),
            ciphers: None,
            seconds: 0.01,
        });
        let text = probe(&evaluate(facts, target(), thresholds()), 0.25);
        for (series, want) in [
            ("probe_success", 1.0),
            ("probe_duration_seconds", 0.25),
            ("pgtls_status", 0.0),
            ("pgtls_check_status{check=\"plaintext\"}", 0.0),
            ("pgtls_plaintext_rejected", 1.0),
            ("probe_tls_version_info{version=\"TLS 1.3\"}", 1.0),
            ("probe_ssl_earliest_cert_expiry", 1831536000.0),
            ("probe_ssl_last_chain_expiry_timestamp_seconds", 1831536000.0),
            ("pgtls_cert_days_left", 365.0),
            ("pgtls_protocol_accepted{version=\"TLSv1.1\"}", 0.0),
            ("pgtls_protocol_accepted{version=\"TLSv1.3\"}", 1.0),
            ("probe_ssl_last_chain_info{fingerprint_sha256=\"aa\",subject=\"CN=localhost\",issuer=\"CN=PostgreSQL CA\",subjectalternative=\"localhost\",serialnumber=\"01\"}", 1.0),
        ] {
            assert_eq!(value(&text, series), Some(want), "{series} in\n{text}");
        }
        assert!(text.lines().any(|l| l == "# TYPE probe_success gauge"));
    }

    /// The sample of `series` (name and labels as written), parsed as
    /// Prometheus would.
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn a_failed_probe_is_success_zero_and_names_no_verified_chain() {
        let mut facts = healthy();
        facts.session.chain.libpq = Some(Err(crate::facts::CertProblem::Expired {
            subject: "CN=localhost".into(),
            not_after: 0,
        }));
        let text = probe(&evaluate(facts, target(), thresholds()), 0.1);
        assert_eq!(value(&text, "probe_success"), Some(0.0), "{text}");
        assert_eq!(value(&text, "pgtls_status"), Some(2.0), "{text}");
        assert!(!text.contains("probe_ssl_last_chain_expiry_timestamp_seconds"));
        assert!(text.contains("probe_ssl_earliest_cert_expiry"));
    }
}
