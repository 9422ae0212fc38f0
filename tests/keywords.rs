//! libpq keywords that change libpq's verdict (docs/keywords.md): each one
//! asked of the probe and of libpq 18 (util/libpq.rs) on the same server
//! and files, and the answers compared. Where the probe refuses a keyword
//! it cannot honour, the refusal is what is checked.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::libpq::{self, Libpq};
use crate::util::pg::{self, Server, ServerSpec, ServerTls};
use crate::util::pki::{Ca, Validity};
use crate::util::Probe;

/// A server per the article with `tweak`, its root CA file, and the CA
/// (for client certificates).
fn start(tweak: impl FnOnce(&mut ServerSpec)) -> Option<(Server, PathBuf, Ca)> {
    let ca = Ca::root("pg-tls-probe keywords CA");
    let leaf = ca.server(&["localhost", "127.0.0.1"], Validity::normal());
    let mut spec = ServerSpec::article(ServerTls {
        cert_chain_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
        ca_pem: ca.cert_pem.clone(),
    });
    tweak(&mut spec);
    let server = Server::start(&spec)?;
    let root = server.client_file("root.crt", &ca.cert_pem);
    Some((server, root, ca))
}

/// libpq's conninfo for the probe's question on `server`.
fn conninfo(server: &Server, root: &Path, extra: &str) -> String {
    format!(
        "host=localhost hostaddr=127.0.0.1 port={} user={} dbname=postgres \
         sslmode=verify-full sslrootcert={} {extra}",
        server.port,
        pg::ROLE,
        root.display()
    )
}

/// libpq 18's verdict: Ok, or its error text.
fn libpq_says(libpq: &Libpq, server: &Server, root: &Path, extra: &str) -> Result<String, String> {
    let home = tempfile::tempdir().unwrap();
    let (ok, out) = libpq.run(
        &conninfo(server, root, extra),
        pg::PASSWORD,
        home.path(),
        "select version from pg_stat_ssl where pid = pg_backend_pid()",
    );
    if ok {
        Ok(out)
    } else {
        Err(out)
    }
}

/// The probe with the keywords in a connection string, no scan.
fn probe(server: &Server, root: &Path, extra: &str) -> Probe {
    Probe::server(server, root)
        .env("PGHOSTADDR", "127.0.0.1")
        .args(["--scan", "none", "--skip-plaintext-check"])
        .arg(format!("host=localhost {extra}"))
}

/// The probe's verdict in libpq's terms: connected, or refused naming `words`.
#[track_caller]
fn agree(libpq: &Result<String, String>, probe: &Probe, words: &str) {
    let out = probe.run();
    match libpq {
        Ok(_) => {
            out.expect_check("connection", "OK");
        }
        Err(e) => {
            assert!(e.contains(words), "libpq said: {e}");
            out.expect_exit(2).expect_check("connection", "CRITICAL");
            let summary = out.check("connection")["summary"].as_str().unwrap();
            assert!(summary.contains(words), "{}", out.context());
        }
    }
}

/// ssl_min_protocol_version=TLSv1.3 against a server capped at TLS 1.2:
/// libpq fails the handshake; the probe refuses before any protocol
/// message. Against the article's server both use TLS 1.3. A maximum
/// below TLS 1.3 is refused (UNKNOWN): the session cannot cap itself.
#[test]
fn ssl_protocol_versions_agree_with_libpq() {
    let Some(libpq) = libpq::require(18) else {
        return;
    };
    let Some((capped, root, _)) = start(|s| {
        s.extra_conf
            .push("ssl_max_protocol_version = 'TLSv1.2'".into())
    }) else {
        return;
    };
    let oracle = libpq_says(&libpq, &capped, &root, "ssl_min_protocol_version=TLSv1.3");
    assert!(oracle.is_err(), "{oracle:?}");
    let out = probe(&capped, &root, "ssl_min_protocol_version=TLSv1.3").run();
    out.expect_exit(2)
        .expect_at("/failure/kind", "refused")
        .expect_at("/failure/keyword", "ssl_min_protocol_version")
        .expect_at(
            "/failure/detail",
            "the server negotiated TLSv1.2, below ssl_min_protocol_version=TLSv1.3",
        );
    // No login was attempted: the server saw no startup packet.
    assert!(!capped.log().contains("authentication failed"));
    // The same server with the default minimum: both connect over TLS 1.2.
    let oracle = libpq_says(&libpq, &capped, &root, "");
    assert_eq!(oracle.as_deref().map(str::trim), Ok("TLSv1.2"));
    probe(&capped, &root, "")
        .run()
        .expect_exit(0)
        .expect_at("/tls/version", "TLSv1.2");

    let out = probe(&capped, &root, "ssl_max_protocol_version=TLSv1.2").run();
    out.expect_exit(3);
    assert!(
        out.at("/summary")
            .as_str()
            .unwrap()
            .contains("cannot cap its handshake"),
        "{}",
        out.context()
    );
    let out = Probe::new()
        .env("PGSSLMINPROTOCOLVERSION", "TLSv1.3")
        .env("PGSSLMAXPROTOCOLVERSION", "TLSv1.2")
        .run();
    out.expect_exit(3);
    assert_eq!(out.at("/summary"), "invalid SSL protocol version range");
}

