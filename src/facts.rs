//! Observations the probes make, as plain data.
//!
//! Facts carry no verdicts: nothing here says "ok" or "bad". `policy` reads
//! these and decides; `render` shows them. Every type serialises so the JSON
//! output can carry the raw observations next to the findings.

use serde::Serialize;

pub mod audit;

/// One X.509 certificate as the probe saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertFacts {
    /// X.509 version as written in the certificate (1, 2 or 3).
    pub version: u32,
    /// Subject distinguished name, RFC 4514 style.
    pub subject: String,
    pub issuer: String,
    /// Serial number as colon-separated hex, leading zeros kept.
    pub serial: String,
    /// Validity window, seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// Common Name(s) of the subject, in order.
    pub common_names: Vec<String>,
    /// dNSName entries of subjectAltName.
    pub san_dns: Vec<String>,
    /// iPAddress entries of subjectAltName, in text form.
    pub san_ip: Vec<String>,
    /// Key type and size, e.g. "RSA 2048", "EC P-256", "Ed25519".
    pub key: String,
    /// Signature algorithm name, e.g. "sha256WithRSAEncryption".
    pub signature_algorithm: String,
    /// basicConstraints cA flag (false when the extension is absent).
    pub is_ca: bool,
    pub self_signed: bool,
    /// SHA-256 of the DER, uppercase colon-separated hex.
    pub sha256_fingerprint: String,
}

/// Why a certificate chain fails libpq's `verify-ca`/`verify-full` rules.
///
/// Mirrors the OpenSSL verification errors libpq would report, so the
/// reason reads the way an engineer would see it from psql.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CertProblem {
    /// No path from the presented chain to a certificate in sslrootcert.
    UnknownIssuer {
        detail: String,
    },
    Expired {
        subject: String,
        not_after: i64,
    },
    NotYetValid {
        subject: String,
        not_before: i64,
    },
    /// The host name (or IP) the client asked for is not in the certificate.
    NameMismatch {
        host: String,
        presented: Vec<String>,
    },
    /// A signature in the chain does not verify.
    BadSignature {
        subject: String,
    },
    /// An issuing certificate is not allowed to act as a CA.
    NotCa {
        subject: String,
    },
    /// keyUsage/extendedKeyUsage forbid TLS server use.
    BadPurpose {
        subject: String,
        detail: String,
    },
    /// The server sent no certificate, or one that does not parse.
    Malformed {
        detail: String,
    },
    /// A critical extension OpenSSL does not process: it refuses such
    /// certificates rather than ignore what the issuer insisted on.
    UnhandledCriticalExtension {
        subject: String,
        oid: String,
    },
    /// A name in the leaf lies outside a CA's nameConstraints.
    NameConstraint {
        ca: String,
        name: String,
        detail: String,
    },
}

/// Everything learned about the server's certificate during the handshake.
///
/// Recorded before any verdict is reached, so it is present even when
/// verification (and therefore login) fails.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CertChainFacts {
    /// Certificates the server sent, leaf first.
    pub presented: Vec<CertFacts>,
    /// The sslrootcert certificate the chain ends at, when one was found.
    pub anchor: Option<CertFacts>,
    /// Host name the name check used (None under verify-ca).
    pub checked_name: Option<String>,
    /// libpq's verdict: `None` when the handshake never reached the certificate.
    pub libpq: Option<Result<(), CertProblem>>,
    /// The strict (webpki, as rustls and most modern clients) verdict, in words.
    pub strict: Option<Result<(), String>>,
    /// Why strict clients disagree with libpq (e.g. "X.509 v1 certificate").
    pub strict_only_issues: Vec<String>,
}

/// The network step a probe was in when it failed or ran out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SessionFailure {
    /// Host name did not resolve.
    Resolve { detail: String },
    /// TCP connection refused or unreachable.
    Connect { detail: String },
    /// The server answered the SSLRequest with 'N'.
    TlsRefused,
    /// The peer answered with something that is not PostgreSQL.
    NotPostgres { detail: String },
    /// The certificate failed libpq's rules; no credential was sent.
    Certificate { problem: CertProblem },
    /// TLS failed for another reason (alert, protocol error).
    Tls { detail: String },
    /// The server rejected the login (SQLSTATE given when the server sent one).
    Login {
        sqlstate: Option<String>,
        detail: String,
    },
    /// The server returned an error for the pg_stat_ssl query.
    Query {
        sqlstate: Option<String>,
        detail: String,
    },
    /// No answer within the time allowed, at the given stage.
    Timeout { stage: Stage, after_ms: u64 },
    /// The probe itself could not run the check (not the server's fault).
    Internal { detail: String },
}

