//! Pure functions from certificate DER to [`CertFacts`].
//!
//! Uses x509-parser rather than webpki because the certificates worth
//! reporting on include X.509 v1 ones, which webpki refuses to parse.

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{self, Oid};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::{AttributeTypeAndValue, SubjectPublicKeyInfo, X509Name};

use crate::facts::{CertFacts, EndPointHash, ProbeLimit};
use crate::hex;

/// Describes one DER certificate; Err with a reason when it does not parse.
pub fn describe(der: &[u8]) -> Result<CertFacts, NotCertificate> {
    let cert = parse(der)?;
    let (san_dns, san_ip) = san_names(&cert);
    Ok(CertFacts {
        version: cert.version().0 + 1,
        subject: name_to_string(cert.subject()),
        issuer: name_to_string(cert.issuer()),
        serial: hex::lower(cert.raw_serial(), ":"),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        common_names: common_names(cert.subject()),
        san_dns,
        san_ip,
        key: key_description(cert.public_key()),
        signature_algorithm: signature_algorithm(&cert).map_or_else(
            || oid_name("", &cert.signature_algorithm.algorithm),
            |alg| alg.name.to_string(),
        ),
        is_ca: cert.is_ca(),
        self_signed: self_signed(&cert),
        sha256_fingerprint: hex::upper(
            ring::digest::digest(&ring::digest::SHA256, der).as_ref(),
            ":",
        ),
        end_point_hash: end_point_hash(&cert),
    })
}

/// Self-issued with no key identifier saying otherwise, as OpenSSL's
/// X509_self_signed decides without checking the signature: a report
/// fact, so a server sending many certificates costs no signature checks.
fn self_signed(cert: &X509Certificate<'_>) -> bool {
    use x509_parser::extensions::ParsedExtension;
    if !names_match(cert.subject(), cert.issuer()) {
        return false;
    }
    let mut ski = None;
    let mut aki = None;
    for ext in cert.iter_extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => ski = Some(id.0),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = a.key_identifier.as_ref().map(|k| k.0)
            }
            _ => {}
        }
    }
    match (ski, aki) {
        (Some(s), Some(a)) => s == a,
        _ => true,
    }
}

/// Parses one certificate, naming the parser's complaint on failure.
/// DER that x509-parser does not read as a certificate, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid X.509 certificate: {0}")]
pub struct NotCertificate(String);

pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, NotCertificate> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(|e| NotCertificate(e.to_string()))
}

/// Parses a DER Name (with its SEQUENCE header), as webpki trust anchors hold them.
pub(crate) fn parse_name(der: &[u8]) -> Option<X509Name<'_>> {
    X509Name::from_der(der).ok().map(|(_, name)| name)
}

/// Parses a DER SubjectPublicKeyInfo (with its SEQUENCE header).
pub(crate) fn parse_spki(der: &[u8]) -> Option<SubjectPublicKeyInfo<'_>> {
    SubjectPublicKeyInfo::from_der(der)
        .ok()
        .map(|(_, spki)| spki)
}

/// dNSName and iPAddress SAN entries in text form, in certificate order.
fn san_names(cert: &X509Certificate<'_>) -> (Vec<String>, Vec<String>) {
    let mut dns = Vec::new();
    let mut ip = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(s) => dns.push((*s).to_string()),
                GeneralName::IPAddress(bytes) => ip.push(ip_to_string(bytes)),
                _ => {}
            }
        }
    }
    (dns, ip)
}

/// IPv4/IPv6 text form; other lengths (invalid in a certificate) as hex.
pub(crate) fn ip_to_string(bytes: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        std::net::Ipv4Addr::from(v4).to_string()
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        std::net::Ipv6Addr::from(v6).to_string()
    } else {
        format!(
            "invalid IP address ({} bytes: {})",
            bytes.len(),
            hex::lower(bytes, ":")
        )
    }
}

fn common_names(name: &X509Name<'_>) -> Vec<String> {
    name.iter_common_name().map(attr_text).collect()
}

/// The attribute value as text; non-string types (e.g. BMPString) lossily.
pub(crate) fn attr_text(attr: &AttributeTypeAndValue<'_>) -> String {
    match attr.as_str() {
        Ok(s) => s.to_string(),
        Err(_) => String::from_utf8_lossy(attr.as_slice()).into_owned(),
    }
}

