//! The `direct_tls` finding: information, never a problem. A server
//! without PostgreSQL 17's direct TLS is fine for every client using the
//! default negotiation; when the probe itself was told to negotiate
//! directly, a refusal is already the `connection` finding.
//!
//! Whether a handshake's outcome says "supported", "not supported" or
//! nothing at all is decided here, from its typed failure.

use super::{finding, Check, Finding, Status};
use crate::facts::{DirectTlsFacts, HandshakeFailure, HandshakeProgress};

/// The answer: `supported` is None when the outcome says nothing either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectTlsReport {
    pub supported: Option<bool>,
    pub detail: String,
}

pub fn judge(facts: &DirectTlsFacts) -> DirectTlsReport {
    let (supported, detail) = match facts {
        DirectTlsFacts::Negotiated => (
            Some(true),
            "TLS at once, ALPN \"postgresql\" negotiated".to_string(),
        ),
        DirectTlsFacts::Failed {
            failure,
            progress,
            certificate_rejected,
        } => failed(failure, *progress, *certificate_rejected),
        DirectTlsFacts::Unreachable(f) => (None, format!("undecided: {f}")),
        DirectTlsFacts::Timeout { after_ms } => (
            None,
            format!(
                "undecided: no answer to a direct TLS ClientHello within {:.1} s",
                *after_ms as f64 / 1000.0
            ),
        ),
        DirectTlsFacts::NoAnswerInGrace { grace_ms } => (
            None,
            format!(
                "undecided: no answer to a direct TLS ClientHello within {grace_ms} ms of the other checks finishing"
            ),
        ),
        DirectTlsFacts::TooOld { major } => (
            Some(false),
            format!(
                "the server is PostgreSQL {major} (server_version): direct TLS needs 17 or later; not asked"
            ),
        ),
        DirectTlsFacts::NotAttempted => (
            None,
            "undecided: no direct TLS handshake took place or finished".to_string(),
        ),
        DirectTlsFacts::Internal(e) => (None, format!("undecided: {e}")),
    };
    DirectTlsReport { supported, detail }
}

fn failed(
    failure: &HandshakeFailure,
    progress: HandshakeProgress,
    certificate_rejected: bool,
) -> (Option<bool>, String) {
    if certificate_rejected {
        return (
            None,
            "undecided: the server's certificate fails libpq's rules, so the handshake stopped there"
                .to_string(),
        );
    }
    match failure {
        HandshakeFailure::ClosedBeforeReply(_) => (
            Some(false),
            "server closed the connection in reply to a direct TLS ClientHello \
             (PostgreSQL 16 or older, or TLS off)"
                .to_string(),
        ),
        HandshakeFailure::NoAlpn => (
            Some(false),
            "server completed a direct TLS handshake without ALPN \"postgresql\" \
             (not PostgreSQL 17+; libpq refuses it)"
                .to_string(),
        ),
        // Bytes that are not a TLS record in reply to a ClientHello: an old
        // server answering with its own protocol, or not PostgreSQL at all.
        HandshakeFailure::Tls(
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. },
        ) if progress == HandshakeProgress::NotStarted => (
            Some(false),
            format!(
                "server answered a direct TLS ClientHello with something that is not TLS: {failure}"
            ),
        ),
        // TLS spoken directly, but not PostgreSQL's protocol.
        HandshakeFailure::Tls(rustls::Error::AlertReceived(
            rustls::AlertDescription::NoApplicationProtocol,
        )) => (
            Some(false),
            "server answers TLS directly but refused ALPN \"postgresql\" (not PostgreSQL 17+)"
                .to_string(),
        ),
        other => (
            None,
            format!("undecided: direct TLS handshake failed: {other}"),
        ),
    }
}

