//! The `ServerCertVerifier`: record first, judge by libpq, ask webpki too.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, Error, OtherError, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};

use super::hostname::{self, NameSource};
use super::{chain, HandshakeProgress, Recorder, TrustStore};
use crate::certs;
use crate::facts::{CertChainFacts, CertFacts, CertProblem};
use crate::conn::SslMode;

/// Decides by libpq's rules; webpki's opinion is only recorded.
#[derive(Debug)]
pub(super) struct LibpqVerifier {
    trust: TrustStore,
    mode: SslMode,
    /// The libpq `host` (not the SNI name): what libpq compares.
    host: String,
    provider: Arc<CryptoProvider>,
    strict: StrictVerifier,
    recorder: Arc<Recorder>,
}

/// webpki over the same roots, or why it could not be built.
pub(super) type StrictVerifier = Result<Arc<WebPkiServerVerifier>, String>;

pub(super) fn strict_verifier(
    trust: &TrustStore,
    provider: &Arc<CryptoProvider>,
) -> StrictVerifier {
    WebPkiServerVerifier::builder_with_provider(trust.roots.clone(), provider.clone())
        .build()
        .map_err(|e| format!("no trusted certificate usable by strict verifiers ({e})"))
}

impl LibpqVerifier {
    pub(super) fn new(
        trust: TrustStore,
        mode: SslMode,
        host: String,
        provider: Arc<CryptoProvider>,
        recorder: Arc<Recorder>,
    ) -> Self {
        let strict = strict_verifier(&trust, &provider);
        Self {
            trust,
            mode,
            host,
            provider,
            strict,
            recorder,
        }
    }
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
    let anchor = chain::verify(end_entity, intermediates, &trust.anchors, trust.source, now)?;
    let name = match mode {
        SslMode::VerifyCa => None,
        SslMode::VerifyFull => {
            let leaf =
                certs::parse(end_entity).map_err(|detail| CertProblem::Malformed { detail })?;
            Some(hostname::check(&leaf, host)?)
        }
    };
    Ok(Accepted { anchor, name })
}

/// webpki's verdict in words; under verify-ca a name mismatch does not count.
pub(super) fn strict_verdict(
    strict: &StrictVerifier,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    mode: SslMode,
    now: UnixTime,
) -> Result<(), String> {
    let verifier = strict.as_ref().map_err(Clone::clone)?;
    match verifier.verify_server_cert(end_entity, intermediates, server_name, &[], now) {
        Ok(_) => Ok(()),
        Err(Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) if mode == SslMode::VerifyCa => Ok(()),
        Err(e) => Err(strict_words(&e)),
    }
}

