//! `pg-tls-probe serve` as a child process with a scrubbed environment,
//! and an HTTP/1.1 client small enough to also send what no real client
//! would (raw bytes, a head that never ends).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::{BIN, LIBPQ_VARS};

/// How long a single request may take before the client gives up: far
/// above any probe's timeout in these tests, so only a hang trips it.
const REQUEST_LIMIT: Duration = Duration::from_secs(30);

/// A running exporter; killed when dropped.
pub struct Exporter {
    pub addr: SocketAddr,
    child: Child,
    stderr: Arc<Mutex<String>>,
    _home: tempfile::TempDir,
}

impl Exporter {
    /// Starts `serve --listen 127.0.0.1:0 ARGS` with nothing from the
    /// caller's environment but `PATH`, a fresh `HOME` and `env` (libpq
    /// variables only), and waits for it to say where it listens.
    #[track_caller]
    pub fn start(env: &[(&'static str, String)], args: &[&str]) -> Exporter {
        Self::try_start(env, args).unwrap_or_else(|e| panic!("serve did not start: {e}"))
    }

    /// As [`Exporter::start`]; Err carries the exit status and stderr of
    /// an exporter that refused to start.
    pub fn try_start(env: &[(&'static str, String)], args: &[&str]) -> Result<Exporter, String> {
        for (key, _) in env {
            assert!(LIBPQ_VARS.contains(key), "{key} is not in the contract");
        }
        let home = tempfile::tempdir().expect("temp HOME");
        let mut child = Command::new(BIN)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN} serve: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            let mut pipe = child.stderr.take().expect("stderr pipe");
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut all = stderr.lock().unwrap();
                    all.push_str(&String::from_utf8_lossy(&buf[..n]));
                    if let Some(addr) = all
                        .split("listening on http://")
                        .nth(1)
                        .and_then(|rest| rest.split('/').next())
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                    {
                        let _ = tx.send(addr);
                    }
                }
            });
        }
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => Ok(Exporter {
                addr,
                child,
                stderr,
                _home: home,
            }),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().expect("wait for serve");
                let said = stderr.lock().unwrap().clone();
                Err(format!("{status}; stderr:\n{said}"))
            }
        }
    }

    /// Everything the exporter wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `GET path` (with its query), `Connection: close`, plus `headers`.
    #[track_caller]
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("Connection: close\r\n\r\n");
        self.raw(head.as_bytes())
    }

    /// Sends `bytes` as they are and reads until the exporter closes.
    #[track_caller]
    pub fn raw(&self, bytes: &[u8]) -> Response {
        let mut stream = self.connect();
        stream.write_all(bytes).expect("send the request");
        let mut reply = Vec::new();
        if let Err(e) = stream.read_to_end(&mut reply) {
            panic!(
                "no complete reply: {e}\n--- serve stderr ---\n{}",
                self.stderr()
            );
        }
        Response::parse(&reply)
    }

    /// A connection with [`REQUEST_LIMIT`] on reads.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect to the exporter");
        stream
            .set_read_timeout(Some(REQUEST_LIMIT))
            .expect("read timeout");
        stream
    }

    /// The value of one series of `/metrics`.
    #[track_caller]
    pub fn own(&self, series: &str) -> Option<f64> {
        self.get("/metrics", &[]).value(series)
    }

    /// Asserts that one series of `/metrics` reads `want`.
    #[track_caller]
    pub fn expect_own(&self, series: &str, want: f64) {
        self.get("/metrics", &[]).expect(series, want);
    }

    /// Polls `/metrics` until `series` reads `want` (an exporter's state
    /// seen from outside, not a sleep); panics after 20 s.
    #[track_caller]
    pub fn wait_for(&self, series: &str, want: f64) {
        let until = Instant::now() + Duration::from_secs(20);
        while self.own(series) != Some(want) {
            assert!(
                Instant::now() < until,
                "{series} never read {want}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits (at most `limit`) for the exit.
    #[track_caller]
    pub fn terminate(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let started = Instant::now();
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for serve") {
                return (status, started.elapsed());
            }
            assert!(
                started.elapsed() < limit,
                "serve still running {limit:?} after SIGTERM; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP response.
#[derive(Debug)]
pub struct Response {
    /// 0 when the exporter closed without answering.
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    pub body: String,
}

impl Response {
    fn parse(bytes: &[u8]) -> Response {
        let text = String::from_utf8_lossy(bytes);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Response {
            status,
            head: head.to_string(),
            body: body.to_string(),
        }
    }

    /// The sample of `series` (name and labels as written), as Prometheus
    /// parses it.
    pub fn value(&self, series: &str) -> Option<f64> {
        self.body
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    }

    /// Asserts the status code, showing the whole response otherwise.
    #[track_caller]
    pub fn expect_status(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "{}\n\n{}", self.head, self.body);
        self
    }

    /// Asserts that `series` reads `want`.
    #[track_caller]
    pub fn expect(&self, series: &str, want: f64) -> &Self {
        assert_eq!(self.value(series), Some(want), "{series} in\n{}", self.body);
        self
    }
}
