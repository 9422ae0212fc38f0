//! Shared test support: runs the built binary with a scrubbed environment
//! and checks its JSON report.
//!
//! `pki` makes certificates, `pg` runs real servers, `fake` runs peers that
//! only pretend to be servers, `libpq` asks libpq 17/18 for its verdict. [`Probe`] runs `pg-tls-probe --format json`
//! with nothing from the caller's environment but `PATH` (and a fresh
//! `HOME`, so no real `~/.pgpass` leaks in) plus the libpq variables a test
//! sets; [`Outcome`] asserts on the result and, on failure, prints
//! everything the binary said.

pub mod fake;
pub mod libpq;
pub mod pg;
pub mod pki;
pub mod pooler;
pub mod serve;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_pg-tls-probe");

/// How long a probe may run before the harness kills it: far above the
/// binary's own default deadline (10 s), so only a hang trips it.
const HARD_LIMIT: Duration = Duration::from_secs(60);

/// The libpq variables a test may set; anything else is a typo.
const LIBPQ_VARS: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGSSLMODE",
    "PGCONNECT_TIMEOUT",
    "PGSSLNEGOTIATION",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGSYSCONFDIR",
    "PGSSLCRL",
    "PGSSLCRLDIR",
    "PGREQUIREAUTH",
    "PGSSLMINPROTOCOLVERSION",
    "PGSSLMAXPROTOCOLVERSION",
    "PGSSLCERTMODE",
    "PGTARGETSESSIONATTRS",
    "PGCHANNELBINDING",
    "PGOPTIONS",
    // Not libpq's own, but OpenSSL's, which libpq 16+ honours for
    // sslrootcert=system: passed only where a test sets them.
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// One run of the binary, built up with libpq variables and flags.
#[derive(Clone, Debug)]
pub struct Probe {
    env: Vec<(&'static str, String)>,
    args: Vec<String>,
    /// A live server's log, shown when an assertion fails.
    server_log: Option<PathBuf>,
}

impl Probe {
    /// `--format json`, `PGSSLMODE=verify-full`, and nothing else.
    pub fn new() -> Probe {
        Probe {
            env: vec![("PGSSLMODE", "verify-full".to_string())],
            args: vec!["--format".into(), "json".into()],
            server_log: None,
        }
    }

    /// No flags and no variables at all: for usage errors, `--help` and
    /// other formats (run it with [`Probe::run_raw`]).
    pub fn bare() -> Probe {
        Probe {
            env: Vec::new(),
            args: Vec::new(),
            server_log: None,
        }
    }

    /// Aimed at a live server on localhost as the test role, trusting `root`.
    pub fn server(server: &pg::Server, root: &Path) -> Probe {
        let mut probe = Probe::new();
        probe.server_log = Some(server.log_path());
        probe
            .env("PGHOST", "localhost")
            .env("PGPORT", server.port.to_string())
            .env("PGUSER", pg::ROLE)
            .env("PGDATABASE", "postgres")
            .env("PGPASSWORD", pg::PASSWORD)
            .env("PGSSLROOTCERT", root.display().to_string())
    }

    /// Aimed at a fake peer on 127.0.0.1:`port`.
    pub fn port(port: u16) -> Probe {
        Probe::new()
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", port.to_string())
            .env("PGUSER", pg::ROLE)
            .env("PGDATABASE", "postgres")
            .env("PGCONNECT_TIMEOUT", "5")
    }

    /// Sets (or replaces) one libpq variable.
    pub fn env(mut self, key: &'static str, value: impl Into<String>) -> Probe {
        assert!(LIBPQ_VARS.contains(&key), "{key} is not in the contract");
        self.env.retain(|(k, _)| *k != key);
        self.env.push((key, value.into()));
        self
    }

    /// Removes one libpq variable (e.g. the server preset's PGPASSWORD).
    pub fn without_env(mut self, key: &'static str) -> Probe {
        self.env.retain(|(k, _)| *k != key);
        self
    }

    /// Replaces `--format json` with `--format <format>`.
    pub fn format(mut self, format: &str) -> Probe {
        let at = self.args.iter().position(|a| a == "--format");
        let at = at.expect("no --format to replace");
        self.args[at + 1] = format.to_string();
        self
    }

    /// Appends a command-line argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Probe {
        self.args.push(arg.into());
        self
    }

