//! Real PgBouncer and Pgpool-II (util/pooler.rs) with client TLS required,
//! in front of real PostgreSQL, the backend link over the Unix socket, over
//! TCP without TLS and over TCP with TLS. The probe must see that
//! pg_stat_ssl's row is the pooler's link, judge the client's TLS from its
//! own handshake, report the pooler's link as its own finding, name the
//! pooler, and count the pooler's refusal of plaintext as a rejection.
//!
//! All links here are on loopback (tests reach no other address), so the
//! plaintext TCP link is information; the WARNING for plaintext across a
//! network is covered by policy::pooler's unit tests.

use std::path::PathBuf;

use serde_json::Value;

use crate::util::pg::{Server, ServerSpec, ServerTls};
use crate::util::pki::{Ca, Validity};
use crate::util::pooler::{self, Backend, Pooler, PoolerTls};
use crate::util::{Outcome, Probe};

/// The backend accepts the poolers over its socket (trust), over TCP
/// with TLS and, for the plaintext-link cases, without.
const BACKEND_HBA: &str = "\
local     all   all                     trust
hostssl   all   all        127.0.0.1/32 scram-sha-256
host      all   all        127.0.0.1/32 scram-sha-256
host      all   all        0.0.0.0/0    reject
";

struct Setup {
    /// The client's root CA file (signs both PostgreSQL's and the pooler's
    /// certificates).
    root: PathBuf,
    tls: PoolerTls,
}

/// A PostgreSQL server (`ssl` on or off) behind the poolers.
fn backend(ssl: bool) -> Option<(Server, Setup)> {
    let ca = Ca::root("pg-tls-probe pooler CA");
    let leaf = ca.server(&["localhost", "127.0.0.1"], Validity::normal());
    let mut spec = ServerSpec::article(ServerTls {
        cert_chain_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
        ca_pem: ca.cert_pem.clone(),
    });
    spec.ssl = ssl;
    spec.hba = Some(BACKEND_HBA.into());
    let server = Server::start(&spec)?;
    let root = server.client_file("root.crt", &ca.cert_pem);
    let front = ca.server(&["localhost", "127.0.0.1"], Validity::normal());
    let tls = PoolerTls {
        cert_pem: front.cert_pem,
        key_pem: front.key_pem,
        server_ca_pem: ca.cert_pem.clone(),
    };
    Some((server, Setup { root, tls }))
}

/// The probe at the pooler (the default checks: scan and direct TLS too).
fn probe(server: &Server, setup: &Setup, pooler: &Pooler) -> Probe {
    Probe::server(server, &setup.root).env("PGPORT", pooler.port.to_string())
}

#[track_caller]
fn expect_pooler(out: &Outcome, name: &str, link: &str, link_tls: Option<&str>) {
    out.expect_exit(0)
        .expect_all_checks_ok()
        .expect_check("pooler", "OK")
        .expect_check("tls_session", "OK")
        .expect_check("plaintext", "OK")
        .expect_at("/pooler/link", link)
        .expect_at(
            "/pooler/link_tls",
            link_tls.map_or(Value::Null, Value::from),
        )
        .expect_at("/handshake/version", "TLSv1.3")
        // The backend's row is the pooler's link.
        .expect_at("/tls/ssl", link_tls.is_some());
    let pooler = out.at("/pooler/name").as_str().unwrap_or_default();
    assert!(pooler.starts_with(name), "{}", out.context());
    let tls = out.check("tls_session")["summary"].as_str().unwrap();
    assert!(tls.contains("the probe's own handshake"), "{tls}");
    let plain = out.check("plaintext")["summary"].as_str().unwrap();
    assert!(
        plain.contains("rejected before authentication by"),
        "{plain}"
    );
    let summary = out.check("pooler")["summary"].as_str().unwrap();
    let wanted = match link {
        "unix_socket" => "over a Unix socket",
        _ if link_tls.is_some() => "with TLSv1.",
        _ => "on loopback (127.0.0.1) without TLS",
    };
    assert!(summary.contains(wanted), "{summary}");
}

/// PgBouncer with `client_tls_sslmode = require`: OK with PgBouncer named
/// (its own 08P01 "SSL required" for plaintext), the link reported on its
/// own: the Unix socket and loopback TCP as information, verify-full TLS
/// with its version. Before this, the same runs were CRITICAL
/// ("pg_stat_ssl reports ssl=false") with plaintext UNKNOWN.
#[test]
fn pgbouncer_in_front_is_judged_by_its_own_tls() {
    let Some((server, setup)) = backend(true) else {
        return;
    };
    for (backend, link, link_tls) in [
        (Backend::Socket, "unix_socket", None),
        (Backend::Tcp, "tcp", None),
        (Backend::TcpTls, "tcp", Some("TLSv1.3")),
    ] {
        let Some(bouncer) = pooler::pgbouncer(&server, backend, &setup.tls) else {
            return;
        };
        let out = probe(&server, &setup, &bouncer).run();
        expect_pooler(&out, "PgBouncer", link, link_tls);
        out.expect_at("/plaintext/outcome/sqlstate", "08P01")
            .expect_at("/plaintext/outcome/message", "SSL required");
        // The scan and the direct-TLS check answer as usual (PgBouncer
        // 1.18 has no direct TLS).
        out.expect_at("/scan/protocols/4/accepted", true)
            .expect_at("/direct_tls/supported", false);
        // Every format carries it.
        let nagios = probe(&server, &setup, &bouncer).format("nagios").run_raw();
        nagios.expect_code(0);
        assert!(
            nagios
                .stdout
                .contains("\nOK pooler: PgBouncer is in front;")
                && nagios.first_line().contains(" TLSv1.3 via PgBouncer, "),
            "{}",
            nagios.stdout
        );
    }
}

/// Pgpool-II with `ssl = on` and pool_hba.conf in the article's shape: OK
/// with Pgpool-II named by its own `SHOW pool_version`, its refusal of
/// plaintext (XX000 "client authentication failed") counted as rejected.
/// Its `ssl` covers the backend link too and it never verifies
/// PostgreSQL's certificate: TCP to a TLS server is TLS, TCP to a server
/// with `ssl = off` is plaintext on loopback.
#[test]
fn pgpool_in_front_is_judged_by_its_own_tls() {
    let Some((server, setup)) = backend(true) else {
        return;
    };
    for (backend, link, link_tls) in [
        (Backend::Socket, "unix_socket", None),
        (Backend::Tcp, "tcp", Some("TLSv1.3")),
    ] {
        let Some(pool) = pooler::pgpool(&server, backend, &setup.tls) else {
            return;
        };
        let out = probe(&server, &setup, &pool).run();
        expect_pooler(&out, "Pgpool-II", link, link_tls);
        out.expect_at("/plaintext/outcome/sqlstate", "XX000");
    }
    let Some((plain_server, plain_setup)) = backend(false) else {
        return;
    };
    let Some(pool) = pooler::pgpool(&plain_server, Backend::Tcp, &plain_setup.tls) else {
        return;
    };
    let out = probe(&plain_server, &plain_setup, &pool).run();
    expect_pooler(&out, "Pgpool-II", "tcp", None);
}
