//! Observations the probes make, as plain typed data.
//!
//! Facts carry no verdicts: nothing here says "ok" or "bad". `policy`
//! reads these and decides; `render` shows them and owns the public JSON
//! shape (`render::json`), so a field renamed here cannot change it.
//! Failures are enums built from the typed errors where they happen
//! (rustls, io), never from message text; their `Display` is the one line
//! a report shows.

pub mod audit;
mod auth;
mod cert;
mod scan;
mod wire;

use std::fmt;
use std::net::SocketAddr;

pub use auth::{code as auth_code, AuthMethod, ClientCertExchange, SessionAuth};
pub use cert::{
    CertChainFacts, CertFacts, CertProblem, ConstraintBreach, CrlProblem, EndPointHash,
    IssuerNotFound, ProbeLimit, Purpose, StrictOnlyIssue, StrictProblem, SystemStore, TrustSource,
};
pub use scan::{
    describe_alert, group_name, suite_name, AttemptOutcome, BadRecord, CipherAttempt, CipherClass,
    HangUp, Lacking, Negotiation, OpensslHello, ProtocolAttempt, RecordFault, Refusal, ScanFacts,
    ScanLevel, Undecided,
};
pub use wire::{AuthRequestSeen, Overrun, WireRecord, MAX_MESSAGE, MAX_SESSION_BYTES};

/// Protocol versions, oldest first, in PostgreSQL's spelling
/// (ssl_min_protocol_version, pg_stat_ssl): the one enum for the session,
/// the scan, the thresholds and the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    Ssl3,
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    pub const ALL: [TlsVersion; 5] = [
        TlsVersion::Ssl3,
        TlsVersion::Tls10,
        TlsVersion::Tls11,
        TlsVersion::Tls12,
        TlsVersion::Tls13,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Ssl3 => "SSLv3",
            TlsVersion::Tls10 => "TLSv1",
            TlsVersion::Tls11 => "TLSv1.1",
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
        }
    }

    /// PostgreSQL's spelling ("TLSv1.2", also "TLSv1.0"), case-insensitively.
    pub fn parse(s: &str) -> Option<TlsVersion> {
        match s.to_ascii_lowercase().as_str() {
            "sslv3" => Some(TlsVersion::Ssl3),
            "tlsv1" | "tlsv1.0" => Some(TlsVersion::Tls10),
            "tlsv1.1" => Some(TlsVersion::Tls11),
            "tlsv1.2" => Some(TlsVersion::Tls12),
            "tlsv1.3" => Some(TlsVersion::Tls13),
            _ => None,
        }
    }

    /// A version `--min-tls-version` may name: TLSv1 and up, as
    /// PostgreSQL's ssl_min_protocol_version.
    pub fn parse_minimum(s: &str) -> Option<TlsVersion> {
        TlsVersion::parse(s).filter(|v| *v >= TlsVersion::Tls10)
    }

    /// Versions no longer fit for use (RFC 7568, RFC 8996).
    pub fn is_legacy(self) -> bool {
        self < TlsVersion::Tls12
    }

    /// The protocol version number on the wire (0x0303 for TLS 1.2).
    pub fn wire(self) -> u16 {
        match self {
            TlsVersion::Ssl3 => 0x0300,
            TlsVersion::Tls10 => 0x0301,
            TlsVersion::Tls11 => 0x0302,
            TlsVersion::Tls12 => 0x0303,
            TlsVersion::Tls13 => 0x0304,
        }
    }

    pub fn from_wire(code: u16) -> Option<TlsVersion> {
        TlsVersion::ALL.into_iter().find(|v| v.wire() == code)
    }
}

/// A wire version number in PostgreSQL's spelling, else as hex.
pub fn wire_version_name(code: u16) -> String {
    TlsVersion::from_wire(code).map_or_else(|| format!("version 0x{code:04x}"), |v| v.name().into())
}

/// An I/O error as observed: its kind (what decisions look at) and its
/// text (what the report shows). Cloneable, unlike `std::io::Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoFailure {
    pub kind: std::io::ErrorKind,
    pub message: String,
}

