//! Golden documents: four whole JSON reports, from hand-made facts at a
//! fixed instant, pinned byte for byte in `golden/`. A renamed or dropped
//! field fails here before it reaches anyone's dashboard. After a
//! deliberate schema change (additions only), regenerate them with
//! `PG_TLS_PROBE_BLESS=1 cargo test --lib golden` and update README.

use std::path::Path;

use crate::facts::audit::{HbaFacts, ReloadCheck, TcpSession};
use crate::facts::{
    AttemptOutcome, AuthRequest, CertProblem, CipherAttempt, CipherClass, DirectTlsFacts,
    HandshakeFailure, IoFailure, PlaintextOutcome, ProtocolAttempt, Refusal, ScanFacts, ScanLevel,
    SessionFailure, TlsVersion, Undecided,
};
use crate::fixtures::{audit, healthy, target, thresholds, NOW};
use crate::policy::{evaluate, Report};

/// Compares `report`'s document with `golden/<name>.json`.
fn golden(name: &str, report: &Report) {
    let got = super::render(report);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/render/json/golden")
        .join(format!("{name}.json"));
    if std::env::var("PG_TLS_PROBE_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "{name}.json differs from line {}:\n  got:  {:?}\n  want: {:?}\n--- whole document ---\n{got}",
            first + 1,
            got.lines().nth(first),
            want.lines().nth(first),
        );
    }
}

/// The article's setup, direct TLS answered by the server.
#[test]
fn golden_ok() {
    let mut facts = healthy();
    facts.direct_tls = Some(DirectTlsFacts::Negotiated);
    golden("ok", &evaluate(facts, target(), thresholds()));
}

/// An expired certificate stops the session before login, and plaintext
/// reaches SCRAM.
#[test]
fn golden_critical() {
    let mut facts = healthy();
    let leaf = facts.session.chain.presented[0].clone();
    let problem = CertProblem::Expired {
        subject: leaf.subject.clone(),
        not_after: NOW - 86_400,
    };
    facts.session.chain.presented[0].not_after = NOW - 86_400;
    facts.session.chain.libpq = Some(Err(problem.clone()));
    facts.session.chain.anchor = None;
    facts.session.chain.strict = None;
    facts.session.pg_stat_ssl = None;
    facts.session.server_version_num = None;
    facts.session.connect_seconds = None;
    facts.session.auth = None;
    facts.session.failure = Some(SessionFailure::Certificate(problem));
    facts.plaintext.as_mut().unwrap().outcome = PlaintextOutcome::AuthRequested {
        method: AuthRequest::Sasl,
        mechanisms: vec!["SCRAM-SHA-256".into()],
    };
    golden("critical", &evaluate(facts, target(), thresholds()));
}

/// `--scan full` on a legacy server, and a server that hangs up on a
/// direct ClientHello.
#[test]
fn golden_scan() {
    let mut facts = healthy();
    let outcome = |version: TlsVersion| match version {
        TlsVersion::Ssl3 => AttemptOutcome::Refused(Refusal::Alert {
            fatal: true,
            code: 40,
        }),
        TlsVersion::Tls10 => AttemptOutcome::Accepted {
            version,
            suite: 0xc014,
        },
        TlsVersion::Tls11 => AttemptOutcome::Undecided(Undecided::Timeout { after_ms: 2000 }),
        TlsVersion::Tls12 => AttemptOutcome::Accepted {
            version,
            suite: 0xc02f,
        },
        TlsVersion::Tls13 => AttemptOutcome::Accepted {
            version,
            suite: 0x1302,
        },
    };
    let cipher = |class: CipherClass| CipherAttempt {
        class,
        outcome: match class {
            CipherClass::CbcSha1 => AttemptOutcome::Accepted {
                version: TlsVersion::Tls12,
                suite: 0xc014,
            },
            CipherClass::Des => AttemptOutcome::Accepted {
                version: TlsVersion::Tls12,
                suite: 0x000a,
            },
            _ => AttemptOutcome::Refused(Refusal::Alert {
                fatal: true,
                code: 40,
            }),
        },
    };
    facts.scan = Some(ScanFacts {
        level: ScanLevel::Full,
        protocols: TlsVersion::ALL
            .map(|version| ProtocolAttempt {
                version,
                outcome: outcome(version),
            })
            .to_vec(),
        ciphers: Some(CipherClass::ALL.map(cipher).to_vec()),
        seconds: 0.012,
    });
    facts.direct_tls = Some(DirectTlsFacts::Failed {
        failure: HandshakeFailure::ClosedBeforeReply(IoFailure {
            kind: std::io::ErrorKind::UnexpectedEof,
            message: "tls handshake eof".into(),
        }),
        progress: crate::facts::HandshakeProgress::NotStarted,
        certificate_rejected: false,
    });
    golden("scan", &evaluate(facts, target(), thresholds()));
}

/// `--audit` finding a plaintext rule, a pending reload and a plaintext
/// replication session.
#[test]
fn golden_audit() {
    let mut facts = healthy();
    let mut audited = audit::article();
    if let Some(HbaFacts { rules, reload, .. }) = audited.hba.as_mut() {
        rules.push(audit::rule(9, "host all all 10.0.0.0/16 scram-sha-256"));
        *reload = ReloadCheck::Checked {
            file_modified: 1_799_999_000.0,
            loaded: 1_799_998_000.0,
            pending: true,
        };
    }
    audited.sessions.push(TcpSession {
        ssl: Some(false),
        ..audit::session(42, "walsender", Some(false))
    });
    facts.session.audit = Some(audited);
    golden("audit", &evaluate(facts, target(), thresholds()));
}
