//! Turns facts plus thresholds into findings; the run's status is the worst.
//!
//! Each finding is one [`Check`] with a status and a one-line reason. A
//! check with no data to judge (the certificate when TCP was refused) is
//! left out rather than reported twice: the failure that stopped it is the
//! finding. Every verdict of the probe is made here, nowhere else: what a
//! scan outcome or a direct-TLS handshake means for the run, which
//! certificate expires first, what a plaintext reply proves.

pub mod audit;
pub mod channel_binding;
pub mod direct;
pub mod fleet;
pub mod openssl_hello;
pub mod pooler;
pub mod scan;

use crate::conn::{SslMode, Target};
use crate::facts::{
    date, AuthMethod, CertChainFacts, CertFacts, CertProblem, Facts, HandshakeFailure, PgStatSsl,
    PlaintextFacts, PlaintextOutcome, SessionAuth, SessionFailure, SslRequestFailure, TlsVersion,
};
use crate::plan::Cidr;

/// Nagios states. Ordered for "worst wins": an UNKNOWN (could not check)
/// outranks a WARNING, but a CRITICAL that was positively observed outranks both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Ok,
    Warning,
    Unknown,
    Critical,
}

impl Status {
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// The checks a report can hold, in the order they are reported. Their
/// names are a public interface (Nagios lines, JSON, metric labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Check {
    /// The run could not start (bad flags, unreadable files).
    Arguments,
    Connection,
    Certificate,
    CertificateExpiry,
    StrictClients,
    TlsSession,
    Pooler,
    Authentication,
    Plaintext,
    Protocols,
    Ciphers,
    DirectTls,
    Sslmode,
    AuditSettings,
    AuditHba,
    AuditSessions,
    AuditRotation,
    ClientCertificate,
}

impl Check {
    pub const ALL: [Check; 18] = [
        Check::Arguments,
        Check::Connection,
        Check::Certificate,
        Check::CertificateExpiry,
        Check::StrictClients,
        Check::TlsSession,
        Check::Pooler,
        Check::Authentication,
        Check::Plaintext,
        Check::Protocols,
        Check::Ciphers,
        Check::DirectTls,
        Check::Sslmode,
        Check::AuditSettings,
        Check::AuditHba,
        Check::AuditSessions,
        Check::AuditRotation,
        Check::ClientCertificate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Check::Arguments => "arguments",
            Check::Connection => "connection",
            Check::Certificate => "certificate",
            Check::CertificateExpiry => "certificate_expiry",
            Check::StrictClients => "strict_clients",
            Check::TlsSession => "tls_session",
            Check::Pooler => "pooler",
            Check::Authentication => "authentication",
            Check::Plaintext => "plaintext",
            Check::Protocols => "protocols",
            Check::Ciphers => "ciphers",
            Check::DirectTls => "direct_tls",
            Check::Sslmode => "sslmode",
            Check::AuditSettings => "audit_settings",
            Check::AuditHba => "audit_hba",
            Check::AuditSessions => "audit_sessions",
            Check::AuditRotation => "audit_rotation",
            Check::ClientCertificate => "client_certificate",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Thresholds {
    pub warning_days: i64,
    pub critical_days: i64,
    pub min_tls: TlsVersion,
    pub scan: scan::ScanPolicy,
    /// `--allow-plaintext-from`: plaintext client sessions accepted by the audit.
    pub allow_plaintext_from: Vec<Cidr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub check: Check,
    pub status: Status,
    pub summary: String,
}

/// The one way a finding is made.
pub fn finding(check: Check, status: Status, summary: String) -> Finding {
    Finding {
        check,
        status,
        summary,
    }
}

/// What a certificate is in the chain: the one rotation must start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leaf,
    Intermediate,
    Root,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Leaf => "leaf",
            Role::Intermediate => "intermediate",
            Role::Root => "root",
        }
    }
}

/// The soonest-expiring certificate among the leaf, the others the server
/// sent and the anchor: the one that needs rotating first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    pub role: Role,
    pub subject: String,
    pub not_after: i64,
    pub days_left: i64,
}

