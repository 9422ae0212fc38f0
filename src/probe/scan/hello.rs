//! ClientHello bytes for one pinned version, and what the first server
//! record says about it. Pure functions, so every reply shape is unit-tested.
//!
//! Records are built and parsed with tls-parser. Its serializer writes only
//! a few extensions (SNI, max fragment length, groups), so the extension
//! block is assembled here and handed over as bytes; lengths of the
//! handshake and the record are computed by tls-parser.

use tls_parser::nom::Err as NomErr;
use tls_parser::{
    parse_tls_message_alert, parse_tls_message_handshake, parse_tls_raw_record, NamedGroup,
    Serialize, SignatureScheme, TlsAlertDescription, TlsAlertSeverity, TlsCipherSuiteID,
    TlsClientHelloContents, TlsCompressionID, TlsExtensionType, TlsMessage, TlsMessageHandshake,
    TlsPlaintext, TlsRecordHeader, TlsRecordType, TlsVersion as WireVersion,
};

use crate::facts::{BadRecord, InternalError, RecordFault, TlsVersion};
use crate::hex;

/// Warning alerts read past before the answer (RFC 6066 lets a server warn
/// `unrecognized_name` and go on); more than this is no answer.
pub const MAX_WARNINGS: usize = 4;

/// A reply larger than one maximal record plus its header, after at most
/// [`MAX_WARNINGS`] warning alerts, is not a ServerHello.
pub const MAX_REPLY: usize = MAX_WARNINGS * 7 + 5 + tls_parser::MAX_RECORD_LEN as usize;

/// Groups a client of the TLS 1.0 to 1.2 era offers; P-256 first as
/// PostgreSQL's default `ssl_ecdh_curve` is prime256v1.
const GROUPS: [NamedGroup; 4] = [
    NamedGroup::Secp256r1,
    NamedGroup::EcdhX25519,
    NamedGroup::Secp384r1,
    NamedGroup::Secp521r1,
];

/// TLS 1.2 signature algorithms, SHA-1 last (OpenSSL 3 refuses it at the
/// default security level, but an old certificate may need it).
const SIGNATURE_SCHEMES: [SignatureScheme; 11] = [
    SignatureScheme::ecdsa_secp256r1_sha256,
    SignatureScheme::rsa_pss_rsae_sha256,
    SignatureScheme::rsa_pkcs1_sha256,
    SignatureScheme::ecdsa_secp384r1_sha384,
    SignatureScheme::rsa_pss_rsae_sha384,
    SignatureScheme::rsa_pkcs1_sha384,
    SignatureScheme::rsa_pss_rsae_sha512,
    SignatureScheme::rsa_pkcs1_sha512,
    SignatureScheme::ed25519,
    SignatureScheme::rsa_pkcs1_sha1,
    SignatureScheme::ecdsa_sha1,
];

/// Suites a browser of the TLS 1.0/1.1 era offered (ECDHE, DHE and RSA key
/// exchange; AES, Camellia, 3DES, RC4), strongest first, so a server that
/// speaks the old version at all finds one it accepts. No GCM: those suites
/// exist only in TLS 1.2.
pub const LEGACY_SUITES: [u16; 19] = [
    0xc00a, 0xc014, 0xc009, 0xc013, 0x0039, 0x0038, 0x0033, 0x0032, 0x0035, 0x002f, 0x0088, 0x0045,
    0x0084, 0x0041, 0xc012, 0x0016, 0x000a, 0xc011, 0x0005,
];

/// TLS_EMPTY_RENEGOTIATION_INFO_SCSV: SSLv3 has no extensions, so RFC 5746
/// signals secure renegotiation with this pseudo-suite there.
const RENEGOTIATION_SCSV: u16 = 0x00ff;

/// A length that does not fit its field: the hello cannot be written
/// (a host name of 64 KiB, say), rather than silently cut.
fn too_long(what: &str) -> InternalError {
    InternalError::Encode {
        what: "ClientHello",
        detail: format!("{what} too long for its length field"),
    }
}

