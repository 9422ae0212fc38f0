//! The protocol and weak-cipher scan (`--scan`) against real PostgreSQL 15
//! servers, plus fakes for what a server cannot do (garbage, silence).

use std::time::Duration;

use serde_json::Value;

use crate::util::fake::{Behaviour, Fake, Reply};
use crate::util::pg::{self, Server, ServerSpec, SharedServer};
use crate::util::pki::{Ca, Validity};
use crate::util::{Outcome, Probe};

const NAMES: &[&str] = &["localhost", "127.0.0.1"];

/// A server per the article with `lines` appended to postgresql.conf.
fn start(lines: &[&str]) -> Option<SharedServer> {
    let ca = Ca::root("pg-tls-probe scan CA");
    let leaf = ca.server(NAMES, Validity::normal());
    let mut spec = ServerSpec::article(pg::ServerTls {
        cert_chain_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
        ca_pem: ca.cert_pem.clone(),
    });
    for line in lines {
        spec = spec.conf(line);
    }
    let server = Server::start(&spec)?;
    let root = server.client_file("root.crt", &ca.cert_pem);
    Some((server, root))
}

fn article() -> Option<&'static SharedServer> {
    pg::shared("scan-article", || start(&[]))
}

/// TLS 1.0 and 1.1 allowed; security level 0 so OpenSSL 3 can sign with SHA-1.
fn legacy() -> Option<&'static SharedServer> {
    pg::shared("scan-legacy", || {
        start(&[
            "ssl_min_protocol_version = 'TLSv1'",
            "ssl_ciphers = 'DEFAULT:@SECLEVEL=0'",
        ])
    })
}

/// `[accepted; 5]` of the scan, SSLv3 to TLSv1.3.
fn accepted(out: &Outcome) -> Vec<Value> {
    let list = out
        .at("/scan/protocols")
        .as_array()
        .expect("protocols list");
    let names: Vec<&str> = list
        .iter()
        .map(|p| p["version"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]);
    list.iter().map(|p| p["accepted"].clone()).collect()
}

fn summary(out: &Outcome, check: &str) -> String {
    out.check(check)["summary"].as_str().unwrap().to_string()
}

fn class<'a>(out: &'a Outcome, name: &str) -> &'a Value {
    out.at("/scan/ciphers")
        .as_array()
        .expect("ciphers list")
        .iter()
        .find(|c| c["class"] == name)
        .unwrap_or_else(|| panic!("no class {name}\n{}", out.context()))
}

#[test]
fn article_refuses_legacy_and_accepts_tls12_and_13() {
    let Some((server, root)) = article() else {
        return;
    };
    let out = Probe::server(server, root).run();
    out.expect_exit(0)
        .expect_check("protocols", "OK")
        .expect_at("/scan/level", "protocols")
        .expect_at("/scan/ciphers", Value::Null);
    assert_eq!(accepted(&out), [false, false, false, true, true]);
    assert_eq!(
        summary(&out, "protocols"),
        "accepted: TLSv1.2, TLSv1.3; refused: SSLv3, TLSv1, TLSv1.1"
    );
    // One ClientHello offering up to TLSv1.1 answers for all three.
    assert_eq!(
        out.at("/scan/protocols/2/detail"),
        "fatal alert 70 protocol_version"
    );
    assert_eq!(
        out.at("/scan/protocols/1/detail"),
        "fatal alert 70 protocol_version to a ClientHello offering every version up to TLSv1.1"
    );
    // The session negotiated TLSv1.3; TLSv1.2 is asked on its own.
    let tls13 = out.at("/scan/protocols/4/detail").as_str().unwrap();
    assert!(
        tls13.starts_with("negotiated by the verify-full session: TLSv1.3, TLS_"),
        "{tls13}"
    );
    let tls12 = out.at("/scan/protocols/3/detail").as_str().unwrap();
    assert!(
        tls12.starts_with("ServerHello TLSv1.2, TLS_ECDHE_"),
        "{tls12}"
    );
    let seconds = out.at("/scan/seconds").as_f64().unwrap();
    eprintln!("protocol scan on localhost: {seconds:.4} s");
}

