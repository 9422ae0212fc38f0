//! Test fixtures shared across the crate's unit tests: hand-made facts
//! for policy and render, a target and thresholds, an endpoint and probe
//! context, and audit rows. Built in code (rcgen where certificates are
//! needed), so no test needs an external tool.

use std::time::{Duration, Instant};

use crate::conn::{ChannelBinding, RootCerts, SslMode, SslNegotiation, Target};
use crate::facts::{
    AuthMethod, CertChainFacts, CertFacts, ClientCertExchange, Facts, PgStatSsl, PlaintextFacts,
    PlaintextOutcome, SessionAuth, SessionFacts, TlsVersion, WireRecord,
};
use crate::policy::{scan, Thresholds};
use crate::probe::{Endpoint, ProbeCtx};

pub const NOW: i64 = 1_800_000_000;
pub const DAY: i64 = 86_400;

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
        end_point_hash: crate::facts::EndPointHash::Sha256,
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
        crl: Default::default(),
        channel_binding: ChannelBinding::Prefer,
        connect_timeout: None,
        application_name: "pg-tls-probe".into(),
        sslnegotiation: SslNegotiation::Postgres,
        require_auth: None,
        tls_range: crate::conn::TlsRange::parse(None, None).unwrap(),
        sslcertmode: crate::conn::SslCertMode::Allow,
        target_session_attrs: crate::conn::TargetSessionAttrs::Any,
        sslsni: true,
        sslkeylogfile: None,
        options: None,
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
                crls_checked: None,
                system_store: None,
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
            wire: WireRecord::default(),
            client_cert: ClientCertExchange::default(),
            auth: Some(SessionAuth {
                method: AuthMethod::ScramSha256Plus {
                    channel_binding: "tls-server-end-point".into(),
                },
                offered: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()],
                client_cert: ClientCertExchange::default(),
                completed: true,
            }),
            keylog_failure: None,
            negotiated: Some(crate::facts::Negotiated {
                version: TlsVersion::Tls13,
                suite: 0x1302,
                cipher: "TLS13_AES_256_GCM_SHA384".into(),
                group: Some("secp256r1".into()),
            }),
            local_addr: None,
            backend_client: None,
            pool_version: None,
            openssl_hello: None,
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
        budget_seconds: 10.0,
        queued_seconds: 0.0,
        now: NOW,
        scan: None,
        client_cert: None,
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

/// An endpoint for the fixture target, trusting one generated CA.
pub fn endpoint() -> Endpoint {
    let ca = rcgen::generate_simple_self_signed(vec!["ca".to_string()]).unwrap();
    Endpoint {
        target: target(),
        trust: crate::tls::trust_from_certificates(vec![ca.cert.der().clone()]).unwrap(),
        identity: None,
        client_cert: None,
    }
}

/// A probe context on `endpoint` with `budget` to run, no addresses.
pub fn ctx(endpoint: &Endpoint, budget: Duration) -> ProbeCtx<'_> {
    let started = Instant::now();
    ProbeCtx {
        endpoint,
        addrs: Vec::new(),
        started,
        deadline: started + budget,
        attempt_deadline: started + budget,
        early: crate::probe::Early::default(),
    }
}

/// An external command for a unit test (xmllint, for the JUnit schema),
/// found by running it with `--version`. Missing, the test says so and
/// skips; under `CI=true` that is a failure instead (`.ci/run` installs
/// `package`).
pub fn have_tool(name: &str, package: &str) -> bool {
    let found = std::process::Command::new(name)
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is missing (apt-get install {package}; CI=true)"
        );
        eprintln!("skipped: {name} not found (apt-get install {package})");
    }
    found
}

/// Rows and privileges for the audit's judges.
pub mod audit {
    use crate::facts::audit::{
        AuditAccess, AuditFacts, HbaFacts, HbaRule, ReloadCheck, TcpSession,
    };
    use crate::policy::audit::AuditReport;
    use crate::policy::Status;

