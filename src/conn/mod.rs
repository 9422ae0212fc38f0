//! Resolves libpq-compatible inputs (flags, connection string or URI, PG*
//! variables, password file) into one typed [`Target`]: the connection
//! parameters of one server.
//!
//! Sources, highest precedence first (as libpq): command-line flags, the
//! connection string or URI, PG* environment variables, built-in defaults;
//! the password comes from the connection string, PGPASSWORD, then the
//! password file. tokio-postgres rejects `sslmode=verify-full` and
//! `sslrootcert`, so the libpq keywords are parsed here, not by it.

mod conninfo;
mod options;
mod params;
mod pgpass;
pub mod service;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use params::Params;

pub use options::{AuthRefusal, RequireAuth, SslCertMode, TargetSessionAttrs, TlsRange};

/// Certificate checking the probe performs; anything weaker is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Chain to a trusted CA, no host name check (reported as weaker).
    VerifyCa,
    /// Chain and host name (the default).
    VerifyFull,
}

impl SslMode {
    /// The keyword value, as libpq spells it.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// libpq's `sslnegotiation`: how TLS starts on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslNegotiation {
    /// SSLRequest first, TLS after the server's 'S' (every version; the default).
    Postgres,
    /// TLS from the first byte, ALPN `postgresql` (PostgreSQL 17 and later).
    Direct,
}

/// Where trusted CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    /// A PEM file with one or more CA certificates.
    File(PathBuf),
    /// `sslrootcert=system`: the OS trust store, as libpq 16+ loads it.
    System(SystemPaths),
}

/// Where `sslrootcert=system` looks: OpenSSL's SSL_CTX_set_default_verify_paths
/// takes `SSL_CERT_FILE` and `SSL_CERT_DIR` (colon-separated) from the
/// environment, each replacing only its own default (the OS's file and
/// directory, see tls::load_trust).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemPaths {
    pub cert_file: Option<PathBuf>,
    pub cert_dir: Option<String>,
}

/// Where CRLs come from (`sslcrl`, `sslcrldir`, or libpq's default
/// `~/.postgresql/root.crl`); both None means no revocation check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrlFiles {
    pub file: Option<PathBuf>,
    pub dir: Option<PathBuf>,
}

/// libpq's `channel_binding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelBinding {
    Disable,
    Prefer,
    Require,
}

/// A password that never shows up in Debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// One server to probe, fully resolved.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host name or IP literal as given: used for the name check and SNI.
    pub host: String,
    /// libpq `hostaddr`: dial this address instead of resolving `host`.
    pub hostaddr: Option<IpAddr>,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    pub password: Option<Secret>,
    pub sslmode: SslMode,
    pub sslrootcert: RootCerts,
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
    /// sslcrl/sslcrldir, resolved as libpq does.
    pub crl: CrlFiles,
    pub channel_binding: ChannelBinding,
    /// libpq `connect_timeout`: bounds each connection attempt, connect to login.
    pub connect_timeout: Option<Duration>,
    pub application_name: String,
    pub sslnegotiation: SslNegotiation,
    /// `require_auth`: which authentication requests may be answered.
    pub require_auth: Option<RequireAuth>,
    /// `ssl_min_protocol_version` / `ssl_max_protocol_version`.
    pub tls_range: TlsRange,
    pub sslcertmode: SslCertMode,
    pub target_session_attrs: TargetSessionAttrs,
    /// `sslsni`: send the host name in the TLS handshake's SNI.
    pub sslsni: bool,
    /// `sslkeylogfile` (libpq 18): where to append the session's TLS keys.
    pub sslkeylogfile: Option<PathBuf>,
    /// `options`: command-line options for the server process (`-c name=value`).
    pub options: Option<String>,
    /// What was ignored or assumed on the way (ignored keywords, a password
    /// file skipped for its permissions, default host or certificates), for
    /// the report: no silent surprises, no printing from here.
    pub notes: Vec<String>,
}

/// Flags that name parts of the target (psql's -h -p -U -d).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub conninfo: Option<String>,
    pub host: Option<String>,
    pub port: Option<String>,
    pub username: Option<String>,
    pub dbname: Option<String>,
    /// `--sslnegotiation`.
    pub sslnegotiation: Option<String>,
    /// The service to read, above any named elsewhere (a fleet's
    /// `--services` names each in turn this way).
    pub service: Option<String>,
}

/// Inputs could not be turned into a target: exit UNKNOWN with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The largest file the probe reads as input: CA bundles (a system
/// bundle is ~200 KiB), keys, the password file. Bigger is a mistake.
pub const MAX_INPUT_FILE: u64 = 8 * 1024 * 1024;

/// Why an input file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadFailure {
    #[error("{0}")]
    Io(std::io::Error),
    #[error("not a regular file")]
    NotAFile,
    #[error("larger than {MAX_INPUT_FILE} bytes")]
    TooLarge,
}

/// Reads a regular file of at most [`MAX_INPUT_FILE`] bytes. A FIFO,
/// device or endless file named by mistake would otherwise block or grow
/// before the run's deadline starts to count.
pub fn read_input_file(path: &Path) -> Result<Vec<u8>, ReadFailure> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(ReadFailure::Io)?;
    if !meta.is_file() {
        return Err(ReadFailure::NotAFile);
    }
    if meta.len() > MAX_INPUT_FILE {
        return Err(ReadFailure::TooLarge);
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_INPUT_FILE + 1).read_to_end(&mut bytes))
        .map_err(ReadFailure::Io)?;
    if bytes.len() as u64 > MAX_INPUT_FILE {
        return Err(ReadFailure::TooLarge);
    }
    Ok(bytes)
}

/// Resolves flags, connection string, service file, environment and
/// password file into the one target they name; a host list is refused
/// here (see [`resolve_all`]).
pub fn resolve(
    flags: &Flags,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
    os_user: &str,
) -> Result<Target, UsageError> {
    let mut targets = resolve_all(flags, env, home, os_user)?;
    match targets.len() {
        1 => Ok(targets.remove(0)),
        n => Err(UsageError(format!("{n} hosts given where one is expected"))),
    }
}

/// Resolves the sources into every target they name: one, or one per
/// entry of a libpq host list (`host=a,b,c`), each probed on its own.
///
/// `env` looks up an environment variable; `home` is the user's home
/// directory (for ~/.pgpass, ~/.pg_service.conf and
/// ~/.postgresql/root.crt); `os_user` is the default user name. All three
/// are parameters so tests need no process state.
pub fn resolve_all(
    flags: &Flags,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
    os_user: &str,
) -> Result<Vec<Target>, UsageError> {
    let mut notes = Vec::new();
    let (conninfo, from_flags) = split_flags(flags, &mut notes)?;
    let from_conninfo = match conninfo {
        Some(s) => conninfo::parse(s, &mut notes)?,
        None => Params::default(),
    };
    let from_env = Params::from_env(env)?;
    let above_env = from_flags.over(from_conninfo);
    let from_service = match above_env.service.as_deref().or(from_env.service.as_deref()) {
        Some(name) => {
            let files = service::ServiceFiles::locate(
                non_empty(above_env.servicefile.as_deref()),
                non_empty(from_env.servicefile.as_deref()),
                env("PGSYSCONFDIR").as_deref().filter(|d| !d.is_empty()),
                home,
            );
            files.lookup(name, &mut notes)?
        }
        None => Params::default(),
    };
    let layered = above_env.over(from_service).over(from_env);
    expand_hosts(layered)?
        .into_iter()
        .map(|p| {
            let mut target = finish(p, home, os_user, notes.clone())?;
            target.sslrootcert = target.sslrootcert.with_system_paths(env);
            Ok(target)
        })
        .collect()
}

