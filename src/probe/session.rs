//! The verify-full session: SSLRequest, TLS by libpq's rules, login, and
//! the server's own view of the connection from `pg_stat_ssl`.
//!
//! The SSLRequest is sent here rather than by tokio-postgres so that the
//! server's one-byte answer is read exactly (no buffer stuffing, no
//! unauthenticated error text shown) and the failing stage can be named.
//! With `sslnegotiation=direct` there is no SSLRequest: TLS starts at once.
//! Either way the handshake is ours (handshake.rs, for the ALPN check) and
//! tokio-postgres logs in over the established session.
//!
//! Connect through login is one attempt, bounded by the attempt deadline
//! (libpq's connect_timeout); each step that runs out names its stage. The
//! query and the audit after it are bounded by the run's deadline.

use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_postgres::config::{
    ChannelBinding as PgChannelBinding, SslMode, SslNegotiation as PgSslNegotiation,
};
use tokio_postgres::SimpleQueryMessage;

use super::handshake::{self, AlreadyEstablished, Established};
use super::{connect_any, wire, EarlyGuard, ProbeCtx};
use crate::conn::{ChannelBinding, SslCertMode, SslNegotiation, TargetSessionAttrs};
use crate::facts::{
    BackendClient, ClientCertExchange, DirectTlsFacts, HandshakeProgress, InternalError, IoFailure,
    KeywordRefusal, Negotiated, PgStatSsl, SessionFacts, SessionFailure, SslRequestFailure, Stage,
    TlsVersion,
};
use crate::tls::{self, Recorder};

/// One round trip, whatever the server version: `s.*` carries exactly the
/// columns this version's pg_stat_ssl has (clientdn before 12, compression
/// before 14), read by name; the simple protocol returns them as text, so a
/// 20-byte client_serial stays exact. Our own row is always visible.
/// The backend's own idea of its client (address and port, NULL over a
/// Unix socket) comes along: when it is not the probe's end of the
/// connection, a pooler or proxy sits in between and the row describes
/// that link, not the probe's.
const STAT_SSL_QUERY: &str = "SELECT current_setting('server_version_num') AS server_version_num, \
     host(inet_client_addr()) AS backend_client_addr, \
     inet_client_port() AS backend_client_port, s.* \
     FROM pg_stat_ssl s WHERE pid = pg_backend_pid()";

/// Pgpool-II answers this itself; PostgreSQL would not know it.
const POOL_VERSION_QUERY: &str = "SHOW pool_version";

type Login = (tokio_postgres::Client, tokio::task::JoinHandle<()>);

