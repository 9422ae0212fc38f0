//! SCRAM channel binding as libpq meets it.
//!
//! A server on PostgreSQL 11 or later offers `SCRAM-SHA-256-PLUS` over TLS,
//! binding the login to a hash of its certificate (`tls-server-end-point`,
//! RFC 5929): the hash of the certificate's signature. A certificate
//! signed with Ed25519 or Ed448 has no such hash, and libpq
//! (`pgtls_get_peer_certificate_hash`, fe-secure-openssl.c, unchanged from
//! 11 to 18) then fails the login with "could not find digest for NID
//! UNDEF" whenever it chose `-PLUS`: always in libpq 11 and 12, which have
//! no `channel_binding` setting, and with the default `prefer` (or
//! `require`) from 13 on. Only `channel_binding=disable` (13+) gets in, and
//! libpq 10 and older, which never bind. The probe binds only where a hash
//! exists, so it logs in where libpq cannot: that is reported here.

use super::{finding, Check, Finding, Status};
use crate::conn::{ChannelBinding, Target};
use crate::facts::{EndPointHash, SessionFacts, SessionFailure};

/// The SASL mechanism that binds the login to the certificate.
const PLUS: &str = "SCRAM-SHA-256-PLUS";

/// The algorithm that signed the server's certificate when it has no hash
/// for channel binding and the server offers `-PLUS`: the case libpq fails.
fn unbindable(session: &SessionFacts) -> Option<&str> {
    let leaf = session.chain.presented.first()?;
    let offered = session
        .wire
        .auth_requests
        .iter()
        .any(|r| r.mechanisms.iter().any(|m| m == PLUS));
    (leaf.end_point_hash == EndPointHash::NoDigest && offered)
        .then_some(leaf.signature_algorithm.as_str())
}

/// The `authentication` finding, its words corrected where the probe's
/// SCRAM without binding is the only SCRAM that works.
pub fn authentication(session: &SessionFacts, mut found: Finding) -> Finding {
    if let Some(algorithm) = unbindable(session) {
        found.summary = format!(
            "SCRAM-SHA-256 without channel binding: the certificate's {algorithm} signature has \
             no hash for it, so libpq clients cannot log in (see connection)"
        );
    }
    found
}

/// The `connection` finding when the server offers channel binding that
/// libpq cannot compute for its certificate; None otherwise. Applies to a
/// login that succeeded without binding, or failed for want of it
/// (`channel_binding=require`).
pub fn connection(session: &SessionFacts, target: &Target) -> Option<Finding> {
    match &session.failure {
        None | Some(SessionFailure::Login { .. }) => {}
        Some(_) => return None,
    }
    let algorithm = unbindable(session)?;
    let probe = match (&session.failure, target.channel_binding) {
        (None, ChannelBinding::Disable) => "channel_binding=disable got the probe in",
        (None, _) => "the probe logged in without binding, as libpq cannot bind",
        (Some(_), ChannelBinding::Require) => "the probe's channel_binding=require failed too",
        (Some(_), _) => "the probe's login failed",
    };
    Some(finding(
        Check::Connection,
        Status::Critical,
        format!(
            "libpq clients cannot log in: the certificate is signed with {algorithm}, which has no hash \
             for SCRAM channel binding, and the server offers {PLUS}: libpq 11+ fails with \
             \"could not find digest for NID UNDEF\" under channel_binding=prefer (the \
             default) or require; only libpq 13+ with channel_binding=disable gets in ({probe}). \
             Sign the certificate with RSA or ECDSA",
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::AuthRequestSeen;
    use crate::fixtures::{healthy, target};

    fn offering(mechanisms: &[&str], hash: EndPointHash) -> SessionFacts {
        let mut session = healthy().session;
        session.chain.presented[0].end_point_hash = hash;
        session.chain.presented[0].signature_algorithm = "Ed25519".into();
        session.wire.auth_requests = vec![AuthRequestSeen {
            code: 10,
            mechanisms: mechanisms.iter().map(|m| m.to_string()).collect(),
        }];
        session
    }

    #[test]
    fn an_ed25519_signed_certificate_with_plus_offered_is_critical() {
        let both = ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"];
        let f = connection(&offering(&both, EndPointHash::NoDigest), &target()).unwrap();
        assert_eq!(f.status, Status::Critical);
        assert!(f.summary.contains("signed with Ed25519"), "{}", f.summary);
        assert!(f.summary.contains("could not find digest for NID UNDEF"));
        assert!(f.summary.contains("logged in without binding"));

        let auth = finding(Check::Authentication, Status::Ok, "SCRAM-SHA-256".into());
        let auth = authentication(&offering(&both, EndPointHash::NoDigest), auth);
        assert!(
            auth.summary.contains("Ed25519 signature has no hash"),
            "{}",
            auth.summary
        );
        assert_eq!(auth.status, Status::Ok);

        // No -PLUS offered (PostgreSQL 10, or no TLS binding): nothing to fail.
        assert!(connection(
            &offering(&["SCRAM-SHA-256"], EndPointHash::NoDigest),
            &target()
        )
        .is_none());
        // A certificate with a hash: libpq binds fine.
        assert!(connection(&offering(&both, EndPointHash::Sha256), &target()).is_none());

        // channel_binding=require: the probe's login failed the same way.
        let mut failed = offering(&both, EndPointHash::NoDigest);
        failed.failure = Some(SessionFailure::Login {
            sqlstate: None,
            detail: "server did not use channel binding".into(),
        });
        let mut require = target();
        require.channel_binding = ChannelBinding::Require;
        let f = connection(&failed, &require).unwrap();
        assert!(f.summary.contains("require failed too"), "{}", f.summary);
    }
}
