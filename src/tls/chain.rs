//! Chain verification as OpenSSL performs it for libpq (`verify-ca`).
//!
//! webpki cannot stand in here: it refuses X.509 v1 certificates, which
//! OpenSSL accepts (v1 roots even act as CAs). So the path is built and
//! checked with x509-parser, following OpenSSL's order: build the chain
//! (trusted store first), then critical extensions, CA and purpose checks,
//! the CAs' name constraints on the leaf, then validity from the root down.
//! Only the first failure is reported, as libpq reports only the first.
//! Not modelled: CRLs (libpq checks them only with sslcrl, which the probe
//! does not take), policy constraints, and name constraints applied to
//! intermediates' own names.

use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Name};

use crate::certs;
use crate::facts::{CertProblem, ConstraintBreach, IssuerNotFound, Purpose, TrustSource};

/// OpenSSL's default verify depth is far larger; real chains are short.
const MAX_DEPTH: usize = 16;

/// One trusted certificate, or a bare webpki-roots anchor (name + key).
#[derive(Debug, Clone)]
pub(crate) struct Anchor {
    /// DER Name including its SEQUENCE header.
    pub subject: Vec<u8>,
    /// DER SubjectPublicKeyInfo including its SEQUENCE header.
    pub spki: Vec<u8>,
    /// The full certificate when it came from a PEM file.
    pub cert: Option<CertificateDer<'static>>,
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

/// Verifies `leaf` + `intermediates` against `anchors` at `now` (Unix
/// seconds); on success returns the index of the anchor the path ends at.
pub(crate) fn verify(
    leaf: &[u8],
    intermediates: &[&[u8]],
    anchors: &[Anchor],
    source: TrustSource,
    now: i64,
) -> Result<usize, CertProblem> {
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
    // Anchors that do not parse cannot match anything; they are skipped.
    let trusted: Vec<Option<Node<'_>>> = anchors
        .iter()
        .map(|a| {
            let cert = match &a.cert {
                Some(der) => Some(certs::parse(der).ok()?),
                None => None,
            };
            Some(Node {
                name: certs::parse_name(&a.subject)?,
                spki: certs::parse_spki(&a.spki)?,
                cert,
            })
        })
        .collect();

    let path = build_path(&presented, &trusted, anchors, source)?;
    let nodes: Vec<&Node<'_>> = path
        .iter()
        .filter_map(|link| match *link {
            Link::Presented(i) => presented.get(i),
            Link::Anchor(i) => trusted.get(i).and_then(Option::as_ref),
        })
        .collect();
    check_critical_extensions(&nodes)?;
    check_extensions(&nodes)?;
    check_name_constraints(&nodes)?;
    check_validity(&nodes, now)?;
    match path.last() {
        Some(Link::Anchor(i)) => Ok(*i),
        _ => Err(CertProblem::UnknownIssuer(IssuerNotFound::NoTrustedEnd)),
    }
}

fn self_issued(cert: &X509Certificate<'_>) -> bool {
    certs::names_match(cert.subject(), cert.issuer())
}

/// Follows issuers from the leaf, preferring trusted certificates (OpenSSL's
/// X509_V_FLAG_TRUSTED_FIRST default) until a self-issued trusted
/// certificate or a bare system anchor ends the path.
fn build_path(
    presented: &[Node<'_>],
    trusted: &[Option<Node<'_>>],
    anchors: &[Anchor],
    source: TrustSource,
) -> Result<Vec<Link>, CertProblem> {
    let mut path = vec![Link::Presented(0)];
    while let Some(&current) = path.last() {
        let node = match current {
            Link::Presented(i) => presented.get(i),
            Link::Anchor(i) => trusted.get(i).and_then(Option::as_ref),
        };
        let Some(node) = node else { break };
        let Some(cert) = &node.cert else {
            // A bare system anchor: trusted by definition.
            return Ok(path);
        };
        let is_self_issued = self_issued(cert);
        if let Link::Anchor(_) = current {
            if is_self_issued {
                return Ok(path);
            }
        } else if is_self_issued {
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
        if path.len() > MAX_DEPTH {
            return Err(CertProblem::UnknownIssuer(IssuerNotFound::TooLong(
                MAX_DEPTH,
            )));
        }

        let mut name_matched = false;
        let mut next = None;
        let trusted_candidates = trusted
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (Link::Anchor(i), n)));
        let presented_candidates = presented
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, n)| (Link::Presented(i), n));
        for (link, candidate) in trusted_candidates.chain(presented_candidates) {
            if path.contains(&link) || !certs::names_match(&candidate.name, cert.issuer()) {
                continue;
            }
            name_matched = true;
            if cert.verify_signature(Some(&candidate.spki)).is_ok() {
                next = Some(link);
                break;
            }
        }
        match next {
            Some(link) => path.push(link),
            None if name_matched => {
                return Err(CertProblem::BadSignature {
                    subject: certs::name_to_string(cert.subject()),
                })
            }
            None => return Err(unknown_issuer(cert, current, is_self_issued, source)),
        }
    }
    Err(CertProblem::UnknownIssuer(IssuerNotFound::NoTrustedEnd))
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
            v.any
                || v.server_auth
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

/// CA, path length and purpose checks (OpenSSL check_chain_extensions).
fn check_extensions(nodes: &[&Node<'_>]) -> Result<(), CertProblem> {
    let mut intermediates_below = 0usize;
    for (depth, node) in nodes.iter().enumerate() {
        let Some(cert) = &node.cert else { continue };
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
                    return Err(CertProblem::NotCa { subject: subject() });
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

fn check_critical_extensions(nodes: &[&Node<'_>]) -> Result<(), CertProblem> {
    for node in nodes {
        let Some(cert) = &node.cert else { continue };
        for ext in cert.extensions() {
            let oid = ext.oid.to_id_string();
            if ext.critical && !HANDLED_EXTENSIONS.contains(&oid.as_str()) {
                return Err(CertProblem::UnhandledCriticalExtension {
                    subject: certs::name_to_string(cert.subject()),
                    oid,
                });
            }
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
        other => format!("{other:?}"),
    }
}

/// Validity windows from the top of the chain down, as OpenSSL walks them.
fn check_validity(nodes: &[&Node<'_>], now: i64) -> Result<(), CertProblem> {
    for node in nodes.iter().rev() {
        let Some(cert) = &node.cert else { continue };
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{IssuerNotFound, TrustSource};
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
            CertProblem::NotCa {
                subject: "CN=Root CA".to_string()
            }
        );
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
