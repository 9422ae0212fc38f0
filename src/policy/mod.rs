//! Turns facts plus thresholds into findings; the run's status is the worst.
//!
//! Each finding is one check with a status and a one-line reason. A check
//! with no data to judge (the certificate when TCP was refused) is left out
//! rather than reported twice: the failure that stopped it is the finding.

pub mod audit;
mod direct;
pub mod scan;

use serde::Serialize;

use crate::facts::{
    CertChainFacts, CertFacts, CertProblem, Facts, PgStatSsl, PlaintextFacts, PlaintextOutcome,
    SessionFacts, SessionFailure,
};
use crate::conn::{SslMode, Target};

/// Nagios states. Ordered for "worst wins": an UNKNOWN (could not check)
/// outranks a WARNING, but a CRITICAL that was positively observed outranks both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
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

/// TLS protocol versions as PostgreSQL names them in pg_stat_ssl and settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// Accepts PostgreSQL's spelling ("TLSv1.2"), case-insensitively.
    pub fn parse(s: &str) -> Option<TlsVersion> {
        match s.to_ascii_lowercase().as_str() {
            "tlsv1" | "tlsv1.0" => Some(TlsVersion::Tls10),
            "tlsv1.1" => Some(TlsVersion::Tls11),
            "tlsv1.2" => Some(TlsVersion::Tls12),
            "tlsv1.3" => Some(TlsVersion::Tls13),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLSv1",
            TlsVersion::Tls11 => "TLSv1.1",
            TlsVersion::Tls12 => "TLSv1.2",
            TlsVersion::Tls13 => "TLSv1.3",
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
    pub allow_plaintext_from: Vec<audit::Cidr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub name: &'static str,
    pub status: Status,
    pub summary: String,
}

/// The soonest-expiring certificate among the leaf, the others the server
/// sent and the anchor: the one that needs rotating first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expiry {
    pub role: &'static str,
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
    /// The judged `--audit`, when it ran.
    pub audit: Option<audit::AuditReport>,
}

impl Report {
    /// A run that could not start: UNKNOWN with one reason.
    pub fn unusable(reason: String) -> Report {
        Report {
            status: Status::Unknown,
            findings: vec![Finding {
                name: "arguments",
                status: Status::Unknown,
                summary: reason,
            }],
            facts: None,
            target: None,
            thresholds: None,
            expiry: None,
            audit: None,
        }
    }
}

pub fn evaluate(facts: Facts, target: Target, thresholds: Thresholds) -> Report {
    let session = &facts.session;
    let mut findings = vec![connection(session, &target)];
    findings.extend(certificate(&session.chain));
    let expiry = soonest_expiry(&session.chain, facts.now);
    findings.extend(expiry.as_ref().map(|e| expiry_finding(e, &thresholds)));
    findings.extend(strict_clients(&session.chain));
    findings.extend(
        session
            .pg_stat_ssl
            .as_ref()
            .map(|s| tls_session(s, &thresholds)),
    );
    findings.extend(facts.plaintext.as_ref().map(plaintext));
    if let Some(s) = &facts.scan {
        findings.extend(scan::findings(s, &thresholds));
    }
    findings.extend(facts.direct_tls.as_ref().map(direct::finding));
    if target.sslmode == SslMode::VerifyCa {
        findings.push(Finding {
            name: "sslmode",
            status: Status::Ok,
            summary: "sslmode=verify-ca: the host name is not checked (weaker than verify-full)"
                .into(),
        });
    }
    let audit = session
        .audit
        .as_ref()
        .map(|a| audit::evaluate(a, &thresholds.allow_plaintext_from));
    findings.extend(audit.iter().flat_map(|a| a.checks.iter().cloned()));
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
        audit,
    }
}

fn finding(name: &'static str, status: Status, summary: String) -> Finding {
    Finding {
        name,
        status,
        summary,
    }
}

