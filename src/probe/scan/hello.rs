//! ClientHello bytes for one pinned version, and what the first server
//! record says about it. Pure functions, so every reply shape is unit-tested.
//!
//! Records are built and parsed with tls-parser. Its serializer writes only
//! a few extensions (SNI, max fragment length, groups), so the extension
//! block is assembled here and handed over as bytes; lengths of the
//! handshake and the record are computed by tls-parser.

use tls_parser::nom::Err as NomErr;
use tls_parser::{
    parse_tls_message_alert, parse_tls_message_handshake, parse_tls_raw_record,
    parse_tls_server_hello_extensions, NamedGroup, Serialize, SignatureScheme, TlsAlertDescription,
    TlsAlertSeverity, TlsCipherSuiteID, TlsClientHelloContents, TlsCompressionID, TlsExtension,
    TlsExtensionType, TlsHandshakeType, TlsMessage, TlsMessageHandshake, TlsPlaintext,
    TlsRecordHeader, TlsRecordType, TlsVersion as WireVersion,
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
        alpn_extension(&mut out, protocol)?;
    }
    Ok(out)
}

/// ALPN offering the one `protocol`.
fn alpn_extension(out: &mut Vec<u8>, protocol: &[u8]) -> Result<(), InternalError> {
    let len = u8::try_from(protocol.len()).map_err(|_| too_long("ALPN protocol"))?;
    let mut entry = vec![len];
    entry.extend_from_slice(protocol);
    let mut list = Vec::new();
    push_u16_len(&mut list, &entry)?;
    extension(
        out,
        TlsExtensionType::ApplicationLayerProtocolNegotiation,
        &list,
    )
}

/// What libpq offers through OpenSSL 3.0 at its default security level 2
/// (Debian 12), as captured from psql 15.18's ClientHello: the suites in
/// its order (TLS 1.3 first), the groups (X25519 the only key share), the
/// signature algorithms. Sent when rustls' own hello was refused, to tell a
/// server no client can reach from one that speaks only what rustls lacks.
const OPENSSL_TLS13_SUITES: [u16; 3] = [0x1302, 0x1303, 0x1301];
const OPENSSL_TLS12_SUITES: [u16; 27] = [
    0xc02c, 0xc030, 0x009f, 0xcca9, 0xcca8, 0xccaa, 0xc02b, 0xc02f, 0x009e, 0xc024, 0xc028, 0x006b,
    0xc023, 0xc027, 0x0067, 0xc00a, 0xc014, 0x0039, 0xc009, 0xc013, 0x0033, 0x009d, 0x009c, 0x003d,
    0x003c, 0x0035, 0x002f,
];
/// X25519, P-256, X448, P-521, P-384, then ffdhe2048 to ffdhe8192.
const OPENSSL_GROUPS: [u16; 10] = [
    0x001d, 0x0017, 0x001e, 0x0019, 0x0018, 0x0100, 0x0101, 0x0102, 0x0103, 0x0104,
];
const OPENSSL_SIGNATURE_SCHEMES: [u16; 20] = [
    0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0809, 0x080a, 0x080b, 0x0804, 0x0805, 0x0806, 0x0401,
    0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602,
];

/// The versions an OpenSSL-like hello offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// TLS 1.3 and 1.2, as libpq offers them by default.
    Both,
    /// TLS 1.2 only: the server's Certificate then comes in the clear.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// A ClientHello as libpq's OpenSSL sends it, offering `offer`: its suites,