impl From<&std::io::Error> for IoFailure {
    fn from(e: &std::io::Error) -> Self {
        IoFailure {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

impl fmt::Display for IoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The host name did not resolve to an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveFailure {
    #[error("cannot resolve host \"{host}\": {error}")]
    Lookup { host: String, error: IoFailure },
    #[error("host \"{host}\" has no addresses")]
    NoAddresses { host: String },
}

/// No TCP connection: the last address's error, as libpq reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectFailure {
    #[error("no address to connect to")]
    NoAddress,
    #[error("cannot connect to {addr}: {error}")]
    Refused { addr: SocketAddr, error: IoFailure },
}

/// The SSLRequest exchange did not end in 'S'.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SslRequestFailure {
    #[error("sending SSLRequest: {0}")]
    Send(IoFailure),
    #[error("reading SSLRequest reply: {0}")]
    Read(IoFailure),
    #[error("connection closed in reply to the SSLRequest")]
    Closed,
    /// 'N': the server does not offer TLS.
    #[error("server answered 'N' to the SSLRequest (no TLS)")]
    Refused,
    /// 'E': unauthenticated text follows, never shown (CVE-2024-10977).
    #[error("server answered the SSLRequest with an error instead of 'S' or 'N'")]
    Error,
    #[error("reply to SSLRequest was {}, not 'S' or 'N'", crate::hex::peek(&[*.0]))]
    Unexpected(u8),
}

/// Getting a socket ready for a ClientHello failed (TCP or SSLRequest).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelFailure {
    #[error(transparent)]
    Connect(#[from] ConnectFailure),
    #[error(transparent)]
    SslRequest(#[from] SslRequestFailure),
}

/// How far a TLS handshake got, for naming the stage that failed or hung.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum HandshakeProgress {
    #[default]
    NotStarted,
    CertificateSeen,
    /// The server proved possession of the key (CertificateVerify / ServerKeyExchange checked).
    Verified,
}

/// Why a TLS handshake did not produce a usable session.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HandshakeFailure {
    /// The server ended the connection before its certificate was seen:
    /// what PostgreSQL 16 and older do with a direct ClientHello.
    #[error("server closed the connection during the TLS handshake ({0})")]
    ClosedBeforeReply(IoFailure),
    /// The handshake completed without the `postgresql` ALPN protocol.
    #[error(
        "direct TLS connection was established without ALPN protocol \"postgresql\" \
         (libpq 17 refuses it too)"
    )]
    NoAlpn,
    /// rustls refused or was refused (alert, protocol error, certificate).
    #[error("{0}")]
    Tls(rustls::Error),
    /// The connection broke in another way.
    #[error("{0}")]
    Io(IoFailure),
}

impl HandshakeFailure {
    /// Classifies tokio-rustls's error by its typed cause.
    pub fn from_io(e: &std::io::Error, progress: HandshakeProgress) -> HandshakeFailure {
        use std::io::ErrorKind;
        if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            return HandshakeFailure::Tls(tls.clone());
        }
        let closed = matches!(
            e.kind(),
            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
        );
        // No certificate seen: taken as a hang-up on the ClientHello.
        if closed && progress == HandshakeProgress::NotStarted {
            HandshakeFailure::ClosedBeforeReply(e.into())
        } else {
            HandshakeFailure::Io(e.into())
        }
    }
}

/// A fault of the probe itself, not of the server.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InternalError {
    #[error("cannot configure TLS: {0}")]
    TlsConfig(rustls::Error),
    #[error("no random bytes for the ClientHello")]
    NoRandom,
    #[error("cannot encode {what}: {detail}")]
    Encode { what: &'static str, detail: String },
    #[error("host \"{0}\" is not a TLS name")]
    ServerName(String),
}

/// The network step a probe was in when it failed or ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Resolve,
    TcpConnect,
    SslRequest,
    TlsHandshake,
    Authentication,
    Query,
}

impl Stage {
    pub fn describe(self) -> &'static str {
        match self {
            Stage::Resolve => "name resolution",
            Stage::TcpConnect => "TCP connect",
            Stage::SslRequest => "SSLRequest",
            Stage::TlsHandshake => "TLS handshake",
            Stage::Authentication => "authentication",
            Stage::Query => "query",
        }
    }
}

/// Why the verify-full session did not complete.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionFailure {
    Resolve(ResolveFailure),
    Connect(ConnectFailure),
    SslRequest(SslRequestFailure),
    /// The certificate failed libpq's rules; no credential was sent.
    Certificate(CertProblem),
    /// TLS failed for another reason (alert, protocol error, no ALPN).
    Handshake(HandshakeFailure),
    /// The certificate passed libpq's rules, but the probe's own crypto
    /// cannot finish the handshake: not the server's fault.
    ProbeLimit(ProbeLimit),
    /// The server rejected the login (SQLSTATE given when the server sent one).
    Login {
        sqlstate: Option<String>,
        detail: String,
    },
    /// The server returned an error for the pg_stat_ssl query (or no row).
    Query {
        sqlstate: Option<String>,
        detail: String,
    },
    /// No answer within the time allowed, at the given stage.
    Timeout {
        stage: Stage,
        after_ms: u64,
    },
    /// The server sent more than the probe reads (see [`Overrun`]).
    Overrun(Overrun),
    /// A libpq keyword made the client refuse the connection, as libpq does.
    Refused(KeywordRefusal),
    /// The probe itself could not run the check.
    Internal(InternalError),
}