/// Whether a connection string or URI sets a password (for refusing one
/// where it does not belong).
pub fn password_in(conninfo: &str, notes: &mut Vec<String>) -> Result<bool, UsageError> {
    Ok(conninfo::parse(conninfo, notes)?.password.is_some())
}

/// The service files the sources name (the `servicefile` keyword of the
/// connection string, PGSERVICEFILE, PGSYSCONFDIR, the home directory), for
/// listing their services.
pub fn service_files(
    flags: &Flags,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<service::ServiceFiles, UsageError> {
    let mut notes = Vec::new();
    let (conninfo, _) = split_flags(flags, &mut notes)?;
    let from_conninfo = match conninfo {
        Some(s) => conninfo::parse(s, &mut notes)?,
        None => Params::default(),
    };
    let from_env = Params::from_env(env)?;
    Ok(service::ServiceFiles::locate(
        non_empty(from_conninfo.servicefile.as_deref()),
        non_empty(from_env.servicefile.as_deref()),
        env("PGSYSCONFDIR").as_deref().filter(|d| !d.is_empty()),
        home,
    ))
}

/// libpq's comma lists, one entry per host: `host` and `hostaddr` lists
/// must be as long as each other when both are given; `port` is one value
/// for all or one per host.
fn expand_hosts(p: Params) -> Result<Vec<Params>, UsageError> {
    let split = |v: &Option<String>| -> Option<Vec<String>> {
        non_empty(v.as_deref()).map(|v| v.split(',').map(str::to_string).collect())
    };
    let (hosts, addrs, ports) = (split(&p.host), split(&p.hostaddr), split(&p.port));
    let count = |v: &Option<Vec<String>>| v.as_ref().map_or(0, Vec::len);
    let n = count(&hosts).max(count(&addrs)).max(1);
    if let (Some(h), Some(a)) = (&hosts, &addrs) {
        if h.len() != a.len() {
            return Err(UsageError(format!(
                "could not match {} host names to {} hostaddr values",
                h.len(),
                a.len()
            )));
        }
    }
    if let Some(ports) = &ports {
        if ports.len() != 1 && ports.len() != n {
            return Err(UsageError(format!(
                "could not match {} port numbers to {n} hosts",
                ports.len()
            )));
        }
    }
    if n == 1 {
        return Ok(vec![p]);
    }
    let pick = |v: &Option<Vec<String>>, i: usize| {
        v.as_ref()
            .map(|list| list.get(i).or(list.first()).cloned().unwrap_or_default())
    };
    Ok((0..n)
        .map(|i| Params {
            host: pick(&hosts, i),
            hostaddr: pick(&addrs, i),
            port: pick(&ports, i),
            ..p.clone()
        })
        .collect())
}

/// Adds a note unless the same text is already there.
fn push_note(notes: &mut Vec<String>, note: String) {
    if !notes.contains(&note) {
        notes.push(note);
    }
}

/// `Some` only for a non-empty value.
fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

/// Finds the connection string among the positional argument and `-d`, as
/// psql does, and turns the remaining flags into the top-precedence source.
///
/// Empty flags count as absent: libpq ignores empty values passed beside
/// the connection string.
fn split_flags<'f>(
    flags: &'f Flags,
    notes: &mut Vec<String>,
) -> Result<(Option<&'f str>, Params), UsageError> {
    let positional = non_empty(flags.conninfo.as_deref());
    let dash_d = non_empty(flags.dbname.as_deref());
    let is_cs = |v: &&str| conninfo::is_conninfo(v);
    let (pos_cs, d_cs) = (positional.filter(is_cs), dash_d.filter(is_cs));
    if pos_cs.is_some() && d_cs.is_some() {
        return Err(UsageError(
            "two connection strings given (CONNINFO and -d); give one".to_string(),
        ));
    }
    let pos_db = positional.filter(|v| !is_cs(v));
    let d_db = dash_d.filter(|v| !is_cs(v));
    if let (Some(pos), Some(_)) = (pos_db, d_db) {
        notes.push(format!(
            "database name \"{pos}\" (positional argument) overridden by -d"
        ));
    }
    let owned = |v: Option<&str>| v.map(str::to_string);
    let params = Params {
        service: owned(non_empty(flags.service.as_deref())),
        host: owned(non_empty(flags.host.as_deref())),
        port: owned(non_empty(flags.port.as_deref())),
        user: owned(non_empty(flags.username.as_deref())),
        dbname: owned(d_db.or(pos_db)),
        sslnegotiation: owned(non_empty(flags.sslnegotiation.as_deref())),
        ..Params::default()
    };
    Ok((pos_cs.or(d_cs), params))
}

const DEFAULT_PORT: u16 = 5432;
const DEFAULT_APPLICATION_NAME: &str = "pg-tls-probe";

/// Validates the layered settings and fills in libpq's defaults.
fn finish(
    p: Params,
    home: Option<&Path>,
    os_user: &str,
    mut notes: Vec<String>,
) -> Result<Target, UsageError> {
    let sslnegotiation = parse_sslnegotiation(p.sslnegotiation.as_deref())?;
    let require_auth = RequireAuth::parse(p.require_auth.as_deref().unwrap_or(""))?;
    let tls_range = TlsRange::parse(
        p.ssl_min_protocol_version.as_deref(),
        p.ssl_max_protocol_version.as_deref(),
    )?;
    let sslcertmode = SslCertMode::parse(non_empty(p.sslcertmode.as_deref()))?;
    let target_session_attrs =
        TargetSessionAttrs::parse(non_empty(p.target_session_attrs.as_deref()))?;
    let sslsni = options::sslsni(non_empty(p.sslsni.as_deref()));
    options::check_gssencmode(non_empty(p.gssencmode.as_deref()))?;
    options::check_protocol_versions(
        non_empty(p.min_protocol_version.as_deref()),
        non_empty(p.max_protocol_version.as_deref()),
    )?;
    let sslmode = parse_sslmode(p.sslmode.as_deref())?;
    let hostaddr = parse_hostaddr(non_empty(p.hostaddr.as_deref()))?;
    let (host, hostaddr) =
        resolve_host(non_empty(p.host.as_deref()), hostaddr, sslmode, &mut notes)?;
    let port = parse_port(non_empty(p.port.as_deref()))?;
    let user = non_empty(p.user.as_deref()).unwrap_or(os_user).to_string();
    let dbname = non_empty(p.dbname.as_deref()).unwrap_or(&user).to_string();
    let channel_binding = parse_channel_binding(p.channel_binding.as_deref())?;
    let connect_timeout = parse_connect_timeout(p.connect_timeout.as_deref())?;
    let application_name = non_empty(p.application_name.as_deref())
        .unwrap_or(DEFAULT_APPLICATION_NAME)
        .to_string();
    let sslrootcert = resolve_root_certs(p.sslrootcert.as_deref(), sslmode, home, &mut notes)?;
    let crl = resolve_crl(
        non_empty(p.sslcrl.as_deref()),
        non_empty(p.sslcrldir.as_deref()),
        &sslrootcert,
        home,
        &mut notes,
    );
    let (sslcert, sslkey) = resolve_client_cert(
        non_empty(p.sslcert.as_deref()),
        non_empty(p.sslkey.as_deref()),
        home,
        &mut notes,
    )?;

    // libpq consults the password file only when no (non-empty) password
    // came from the connection string or PGPASSWORD.
    let password = match p.password.filter(|s| !s.0.is_empty()) {
        Some(password) => Some(password),
        None => {
            let file = match non_empty(p.passfile.as_deref()) {
                Some(path) => Some(PathBuf::from(path)),
                None => home.map(|h| h.join(".pgpass")),
            };
            let port_text = port.to_string();
            let want = pgpass::Lookup {
                host: &host,
                port: &port_text,
                dbname: &dbname,
                user: &user,
            };
            match file {
                Some(file) => pgpass::lookup(&file, want, &mut notes)?,
                None => None,
            }
        }
    };

    Ok(Target {
        host,
        hostaddr,
        port,
        user,
        dbname,
        password,
        sslmode,
        sslrootcert,
        sslcert,
        sslkey,
        crl,
        channel_binding,
        connect_timeout,
        application_name,
        sslnegotiation,
        require_auth,
        tls_range,
        sslcertmode,
        target_session_attrs,
        sslsni,
        sslkeylogfile: non_empty(p.sslkeylogfile.as_deref()).map(PathBuf::from),
        options: non_empty(p.options.as_deref()).map(str::to_string),
        notes,
    })
}

