//! The verify-full session: SSLRequest, TLS by libpq's rules, login, and
//! the server's own view of the connection from `pg_stat_ssl`.
//!
//! The SSLRequest is sent here rather than by tokio-postgres so that the
//! server's one-byte answer is read exactly (no buffer stuffing, no
//! unauthenticated error text shown) and the failing stage can be named;
//! tokio-postgres then starts TLS directly on the answered socket.

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::config::{ChannelBinding as PgChannelBinding, SslMode, SslNegotiation};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{budget_with, connect_any, elapsed_ms, plaintext::hex_prefix, Plan};
use crate::facts::{PgStatSsl, SessionFacts, SessionFailure, Stage};
use crate::target::ChannelBinding;
use crate::tls::{self, HandshakeProgress, Recorder};

/// One round trip, whatever the server version: `s.*` carries exactly the
/// columns this version's pg_stat_ssl has (clientdn before 12, compression
/// before 14), read by name; the simple protocol returns them as text, so a
/// 20-byte client_serial stays exact. Our own row is always visible.
const STAT_SSL_QUERY: &str =
    "SELECT current_setting('server_version_num') AS server_version_num, s.* \
     FROM pg_stat_ssl s WHERE pid = pg_backend_pid()";

pub async fn probe(plan: &Plan, addrs: &[SocketAddr], budget: Duration) -> SessionFacts {
    let start = Instant::now();
    let target = &plan.target;
    let mut facts = SessionFacts::default();
    let (config, recorder) = match tls::client_config(
        &plan.trust,
        plan.identity.as_ref(),
        target.sslmode,
        &target.host,
    ) {
        Ok(built) => built,
        Err(e) => {
            facts.failure = Some(SessionFailure::Internal {
                detail: format!("cannot configure TLS: {e}"),
            });
            return facts;
        }
    };
    let stage = Cell::new(Stage::TcpConnect);
    let login_limit = budget_with(target.connect_timeout, budget);
    let result = async {
        let (client, connection) =
            tokio::time::timeout(login_limit, login(plan, addrs, config, &recorder, &stage))
                .await
                .map_err(|_| timed_out(&stage, &recorder, start))??;
        facts.connect_seconds = Some(start.elapsed().as_secs_f64());
        stage.set(Stage::Query);
        let rest = budget.saturating_sub(start.elapsed());
        let rows = tokio::time::timeout(rest, client.simple_query(STAT_SSL_QUERY))
            .await
            .map_err(|_| timed_out(&stage, &recorder, start))?
            .map_err(|e| SessionFailure::Query {
                sqlstate: e.code().map(|c| c.code().to_string()),
                detail: error_text(&e),
            })?;
        let read = read_stat_ssl(&rows, &mut facts);
        // Only a verified, logged-in session reaches this point.
        if plan.audit && read.is_ok() {
            let rest = budget.saturating_sub(start.elapsed());
            facts.audit = Some(super::audit::probe(&client, facts.server_version_num, rest).await);
        }
        // Dropping the client makes the connection send Terminate and
        // close_notify; waiting for that keeps the server's log free of
        // "unexpected EOF" lines and costs no round trip.
        drop(client);
        let _ = tokio::time::timeout(budget.saturating_sub(start.elapsed()), connection).await;
        read
    }
    .await;
    facts.failure = result.err();
    facts.chain = recorder.facts();
    facts
}

/// TCP connect, SSLRequest, TLS handshake and authentication.
async fn login(
    plan: &Plan,
    addrs: &[SocketAddr],
    config: rustls::ClientConfig,
    recorder: &Recorder,
    stage: &Cell<Stage>,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), SessionFailure> {
    let target = &plan.target;
    let mut stream = connect_any(addrs)
        .await
        .map_err(|detail| SessionFailure::Connect { detail })?;

    stage.set(Stage::SslRequest);
    let mut buf = BytesMut::new();
    frontend::ssl_request(&mut buf);
    stream
        .write_all(&buf)
        .await
        .map_err(|e| SessionFailure::Connect {
            detail: format!("sending SSLRequest: {e}"),
        })?;
    // Exactly one byte: anything the server sent after it must not be read
    // as if it came over TLS (CVE-2021-23222).
    let mut answer = [0u8; 1];
    match stream.read(&mut answer).await {
        Ok(0) => {
            return Err(SessionFailure::NotPostgres {
                detail: "connection closed in reply to the SSLRequest".into(),
            })
        }
        Ok(_) => {}
        Err(e) => {
            return Err(SessionFailure::Connect {
                detail: format!("reading SSLRequest reply: {e}"),
            })
        }
    }
    match answer[0] {
        b'S' => {}
        b'N' => return Err(SessionFailure::TlsRefused),
        // An error here is unauthenticated text; it is not shown (CVE-2024-10977).
        b'E' => {
            return Err(SessionFailure::Tls {
                detail: "server answered the SSLRequest with an error instead of 'S' or 'N'".into(),
            })
        }
        _ => {
            return Err(SessionFailure::NotPostgres {
                detail: format!(
                    "reply to SSLRequest was {}, not 'S' or 'N'",
                    hex_prefix(&answer)
                ),
            })
        }
    }

    stage.set(Stage::TlsHandshake);
    let mut pg = tokio_postgres::Config::new();
    pg.host(&target.host)
        .port(target.port)
        .user(&target.user)
        .dbname(&target.dbname)
        .application_name(&target.application_name)
        .ssl_mode(SslMode::Require)
        // The SSLRequest was answered above: start TLS on the socket at once.
        .ssl_negotiation(SslNegotiation::Direct)
        .channel_binding(match target.channel_binding {
            ChannelBinding::Disable => PgChannelBinding::Disable,
            ChannelBinding::Prefer => PgChannelBinding::Prefer,
            ChannelBinding::Require => PgChannelBinding::Require,
        });
    if let Some(password) = &target.password {
        pg.password(password.0.as_bytes());
    }
    let Ok(tls) = <MakeRustlsConnect as MakeTlsConnect<TcpStream>>::make_tls_connect(
        &mut MakeRustlsConnect::new(config),
        &tls::connector_name(&target.host),
    );
    let (client, connection) = pg
        .connect_raw(stream, tls)
        .await
        .map_err(|e| connect_failure(&e, recorder))?;
    let connection = tokio::spawn(async move {
        // The session ends when the client is dropped; its outcome is not a finding.
        let _ = connection.await;
    });
    Ok((client, connection))
}

