//! Which protocol versions (and, with `--scan full`, which weak cipher
//! classes) the server accepts, without OpenSSL.
//!
//! Every attempt is its own TCP connection: SSLRequest, 'S', then one
//! handshake (with `sslnegotiation=direct`, the handshake at once, offering
//! ALPN `postgresql` from TLS 1.0 up; an SSLv3 hello has no extensions).
//! Nothing but handshake messages and closing alerts is ever sent: no
//! StartupMessage, no credential.
//!
//! Each connection is a backend fork and log lines on someone's production
//! server, so the scan asks only what it cannot prove otherwise:
//! - **SSLv3, TLS 1.0, 1.1**: one hand-built ClientHello ([`hello`])
//!   offering every version up to TLS 1.1. OpenSSL accepts one range of
//!   versions and answers with the highest it shares, so a refusal refuses
//!   all three, and an answer names the highest accepted; only then are
//!   the versions below it asked, one maximum lower each time.
//! - **TLS 1.2, 1.3**: the verify-full session's own handshake offered both
//!   and negotiated one: that one is accepted, and when it is TLS 1.2, TLS
//!   1.3 is refused (a server that has it must choose it). Only TLS 1.2
//!   under a TLS 1.3 session needs a complete rustls handshake of its own
//!   ([`modern`]); both do when the session's handshake did not complete.
//!
//! The rounds run at the same time as the session, so the scan costs about
//! one handshake of latency after the session's (two with `full`: the
//! cipher classes are offered in the best version the first round found).
//!
//! Every step waits until the attempt deadline at most. Getting an answer
//! and saying goodbye are bounded separately: a goodbye cut short (a peer
//! that never closes) must not turn an answer already read into "no answer".

mod classes;
mod hello;
mod modern;

pub(super) use classes::classify;
pub(super) use hello::Offer;
use hello::Reply;

use std::future::Future;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::handshake::ALPN_POSTGRESQL;
use super::{connect_any, read_until_closed, ProbeCtx};
use crate::conn::SslNegotiation;
use crate::facts::{
    AttemptOutcome, ChannelFailure, CipherAttempt, CipherClass, HangUp, InternalError, Negotiated,
    Negotiation, ProtocolAttempt, Refusal, ScanFacts, ScanLevel, TlsVersion, Undecided,
};

/// How long to wait for the server to close after we said goodbye.
const DRAIN_TIME: Duration = Duration::from_millis(500);
/// Bytes read while waiting for that close (a certificate chain, a ticket).
const DRAIN_BYTES: usize = 256 * 1024;

/// Runs the scan; never fails, each attempt says what happened.
pub async fn probe(ctx: &ProbeCtx<'_>, level: ScanLevel) -> ScanFacts {
    let (legacy, modern) = tokio::join!(legacy_round(ctx), modern_round(ctx));
    let protocols: Vec<ProtocolAttempt> = legacy.into_iter().chain(modern).collect();
    let ciphers = match level {
        ScanLevel::Protocols => None,
        ScanLevel::Full => Some(cipher_round(ctx, &protocols).await),
    };
    ScanFacts {
        level,
        protocols,
        ciphers,
        seconds: ctx.started.elapsed().as_secs_f64(),
    }
}

