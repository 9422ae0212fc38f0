//! The session's authentication, observed on the wire, and the keywords
//! that govern it (`require_auth`, `channel_binding`), against a real
//! server with one role per pg_hba.conf method. Where a keyword decides
//! whether libpq connects, libpq 18 (util/libpq.rs) is asked the same
//! question and the probe must agree, in its words.

use std::path::PathBuf;

use serde_json::Value;

use crate::util::libpq;
use crate::util::pg::{self, Server, ServerSpec, ServerTls};
use crate::util::pki::{Ca, Validity};
use crate::util::Probe;

/// One role per method; TLS only, as the recipe, with the catch-all.
const HBA: &str = "\
local     all   all                     trust
hostssl   all   probe      127.0.0.1/32 scram-sha-256
hostssl   all   md5user    127.0.0.1/32 md5
hostssl   all   pwuser     127.0.0.1/32 password
hostssl   all   trustuser  127.0.0.1/32 trust
hostssl   all   certuser   127.0.0.1/32 cert
host      all   all        0.0.0.0/0    reject
host      all   all        ::/0         reject
";

struct Methods {
    server: &'static Server,
    root: PathBuf,
    /// The client certificate and key of `certuser`.
    cert: PathBuf,
    key: PathBuf,
}

/// The server with one role per method, shared by these tests (they only
/// connect), and certuser's client files beside the root CA.
fn methods() -> Option<Methods> {
    let (server, root) = pg::shared("auth-methods", || {
        let ca = Ca::root("pg-tls-probe auth CA");
        let leaf = ca.server(&["localhost", "127.0.0.1"], Validity::normal());
        let mut spec = ServerSpec::article(ServerTls {
            cert_chain_pem: leaf.cert_pem,
            key_pem: leaf.key_pem,
            ca_pem: ca.cert_pem.clone(),
        });
        spec.hba = Some(HBA.to_string());
        let server = Server::start(&spec)?;
        let pw = pg::PASSWORD;
        server.psql(&format!(
            "SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD '{pw}'; \
             SET password_encryption = 'scram-sha-256'; CREATE ROLE pwuser LOGIN PASSWORD '{pw}'; \
             CREATE ROLE trustuser LOGIN; CREATE ROLE certuser LOGIN;"
        ));
        let client = ca.client("certuser");
        server.client_file("certuser.crt", &client.cert_pem);
        server.client_file("certuser.key", &client.key_pem);
        let root = server.client_file("root.crt", &ca.cert_pem);
        Some((server, root))
    })?;
    let dir = root.parent()?;
    Some(Methods {
        server,
        root: root.clone(),
        cert: dir.join("certuser.crt"),
        key: dir.join("certuser.key"),
    })
}

impl Methods {
    /// The probe as `user` over 127.0.0.1 (the hba lines are IPv4).
    fn probe(&self, user: &str) -> Probe {
        let mut probe = Probe::server(self.server, &self.root)
            .env("PGHOSTADDR", "127.0.0.1")
            .env("PGUSER", user.to_string())
            .arg("--scan")
            .arg("none")
            .arg("--skip-plaintext-check");
        if user == "certuser" {
            probe = probe
                .env("PGSSLCERT", self.cert.display().to_string())
                .env("PGSSLKEY", self.key.display().to_string());
        }
        probe
    }

    /// libpq's conninfo for the same question.
    fn conninfo(&self, user: &str, extra: &str) -> String {
        let mut s = format!(
            "host=localhost hostaddr=127.0.0.1 port={} user={user} dbname=postgres \
             sslmode=verify-full sslrootcert={} {extra}",
            self.server.port,
            self.root.display()
        );
        if user == "certuser" {
            s.push_str(&format!(
                " sslcert={} sslkey={}",
                self.cert.display(),
                self.key.display()
            ));
        }
        s
    }
}

