//! `--audit` against real servers: the article's setup, a pg_hba.conf with
//! every kind of hole, replication over plaintext and over TLS, held-open
//! sessions, and the least-privileged role README documents.
//!
//! The test role (`pg::ROLE`) is a plain login role: each test grants it
//! what it needs as the superuser, with the statements from README.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::util::pg::{self, Server, ServerSpec, ServerTls};
use crate::util::pki::{Ca, Validity};
use crate::util::{Outcome, Probe};

/// README's least-privilege GRANTs, for a role named `monitor`.
const README_GRANTS: [&str; 3] = [
    "GRANT pg_monitor TO monitor;",
    "GRANT SELECT ON pg_catalog.pg_hba_file_rules TO monitor;",
    "GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO monitor;",
];

/// README's optional GRANT for the pending-reload check.
const README_STAT_GRANT: &str =
    "GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO monitor;";

const REPL_ROLE: &str = "repl";

/// The article's TLS files for a fresh CA; returns them with the CA PEM.
fn tls() -> (ServerTls, String) {
    let ca = Ca::root("pg-tls-probe audit CA");
    let leaf = ca.server(&["localhost", "127.0.0.1"], Validity::normal());
    (
        ServerTls {
            cert_chain_pem: leaf.cert_pem,
            key_pem: leaf.key_pem,
            ca_pem: ca.cert_pem.clone(),
        },
        ca.cert_pem,
    )
}

/// A server per the article (or with `hba`), with the client's root file.
fn start(hba: Option<&str>) -> Option<(Server, PathBuf)> {
    let (files, ca_pem) = tls();
    let mut spec = ServerSpec::article(files);
    spec.hba = hba.map(str::to_string);
    let server = Server::start(&spec)?;
    let root = server.client_file("root.crt", &ca_pem);
    Some((server, root))
}

/// Applies `grants` (README's text) to the test role.
fn grant(server: &Server, grants: &[&str]) {
    let readme = include_str!("../README.md");
    for g in grants {
        assert!(readme.contains(g), "README does not document {g:?}");
        server.psql(&g.replace(" monitor;", &format!(" {};", pg::ROLE)));
    }
}

fn audit(server: &Server, root: &std::path::Path) -> Probe {
    Probe::server(server, root).arg("--audit")
}

/// Line number of the shared pg_hba.conf's `host all all <address> reject`.
fn shared_hba_line(address: &str) -> i64 {
    let hba = include_str!("../docker/postgres/pg_hba.conf");
    let at = hba.lines().position(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words == ["host", "all", "all", address, "reject"]
    });
    at.expect("catch-all reject in docker/postgres/pg_hba.conf") as i64 + 1
}

#[track_caller]
fn finding_at(out: &Outcome, line: Option<i64>) -> &Value {
    let found = out.at("/audit/hba_rules").as_array().and_then(|rules| {
        rules.iter().find(|f| {
            f["line"].as_i64() == line
                && (line.is_some() || f["rule"] == "host all all 0.0.0.0/0 reject")
        })
    });
    found.unwrap_or_else(|| panic!("no pg_hba finding for line {line:?}\n{}", out.context()))
}

/// The article's setup with README's grants: every audit check OK, exit 0.
#[test]
fn audit_article_setup_is_clean_with_readme_grants() {
    let Some((server, root)) = start(None) else {
        return;
    };
    grant(&server, &README_GRANTS);
    // Opt-in: without --audit there are no audit checks and no audit object.
    let plain = Probe::server(&server, &root).run();
    plain.expect_exit(0).expect_at("/audit", Value::Null);
    let names: Vec<&str> = plain.json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with("audit_")), "{names:?}");

    let out = audit(&server, &root).run();
    out.expect_exit(0)
        .expect_all_checks_ok()
        .expect_check("audit_settings", "OK")
        .expect_check("audit_hba", "OK")
        .expect_check("audit_sessions", "OK")
        .expect_at("/audit/hba_rules", Value::Array(vec![]))
        .expect_at(
            "/audit/hba/catch_all_reject/ipv4",
            shared_hba_line("0.0.0.0/0"),
        )
        .expect_at("/audit/hba/catch_all_reject/ipv6", shared_hba_line("::/0"))
        .expect_at("/audit/settings/values/ssl", "on")
        .expect_at("/audit/settings/values/ssl_min_protocol_version", "TLSv1.2")
        .expect_at("/audit/settings/values/ssl_ciphers", "HIGH:!aNULL")
        .expect_at("/audit/sessions/plaintext", 0)
        // The probe's own session is a TLS session over TCP.
        .expect_at("/audit/sessions/tls", 1);
    let nagios = audit(&server, &root).format("nagios").run_raw();
    nagios.expect_code(0);
    assert!(
        nagios
            .first_line()
            .contains("audit clean (1 TCP sessions, all encrypted) | ")
            && nagios
                .first_line()
                .contains("sessions_tls=1 sessions_plaintext=0"),
        "{}",
        nagios.stdout
    );
}

