//! Real PostgreSQL servers: the article's setup (docker/postgres/*), then
//! one variation per test, and the exit code and JSON verdict expected.
//!
//! A test that only connects uses the server of its configuration shared
//! for the whole run (`util::pg::shared`); the others start their own
//! (`util::pg::Server`). Each server has a fresh rcgen PKI; tests skip when PostgreSQL is not installed (fail under `CI=true`).
//! The `harness_*` tests use psql instead of the probe, so a broken harness
//! is told apart from a broken binary.

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use serde_json::Value;

use crate::util::pg::{self, Plaintext, Server, ServerSpec, ServerTls, SharedServer};
use crate::util::pki::{Ca, Issued, Validity};
use crate::util::Probe;

/// The names a good server certificate carries (v3 subjectAltName).
const GOOD_NAMES: &[&str] = &["localhost", "127.0.0.1"];

/// Server files for a leaf issued by `ca` (no intermediates).
fn tls(ca: &Ca, leaf: Issued) -> ServerTls {
    ServerTls {
        cert_chain_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
        ca_pem: ca.cert_pem.clone(),
    }
}

/// A server per the article with a leaf for `names` valid over `validity`,
/// `tweak` applied to the spec; returns it with the client's root CA file.
fn start(
    names: &[&str],
    validity: Validity,
    tweak: impl FnOnce(&mut ServerSpec),
) -> Option<(Server, PathBuf)> {
    let ca = Ca::root("pg-tls-probe test CA");
    let mut spec = ServerSpec::article(tls(&ca, ca.server(names, validity)));
    tweak(&mut spec);
    let server = Server::start(&spec)?;
    let root = server.client_file("root.crt", &ca.cert_pem);
    Some((server, root))
}

/// The article's setup with a good certificate.
fn start_article() -> Option<(Server, PathBuf)> {
    start(GOOD_NAMES, Validity::normal(), |_| {})
}

/// The article's setup, shared by the tests that only connect to it.
fn article() -> Option<&'static SharedServer> {
    pg::shared("article", start_article)
}

/// The article except that pg_hba lets plaintext reach scram-sha-256; shared.
fn plaintext_scram() -> Option<&'static SharedServer> {
    pg::shared("plaintext-scram", || {
        start(GOOD_NAMES, Validity::normal(), |s| {
            s.plaintext = Plaintext::Scram
        })
    })
}

/// The article with a certificate for another host name; shared.
fn other_name() -> Option<&'static SharedServer> {
    pg::shared("other-name", || {
        start(&["other.example"], Validity::normal(), |_| {})
    })
}

// ---- the harness itself, checked with psql ----

#[test]
fn harness_article_server_accepts_psql_verify_full_only() {
    let Some((server, root)) = article() else {
        return;
    };
    eprintln!("server startup took {:?}", server.startup);
    let conninfo = format!(
        "host=localhost sslmode=verify-full sslrootcert={}",
        root.display()
    );
    let (ok, out) = server.psql_tcp(
        &conninfo,
        "select ssl, version from pg_stat_ssl where pid = pg_backend_pid()",
    );
    assert!(ok, "psql verify-full failed: {out}\n{}", server.log());
    assert!(
        out.starts_with("t|TLSv1."),
        "unexpected pg_stat_ssl row: {out}"
    );

    let (ok, out) = server.psql_tcp("host=127.0.0.1 sslmode=disable", "select 1");
    assert!(
        !ok,
        "plaintext login must be rejected by pg_hba, got: {out}"
    );
    assert!(out.contains("no encryption"), "unexpected rejection: {out}");
}

#[test]
fn harness_intermediate_chain_accepts_psql_verify_full() {
    let Some((server, root)) = start_with_intermediate() else {
        return;
    };
    let conninfo = format!(
        "host=localhost sslmode=verify-full sslrootcert={}",
        root.display()
    );
    let (ok, out) = server.psql_tcp(
        &conninfo,
        "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
    );
    assert!(ok, "psql verify-full failed: {out}\n{}", server.log());
    assert_eq!(out.trim(), "t");
}

#[test]
fn harness_plaintext_scram_lets_psql_in_without_tls() {
    let Some((server, _)) = plaintext_scram() else {
        return;
    };
    let (ok, out) = server.psql_tcp(
        "host=127.0.0.1 sslmode=disable",
        "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
    );
    assert!(ok, "plaintext scram login failed: {out}\n{}", server.log());
    assert_eq!(out.trim(), "f");
}