/// SSLv3, TLS 1.0 and 1.1 from as few hellos as the answers allow: the
/// first offers up to TLS 1.1; a ServerHello makes its version accepted and
/// the ones above it refused, and the ones below it are asked next. Every
/// version gets exactly one outcome.
async fn legacy_round(ctx: &ProbeCtx<'_>) -> Vec<ProtocolAttempt> {
    const LEGACY: [TlsVersion; 3] = [TlsVersion::Ssl3, TlsVersion::Tls10, TlsVersion::Tls11];
    let below = |v: TlsVersion| LEGACY.into_iter().filter(move |l| *l < v);
    let mut found: Vec<ProtocolAttempt> = Vec::with_capacity(3);
    let mut decide = |version, outcome| found.push(ProtocolAttempt { version, outcome });
    let mut max = Some(TlsVersion::Tls11);
    while let Some(offered) = max {
        let answer = match open_tls_channel(ctx).await {
            Ok(stream) => hello_round(ctx, stream, offered, &hello::LEGACY_SUITES).await,
            Err(outcome) => Err(outcome),
        };
        max = match answer {
            Ok((wire, suite)) => match TlsVersion::from_wire(wire).filter(|v| *v <= offered) {
                // The highest version the server shares: those above it
                // are refused, those below it still to be asked.
                Some(chosen) => {
                    for v in LEGACY.into_iter().filter(|l| *l > chosen && *l <= offered) {
                        decide(v, AttemptOutcome::Refused(Refusal::OtherVersion(wire)));
                    }
                    decide(
                        chosen,
                        AttemptOutcome::Accepted {
                            version: chosen,
                            suite,
                        },
                    );
                    below(chosen).max()
                }
                // A version above the one offered says nothing of the
                // ones below it: they are asked one by one.
                None => {
                    decide(
                        offered,
                        AttemptOutcome::Refused(Refusal::OtherVersion(wire)),
                    );
                    below(offered).max()
                }
            },
            Err(AttemptOutcome::Refused(refusal)) => {
                for v in below(offered) {
                    let refusal = Box::new(refusal.clone());
                    let max = offered;
                    decide(v, AttemptOutcome::Refused(Refusal::Range { max, refusal }));
                }
                decide(offered, AttemptOutcome::Refused(refusal));
                None
            }
            Err(other) => {
                for v in below(offered).chain([offered]) {
                    decide(v, other.clone());
                }
                None
            }
        };
    }
    found.sort_by_key(|p| p.version);
    found
}

/// TLS 1.2 and 1.3: what the session's handshake proves, a handshake of
/// the scan's own for the rest.
async fn modern_round(ctx: &ProbeCtx<'_>) -> [ProtocolAttempt; 2] {
    let attempt = |version| async move {
        ProtocolAttempt {
            version,
            outcome: modern_attempt(ctx, version).await,
        }
    };
    let by_session = |n: Negotiated| ProtocolAttempt {
        version: n.version,
        outcome: AttemptOutcome::Negotiated {
            version: n.version,
            suite: n.suite,
        },
    };
    match ctx.early.handshake().await {
        Some(n) if n.version == TlsVersion::Tls13 => {
            [attempt(TlsVersion::Tls12).await, by_session(n)]
        }
        Some(n) if n.version == TlsVersion::Tls12 => [
            by_session(n),
            ProtocolAttempt {
                version: TlsVersion::Tls13,
                outcome: AttemptOutcome::Refused(Refusal::NotChosen(TlsVersion::Tls12)),
            },
        ],
        _ => {
            let (tls12, tls13) =
                tokio::join!(attempt(TlsVersion::Tls12), attempt(TlsVersion::Tls13));
            [tls12, tls13]
        }
    }
}

/// A rustls handshake limited to `version`; when the server refuses it
/// with handshake_failure (no suite or group in common), a ClientHello as
/// libpq's OpenSSL sends it, limited to the same version, decides: rustls'
/// few suites and groups being refused is not the version being refused.
async fn modern_attempt(ctx: &ProbeCtx<'_>, version: TlsVersion) -> AttemptOutcome {
    let outcome = match open_tls_channel(ctx).await {
        Ok(stream) => modern::handshake(ctx, stream, &tls_name(ctx), alpn(ctx), version).await,
        Err(outcome) => return outcome,
    };
    let handshake_failure = matches!(
        outcome,
        AttemptOutcome::Refused(Refusal::Alert { code: 40 | 71, .. })
    );
    if !handshake_failure {
        return outcome;
    }
    let offer = match version {
        TlsVersion::Tls13 => Offer::Tls13,
        _ => Offer::Tls12,
    };
    match openssl_flight(ctx, offer).await {
        Ok(flight) if flight.version == version.wire() => {
            let (classes, cbc) = classify(flight.suite);
            AttemptOutcome::AcceptedByOpenssl(Negotiation {
                version,
                suite: flight.suite,
                group: flight.group,
                classes,
                cbc,
            })
        }
        // Refused that too, or no better answer: rustls' refusal stands.
        _ => outcome,
    }
}

