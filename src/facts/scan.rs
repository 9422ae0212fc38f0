//! What the protocol and cipher scan observed, one typed outcome per
//! handshake. Whether an outcome means "accepted", "refused" or "cannot
//! tell" for the run is `policy::scan`'s call (a hang-up means one thing
//! after an SSLRequest and another under direct TLS).

use std::fmt;

use super::{
    wire_version_name, ChannelFailure, InternalError, IoFailure, ResolveFailure, TlsVersion,
};

/// How much the scan tries (`--scan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanLevel {
    /// One handshake per protocol version.
    Protocols,
    /// Also one handshake per weak cipher class.
    Full,
}

/// Groups of weak cipher suites, one handshake each (see probe::scan::classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CipherClass {
    Null,
    Anonymous,
    Export,
    Rc4,
    Des,
    CbcSha1,
}

impl CipherClass {
    pub const ALL: [CipherClass; 6] = [
        CipherClass::Null,
        CipherClass::Anonymous,
        CipherClass::Export,
        CipherClass::Rc4,
        CipherClass::Des,
        CipherClass::CbcSha1,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CipherClass::Null => "NULL",
            CipherClass::Anonymous => "anonymous",
            CipherClass::Export => "EXPORT",
            CipherClass::Rc4 => "RC4",
            CipherClass::Des => "DES/3DES",
            CipherClass::CbcSha1 => "CBC-SHA1",
        }
    }
}

/// IANA name of a suite, or its number when tls-parser's table does not know it.
pub fn suite_name(id: u16) -> String {
    tls_parser::TlsCipherSuite::from_id(id)
        .map_or_else(|| format!("cipher suite 0x{id:04x}"), |s| s.name.into())
}

/// "fatal alert 70 protocol_version", named by tls-parser's alert table.
pub fn describe_alert(fatal: bool, code: u8) -> String {
    let level = if fatal { "fatal" } else { "warning" };
    let name = tls_parser::TlsAlertDescription(code).to_string();
    if name.starts_with("TlsAlertDescription") {
        return format!("{level} alert {code}");
    }
    let mut snake = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    format!("{level} alert {code} {snake}")
}

/// One handshake offering only one protocol version.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtocolAttempt {
    pub version: TlsVersion,
    pub outcome: AttemptOutcome,
}

/// One handshake offering only the suites of one class.
#[derive(Debug, Clone, PartialEq)]
pub struct CipherAttempt {
    pub class: CipherClass,
    pub outcome: AttemptOutcome,
}

/// What one handshake showed.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    /// A ServerHello (legacy) or a completed handshake (TLS 1.2/1.3) with
    /// the version offered; the suite the server chose.
    Accepted {
        version: TlsVersion,
        suite: u16,
    },
    /// The verify-full session's own handshake negotiated this version: the
    /// scan made no connection of its own for it.
    Negotiated {
        version: TlsVersion,
        suite: u16,
    },
    /// rustls' handshake was refused for want of a suite or group; a
    /// ClientHello as libpq's OpenSSL sends it, limited to this version,
    /// got a ServerHello choosing these.
    AcceptedByOpenssl(Negotiation),
    Refused(Refusal),
    Undecided(Undecided),
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptOutcome::Accepted { version, suite } => {
                write!(f, "ServerHello {}, {}", version.name(), suite_name(*suite))
            }
            AttemptOutcome::Negotiated { version, suite } => write!(
                f,
                "negotiated by the verify-full session: {}, {}",
                version.name(),
                suite_name(*suite)
            ),
            AttemptOutcome::AcceptedByOpenssl(chose) => write!(
                f,
                "ServerHello {chose} to a ClientHello as libpq's OpenSSL sends it (the \
                 probe's own TLS stack lacks what the server requires)"
            ),
            AttemptOutcome::Refused(r) => r.fmt(f),
            AttemptOutcome::Undecided(u) => u.fmt(f),
        }
    }
}

/// How the connection ended without a TLS answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangUp {
    /// Closed in reply to a hand-built ClientHello.
    Closed,
    /// Reset in reply to a hand-built ClientHello.
    Reset,
    /// Closed during a rustls handshake, before the server's certificate.
    DuringHandshake,
}

/// The server said no to what was offered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("{}", describe_alert(*.fatal, *.code))]
    Alert { fatal: bool, code: u8 },
    /// A ServerHello with another version than the one offered.
    #[error("server answered with {} instead", wire_version_name(*.0))]
    OtherVersion(u16),
    /// Closed without a TLS answer. After an SSLRequest that is a refusal;
    /// under direct TLS a server before PostgreSQL 17 does it to any hello.
    #[error("{}", match .0 {
        HangUp::Closed => "connection closed without a reply",
        HangUp::Reset => "connection reset without a reply",
        HangUp::DuringHandshake => "connection closed during the handshake",
    })]
    HungUp(HangUp),
    #[error("server incompatible: {0:?}")]
    Incompatible(rustls::PeerIncompatible),
    /// The cipher round: nothing up to TLS 1.2 was accepted.
    #[error("no version up to TLSv1.2 accepted, and TLSv1.3 has none of these suites")]
    NoVersionForSuites,
    /// The verify-full session offered this version among others and the
    /// server chose another (the highest it accepts).
    #[error("offered by the verify-full session, which the server answered with {}", .0.name())]
    NotChosen(TlsVersion),
    /// A ClientHello offering every version up to `max` was refused: this
    /// lower version is too (OpenSSL accepts one range of versions).
    #[error("{refusal} to a ClientHello offering every version up to {}", .max.name())]
    Range {
        max: TlsVersion,
        refusal: Box<Refusal>,
    },
}