#[test]
fn harness_client_cert_is_required_by_hba() {
    let ca = Ca::root("pg-tls-probe test CA");
    let mut spec = ServerSpec::article(tls(&ca, ca.server(GOOD_NAMES, Validity::normal())));
    spec.client_cert = true;
    let Some(server) = Server::start(&spec) else {
        return;
    };
    let root = server.client_file("root.crt", &ca.cert_pem);
    let client = ca.client(pg::ROLE);
    let cert = server.client_file("client.crt", &client.cert_pem);
    let key = server.client_file("client.key", &client.key_pem);
    let base = format!(
        "host=localhost sslmode=verify-full sslrootcert={}",
        root.display()
    );
    let (ok, out) = server.psql_tcp(&base, "select 1");
    assert!(!ok, "login without a client certificate must fail: {out}");
    let (ok, out) = server.psql_tcp(
        &format!("{base} sslcert={} sslkey={}", cert.display(), key.display()),
        "select client_dn from pg_stat_ssl where pid = pg_backend_pid()",
    );
    assert!(
        ok,
        "login with a client certificate failed: {out}\n{}",
        server.log()
    );
    assert_eq!(out.trim(), "/CN=probe");
}

/// The premise of scenario 2: libpq's verify-full accepts the article's
/// CN-only v1 certificate.
#[test]
fn harness_article_v1_certificate_is_accepted_by_libpq() {
    let tls = pg::article_v1_certs();
    let ca_pem = tls.ca_pem.clone();
    let Some(server) = Server::start(&ServerSpec::article(tls)) else {
        return;
    };
    let root = server.client_file("root.crt", &ca_pem);
    let conninfo = format!(
        "host=db.internal hostaddr=127.0.0.1 sslmode=verify-full sslrootcert={}",
        root.display()
    );
    let (ok, out) = server.psql_tcp(
        &conninfo,
        "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
    );
    assert!(
        ok,
        "psql verify-full with the v1 certificate failed: {out}\n{}",
        server.log()
    );
    assert_eq!(out.trim(), "t");
}

// ---- the probe against real servers ----

/// Scenario 1: The article with a v3 SAN certificate: everything OK.
#[test]
fn article_setup_with_san_certificate_is_ok() {
    let Some((server, root)) = article() else {
        return;
    };
    let out = Probe::server(server, root).run();
    out.expect_exit(0)
        .expect_all_checks_ok()
        .expect_at("/tls/ssl", true)
        .expect_at("/plaintext/outcome/kind", "error")
        .expect_at("/plaintext/outcome/sqlstate", "28000");
    let version = out.at("/tls/version");
    assert!(
        version == "TLSv1.3" || version == "TLSv1.2",
        "tls.version {version}\n{}",
        out.context()
    );
}

/// Scenario 2: The article's exact commands: a v1 certificate with only CN=db.internal.
/// libpq accepts it (CN fallback), strict clients would not: WARNING.
#[test]
fn article_v1_cn_only_certificate_warns_for_strict_clients() {
    let tls = pg::article_v1_certs();
    let ca_pem = tls.ca_pem.clone();
    let Some(server) = Server::start(&ServerSpec::article(tls)) else {
        return;
    };
    let root = server.client_file("root.crt", &ca_pem);
    Probe::server(&server, &root)
        .env("PGHOST", "db.internal")
        .env("PGHOSTADDR", "127.0.0.1")
        .run()
        .expect_exit(1)
        .expect_check("strict_clients", "WARNING")
        .expect_check("certificate", "OK");
}

/// Scenario 3: pg_hba lets plaintext reach scram-sha-256: the password would be
/// exchanged without TLS.
#[test]
fn plaintext_scram_allowed_is_critical() {
    let Some((server, root)) = plaintext_scram() else {
        return;
    };
    Probe::server(server, root)
        .run()
        .expect_exit(2)
        .expect_check("plaintext", "CRITICAL")
        .expect_at("/plaintext/outcome/kind", "auth_requested")
        .expect_at("/plaintext/outcome/method", "sasl");
}