/// What render shows: the findings, the facts behind them, and the inputs.
#[derive(Debug, Clone)]
pub struct Report {
    pub status: Status,
    pub findings: Vec<Finding>,
    /// None when the run stopped before probing (bad arguments).
    pub facts: Option<Facts>,
    pub target: Option<Target>,
    pub thresholds: Option<Thresholds>,
    pub expiry: Option<Expiry>,
    /// The judged scan, when it ran.
    pub scan: Option<scan::ScanReport>,
    /// The judged direct-TLS answer, when there is one.
    pub direct_tls: Option<direct::DirectTlsReport>,
    /// The judged `--audit`, when it ran.
    pub audit: Option<audit::AuditReport>,
    /// A pooler or proxy between the probe and PostgreSQL, when detected.
    pub pooler: Option<pooler::PoolerReport>,
}

impl Report {
    /// A run that could not start: UNKNOWN with one reason.
    pub fn unusable(reason: String) -> Report {
        Report {
            status: Status::Unknown,
            findings: vec![finding(Check::Arguments, Status::Unknown, reason)],
            facts: None,
            target: None,
            thresholds: None,
            expiry: None,
            scan: None,
            direct_tls: None,
            audit: None,
            pooler: None,
        }
    }

    /// The finding of `check`, if the run made one.
    pub fn finding(&self, check: Check) -> Option<&Finding> {
        self.findings.iter().find(|f| f.check == check)
    }
}

pub fn evaluate(facts: Facts, target: Target, thresholds: Thresholds) -> Report {
    let session = &facts.session;
    let mut findings = vec![connection(&facts, &target)];
    findings.extend(certificate(&session.chain));
    let expiry = soonest_expiry(&session.chain, facts.now);
    findings.extend(expiry.as_ref().map(|e| expiry_finding(e, &thresholds)));
    findings.extend(strict_clients(&session.chain));
    let pooler = pooler::judge(&facts);
    match &pooler {
        // Behind a pooler pg_stat_ssl describes the pooler's link; the
        // client's TLS is the probe's own handshake.
        Some(p) => {
            findings.extend(p.tls_session(&thresholds));
            findings.push(p.finding.clone());
        }
        None => findings.extend(
            session
                .pg_stat_ssl
                .as_ref()
                .map(|s| tls_session(s, &thresholds))
                .or_else(|| openssl_hello::tls_session(session, &thresholds)),
        ),
    }
    findings.extend(
        session
            .auth
            .as_ref()
            .and_then(authentication)
            .map(|f| channel_binding::authentication(session, f)),
    );
    findings.extend(facts.plaintext.as_ref().map(plaintext));
    let scan = facts
        .scan
        .as_ref()
        .map(|s| scan::judge(s, &target, &thresholds));
    if let Some(s) = &scan {
        findings.extend(s.findings.iter().cloned());
    }
    let direct_tls = facts.direct_tls.as_ref().map(direct::judge);
    findings.extend(direct_tls.as_ref().map(direct::finding_of));
    if target.sslmode == SslMode::VerifyCa {
        findings.push(finding(
            Check::Sslmode,
            Status::Ok,
            "sslmode=verify-ca: the host name is not checked (weaker than verify-full)".into(),
        ));
    }
    let mut audit = session
        .audit
        .as_ref()
        .map(|a| audit::evaluate(a, &thresholds.allow_plaintext_from));
    if let (Some(report), Some((check, rotation))) = (
        audit.as_mut(),
        audit::rotation::judge(&facts, &thresholds, pooler.is_some()),
    ) {
        report.checks.push(check);
        report.rotation = Some(rotation);
    }
    findings.extend(audit.iter().flat_map(|a| a.checks.iter().cloned()));
    findings.extend(
        facts
            .client_cert
            .as_ref()
            .map(|c| client_certificate(c, &thresholds, facts.now)),
    );
    let status = findings
        .iter()
        .map(|f| f.status)
        .max()
        .unwrap_or(Status::Unknown);
    Report {
        status,
        findings,
        facts: Some(facts),
        target: Some(target),
        thresholds: Some(thresholds),
        expiry,
        scan,
        direct_tls,
        audit,
        pooler,
    }
}

