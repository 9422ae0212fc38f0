//! Which protocol versions (and, with `--scan full`, which weak cipher
//! classes) the server accepts, without OpenSSL.
//!
//! Every attempt is its own TCP connection: SSLRequest, 'S', then one
//! handshake (with `sslnegotiation=direct`, the handshake at once, offering
//! ALPN `postgresql` from TLS 1.0 up; an SSLv3 hello has no extensions). SSLv3, TLS 1.0 and TLS 1.1 are offered with hand-built
//! ClientHellos ([`hello`]) and judged by the ServerHello alone; TLS 1.2 and
//! 1.3 by complete rustls handshakes ([`modern`]). Nothing but handshake
//! messages and closing alerts is ever sent: no StartupMessage, no
//! credential. All attempts of a round run at once, so the scan costs about
//! one handshake of latency (two with `full`: the cipher classes are
//! offered in the best version the first round found).

mod classes;
mod hello;
mod modern;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tls_parser::TlsVersion as WireVersion;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::handshake::ALPN_POSTGRESQL;
use super::{connect_any, read_until_closed};
use crate::facts::{
    CipherAttempt, CipherClass, ProtocolAttempt, ScanFacts, ScanLevel, ScanVersion, SessionFailure,
};
use crate::conn::{SslNegotiation, Target};
use hello::Reply;

/// How long to wait for the server to close after we said goodbye.
const DRAIN_TIME: Duration = Duration::from_millis(500);
/// Bytes read while waiting for that close (a certificate chain, a ticket).
const DRAIN_BYTES: usize = 256 * 1024;

/// What one attempt showed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Accepted(String),
    Refused(String),
    /// The server closed the connection without a TLS answer: a refusal
    /// after an SSLRequest, but under direct TLS what a server before
    /// PostgreSQL 17 does with any ClientHello (see [`settle`]).
    HungUp(String),
    Undecided(String),
}

impl Verdict {
    fn split(self) -> (Option<bool>, String) {
        match self {
            Verdict::Accepted(d) => (Some(true), d),
            Verdict::Refused(d) | Verdict::HungUp(d) => (Some(false), d),
            Verdict::Undecided(d) => (None, d),
        }
    }
}

/// Under direct TLS a hang-up says nothing about the version offered.
fn settle(verdict: Verdict, target: &Target) -> Verdict {
    match verdict {
        Verdict::HungUp(d) if target.sslnegotiation == SslNegotiation::Direct => {
            Verdict::Undecided(format!(
                "{d}; under direct TLS that is also how a server without it \
                 (PostgreSQL 16 or older) answers"
            ))
        }
        other => other,
    }
}

