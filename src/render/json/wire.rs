//! The JSON document's types: the public schema README documents, written
//! out field by field. Internal types never serialise themselves, so a
//! renamed fact cannot rename a field here; golden tests pin whole
//! documents. Add fields, never rename them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::conn::{ChannelBinding, RootCerts, SslMode, SslNegotiation, Target};
use crate::facts::audit::{ReloadCheck, TcpSession};
use crate::facts::{
    group_name, suite_name, AuthMethod, AuthRequest, CertChainFacts, CertFacts, CertProblem, Facts,
    OpensslHello, PgStatSsl, PlaintextOutcome, ScanLevel, SessionAuth, SessionFailure,
    SslRequestFailure, Stage, SystemStore,
};
use crate::policy::audit::{
    AuditReport, HbaReport, PlaintextSession, RuleFinding, SessionsReport, SettingFinding,
    SettingsReport,
};
use crate::policy::direct::DirectTlsReport;
use crate::policy::fleet::FleetReport;
use crate::policy::pooler::{Link, PoolerReport};
use crate::policy::scan::{CipherReport, ScanReport, VersionReport};
use crate::policy::{describe_handshake, Expiry, Finding, Report, Status};

/// The whole document.
#[derive(Debug, Serialize)]
pub struct Document {
    pub status: &'static str,
    pub exit_code: u8,
    pub summary: String,
    pub target: Option<TargetJson>,
    pub checks: Vec<CheckJson>,
    pub tls: Option<TlsJson>,
    pub auth: Option<AuthJson>,
    pub certificate: Option<CertificateJson>,
    pub plaintext: Option<PlaintextJson>,
    pub direct_tls: Option<DirectTlsJson>,
    pub failure: Option<FailureJson>,
    pub timings: Option<TimingsJson>,
    pub scan: Option<ScanJson>,
    pub audit: Option<AuditJson>,
    pub handshake: Option<HandshakeJson>,
    pub pooler: Option<PoolerJson>,
    pub openssl_hello: Option<OpensslHelloJson>,
}

impl Document {
    pub fn new(report: &Report, summary: String) -> Document {
        let facts = report.facts.as_ref();
        let target = report.target.as_ref();
        Document {
            status: report.status.label(),
            exit_code: report.status.exit_code(),
            summary,
            target: target.map(TargetJson::new),
            checks: report.findings.iter().map(CheckJson::new).collect(),
            tls: facts.and_then(TlsJson::new),
            auth: facts.and_then(|f| f.session.auth.as_ref().map(AuthJson::new)),
            certificate: facts.and_then(|f| CertificateJson::new(&f.session.chain, f.now, report)),
            plaintext: facts.and_then(|f| {
                f.plaintext.as_ref().map(|p| PlaintextJson {
                    outcome: OutcomeJson::new(&p.outcome),
                    seconds: p.seconds,
                })
            }),
            direct_tls: report.direct_tls.as_ref().map(DirectTlsJson::new),
            failure: facts.and_then(|f| {
                let failure = f.session.failure.as_ref()?;
                Some(FailureJson::new(failure, target?))
            }),
            timings: facts.map(TimingsJson::new),
            scan: report.scan.as_ref().map(ScanJson::new),
            audit: report.audit.as_ref().map(AuditJson::new),
            handshake: facts.and_then(|f| {
                f.session.negotiated.as_ref().map(|n| HandshakeJson {
                    version: n.version.name(),
                    cipher: n.cipher.clone(),
                })
            }),
            pooler: report.pooler.as_ref().map(PoolerJson::new),
            openssl_hello: facts
                .and_then(|f| f.session.openssl_hello.as_ref())
                .map(OpensslHelloJson::new),
        }
    }
}

/// The session's second opinion (a ClientHello as libpq's OpenSSL sends
/// it), made only when the probe's own ClientHello was refused.
#[derive(Debug, Serialize)]
pub struct OpensslHelloJson {
    /// `chose`, `refused` or `undecided`.
    pub answer: &'static str,
    pub version: Option<&'static str>,
    /// IANA name.
    pub suite: Option<String>,
    /// OpenSSL's name (`secp521r1`).
    pub group: Option<String>,
    pub detail: String,
}