/// Scenario 4: pg_hba trusts plaintext connections: login without TLS or password.
#[test]
fn plaintext_trust_allowed_is_critical() {
    let Some((server, root)) = start(GOOD_NAMES, Validity::normal(), |s| {
        s.plaintext = Plaintext::Trust
    }) else {
        return;
    };
    Probe::server(&server, &root)
        .run()
        .expect_exit(2)
        .expect_check("plaintext", "CRITICAL")
        .expect_at("/plaintext/outcome/kind", "auth_ok");
}

/// Scenario 5: `ssl = off`: the server answers 'N' to SSLRequest.
#[test]
fn ssl_off_is_tls_refused() {
    let Some((server, root)) = start(GOOD_NAMES, Validity::normal(), |s| s.ssl = false) else {
        return;
    };
    Probe::server(&server, &root)
        .run()
        .expect_exit(2)
        .expect_failure("tls_refused");
}

/// Scenarios 6 to 9, one server: the leaf swapped (and the server
/// reloaded) for each validity window, from the same CA.
/// 6: expired yesterday; 7: expires in 10 days (inside the 30-day warning,
/// outside the 7-day critical); 8: expires in 3 days (inside the critical
/// threshold); 9: notBefore two days ahead.
#[test]
fn certificate_validity_windows() {
    let ca = Ca::root("pg-tls-probe test CA");
    let leaf = |validity| tls(&ca, ca.server(GOOD_NAMES, validity));
    let Some(server) = Server::start(&ServerSpec::article(leaf(Validity::window(-60, -1)))) else {
        return;
    };
    let root = server.client_file("root.crt", &ca.cert_pem);
    let probe = || Probe::server(&server, &root).run();
    probe()
        .expect_exit(2)
        .expect_failure("certificate")
        .expect_at("/failure/problem/kind", "expired");
    server.replace_tls(&leaf(Validity::window(-1, 10)));
    probe()
        .expect_exit(1)
        .expect_check("certificate_expiry", "WARNING");
    server.replace_tls(&leaf(Validity::window(-1, 3)));
    probe()
        .expect_exit(2)
        .expect_check("certificate_expiry", "CRITICAL");
    server.replace_tls(&leaf(Validity::window(2, 365)));
    probe()
        .expect_exit(2)
        .expect_failure("certificate")
        .expect_at("/failure/problem/kind", "not_yet_valid");
}

/// Scenario 10: The certificate names another host.
#[test]
fn certificate_for_another_name_is_name_mismatch() {
    let Some((server, root)) = other_name() else {
        return;
    };
    Probe::server(server, root)
        .run()
        .expect_exit(2)
        .expect_failure("certificate")
        .expect_at("/failure/problem/kind", "name_mismatch");
}

/// Scenario 11: The client trusts a different CA than the one that signed the server.
#[test]
fn unknown_ca_is_unknown_issuer() {
    let Some((server, _root)) = article() else {
        return;
    };
    let stranger = Ca::root("some other CA");
    let wrong_root = server.client_file("other-root.crt", &stranger.cert_pem);
    Probe::server(server, &wrong_root)
        .run()
        .expect_exit(2)
        .expect_failure("certificate")
        .expect_at("/failure/problem/kind", "unknown_issuer");
}

/// Root → intermediate → leaf; `ssl_cert_file` holds leaf + intermediate,
/// the client gets only the root.
fn start_with_intermediate() -> Option<(Server, PathBuf)> {
    let root_ca = Ca::root("pg-tls-probe test root");
    start_with_chain(
        &root_ca,
        root_ca.intermediate("pg-tls-probe test intermediate"),
    )
}

/// Like [`start_with_intermediate`], with the CAs given.
fn start_with_chain(root_ca: &Ca, intermediate: Ca) -> Option<(Server, PathBuf)> {
    let leaf = intermediate.server(GOOD_NAMES, Validity::normal());
    let spec = ServerSpec::article(ServerTls {
        cert_chain_pem: format!("{}{}", leaf.cert_pem, intermediate.cert_pem),
        key_pem: leaf.key_pem,
        ca_pem: root_ca.cert_pem.clone(),
    });
    let server = Server::start(&spec)?;
    let root = server.client_file("root.crt", &root_ca.cert_pem);
    Some((server, root))
}