    pub fn rule(line: i32, text: &str) -> HbaRule {
        let words: Vec<&str> = text.split_whitespace().collect();
        let (address, netmask) = match words[3].split_once('/') {
            Some(("0.0.0.0", "0")) => (Some("0.0.0.0"), Some("0.0.0.0")),
            Some(("::", "0")) => (Some("::"), Some("::")),
            Some((a, "32")) => (Some(a), Some("255.255.255.255")),
            Some((a, "16")) => (Some(a), Some("255.255.0.0")),
            _ => (Some(words[3]), None),
        };
        let list = |w: &str| Some(w.split(',').map(str::to_string).collect());
        HbaRule {
            line_number: Some(line),
            kind: Some(words[0].into()),
            database: list(words[1]),
            user_name: list(words[2]),
            address: address.map(str::to_string),
            netmask: netmask.map(str::to_string),
            auth_method: Some(words[4].into()),
            ..HbaRule::default()
        }
    }

    /// The seed article's two pg_hba.conf rule lines, verbatim
    /// (whitespace as printed), from tests/fixtures/article-pg_hba.conf.
    pub fn article_hba_lines() -> Vec<String> {
        let lines: Vec<String> = include_str!("../tests/fixtures/article-pg_hba.conf")
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        lines
    }

    pub fn access() -> AuditAccess {
        AuditAccess {
            role: "monitor".into(),
            database: "postgres".into(),
            read_all_settings: true,
            read_all_stats: true,
            hba_select: true,
            hba_execute: true,
            ..AuditAccess::default()
        }
    }

    /// The article's postgresql.conf and pg_hba.conf, one TLS session.
    pub fn article() -> AuditFacts {
        let settings = [
            ("ssl", "on"),
            ("ssl_min_protocol_version", "TLSv1.2"),
            ("ssl_max_protocol_version", ""),
            ("password_encryption", "scram-sha-256"),
            ("ssl_ciphers", "HIGH:!aNULL"),
        ];
        AuditFacts {
            access: Some(access()),
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            sessions: vec![session(1, "client backend", Some(true))],
            hba: Some(HbaFacts {
                hba_file: Some("/etc/pg/pg_hba.conf".into()),
                rules: vec![
                    rule(1, "local all all - trust"),
                    rule(3, "hostssl all all 0.0.0.0/0 scram-sha-256"),
                    rule(4, "hostssl all all ::/0 scram-sha-256"),
                    rule(6, "host all all 0.0.0.0/0 reject"),
                    rule(7, "host all all ::/0 reject"),
                ],
                reload: ReloadCheck::NotRun,
            }),
            failure: None,
            hba_failure: None,
            files: Default::default(),
        }
    }

    pub fn session(pid: i32, backend_type: &str, ssl: Option<bool>) -> TcpSession {
        TcpSession {
            pid,
            user: Some("app".into()),
            database: Some("db".into()),
            client_addr: Some("10.0.0.5".into()),
            application_name: Some("x".into()),
            backend_type: Some(backend_type.into()),
            ssl,
            tls_version: None,
            gss_encrypted: Some(false),
        }
    }

    pub fn statuses(report: &AuditReport) -> Vec<(&'static str, Status)> {
        report
            .checks
            .iter()
            .map(|c| (c.check.name(), c.status))
            .collect()
    }
}

/// Certificates made with rcgen (and the article's openssl recipe, which
/// makes what rcgen cannot), judged by the libpq-rule verifier.
pub mod pki {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    use rustls_pki_types::CertificateDer;

    use crate::conn::SslMode;
    use crate::facts::{CertChainFacts, CertProblem};
    use crate::tls::{trust_from_certificates, TrustStore};

    /// 2025-01-01T00:00:00Z: every generated certificate is judged at this instant.
    pub const AT: i64 = 1_735_689_600;

    pub type Issuer = CertifiedIssuer<'static, KeyPair>;

    pub fn ca_params(cn: &str, from: (i32, u8), until: (i32, u8)) -> CertificateParams {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = rcgen::date_time_ymd(from.0, from.1, 1);
        p.not_after = rcgen::date_time_ymd(until.0, until.1, 1);
        p
    }

    pub fn root(cn: &str) -> Issuer {
        CertifiedIssuer::self_signed(
            ca_params(cn, (2020, 1), (2035, 1)),
            KeyPair::generate().unwrap(),
        )
        .unwrap()
    }