/// sslcertmode=require: a server that asks for no client certificate (no
/// ssl_ca_file) is refused by both; sslcertmode=disable keeps the
/// certificate back, so a `cert` rule fails the login for both.
#[test]
fn sslcertmode_agrees_with_libpq() {
    let Some(libpq) = libpq::require(18) else {
        return;
    };
    let Some((server, root, _)) = start(|s| s.extra_conf.push("ssl_ca_file = ''".into())) else {
        return;
    };
    let oracle = libpq_says(&libpq, &server, &root, "sslcertmode=require");
    agree(
        &oracle,
        &probe(&server, &root, "sslcertmode=require"),
        "server did not request an SSL certificate",
    );
    let oracle = libpq_says(&libpq, &server, &root, "sslcertmode=allow");
    agree(&oracle, &probe(&server, &root, "sslcertmode=allow"), "");

    // The article's server (ssl_ca_file set) asks; a `cert` rule needs it.
    let hba = "local all all trust\nhostssl all all 127.0.0.1/32 cert\n";
    let Some((server, root, ca)) = start(|s| s.hba = Some(hba.into())) else {
        return;
    };
    let client = ca.client(pg::ROLE);
    let cert = server.client_file("probe.crt", &client.cert_pem);
    let key = server.client_file("probe.key", &client.key_pem);
    let files = format!("sslcert={} sslkey={}", cert.display(), key.display());
    for mode in ["require", "allow", "disable"] {
        let extra = format!("{files} sslcertmode={mode}");
        let oracle = libpq_says(&libpq, &server, &root, &extra);
        assert_eq!(oracle.is_ok(), mode != "disable", "{mode}: {oracle:?}");
        let out = probe(&server, &root, &extra).run();
        if mode == "disable" {
            out.expect_exit(2).expect_at("/failure/kind", "login");
        } else {
            out.expect_exit(0)
                .expect_at("/auth/method", "certificate")
                .expect_at("/auth/client_certificate_sent", true);
        }
    }
}

/// target_session_attrs, checked after login as libpq does: a primary and
/// its hot standby (PostgreSQL 15 reports in_hot_standby), and a
/// PostgreSQL 12 primary, where libpq (and the probe) must ask.
#[test]
fn target_session_attrs_agree_with_libpq() {
    let Some(libpq) = libpq::require(18) else {
        return;
    };
    let hba = "\
local     all          all                    trust
local     replication  all                    trust
hostssl   all          all       127.0.0.1/32 scram-sha-256
host      all          all       0.0.0.0/0    reject
";
    let Some((primary, root, _)) = start(|s| s.hba = Some(hba.into())) else {
        return;
    };
    let standby = primary.start_standby(&format!(
        "{} port={}",
        primary.socket_conninfo("postgres"),
        primary.port
    ));
    let cases = [
        ("read-write", None, Some("session is read-only")),
        ("read-only", Some("session is not read-only"), None),
        ("primary", None, Some("server is in hot standby mode")),
        ("standby", Some("server is not in hot standby mode"), None),
        ("prefer-standby", None, None),
        ("any", None, None),
    ];
    for (attrs, on_primary, on_standby) in cases {
        for (server, refused) in [(&primary, on_primary), (&standby, on_standby)] {
            let extra = format!("target_session_attrs={attrs}");
            let oracle = libpq_says(&libpq, server, &root, &extra);
            assert_eq!(oracle.is_err(), refused.is_some(), "{attrs}: {oracle:?}");
            agree(
                &oracle,
                &probe(server, &root, &extra),
                refused.unwrap_or(""),
            );
        }
    }
    // PostgreSQL 12 reports neither in_hot_standby nor
    // default_transaction_read_only: libpq asks, and so does the probe.
    if pg::require_major(12).is_none() {
        return;
    }
    let Some((old, root, _)) = start(|s| s.major = Some(12)) else {
        return;
    };
    old.psql(&format!(
        "ALTER ROLE {} SET default_transaction_read_only = on",
        pg::ROLE
    ));
    for (attrs, refused) in [
        ("read-write", Some("session is read-only")),
        ("read-only", None),
        ("standby", Some("server is not in hot standby mode")),
        ("primary", None),
    ] {
        let extra = format!("target_session_attrs={attrs}");
        let oracle = libpq_says(&libpq, &old, &root, &extra);
        assert_eq!(oracle.is_err(), refused.is_some(), "12 {attrs}: {oracle:?}");
        agree(&oracle, &probe(&old, &root, &extra), refused.unwrap_or(""));
    }
}