fn connection(session: &SessionFacts, target: &Target) -> Finding {
    let endpoint = format!("{}:{}", target.host, target.port);
    let critical = |summary: String| finding("connection", Status::Critical, summary);
    match &session.failure {
        None => {
            let version = session
                .pg_stat_ssl
                .as_ref()
                .and_then(|s| s.version.clone())
                .unwrap_or_else(|| "TLS".into());
            let ms = session.connect_seconds.unwrap_or(0.0) * 1000.0;
            finding(
                "connection",
                Status::Ok,
                format!(
                    "logged in to {endpoint} as {} over {version} in {ms:.0} ms",
                    target.user
                ),
            )
        }
        Some(SessionFailure::Resolve { detail }) => critical(detail.clone()),
        Some(SessionFailure::Connect { detail }) => critical(detail.clone()),
        Some(SessionFailure::TlsRefused) => critical(format!(
            "{endpoint} does not offer TLS (answered 'N' to SSLRequest)"
        )),
        Some(SessionFailure::NotPostgres { detail }) => {
            critical(format!("{endpoint} is not PostgreSQL: {detail}"))
        }
        // The certificate finding carries the reason; this one says what it cost.
        Some(SessionFailure::Certificate { .. }) => critical(format!(
            "stopped before login at {endpoint}: certificate fails libpq's {} rules, no password sent",
            target.sslmode.name()
        )),
        Some(SessionFailure::Internal { detail }) => {
            finding("connection", Status::Unknown, format!("internal error: {detail}"))
        }
        Some(SessionFailure::Tls { detail }) => critical(format!("TLS handshake failed: {detail}")),
        Some(SessionFailure::Login { sqlstate, detail }) => critical(match sqlstate {
            Some(code) => format!("login failed (SQLSTATE {code}): {detail}"),
            None => format!("login failed: {detail}"),
        }),
        Some(SessionFailure::Query { sqlstate, detail }) => finding(
            "connection",
            Status::Unknown,
            match sqlstate {
                Some(code) => {
                    format!("logged in, but reading pg_stat_ssl failed (SQLSTATE {code}): {detail}")
                }
                None => format!("logged in, but reading pg_stat_ssl failed: {detail}"),
            },
        ),
        Some(SessionFailure::Timeout { stage, after_ms }) => critical(format!(
            "timed out at {} after {:.1} s",
            stage.describe(),
            *after_ms as f64 / 1000.0
        )),
    }
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
            finding(
                "certificate",
                Status::Ok,
                format!("chains to {anchor}{name}"),
            )
        }
        Err(problem) => finding("certificate", Status::Critical, describe_problem(problem)),
    })
}

pub fn describe_problem(problem: &CertProblem) -> String {
    match problem {
        CertProblem::UnknownIssuer { detail } => {
            format!("certificate signed by an unknown issuer: {detail}")
        }
        CertProblem::Expired { subject, not_after } => {
            format!("certificate {subject} expired on {}", date(*not_after))
        }
        CertProblem::NotYetValid {
            subject,
            not_before,
        } => format!(
            "certificate {subject} is not valid until {}",
            date(*not_before)
        ),
        CertProblem::NameMismatch { host, presented } => format!(
            "host name \"{host}\" does not match the certificate (names: {})",
            if presented.is_empty() {
                "none".to_string()
            } else {
                presented.join(", ")
            }
        ),
        CertProblem::BadSignature { subject } => {
            format!("signature on certificate {subject} does not verify")
        }
        CertProblem::NotCa { subject } => {
            format!("issuing certificate {subject} is not a CA")
        }
        CertProblem::BadPurpose { subject, detail } => {
            format!("certificate {subject} is not for TLS servers: {detail}")
        }
        CertProblem::Malformed { detail } => format!("malformed certificate: {detail}"),
        CertProblem::UnhandledCriticalExtension { subject, oid } => format!(
            "certificate {subject} has a critical extension OpenSSL does not handle ({oid})"
        ),
        CertProblem::NameConstraint { ca, name, detail } => {
            format!("name \"{name}\" violates the name constraints of CA {ca}: {detail}")
        }
    }
}

