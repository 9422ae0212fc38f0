//! The verify-full session: SSLRequest, TLS by libpq's rules, login, and
//! the server's own view of the connection from `pg_stat_ssl`.
//!
//! The SSLRequest is sent here rather than by tokio-postgres so that the
//! server's one-byte answer is read exactly (no buffer stuffing, no
//! unauthenticated error text shown) and the failing stage can be named.
//! With `sslnegotiation=direct` there is no SSLRequest: TLS starts at once.
//! Either way the handshake is ours (handshake.rs, for the ALPN check) and
//! tokio-postgres logs in over the established session.

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::config::{
    ChannelBinding as PgChannelBinding, SslMode, SslNegotiation as PgSslNegotiation,
};
use tokio_postgres::SimpleQueryMessage;

use super::handshake::{self, AlreadyEstablished, Established};
use super::{budget_with, connect_any, elapsed_ms, plaintext::hex_prefix, Plan};
use crate::facts::{DirectTlsFacts, PgStatSsl, SessionFacts, SessionFailure, Stage};
use crate::conn::{ChannelBinding, SslNegotiation};
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
    let mut direct_tls = None;
    let login_limit = budget_with(target.connect_timeout, budget);
    let result = async {
        let (client, connection) = tokio::time::timeout(
            login_limit,
            login(plan, addrs, config, &recorder, &stage, &mut direct_tls),
        )
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
                detail: handshake::error_chain(&e),
            })?;
        let read = read_stat_ssl(&rows, &mut facts);
        // Only a verified, logged-in session reaches this point.
        if plan.audit && read.is_ok() {
            let rest = budget.saturating_sub(start.elapsed());
            facts.audit =
                Some(Box::pin(super::audit::probe(&client, facts.server_version_num, rest)).await);
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
    facts.direct_tls = direct_tls;
    facts
}

/// TCP connect, SSLRequest (unless direct), TLS handshake and authentication.
async fn login(
    plan: &Plan,
    addrs: &[SocketAddr],
    config: rustls::ClientConfig,
    recorder: &Recorder,
    stage: &Cell<Stage>,
    direct_tls: &mut Option<DirectTlsFacts>,
) -> Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), SessionFailure> {
    let target = &plan.target;
    let mut stream = connect_any(addrs)
        .await
        .map_err(|detail| SessionFailure::Connect { detail })?;

    if target.sslnegotiation == SslNegotiation::Postgres {
        stage.set(Stage::SslRequest);
        ssl_request(&mut stream).await?;
    }

    stage.set(Stage::TlsHandshake);
    let negotiated = handshake::connect(
        config,
        &target.host,
        stream,
        target.sslnegotiation,
        recorder,
    )
    .await;
    if target.sslnegotiation == SslNegotiation::Direct {
        *direct_tls = Some(super::direct::judge(negotiated.as_ref().err(), recorder));
    }
    let session = negotiated.map_err(|e| match recorder.facts().libpq {
        Some(Err(problem)) => SessionFailure::Certificate { problem },
        _ => SessionFailure::Tls {
            detail: e.describe(target.sslnegotiation),
        },
    })?;
    let mut pg = tokio_postgres::Config::new();
    pg.host(&target.host)
        .port(target.port)
        .user(&target.user)
        .dbname(&target.dbname)
        .application_name(&target.application_name)
        .ssl_mode(SslMode::Require)
        // TLS is already up (see handshake.rs): tokio-postgres sends no SSLRequest.
        .ssl_negotiation(PgSslNegotiation::Direct)
        .channel_binding(match target.channel_binding {
            ChannelBinding::Disable => PgChannelBinding::Disable,
            ChannelBinding::Prefer => PgChannelBinding::Prefer,
            ChannelBinding::Require => PgChannelBinding::Require,
        });
    if let Some(password) = &target.password {
        pg.password(password.0.as_bytes());
    }
    let (client, connection) = pg
        .connect_raw(Established(session), AlreadyEstablished)
        .await
        .map_err(|e| connect_failure(&e))?;
    let connection = tokio::spawn(async move {
        // The session ends when the client is dropped; its outcome is not a finding.
        let _ = connection.await;
    });
    Ok((client, connection))
}

/// Sends the SSLRequest and reads the answer: 'S' lets TLS start. Also
/// the scan's way in, so both read the answer the same careful way.
pub(super) async fn ssl_request(stream: &mut TcpStream) -> Result<(), SessionFailure> {
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
        b'S' => Ok(()),
        b'N' => Err(SessionFailure::TlsRefused),
        // An error here is unauthenticated text; it is not shown (CVE-2024-10977).
        b'E' => Err(SessionFailure::Tls {
            detail: "server answered the SSLRequest with an error instead of 'S' or 'N'".into(),
        }),
        _ => Err(SessionFailure::NotPostgres {
            detail: format!(
                "reply to SSLRequest was {}, not 'S' or 'N'",
                hex_prefix(&answer)
            ),
        }),
    }
}

/// Names what went wrong during login. TLS is already up here, so an error
/// without SQLSTATE is the server ending the session (e.g. a TLS 1.3 alert
/// refusing the client certificate, which arrives after the handshake).
fn connect_failure(e: &tokio_postgres::Error) -> SessionFailure {
    match e.as_db_error() {
        Some(db) => SessionFailure::Login {
            sqlstate: Some(db.code().code().to_string()),
            detail: db.message().to_string(),
        },
        None => SessionFailure::Login {
            sqlstate: None,
            detail: handshake::error_chain(e),
        },
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