/// Runs one step towards the answer; running out of time is undecided.
async fn answer<T>(ctx: &ProbeCtx<'_>, step: impl Future<Output = T>) -> Result<T, AttemptOutcome> {
    ctx.within_attempt(step).await.ok_or_else(|| {
        AttemptOutcome::Undecided(Undecided::Timeout {
            after_ms: ctx.elapsed_ms(),
        })
    })
}

/// Runs the closing exchange, for as long as the attempt deadline allows.
async fn goodbye(ctx: &ProbeCtx<'_>, close: impl Future<Output = ()>) {
    let _ = ctx.within_attempt(close).await;
}

fn undecided(why: Undecided) -> AttemptOutcome {
    AttemptOutcome::Undecided(why)
}

/// TCP connect, then SSLRequest and exactly one byte 'S' back, or nothing
/// more under direct TLS: the socket is then ready for a ClientHello. The
/// scan negotiates as the session does, so it sees the path clients take.
async fn open_tls_channel(ctx: &ProbeCtx<'_>) -> Result<TcpStream, AttemptOutcome> {
    let open = async {
        let mut stream = connect_any(&ctx.addrs).await?;
        if ctx.target().sslnegotiation == SslNegotiation::Postgres {
            // The session's exchange: exactly one byte read, an error's text unread.
            super::session::ssl_request(&mut stream).await?;
        }
        Ok::<_, ChannelFailure>(stream)
    };
    answer(ctx, open)
        .await?
        .map_err(|e| undecided(Undecided::Channel(e)))
}

/// ALPN to offer: PostgreSQL 17 refuses a direct handshake without it.
fn alpn(ctx: &ProbeCtx<'_>) -> Option<&'static [u8]> {
    (ctx.target().sslnegotiation == SslNegotiation::Direct).then_some(ALPN_POSTGRESQL)
}

/// The host as the session's TLS names it: an inet_aton short form
/// ("127.1") is the IP address libpq reads it as.
fn tls_name(ctx: &ProbeCtx<'_>) -> String {
    crate::tls::connector_name(&ctx.target().host)
}

/// Host name for SNI: none for an IP address (RFC 6066).
fn sni(ctx: &ProbeCtx<'_>) -> Option<String> {
    let name = tls_name(ctx);
    name.parse::<std::net::IpAddr>().is_err().then_some(name)
}

/// Accepted only with the version offered and a suite of the class.
fn cipher_outcome(
    offered: TlsVersion,
    suites: &[u16],
    hello: Result<(u16, u16), AttemptOutcome>,
) -> AttemptOutcome {
    match hello {
        Ok((v, suite)) if v == offered.wire() && suites.contains(&suite) => {
            AttemptOutcome::Accepted {
                version: offered,
                suite,
            }
        }
        Ok((version, suite)) if version == offered.wire() => {
            undecided(Undecided::SuiteNotOffered { version, suite })
        }
        Ok((answered, suite)) => undecided(Undecided::VersionMismatch {
            offered: offered.wire(),
            answered,
            suite,
        }),
        Err(outcome) => outcome,
    }
}

/// Sends one ClientHello and reads the first record of the answer; the
/// connection is then closed cleanly whatever it said, within the deadline.
/// Ok is a ServerHello (wire version, suite); Err the refusal or the doubt.
async fn hello_round(
    ctx: &ProbeCtx<'_>,
    mut stream: TcpStream,
    version: TlsVersion,
    suites: &[u16],
) -> Result<(u16, u16), AttemptOutcome> {
    let mut random = [0u8; 32];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).is_err() {
        return Err(undecided(Undecided::Internal(InternalError::NoRandom)));
    }
    let bytes = hello::client_hello(version, suites, sni(ctx).as_deref(), alpn(ctx), &random)
        .map_err(|e| undecided(Undecided::Internal(e)))?;
    let reply = answer(ctx, async {
        if let Err(e) = stream.write_all(&bytes).await {
            return Err(undecided(Undecided::Send((&e).into())));
        }
        read_reply(&mut stream).await
    })
    .await
    .and_then(|reply| reply);
    // Abandon the handshake politely, then wait for the server to close,
    // so neither side sees a reset and no socket is left half-open.
    goodbye(ctx, async {
        let _ = stream.write_all(&hello::cancel_alerts(version)).await;
        let _ = stream.shutdown().await;
        drain(&mut stream).await;
    })
    .await;
    match reply? {
        Reply::ServerHello { version, suite } => Ok((version, suite)),
        Reply::Alert { fatal, code } => {
            Err(AttemptOutcome::Refused(Refusal::Alert { fatal, code }))
        }
        Reply::Garbage(bad) => Err(undecided(Undecided::Reply(bad))),
    }
}

