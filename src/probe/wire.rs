//! The PostgreSQL protocol as it crosses the verify-full session, watched
//! beneath tokio-postgres (which owns the conversation, but not the stream).
//!
//! Two jobs, both needing only the message framing (a tag byte and a
//! 4-byte length):
//! - **Bounds.** tokio-postgres buffers whatever a server announces: a
//!   verified server that declares a 2 GiB message and streams it would take
//!   the process's memory with it. No backend message may announce more
//!   than [`MAX_MESSAGE`] bytes, and no connection may deliver more than
//!   [`MAX_SESSION_BYTES`]; past either, the read fails and the record says
//!   why (typed, for policy).
//! - **Authentication, as it happened.** The authentication requests the
//!   server sent, the SASL mechanism the client chose and the server's
//!   ParameterStatus reports: what the session logged in with, observed on
//!   the wire rather than assumed. No password or SCRAM payload is ever
//!   kept: only request codes, offered mechanism names and the chosen one.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::conn::{AuthRefusal, RequireAuth};
use crate::facts::auth_code as code;
pub use crate::facts::{AuthRequestSeen, Overrun, WireRecord, MAX_MESSAGE, MAX_SESSION_BYTES};

/// Bodies kept for the record: an authentication request's SASL list, a
/// ParameterStatus pair. Longer bodies are kept cut.
const KEEP: usize = 4096;

/// How many ParameterStatus reports are kept (servers send about 15).
const MAX_PARAMETERS: usize = 64;

/// The shared record: the stream writes it, the session reads it.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<WireRecord>>);

impl Recorder {
    fn lock(&self) -> MutexGuard<'_, WireRecord> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The record so far.
    pub fn snapshot(&self) -> WireRecord {
        self.lock().clone()
    }
}

/// Message framing, fed bytes as they pass.
#[derive(Debug)]
struct Framer {
    /// The frontend's first message (StartupMessage) has no tag byte.
    untagged_first: bool,
    header: [u8; 5],
    have: usize,
    /// The message being read: tag, body bytes still to come, body kept.
    body: Option<(u8, usize, Vec<u8>)>,
}

impl Framer {
    fn new(untagged_first: bool) -> Framer {
        Framer {
            untagged_first,
            header: [0; 5],
            have: 0,
            body: None,
        }
    }

    /// Feeds `bytes`; each complete message goes to `done` as (tag, kept
    /// body). Err when a message announces more than `max` bytes.
    fn feed(
        &mut self,
        mut bytes: &[u8],
        max: u32,
        keep: impl Fn(u8) -> bool,
        mut done: impl FnMut(u8, &[u8]),
    ) -> Result<(), Overrun> {
        while !bytes.is_empty() {
            if let Some((tag, remaining, kept)) = &mut self.body {
                let take = (*remaining).min(bytes.len());
                if keep(*tag) && kept.len() < KEEP {
                    let room = KEEP - kept.len();
                    kept.extend_from_slice(&bytes[..take.min(room)]);
                }
                *remaining -= take;
                bytes = &bytes[take..];
                if *remaining == 0 {
                    let (tag, _, kept) = self.body.take().unwrap_or_default();
                    done(tag, &kept);
                }
                continue;
            }
            let header_len = if self.untagged_first { 4 } else { 5 };
            let take = (header_len - self.have).min(bytes.len());
            self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            bytes = &bytes[take..];
            if self.have < header_len {
                continue;
            }
            let (tag, len) = if self.untagged_first {
                self.untagged_first = false;
                let len = u32::from_be_bytes([
                    self.header[0],
                    self.header[1],
                    self.header[2],
                    self.header[3],
                ]);
                (0, len)
            } else {
                let len = u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]);
                (self.header[0], len)
            };
            self.have = 0;
            if len > max {
                return Err(Overrun::Message {
                    tag,
                    announced: len,
                });
            }
            // The length counts itself; anything shorter is malformed, and
            // tokio-postgres will say so: treat it as an empty body.
            let remaining = usize::try_from(len.saturating_sub(4)).unwrap_or(usize::MAX);
            if remaining == 0 {
                done(tag, &[]);
            } else {
                self.body = Some((tag, remaining, Vec::new()));
            }
        }
        Ok(())
    }
}