/// groups, signature algorithms and extensions, in its order (ALPN
/// `alpn` when given, as libpq 17 adds it). `share` is the X25519 key
/// share TLS 1.3 needs: random bytes, as the handshake is never finished.
pub fn openssl_client_hello(
    offer: Offer,
    sni: Option<&str>,
    alpn: Option<&[u8]>,
    random: &[u8; 32],
    share: &[u8; 32],
) -> Result<Vec<u8>, InternalError> {
    let tls13 = offer != Offer::Tls12;
    let mut suites: Vec<u16> = Vec::new();
    if tls13 {
        suites.extend(OPENSSL_TLS13_SUITES);
    }
    if offer != Offer::Tls13 {
        suites.extend(OPENSSL_TLS12_SUITES);
    }
    suites.push(RENEGOTIATION_SCSV);
    let list = |items: &[u16]| -> Vec<u8> { items.iter().flat_map(|i| i.to_be_bytes()).collect() };
    let mut out = Vec::new();
    if let Some(name) = sni {
        let mut entry = vec![0u8]; // host_name
        push_u16_len(&mut entry, name.as_bytes())?;
        let mut names = Vec::new();
        push_u16_len(&mut names, &entry)?;
        extension(&mut out, TlsExtensionType::ServerName, &names)?;
    }
    // uncompressed, ansiX962_compressed_prime, ansiX962_compressed_char2
    extension(&mut out, TlsExtensionType::EcPointFormats, &[3, 0, 1, 2])?;
    let mut groups = Vec::new();
    push_u16_len(&mut groups, &list(&OPENSSL_GROUPS))?;
    extension(&mut out, TlsExtensionType::SupportedGroups, &groups)?;
    extension(&mut out, TlsExtensionType::SessionTicketTLS, &[])?;
    extension(&mut out, TlsExtensionType::EncryptThenMac, &[])?;
    extension(&mut out, TlsExtensionType::ExtendedMasterSecret, &[])?;
    let mut schemes = Vec::new();
    push_u16_len(&mut schemes, &list(&OPENSSL_SIGNATURE_SCHEMES))?;
    extension(&mut out, TlsExtensionType::SignatureAlgorithms, &schemes)?;
    if let Some(protocol) = alpn {
        alpn_extension(&mut out, protocol)?;
    }
    if tls13 {
        let versions: &[u16] = if offer == Offer::Both {
            &[0x0304, 0x0303]
        } else {
            &[0x0304]
        };
        let body = list(versions);
        let len = u8::try_from(body.len()).map_err(|_| too_long("supported_versions"))?;
        let mut supported = vec![len];
        supported.extend_from_slice(&body);
        extension(&mut out, TlsExtensionType::SupportedVersions, &supported)?;
        extension(&mut out, TlsExtensionType::PskExchangeModes, &[1, 1])?; // psk_dhe_ke
        let mut entry = 0x001du16.to_be_bytes().to_vec();
        push_u16_len(&mut entry, share)?;
        let mut shares = Vec::new();
        push_u16_len(&mut shares, &entry)?;
        extension(&mut out, TlsExtensionType::KeyShare, &shares)?;
    }
    hello_record(
        TlsVersion::Tls12.wire(),
        WireVersion::Tls10,
        suites.into_iter().map(TlsCipherSuiteID).collect(),
        Some(&out),
        random,
    )
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
    let record_version = if version == TlsVersion::Ssl3 {
        WireVersion::Ssl30
    } else {
        WireVersion::Tls10
    };
    hello_record(
        version.wire(),
        record_version,
        ciphers,
        ext.as_deref(),
        random,
    )
}

/// The ClientHello record: lengths of the handshake and the record are
/// computed by tls-parser.
fn hello_record(
    version: u16,
    record_version: WireVersion,
    ciphers: Vec<TlsCipherSuiteID>,
    ext: Option<&[u8]>,
    random: &[u8; 32],
) -> Result<Vec<u8>, InternalError> {
    // tls-parser's serializer writes lengths without checking them.
    if ext.is_some_and(|e| e.len() > usize::from(u16::MAX) - 1024) {
        return Err(too_long("extension block"));
    }
    let hello = TlsClientHelloContents::new(
        version,
        random,
        None,
        ciphers,
        vec![TlsCompressionID(0)],
        ext,
    );
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

/// The most bytes read for a server's first flight: a Certificate message
/// OpenSSL's client accepts (100 KiB, its default `max_cert_list`) and the
/// records around it. More is no answer an OpenSSL client would take.
pub const MAX_FLIGHT: usize = 128 * 1024;

/// What a server's first flight says in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flight {
    /// The version chosen: supported_versions' in TLS 1.3, else the ServerHello's.
    pub version: u16,
    pub suite: u16,
    /// The key-exchange group: TLS 1.3's key_share (or the one a
    /// HelloRetryRequest asks for), TLS 1.2's ServerKeyExchange named curve.
    /// None for finite-field DHE and RSA key exchange.
    pub group: Option<u16>,
    /// Up to TLS 1.2 the Certificate message's chain, leaf first (TLS 1.3
    /// encrypts it: empty).
    pub certificates: Vec<Vec<u8>>,
}

