//! A pooler (PgBouncer, Pgpool-II) or proxy between the probe and
//! PostgreSQL, told from facts the session already has: the backend that
//! answered the queries names a client (`inet_client_addr()`/`_port()`)
//! that is not the probe's end of the connection, or a Unix socket.
//!
//! Then pg_stat_ssl's row describes the pooler's link to PostgreSQL, not
//! the probe's: the client-side TLS is judged from the probe's own
//! handshake (`tls_session`), and the pooler's link is a finding of its
//! own (`pooler`):
//!
//! - over a Unix socket, or TCP on loopback: OK, information (it never
//!   leaves the host);
//! - over TCP with TLS: OK (pg_stat_ssl's version and cipher; whether the
//!   pooler verifies PostgreSQL's certificate cannot be seen from here);
//! - over TCP to another address without TLS: WARNING. Every client's
//!   queries and results cross that network in clear, against the recipe's
//!   "TLS for every non-local connection"; but the clients' side is TLS as
//!   required, the segment may be a private one the probe cannot see, and a
//!   CRITICAL every minute for a deployment decision teaches on-call to
//!   ignore the check. The audit of PostgreSQL itself (`--audit`) shows the
//!   `host` rule and the plaintext session that carry it.
//!
//! The pooler is named from its own answers: Pgpool-II answers
//! `SHOW pool_version` itself; PgBouncer refuses plaintext with its own
//! words (08P01 "SSL required").

use std::net::IpAddr;

use super::{finding, Check, Finding, Status, Thresholds};
use crate::facts::{Facts, PlaintextOutcome};