/// The probe's TLS sessions must verify the server; weaker modes would make
/// an OK mean nothing, so they are refused rather than downgraded.
fn parse_sslmode(value: Option<&str>) -> Result<SslMode, UsageError> {
    const WHY: &str = "pg-tls-probe checks with verify-full (or verify-ca)";
    match value.unwrap_or("verify-full") {
        "verify-full" => Ok(SslMode::VerifyFull),
        "verify-ca" => Ok(SslMode::VerifyCa),
        "disable" => Err(UsageError(format!(
            "sslmode=disable does not use TLS; {WHY}"
        ))),
        mode @ ("allow" | "prefer") => Err(UsageError(format!(
            "sslmode={mode} may fall back to a plaintext connection; {WHY}"
        ))),
        "require" => Err(UsageError(format!(
            "sslmode=require does not verify the server certificate; {WHY}"
        ))),
        other => Err(UsageError(format!("invalid sslmode value: \"{other}\""))),
    }
}

/// libpq allows `direct` only with sslmode `require` or stronger; every
/// sslmode this probe accepts (verify-ca, verify-full) is, so the weaker
/// combinations are already refused by [`parse_sslmode`].
fn parse_sslnegotiation(value: Option<&str>) -> Result<SslNegotiation, UsageError> {
    match value.unwrap_or("postgres") {
        "postgres" => Ok(SslNegotiation::Postgres),
        "direct" => Ok(SslNegotiation::Direct),
        other => Err(UsageError(format!(
            "invalid sslnegotiation value: \"{other}\""
        ))),
    }
}

fn parse_channel_binding(value: Option<&str>) -> Result<ChannelBinding, UsageError> {
    match value.unwrap_or("prefer") {
        "disable" => Ok(ChannelBinding::Disable),
        "prefer" => Ok(ChannelBinding::Prefer),
        "require" => Ok(ChannelBinding::Require),
        other => Err(UsageError(format!(
            "invalid channel_binding value: \"{other}\""
        ))),
    }
}

/// Host lists are split into targets before this point (see
/// [`expand_hosts`]); a comma left in one entry is a mistake.
fn one_host_only(keyword: &str, value: &str) -> Result<(), UsageError> {
    if value.contains(',') {
        return Err(UsageError(format!(
            "{keyword} \"{value}\" holds a comma inside one entry"
        )));
    }
    Ok(())
}

fn parse_hostaddr(value: Option<&str>) -> Result<Option<(IpAddr, String)>, UsageError> {
    let Some(text) = value else {
        return Ok(None);
    };
    one_host_only("hostaddr", text)?;
    match text.parse::<IpAddr>() {
        Ok(addr) => Ok(Some((addr, text.to_string()))),
        Err(_) => Err(UsageError(format!(
            "invalid hostaddr \"{text}\": not an IP address"
        ))),
    }
}

/// The longest `host` taken (RFC 1035: 253 characters, plus room for a
/// trailing dot and an IPv6 literal with a zone).
const MAX_HOST_LEN: usize = 255;

/// The name the certificate is checked against. libpq refuses verify-full
/// with only a hostaddr ("host name must be specified for a verified SSL
/// connection"), and so does the probe; under verify-ca the address stands
/// in. Without either, libpq would use a Unix socket, where there is no
/// TLS: the probe goes to localhost over TCP instead.
fn resolve_host(
    host: Option<&str>,
    hostaddr: Option<(IpAddr, String)>,
    sslmode: SslMode,
    notes: &mut Vec<String>,
) -> Result<(String, Option<IpAddr>), UsageError> {
    let addr = hostaddr.as_ref().map(|(addr, _)| *addr);
    if let Some(host) = host {
        one_host_only("host", host)?;
        // No name resolves past this, and a TLS name (SNI) field cannot
        // hold much more: refused rather than cut or sent.
        if host.len() > MAX_HOST_LEN {
            return Err(UsageError(format!(
                "host name of {} bytes: a DNS name has at most 253 characters (the limit here is {MAX_HOST_LEN})",
                host.len()
            )));
        }
        if host.starts_with('/') || host.starts_with('@') {
            return Err(UsageError(format!(
                "host \"{host}\" is a Unix-domain socket; TLS needs a TCP host name or IP address"
            )));
        }
        return Ok((host.to_string(), addr));
    }
    match hostaddr {
        Some(_) if sslmode == SslMode::VerifyFull => Err(UsageError(
            "sslmode=verify-full needs a host name to check the certificate against: set host as well as hostaddr (libpq: host name must be specified for a verified SSL connection)"
                .to_string(),
        )),
        Some((addr, text)) => {
            notes.push(format!(
                "no host name given; connecting to hostaddr {text} (verify-ca checks no name)"
            ));
            Ok((text, Some(addr)))
        }
        None => {
            notes.push("no host given; using localhost (TLS needs TCP)".to_string());
            Ok(("localhost".to_string(), None))
        }
    }
}

/// libpq's `parse_int_param`: C whitespace around an optionally signed
/// decimal that fits an `int`.
fn parse_c_int(value: &str) -> Option<i32> {
    let is_c_space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c');
    let trimmed = value.trim_matches(is_c_space);
    if trimmed.starts_with("+-") || trimmed.starts_with("-+") {
        return None;
    }
    trimmed.parse().ok()
}

