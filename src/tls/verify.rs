//! The `ServerCertVerifier`: record first, judge by libpq, ask webpki too.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, Error, OtherError, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};

use super::hostname::{self, NameSource};
use super::{chain, Recorder, TrustStore};
use crate::certs;
use crate::conn::SslMode;
use crate::facts::{
    CertChainFacts, CertFacts, CertProblem, CrlProblem, HandshakeProgress, StrictOnlyIssue,
    StrictProblem,
};

/// Decides by libpq's rules; webpki's opinion is only recorded.
#[derive(Debug)]
pub(super) struct LibpqVerifier {
    pub trust: TrustStore,
    pub mode: SslMode,
    /// The libpq `host` (not the SNI name): what libpq compares.
    pub host: String,
    pub provider: Arc<CryptoProvider>,
    pub recorder: Arc<Recorder>,
}

/// Describes every presented certificate; the first that fails to parse
/// becomes the Malformed problem.
pub(super) fn describe_presented(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> (Vec<CertFacts>, Option<CertProblem>) {
    let mut facts = Vec::new();
    let mut problem = None;
    for (i, der) in std::iter::once(end_entity).chain(intermediates).enumerate() {
        match certs::describe(der) {
            Ok(f) => facts.push(f),
            Err(e) => {
                problem.get_or_insert(CertProblem::Malformed {
                    detail: format!("certificate {} sent by the server: {e}", i + 1),
                });
            }
        }
    }
    (facts, problem)
}

/// What libpq accepted: the anchor index and, under verify-full, how the name matched.
pub(super) struct Accepted {
    pub anchor: usize,
    pub name: Option<NameSource>,
}

/// libpq's verdict: chain first, then (verify-full only) the host name.
pub(super) fn libpq_verdict(
    end_entity: &[u8],
    intermediates: &[&[u8]],
    trust: &TrustStore,
    mode: SslMode,
    host: &str,
    now: i64,
) -> Result<Accepted, CertProblem> {
    let chain = chain::verify(
        end_entity,
        intermediates,
        &trust.anchors,
        trust.source,
        trust.crls.as_deref().map(Vec::as_slice),
        now,
    );
    // A chain the probe could not fully check still fails libpq's rules
    // for certain on a wrong host name; otherwise the limit stands.
    if let Err(problem) = &chain {
        if !matches!(problem, CertProblem::ProbeCannotVerify(_)) {
            return Err(problem.clone());
        }
    }
    let name = match mode {
        SslMode::VerifyCa => None,
        SslMode::VerifyFull => {
            let leaf = certs::parse(end_entity).map_err(|e| CertProblem::Malformed {
                detail: e.to_string(),
            })?;
            Some(hostname::check(&leaf, host)?)
        }
    };
    Ok(Accepted {
        anchor: chain?,
        name,
    })
}

/// webpki's verdict, as rustls and most clients that are not libpq reach
/// it; under verify-ca the name is not checked. `leaf` lists the names a
/// mismatch shows.
#[allow(clippy::too_many_arguments)]
pub(super) fn strict_verdict(
    trust: &TrustStore,
    provider: &CryptoProvider,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    mode: SslMode,
    leaf: Option<&CertFacts>,
    now: UnixTime,
) -> Result<(), StrictProblem> {
    if trust.roots.is_empty() {
        return Err(StrictProblem::NoUsableRoot);
    }
    let cert = webpki::EndEntityCert::try_from(end_entity).map_err(StrictProblem::Webpki)?;
    cert.verify_for_usage(
        provider.signature_verification_algorithms.all,
        &trust.roots.roots,
        intermediates,
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(StrictProblem::Webpki)?;
    if mode == SslMode::VerifyFull {
        cert.verify_is_valid_for_subject_name(server_name)
            .map_err(|e| match e {
                webpki::Error::CertNotValidForName(_) => StrictProblem::NameNotInSan {
                    presented: leaf.map_or_else(Vec::new, |l| {
                        l.san_dns.iter().chain(&l.san_ip).cloned().collect()
                    }),
                },
                other => StrictProblem::Webpki(other),
            })?;
    }
    Ok(())
}

/// Why strict verifiers reject what libpq accepts, most specific first.
pub(super) fn strict_only_issues(
    end_entity: &[u8],
    intermediates: &[&[u8]],
    name: Option<NameSource>,
    strict_error: &StrictProblem,
) -> Vec<StrictOnlyIssue> {
    let mut issues = Vec::new();
    // One parse per certificate: the leaf first, then what the server sent.
    for (i, der) in std::iter::once(&end_entity)
        .chain(intermediates)
        .enumerate()
    {
        let Ok(cert) = certs::parse(der) else {
            continue;
        };
        let version = cert.version().0 + 1;
        let subject = || certs::name_to_string(cert.subject());
        if i == 0 {
            if version != 3 {
                issues.push(StrictOnlyIssue::LeafVersion(version));
            }
            if name == Some(NameSource::CommonName) {
                let has_san = matches!(cert.subject_alternative_name(), Ok(Some(_)));
                issues.push(StrictOnlyIssue::CommonNameOnly { has_san });
            }
        } else if version != 3 {
            issues.push(StrictOnlyIssue::IntermediateVersion {
                subject: subject(),
                version,
            });
        }
    }
    if issues.is_empty() {
        issues.push(StrictOnlyIssue::Other(strict_error.clone()));
    }
    issues
}

impl LibpqVerifier {
    /// The whole judgement, without a handshake: what the verifier records.
    pub(super) fn evaluate(
        &self,
        presented: Vec<CertFacts>,
        malformed: Option<CertProblem>,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> (CertChainFacts, Result<(), CertProblem>) {
        let (trust, mode, host) = (&self.trust, self.mode, self.host.as_str());
        let inter: Vec<&[u8]> = intermediates.iter().map(|c| c.as_ref()).collect();
        let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let verdict = match malformed {
            Some(problem) => Err(problem),
            None => libpq_verdict(end_entity, &inter, trust, mode, host, now_secs),
        };
        // The strict view only matters beside libpq's acceptance, and
        // skipping it spares a hostile chain webpki's own search.
        let strict_result = verdict.is_ok().then(|| {
            strict_verdict(
                trust,
                &self.provider,
                end_entity,
                intermediates,
                server_name,
                mode,
                presented.first(),
                now,
            )
        });
        let strict_only = match (&verdict, &strict_result) {
            (Ok(accepted), Some(Err(reason))) => {
                strict_only_issues(end_entity, &inter, accepted.name, reason)
            }
            _ => Vec::new(),
        };
        let anchor = verdict.as_ref().ok().and_then(|a| {
            let der = trust.anchors.get(a.anchor)?.cert.as_ref()?;
            certs::describe(der).ok()
        });
        let libpq = verdict.as_ref().map(|_| ()).map_err(Clone::clone);
        let facts = CertChainFacts {
            presented,
            anchor,
            checked_name: match mode {
                SslMode::VerifyFull => Some(host.to_string()),
                SslMode::VerifyCa => None,
            },
            libpq: Some(libpq.clone()),
            strict: strict_result,
            strict_only_issues: strict_only,
            crls_checked: trust.crls.as_ref().map(|c| c.len()),
            system_store: trust.system.clone(),
        };
        (facts, libpq)
    }
}

fn unix(secs: i64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

/// The rustls error that stops the handshake with a fitting alert.
pub(super) fn rejection(
    problem: &CertProblem,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Error {
    let ce = match problem {
        CertProblem::UnknownIssuer(_) => CertificateError::UnknownIssuer,
        CertProblem::Expired { not_after, .. } => CertificateError::ExpiredContext {
            time: now,
            not_after: unix(*not_after),
        },
        CertProblem::NotYetValid { not_before, .. } => CertificateError::NotValidYetContext {
            time: now,
            not_before: unix(*not_before),
        },
        CertProblem::NameMismatch { presented, .. } => CertificateError::NotValidForNameContext {
            expected: server_name.to_owned(),
            presented: presented.clone(),
        },
        CertProblem::BadSignature { .. } => CertificateError::BadSignature,
        CertProblem::BadPurpose { .. } => CertificateError::InvalidPurpose,
        CertProblem::Malformed { .. } => CertificateError::BadEncoding,
        CertProblem::Revoked { .. } => CertificateError::Revoked,
        CertProblem::Crl(CrlProblem::Missing { .. }) => CertificateError::UnknownRevocationStatus,
        CertProblem::Crl(CrlProblem::Expired { .. }) => CertificateError::ExpiredRevocationList,
        CertProblem::NotCa { .. }
        | CertProblem::KeyTooWeak { .. }
        | CertProblem::DigestTooWeak { .. }
        | CertProblem::PathLengthExceeded { .. }
        | CertProblem::ChainTooLong(_)
        | CertProblem::BudgetExhausted { .. }
        | CertProblem::Crl(_)
        | CertProblem::ProbeCannotVerify(_)
        | CertProblem::UnhandledCriticalExtension { .. }
        | CertProblem::NameConstraint { .. } => {
            CertificateError::Other(OtherError(Arc::new(problem.clone())))
        }
    };
    Error::InvalidCertificate(ce)
}

/// The leaf's SubjectPublicKeyInfo, read with x509-parser so v1 leaves work.
fn leaf_spki(cert: &CertificateDer<'_>) -> Result<SubjectPublicKeyInfoDer<'static>, Error> {
    let parsed =
        certs::parse(cert).map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    Ok(SubjectPublicKeyInfoDer::from(
        parsed.public_key().raw.to_vec(),
    ))
}

/// The TLS 1.2 handshake signature, checked against the leaf's key read
/// from its SPKI (rustls' own check parses the leaf with webpki, which
/// refuses the X.509 v1 certificates libpq accepts).
pub(crate) fn tls12_signature(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, Error> {
    let spki = leaf_spki(cert)?;
    let algorithms = provider
        .signature_verification_algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == dss.scheme)
        .map(|(_, algs)| *algs)
        .ok_or(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
    let key = webpki::RawPublicKeyEntity::try_from(&spki)
        .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
    // TLS 1.2 schemes map to several algorithms; the key decides which applies.
    if algorithms
        .iter()
        .any(|alg| key.verify_signature(*alg, message, dss.signature()).is_ok())
    {
        return Ok(HandshakeSignatureValid::assertion());
    }
    Err(Error::InvalidCertificate(CertificateError::BadSignature))
}

/// The TLS 1.3 handshake signature, from the leaf's SPKI as above.
pub(crate) fn tls13_signature(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, Error> {
    let spki = leaf_spki(cert)?;
    rustls::crypto::verify_tls13_signature_with_raw_key(
        message,
        &spki,
        dss,
        &provider.signature_verification_algorithms,
    )
}

impl ServerCertVerifier for LibpqVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        // Record before judging, so a rejected chain is still reported.
        let (presented, malformed) = describe_presented(end_entity, intermediates);
        self.recorder.set_facts(CertChainFacts {
            presented: presented.clone(),
            ..CertChainFacts::default()
        });
        self.recorder.advance(HandshakeProgress::CertificateSeen);

        let (facts, verdict) = self.evaluate(
            presented,
            malformed,
            end_entity,
            intermediates,
            server_name,
            now,
        );
        self.recorder.set_facts(facts);
        match verdict {
            Ok(()) => Ok(ServerCertVerified::assertion()),
            Err(problem) => Err(rejection(&problem, server_name, now)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.within_limits(cert)?;
        let valid = tls12_signature(&self.provider, message, cert, dss)?;
        self.recorder.advance(HandshakeProgress::Verified);
        Ok(valid)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.within_limits(cert)?;
        let valid = tls13_signature(&self.provider, message, cert, dss)?;
        self.recorder.advance(HandshakeProgress::Verified);
        Ok(valid)
    }

    /// The provider's schemes, and those OpenSSL servers may need that it
    /// lacks: offered so that such a server sends its certificate (judged
    /// by libpq's rules as usual) instead of failing the handshake blind;
    /// its signature then ends the handshake as a probe limit
    /// ([`LibpqVerifier::within_limits`]), before any credential is sent.
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        let mut schemes = self
            .provider
            .signature_verification_algorithms
            .supported_schemes();
        for extra in BEYOND_PROVIDER {
            if !schemes.contains(&extra) {
                schemes.push(extra);
            }
        }
        schemes
    }
}

/// Signature schemes of keys OpenSSL handles and ring does not: P-521,
/// Ed448, and RSA-PSS-only keys (rsa_pss_pss_sha256/384/512).
const BEYOND_PROVIDER: [SignatureScheme; 5] = [
    SignatureScheme::ECDSA_NISTP521_SHA512,
    SignatureScheme::ED448,
    SignatureScheme::Unknown(0x0809),
    SignatureScheme::Unknown(0x080a),
    SignatureScheme::Unknown(0x080b),
];

impl LibpqVerifier {
    /// Stops the handshake, recording why, when the server's key is one the
    /// probe's crypto cannot verify a handshake signature with.
    fn within_limits(&self, cert: &CertificateDer<'_>) -> Result<(), Error> {
        let parsed = certs::parse(cert)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        match certs::handshake_limit(parsed.public_key()) {
            None => Ok(()),
            Some(limit) => {
                self.recorder.set_limit(limit.clone());
                Err(Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(limit)),
                )))
            }
        }
    }
}

/// The verifier's record of `chain` (leaf first), without a handshake, at
/// `now` (Unix seconds): libpq's rules and the strict view, as a handshake
/// would record them. For a chain read off the wire when the probe's own
/// handshake cannot finish (a TLS 1.2 Certificate message is plaintext);
/// None when there is no certificate or `host` is no TLS name.
pub(crate) fn judge_offline(
    chain: &[CertificateDer<'_>],
    trust: &TrustStore,
    mode: SslMode,
    host: &str,
    now: i64,
) -> Option<CertChainFacts> {
    let (ee, inter) = chain.split_first()?;
    let verifier = LibpqVerifier {
        trust: trust.clone(),
        mode,
        host: host.to_string(),
        provider: super::provider(),
        recorder: Arc::default(),
    };
    let (presented, malformed) = describe_presented(ee, inter);
    let server_name = ServerName::try_from(super::connector_name(host)).ok()?;
    let (facts, _) = verifier.evaluate(presented, malformed, ee, inter, &server_name, unix(now));
    Some(facts)
}

/// [`judge_offline`] for the chain tests.
#[cfg(test)]
pub(crate) fn judge_chain(
    chain: &[CertificateDer<'static>],
    trust: &TrustStore,
    mode: SslMode,
    host: &str,
    now: i64,
) -> CertChainFacts {
    judge_offline(chain, trust, mode, host, now).expect("a chain and a TLS name")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::pki::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::PrivateKeyDer;

    use crate::conn::RootCerts;
    use crate::tls::{client_config, load_trust, provider};

    #[test]
    fn v3_leaf_and_ca_accepted() {
        let ca = root("Test CA");
        let chain = [leaf(&["db.example.com"], Some("db.example.com"), &ca)];
        let facts = judge(&chain, &trust(&[&ca]), "db.example.com");
        assert_eq!(facts.libpq, Some(Ok(())));
        assert_eq!(facts.strict, Some(Ok(())));
        assert!(facts.strict_only_issues.is_empty());
        assert_eq!(facts.checked_name.as_deref(), Some("db.example.com"));
        assert_eq!(facts.presented.len(), 1);
        assert_eq!(
            facts.anchor.map(|a| a.subject).as_deref(),
            Some("CN=Test CA")
        );
    }

    #[test]
    fn malformed_certificate_recorded() {
        let ca = root("Test CA");
        let facts = judge(
            &[CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00])],
            &trust(&[&ca]),
            "x",
        );
        assert!(matches!(
            libpq_problem(&facts),
            CertProblem::Malformed { .. }
        ));
        assert!(facts.presented.is_empty());
    }

    #[test]
    fn article_v1_cn_only_leaf_libpq_accepts_strict_rejects() {
        let Some(pki) = article_pki() else {
            return;
        };
        let store = load_trust(&RootCerts::File(pki.ca.clone())).unwrap();
        let server = CertificateDer::from_pem_file(&pki.server_crt).unwrap();

        let facts = judge_at(
            &[server],
            &store,
            SslMode::VerifyFull,
            "db.internal",
            unix_now(),
        );
        let leaf = &facts.presented[0];
        assert_eq!(leaf.version, 1);
        assert_eq!(leaf.subject, "CN=db.internal");
        assert!(leaf.san_dns.is_empty());
        assert_eq!(leaf.key, "RSA 2048");
        assert_eq!(leaf.signature_algorithm, "sha256WithRSAEncryption");
        assert_eq!(facts.libpq, Some(Ok(())));
        assert_eq!(
            facts.anchor.as_ref().map(|a| a.subject.as_str()),
            Some("CN=PostgreSQL CA")
        );
        assert!(matches!(facts.strict, Some(Err(_))), "{:?}", facts.strict);
        assert_eq!(
            issues(&facts),
            vec![
                "X.509 v1 certificate (strict verifiers parse only v3)".to_string(),
                "no subjectAltName; host name only in the CN (strict verifiers ignore the CN)"
                    .to_string(),
            ]
        );
    }

    /// OpenSSL 3 rates SHA-1 and MD5 signatures below security level 1
    /// (Debian runs level 2): libpq refuses them, "digest too weak".
    #[test]
    fn sha1_and_md5_signed_leaves_are_too_weak() {
        for digest in ["-sha1", "-md5"] {
            let Some(pki) = article_pki_signing_with(&[digest]) else {
                return;
            };
            let store = load_trust(&RootCerts::File(pki.ca.clone())).unwrap();
            let server = CertificateDer::from_pem_file(&pki.server_crt).unwrap();
            let facts = judge_at(
                &[server],
                &store,
                SslMode::VerifyFull,
                "db.internal",
                unix_now(),
            );
            assert!(
                matches!(
                    libpq_problem(&facts),
                    CertProblem::DigestTooWeak { ref subject, .. } if subject == "CN=db.internal"
                ),
                "{digest}: {:?}",
                facts.libpq
            );
        }
    }

    /// RSA keys under 2048 bits fail security level 2 ("EE certificate key
    /// too weak"), whatever else is right; over 8192 bits are beyond ring:
    /// the chain passes, and the handshake names the probe's limit.
    #[test]
    fn rsa_key_sizes_by_openssl_rules() {
        if !have_openssl("rsa key sizes") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-subj",
                "/CN=Size CA",
                "-days",
                "30",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "rsa:1024",
                "-nodes",
                "-keyout",
                "small.key",
                "-out",
                "small.csr",
                "-subj",
                "/CN=db.internal",
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "small.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "small.crt",
                "-days",
                "30",
            ],
        );
        let store = load_trust(&RootCerts::File(d.join("ca.crt"))).unwrap();
        let small = CertificateDer::from_pem_file(d.join("small.crt")).unwrap();
        let facts = judge_at(
            &[small],
            &store,
            SslMode::VerifyFull,
            "db.internal",
            unix_now(),
        );
        assert!(
            matches!(
                libpq_problem(&facts),
                CertProblem::KeyTooWeak { ca: false, ref key, .. } if key == "RSA 1024"
            ),
            "{:?}",
            facts.libpq
        );
        assert!(libpq_problem(&facts)
            .to_string()
            .contains("security level 2"));
    }

    mod handshake {
        use super::*;
        use rustls::sign::{CertifiedKey, SingleCertAndKey};
        use rustls::SupportedProtocolVersion;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio::net::{TcpListener, TcpStream};

        /// Serves the article's v1 certificate once; rustls's own key/cert
        /// consistency check would refuse a v1 certificate, so it is bypassed.
        async fn serve(
            pki: &ArticlePki,
            version: &'static SupportedProtocolVersion,
        ) -> std::net::SocketAddr {
            let provider = provider();
            let chain = vec![CertificateDer::from_pem_file(&pki.server_crt).unwrap()];
            let key = PrivateKeyDer::from_pem_file(&pki.server_key).unwrap();
            let key = provider.key_provider.load_private_key(key).unwrap();
            let resolver = SingleCertAndKey::from(CertifiedKey::new(chain, key));
            let config = rustls::ServerConfig::builder_with_provider(provider)
                .with_protocol_versions(&[version])
                .unwrap()
                .with_no_client_auth()
                .with_cert_resolver(Arc::new(resolver));
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                let (tcp, _) = listener.accept().await.unwrap();
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(b"ok").await;
                    let _ = tls.shutdown().await;
                }
            });
            addr
        }

        async fn connect(
            addr: std::net::SocketAddr,
            config: rustls::ClientConfig,
            name: &str,
        ) -> std::io::Result<(rustls::ProtocolVersion, Vec<u8>)> {
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let tcp = TcpStream::connect(addr).await?;
            let server_name = ServerName::try_from(name.to_string()).unwrap();
            let mut tls = connector.connect(server_name, tcp).await?;
            let version = tls.get_ref().1.protocol_version().unwrap();
            let mut buf = Vec::new();
            tls.read_to_end(&mut buf).await?;
            Ok((version, buf))
        }

        async fn completes_with(version: &'static SupportedProtocolVersion) {
            let Some(pki) = article_pki() else {
                return;
            };
            let addr = serve(&pki, version).await;
            let store = load_trust(&RootCerts::File(pki.ca.clone())).unwrap();
            let (config, recorder) =
                client_config(&store, None, SslMode::VerifyFull, "db.internal", None).unwrap();
            let (negotiated, data) = connect(addr, config, "db.internal").await.unwrap();
            assert_eq!(negotiated, version.version);
            assert_eq!(data, b"ok");
            assert_eq!(recorder.progress(), HandshakeProgress::Verified);
            let facts = recorder.facts();
            assert_eq!(facts.libpq, Some(Ok(())));
            assert_eq!(facts.presented[0].version, 1);
            assert_eq!(facts.strict_only_issues.len(), 2);
        }

        #[tokio::test]
        async fn v1_certificate_tls13() {
            completes_with(&rustls::version::TLS13).await;
        }

        #[tokio::test]
        async fn v1_certificate_tls12() {
            completes_with(&rustls::version::TLS12).await;
        }

        #[tokio::test]
        async fn wrong_host_stops_the_handshake_after_recording() {
            let Some(pki) = article_pki() else {
                return;
            };
            let addr = serve(&pki, &rustls::version::TLS13).await;
            let store = load_trust(&RootCerts::File(pki.ca.clone())).unwrap();
            let (config, recorder) =
                client_config(&store, None, SslMode::VerifyFull, "other.internal", None).unwrap();
            let err = connect(addr, config, "other.internal").await.unwrap_err();
            let rustls_err = err
                .get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>())
                .cloned();
            assert!(
                matches!(
                    rustls_err,
                    Some(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::NotValidForNameContext { .. }
                    ))
                ),
                "{err:?}"
            );
            assert_eq!(recorder.progress(), HandshakeProgress::CertificateSeen);
            let facts = recorder.facts();
            assert_eq!(facts.presented.len(), 1);
            assert_eq!(facts.presented[0].subject, "CN=db.internal");
            assert_eq!(
                facts.libpq,
                Some(Err(CertProblem::NameMismatch {
                    host: "other.internal".to_string(),
                    presented: vec!["db.internal".to_string()],
                }))
            );
        }
    }
}
