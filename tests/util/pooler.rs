//! Real connection poolers in front of a real PostgreSQL ([`pg::Server`]):
//! PgBouncer (Debian `pgbouncer`) and Pgpool-II (`pgpool2`), each with
//! client TLS required, and a backend link over the server's Unix socket,
//! over TCP without TLS, or over TCP with TLS (verify-full where the
//! pooler can verify).
//!
//! Like PostgreSQL, the poolers run as the `postgres` account when the
//! tests run as root (PgBouncer refuses root), in the foreground as a
//! child process in a process group of its own, stopped with all its
//! workers on drop, in a temporary directory of their own.
//! Without the binaries the tests skip, saying so; under `CI=true` they fail.

use std::fs;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::pg::{self, Server};

/// How the pooler reaches PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The server's Unix socket.
    Socket,
    /// TCP to 127.0.0.1 without TLS.
    Tcp,
    /// TCP to `localhost` with TLS, the certificate verified (verify-full
    /// for PgBouncer; Pgpool-II does not verify its backends).
    TcpTls,
}

/// The TLS files the pooler serves its clients with, and the CA that
/// signed the PostgreSQL server's certificate (for the backend link).
#[derive(Debug, Clone)]
pub struct PoolerTls {
    pub cert_pem: String,
    pub key_pem: String,
    pub server_ca_pem: String,
}

