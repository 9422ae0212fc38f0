//! `--audit`'s rotation check on real servers (docs/rotation.md): a
//! certificate replaced on disk without a reload, by content with the
//! shipped function (applied verbatim from the docs) and by time with
//! pg_stat_file; identical content rewritten; a failed SSL reload; an
//! expiring ssl_ca_file and client certificate.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use pg_tls_probe::facts::date;
use serde_json::Value;

use crate::util::pg::{self, Server, ServerSpec, ServerTls};
use crate::util::pki::{Ca, Validity};
use crate::util::{Outcome, Probe};

/// README's least-privilege GRANTs and the optional pg_stat_file one.
const README_GRANTS: [&str; 3] = [
    "GRANT pg_monitor TO monitor;",
    "GRANT SELECT ON pg_catalog.pg_hba_file_rules TO monitor;",
    "GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO monitor;",
];
const STAT_GRANT: &str =
    "GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO monitor;";

/// Runs `sql` (docs' text, for the role `monitor`) for the test role.
fn apply(server: &Server, sql: &str) {
    server.psql(&sql.replace(" TO monitor;", &format!(" TO {};", pg::ROLE)));
}

/// The function of docs/rotation.md, exactly as written there.
fn shipped_function() -> String {
    let doc = include_str!("../docs/rotation.md");
    let start = doc.find("<!-- rotation-function -->").expect("marker");
    let end = doc.find("<!-- /rotation-function -->").expect("end marker");
    let block = &doc[start..end];
    let sql = block
        .split("```sql\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("an sql block between the markers");
    sql.to_string()
}

/// README ships the same function as docs/rotation.md, character for
/// character.
#[test]
fn readme_ships_the_function_of_the_docs() {
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(&shipped_function()),
        "README's rotation function differs from docs/rotation.md"
    );
}

struct Pki {
    ca: Ca,
}

impl Pki {
    fn tls(&self, days: i64) -> ServerTls {
        let leaf = self
            .ca
            .server(&["localhost", "127.0.0.1"], Validity::window(-1, days));
        ServerTls {
            cert_chain_pem: leaf.cert_pem,
            key_pem: leaf.key_pem,
            ca_pem: self.ca.cert_pem.clone(),
        }
    }
}

fn start(tweak: impl FnOnce(&mut ServerSpec)) -> Option<(Server, PathBuf, Pki)> {
    let pki = Pki {
        ca: Ca::root("pg-tls-probe rotation CA"),
    };
    let mut spec = ServerSpec::article(pki.tls(365));
    tweak(&mut spec);
    let server = Server::start(&spec)?;
    let root = server.client_file("root.crt", &pki.ca.cert_pem);
    apply(&server, &README_GRANTS.join(" "));
    Some((server, root, pki))
}

fn audit(server: &Server, root: &std::path::Path) -> Outcome {
    Probe::server(server, root)
        .args(["--audit", "--scan", "none", "--skip-plaintext-check"])
        .run()
}

#[track_caller]
fn rotation_summary(out: &Outcome) -> String {
    out.check("audit_rotation")["summary"]
        .as_str()
        .unwrap()
        .to_string()
}

/// With the function: a renewed certificate written without a reload is a
/// WARNING naming the file, both expiry dates and pg_reload_conf(); the
/// served one rewritten with new mtimes is no finding; after the reload,
/// clean. Before this check the first case was OK.
#[test]
fn rotation_by_content_with_the_shipped_function() {
    let Some((server, root, pki)) = start(|_| {}) else {
        return;
    };
    apply(&server, &shipped_function());
    let out = audit(&server, &root);
    out.expect_exit(0)
        .expect_check("audit_rotation", "OK")
        .expect_at("/audit/rotation/method", "content")
        .expect_at("/audit/rotation/served_differs", false);
    let served = out.at("/certificate/leaf/not_after").as_i64().unwrap();

    let renewed = pki.tls(400);
    let old = server_files(&server);
    server.write_tls(&renewed, None);
    let out = audit(&server, &root);
    out.expect_exit(1)
        .expect_check("audit_rotation", "WARNING")
        .expect_at("/audit/rotation/served_differs", true);
    let summary = rotation_summary(&out);
    let file = server_ssl_dir(&server).join("server.crt");
    for part in [
        "SELECT pg_reload_conf()",
        &file.display().to_string(),
        &date(served),
        &date(served + 35 * 86_400),
    ] {
        assert!(summary.contains(part), "{part:?} not in: {summary}");
    }

    // The served content back on disk, newer than the last load: nothing.
    server.write_tls(&old, Some(SystemTime::now() + Duration::from_secs(120)));
    audit(&server, &root)
        .expect_exit(0)
        .expect_check("audit_rotation", "OK")
        .expect_at("/audit/rotation/served_differs", false);

    // Renewed and reloaded: the served certificate is the file's.
    server.replace_tls(&renewed);
    audit(&server, &root)
        .expect_exit(0)
        .expect_at("/audit/rotation/served_differs", false);
}

