//! rustls client configuration that verifies the server the way libpq does.
//!
//! libpq (OpenSSL) accepts certificates that webpki refuses, notably the
//! X.509 v1, CN-only leaf the article's openssl recipe produces. The
//! verifier here records the chain first, then decides by libpq's rules and
//! separately asks webpki for the strict view; only the libpq verdict can
//! stop the handshake, so no credential reaches a server libpq would reject.

mod chain;
mod crl;
mod hostname;
mod verify;

#[cfg(test)]
pub(crate) use verify::judge_chain;
pub(crate) use verify::{judge_offline, tls12_signature, tls13_signature};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::conn::{self, CrlFiles, RootCerts, SslMode, SystemPaths, UsageError};
use crate::facts::{
    CertChainFacts, HandshakeProgress, ProbeLimit, SystemStore, TlsVersion, TrustSource,
};

use chain::Anchor;

/// Trusted CA certificates, loaded once before any connection.
#[derive(Debug, Clone)]
pub struct TrustStore {
    /// What libpq's chain check may end at.
    anchors: Arc<Vec<Anchor>>,
    /// The same roots as webpki sees them, for the strict view.
    roots: Arc<rustls::RootCertStore>,
    source: TrustSource,
    /// CRLs from sslcrl/sslcrldir: Some turns revocation checking on, for
    /// every certificate of the chain, as libpq turns it on in OpenSSL.
    crls: Option<Arc<Vec<crl::Crl>>>,
    /// With `sslrootcert=system`, what was loaded, for the report.
    system: Option<SystemStore>,
}

impl TrustStore {
    /// Adds the CRLs `source` names, as libpq loads them beside a
    /// sslrootcert file; what could not be loaded is said in `notes`.
    pub fn with_crls(mut self, source: &CrlFiles, notes: &mut Vec<String>) -> TrustStore {
        self.crls = crl::load(source, notes).map(Arc::new);
        self
    }
}

/// Client certificate chain and private key (sslcert/sslkey).
#[derive(Debug)]
pub struct ClientIdentity {
    key: Arc<CertifiedKey>,
}

/// Shared between the verifier and the probe that owns the connection.
#[derive(Debug, Default)]
pub struct Recorder {
    facts: Mutex<CertChainFacts>,
    progress: Mutex<HandshakeProgress>,
    /// Set when the probe's own crypto stopped the handshake.
    limit: Mutex<Option<ProbeLimit>>,
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

    /// What the probe's own crypto could not do, if that ended the handshake.
    pub fn limit(&self) -> Option<ProbeLimit> {
        lock(&self.limit).clone()
    }

