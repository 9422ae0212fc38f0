//! Chain verification as OpenSSL performs it for libpq (`verify-ca`).
//!
//! webpki cannot stand in here: it refuses X.509 v1 certificates, which
//! OpenSSL accepts (v1 roots even act as CAs). So the path is built and
//! checked with x509-parser, following OpenSSL 3's order
//! (`X509_verify_cert`): the server key's security level first, then
//! build the chain (trusted store first; an issuer is a certificate with
//! the right name whose subjectKeyIdentifier does not contradict the
//! authorityKeyIdentifier, no signature needed yet), then critical
//! extensions, CA, purpose and path-length checks, security level 2 for
//! CA keys and digests, revocation when CRLs are loaded, signatures and
//! validity from the root down, and the CAs' name constraints. Only the
//! first failure is reported, as libpq reports only the first.
//! Not modelled: policy constraints, and name constraints applied to
//! intermediates' own names.
//!
//! Bounded: the greedy walk never backtracks, signatures are checked only
//! along the one path built, and a [`Budget`] of candidate issuers and
//! signature checks ends a hostile chain or trust store with a verdict
//! (webpki and OpenSSL bound their searches too).

use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Name};

use super::crl::{self, Crl};
use crate::certs;
use crate::facts::{
    CertProblem, ConstraintBreach, IssuerNotFound, ProbeLimit, Purpose, TrustSource,
};

/// OpenSSL's default verify depth: at most this many intermediates.
pub(crate) const MAX_INTERMEDIATES: usize = 100;
/// Issuer candidates examined in one verification (same-named certificates
/// in the chain or the trust store). Real chains examine a handful.
pub(crate) const MAX_CANDIDATES: usize = 20_000;
/// Signature checks in one verification: the path's own (at most
/// [`MAX_INTERMEDIATES`] + 1) and one per CRL.
pub(crate) const MAX_SIGNATURES: usize = 256;

/// One trusted certificate, or a bare webpki-roots anchor (name + key).
#[derive(Debug, Clone)]
pub(crate) struct Anchor {
    /// DER Name including its SEQUENCE header.
    pub subject: Vec<u8>,
    /// DER SubjectPublicKeyInfo including its SEQUENCE header.
    pub spki: Vec<u8>,
    /// The full certificate when it came from a PEM file.
    pub cert: Option<CertificateDer<'static>>,
    /// [`certs::name_key`] of the subject, so that looking an issuer up in a
    /// large bundle compares bytes instead of parsing every certificate.
    pub name_key: Vec<u8>,
    /// subjectKeyIdentifier, read once at load time.
    pub key_id: Option<Vec<u8>>,
    /// Validity window (Unix seconds), when there is a certificate.
    pub validity: Option<(i64, i64)>,
}

impl Anchor {
    /// A trusted certificate; None when it does not parse.
    pub(crate) fn from_cert(
        der: &CertificateDer<'static>,
    ) -> Result<Anchor, certs::NotCertificate> {
        let cert = certs::parse(der)?;
        Ok(Anchor {
            subject: cert.subject().as_raw().to_vec(),
            spki: cert.public_key().raw.to_vec(),
            name_key: certs::name_key(cert.subject()),
            key_id: subject_key_id(&cert).map(<[u8]>::to_vec),
            validity: Some((
                cert.validity().not_before.timestamp(),
                cert.validity().not_after.timestamp(),
            )),
            cert: Some(der.clone()),
        })
    }

    /// A bare anchor (webpki-roots): a name and a key, trusted as they are.
    pub(crate) fn bare(subject: Vec<u8>, spki: Vec<u8>) -> Anchor {
        let name_key = certs::parse_name(&subject)
            .map(|n| certs::name_key(&n))
            .unwrap_or_default();
        Anchor {
            subject,
            spki,
            cert: None,
            name_key,
            key_id: None,
            validity: None,
        }
    }
}

/// A certificate or anchor on the candidate path.
struct Node<'a> {
    /// None only for bare system anchors.
    cert: Option<X509Certificate<'a>>,
    name: X509Name<'a>,
    spki: SubjectPublicKeyInfo<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Presented(usize),
    Anchor(usize),
}

/// What one verification may spend; see [`MAX_CANDIDATES`], [`MAX_SIGNATURES`].
#[derive(Debug, Default)]
pub(crate) struct Budget {
    pub candidates: usize,
    pub signatures: usize,
}

impl Budget {
    fn exhausted(&self) -> CertProblem {
        CertProblem::BudgetExhausted {
            candidates: self.candidates,
            signatures: self.signatures,
        }
    }

    fn candidate(&mut self) -> Result<(), CertProblem> {
        self.candidates += 1;
        if self.candidates > MAX_CANDIDATES {
            return Err(self.exhausted());
        }
        Ok(())
    }

    pub(super) fn signature(&mut self) -> Result<(), CertProblem> {
        self.signatures += 1;
        if self.signatures > MAX_SIGNATURES {
            return Err(self.exhausted());
        }
        Ok(())
    }
}