fn extension(out: &mut Vec<u8>, kind: TlsExtensionType, body: &[u8]) -> Result<(), InternalError> {
    out.extend_from_slice(&kind.0.to_be_bytes());
    push_u16_len(out, body)
}

fn push_u16_len(out: &mut Vec<u8>, body: &[u8]) -> Result<(), InternalError> {
    let len = u16::try_from(body.len()).map_err(|_| too_long("extension"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// The extensions a client of that era sends: SNI for a host name,
/// groups and point formats for ECDHE, renegotiation_info, and
/// signature_algorithms only for TLS 1.2 (RFC 5246 forbids offering it
/// with an older version). Never supported_versions: that would offer TLS 1.3.
/// ALPN `alpn` when given: PostgreSQL 17 requires it under direct TLS.
fn extensions(
    version: TlsVersion,
    sni: Option<&str>,
    alpn: Option<&[u8]>,
) -> Result<Vec<u8>, InternalError> {
    let mut out = Vec::new();
    if let Some(name) = sni {
        let mut entry = vec![0u8]; // host_name
        push_u16_len(&mut entry, name.as_bytes())?;
        let mut list = Vec::new();
        push_u16_len(&mut list, &entry)?;
        extension(&mut out, TlsExtensionType::ServerName, &list)?;
    }
    let groups: Vec<u8> = GROUPS.iter().flat_map(|g| g.0.to_be_bytes()).collect();
    let mut body = Vec::new();
    push_u16_len(&mut body, &groups)?;
    extension(&mut out, TlsExtensionType::SupportedGroups, &body)?;
    extension(&mut out, TlsExtensionType::EcPointFormats, &[1, 0])?; // uncompressed
    if version == TlsVersion::Tls12 {
        let schemes: Vec<u8> = SIGNATURE_SCHEMES
            .iter()
            .flat_map(|s| s.0.to_be_bytes())
            .collect();
        let mut body = Vec::new();
        push_u16_len(&mut body, &schemes)?;
        extension(&mut out, TlsExtensionType::SignatureAlgorithms, &body)?;
    }
    extension(&mut out, TlsExtensionType::RenegotiationInfo, &[0])?; // empty, initial handshake
    if let Some(protocol) = alpn {
        let len = u8::try_from(protocol.len()).map_err(|_| too_long("ALPN protocol"))?;
        let mut entry = vec![len];
        entry.extend_from_slice(protocol);
        let mut list = Vec::new();
        push_u16_len(&mut list, &entry)?;
        extension(
            &mut out,
            TlsExtensionType::ApplicationLayerProtocolNegotiation,
            &list,
        )?;
    }
    Ok(out)
}

/// One ClientHello record offering exactly `version` and `suites`.
///
/// `sni` must be a DNS name (never an IP address, RFC 6066). Records go out
/// as TLS 1.0 (SSL 3.0 for an SSLv3 hello), as clients of every era did,
/// so a server never refuses on the record version alone.
pub fn client_hello(
    version: TlsVersion,
    suites: &[u16],
    sni: Option<&str>,
    alpn: Option<&[u8]>,
    random: &[u8; 32],
) -> Result<Vec<u8>, InternalError> {
    let mut ciphers: Vec<TlsCipherSuiteID> = suites.iter().copied().map(TlsCipherSuiteID).collect();
    let ext = if version == TlsVersion::Ssl3 {
        ciphers.push(TlsCipherSuiteID(RENEGOTIATION_SCSV));
        None
    } else {
        Some(extensions(version, sni, alpn)?)
    };
    // tls-parser's serializer writes lengths without checking them.
    if ext
        .as_ref()
        .is_some_and(|e| e.len() > usize::from(u16::MAX) - 1024)
    {
        return Err(too_long("extension block"));
    }
    let hello = TlsClientHelloContents::new(
        version.wire(),
        random,
        None,
        ciphers,
        vec![TlsCompressionID(0)],
        ext.as_deref(),
    );
    let record_version = if version == TlsVersion::Ssl3 {
        WireVersion::Ssl30
    } else {
        WireVersion::Tls10
    };
    let record = TlsPlaintext {
        hdr: TlsRecordHeader {
            record_type: TlsRecordType::Handshake,
            version: record_version,
            len: 0, // computed by the serializer
        },
        msg: vec![TlsMessage::Handshake(TlsMessageHandshake::ClientHello(
            hello,
        ))],
    };
    record.serialize().map_err(|e| InternalError::Encode {
        what: "ClientHello",
        detail: format!("{e:?}"),
    })
}

/// user_canceled then close_notify (both warnings), as RFC 5246 §7.2.1
/// says to abandon a handshake; tls-parser cannot serialize alerts.
pub fn cancel_alerts(version: TlsVersion) -> Vec<u8> {
    let mut out = Vec::new();
    for code in [
        TlsAlertDescription::UserCancelled,
        TlsAlertDescription::CloseNotify,
    ] {
        out.push(TlsRecordType::Alert.0);
        out.extend_from_slice(&version.wire().to_be_bytes());
        out.extend_from_slice(&2u16.to_be_bytes());
        out.extend_from_slice(&[TlsAlertSeverity::Warning.0, code.0]);
    }
    out
}

/// The first thing the server said after our ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The version (as on the wire) and suite the server chose.
    ServerHello {
        version: u16,
        suite: u16,
    },
    Alert {
        fatal: bool,
        code: u8,
    },
    /// Bytes that are not a TLS alert or ServerHello.
    Garbage(BadRecord),
}

/// The first reply in `buf` after any warning alerts; None while its record
/// is incomplete.
pub fn parse_reply(buf: &[u8]) -> Option<Reply> {
    let mut rest = buf;
    for _ in 0..=MAX_WARNINGS {
        match parse_record(rest) {
            Record::Warning(remaining) => rest = remaining,
            Record::Incomplete => return None,
            Record::Reply(reply) => return Some(reply),
        }
    }
    Some(garbage(RecordFault::TooManyWarnings(MAX_WARNINGS), buf))
}

fn garbage(fault: RecordFault, buf: &[u8]) -> Reply {
    Reply::Garbage(BadRecord {
        fault,
        head: hex::head(buf),
    })
}

enum Record<'a> {
    /// A warning alert other than close_notify, and what follows it.
    Warning(&'a [u8]),
    Incomplete,
    Reply(Reply),
}

fn parse_record(buf: &[u8]) -> Record<'_> {
    // Only the first message of the record matters: parsing the rest
    // (a Certificate in the same record) would add failure modes, no facts.
    let (rest, record) = match parse_tls_raw_record(buf) {
        Ok(parsed) => parsed,
        Err(NomErr::Incomplete(_)) => return Record::Incomplete,
        Err(_) => return Record::Reply(garbage(RecordFault::NotARecord, buf)),
    };
    let garbage = |fault| Record::Reply(garbage(fault, buf));
    match record.hdr.record_type {
        TlsRecordType::Alert => match parse_tls_message_alert(record.data) {
            Ok((_, TlsMessage::Alert(alert)))
                if alert.severity == TlsAlertSeverity::Warning
                    && alert.code != TlsAlertDescription::CloseNotify =>
            {
                Record::Warning(rest)
            }
            Ok((_, TlsMessage::Alert(alert))) => Record::Reply(Reply::Alert {
                fatal: alert.severity == TlsAlertSeverity::Fatal,
                code: alert.code.0,
            }),
            _ => garbage(RecordFault::MalformedAlert),
        },
        TlsRecordType::Handshake => match parse_tls_message_handshake(record.data) {
            Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ServerHello(hello)))) => {
                Record::Reply(Reply::ServerHello {
                    version: hello.version.0,
                    suite: hello.cipher.0,
                })
            }
            Ok(_) => garbage(RecordFault::OtherHandshake),
            Err(NomErr::Incomplete(_)) => garbage(RecordFault::SplitServerHello),
            Err(_) => garbage(RecordFault::MalformedServerHello),
        },
        _ => garbage(RecordFault::UnexpectedType),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tls_parser::{parse_tls_plaintext, TlsExtension};

    fn parse_hello(bytes: &[u8]) -> (TlsRecordHeader, Vec<u16>, Vec<TlsExtension<'_>>, u16) {
        let (rest, record) = parse_tls_plaintext(bytes).expect("parses");
        assert!(rest.is_empty());
        let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = &record.msg[0] else {
            panic!("not a ClientHello");
        };
        let ext = ch
            .ext
            .map(|e| tls_parser::parse_tls_client_hello_extensions(e).unwrap().1)
            .unwrap_or_default();
        let ciphers = ch.ciphers.iter().map(|c| c.0).collect();
        (record.hdr, ciphers, ext, ch.version.0)
    }

    #[test]
    fn tls10_hello_has_era_extensions_and_no_tls13() {
        let bytes = client_hello(
            TlsVersion::Tls10,
            &LEGACY_SUITES,
            Some("db.example"),
            None,
            &[7; 32],
        )
        .unwrap();
        let (hdr, ciphers, ext, version) = parse_hello(&bytes);
        assert_eq!(version, 0x0301);
        assert_eq!(hdr.version, WireVersion::Tls10);
        assert_eq!(usize::from(hdr.len), bytes.len() - 5);
        assert_eq!(ciphers, LEGACY_SUITES);
        assert!(ext.iter().any(|e| matches!(e, TlsExtension::SNI(names)
            if names[0].1 == b"db.example")));
        assert!(ext
            .iter()
            .any(|e| matches!(e, TlsExtension::EllipticCurves(g)
            if g[0] == NamedGroup::Secp256r1)));
        assert!(ext
            .iter()
            .any(|e| matches!(e, TlsExtension::EcPointFormats(_))));
        assert!(ext
            .iter()
            .any(|e| matches!(e, TlsExtension::RenegotiationInfo(_))));
        assert!(!ext
            .iter()
            .any(|e| matches!(e, TlsExtension::SignatureAlgorithms(_))));
        assert!(!ext
            .iter()
            .any(|e| matches!(e, TlsExtension::SupportedVersions(_))));
        assert!(!ext.iter().any(|e| matches!(e, TlsExtension::ALPN(_))));
    }

    #[test]
    fn direct_hellos_offer_alpn_postgresql() {
        let bytes = client_hello(
            TlsVersion::Tls11,
            &LEGACY_SUITES,
            None,
            Some(b"postgresql"),
            &[7; 32],
        )
        .unwrap();
        let (_, _, ext, _) = parse_hello(&bytes);
        assert!(ext.iter().any(|e| matches!(e, TlsExtension::ALPN(p)
            if p.as_slice() == [&b"postgresql"[..]])));
    }

    #[test]
    fn tls12_hello_offers_signature_algorithms_and_no_sni_for_ip() {
        let bytes = client_hello(TlsVersion::Tls12, &[0x000a], None, None, &[0; 32]).unwrap();
        let (_, ciphers, ext, version) = parse_hello(&bytes);
        assert_eq!(version, 0x0303);
        assert_eq!(ciphers, [0x000a]);
        assert!(ext
            .iter()
            .any(|e| matches!(e, TlsExtension::SignatureAlgorithms(_))));
        assert!(!ext.iter().any(|e| matches!(e, TlsExtension::SNI(_))));
    }

    #[test]
    fn ssl3_hello_has_no_extensions_but_the_scsv() {
        let bytes = client_hello(TlsVersion::Ssl3, &[0x000a], Some("x"), None, &[0; 32]).unwrap();
        let (hdr, ciphers, ext, version) = parse_hello(&bytes);
        assert_eq!((version, hdr.version), (0x0300, WireVersion::Ssl30));
        assert_eq!(ciphers, [0x000a, 0x00ff]);
        assert!(ext.is_empty());
    }

    /// ServerHello record: version, suite, and one extra message after it.
    fn server_hello(version: u16, suite: u16) -> Vec<u8> {
        let mut body = version.to_be_bytes().to_vec();
        body.extend_from_slice(&[0x11; 32]);
        body.push(0); // session id
        body.extend_from_slice(&suite.to_be_bytes());
        body.push(0); // compression
        let mut msg = vec![2, 0, 0, body.len() as u8];
        msg.extend_from_slice(&body);
        msg.extend_from_slice(&[14, 0, 0, 0]); // ServerHelloDone in the same record
        let mut rec = vec![22, 3, 1, 0, msg.len() as u8];
        rec.extend_from_slice(&msg);
        rec
    }

    #[test]
    fn classifies_server_hello_alert_garbage_and_truncation() {
        let sh = server_hello(0x0301, 0xc014);
        assert_eq!(
            parse_reply(&sh),
            Some(Reply::ServerHello {
                version: 0x0301,
                suite: 0xc014
            })
        );
        // Every strict prefix asks for more.
        for cut in 0..sh.len() {
            assert_eq!(parse_reply(&sh[..cut]), None, "cut at {cut}");
        }
        assert_eq!(
            parse_reply(&server_hello(0x0303, 0x002f)),
            Some(Reply::ServerHello {
                version: 0x0303,
                suite: 0x002f
            })
        );
        let alert = [21, 3, 1, 0, 2, 2, 70];
        assert_eq!(
            parse_reply(&alert),
            Some(Reply::Alert {
                fatal: true,
                code: 70
            })
        );
        assert!(matches!(
            parse_reply(b"HTTP/1.1 400 Bad Request\r\n"),
            Some(Reply::Garbage(_))
        ));
        // Application data before any handshake.
        assert!(matches!(
            parse_reply(&[23, 3, 3, 0, 1, 0]),
            Some(Reply::Garbage(_))
        ));
        // A record that claims more than the maximum is garbage, not "read more".
        assert!(matches!(
            parse_reply(&[22, 3, 1, 0xff, 0xff]),
            Some(Reply::Garbage(_))
        ));
    }

    /// RFC 6066 lets a server warn `unrecognized_name` and go on with its
    /// ServerHello: a warning is not an answer, a close_notify or fatal one is.
    #[test]
    fn warning_alerts_before_the_server_hello_are_skipped() {
        let warning = [21, 3, 1, 0, 2, 1, 112];
        let mut reply = warning.to_vec();
        assert_eq!(parse_reply(&reply), None, "read on after a warning");
        reply.extend_from_slice(&server_hello(0x0301, 0xc014));
        assert_eq!(
            parse_reply(&reply),
            Some(Reply::ServerHello {
                version: 0x0301,
                suite: 0xc014
            })
        );
        let mut refusal = warning.to_vec();
        refusal.extend_from_slice(&[21, 3, 1, 0, 2, 2, 70]);
        assert_eq!(
            parse_reply(&refusal),
            Some(Reply::Alert {
                fatal: true,
                code: 70
            })
        );
        assert_eq!(
            parse_reply(&[21, 3, 1, 0, 2, 1, 0]),
            Some(Reply::Alert {
                fatal: false,
                code: 0
            }),
            "close_notify ends the answer"
        );
        let many: Vec<u8> = warning.repeat(MAX_WARNINGS + 1);
        assert!(matches!(parse_reply(&many), Some(Reply::Garbage(_))));
    }

    #[test]
    fn cancel_is_two_warning_alerts() {
        let bytes = cancel_alerts(TlsVersion::Tls10);
        assert_eq!(bytes, [21, 3, 1, 0, 2, 1, 90, 21, 3, 1, 0, 2, 1, 0]);
        // user_canceled is a warning, so the close_notify is what counts.
        assert_eq!(
            parse_reply(&bytes),
            Some(Reply::Alert {
                fatal: false,
                code: 0
            })
        );
    }

    /// A length that does not fit its field is an error, never a cut.
    #[test]
    fn over_long_fields_are_refused_not_truncated() {
        let long = "a".repeat(70_000);
        assert!(client_hello(TlsVersion::Tls12, &[0x000a], Some(&long), None, &[0; 32]).is_err());
        let alpn = [b'x'; 300];
        assert!(client_hello(TlsVersion::Tls12, &[0x000a], None, Some(&alpn), &[0; 32]).is_err());
        assert!(client_hello(
            TlsVersion::Tls12,
            &[0x000a],
            Some(&"a".repeat(255)),
            None,
            &[0; 32]
        )
        .is_ok());
    }
}
