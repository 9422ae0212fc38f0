//! rustls client configuration that verifies the server the way libpq does.
//!
//! libpq (OpenSSL) accepts certificates that webpki refuses, notably the
//! X.509 v1, CN-only leaf the article's openssl recipe produces. The
//! verifier here records the chain first, then decides by libpq's rules and
//! separately asks webpki for the strict view; only the libpq verdict can
//! stop the handshake, so no credential reaches a server libpq would reject.

mod chain;
mod hostname;
mod verify;

pub(crate) use verify::{tls12_signature, tls13_signature};

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::facts::CertChainFacts;
use crate::conn::{RootCerts, SslMode, UsageError};

use chain::{Anchor, AnchorSource};

/// Trusted CA certificates, loaded once before any connection.
#[derive(Debug, Clone)]
pub struct TrustStore {
    /// What libpq's chain check may end at.
    anchors: Arc<Vec<Anchor>>,
    /// The same roots as webpki sees them, for the strict view.
    roots: Arc<rustls::RootCertStore>,
    source: AnchorSource,
}

/// Client certificate chain and private key (sslcert/sslkey).
#[derive(Debug)]
pub struct ClientIdentity {
    key: Arc<CertifiedKey>,
}

/// How far the handshake got, for naming the stage that failed or hung.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum HandshakeProgress {
    #[default]
    NotStarted,
    CertificateSeen,
    /// The server proved possession of the key (CertificateVerify / ServerKeyExchange checked).
    Verified,
}

/// Shared between the verifier and the probe that owns the connection.
#[derive(Debug, Default)]
pub struct Recorder {
    facts: Mutex<CertChainFacts>,
    progress: Mutex<HandshakeProgress>,
}

/// A poisoned lock only means another thread panicked mid-update; the data
/// is still the best record there is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Recorder {
    /// Chain facts and verdicts recorded so far.
    pub fn facts(&self) -> CertChainFacts {
        lock(&self.facts).clone()
    }
    pub fn progress(&self) -> HandshakeProgress {
        *lock(&self.progress)
    }

    /// Progress only moves forward.
    fn advance(&self, to: HandshakeProgress) {
        let mut p = lock(&self.progress);
        if to > *p {
            *p = to;
        }
    }

    fn set_facts(&self, facts: CertChainFacts) {
        *lock(&self.facts) = facts;
    }
}

/// The only crypto provider used: passed explicitly, never installed
/// process-wide, so nothing else in the process changes behaviour.
///
/// TLS 1.3 clients send a key share for their first group only. PostgreSQL
/// up to 17 accepts exactly one group, `ssl_ecdh_curve` (default
/// prime256v1), and 18 defaults to `X25519:prime256v1`; leading with P-256
/// avoids a HelloRetryRequest round trip against every default server. The
/// set of groups offered is unchanged.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .kx_groups
        .sort_by_key(|group| group.name() != rustls::NamedGroup::secp256r1);
    Arc::new(provider)
}

/// Reads sslrootcert (PEM file) or the webpki-roots set for `system`.
pub fn load_trust(roots: &RootCerts) -> Result<TrustStore, UsageError> {
    match roots {
        RootCerts::System => Ok(system_trust()),
        RootCerts::File(path) => {
            let certs = read_certificates(path, "sslrootcert")?;
            trust_from_certificates(certs).map_err(|reason| {
                UsageError(format!("sslrootcert \"{}\": {reason}", path.display()))
            })
        }
    }
}

fn system_trust() -> TrustStore {
    let anchors = webpki_roots::TLS_SERVER_ROOTS
        .iter()
        .map(|ta| Anchor {
            subject: der_sequence(ta.subject.as_ref()),
            spki: der_sequence(ta.subject_public_key_info.as_ref()),
            cert: None,
        })
        .collect();
    let roots = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
    TrustStore {
        anchors: Arc::new(anchors),
        roots: Arc::new(roots),
        source: AnchorSource::System,
    }
}

/// webpki keeps anchor names and keys without their SEQUENCE header.
fn der_sequence(contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut out = vec![0x30];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
    out
}

/// Builds the store from certificates (already read from the PEM file).
fn trust_from_certificates(certs: Vec<CertificateDer<'static>>) -> Result<TrustStore, String> {
    let mut anchors = Vec::with_capacity(certs.len());
    for (i, der) in certs.iter().enumerate() {
        let parsed = crate::certs::parse(der)
            .map_err(|e| format!("certificate {} does not parse: {e}", i + 1))?;
        anchors.push(Anchor {
            subject: parsed.subject().as_raw().to_vec(),
            spki: parsed.public_key().raw.to_vec(),
            cert: Some(der.clone()),
        });
    }
    let mut roots = rustls::RootCertStore::empty();
    // Certificates webpki cannot use simply leave the strict view without them.
    roots.add_parsable_certificates(certs);
    Ok(TrustStore {
        anchors: Arc::new(anchors),
        roots: Arc::new(roots),
        source: AnchorSource::File,
    })
}

