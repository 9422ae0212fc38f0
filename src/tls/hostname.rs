//! libpq's `verify-full` host name rules, which differ from RFC 6125 and
//! from webpki: the CN still counts when no SAN of the host's own kind
//! exists, and a wildcard covers exactly one leftmost label.
//!
//! Written from the behaviour of libpq's
//! `pgtls_verify_peer_name_matches_certificate_guts` (fe-secure-openssl.c)
//! and `fe-secure-common.c`.

use std::net::{Ipv4Addr, Ipv6Addr};

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::certs;
use crate::facts::CertProblem;

/// Which certificate field satisfied the name check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameSource {
    SubjectAltName,
    /// Only the subject CN matched: strict verifiers would not accept this.
    CommonName,
}

/// One name libpq compares, with the text shown in a mismatch report.
enum Candidate<'a> {
    Dns(&'a [u8]),
    Ip(&'a [u8]),
}

/// Checks `host` against the leaf as libpq `verify-full` does.
///
/// SANs are tried in order; the first CN is tried only when no SAN of the
/// host's kind (DNS name or IP literal) exists. A malformed name (embedded
/// NUL, IP of odd length) ends the check with a failure, as in libpq.
pub(crate) fn check(leaf: &X509Certificate<'_>, host: &str) -> Result<NameSource, CertProblem> {
    let host_is_ip = parse_inet_aton(host).is_some() || host.parse::<Ipv6Addr>().is_ok();
    let mut presented = Vec::new();
    let mut check_cn = true;

    // libpq treats an undecodable extension as absent (X509_get_ext_d2i → NULL).
    if let Ok(Some(san)) = leaf.subject_alternative_name() {
        for name in &san.value.general_names {
            let candidate = match name {
                GeneralName::DNSName(s) => Candidate::Dns(s.as_bytes()),
                // Tag 2 is dNSName that x509-parser could not decode as text.
                GeneralName::Invalid(tag, bytes) if tag.0 == 2 => Candidate::Dns(bytes),
                GeneralName::IPAddress(bytes) => Candidate::Ip(bytes),
                _ => continue,
            };
            if matches!(candidate, Candidate::Ip(_)) == host_is_ip {
                check_cn = false;
            }
            let (outcome, shown) = match candidate {
                Candidate::Dns(bytes) => match_dns(bytes, host),
                Candidate::Ip(bytes) => match_ip(bytes, host),
            };
            presented.push(shown);
            match outcome {
                Outcome::Match => return Ok(NameSource::SubjectAltName),
                Outcome::Error => return Err(mismatch(host, presented)),
                Outcome::NoMatch => {}
            }
        }
    }

    if check_cn {
        if let Some(cn) = leaf.subject().iter_common_name().next() {
            let (outcome, shown) = match_dns(cn.as_slice(), host);
            presented.push(shown);
            if outcome == Outcome::Match {
                return Ok(NameSource::CommonName);
            }
        }
    }
    Err(mismatch(host, presented))
}

fn mismatch(host: &str, presented: Vec<String>) -> CertProblem {
    CertProblem::NameMismatch {
        host: host.to_string(),
        presented,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Match,
    NoMatch,
    /// libpq refuses the certificate outright (returns -1).
    Error,
}

/// Exact or wildcard match of a DNS-type name; embedded NULs are an error
/// (CVE-2009-4034).
fn match_dns(name: &[u8], host: &str) -> (Outcome, String) {
    let shown = String::from_utf8_lossy(name).replace('\0', "\\0");
    if name.contains(&0) {
        return (Outcome::Error, format!("{shown} (embedded NUL)"));
    }
    let host = host.as_bytes();
    let outcome = if name.eq_ignore_ascii_case(host) || wildcard_match(name, host) {
        Outcome::Match
    } else {
        Outcome::NoMatch
    };
    (outcome, shown)
}

/// `*.rest` matches `label.rest` where `label` is non-empty and has no dot.
fn wildcard_match(pattern: &[u8], host: &[u8]) -> bool {
    let Some(suffix) = pattern.strip_prefix(b"*") else {
        return false;
    };
    if suffix.len() < 2 || suffix[0] != b'.' || host.len() < pattern.len() {
        return false;
    }
    let label_len = host.len() - suffix.len();
    let (label, rest) = host.split_at(label_len);
    rest.eq_ignore_ascii_case(suffix) && !label.contains(&b'.')
}

/// Compares an iPAddress SAN with the host read as inet_aton (IPv4) or
/// inet_pton (IPv6) would; any other length is an error, as in libpq.
fn match_ip(bytes: &[u8], host: &str) -> (Outcome, String) {
    let shown = certs::ip_to_string(bytes);
    let outcome = match bytes.len() {
        4 => match parse_inet_aton(host) {
            Some(addr) if addr.octets() == bytes => Outcome::Match,
            _ => Outcome::NoMatch,
        },
        16 => match host.parse::<Ipv6Addr>() {
            Ok(addr) if addr.octets() == bytes => Outcome::Match,
            _ => Outcome::NoMatch,
        },
        _ => Outcome::Error,
    };
    (outcome, shown)
}

/// IPv4 in the forms glibc's inet_aton accepts: 1 to 4 dot-separated parts,
/// each decimal, octal (leading 0) or hex (0x); the last part fills the
/// remaining bytes; anything after ASCII whitespace is ignored.
pub(crate) fn parse_inet_aton(host: &str) -> Option<Ipv4Addr> {
    let end = host
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(host.len());
    let text = &host[..end];
    if text.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    for part in text.split('.') {
        parts.push(parse_c_number(part)?);
    }
    if parts.len() > 4 {
        return None;
    }
    let (last, leading) = parts.split_last()?;
    if leading.iter().any(|p| *p > 0xff) {
        return None;
    }
    let room_bits = 8 * (4 - leading.len() as u32);
    if room_bits < 32 && *last >= (1u64 << room_bits) {
        return None;
    }
    if *last > u64::from(u32::MAX) {
        return None;
    }
    let mut value: u64 = 0;
    for (i, p) in leading.iter().enumerate() {
        value |= p << (24 - 8 * i as u32);
    }
    value |= last;
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

fn parse_c_number(part: &str) -> Option<u64> {
    let (digits, radix) =
        if let Some(h) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (h, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() {
        // "0x" alone is 0 to glibc; an empty part is invalid.
        return if radix == 16 { Some(0) } else { None };
    }
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::SslMode;
    use crate::fixtures::pki::*;

    #[test]
    fn wildcard_covers_one_label() {
        assert!(wildcard_match(b"*.example.com", b"a.example.com"));
        assert!(wildcard_match(b"*.Example.COM", b"A.example.com"));
        assert!(!wildcard_match(b"*.example.com", b"a.b.example.com"));
        assert!(!wildcard_match(b"*.example.com", b"example.com"));
        assert!(!wildcard_match(b"*.example.com", b".example.com"));
        assert!(!wildcard_match(b"a*.example.com", b"ab.example.com"));
        assert!(!wildcard_match(b"*.", b"a."));
    }

    #[test]
    fn embedded_nul_is_refused() {
        let (outcome, shown) = match_dns(b"db.internal\0.evil.com", "db.internal");
        assert_eq!(outcome, Outcome::Error);
        assert!(shown.contains("\\0"));
    }

    #[test]
    fn inet_aton_forms() {
        assert_eq!(
            parse_inet_aton("127.0.0.1"),
            Some(Ipv4Addr::new(127, 0, 0, 1))
        );
        assert_eq!(parse_inet_aton("127.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(parse_inet_aton("0x7f.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(
            parse_inet_aton("010.0.0.1"),
            Some(Ipv4Addr::new(8, 0, 0, 1))
        );
        assert_eq!(
            parse_inet_aton("2130706433"),
            Some(Ipv4Addr::new(127, 0, 0, 1))
        );
        assert_eq!(parse_inet_aton("256.0.0.1"), None);
        assert_eq!(parse_inet_aton("db.internal"), None);
        assert_eq!(parse_inet_aton("1.2.3.4.5"), None);
        assert_eq!(parse_inet_aton(""), None);
    }

    #[test]
    fn wrong_host_rejected() {
        let ca = root("Test CA");
        let chain = [leaf(&["db.example.com"], Some("db.example.com"), &ca)];
        let facts = judge(&chain, &trust(&[&ca]), "other.example.com");
        assert_eq!(
            libpq_problem(&facts),
            CertProblem::NameMismatch {
                host: "other.example.com".to_string(),
                presented: vec!["db.example.com".to_string()],
            }
        );
        // libpq refused: the strict view is not asked for.
        assert_eq!(facts.strict, None);
        assert!(facts.anchor.is_none());
    }

    #[test]
    fn verify_ca_skips_the_name() {
        let ca = root("Test CA");
        let chain = [leaf(&["db.example.com"], None, &ca)];
        let facts = judge_at(
            &chain,
            &trust(&[&ca]),
            SslMode::VerifyCa,
            "other.example.com",
            AT,
        );
        assert_eq!(facts.libpq, Some(Ok(())));
        assert_eq!(facts.strict, Some(Ok(())));
        assert_eq!(facts.checked_name, None);
    }

    #[test]
    fn wildcard_matches_exactly_one_label() {
        let ca = root("Test CA");
        let store = trust(&[&ca]);
        let chain = [leaf(&["*.example.com"], None, &ca)];
        assert_eq!(judge(&chain, &store, "a.example.com").libpq, Some(Ok(())));
        assert_eq!(judge(&chain, &store, "A.Example.COM").libpq, Some(Ok(())));
        for host in ["a.b.example.com", "example.com"] {
            assert!(
                matches!(
                    libpq_problem(&judge(&chain, &store, host)),
                    CertProblem::NameMismatch { .. }
                ),
                "{host}"
            );
        }
    }

    #[test]
    fn ip_san_matches_ip_host() {
        let ca = root("Test CA");
        let store = trust(&[&ca]);
        let chain = [leaf(&["db.example.com", "10.1.2.3", "::1"], None, &ca)];
        assert_eq!(judge(&chain, &store, "10.1.2.3").libpq, Some(Ok(())));
        assert_eq!(judge(&chain, &store, "::1").libpq, Some(Ok(())));
        assert_eq!(
            libpq_problem(&judge(&chain, &store, "10.1.2.4")),
            CertProblem::NameMismatch {
                host: "10.1.2.4".to_string(),
                presented: vec![
                    "db.example.com".to_string(),
                    "10.1.2.3".to_string(),
                    "::1".to_string()
                ],
            }
        );
    }

    #[test]
    fn cn_counts_only_without_san_of_the_hosts_kind() {
        let ca = root("Test CA");
        let store = trust(&[&ca]);

        // A dNSName SAN shuts the CN out for a DNS host.
        let with_dns = [leaf(&["other.internal"], Some("db.internal"), &ca)];
        assert_eq!(
            libpq_problem(&judge(&with_dns, &store, "db.internal")),
            CertProblem::NameMismatch {
                host: "db.internal".to_string(),
                presented: vec!["other.internal".to_string()],
            }
        );

        // Only an iPAddress SAN: libpq still reads the CN for a DNS host.
        let with_ip = [leaf(&["10.0.0.1"], Some("db.internal"), &ca)];
        let facts = judge(&with_ip, &store, "db.internal");
        assert_eq!(facts.libpq, Some(Ok(())));
        assert!(matches!(facts.strict, Some(Err(_))));
        assert_eq!(
            issues(&facts),
            vec![
                "host name only in the CN, not in subjectAltName (strict verifiers ignore the CN)"
                    .to_string()
            ]
        );

        // No SAN at all: the CN decides.
        let no_san = [leaf(&[], Some("db.internal"), &ca)];
        let facts = judge(&no_san, &store, "db.internal");
        assert_eq!(facts.libpq, Some(Ok(())));
        assert_eq!(
            issues(&facts),
            vec![
                "no subjectAltName; host name only in the CN (strict verifiers ignore the CN)"
                    .to_string()
            ]
        );
    }
}