/// Why the tap ended the session: the read that carried it fails, so
/// tokio-postgres never acts on (or answers) what it delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stop {
    #[error(transparent)]
    Overrun(#[from] Overrun),
    /// `require_auth` refused an authentication request.
    #[error("authentication method requirement failed: {}", .0.reason())]
    Refused(AuthRefusal),
}

/// Both directions' framing, the record they write, and the
/// `require_auth` rule checked on every authentication request.
#[derive(Debug)]
pub struct Tap {
    backend: Framer,
    frontend: Framer,
    recorder: Recorder,
    require_auth: Option<RequireAuth>,
    /// Channel binding is not disabled: which SCRAM mechanism the client
    /// picks, for `require_auth`'s mechanism check.
    plus: bool,
}

impl Tap {
    pub fn new(recorder: Recorder, require_auth: Option<RequireAuth>, plus: bool) -> Tap {
        Tap {
            backend: Framer::new(false),
            frontend: Framer::new(true),
            recorder,
            require_auth,
            plus,
        }
    }

    /// Bytes the server sent: framed, bounded, recorded, and each
    /// authentication request checked against `require_auth` before the
    /// client can answer it (libpq's check_expected_areq).
    pub fn read(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        let recorder = self.recorder.clone();
        let mut record = recorder.lock();
        if let Some(refusal) = &record.refused {
            return Err(Stop::Refused(refusal.clone()));
        }
        if record.overrun.is_some() {
            return Err(record.overrun.unwrap_or(Overrun::Session).into());
        }
        record.bytes_read += bytes.len() as u64;
        if record.bytes_read > MAX_SESSION_BYTES {
            record.overrun = Some(Overrun::Session);
            return Err(Overrun::Session.into());
        }
        let require = self.require_auth.as_ref();
        let plus = self.plus;
        let result = self.backend.feed(
            bytes,
            MAX_MESSAGE,
            |tag| matches!(tag, b'R' | b'S'),
            |tag, body| match tag {
                b'R' => {
                    let request = record_auth(&mut record, body);
                    if let (Some(rule), Some(request), None) = (require, request, &record.refused) {
                        let finished = record.sasl_final || record.password_sent;
                        let offered = record.auth_requests.last().map(|r| r.mechanisms.clone());
                        let verdict =
                            rule.check(request, finished)
                                .and_then(|()| match (request, offered) {
                                    (code::SASL, Some(offered)) => rule.check_sasl(&offered, plus),
                                    _ => Ok(()),
                                });
                        if let Err(refusal) = verdict {
                            record.refused = Some(refusal);
                        }
                    }
                }
                b'S' => record_parameter(&mut record, body),
                _ => {}
            },
        );
        if let Err(overrun) = result {
            record.overrun = Some(overrun);
            return Err(overrun.into());
        }
        match &record.refused {
            Some(refusal) => Err(Stop::Refused(refusal.clone())),
            None => Ok(()),
        }
    }

    /// Bytes the client (tokio-postgres) sent: only the SASL mechanism it
    /// chose and the GS2 header's channel-binding type are kept, from a
    /// SASLInitialResponse answering a SASL request (neither is secret: the
    /// rest of that message is a nonce). A PasswordMessage (the same tag,
    /// after a cleartext or md5 request) is never looked into; that one
    /// was sent is all that is kept.
    pub fn write(&mut self, bytes: &[u8]) {
        let recorder = self.recorder.clone();
        let mut record = recorder.lock();
        let last = record.auth_requests.last().map(|r| r.code);
        let answering_sasl = last == Some(code::SASL) && record.sasl_mechanism.is_none();
        let answering_password = matches!(last, Some(code::CLEARTEXT | code::MD5));
        // Our own messages are well formed; no bound is needed here.
        let _ = self.frontend.feed(
            bytes,
            u32::MAX,
            |tag| tag == b'p' && answering_sasl,
            |tag, body| {
                if tag != b'p' {
                    return;
                }
                if answering_password {
                    record.password_sent = true;
                }
                if answering_sasl && record.sasl_mechanism.is_none() {
                    let (mechanism, binding) = sasl_initial(body);
                    record.sasl_mechanism = Some(mechanism);
                    record.channel_binding = binding;
                }
            },
        );
    }
}