pub async fn probe(ctx: &ProbeCtx<'_>, audit: bool) -> SessionFacts {
    // Whatever happens below, the other probes hear "could not tell" for
    // what was not published.
    let _early = EarlyGuard(&ctx.early);
    let endpoint = ctx.endpoint;
    let target = &endpoint.target;
    let mut facts = SessionFacts::default();
    let (mut config, recorder) = match tls::client_config(
        &endpoint.trust,
        endpoint.identity.as_ref(),
        target.sslmode,
        &target.host,
        target.tls_range.max,
    ) {
        Ok(built) => built,
        Err(e) => {
            facts.failure = Some(SessionFailure::Internal(InternalError::TlsConfig(e)));
            return facts;
        }
    };
    let cert_exchange =
        handshake::watch_client_cert(&mut config, target.sslcertmode != SslCertMode::Disable);
    config.enable_sni = target.sslsni;
    let keylog = target.sslkeylogfile.as_ref().map(|path| {
        let log = Arc::new(KeyLogTo::new(path.clone()));
        config.key_log = log.clone();
        log
    });
    let tap = wire::Recorder::default();
    let result = async {
        let (client, connection) =
            login(ctx, config, &recorder, &tap, &cert_exchange, &mut facts).await?;
        facts.connect_seconds = Some(ctx.started.elapsed().as_secs_f64());
        ctx.early
            .publish_server_major(server_major(&tap.snapshot().parameters));
        // libpq checks target_session_attrs right after login, and drops
        // a session that does not match before the application sees it.
        if let Err(failure) = ctx
            .within_run(session_attrs(&client, &tap, target.target_session_attrs))
            .await
            .unwrap_or_else(|| Err(timed_out(ctx, Stage::Query)))
        {
            drop(client);
            let _ = ctx.within_run(connection).await;
            return Err(failure);
        }
        let rows = ctx
            .within_run(client.simple_query(STAT_SSL_QUERY))
            .await
            .ok_or_else(|| timed_out(ctx, Stage::Query))?
            .map_err(|e| SessionFailure::Query {
                sqlstate: e.code().map(|c| c.code().to_string()),
                detail: handshake::error_chain(&e),
            })?;
        let read = read_stat_ssl(&rows, &mut facts);
        if read.is_ok() && !facts.link_is_ours() {
            // Bounded like the query; an error only means "not Pgpool-II".
            if let Some(Ok(rows)) = ctx
                .within_run(client.simple_query(POOL_VERSION_QUERY))
                .await
            {
                facts.pool_version = rows.iter().find_map(|m| match m {
                    SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
                    _ => None,
                });
            }
        }
        // Only a verified, logged-in session reaches this point.
        if audit && read.is_ok() {
            facts.audit =
                Some(Box::pin(super::audit::probe(ctx, &client, facts.server_version_num)).await);
        }
        // Dropping the client makes the connection send Terminate and
        // close_notify; waiting for that keeps the server's log free of
        // "unexpected EOF" lines and costs no round trip.
        drop(client);
        let _ = ctx.within_run(connection).await;
        read
    }
    .await;
    facts.keylog_failure = keylog.and_then(|log| log.failure());
    facts.wire = tap.snapshot();
    facts.client_cert = *cert_exchange.lock().unwrap_or_else(|p| p.into_inner());
    facts.auth = facts.wire.auth(facts.client_cert);
    // A bound the tap hit, or require_auth's refusal, is why whatever
    // failed failed.
    facts.failure = match (result.err(), facts.wire.overrun, &facts.wire.refused) {
        (Some(_), Some(overrun), _) => Some(SessionFailure::Overrun(overrun)),
        (Some(_), None, Some(refusal)) => {
            Some(SessionFailure::Refused(KeywordRefusal::RequireAuth {
                requirement: target
                    .require_auth
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                refusal: refusal.clone(),
            }))
        }
        (failure, _, _) => failure,
    };
    facts.chain = recorder.facts();
    if super::openssl_hello::applies(&facts, recorder.progress()) {
        super::openssl_hello::diagnose(ctx, &mut facts).await;
    }
    facts
}

fn timed_out(ctx: &ProbeCtx<'_>, stage: Stage) -> SessionFailure {
    SessionFailure::Timeout {
        stage,
        after_ms: ctx.elapsed_ms(),
    }
}

/// One login step, ended by the attempt deadline at the named stage.
async fn step<T>(
    ctx: &ProbeCtx<'_>,
    stage: Stage,
    work: impl Future<Output = T>,
) -> Result<T, SessionFailure> {
    ctx.within_attempt(work)
        .await
        .ok_or_else(|| timed_out(ctx, stage))
}

