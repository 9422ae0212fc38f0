//! TLS 1.2 and TLS 1.3 support, found out with real rustls handshakes
//! restricted to one version each.
//!
//! A real handshake (rather than a ServerHello read) shows the server can
//! finish it: key exchange, signature and Finished all check out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme, SupportedProtocolVersion};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{answer, drain, goodbye, undecided};
use crate::facts::{AttemptOutcome, HangUp, InternalError, Refusal, TlsVersion, Undecided};
use crate::probe::ProbeCtx;
use crate::tls;

/// Accepts any certificate, checking only that the server holds its key.
///
/// Safe here, and only here, because nothing is sent after the handshake:
/// no StartupMessage, no user name, no credential; the connection is closed
/// with close_notify at once. The certificate is judged by the verify-full
/// session, never by this. It notes that a certificate came: a server
/// that got that far answered the version, whatever ends the handshake.
#[derive(Debug)]
struct DangerousAnyCertificate {
    provider: Arc<CryptoProvider>,
    seen: AtomicBool,
}

impl ServerCertVerifier for DangerousAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.seen.store(true, Ordering::Relaxed);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // From the SPKI, as the session does: the article's v1 leaves too.
        tls::tls12_signature(&self.provider, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        tls::tls13_signature(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// One handshake offering only `wanted`, on a socket past the SSLRequest.
pub async fn handshake(
    ctx: &ProbeCtx<'_>,
    stream: TcpStream,
    host: &str,
    alpn: Option<&[u8]>,
    wanted: TlsVersion,
) -> AttemptOutcome {
    let version: &'static SupportedProtocolVersion = match wanted {
        TlsVersion::Tls13 => &rustls::version::TLS13,
        TlsVersion::Tls12 => &rustls::version::TLS12,
        older => return undecided(Undecided::CannotOffer(older)),
    };
    let provider = tls::provider();
    let verifier = Arc::new(DangerousAnyCertificate {
        provider: provider.clone(),
        seen: AtomicBool::new(false),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(verifier.clone())
                .with_no_client_auth()
        });
    let mut config = match config {
        Ok(c) => c,
        Err(e) => return undecided(Undecided::Internal(InternalError::TlsConfig(e))),
    };
    config.resumption = Resumption::disabled();
    config.alpn_protocols = alpn.into_iter().map(<[u8]>::to_vec).collect();
    // An IP address gives an IpAddress name, for which rustls sends no SNI.
    let Ok(name) = ServerName::try_from(host.to_string()) else {
        return undecided(Undecided::Internal(InternalError::ServerName(host.into())));
    };
    let connect = TlsConnector::from(Arc::new(config)).connect(name, stream);
    match answer(ctx, connect).await {
        Err(timeout) => timeout,
        Ok(Ok(mut tls)) => {
            let (_, conn) = tls.get_ref();
            let suite = conn.negotiated_cipher_suite().map(|s| u16::from(s.suite()));
            let negotiated = conn.protocol_version().map(u16::from);
            // close_notify, then read until the server closes: unread data
            // (a TLS 1.3 session ticket) would make our close a reset.
            goodbye(ctx, async {
                let _ = tls.shutdown().await;
                drain(&mut tls).await;
            })
            .await;
            match suite {
                Some(suite) if negotiated == Some(wanted.wire()) => AttemptOutcome::Accepted {
                    version: wanted,
                    suite,
                },
                _ => undecided(Undecided::OtherVersionCompleted),
            }
        }
        Ok(Err(e)) => refusal(&e, verifier.seen.load(Ordering::Relaxed)),
    }
}

/// An alert, or a close before the server's certificate, is a refusal;
/// other failures leave it open.
fn refusal(e: &std::io::Error, certificate_seen: bool) -> AttemptOutcome {
    use std::io::ErrorKind;
    if let Some(tls_error) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return match tls_error {
            rustls::Error::AlertReceived(alert) => AttemptOutcome::Refused(Refusal::Alert {
                fatal: true,
                code: u8::from(*alert),
            }),
            // E.g. the server answered with a version we did not offer.
            rustls::Error::PeerIncompatible(why) => {
                AttemptOutcome::Refused(Refusal::Incompatible(why.clone()))
            }
            other => undecided(Undecided::Tls(other.clone())),
        };
    }
    match e.kind() {
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset if !certificate_seen => {
            AttemptOutcome::Refused(Refusal::HungUp(HangUp::DuringHandshake))
        }
        _ => undecided(Undecided::Handshake(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rustls::pki_types::PrivateKeyDer;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;

    /// A TLS 1.2 server that sends its first flight (ServerHello,
    /// Certificate, ServerKeyExchange, ServerHelloDone), then hangs up.
    async fn answers_then_hangs_up() -> std::net::SocketAddr {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let key = PrivateKeyDer::try_from(signing_key.serialize_der()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut server = rustls::ServerConnection::new(Arc::new(config)).unwrap();
            let mut buf = vec![0u8; 4096];
            while !server.wants_write() {
                let n = tcp.read(&mut buf).await.unwrap();
                assert!(n > 0, "client closed before its ClientHello");
                server.read_tls(&mut &buf[..n]).unwrap();
                server.process_new_packets().unwrap();
            }
            let mut flight = Vec::new();
            server.write_tls(&mut flight).unwrap();
            tcp.write_all(&flight).await.unwrap();
            // Dropped here: closed in the middle of the handshake.
        });
        addr
    }

    /// A server that answered with its handshake did not refuse the
    /// version, whatever ended the handshake afterwards.
    #[tokio::test]
    async fn a_hang_up_after_the_server_answered_is_not_a_refusal() {
        let addr = answers_then_hangs_up().await;
        let stream = TcpStream::connect(addr).await.unwrap();
        let endpoint = crate::fixtures::endpoint();
        let ctx = crate::fixtures::ctx(&endpoint, Duration::from_secs(5));
        let outcome = handshake(&ctx, stream, "localhost", None, TlsVersion::Tls12).await;
        assert!(
            matches!(outcome, AttemptOutcome::Undecided(Undecided::Handshake(_))),
            "{outcome:?}"
        );
    }
}
