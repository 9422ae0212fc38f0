//! Direct TLS (`sslnegotiation=direct`) against peers a real server cannot
//! imitate: what the probe puts on the wire, a TLS endpoint that negotiates
//! no ALPN, and the argument rules. Real PostgreSQL 12–18 are in `matrix`.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::util::fake::{Behaviour, Fake, Reply};
use crate::util::pki::{Ca, Validity};
use crate::util::Probe;

/// The ALPN extension's protocol as it appears in a ClientHello: length-prefixed.
const ALPN_IN_HELLO: &[u8] = b"\x0apostgresql";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// With direct negotiation the first bytes are a TLS handshake record
/// offering ALPN `postgresql`, not an SSLRequest; a peer answering with
/// something that is not TLS fails the session and is "not supported".
#[test]
fn direct_starts_with_a_client_hello_offering_alpn() {
    let mut fake = Fake::start(Behaviour::Http);
    let out = Probe::port(fake.port)
        .args([
            "--sslnegotiation",
            "direct",
            "--skip-plaintext-check",
            "--scan",
            "none",
        ])
        .run();
    out.expect_exit(2)
        .expect_failure("tls")
        .expect_at("/target/sslnegotiation", "direct")
        .expect_at("/direct_tls/supported", false);
    let reason = out.at("/failure/detail").as_str().unwrap_or_default();
    assert!(
        reason.starts_with("direct TLS handshake failed: "),
        "{reason}"
    );
    let received = fake.received();
    assert_eq!(
        received.len(),
        1,
        "one connection: the session answers for direct_tls"
    );
    let first = &received[0];
    assert_eq!(first.get(..2), Some(&[0x16, 0x03][..]), "{first:02x?}");
    assert!(contains(first, ALPN_IN_HELLO), "no ALPN postgresql offered");
}

/// libpq 17 offers ALPN after an SSLRequest too; so does the probe.
#[test]
fn sslrequest_path_offers_alpn_too() {
    let mut fake = Fake::start(Behaviour::Script {
        ssl: Reply::TlsThenGarbage,
        startup: Reply::Silent,
    });
    let out = Probe::port(fake.port)
        .args(["--skip-plaintext-check", "--timeout", "1"])
        .run();
    out.expect_exit(2).expect_failure("tls");
    let ssl_request = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    let session = fake
        .received()
        .into_iter()
        .find(|bytes| bytes.starts_with(&ssl_request))
        .expect("a connection that sent an SSLRequest");
    assert_eq!(
        session.get(8..10),
        Some(&[0x16, 0x03][..]),
        "{session:02x?}"
    );
    assert!(
        contains(&session, ALPN_IN_HELLO),
        "no ALPN postgresql offered"
    );
}

/// A TLS endpoint for `localhost` selecting only from `alpn` (a generic
/// terminator, not PostgreSQL 17) and serving one connection: its port, its
/// CA's root file, and the thread, which returns the ALPN protocol the
/// handshake ended with (`None` when the handshake failed).
fn tls_endpoint(alpn: &[&[u8]]) -> (u16, tempfile::NamedTempFile, Endpoint) {
    let ca = Ca::root("direct TLS endpoint CA");
    let leaf = ca.server(&["localhost", "127.0.0.1"], Validity::normal());
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .expect("leaf PEM");
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key PEM");
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server certificate");
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    // The probe makes exactly one connection (the session answers for direct_tls).
    let server = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().expect("accept");
        let mut tls = rustls::ServerConnection::new(Arc::new(config)).expect("server session");
        while tls.is_handshaking() {
            if tls.complete_io(&mut tcp).is_err() {
                return None;
            }
        }
        let alpn = tls.alpn_protocol().map(<[u8]>::to_vec);
        let clean = closed_with_close_notify(&mut tls, &mut tcp);
        tls.send_close_notify();
        let _ = tls.complete_io(&mut tcp);
        Some(Served { alpn, clean })
    });
    let root = tempfile::NamedTempFile::new().expect("temp root file");
    std::fs::write(root.path(), &ca.cert_pem).expect("write root");
    (port, root, server)
}

/// The endpoint's thread: `Some` after a completed handshake.
type Endpoint = std::thread::JoinHandle<Option<Served>>;