/// sslkeylogfile (libpq 18): both append the session's TLS secrets in the
/// NSS key log format to a file only the user can read.
#[test]
fn sslkeylogfile_is_written_like_libpq() {
    let Some(libpq) = libpq::require(18) else {
        return;
    };
    let Some((server, root, _)) = start(|_| {}) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let theirs = dir.path().join("libpq.keys");
    let ours = dir.path().join("probe.keys");
    let oracle = libpq_says(
        &libpq,
        &server,
        &root,
        &format!("sslkeylogfile={}", theirs.display()),
    );
    assert!(oracle.is_ok(), "{oracle:?}");
    probe(&server, &root, &format!("sslkeylogfile={}", ours.display()))
        .run()
        .expect_exit(0);
    let labels = |path: &Path| {
        let text = std::fs::read_to_string(path).unwrap();
        let mut labels: Vec<String> = text
            .lines()
            .filter_map(|l| l.split(' ').next().map(str::to_string))
            .collect();
        labels.sort();
        labels.dedup();
        labels
    };
    assert_eq!(labels(&ours), labels(&theirs));
    assert!(labels(&ours).contains(&"CLIENT_TRAFFIC_SECRET_0".to_string()));
    let mode = std::fs::metadata(&ours).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // An unwritable file does not stop either; the probe says so.
    let out = probe(&server, &root, "sslkeylogfile=/nonexistent/dir/keys").run();
    out.expect_exit(0);
    let summary = out.check("connection")["summary"].as_str().unwrap();
    assert!(
        summary.contains("could not write sslkeylogfile"),
        "{summary}"
    );
}

/// options, sslsni and gssencmode: a bad server option fails the login for
/// both; sslsni=0 and gssencmode=disable change nothing; gssencmode=require
/// cannot be met by a TLS check (libpq without GSSAPI refuses it too).
#[test]
fn options_sslsni_and_gssencmode_agree_with_libpq() {
    let Some(libpq) = libpq::require(18) else {
        return;
    };
    let Some((server, root, _)) = start(|_| {}) else {
        return;
    };
    for (extra, ok) in [
        ("options='-c search_path=public'", true),
        ("options='-c no_such_setting=1'", false),
        ("sslsni=0", true),
        ("gssencmode=disable", true),
    ] {
        let oracle = libpq_says(&libpq, &server, &root, extra);
        assert_eq!(oracle.is_ok(), ok, "{extra}: {oracle:?}");
        let out = probe(&server, &root, extra).run();
        if ok {
            out.expect_exit(0);
        } else {
            out.expect_exit(2).expect_at("/failure/kind", "login");
        }
    }
    assert!(libpq_says(&libpq, &server, &root, "gssencmode=require").is_err());
    let out = probe(&server, &root, "gssencmode=require").run();
    out.expect_exit(3);
    assert!(
        out.at("/summary")
            .as_str()
            .unwrap()
            .contains("cannot be met"),
        "{}",
        out.context()
    );
}

/// An encrypted client key: libpq decrypts it with sslpassword; the probe
/// refuses (UNKNOWN) and says why, rather than connecting without it.
#[test]
fn encrypted_client_key_is_refused_naming_sslpassword() {
    let ca = Ca::root("pg-tls-probe keywords CA");
    let client = ca.client(pg::ROLE);
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.key");
    let encrypted = dir.path().join("encrypted.key");
    let cert = dir.path().join("client.crt");
    std::fs::write(&plain, &client.key_pem).unwrap();
    std::fs::write(&cert, &client.cert_pem).unwrap();
    let status = Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:s3cret-pass",
        ])
        .arg("-in")
        .arg(&plain)
        .arg("-out")
        .arg(&encrypted)
        .status();
    match status {
        Ok(s) if s.success() => {}
        other if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipping: openssl pkcs8: {other:?}");
            return;
        }
        other => panic!("openssl pkcs8: {other:?}"),
    }
    let out = Probe::new()
        .arg(format!(
            "host=localhost sslcert={} sslkey={} sslpassword=s3cret-pass",
            cert.display(),
            encrypted.display()
        ))
        .run();
    out.expect_exit(3).expect_absent("s3cret-pass");
    assert!(
        out.at("/summary")
            .as_str()
            .unwrap()
            .contains("is encrypted"),
        "{}",
        out.context()
    );
}
