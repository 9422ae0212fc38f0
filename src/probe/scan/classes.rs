//! Which cipher suites make up each weak class of `--scan full`.
//!
//! Membership is a rule over tls-parser's IANA table (key exchange,
//! authentication, cipher, mode, MAC), not a hand-typed list, so a suite is
//! never left out by a typo; the README lists the resulting IDs and a unit
//! test pins them. Only suites a TLS server with certificates can pick are
//! offered: key exchange RSA, (EC)DH or (EC)DHE, authenticated by RSA, DSS,
//! ECDSA or not at all. PSK, SRP and Kerberos suites need a shared secret
//! PostgreSQL never has. A suite may fall in several classes (an anonymous
//! RC4 suite is both anonymous and RC4).

use tls_parser::{TlsCipherEnc, TlsCipherEncMode, TlsCipherKx, TlsCipherMac, TlsCipherSuite};

use crate::facts::CipherClass;

/// A suite a certificate-based server could negotiate.
fn negotiable(s: &TlsCipherSuite) -> bool {
    use tls_parser::TlsCipherAu as Au;
    use TlsCipherKx as Kx;
    matches!(
        s.kx,
        Kx::Rsa | Kx::Dh | Kx::Dhe | Kx::Ecdh | Kx::Ecdhe | Kx::Aecdh
    ) && matches!(s.au, Au::Null | Au::Rsa | Au::Dss | Au::Ecdsa)
}

/// Whether `suite` belongs to `class`.
///
/// - NULL: no encryption at all (`enc` NULL), e.g. TLS_RSA_WITH_NULL_SHA.
/// - anonymous: no server authentication (DH_anon, ECDH_anon): anyone in
///   the middle can impersonate the server.
/// - EXPORT: the 1990s export-grade suites (40/56-bit keys, FREAK/Logjam).
/// - RC4: the RC4 stream cipher (RFC 7465 forbids it).
/// - DES/3DES: DES (56-bit) and triple DES (64-bit blocks, Sweet32).
/// - CBC-SHA1 (informational): authenticated, non-export AES, Camellia,
///   SEED, ARIA or IDEA in CBC mode with an HMAC-SHA1 MAC. Not broken, but
///   MAC-then-encrypt CBC is what Lucky13-style attacks target and TLS 1.3
///   dropped it; modern servers prefer AEAD suites.
pub fn is_member(class: CipherClass, s: &TlsCipherSuite) -> bool {
    let export = s.name.contains("EXPORT");
    negotiable(s)
        && match class {
            CipherClass::Null => s.enc == TlsCipherEnc::Null,
            CipherClass::Anonymous => s.au == tls_parser::TlsCipherAu::Null,
            CipherClass::Export => export,
            CipherClass::Rc4 => s.enc == TlsCipherEnc::Rc4,
            CipherClass::Des => matches!(s.enc, TlsCipherEnc::Des | TlsCipherEnc::TripleDes),
            CipherClass::CbcSha1 => {
                s.enc_mode == TlsCipherEncMode::Cbc
                    && s.mac == TlsCipherMac::HmacSha1
                    && s.au != tls_parser::TlsCipherAu::Null
                    && !export
                    && matches!(
                        s.enc,
                        TlsCipherEnc::Aes
                            | TlsCipherEnc::Camellia
                            | TlsCipherEnc::Seed
                            | TlsCipherEnc::Aria
                            | TlsCipherEnc::Idea
                    )
            }
        }
}

/// The weak classes `suite` is in, and whether it is a CBC suite at all.
pub fn classify(suite: u16) -> (Vec<CipherClass>, bool) {
    let Some(s) = TlsCipherSuite::from_id(suite) else {
        return (Vec::new(), false);
    };
    let classes = CipherClass::ALL
        .into_iter()
        .filter(|c| is_member(*c, s))
        .collect();
    (classes, s.enc_mode == TlsCipherEncMode::Cbc)
}

/// The suite IDs offered for `class`, ascending.
pub fn suites(class: CipherClass) -> Vec<u16> {
    let mut ids: Vec<u16> = tls_parser::CIPHERS
        .values()
        .filter(|s| is_member(class, s))
        .map(|s| s.id.0)
        .collect();
    ids.sort_unstable();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README writes suite IDs as four hex digits each.
    fn ids(ids: &[u16]) -> String {
        ids.iter()
            .map(|id| format!("{id:04x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Pins the classes (and the README table) to the table's content.
    #[test]
    fn classes_are_the_documented_suites() {
        // The README's table, class by class.
        let documented = [
            (CipherClass::Null, "0001 0002 003b c001 c006 c00b c010 c015"),
            (
                CipherClass::Anonymous,
                "0017 0018 0019 001a 001b 0034 003a 0046 006c 006d 0089 009b 00a6 00a7 \
                 00bf 00c5 c015 c016 c017 c018 c019 c046 c047 c05a c05b c084 c085",
            ),
            (
                CipherClass::Export,
                "0003 0006 0008 000b 000e 0011 0014 0017 0019 0060 0061 0062 0063 0064 0065",
            ),
            (
                CipherClass::Rc4,
                "0003 0004 0005 0017 0018 0060 0064 0065 0066 c002 c007 c00c c011 c016",
            ),
            (
                CipherClass::Des,
                "0008 0009 000a 000b 000c 000d 000e 000f 0010 0011 0012 0013 0014 0015 \
                 0016 0019 001a 001b 0062 0063 c003 c008 c00d c012 c017",
            ),
            (
                CipherClass::CbcSha1,
                "0007 002f 0030 0031 0032 0033 0035 0036 0037 0038 0039 0041 0042 0043 \
                 0044 0045 0084 0085 0086 0087 0088 0096 0097 0098 0099 009a c004 c005 \
                 c009 c00a c00e c00f c013 c014",
            ),
        ];
        for (class, documented_ids) in documented {
            assert_eq!(ids(&suites(class)), documented_ids, "{}", class.name());
        }
        // PSK suites need a secret PostgreSQL never has.
        assert!(!suites(CipherClass::Rc4).contains(&0x008e));
        for class in CipherClass::ALL {
            assert!(!suites(class).is_empty(), "{}", class.name());
            assert!(!suites(class).contains(&0x00ff), "SCSV in {}", class.name());
        }
    }
}