/// A SASLInitialResponse: the mechanism name, then (after a 4-byte
/// length) the client-first-message, whose GS2 header says whether and how
/// the exchange is bound to TLS: `p=<type>,` (bound), `y,` or `n,` (not).
fn sasl_initial(body: &[u8]) -> (String, Option<String>) {
    let mut parts = body.splitn(2, |&b| b == 0);
    let name = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let binding = parts
        .next()
        .and_then(|rest| rest.get(4..))
        .and_then(|first| first.strip_prefix(b"p="))
        .and_then(|p| p.split(|&b| b == b',').next())
        .map(|t| String::from_utf8_lossy(t).into_owned());
    (name, binding)
}

/// Records one authentication request; returns its code.
fn record_auth(record: &mut WireRecord, body: &[u8]) -> Option<u32> {
    let head = body.get(..4)?;
    let request = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let mechanisms = if request == code::SASL {
        body[4..]
            .split(|&b| b == 0)
            .take_while(|m| !m.is_empty())
            .map(|m| String::from_utf8_lossy(m).into_owned())
            .collect()
    } else {
        Vec::new()
    };
    if request == code::SASL_FINAL {
        record.sasl_final = true;
    }
    // SASLContinue (11) and SASLFinal (12) are steps of one exchange.
    if !matches!(request, code::SASL_CONTINUE | code::SASL_FINAL) {
        record.auth_requests.push(AuthRequestSeen {
            code: request,
            mechanisms,
        });
    }
    Some(request)
}