/// How a session failure reads in the `connection` finding.
pub fn describe_failure(failure: &SessionFailure, target: &Target) -> String {
    let endpoint = format!("{}:{}", target.host, target.port);
    match failure {
        SessionFailure::Resolve(f) => f.to_string(),
        SessionFailure::Connect(f) => f.to_string(),
        SessionFailure::SslRequest(SslRequestFailure::Refused) => {
            format!("{endpoint} does not offer TLS (answered 'N' to SSLRequest)")
        }
        SessionFailure::SslRequest(
            f @ (SslRequestFailure::Closed | SslRequestFailure::Unexpected(_)),
        ) => format!("{endpoint} is not PostgreSQL: {f}"),
        // 'E': the server would rather talk than do TLS; reported as a TLS failure.
        SessionFailure::SslRequest(f @ SslRequestFailure::Error) => {
            format!("TLS handshake failed: {f}")
        }
        SessionFailure::SslRequest(f) => f.to_string(),
        SessionFailure::Certificate(CertProblem::ProbeCannotVerify(_)) => format!(
            "stopped before login at {endpoint}: the probe cannot check the certificate \
             (see certificate), no password sent"
        ),
        SessionFailure::ProbeLimit(limit) => format!(
            "not checked: {limit}. The certificate passes libpq's rules, so libpq clients \
             get in; the login and pg_stat_ssl were not checked, no password sent"
        ),
        // The certificate finding carries the reason; this one says what it cost.
        SessionFailure::Certificate(_) => format!(
            "stopped before login at {endpoint}: certificate fails libpq's {} rules, no password sent",
            target.sslmode.name()
        ),
        SessionFailure::Internal(e) => format!("internal error: {e}"),
        SessionFailure::Handshake(f) => {
            format!("TLS handshake failed: {}", describe_handshake(f, target))
        }
        SessionFailure::Login { sqlstate, detail } => match sqlstate {
            Some(code) => format!("login failed (SQLSTATE {code}): {detail}"),
            None => format!("login failed: {detail}"),
        },
        SessionFailure::Query { sqlstate, detail } => match sqlstate {
            Some(code) => {
                format!("logged in, but reading pg_stat_ssl failed (SQLSTATE {code}): {detail}")
            }
            None => format!("logged in, but reading pg_stat_ssl failed: {detail}"),
        },
        SessionFailure::Timeout { stage, after_ms } => format!(
            "timed out at {} after {:.1} s",
            stage.describe(),
            *after_ms as f64 / 1000.0
        ),
        SessionFailure::Overrun(overrun) => format!("session ended: {overrun}"),
        SessionFailure::Refused(refusal) => {
            format!("refused at {endpoint} as libpq refuses: {refusal}")
        }
    }
}

/// A handshake failure in words; under direct TLS a hang-up has one
/// usual meaning.
pub fn describe_handshake(failure: &HandshakeFailure, target: &Target) -> String {
    use crate::conn::SslNegotiation::Direct;
    match failure {
        HandshakeFailure::ClosedBeforeReply(_) if target.sslnegotiation == Direct => {
            "server closed the connection during the TLS handshake: \
             direct TLS needs PostgreSQL 17 or later, with ssl = on"
                .to_string()
        }
        HandshakeFailure::Tls(_) | HandshakeFailure::Io(_) if target.sslnegotiation == Direct => {
            format!("direct TLS handshake failed: {failure}")
        }
        other => other.to_string(),
    }
}