impl OpensslHelloJson {
    fn new(hello: &OpensslHello) -> OpensslHelloJson {
        match hello {
            OpensslHello::Chose(chose) => OpensslHelloJson {
                answer: "chose",
                version: Some(chose.version.name()),
                suite: Some(suite_name(chose.suite)),
                group: chose.group.map(group_name),
                detail: chose.to_string(),
            },
            OpensslHello::Refused(refusal) => OpensslHelloJson {
                answer: "refused",
                version: None,
                suite: None,
                group: None,
                detail: refusal.to_string(),
            },
            OpensslHello::Undecided(why) => OpensslHelloJson {
                answer: "undecided",
                version: None,
                suite: None,
                group: None,
                detail: why.to_string(),
            },
        }
    }
}

/// A fleet's document: the counts, then one single-target document per
/// target with its `name`.
#[derive(Debug, Serialize)]
pub struct FleetDocument {
    pub status: &'static str,
    pub exit_code: u8,
    pub summary: String,
    pub counts: CountsJson,
    pub timings: FleetTimingsJson,
    pub targets: Vec<NamedDocument>,
}

#[derive(Debug, Serialize)]
pub struct CountsJson {
    pub ok: usize,
    pub warning: usize,
    pub critical: usize,
    pub unknown: usize,
    pub total: usize,
}

#[derive(Debug, Serialize)]
pub struct FleetTimingsJson {
    pub total_seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct NamedDocument {
    pub name: String,
    #[serde(flatten)]
    pub document: Document,
}

impl FleetDocument {
    pub fn new(fleet: &FleetReport, summary: String) -> FleetDocument {
        let c = fleet.counts;
        FleetDocument {
            status: fleet.status.label(),
            exit_code: fleet.status.exit_code(),
            summary,
            counts: CountsJson {
                ok: c.ok,
                warning: c.warning,
                critical: c.critical,
                unknown: c.unknown,
                total: c.total(),
            },
            timings: FleetTimingsJson {
                total_seconds: fleet.total_seconds,
            },
            targets: fleet
                .targets
                .iter()
                .map(|t| NamedDocument {
                    name: t.name.clone(),
                    document: Document::new(&t.report, super::super::summary(&t.report)),
                })
                .collect(),
        }
    }
}

fn status(s: Status) -> &'static str {
    s.label()
}

#[derive(Debug, Serialize)]
pub struct TargetJson {
    pub host: String,
    pub hostaddr: Option<String>,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    pub sslmode: &'static str,
    pub sslrootcert: String,
    pub sslcert: Option<String>,
    pub channel_binding: &'static str,
    pub application_name: String,
    pub sslnegotiation: &'static str,
    pub notes: Vec<String>,
}