/// rustls/webpki errors as phrases an operator can act on.
fn strict_words(e: &Error) -> String {
    let Error::InvalidCertificate(ce) = e else {
        return e.to_string();
    };
    match ce {
        CertificateError::BadEncoding => {
            "certificate encoding rejected (webpki parses only X.509 v3)".to_string()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "a certificate in the chain has expired".to_string()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "a certificate in the chain is not yet valid".to_string()
        }
        CertificateError::UnknownIssuer => "no path to a trusted root".to_string(),
        CertificateError::BadSignature => "a signature in the chain does not verify".to_string(),
        CertificateError::NotValidForName => "host name not in subjectAltName".to_string(),
        CertificateError::NotValidForNameContext { presented, .. } => format!(
            "host name not in subjectAltName (has: {})",
            if presented.is_empty() {
                "none".to_string()
            } else {
                presented
                    .iter()
                    .map(|p| unwrap_debug(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate not valid for TLS server use (extendedKeyUsage)".to_string()
        }
        CertificateError::Other(other) => {
            let text = other.to_string();
            if text.contains("UnsupportedCertVersion") {
                "unsupported certificate version (webpki parses only X.509 v3)".to_string()
            } else if text.contains("CaUsedAsEndEntity") {
                "a CA certificate is used as the server certificate".to_string()
            } else if text.contains("EndEntityUsedAsCa") {
                "a non-CA certificate is used as an issuer".to_string()
            } else {
                text
            }
        }
        other => format!("{other:?}"),
    }
}

/// webpki lists presented names in Debug form (`DnsName("a.example")`);
/// keep just the name.
fn unwrap_debug(name: &str) -> &str {
    match (name.find('('), name.rfind(')')) {
        (Some(open), Some(close)) if open < close => name[open + 1..close].trim_matches('"'),
        _ => name,
    }
}

/// Why strict verifiers reject what libpq accepts, most specific first.
pub(super) fn strict_only_issues(
    end_entity: &[u8],
    intermediates: &[&[u8]],
    name: Option<NameSource>,
    strict_error: &str,
) -> Vec<String> {
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
                issues.push(format!(
                    "X.509 v{version} certificate (strict verifiers parse only v3)"
                ));
            }
            if name == Some(NameSource::CommonName) {
                let has_san = matches!(cert.subject_alternative_name(), Ok(Some(_)));
                issues.push(if has_san {
                    "host name only in the CN, not in subjectAltName (strict verifiers ignore the CN)"
                        .to_string()
                } else {
                    "no subjectAltName; host name only in the CN (strict verifiers ignore the CN)"
                        .to_string()
                });
            }
        } else if version != 3 {
            issues.push(format!(
                "intermediate \"{}\" is an X.509 v{version} certificate (strict verifiers parse only v3)",
                subject()
            ));
        }
        if signed_with_sha1(&cert) {
            issues.push(format!(
                "\"{}\" is signed with SHA-1 (refused by webpki, and by libpq itself where OpenSSL runs at security level 2, the Debian/Ubuntu default)",
                subject()
            ));
        }
    }
    if issues.is_empty() {
        issues.push(strict_error.to_string());
    }
    issues
}

/// SHA-1 signature OIDs: RSA, ECDSA and DSA.
fn signed_with_sha1(cert: &x509_parser::certificate::X509Certificate<'_>) -> bool {
    matches!(
        cert.signature_algorithm.algorithm.to_id_string().as_str(),
        "1.2.840.113549.1.1.5" | "1.2.840.10045.4.1" | "1.2.840.10040.4.3"
    )
}

/// The whole judgement, without a handshake: what the verifier records.
#[allow(clippy::too_many_arguments)]
pub(super) fn evaluate(
    presented: Vec<CertFacts>,
    malformed: Option<CertProblem>,
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    trust: &TrustStore,
    strict: &StrictVerifier,
    mode: SslMode,
    host: &str,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> (CertChainFacts, Result<(), CertProblem>) {
    let inter: Vec<&[u8]> = intermediates.iter().map(|c| c.as_ref()).collect();
    let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let verdict = match malformed {
        Some(problem) => Err(problem),
        None => libpq_verdict(end_entity, &inter, trust, mode, host, now_secs),
    };
    let strict_result = strict_verdict(strict, end_entity, intermediates, server_name, mode, now);
    let strict_only = match (&verdict, &strict_result) {
        (Ok(accepted), Err(reason)) => {
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
        strict: Some(strict_result),
        strict_only_issues: strict_only,
    };
    (facts, libpq)
}

/// Carries a libpq rejection that has no CertificateError of its own.
#[derive(Debug)]
struct LibpqRejection(CertProblem);

impl std::fmt::Display for LibpqRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::policy::describe_problem(&self.0))
    }
}

impl std::error::Error for LibpqRejection {}

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
        CertProblem::UnknownIssuer { .. } => CertificateError::UnknownIssuer,
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
        CertProblem::NotCa { .. }
        | CertProblem::UnhandledCriticalExtension { .. }
        | CertProblem::NameConstraint { .. } => {
            CertificateError::Other(OtherError(Arc::new(LibpqRejection(problem.clone()))))
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

        let (facts, verdict) = evaluate(
            presented,
            malformed,
            end_entity,
            intermediates,
            &self.trust,
            &self.strict,
            self.mode,
            &self.host,
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
        let valid = tls13_signature(&self.provider, message, cert, dss)?;
        self.recorder.advance(HandshakeProgress::Verified);
        Ok(valid)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