pub(super) fn finding_of(report: &DirectTlsReport) -> Finding {
    let what = match report.supported {
        Some(true) => "direct TLS supported",
        Some(false) => "direct TLS not supported",
        None => "direct TLS support",
    };
    finding(
        Check::DirectTls,
        Status::Ok,
        format!("{what}: {}", report.detail),
    )
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::cli::Format;
    use crate::facts::IoFailure;
    use crate::fixtures::{healthy, target, thresholds};
    use crate::policy::evaluate;
    use crate::render::render;

    fn supported(failure: HandshakeFailure) -> Option<bool> {
        judge(&DirectTlsFacts::Failed {
            failure,
            progress: HandshakeProgress::NotStarted,
            certificate_rejected: false,
        })
        .supported
    }

    fn io(kind: io::ErrorKind) -> IoFailure {
        IoFailure {
            kind,
            message: format!("{kind:?}"),
        }
    }

    #[test]
    fn each_outcome_decides_or_not() {
        assert_eq!(judge(&DirectTlsFacts::Negotiated).supported, Some(true));
        let eof = io(io::ErrorKind::UnexpectedEof);
        assert_eq!(
            supported(HandshakeFailure::ClosedBeforeReply(eof)),
            Some(false)
        );
        assert_eq!(supported(HandshakeFailure::NoAlpn), Some(false));
        // Not TLS at all in reply to the ClientHello.
        let garbage = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        assert_eq!(supported(HandshakeFailure::Tls(garbage)), Some(false));
        let other_protocol =
            rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol);
        assert_eq!(
            supported(HandshakeFailure::Tls(other_protocol)),
            Some(false)
        );
        // TLS, but refused for a reason that says nothing about support.
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        assert_eq!(supported(HandshakeFailure::Tls(alert)), None);
        let reset = HandshakeFailure::Io(io(io::ErrorKind::ConnectionRefused));
        let report = judge(&DirectTlsFacts::Failed {
            failure: reset,
            progress: HandshakeProgress::NotStarted,
            certificate_rejected: false,
        });
        assert_eq!(report.supported, None);
        assert!(
            report.detail.starts_with("undecided: "),
            "{}",
            report.detail
        );
        let rejected = judge(&DirectTlsFacts::Failed {
            failure: HandshakeFailure::NoAlpn,
            progress: HandshakeProgress::CertificateSeen,
            certificate_rejected: true,
        });
        assert_eq!(rejected.supported, None);
    }

    fn with(facts: DirectTlsFacts) -> crate::policy::Report {
        let mut run = healthy();
        run.direct_tls = Some(facts);
        evaluate(run, target(), thresholds())
    }

    /// Information only: whatever the answer, the run stays OK, and every
    /// format says it on the finding's line.
    #[test]
    fn direct_tls_is_an_ok_finding_in_every_format() {
        for (facts, supported, line) in [
            (
                DirectTlsFacts::Negotiated,
                Some(true),
                "OK direct_tls: direct TLS supported: TLS at once, ALPN \"postgresql\" negotiated\n",
            ),
            (
                DirectTlsFacts::Failed {
                    failure: HandshakeFailure::NoAlpn,
                    progress: HandshakeProgress::Verified,
                    certificate_rejected: false,
                },
                Some(false),
                "OK direct_tls: direct TLS not supported: server completed a direct TLS handshake without ALPN \"postgresql\" (not PostgreSQL 17+; libpq refuses it)\n",
            ),
            (
                DirectTlsFacts::NotAttempted,
                None,
                "OK direct_tls: direct TLS support: undecided: no direct TLS handshake took place or finished\n",
            ),
        ] {
            let report = with(facts);
            assert_eq!(report.status, Status::Ok);
            let nagios = render(&report, Format::Nagios);
            assert!(nagios.ends_with(line), "{nagios}");
            let text = render(&report, Format::Text);
            assert!(text.contains("direct_tls"), "{text}");
            let doc: serde_json::Value =
                serde_json::from_str(&render(&report, Format::Json)).unwrap();
            assert_eq!(doc["direct_tls"]["supported"], serde_json::json!(supported));
        }
        let doc: serde_json::Value = serde_json::from_str(&render(
            &evaluate(healthy(), target(), thresholds()),
            Format::Json,
        ))
        .unwrap();
        assert!(doc["direct_tls"].is_null());
        assert_eq!(doc["target"]["sslnegotiation"], "postgres");
    }
}