/// The largest CA bundle or key file read; system bundles are ~200 KiB.
const MAX_PEM_FILE: u64 = 8 * 1024 * 1024;

/// Reads a regular file of bounded size. A FIFO, device or endless file
/// named by mistake would otherwise block or grow before the deadline
/// starts to count.
fn read_small_file(path: &Path, option: &str) -> Result<Vec<u8>, UsageError> {
    use std::io::Read;
    let shown = path.display();
    let fail = |why: String| UsageError(format!("cannot read {option} \"{shown}\": {why}"));
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".to_string()));
    }
    if meta.len() > MAX_PEM_FILE {
        return Err(fail(format!("larger than {MAX_PEM_FILE} bytes")));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_PEM_FILE + 1).read_to_end(&mut bytes))
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(fail(format!("larger than {MAX_PEM_FILE} bytes")));
    }
    Ok(bytes)
}

/// All certificates in a PEM file; errors name the file and the option.
fn read_certificates(
    path: &Path,
    option: &str,
) -> Result<Vec<CertificateDer<'static>>, UsageError> {
    let shown = path.display();
    let pem = read_small_file(path, option)?;
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(&pem) {
        certs.push(
            item.map_err(|e| UsageError(format!("{option} \"{shown}\" is not valid PEM: {e}")))?,
        );
    }
    if certs.is_empty() {
        return Err(UsageError(format!(
            "{option} \"{shown}\" contains no PEM certificate"
        )));
    }
    Ok(certs)
}

/// Reads a PEM certificate chain and an RSA, EC or PKCS#8 private key.
pub fn load_identity(cert: &Path, key: &Path) -> Result<ClientIdentity, UsageError> {
    let chain = read_certificates(cert, "sslcert")?;
    let key_shown = key.display();
    let key_pem = read_small_file(key, "sslkey")?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        let reason = match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                "no unencrypted PKCS#1 RSA, SEC1 EC or PKCS#8 private key found".to_string()
            }
            other => other.to_string(),
        };
        UsageError(format!("cannot read sslkey \"{key_shown}\": {reason}"))
    })?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| UsageError(format!("sslkey \"{key_shown}\" is not usable: {e}")))?;
    // rustls's own consistency check parses the certificate with webpki,
    // which refuses v1 client certificates; compare the keys here instead.
    let leaf = chain.first().ok_or_else(|| {
        UsageError(format!(
            "sslcert \"{}\" contains no PEM certificate",
            cert.display()
        ))
    })?;
    let parsed = crate::certs::parse(leaf)
        .map_err(|e| UsageError(format!("sslcert \"{}\": {e}", cert.display())))?;
    if let Some(spki) = signing_key.public_key() {
        if spki.as_ref() != parsed.public_key().raw {
            return Err(UsageError(format!(
                "sslkey \"{key_shown}\" does not match the certificate in sslcert \"{}\"",
                cert.display()
            )));
        }
    }
    Ok(ClientIdentity {
        key: Arc::new(CertifiedKey::new(chain, signing_key)),
    })
}

/// The name to hand the TLS connector for `host`. libpq reads an IPv4
/// literal the way inet_aton does ("127.1" is 127.0.0.1); rustls accepts
/// only dotted quads, so such hosts are normalised here. The verifier still
/// checks the host exactly as given, by libpq's rules.
pub fn connector_name(host: &str) -> String {
    match hostname::parse_inet_aton(host) {
        Some(ip) if host.parse::<std::net::IpAddr>().is_err() => ip.to_string(),
        _ => host.to_string(),
    }
}

/// A fresh config (no session resumption) whose verifier reports into the returned recorder.
///
/// Err only when the crypto provider cannot do TLS 1.2/1.3: an internal error.
pub fn client_config(
    trust: &TrustStore,
    identity: Option<&ClientIdentity>,
    mode: SslMode,
    host: &str,
) -> Result<(rustls::ClientConfig, Arc<Recorder>), rustls::Error> {
    let provider = provider();
    let recorder = Arc::new(Recorder::default());
    let verifier = Arc::new(verify::LibpqVerifier::new(
        trust.clone(),
        mode,
        host.to_string(),
        provider.clone(),
        recorder.clone(),
    ));
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        // Fails only if the provider lacked TLS 1.2/1.3 suites; reported as
        // an internal error rather than assumed away.
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match identity {
        Some(id) => {
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(id.key.clone())))
        }
        None => builder.with_no_client_auth(),
    };
    // A resumed session skips certificate verification, and so the record.
    config.resumption = Resumption::disabled();
    Ok((config, recorder))
}