/// Verifies `leaf` + `intermediates` against `anchors` (and `crls`, when
/// any were loaded) at `now` (Unix seconds); on success returns the index
/// of the anchor the path ends at.
///
/// A signature the probe's crypto cannot check does not end the walk: a
/// definite failure found later still rejects the chain (libpq rejects it
/// whatever that signature says); otherwise the result is
/// [`CertProblem::ProbeCannotVerify`].
pub(crate) fn verify(
    leaf: &[u8],
    intermediates: &[&[u8]],
    anchors: &[Anchor],
    source: TrustSource,
    crls: Option<&[Crl]>,
    now: i64,
) -> Result<usize, CertProblem> {
    let mut budget = Budget::default();
    let mut presented = Vec::with_capacity(intermediates.len() + 1);
    for (i, der) in std::iter::once(&leaf)
        .chain(intermediates.iter())
        .enumerate()
    {
        let cert = certs::parse(der).map_err(|e| CertProblem::Malformed {
            detail: format!("certificate {} sent by the server: {e}", i + 1),
        })?;
        presented.push(Node {
            name: cert.tbs_certificate.subject.clone(),
            spki: cert.tbs_certificate.subject_pki.clone(),
            cert: Some(cert),
        });
    }
    // OpenSSL checks the server's own key before it builds anything.
    if let Some(Node {
        cert: Some(cert), ..
    }) = presented.first()
    {
        check_key_level(cert, false)?;
    }

    let path = build_path(&presented, anchors, source, now, &mut budget)?;
    let mut trusted: Vec<Option<Node<'_>>> = Vec::new();
    for link in &path {
        if let Link::Anchor(i) = *link {
            trusted.push(anchor_node(&anchors[i]));
        }
    }
    let mut anchor_nodes = trusted.iter();
    let nodes: Vec<&Node<'_>> = path
        .iter()
        .filter_map(|link| match *link {
            Link::Presented(i) => presented.get(i),
            Link::Anchor(_) => anchor_nodes.next().and_then(Option::as_ref),
        })
        .collect();
    if nodes.len() != path.len() {
        return Err(CertProblem::Malformed {
            detail: "a trusted certificate does not parse".into(),
        });
    }
    check_extensions(&nodes)?;
    check_auth_level(&nodes)?;
    if let Some(crls) = crls {
        crl::check_revocation(&nodes_certs(&nodes), crls, now, &mut budget)?;
    }
    let limit = check_signatures_and_validity(&nodes, now, &mut budget)?;
    check_name_constraints(&nodes)?;
    if let Some(limit) = limit {
        return Err(CertProblem::ProbeCannotVerify(limit));
    }
    match path.last() {
        Some(Link::Anchor(i)) => Ok(*i),
        _ => Err(CertProblem::UnknownIssuer(IssuerNotFound::NoTrustedEnd)),
    }
}

/// The path as (certificate, subject, key) for the revocation check;
/// a bare anchor has no certificate.
fn nodes_certs<'a>(nodes: &[&'a Node<'a>]) -> Vec<crl::PathCert<'a>> {
    nodes
        .iter()
        .map(|n| (n.cert.as_ref(), &n.name, &n.spki))
        .collect()
}

fn anchor_node(anchor: &Anchor) -> Option<Node<'_>> {
    let cert = match &anchor.cert {
        Some(der) => Some(certs::parse(der).ok()?),
        None => None,
    };
    Some(Node {
        name: certs::parse_name(&anchor.subject)?,
        spki: certs::parse_spki(&anchor.spki)?,
        cert,
    })
}

fn self_issued(cert: &X509Certificate<'_>) -> bool {
    certs::names_match(cert.subject(), cert.issuer())
}

fn subject_key_id<'a>(cert: &'a X509Certificate<'a>) -> Option<&'a [u8]> {
    cert.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0),
            _ => None,
        })
}

fn authority_key_id<'a>(cert: &'a X509Certificate<'a>) -> Option<&'a [u8]> {
    cert.iter_extensions()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| k.0)
            }
            _ => None,
        })
}

/// An issuer candidate, described without parsing it again.
struct Candidate<'c> {
    link: Link,
    key_id: Option<&'c [u8]>,
    validity: Option<(i64, i64)>,
}

/// Follows issuers from the leaf, preferring trusted certificates (OpenSSL's
/// X509_V_FLAG_TRUSTED_FIRST default) until a self-issued trusted
/// certificate or a bare system anchor ends the path. An issuer is taken
/// as OpenSSL's `check_issued` takes it: the right name and no
/// contradicting key identifier, a currently valid one first; signatures
/// come later, along this one path.
fn build_path(
    presented: &[Node<'_>],
    anchors: &[Anchor],
    source: TrustSource,
    now: i64,
    budget: &mut Budget,
) -> Result<Vec<Link>, CertProblem> {
    let presented_keys: Vec<Vec<u8>> = presented.iter().map(|n| certs::name_key(&n.name)).collect();
    let presented_ids: Vec<Option<&[u8]>> = presented
        .iter()
        .map(|n| n.cert.as_ref().and_then(subject_key_id))
        .collect();
    let mut path = vec![Link::Presented(0)];
    while let Some(&current) = path.last() {
        let cert = match current {
            Link::Presented(i) => presented.get(i).and_then(|n| n.cert.as_ref()),
            Link::Anchor(i) => {
                // A bare system anchor is trusted by definition; a trusted
                // certificate ends the path once it is self-issued.
                let anchor = &anchors[i];
                match &anchor.cert {
                    None => return Ok(path),
                    Some(_) if anchor.name_key.is_empty() => return Ok(path),
                    Some(der) => {
                        let Ok(c) = certs::parse(der) else {
                            return Ok(path);
                        };
                        if self_issued(&c) {
                            return Ok(path);
                        }
                        // An intermediate in sslrootcert: go on to its issuer.
                        let issuer_key = certs::name_key(c.issuer());
                        let aki = authority_key_id(&c).map(<[u8]>::to_vec);
                        let next = find_issuer(
                            &issuer_key,
                            aki.as_deref(),
                            &path,
                            anchors,
                            &presented_keys,
                            &presented_ids,
                            presented,
                            now,
                            budget,
                        )?;
                        match next {
                            Lookup::Found(link) => {
                                push(&mut path, link)?;
                                continue;
                            }
                            Lookup::KeyIdMismatch | Lookup::None => {
                                return Err(CertProblem::UnknownIssuer(IssuerNotFound::OfTrusted {
                                    issuer: certs::name_to_string(c.issuer()),
                                    subject: certs::name_to_string(c.subject()),
                                    trust: source,
                                }))
                            }
                        }
                    }
                }
            }
        };
        let Some(cert) = cert else { break };
        let is_self_issued = self_issued(cert);
        if is_self_issued {
            // A presented self-issued certificate that is itself trusted.
            if let Some(a) = anchors
                .iter()
                .position(|a| a.cert.as_ref().map(|c| c.as_ref()) == Some(cert.as_raw()))
            {
                if let Some(last) = path.last_mut() {
                    *last = Link::Anchor(a);
                }
                return Ok(path);
            }
        }
        let issuer_key = certs::name_key(cert.issuer());
        let next = find_issuer(
            &issuer_key,
            authority_key_id(cert),
            &path,
            anchors,
            &presented_keys,
            &presented_ids,
            presented,
            now,
            budget,
        )?;
        match next {
            Lookup::Found(link) => push(&mut path, link)?,
            Lookup::KeyIdMismatch if !is_self_issued => {
                return Err(CertProblem::UnknownIssuer(IssuerNotFound::KeyIdMismatch {
                    issuer: certs::name_to_string(cert.issuer()),
                    trust: source,
                }))
            }
            _ => return Err(unknown_issuer(cert, current, is_self_issued, source)),
        }
    }
    Err(CertProblem::UnknownIssuer(IssuerNotFound::NoTrustedEnd))
}

/// Adds a link, refusing a path longer than OpenSSL's verify depth allows
/// (the leaf, [`MAX_INTERMEDIATES`] and the root).
fn push(path: &mut Vec<Link>, link: Link) -> Result<(), CertProblem> {
    if path.len() > MAX_INTERMEDIATES + 1 {
        return Err(CertProblem::ChainTooLong(MAX_INTERMEDIATES));
    }
    path.push(link);
    Ok(())
}

enum Lookup {
    Found(Link),
    /// Same-named certificates exist, but their key identifiers differ.
    KeyIdMismatch,
    None,
}

/// The issuer of a certificate whose issuer name is `issuer_key` and whose
/// authorityKeyIdentifier is `aki`: trusted certificates first, then the
/// ones the server sent; among them, the first valid now, else the first.
#[allow(clippy::too_many_arguments)]
fn find_issuer(
    issuer_key: &[u8],
    aki: Option<&[u8]>,
    path: &[Link],
    anchors: &[Anchor],
    presented_keys: &[Vec<u8>],
    presented_ids: &[Option<&[u8]>],
    presented: &[Node<'_>],
    now: i64,
    budget: &mut Budget,
) -> Result<Lookup, CertProblem> {
    let trusted = anchors
        .iter()
        .enumerate()
        .filter(|(_, a)| a.name_key == issuer_key)
        .map(|(i, a)| Candidate {
            link: Link::Anchor(i),
            key_id: a.key_id.as_deref(),
            validity: a.validity,
        });
    let sent = presented_keys
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, k)| k.as_slice() == issuer_key)
        .map(|(i, _)| Candidate {
            link: Link::Presented(i),
            key_id: presented_ids[i],
            validity: presented[i].cert.as_ref().map(|c| {
                (
                    c.validity().not_before.timestamp(),
                    c.validity().not_after.timestamp(),
                )
            }),
        });
    let mut mismatch = false;
    let mut first = None;
    for tier in [trusted.collect::<Vec<_>>(), sent.collect::<Vec<_>>()] {
        for candidate in tier {
            budget.candidate()?;
            if path.contains(&candidate.link) {
                continue;
            }
            if let (Some(want), Some(have)) = (aki, candidate.key_id) {
                if want != have {
                    mismatch = true;
                    continue;
                }
            }
            let valid_now = candidate
                .validity
                .is_none_or(|(from, until)| from <= now && now <= until);
            if valid_now {
                return Ok(Lookup::Found(candidate.link));
            }
            first.get_or_insert(candidate.link);
        }
        if let Some(link) = first {
            return Ok(Lookup::Found(link));
        }
    }
    Ok(if mismatch {
        Lookup::KeyIdMismatch
    } else {
        Lookup::None
    })
}