    fn set_limit(&self, limit: ProbeLimit) {
        *lock(&self.limit) = Some(limit);
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

/// Reads sslrootcert (PEM file) or, for `system`, the OS store.
pub fn load_trust(roots: &RootCerts) -> Result<TrustStore, UsageError> {
    match roots {
        RootCerts::System(paths) => Ok(system_trust(paths)),
        RootCerts::File(path) => {
            let certs = read_certificates(path, "sslrootcert")?;
            trust_from_certificates(certs).map_err(|reason| {
                UsageError(format!("sslrootcert \"{}\": {reason}", path.display()))
            })
        }
    }
}

/// The OS store as libpq 16+ loads it for `sslrootcert=system`
/// (SSL_CTX_set_default_verify_paths): the bundle file and the hashed
/// directory, `SSL_CERT_FILE` and `SSL_CERT_DIR` each replacing its own
/// default. webpki-roots only when that finds no certificate at all.
fn system_trust(paths: &SystemPaths) -> TrustStore {
    let file = paths
        .cert_file
        .clone()
        .or_else(|| openssl_probe::probe().cert_file);
    let dirs: Vec<PathBuf> = match &paths.cert_dir {
        Some(list) => std::env::split_paths(list)
            .filter(|d| !d.as_os_str().is_empty())
            .collect(),
        None => openssl_probe::candidate_cert_dirs()
            .take(1)
            .map(Path::to_path_buf)
            .collect(),
    };
    let mut certs: Vec<CertificateDer<'static>> = Vec::new();
    if let Some(file) = &file {
        certs.extend(rustls_native_certs::load_certs_from_paths(Some(file), None).certs);
    }
    for dir in &dirs {
        certs.extend(hashed_certificates(dir));
    }
    certs.sort_unstable_by(|a, b| a.as_ref().cmp(b.as_ref()));
    certs.dedup();
    // A bundle certificate the parser refuses is left out, not fatal:
    // OpenSSL, too, goes on with the rest.
    certs.retain(|der| Anchor::from_cert(der).is_ok());
    if certs.is_empty() {
        return webpki_trust();
    }
    let certificates = certs.len();
    match trust_from_certificates(certs) {
        Ok(mut store) => {
            store.source = TrustSource::System;
            store.system = Some(SystemStore::Os {
                file,
                dirs,
                certificates,
            });
            store
        }
        Err(_) => webpki_trust(),
    }
}

/// The certificates of an `openssl rehash` directory, read as OpenSSL's
/// directory lookup reads them: only files named `<8 hex digits>.<n>` (the
/// hash in the name is not checked against the subject, as with CRLs).
fn hashed_certificates(dir: &Path) -> Vec<CertificateDer<'static>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let hashed = |name: &str| {
        name.split_once('.').is_some_and(|(hash, n)| {
            hash.len() == 8
                && hash.bytes().all(|b| b.is_ascii_hexdigit())
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
        })
    };
    let mut certs = Vec::new();
    for entry in entries.flatten().take(MAX_DIRECTORY_FILES) {
        if entry.file_name().to_str().is_some_and(hashed) {
            let path = entry.path();
            certs.extend(rustls_native_certs::load_certs_from_paths(Some(&path), None).certs);
        }
    }
    certs
}

/// Files read from one certificate directory, at most: an OS store has a
/// few hundred.
const MAX_DIRECTORY_FILES: usize = 10_000;

