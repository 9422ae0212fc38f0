//! Does the server refuse a connection that never asks for TLS?
//!
//! Sends a StartupMessage with no SSLRequest and classifies the first
//! meaningful reply. Nothing is ever written after the StartupMessage, so no
//! credential, hash or SCRAM message can cross the wire in the clear,
//! whatever the server asks for.

use bytes::{Buf, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{connect_any, ProbeCtx};
use crate::facts::{AuthRequest, BadReply, PlaintextFacts, PlaintextOutcome, Stage};

/// Largest first reply we are willing to buffer; real ones are a few hundred bytes.
const MAX_REPLY: usize = 64 * 1024;

/// Runs the check within the attempt deadline; never fails, the outcome
/// says what happened.
pub async fn probe(ctx: &ProbeCtx<'_>) -> PlaintextFacts {
    let timeout = |stage| PlaintextOutcome::Timeout {
        stage,
        after_ms: ctx.elapsed_ms(),
    };
    let outcome = match ctx.within_attempt(connect_any(&ctx.addrs)).await {
        None => timeout(Stage::TcpConnect),
        Some(Err(failure)) => PlaintextOutcome::Unreachable(failure),
        Some(Ok(mut stream)) => ctx
            .within_attempt(exchange(ctx, &mut stream))
            .await
            .unwrap_or_else(|| timeout(Stage::Authentication)),
    };
    PlaintextFacts {
        outcome,
        seconds: ctx.started.elapsed().as_secs_f64(),
    }
}

/// One StartupMessage out, the first reply in, then goodbye.
async fn exchange(ctx: &ProbeCtx<'_>, stream: &mut TcpStream) -> PlaintextOutcome {
    let target = ctx.target();
    let mut buf = BytesMut::new();
    let params = [
        ("user", target.user.as_str()),
        ("database", target.dbname.as_str()),
        ("application_name", target.application_name.as_str()),
    ];
    if let Err(e) = frontend::startup_message(params, &mut buf) {
        return PlaintextOutcome::Broken {
            during: "encoding the startup message",
            error: (&e).into(),
        };
    }
    if let Err(e) = stream.write_all(&buf).await {
        return PlaintextOutcome::Broken {
            during: "sending startup message",
            error: (&e).into(),
        };
    }
    let outcome = read_first_reply(stream).await;
    // Best effort: the server only learns we are gone; nothing else is sent.
    let _ = stream.shutdown().await;
    outcome
}

async fn read_first_reply(stream: &mut TcpStream) -> PlaintextOutcome {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        match classify(&mut buf) {
            Ok(Some(outcome)) => return outcome,
            Ok(None) => {}
            Err(bad) => return PlaintextOutcome::NotPostgres(bad),
        }
        if buf.len() >= MAX_REPLY {
            return PlaintextOutcome::NotPostgres(BadReply::TooLong(MAX_REPLY));
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) if buf.is_empty() => return PlaintextOutcome::Closed,
            Ok(0) => return PlaintextOutcome::NotPostgres(BadReply::ClosedAfter(buf.len())),
            Ok(_) => {}
            Err(e) => {
                return PlaintextOutcome::Broken {
                    during: "reading reply",
                    error: (&e).into(),
                }
            }
        }
    }
}

/// Looks at the buffered bytes: Ok(None) means "read more".
///
/// Each message's tag and length are checked before waiting for its body, so
/// a peer that is not PostgreSQL (an HTTP server answers 'H', then "TTP/"
/// reads as a 1.4 GB length) is recognised at once rather than waited on.
pub fn classify(buf: &mut BytesMut) -> Result<Option<PlaintextOutcome>, BadReply> {
    loop {
        if buf.len() < 5 {
            return Ok(None);
        }
        let tag = buf[0];
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if !matches!(tag, b'R' | b'E' | b'N' | b'v') || !(4..=MAX_REPLY).contains(&len) {
            return Err(BadReply::Unexpected(
                buf[..buf.len().min(crate::hex::PEEK)].to_vec(),
            ));
        }
        if buf.len() < len + 1 {
            return Ok(None);
        }
        if tag == b'v' {
            // NegotiateProtocolVersion: informational, the real answer follows.
            buf.advance(len + 1);
            continue;
        }
        let message = Message::parse(buf)
            .map_err(|e| BadReply::Malformed(e.to_string()))?
            .ok_or(BadReply::Truncated)?;
        return Ok(match message {
            Message::NoticeResponse(_) => continue,
            Message::ErrorResponse(body) => Some(error_outcome(body.fields())?),
            Message::AuthenticationOk => Some(PlaintextOutcome::AuthOk),
            Message::AuthenticationSasl(body) => {
                let mechanisms = body
                    .mechanisms()
                    .map(|m| Ok(m.to_string()))
                    .collect::<Vec<_>>()
                    .map_err(|e| BadReply::MalformedSasl(e.to_string()))?;
                Some(PlaintextOutcome::AuthRequested {
                    method: AuthRequest::Sasl,
                    mechanisms,
                })
            }
            other => Some(PlaintextOutcome::AuthRequested {
                method: auth_method(&other),
                mechanisms: Vec::new(),
            }),
        });
    }
}

