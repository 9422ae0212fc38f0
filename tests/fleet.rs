//! libpq service files and runs over many targets: a service resolves as
//! psql resolves it; `--services` and host lists probe each target, one
//! report each, the worst status as the exit code; silent targets do not
//! hold up the others.

use std::path::PathBuf;
use std::time::Duration;

use crate::util::fake::{Behaviour, Fake};
use crate::util::pg::{self, Plaintext, Server, ServerSpec, ServerTls, SharedServer};
use crate::util::pki::{Ca, Validity};
use crate::util::Probe;

/// A server per the article (`plaintext` as given) and its root CA file.
fn start(plaintext: Plaintext) -> Option<(Server, PathBuf)> {
    let ca = Ca::root("pg-tls-probe fleet CA");
    let leaf = ca.server(&["localhost", "127.0.0.1"], Validity::normal());
    let mut spec = ServerSpec::article(ServerTls {
        cert_chain_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
        ca_pem: ca.cert_pem.clone(),
    });
    spec.plaintext = plaintext;
    let server = Server::start(&spec)?;
    let root = server.client_file("root.crt", &ca.cert_pem);
    Some((server, root))
}

pub fn article() -> Option<&'static SharedServer> {
    pg::shared("fleet-article", || start(Plaintext::Reject))
}

pub fn plaintext_allowed() -> Option<&'static SharedServer> {
    pg::shared("fleet-plaintext", || start(Plaintext::Scram))
}

/// One `[name]` group reaching `server` as the test role, verify-full.
pub fn group(name: &str, server: &Server, root: &std::path::Path, extra: &str) -> String {
    format!(
        "[{name}]\nhost=localhost\nport={}\nuser={}\ndbname=postgres\nsslmode=verify-full\nsslrootcert={}\n{extra}",
        server.port,
        pg::ROLE,
        root.display()
    )
}

/// A service file in the server's client directory.
fn service_file(server: &Server, name: &str, text: &str) -> PathBuf {
    server.client_file(name, text)
}