/// Runs the scan within `budget`; never fails, each attempt says what happened.
pub async fn probe(
    target: &Target,
    addrs: &[SocketAddr],
    level: ScanLevel,
    budget: Duration,
) -> ScanFacts {
    let start = Instant::now();
    let bound = Bound {
        began: start,
        deadline: start + budget,
    };
    let attempt = |v| async move {
        let (accepted, detail) = version_attempt(target, addrs, v, bound).await.split();
        ProtocolAttempt {
            version: v,
            accepted,
            detail,
        }
    };
    let [ssl3, tls10, tls11, tls12, tls13] = ScanVersion::ALL.map(attempt);
    let (ssl3, tls10, tls11, tls12, tls13) = tokio::join!(ssl3, tls10, tls11, tls12, tls13);
    let protocols = vec![ssl3, tls10, tls11, tls12, tls13];
    let ciphers = match level {
        ScanLevel::Protocols => None,
        ScanLevel::Full => Some(cipher_round(target, addrs, &protocols, bound).await),
    };
    ScanFacts {
        level,
        protocols,
        ciphers,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// Every attempt undecided for one reason (the host did not resolve).
pub fn undecided(level: ScanLevel, detail: &str) -> ScanFacts {
    ScanFacts {
        level,
        protocols: ScanVersion::ALL
            .map(|version| ProtocolAttempt {
                version,
                accepted: None,
                detail: detail.to_string(),
            })
            .to_vec(),
        ciphers: (level == ScanLevel::Full).then(|| {
            CipherClass::ALL
                .map(|class| cipher_fact(class, None, Verdict::Undecided(detail.to_string())))
                .to_vec()
        }),
        seconds: 0.0,
    }
}

/// The scan's time. Getting an answer and saying goodbye both end at the
/// deadline, but separately: a goodbye cut short (a peer that never closes)
/// must not turn an answer already read into "no answer".
#[derive(Debug, Clone, Copy)]
struct Bound {
    began: Instant,
    deadline: Instant,
}

impl Bound {
    /// Runs one step towards the answer; a timeout is an undecided verdict.
    async fn answer<T>(self, step: impl std::future::Future<Output = T>) -> Result<T, Verdict> {
        tokio::time::timeout_at(self.deadline.into(), step)
            .await
            .map_err(|_| {
                Verdict::Undecided(format!(
                    "no answer within {:.1} s",
                    self.began.elapsed().as_secs_f64()
                ))
            })
    }

    /// Runs the closing exchange, for as long as the deadline allows.
    async fn goodbye(self, close: impl std::future::Future<Output = ()>) {
        let _ = tokio::time::timeout_at(self.deadline.into(), close).await;
    }
}

/// TCP connect, then SSLRequest and exactly one byte 'S' back, or nothing
/// more under direct TLS: the socket is then ready for a ClientHello. The
/// scan negotiates as the session does, so it sees the path clients take.
async fn open_tls_channel(
    target: &Target,
    addrs: &[SocketAddr],
    bound: Bound,
) -> Result<TcpStream, Verdict> {
    let open = async {
        let mut stream = connect_any(addrs).await?;
        if target.sslnegotiation == SslNegotiation::Direct {
            return Ok(stream);
        }
        // The session's exchange: exactly one byte read, an error's text unread.
        super::session::ssl_request(&mut stream)
            .await
            .map_err(|failure| match failure {
                SessionFailure::TlsRefused => {
                    "server answered 'N' to the SSLRequest (no TLS)".to_string()
                }
                SessionFailure::Connect { detail }
                | SessionFailure::NotPostgres { detail }
                | SessionFailure::Tls { detail } => detail,
                other => format!("SSLRequest failed: {other:?}"),
            })?;
        Ok(stream)
    };
    bound.answer(open).await?.map_err(Verdict::Undecided)
}

/// ALPN to offer: PostgreSQL 17 refuses a direct handshake without it.
fn alpn(target: &Target) -> Option<&'static [u8]> {
    (target.sslnegotiation == SslNegotiation::Direct).then_some(ALPN_POSTGRESQL)
}

/// The host as the session's TLS names it: an inet_aton short form
/// ("127.1") is the IP address libpq reads it as.
fn tls_name(target: &Target) -> String {
    crate::tls::connector_name(&target.host)
}

/// Host name for SNI: none for an IP address (RFC 6066).
fn sni(target: &Target) -> Option<String> {
    let name = tls_name(target);
    name.parse::<std::net::IpAddr>().is_err().then_some(name)
}

async fn version_attempt(
    target: &Target,
    addrs: &[SocketAddr],
    version: ScanVersion,
    bound: Bound,
) -> Verdict {
    let stream = match open_tls_channel(target, addrs, bound).await {
        Ok(s) => s,
        Err(verdict) => return verdict,
    };
    let verdict = match version {
        ScanVersion::Tls12 | ScanVersion::Tls13 => {
            modern::handshake(stream, &tls_name(target), alpn(target), version, bound).await
        }
        legacy => {
            let wire = wire_version(legacy);
            version_verdict(
                wire,
                hello_round(stream, target, wire, &hello::LEGACY_SUITES, bound).await,
            )
        }
    };
    settle(verdict, target)
}

/// Accepted only when the ServerHello carries the version offered.
fn version_verdict(offered: WireVersion, hello: Result<(WireVersion, u16), Verdict>) -> Verdict {
    match hello {
        Ok((v, suite)) if v == offered => Verdict::Accepted(format!(
            "ServerHello {}, {}",
            hello::version_name(v),
            classes::suite_name(suite)
        )),
        Ok((v, _)) => Verdict::Refused(format!(
            "server answered with {} instead",
            hello::version_name(v)
        )),
        Err(v) => v,
    }
}

/// Accepted only with the version offered and a suite of the class; the
/// chosen suite's name comes with it.
fn cipher_verdict(
    offered: WireVersion,
    suites: &[u16],
    hello: Result<(WireVersion, u16), Verdict>,
) -> (Verdict, Option<String>) {
    match hello {
        Ok((v, suite)) if v == offered && suites.contains(&suite) => {
            let name = classes::suite_name(suite);
            let detail = format!("ServerHello {} chose {name}", hello::version_name(v));
            (Verdict::Accepted(detail), Some(name))
        }
        Ok((v, suite)) => {
            let answered = format!(
                "server answered {} with {}",
                hello::version_name(v),
                classes::suite_name(suite)
            );
            let detail = if v == offered {
                format!("{answered}, which was not offered")
            } else {
                format!(
                    "{answered}, but {} was offered",
                    hello::version_name(offered)
                )
            };
            (Verdict::Undecided(detail), None)
        }
        Err(v) => (v, None),
    }
}

fn wire_version(v: ScanVersion) -> WireVersion {
    match v {
        ScanVersion::Ssl3 => WireVersion::Ssl30,
        ScanVersion::Tls10 => WireVersion::Tls10,
        ScanVersion::Tls11 => WireVersion::Tls11,
        ScanVersion::Tls12 => WireVersion::Tls12,
        ScanVersion::Tls13 => WireVersion::Tls13,
    }
}

/// Sends one ClientHello and reads the first record of the answer; the
/// connection is then closed cleanly whatever it said, within the deadline.
/// Ok is a ServerHello (version, suite); Err the refusal or the doubt.
async fn hello_round(
    mut stream: TcpStream,
    target: &Target,
    version: WireVersion,
    suites: &[u16],
    bound: Bound,
) -> Result<(WireVersion, u16), Verdict> {
    let mut random = [0u8; 32];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).is_err() {
        return Err(Verdict::Undecided(
            "no random bytes for the ClientHello".into(),
        ));
    }
    let bytes = hello::client_hello(
        version,
        suites,
        sni(target).as_deref(),
        alpn(target),
        &random,
    )
    .map_err(Verdict::Undecided)?;
    let reply = bound
        .answer(async {
            if let Err(e) = stream.write_all(&bytes).await {
                return Err(Verdict::Undecided(format!("sending ClientHello: {e}")));
            }
            read_reply(&mut stream).await
        })
        .await
        .and_then(|reply| reply);
    // Abandon the handshake politely, then wait for the server to close,
    // so neither side sees a reset and no socket is left half-open.
    bound
        .goodbye(async {
            let _ = stream.write_all(&hello::cancel_alerts(version)).await;
            let _ = stream.shutdown().await;
            drain(&mut stream).await;
        })
        .await;
    match reply {
        Ok(Reply::ServerHello { version, suite }) => Ok((version, suite)),
        Ok(Reply::Alert { fatal, code }) => {
            Err(Verdict::Refused(hello::describe_alert(fatal, code)))
        }
        Ok(Reply::Garbage(detail)) => Err(Verdict::Undecided(detail)),
        Err(verdict) => Err(verdict),
    }
}