fn parse_port(value: Option<&str>) -> Result<u16, UsageError> {
    let Some(text) = value else {
        return Ok(DEFAULT_PORT);
    };
    one_host_only("port", text)?;
    parse_c_int(text)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&n| n != 0)
        .ok_or_else(|| UsageError(format!("invalid port number: \"{text}\"")))
}

/// libpq: zero or negative means no limit, and 1 is raised to 2 because a
/// one-second timeout can expire almost at once with second granularity.
fn parse_connect_timeout(value: Option<&str>) -> Result<Option<Duration>, UsageError> {
    let Some(text) = value else {
        return Ok(None);
    };
    let seconds = parse_c_int(text).ok_or_else(|| {
        UsageError(format!(
            "invalid integer value \"{text}\" for connection option \"connect_timeout\""
        ))
    })?;
    Ok(match seconds {
        ..=0 => None,
        1 => Some(Duration::from_secs(2)),
        n => Some(Duration::from_secs(u64::from(n.unsigned_abs()))),
    })
}

/// Expands a leading `~/`, which a shell would not expand inside a
/// connection string.
fn expand_home(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

impl RootCerts {
    /// `system` with OpenSSL's variables from `env`.
    fn with_system_paths(self, env: &dyn Fn(&str) -> Option<String>) -> RootCerts {
        match self {
            RootCerts::System(_) => RootCerts::System(SystemPaths {
                cert_file: non_empty(env("SSL_CERT_FILE").as_deref()).map(PathBuf::from),
                cert_dir: non_empty(env("SSL_CERT_DIR").as_deref()).map(str::to_string),
            }),
            file => file,
        }
    }
}

/// `sslrootcert`, or libpq's default `~/.postgresql/root.crt`. Under
/// verify-ca/verify-full libpq fails without a root certificate; so does
/// this, before any connection is made.
fn resolve_root_certs(
    value: Option<&str>,
    sslmode: SslMode,
    home: Option<&Path>,
    notes: &mut Vec<String>,
) -> Result<RootCerts, UsageError> {
    match non_empty(value) {
        Some("system") => {
            // libpq refuses this pairing: any public CA's certificate
            // would pass without the host name check.
            if sslmode == SslMode::VerifyCa {
                return Err(UsageError(
                    "sslmode=verify-ca may not be used with sslrootcert=system (use verify-full)"
                        .to_string(),
                ));
            }
            Ok(RootCerts::System(SystemPaths::default()))
        }
        Some(path) => Ok(RootCerts::File(expand_home(path, home))),
        None => {
            let Some(home) = home else {
                return Err(UsageError(
                    "no root certificate: set sslrootcert or PGSSLROOTCERT (no home directory for libpq's default ~/.postgresql/root.crt)"
                        .to_string(),
                ));
            };
            let default = home.join(".postgresql").join("root.crt");
            if !default.exists() {
                return Err(UsageError(format!(
                    "no root certificate: set sslrootcert or PGSSLROOTCERT (libpq's default {} does not exist)",
                    default.display()
                )));
            }
            notes.push(format!(
                "sslrootcert not set; using libpq's default {}",
                default.display()
            ));
            Ok(RootCerts::File(default))
        }
    }
}

/// `sslcrl` and `sslcrldir` as libpq reads them: beside a root certificate
/// file only (libpq 16+ loads none with `sslrootcert=system`), and with
/// neither set, `~/.postgresql/root.crl` when it exists.
fn resolve_crl(
    file: Option<&str>,
    dir: Option<&str>,
    roots: &RootCerts,
    home: Option<&Path>,
    notes: &mut Vec<String>,
) -> CrlFiles {
    if matches!(roots, RootCerts::System(_)) {
        if file.is_some() || dir.is_some() {
            notes.push(
                "sslcrl/sslcrldir not used with sslrootcert=system (libpq loads CRLs only \
                 beside a root certificate file)"
                    .to_string(),
            );
        }
        return CrlFiles::default();
    }
    if file.is_some() || dir.is_some() {
        return CrlFiles {
            file: file.map(|f| expand_home(f, home)),
            dir: dir.map(|d| expand_home(d, home)),
        };
    }
    let default = home
        .map(|h| h.join(".postgresql").join("root.crl"))
        .filter(|f| f.exists());
    if let Some(default) = &default {
        notes.push(format!(
            "sslcrl not set; using libpq's default {}",
            default.display()
        ));
    }
    CrlFiles {
        file: default,
        dir: None,
    }
}

/// Client certificate and key: both or neither. Like libpq, an existing
/// `~/.postgresql/postgresql.crt` is used when sslcert is unset.
fn resolve_client_cert(
    cert: Option<&str>,
    key: Option<&str>,
    home: Option<&Path>,
    notes: &mut Vec<String>,
) -> Result<(Option<PathBuf>, Option<PathBuf>), UsageError> {
    let key = key.map(|k| expand_home(k, home));
    if let Some(cert) = cert {
        return match key {
            Some(key) => Ok((Some(expand_home(cert, home)), Some(key))),
            None => Err(UsageError(
                "sslcert given without sslkey: set sslkey (or PGSSLKEY) too".to_string(),
            )),
        };
    }
    let dir = home.map(|h| h.join(".postgresql"));
    let default_cert = dir
        .as_ref()
        .map(|d| d.join("postgresql.crt"))
        .filter(|c| c.exists());
    match (default_cert, key) {
        (None, None) => Ok((None, None)),
        (None, Some(_)) => Err(UsageError(
            "sslkey given without sslcert: set sslcert (or PGSSLCERT) too".to_string(),
        )),
        (Some(cert), Some(key)) => {
            notes.push(format!(
                "sslcert not set; using libpq's default client certificate {}",
                cert.display()
            ));
            Ok((Some(cert), Some(key)))
        }
        (Some(cert), None) => {
            let key = cert.with_file_name("postgresql.key");
            notes.push(format!(
                "sslcert not set; using libpq's default client certificate {} and key {}",
                cert.display(),
                key.display()
            ));
            Ok((Some(cert), Some(key)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A home directory with nothing in it, so no default files exist.
    fn empty_home() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn env_from(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    /// Resolves with the given home; sslrootcert=system unless set.
    fn run_in(home: &Path, flags: Flags, env: &[(&str, &str)]) -> Result<Target, UsageError> {
        let mut env = env.to_vec();
        if !env.iter().any(|(k, _)| *k == "PGSSLROOTCERT") {
            env.push(("PGSSLROOTCERT", "system"));
        }
        resolve(&flags, &env_from(&env), Some(home), "osuser")
    }

    fn run(flags: Flags, env: &[(&str, &str)]) -> Result<Target, UsageError> {
        run_in(empty_home().path(), flags, env)
    }

    fn conninfo(s: &str) -> Flags {
        Flags {
            conninfo: Some(s.to_string()),
            ..Flags::default()
        }
    }

    fn ok(flags: Flags, env: &[(&str, &str)]) -> Target {
        run(flags, env).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(flags: Flags, env: &[(&str, &str)]) -> String {
        match run(flags, env) {
            Ok(t) => panic!("resolved: {t:?}"),
            Err(e) => e.0,
        }
    }

    fn pw(t: &Target) -> Option<&str> {
        t.password.as_ref().map(|s| s.0.as_str())
    }

    #[test]
    fn defaults() {
        let t = ok(Flags::default(), &[]);
        assert_eq!(t.host, "localhost");
        assert_eq!(t.hostaddr, None);
        assert_eq!(t.port, 5432);
        assert_eq!(t.user, "osuser");
        assert_eq!(t.dbname, "osuser");
        assert_eq!(t.password, None);
        assert_eq!(t.sslmode, SslMode::VerifyFull);
        assert_eq!(t.sslrootcert, RootCerts::System(SystemPaths::default()));
        assert_eq!((t.sslcert, t.sslkey), (None, None));
        assert_eq!(t.channel_binding, ChannelBinding::Prefer);
        assert_eq!(t.connect_timeout, None);
        assert_eq!(t.application_name, "pg-tls-probe");
        assert_eq!(
            t.notes,
            vec!["no host given; using localhost (TLS needs TCP)"]
        );
    }

    #[test]
    fn precedence_flag_conninfo_env_default() {
        let env = [
            ("PGHOST", "envhost"),
            ("PGPORT", "1111"),
            ("PGUSER", "envuser"),
            ("PGDATABASE", "envdb"),
            ("PGAPPNAME", "envapp"),
        ];
        let t = ok(Flags::default(), &env);
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str(), t.dbname.as_str()),
            ("envhost", 1111, "envuser", "envdb")
        );
        assert_eq!(t.application_name, "envapp");

        let t = ok(conninfo("host=cihost port=2222 user=ciuser"), &env);
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str(), t.dbname.as_str()),
            ("cihost", 2222, "ciuser", "envdb")
        );

        let flags = Flags {
            host: Some("flaghost".into()),
            port: Some("3333".into()),
            username: Some("flaguser".into()),
            dbname: Some("flagdb".into()),
            ..conninfo("host=cihost port=2222 user=ciuser dbname=cidb")
        };
        let t = ok(flags, &env);
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str(), t.dbname.as_str()),
            ("flaghost", 3333, "flaguser", "flagdb")
        );
        assert!(t.notes.is_empty(), "{:?}", t.notes);
    }

    #[test]
    fn empty_flags_and_env_count_as_unset() {
        let flags = Flags {
            host: Some(String::new()),
            port: Some(String::new()),
            ..conninfo("host=cihost port=2222")
        };
        let t = ok(flags, &[("PGUSER", "")]);
        assert_eq!((t.host.as_str(), t.port), ("cihost", 2222));
        assert_eq!(t.user, "osuser");
    }

    #[test]
    fn empty_conninfo_value_hides_env() {
        // libpq keeps host='' (so PGHOST is not consulted), then applies
        // its default; ours is localhost.
        let t = ok(conninfo("host=''"), &[("PGHOST", "envhost")]);
        assert_eq!(t.host, "localhost");
    }

    #[test]
    fn dbname_defaults_to_user() {
        let t = ok(conninfo("user=alice"), &[]);
        assert_eq!(t.dbname, "alice");
    }

    #[test]
    fn positional_plain_word_is_a_dbname() {
        let t = ok(conninfo("mydb"), &[("PGDATABASE", "envdb")]);
        assert_eq!(t.dbname, "mydb");
        assert_eq!(t.host, "localhost");
    }

    #[test]
    fn dash_d_connection_string_is_expanded() {
        let flags = Flags {
            dbname: Some("postgresql://db.example/app".into()),
            ..Flags::default()
        };
        let t = ok(flags, &[]);
        assert_eq!((t.host.as_str(), t.dbname.as_str()), ("db.example", "app"));

        let flags = Flags {
            dbname: Some("host=db.example dbname=app".into()),
            conninfo: Some("otherdb".into()),
            ..Flags::default()
        };
        // The positional word is a dbname flag and beats the string.
        let t = ok(flags, &[]);
        assert_eq!(
            (t.host.as_str(), t.dbname.as_str()),
            ("db.example", "otherdb")
        );
    }

    #[test]
    fn dash_d_overrides_positional_dbname_with_note() {
        let flags = Flags {
            dbname: Some("ddb".into()),
            ..conninfo("posdb")
        };
        let t = ok(flags, &[]);
        assert_eq!(t.dbname, "ddb");
        assert!(
            t.notes.iter().any(|n| n.contains("\"posdb\"")),
            "{:?}",
            t.notes
        );

        let flags = Flags {
            dbname: Some("ddb".into()),
            ..conninfo("host=h dbname=cidb")
        };
        assert_eq!(ok(flags, &[]).dbname, "ddb");
    }

    #[test]
    fn two_connection_strings_are_refused() {
        let flags = Flags {
            dbname: Some("host=b".into()),
            ..conninfo("postgresql://a")
        };
        assert_eq!(
            err(flags, &[]),
            "two connection strings given (CONNINFO and -d); give one"
        );
    }

    #[test]
    fn sslmode_refusals() {
        for mode in ["disable", "allow", "prefer", "require"] {
            let e = err(conninfo(&format!("sslmode={mode}")), &[]);
            assert!(e.starts_with(&format!("sslmode={mode} ")), "{e}");
            assert!(
                e.ends_with("pg-tls-probe checks with verify-full (or verify-ca)"),
                "{e}"
            );
        }
        assert_eq!(
            err(conninfo("sslmode=require"), &[]),
            "sslmode=require does not verify the server certificate; pg-tls-probe checks with verify-full (or verify-ca)"
        );
        assert_eq!(
            err(Flags::default(), &[("PGSSLMODE", "bogus")]),
            "invalid sslmode value: \"bogus\""
        );
        assert_eq!(
            err(conninfo("sslmode="), &[]),
            "invalid sslmode value: \"\""
        );
        // The URI spelling ssl=true means require.
        assert!(err(conninfo("postgresql://db?ssl=true"), &[]).starts_with("sslmode=require"));
    }

    #[test]
    fn sslmode_verify_ca_and_env() {
        let t = ok(
            Flags::default(),
            &[("PGSSLMODE", "verify-ca"), ("PGSSLROOTCERT", "/ca.pem")],
        );
        assert_eq!(t.sslmode, SslMode::VerifyCa);
        assert_eq!(t.sslrootcert, RootCerts::File("/ca.pem".into()));
        // Conninfo beats env.
        let t = ok(conninfo("sslmode=verify-full"), &[("PGSSLMODE", "require")]);
        assert_eq!(t.sslmode, SslMode::VerifyFull);
    }

    #[test]
    fn verify_ca_with_system_roots_is_refused() {
        let e = err(conninfo("sslmode=verify-ca sslrootcert=system"), &[]);
        assert!(e.contains("sslrootcert=system"), "{e}");
    }

    /// libpq 16+ hands `system` to OpenSSL, which reads SSL_CERT_FILE and
    /// SSL_CERT_DIR; a file sslrootcert ignores them.
    #[test]
    fn system_roots_take_openssls_variables() {
        let env = [
            ("SSL_CERT_FILE", "/etc/company/ca.pem"),
            ("SSL_CERT_DIR", "/a:/b"),
        ];
        let t = ok(conninfo("sslrootcert=system"), &env);
        assert_eq!(
            t.sslrootcert,
            RootCerts::System(SystemPaths {
                cert_file: Some(PathBuf::from("/etc/company/ca.pem")),
                cert_dir: Some("/a:/b".into()),
            })
        );
        let t = ok(conninfo("sslrootcert=/ca.pem"), &env);
        assert_eq!(t.sslrootcert, RootCerts::File(PathBuf::from("/ca.pem")));
        let t = ok(conninfo("sslrootcert=system"), &[("SSL_CERT_FILE", "")]);
        assert_eq!(t.sslrootcert, RootCerts::System(SystemPaths::default()));
    }

    #[test]
    fn sslrootcert_tilde_expands() {
        let home = empty_home();
        let t = run_in(home.path(), conninfo("sslrootcert=~/ca/root.pem"), &[]).unwrap();
        assert_eq!(
            t.sslrootcert,
            RootCerts::File(home.path().join("ca/root.pem"))
        );
    }

    #[test]
    fn default_root_crt_is_used_when_present() {
        let home = empty_home();
        let flags = Flags::default();
        let env = |_: &str| None;
        let e = resolve(&flags, &env, Some(home.path()), "u").unwrap_err();
        assert!(
            e.0.starts_with("no root certificate: set sslrootcert or PGSSLROOTCERT"),
            "{e}"
        );
        let e = resolve(&flags, &env, None, "u").unwrap_err();
        assert!(e.0.starts_with("no root certificate"), "{e}");

        let dir = home.path().join(".postgresql");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("root.crt"), "").unwrap();
        let t = resolve(&flags, &env, Some(home.path()), "u").unwrap();
        assert_eq!(t.sslrootcert, RootCerts::File(dir.join("root.crt")));
        assert!(t.notes.iter().any(|n| n.starts_with("sslrootcert not set")));
    }

    #[test]
    fn client_cert_pairs() {
        let t = ok(conninfo("sslcert=/c.pem sslkey=/k.pem"), &[]);
        assert_eq!(t.sslcert, Some("/c.pem".into()));
        assert_eq!(t.sslkey, Some("/k.pem".into()));
        let t = ok(Flags::default(), &[("PGSSLCERT", "/c"), ("PGSSLKEY", "/k")]);
        assert_eq!(
            (t.sslcert, t.sslkey),
            (Some("/c".into()), Some("/k".into()))
        );
        assert_eq!(
            err(conninfo("sslcert=/c.pem"), &[]),
            "sslcert given without sslkey: set sslkey (or PGSSLKEY) too"
        );
        assert_eq!(
            err(conninfo("sslkey=/k.pem"), &[]),
            "sslkey given without sslcert: set sslcert (or PGSSLCERT) too"
        );
    }

    #[test]
    fn default_client_cert_is_used_when_present() {
        let home = empty_home();
        let dir = home.path().join(".postgresql");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("postgresql.crt"), "").unwrap();
        let t = run_in(home.path(), Flags::default(), &[]).unwrap();
        assert_eq!(t.sslcert, Some(dir.join("postgresql.crt")));
        assert_eq!(t.sslkey, Some(dir.join("postgresql.key")));
        assert!(t
            .notes
            .iter()
            .any(|n| n.contains("default client certificate")));
        // An explicit key pairs with the default certificate, as in libpq.
        let t = run_in(home.path(), conninfo("sslkey=/k"), &[]).unwrap();
        assert_eq!(t.sslkey, Some("/k".into()));
        assert_eq!(t.sslcert, Some(dir.join("postgresql.crt")));
    }

    #[test]
    fn unix_socket_hosts_are_refused() {
        for host in ["/var/run/postgresql", "@abstract"] {
            let e = err(conninfo(&format!("host={host}")), &[]);
            assert!(e.contains("Unix-domain socket"), "{e}");
        }
        let e = err(Flags::default(), &[("PGHOST", "/tmp")]);
        assert!(e.contains("Unix-domain socket"), "{e}");
        let e = err(conninfo("postgresql://%2Fvar%2Frun%2Fpostgresql/db"), &[]);
        assert!(e.contains("Unix-domain socket"), "{e}");
    }

    fn all(flags: Flags, env: &[(&str, &str)]) -> Vec<Target> {
        let mut env = env.to_vec();
        env.push(("PGSSLROOTCERT", "system"));
        let home = empty_home();
        resolve_all(&flags, &env_from(&env), Some(home.path()), "osuser")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A libpq host list is a fleet: one target per host, ports one for
    /// all or one each, as libpq pairs them.
    #[test]
    fn host_lists_expand_into_targets() {
        let hosts = |ts: Vec<Target>| -> Vec<(String, u16)> {
            ts.into_iter().map(|t| (t.host, t.port)).collect()
        };
        assert_eq!(
            hosts(all(conninfo("host=a,b,c port=6432"), &[])),
            [("a".into(), 6432), ("b".into(), 6432), ("c".into(), 6432)]
        );
        assert_eq!(
            hosts(all(conninfo("postgresql://a:1,b:2/db"), &[])),
            [("a".into(), 1), ("b".into(), 2)]
        );
        assert_eq!(hosts(all(Flags::default(), &[("PGHOST", "x,y")])).len(), 2);
        let t = all(
            conninfo("host=a,b hostaddr=192.0.2.1,192.0.2.2 dbname=d"),
            &[],
        );
        assert_eq!(t[1].hostaddr, Some("192.0.2.2".parse().unwrap()));
        assert_eq!(t[1].dbname, "d");
        for (bad, want) in [
            (
                "host=a,b port=1,2,3",
                "could not match 3 port numbers to 2 hosts",
            ),
            (
                "host=a,b hostaddr=192.0.2.1",
                "could not match 2 host names to 1 hostaddr values",
            ),
        ] {
            assert_eq!(err(conninfo(bad), &[]), want);
        }
        assert_eq!(
            err(conninfo("host=a,b"), &[]),
            "2 hosts given where one is expected"
        );
    }

    #[test]
    fn hostaddr() {
        let t = ok(conninfo("host=db.example hostaddr=192.0.2.7"), &[]);
        assert_eq!(t.host, "db.example");
        assert_eq!(t.hostaddr, Some("192.0.2.7".parse().unwrap()));
        let t = ok(
            conninfo("hostaddr=2001:db8::1 sslmode=verify-ca sslrootcert=/ca.pem"),
            &[],
        );
        assert_eq!(t.host, "2001:db8::1");
        assert!(t.notes[0].contains("hostaddr 2001:db8::1"), "{:?}", t.notes);
        let t = ok(
            conninfo("host='' hostaddr=192.0.2.7 sslmode=verify-ca sslrootcert=/ca.pem"),
            &[],
        );
        assert_eq!(t.host, "192.0.2.7");
        // As libpq: verify-full has no name to check without a host.
        assert!(err(conninfo("hostaddr=192.0.2.7"), &[]).contains("host name must be specified"));
        assert_eq!(
            err(conninfo("hostaddr=db.example"), &[]),
            "invalid hostaddr \"db.example\": not an IP address"
        );
    }

    #[test]
    fn ports() {
        assert_eq!(ok(conninfo("port=1"), &[]).port, 1);
        assert_eq!(ok(conninfo("port=65535"), &[]).port, 65535);
        assert_eq!(ok(conninfo("port=' 6432 '"), &[]).port, 6432);
        assert_eq!(ok(conninfo("port=+6432"), &[]).port, 6432);
        assert_eq!(ok(conninfo("port="), &[]).port, 5432);
        for bad in ["0", "65536", "-1", "abc", "54x", "99999999999", "+-1"] {
            assert_eq!(
                err(conninfo(&format!("port={bad}")), &[]),
                format!("invalid port number: \"{bad}\"")
            );
        }
        let flags = Flags {
            port: Some("x".into()),
            ..Flags::default()
        };
        assert_eq!(err(flags, &[]), "invalid port number: \"x\"");
    }

    #[test]
    fn connect_timeout_rules() {
        let timeout =
            |v: &str| ok(conninfo(&format!("connect_timeout='{v}'")), &[]).connect_timeout;
        assert_eq!(timeout("0"), None);
        assert_eq!(timeout("-5"), None);
        assert_eq!(timeout("1"), Some(Duration::from_secs(2)));
        assert_eq!(timeout("2"), Some(Duration::from_secs(2)));
        assert_eq!(timeout(" 10 "), Some(Duration::from_secs(10)));
        for bad in ["1.5", "ten", "", "10s"] {
            assert_eq!(
                err(conninfo(&format!("connect_timeout='{bad}'")), &[]),
                format!(
                    "invalid integer value \"{bad}\" for connection option \"connect_timeout\""
                )
            );
        }
        let t = ok(Flags::default(), &[("PGCONNECT_TIMEOUT", "7")]);
        assert_eq!(t.connect_timeout, Some(Duration::from_secs(7)));
        // Empty env var is unset, not an error.
        let t = ok(Flags::default(), &[("PGCONNECT_TIMEOUT", "")]);
        assert_eq!(t.connect_timeout, None);
    }

    #[test]
    fn channel_binding_values() {
        let cb = |v: &str| ok(conninfo(&format!("channel_binding={v}")), &[]).channel_binding;
        assert_eq!(cb("disable"), ChannelBinding::Disable);
        assert_eq!(cb("prefer"), ChannelBinding::Prefer);
        assert_eq!(cb("require"), ChannelBinding::Require);
        let t = ok(Flags::default(), &[("PGCHANNELBINDING", "require")]);
        assert_eq!(t.channel_binding, ChannelBinding::Require);
        assert_eq!(
            err(conninfo("channel_binding=maybe"), &[]),
            "invalid channel_binding value: \"maybe\""
        );
    }

    #[test]
    fn application_name_sources() {
        assert_eq!(
            ok(conninfo("application_name=ci"), &[("PGAPPNAME", "env")]).application_name,
            "ci"
        );
        assert_eq!(
            ok(conninfo("application_name=''"), &[]).application_name,
            "pg-tls-probe"
        );
        assert_eq!(
            ok(conninfo("fallback_application_name=x"), &[]).application_name,
            "pg-tls-probe"
        );
    }

    #[test]
    fn unknown_and_ignored_keywords() {
        assert_eq!(
            err(conninfo("host=db foo=1"), &[]),
            "invalid connection option \"foo\""
        );
        let t = ok(conninfo("host=db gsslib=gssapi keepalives=1"), &[]);
        assert_eq!(
            t.notes,
            vec![
                "ignored connection option \"gsslib\": only used by GSSAPI, which the probe does not speak",
                "ignored connection option \"keepalives\": TCP keepalive matters for long sessions; the probe's last milliseconds",
            ]
        );
        // Honoured now, so not noted as ignored.
        let t = ok(conninfo("host=db gssencmode=disable options='-c x=y'"), &[]);
        assert!(t.notes.is_empty(), "{:?}", t.notes);
        assert_eq!(t.options.as_deref(), Some("-c x=y"));
        assert!(err(conninfo("gssencmode=require"), &[]).contains("cannot be met"));
        assert!(err(conninfo("replication=true"), &[]).contains("not supported"));
    }

    /// A service's values sit beneath the connection string and flags and
    /// above the PG* variables, as libpq applies them.
    #[test]
    fn services_layer_between_the_connection_string_and_the_environment() {
        let home = empty_home();
        let file = home.path().join("svc.conf");
        fs::write(
            &file,
            "[prod]\nhost=svchost\nport=6000\ndbname=svcdb\nuser=svcuser\n",
        )
        .unwrap();
        let file = file.to_str().unwrap();
        let env = [
            ("PGSERVICEFILE", file),
            ("PGHOST", "envhost"),
            ("PGAPPNAME", "envapp"),
        ];
        let t = run_in(home.path(), conninfo("service=prod port=7000"), &env).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.dbname.as_str(), t.user.as_str()),
            ("svchost", 7000, "svcdb", "svcuser")
        );
        assert_eq!(t.application_name, "envapp");
        let flags = Flags {
            host: Some("flaghost".into()),
            ..Flags::default()
        };
        let mut with_pgservice = env.to_vec();
        with_pgservice.push(("PGSERVICE", "prod"));
        let t = run_in(home.path(), flags, &with_pgservice).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("flaghost", 6000));
        let e = run_in(home.path(), conninfo("service=nope"), &env).unwrap_err();
        assert!(
            e.0.starts_with("definition of service \"nope\" not found"),
            "{e}"
        );
        // PostgreSQL 18's servicefile keyword wins over PGSERVICEFILE.
        let other = home.path().join("other.conf");
        fs::write(&other, "[prod]\nhost=other\n").unwrap();
        let ci = format!("service=prod servicefile={}", other.display());
        assert_eq!(
            run_in(home.path(), conninfo(&ci), &env).unwrap().host,
            "other"
        );
        // The system file, under PGSYSCONFDIR, when the user file lacks it.
        let sysconf = tempfile::tempdir().unwrap();
        fs::write(
            sysconf.path().join("pg_service.conf"),
            "[sys]\nhost=syshost\n",
        )
        .unwrap();
        let sys_env = [
            ("PGSERVICEFILE", file),
            ("PGSYSCONFDIR", sysconf.path().to_str().unwrap()),
        ];
        assert_eq!(
            run_in(home.path(), conninfo("service=sys"), &sys_env)
                .unwrap()
                .host,
            "syshost"
        );
    }

    #[test]
    fn sslnegotiation() {
        let t = ok(conninfo("sslnegotiation=postgres"), &[]);
        assert_eq!(t.sslnegotiation, SslNegotiation::Postgres);
        assert_eq!(
            ok(Flags::default(), &[]).sslnegotiation,
            SslNegotiation::Postgres
        );
        let direct = |flags, env: &[(&str, &str)]| ok(flags, env).sslnegotiation;
        assert_eq!(
            direct(conninfo("sslnegotiation=direct"), &[]),
            SslNegotiation::Direct
        );
        assert_eq!(
            direct(conninfo("postgresql://db/?sslnegotiation=direct"), &[]),
            SslNegotiation::Direct
        );
        assert_eq!(
            direct(Flags::default(), &[("PGSSLNEGOTIATION", "direct")]),
            SslNegotiation::Direct
        );
        // Flag over connection string over environment.
        let flag = |value: &str, cs: &str| Flags {
            sslnegotiation: Some(value.to_string()),
            ..conninfo(cs)
        };
        assert_eq!(
            direct(flag("postgres", "sslnegotiation=direct"), &[]),
            SslNegotiation::Postgres
        );
        assert_eq!(
            direct(
                conninfo("sslnegotiation=postgres"),
                &[("PGSSLNEGOTIATION", "direct")]
            ),
            SslNegotiation::Postgres
        );
        assert_eq!(
            direct(flag("direct", ""), &[("PGSSLNEGOTIATION", "postgres")]),
            SslNegotiation::Direct
        );
        assert_eq!(
            err(conninfo("sslnegotiation=x"), &[]),
            "invalid sslnegotiation value: \"x\""
        );
        assert_eq!(
            err(flag("Direct", ""), &[]),
            "invalid sslnegotiation value: \"Direct\""
        );
        // libpq: direct needs sslmode require or stronger; weaker ones are refused anyway.
        let e = err(conninfo("sslnegotiation=direct sslmode=prefer"), &[]);
        assert!(e.starts_with("sslmode=prefer"), "{e}");
    }

    fn write_pgpass(path: &Path, contents: &str, mode: u32) {
        fs::write(path, contents).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
        }
        let _ = mode;
    }

    #[test]
    fn password_precedence() {
        let home = empty_home();
        write_pgpass(&home.path().join(".pgpass"), "*:*:*:*:frompgpass\n", 0o600);
        let t = run_in(home.path(), conninfo("host=db"), &[]).unwrap();
        assert_eq!(pw(&t), Some("frompgpass"));
        let t = run_in(
            home.path(),
            conninfo("host=db"),
            &[("PGPASSWORD", "fromenv")],
        )
        .unwrap();
        assert_eq!(pw(&t), Some("fromenv"));
        let t = run_in(
            home.path(),
            conninfo("host=db password=fromci"),
            &[("PGPASSWORD", "fromenv")],
        )
        .unwrap();
        assert_eq!(pw(&t), Some("fromci"));
        // An empty password means "look in the file", as in libpq.
        let t = run_in(
            home.path(),
            conninfo("host=db password=''"),
            &[("PGPASSWORD", "fromenv")],
        )
        .unwrap();
        assert_eq!(pw(&t), Some("frompgpass"));
    }

    #[test]
    fn pgpass_matches_resolved_target() {
        let home = empty_home();
        write_pgpass(
            &home.path().join(".pgpass"),
            "\
# host:port:db:user:password
db.example:5433:app:alice:wrong-port
db.example:6432:app:alice:right
*:*:*:*:fallback
",
            0o600,
        );
        let t = run_in(
            home.path(),
            conninfo("postgresql://alice@db.example:6432/app"),
            &[],
        )
        .unwrap();
        assert_eq!(pw(&t), Some("right"));
        let t = run_in(home.path(), conninfo("host=other"), &[]).unwrap();
        assert_eq!(pw(&t), Some("fallback"));
        // Without a host, libpq looks up hostaddr's text.
        write_pgpass(
            &home.path().join(".pgpass"),
            "192.0.2.7:*:*:*:byaddr\n",
            0o600,
        );
        let t = run_in(
            home.path(),
            conninfo("hostaddr=192.0.2.7 sslmode=verify-ca sslrootcert=/ca.pem"),
            &[],
        )
        .unwrap();
        assert_eq!(pw(&t), Some("byaddr"));
    }

    #[test]
    fn passfile_keyword_beats_pgpassfile_beats_home() {
        let home = empty_home();
        let a = home.path().join("a");
        let b = home.path().join("b");
        write_pgpass(&home.path().join(".pgpass"), "*:*:*:*:home\n", 0o600);
        write_pgpass(&a, "*:*:*:*:a\n", 0o600);
        write_pgpass(&b, "*:*:*:*:b\n", 0o600);
        let env = [("PGPASSFILE", b.to_str().unwrap())];
        let t = run_in(
            home.path(),
            conninfo(&format!("passfile='{}'", a.display())),
            &env,
        )
        .unwrap();
        assert_eq!(pw(&t), Some("a"));
        let t = run_in(home.path(), conninfo("host=db"), &env).unwrap();
        assert_eq!(pw(&t), Some("b"));
        let t = run_in(home.path(), conninfo("host=db"), &[]).unwrap();
        assert_eq!(pw(&t), Some("home"));
    }

    #[cfg(unix)]
    #[test]
    fn pgpass_with_loose_permissions_is_ignored_with_note() {
        let home = empty_home();
        let path = home.path().join(".pgpass");
        write_pgpass(&path, "*:*:*:*:leaky\n", 0o644);
        let t = run_in(home.path(), conninfo("host=db"), &[]).unwrap();
        assert_eq!(t.password, None);
        let note = t
            .notes
            .iter()
            .find(|n| n.contains("password file"))
            .expect("a note about the password file");
        assert!(note.contains("group or world access"), "{note}");
        assert!(note.contains(&path.display().to_string()), "{note}");
        assert!(!note.contains("leaky"), "{note}");
    }

    #[test]
    fn missing_pgpass_is_silent() {
        let t = ok(
            conninfo("host=db"),
            &[("PGPASSFILE", "/nonexistent/pgpass")],
        );
        assert_eq!(t.password, None);
        assert!(t.notes.is_empty(), "{:?}", t.notes);
    }

    #[test]
    fn password_never_in_debug_output() {
        let home = empty_home();
        write_pgpass(&home.path().join(".pgpass"), "*:*:*:*:filesecret\n", 0o600);
        for (flags, env) in [
            (conninfo("host=db password=cisecret"), vec![]),
            (conninfo("postgresql://u:urisecret@db"), vec![]),
            (conninfo("host=db"), vec![("PGPASSWORD", "envsecret")]),
            (conninfo("host=db"), vec![]),
        ] {
            let t = run_in(home.path(), flags, &env).unwrap();
            let debug = format!("{t:?} {t:#?}");
            assert!(t.password.is_some());
            assert!(!debug.contains("secret"), "{debug}");
            assert!(debug.contains("Secret(..)"), "{debug}");
        }
    }

    #[test]
    fn password_never_in_errors() {
        for s in [
            "password=hunter2 sslmode=require",
            "password=hunter2 hunter3=x",
            "password=hunter2 hunter3",
            "postgresql://u:hunter2@db?sslmode=prefer",
            "postgresql://u:hunter2%zz@db",
            "postgresql://u:hunter/2@db",
        ] {
            let e = err(conninfo(s), &[]);
            assert!(!e.contains("hunter"), "{s}: {e}");
        }
    }

    /// An absurd host name is refused before anything is sent, without
    /// echoing it.
    #[test]
    fn over_long_host_is_refused() {
        let host = "a".repeat(300);
        let e = err(
            Flags {
                host: Some(host.clone()),
                ..Flags::default()
            },
            &[],
        );
        assert!(e.starts_with("host name of 300 bytes"), "{e}");
        assert!(!e.contains(&host));
        assert_eq!(
            ok(Flags::default(), &[("PGHOST", &"a".repeat(255))])
                .host
                .len(),
            255
        );
    }
}