/// TCP connect, SSLRequest (unless direct), TLS handshake and authentication.
async fn login(
    ctx: &ProbeCtx<'_>,
    config: rustls::ClientConfig,
    recorder: &Recorder,
    tap: &wire::Recorder,
    cert_exchange: &Mutex<ClientCertExchange>,
    facts: &mut SessionFacts,
) -> Result<Login, SessionFailure> {
    let target = ctx.target();
    let mut stream = step(ctx, Stage::TcpConnect, connect_any(&ctx.addrs))
        .await?
        .map_err(SessionFailure::Connect)?;
    facts.local_addr = stream.local_addr().ok();

    if target.sslnegotiation == SslNegotiation::Postgres {
        step(ctx, Stage::SslRequest, ssl_request(&mut stream))
            .await?
            .map_err(SessionFailure::SslRequest)?;
    }

    let handshake = handshake::connect(
        config,
        &target.host,
        stream,
        target.sslnegotiation,
        recorder,
    );
    let negotiated = match ctx.within_attempt(handshake).await {
        Some(negotiated) => negotiated,
        // A server that proved its key and then stalls is past TLS: it is
        // holding up the login (a TLS 1.3 client certificate check, say).
        None if recorder.progress() == HandshakeProgress::Verified => {
            return Err(timed_out(ctx, Stage::Authentication))
        }
        None => return Err(timed_out(ctx, Stage::TlsHandshake)),
    };
    facts.negotiated = negotiated.as_ref().ok().and_then(|tls| {
        let conn = tls.get_ref().1;
        let suite = conn.negotiated_cipher_suite()?.suite();
        Some(Negotiated {
            version: TlsVersion::from_wire(u16::from(conn.protocol_version()?))?,
            suite: u16::from(suite),
            cipher: suite
                .as_str()
                .map_or_else(|| format!("{suite:?}"), str::to_string),
            group: conn.negotiated_key_exchange_group().map(|g| {
                g.name()
                    .as_str()
                    .map_or_else(|| format!("{:?}", g.name()), str::to_string)
            }),
        })
    });
    ctx.early.publish_handshake(facts.negotiated.clone());
    if target.sslnegotiation == SslNegotiation::Direct {
        facts.direct_tls = Some(match &negotiated {
            Ok(_) => DirectTlsFacts::Negotiated,
            Err(failure) => DirectTlsFacts::Failed {
                failure: failure.clone(),
                progress: recorder.progress(),
                certificate_rejected: matches!(recorder.facts().libpq, Some(Err(_))),
            },
        });
    }
    let mut session =
        negotiated.map_err(|failure| match (recorder.facts().libpq, recorder.limit()) {
            (Some(Err(problem)), _) => SessionFailure::Certificate(problem),
            (_, Some(limit)) => SessionFailure::ProbeLimit(limit),
            _ => SessionFailure::Handshake(failure),
        })?;
    if let Some(refusal) = after_handshake(&session, target, cert_exchange) {
        // As libpq: the TLS session ends before any protocol message.
        let _ = step(ctx, Stage::TlsHandshake, session.shutdown()).await;
        return Err(SessionFailure::Refused(refusal));
    }
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
    if let Some(options) = &target.options {
        pg.options(options);
    }
    let stream = Established::new(
        session,
        tap.clone(),
        target.require_auth.clone(),
        target.channel_binding != ChannelBinding::Disable,
    );
    let (client, connection) = step(
        ctx,
        Stage::Authentication,
        pg.connect_raw(stream, AlreadyEstablished),
    )
    .await?
    .map_err(|e| connect_failure(&e))?;
    let connection = tokio::spawn(async move {
        // The session ends when the client is dropped; its outcome is not a finding.
        let _ = connection.await;
    });
    Ok((client, connection))
}

/// libpq's checks once TLS is up and before the first protocol message:
/// the negotiated version against `ssl_min_protocol_version` (rustls
/// offers TLSv1.2 and TLSv1.3 and a server picks the highest it shares,
/// so refusing a lower result here is libpq's verdict), and
/// `sslcertmode=require` against the server's CertificateRequest.
fn after_handshake(
    session: &tokio_rustls::client::TlsStream<TcpStream>,
    target: &crate::conn::Target,
    cert_exchange: &Mutex<ClientCertExchange>,
) -> Option<KeywordRefusal> {
    let negotiated = session
        .get_ref()
        .1
        .protocol_version()
        .and_then(|v| TlsVersion::from_wire(u16::from(v)));
    if let Some(version) = negotiated.filter(|v| *v < target.tls_range.min) {
        return Some(KeywordRefusal::TlsVersion {
            negotiated: version.name().to_string(),
            minimum: target.tls_range.min,
        });
    }
    let requested = cert_exchange
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .requested;
    (target.sslcertmode == SslCertMode::Require && !requested)
        .then_some(KeywordRefusal::CertificateNotRequested)
}

/// `target_session_attrs` as libpq 14+ checks it: from the
/// `default_transaction_read_only` and `in_hot_standby` reports when the
/// server sends them (PostgreSQL 14+), else by asking, as libpq asks.
async fn session_attrs(
    client: &tokio_postgres::Client,
    tap: &wire::Recorder,
    wanted: TargetSessionAttrs,
) -> Result<(), SessionFailure> {
    if wanted == TargetSessionAttrs::Any {
        return Ok(());
    }
    let wire = tap.snapshot();
    let reported = |name: &str| {
        wire.parameters
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v == "on")
    };
    let ask = |sql: &'static str| async move {
        let rows = client
            .simple_query(sql)
            .await
            .map_err(|e| SessionFailure::Query {
                sqlstate: e.code().map(|c| c.code().to_string()),
                detail: handshake::error_chain(&e),
            })?;
        Ok::<bool, SessionFailure>(rows.iter().any(|m| match m {
            SimpleQueryMessage::Row(row) => matches!(row.get(0), Some("on" | "t")),
            _ => false,
        }))
    };
    let hot_standby = reported("in_hot_standby");
    let (read_only, hot_standby) = match wanted {
        TargetSessionAttrs::ReadWrite | TargetSessionAttrs::ReadOnly => {
            match (reported("default_transaction_read_only"), hot_standby) {
                (Some(ro), Some(hs)) => (ro, hs),
                // In hot standby transaction_read_only is on too.
                _ => (ask("SHOW transaction_read_only").await?, false),
            }
        }
        _ => match hot_standby {
            Some(hs) => (false, hs),
            None => (false, ask("SELECT pg_catalog.pg_is_in_recovery()").await?),
        },
    };
    match wanted.refusal(read_only, hot_standby) {
        Some(reason) => Err(SessionFailure::Refused(KeywordRefusal::SessionAttrs {
            wanted,
            reason,
        })),
        None => Ok(()),
    }
}

