//! The session's second opinion when its own ClientHello is refused.
//!
//! rustls offers fewer suites and groups than OpenSSL: a server limited to
//! `ssl_ecdh_curve = 'secp521r1'`, or to TLS 1.2 CBC suites, refuses the
//! probe's hello (handshake_failure) and lets every libpq client in. So a
//! refused session sends one ClientHello as libpq's OpenSSL sends it (built
//! with tls-parser by scan/hello.rs) under the same deadline, and reads the
//! answer as far as it is plaintext:
//!
//! - refused too: no libpq client gets in; the session's failure stands;
//! - a ServerHello choosing what rustls lacks: a probe limit, not the
//!   server's fault. In TLS 1.2 the server's Certificate message comes in
//!   the clear and is judged by libpq's rules, so a certificate libpq
//!   refuses is still CRITICAL. A TLS 1.3 answer encrypts it: one more
//!   hello, TLS 1.2 only, fetches it when the server speaks TLS 1.2 at all;
//! - a ServerHello choosing what rustls has: the refusal had another cause,
//!   and the session's failure stands.
//!
//! The handshake is never finished: nothing is sent after the hello but
//! the alerts that abandon it. No credential is at stake.

use std::time::{SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;

use super::scan::{self, Offer};
use super::ProbeCtx;
use crate::conn::TlsRange;
use crate::facts::{
    AttemptOutcome, HandshakeFailure, HandshakeProgress, Lacking, Negotiation, OpensslHello,
    ProbeLimit, Refusal, SessionFacts, SessionFailure, TlsVersion, Undecided,
};
use crate::tls;

/// Whether the session's failure is a refusal of its ClientHello: an alert
/// saying no suite or group fits (handshake_failure, insufficient_security),
/// before any certificate. (A protocol_version alert is no such case: rustls
/// offers the versions libpq's OpenSSL does, TLS 1.2 and 1.3.)
pub(super) fn applies(facts: &SessionFacts, progress: HandshakeProgress) -> bool {
    use rustls::AlertDescription as A;
    let Some(SessionFailure::Handshake(HandshakeFailure::Tls(error))) = &facts.failure else {
        return false;
    };
    progress == HandshakeProgress::NotStarted
        && matches!(
            error,
            rustls::Error::AlertReceived(A::HandshakeFailure | A::InsufficientSecurity)
                | rustls::Error::PeerIncompatible(_)
        )
}

/// The versions libpq would offer: TLS 1.2 and 1.3 within
/// `ssl_min_protocol_version`/`ssl_max_protocol_version`; None when the
/// range holds neither.
fn offer(range: &TlsRange) -> Option<Offer> {
    let allows = |v: TlsVersion| v >= range.min && range.max.is_none_or(|max| v <= max);
    match (allows(TlsVersion::Tls12), allows(TlsVersion::Tls13)) {
        (true, true) => Some(Offer::Both),
        (true, false) => Some(Offer::Tls12),
        (false, true) => Some(Offer::Tls13),
        (false, false) => None,
    }
}

/// Asks, and records the answer and what follows from it in `facts`.
pub(super) async fn diagnose(ctx: &ProbeCtx<'_>, facts: &mut SessionFacts) {
    let Some(offer) = offer(&ctx.target().tls_range) else {
        return;
    };
    let flight = match scan::openssl_flight(ctx, offer).await {
        Ok(flight) => flight,
        Err(outcome) => {
            facts.openssl_hello = Some(match outcome {
                AttemptOutcome::Refused(refusal) => OpensslHello::Refused(refusal),
                AttemptOutcome::Undecided(why) => OpensslHello::Undecided(why),
                // Not an error openssl_flight gives: a flight is its Ok.
                _ => OpensslHello::Undecided(Undecided::OtherVersionCompleted),
            });
            return;
        }
    };
    let version = match TlsVersion::from_wire(flight.version) {
        Some(v @ (TlsVersion::Tls12 | TlsVersion::Tls13)) => v,
        _ => {
            let refusal = Refusal::OtherVersion(flight.version);
            facts.openssl_hello = Some(OpensslHello::Refused(refusal));
            return;
        }
    };
    let (classes, cbc) = scan::classify(flight.suite);
    let negotiation = Negotiation {
        version,
        suite: flight.suite,
        group: flight.group,
        classes,
        cbc,
    };
    let lacking = lacking(&negotiation);
    facts.openssl_hello = Some(OpensslHello::Chose(negotiation));
    let Some(lacking) = lacking else {
        // rustls has all of it: something else made the server refuse.
        return;
    };
    let certificates = match version {
        TlsVersion::Tls13 => match scan::openssl_flight(ctx, Offer::Tls12).await {
            Ok(tls12) if tls12.version == TlsVersion::Tls12.wire() => tls12.certificates,
            _ => Vec::new(),
        },
        _ => flight.certificates,
    };
    facts.failure = Some(SessionFailure::ProbeLimit(ProbeLimit::Negotiated {
        version,
        lacking,
    }));
    let chain: Vec<CertificateDer<'_>> = certificates.into_iter().map(Into::into).collect();
    let endpoint = ctx.endpoint;
    let target = &endpoint.target;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if let Some(judged) =
        tls::judge_offline(&chain, &endpoint.trust, target.sslmode, &target.host, now)
    {
        // libpq refuses this certificate whatever the suite or group.
        if let Some(Err(problem)) = &judged.libpq {
            facts.failure = Some(SessionFailure::Certificate(problem.clone()));
        }
        facts.chain = judged;
    }
}

/// What of the server's choice the probe's TLS stack lacks; the suite
/// first, as rustls never gets to a group without one.
fn lacking(chose: &Negotiation) -> Option<Lacking> {
    let provider = tls::provider();
    let has_suite = provider
        .cipher_suites
        .iter()
        .any(|s| u16::from(s.suite()) == chose.suite);
    if !has_suite {
        return Some(Lacking::Suite(chose.suite));
    }
    let group = chose.group?;
    let has_group = provider
        .kx_groups
        .iter()
        .any(|g| u16::from(g.name()) == group);
    (!has_group).then_some(Lacking::Group(group))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chose(version: TlsVersion, suite: u16, group: Option<u16>) -> Negotiation {
        let (classes, cbc) = scan::classify(suite);
        Negotiation {
            version,
            suite,
            group,
            classes,
            cbc,
        }
    }

    /// libpq's own version range bounds what the second opinion offers.
    #[test]
    fn the_offer_keeps_to_the_targets_version_range() {
        let range = |min, max| TlsRange { min, max };
        let (v12, v13) = (TlsVersion::Tls12, TlsVersion::Tls13);
        assert_eq!(offer(&range(v12, None)), Some(Offer::Both));
        assert_eq!(offer(&range(TlsVersion::Tls10, None)), Some(Offer::Both));
        assert_eq!(offer(&range(v12, Some(v12))), Some(Offer::Tls12));
        assert_eq!(offer(&range(v13, None)), Some(Offer::Tls13));
        assert_eq!(
            offer(&range(TlsVersion::Tls10, Some(TlsVersion::Tls11))),
            None
        );
    }

    #[test]
    fn what_rustls_lacks_is_named_suite_first() {
        let tls13 = TlsVersion::Tls13;
        let tls12 = TlsVersion::Tls12;
        assert_eq!(
            lacking(&chose(tls13, 0x1302, Some(0x0019))),
            Some(Lacking::Group(0x0019))
        );
        assert_eq!(lacking(&chose(tls13, 0x1302, Some(0x001d))), None);
        // ECDHE-ECDSA-AES256-SHA384 (CBC) over P-521: the suite is named.
        assert_eq!(
            lacking(&chose(tls12, 0xc024, Some(0x0019))),
            Some(Lacking::Suite(0xc024))
        );
        assert_eq!(lacking(&chose(tls12, 0xc02f, Some(0x0017))), None);
        // DHE key exchange: no named group, and a suite rustls lacks.
        assert_eq!(
            lacking(&chose(tls12, 0x009f, None)),
            Some(Lacking::Suite(0x009f))
        );
        let cbc = chose(tls12, 0xc024, None);
        assert!(cbc.cbc && cbc.classes.is_empty());
        let sha1 = chose(tls12, 0xc014, None);
        assert!(sha1.cbc && sha1.classes == [crate::facts::CipherClass::CbcSha1]);
    }
}