/// Scenario 12: The server sends its intermediate; the client knows only the root.
#[test]
fn intermediate_sent_by_server_is_ok() {
    let Some((server, root)) = start_with_intermediate() else {
        return;
    };
    Probe::server(&server, &root).run().expect_exit(0);
}

/// Expiry counts the whole chain: an intermediate the server sends that
/// expires in 3 days is CRITICAL even though the leaf has a year left.
#[test]
fn intermediate_expiring_soon_is_critical() {
    let root_ca = Ca::root("pg-tls-probe test root");
    let intermediate =
        root_ca.intermediate_valid("pg-tls-probe short intermediate", Validity::window(-1, 3));
    let Some((server, root)) = start_with_chain(&root_ca, intermediate) else {
        return;
    };
    let out = Probe::server(&server, &root).run();
    out.expect_exit(2)
        .expect_check("certificate_expiry", "CRITICAL")
        .expect_at("/certificate/soonest_expiry/role", "intermediate")
        .expect_at("/certificate/soonest_expiry/days_left", 3);
}

/// ... and so does the CA in sslrootcert that anchors it.
#[test]
fn root_ca_expiring_within_warning_days_warns() {
    let ca = Ca::root_valid("pg-tls-probe short root", Validity::window(-1, 20));
    let spec = ServerSpec::article(tls(&ca, ca.server(GOOD_NAMES, Validity::normal())));
    let Some(server) = Server::start(&spec) else {
        return;
    };
    let root = server.client_file("root.crt", &ca.cert_pem);
    let out = Probe::server(&server, &root).run();
    out.expect_exit(1)
        .expect_check("certificate_expiry", "WARNING")
        .expect_at("/certificate/soonest_expiry/role", "root")
        .expect_at("/certificate/soonest_expiry/days_left", 20);
}

/// Scenario 13: `hostssl ... clientcert=verify-full`: without a client certificate
/// login fails; with one (CN = role) it succeeds and pg_stat_ssl shows it.
#[test]
fn client_certificate_required() {
    let ca = Ca::root("pg-tls-probe test CA");
    let mut spec = ServerSpec::article(tls(&ca, ca.server(GOOD_NAMES, Validity::normal())));
    spec.client_cert = true;
    let Some(server) = Server::start(&spec) else {
        return;
    };
    let root = server.client_file("root.crt", &ca.cert_pem);

    Probe::server(&server, &root)
        .run()
        .expect_exit(2)
        .expect_failure("login");

    let client = ca.client(pg::ROLE);
    let cert = server.client_file("client.crt", &client.cert_pem);
    let key = server.client_file("client.key", &client.key_pem);
    let out = Probe::server(&server, &root)
        .env("PGSSLCERT", cert.display().to_string())
        .env("PGSSLKEY", key.display().to_string())
        .run();
    out.expect_exit(0);
    assert!(
        !out.at("/tls/client_dn").is_null(),
        "tls.client_dn should be set\n{}",
        out.context()
    );
}

/// Scenario 14: Wrong password: SQLSTATE 28P01.
#[test]
fn wrong_password_is_login_failure() {
    let Some((server, root)) = article() else {
        return;
    };
    Probe::server(server, root)
        .env("PGPASSWORD", "definitely-not-the-password")
        .run()
        .expect_exit(2)
        .expect_failure("login")
        .expect_at("/failure/sqlstate", "28P01");
}

/// Scenario 15: host=127.0.0.1 matches the iPAddress subjectAltName.
#[test]
fn ip_address_host_matches_ip_san() {
    let Some((server, root)) = article() else {
        return;
    };
    Probe::server(server, root)
        .env("PGHOST", "127.0.0.1")
        .run()
        .expect_exit(0);
}

/// An IPv6 literal host (as a URI with brackets) is matched against an
/// iPAddress SAN, and both connections use IPv6.
#[test]
fn ipv6_literal_host_matches_ipv6_san() {
    let Some((server, root)) = start(
        &["localhost", "127.0.0.1", "::1"],
        Validity::normal(),
        |_| {},
    ) else {
        return;
    };
    let uri = format!("postgresql://[::1]:{}/postgres", server.port);
    Probe::server(&server, &root)
        .arg(uri)
        .run()
        .expect_exit(0)
        .expect_at("/target/host", "::1")
        .expect_at("/certificate/checked_name", "::1");
}