/// The row of `pg_stat_ssl` for the probe's own backend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Default, Serialize)]
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
    /// What the session's own handshake showed about direct TLS, when it used it.
    pub direct_tls: Option<DirectTlsFacts>,
}

/// Authentication method a server asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
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

/// The server's first reply to a StartupMessage sent without TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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
    /// Bytes that are not a PostgreSQL backend message.
    NotPostgres {
        detail: String,
    },
    Unreachable {
        detail: String,
    },
    Timeout {
        stage: Stage,
        after_ms: u64,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct PlaintextFacts {
    pub outcome: PlaintextOutcome,
    pub seconds: f64,
}

/// Whether the server speaks PostgreSQL 17's direct TLS: a ClientHello as
/// the first bytes, answered with a handshake selecting ALPN `postgresql`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectTlsFacts {
    /// `None` when undecided (unreachable, timed out, handshake stopped at
    /// the certificate).
    pub supported: Option<bool>,
    pub detail: String,
}

/// All facts from one run.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    pub session: SessionFacts,
    /// None when the plaintext check was skipped.
    pub plaintext: Option<PlaintextFacts>,
    /// None when the direct-TLS check was not asked for.
    pub direct_tls: Option<DirectTlsFacts>,
    /// Wall time of the whole probe phase, seconds.
    pub total_seconds: f64,
    /// Seconds since the Unix epoch when the probe ran (for days-left).
    pub now: i64,
    /// Protocol and cipher scan; None with `--scan none`.
    pub scan: Option<ScanFacts>,
}

/// How much the scan tries (`--scan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanLevel {
    /// One handshake per protocol version.
    Protocols,
    /// Also one handshake per weak cipher class.
    Full,
}

/// Protocol versions the scan tries, oldest first; serialised in
/// PostgreSQL's spelling (ssl_min_protocol_version, pg_stat_ssl).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum ScanVersion {
    #[serde(rename = "SSLv3")]
    Ssl3,
    #[serde(rename = "TLSv1")]
    Tls10,
    #[serde(rename = "TLSv1.1")]
    Tls11,
    #[serde(rename = "TLSv1.2")]
    Tls12,
    #[serde(rename = "TLSv1.3")]
    Tls13,
}

impl ScanVersion {
    pub const ALL: [ScanVersion; 5] = [
        ScanVersion::Ssl3,
        ScanVersion::Tls10,
        ScanVersion::Tls11,
        ScanVersion::Tls12,
        ScanVersion::Tls13,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScanVersion::Ssl3 => "SSLv3",
            ScanVersion::Tls10 => "TLSv1",
            ScanVersion::Tls11 => "TLSv1.1",
            ScanVersion::Tls12 => "TLSv1.2",
            ScanVersion::Tls13 => "TLSv1.3",
        }
    }

    /// Versions no longer fit for use (RFC 7568, RFC 8996).
    pub fn is_legacy(self) -> bool {
        self < ScanVersion::Tls12
    }
}

/// One handshake restricted to one protocol version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProtocolAttempt {
    pub version: ScanVersion,
    /// None when the attempt could not decide (timeout, connect error, no 'S').
    pub accepted: Option<bool>,
    /// What the server answered, e.g. "fatal alert 70 protocol_version".
    pub detail: String,
}

/// Groups of weak cipher suites, one handshake each (see probe::scan::classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CipherClass {
    #[serde(rename = "NULL")]
    Null,
    #[serde(rename = "anonymous")]
    Anonymous,
    #[serde(rename = "EXPORT")]
    Export,
    #[serde(rename = "RC4")]
    Rc4,
    #[serde(rename = "DES/3DES")]
    Des,
    #[serde(rename = "CBC-SHA1")]
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

    /// Still sound today, only dated: reported, never alarming.
    pub fn is_informational(self) -> bool {
        self == CipherClass::CbcSha1
    }
}

/// One handshake offering only the suites of one class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CipherAttempt {
    pub class: CipherClass,
    pub accepted: Option<bool>,
    /// IANA name of the suite the server picked.
    pub chosen: Option<String>,
    pub informational: bool,
    pub detail: String,
}

/// What the protocol (and cipher) scan observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScanFacts {
    pub level: ScanLevel,
    /// Always the five versions of [`ScanVersion::ALL`], in that order.
    pub protocols: Vec<ProtocolAttempt>,
    /// Present with `--scan full`.
    pub ciphers: Option<Vec<CipherAttempt>>,
    /// Wall time of the whole scan.
    pub seconds: f64,
}