/// Each method as it crossed the wire, in JSON, text and Nagios output,
/// with the recipe's statuses: SCRAM and a client certificate OK; md5, a
/// cleartext password and trust WARNING.
#[test]
fn auth_method_of_each_session_in_every_format() {
    let Some(m) = methods() else {
        return;
    };
    let m = &m;
    for (user, method, status, exit, text) in [
        (
            pg::ROLE,
            "scram-sha-256-plus",
            "OK",
            0,
            "SCRAM-SHA-256-PLUS (channel binding tls-server-end-point)",
        ),
        ("md5user", "md5", "WARNING", 1, "md5 password"),
        ("pwuser", "password", "WARNING", 1, "cleartext password"),
        ("trustuser", "trust", "WARNING", 1, "trust"),
        ("certuser", "certificate", "OK", 0, "client certificate"),
    ] {
        let out = m.probe(user).run();
        out.expect_exit(exit)
            .expect_check("connection", "OK")
            .expect_check("authentication", status)
            .expect_at("/auth/method", method)
            .expect_at("/auth/completed", true);
        let summary = out.check("authentication")["summary"].as_str().unwrap();
        assert!(summary.contains(text), "{user}: {summary}");
        if status == "WARNING" {
            assert!(
                summary.contains("scram-sha-256") || summary.contains("trust over TCP"),
                "{user}: {summary}"
            );
        }
        let nagios = m.probe(user).format("nagios").run_raw();
        nagios.expect_code(exit);
        assert!(
            nagios
                .stdout
                .contains(&format!("{status} authentication: {text}")),
            "{user}: {}",
            nagios.stdout
        );
        let report = m.probe(user).format("text").run_raw();
        assert!(
            report
                .stdout
                .contains("authentication (observed on the wire):")
                && report.stdout.contains(text),
            "{user}: {}",
            report.stdout
        );
    }
    let out = m.probe(pg::ROLE).run();
    out.expect_at("/auth/channel_binding", "tls-server-end-point")
        .expect_at(
            "/auth/mechanisms_offered",
            Value::from(vec!["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]),
        );
    let out = m.probe("certuser").run();
    out.expect_at("/auth/client_certificate_requested", true)
        .expect_at("/auth/client_certificate_sent", true);
    // The server offers -PLUS; a client that declines it is told so.
    let out = m.probe(pg::ROLE).env("PGCHANNELBINDING", "disable").run();
    out.expect_exit(0)
        .expect_at("/auth/method", "scram-sha-256");
    let summary = out.check("authentication")["summary"].as_str().unwrap();
    assert!(
        summary.contains("the server offers SCRAM-SHA-256-PLUS"),
        "{summary}"
    );
}

/// What libpq 18 said about a connection string: Ok, or its error line.
fn libpq_says(libpq: &libpq::Libpq, m: &Methods, user: &str, extra: &str) -> Result<(), String> {
    let home = tempfile::tempdir().unwrap();
    let (ok, out) = libpq.run(
        &m.conninfo(user, extra),
        pg::PASSWORD,
        home.path(),
        "select 1",
    );
    if ok {
        Ok(())
    } else {
        Err(out)
    }
}

/// `require_auth` in its whole syntax, against what each server actually
/// asked: the probe connects exactly when libpq 18 does, and refuses with
/// libpq's own reason, before answering the request it refuses.
#[test]
fn require_auth_agrees_with_libpq() {
    let Some(m) = methods() else {
        return;
    };
    let m = &m;
    let Some(libpq) = libpq::require(18) else {
        return;
    };
    for (user, rule, refused) in [
        (
            pg::ROLE,
            "md5",
            Some("server requested SASL authentication"),
        ),
        (pg::ROLE, "scram-sha-256", None),
        (
            pg::ROLE,
            "password,md5",
            Some("server requested SASL authentication"),
        ),
        // libpq 18 allows the SASL request (oauth is not excluded) and
        // refuses the mechanism it would pick.
        (
            pg::ROLE,
            "!scram-sha-256",
            Some("server requested SCRAM-SHA-256-PLUS authentication"),
        ),
        (
            pg::ROLE,
            "oauth",
            Some("server requested SCRAM-SHA-256-PLUS authentication"),
        ),
        (
            pg::ROLE,
            "!scram-sha-256,!oauth",
            Some("server requested SASL authentication"),
        ),
        (pg::ROLE, "!password,!md5", None),
        ("md5user", "md5", None),
        (
            "md5user",
            "!md5",
            Some("server requested a hashed password"),
        ),
        (
            "pwuser",
            "scram-sha-256",
            Some("server requested a cleartext password"),
        ),
        ("pwuser", "password", None),
        (
            "trustuser",
            "scram-sha-256",
            Some("server did not complete authentication"),
        ),
        ("trustuser", "none", None),
        (
            "trustuser",
            "!none",
            Some("server did not complete authentication"),
        ),
        ("trustuser", "scram-sha-256,none", None),
        ("certuser", "none", None),
        (
            "certuser",
            "md5",
            Some("server did not complete authentication"),
        ),
    ] {
        let oracle = libpq_says(&libpq, m, user, &format!("require_auth={rule}"));
        let out = m.probe(user).env("PGREQUIREAUTH", rule).run();
        match refused {
            None => {
                assert!(oracle.is_ok(), "{user} {rule}: libpq refused: {oracle:?}");
                out.expect_check("connection", "OK");
            }
            Some(reason) => {
                let libpq_error = oracle.expect_err("libpq connected");
                let words =
                    format!("authentication method requirement \"{rule}\" failed: {reason}");
                assert!(
                    libpq_error.contains(&words),
                    "{user} {rule}: libpq said {libpq_error}"
                );
                out.expect_exit(2)
                    .expect_check("connection", "CRITICAL")
                    .expect_at("/failure/kind", "refused")
                    .expect_at("/failure/keyword", "require_auth")
                    .expect_at("/failure/detail", words.as_str());
            }
        }
    }
    // Bad syntax: both refuse before connecting, with the same words.
    for (rule, words) in [
        (
            "md5,!password",
            "negative require_auth method \"!password\" cannot be mixed with non-negative methods",
        ),
        (
            "md5,md5",
            "require_auth method \"md5\" is specified more than once",
        ),
    ] {
        let oracle = libpq_says(&libpq, m, pg::ROLE, &format!("require_auth={rule}"));
        assert!(
            oracle.as_ref().is_err_and(|e| e.contains(words)),
            "{rule}: {oracle:?}"
        );
        let out = m.probe(pg::ROLE).env("PGREQUIREAUTH", rule).run();
        out.expect_exit(3);
        assert!(
            out.at("/summary").as_str().unwrap().contains(words),
            "{}",
            out.context()
        );
    }
}

/// `channel_binding=require` keeps its libpq meaning: a server that logs
/// the client in without SCRAM-SHA-256-PLUS is refused, by both.
#[test]
fn channel_binding_require_agrees_with_libpq() {
    let Some(m) = methods() else {
        return;
    };
    let m = &m;
    let Some(libpq) = libpq::require(18) else {
        return;
    };
    for (user, ok) in [(pg::ROLE, true), ("trustuser", false), ("md5user", false)] {
        let oracle = libpq_says(&libpq, m, user, "channel_binding=require");
        assert_eq!(oracle.is_ok(), ok, "{user}: {oracle:?}");
        let out = m.probe(user).env("PGCHANNELBINDING", "require").run();
        if ok {
            out.expect_check("connection", "OK")
                .expect_at("/auth/method", "scram-sha-256-plus");
        } else {
            out.expect_exit(2).expect_check("connection", "CRITICAL");
        }
    }
}
