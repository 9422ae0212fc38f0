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

use super::hello::describe_alert;
use super::{classes::suite_name, drain, Bound, Verdict};
use crate::facts::ScanVersion;
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

/// One handshake offering only `version`, on a socket past the SSLRequest.
pub async fn handshake(
    stream: TcpStream,
    host: &str,
    alpn: Option<&[u8]>,
    wanted: ScanVersion,
    bound: Bound,
) -> Verdict {
    let version: &'static SupportedProtocolVersion = match wanted {
        ScanVersion::Tls13 => &rustls::version::TLS13,
        ScanVersion::Tls12 => &rustls::version::TLS12,
        older => return Verdict::Undecided(format!("rustls cannot offer {}", older.name())),
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
        Err(e) => return Verdict::Undecided(format!("cannot configure TLS: {e}")),
    };
    config.resumption = Resumption::disabled();
    config.alpn_protocols = alpn.into_iter().map(<[u8]>::to_vec).collect();
    // An IP address gives an IpAddress name, for which rustls sends no SNI.
    let name = match ServerName::try_from(host.to_string()) {
        Ok(n) => n,
        Err(e) => return Verdict::Undecided(format!("host \"{host}\" is not a TLS name: {e}")),
    };
    let connect = TlsConnector::from(Arc::new(config)).connect(name, stream);
    match bound.answer(connect).await {
        Err(timeout) => timeout,
        Ok(Ok(mut tls)) => {
            let (_, conn) = tls.get_ref();
            let suite = conn.negotiated_cipher_suite().map_or_else(
                || "unknown suite".into(),
                |s| suite_name(u16::from(s.suite())),
            );
            let negotiated = conn.protocol_version().map(u16::from);
            // close_notify, then read until the server closes: unread data
            // (a TLS 1.3 session ticket) would make our close a reset.
            bound
                .goodbye(async {
                    let _ = tls.shutdown().await;
                    drain(&mut tls).await;
                })
                .await;
            if negotiated == Some(u16::from(version.version)) {
                Verdict::Accepted(format!("ServerHello {}, {suite}", wanted.name()))
            } else {
                Verdict::Undecided("handshake completed with another version".into())
            }
        }
        Ok(Err(e)) => refusal(&e, verifier.seen.load(Ordering::Relaxed)),
    }
}

/// An alert, or a close before the server's certificate, is a refusal;
/// other failures leave it open.
fn refusal(e: &std::io::Error, certificate_seen: bool) -> Verdict {
    use std::io::ErrorKind;
    if let Some(tls_error) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return match tls_error {
            rustls::Error::AlertReceived(alert) => {
                Verdict::Refused(describe_alert(true, u8::from(*alert)))
            }
            // E.g. the server answered with a version we did not offer.
            rustls::Error::PeerIncompatible(why) => {
                Verdict::Refused(format!("server incompatible: {why:?}"))
            }
            other => Verdict::Undecided(format!("TLS error: {other}")),
        };
    }
    match e.kind() {
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset if !certificate_seen => {
            Verdict::HungUp("connection closed during the handshake".into())
        }
        _ => Verdict::Undecided(format!("TLS handshake failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

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
        let bound = Bound {
            began: Instant::now(),
            deadline: Instant::now() + Duration::from_secs(5),
        };
        let verdict = handshake(stream, "localhost", None, ScanVersion::Tls12, bound).await;
        assert!(matches!(verdict, Verdict::Undecided(_)), "{verdict:?}");
    }
}