/// RFC 4514 string: RDNs last-to-first, "," between RDNs, "+" inside one.
pub(crate) fn name_to_string(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let value = match attr.as_str() {
                        Ok(s) => escape_rfc4514(s),
                        Err(_) => format!("#{}", hex::lower(attr.attr_value().data, "")),
                    };
                    format!("{}={}", attribute_short_name(attr.attr_type()), value)
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn attribute_short_name(oid: &Oid<'_>) -> String {
    let known = match oid.to_id_string().as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => "",
    };
    oid_name(known, oid)
}

/// Our short name when we have one, else the OID registry's, else dotted form.
fn oid_name(known: &str, oid: &x509_parser::der_parser::oid::Oid<'_>) -> String {
    if !known.is_empty() {
        return known.to_string();
    }
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map(str::to_string)
        .unwrap_or_else(|_| oid.to_id_string())
}

fn escape_rfc4514(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if c == '\0' {
            out.push_str("\\00");
        } else {
            if special {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// A byte string equal for two names exactly when [`names_match`] says
/// they match: attribute types and canonical values, RDN by RDN. Lets a
/// large trust store be searched by comparing bytes.
pub(crate) fn name_key(name: &X509Name<'_>) -> Vec<u8> {
    let mut key = Vec::new();
    for rdn in name.iter_rdn() {
        key.push(0x01);
        for attr in rdn.iter() {
            key.push(0x02);
            key.extend_from_slice(attr.attr_type().as_bytes());
            key.push(0x03);
            match attr.as_str() {
                Ok(s) => {
                    key.push(b's');
                    key.extend_from_slice(canonical(s).as_bytes());
                }
                Err(_) => {
                    key.push(b'b');
                    key.extend_from_slice(attr.attr_value().data);
                }
            }
            key.push(0x04);
        }
    }
    key
}

/// What kind of name a GeneralName is, for text that must not show Debug output.
pub(crate) fn general_name_kind(name: &GeneralName<'_>) -> &'static str {
    match name {
        GeneralName::OtherName(..) => "otherName",
        GeneralName::RFC822Name(_) => "rfc822Name (e-mail)",
        GeneralName::DNSName(_) => "dNSName",
        GeneralName::X400Address(_) => "x400Address",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::EDIPartyName(_) => "ediPartyName",
        GeneralName::URI(_) => "uniformResourceIdentifier",
        GeneralName::IPAddress(_) => "iPAddress",
        GeneralName::RegisteredID(_) => "registeredID",
        GeneralName::Invalid(..) => "an undecodable name",
    }
}

/// Name equality as OpenSSL's X509_NAME_cmp sees it after canonicalisation:
/// identical DER, or the same attributes with string values equal ignoring
/// ASCII case and runs of whitespace.
pub(crate) fn names_match(a: &X509Name<'_>, b: &X509Name<'_>) -> bool {
    if a.as_raw() == b.as_raw() {
        return true;
    }
    let ra: Vec<_> = a.iter_rdn().collect();
    let rb: Vec<_> = b.iter_rdn().collect();
    ra.len() == rb.len()
        && ra.iter().zip(rb.iter()).all(|(x, y)| {
            let xa: Vec<_> = x.iter().collect();
            let ya: Vec<_> = y.iter().collect();
            xa.len() == ya.len()
                && xa.iter().zip(ya.iter()).all(|(p, q)| {
                    p.attr_type() == q.attr_type()
                        && match (p.as_str(), q.as_str()) {
                            (Ok(s), Ok(t)) => canonical(s) == canonical(t),
                            _ => p.attr_value().data == q.attr_value().data,
                        }
                })
        })
}

fn canonical(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
}

/// "RSA 2048", "EC P-256", "Ed25519", ... from the SubjectPublicKeyInfo.
pub(crate) fn key_description(spki: &SubjectPublicKeyInfo<'_>) -> String {
    let alg = &spki.algorithm.algorithm;
    if *alg == oid_registry::OID_PKCS1_RSAENCRYPTION || *alg == oid_registry::OID_PKCS1_RSASSAPSS {
        let label = if *alg == oid_registry::OID_PKCS1_RSAENCRYPTION {
            "RSA"
        } else {
            "RSA-PSS"
        };
        return match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => format!("{label} {}", integer_bits(rsa.modulus)),
            _ => label.to_string(),
        };
    }
    if *alg == oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        return match curve.map(|c| c.to_id_string()).as_deref() {
            Some("1.2.840.10045.3.1.7") => "EC P-256".to_string(),
            Some("1.3.132.0.34") => "EC P-384".to_string(),
            Some("1.3.132.0.35") => "EC P-521".to_string(),
            Some(other) => format!("EC {other}"),
            None => "EC".to_string(),
        };
    }
    match alg.to_id_string().as_str() {
        "1.3.101.112" => "Ed25519".to_string(),
        "1.3.101.113" => "Ed448".to_string(),
        "1.2.840.10040.4.1" => "DSA".to_string(),
        other => format!("unknown key type {other}"),
    }
}

/// Why the probe's crypto provider (ring) cannot check TLS handshake
/// signatures made with this key, when it cannot: RSA keys over 8192 bits,
/// RSA-PSS-only keys, EC curves other than P-256 and P-384, Ed448, DSA.
/// OpenSSL, so libpq, handles all of them.
pub(crate) fn handshake_limit(spki: &SubjectPublicKeyInfo<'_>) -> Option<ProbeLimit> {
    let alg = &spki.algorithm.algorithm;
    let supported = if *alg == oid_registry::OID_PKCS1_RSAENCRYPTION {
        matches!(spki.parsed(), Ok(PublicKey::RSA(rsa)) if integer_bits(rsa.modulus) <= 8192)
    } else if *alg == oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY {
        matches!(key_description(spki).as_str(), "EC P-256" | "EC P-384")
    } else {
        alg.to_id_string() == "1.3.101.112"
    };
    (!supported).then(|| ProbeLimit::HandshakeKey {
        key: key_description(spki),
    })
}

/// Bit length of a big-endian unsigned integer (leading zero bytes ignored).
pub(crate) fn integer_bits(bytes: &[u8]) -> usize {
    let trimmed: &[u8] = match bytes.iter().position(|b| *b != 0) {
        Some(i) => &bytes[i..],
        None => return 0,
    };
    (trimmed.len() - 1) * 8 + (8 - trimmed[0].leading_zeros() as usize)
}

/// A certificate signature algorithm, as the probe needs to know it.
#[derive(Debug)]
pub struct SignatureAlgorithm {
    pub oid: &'static str,
    /// OpenSSL's name.
    pub name: &'static str,
    /// Signed over SHA-1 or MD5, which OpenSSL 3 rates below security
    /// level 1 (63 and 39 bits): refused under Debian's default level 2.
    pub weak_digest: bool,
    /// The hash of `tls-server-end-point` channel binding; RSA-PSS's
    /// depends on its parameters (see [`end_point_hash`]).
    pub end_point_hash: EndPointHash,
}

const fn alg(
    oid: &'static str,
    name: &'static str,
    weak_digest: bool,
    end_point_hash: EndPointHash,
) -> SignatureAlgorithm {
    SignatureAlgorithm {
        oid,
        name,
        weak_digest,
        end_point_hash,
    }
}

/// The one table of signature algorithms.
const SIGNATURE_ALGORITHMS: &[SignatureAlgorithm] = &[
    alg(
        "1.2.840.113549.1.1.4",
        "md5WithRSAEncryption",
        true,
        EndPointHash::Sha256,
    ),
    alg(
        "1.2.840.113549.1.1.5",
        "sha1WithRSAEncryption",
        true,
        EndPointHash::Sha256,
    ),
    alg(
        "1.2.840.113549.1.1.10",
        "rsassaPss",
        false,
        EndPointHash::Unknown,
    ),
    alg(
        "1.2.840.113549.1.1.11",
        "sha256WithRSAEncryption",
        false,
        EndPointHash::Sha256,
    ),
    alg(
        "1.2.840.113549.1.1.12",
        "sha384WithRSAEncryption",
        false,
        EndPointHash::Sha384,
    ),
    alg(
        "1.2.840.113549.1.1.13",
        "sha512WithRSAEncryption",
        false,
        EndPointHash::Sha512,
    ),
    alg(
        "1.2.840.10045.4.1",
        "ecdsa-with-SHA1",
        true,
        EndPointHash::Sha256,
    ),
    alg(
        "1.2.840.10045.4.3.2",
        "ecdsa-with-SHA256",
        false,
        EndPointHash::Sha256,
    ),
    alg(
        "1.2.840.10045.4.3.3",
        "ecdsa-with-SHA384",
        false,
        EndPointHash::Sha384,
    ),
    alg(
        "1.2.840.10045.4.3.4",
        "ecdsa-with-SHA512",
        false,
        EndPointHash::Sha512,
    ),
    alg(
        "1.2.840.10040.4.3",
        "dsa-with-sha1",
        true,
        EndPointHash::Sha256,
    ),
    alg("1.3.101.112", "Ed25519", false, EndPointHash::NoDigest),
    alg("1.3.101.113", "Ed448", false, EndPointHash::NoDigest),
];

/// What the probe knows of `cert`'s signature algorithm.
pub fn signature_algorithm(cert: &X509Certificate<'_>) -> Option<&'static SignatureAlgorithm> {
    let oid = cert.signature_algorithm.algorithm.to_id_string();
    SIGNATURE_ALGORITHMS.iter().find(|a| a.oid == oid)
}

/// How channel binding hashes `cert`, as libpq 15+ and the server do
/// (OpenSSL's X509_get_signature_info, which reads RSA-PSS's parameters).
pub fn end_point_hash(cert: &X509Certificate<'_>) -> EndPointHash {
    use x509_parser::signature_algorithm::SignatureAlgorithm as Alg;
    if let Ok(Alg::RSASSA_PSS(params)) = Alg::try_from(&cert.signature_algorithm) {
        return match params.hash_algorithm_oid().to_id_string().as_str() {
            // SHA-1, the default, is raised to SHA-256 as for PKCS#1.
            "1.3.14.3.2.26" | "2.16.840.1.101.3.4.2.1" => EndPointHash::Sha256,
            "2.16.840.1.101.3.4.2.2" => EndPointHash::Sha384,
            "2.16.840.1.101.3.4.2.3" => EndPointHash::Sha512,
            _ => EndPointHash::Unknown,
        };
    }
    signature_algorithm(cert).map_or(EndPointHash::Unknown, |a| a.end_point_hash)
}

/// The digest to compute an end-point hash with, where there is one.
pub fn end_point_digest(hash: EndPointHash) -> Option<&'static ring::digest::Algorithm> {
    match hash {
        EndPointHash::Sha256 => Some(&ring::digest::SHA256),
        EndPointHash::Sha384 => Some(&ring::digest::SHA384),
        EndPointHash::Sha512 => Some(&ring::digest::SHA512),
        EndPointHash::NoDigest | EndPointHash::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType,
        SerialNumber,
    };

    #[test]
    fn describes_v3_leaf() {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Test CA");
        ca_params
            .distinguished_name
            .push(DnType::OrganizationName, "Acme, Inc");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();

        let mut params =
            CertificateParams::new(vec!["db.example.com".to_string(), "::1".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress("10.0.0.1".parse().unwrap()));
        params
            .distinguished_name
            .push(DnType::CommonName, "db.example.com");
        params.serial_number = Some(SerialNumber::from_slice(&[0x80, 0x0a, 0xff]));
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let leaf = params.signed_by(&key, &*ca).unwrap();

        let f = describe(leaf.der()).unwrap();
        assert_eq!(f.version, 3);
        assert_eq!(f.subject, "CN=db.example.com");
        assert_eq!(f.issuer, "O=Acme\\, Inc,CN=Test CA");
        // DER keeps the sign byte of a serial whose top bit is set.
        assert_eq!(f.serial, "00:80:0a:ff");
        assert_eq!(f.common_names, vec!["db.example.com"]);
        assert_eq!(f.san_dns, vec!["db.example.com"]);
        assert_eq!(f.san_ip, vec!["::1", "10.0.0.1"]);
        assert_eq!(f.key, "EC P-384");
        // Signed by the P-256 CA key.
        assert_eq!(f.signature_algorithm, "ecdsa-with-SHA256");
        assert!(!f.is_ca);
        assert!(!f.self_signed);
        assert_eq!(f.sha256_fingerprint.len(), 32 * 3 - 1);
        assert!(f.not_before < f.not_after);

        let c = describe(ca.der()).unwrap();
        assert!(c.is_ca);
        assert!(c.self_signed);
        assert_eq!(c.key, "EC P-256");
    }

    #[test]
    fn describes_ed25519_key() {
        let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let cert = CertificateParams::new(vec!["x".to_string()])
            .unwrap()
            .self_signed(&ed)
            .unwrap();
        let f = describe(cert.der()).unwrap();
        assert_eq!(f.key, "Ed25519");
        assert_eq!(f.signature_algorithm, "Ed25519");
        assert!(f.self_signed);
    }

    #[test]
    fn rejects_garbage() {
        assert!(describe(b"not a certificate").is_err());
    }

    #[test]
    fn integer_bits_ignores_sign_byte() {
        assert_eq!(integer_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(integer_bits(&[0x7f, 0x00]), 15);
    }
}
