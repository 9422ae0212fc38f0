//! rustls client configuration that verifies the server the way libpq does.
//!
//! libpq (OpenSSL) accepts certificates that webpki refuses, notably the
//! X.509 v1, CN-only leaf the article's openssl recipe produces. The
//! verifier here records the chain first, then decides by libpq's rules and
//! separately asks webpki for the strict view; only the libpq verdict can
//! stop the handshake, so no credential reaches a server libpq would reject.

use std::path::Path;
use std::sync::Arc;

use crate::facts::CertChainFacts;
use crate::target::{RootCerts, SslMode, UsageError};

/// Trusted CA certificates, loaded once before any connection.
#[derive(Debug, Clone)]
pub struct TrustStore {}

/// Client certificate chain and private key (sslcert/sslkey).
#[derive(Debug)]
pub struct ClientIdentity {}

/// How far the handshake got, for naming the stage that failed or hung.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HandshakeProgress {
    NotStarted,
    CertificateSeen,
    /// The server proved possession of the key (CertificateVerify / ServerKeyExchange checked).
    Verified,
}

/// Shared between the verifier and the probe that owns the connection.
#[derive(Debug, Default)]
pub struct Recorder {}

impl Recorder {
    /// Chain facts and verdicts recorded so far.
    pub fn facts(&self) -> CertChainFacts {
        todo!()
    }
    pub fn progress(&self) -> HandshakeProgress {
        todo!()
    }
}

/// Reads sslrootcert (PEM file) or the webpki-roots set for `system`.
pub fn load_trust(roots: &RootCerts) -> Result<TrustStore, UsageError> {
    let _ = roots;
    todo!()
}

/// Reads a PEM certificate chain and an RSA, EC or PKCS#8 private key.
pub fn load_identity(cert: &Path, key: &Path) -> Result<ClientIdentity, UsageError> {
    let _ = (cert, key);
    todo!()
}

/// A fresh config (no session resumption) whose verifier reports into the returned recorder.
pub fn client_config(
    trust: &TrustStore,
    identity: Option<&ClientIdentity>,
    mode: SslMode,
    host: &str,
) -> (rustls::ClientConfig, Arc<Recorder>) {
    let _ = (trust, identity, mode, host);
    todo!()
}
