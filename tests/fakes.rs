//! Peers that are not PostgreSQL servers (`util::fake`), plus a closed port.
//! Each must end CRITICAL with the right `failure.kind`, within the
//! deadline, and never leak the password.

use std::time::Duration;

use crate::util::fake::{frontend_messages, Behaviour, Fake, Reply};
use crate::util::pg::{self, free_port};
use crate::util::{Outcome, Probe};

/// What a pg_hba.conf rejection of plaintext looks like.
const HBA_REJECT: Reply = Reply::Error("28000", "no pg_hba.conf entry (fake)");

/// A fake answering the SSLRequest with `ssl` and a StartupMessage with `startup`.
fn script(ssl: Reply, startup: Reply) -> Fake {
    Fake::start(Behaviour::Script { ssl, startup })
}

#[track_caller]
fn expect_within(out: &Outcome, limit: Duration) {
    assert!(
        out.elapsed < limit,
        "took {:?}, limit {limit:?}\n{}",
        out.elapsed,
        out.context()
    );
}

/// Scenario 16: Nothing listens: connection refused.
#[test]
fn closed_port_is_connect_failure() {
    Probe::port(free_port())
        .run()
        .expect_exit(2)
        .expect_failure("connect");
}

/// Scenario 17: Accepts TCP, never answers the SSLRequest: the whole-run deadline
/// (`--timeout 2`) must end the probe, with the stage it was stuck in.
#[test]
fn silent_peer_times_out_in_ssl_request() {
    let fake = Fake::start(Behaviour::Silent);
    let out = Probe::port(fake.port).arg("--timeout").arg("2").run();
    out.expect_exit(2)
        .expect_failure("timeout")
        .expect_at("/failure/stage", "ssl_request");
    assert!(
        out.elapsed < Duration::from_secs(3),
        "took {:?} with --timeout 2\n{}",
        out.elapsed,
        out.context()
    );
}

/// 'S' to the SSLRequest, then nothing: the deadline names the TLS handshake.
#[test]
fn tls_handshake_stall_times_out_in_tls_handshake() {
    let fake = script(Reply::TlsThenSilent, Reply::Silent);
    let out = Probe::port(fake.port).args(["--timeout", "2"]).run();
    out.expect_exit(2)
        .expect_failure("timeout")
        .expect_at("/failure/stage", "tls_handshake");
    expect_within(&out, Duration::from_secs(3));
}

/// connect_timeout bounds one attempt, as in libpq, well inside `--timeout`.
#[test]
fn connect_timeout_ends_a_silent_peer_before_the_deadline() {
    let fake = Fake::start(Behaviour::Silent);
    let out = Probe::port(fake.port)
        .env("PGCONNECT_TIMEOUT", "2")
        .args(["--timeout", "10"])
        .run();
    out.expect_exit(2)
        .expect_failure("timeout")
        .expect_at("/failure/stage", "ssl_request");
    expect_within(&out, Duration::from_secs(3));
}

/// An ErrorResponse instead of 'S'/'N' is a TLS failure, and its text is
/// unauthenticated, so it is never shown (CVE-2024-10977).
#[test]
fn error_reply_to_ssl_request_is_not_shown() {
    const PLANTED: &str = "planted-by-a-mitm: visit evil.example";
    let fake = script(Reply::Error("XX000", PLANTED), HBA_REJECT);
    let out = Probe::port(fake.port).run();
    out.expect_exit(2)
        .expect_failure("tls")
        .expect_absent(PLANTED);
}

/// 'S', then bytes that are no TLS record: the handshake fails.
#[test]
fn garbage_after_tls_accept_is_tls_failure() {
    let fake = script(Reply::TlsThenGarbage, HBA_REJECT);
    Probe::port(fake.port)
        .run()
        .expect_exit(2)
        .expect_failure("tls");
}

/// No TLS, and plaintext logs in without any authentication.
#[test]
fn plaintext_auth_ok_is_critical() {
    let fake = script(Reply::Refuse, Reply::AuthOk);
    Probe::port(fake.port)
        .run()
        .expect_exit(2)
        .expect_failure("tls_refused")
        .expect_check("plaintext", "CRITICAL")
        .expect_at("/plaintext/outcome/kind", "auth_ok");
}