#[test]
fn article_full_scan_finds_no_weak_class() {
    let Some((server, root)) = article() else {
        return;
    };
    let out = Probe::server(server, root).args(["--scan", "full"]).run();
    out.expect_exit(0).expect_check("ciphers", "OK");
    for name in ["NULL", "anonymous", "EXPORT", "RC4", "DES/3DES"] {
        assert_eq!(class(&out, name)["accepted"], false, "{name}");
        assert_eq!(class(&out, name)["chosen"], Value::Null, "{name}");
    }
    // HIGH includes AES-CBC with SHA-1: reported, not alarming.
    let cbc = class(&out, "CBC-SHA1");
    assert_eq!(cbc["accepted"], true);
    assert_eq!(cbc["informational"], true);
    let chosen = cbc["chosen"].as_str().unwrap();
    assert!(
        summary(&out, "ciphers").contains(chosen),
        "{}",
        out.context()
    );
    eprintln!(
        "full scan on localhost: {:.4} s",
        out.at("/scan/seconds").as_f64().unwrap()
    );
}

#[test]
fn scan_none_adds_nothing() {
    let Some((server, root)) = article() else {
        return;
    };
    let out = Probe::server(server, root).args(["--scan", "none"]).run();
    out.expect_exit(0).expect_at("/scan", Value::Null);
    assert!(
        out.json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["name"] != "protocols"),
        "{}",
        out.context()
    );
}

#[test]
fn legacy_server_is_warning_naming_the_versions() {
    let Some((server, root)) = legacy() else {
        return;
    };
    let out = Probe::server(server, root).run();
    out.expect_exit(1).expect_check("protocols", "WARNING");
    assert_eq!(accepted(&out), [false, true, true, true, true]);
    let s = summary(&out, "protocols");
    assert!(
        s.starts_with("server accepts TLSv1, TLSv1.1 (legacy or below TLSv1.2)"),
        "{s}"
    );
    let tls10 = out.at("/scan/protocols/1/detail").as_str().unwrap();
    assert!(tls10.starts_with("ServerHello TLSv1, TLS_"), "{tls10}");
}

#[test]
fn legacy_tls_flag_sets_the_status() {
    let Some((server, root)) = legacy() else {
        return;
    };
    Probe::server(server, root)
        .args(["--legacy-tls", "critical"])
        .run()
        .expect_exit(2)
        .expect_check("protocols", "CRITICAL");
    let out = Probe::server(server, root)
        .args(["--legacy-tls", "ignore"])
        .run();
    out.expect_exit(0).expect_check("protocols", "OK");
    assert!(
        summary(&out, "protocols").contains("ignored"),
        "{}",
        out.context()
    );
}

/// TLS 1.0 allowed, but OpenSSL 3's default security level forbids the
/// SHA-1/MD5 signatures TLS 1.0 and 1.1 need: the server cannot finish such
/// a handshake, so no client gets TLS 1.0 and the scan says refused.
#[test]
fn legacy_allowed_at_default_security_level_is_refused() {
    let Some((server, root)) = start(&["ssl_min_protocol_version = 'TLSv1'"]) else {
        return;
    };
    let out = Probe::server(&server, &root).run();
    out.expect_exit(0).expect_check("protocols", "OK");
    assert_eq!(accepted(&out), [false, false, false, true, true]);
    assert_eq!(
        out.at("/scan/protocols/2/detail"),
        "fatal alert 80 internal_error"
    );
}

#[test]
fn tls12_only_server_refuses_tls13_and_is_ok() {
    let Some((server, root)) = start(&["ssl_max_protocol_version = 'TLSv1.2'"]) else {
        return;
    };
    let out = Probe::server(&server, &root).run();
    out.expect_exit(0).expect_check("protocols", "OK");
    assert_eq!(accepted(&out), [false, false, false, true, false]);
    // The session offered both and the server chose TLSv1.2: no
    // connection of the scan's own was needed for either.
    assert_eq!(
        out.at("/scan/protocols/4/detail"),
        "offered by the verify-full session, which the server answered with TLSv1.2"
    );
    let tls12 = out.at("/scan/protocols/3/detail").as_str().unwrap();
    assert!(
        tls12.starts_with("negotiated by the verify-full session: TLSv1.2"),
        "{tls12}"
    );
}