    pub fn leaf_params(sans: &[&str], cn: Option<&str>) -> CertificateParams {
        let mut p =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        if let Some(cn) = cn {
            p.distinguished_name.push(DnType::CommonName, cn);
        }
        p.not_before = rcgen::date_time_ymd(2024, 1, 1);
        p.not_after = rcgen::date_time_ymd(2026, 1, 1);
        p
    }

    pub fn sign(params: CertificateParams, issuer: &Issuer) -> CertificateDer<'static> {
        params
            .signed_by(&KeyPair::generate().unwrap(), &**issuer)
            .unwrap()
            .der()
            .clone()
    }

    pub fn leaf(sans: &[&str], cn: Option<&str>, issuer: &Issuer) -> CertificateDer<'static> {
        sign(leaf_params(sans, cn), issuer)
    }

    pub fn intermediate(
        cn: &str,
        params_tweak: impl FnOnce(&mut CertificateParams),
        by: &Issuer,
    ) -> Issuer {
        let mut p = ca_params(cn, (2020, 1), (2030, 1));
        params_tweak(&mut p);
        CertifiedIssuer::signed_by(p, KeyPair::generate().unwrap(), &**by).unwrap()
    }

    pub fn trust(roots: &[&Issuer]) -> TrustStore {
        trust_from_certificates(roots.iter().map(|r| r.der().clone()).collect()).unwrap()
    }

    /// Everything the verifier would record, judged at `now` (Unix seconds).
    pub(crate) use crate::tls::judge_chain as judge_at;

    /// The strict-only issues in words.
    pub fn issues(facts: &CertChainFacts) -> Vec<String> {
        facts
            .strict_only_issues
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    pub fn judge(
        chain: &[CertificateDer<'static>],
        trust: &TrustStore,
        host: &str,
    ) -> CertChainFacts {
        judge_at(chain, trust, SslMode::VerifyFull, host, AT)
    }

    pub fn libpq_problem(facts: &CertChainFacts) -> CertProblem {
        match &facts.libpq {
            Some(Err(p)) => p.clone(),
            other => panic!("expected a libpq rejection, got {other:?}"),
        }
    }

    /// The article's recipe, run verbatim in a temp dir: an X.509 v1, CN-only
    /// server certificate signed by a v3 CA.
    pub struct ArticlePki {
        _dir: tempfile::TempDir,
        pub ca: PathBuf,
        pub server_crt: PathBuf,
        pub server_key: PathBuf,
    }

    /// Runs the openssl CLI in `dir`; a failure of the command fails the test.
    pub fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("openssl {args:?}: {e}"));
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Whether the openssl CLI is here, for what rcgen cannot make (X.509 v1
    /// certificates, PKCS#1 and SEC1 keys). Missing, the test says so and
    /// skips; under `CI=true` that is a failure instead.
    pub fn have_openssl(test: &str) -> bool {
        let found = Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{test}: the openssl CLI is missing (CI=true)"
            );
            eprintln!("{test}: skipped, no openssl CLI");
        }
        found
    }

    pub fn article_pki() -> Option<ArticlePki> {
        article_pki_signing_with(&[])
    }

    /// The article's commands, with `extra` options for the signing step.
    pub fn article_pki_signing_with(extra: &[&str]) -> Option<ArticlePki> {
        if !have_openssl("the article's certificate recipe") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-new",
                "-x509",
                "-days",
                "3650",
                "-nodes",
                "-out",
                "ca.crt",
                "-keyout",
                "ca.key",
                "-subj",
                "/CN=PostgreSQL CA",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-new",
                "-nodes",
                "-out",
                "server.csr",
                "-keyout",
                "server.key",
                "-subj",
                "/CN=db.internal",
            ],
        );
        let mut sign = vec![
            "x509",
            "-req",
            "-days",
            "365",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
        ];
        sign.extend_from_slice(extra);
        openssl(d, &sign);
        Some(ArticlePki {
            ca: d.join("ca.crt"),
            server_crt: d.join("server.crt"),
            server_key: d.join("server.key"),
            _dir: dir,
        })
    }

    pub fn unix_now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }
}