/// tests/fixtures/article-pg_hba.conf is the seed article's two rules,
/// copied verbatim; where the article sits beside the repository (a
/// developer's checkout, not a CI clone) the copy is checked against it.
#[test]
fn the_vendored_article_rules_match_the_article() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/seed-postgresql-tls-article.txt"
    );
    let Ok(seed) = std::fs::read_to_string(path) else {
        eprintln!("skipping: {path} is not beside the repository");
        return;
    };
    let rules: Vec<&str> = seed
        .lines()
        .filter(|l| l.starts_with("hostssl ") || l.starts_with("host "))
        .collect();
    let vendored: Vec<&str> = include_str!("fixtures/article-pg_hba.conf")
        .lines()
        .collect();
    assert_eq!(rules, vendored);
}

/// The seed article's two pg_hba.conf rules exactly as printed (IPv4 only,
/// its own spacing), after the socket line the harness needs: exit 0, the
/// missing IPv6 catch-all only information (a connection no rule matches is
/// refused anyway).
#[test]
fn audit_the_articles_exact_rules_are_clean() {
    let rules: Vec<&str> = include_str!("fixtures/article-pg_hba.conf")
        .lines()
        .collect();
    assert_eq!(rules.len(), 2, "{rules:?}");
    let hba = format!("local all all trust\n{}\n", rules.join("\n"));
    let Some((server, root)) = start(Some(&hba)) else {
        return;
    };
    grant(&server, &README_GRANTS);
    let out = audit(&server, &root).run();
    out.expect_exit(0)
        .expect_all_checks_ok()
        .expect_at("/audit/hba_rules", Value::Array(vec![]))
        .expect_at("/audit/hba/catch_all_reject/ipv4", 3)
        .expect_at("/audit/hba/catch_all_reject/ipv6", Value::Null);
    let summary = out.check("audit_hba")["summary"].as_str().unwrap();
    assert!(summary.contains("none for IPv6 (not needed"), "{summary}");
}