/// Debian's OpenSSL 3.0 (PostgreSQL 15's) has no DES, 3DES, RC4 or EXPORT
/// suites at all, whatever ssl_ciphers says; NULL encryption and anonymous
/// key exchange are what a misconfigured server can still turn on.
#[test]
fn weak_cipher_server_is_warning_naming_the_suite() {
    let Some((server, root)) = start(&["ssl_ciphers = 'ALL:eNULL:@SECLEVEL=0'"]) else {
        return;
    };
    let out = Probe::server(&server, &root).args(["--scan", "full"]).run();
    out.expect_exit(1)
        .expect_check("protocols", "OK")
        .expect_check("ciphers", "WARNING");
    let null = class(&out, "NULL");
    assert_eq!(null["accepted"], true, "{}", out.context());
    // The test PKI's keys are P-256, so the server signs with ECDSA.
    assert_eq!(null["chosen"], "TLS_ECDHE_ECDSA_WITH_NULL_SHA");
    let anon = class(&out, "anonymous");
    assert_eq!(anon["accepted"], true, "{}", out.context());
    let anon_suite = anon["chosen"].as_str().unwrap();
    assert!(anon_suite.contains("_anon_"), "{anon_suite}");
    assert_eq!(class(&out, "DES/3DES")["accepted"], false);
    assert_eq!(
        summary(&out, "ciphers"),
        format!(
            "server accepts weak cipher suites: NULL (TLS_ECDHE_ECDSA_WITH_NULL_SHA), \
             anonymous ({anon_suite}); informational: accepts CBC-SHA1 \
             (TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA)"
        )
    );
    Probe::server(&server, &root)
        .args(["--scan", "full", "--weak-ciphers", "critical"])
        .run()
        .expect_exit(2)
        .expect_check("ciphers", "CRITICAL");
    Probe::server(&server, &root)
        .args(["--scan", "full", "--weak-ciphers", "ignore"])
        .run()
        .expect_exit(0)
        .expect_check("ciphers", "OK");
}

/// Lines a run adds to the server log (log_connections on).
fn log_lines(server: &Server, args: &[&str], root: &std::path::Path) -> usize {
    let before = server.log().lines().count();
    let mut probe = Probe::server(server, root);
    for a in args {
        probe = probe.arg(*a);
    }
    probe.run().expect_exit(0);
    server.log().lines().count() - before
}

/// The README's "server log lines per run": measured, not guessed.
#[test]
fn server_log_lines_per_scan_level() {
    let Some((server, root)) = start(&[]) else {
        return;
    };
    let none = log_lines(&server, &["--scan", "none"], &root);
    let protocols = log_lines(&server, &["--scan", "protocols"], &root);
    let full = log_lines(&server, &["--scan", "full"], &root);
    eprintln!("log lines: none {none}, protocols {protocols}, full {full}");
    // Two connections: the ClientHello offering up to TLSv1.1 ("connection
    // received", then "could not accept SSL connection" and its HINT) and
    // the TLSv1.2 handshake ("connection received"); TLSv1.3 is the
    // session's own. No direct_tls connection: the session read
    // server_version 15, which cannot speak it. (Before: 13 lines from six
    // connections.)
    assert_eq!(protocols - none, 3 + 1, "{}", server.log());
    assert_eq!(none, 5, "{}", server.log());
    // Six more connections: five classes refused ("no shared cipher", no
    // HINT), CBC-SHA1 accepted then cancelled ("EOF detected").
    assert_eq!(full - protocols, 6 + 6, "{}", server.log());
}

#[test]
fn nagios_and_text_show_the_scan() {
    let Some((server, root)) = article() else {
        return;
    };
    let out = Probe::server(server, root).format("nagios").run_raw();
    out.expect_code(0);
    assert!(
        out.first_line().contains(" scan_time="),
        "{}",
        out.context()
    );
    assert!(
        out.stdout.lines().any(
            |l| l == "OK protocols: accepted: TLSv1.2, TLSv1.3; refused: SSLv3, TLSv1, TLSv1.1"
        ),
        "{}",
        out.context()
    );
    let out = Probe::server(server, root).format("text").run_raw();
    assert!(
        out.stdout.contains("\nprotocol scan:\n"),
        "{}",
        out.context()
    );
    assert!(
        out.stdout
            .contains("  TLSv1.1   refused   fatal alert 70 protocol_version\n"),
        "{}",
        out.context()
    );
}

fn fake(ssl: Reply) -> Fake {
    Fake::start(Behaviour::Script {
        ssl,
        startup: Reply::Error("28000", "no pg_hba.conf entry (fake)"),
    })
}