fn connection(facts: &Facts, target: &Target) -> Finding {
    let session = &facts.session;
    if let Some(refused) = channel_binding::connection(session, target) {
        return refused;
    }
    let Some(failure) = &session.failure else {
        // The probe's own handshake: pg_stat_ssl may describe a pooler's link.
        let version = session
            .negotiated
            .as_ref()
            .map(|n| n.version.name().to_string())
            .or_else(|| session.pg_stat_ssl.as_ref().and_then(|s| s.version.clone()))
            .unwrap_or_else(|| "TLS".into());
        let ms = session.connect_seconds.unwrap_or(0.0) * 1000.0;
        // libpq only warns when its key log cannot be written; so does this.
        let keylog = session
            .keylog_failure
            .as_ref()
            .map(|(path, e)| {
                format!(
                    "; could not write sslkeylogfile \"{}\": {e}",
                    path.display()
                )
            })
            .unwrap_or_default();
        return finding(
            Check::Connection,
            Status::Ok,
            format!(
                "logged in to {}:{} as {} over {version} in {ms:.0} ms{keylog}",
                target.host, target.port, target.user
            ),
        );
    };
    // A fleet's queue took most of this target's time: its timeout says
    // more about the queue than about the server.
    if matches!(failure, SessionFailure::Timeout { .. })
        && facts.queued_seconds > facts.budget_seconds
    {
        return finding(
            Check::Connection,
            Status::Unknown,
            format!(
                "{}, having waited {:.1} s for its turn in the fleet: it had {:.1} s of the run (raise --timeout or --concurrency)",
                describe_failure(failure, target),
                facts.queued_seconds,
                facts.budget_seconds
            ),
        );
    }
    // Could not check (our fault, or logged in without the view): UNKNOWN;
    // everything else is the server failing its clients.
    // The probe's own crypto falling short is no verdict on the server.
    let status = match failure {
        SessionFailure::Internal(_)
        | SessionFailure::Query { .. }
        | SessionFailure::ProbeLimit(_)
        | SessionFailure::Certificate(CertProblem::ProbeCannotVerify(_)) => Status::Unknown,
        _ => Status::Critical,
    };
    let summary = match (failure, &session.openssl_hello) {
        (SessionFailure::Handshake(_), Some(hello)) => {
            describe_failure(failure, target) + &openssl_hello::after_refusal(hello)
        }
        (SessionFailure::ProbeLimit(limit), Some(_)) if session.chain.libpq.is_none() => {
            openssl_hello::unseen_certificate(limit)
        }
        _ => describe_failure(failure, target),
    };
    finding(Check::Connection, status, summary)
}

/// libpq's verdict on the chain and the host name.
fn certificate(chain: &CertChainFacts) -> Option<Finding> {
    Some(match chain.libpq.as_ref()? {
        Ok(()) => {
            let anchor = chain
                .anchor
                .as_ref()
                .map_or_else(|| "a trusted root".to_string(), |a| a.subject.clone());
            let name = match &chain.checked_name {
                Some(host) => format!(", name {host} matches"),
                None => ", host name not checked (verify-ca)".to_string(),
            };
            let revocation = match chain.crls_checked {
                Some(n) => format!(", none revoked ({n} CRLs checked)"),
                None => String::new(),
            };
            let store = match &chain.system_store {
                Some(store) => format!(", trusted by {store}"),
                None => String::new(),
            };
            finding(
                Check::Certificate,
                Status::Ok,
                format!("chains to {anchor}{name}{revocation}{store}"),
            )
        }
        Err(CertProblem::ProbeCannotVerify(limit)) => finding(
            Check::Certificate,
            Status::Unknown,
            format!(
                "libpq's verdict undecided: {limit}; nothing else the probe checked fails \
                 libpq's rules"
            ),
        ),
        Err(problem) => {
            let store = match &chain.system_store {
                Some(store) => format!("; the system roots were {store}"),
                None => String::new(),
            };
            finding(
                Check::Certificate,
                Status::Critical,
                format!("{problem}{store}"),
            )
        }
    })
}

/// What a certificate the server sent is: servers often send their root too.
pub fn presented_role(index: usize, cert: &CertFacts) -> Role {
    match (index, cert.self_signed) {
        (0, _) => Role::Leaf,
        (_, true) => Role::Root,
        (_, false) => Role::Intermediate,
    }
}

fn soonest_expiry(chain: &CertChainFacts, now: i64) -> Option<Expiry> {
    let roles = chain
        .presented
        .iter()
        .enumerate()
        .map(|(i, c)| (presented_role(i, c), c))
        .chain(chain.anchor.iter().map(|c| (Role::Root, c)));
    roles
        .map(|(role, cert)| Expiry {
            role,
            subject: cert.subject.clone(),
            not_after: cert.not_after,
            days_left: days_left(cert.not_after, now),
        })
        .min_by_key(|e| e.not_after)
}

