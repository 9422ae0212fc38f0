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
//! repeat it: `run_all` takes the session's own handshake instead.
//!
//! It waits for the session's login: a server whose `server_version` is
//! older than 17 cannot speak direct TLS, and is not asked.
//!
//! The answer is information, so it may not hold up the run: once the
//! other checks are done, it gets as long again as they took (at least
//! [`MIN_GRACE`]) and is "undecided" after that. A server that answers a
//! ClientHello more slowly than a whole login is odd anyway; one that never
//! answers (instead of closing, as PostgreSQL 16 and older do) would
//! otherwise stretch every run to the deadline.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::handshake;
use super::{connect_any, ProbeCtx};
use crate::conn::SslNegotiation;
use crate::facts::{DirectTlsFacts, InternalError};
use crate::tls;

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
    ctx: &ProbeCtx<'_>,
    main: impl Future<Output = T>,
) -> (T, DirectTlsFacts) {
    let start = Instant::now();
    let answer = Mutex::new(None);
    // Boxed like the scan: a handshake future is large.
    let direct = Box::pin(probe(ctx, &answer));
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
        let until = ctx.deadline.min(Instant::now() + grace);
        let _ = tokio::time::timeout_at(until.into(), &mut direct).await;
    }
    let decided = answer.lock().ok().and_then(|mut a| a.take());
    let facts = decided.unwrap_or(DirectTlsFacts::NoAnswerInGrace {
        grace_ms: u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
    });
    (out, facts)
}

/// Records the answer in `answer` as soon as it is known, then closes the
/// connection: a caller that stops waiting during the close keeps it.
async fn probe(ctx: &ProbeCtx<'_>, answer: &Mutex<Option<DirectTlsFacts>>) {
    let set = |facts| {
        if let Ok(mut slot) = answer.lock() {
            *slot = Some(facts);
        }
    };
    // A server that said it is older than 17 cannot speak direct TLS:
    // asking would only cost it a log line ("invalid length of startup
    // packet") per run. Waits for the session's login.
    if let Some(major) = ctx.early.server_major().await.filter(|m| *m < 17) {
        return set(DirectTlsFacts::TooOld { major });
    }
    let endpoint = ctx.endpoint;
    let target = &endpoint.target;
    // No client identity: nothing but the handshake is wanted from the server.
    let (config, recorder) = match tls::client_config(
        &endpoint.trust,
        None,
        target.sslmode,
        &target.host,
        target.tls_range.max,
    ) {
        Ok(built) => built,
        Err(e) => return set(DirectTlsFacts::Internal(InternalError::TlsConfig(e))),
    };
    let attempt = async {
        let stream = connect_any(&ctx.addrs)
            .await
            .map_err(DirectTlsFacts::Unreachable)?;
        Ok::<_, DirectTlsFacts>(
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
    let facts = match ctx.within_attempt(attempt).await {
        None => DirectTlsFacts::Timeout {
            after_ms: ctx.elapsed_ms(),
        },
        Some(Err(facts)) => facts,
        Some(Ok(Err(failure))) => DirectTlsFacts::Failed {
            failure,
            progress: recorder.progress(),
            certificate_rejected: matches!(recorder.facts().libpq, Some(Err(_))),
        },
        Some(Ok(Ok(mut session))) => {
            set(DirectTlsFacts::Negotiated);
            let until = ctx.deadline.min(Instant::now() + CLOSE_WAIT);
            let _ = tokio::time::timeout_at(until.into(), close(&mut session)).await;
            return;
        }
    };
    set(facts);
}

/// close_notify, then read until the server closes too: dropping a socket
/// with unread data would reset the connection, which the server logs.
async fn close(session: &mut TlsStream<TcpStream>) {
    if session.shutdown().await.is_ok() {
        super::read_until_closed(session, CLOSE_READ_CAP).await;
    }
}