/// The default output: `PGTLS OK: ... | perfdata`, then `OK <check>: ...`.
#[test]
fn nagios_output_has_status_line_perfdata_and_check_lines() {
    let Some((server, root)) = article() else {
        return;
    };
    let out = Probe::server(server, root).format("nagios").run_raw();
    out.expect_code(0);
    let (status, perf) = out.first_line().split_once(" | ").unwrap_or_default();
    let perf: Vec<&str> = perf.split(' ').collect();
    let has = |label: &str, suffix: &str| {
        perf.iter()
            .any(|p| p.starts_with(label) && p.ends_with(suffix))
    };
    assert!(
        status.starts_with("PGTLS OK: ")
            && has("cert_days_left=", ";30:;7:")
            && has("connect_time=", "s")
            && has("total_time=", "s"),
        "unexpected status line\n{}",
        out.context()
    );
    let checks: Vec<&str> = out.stdout.lines().skip(1).collect();
    assert!(
        checks.iter().any(|l| l.starts_with("OK connection: "))
            && checks.iter().all(|l| {
                l.strip_prefix("OK ")
                    .and_then(|rest| rest.split_once(": "))
                    .is_some_and(|(name, _)| !name.contains(' '))
            }),
        "every further line should be \"OK <check>: ...\"\n{}",
        out.context()
    );
}

/// Plaintext allowed on purpose: skipping the check leaves it out entirely.
#[test]
fn skip_plaintext_check_ignores_allowed_plaintext() {
    let Some((server, root)) = plaintext_scram() else {
        return;
    };
    let out = Probe::server(server, root)
        .arg("--skip-plaintext-check")
        .run();
    out.expect_exit(0).expect_at("/plaintext", Value::Null);
    assert!(
        out.json["checks"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["name"] != "plaintext")),
        "no plaintext check expected\n{}",
        out.context()
    );
}

/// verify-ca does not check the name: OK, with a note that it is weaker.
#[test]
fn verify_ca_accepts_wrong_name_and_says_so() {
    let Some((server, root)) = other_name() else {
        return;
    };
    let out = Probe::server(server, root)
        .env("PGSSLMODE", "verify-ca")
        .run();
    out.expect_exit(0).expect_check("sslmode", "OK");
    let summary = out.check("sslmode")["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("verify-ca"), "{}", out.context());
}

/// `sslrootcert=system`: the public roots do not include the test CA.
#[test]
fn system_roots_do_not_trust_the_test_ca() {
    let Some((server, root)) = article() else {
        return;
    };
    Probe::server(server, root)
        .env("PGSSLROOTCERT", "system")
        .run()
        .expect_exit(2)
        .expect_failure("certificate")
        .expect_at("/failure/problem/kind", "unknown_issuer");
}

/// PGPASSFILE is used when private (0600) and ignored, with a note, when
/// group/world-readable, as libpq does.
#[test]
fn password_file_is_used_only_when_private() {
    let Some((server, root)) = article() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgpass");
    std::fs::write(&file, format!("*:*:*:{}:{}\n", pg::ROLE, pg::PASSWORD)).unwrap();
    let chmod = |mode| std::fs::set_permissions(&file, Permissions::from_mode(mode)).unwrap();
    let probe = Probe::server(server, root)
        .without_env("PGPASSWORD")
        .env("PGPASSFILE", file.display().to_string());

    chmod(0o600);
    probe.run().expect_exit(0);

    chmod(0o644);
    let out = probe.run();
    out.expect_exit(2).expect_failure("login");
    let path = file.display().to_string();
    let noted = out.at("/target/notes").as_array().is_some_and(|notes| {
        notes.iter().any(|n| {
            n.as_str()
                .is_some_and(|n| n.contains(&path) && n.contains("ignored"))
        })
    });
    assert!(
        noted,
        "target.notes should name the ignored file\n{}",
        out.context()
    );
}

/// channel_binding=require: SCRAM-SHA-256-PLUS bound to our TLS session.
#[test]
fn channel_binding_required_logs_in() {
    let Some((server, root)) = article() else {
        return;
    };
    Probe::server(server, root)
        .arg("channel_binding=require")
        .run()
        .expect_exit(0)
        .expect_at("/target/channel_binding", "require");
}