fn record_parameter(record: &mut WireRecord, body: &[u8]) {
    if record.parameters.len() >= MAX_PARAMETERS {
        return;
    }
    let mut parts = body.split(|&b| b == 0);
    let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
        return;
    };
    record.parameters.push((
        String::from_utf8_lossy(name).into_owned(),
        String::from_utf8_lossy(value).into_owned(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// A SCRAM login as tokio-postgres and PostgreSQL have it, byte by byte
    /// and in one piece: the same record either way, and no secret in it.
    #[test]
    fn a_scram_login_is_recorded_in_any_chunking() {
        let mut backend = message(b'R', b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0");
        let offer_len = backend.len();
        backend.extend(message(b'R', b"\0\0\0\x0br=nonce,s=salt,i=4096"));
        backend.extend(message(b'R', b"\0\0\0\x0cv=proof"));
        backend.extend(message(b'R', b"\0\0\0\0"));
        backend.extend(message(b'S', b"server_version\x0015.18\0"));
        backend.extend(message(b'Z', b"I"));
        let mut startup = 12u32.to_be_bytes().to_vec();
        startup.extend_from_slice(&[0, 3, 0, 0, 0, 0, 0, 0]);
        let initial = message(
            b'p',
            b"SCRAM-SHA-256-PLUS\0\0\0\0\x20p=tls-server-end-point,,n=,r=abc",
        );
        for chunk in [1, 3, backend.len()] {
            let recorder = Recorder::default();
            let mut tap = Tap::new(recorder.clone(), None, true);
            tap.write(&startup);
            let (first, rest) = backend.split_at(offer_len);
            for piece in first.chunks(chunk) {
                tap.read(piece).unwrap();
            }
            tap.write(&initial);
            for piece in rest.chunks(chunk) {
                tap.read(piece).unwrap();
            }
            let record = recorder.snapshot();
            assert_eq!(
                record.auth_requests,
                [
                    AuthRequestSeen {
                        code: 10,
                        mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()]
                    },
                    AuthRequestSeen {
                        code: 0,
                        mechanisms: vec![]
                    }
                ]
            );
            assert_eq!(record.sasl_mechanism.as_deref(), Some("SCRAM-SHA-256-PLUS"));
            assert_eq!(
                record.channel_binding.as_deref(),
                Some("tls-server-end-point")
            );
            assert!(record.sasl_final && !record.password_sent);
            assert_eq!(
                record.parameters,
                [("server_version".to_string(), "15.18".to_string())]
            );
            assert_eq!(record.bytes_read, backend.len() as u64);
            assert_eq!(record.overrun, None);
        }
    }

    /// A password sent after a cleartext request is never looked into.
    #[test]
    fn a_password_message_is_not_kept() {
        let recorder = Recorder::default();
        let mut tap = Tap::new(recorder.clone(), None, true);
        tap.write(
            &8u32
                .to_be_bytes()
                .iter()
                .chain(&[0, 3, 0, 0])
                .copied()
                .collect::<Vec<_>>(),
        );
        tap.read(&message(b'R', b"\0\0\0\x03")).unwrap();
        tap.write(&message(b'p', b"s3cret\0"));
        let record = recorder.snapshot();
        assert_eq!(record.auth_requests[0].code, 3);
        assert_eq!(record.sasl_mechanism, None);
        assert!(record.password_sent);
        assert!(!format!("{record:?}").contains("s3cret"));
    }

    #[test]
    fn an_absurd_length_or_an_endless_stream_ends_the_session() {
        let recorder = Recorder::default();
        let mut tap = Tap::new(recorder.clone(), None, true);
        let huge = [b'D', 0x7f, 0xff, 0xff, 0xff];
        assert_eq!(
            tap.read(&huge),
            Err(Stop::Overrun(Overrun::Message {
                tag: b'D',
                announced: 0x7fff_ffff
            }))
        );
        assert!(tap.read(b"more").is_err(), "stays ended");
        assert!(recorder.snapshot().overrun.is_some());

        let recorder = Recorder::default();
        let mut tap = Tap::new(recorder.clone(), None, true);
        let row = message(b'D', &vec![b'x'; 1024 * 1024 - 5]);
        let mut fed = 0u64;
        let ended = loop {
            match tap.read(&row) {
                Ok(()) => fed += row.len() as u64,
                Err(e) => break e,
            }
        };
        assert_eq!(ended, Stop::Overrun(Overrun::Session));
        assert!(fed <= MAX_SESSION_BYTES);
    }

    /// require_auth=md5 against a SCRAM server: the SASL request is refused
    /// in the read that carries it, so the client never answers it.
    #[test]
    fn require_auth_refuses_before_the_client_answers() {
        let recorder = Recorder::default();
        let rule = RequireAuth::parse("md5").unwrap();
        let mut tap = Tap::new(recorder.clone(), rule, true);
        let offer = message(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0");
        assert_eq!(
            tap.read(&offer),
            Err(Stop::Refused(AuthRefusal::Requested(code::SASL)))
        );
        assert!(tap.read(b"more").is_err(), "stays refused");
        assert_eq!(
            recorder.snapshot().refused,
            Some(AuthRefusal::Requested(code::SASL))
        );

        // Trust when a password was required: refused at AuthenticationOk.
        let recorder = Recorder::default();
        let mut tap = Tap::new(
            recorder.clone(),
            RequireAuth::parse("scram-sha-256").unwrap(),
            true,
        );
        assert_eq!(
            tap.read(&message(b'R', b"\0\0\0\0")),
            Err(Stop::Refused(AuthRefusal::NotCompleted))
        );

        // A completed SCRAM exchange passes.
        let recorder = Recorder::default();
        let mut tap = Tap::new(
            recorder.clone(),
            RequireAuth::parse("scram-sha-256").unwrap(),
            true,
        );
        tap.read(&message(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0"))
            .unwrap();
        tap.read(&message(b'R', b"\0\0\0\x0cv=proof")).unwrap();
        tap.read(&message(b'R', b"\0\0\0\0")).unwrap();
        assert_eq!(recorder.snapshot().refused, None);
    }
}