/// A first record that is not a ServerHello or an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordFault {
    #[error("not a TLS record")]
    NotARecord,
    #[error("malformed alert")]
    MalformedAlert,
    #[error("handshake message other than ServerHello")]
    OtherHandshake,
    /// Legal, but no server does it.
    #[error("ServerHello split over records")]
    SplitServerHello,
    #[error("malformed ServerHello")]
    MalformedServerHello,
    #[error("unexpected record type")]
    UnexpectedType,
    #[error("more than {0} warning alerts")]
    TooManyWarnings(usize),
}

/// The fault and the first bytes, in hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{fault}: {head}")]
pub struct BadRecord {
    pub fault: RecordFault,
    pub head: String,
}

/// Why an attempt could not tell.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Undecided {
    #[error("no answer within {:.1} s", *.after_ms as f64 / 1000.0)]
    Timeout { after_ms: u64 },
    #[error(transparent)]
    Channel(ChannelFailure),
    #[error(transparent)]
    Reply(BadRecord),
    #[error("connection closed after {0} bytes of a record")]
    ClosedMidRecord(usize),
    #[error("reply larger than one TLS record")]
    TooLarge,
    /// More than OpenSSL's clients read of a first flight.
    #[error("the server's first flight exceeds {0} bytes (OpenSSL clients refuse certificate lists over 100 KiB)")]
    FlightTooLarge(usize),
    #[error("sending ClientHello: {0}")]
    Send(IoFailure),
    #[error("reading the reply: {0}")]
    Read(IoFailure),
    #[error("TLS error: {0}")]
    Tls(rustls::Error),
    /// The connection broke after the server's certificate: it did answer
    /// the version, so this is no refusal.
    #[error("TLS handshake failed: {0}")]
    Handshake(IoFailure),
    #[error("handshake completed with another version")]
    OtherVersionCompleted,
    /// The cipher round: a suite outside the class.
    #[error(
        "server answered {} with {}, which was not offered",
        wire_version_name(*.version),
        suite_name(*.suite)
    )]
    SuiteNotOffered { version: u16, suite: u16 },
    /// The cipher round: another version than the one offered.
    #[error(
        "server answered {} with {}, but {} was offered",
        wire_version_name(*.answered),
        suite_name(*.suite),
        wire_version_name(*.offered)
    )]
    VersionMismatch {
        offered: u16,
        answered: u16,
        suite: u16,
    },
    /// The cipher round: no version up to TLS 1.2 could be decided.
    #[error("no version up to TLSv1.2 could be tested")]
    NoTestableVersion,
    #[error("rustls cannot offer {}", .0.name())]
    CannotOffer(TlsVersion),
    #[error(transparent)]
    Unresolved(ResolveFailure),
    #[error("timed out at name resolution")]
    ResolveTimeout,
    #[error(transparent)]
    Internal(InternalError),
}

/// What the server chose for a ClientHello as libpq's OpenSSL sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiation {
    pub version: TlsVersion,
    /// The IANA cipher suite number.
    pub suite: u16,
    /// The key-exchange group, when the server named one (TLS 1.3 always;
    /// TLS 1.2 with ECDHE).
    pub group: Option<u16>,
    /// The weak classes of `--scan full` the suite is in.
    pub classes: Vec<CipherClass>,
    /// A CBC suite (MAC-then-encrypt), whatever its MAC.
    pub cbc: bool,
}

impl fmt::Display for Negotiation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.version.name(), suite_name(self.suite))?;
        match self.group {
            Some(group) => write!(f, " over {}", group_name(group)),
            None => Ok(()),
        }
    }
}

/// The session's second opinion: a ClientHello as libpq's OpenSSL sends it
/// (its suites and groups), made when the session's own was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum OpensslHello {
    /// The server answered it with a ServerHello.
    Chose(Negotiation),
    Refused(Refusal),
    Undecided(Undecided),
}

/// What the probe's own TLS stack (rustls with ring) lacks of what the
/// server chose for an OpenSSL client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lacking {
    Suite(u16),
    Group(u16),
}

/// A key-exchange group by the name OpenSSL and `ssl_ecdh_curve` use.
pub fn group_name(id: u16) -> String {
    match id {
        0x0017 => "prime256v1".into(),
        0x0018 => "secp384r1".into(),
        0x0019 => "secp521r1".into(),
        0x001d => "X25519".into(),
        0x001e => "X448".into(),
        0x0100..=0x0104 => format!(
            "ffdhe{}",
            [2048, 3072, 4096, 6144, 8192][usize::from(id - 0x100)]
        ),
        other => format!("group 0x{other:04x}"),
    }
}

/// What the protocol (and cipher) scan observed.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanFacts {
    pub level: ScanLevel,
    /// Always the five versions of [`TlsVersion::ALL`], in that order.
    pub protocols: Vec<ProtocolAttempt>,
    /// Present with `--scan full`, the classes of [`CipherClass::ALL`].
    pub ciphers: Option<Vec<CipherAttempt>>,
    /// Wall time of the whole scan.
    pub seconds: f64,
}

impl ScanFacts {
    /// Every attempt undecided for one reason (the host did not resolve).
    pub fn all_undecided(level: ScanLevel, why: &Undecided) -> ScanFacts {
        let outcome = || AttemptOutcome::Undecided(why.clone());
        ScanFacts {
            level,
            protocols: TlsVersion::ALL
                .map(|version| ProtocolAttempt {
                    version,
                    outcome: outcome(),
                })
                .to_vec(),
            ciphers: (level == ScanLevel::Full).then(|| {
                CipherClass::ALL
                    .map(|class| CipherAttempt {
                        class,
                        outcome: outcome(),
                    })
                    .to_vec()
            }),
            seconds: 0.0,
        }
    }
}