async fn read_reply<R: AsyncRead + Unpin>(stream: &mut R) -> Result<Reply, Verdict> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        if let Some(reply) = hello::parse_reply(&buf) {
            return Ok(reply);
        }
        if buf.len() >= hello::MAX_REPLY {
            return Err(Verdict::Undecided(
                "reply larger than one TLS record".into(),
            ));
        }
        let mut chunk = [0u8; 4096];
        let room = chunk.len().min(hello::MAX_REPLY - buf.len());
        match stream.read(&mut chunk[..room]).await {
            Ok(0) if buf.is_empty() => {
                return Err(Verdict::HungUp("connection closed without a reply".into()))
            }
            Ok(0) => {
                return Err(Verdict::Undecided(format!(
                    "connection closed after {} bytes of a record",
                    buf.len()
                )))
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && buf.is_empty() => {
                return Err(Verdict::HungUp("connection reset without a reply".into()))
            }
            Err(e) => return Err(Verdict::Undecided(format!("reading the reply: {e}"))),
        }
    }
}

/// Reads and discards until the peer closes, briefly and boundedly.
async fn drain<R: AsyncRead + Unpin>(reader: &mut R) {
    let _ = tokio::time::timeout(DRAIN_TIME, read_until_closed(reader, DRAIN_BYTES)).await;
}