/// What psql's `\conninfo` says it connected to: (host, port, dbname, user).
fn psql_target(out: &str) -> (String, String, String, String) {
    let quoted = |after: &str| -> String {
        let start = out
            .find(after)
            .unwrap_or_else(|| panic!("no {after:?} in {out}"))
            + after.len();
        out[start..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    (
        quoted("on host \""),
        quoted("at port \""),
        quoted("to database \""),
        quoted("as user \""),
    )
}

/// psql and the probe read the same service with the same environment and
/// connection string, and reach the same host, port, database and user:
/// the service beneath the connection string and above PG* variables.
#[test]
fn a_service_resolves_as_psql_resolves_it() {
    let Some((server, root)) = article() else {
        return;
    };
    let file = service_file(server, "fleet.conf", &group("good", server, root, ""));
    let file = file.display().to_string();
    let base = vec![
        ("PGSERVICEFILE", file.clone()),
        ("PGPASSWORD", pg::PASSWORD.to_string()),
    ];
    let with = |more: &[(&'static str, &str)]| {
        let mut env = base.clone();
        env.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
        env
    };
    let cases: [(&str, Vec<(&'static str, String)>); 4] = [
        ("service=good", with(&[])),
        // The service's host and dbname win over the environment's.
        (
            "service=good",
            with(&[("PGHOST", "nohost.invalid"), ("PGDATABASE", "template1")]),
        ),
        // The connection string wins over the service.
        ("service=good dbname=template1", with(&[])),
        // PGSERVICE names the service when the connection string does not.
        ("application_name=x", with(&[("PGSERVICE", "good")])),
    ];
    for (conninfo, env) in cases {
        let (ok, out) = server.psql_env(&env, conninfo, "\\conninfo");
        assert!(ok, "psql {conninfo:?} {env:?}: {out}");
        let (host, port, dbname, user) = psql_target(&out);
        let mut probe = Probe::new().arg(conninfo).args(["--scan", "none"]);
        for (k, v) in &env {
            probe = probe.env(k, v.clone());
        }
        let out = probe.run();
        out.expect_exit(0)
            .expect_at("/target/host", host.as_str())
            .expect_at("/target/port", port.parse::<u16>().unwrap())
            .expect_at("/target/dbname", dbname.as_str())
            .expect_at("/target/user", user.as_str());
    }
}

/// Several services in one run: one document per target in file order, the
/// counts, and the worst status; a broken service is UNKNOWN on its own,
/// naming the file and line, and does not stop the others.
#[test]
fn services_are_probed_each_with_the_worst_status_as_the_run() {
    let (Some((good, root)), Some((plain, plain_root))) = (article(), plaintext_allowed()) else {
        return;
    };
    let text = [
        group("db-a", good, root, "application_name=a\n"),
        group("db-b", good, root, "application_name=b\n"),
        group("db-open", plain, plain_root, ""),
        group("db-typo", good, root, "hots=x\n"),
        group("other", good, root, ""),
    ]
    .join("\n");
    let file = service_file(good, "services.conf", &text);
    let run = |format: &str| {
        Probe::new()
            .env("PGSERVICEFILE", file.display().to_string())
            .env("PGPASSWORD", pg::PASSWORD)
            .args(["--services", "db-*", "--scan", "none"])
            .format(format)
    };
    let out = run("json").run();
    out.expect_exit(2)
        .expect_at("/counts/ok", 2)
        .expect_at("/counts/critical", 1)
        .expect_at("/counts/unknown", 1)
        .expect_at("/counts/total", 4);
    let names: Vec<&str> = out.json["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db-a", "db-b", "db-open", "db-typo"]);
    out.expect_at("/targets/0/status", "OK")
        .expect_at("/targets/0/target/application_name", "a")
        .expect_at("/targets/2/status", "CRITICAL")
        .expect_at("/targets/3/status", "UNKNOWN");
    let plaintext = out.json["targets"][2]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "plaintext")
        .unwrap_or_else(|| panic!("no plaintext check\n{}", out.context()));
    assert_eq!(plaintext["status"], "CRITICAL", "{plaintext}");
    let typo_line = text.lines().position(|l| l == "hots=x").unwrap() + 1;
    out.expect_at(
        "/targets/3/summary",
        format!(
            "syntax error in service file \"{}\", line {typo_line}: unknown keyword \"hots\"",
            file.display()
        ),
    );
    let nagios = run("nagios").run_raw();
    nagios.expect_code(2);
    assert!(
        nagios.first_line().starts_with(
            "PGTLS CRITICAL: 4 targets: 2 OK, 0 WARNING, 1 CRITICAL, 1 UNKNOWN; CRITICAL: db-open (plaintext reaches authentication"
        ),
        "{}",
        nagios.stdout
    );
    assert!(
        nagios
            .first_line()
            .contains(" | targets=4 ok=2 warning=0 critical=1 unknown=1 total_time="),
        "{}",
        nagios.first_line()
    );
    let lines: Vec<&str> = nagios.stdout.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "{}", nagios.stdout);
    assert!(lines[0].starts_with("CRITICAL db-open: "), "{lines:?}");
    assert!(lines[1].starts_with("UNKNOWN db-typo: "), "{lines:?}");
}

/// libpq's host list is a fleet of its hosts: each probed, not "the first
/// that answers".
#[test]
fn a_host_list_probes_every_host() {
    let Some((server, root)) = article() else {
        return;
    };
    let out = Probe::server(server, root)
        .env("PGHOST", "localhost,127.0.0.1")
        .args(["--scan", "none"])
        .run();
    out.expect_exit(0)
        .expect_at("/counts/ok", 2)
        .expect_at("/targets/0/name", format!("localhost:{}", server.port))
        .expect_at("/targets/1/name", format!("127.0.0.1:{}", server.port))
        .expect_at("/targets/1/target/host", "127.0.0.1");
}

/// Silent endpoints first in the file and one slot: each gives its slot
/// back after a second, so every good target is still judged OK (with one
/// slot held to the deadline, none would be), and the run ends at its
/// deadline with the silent ones CRITICAL. (The deadline leaves room for
/// a loaded CI machine: the good targets start after two seconds.)
#[test]
fn silent_targets_do_not_hold_up_the_others() {
    let Some((server, root)) = article() else {
        return;
    };
    let silent: Vec<Fake> = (0..2).map(|_| Fake::start(Behaviour::Silent)).collect();
    let mut text: Vec<String> = silent
        .iter()
        .enumerate()
        .map(|(i, f)| {
            format!(
                "[silent{i}]\nhost=127.0.0.1\nport={}\nuser=x\nsslrootcert={}\n",
                f.port,
                root.display()
            )
        })
        .collect();
    text.extend((0..4).map(|i| group(&format!("good{i}"), server, root, "")));
    let file = service_file(server, "silent.conf", &text.join("\n"));
    let out = Probe::new()
        .env("PGSERVICEFILE", file.display().to_string())
        .env("PGPASSWORD", pg::PASSWORD)
        .args(["--services", "*", "--concurrency", "1", "--timeout", "8"])
        .args(["--scan", "none"])
        .run();
    out.expect_exit(2)
        .expect_at("/counts/ok", 4)
        .expect_at("/counts/critical", 2);
    for i in 0..2 {
        out.expect_at(&format!("/targets/{i}/failure/kind"), "timeout");
    }
    assert!(
        out.elapsed < Duration::from_secs(9),
        "took {:?} with --timeout 8\n{}",
        out.elapsed,
        out.context()
    );
}

/// Many databases of one small server (9 connections for ordinary roles):
/// eight of them with `--per-server 1` take turns and all are OK (up to
/// three connections each, plus the backends of the one before still
/// exiting); forty probed all at once exhaust its max_connections, which
/// the run then reports against the server, so the cap is what keeps a
/// fleet's verdicts true. Logins one at a time take a while on a loaded
/// machine: the deadline is generous, as it bounds the run, not the
/// property.
#[test]
fn targets_of_one_server_take_turns() {
    let ca = Ca::root("pg-tls-probe per-server CA");
    let leaf = ca.server(&["localhost"], Validity::normal());
    let spec = ServerSpec::article(ServerTls {
        cert_chain_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
        ca_pem: ca.cert_pem.clone(),
    })
    .conf("max_connections = 12");
    let Some(server) = Server::start(&spec) else {
        return;
    };
    let root = server.client_file("root.crt", &ca.cert_pem);
    let text: Vec<String> = (0..40)
        .map(|i| group(&format!("db{i:02}"), &server, &root, ""))
        .collect();
    let file = service_file(&server, "many.conf", &text.join("\n"));
    let run = |pattern: &str, per_server: &str| {
        Probe::new()
            .env("PGSERVICEFILE", file.display().to_string())
            .env("PGPASSWORD", pg::PASSWORD)
            .args(["--services", pattern, "--timeout", "60"])
            .args(["--concurrency", "40", "--per-server", per_server])
            .run()
    };
    run("db0[0-7]", "1")
        .expect_exit(0)
        .expect_at("/counts/ok", 8);
    let all_at_once = run("db*", "40");
    all_at_once.expect_exit(2);
    assert!(
        all_at_once.stdout.contains("SQLSTATE 53300"),
        "{}",
        all_at_once.context()
    );
}