/// Every kind of hole in pg_hba.conf, then a broken line written after the
/// server loaded the file: each finding with its status, file and line,
/// the missing catch-alls, and the pending reload.
#[test]
fn audit_hba_holes_each_named_by_file_and_line() {
    let hba = "\
local     all       all                       trust
host      all       all       0.0.0.0/0       scram-sha-256
host      all       all       ::/0            scram-sha-256
hostnossl postgres  nobody    10.1.0.0/16     trust
host      postgres  legacy    10.2.0.0/16     md5
hostssl   postgres  opsbot    10.3.0.0/16     trust
host      postgres  all       10.4.0.0/16     ldap ldapserver=ldap.example ldapbasedn=\"dc=example\" ldapbindpasswd=Bind-S3cret
";
    let Some((server, root)) = start(Some(hba)) else {
        return;
    };
    grant(&server, &README_GRANTS);
    grant(&server, &[README_STAT_GRANT]);
    // A line PostgreSQL cannot parse; written after startup (a server does
    // not start with it), dated after the last load.
    // Two more that PostgreSQL cannot load: a radiussecrets list it cannot
    // split (a row with every column NULL, error included), and an LDAP
    // password with an unquoted comma (its tail quoted in `error`).
    let broken = format!(
        "{hba}host      all       all       10.0.0.0/33     scram-sha-256\n\
         host      all       all       10.5.0.0/16     radius radiusservers=127.0.0.1 radiussecrets=\"R4dius-S3cret,,x\"\n\
         host      all       all       10.6.0.0/16     ldap ldapserver=ldap.example ldapbindpasswd=Bind-S3cret,Pw-Tail ldapbasedn=dc=x\n"
    );
    server.rewrite_hba(&broken, SystemTime::now() + Duration::from_secs(120));
    let out = audit(&server, &root).arg("--skip-plaintext-check").run();
    out.expect_exit(2)
        .expect_check("audit_hba", "CRITICAL")
        .expect_check("audit_settings", "OK")
        .expect_check("audit_sessions", "OK");
    let file = server.hba_path().display().to_string();
    for (line, status, rule, why) in [
        (
            2,
            "WARNING",
            "host all all 0.0.0.0/0 scram-sha-256",
            "without TLS",
        ),
        (
            3,
            "WARNING",
            "host all all ::/0 scram-sha-256",
            "without TLS",
        ),
        (
            4,
            "CRITICAL",
            "hostnossl postgres nobody 10.1.0.0/16 trust",
            "trust",
        ),
        (5, "WARNING", "host postgres legacy 10.2.0.0/16 md5", "md5"),
        (
            6,
            "WARNING",
            "hostssl postgres opsbot 10.3.0.0/16 trust",
            "trust over TCP",
        ),
    ] {
        let f = finding_at(&out, Some(line));
        assert_eq!(f["status"], status, "line {line}: {f}");
        assert_eq!(f["file"], file.as_str(), "line {line}: {f}");
        assert_eq!(f["rule"], rule, "line {line}: {f}");
        assert!(
            f["reason"].as_str().unwrap().contains(why),
            "line {line}: {f}"
        );
    }
    // The view shows the LDAP bind password (hence superuser-only); the
    // probe never does.
    let f = finding_at(&out, Some(7));
    assert_eq!(f["status"], "CRITICAL", "{f}");
    assert_eq!(
        f["rule"],
        "host postgres all 10.4.0.0/16 ldap ldapserver=ldap.example ldapbasedn=dc=example \
         ldapbindpasswd=(hidden) ldapscope=2",
        "{f}"
    );
    let f = finding_at(&out, Some(8));
    assert_eq!(f["status"], "CRITICAL", "{f}");
    assert!(f["reason"].as_str().unwrap().contains("/33"), "{f}");
    for line in [9, 10] {
        let f = finding_at(&out, Some(line));
        assert_eq!(f["status"], "CRITICAL", "{f}");
        assert!(
            f["reason"].as_str().unwrap().contains("does not parse"),
            "{f}"
        );
    }
    let missing = finding_at(&out, None);
    assert_eq!(missing["status"], "WARNING", "{missing}");
    assert_eq!(
        out.at("/audit/hba_rules").as_array().unwrap().len(),
        11,
        "{}",
        out.context()
    );
    out.expect_at("/audit/hba/catch_all_reject/ipv4", Value::Null)
        .expect_at("/audit/hba/reload/kind", "checked")
        .expect_at("/audit/hba/reload/pending", true)
        .expect_at("/audit/hba/differs_from_running", true);
    let summary = out.check("audit_hba")["summary"].as_str().unwrap();
    assert!(
        summary.contains("changed after the last configuration reload")
            && summary.contains("line 4 [hostnossl postgres nobody 10.1.0.0/16 trust]")
            && summary.contains("line 8 (does not parse)"),
        "{summary}"
    );
    for secret in ["Bind-S3cret", "Pw-Tail", "R4dius-S3cret"] {
        out.expect_absent(secret);
    }
    for format in ["nagios", "text"] {
        let raw = audit(&server, &root)
            .arg("--skip-plaintext-check")
            .format(format)
            .run_raw();
        raw.expect_code(2);
        for secret in ["Bind-S3cret", "Pw-Tail", "R4dius-S3cret"] {
            raw.expect_absent(secret);
        }
    }
    let nagios = audit(&server, &root)
        .arg("--skip-plaintext-check")
        .format("nagios")
        .run_raw();
    assert!(
        nagios.stdout.contains(&format!(
            "CRITICAL audit_hba {file}:4 [hostnossl postgres nobody 10.1.0.0/16 trust]"
        )),
        "{}",
        nagios.stdout
    );
}

/// pg_hba.conf for the replication tests: replication from 127.0.0.1 as
/// `kind` (`host` or `hostssl`), base backups over the socket.
fn replication_hba(kind: &str) -> String {
    format!(
        "\
local     all          all                    trust
local     replication  all                    trust
hostssl   all          all       0.0.0.0/0    scram-sha-256
hostssl   all          all       ::/0         scram-sha-256
{kind:<9} replication  {REPL_ROLE}      127.0.0.1/32 scram-sha-256
host      all          all       0.0.0.0/0    reject
host      all          all       ::/0         reject
"
    )
}