#[test]
fn garbage_after_s_leaves_every_version_undecided() {
    let fake = fake(Reply::TlsThenGarbage);
    let out = Probe::port(fake.port).run();
    out.expect_check("protocols", "UNKNOWN");
    assert_eq!(accepted(&out), vec![Value::Null; 5]);
    let detail = out.at("/scan/protocols/1/detail").as_str().unwrap();
    assert!(
        detail.starts_with("not a TLS record: de ad be ef"),
        "{detail}"
    );
}

#[test]
fn silence_after_s_is_undecided_within_the_deadline() {
    let fake = fake(Reply::TlsThenSilent);
    let out = Probe::port(fake.port)
        .without_env("PGCONNECT_TIMEOUT")
        .args(["--timeout", "2"])
        .run();
    out.expect_check("protocols", "UNKNOWN");
    assert_eq!(accepted(&out), vec![Value::Null; 5]);
    let detail = out.at("/scan/protocols/0/detail").as_str().unwrap();
    assert!(detail.starts_with("no answer within"), "{detail}");
    assert!(out.elapsed < Duration::from_secs(3), "{:?}", out.elapsed);
}

#[test]
fn refused_tls_leaves_every_version_undecided() {
    let fake = fake(Reply::Refuse);
    let out = Probe::port(fake.port).run();
    out.expect_check("protocols", "UNKNOWN");
    assert_eq!(
        out.at("/scan/protocols/4/detail"),
        "server answered 'N' to the SSLRequest (no TLS)"
    );
}

/// A host in one of inet_aton's short forms ("127.1"), which libpq (and the
/// session) read as 127.0.0.1: the scan must name the server the same way,
/// not leave TLSv1.2 and TLSv1.3 undecided as "not a TLS name".
#[test]
fn inet_aton_host_is_scanned_like_the_session_connects() {
    let Some((server, root)) = article() else {
        return;
    };
    let out = Probe::server(server, root)
        .env("PGHOST", "127.1")
        .args(["--scan", "full"])
        .run();
    out.expect_exit(0)
        .expect_check("connection", "OK")
        .expect_check("protocols", "OK")
        .expect_check("ciphers", "OK");
    assert_eq!(accepted(&out), [false, false, false, true, true]);
    assert_eq!(
        class(&out, "CBC-SHA1")["accepted"],
        true,
        "{}",
        out.context()
    );
}

/// An answer that came in time is kept even when the peer, which never
/// closes, makes the goodbye run into the deadline: the goodbye is bounded
/// by the deadline, the answer is not thrown away with it.
#[test]
fn an_answer_is_kept_when_the_close_runs_into_the_deadline() {
    let fake = fake(Reply::TlsThenGarbage);
    let out = Probe::port(fake.port)
        .args(["--timeout", "0.4", "--skip-plaintext-check"])
        .run();
    for i in 0..5 {
        let detail = out.at(&format!("/scan/protocols/{i}/detail"));
        let detail = detail.as_str().unwrap_or_default();
        assert!(
            !detail.starts_with("no answer within"),
            "{i}: {detail}\n{}",
            out.context()
        );
    }
    let detail = out.at("/scan/protocols/1/detail").as_str().unwrap();
    assert!(
        detail.starts_with("not a TLS record: de ad be ef"),
        "{detail}"
    );
    assert!(
        out.elapsed < Duration::from_millis(1400),
        "{:?}",
        out.elapsed
    );
}

/// The article's own openssl commands make an X.509 v1 leaf, which webpki
/// will not parse: the scan must still see TLS 1.2 and 1.3 accepted.
#[test]
fn v1_certificate_server_is_scanned_like_any_other() {
    let tls = pg::article_v1_certs();
    let ca_pem = tls.ca_pem.clone();
    let Some(server) = Server::start(&ServerSpec::article(tls)) else {
        return;
    };
    let root = server.client_file("root.crt", &ca_pem);
    let out = Probe::server(&server, &root)
        .env("PGHOST", "db.internal")
        .env("PGHOSTADDR", "127.0.0.1")
        .run();
    out.expect_exit(1)
        .expect_check("strict_clients", "WARNING")
        .expect_check("protocols", "OK")
        .expect_at("/scan/protocols/3/accepted", true)
        .expect_at("/scan/protocols/4/accepted", true);
}