/// Names what went wrong during TLS or login.
fn connect_failure(e: &tokio_postgres::Error, recorder: &Recorder) -> SessionFailure {
    if let Some(Err(problem)) = recorder.facts().libpq {
        return SessionFailure::Certificate { problem };
    }
    if let Some(db) = e.as_db_error() {
        return SessionFailure::Login {
            sqlstate: Some(db.code().code().to_string()),
            detail: db.message().to_string(),
        };
    }
    let detail = error_text(e);
    if recorder.progress() < HandshakeProgress::Verified {
        SessionFailure::Tls { detail }
    } else {
        SessionFailure::Login {
            sqlstate: None,
            detail,
        }
    }
}

fn timed_out(stage: &Cell<Stage>, recorder: &Recorder, start: Instant) -> SessionFailure {
    let mut stage = stage.get();
    if stage == Stage::TlsHandshake && recorder.progress() == HandshakeProgress::Verified {
        stage = Stage::Authentication;
    }
    SessionFailure::Timeout {
        stage,
        after_ms: elapsed_ms(start),
    }
}

/// The error and its causes, without repeating a cause already in the text.
fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = cause.source();
    }
    text
}

fn read_stat_ssl(
    messages: &[SimpleQueryMessage],
    facts: &mut SessionFacts,
) -> Result<(), SessionFailure> {
    let row = messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .ok_or_else(|| SessionFailure::Query {
            sqlstate: None,
            detail: "pg_stat_ssl has no row for this backend".into(),
        })?;
    let columns = row
        .columns()
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name(), row.get(i)));
    let (version, stat) = parse_stat_ssl(columns);
    facts.server_version_num = version;
    facts.pg_stat_ssl = Some(stat);
    Ok(())
}

/// Reads the row by column name, whatever this version's column set.
fn parse_stat_ssl<'a>(
    columns: impl Iterator<Item = (&'a str, Option<&'a str>)>,
) -> (Option<i32>, PgStatSsl) {
    let mut version = None;
    let mut stat = PgStatSsl::default();
    for (name, value) in columns {
        let text = value.map(str::to_string);
        match name {
            "server_version_num" => version = value.and_then(|v| v.parse().ok()),
            "ssl" => stat.ssl = value == Some("t"),
            "version" => stat.version = text,
            "cipher" => stat.cipher = text,
            "bits" => stat.bits = value.and_then(|b| b.parse().ok()),
            "client_dn" | "clientdn" => stat.client_dn = text,
            "client_serial" => stat.client_serial = text,
            "issuer_dn" => stat.issuer_dn = text,
            _ => {}
        }
    }
    (version, stat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg15_row_keeps_a_long_serial_exactly() {
        let row = [
            ("server_version_num", Some("150018")),
            ("pid", Some("7")),
            ("ssl", Some("t")),
            ("version", Some("TLSv1.3")),
            ("cipher", Some("TLS_AES_256_GCM_SHA384")),
            ("bits", Some("256")),
            ("client_dn", Some("/CN=probe")),
            (
                "client_serial",
                Some("1234567890123456789012345678901234567890"),
            ),
            ("issuer_dn", Some("/CN=CA")),
        ];
        let (version, got) = parse_stat_ssl(row.into_iter());
        assert_eq!(version, Some(150018));
        assert!(got.ssl);
        assert_eq!(got.version.as_deref(), Some("TLSv1.3"));
        assert_eq!(got.bits, Some(256));
        assert_eq!(got.client_dn.as_deref(), Some("/CN=probe"));
        assert_eq!(
            got.client_serial.as_deref(),
            Some("1234567890123456789012345678901234567890")
        );
    }

    #[test]
    fn pre_12_clientdn_and_nulls() {
        let row = [
            ("pid", Some("7")),
            ("ssl", Some("f")),
            ("version", None),
            ("cipher", None),
            ("bits", None),
            ("compression", Some("f")),
            ("clientdn", None),
        ];
        let (version, got) = parse_stat_ssl(row.into_iter());
        assert_eq!(version, None);
        assert!(!got.ssl);
        assert_eq!(got.version, None);
        assert_eq!(got.client_dn, None);
        assert_eq!(got.bits, None);
    }
}
