//! TLS 1.2 and TLS 1.3 support, found out with real rustls handshakes
//! restricted to one version each.
//!
//! A real handshake (rather than a ServerHello read) shows the server can
//! finish it: key exchange, signature and Finished all check out.

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
/// session, never by this.
#[derive(Debug)]
struct DangerousAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for DangerousAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
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
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[version])
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(Arc::new(DangerousAnyCertificate(provider)))
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
        Ok(Err(e)) => refusal(&e),
    }
}

/// An alert or a closed connection is a refusal; other failures leave it open.
fn refusal(e: &std::io::Error) -> Verdict {
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
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset => {
            Verdict::HungUp("connection closed during the handshake".into())
        }
        _ => Verdict::Undecided(format!("TLS handshake failed: {e}")),
    }
}
