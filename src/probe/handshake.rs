//! The TLS handshake on a PostgreSQL connection, done by the probe itself
//! and then handed to tokio-postgres as an established session.
//!
//! Doing it here (rather than inside tokio-postgres-rustls) is what lets the
//! probe see the negotiated ALPN protocol, which libpq 17 checks and
//! tokio-postgres does not expose. Used by the verify-full session in both
//! negotiation modes and by the direct-TLS capability check.
//!
//! ALPN follows libpq 17 on both paths: `postgresql` is offered after an
//! SSLRequest too (servers up to 16 ignore the extension), a server that
//! selects any other protocol is refused (rustls itself refuses a protocol
//! that was not offered), and with direct negotiation a server that selects
//! none is refused as well, because PostgreSQL 17 always selects it and
//! anything else answering a bare ClientHello on the port is not PostgreSQL.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use rustls::client::ResolvesClientCert;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_postgres::tls::{ChannelBinding, TlsConnect};
use tokio_rustls::client::TlsStream;

use super::wire::{self, Tap};
use crate::conn::SslNegotiation;
use crate::facts::{ClientCertExchange, HandshakeFailure, IoFailure};
use crate::tls::{self, Recorder};

/// The IANA ALPN identifier PostgreSQL 17 registered for its protocol.
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// The error and its causes, without repeating a cause already in the text.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = cause.source();
    }
    text
}

/// Runs the TLS handshake over `stream` with `config` (ALPN `postgresql`
/// added), naming the server `host` for SNI and the certificate check.
pub async fn connect(
    mut config: rustls::ClientConfig,
    host: &str,
    stream: TcpStream,
    negotiation: SslNegotiation,
    recorder: &Recorder,
) -> Result<TlsStream<TcpStream>, HandshakeFailure> {
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    let name = rustls_pki_types::ServerName::try_from(tls::connector_name(host)).map_err(|e| {
        HandshakeFailure::Io(IoFailure {
            kind: io::ErrorKind::InvalidInput,
            message: e.to_string(),
        })
    })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let mut session = connector
        .connect(name, stream)
        .await
        .map_err(|e| HandshakeFailure::from_io(&e, recorder.progress()))?;
    let alpn = session.get_ref().1.alpn_protocol();
    if negotiation == SslNegotiation::Direct && alpn != Some(ALPN_POSTGRESQL) {
        // Refused, but end it as TLS should: close_notify, not a bare FIN.
        let _ = session.shutdown().await;
        return Err(HandshakeFailure::NoAlpn);
    }
    Ok(session)
}

/// Watches the client-certificate step of the handshake: whether the
/// server asked (a CertificateRequest) and whether a certificate went back.
/// With `send` false nothing is sent whatever is configured
/// (`sslcertmode=disable`).
#[derive(Debug)]
struct CertRequestWatch {
    inner: Arc<dyn ResolvesClientCert>,
    send: bool,
    seen: Arc<Mutex<ClientCertExchange>>,
}

impl ResolvesClientCert for CertRequestWatch {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let chosen = if self.send {
            self.inner.resolve(root_hint_subjects, sigschemes)
        } else {
            None
        };
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.requested = true;
        // rustls sends the certificate only with a usable signature scheme.
        seen.sent = chosen
            .as_ref()
            .is_some_and(|c| c.key.choose_scheme(sigschemes).is_some());
        chosen
    }

    fn has_certs(&self) -> bool {
        self.send && self.inner.has_certs()
    }
}

/// Installs the watch on `config`; read the returned cell after the
/// handshake.
pub fn watch_client_cert(
    config: &mut rustls::ClientConfig,
    send: bool,
) -> Arc<Mutex<ClientCertExchange>> {
    let seen = Arc::new(Mutex::new(ClientCertExchange::default()));
    config.client_auth_cert_resolver = Arc::new(CertRequestWatch {
        inner: config.client_auth_cert_resolver.clone(),
        send,
        seen: seen.clone(),
    });
    seen
}

/// A TLS session the probe established, as tokio-postgres's stream type,
/// with the wire tap (wire.rs) on both directions.
pub struct Established {
    tls: TlsStream<TcpStream>,
    tap: Tap,
}

impl Established {
    pub fn new(
        tls: TlsStream<TcpStream>,
        recorder: wire::Recorder,
        require_auth: Option<crate::conn::RequireAuth>,
        plus: bool,
    ) -> Established {
        Established {
            tls,
            tap: Tap::new(recorder, require_auth, plus),
        }
    }
}

impl tokio_postgres::tls::TlsStream for Established {
    /// `tls-server-end-point` (RFC 5929): a hash of the server's certificate
    /// with the hash of its signature algorithm (RSA-PSS's from its
    /// parameters), SHA-1 and MD5 raised to SHA-256, as the server computes
    /// it. No binding for Ed25519 and Ed448, which have no separate hash:
    /// SCRAM then runs without `-PLUS` (libpq fails there instead, which
    /// policy reports), and `channel_binding=require` fails.
    fn channel_binding(&self) -> ChannelBinding {
        let Some(leaf) = self
            .tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
        else {
            return ChannelBinding::none();
        };
        let Ok(cert) = crate::certs::parse(leaf) else {
            return ChannelBinding::none();
        };
        let Some(digest) = crate::certs::end_point_digest(crate::certs::end_point_hash(&cert))
        else {
            return ChannelBinding::none();
        };
        ChannelBinding::tls_server_end_point(ring::digest::digest(digest, leaf).as_ref().to_vec())
    }
}

impl AsyncRead for Established {
    /// Reads, then lets the tap see (and bound) what arrived.
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.tls).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => Poll::Ready(
                this.tap
                    .read(&buf.filled()[before..])
                    .map_err(|stop| io::Error::new(io::ErrorKind::InvalidData, stop)),
            ),
            other => other,
        }
    }
}

impl AsyncWrite for Established {
    /// Writes, then lets the tap see what went out.
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.tls).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            this.tap.write(&buf[..n]);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tls).poll_flush(cx)
    }

    /// Sends close_notify, so the server logs no "unexpected EOF".
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tls).poll_shutdown(cx)
    }
}

/// The "connector" tokio-postgres is given: the handshake already happened.
pub struct AlreadyEstablished;

impl TlsConnect<Established> for AlreadyEstablished {
    type Stream = Established;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Established, Self::Error>>;

    fn connect(self, stream: Established) -> Self::Future {
        std::future::ready(Ok(stream))
    }
}