/// Words modelled on OpenSSL's verify errors, naming the missing issuer.
fn unknown_issuer(
    cert: &X509Certificate<'_>,
    at: Link,
    is_self_issued: bool,
    source: TrustSource,
) -> CertProblem {
    let subject = certs::name_to_string(cert.subject());
    let issuer = certs::name_to_string(cert.issuer());
    CertProblem::UnknownIssuer(match at {
        Link::Presented(0) if is_self_issued => IssuerNotFound::SelfSignedLeaf {
            subject,
            trust: source,
        },
        Link::Presented(_) if is_self_issued => IssuerNotFound::SelfSignedInChain {
            subject,
            trust: source,
        },
        Link::Presented(_) => IssuerNotFound::Issuer {
            issuer,
            trust: source,
        },
        Link::Anchor(_) => IssuerNotFound::OfTrusted {
            issuer,
            subject,
            trust: source,
        },
    })
}

/// OpenSSL security level 2 (112 bits): RSA and DSA keys of 2048 bits or
/// more, EC keys of 224 bits or more. Debian and most distributions ship
/// OpenSSL 3 at this level, and libpq uses the library default.
fn check_key_level(cert: &X509Certificate<'_>, ca: bool) -> Result<(), CertProblem> {
    let spki = cert.public_key();
    let bits = match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => Some((certs::integer_bits(rsa.modulus), 2048)),
        Ok(PublicKey::DSA(p)) => Some((certs::integer_bits(p), 2048)),
        Ok(PublicKey::EC(point)) => Some((point.key_size(), 224)),
        _ => None,
    };
    match bits {
        Some((have, need)) if have > 0 && have < need => Err(CertProblem::KeyTooWeak {
            subject: certs::name_to_string(cert.subject()),
            key: certs::key_description(spki),
            ca,
        }),
        _ => Ok(()),
    }
}