fn auth_method(message: &Message) -> AuthRequest {
    match message {
        Message::AuthenticationCleartextPassword => AuthRequest::CleartextPassword,
        Message::AuthenticationMd5Password(_) => AuthRequest::Md5Password,
        Message::AuthenticationGss | Message::AuthenticationGssContinue(_) => AuthRequest::Gss,
        Message::AuthenticationSspi => AuthRequest::Sspi,
        Message::AuthenticationKerberosV5 => AuthRequest::Kerberos,
        _ => AuthRequest::Other,
    }
}

fn error_outcome(
    mut fields: postgres_protocol::message::backend::ErrorFields<'_>,
) -> Result<PlaintextOutcome, BadReply> {
    let (mut sqlstate, mut severity, mut message) = (String::new(), String::new(), String::new());
    while let Some(field) = fields
        .next()
        .map_err(|e| BadReply::MalformedError(e.to_string()))?
    {
        let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
        match field.type_() {
            b'C' => sqlstate = value,
            // 'V' is the untranslated severity; prefer it over the localized 'S'.
            b'V' => severity = value,
            b'S' if severity.is_empty() => severity = value,
            b'M' => message = value,
            _ => {}
        }
    }
    Ok(PlaintextOutcome::Error {
        sqlstate,
        severity,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(bytes: &[u8]) -> Result<Option<PlaintextOutcome>, BadReply> {
        classify(&mut BytesMut::from(bytes))
    }

    #[test]
    fn http_reply_is_not_postgres_without_waiting_for_more() {
        let err = outcome(b"HTTP/1.1 400 Bad Request\r\n").unwrap_err();
        assert!(err.to_string().contains("HTTP/1.1"), "{err}");
    }

    #[test]
    fn partial_message_asks_for_more() {
        assert_eq!(outcome(b"R\0\0\0\x08\0\0").unwrap(), None);
    }

    #[test]
    fn cleartext_request_is_classified() {
        let got = outcome(b"R\0\0\0\x08\0\0\0\x03").unwrap();
        assert_eq!(
            got,
            Some(PlaintextOutcome::AuthRequested {
                method: AuthRequest::CleartextPassword,
                mechanisms: vec![]
            })
        );
    }

    #[test]
    fn sasl_mechanisms_are_listed() {
        let body = b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0";
        let mut msg = vec![b'R'];
        msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        msg.extend_from_slice(body);
        match outcome(&msg).unwrap() {
            Some(PlaintextOutcome::AuthRequested { method, mechanisms }) => {
                assert_eq!(method, AuthRequest::Sasl);
                assert_eq!(mechanisms, vec!["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_response_keeps_sqlstate_and_untranslated_severity() {
        let body = b"SFATAL\0VFATAL\0C28000\0Mno pg_hba.conf entry\0\0";
        let mut msg = vec![b'E'];
        msg.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        msg.extend_from_slice(body);
        assert_eq!(
            outcome(&msg).unwrap(),
            Some(PlaintextOutcome::Error {
                sqlstate: "28000".into(),
                severity: "FATAL".into(),
                message: "no pg_hba.conf entry".into()
            })
        );
    }

    #[test]
    fn negotiate_protocol_version_is_skipped() {
        let mut msg = b"v\0\0\0\x0c\0\0\0\0\0\0\0\0".to_vec();
        msg.extend_from_slice(b"R\0\0\0\x08\0\0\0\0");
        assert_eq!(outcome(&msg).unwrap(), Some(PlaintextOutcome::AuthOk));
    }

    #[test]
    fn absurd_length_is_rejected() {
        assert!(outcome(b"E\x7f\xff\xff\xff").is_err());
    }
}