/// The answer to an OpenSSL-like hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlightReply {
    Flight(Flight),
    Alert { fatal: bool, code: u8 },
    Garbage(BadRecord),
}

/// The server's first flight in `buf`, as far as it is plaintext: up to the
/// ServerHello in TLS 1.3, up to ServerHelloDone before. None while more
/// is needed. Handshake messages may span records (a long chain does), so
/// the records' payloads are joined before messages are read.
pub fn parse_flight(buf: &[u8]) -> Option<FlightReply> {
    let mut rest = buf;
    let mut warnings = 0;
    let mut stream: Vec<u8> = Vec::new();
    let mut read = 0; // bytes of `stream` already read as messages
    let mut flight: Option<Flight> = None;
    let garbage = |fault| {
        Some(FlightReply::Garbage(BadRecord {
            fault,
            head: hex::head(buf),
        }))
    };
    loop {
        let (after, record) = match parse_tls_raw_record(rest) {
            Ok(parsed) => parsed,
            Err(NomErr::Incomplete(_)) => return None,
            Err(_) => return garbage(RecordFault::NotARecord),
        };
        rest = after;
        match record.hdr.record_type {
            TlsRecordType::Handshake => stream.extend_from_slice(record.data),
            TlsRecordType::Alert => {
                let Ok((_, TlsMessage::Alert(alert))) = parse_tls_message_alert(record.data) else {
                    return garbage(RecordFault::MalformedAlert);
                };
                let warning = alert.severity == TlsAlertSeverity::Warning
                    && alert.code != TlsAlertDescription::CloseNotify;
                match flight {
                    // What the server said before its alert is its answer.
                    Some(f) => return Some(FlightReply::Flight(f)),
                    None if warning && warnings < MAX_WARNINGS => {
                        warnings += 1;
                        continue;
                    }
                    None if warning => return garbage(RecordFault::TooManyWarnings(MAX_WARNINGS)),
                    None => {
                        return Some(FlightReply::Alert {
                            fatal: alert.severity == TlsAlertSeverity::Fatal,
                            code: alert.code.0,
                        })
                    }
                }
            }
            _ => return garbage(RecordFault::UnexpectedType),
        }
        // Every whole message received so far.
        while let Some((kind, body, len)) = handshake_message(&stream[read..]) {
            read += len;
            match (kind, flight.as_mut()) {
                (TlsHandshakeType::ServerHello, None) => {
                    let Some(hello) = server_hello(body) else {
                        return garbage(RecordFault::MalformedServerHello);
                    };
                    if hello.version == TlsVersion::Tls13.wire() {
                        // Everything after the ServerHello is encrypted.
                        return Some(FlightReply::Flight(hello));
                    }
                    flight = Some(hello);
                }
                (_, None) => return garbage(RecordFault::OtherHandshake),
                (TlsHandshakeType::Certificate, Some(f)) => {
                    let Ok((_, TlsMessageHandshake::Certificate(chain))) =
                        tls_parser::parse_tls_handshake_msg_certificate(body)
                    else {
                        return garbage(RecordFault::OtherHandshake);
                    };
                    f.certificates = chain.cert_chain.iter().map(|c| c.data.to_vec()).collect();
                }
                (TlsHandshakeType::ServerKeyExchange, Some(f)) => {
                    f.group = ecdhe_group(f.suite, body);
                }
                (TlsHandshakeType::ServerDone, Some(f)) => {
                    return Some(FlightReply::Flight(f.clone()))
                }
                // CertificateStatus, CertificateRequest: nothing to learn.
                _ => {}
            }
        }
    }
}

/// The first whole handshake message in `stream`: type, body, bytes used.
fn handshake_message(stream: &[u8]) -> Option<(TlsHandshakeType, &[u8], usize)> {
    let header = stream.get(..4)?;
    let len = usize::from(header[1]) << 16 | usize::from(header[2]) << 8 | usize::from(header[3]);
    let body = stream.get(4..4 + len)?;
    Some((TlsHandshakeType(header[0]), body, 4 + len))
}