/// What a completed handshake at the endpoint ended with.
#[derive(Debug, PartialEq, Eq)]
struct Served {
    /// The ALPN protocol selected.
    alpn: Option<Vec<u8>>,
    /// The client sent close_notify before closing its side.
    clean: bool,
}

/// Reads until the client closes: true if it sent close_notify first.
fn closed_with_close_notify(tls: &mut rustls::ServerConnection, tcp: &mut TcpStream) -> bool {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 1024];
    loop {
        match tls.reader().read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
        match tls.read_tls(tcp) {
            Ok(0) => {
                return tls.process_new_packets().is_ok() && tls.reader().read(&mut buf).is_ok()
            }
            Ok(_) if tls.process_new_packets().is_ok() => {}
            _ => return false,
        }
    }
}

/// `--sslnegotiation direct` against a TLS endpoint, with a password that
/// must never be sent: refused, CRITICAL, "not supported".
fn probe_direct(port: u16, root: &tempfile::NamedTempFile) -> crate::util::Outcome {
    let out = Probe::port(port)
        .env("PGHOST", "localhost")
        .env("PGSSLROOTCERT", root.path().display().to_string())
        .env("PGPASSWORD", "never-sent-Zq7")
        .args(["--sslnegotiation", "direct", "--skip-plaintext-check"])
        .run();
    out.expect_exit(2)
        .expect_failure("tls")
        .expect_at("/direct_tls/supported", false)
        .expect_absent("never-sent-Zq7");
    out
}

/// A handshake that completes without selecting ALPN: refused, as libpq
/// refuses it.
#[test]
fn direct_without_alpn_is_refused() {
    let (port, root, server) = tls_endpoint(&[]);
    let out = probe_direct(port, &root);
    let reason = out.at("/failure/detail").as_str().unwrap_or_default();
    assert!(
        reason.contains("without ALPN"),
        "{reason}\n{}",
        out.context()
    );
    assert_eq!(
        server.join().expect("server thread"),
        Some(Served {
            alpn: None,
            clean: true
        }),
        "handshake completed with no ALPN selected, then close_notify"
    );
}

/// An endpoint for another protocol refuses ALPN `postgresql` with an
/// alert: not PostgreSQL 17+, and no session.
#[test]
fn direct_to_another_alpn_protocol_is_refused() {
    let (port, root, server) = tls_endpoint(&[b"http/1.1"]);
    let out = probe_direct(port, &root);
    let reason = out.at("/direct_tls/detail").as_str().unwrap_or_default();
    assert!(
        reason.contains("refused ALPN"),
        "{reason}\n{}",
        out.context()
    );
    assert_eq!(server.join().expect("server thread"), None);
}

/// Bad values are usage errors, like every other bad keyword.
#[test]
fn invalid_sslnegotiation_is_unknown() {
    for (flag, env) in [(Some("Direct"), None), (None, Some("tls"))] {
        let mut probe = Probe::port(1);
        if let Some(value) = flag {
            probe = probe.args(["--sslnegotiation", value]);
        }
        if let Some(value) = env {
            probe = probe.env("PGSSLNEGOTIATION", value);
        }
        let out = probe.run();
        out.expect_exit(3);
        let reason = out.check("arguments")["summary"]
            .as_str()
            .unwrap_or_default();
        assert!(
            reason.starts_with("invalid sslnegotiation value"),
            "{reason}"
        );
    }
}

/// A peer that neither answers nor closes on a direct ClientHello must not
/// stretch the run to its deadline: the answer is "undecided" shortly after
/// the other checks are done.
#[test]
fn silent_direct_peer_does_not_hold_up_the_run() {
    // 'N' to the SSLRequest at once; a ClientHello is read as the start of
    // a huge startup packet and never answered.
    let fake = Fake::start(Behaviour::CleartextAuth);
    let out = Probe::port(fake.port)
        .args(["--timeout", "8", "--skip-plaintext-check"])
        .run();
    out.expect_exit(2)
        .expect_failure("tls_refused")
        .expect_at("/direct_tls/supported", serde_json::Value::Null);
    let detail = out.at("/direct_tls/detail").as_str().unwrap_or_default();
    assert!(detail.starts_with("undecided: no answer"), "{detail}");
    assert!(
        out.elapsed < std::time::Duration::from_secs(4),
        "took {:?}\n{}",
        out.elapsed,
        out.context()
    );
}
