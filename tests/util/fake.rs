//! Fake peers on 127.0.0.1 that are not (quite) PostgreSQL servers.
//!
//! Each [`Fake`] is a std `TcpListener` with one thread accepting and one
//! thread per connection. Every byte received on every connection is
//! recorded. Dropping the fake stops it: the accept thread is woken by a
//! connection to itself, open sockets are shut down and all threads joined,
//! so nothing outlives the test.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// SSLRequest and GSSENCRequest codes (protocol-flow.html).
const SSL_REQUEST: u32 = 80877103;
const GSSENC_REQUEST: u32 = 80877104;
/// Protocol 3.0 in a StartupMessage.
const PROTOCOL_3: u32 = 196608;

/// How a fake answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Accepts and never sends anything; holds the socket until dropped.
    Silent,
    /// Answers the first bytes with bytes that are no PostgreSQL reply.
    Garbage,
    /// Answers anything with `HTTP/1.1 400 Bad Request` and closes.
    Http,
    /// 'N' to SSLRequest/GSSENCRequest, `AuthenticationCleartextPassword`
    /// to a StartupMessage; a PasswordMessage gets a 28P01 error, anything
    /// else is only recorded.
    CleartextAuth,
    /// Reads untyped startup packets and answers an SSLRequest with `ssl`
    /// (a GSSENCRequest with 'N') and a StartupMessage with `startup`.
    Script { ssl: Reply, startup: Reply },
}

/// One scripted answer of a [`Behaviour::Script`] fake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Says nothing; holds the socket until the client closes.
    Silent,
    /// 'N': no TLS here; the client may go on in plaintext.
    Refuse,
    /// 'S', then silence: the TLS handshake stalls.
    TlsThenSilent,
    /// 'S', then [`GARBAGE`] in reply to the ClientHello.
    TlsThenGarbage,
    /// A FATAL ErrorResponse with this SQLSTATE and message, then close.
    Error(&'static str, &'static str),
    /// AuthenticationOk: in without a password.
    AuthOk,
}

/// The bytes a garbage peer sends: not 'S', 'N', 'E' or anything else
/// PostgreSQL could start a reply with.
pub const GARBAGE: &[u8] = b"\xde\xad\xbe\xef this is not PostgreSQL \x00\x01\x02\r\n";
const HTTP_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\
Content-Length: 11\r\nConnection: close\r\n\r\nBad Request";

struct Conn {
    stream: TcpStream,
    handler: JoinHandle<()>,
    received: Arc<Mutex<Vec<u8>>>,
}

/// A running fake peer.
pub struct Fake {
    pub port: u16,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<Conn>>>,
}

impl Fake {
    pub fn start(behaviour: Behaviour) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake peer");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<Conn>>> = Arc::default();
        let accept = {
            let (stop, conns) = (stop.clone(), conns.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    // Bounded even if a client never closes.
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    let received: Arc<Mutex<Vec<u8>>> = Arc::default();
                    let keep = stream.try_clone().expect("clone accepted socket");
                    let rec = received.clone();
                    let handler = std::thread::spawn(move || serve(stream, behaviour, &rec));
                    conns.lock().unwrap().push(Conn {
                        stream: keep,
                        handler,
                        received,
                    });
                }
            })
        };
        Fake {
            port: addr.port(),
            addr,
            stop,
            accept: Some(accept),
            conns,
        }
    }

    /// Stops accepting, waits until every connection's client has closed
    /// (call it after the probe exited) and returns what each connection
    /// received, in accept order.
    pub fn received(&mut self) -> Vec<Vec<u8>> {
        self.stop_accepting();
        let conns = std::mem::take(&mut *self.conns.lock().unwrap());
        conns
            .into_iter()
            .map(|c| {
                let _ = c.handler.join();
                let bytes = c.received.lock().unwrap().clone();
                bytes
            })
            .collect()
    }

    fn stop_accepting(&mut self) {
        if let Some(accept) = self.accept.take() {
            self.stop.store(true, Ordering::SeqCst);
            // Wake the blocking accept() so it sees the flag.
            let _ = TcpStream::connect(self.addr);
            let _ = accept.join();
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop_accepting();
        let conns = std::mem::take(&mut *self.conns.lock().unwrap());
        for c in &conns {
            let _ = c.stream.shutdown(Shutdown::Both);
        }
        for c in conns {
            let _ = c.handler.join();
        }
    }
}

fn serve(mut stream: TcpStream, behaviour: Behaviour, received: &Mutex<Vec<u8>>) {
    let mut reader = Recorder {
        stream: stream.try_clone().expect("clone socket"),
        received,
    };
    match behaviour {
        Behaviour::Silent => {}
        Behaviour::Garbage | Behaviour::Http => {
            let mut first = [0u8; 512];
            if matches!(reader.read(&mut first), Ok(n) if n > 0) {
                let reply = if behaviour == Behaviour::Http {
                    HTTP_400
                } else {
                    GARBAGE
                };
                let _ = stream.write_all(reply);
                let _ = stream.shutdown(Shutdown::Write);
            }
        }
        Behaviour::CleartextAuth => {
            if let Err(e) = pretend_cleartext(&mut reader, &mut stream) {
                // EOF or reset: the client went away, which is expected.
                let _ = e;
            }
        }
        Behaviour::Script { ssl, startup } => {
            // EOF or reset: the client went away, which is expected.
            let _ = script(&mut reader, &mut stream, ssl, startup);
        }
    }
    // Record whatever else arrives until the client closes.
    reader.drain();
}