impl TargetJson {
    fn new(t: &Target) -> TargetJson {
        TargetJson {
            host: t.host.clone(),
            hostaddr: t.hostaddr.map(|a| a.to_string()),
            port: t.port,
            user: t.user.clone(),
            dbname: t.dbname.clone(),
            sslmode: match t.sslmode {
                SslMode::VerifyCa => "verify-ca",
                SslMode::VerifyFull => "verify-full",
            },
            sslrootcert: match &t.sslrootcert {
                RootCerts::File(p) => p.display().to_string(),
                RootCerts::System(_) => "system".to_string(),
            },
            sslcert: t.sslcert.as_ref().map(|p| p.display().to_string()),
            channel_binding: match t.channel_binding {
                ChannelBinding::Disable => "disable",
                ChannelBinding::Prefer => "prefer",
                ChannelBinding::Require => "require",
            },
            application_name: t.application_name.clone(),
            sslnegotiation: match t.sslnegotiation {
                SslNegotiation::Postgres => "postgres",
                SslNegotiation::Direct => "direct",
            },
            notes: t.notes.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CheckJson {
    pub name: &'static str,
    pub status: &'static str,
    pub summary: String,
}

impl CheckJson {
    fn new(f: &Finding) -> CheckJson {
        CheckJson {
            name: f.check.name(),
            status: status(f.status),
            summary: f.summary.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TlsJson {
    pub ssl: bool,
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub bits: Option<i32>,
    pub client_dn: Option<String>,
    pub client_serial: Option<String>,
    pub issuer_dn: Option<String>,
    pub server_version_num: Option<i32>,
}

impl TlsJson {
    fn new(facts: &Facts) -> Option<TlsJson> {
        let s: &PgStatSsl = facts.session.pg_stat_ssl.as_ref()?;
        Some(TlsJson {
            ssl: s.ssl,
            version: s.version.clone(),
            cipher: s.cipher.clone(),
            bits: s.bits,
            client_dn: s.client_dn.clone(),
            client_serial: s.client_serial.clone(),
            issuer_dn: s.issuer_dn.clone(),
            server_version_num: facts.session.server_version_num,
        })
    }
}

/// The probe's own TLS session: what a client of this endpoint gets,
/// whoever answered (PostgreSQL, or a pooler in front of it).
#[derive(Debug, Serialize)]
pub struct HandshakeJson {
    pub version: &'static str,
    pub cipher: String,
}

/// A pooler or proxy between the probe and PostgreSQL.
#[derive(Debug, Serialize)]
pub struct PoolerJson {
    /// "PgBouncer", "Pgpool-II <version>", or null when it did not say.
    pub name: Option<String>,
    /// `unix_socket` or `tcp`: the pooler's link to PostgreSQL.
    pub link: &'static str,
    /// The pooler's address as PostgreSQL sees it (tcp only).
    pub link_from: Option<String>,
    /// pg_stat_ssl's protocol on that link, null without TLS.
    pub link_tls: Option<String>,
    pub status: &'static str,
}

impl PoolerJson {
    fn new(p: &PoolerReport) -> PoolerJson {
        let (link, link_from, link_tls) = match &p.link {
            Link::UnixSocket => ("unix_socket", None, None),
            Link::Tcp { from, tls } => ("tcp", Some(from.to_string()), tls.clone()),
        };
        PoolerJson {
            name: p.name.clone(),
            link,
            link_from,
            link_tls,
            status: status(p.finding.status),
        }
    }
}

/// How the session authenticated, as seen on the wire.
#[derive(Debug, Serialize)]
pub struct AuthJson {
    /// `trust`, `certificate`, `password`, `md5`, `scram-sha-256`,
    /// `scram-sha-256-plus`, `gss`, `sspi`, `sasl`, `unknown`.
    pub method: &'static str,
    /// The channel-binding type with `scram-sha-256-plus`, else null.
    pub channel_binding: Option<String>,
    /// SASL mechanisms the server offered (empty without SASL).
    pub mechanisms_offered: Vec<String>,
    pub client_certificate_requested: bool,
    pub client_certificate_sent: bool,
    /// AuthenticationOk arrived.
    pub completed: bool,
}

impl AuthJson {
    fn new(a: &SessionAuth) -> AuthJson {
        AuthJson {
            method: a.method.name(),
            channel_binding: match &a.method {
                AuthMethod::ScramSha256Plus { channel_binding } => Some(channel_binding.clone()),
                _ => None,
            },
            mechanisms_offered: a.offered.clone(),
            client_certificate_requested: a.client_cert.requested,
            client_certificate_sent: a.client_cert.sent,
            completed: a.completed,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CertJson {
    pub version: u32,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    pub common_names: Vec<String>,
    pub san_dns: Vec<String>,
    pub san_ip: Vec<String>,
    pub key: String,
    pub signature_algorithm: String,
    pub is_ca: bool,
    pub self_signed: bool,
    pub sha256_fingerprint: String,
}

impl CertJson {
    fn new(c: &CertFacts) -> CertJson {
        CertJson {
            version: c.version,
            subject: c.subject.clone(),
            issuer: c.issuer.clone(),
            serial: c.serial.clone(),
            not_before: c.not_before,
            not_after: c.not_after,
            common_names: c.common_names.clone(),
            san_dns: c.san_dns.clone(),
            san_ip: c.san_ip.clone(),
            key: c.key.clone(),
            signature_algorithm: c.signature_algorithm.clone(),
            is_ca: c.is_ca,
            self_signed: c.self_signed,
            sha256_fingerprint: c.sha256_fingerprint.clone(),
        }
    }
}

/// `"accepted"`, or why not.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Verdict<T> {
    Accepted(&'static str),
    Rejected(T),
}

#[derive(Debug, Serialize)]
pub struct CertificateJson {
    pub leaf: CertJson,
    pub days_left: i64,
    pub chain: Vec<CertJson>,
    pub anchor: Option<CertJson>,
    pub checked_name: Option<String>,
    pub libpq: Option<Verdict<ProblemJson>>,
    pub strict: Option<Verdict<String>>,
    pub strict_only_issues: Vec<String>,
    pub soonest_expiry: Option<ExpiryJson>,
    /// With `sslrootcert=system`: the store that decided.
    pub trust_store: Option<TrustStoreJson>,
}

/// What `sslrootcert=system` read: `kind` `os` (with the file and
/// directories OpenSSL's lookup found) or `webpki_roots` (no OS store).
#[derive(Debug, Serialize)]
pub struct TrustStoreJson {
    pub kind: &'static str,
    pub file: Option<String>,
    pub dirs: Vec<String>,
    pub certificates: usize,
}

impl TrustStoreJson {
    fn new(store: &SystemStore) -> TrustStoreJson {
        match store {
            SystemStore::Os {
                file,
                dirs,
                certificates,
            } => TrustStoreJson {
                kind: "os",
                file: file.as_ref().map(|f| f.display().to_string()),
                dirs: dirs.iter().map(|d| d.display().to_string()).collect(),
                certificates: *certificates,
            },
            SystemStore::WebpkiRoots { certificates } => TrustStoreJson {
                kind: "webpki_roots",
                file: None,
                dirs: Vec::new(),
                certificates: *certificates,
            },
        }
    }
}

impl CertificateJson {
    fn new(chain: &CertChainFacts, now: i64, report: &Report) -> Option<CertificateJson> {
        let leaf = chain.presented.first()?;
        Some(CertificateJson {
            leaf: CertJson::new(leaf),
            days_left: crate::policy::days_left(leaf.not_after, now),
            chain: chain.presented.iter().map(CertJson::new).collect(),
            anchor: chain.anchor.as_ref().map(CertJson::new),
            checked_name: chain.checked_name.clone(),
            libpq: chain.libpq.as_ref().map(|v| match v {
                Ok(()) => Verdict::Accepted("accepted"),
                Err(p) => Verdict::Rejected(ProblemJson::new(p)),
            }),
            strict: chain.strict.as_ref().map(|v| match v {
                Ok(()) => Verdict::Accepted("accepted"),
                Err(p) => Verdict::Rejected(p.to_string()),
            }),
            strict_only_issues: chain
                .strict_only_issues
                .iter()
                .map(ToString::to_string)
                .collect(),
            soonest_expiry: report.expiry.as_ref().map(ExpiryJson::new),
            trust_store: chain.system_store.as_ref().map(TrustStoreJson::new),
        })
    }
}

#[derive(Debug, Serialize)]
pub struct ExpiryJson {
    pub role: &'static str,
    pub subject: String,
    pub not_after: i64,
    pub days_left: i64,
}

impl ExpiryJson {
    fn new(e: &Expiry) -> ExpiryJson {
        ExpiryJson {
            role: e.role.name(),
            subject: e.subject.clone(),
            not_after: e.not_after,
            days_left: e.days_left,
        }
    }
}

/// Why libpq's rules refuse the chain: `kind` and its particulars.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProblemJson {
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
    NameMismatch {
        host: String,
        presented: Vec<String>,
    },
    BadSignature {
        subject: String,
    },
    NotCa {
        subject: String,
    },
    BadPurpose {
        subject: String,
        detail: String,
    },
    Malformed {
        detail: String,
    },
    UnhandledCriticalExtension {
        subject: String,
        oid: String,
    },
    NameConstraint {
        ca: String,
        name: String,
        detail: String,
    },
    /// Below OpenSSL security level 2: a key too small or a digest too weak.
    SecurityLevel {
        subject: String,
        detail: String,
    },
    PathLengthExceeded {
        subject: String,
        detail: String,
    },
    ChainTooLong {
        detail: String,
    },
    BudgetExhausted {
        detail: String,
    },
    Revoked {
        subject: String,
        serial: String,
        crl: String,
    },
    /// A CRL missing, expired, not yet valid or not verifying.
    Crl {
        detail: String,
    },
    /// The probe's own crypto cannot check a signature OpenSSL can: no verdict.
    ProbeCannotVerify {
        detail: String,
    },
}

impl ProblemJson {
    fn new(p: &CertProblem) -> ProblemJson {
        match p {
            CertProblem::UnknownIssuer(why) => ProblemJson::UnknownIssuer {
                detail: why.to_string(),
            },
            CertProblem::Expired { subject, not_after } => ProblemJson::Expired {
                subject: subject.clone(),
                not_after: *not_after,
            },
            CertProblem::NotYetValid {
                subject,
                not_before,
            } => ProblemJson::NotYetValid {
                subject: subject.clone(),
                not_before: *not_before,
            },
            CertProblem::NameMismatch { host, presented } => ProblemJson::NameMismatch {
                host: host.clone(),
                presented: presented.clone(),
            },
            CertProblem::BadSignature { subject } => ProblemJson::BadSignature {
                subject: subject.clone(),
            },
            CertProblem::NotCa { subject } => ProblemJson::NotCa {
                subject: subject.clone(),
            },
            CertProblem::BadPurpose { subject, purpose } => ProblemJson::BadPurpose {
                subject: subject.clone(),
                detail: purpose.to_string(),
            },
            CertProblem::Malformed { detail } => ProblemJson::Malformed {
                detail: detail.clone(),
            },
            CertProblem::UnhandledCriticalExtension { subject, oid } => {
                ProblemJson::UnhandledCriticalExtension {
                    subject: subject.clone(),
                    oid: oid.clone(),
                }
            }
            CertProblem::NameConstraint { ca, name, breach } => ProblemJson::NameConstraint {
                ca: ca.clone(),
                name: name.clone(),
                detail: breach.to_string(),
            },
            CertProblem::KeyTooWeak { subject, .. }
            | CertProblem::DigestTooWeak { subject, .. } => ProblemJson::SecurityLevel {
                subject: subject.clone(),
                detail: p.to_string(),
            },
            CertProblem::PathLengthExceeded { subject, .. } => ProblemJson::PathLengthExceeded {
                subject: subject.clone(),
                detail: p.to_string(),
            },
            CertProblem::ChainTooLong(_) => ProblemJson::ChainTooLong {
                detail: p.to_string(),
            },
            CertProblem::BudgetExhausted { .. } => ProblemJson::BudgetExhausted {
                detail: p.to_string(),
            },
            CertProblem::Revoked {
                subject,
                serial,
                crl,
            } => ProblemJson::Revoked {
                subject: subject.clone(),
                serial: serial.clone(),
                crl: crl.clone(),
            },
            CertProblem::Crl(why) => ProblemJson::Crl {
                detail: why.to_string(),
            },
            CertProblem::ProbeCannotVerify(limit) => ProblemJson::ProbeCannotVerify {
                detail: limit.to_string(),
            },
        }
    }
}

fn stage(s: Stage) -> &'static str {
    match s {
        Stage::Resolve => "resolve",
        Stage::TcpConnect => "tcp_connect",
        Stage::SslRequest => "ssl_request",
        Stage::TlsHandshake => "tls_handshake",
        Stage::Authentication => "authentication",
        Stage::Query => "query",
    }
}

#[derive(Debug, Serialize)]
pub struct PlaintextJson {
    pub outcome: OutcomeJson,
    pub seconds: f64,
}

/// The plaintext check's first reply: `kind` and its particulars.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutcomeJson {
    Error {
        sqlstate: String,
        severity: String,
        message: String,
    },
    AuthRequested {
        method: &'static str,
        mechanisms: Vec<String>,
    },
    AuthOk,
    Closed,
    NotPostgres {
        detail: String,
    },
    Unreachable {
        detail: String,
    },
    Timeout {
        stage: &'static str,
        after_ms: u64,
    },
}

impl OutcomeJson {
    fn new(o: &PlaintextOutcome) -> OutcomeJson {
        match o {
            PlaintextOutcome::Error {
                sqlstate,
                severity,
                message,
            } => OutcomeJson::Error {
                sqlstate: sqlstate.clone(),
                severity: severity.clone(),
                message: message.clone(),
            },
            PlaintextOutcome::AuthRequested { method, mechanisms } => OutcomeJson::AuthRequested {
                method: match method {
                    AuthRequest::CleartextPassword => "cleartext-password",
                    AuthRequest::Md5Password => "md5-password",
                    AuthRequest::Sasl => "sasl",
                    AuthRequest::Gss => "gss",
                    AuthRequest::Sspi => "sspi",
                    AuthRequest::Kerberos => "kerberos",
                    AuthRequest::Other => "other",
                },
                mechanisms: mechanisms.clone(),
            },
            PlaintextOutcome::AuthOk => OutcomeJson::AuthOk,
            PlaintextOutcome::Closed => OutcomeJson::Closed,
            PlaintextOutcome::NotPostgres(bad) => OutcomeJson::NotPostgres {
                detail: bad.to_string(),
            },
            PlaintextOutcome::Unresolved(f) => OutcomeJson::Unreachable {
                detail: f.to_string(),
            },
            PlaintextOutcome::Unreachable(f) => OutcomeJson::Unreachable {
                detail: f.to_string(),
            },
            PlaintextOutcome::Broken { during, error } => OutcomeJson::Unreachable {
                detail: format!("{during}: {error}"),
            },
            PlaintextOutcome::Timeout { stage: s, after_ms } => OutcomeJson::Timeout {
                stage: stage(*s),
                after_ms: *after_ms,
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DirectTlsJson {
    pub supported: Option<bool>,
    pub detail: String,
}

impl DirectTlsJson {
    fn new(r: &DirectTlsReport) -> DirectTlsJson {
        DirectTlsJson {
            supported: r.supported,
            detail: r.detail.clone(),
        }
    }
}

/// Why the verify-full session did not complete: `kind` and particulars.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailureJson {
    Resolve {
        detail: String,
    },
    Connect {
        detail: String,
    },
    TlsRefused,
    NotPostgres {
        detail: String,
    },
    Certificate {
        problem: ProblemJson,
    },
    Tls {
        detail: String,
    },
    /// The probe's own crypto could not finish the handshake (not the server's fault).
    ProbeLimit {
        detail: String,
    },
    Login {
        sqlstate: Option<String>,
        detail: String,
    },
    Query {
        sqlstate: Option<String>,
        detail: String,
    },
    Timeout {
        stage: &'static str,
        after_ms: u64,
    },
    TooLarge {
        detail: String,
    },
    Internal {
        detail: String,
    },
    /// A libpq keyword's rule refused the connection (`require_auth`,
    /// `ssl_min_protocol_version`, `sslcertmode`, `target_session_attrs`).
    Refused {
        keyword: &'static str,
        detail: String,
    },
}

impl FailureJson {
    fn new(f: &SessionFailure, target: &Target) -> FailureJson {
        match f {
            SessionFailure::Resolve(r) => FailureJson::Resolve {
                detail: r.to_string(),
            },
            SessionFailure::Connect(c) => FailureJson::Connect {
                detail: c.to_string(),
            },
            SessionFailure::SslRequest(s) => match s {
                SslRequestFailure::Refused => FailureJson::TlsRefused,
                SslRequestFailure::Closed | SslRequestFailure::Unexpected(_) => {
                    FailureJson::NotPostgres {
                        detail: s.to_string(),
                    }
                }
                SslRequestFailure::Error => FailureJson::Tls {
                    detail: s.to_string(),
                },
                SslRequestFailure::Send(_) | SslRequestFailure::Read(_) => FailureJson::Connect {
                    detail: s.to_string(),
                },
            },
            SessionFailure::Certificate(p) => FailureJson::Certificate {
                problem: ProblemJson::new(p),
            },
            SessionFailure::Handshake(h) => FailureJson::Tls {
                detail: describe_handshake(h, target),
            },
            SessionFailure::ProbeLimit(limit) => FailureJson::ProbeLimit {
                detail: limit.to_string(),
            },
            SessionFailure::Login { sqlstate, detail } => FailureJson::Login {
                sqlstate: sqlstate.clone(),
                detail: detail.clone(),
            },
            SessionFailure::Query { sqlstate, detail } => FailureJson::Query {
                sqlstate: sqlstate.clone(),
                detail: detail.clone(),
            },
            SessionFailure::Timeout { stage: s, after_ms } => FailureJson::Timeout {
                stage: stage(*s),
                after_ms: *after_ms,
            },
            SessionFailure::Overrun(o) => FailureJson::TooLarge {
                detail: o.to_string(),
            },
            SessionFailure::Internal(e) => FailureJson::Internal {
                detail: e.to_string(),
            },
            SessionFailure::Refused(r) => FailureJson::Refused {
                keyword: r.keyword(),
                detail: r.to_string(),
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TimingsJson {
    pub connect_seconds: Option<f64>,
    pub plaintext_seconds: Option<f64>,
    pub total_seconds: f64,
}

impl TimingsJson {
    fn new(f: &Facts) -> TimingsJson {
        TimingsJson {
            connect_seconds: f.session.connect_seconds,
            plaintext_seconds: f.plaintext.as_ref().map(|p| p.seconds),
            total_seconds: f.total_seconds,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ScanJson {
    pub level: &'static str,
    pub protocols: Vec<ProtocolJson>,
    pub ciphers: Option<Vec<CipherJson>>,
    pub seconds: f64,
}

impl ScanJson {
    fn new(s: &ScanReport) -> ScanJson {
        ScanJson {
            level: match s.level {
                ScanLevel::Protocols => "protocols",
                ScanLevel::Full => "full",
            },
            protocols: s.protocols.iter().map(ProtocolJson::new).collect(),
            ciphers: s
                .ciphers
                .as_ref()
                .map(|c| c.iter().map(CipherJson::new).collect()),
            seconds: s.seconds,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ProtocolJson {
    pub version: &'static str,
    pub accepted: Option<bool>,
    pub detail: String,
}

impl ProtocolJson {
    fn new(p: &VersionReport) -> ProtocolJson {
        ProtocolJson {
            version: p.version.name(),
            accepted: p.accepted,
            detail: p.detail.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CipherJson {
    pub class: &'static str,
    pub accepted: Option<bool>,
    pub chosen: Option<String>,
    pub informational: bool,
    pub detail: String,
}

impl CipherJson {
    fn new(c: &CipherReport) -> CipherJson {
        CipherJson {
            class: c.class.name(),
            accepted: c.accepted,
            chosen: c.chosen.clone(),
            informational: c.informational,
            detail: c.detail.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AuditJson {
    pub settings: Option<SettingsJson>,
    pub hba_rules: Vec<RuleJson>,
    pub hba: Option<HbaJson>,
    pub sessions: Option<SessionsJson>,
    pub failure: Option<String>,
    pub rotation: Option<RotationJson>,
}

impl AuditJson {
    fn new(a: &AuditReport) -> AuditJson {
        AuditJson {
            settings: a.settings.as_ref().map(SettingsJson::new),
            hba_rules: a.hba_rules.iter().map(RuleJson::new).collect(),
            hba: a.hba.as_ref().map(HbaJson::new),
            sessions: a.sessions.as_ref().map(SessionsJson::new),
            failure: a.failure.clone(),
            rotation: a.rotation.as_ref().map(|r| RotationJson {
                status: status(r.status),
                method: r.method,
                served_differs: r.served_differs,
                changed_files: r.changed_files.clone(),
                mismatches: r.mismatches.clone(),
            }),
        }
    }
}

/// `audit.rotation`: served versus on disk, settings versus running.
#[derive(Debug, Serialize)]
pub struct RotationJson {
    pub status: &'static str,
    /// `content` (the shipped function), `mtime` (pg_stat_file) or `not_checked`.
    pub method: &'static str,
    /// The served leaf is not the one in ssl_cert_file (null: not compared).
    pub served_differs: Option<bool>,
    /// TLS files modified after the last configuration load.
    pub changed_files: Vec<String>,
    /// Settings the running TLS configuration does not follow.
    pub mismatches: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct SettingsJson {
    pub status: &'static str,
    pub values: BTreeMap<String, String>,
    pub findings: Vec<SettingFindingJson>,
}

impl SettingsJson {
    fn new(s: &SettingsReport) -> SettingsJson {
        SettingsJson {
            status: status(s.status),
            values: s.values.clone(),
            findings: s
                .findings
                .iter()
                .map(|f: &SettingFinding| SettingFindingJson {
                    setting: f.setting.clone(),
                    value: f.value.clone(),
                    status: status(f.status),
                    reason: f.reason.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SettingFindingJson {
    pub setting: String,
    pub value: Option<String>,
    pub status: &'static str,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct RuleJson {
    pub file: String,
    pub line: Option<i32>,
    pub status: &'static str,
    pub reason: String,
    pub rule: Option<String>,
}

impl RuleJson {
    fn new(f: &RuleFinding) -> RuleJson {
        RuleJson {
            file: f.file.clone(),
            line: f.line,
            status: status(f.status),
            reason: f.reason.clone(),
            rule: f.rule.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct HbaJson {
    pub status: &'static str,
    pub file: String,
    pub rules: usize,
    pub catch_all_reject: CatchAllJson,
    pub reload: ReloadJson,
    pub differs_from_running: Option<bool>,
}

impl HbaJson {
    fn new(h: &HbaReport) -> HbaJson {
        HbaJson {
            status: status(h.status),
            file: h.file.clone(),
            rules: h.rules,
            catch_all_reject: CatchAllJson {
                ipv4: h.catch_all_reject.ipv4,
                ipv6: h.catch_all_reject.ipv6,
            },
            reload: ReloadJson::new(&h.reload),
            differs_from_running: h.differs_from_running,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CatchAllJson {
    pub ipv4: Option<i32>,
    pub ipv6: Option<i32>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReloadJson {
    Checked {
        file_modified: f64,
        loaded: f64,
        pending: bool,
    },
    NotChecked {
        reason: String,
    },
    NotRun,
}

impl ReloadJson {
    fn new(r: &ReloadCheck) -> ReloadJson {
        match r {
            ReloadCheck::Checked {
                file_modified,
                loaded,
                pending,
            } => ReloadJson::Checked {
                file_modified: *file_modified,
                loaded: *loaded,
                pending: *pending,
            },
            ReloadCheck::NotChecked(why) => ReloadJson::NotChecked {
                reason: why.to_string(),
            },
            ReloadCheck::NotRun => ReloadJson::NotRun,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SessionsJson {
    pub status: &'static str,
    pub total: usize,
    pub tls: usize,
    pub gss: usize,
    pub plaintext: usize,
    pub plaintext_allowed: usize,
    pub plaintext_sessions: Vec<PlaintextSessionJson>,
}

impl SessionsJson {
    fn new(s: &SessionsReport) -> SessionsJson {
        SessionsJson {
            status: status(s.status),
            total: s.total,
            tls: s.tls,
            gss: s.gss,
            plaintext: s.plaintext,
            plaintext_allowed: s.plaintext_allowed,
            plaintext_sessions: s
                .plaintext_sessions
                .iter()
                .map(PlaintextSessionJson::new)
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PlaintextSessionJson {
    pub pid: i32,
    pub user: Option<String>,
    pub database: Option<String>,
    pub client_addr: Option<String>,
    pub application_name: Option<String>,
    pub backend_type: Option<String>,
    pub ssl: Option<bool>,
    pub tls_version: Option<String>,
    pub gss_encrypted: Option<bool>,
    pub replication: bool,
    pub allowed: bool,
    pub status: &'static str,
}

impl PlaintextSessionJson {
    fn new(p: &PlaintextSession) -> PlaintextSessionJson {
        let s: &TcpSession = &p.session;
        PlaintextSessionJson {
            pid: s.pid,
            user: s.user.clone(),
            database: s.database.clone(),
            client_addr: s.client_addr.clone(),
            application_name: s.application_name.clone(),
            backend_type: s.backend_type.clone(),
            ssl: s.ssl,
            tls_version: s.tls_version.clone(),
            gss_encrypted: s.gss_encrypted,
            replication: p.replication,
            allowed: p.allowed,
            status: status(p.status),
        }
    }
}