/// What a certificate the server sent is: servers often send their root too.
pub fn presented_role(index: usize, cert: &CertFacts) -> &'static str {
    match (index, cert.self_signed) {
        (0, _) => "leaf",
        (_, true) => "root",
        (_, false) => "intermediate",
    }
}

fn soonest_expiry(chain: &CertChainFacts, now: i64) -> Option<Expiry> {
    let roles = chain
        .presented
        .iter()
        .enumerate()
        .map(|(i, c)| (presented_role(i, c), c))
        .chain(chain.anchor.iter().map(|c| ("root", c)));
    roles
        .map(|(role, cert): (&'static str, &CertFacts)| Expiry {
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
    let when = date(*not_after);
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
    finding("certificate_expiry", status, summary)
}

/// Where libpq accepts but webpki (rustls, Go, browsers) would refuse.
fn strict_clients(chain: &CertChainFacts) -> Option<Finding> {
    if chain.libpq != Some(Ok(())) {
        return None;
    }
    Some(match chain.strict.as_ref()? {
        Ok(()) => finding(
            "strict_clients",
            Status::Ok,
            "strict verifiers (webpki) accept the certificate too".into(),
        ),
        Err(reason) => {
            let why = if chain.strict_only_issues.is_empty() {
                reason.clone()
            } else {
                chain.strict_only_issues.join("; ")
            };
            finding(
                "strict_clients",
                Status::Warning,
                format!("only libpq's rules accept the certificate; strict clients fail: {why}"),
            )
        }
    })
}

fn tls_session(stat: &PgStatSsl, thresholds: &Thresholds) -> Finding {
    if !stat.ssl {
        return finding(
            "tls_session",
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
        Some(v) if v >= thresholds.min_tls => finding("tls_session", Status::Ok, described),
        Some(_) => finding(
            "tls_session",
            Status::Critical,
            format!(
                "{described}: below the minimum {}",
                thresholds.min_tls.name()
            ),
        ),
        None => finding(
            "tls_session",
            Status::Unknown,
            format!("{described}: protocol version not recognised"),
        ),
    }
}

/// SQLSTATEs that say "try later", not "plaintext is rejected".
const BUSY: [&str; 3] = ["53300", "57P03", "53000"];

fn plaintext(facts: &PlaintextFacts) -> Finding {
    let (status, summary) = match &facts.outcome {
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
                format!(" [{}]", mechanisms.join(", "))
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
        PlaintextOutcome::NotPostgres { detail } => (
            Status::Critical,
            format!("plaintext reply is not PostgreSQL: {detail}"),
        ),
        PlaintextOutcome::Unreachable { detail } => (
            Status::Unknown,
            format!("plaintext check could not connect: {detail}"),
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
    finding("plaintext", status, summary)
}

/// Text an unauthenticated peer chose, shortened for a one-line reason
/// (the JSON facts keep it whole).
fn clip(text: &str) -> String {
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

/// A Unix time as a UTC date, e.g. 2027-03-01.
pub fn date(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format!("@{unix}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::facts::{AuthRequest, Stage};
    use crate::conn::{ChannelBinding, RootCerts, SslNegotiation};

    pub const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    pub fn cert(subject: &str, not_after: i64) -> CertFacts {
        CertFacts {
            version: 3,
            subject: subject.into(),
            issuer: "CN=PostgreSQL CA".into(),
            serial: "01".into(),
            not_before: NOW - 10 * DAY,
            not_after,
            common_names: vec![],
            san_dns: vec!["localhost".into()],
            san_ip: vec![],
            key: "EC P-256".into(),
            signature_algorithm: "ecdsa-with-SHA256".into(),
            is_ca: false,
            self_signed: false,
            sha256_fingerprint: "AA".into(),
        }
    }

    pub fn target() -> Target {
        Target {
            host: "localhost".into(),
            hostaddr: None,
            port: 5432,
            user: "probe".into(),
            dbname: "postgres".into(),
            password: None,
            sslmode: SslMode::VerifyFull,
            sslrootcert: RootCerts::File("ca.crt".into()),
            sslcert: None,
            sslkey: None,
            channel_binding: ChannelBinding::Prefer,
            connect_timeout: None,
            application_name: "pg-tls-probe".into(),
            sslnegotiation: SslNegotiation::Postgres,
            notes: vec![],
        }
    }

    /// A server set up exactly per the article, certificate valid a year.
    pub fn healthy() -> Facts {
        let mut anchor = cert("CN=PostgreSQL CA", NOW + 3650 * DAY);
        anchor.is_ca = true;
        Facts {
            session: SessionFacts {
                chain: CertChainFacts {
                    presented: vec![cert("CN=localhost", NOW + 365 * DAY)],
                    anchor: Some(anchor),
                    checked_name: Some("localhost".into()),
                    libpq: Some(Ok(())),
                    strict: Some(Ok(())),
                    strict_only_issues: vec![],
                },
                server_version_num: Some(150018),
                pg_stat_ssl: Some(PgStatSsl {
                    ssl: true,
                    version: Some("TLSv1.3".into()),
                    cipher: Some("TLS_AES_256_GCM_SHA384".into()),
                    bits: Some(256),
                    ..Default::default()
                }),
                connect_seconds: Some(0.004),
                failure: None,
                audit: None,
                direct_tls: None,
            },
            plaintext: Some(PlaintextFacts {
                outcome: PlaintextOutcome::Error {
                    sqlstate: "28000".into(),
                    severity: "FATAL".into(),
                    message: "no pg_hba.conf entry".into(),
                },
                seconds: 0.002,
            }),
            direct_tls: None,
            total_seconds: 0.005,
            now: NOW,
            scan: None,
        }
    }

    pub fn thresholds() -> Thresholds {
        Thresholds {
            warning_days: 30,
            critical_days: 7,
            min_tls: TlsVersion::Tls12,
            scan: scan::ScanPolicy::default(),
            allow_plaintext_from: Vec::new(),
        }
    }

    fn judge(facts: Facts) -> Report {
        evaluate(facts, target(), thresholds())
    }

    fn status_of(report: &Report, name: &str) -> Status {
        report
            .findings
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no finding {name} in {:?}", report.findings))
            .status
    }

    #[test]
    fn article_setup_is_ok() {
        let report = judge(healthy());
        assert_eq!(report.status, Status::Ok, "{:?}", report.findings);
        let names: Vec<_> = report.findings.iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "connection",
                "certificate",
                "certificate_expiry",
                "strict_clients",
                "tls_session",
                "plaintext"
            ]
        );
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
            assert_eq!(report.expiry.as_ref().unwrap().role, "root");
            assert_eq!(report.status, want);
        }
    }

    #[test]
    fn only_libpq_accepting_is_a_warning_naming_why() {
        let mut facts = healthy();
        facts.session.chain.strict = Some(Err("UnsupportedCertVersion".into()));
        facts.session.chain.strict_only_issues = vec!["X.509 v1 certificate".into()];
        let report = judge(facts);
        assert_eq!(report.status, Status::Warning);
        let f = report
            .findings
            .iter()
            .find(|f| f.name == "strict_clients")
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
                .find(|f| f.name == "plaintext")
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
        facts.session.failure = Some(SessionFailure::Timeout {
            stage: Stage::SslRequest,
            after_ms: 2000,
        });
        let report = judge(facts);
        assert_eq!(report.status, Status::Critical);
        let names: Vec<_> = report.findings.iter().map(|f| f.name).collect();
        assert_eq!(names, ["connection", "plaintext"]);
        assert!(report.findings[0]
            .summary
            .contains("timed out at SSLRequest"));
    }

    #[test]
    fn unknown_never_hides_critical() {
        let mut facts = healthy();
        facts.session.failure = Some(SessionFailure::TlsRefused);
        facts.plaintext.as_mut().unwrap().outcome = PlaintextOutcome::Closed;
        assert_eq!(judge(facts).status, Status::Critical);
        assert!(Status::Unknown > Status::Warning);
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(NOW), "2027-01-15");
    }
}