/// Sends a ClientHello as libpq's OpenSSL sends it, offering `offer`, and
/// reads the server's first flight as far as it is plaintext (with TLS 1.2,
/// its certificates); then abandons the handshake as [`hello_round`] does.
/// Ok is the flight; Err the refusal or the doubt. For when rustls was
/// refused: the session's second opinion, and the scan's for TLS 1.2/1.3.
pub(super) async fn openssl_flight(
    ctx: &ProbeCtx<'_>,
    offer: hello::Offer,
) -> Result<hello::Flight, AttemptOutcome> {
    let mut stream = open_tls_channel(ctx).await?;
    let mut random = [0u8; 64];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).is_err() {
        return Err(undecided(Undecided::Internal(InternalError::NoRandom)));
    }
    let (random, share) = random.split_at(32);
    let (Ok(random), Ok(share)) = (<&[u8; 32]>::try_from(random), <&[u8; 32]>::try_from(share))
    else {
        return Err(undecided(Undecided::Internal(InternalError::NoRandom)));
    };
    // As libpq sends it: no SNI with sslsni=0.
    let name = sni(ctx).filter(|_| ctx.target().sslsni);
    let bytes = hello::openssl_client_hello(offer, name.as_deref(), alpn(ctx), random, share)
        .map_err(|e| undecided(Undecided::Internal(e)))?;
    let reply = answer(ctx, async {
        if let Err(e) = stream.write_all(&bytes).await {
            return Err(undecided(Undecided::Send((&e).into())));
        }
        read_flight(&mut stream).await
    })
    .await
    .and_then(|reply| reply);
    goodbye(ctx, async {
        let _ = stream
            .write_all(&hello::cancel_alerts(TlsVersion::Tls12))
            .await;
        let _ = stream.shutdown().await;
        drain(&mut stream).await;
    })
    .await;
    match reply? {
        hello::FlightReply::Flight(flight) => Ok(flight),
        hello::FlightReply::Alert { fatal, code } => {
            Err(AttemptOutcome::Refused(Refusal::Alert { fatal, code }))
        }
        hello::FlightReply::Garbage(bad) => Err(undecided(Undecided::Reply(bad))),
    }
}

/// Reads until the flight is whole, at most [`hello::MAX_FLIGHT`] bytes.
async fn read_flight<R: AsyncRead + Unpin>(
    stream: &mut R,
) -> Result<hello::FlightReply, AttemptOutcome> {
    let too_large = Undecided::FlightTooLarge(hello::MAX_FLIGHT);
    read_until(stream, hello::parse_flight, hello::MAX_FLIGHT, too_large).await
}

async fn read_reply<R: AsyncRead + Unpin>(stream: &mut R) -> Result<Reply, AttemptOutcome> {
    read_until(
        stream,
        hello::parse_reply,
        hello::MAX_REPLY,
        Undecided::TooLarge,
    )
    .await
}

/// Reads until `parse` has its answer, at most `max` bytes.
async fn read_until<R: AsyncRead + Unpin, T>(
    stream: &mut R,
    parse: fn(&[u8]) -> Option<T>,
    max: usize,
    too_large: Undecided,
) -> Result<T, AttemptOutcome> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        if let Some(reply) = parse(&buf) {
            return Ok(reply);
        }
        if buf.len() >= max {
            return Err(undecided(too_large));
        }
        let mut chunk = [0u8; 4096];
        let room = chunk.len().min(max - buf.len());
        match stream.read(&mut chunk[..room]).await {
            Ok(0) if buf.is_empty() => {
                return Err(AttemptOutcome::Refused(Refusal::HungUp(HangUp::Closed)))
            }
            Ok(0) => return Err(undecided(Undecided::ClosedMidRecord(buf.len()))),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && buf.is_empty() => {
                return Err(AttemptOutcome::Refused(Refusal::HungUp(HangUp::Reset)))
            }
            Err(e) => return Err(undecided(Undecided::Read((&e).into()))),
        }
    }
}

