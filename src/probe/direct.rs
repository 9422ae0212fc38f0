//! Does the server speak PostgreSQL 17's direct TLS? One connection that
//! starts with a ClientHello offering ALPN `postgresql`, as libpq does with
//! `sslnegotiation=direct`.
//!
//! Nothing is sent after the handshake: no StartupMessage, no credential,
//! and no client certificate. The session then ends with close_notify and
//! the server's own close is awaited, so PostgreSQL logs nothing worse than
//! the connection itself. The certificate is checked by the same libpq
//! rules as the main session (only to decide whether the handshake may
//! complete; the verdict on it belongs to the main session).
//!
//! When the main session itself negotiates directly, this connection would
//! repeat it: `run_all` takes the session's answer instead (see [`judge`]).
//!
//! The answer is information, so it may not hold up the run: once the
//! other checks are done, it gets as long again as they took (at least
//! [`MIN_GRACE`]) and is "undecided" after that. A server that answers a
//! ClientHello more slowly than a whole login is odd anyway; one that never
//! answers (instead of closing, as PostgreSQL 16 and older do) would
//! otherwise stretch every run to the deadline.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::handshake::{self, HandshakeError};
use super::{budget_with, connect_any, Plan};
use crate::facts::DirectTlsFacts;
use crate::conn::SslNegotiation;
use crate::tls::{self, HandshakeProgress, Recorder};

/// Longest wait for the server to close after our close_notify: the answer
/// is already known, so a peer that lingers must not hold up the run.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Bytes read while waiting for that close (a server sends at most a few
/// records here); beyond this the socket is simply dropped.
const CLOSE_READ_CAP: usize = 16 * 1024;

/// The least time the answer gets after the other checks are done.
const MIN_GRACE: Duration = Duration::from_millis(100);

/// Runs `main` (the other checks) and the direct-TLS probe side by side;
/// the probe's answer waits for `main`, never the other way round (beyond
/// the grace described above).
pub async fn alongside<T>(
    plan: &Plan,
    addrs: &[SocketAddr],
    budget: Duration,
    main: impl Future<Output = T>,
) -> (T, DirectTlsFacts) {
    let start = Instant::now();
    let answer = Cell::new(None);
    // Boxed like the scan: a handshake future is large.
    let direct = Box::pin(probe(plan, addrs, budget, &answer));
    tokio::pin!(main, direct);
    let mut direct_done = false;
    let out = loop {
        tokio::select! {
            () = &mut direct, if !direct_done => direct_done = true,
            out = &mut main => break out,
        }
    };
    let grace = start.elapsed().max(MIN_GRACE);
    if !direct_done {
        // Also lets a decided probe finish closing its connection cleanly.
        let _ = tokio::time::timeout(grace, &mut direct).await;
    }
    let facts = answer.take().unwrap_or_else(|| {
        undecided(format!(
            "no answer to a direct TLS ClientHello within {} ms of the other checks finishing",
            grace.as_millis()
        ))
    });
    (out, facts)
}

/// Records the answer in `answer` as soon as it is known, then closes the
/// connection: a caller that stops waiting during the close keeps it.
async fn probe(
    plan: &Plan,
    addrs: &[SocketAddr],
    budget: Duration,
    answer: &Cell<Option<DirectTlsFacts>>,
) {
    let start = Instant::now();
    let target = &plan.target;
    // No client identity: nothing but the handshake is wanted from the server.
    let (config, recorder) =
        match tls::client_config(&plan.trust, None, target.sslmode, &target.host) {
            Ok(built) => built,
            Err(e) => return answer.set(Some(undecided(format!("cannot configure TLS: {e}")))),
        };
    let limit = budget_with(target.connect_timeout, budget);
    let attempt = async {
        let stream = connect_any(addrs).await?;
        Ok::<_, String>(
            handshake::connect(
                config,
                &target.host,
                stream,
                SslNegotiation::Direct,
                &recorder,
            )
            .await,
        )
    };
    let facts = match tokio::time::timeout(limit, attempt).await {
        Err(_) => undecided(format!(
            "no answer to a direct TLS ClientHello within {:.1} s",
            start.elapsed().as_secs_f64()
        )),
        Ok(Err(detail)) => undecided(detail),
        Ok(Ok(Err(e))) => judge(Some(&e), &recorder),
        Ok(Ok(Ok(mut session))) => {
            answer.set(Some(judge(None, &recorder)));
            let wait = CLOSE_WAIT.min(budget.saturating_sub(start.elapsed()));
            let _ = tokio::time::timeout(wait, close(&mut session)).await;
            return;
        }
    };
    answer.set(Some(facts));
}