/// A primary with README's grants, a replication role and a streaming
/// standby using `conninfo` (the primary's port is appended).
fn replicate(
    kind: &str,
    conninfo: impl Fn(&Server) -> String,
) -> Option<(Server, Server, PathBuf)> {
    let (primary, root) = start(Some(&replication_hba(kind)))?;
    grant(&primary, &README_GRANTS);
    primary.psql(&format!(
        "SET password_encryption = 'scram-sha-256'; \
         CREATE ROLE {REPL_ROLE} REPLICATION LOGIN PASSWORD '{}';",
        pg::PASSWORD
    ));
    let standby = primary.start_standby(&format!(
        "{} port={} user={REPL_ROLE} password={} application_name=standby1",
        conninfo(&primary),
        primary.port,
        pg::PASSWORD
    ));
    Some((primary, standby, root))
}

#[test]
fn audit_plaintext_replication_is_critical() {
    let Some((primary, _standby, root)) =
        replicate("host", |_| "host=127.0.0.1 sslmode=disable".into())
    else {
        return;
    };
    let out = audit(&primary, &root).run();
    out.expect_exit(2)
        .expect_check("audit_sessions", "CRITICAL")
        .expect_check("audit_hba", "WARNING")
        .expect_at("/audit/sessions/plaintext", 1)
        .expect_at(
            "/audit/sessions/plaintext_sessions/0/backend_type",
            "walsender",
        )
        .expect_at("/audit/sessions/plaintext_sessions/0/user", REPL_ROLE)
        .expect_at(
            "/audit/sessions/plaintext_sessions/0/client_addr",
            "127.0.0.1",
        )
        .expect_at(
            "/audit/sessions/plaintext_sessions/0/application_name",
            "standby1",
        )
        .expect_at("/audit/sessions/plaintext_sessions/0/replication", true)
        .expect_at("/audit/sessions/plaintext_sessions/0/status", "CRITICAL");
    assert_eq!(
        finding_at(&out, Some(5))["rule"],
        "host replication repl 127.0.0.1/32 scram-sha-256"
    );
    // Replication is never excused by --allow-plaintext-from.
    audit(&primary, &root)
        .args(["--allow-plaintext-from", "127.0.0.0/8"])
        .run()
        .expect_check("audit_sessions", "CRITICAL")
        .expect_at("/audit/sessions/plaintext_sessions/0/allowed", false);
}

#[test]
fn audit_tls_replication_is_clean() {
    let Some((primary, _standby, root)) = replicate("hostssl", |p| {
        format!(
            "host=localhost hostaddr=127.0.0.1 sslmode=verify-full sslrootcert={}",
            p.server_ca_path().display()
        )
    }) else {
        return;
    };
    let out = audit(&primary, &root).run();
    out.expect_exit(0)
        .expect_all_checks_ok()
        .expect_at("/audit/sessions/plaintext", 0)
        .expect_at("/audit/sessions/tls", 2)
        .expect_at("/audit/hba_rules", Value::Array(vec![]));
}