/// The ServerHello's version (supported_versions when present), suite and
/// TLS 1.3 key_share group.
fn server_hello(body: &[u8]) -> Option<Flight> {
    let (_, hello) = tls_parser::parse_tls_handshake_server_hello(body).ok()?;
    let mut flight = Flight {
        version: hello.version.0,
        suite: hello.cipher.0,
        group: None,
        certificates: Vec::new(),
    };
    let (_, extensions) = parse_tls_server_hello_extensions(hello.ext.unwrap_or_default()).ok()?;
    for ext in extensions {
        match ext {
            TlsExtension::SupportedVersions(v) => flight.version = v.first()?.0,
            // A ServerHello's entry and a HelloRetryRequest's both start with the group.
            TlsExtension::KeyShare(share) => {
                flight.group = share.get(..2).map(|g| u16::from_be_bytes([g[0], g[1]]));
            }
            _ => {}
        }
    }
    Some(flight)
}

/// The named curve of an ECDHE ServerKeyExchange; None for other key exchanges.
fn ecdhe_group(suite: u16, params: &[u8]) -> Option<u16> {
    let ecdhe = tls_parser::TlsCipherSuite::from_id(suite)
        .is_some_and(|s| s.kx == tls_parser::TlsCipherKx::Ecdhe);
    if !ecdhe {
        return None;
    }
    match tls_parser::parse_ecdh_params(params)
        .ok()?
        .1
        .curve_params
        .params_content
    {
        tls_parser::ECParametersContent::NamedGroup(group) => Some(group.0),
        _ => None,
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

    /// The hello libpq 15.18 sent through Debian's OpenSSL 3.0.19 (psql to a
    /// listener answering 'S'), with its random, session id and key share
    /// replaced: ours must offer the same, in the same order.
    #[test]
    fn openssl_hello_is_libpqs() {
        let bytes =
            openssl_client_hello(Offer::Both, Some("localhost"), None, &[1; 32], &[2; 32]).unwrap();
        let (hdr, ciphers, ext, version) = parse_hello(&bytes);
        assert_eq!((version, hdr.version), (0x0303, WireVersion::Tls10));
        let mut want: Vec<u16> = OPENSSL_TLS13_SUITES.to_vec();
        want.extend(OPENSSL_TLS12_SUITES);
        want.push(0x00ff);
        assert_eq!(ciphers, want);
        let types: Vec<u16> = ext.iter().map(|e| TlsExtensionType::from(e).0).collect();
        assert_eq!(types, [0, 11, 10, 35, 22, 23, 13, 43, 45, 51]);
        let groups = ext.iter().find_map(|e| match e {
            TlsExtension::EllipticCurves(g) => Some(g.iter().map(|g| g.0).collect::<Vec<_>>()),
            _ => None,
        });
        assert_eq!(groups.as_deref(), Some(&OPENSSL_GROUPS[..]));
        assert!(ext
            .iter()
            .any(|e| matches!(e, TlsExtension::SupportedVersions(v)
            if v.iter().map(|v| v.0).eq([0x0304, 0x0303]))));
        assert!(ext.iter().any(|e| matches!(e, TlsExtension::KeyShare(k)
            if k[..4] == [0, 36, 0, 0x1d] && k[6..] == [2; 32])));
    }

    #[test]
    fn a_tls12_openssl_hello_has_no_tls13_parts() {
        let bytes =
            openssl_client_hello(Offer::Tls12, None, Some(b"postgresql"), &[1; 32], &[2; 32])
                .unwrap();
        let (_, ciphers, ext, version) = parse_hello(&bytes);
        assert_eq!(version, 0x0303);
        assert!(!ciphers.iter().any(|c| c >> 8 == 0x13));
        assert!(!ext.iter().any(|e| matches!(
            e,
            TlsExtension::SupportedVersions(_)
                | TlsExtension::KeyShare(_)
                | TlsExtension::PskExchangeModes(_)
                | TlsExtension::SNI(_)
        )));
        assert!(ext.iter().any(|e| matches!(e, TlsExtension::ALPN(_))));
        let bytes = openssl_client_hello(Offer::Tls13, None, None, &[1; 32], &[2; 32]).unwrap();
        let (_, ciphers, ext, _) = parse_hello(&bytes);
        assert_eq!(ciphers, [0x1302, 0x1303, 0x1301, 0x00ff]);
        assert!(ext
            .iter()
            .any(|e| matches!(e, TlsExtension::SupportedVersions(v)
            if v.iter().map(|v| v.0).eq([0x0304]))));
    }

    fn handshake(kind: u8, body: &[u8]) -> Vec<u8> {
        let len = body.len() as u32;
        let mut msg = vec![kind];
        msg.extend_from_slice(&len.to_be_bytes()[1..]);
        msg.extend_from_slice(body);
        msg
    }

    fn records(kind: u8, payload: &[u8], size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for part in payload.chunks(size) {
            out.extend_from_slice(&[kind, 3, 3]);
            out.extend_from_slice(&(part.len() as u16).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    /// A ServerHello body: version, suite, and these extensions.
    fn hello_body(suite: u16, ext: &[u8]) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend_from_slice(&[0x22; 32]);
        body.push(0);
        body.extend_from_slice(&suite.to_be_bytes());
        body.push(0);
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(ext);
        body
    }

    /// TLS 1.2: ServerHello, a Certificate spread over records, an ECDHE
    /// ServerKeyExchange on P-521 and ServerHelloDone; nothing is an answer
    /// until the flight is whole.
    #[test]
    fn a_tls12_flight_gives_suite_group_and_chain() {
        let cert_a = vec![0x30; 20_000];
        let cert_b = vec![0x31; 700];
        let mut chain = Vec::new();
        for c in [&cert_a, &cert_b] {
            chain.extend_from_slice(&(c.len() as u32).to_be_bytes()[1..]);
            chain.extend_from_slice(c);
        }
        let mut certificate = (chain.len() as u32).to_be_bytes()[1..].to_vec();
        certificate.extend_from_slice(&chain);
        let mut ske = vec![3, 0, 0x19, 4];
        ske.extend_from_slice(&[9; 4]);
        ske.extend_from_slice(&[4, 3, 0, 2, 0, 0]);
        let mut stream = handshake(2, &hello_body(0xc030, &[]));
        stream.extend(handshake(11, &certificate));
        stream.extend(handshake(12, &ske));
        stream.extend(handshake(14, &[]));
        let flight = records(22, &stream, 16_384);
        for cut in [0, 5, 100, 16_389, flight.len() - 1] {
            assert_eq!(parse_flight(&flight[..cut]), None, "cut at {cut}");
        }
        assert_eq!(
            parse_flight(&flight),
            Some(FlightReply::Flight(Flight {
                version: 0x0303,
                suite: 0xc030,
                group: Some(0x0019),
                certificates: vec![cert_a, cert_b],
            }))
        );
    }

    /// TLS 1.3: the ServerHello (or a HelloRetryRequest) is all there is in
    /// the clear: the version from supported_versions, the group from key_share.
    #[test]
    fn a_tls13_flight_ends_at_the_server_hello() {
        let ext = [0, 43, 0, 2, 3, 4, 0, 51, 0, 2, 0, 0x19];
        let mut flight = records(22, &handshake(2, &hello_body(0x1302, &ext)), 16_384);
        flight.extend_from_slice(&[20, 3, 3, 0, 1, 1]); // ChangeCipherSpec: never read
        assert_eq!(
            parse_flight(&flight),
            Some(FlightReply::Flight(Flight {
                version: 0x0304,
                suite: 0x1302,
                group: Some(0x0019),
                certificates: Vec::new(),
            }))
        );
        let mut warned = vec![21, 3, 3, 0, 2, 1, 112];
        warned.extend_from_slice(&[21, 3, 3, 0, 2, 2, 40]);
        assert_eq!(
            parse_flight(&warned),
            Some(FlightReply::Alert {
                fatal: true,
                code: 40
            })
        );
        assert!(matches!(
            parse_flight(&records(22, &handshake(11, &[0, 0, 0]), 100)),
            Some(FlightReply::Garbage(_))
        ));
        assert!(matches!(
            parse_flight(b"HTTP/1.1 400 Bad Request"),
            Some(FlightReply::Garbage(_))
        ));
    }
}
