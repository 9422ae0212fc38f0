//! The version matrix: the article's setup on PostgreSQL 12, 15, 17 and 18,
//! probed with both TLS negotiations.
//!
//! 15 is Debian's; 12, 17 and 18 come from `scripts/fetch-postgres.sh` (a
//! missing major skips, saying so, or fails under `CI=true`). One server per
//! major and test, not shared, so its log holds only this test's connections
//! and can be checked for the noise an unclean TLS close leaves.

use serde_json::Value;

use crate::util::pg::{self, Server, ServerSpec, ServerTls};
use crate::util::pki::{Ca, Validity};
use crate::util::Probe;

/// Log lines that mean a TLS connection was not closed cleanly (OpenSSL 1.1
/// and 3 wordings) or was reset.
const UNCLEAN_CLOSE: &[&str] = &[
    "unexpected EOF",
    "unexpected eof",
    "EOF detected",
    "reset by peer",
    "could not receive data from client",
];

/// What the server logs for each legacy version the scan offers and it
/// refuses (SSLv3 is "unsupported protocol" too with OpenSSL 1.1).
const LEGACY_REFUSED: &[&str] = &[
    "could not accept SSL connection: unsupported protocol",
    "could not accept SSL connection: version too low",
];

/// What PostgreSQL 16 and older log for a ClientHello where a startup
/// packet should be: unavoidable when asking them for direct TLS.
const OLD_SERVER_DIRECT_LINE: &str = "invalid length of startup packet";

/// What the scan must find on the article's setup, whatever the OpenSSL.
const ARTICLE_VERDICTS: [(&str, bool); 5] = [
    ("SSLv3", false),
    ("TLSv1", false),
    ("TLSv1.1", false),
    ("TLSv1.2", true),
    ("TLSv1.3", true),
];

#[track_caller]
fn expect_scan(out: &crate::util::Outcome, verdicts: [(&str, Value); 5]) {
    for (i, (version, accepted)) in verdicts.into_iter().enumerate() {
        out.expect_at(&format!("/scan/protocols/{i}/version"), version)
            .expect_at(&format!("/scan/protocols/{i}/accepted"), accepted);
    }
}

/// The article's setup on `major`, with the client's root CA file.
fn start(major: u32) -> Option<(Server, std::path::PathBuf)> {
    pg::require_major(major)?;
    let ca = Ca::root("pg-tls-probe matrix CA");
    let leaf = ca.server(&["localhost", "127.0.0.1"], Validity::normal());
    let spec = ServerSpec::article(ServerTls {
        cert_chain_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
        ca_pem: ca.cert_pem.clone(),
    })
    .on_major(major);
    let server = Server::start(&spec)?;
    let root = server.client_file("root.crt", &ca.cert_pem);
    Some((server, root))
}