/// The connection refused by a libpq keyword's rule, before any credential
/// that rule protects was sent; the wording is libpq's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeywordRefusal {
    #[error("authentication method requirement \"{requirement}\" failed: {}", .refusal.reason())]
    RequireAuth {
        requirement: String,
        refusal: crate::conn::AuthRefusal,
    },
    #[error("the server negotiated {negotiated}, below ssl_min_protocol_version={}", .minimum.name())]
    TlsVersion {
        negotiated: String,
        minimum: TlsVersion,
    },
    #[error("server did not request an SSL certificate (sslcertmode=require)")]
    CertificateNotRequested,
    #[error("{reason} (target_session_attrs={})", .wanted.name())]
    SessionAttrs {
        wanted: crate::conn::TargetSessionAttrs,
        reason: &'static str,
    },
}

impl KeywordRefusal {
    /// The keyword whose rule refused.
    pub fn keyword(&self) -> &'static str {
        match self {
            KeywordRefusal::RequireAuth { .. } => "require_auth",
            KeywordRefusal::TlsVersion { .. } => "ssl_min_protocol_version",
            KeywordRefusal::CertificateNotRequested => "sslcertmode",
            KeywordRefusal::SessionAttrs { .. } => "target_session_attrs",
        }
    }
}

/// The row of `pg_stat_ssl` for the probe's own backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PgStatSsl {
    pub ssl: bool,
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub bits: Option<i32>,
    pub client_dn: Option<String>,
    pub client_serial: Option<String>,
    pub issuer_dn: Option<String>,
}

/// What the verify-full session observed.
#[derive(Debug, Clone, Default)]
pub struct SessionFacts {
    pub chain: CertChainFacts,
    /// `server_version_num`, when login succeeded.
    pub server_version_num: Option<i32>,
    pub pg_stat_ssl: Option<PgStatSsl>,
    /// Time from start of the TCP connect to a logged-in session, seconds.
    pub connect_seconds: Option<f64>,
    pub failure: Option<SessionFailure>,
    /// The server-side audit (`--audit`), run over this session after login.
    pub audit: Option<audit::AuditFacts>,
    /// What the session's own handshake showed of direct TLS, when it
    /// negotiated that way.
    pub direct_tls: Option<DirectTlsFacts>,
    /// The protocol after the handshake, as the wire tap saw it.
    pub wire: WireRecord,
    /// Whether the server asked for, and got, a client certificate.
    pub client_cert: ClientCertExchange,
    /// How the session authenticated (from `wire` and `client_cert`);
    /// None when no authentication request arrived.
    pub auth: Option<SessionAuth>,
    /// `sslkeylogfile` could not be written (the file and why).
    pub keylog_failure: Option<(std::path::PathBuf, IoFailure)>,
    /// The probe's own TLS session, as its handshake negotiated it.
    pub negotiated: Option<Negotiated>,
    /// The second opinion, sent only when the session's own ClientHello
    /// was refused (see probe/openssl_hello.rs).
    pub openssl_hello: Option<OpensslHello>,
    /// The probe's end of the TCP connection.
    pub local_addr: Option<SocketAddr>,
    /// Who the backend answering the queries thinks its client is.
    pub backend_client: Option<BackendClient>,
    /// Pgpool-II's answer to `SHOW pool_version`, asked only when the
    /// backend's client is not the probe.
    pub pool_version: Option<String>,
}

impl SessionFacts {
    /// Whether the backend's client is the probe's end of the connection
    /// (IPv4-mapped addresses compared as IPv4). A Unix-socket client, or
    /// another address or port, means a pooler or proxy in between: the
    /// backend's pg_stat_ssl row describes that link. True when there is
    /// nothing to compare (the row is taken as the probe's, as always).
    pub fn link_is_ours(&self) -> bool {
        let (Some(local), Some(backend)) = (self.local_addr, self.backend_client) else {
            return true;
        };
        let plain = |ip: std::net::IpAddr| match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        backend.addr.map(plain) == Some(plain(local.ip())) && backend.port == Some(local.port())
    }
}

/// The probe's own TLS session with whatever answered its SSLRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub version: TlsVersion,
    /// The IANA cipher suite number.
    pub suite: u16,
    /// The suite, in rustls's spelling of the IANA name.
    pub cipher: String,
    /// The key-exchange group (`secp256r1`, `X25519`), when there was one.
    pub group: Option<String>,
}