/// OpenSSL's check_auth_level: every issuer's key, and the signature digest
/// of every certificate but the trust anchor at the top.
fn check_auth_level(nodes: &[&Node<'_>]) -> Result<(), CertProblem> {
    for (depth, node) in nodes.iter().enumerate() {
        let Some(cert) = &node.cert else { continue };
        if depth > 0 {
            check_key_level(cert, true)?;
        }
        if depth + 1 < nodes.len() {
            if let Some(alg) = certs::signature_algorithm(cert).filter(|a| a.weak_digest) {
                return Err(CertProblem::DigestTooWeak {
                    subject: certs::name_to_string(cert.subject()),
                    algorithm: alg.name.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// OpenSSL's internal_verify: from the top down, each certificate's
/// signature by the one above it (not the top's own, when it is
/// self-issued), then its validity window. A signature the probe's crypto
/// cannot check is returned as a limit once the walk has found nothing else.
fn check_signatures_and_validity(
    nodes: &[&Node<'_>],
    now: i64,
    budget: &mut Budget,
) -> Result<Option<ProbeLimit>, CertProblem> {
    let mut limit = None;
    for depth in (0..nodes.len()).rev() {
        let Some(cert) = &nodes[depth].cert else {
            continue;
        };
        if let Some(issuer) = nodes.get(depth + 1) {
            budget.signature()?;
            match verify_signed_by(cert, &issuer.spki) {
                Ok(()) => {}
                Err(Signature::Bad) => {
                    return Err(CertProblem::BadSignature {
                        subject: certs::name_to_string(cert.subject()),
                    })
                }
                Err(Signature::Unsupported) => {
                    limit.get_or_insert(ProbeLimit::ChainSignature {
                        subject: certs::name_to_string(cert.subject()),
                        algorithm: certs::signature_algorithm(cert)
                            .map_or_else(|| "unknown".to_string(), |a| a.name.to_string()),
                        key: certs::key_description(&issuer.spki),
                    });
                }
            }
        }
        let not_before = cert.validity().not_before.timestamp();
        let not_after = cert.validity().not_after.timestamp();
        if now < not_before {
            return Err(CertProblem::NotYetValid {
                subject: certs::name_to_string(cert.subject()),
                not_before,
            });
        }
        if now > not_after {
            return Err(CertProblem::Expired {
                subject: certs::name_to_string(cert.subject()),
                not_after,
            });
        }
    }
    Ok(limit)
}

/// Why a signature did not verify.
pub(super) enum Signature {
    Bad,
    /// The probe's crypto (ring, through x509-parser) has no verifier for
    /// this algorithm or key size; OpenSSL has.
    Unsupported,
}

/// RSA keys above this many bits are beyond ring's verifiers.
const RING_MAX_RSA_BITS: usize = 8192;

/// Checks `signed`'s signature with `key`, telling "wrong" from "cannot check".
pub(super) fn verify_signature(
    key: &SubjectPublicKeyInfo<'_>,
    verify: impl FnOnce(&SubjectPublicKeyInfo<'_>) -> Result<(), X509Error>,
) -> Result<(), Signature> {
    if let Ok(PublicKey::RSA(rsa)) = key.parsed() {
        if certs::integer_bits(rsa.modulus) > RING_MAX_RSA_BITS {
            return Err(Signature::Unsupported);
        }
    }
    match verify(key) {
        Ok(()) => Ok(()),
        Err(X509Error::SignatureUnsupportedAlgorithm) => Err(Signature::Unsupported),
        Err(_) => Err(Signature::Bad),
    }
}

fn verify_signed_by(
    cert: &X509Certificate<'_>,
    key: &SubjectPublicKeyInfo<'_>,
) -> Result<(), Signature> {
    if !pss_salt_supported(cert) {
        return Err(Signature::Unsupported);
    }
    verify_signature(key, |k| cert.verify_signature(Some(k)))
}

/// ring verifies RSASSA-PSS only with a salt as long as the hash; OpenSSL
/// signs with the longest salt by default (`-sigopt rsa_padding_mode:pss`)
/// and verifies any.
fn pss_salt_supported(cert: &X509Certificate<'_>) -> bool {
    let alg = &cert.signature_algorithm;
    if alg.algorithm != x509_parser::oid_registry::OID_PKCS1_RSASSAPSS {
        return true;
    }
    let Some(params) = alg
        .parameters
        .as_ref()
        .and_then(|p| x509_parser::signature_algorithm::RsaSsaPssParams::try_from(p).ok())
    else {
        return false;
    };
    let hash_len = match params.hash_algorithm_oid().to_id_string().as_str() {
        "2.16.840.1.101.3.4.2.1" => 32,
        "2.16.840.1.101.3.4.2.2" => 48,
        "2.16.840.1.101.3.4.2.3" => 64,
        _ => return false,
    };
    params.salt_length() == hash_len
}

/// OpenSSL's check_ca(): may this certificate issue others?
fn may_act_as_ca(cert: &X509Certificate<'_>) -> bool {
    let key_usage = cert.key_usage().ok().flatten();
    if let Some(ku) = &key_usage {
        if !ku.value.key_cert_sign() {
            return false;
        }
    }
    match cert.basic_constraints() {
        Ok(Some(bc)) => return bc.value.ca,
        Ok(None) => {}
        Err(_) => return false,
    }
    // "V1_ROOT": a self-issued v1 certificate is taken as a CA.
    if cert.version().0 == 0 && self_issued(cert) {
        return true;
    }
    key_usage.is_some()
}

/// basicConstraints present with cA=TRUE, and keyUsage (if any) allows
/// certificate signing: OpenSSL's check_ca() == 1.
fn explicit_ca(cert: &X509Certificate<'_>) -> bool {
    let key_usage_ok = match cert.key_usage() {
        Ok(Some(ku)) => ku.value.key_cert_sign(),
        Ok(None) => true,
        Err(_) => false,
    };
    key_usage_ok && matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

/// EKU allows TLS server use (SGC OIDs count, as in OpenSSL's xku_reject).
fn eku_allows_server(cert: &X509Certificate<'_>) -> bool {
    match cert.extended_key_usage() {
        Ok(None) => true,
        Ok(Some(eku)) => {
            let v = eku.value;
            // anyExtendedKeyUsage alone is not enough (OpenSSL's xku_reject).
            v.server_auth
                || v.other.iter().any(|oid| {
                    let id = oid.to_id_string();
                    id == "2.16.840.1.113730.4.1" || id == "1.3.6.1.4.1.311.10.3.3"
                })
        }
        Err(_) => false,
    }
}

fn eku_names(cert: &X509Certificate<'_>) -> String {
    let Ok(Some(eku)) = cert.extended_key_usage() else {
        return "unreadable".to_string();
    };
    let v = eku.value;
    let mut names = Vec::new();
    for (set, name) in [
        (v.any, "anyExtendedKeyUsage"),
        (v.client_auth, "clientAuth"),
        (v.code_signing, "codeSigning"),
        (v.email_protection, "emailProtection"),
        (v.time_stamping, "timeStamping"),
        (v.ocsp_signing, "OCSPSigning"),
    ] {
        if set {
            names.push(name.to_string());
        }
    }
    names.extend(v.other.iter().map(|o| o.to_id_string()));
    names.join(", ")
}

/// Critical extensions, CA, purpose and path length, certificate by
/// certificate from the leaf up (OpenSSL check_chain_extensions).
fn check_extensions(nodes: &[&Node<'_>]) -> Result<(), CertProblem> {
    let mut intermediates_below = 0usize;
    for (depth, node) in nodes.iter().enumerate() {
        let Some(cert) = &node.cert else { continue };
        check_critical_extensions(cert)?;
        let subject = || certs::name_to_string(cert.subject());
        let is_top = depth == nodes.len() - 1;
        if depth == 0 {
            if !eku_allows_server(cert) {
                return Err(CertProblem::BadPurpose {
                    subject: subject(),
                    purpose: Purpose::LeafEku(eku_names(cert)),
                });
            }
            if let Ok(Some(ku)) = cert.key_usage() {
                let ku = ku.value;
                if !(ku.digital_signature() || ku.key_encipherment() || ku.key_agreement()) {
                    return Err(CertProblem::BadPurpose {
                        subject: subject(),
                        purpose: Purpose::LeafKeyUsage,
                    });
                }
            }
            continue;
        }
        // OpenSSL makes X509_V_FLAG_X509_STRICT implicit below the top of
        // the chain: an intermediate needs an explicit basicConstraints
        // cA=TRUE; only the top may be a v1 root or keyUsage-only CA.
        let ca = if is_top {
            may_act_as_ca(cert)
        } else {
            explicit_ca(cert)
        };
        if !ca {
            return Err(CertProblem::NotCa { subject: subject() });
        }
        if let Ok(Some(bc)) = cert.basic_constraints() {
            if let Some(limit) = bc.value.path_len_constraint {
                if intermediates_below > limit as usize {
                    return Err(CertProblem::PathLengthExceeded {
                        subject: subject(),
                        limit,
                    });
                }
            }
        }
        // libpq loads sslrootcert without trust settings, so OpenSSL checks
        // the root's purpose like any CA's (X509_TRUST_NO_SS_COMPAT).
        if !eku_allows_server(cert) {
            return Err(CertProblem::BadPurpose {
                subject: subject(),
                purpose: Purpose::CaEku(eku_names(cert)),
            });
        }
        if !self_issued(cert) {
            intermediates_below += 1;
        }
    }
    Ok(())
}

/// Extensions OpenSSL's verifier processes (X509_supported_extension); a
/// critical extension outside this list makes it refuse the certificate.
const HANDLED_EXTENSIONS: [&str; 15] = [
    "2.16.840.1.113730.1.1", // Netscape cert type
    "2.5.29.15",             // keyUsage
    "2.5.29.17",             // subjectAltName
    "2.5.29.19",             // basicConstraints
    "2.5.29.32",             // certificatePolicies
    "2.5.29.31",             // cRLDistributionPoints
    "2.5.29.37",             // extendedKeyUsage
    "1.3.6.1.5.5.7.1.7",     // RFC 3779 IP address blocks
    "1.3.6.1.5.5.7.1.8",     // RFC 3779 AS identifiers
    "1.3.6.1.5.5.7.48.1.5",  // OCSP no-check
    "2.5.29.36",             // policyConstraints
    "1.3.6.1.5.5.7.1.14",    // proxyCertInfo
    "2.5.29.30",             // nameConstraints
    "2.5.29.33",             // policyMappings
    "2.5.29.54",             // inhibitAnyPolicy
];

fn check_critical_extensions(cert: &X509Certificate<'_>) -> Result<(), CertProblem> {
    for ext in cert.extensions() {
        let oid = ext.oid.to_id_string();
        if ext.critical && !HANDLED_EXTENSIONS.contains(&oid.as_str()) {
            return Err(CertProblem::UnhandledCriticalExtension {
                subject: certs::name_to_string(cert.subject()),
                oid,
            });
        }
    }
    Ok(())
}

/// The leaf's names as name constraints see them (OpenSSL
/// NAME_CONSTRAINTS_check and _check_CN): dNSName and iPAddress SANs, and
/// host-name-like CNs when there is no dNSName SAN.
fn constrained_names<'a>(leaf: &'a X509Certificate<'a>) -> Vec<GeneralName<'a>> {
    let mut names: Vec<GeneralName<'a>> = match leaf.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter(|n| !matches!(n, GeneralName::DirectoryName(_)))
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    if !names.iter().any(|n| matches!(n, GeneralName::DNSName(_))) {
        names.extend(
            leaf.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .filter(|cn| looks_like_host_name(cn))
                .map(GeneralName::DNSName),
        );
    }
    names
}

/// OpenSSL checks a CN against DNS constraints only when it could be one.
fn looks_like_host_name(cn: &str) -> bool {
    cn.contains('.')
        && !cn.starts_with('.')
        && !cn.ends_with('.')
        && cn
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Every CA on the path constrains the leaf's names (RFC 5280 4.2.1.10):
/// a name of a constrained type must fall in a permitted subtree and in no
/// excluded one. Constraint types the probe does not evaluate (directory
/// names, e-mail, URI) fail closed when the leaf has names of that kind.
fn check_name_constraints(nodes: &[&Node<'_>]) -> Result<(), CertProblem> {
    let Some(leaf) = nodes.first().and_then(|n| n.cert.as_ref()) else {
        return Ok(());
    };
    let names = constrained_names(leaf);
    for node in nodes.iter().skip(1) {
        let Some(cert) = &node.cert else { continue };
        let constraints = match cert.name_constraints() {
            Ok(Some(nc)) => nc.value,
            Ok(None) => continue,
            Err(_) => {
                return Err(CertProblem::Malformed {
                    detail: format!(
                        "unreadable nameConstraints in \"{}\"",
                        certs::name_to_string(cert.subject())
                    ),
                })
            }
        };
        let violation = |name: &GeneralName<'_>, breach| CertProblem::NameConstraint {
            ca: certs::name_to_string(cert.subject()),
            name: general_name_text(name),
            breach,
        };
        let permitted = constraints.permitted_subtrees.as_deref().unwrap_or(&[]);
        let excluded = constraints.excluded_subtrees.as_deref().unwrap_or(&[]);
        if permitted
            .iter()
            .chain(excluded)
            .any(|t| matches!(t.base, GeneralName::DirectoryName(_)))
        {
            let subject = GeneralName::DirectoryName(leaf.subject().clone());
            return Err(violation(
                &subject,
                ConstraintBreach::DirectoryNameNotEvaluated,
            ));
        }
        for name in &names {
            let permitted_here: Vec<_> = permitted
                .iter()
                .filter(|t| same_kind(&t.base, name))
                .collect();
            let kind_evaluated =
                matches!(name, GeneralName::DNSName(_) | GeneralName::IPAddress(_));
            let constrained =
                !permitted_here.is_empty() || excluded.iter().any(|t| same_kind(&t.base, name));
            if constrained && !kind_evaluated {
                return Err(violation(name, ConstraintBreach::TypeNotEvaluated));
            }
            if !permitted_here.is_empty() && !permitted_here.iter().any(|t| within(name, &t.base)) {
                return Err(violation(name, ConstraintBreach::NotPermitted));
            }
            if excluded
                .iter()
                .any(|t| same_kind(&t.base, name) && within(name, &t.base))
            {
                return Err(violation(name, ConstraintBreach::Excluded));
            }
        }
    }
    Ok(())
}

fn same_kind(a: &GeneralName<'_>, b: &GeneralName<'_>) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// OpenSSL's nc_dns and nc_ip; other kinds never match.
fn within(name: &GeneralName<'_>, base: &GeneralName<'_>) -> bool {
    match (name, base) {
        (GeneralName::DNSName(name), GeneralName::DNSName(base)) => dns_within(name, base),
        (GeneralName::IPAddress(ip), GeneralName::IPAddress(net)) => {
            let (addr, mask) = net.split_at(net.len() / 2);
            net.len() == 2 * ip.len()
                && ip
                    .iter()
                    .zip(addr.iter().zip(mask))
                    .all(|(i, (a, m))| i & m == a & m)
        }
        _ => false,
    }
}

/// "example.com" covers itself and its subdomains; ".example.com" only
/// subdomains; "" everything. Case-insensitive.
pub(super) fn dns_within(name: &str, base: &str) -> bool {
    if base.is_empty() {
        return true;
    }
    let (name, base) = (name.as_bytes(), base.as_bytes());
    if name.len() < base.len() {
        return false;
    }
    let tail = &name[name.len() - base.len()..];
    let boundary =
        name.len() == base.len() || base[0] == b'.' || name[name.len() - base.len() - 1] == b'.';
    boundary && tail.eq_ignore_ascii_case(base)
}

fn general_name_text(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => s.to_string(),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
            16 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(bytes);
                std::net::Ipv6Addr::from(octets).to_string()
            }
            _ => crate::hex::lower(bytes, ":"),
        },
        GeneralName::DirectoryName(dn) => certs::name_to_string(dn),
        other => certs::general_name_kind(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{IssuerNotFound, Purpose, TrustSource};
    use crate::fixtures::pki::*;
    use crate::tls::trust_from_certificates;
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa,
        KeyPair, KeyUsagePurpose,
    };

    #[test]
    fn expired_leaf() {
        let ca = root("Test CA");
        let mut p = leaf_params(&["db.example.com"], Some("db.example.com"));
        p.not_after = rcgen::date_time_ymd(2024, 6, 1);
        let facts = judge(&[sign(p, &ca)], &trust(&[&ca]), "db.example.com");
        assert!(matches!(
            libpq_problem(&facts),
            CertProblem::Expired { subject, .. } if subject == "CN=db.example.com"
        ));
    }

    #[test]
    fn not_yet_valid_leaf() {
        let ca = root("Test CA");
        let mut p = leaf_params(&["db.example.com"], Some("db.example.com"));
        p.not_before = rcgen::date_time_ymd(2025, 6, 1);
        let facts = judge(&[sign(p, &ca)], &trust(&[&ca]), "db.example.com");
        assert!(matches!(
            libpq_problem(&facts),
            CertProblem::NotYetValid { subject, .. } if subject == "CN=db.example.com"
        ));
    }

    #[test]
    fn expired_ca() {
        let ca = CertifiedIssuer::self_signed(
            ca_params("Old CA", (2015, 1), (2024, 1)),
            KeyPair::generate().unwrap(),
        )
        .unwrap();
        let facts = judge(
            &[leaf(&["db.example.com"], None, &ca)],
            &trust(&[&ca]),
            "db.example.com",
        );
        assert!(matches!(
            libpq_problem(&facts),
            CertProblem::Expired { subject, .. } if subject == "CN=Old CA"
        ));
    }

    #[test]
    fn unknown_ca() {
        let ca = root("Test CA");
        let other = root("Other CA");
        let facts = judge(
            &[leaf(&["db.example.com"], None, &ca)],
            &trust(&[&other]),
            "db.example.com",
        );
        assert_eq!(
            libpq_problem(&facts),
            CertProblem::UnknownIssuer(IssuerNotFound::Issuer {
                issuer: "CN=Test CA".to_string(),
                trust: TrustSource::File,
            })
        );
        assert_eq!(facts.presented.len(), 1);
    }

    #[test]
    fn same_name_other_key_is_a_bad_signature() {
        let ca = root("Test CA");
        let impostor = root("Test CA");
        let facts = judge(
            &[leaf(&["db.example.com"], None, &ca)],
            &trust(&[&impostor]),
            "db.example.com",
        );
        assert!(matches!(
            libpq_problem(&facts),
            CertProblem::BadSignature { .. }
        ));
    }

    #[test]
    fn intermediate_sent_root_trusted() {
        let ca = root("Root CA");
        let int = intermediate("Intermediate", |_| {}, &ca);
        let ee = leaf(&["db.example.com"], None, &int);
        let store = trust(&[&ca]);

        let facts = judge(&[ee.clone(), int.der().clone()], &store, "db.example.com");
        assert_eq!(facts.libpq, Some(Ok(())));
        assert_eq!(facts.strict, Some(Ok(())));
        assert_eq!(facts.presented.len(), 2);
        assert_eq!(
            facts.anchor.map(|a| a.subject).as_deref(),
            Some("CN=Root CA")
        );

        // Server order does not matter, and an extra copy of the root is harmless.
        let facts = judge(
            &[ee.clone(), ca.der().clone(), int.der().clone()],
            &store,
            "db.example.com",
        );
        assert_eq!(facts.libpq, Some(Ok(())));

        // Without the intermediate there is no path.
        let facts = judge(&[ee], &store, "db.example.com");
        assert_eq!(
            libpq_problem(&facts),
            CertProblem::UnknownIssuer(IssuerNotFound::Issuer {
                issuer: "CN=Intermediate".to_string(),
                trust: TrustSource::File,
            })
        );
    }

    #[test]
    fn only_intermediate_trusted_is_not_enough_for_openssl() {
        let ca = root("Root CA");
        let int = intermediate("Intermediate", |_| {}, &ca);
        let ee = leaf(&["db.example.com"], None, &int);
        let facts = judge(&[ee, int.der().clone()], &trust(&[&int]), "db.example.com");
        assert!(matches!(
            libpq_problem(&facts),
            CertProblem::UnknownIssuer(why) if why.to_string().contains("self-signed root")
        ));
    }

    #[test]
    fn intermediate_without_ca_flag_rejected() {
        let ca = root("Root CA");
        for tweak in [
            (|p: &mut CertificateParams| p.is_ca = IsCa::ExplicitNoCa)
                as fn(&mut CertificateParams),
            |p: &mut CertificateParams| {
                p.is_ca = IsCa::NoCa;
                p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            },
        ] {
            let int = intermediate("Intermediate", tweak, &ca);
            let ee = leaf(&["db.example.com"], None, &int);
            let facts = judge(&[ee, int.der().clone()], &trust(&[&ca]), "db.example.com");
            assert_eq!(
                libpq_problem(&facts),
                CertProblem::NotCa {
                    subject: "CN=Intermediate".to_string()
                }
            );
        }
    }

    #[test]
    fn path_length_constraint_honoured() {
        let mut p = ca_params("Root CA", (2020, 1), (2035, 1));
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        let int = intermediate("Intermediate", |_| {}, &ca);
        let int2 = intermediate("Intermediate 2", |_| {}, &int);
        let ee = leaf(&["db.example.com"], None, &int2);
        let facts = judge(
            &[ee, int2.der().clone(), int.der().clone()],
            &trust(&[&ca]),
            "db.example.com",
        );
        assert_eq!(
            libpq_problem(&facts),
            CertProblem::PathLengthExceeded {
                subject: "CN=Root CA".to_string(),
                limit: 0,
            }
        );
    }

    /// OpenSSL's SSL server purpose wants serverAuth itself:
    /// anyExtendedKeyUsage alone is "unsupported certificate purpose", on
    /// the leaf and on a CA.
    #[test]
    fn any_extended_key_usage_alone_is_not_server_auth() {
        let ca = root("Root CA");
        let mut p = leaf_params(&["db.example.com"], None);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::Any];
        let facts = judge(&[sign(p, &ca)], &trust(&[&ca]), "db.example.com");
        assert!(matches!(
            libpq_problem(&facts),
            CertProblem::BadPurpose { purpose: Purpose::LeafEku(has), .. } if has == "anyExtendedKeyUsage"
        ));
        let int = intermediate(
            "Any Int",
            |p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::Any],
            &ca,
        );
        let facts = judge(
            &[leaf(&["db.example.com"], None, &int), int.der().clone()],
            &trust(&[&ca]),
            "db.example.com",
        );
        assert!(matches!(
            libpq_problem(&facts),
            CertProblem::BadPurpose { purpose: Purpose::CaEku(_), subject } if subject == "CN=Any Int"
        ));
    }

    /// OpenSSL takes a same-named certificate as the issuer only when its
    /// subjectKeyIdentifier is the authorityKeyIdentifier, whatever the
    /// signature: a mismatch is "unable to get local issuer certificate".
    #[test]
    fn authority_key_id_must_match_the_issuer() {
        let ca = root("Test CA");
        let mut p = leaf_params(&["db.example.com"], None);
        p.use_authority_key_identifier_extension = true;
        let good = sign(p.clone(), &ca);
        assert_eq!(
            judge(&[good], &trust(&[&ca]), "db.example.com").libpq,
            Some(Ok(()))
        );
        // The same CA key and name, but a subjectKeyIdentifier of its own.
        let mut other = ca_params("Test CA", (2020, 1), (2035, 1));
        other.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(vec![7; 20]);
        let ca_key = KeyPair::from_pem(&ca.key().serialize_pem()).unwrap();
        let reissued = CertifiedIssuer::self_signed(other, ca_key).unwrap();
        let leaf = sign(p, &ca);
        let facts = judge(&[leaf], &trust(&[&reissued]), "db.example.com");
        assert!(matches!(
            libpq_problem(&facts),
            CertProblem::UnknownIssuer(IssuerNotFound::KeyIdMismatch { .. })
        ));
    }

    /// Up to 100 intermediates pass (OpenSSL's default depth); 101 do not.
    #[test]
    fn chain_length_follows_openssl_depth() {
        let ca = root("Root CA");
        let mut issuers = vec![ca];
        for i in 0..101 {
            let next = intermediate(&format!("Int {i}"), |_| {}, issuers.last().unwrap());
            issuers.push(next);
        }
        let chain_of = |n: usize| {
            let mut chain = vec![leaf(&["db.example.com"], None, &issuers[n])];
            chain.extend((1..=n).rev().map(|i| issuers[i].der().clone()));
            chain
        };
        let store = trust(&[&issuers[0]]);
        assert_eq!(
            judge(&chain_of(100), &store, "db.example.com").libpq,
            Some(Ok(()))
        );
        assert_eq!(
            libpq_problem(&judge(&chain_of(101), &store, "db.example.com")),
            CertProblem::ChainTooLong(MAX_INTERMEDIATES)
        );
    }

    /// A server sending many same-named CAs, and a trust store of many
    /// same-named CAs, end in a verdict within the budget, fast.
    #[test]
    fn same_named_floods_are_bounded() {
        let ca = root("Flood CA");
        let ee = leaf(&["db.example.com"], None, &ca);
        let flood: Vec<_> = (0..150).map(|_| root("Flood CA")).collect();
        let mut chain = vec![ee.clone()];
        chain.extend(flood.iter().map(|c| c.der().clone()));
        let started = std::time::Instant::now();
        let facts = judge(&chain, &trust(&[&ca]), "db.example.com");
        assert_eq!(facts.libpq, Some(Ok(())));
        let mut anchors: Vec<&Issuer> = flood.iter().collect();
        anchors.push(&ca);
        let facts = judge(&[ee], &trust(&anchors), "db.example.com");
        // The first same-named anchor is taken, as OpenSSL takes it
        // (no key identifiers here): its signature then fails.
        assert!(matches!(
            libpq_problem(&facts),
            CertProblem::BadSignature { .. }
        ));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn budget_counts_candidates_and_signatures() {
        let mut budget = Budget::default();
        for _ in 0..MAX_SIGNATURES {
            budget.signature().unwrap();
        }
        assert!(matches!(
            budget.signature(),
            Err(CertProblem::BudgetExhausted { signatures, .. }) if signatures == MAX_SIGNATURES + 1
        ));
        let mut budget = Budget::default();
        for _ in 0..MAX_CANDIDATES {
            budget.candidate().unwrap();
        }
        assert!(budget.candidate().is_err());
    }

    #[test]
    fn client_auth_only_leaf_rejected() {
        let ca = root("Test CA");
        let mut p = leaf_params(&["db.example.com"], None);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let facts = judge(&[sign(p, &ca)], &trust(&[&ca]), "db.example.com");
        assert!(matches!(
            libpq_problem(&facts),
            CertProblem::BadPurpose { purpose, .. } if purpose.to_string().contains("clientAuth")
        ));
    }

    #[test]
    fn trusted_self_signed_leaf_anchors_itself() {
        let mut p = leaf_params(&["db.example.com"], Some("db.example.com"));
        p.not_before = rcgen::date_time_ymd(2024, 1, 1);
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap().der().clone();
        let store = trust_from_certificates(vec![cert.clone()]).unwrap();
        let facts = judge(std::slice::from_ref(&cert), &store, "db.example.com");
        assert_eq!(facts.libpq, Some(Ok(())));

        let other = root("Test CA");
        let facts = judge(&[cert], &trust(&[&other]), "db.example.com");
        assert!(matches!(
            libpq_problem(&facts),
            CertProblem::UnknownIssuer(why) if why.to_string().starts_with("self-signed certificate")
        ));
    }

    /// OpenSSL makes strict CA checks implicit below the top of the chain: an
    /// intermediate with keyCertSign but no basicConstraints is not a CA.
    #[test]
    fn intermediate_needs_explicit_basic_constraints() {
        let ca = root("Root CA");
        let int = intermediate(
            "Intermediate",
            |p| {
                p.is_ca = IsCa::NoCa;
                p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
            },
            &ca,
        );
        let ee = leaf(&["db.example.com"], None, &int);
        let facts = judge(&[ee, int.der().clone()], &trust(&[&ca]), "db.example.com");
        assert_eq!(
            libpq_problem(&facts),
            CertProblem::NotCa {
                subject: "CN=Intermediate".to_string()
            }
        );
    }

    /// libpq loads sslrootcert without trust settings: the root's own
    /// extendedKeyUsage must allow TLS servers too.
    #[test]
    fn root_with_client_only_purpose_is_rejected() {
        let mut p = ca_params("Client-only Root", (2020, 1), (2035, 1));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        let facts = judge(
            &[leaf(&["db.example.com"], None, &ca)],
            &trust(&[&ca]),
            "db.example.com",
        );
        assert!(matches!(
            libpq_problem(&facts),
            CertProblem::BadPurpose { subject, .. } if subject == "CN=Client-only Root"
        ));
    }

    #[test]
    fn unhandled_critical_extension_is_rejected_non_critical_ignored() {
        let ca = root("Test CA");
        for critical in [true, false] {
            let mut p = leaf_params(&["db.example.com"], None);
            let mut ext = rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 99999, 1],
                vec![0x05, 0x00],
            );
            ext.set_criticality(critical);
            p.custom_extensions.push(ext);
            let facts = judge(&[sign(p, &ca)], &trust(&[&ca]), "db.example.com");
            if critical {
                assert_eq!(
                    libpq_problem(&facts),
                    CertProblem::UnhandledCriticalExtension {
                        subject: "CN=rcgen self signed cert".to_string(),
                        oid: "1.3.6.1.4.1.99999.1".to_string()
                    }
                );
            } else {
                assert_eq!(facts.libpq, Some(Ok(())));
            }
        }
    }

    /// A CA limited to one domain (and one network) cannot vouch for others,
    /// whether the name is in a SAN or only in the CN.
    #[test]
    fn name_constraints_bind_the_leaf() {
        use rcgen::{CidrSubnet, GeneralSubtree, NameConstraints};
        let ca = root("Root CA");
        let int = intermediate(
            "Constrained",
            |p| {
                p.name_constraints = Some(NameConstraints {
                    permitted_subtrees: vec![
                        GeneralSubtree::DnsName("allowed.example".into()),
                        GeneralSubtree::IpAddress(CidrSubnet::V4([10, 0, 0, 0], [255, 0, 0, 0])),
                    ],
                    excluded_subtrees: vec![GeneralSubtree::DnsName(".bad.allowed.example".into())],
                })
            },
            &ca,
        );
        let store = trust(&[&ca]);
        let judge_leaf = |sans: &[&str], cn: Option<&str>, host: &str| {
            judge(&[leaf(sans, cn, &int), int.der().clone()], &store, host)
        };
        assert_eq!(
            judge_leaf(
                &["db.allowed.example", "10.1.2.3"],
                None,
                "db.allowed.example"
            )
            .libpq,
            Some(Ok(()))
        );
        for (sans, cn, host, name) in [
            (
                &["db.evil.example"][..],
                None,
                "db.evil.example",
                "db.evil.example",
            ),
            (
                &["x.bad.allowed.example"][..],
                None,
                "x.bad.allowed.example",
                "x.bad.allowed.example",
            ),
            (
                &["db.allowed.example", "127.0.0.1"][..],
                None,
                "db.allowed.example",
                "127.0.0.1",
            ),
            (
                &[][..],
                Some("db.evil.example"),
                "db.evil.example",
                "db.evil.example",
            ),
        ] {
            match libpq_problem(&judge_leaf(sans, cn, host)) {
                CertProblem::NameConstraint { ca, name: got, .. } => {
                    assert_eq!(ca, "CN=Constrained");
                    assert_eq!(got, name);
                }
                other => panic!("{sans:?} {cn:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn dns_constraint_matching_follows_openssl() {
        assert!(dns_within("example.com", "example.com"));
        assert!(dns_within("a.Example.COM", "example.com"));
        assert!(!dns_within("badexample.com", "example.com"));
        assert!(dns_within("a.example.com", ".example.com"));
        assert!(!dns_within("example.com", ".example.com"));
        assert!(dns_within("anything", ""));
    }
}