/// A running pooler; stopped on drop.
pub struct Pooler {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Pooler {
    /// The pooler's own log (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }
}

impl Drop for Pooler {
    /// Pgpool-II forks workers that outlive a killed parent: the pooler
    /// runs in a process group of its own, and the whole group is asked to
    /// stop (SIGTERM, to every process of it), then killed if still there.
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let signal = |sig: &str| {
            let _ = std::process::Command::new("kill")
                .args([sig, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        signal("-KILL");
        let _ = self.child.wait();
    }
}

/// The binary, or None after saying why (a panic under `CI=true`).
fn require(binary: &str, package: &str) -> Option<PathBuf> {
    let found = ["/usr/sbin", "/usr/bin"]
        .iter()
        .map(|d| Path::new(d).join(binary))
        .find(|p| p.is_file());
    if found.is_none() {
        let msg = format!("{binary} not found (Debian package {package})");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}; CI=true, so this fails instead of skipping");
        }
        eprintln!("skipping: {msg}");
    }
    found
}

/// A directory the pooler's account owns, with `files` written into it.
fn workdir(files: &[(&str, &str, u32)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("pgtp-pool")
        .tempdir_in("/tmp")
        .expect("pooler temp dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    pg::give(dir.path());
    for (name, text, mode) in files {
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(*mode)).unwrap();
        pg::give(&path);
    }
    dir
}

/// Starts `program` in `dir` as the server's account and waits until
/// `port` accepts connections (at most 30 s).
fn launch(program: &Path, args: &[&str], dir: tempfile::TempDir, port: u16, log: &str) -> Pooler {
    let log = dir.path().join(log);
    let out = fs::File::create(dir.path().join("stdout")).unwrap();
    let err = out.try_clone().unwrap();
    let child = pg::server_command(program)
        .process_group(0)
        .current_dir(dir.path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    let mut pooler = Pooler {
        port,
        child,
        dir,
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = pooler.child.try_wait() {
            panic!(
                "{} exited ({status}) before listening\n--- output ---\n{}\n--- log ---\n{}",
                program.display(),
                fs::read_to_string(pooler.dir.path().join("stdout")).unwrap_or_default(),
                pooler.log()
            );
        }
        if Instant::now() > deadline {
            let _ = pooler.child.kill();
            panic!(
                "{} not listening on {port} after 30 s\n{}",
                program.display(),
                pooler.log()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    pooler
}

/// PgBouncer 1.18 in front of `server` in session mode: `client_tls_sslmode
/// = require`, SCRAM for its clients (the test role's password in its
/// auth_file), the backend link as `backend` says.
pub fn pgbouncer(server: &Server, backend: Backend, tls: &PoolerTls) -> Option<Pooler> {
    let program = require("pgbouncer", "pgbouncer")?;
    let port = pg::free_port();
    let (host, server_tls) = match backend {
        Backend::Socket => (server.socket_dir().display().to_string(), "disable"),
        Backend::Tcp => ("127.0.0.1".to_string(), "disable"),
        Backend::TcpTls => ("localhost".to_string(), "verify-full"),
    };
    let ini = format!(
        "[databases]\n\
         postgres = host={host} port={pgport} dbname=postgres\n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir =\n\
         auth_type = scram-sha-256\n\
         auth_file = userlist.txt\n\
         pool_mode = session\n\
         logfile = pgbouncer.log\n\
         pidfile = pgbouncer.pid\n\
         client_tls_sslmode = require\n\
         client_tls_cert_file = client.crt\n\
         client_tls_key_file = client.key\n\
         server_tls_sslmode = {server_tls}\n\
         server_tls_ca_file = server-ca.crt\n\
         ignore_startup_parameters = extra_float_digits\n",
        pgport = server.port,
    );
    let users = format!("\"{}\" \"{}\"\n", pg::ROLE, pg::PASSWORD);
    let dir = workdir(&[
        ("pgbouncer.ini", &ini, 0o600),
        ("userlist.txt", &users, 0o600),
        ("client.crt", &tls.cert_pem, 0o644),
        ("client.key", &tls.key_pem, 0o600),
        ("server-ca.crt", &tls.server_ca_pem, 0o644),
    ]);
    Some(launch(
        &program,
        &["pgbouncer.ini"],
        dir,
        port,
        "pgbouncer.log",
    ))
}

/// Pgpool-II 4.3 in front of `server` (raw mode, one backend): `ssl = on`
/// and a pool_hba.conf in the article's shape (`hostssl ...
/// scram-sha-256`, then `host ... reject`), the test role's password in
/// pool_passwd, the backend link as `backend` says.
pub fn pgpool(server: &Server, backend: Backend, tls: &PoolerTls) -> Option<Pooler> {
    let program = require("pgpool", "pgpool2")?;
    let port = pg::free_port();
    let pcp_port = pg::free_port();
    let host = match backend {
        Backend::Socket => server.socket_dir().display().to_string(),
        Backend::Tcp | Backend::TcpTls => "127.0.0.1".to_string(),
    };
    let dir = workdir(&[]);
    let d = dir.path().display().to_string();
    let conf = format!(
        "backend_clustering_mode = 'raw'\n\
         listen_addresses = '127.0.0.1'\n\
         port = {port}\n\
         unix_socket_directories = '{d}'\n\
         pcp_listen_addresses = ''\n\
         pcp_port = {pcp_port}\n\
         pcp_socket_dir = '{d}'\n\
         backend_hostname0 = '{host}'\n\
         backend_port0 = {pgport}\n\
         backend_weight0 = 1\n\
         backend_flag0 = 'DISALLOW_TO_FAILOVER'\n\
         enable_pool_hba = on\n\
         pool_passwd = 'pool_passwd'\n\
         ssl = {ssl}\n\
         ssl_key = '{d}/client.key'\n\
         ssl_cert = '{d}/client.crt'\n\
         num_init_children = 4\n\
         max_pool = 1\n\
         connection_cache = off\n\
         load_balance_mode = off\n\
         sr_check_period = 0\n\
         health_check_period = 0\n\
         failover_on_backend_error = off\n\
         pid_file_name = '{d}/pgpool.pid'\n\
         logdir = '{d}'\n\
         log_destination = 'stderr'\n",
        pgport = server.port,
        // Pgpool-II's `ssl` covers both links: its backend link is TLS
        // whenever PostgreSQL offers it (never verified), plaintext when
        // PostgreSQL runs with ssl = off.
        ssl = "on",
    );
    let hba = "hostssl all all 127.0.0.1/32 scram-sha-256\nhost all all 0.0.0.0/0 reject\n";
    let passwd = format!("{}:TEXT{}\n", pg::ROLE, pg::PASSWORD);
    for (name, text, mode) in [
        ("pgpool.conf", conf.as_str(), 0o600),
        ("pool_hba.conf", hba, 0o600),
        ("pool_passwd", passwd.as_str(), 0o600),
        ("pcp.conf", "", 0o600),
        ("client.crt", tls.cert_pem.as_str(), 0o644),
        ("client.key", tls.key_pem.as_str(), 0o600),
    ] {
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        pg::give(&path);
    }
    let args = [
        "-n",
        "-f",
        "pgpool.conf",
        "-a",
        "pool_hba.conf",
        "-F",
        "pcp.conf",
    ];
    Some(launch(&program, &args, dir, port, "stdout"))
}