/// `inet_client_addr()` and `inet_client_port()` of the backend the
/// session's queries run in: NULL for a Unix-socket client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendClient {
    pub addr: Option<std::net::IpAddr>,
    pub port: Option<u16>,
}

/// Authentication method a server asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRequest {
    CleartextPassword,
    Md5Password,
    Sasl,
    Gss,
    Sspi,
    Kerberos,
    Other,
}

impl AuthRequest {
    pub fn describe(self) -> &'static str {
        match self {
            AuthRequest::CleartextPassword => "cleartext password",
            AuthRequest::Md5Password => "md5 password",
            AuthRequest::Sasl => "SASL (SCRAM-SHA-256)",
            AuthRequest::Gss => "GSSAPI",
            AuthRequest::Sspi => "SSPI",
            AuthRequest::Kerberos => "Kerberos V5",
            AuthRequest::Other => "an unknown method",
        }
    }
}

/// Bytes that are not a PostgreSQL backend message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadReply {
    #[error("unexpected reply {}", crate::hex::peek(.0))]
    Unexpected(Vec<u8>),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("malformed SASL mechanisms: {0}")]
    MalformedSasl(String),
    #[error("malformed error response: {0}")]
    MalformedError(String),
    #[error("truncated message")]
    Truncated,
    #[error("no complete message in the first {0} bytes")]
    TooLong(usize),
    #[error("connection closed after {0} bytes")]
    ClosedAfter(usize),
}

/// The server's first reply to a StartupMessage sent without TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaintextOutcome {
    /// ErrorResponse before any authentication request.
    Error {
        sqlstate: String,
        severity: String,
        message: String,
    },
    /// The server asked for credentials (the probe sent none).
    AuthRequested {
        method: AuthRequest,
        /// SASL mechanisms offered, when the method is SASL.
        mechanisms: Vec<String>,
    },
    /// AuthenticationOk: no credential needed at all.
    AuthOk,
    /// The peer closed the connection without a reply.
    Closed,
    NotPostgres(BadReply),
    Unresolved(ResolveFailure),
    Unreachable(ConnectFailure),
    /// The connection broke while sending or reading.
    Broken {
        during: &'static str,
        error: IoFailure,
    },
    Timeout {
        stage: Stage,
        after_ms: u64,
    },
}

#[derive(Debug, Clone)]
pub struct PlaintextFacts {
    pub outcome: PlaintextOutcome,
    pub seconds: f64,
}

/// A direct-TLS ClientHello (PostgreSQL 17's `sslnegotiation=direct`) and
/// what came of it.
#[derive(Debug, Clone, PartialEq)]
pub enum DirectTlsFacts {
    /// Handshake completed with ALPN `postgresql`.
    Negotiated,
    /// The handshake failed; `certificate_rejected` when it stopped because
    /// the certificate fails libpq's rules.
    Failed {
        failure: HandshakeFailure,
        progress: HandshakeProgress,
        certificate_rejected: bool,
    },
    Unreachable(ConnectFailure),
    /// No answer within the connection's own time limit.
    Timeout {
        after_ms: u64,
    },
    /// Still no answer once the other checks were done and their grace ran out.
    NoAnswerInGrace {
        grace_ms: u64,
    },
    /// The session logged in to a server before PostgreSQL 17 (this major):
    /// no direct ClientHello was sent.
    TooOld {
        major: u32,
    },
    /// The host did not resolve or the run ended before a handshake.
    NotAttempted,
    Internal(InternalError),
}

/// All facts from one run.
#[derive(Debug, Clone)]
pub struct Facts {
    pub session: SessionFacts,
    /// None when the plaintext check was skipped.
    pub plaintext: Option<PlaintextFacts>,
    /// None when the direct-TLS check was not asked for and the session
    /// did not negotiate directly.
    pub direct_tls: Option<DirectTlsFacts>,
    /// Wall time of the whole probe phase, seconds.
    pub total_seconds: f64,
    /// How long the probes had: from their start to the run's deadline.
    pub budget_seconds: f64,
    /// How long this target waited for its turn in a fleet before that
    /// (0 in a single run).
    pub queued_seconds: f64,
    /// Seconds since the Unix epoch when the probe ran (for days-left).
    pub now: i64,
    /// Protocol and cipher scan; None with `--scan none`.
    pub scan: Option<ScanFacts>,
    /// The probe's own client certificate (`sslcert`), when it has one.
    pub client_cert: Option<CertFacts>,
}

/// A Unix time as a UTC date, e.g. 2027-03-01.
pub fn date(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format!("@{unix}"))
}
