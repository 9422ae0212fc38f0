//! Resolves libpq-compatible inputs into one typed [`Target`].
//!
//! Sources, highest precedence first (as libpq): command-line flags, the
//! connection string or URI, PG* environment variables, built-in defaults;
//! the password comes from the connection string, PGPASSWORD, then the
//! password file. tokio-postgres rejects `sslmode=verify-full` and
//! `sslrootcert`, so the libpq keywords are parsed here, not by it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// What the resolver ignored or assumed, e.g. a .pgpass ignored for its permissions.
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
    home: Option<&std::path::Path>,
    os_user: &str,
) -> Result<Target, UsageError> {
    let _ = (flags, env, home, os_user);
    todo!("target::resolve")
}