/// "Too many clients" proves nothing about plaintext (UNKNOWN), but the
/// refused TLS is observed: CRITICAL outranks UNKNOWN.
#[test]
fn plaintext_too_many_clients_is_unknown_but_tls_refused_wins() {
    let fake = script(
        Reply::Refuse,
        Reply::Error("53300", "sorry, too many clients already"),
    );
    let out = Probe::port(fake.port).run();
    out.expect_exit(2)
        .expect_failure("tls_refused")
        .expect_check("plaintext", "UNKNOWN")
        .expect_at("/plaintext/outcome/sqlstate", "53300");
    let summary = out.check("plaintext")["summary"]
        .as_str()
        .unwrap_or_default();
    assert!(summary.contains("53300"), "{}", out.context());
}

/// Scenario 18: Answers with bytes no PostgreSQL server sends.
#[test]
fn garbage_peer_is_not_postgres() {
    let fake = Fake::start(Behaviour::Garbage);
    Probe::port(fake.port)
        .run()
        .expect_exit(2)
        .expect_failure("not_postgres");
}

/// Scenario 19: An HTTP server on the PostgreSQL port.
#[test]
fn http_server_is_not_postgres() {
    let fake = Fake::start(Behaviour::Http);
    Probe::port(fake.port)
        .run()
        .expect_exit(2)
        .expect_failure("not_postgres");
}

/// Scenario 20: Refuses TLS and asks for a cleartext password: the probe reports
/// both and must never send the password (PasswordMessage 'p') anywhere.
#[test]
fn cleartext_asking_server_never_gets_the_password() {
    const SECRET: &str = "Pw-never-on-the-wire-4711";
    let mut fake = Fake::start(Behaviour::CleartextAuth);
    let out = Probe::port(fake.port).env("PGPASSWORD", SECRET).run();
    let received = fake.received();
    let dump = format!("received per connection: {received:?}");

    out.expect_exit(2)
        .expect_failure("tls_refused")
        .expect_at("/plaintext/outcome/kind", "auth_requested")
        .expect_at("/plaintext/outcome/method", "cleartext-password");

    let mut startups = 0;
    for bytes in &received {
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "the password reached the fake server\n{dump}\n{}",
            out.context()
        );
        for msg in frontend_messages(bytes) {
            assert_ne!(
                msg.tag,
                Some(b'p'),
                "the probe sent a PasswordMessage: {msg:?}\n{dump}\n{}",
                out.context()
            );
            if msg.tag.is_none() && msg.body.starts_with(&196608u32.to_be_bytes()) {
                startups += 1;
            }
        }
    }
    assert!(
        startups >= 1,
        "no StartupMessage reached the fake, so the plaintext check did not run\n{dump}\n{}",
        out.context()
    );
}

/// The detector above must be able to fail: psql, which does send the
/// password when asked for it in cleartext, is caught by it.
#[test]
fn harness_cleartext_fake_catches_psql_sending_the_password() {
    const SECRET: &str = "Pw-psql-sends-this-1234";
    let Some(bins) = pg::require() else {
        return;
    };
    let mut fake = Fake::start(Behaviour::CleartextAuth);
    let out = std::process::Command::new(bins.psql())
        .env_clear()
        .env("PGPASSWORD", SECRET)
        .arg("-X")
        .arg(format!(
            "host=127.0.0.1 port={} user=probe dbname=postgres sslmode=prefer connect_timeout=5",
            fake.port
        ))
        .args(["-c", "select 1"])
        .output()
        .expect("run psql");
    let received = fake.received();
    let sent_password = received.iter().any(|bytes| {
        frontend_messages(bytes)
            .iter()
            .any(|m| m.tag == Some(b'p') && m.body.starts_with(SECRET.as_bytes()))
    });
    assert!(
        sent_password,
        "no PasswordMessage with the password recorded; psql said {}\nreceived: {received:?}",
        String::from_utf8_lossy(&out.stderr)
    );
}