/// Reads and discards until the peer closes, briefly and boundedly.
async fn drain<R: AsyncRead + Unpin>(reader: &mut R) {
    let _ = tokio::time::timeout(DRAIN_TIME, read_until_closed(reader, DRAIN_BYTES)).await;
}

/// Offers each weak class in the best TLS 1.2-or-older version accepted.
async fn cipher_round(ctx: &ProbeCtx<'_>, protocols: &[ProtocolAttempt]) -> Vec<CipherAttempt> {
    let older = protocols.iter().filter(|p| p.version <= TlsVersion::Tls12);
    let accepted = |p: &&ProtocolAttempt| {
        matches!(
            p.outcome,
            AttemptOutcome::Accepted { .. }
                | AttemptOutcome::Negotiated { .. }
                | AttemptOutcome::AcceptedByOpenssl(_)
        )
    };
    let best = older.clone().filter(accepted).map(|p| p.version).max();
    let Some(best) = best else {
        let refused = older
            .clone()
            .all(|p| matches!(p.outcome, AttemptOutcome::Refused(_)));
        let outcome = if refused {
            AttemptOutcome::Refused(Refusal::NoVersionForSuites)
        } else {
            undecided(Undecided::NoTestableVersion)
        };
        return CipherClass::ALL
            .map(|class| CipherAttempt {
                class,
                outcome: outcome.clone(),
            })
            .to_vec();
    };
    let attempt = |class| async move {
        let suites = classes::suites(class);
        let outcome = match open_tls_channel(ctx).await {
            Ok(stream) => {
                cipher_outcome(best, &suites, hello_round(ctx, stream, best, &suites).await)
            }
            Err(outcome) => outcome,
        };
        CipherAttempt { class, outcome }
    };
    let [a, b, c, d, e, f] = CipherClass::ALL.map(attempt);
    let (a, b, c, d, e, f) = tokio::join!(a, b, c, d, e, f);
    vec![a, b, c, d, e, f]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::RecordFault;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn a_suite_outside_the_class_or_version_is_not_acceptance() {
        let tls12 = TlsVersion::Tls12;
        assert_eq!(
            cipher_outcome(tls12, &[0x000a], Ok((0x0303, 0x000a))),
            AttemptOutcome::Accepted {
                version: tls12,
                suite: 0x000a
            }
        );
        let other = cipher_outcome(tls12, &[0x000a], Ok((0x0303, 0xc02f)));
        assert_eq!(
            other.to_string(),
            "server answered TLSv1.2 with TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, \
             which was not offered"
        );
        let older = cipher_outcome(tls12, &[0x000a], Ok((0x0302, 0x000a)));
        assert_eq!(
            older.to_string(),
            "server answered TLSv1.1 with TLS_RSA_WITH_3DES_EDE_CBC_SHA, \
             but TLSv1.2 was offered"
        );
    }

    /// What the peer writes before closing its side, and what we make of it.
    async fn reply_to(bytes: &[u8]) -> Result<Reply, AttemptOutcome> {
        let (mut ours, mut theirs) = tokio::io::duplex(64 * 1024);
        theirs.write_all(bytes).await.unwrap();
        drop(theirs);
        read_reply(&mut ours).await
    }

    #[tokio::test]
    async fn replies_are_read_until_one_record_is_complete() {
        assert_eq!(
            reply_to(&[21, 3, 3, 0, 2, 2, 70]).await,
            Ok(Reply::Alert {
                fatal: true,
                code: 70
            })
        );
        assert_eq!(
            reply_to(&[]).await,
            Err(AttemptOutcome::Refused(Refusal::HungUp(HangUp::Closed)))
        );
        let cut = reply_to(&[22, 3, 1, 0, 40, 2, 0]).await.unwrap_err();
        assert_eq!(
            cut.to_string(),
            "connection closed after 7 bytes of a record"
        );
        assert!(matches!(
            reply_to(b"garbage!").await,
            Ok(Reply::Garbage(bad)) if bad.fault == RecordFault::NotARecord
        ));
    }
}