fn expiry_finding(expiry: &Expiry, thresholds: &Thresholds) -> Finding {
    let Expiry {
        role,
        subject,
        not_after,
        days_left,
    } = expiry;
    let (role, when) = (role.name(), date(*not_after));
    let (status, summary) = if *days_left < 0 {
        (
            Status::Critical,
            format!("{role} {subject} expired {} days ago ({when})", -days_left),
        )
    } else {
        let status = if *days_left < thresholds.critical_days {
            Status::Critical
        } else if *days_left < thresholds.warning_days {
            Status::Warning
        } else {
            Status::Ok
        };
        (
            status,
            format!("{role} {subject} expires in {days_left} days ({when})"),
        )
    };
    finding(Check::CertificateExpiry, status, summary)
}

/// The probe's own client certificate (`sslcert`), held to the same
/// windows: a monitoring login that stops working is an outage of the check.
fn client_certificate(cert: &CertFacts, thresholds: &Thresholds, now: i64) -> Finding {
    let days = days_left(cert.not_after, now);
    let when = date(cert.not_after);
    let (status, summary) = if days < 0 {
        (
            Status::Critical,
            format!(
                "the probe's client certificate {} expired {} days ago ({when})",
                cert.subject, -days
            ),
        )
    } else {
        let status = if days < thresholds.critical_days {
            Status::Critical
        } else if days < thresholds.warning_days {
            Status::Warning
        } else {
            Status::Ok
        };
        (
            status,
            format!(
                "the probe's client certificate {} expires in {days} days ({when})",
                cert.subject
            ),
        )
    };
    finding(Check::ClientCertificate, status, summary)
}

