//! Resolves libpq-compatible inputs into one typed [`Target`].
//!
//! Sources, highest precedence first (as libpq): command-line flags, the
//! connection string or URI, PG* environment variables, built-in defaults;
//! the password comes from the connection string, PGPASSWORD, then the
//! password file. tokio-postgres rejects `sslmode=verify-full` and
//! `sslrootcert`, so the libpq keywords are parsed here, not by it.

mod conninfo;
mod params;
mod pgpass;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use params::Params;

/// Certificate checking the probe performs; anything weaker is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Chain to a trusted CA, no host name check (reported as weaker).
    VerifyCa,
    /// Chain and host name (the default).
    VerifyFull,
}

/// Where trusted CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    /// A PEM file with one or more CA certificates.
    File(PathBuf),
    /// `sslrootcert=system`: the webpki-roots set.
    System,
}

/// libpq's `channel_binding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
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
    pub channel_binding: ChannelBinding,
    /// libpq `connect_timeout`: bounds each connection attempt, connect to login.
    pub connect_timeout: Option<Duration>,
    pub application_name: String,
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
}

/// Inputs could not be turned into a target: exit UNKNOWN with this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Resolves flags, connection string, environment and password file.
///
/// `env` looks up an environment variable; `home` is the user's home
/// directory (for ~/.pgpass and ~/.postgresql/root.crt); `os_user` is the
/// default user name. All three are parameters so tests need no process state.
pub fn resolve(
    flags: &Flags,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
    os_user: &str,
) -> Result<Target, UsageError> {
    let mut notes = Vec::new();
    let (conninfo, from_flags) = split_flags(flags, &mut notes)?;
    let from_conninfo = match conninfo {
        Some(s) => conninfo::parse(s, &mut notes)?,
        None => Params::default(),
    };
    let from_env = Params::from_env(env)?;
    finish(
        from_flags.over(from_conninfo).over(from_env),
        home,
        os_user,
        notes,
    )
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
        host: owned(non_empty(flags.host.as_deref())),
        port: owned(non_empty(flags.port.as_deref())),
        user: owned(non_empty(flags.username.as_deref())),
        dbname: owned(d_db.or(pos_db)),
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
    check_sslnegotiation(p.sslnegotiation.as_deref())?;
    let sslmode = parse_sslmode(p.sslmode.as_deref())?;
    let hostaddr = parse_hostaddr(non_empty(p.hostaddr.as_deref()))?;
    let (host, hostaddr) = resolve_host(non_empty(p.host.as_deref()), hostaddr, &mut notes)?;
    let port = parse_port(non_empty(p.port.as_deref()))?;
    let user = non_empty(p.user.as_deref()).unwrap_or(os_user).to_string();
    let dbname = non_empty(p.dbname.as_deref()).unwrap_or(&user).to_string();
    let channel_binding = parse_channel_binding(p.channel_binding.as_deref())?;
    let connect_timeout = parse_connect_timeout(p.connect_timeout.as_deref())?;
    let application_name = non_empty(p.application_name.as_deref())
        .unwrap_or(DEFAULT_APPLICATION_NAME)
        .to_string();
    let sslrootcert = resolve_root_certs(p.sslrootcert.as_deref(), sslmode, home, &mut notes)?;
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
            file.and_then(|file| pgpass::lookup(&file, want, &mut notes))
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
        channel_binding,
        connect_timeout,
        application_name,
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

/// Only the classic SSLRequest negotiation is implemented so far.
fn check_sslnegotiation(value: Option<&str>) -> Result<(), UsageError> {
    match value {
        None | Some("postgres") => Ok(()),
        Some("direct") => Err(UsageError(
            "sslnegotiation=direct is not supported yet (direct TLS comes later); use sslnegotiation=postgres"
                .to_string(),
        )),
        Some(other) => Err(UsageError(format!(
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

/// One probe run checks one server: its report and exit code describe that
/// server, so libpq's host lists (try each in turn) are refused.
fn one_host_only(keyword: &str, value: &str) -> Result<(), UsageError> {
    if value.contains(',') {
        return Err(UsageError(format!(
            "probe one host per run: {keyword} lists like \"{value}\" are not supported"
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

/// The name the certificate is checked against. Without a host name libpq
/// checks hostaddr, and without either it would use a Unix socket, where
/// there is no TLS: the probe goes to localhost over TCP instead.
fn resolve_host(
    host: Option<&str>,
    hostaddr: Option<(IpAddr, String)>,
    notes: &mut Vec<String>,
) -> Result<(String, Option<IpAddr>), UsageError> {
    let addr = hostaddr.as_ref().map(|(addr, _)| *addr);
    if let Some(host) = host {
        one_host_only("host", host)?;
        if host.starts_with('/') || host.starts_with('@') {
            return Err(UsageError(format!(
                "host \"{host}\" is a Unix-domain socket; TLS needs a TCP host name or IP address"
            )));
        }
        return Ok((host.to_string(), addr));
    }
    match hostaddr {
        Some((addr, text)) => {
            notes.push(format!(
                "no host name given; the server certificate is checked against hostaddr {text}"
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
            Ok(RootCerts::System)
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