/// A plaintext client session held open is listed; a Unix-socket session
/// is not counted at all; --allow-plaintext-from accepts the client.
#[test]
fn audit_lists_held_plaintext_session_but_not_unix_socket() {
    let hba = "\
local     all       all                       trust
hostssl   all       all       0.0.0.0/0       scram-sha-256
hostssl   all       all       ::/0            scram-sha-256
host      postgres  plain     127.0.0.1/32    scram-sha-256
host      all       all       0.0.0.0/0       reject
host      all       all       ::/0            reject
";
    let Some((server, root)) = start(Some(hba)) else {
        return;
    };
    grant(&server, &README_GRANTS);
    server.psql(&format!(
        "SET password_encryption = 'scram-sha-256'; CREATE ROLE plain LOGIN PASSWORD '{}';",
        pg::PASSWORD
    ));
    let _tcp = server.hold_session(
        "host=127.0.0.1 sslmode=disable user=plain dbname=postgres",
        pg::PASSWORD,
        "held-plain",
    );
    let socket = server.socket_conninfo("postgres");
    let _unix = server.hold_session(&socket, "", "held-socket");

    let out = audit(&server, &root).run();
    out.expect_exit(2)
        .expect_check("audit_sessions", "CRITICAL")
        .expect_check("audit_hba", "WARNING")
        .expect_at("/audit/sessions/total", 2)
        .expect_at("/audit/sessions/tls", 1)
        .expect_at("/audit/sessions/plaintext", 1)
        .expect_at("/audit/sessions/plaintext_sessions/0/user", "plain")
        .expect_at("/audit/sessions/plaintext_sessions/0/database", "postgres")
        .expect_at(
            "/audit/sessions/plaintext_sessions/0/client_addr",
            "127.0.0.1",
        )
        .expect_at(
            "/audit/sessions/plaintext_sessions/0/application_name",
            "held-plain",
        )
        .expect_at(
            "/audit/sessions/plaintext_sessions/0/backend_type",
            "client backend",
        )
        .expect_at("/audit/sessions/plaintext_sessions/0/replication", false)
        .expect_absent("held-socket");
    let summary = out.check("audit_sessions")["summary"].as_str().unwrap();
    assert!(
        summary.contains("plain") && summary.contains("127.0.0.1"),
        "{summary}"
    );
    let nagios = audit(&server, &root).format("nagios").run_raw();
    assert!(
        nagios
            .first_line()
            .contains("sessions_tls=1 sessions_plaintext=1"),
        "{}",
        nagios.stdout
    );

    let allowed = audit(&server, &root)
        .args(["--allow-plaintext-from", "127.0.0.1/32"])
        .run();
    // Only the host rule for `plain` is left: a WARNING.
    allowed
        .expect_exit(1)
        .expect_check("audit_sessions", "OK")
        .expect_at("/audit/sessions/plaintext", 1)
        .expect_at("/audit/sessions/plaintext_allowed", 1)
        .expect_at("/audit/sessions/plaintext_sessions/0/allowed", true)
        .expect_at("/audit/sessions/plaintext_sessions/0/status", "OK");
}

/// Without privileges every part is UNKNOWN with its GRANT; with
/// pg_monitor alone only the rules are; the verify-full checks go on.
#[test]
fn audit_without_privileges_names_the_grant() {
    let Some((server, root)) = start(None) else {
        return;
    };
    let out = audit(&server, &root).run();
    out.expect_exit(3)
        .expect_check("connection", "OK")
        .expect_check("plaintext", "OK")
        .expect_check("audit_settings", "UNKNOWN")
        .expect_check("audit_sessions", "UNKNOWN")
        .expect_check("audit_hba", "UNKNOWN");
    let role = pg::ROLE;
    for (check, grant) in [
        ("audit_settings", format!("GRANT pg_monitor TO {role};")),
        ("audit_sessions", format!("GRANT pg_monitor TO {role};")),
        (
            "audit_hba",
            format!("GRANT SELECT ON pg_catalog.pg_hba_file_rules TO {role};"),
        ),
        (
            "audit_hba",
            format!("GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO {role};"),
        ),
    ] {
        let summary = out.check(check)["summary"].as_str().unwrap();
        assert!(summary.contains(&grant), "{check}: {summary}");
    }
    // Catalog privileges are per database: the advice says which one.
    let summary = out.check("audit_hba")["summary"].as_str().unwrap();
    assert!(summary.contains("run in database postgres"), "{summary}");
    // ssl and password_encryption are visible to anyone and still judged.
    out.expect_at("/audit/settings/values/ssl", "on");

    grant(&server, &README_GRANTS[..1]);
    let out = audit(&server, &root).run();
    out.expect_exit(3)
        .expect_check("audit_settings", "OK")
        .expect_check("audit_sessions", "OK")
        .expect_check("audit_hba", "UNKNOWN")
        .expect_at("/audit/sessions/tls", 1)
        .expect_at("/audit/hba", Value::Null);
    let summary = out.check("audit_hba")["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!(
            "GRANT SELECT ON pg_catalog.pg_hba_file_rules TO {role};"
        )) && summary.contains(&format!(
            "GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO {role};"
        )),
        "{summary}"
    );
}

/// Flag mistakes are usage errors (UNKNOWN, exit 3), before any connection.
#[test]
fn allow_plaintext_from_needs_audit_and_a_valid_range() {
    let out = Probe::new()
        .args(["--allow-plaintext-from", "10.0.0.0/8"])
        .run();
    out.expect_exit(3).expect_check("arguments", "UNKNOWN");
    assert!(
        out.at("/summary").as_str().unwrap().contains("--audit"),
        "{}",
        out.context()
    );
    let out = Probe::new()
        .args(["--audit", "--allow-plaintext-from", "10.0.0.0/33"])
        .run();
    out.expect_exit(3).expect_check("arguments", "UNKNOWN");
    assert!(
        out.at("/summary")
            .as_str()
            .unwrap()
            .contains("\"10.0.0.0/33\" is not an address or CIDR range"),
        "{}",
        out.context()
    );
}