/// Reads one untyped startup packet (SSLRequest, GSSENCRequest,
/// StartupMessage) and returns its code; None for a length no client sends.
fn next_startup_code(reader: &mut Recorder<'_>) -> std::io::Result<Option<u32>> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if !(8..=10_000).contains(&len) {
        return Ok(None);
    }
    let mut body = vec![0u8; len - 4];
    reader.read_exact(&mut body)?;
    Ok(Some(u32::from_be_bytes([
        body[0], body[1], body[2], body[3],
    ])))
}

/// Untyped startup packets until a StartupMessage, then one
/// AuthenticationCleartextPassword; the caller records the rest.
fn pretend_cleartext(reader: &mut Recorder<'_>, stream: &mut TcpStream) -> std::io::Result<()> {
    while let Some(code) = next_startup_code(reader)? {
        match code {
            SSL_REQUEST | GSSENC_REQUEST => stream.write_all(b"N")?,
            PROTOCOL_3 => {
                // 'R', length 8, 3 = AuthenticationCleartextPassword.
                let mut msg = vec![b'R'];
                msg.extend_from_slice(&8u32.to_be_bytes());
                msg.extend_from_slice(&3u32.to_be_bytes());
                stream.write_all(&msg)?;
                // A client that does answer (psql does) is told the password
                // is wrong, so it exits instead of waiting for us.
                let mut tag = [0u8; 1];
                reader.read_exact(&mut tag)?;
                if tag[0] == b'p' {
                    stream.write_all(&error_response("28P01", "password authentication failed"))?;
                    stream.shutdown(Shutdown::Write)?;
                }
                return Ok(());
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// Untyped startup packets until one is answered per the script.
fn script(
    reader: &mut Recorder<'_>,
    stream: &mut TcpStream,
    ssl: Reply,
    startup: Reply,
) -> std::io::Result<()> {
    while let Some(code) = next_startup_code(reader)? {
        let reply = match code {
            GSSENC_REQUEST => Reply::Refuse,
            SSL_REQUEST => ssl,
            PROTOCOL_3 => startup,
            _ => return Ok(()),
        };
        match reply {
            Reply::Silent => return Ok(()),
            Reply::Refuse => stream.write_all(b"N")?,
            Reply::TlsThenSilent => return stream.write_all(b"S"),
            Reply::TlsThenGarbage => {
                stream.write_all(b"S")?;
                let mut hello = [0u8; 512];
                if reader.read(&mut hello)? > 0 {
                    stream.write_all(GARBAGE)?;
                }
                return Ok(());
            }
            Reply::Error(sqlstate, message) => {
                stream.write_all(&error_response(sqlstate, message))?;
                return stream.shutdown(Shutdown::Write);
            }
            Reply::AuthOk => {
                // 'R', length 8, 0 = AuthenticationOk.
                let mut msg = vec![b'R'];
                msg.extend_from_slice(&8u32.to_be_bytes());
                msg.extend_from_slice(&0u32.to_be_bytes());
                return stream.write_all(&msg);
            }
        }
    }
    Ok(())
}

/// A FATAL ErrorResponse ('E') with this SQLSTATE and message.
fn error_response(sqlstate: &str, message: &str) -> Vec<u8> {
    let mut fields = Vec::new();
    for (code, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', sqlstate),
        (b'M', message),
    ] {
        fields.push(code);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut msg = vec![b'E'];
    msg.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
    msg.extend_from_slice(&fields);
    msg
}

/// A reader that appends every byte it reads to `received`.
struct Recorder<'a> {
    stream: TcpStream,
    received: &'a Mutex<Vec<u8>>,
}

impl Recorder<'_> {
    fn drain(&mut self) {
        let mut buf = [0u8; 4096];
        while matches!(self.read(&mut buf), Ok(n) if n > 0) {}
    }
}

impl Read for Recorder<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.stream.read(buf)?;
        self.received.lock().unwrap().extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// One frontend message as a fake received it: `tag` is `None` for the
/// untyped startup packets (SSLRequest, StartupMessage, ...).
#[derive(Debug)]
pub struct FrontendMessage {
    pub tag: Option<u8>,
    pub body: Vec<u8>,
}

/// Splits one connection's bytes into frontend messages. A trailing
/// incomplete message is returned with what there is of it.
pub fn frontend_messages(bytes: &[u8]) -> Vec<FrontendMessage> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut started = false;
    while !rest.is_empty() {
        let (tag, header) = if started {
            (Some(rest[0]), 5)
        } else {
            (None, 4)
        };
        if rest.len() < header {
            out.push(FrontendMessage {
                tag,
                body: rest.to_vec(),
            });
            break;
        }
        let len_at = header - 4;
        let len = u32::from_be_bytes(rest[len_at..header].try_into().unwrap()) as usize;
        let end = (len_at + len).clamp(header, rest.len());
        let body = rest[header..end].to_vec();
        if !started && body.len() >= 4 && body[..4] == PROTOCOL_3.to_be_bytes() {
            started = true;
        }
        out.push(FrontendMessage { tag, body });
        rest = &rest[end..];
    }
    out
}