/// The pooler's link to PostgreSQL, as pg_stat_ssl and the backend saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    UnixSocket,
    Tcp {
        /// The pooler's address, as PostgreSQL sees it.
        from: IpAddr,
        /// pg_stat_ssl: the protocol version, None without TLS.
        tls: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct PoolerReport {
    /// "PgBouncer", "Pgpool-II 4.3.5 (tamahomeboshi)", or None when it did
    /// not say.
    pub name: Option<String>,
    pub link: Link,
    pub finding: Finding,
    /// The probe's own handshake, for `tls_session`.
    negotiated: Option<crate::facts::Negotiated>,
}

impl PoolerReport {
    /// How the finding names it.
    fn who(&self) -> String {
        who(self.name.as_deref())
    }

    /// `tls_session` from the probe's own handshake with the pooler.
    pub fn tls_session(&self, thresholds: &Thresholds) -> Option<Finding> {
        let n = self.negotiated.as_ref()?;
        let described = format!(
            "{} {} (the probe's own handshake with {}; pg_stat_ssl describes {}'s link to PostgreSQL)",
            n.version.name(),
            n.cipher,
            self.who(),
            self.who()
        );
        Some(if n.version >= thresholds.min_tls {
            finding(Check::TlsSession, Status::Ok, described)
        } else {
            finding(
                Check::TlsSession,
                Status::Critical,
                format!(
                    "{described}: below the minimum {}",
                    thresholds.min_tls.name()
                ),
            )
        })
    }
}

fn who(name: Option<&str>) -> String {
    name.map_or_else(|| "the pooler or proxy".to_string(), str::to_string)
}

/// The pooler, when the session's backend is not talking to the probe.
pub fn judge(facts: &Facts) -> Option<PoolerReport> {
    let session = &facts.session;
    if session.link_is_ours() {
        return None;
    }
    let stat = session.pg_stat_ssl.as_ref()?;
    let backend = session.backend_client?;
    let name = session
        .pool_version
        .as_ref()
        .map(|v| format!("Pgpool-II {}", v.trim()))
        .or_else(|| {
            facts.plaintext.as_ref().and_then(|p| match &p.outcome {
                PlaintextOutcome::Error {
                    sqlstate, message, ..
                } => refuses_plaintext(sqlstate, message).map(str::to_string),
                _ => None,
            })
        });
    let link = match backend.addr {
        None => Link::UnixSocket,
        Some(from) => Link::Tcp {
            from,
            tls: stat
                .ssl
                .then(|| stat.version.clone().unwrap_or_else(|| "TLS".into())),
        },
    };
    let whom = who(name.as_deref());
    let (status, summary) = match &link {
        Link::UnixSocket => (
            Status::Ok,
            format!("{whom} is in front; it reaches PostgreSQL over a Unix socket (no network, TLS not needed)"),
        ),
        Link::Tcp { from, tls: Some(version) } => (
            Status::Ok,
            format!(
                "{whom} is in front; it reaches PostgreSQL over TCP from {from} with {version}{} (whether it verifies PostgreSQL's certificate is not visible from here)",
                stat.cipher.as_deref().map(|c| format!(" {c}")).unwrap_or_default()
            ),
        ),
        Link::Tcp { from, tls: None } if from.is_loopback() => (
            Status::Ok,
            format!("{whom} is in front; it reaches PostgreSQL over TCP on loopback ({from}) without TLS: the link never leaves the host"),
        ),
        Link::Tcp { from, tls: None } => (
            Status::Warning,
            format!("{whom} is in front; it reaches PostgreSQL over TCP from {from} without TLS: every client's queries and results cross that network in clear (the recipe wants TLS on every non-local connection)"),
        ),
    };
    Some(PoolerReport {
        name,
        link,
        finding: finding(Check::Pooler, status, summary),
        negotiated: session.negotiated.clone(),
    })
}

/// A pooler's refusal of a plaintext StartupMessage, by its own words
/// (they are not PostgreSQL's 28000): PgBouncer with `client_tls_sslmode`
/// `require` or stronger answers 08P01 "SSL required"; Pgpool-II whose
/// pool_hba.conf rejects answers XX000 "client authentication failed"
/// (before any authentication request, so nothing else can have failed).
/// Returns who refused.
pub fn refuses_plaintext(sqlstate: &str, message: &str) -> Option<&'static str> {
    match (sqlstate, message) {
        ("08P01", "SSL required") => Some("PgBouncer"),
        ("XX000", "client authentication failed") => Some("Pgpool-II"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{BackendClient, Negotiated, TlsVersion};
    use crate::fixtures::{healthy, target, thresholds};
    use crate::policy::evaluate;

    fn behind(addr: Option<&str>, ssl: bool) -> Facts {
        let mut facts = healthy();
        let s = &mut facts.session;
        s.local_addr = Some("127.0.0.1:50000".parse().unwrap());
        s.backend_client = Some(BackendClient {
            addr: addr.map(|a| a.parse().unwrap()),
            port: addr.map(|_| 40000),
        });
        s.negotiated = Some(Negotiated {
            version: TlsVersion::Tls13,
            suite: 0x1302,
            cipher: "TLS_AES_256_GCM_SHA384".into(),
            group: None,
        });
        let stat = s.pg_stat_ssl.as_mut().unwrap();
        stat.ssl = ssl;
        if !ssl {
            stat.version = None;
            stat.cipher = None;
        }
        facts
    }

    #[test]
    fn a_pooler_link_is_judged_apart_from_the_clients_tls() {
        for (addr, ssl, want, phrase) in [
            (None, false, Status::Ok, "Unix socket"),
            (Some("127.0.0.1"), false, Status::Ok, "loopback"),
            (Some("10.0.0.7"), false, Status::Warning, "in clear"),
            (Some("10.0.0.7"), true, Status::Ok, "with TLSv1.3"),
        ] {
            let report = evaluate(behind(addr, ssl), target(), thresholds());
            let f = report.finding(Check::Pooler).unwrap();
            assert_eq!(f.status, want, "{addr:?} {ssl}: {}", f.summary);
            assert!(f.summary.contains(phrase), "{}", f.summary);
            // pg_stat_ssl's ssl=false is the pooler's link, not ours.
            let tls = report.finding(Check::TlsSession).unwrap();
            assert_eq!(tls.status, Status::Ok, "{}", tls.summary);
            assert!(
                tls.summary.contains("the probe's own handshake"),
                "{}",
                tls.summary
            );
            assert_eq!(report.status, want);
        }
    }

    #[test]
    fn the_probes_own_link_is_not_a_pooler() {
        let mut facts = behind(Some("127.0.0.1"), true);
        facts.session.backend_client.as_mut().unwrap().port = Some(50000);
        let report = evaluate(facts, target(), thresholds());
        assert!(report.finding(Check::Pooler).is_none());
        // IPv4-mapped is the same address.
        let mut facts = behind(Some("::ffff:127.0.0.1"), true);
        facts.session.backend_client.as_mut().unwrap().port = Some(50000);
        assert!(evaluate(facts, target(), thresholds()).pooler.is_none());
    }

    #[test]
    fn poolers_are_named_by_their_own_answers() {
        let mut facts = behind(None, false);
        facts.session.pool_version = Some("4.3.5 (tamahomeboshi)".into());
        let report = evaluate(facts, target(), thresholds());
        assert!(report
            .finding(Check::Pooler)
            .unwrap()
            .summary
            .starts_with("Pgpool-II 4.3.5"));
        let mut facts = behind(None, false);
        facts.plaintext.as_mut().unwrap().outcome = PlaintextOutcome::Error {
            sqlstate: "08P01".into(),
            severity: "FATAL".into(),
            message: "SSL required".into(),
        };
        let report = evaluate(facts, target(), thresholds());
        assert!(report
            .finding(Check::Pooler)
            .unwrap()
            .summary
            .starts_with("PgBouncer"));
        let plain = report.finding(Check::Plaintext).unwrap();
        assert_eq!(plain.status, Status::Ok, "{}", plain.summary);
        assert!(plain
            .summary
            .contains("rejected before authentication by PgBouncer"));
    }
}
