//! What the session's second opinion means (probe/openssl_hello.rs): the
//! ClientHello as libpq's OpenSSL sends it, made when the probe's own was
//! refused. What it negotiated is the server's setting as libpq clients
//! meet it, judged on its own in `tls_session`; what it could not
//! negotiate completes the `connection` finding.

use super::{finding, Check, Finding, Status, Thresholds};
use crate::facts::{
    group_name, CipherClass, OpensslHello, ProbeLimit, SessionFacts, SessionFailure,
};

/// `tls_session` when the probe could not speak what libpq clients
/// negotiate (its failure is that limit): the version by
/// `--min-tls-version`, the suite as `--scan full` rates its class, the
/// group by the article (which names none, so any group OpenSSL negotiates
/// is fine).
pub fn tls_session(session: &SessionFacts, thresholds: &Thresholds) -> Option<Finding> {
    let Some(SessionFailure::ProbeLimit(ProbeLimit::Negotiated { .. })) = session.failure else {
        return None;
    };
    let Some(OpensslHello::Chose(chose)) = &session.openssl_hello else {
        return None;
    };
    let described = format!("{chose} (what libpq clients negotiate; not the probe's session)");
    if chose.version < thresholds.min_tls {
        return Some(finding(
            Check::TlsSession,
            Status::Critical,
            format!(
                "{described}: below the minimum {}",
                thresholds.min_tls.name()
            ),
        ));
    }
    let weak: Vec<&str> = chose
        .classes
        .iter()
        .filter(|c| **c != CipherClass::CbcSha1)
        .map(|c| c.name())
        .collect();
    let (status, why) = if !weak.is_empty() {
        let what = format!("a weak cipher suite ({})", weak.join(", "));
        match thresholds.scan.weak {
            Some(status) => (status, what),
            None => (
                Status::Ok,
                format!("{what} (ignored: --weak-ciphers ignore)"),
            ),
        }
    } else if chose.cbc {
        (
            Status::Ok,
            "a CBC suite: dated (MAC-then-encrypt, gone from TLS 1.3), not broken; \
             informational, as the CBC-SHA1 class of --scan full"
                .to_string(),
        )
    } else {
        let group = chose.group.map_or_else(String::new, |g| {
            format!(
                " over {}, a group the article allows (it names none)",
                group_name(g)
            )
        });
        (Status::Ok, format!("an AEAD suite{group}"))
    };
    Some(finding(
        Check::TlsSession,
        status,
        format!("{described}: {why}"),
    ))
}

/// What the `connection` finding adds to a refused handshake.
pub fn after_refusal(hello: &OpensslHello) -> String {
    match hello {
        OpensslHello::Refused(refusal) => format!(
            "; a ClientHello as libpq's OpenSSL sends it was refused too ({refusal}): no libpq \
             client gets in"
        ),
        OpensslHello::Undecided(why) => format!(
            "; whether a ClientHello as libpq's OpenSSL sends it fares better is unknown: {why}"
        ),
        OpensslHello::Chose(chose) => format!(
            "; a ClientHello as libpq's OpenSSL sends it got {chose}, which the probe's TLS \
             stack has too, so the refusal has another cause"
        ),
    }
}

/// The `connection` finding's words when the chain was not seen: the
/// server chose TLS 1.3 (which encrypts it) and refused TLS 1.2.
pub fn unseen_certificate(limit: &ProbeLimit) -> String {
    format!(
        "not checked: {limit}. Its certificate was not seen (TLS 1.3 encrypts it, and the \
         server refused TLS 1.2 or sent none), so whether libpq accepts it is unknown; no \
         password sent"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Negotiation, Refusal, TlsVersion};
    use crate::fixtures::thresholds;

    /// A session refused for want of what the server chose.
    fn chose(
        version: TlsVersion,
        suite: u16,
        group: Option<u16>,
        classes: &[CipherClass],
        cbc: bool,
    ) -> SessionFacts {
        SessionFacts {
            failure: Some(SessionFailure::ProbeLimit(ProbeLimit::Negotiated {
                version,
                lacking: crate::facts::Lacking::Suite(suite),
            })),
            openssl_hello: Some(OpensslHello::Chose(Negotiation {
                version,
                suite,
                group,
                classes: classes.to_vec(),
                cbc,
            })),
            ..SessionFacts::default()
        }
    }

    #[test]
    fn the_servers_setting_is_judged_on_its_own() {
        let t = thresholds();
        let p521 = chose(TlsVersion::Tls13, 0x1302, Some(0x0019), &[], false);
        let f = tls_session(&p521, &t).unwrap();
        assert_eq!(f.status, Status::Ok);
        assert!(
            f.summary
                .contains("over secp521r1, a group the article allows"),
            "{}",
            f.summary
        );

        let cbc = chose(TlsVersion::Tls12, 0xc024, Some(0x0017), &[], true);
        let f = tls_session(&cbc, &t).unwrap();
        assert_eq!(f.status, Status::Ok);
        assert!(f.summary.contains("a CBC suite"), "{}", f.summary);
        assert!(f
            .summary
            .contains("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"));

        let des = chose(TlsVersion::Tls12, 0xc012, None, &[CipherClass::Des], true);
        assert_eq!(tls_session(&des, &t).unwrap().status, Status::Warning);

        let mut strict = t.clone();
        strict.min_tls = TlsVersion::Tls13;
        assert_eq!(tls_session(&cbc, &strict).unwrap().status, Status::Critical);

        let refused = OpensslHello::Refused(Refusal::Alert {
            fatal: true,
            code: 40,
        });
        let mut session = cbc.clone();
        session.openssl_hello = Some(refused.clone());
        assert!(tls_session(&session, &t).is_none());
        assert!(after_refusal(&refused).contains("no libpq client gets in"));
        // A certificate libpq refuses: no session to describe.
        let mut session = cbc.clone();
        session.failure = Some(SessionFailure::Certificate(
            crate::facts::CertProblem::NameMismatch {
                host: "h".into(),
                presented: vec![],
            },
        ));
        assert!(tls_session(&session, &t).is_none());
    }
}