/// Where libpq accepts but webpki (rustls, Go, browsers) would refuse.
fn strict_clients(chain: &CertChainFacts) -> Option<Finding> {
    if chain.libpq != Some(Ok(())) {
        return None;
    }
    Some(match chain.strict.as_ref()? {
        Ok(()) => finding(
            Check::StrictClients,
            Status::Ok,
            "strict verifiers (webpki) accept the certificate too".into(),
        ),
        Err(reason) => {
            let why = if chain.strict_only_issues.is_empty() {
                reason.to_string()
            } else {
                chain
                    .strict_only_issues
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            finding(
                Check::StrictClients,
                Status::Warning,
                format!("only libpq's rules accept the certificate; strict clients fail: {why}"),
            )
        }
    })
}

pub(crate) fn tls_session(stat: &PgStatSsl, thresholds: &Thresholds) -> Finding {
    if !stat.ssl {
        return finding(
            Check::TlsSession,
            Status::Critical,
            "pg_stat_ssl reports ssl=false for this session".into(),
        );
    }
    let version = stat.version.as_deref().unwrap_or("unknown version");
    let described = format!(
        "{version} {} {} bits",
        stat.cipher.as_deref().unwrap_or("unknown cipher"),
        stat.bits.map_or_else(|| "?".to_string(), |b| b.to_string())
    );
    match TlsVersion::parse(version) {
        Some(v) if v >= thresholds.min_tls => finding(Check::TlsSession, Status::Ok, described),
        Some(_) => finding(
            Check::TlsSession,
            Status::Critical,
            format!(
                "{described}: below the minimum {}",
                thresholds.min_tls.name()
            ),
        ),
        None => finding(
            Check::TlsSession,
            Status::Unknown,
            format!("{described}: protocol version not recognised"),
        ),
    }
}

/// The recipe's authentication line: what a session should log in with.
const RECIPE_SCRAM: &str = "hostssl all all 0.0.0.0/0 scram-sha-256";

/// How the session logged in, against the recipe's `scram-sha-256`. The
/// probe always connects over TCP with TLS, so trust here is trust over
/// TCP, and a password sent in clear or as md5 is at least encrypted.
fn authentication(auth: &SessionAuth) -> Option<Finding> {
    if !auth.completed {
        return None;
    }
    let plus_offered = auth.offered.iter().any(|m| m == "SCRAM-SHA-256-PLUS");
    let (status, summary) = match &auth.method {
        AuthMethod::ScramSha256Plus { .. } => (Status::Ok, auth.method.to_string()),
        AuthMethod::ScramSha256 if plus_offered => (
            Status::Ok,
            "SCRAM-SHA-256 without channel binding; the server offers SCRAM-SHA-256-PLUS (channel_binding=require insists on it)".to_string(),
        ),
        AuthMethod::ScramSha256 => (
            Status::Ok,
            "SCRAM-SHA-256 without channel binding (the server offers no SCRAM-SHA-256-PLUS)"
                .to_string(),
        ),
        AuthMethod::Certificate => (Status::Ok, auth.method.to_string()),
        m @ (AuthMethod::Md5 | AuthMethod::Password) => (
            Status::Warning,
            format!("{m} authentication (inside TLS): the recipe uses scram-sha-256 (`{RECIPE_SCRAM}`), which never sends the password or a replayable hash"),
        ),
        AuthMethod::Trust => (
            Status::Warning,
            format!("trust over TCP: logged in without any credential, so anyone who reaches the port can (recipe line `{RECIPE_SCRAM}`)"),
        ),
        other => (Status::Ok, other.to_string()),
    };
    Some(finding(Check::Authentication, status, summary))
}

/// SQLSTATEs that say "try later", not "plaintext is rejected".
const BUSY: [&str; 3] = ["53300", "57P03", "53000"];

fn plaintext(facts: &PlaintextFacts) -> Finding {
    let (status, summary) = match &facts.outcome {
        PlaintextOutcome::Error {
            sqlstate, message, ..
        } if pooler::refuses_plaintext(sqlstate, message).is_some() => (
            Status::Ok,
            format!(
                "plaintext rejected before authentication by {} (SQLSTATE {}: {})",
                pooler::refuses_plaintext(sqlstate, message).unwrap_or_default(),
                clip(sqlstate),
                clip(message)
            ),
        ),
        PlaintextOutcome::Error {
            sqlstate, message, ..
        } if sqlstate == "28000" => (
            Status::Ok,
            format!(
                "plaintext rejected before authentication (SQLSTATE 28000: {})",
                clip(message)
            ),
        ),
        PlaintextOutcome::Error {
            sqlstate, message, ..
        } if BUSY.contains(&sqlstate.as_str()) => (
            Status::Unknown,
            format!(
                "server could not take the plaintext attempt (SQLSTATE {}: {})",
                clip(sqlstate),
                clip(message)
            ),
        ),
        PlaintextOutcome::Error {
            sqlstate, message, ..
        } => (
            Status::Unknown,
            format!(
                "plaintext attempt got an unexpected error (SQLSTATE {}: {})",
                clip(sqlstate),
                clip(message)
            ),
        ),
        PlaintextOutcome::AuthRequested { method, mechanisms } => {
            let offered = if mechanisms.is_empty() {
                String::new()
            } else {
                format!(" [{}]", clip(&mechanisms.join(", ")))
            };
            (
                Status::Critical,
                format!(
                    "plaintext reaches authentication: server asked for {}{offered} (nothing was sent)",
                    method.describe()
                ),
            )
        }
        PlaintextOutcome::AuthOk => (
            Status::Critical,
            "plaintext accepted with no authentication at all (trust)".into(),
        ),
        PlaintextOutcome::Closed => (
            Status::Unknown,
            "server closed the plaintext connection without a reply".into(),
        ),
        PlaintextOutcome::NotPostgres(bad) => (
            Status::Critical,
            format!("plaintext reply is not PostgreSQL: {bad}"),
        ),
        PlaintextOutcome::Unresolved(f) => (
            Status::Unknown,
            format!("plaintext check could not connect: {f}"),
        ),
        PlaintextOutcome::Unreachable(f) => (
            Status::Unknown,
            format!("plaintext check could not connect: {f}"),
        ),
        PlaintextOutcome::Broken { during, error } => (
            Status::Unknown,
            format!("plaintext check could not connect: {during}: {error}"),
        ),
        PlaintextOutcome::Timeout { stage, after_ms } => (
            Status::Unknown,
            format!(
                "plaintext check timed out at {} after {:.1} s",
                stage.describe(),
                *after_ms as f64 / 1000.0
            ),
        ),
    };
    finding(Check::Plaintext, status, summary)
}

/// Text an unauthenticated peer chose, shortened for a one-line reason
/// (the JSON facts keep more).
pub fn clip(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// Whole days from `now` until `not_after` (negative once expired), rounded
/// down so "expires in 7 days" never means fewer than 7 full days.
pub fn days_left(not_after: i64, now: i64) -> i64 {
    (not_after - now).div_euclid(86_400)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{AuthRequest, Stage, StrictOnlyIssue, StrictProblem};
    use crate::fixtures::{healthy, target, thresholds, DAY, NOW};

    fn judge(facts: Facts) -> Report {
        evaluate(facts, target(), thresholds())
    }

    fn status_of(report: &Report, name: &str) -> Status {
        report
            .findings
            .iter()
            .find(|f| f.check.name() == name)
            .unwrap_or_else(|| panic!("no finding {name} in {:?}", report.findings))
            .status
    }

    #[test]
    fn article_setup_is_ok() {
        let report = judge(healthy());
        assert_eq!(report.status, Status::Ok, "{:?}", report.findings);
        let names: Vec<_> = report.findings.iter().map(|f| f.check.name()).collect();
        assert_eq!(
            names,
            [
                "connection",
                "certificate",
                "certificate_expiry",
                "strict_clients",
                "tls_session",
                "authentication",
                "plaintext"
            ]
        );
    }

    /// The recipe's scram-sha-256 is OK; md5 and a cleartext password
    /// (inside TLS) are WARNINGs naming it; trust over TCP is a WARNING;
    /// a client certificate is OK; a failed login makes no finding.
    #[test]
    fn authentication_methods_against_the_recipe() {
        let cases = [
            (AuthMethod::ScramSha256, Status::Ok, "SCRAM-SHA-256-PLUS"),
            (AuthMethod::Md5, Status::Warning, "scram-sha-256"),
            (AuthMethod::Password, Status::Warning, "cleartext password"),
            (AuthMethod::Trust, Status::Warning, "trust over TCP"),
            (AuthMethod::Certificate, Status::Ok, "client certificate"),
        ];
        for (method, want, phrase) in cases {
            let mut facts = healthy();
            facts.session.auth.as_mut().unwrap().method = method.clone();
            let report = judge(facts);
            let f = report.finding(Check::Authentication).unwrap();
            assert_eq!(f.status, want, "{method:?}: {}", f.summary);
            assert!(f.summary.contains(phrase), "{method:?}: {}", f.summary);
        }
        let mut facts = healthy();
        facts.session.auth.as_mut().unwrap().completed = false;
        assert!(judge(facts).finding(Check::Authentication).is_none());
    }

    #[test]
    fn expiry_windows_use_the_soonest_certificate() {
        for (days, want) in [
            (30, Status::Ok),
            (29, Status::Warning),
            (7, Status::Warning),
            (6, Status::Critical),
            (-1, Status::Critical),
        ] {
            let mut facts = healthy();
            facts.session.chain.anchor.as_mut().unwrap().not_after = NOW + days * DAY + 60;
            let report = judge(facts);
            assert_eq!(
                status_of(&report, "certificate_expiry"),
                want,
                "{days} days"
            );
            assert_eq!(report.expiry.as_ref().unwrap().role, Role::Root);
            assert_eq!(report.status, want);
        }
    }

    #[test]
    fn only_libpq_accepting_is_a_warning_naming_why() {
        let mut facts = healthy();
        facts.session.chain.strict = Some(Err(StrictProblem::Webpki(
            webpki::Error::UnsupportedCertVersion,
        )));
        facts.session.chain.strict_only_issues = vec![StrictOnlyIssue::LeafVersion(1)];
        let report = judge(facts);
        assert_eq!(report.status, Status::Warning);
        let f = report
            .findings
            .iter()
            .find(|f| f.check == Check::StrictClients)
            .unwrap();
        assert!(f.summary.contains("X.509 v1"), "{}", f.summary);
    }

    #[test]
    fn plaintext_outcomes() {
        let cases = [
            (
                PlaintextOutcome::AuthRequested {
                    method: AuthRequest::Sasl,
                    mechanisms: vec!["SCRAM-SHA-256".into()],
                },
                Status::Critical,
                "SCRAM-SHA-256",
            ),
            (
                PlaintextOutcome::AuthOk,
                Status::Critical,
                "no authentication",
            ),
            (
                PlaintextOutcome::Error {
                    sqlstate: "53300".into(),
                    severity: "FATAL".into(),
                    message: "sorry, too many clients already".into(),
                },
                Status::Unknown,
                "53300",
            ),
            (
                PlaintextOutcome::Timeout {
                    stage: Stage::Authentication,
                    after_ms: 2000,
                },
                Status::Unknown,
                "timed out",
            ),
        ];
        for (outcome, want, phrase) in cases {
            let mut facts = healthy();
            facts.plaintext.as_mut().unwrap().outcome = outcome;
            let report = judge(facts);
            let f = report
                .findings
                .iter()
                .find(|f| f.check == Check::Plaintext)
                .unwrap();
            assert_eq!(f.status, want, "{}", f.summary);
            assert!(f.summary.contains(phrase), "{}", f.summary);
            assert_eq!(report.status, want);
        }
    }

    #[test]
    fn old_protocol_or_no_ssl_is_critical() {
        let mut facts = healthy();
        facts.session.pg_stat_ssl.as_mut().unwrap().version = Some("TLSv1.1".into());
        let report = judge(facts);
        assert_eq!(status_of(&report, "tls_session"), Status::Critical);

        let mut facts = healthy();
        facts.session.pg_stat_ssl.as_mut().unwrap().ssl = false;
        assert_eq!(judge(facts).status, Status::Critical);
    }

    #[test]
    fn a_failed_session_reports_only_what_it_reached() {
        let mut facts = healthy();
        facts.session.chain = CertChainFacts::default();
        facts.session.pg_stat_ssl = None;
        facts.session.auth = None;
        facts.session.failure = Some(SessionFailure::Timeout {
            stage: Stage::SslRequest,
            after_ms: 2000,
        });
        let report = judge(facts);
        assert_eq!(report.status, Status::Critical);
        let names: Vec<_> = report.findings.iter().map(|f| f.check.name()).collect();
        assert_eq!(names, ["connection", "plaintext"]);
        assert!(report.findings[0]
            .summary
            .contains("timed out at SSLRequest"));
    }

    /// A fleet target that waited longer for its turn than it then had is
    /// not blamed for timing out: UNKNOWN, naming the queue.
    #[test]
    fn a_timeout_after_a_long_queue_is_unknown() {
        let mut facts = healthy();
        facts.session.failure = Some(SessionFailure::Timeout {
            stage: Stage::SslRequest,
            after_ms: 300,
        });
        facts.budget_seconds = 0.3;
        facts.queued_seconds = 2.7;
        let f = judge(facts.clone()).findings[0].clone();
        assert_eq!(f.status, Status::Unknown);
        assert!(
            f.summary.contains("waited 2.7 s for its turn"),
            "{}",
            f.summary
        );
        facts.queued_seconds = 0.2;
        assert_eq!(judge(facts).findings[0].status, Status::Critical);
    }

    #[test]
    fn unknown_never_hides_critical() {
        let mut facts = healthy();
        facts.session.failure = Some(SessionFailure::SslRequest(SslRequestFailure::Refused));
        facts.plaintext.as_mut().unwrap().outcome = PlaintextOutcome::Closed;
        assert_eq!(judge(facts).status, Status::Critical);
        assert!(Status::Unknown > Status::Warning);
    }

    #[test]
    fn the_probes_own_client_certificate_is_held_to_the_windows() {
        let mut facts = healthy();
        let mut cert = facts.session.chain.presented[0].clone();
        cert.not_after = NOW + 20 * DAY + 60;
        facts.client_cert = Some(cert);
        let report = judge(facts);
        let f = report.finding(Check::ClientCertificate).unwrap();
        assert_eq!(f.status, Status::Warning);
        assert!(
            f.summary
                .contains("client certificate CN=localhost expires in 20 days"),
            "{}",
            f.summary
        );
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(NOW), "2027-01-15");
    }
}