/// webpki-roots' Mozilla set, where the machine has no OS store.
fn webpki_trust() -> TrustStore {
    let anchors = webpki_roots::TLS_SERVER_ROOTS
        .iter()
        .map(|ta| {
            Anchor::bare(
                der_sequence(ta.subject.as_ref()),
                der_sequence(ta.subject_public_key_info.as_ref()),
            )
        })
        .collect();
    let roots = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
    TrustStore {
        anchors: Arc::new(anchors),
        roots: Arc::new(roots),
        source: TrustSource::System,
        crls: None,
        system: Some(SystemStore::WebpkiRoots {
            certificates: webpki_roots::TLS_SERVER_ROOTS.len(),
        }),
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

/// A certificate of sslrootcert that does not parse (1-based position).
#[derive(Debug, thiserror::Error)]
#[error("certificate {position} does not parse: {reason}")]
pub struct UnparsableAnchor {
    position: usize,
    reason: crate::certs::NotCertificate,
}

/// Builds the store from certificates (already read from the PEM file).
pub(crate) fn trust_from_certificates(
    certs: Vec<CertificateDer<'static>>,
) -> Result<TrustStore, UnparsableAnchor> {
    let mut anchors = Vec::with_capacity(certs.len());
    for (i, der) in certs.iter().enumerate() {
        anchors.push(Anchor::from_cert(der).map_err(|reason| UnparsableAnchor {
            position: i + 1,
            reason,
        })?);
    }
    let mut roots = rustls::RootCertStore::empty();
    // Certificates webpki cannot use simply leave the strict view without them.
    roots.add_parsable_certificates(certs);
    Ok(TrustStore {
        anchors: Arc::new(anchors),
        roots: Arc::new(roots),
        source: TrustSource::File,
        crls: None,
        system: None,
    })
}

/// Reads sslrootcert, sslcert or sslkey, bounded (see [`conn::read_input_file`]).
fn read_small_file(path: &Path, option: &str) -> Result<Vec<u8>, UsageError> {
    conn::read_input_file(path).map_err(|why| {
        UsageError(format!(
            "cannot read {option} \"{}\": {why}",
            path.display()
        ))
    })
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

/// What `ssl_max_protocol_version=TLSv1.2` leaves to offer.
static TLS12_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// A fresh config (no session resumption) whose verifier reports into the returned recorder.
///
/// Err only when the crypto provider cannot do TLS 1.2/1.3: an internal error.
///
/// `max` is `ssl_max_protocol_version`: TLSv1.2 offers TLS 1.2 alone, as
/// libpq does (anything older is refused when the target is resolved).
pub fn client_config(
    trust: &TrustStore,
    identity: Option<&ClientIdentity>,
    mode: SslMode,
    host: &str,
    max: Option<TlsVersion>,
) -> Result<(rustls::ClientConfig, Arc<Recorder>), rustls::Error> {
    let provider = provider();
    let recorder = Arc::new(Recorder::default());
    let verifier = Arc::new(verify::LibpqVerifier {
        trust: trust.clone(),
        mode,
        host: host.to_string(),
        provider: provider.clone(),
        recorder: recorder.clone(),
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        // Fails only if the provider lacked TLS 1.2/1.3 suites; reported as
        // an internal error rather than assumed away.
        .with_protocol_versions(match max {
            Some(v) if v < TlsVersion::Tls13 => TLS12_ONLY,
            _ => rustls::DEFAULT_VERSIONS,
        })?
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::pki::*;
    use rcgen::KeyPair;

    #[test]
    fn load_trust_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.crt");
        let err = load_trust(&RootCerts::File(missing.clone())).unwrap_err();
        assert!(err.0.contains(&missing.display().to_string()), "{err}");
        assert!(!err.0.contains('\n'));

        let empty = dir.path().join("empty.crt");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        let err = load_trust(&RootCerts::File(empty.clone())).unwrap_err();
        assert!(err.0.contains("contains no PEM certificate"), "{err}");

        let bad = dir.path().join("bad.crt");
        std::fs::write(
            &bad,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = load_trust(&RootCerts::File(bad.clone())).unwrap_err();
        assert!(err.0.contains(&bad.display().to_string()), "{err}");

        let system = load_trust(&RootCerts::System(SystemPaths::default())).unwrap();
        assert!(system.anchors.len() > 50);
    }

    /// `system` with SSL_CERT_FILE and SSL_CERT_DIR: the file, and of the
    /// directory only what OpenSSL's lookup opens (`<hash>.<n>` names).
    #[test]
    fn system_roots_read_the_file_and_hashed_names() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (root("File CA"), root("Hashed CA"), root("Unhashed CA"));
        let file = dir.path().join("bundle.pem");
        std::fs::write(&file, a.pem()).unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        std::fs::write(certs.join("0a1b2c3d.0"), b.pem()).unwrap();
        std::fs::write(certs.join("company.pem"), c.pem()).unwrap();
        let store = system_trust(&SystemPaths {
            cert_file: Some(file.clone()),
            cert_dir: Some(certs.display().to_string()),
        });
        assert_eq!(store.source, TrustSource::System);
        assert_eq!(
            store.system,
            Some(SystemStore::Os {
                file: Some(file),
                dirs: vec![certs],
                certificates: 2,
            })
        );
        let subjects: Vec<String> = store
            .anchors
            .iter()
            .filter_map(|a| crate::certs::describe(a.cert.as_ref()?).ok())
            .map(|c| c.subject)
            .collect();
        assert!(subjects.contains(&"CN=File CA".to_string()), "{subjects:?}");
        assert!(
            subjects.contains(&"CN=Hashed CA".to_string()),
            "{subjects:?}"
        );
        assert!(
            !subjects.contains(&"CN=Unhashed CA".to_string()),
            "{subjects:?}"
        );

        // Nothing at all where OpenSSL looks: webpki-roots, said so.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let store = system_trust(&SystemPaths {
            cert_file: Some(dir.path().join("missing.pem")),
            cert_dir: Some(empty.display().to_string()),
        });
        assert!(matches!(
            store.system,
            Some(SystemStore::WebpkiRoots { certificates }) if certificates > 50
        ));
    }

    #[test]
    fn load_identity_checks_key_against_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let ca = root("Client CA");
        let key = KeyPair::generate().unwrap();
        let cert = leaf_params(&[], Some("probe"))
            .signed_by(&key, &*ca)
            .unwrap();
        let cert_path = dir.path().join("client.crt");
        let key_path = dir.path().join("client.key");
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        assert!(load_identity(&cert_path, &key_path).is_ok());

        let other_key = dir.path().join("other.key");
        std::fs::write(&other_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
        let err = load_identity(&cert_path, &other_key).unwrap_err();
        assert!(err.0.contains("does not match"), "{err}");

        let err = load_identity(&cert_path, &cert_path).unwrap_err();
        assert!(err.0.contains("sslkey"), "{err}");
    }

    /// PostgreSQL's default group is P-256: offering its key share first saves
    /// a HelloRetryRequest; the groups offered stay the same.
    #[test]
    fn key_share_leads_with_p256_and_offers_the_same_groups() {
        let ours = provider();
        assert_eq!(ours.kx_groups[0].name(), rustls::NamedGroup::secp256r1);
        let mut names: Vec<_> = ours.kx_groups.iter().map(|g| g.name()).collect();
        let mut defaults: Vec<_> = rustls::crypto::ring::default_provider()
            .kx_groups
            .iter()
            .map(|g| g.name())
            .collect();
        names.sort_by_key(|n| u16::from(*n));
        defaults.sort_by_key(|n| u16::from(*n));
        assert_eq!(names, defaults);
    }

    #[test]
    fn connector_name_normalises_inet_aton_forms_only() {
        assert_eq!(connector_name("127.1"), "127.0.0.1");
        assert_eq!(connector_name("0x7f.1"), "127.0.0.1");
        assert_eq!(connector_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(connector_name("db.example.com"), "db.example.com");
        assert_eq!(connector_name("::1"), "::1");
    }

    /// sslkey in each format libpq reads: PKCS#1 RSA, SEC1 EC and PKCS#8.
    #[test]
    fn load_identity_reads_pkcs1_sec1_and_pkcs8_keys() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let keys: [(&str, &[&str], &str); 3] = [
            (
                "rsa1.key",
                &["genrsa", "-traditional", "-out", "rsa1.key", "2048"],
                "BEGIN RSA PRIVATE KEY",
            ),
            (
                "ec.key",
                &[
                    "ecparam",
                    "-name",
                    "prime256v1",
                    "-genkey",
                    "-noout",
                    "-out",
                    "ec.key",
                ],
                "BEGIN EC PRIVATE KEY",
            ),
            (
                "p8.key",
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-out",
                    "p8.key",
                ],
                "BEGIN PRIVATE KEY",
            ),
        ];
        for (key, generate, header) in keys {
            openssl(d, generate);
            let pem = std::fs::read_to_string(d.join(key)).unwrap();
            assert!(pem.contains(header), "{key}: {pem}");
            let crt = format!("{key}.crt");
            openssl(
                d,
                &[
                    "req",
                    "-new",
                    "-x509",
                    "-key",
                    key,
                    "-subj",
                    "/CN=probe",
                    "-days",
                    "30",
                    "-out",
                    &crt,
                ],
            );
            if let Err(e) = load_identity(&d.join(&crt), &d.join(key)) {
                panic!("{key}: {e}");
            }
        }
    }
}