/// Every check that must hold on `major`; `direct_supported` is whether the
/// server speaks PostgreSQL 17's direct TLS.
fn check_major(major: u32, direct_supported: bool) {
    let Some((server, root)) = start(major) else {
        return;
    };
    // The harness itself: psql (Debian's, whatever the server) over the socket.
    let version_num: u32 = server
        .psql("SHOW server_version_num")
        .trim()
        .parse()
        .expect("server_version_num from psql");
    assert_eq!(version_num / 10000, major, "psql reached the wrong server");

    // The article's setup, default negotiation: OK, pg_stat_ssl read,
    // plaintext rejected, and the direct-TLS fact from a separate connection.
    let out = Probe::server(&server, &root).run();
    out.expect_exit(0)
        .expect_all_checks_ok()
        .expect_at("/tls/ssl", true)
        .expect_at("/tls/server_version_num", version_num)
        .expect_at("/plaintext/outcome/kind", "error")
        .expect_at("/plaintext/outcome/sqlstate", "28000")
        .expect_at("/target/sslnegotiation", "postgres")
        .expect_at("/direct_tls/supported", direct_supported);
    // The scan, same verdicts on OpenSSL 1.1 (12, 17, 18) and 3 (15).
    expect_scan(&out, ARTICLE_VERDICTS.map(|(v, a)| (v, Value::Bool(a))));
    let protocol = out.at("/tls/version").as_str().unwrap_or_default();
    assert!(
        protocol == "TLSv1.2" || protocol == "TLSv1.3",
        "protocol {protocol}\n{}",
        out.context()
    );
    let summary = out.check("direct_tls")["summary"]
        .as_str()
        .unwrap_or_default();
    let expected = if direct_supported {
        "direct TLS supported: "
    } else {
        "direct TLS not supported: "
    };
    assert!(
        summary.starts_with(expected),
        "{summary}\n{}",
        out.context()
    );

    // The same with sslnegotiation=direct.
    let out = Probe::server(&server, &root)
        .args(["--sslnegotiation", "direct"])
        .run();
    out.expect_at("/target/sslnegotiation", "direct");
    if direct_supported {
        out.expect_exit(0)
            .expect_all_checks_ok()
            .expect_at("/tls/ssl", true)
            .expect_at("/tls/server_version_num", version_num)
            .expect_at("/direct_tls/supported", true);
        // The scan negotiated directly too, and saw the same versions.
        expect_scan(&out, ARTICLE_VERDICTS.map(|(v, a)| (v, Value::Bool(a))));
    } else {
        // The scan negotiated directly too: nothing could be decided.
        expect_scan(&out, ARTICLE_VERDICTS.map(|(v, _)| (v, Value::Null)));
        out.expect_check("protocols", "UNKNOWN");
        out.expect_exit(2)
            .expect_check("connection", "CRITICAL")
            .expect_failure("tls")
            .expect_at("/tls", Value::Null)
            .expect_at("/direct_tls/supported", false);
        let reason = out.check("connection")["summary"]
            .as_str()
            .unwrap_or_default();
        assert!(
            reason.contains("direct TLS needs PostgreSQL 17 or later"),
            "{reason}\n{}",
            out.context()
        );
    }

    // Both runs ended every TLS connection cleanly; the only refusal logged
    // is the scan's one legacy ClientHello (up to TLSv1.1) per run that
    // reached TLS (under direct negotiation a server before 17 hangs up on
    // each hello).
    let log = server.log();
    for noise in UNCLEAN_CLOSE {
        assert!(
            !log.contains(noise),
            "PostgreSQL {major} logged {noise:?}:\n{log}"
        );
    }
    let refusals = log
        .lines()
        .filter(|l| l.contains("could not accept SSL connection"))
        .collect::<Vec<_>>();
    assert!(
        refusals
            .iter()
            .all(|l| LEGACY_REFUSED.iter().any(|r| l.contains(r))),
        "PostgreSQL {major} refused something other than a legacy version:\n{log}"
    );
    let scans_reaching_tls = if direct_supported { 2 } else { 1 };
    assert_eq!(
        refusals.len(),
        scans_reaching_tls,
        "one legacy ClientHello per scan:\n{log}"
    );
    assert_eq!(
        log.contains(OLD_SERVER_DIRECT_LINE),
        !direct_supported,
        "PostgreSQL {major}: {OLD_SERVER_DIRECT_LINE:?} expected only before 17:\n{log}"
    );
}

#[test]
fn pg12_article_setup_and_no_direct_tls() {
    check_major(12, false);
}

#[test]
fn pg15_article_setup_and_no_direct_tls() {
    check_major(15, false);
}

#[test]
fn pg17_article_setup_and_direct_tls() {
    check_major(17, true);
}

#[test]
fn pg18_article_setup_and_direct_tls() {
    check_major(18, true);
}

/// PostgreSQL 17 with `ssl = off` closes on a direct ClientHello just as an
/// old server does: the session fails with the same reason and the check
/// says "not supported" (both negotiations fail; TLS is off).
#[test]
fn pg17_with_ssl_off_refuses_direct_tls() {
    if pg::require_major(17).is_none() {
        return;
    }
    let ca = Ca::root("pg-tls-probe matrix CA");
    let leaf = ca.server(&["localhost"], Validity::normal());
    let mut spec = ServerSpec::article(ServerTls {
        cert_chain_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
        ca_pem: ca.cert_pem.clone(),
    })
    .on_major(17);
    spec.ssl = false;
    let Some(server) = Server::start(&spec) else {
        return;
    };
    let root = server.client_file("root.crt", &ca.cert_pem);
    let out = Probe::server(&server, &root)
        .args(["--sslnegotiation", "direct", "--skip-plaintext-check"])
        .run();
    out.expect_exit(2)
        .expect_failure("tls")
        .expect_at("/direct_tls/supported", false);
    let reason = out.at("/failure/detail").as_str().unwrap_or_default();
    assert!(
        reason.ends_with("PostgreSQL 17 or later, with ssl = on"),
        "{reason}"
    );
}