/// Offers each weak class in the best TLS 1.2-or-older version accepted.
async fn cipher_round(
    target: &Target,
    addrs: &[SocketAddr],
    protocols: &[ProtocolAttempt],
    bound: Bound,
) -> Vec<CipherAttempt> {
    let older = protocols.iter().filter(|p| p.version <= ScanVersion::Tls12);
    let best = older
        .clone()
        .filter(|p| p.accepted == Some(true))
        .map(|p| p.version)
        .max();
    let Some(best) = best else {
        let verdict = if older.clone().all(|p| p.accepted == Some(false)) {
            Verdict::Refused(
                "no version up to TLSv1.2 accepted, and TLSv1.3 has none of these suites".into(),
            )
        } else {
            Verdict::Undecided("no version up to TLSv1.2 could be tested".into())
        };
        return CipherClass::ALL
            .map(|class| cipher_fact(class, None, verdict.clone()))
            .to_vec();
    };
    let wire = wire_version(best);
    let attempt = |class| async move {
        let suites = classes::suites(class);
        let (verdict, chosen) = match open_tls_channel(target, addrs, bound).await {
            Ok(stream) => cipher_verdict(
                wire,
                &suites,
                hello_round(stream, target, wire, &suites, bound).await,
            ),
            Err(verdict) => (verdict, None),
        };
        cipher_fact(class, chosen, verdict)
    };
    let [a, b, c, d, e, f] = CipherClass::ALL.map(attempt);
    let (a, b, c, d, e, f) = tokio::join!(a, b, c, d, e, f);
    vec![a, b, c, d, e, f]
}

fn cipher_fact(class: CipherClass, chosen: Option<String>, verdict: Verdict) -> CipherAttempt {
    let (accepted, detail) = verdict.split();
    CipherAttempt {
        class,
        accepted,
        chosen,
        informational: class.is_informational(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn only_the_offered_version_counts_as_accepted() {
        let tls10 = WireVersion::Tls10;
        assert_eq!(
            version_verdict(tls10, Ok((tls10, 0xc014))),
            Verdict::Accepted("ServerHello TLSv1, TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA".into())
        );
        assert_eq!(
            version_verdict(tls10, Ok((WireVersion::Tls12, 0xc02f))),
            Verdict::Refused("server answered with TLSv1.2 instead".into())
        );
        let alert = Verdict::Refused("fatal alert 70 protocol_version".into());
        assert_eq!(version_verdict(tls10, Err(alert.clone())), alert);
    }

    #[test]
    fn a_suite_outside_the_class_is_not_acceptance() {
        let tls12 = WireVersion::Tls12;
        let (v, chosen) = cipher_verdict(tls12, &[0x000a], Ok((tls12, 0x000a)));
        assert_eq!(
            v,
            Verdict::Accepted("ServerHello TLSv1.2 chose TLS_RSA_WITH_3DES_EDE_CBC_SHA".into())
        );
        assert_eq!(chosen.as_deref(), Some("TLS_RSA_WITH_3DES_EDE_CBC_SHA"));
        let (v, chosen) = cipher_verdict(tls12, &[0x000a], Ok((tls12, 0xc02f)));
        assert!(matches!(v, Verdict::Undecided(_)), "{v:?}");
        assert_eq!(chosen, None);
        assert_eq!(
            v,
            Verdict::Undecided(
                "server answered TLSv1.2 with TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, \
                 which was not offered"
                    .into()
            )
        );
        let (v, _) = cipher_verdict(tls12, &[0x000a], Ok((WireVersion::Tls11, 0x000a)));
        assert_eq!(
            v,
            Verdict::Undecided(
                "server answered TLSv1.1 with TLS_RSA_WITH_3DES_EDE_CBC_SHA, \
                 but TLSv1.2 was offered"
                    .into()
            )
        );
    }

    #[test]
    fn a_hang_up_refuses_only_after_an_sslrequest() {
        let mut target = crate::policy::tests::target();
        let hung_up = || Verdict::HungUp("connection closed without a reply".into());
        assert_eq!(settle(hung_up(), &target).split().0, Some(false));
        target.sslnegotiation = SslNegotiation::Direct;
        let (accepted, detail) = settle(hung_up(), &target).split();
        assert_eq!(accepted, None);
        assert!(detail.contains("PostgreSQL 16 or older"), "{detail}");
        let alert = Verdict::Refused("fatal alert 70 protocol_version".into());
        assert_eq!(settle(alert.clone(), &target), alert);
    }

    /// What the peer writes before closing its side, and what we make of it.
    async fn reply_to(bytes: &[u8]) -> Result<Reply, Verdict> {
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
            Err(Verdict::HungUp("connection closed without a reply".into()))
        );
        assert_eq!(
            reply_to(&[22, 3, 1, 0, 40, 2, 0]).await,
            Err(Verdict::Undecided(
                "connection closed after 7 bytes of a record".into()
            ))
        );
        assert!(matches!(reply_to(b"garbage!").await, Ok(Reply::Garbage(_))));
    }
}