/// `sslkeylogfile` (libpq 18): the session's TLS secrets appended to a
/// file in the NSS key log format, created 0600, for decrypting a capture.
/// As in libpq, a file that cannot be written does not stop the check;
/// the failure is reported.
#[derive(Debug)]
struct KeyLogTo {
    path: std::path::PathBuf,
    failure: Mutex<Option<IoFailure>>,
}

impl KeyLogTo {
    fn new(path: std::path::PathBuf) -> KeyLogTo {
        KeyLogTo {
            path,
            failure: Mutex::new(None),
        }
    }

    fn failure(&self) -> Option<(std::path::PathBuf, IoFailure)> {
        let failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        failure.clone().map(|f| (self.path.clone(), f))
    }
}

impl rustls::KeyLog for KeyLogTo {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let line = format!(
            "{label} {} {}\n",
            crate::hex::lower(client_random, ""),
            crate::hex::lower(secret, "")
        );
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            failure.get_or_insert_with(|| (&e).into());
        }
    }
}

/// Sends the SSLRequest and reads the answer: 'S' lets TLS start. Also
/// the scan's way in, so both read the answer the same careful way.
pub(super) async fn ssl_request(stream: &mut TcpStream) -> Result<(), SslRequestFailure> {
    let mut buf = BytesMut::new();
    frontend::ssl_request(&mut buf);
    stream
        .write_all(&buf)
        .await
        .map_err(|e| SslRequestFailure::Send((&e).into()))?;
    // Exactly one byte: anything the server sent after it must not be read
    // as if it came over TLS (CVE-2021-23222).
    let mut answer = [0u8; 1];
    match stream.read(&mut answer).await {
        Ok(0) => Err(SslRequestFailure::Closed),
        Ok(_) => ssl_answer(answer[0]),
        Err(e) => Err(SslRequestFailure::Read((&e).into())),
    }
}

/// The major version in the server's `server_version` ParameterStatus
/// ("15.18 (Debian ...)" is 15, "9.6.24" is 9).
fn server_major(parameters: &[(String, String)]) -> Option<u32> {
    let (_, version) = parameters
        .iter()
        .find(|(name, _)| name == "server_version")?;
    let digits: String = version.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The SSLRequest's one-byte answer.
pub fn ssl_answer(byte: u8) -> Result<(), SslRequestFailure> {
    match byte {
        b'S' => Ok(()),
        b'N' => Err(SslRequestFailure::Refused),
        // An error here is unauthenticated text; it is not shown (CVE-2024-10977).
        b'E' => Err(SslRequestFailure::Error),
        other => Err(SslRequestFailure::Unexpected(other)),
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
    let (version, stat) = parse_stat_ssl(columns.clone());
    facts.server_version_num = version;
    facts.pg_stat_ssl = Some(stat);
    let value = |name: &str| {
        columns
            .clone()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v)
    };
    facts.backend_client = Some(BackendClient {
        addr: value("backend_client_addr").and_then(|a| a.parse().ok()),
        port: value("backend_client_port").and_then(|p| p.parse().ok()),
    });
    Ok(())
}

/// Reads the row by column name, whatever this version's column set.
pub fn parse_stat_ssl<'a>(
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

    #[test]
    fn server_major_comes_from_parameter_status() {
        let p = |v: &str| vec![("server_version".to_string(), v.to_string())];
        assert_eq!(server_major(&p("15.18 (Debian 15.18-0+deb12u1)")), Some(15));
        assert_eq!(server_major(&p("9.6.24")), Some(9));
        assert_eq!(server_major(&p("18beta1")), Some(18));
        assert_eq!(server_major(&p("x")), None);
        assert_eq!(server_major(&[]), None);
    }

    #[test]
    fn the_ssl_answer_is_one_byte() {
        assert_eq!(ssl_answer(b'S'), Ok(()));
        assert_eq!(ssl_answer(b'N'), Err(SslRequestFailure::Refused));
        assert_eq!(ssl_answer(b'E'), Err(SslRequestFailure::Error));
        assert_eq!(ssl_answer(b'H'), Err(SslRequestFailure::Unexpected(b'H')));
    }
}