    /// Appends several command-line arguments.
    pub fn args<const N: usize>(mut self, args: [&str; N]) -> Probe {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Runs the binary to completion (killing it after [`HARD_LIMIT`]) and
    /// requires a JSON document on stdout.
    #[track_caller]
    pub fn run(&self) -> Outcome {
        let outcome = self.run_raw();
        if outcome.json.is_null() {
            panic!("stdout is not a JSON document\n{}", outcome.context());
        }
        outcome
    }

    /// Runs the binary to completion (killing it after [`HARD_LIMIT`]);
    /// `json` is `Null` unless stdout is a JSON document.
    #[track_caller]
    pub fn run_raw(&self) -> Outcome {
        let home = tempfile::tempdir().expect("temp HOME");
        if !self.env.iter().any(|(k, _)| *k == "PGSSLROOTCERT") {
            // Peers without a real CA still need a trust store: put one where
            // libpq looks by default, which also exercises that default.
            let dir = home.path().join(".postgresql");
            std::fs::create_dir(&dir).expect("create ~/.postgresql");
            std::fs::write(dir.join("root.crt"), pki::Ca::root("Fake peer CA").cert_pem)
                .expect("write ~/.postgresql/root.crt");
        }
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let pid = child.id();
        let stdout = read_in_thread(child.stdout.take().unwrap());
        let stderr = read_in_thread(child.stderr.take().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = match rx.recv_timeout(HARD_LIMIT) {
            Ok(status) => status.expect("wait for the probe"),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!(
                    "{BIN} still running after {HARD_LIMIT:?}; killed it\nprobe: {self:?}\n\
                     --- stderr ---\n{}",
                    stderr.join().unwrap_or_default()
                );
            }
        };
        let elapsed = started.elapsed();
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        Outcome {
            code: status.code(),
            json,
            stdout,
            stderr,
            elapsed,
            probe: self.clone(),
        }
    }
}

fn read_in_thread(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// What one run produced.
pub struct Outcome {
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    pub json: Value,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    probe: Probe,
}

const STATUS_NAMES: [&str; 4] = ["OK", "WARNING", "CRITICAL", "UNKNOWN"];

impl Outcome {
    /// Everything needed to understand a failed assertion.
    pub fn context(&self) -> String {
        let pretty = serde_json::to_string_pretty(&self.json).unwrap_or_default();
        format!(
            "exit code: {:?}, elapsed {:?}\nenv: {:?}\nargs: {:?}\n--- stdout (JSON) ---\n{}\n\
             --- stderr ---\n{}",
            self.code,
            self.elapsed,
            self.probe.env,
            self.probe.args,
            if self.json.is_null() {
                &self.stdout
            } else {
                &pretty
            },
            self.stderr
        ) + &self.server_log_tail()
    }

    /// The last lines of the live server's log, if there is one.
    fn server_log_tail(&self) -> String {
        let Some(path) = &self.probe.server_log else {
            return String::new();
        };
        let log = std::fs::read_to_string(path).unwrap_or_else(|e| format!("(unreadable: {e})"));
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("\n--- server log (last 30 lines) ---\n{tail}")
    }

    /// Asserts only the process exit code (for output that is not JSON).
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        if self.code != Some(code) {
            panic!("expected exit {code}\n{}", self.context());
        }
        self
    }

    /// The first line of stdout (the monitoring-plugins status line).
    pub fn first_line(&self) -> &str {
        self.stdout.lines().next().unwrap_or("")
    }

    /// Asserts that `needle` appears nowhere in stdout or stderr.
    #[track_caller]
    pub fn expect_absent(&self, needle: &str) -> &Self {
        if self.stdout.contains(needle) || self.stderr.contains(needle) {
            panic!("{needle:?} appears in the output\n{}", self.context());
        }
        self
    }

    /// Asserts the exit code and that `status` and `exit_code` in the JSON agree.
    #[track_caller]
    pub fn expect_exit(&self, code: i32) -> &Self {
        let name = STATUS_NAMES[code as usize];
        if self.code != Some(code) || self.json["exit_code"] != code || self.json["status"] != name
        {
            panic!(
                "expected exit {code} with status {name:?} and exit_code {code}\n{}",
                self.context()
            );
        }
        self
    }

    /// The named entry of `checks`, panicking if it is absent.
    #[track_caller]
    pub fn check(&self, name: &str) -> &Value {
        let found = self.json["checks"]
            .as_array()
            .and_then(|checks| checks.iter().find(|c| c["name"] == name));
        match found {
            Some(check) => check,
            None => panic!("no check named {name:?}\n{}", self.context()),
        }
    }

    /// Asserts the named check's status.
    #[track_caller]
    pub fn expect_check(&self, name: &str, status: &str) -> &Self {
        let check = self.check(name);
        if check["status"] != status {
            panic!(
                "check {name:?}: expected status {status:?}, got {}\n{}",
                check["status"],
                self.context()
            );
        }
        self
    }

    /// Asserts every check in `checks` is OK (and that there is at least one).
    #[track_caller]
    pub fn expect_all_checks_ok(&self) -> &Self {
        let checks = self.json["checks"].as_array();
        let bad: Vec<&Value> = checks
            .into_iter()
            .flatten()
            .filter(|c| c["status"] != "OK")
            .collect();
        if checks.is_none_or(|c| c.is_empty()) || !bad.is_empty() {
            panic!(
                "expected all checks OK, these are not: {bad:?}\n{}",
                self.context()
            );
        }
        self
    }

    /// The value at a JSON pointer such as `/failure/kind`, or `Null`.
    pub fn at(&self, pointer: &str) -> &Value {
        self.json.pointer(pointer).unwrap_or(&Value::Null)
    }

    /// Asserts the value at a JSON pointer.
    #[track_caller]
    pub fn expect_at(&self, pointer: &str, expected: impl Into<Value>) -> &Self {
        let expected = expected.into();
        if *self.at(pointer) != expected {
            panic!(
                "{pointer}: expected {expected}, got {}\n{}",
                self.at(pointer),
                self.context()
            );
        }
        self
    }

    /// Asserts `failure.kind` (and a few sanity properties of a failure).
    #[track_caller]
    pub fn expect_failure(&self, kind: &str) -> &Self {
        self.expect_at("/failure/kind", kind)
    }
}