/// close_notify, then read until the server closes too: dropping a socket
/// with unread data would reset the connection, which the server logs.
async fn close(session: &mut TlsStream<TcpStream>) {
    if session.shutdown().await.is_ok() {
        super::read_until_closed(session, CLOSE_READ_CAP).await;
    }
}

/// What a direct handshake's outcome says about support; shared with the
/// main session when it negotiates directly.
pub fn judge(error: Option<&HandshakeError>, recorder: &Recorder) -> DirectTlsFacts {
    let (supported, detail) = match error {
        None => (
            Some(true),
            "TLS at once, ALPN \"postgresql\" negotiated".to_string(),
        ),
        Some(HandshakeError::ClosedBeforeReply(_)) => (
            Some(false),
            "server closed the connection in reply to a direct TLS ClientHello \
             (PostgreSQL 16 or older, or TLS off)"
                .to_string(),
        ),
        Some(HandshakeError::NoAlpn) => (
            Some(false),
            "server completed a direct TLS handshake without ALPN \"postgresql\" \
             (not PostgreSQL 17+; libpq refuses it)"
                .to_string(),
        ),
        Some(HandshakeError::Failed(e)) => failed(e, recorder),
    };
    DirectTlsFacts { supported, detail }
}

fn failed(e: &std::io::Error, recorder: &Recorder) -> (Option<bool>, String) {
    if let Some(Err(_)) = recorder.facts().libpq {
        return (
            None,
            "undecided: the server's certificate fails libpq's rules, so the handshake stopped there"
                .to_string(),
        );
    }
    let text = handshake::error_chain(e);
    let rustls_error = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match rustls_error {
        // Bytes that are not a TLS record in reply to a ClientHello: an old
        // server answering with its own protocol, or not PostgreSQL at all.
        Some(
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. },
        ) if recorder.progress() == HandshakeProgress::NotStarted => (
            Some(false),
            format!(
                "server answered a direct TLS ClientHello with something that is not TLS: {text}"
            ),
        ),
        // TLS spoken directly, but not PostgreSQL's protocol.
        Some(rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol)) => (
            Some(false),
            "server answers TLS directly but refused ALPN \"postgresql\" (not PostgreSQL 17+)"
                .to_string(),
        ),
        _ => (
            None,
            format!("undecided: direct TLS handshake failed: {text}"),
        ),
    }
}

/// An answer the probe could not get.
pub fn undecided(detail: String) -> DirectTlsFacts {
    DirectTlsFacts {
        supported: None,
        detail: format!("undecided: {detail}"),
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    fn supported(error: Option<HandshakeError>) -> Option<bool> {
        judge(error.as_ref(), &Recorder::default()).supported
    }

    fn tls_error(e: rustls::Error) -> HandshakeError {
        HandshakeError::Failed(io::Error::new(io::ErrorKind::InvalidData, e))
    }

    #[test]
    fn each_outcome_decides_or_not() {
        assert_eq!(supported(None), Some(true));
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(
            supported(Some(HandshakeError::ClosedBeforeReply(eof))),
            Some(false)
        );
        assert_eq!(supported(Some(HandshakeError::NoAlpn)), Some(false));
        // Not TLS at all in reply to the ClientHello.
        let garbage = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        assert_eq!(supported(Some(tls_error(garbage))), Some(false));
        let other_protocol =
            rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol);
        assert_eq!(supported(Some(tls_error(other_protocol))), Some(false));
        // TLS, but refused for a reason that says nothing about support.
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        assert_eq!(supported(Some(tls_error(alert))), None);
        let reset = io::Error::from(io::ErrorKind::ConnectionRefused);
        let facts = judge(Some(&HandshakeError::Failed(reset)), &Recorder::default());
        assert_eq!(facts.supported, None);
        assert!(facts.detail.starts_with("undecided: "), "{}", facts.detail);
    }
}