/// A pg_hba_file_rules that never answers (another session holds an
/// exclusive lock on the view): the run still ends at its deadline, the
/// rules are UNKNOWN and the parts already read are reported.
#[test]
fn audit_blocked_rules_end_at_the_deadline() {
    let Some((server, root)) = start(None) else {
        return;
    };
    grant(&server, &README_GRANTS);
    let socket = server.socket_conninfo("postgres");
    let _lock = server.hold_session_running(
        &socket,
        "",
        "holds-hba-lock",
        "BEGIN; LOCK pg_catalog.pg_hba_file_rules IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600)",
    );
    let out = audit(&server, &root).args(["--timeout", "3"]).run();
    out.expect_exit(3)
        .expect_check("connection", "OK")
        .expect_check("audit_settings", "OK")
        .expect_check("audit_sessions", "OK")
        .expect_check("audit_hba", "UNKNOWN");
    let summary = out.check("audit_hba")["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("reading pg_hba_file_rules timed out after"),
        "{summary}"
    );
    assert!(out.elapsed < Duration::from_secs(4), "{}", out.context());
}

/// pg_hba_file_rules changed shape across majors (file_name and rule_number
/// from 16 on, read by name): the same hole is named by file and line on
/// every major of the matrix, with README's GRANTs, which also show another
/// role's plaintext session there.
#[test]
fn audit_reads_hba_rules_on_every_major() {
    let hba = "\
local     all       all                       trust
hostssl   all       all       127.0.0.1/32    scram-sha-256
host      all       all       0.0.0.0/0       scram-sha-256
host      all       all       0.0.0.0/0       reject
host      all       all       ::/0            reject
";
    for major in [12, 15, 17, 18] {
        if pg::require_major(major).is_none() {
            continue;
        }
        let (files, ca_pem) = tls();
        let mut spec = ServerSpec::article(files).on_major(major);
        spec.hba = Some(hba.to_string());
        let Some(server) = Server::start(&spec) else {
            continue;
        };
        let root = server.client_file("root.crt", &ca_pem);
        grant(&server, &README_GRANTS);
        grant(&server, &[README_STAT_GRANT]);
        server.psql(&format!(
            "SET password_encryption = 'scram-sha-256'; CREATE ROLE plain LOGIN PASSWORD '{}';",
            pg::PASSWORD
        ));
        let _plain = server.hold_session(
            "host=127.0.0.1 sslmode=disable user=plain dbname=postgres",
            pg::PASSWORD,
            "held-plain",
        );
        let out = audit(&server, &root).arg("--skip-plaintext-check").run();
        // Before 14 password_encryption defaults to md5, and the shared
        // postgresql.conf leaves it at the default: a real finding there.
        let settings = if major < 14 { "WARNING" } else { "OK" };
        out.expect_exit(2)
            .expect_check("audit_hba", "WARNING")
            .expect_check("audit_settings", settings)
            .expect_check("audit_sessions", "CRITICAL")
            .expect_at("/audit/sessions/plaintext", 1)
            .expect_at("/audit/sessions/plaintext_sessions/0/user", "plain")
            .expect_at(
                "/audit/settings/values/password_encryption",
                if major < 14 { "md5" } else { "scram-sha-256" },
            )
            .expect_at("/audit/sessions/tls", 1)
            .expect_at("/audit/hba/catch_all_reject/ipv4", 4)
            .expect_at("/audit/hba/catch_all_reject/ipv6", 5)
            .expect_at("/audit/hba/reload/kind", "checked")
            .expect_at("/audit/hba/reload/pending", false)
            .expect_at("/audit/hba/differs_from_running", false);
        let f = finding_at(&out, Some(3));
        assert_eq!(f["status"], "WARNING", "PostgreSQL {major}: {f}");
        assert_eq!(
            f["file"],
            server.hba_path().display().to_string().as_str(),
            "PostgreSQL {major}: {f}"
        );
        assert_eq!(
            f["rule"], "host all all 0.0.0.0/0 scram-sha-256",
            "PostgreSQL {major}: {f}"
        );
        assert_eq!(
            out.at("/audit/hba_rules").as_array().map(Vec::len),
            Some(1),
            "PostgreSQL {major}: {}",
            out.context()
        );
    }
}