/// Without the function, with pg_stat_file: a TLS file newer than the
/// last configuration load is a likely pending reload.
#[test]
fn rotation_by_time_with_pg_stat_file() {
    let Some((server, root, pki)) = start(|_| {}) else {
        return;
    };
    let out = audit(&server, &root);
    out.expect_exit(0)
        .expect_at("/audit/rotation/method", "not_checked");
    assert!(
        rotation_summary(&out).contains("pg_tls_probe_certificates()"),
        "{}",
        out.context()
    );
    apply(&server, STAT_GRANT);
    let out = audit(&server, &root);
    // The harness keeps its certificates outside the data directory.
    assert!(
        rotation_summary(&out).contains("GRANT pg_read_server_files TO probe"),
        "{}",
        out.context()
    );
    apply(&server, "GRANT pg_read_server_files TO monitor;");
    audit(&server, &root)
        .expect_exit(0)
        .expect_at("/audit/rotation/method", "mtime")
        .expect_at("/audit/rotation/changed_files", Value::Array(vec![]));
    server.write_tls(
        &pki.tls(400),
        Some(SystemTime::now() + Duration::from_secs(120)),
    );
    let out = audit(&server, &root);
    out.expect_exit(1).expect_check("audit_rotation", "WARNING");
    let summary = rotation_summary(&out);
    assert!(
        summary.contains("likely pending reload") && summary.contains("SELECT pg_reload_conf()"),
        "{summary}"
    );
    assert_eq!(
        out.at("/audit/rotation/changed_files")
            .as_array()
            .map(Vec::len),
        Some(3),
        "{}",
        out.context()
    );
}

/// PostgreSQL 15 cannot load `ssl_ecdh_curve = 'X25519'`: the reload
/// keeps the old SSL context (prime256v1, TLS 1.2 minimum) while
/// pg_settings shows the new values. The audit says the running TLS is
/// not the one in the settings.
#[test]
fn a_failed_ssl_reload_is_seen() {
    let Some((server, root, _)) = start(|_| {}) else {
        return;
    };
    server.psql("ALTER SYSTEM SET ssl_ecdh_curve = 'X25519'");
    server.psql("ALTER SYSTEM SET ssl_min_protocol_version = 'TLSv1.3'");
    server.psql("SELECT pg_reload_conf()");
    server.poll("SHOW ssl_ecdh_curve", |v| v.trim() == "X25519");
    server.poll("SELECT 1", |_| {
        server.log().contains("SSL configuration was not reloaded")
    });
    let out = Probe::server(&server, &root)
        .args(["--audit", "--skip-plaintext-check"])
        .run();
    out.expect_exit(1).expect_check("audit_rotation", "WARNING");
    let summary = rotation_summary(&out);
    assert!(
        summary.contains("not the one in the settings")
            && summary.contains(
                "ssl_ecdh_curve = 'X25519', but the session's key exchange used secp256r1"
            )
            && summary
                .contains("ssl_min_protocol_version = 'TLSv1.3', but the server accepted TLSv1.2"),
        "{summary}"
    );
}

/// The CA in ssl_cert_file's neighbour ssl_ca_file (verifying client
/// certificates) expiring inside the window, seen through the function;
/// the probe's own client certificate too.
#[test]
fn expiring_client_side_certificates_are_findings() {
    let client_ca = Ca::root_valid("pg-tls-probe client CA", Validity::window(-1, 20));
    let client = client_ca.client_valid(pg::ROLE, Validity::window(-1, 10));
    let Some((server, root, _)) = start(|spec| {
        spec.tls.ca_pem = client_ca.cert_pem.clone();
        spec.client_cert = true;
    }) else {
        return;
    };
    apply(&server, &shipped_function());
    let cert = server.client_file("probe.crt", &client.cert_pem);
    let key = server.client_file("probe.key", &client.key_pem);
    let out = Probe::server(&server, &root)
        .env("PGSSLCERT", cert.display().to_string())
        .env("PGSSLKEY", key.display().to_string())
        .args(["--audit", "--scan", "none"])
        .run();
    out.expect_exit(1)
        .expect_check("connection", "OK")
        .expect_check("client_certificate", "WARNING")
        .expect_check("audit_rotation", "WARNING");
    let client_summary = out.check("client_certificate")["summary"].as_str().unwrap();
    assert!(
        client_summary.contains("expires in 9 days")
            || client_summary.contains("expires in 10 days"),
        "{client_summary}"
    );
    let summary = rotation_summary(&out);
    assert!(
        summary.contains("ssl_ca_file") && summary.contains("client-certificate verification"),
        "{summary}"
    );
}

fn server_ssl_dir(server: &Server) -> PathBuf {
    server.server_ca_path().parent().unwrap().to_path_buf()
}

/// The files the server has now.
fn server_files(server: &Server) -> ServerTls {
    let dir = server_ssl_dir(server);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    ServerTls {
        cert_chain_pem: read("server.crt"),
        key_pem: read("server.key"),
        ca_pem: read("ca.crt"),
    }
}
