//! One source's libpq settings and the keyword table.
//!
//! Each source (flags, connection string, environment) fills a [`Params`];
//! `resolve` layers them field by field. `None` means "this source did not
//! say". `Some("")` is kept, as libpq keeps it, so an empty value in a
//! connection string still hides the environment variable beneath it.

use super::{Secret, UsageError};

/// The libpq keywords this probe acts on, as raw text from one source.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    pub host: Option<String>,
    pub hostaddr: Option<String>,
    pub port: Option<String>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub passfile: Option<String>,
    pub dbname: Option<String>,
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
    pub sslcrl: Option<String>,
    pub sslcrldir: Option<String>,
    pub connect_timeout: Option<String>,
    pub application_name: Option<String>,
    pub channel_binding: Option<String>,
    pub sslnegotiation: Option<String>,
    pub service: Option<String>,
    /// PostgreSQL 18's `servicefile` (PGSERVICEFILE before it).
    pub servicefile: Option<String>,
}

/// What [`Params::set`] made of a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    /// Stored (or, for fallback_application_name, deliberately dropped).
    Used,
    /// A genuine libpq keyword that changes nothing this probe checks.
    Ignored,
    /// Not a libpq keyword.
    Unknown,
}

/// libpq keywords (up to PostgreSQL 18) accepted but not acted on. Accepting
/// them keeps connection strings shared with psql usable; the caller notes
/// each one so nobody believes it took effect.
const IGNORED: &[&str] = &[
    "options",
    "client_encoding",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "target_session_attrs",
    "load_balance_hosts",
    "replication",
    "sslcompression",
    "sslsni",
    "sslpassword",
    "sslcertmode",
    "sslkeylogfile",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "min_protocol_version",
    "max_protocol_version",
    "requirepeer",
    "require_auth",
    "krbsrvname",
    "gsslib",
    "gssencmode",
    "gssdelegation",
    "oauth_issuer",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
];

/// The note recorded for a keyword from [`IGNORED`].
pub(crate) fn ignored_note(key: &str) -> String {
    format!("ignored connection option \"{key}\": it does not affect this probe")
}

impl Params {
    /// Stores one keyword's value (later calls win, as in libpq).
    pub fn set(&mut self, key: &str, value: String) -> Result<Keyword, UsageError> {
        let slot = match key {
            "host" => &mut self.host,
            "hostaddr" => &mut self.hostaddr,
            "port" => &mut self.port,
            "user" => &mut self.user,
            "passfile" => &mut self.passfile,
            "dbname" => &mut self.dbname,
            "sslmode" => &mut self.sslmode,
            "sslrootcert" => &mut self.sslrootcert,
            "sslcert" => &mut self.sslcert,
            "sslkey" => &mut self.sslkey,
            "sslcrl" => &mut self.sslcrl,
            "sslcrldir" => &mut self.sslcrldir,
            "connect_timeout" => &mut self.connect_timeout,
            "application_name" => &mut self.application_name,
            "channel_binding" => &mut self.channel_binding,
            "sslnegotiation" => &mut self.sslnegotiation,
            "service" => &mut self.service,
            "servicefile" => &mut self.servicefile,
            "password" => {
                self.password = Some(Secret(value));
                return Ok(Keyword::Used);
            }
            // Only matters when application_name is unset, and then the
            // probe's own name is the better fallback.
            "fallback_application_name" => return Ok(Keyword::Used),
            _ if IGNORED.contains(&key) => return Ok(Keyword::Ignored),
            _ => return Ok(Keyword::Unknown),
        };
        *slot = Some(value);
        Ok(Keyword::Used)
    }

    /// The PG* variables libpq reads for these keywords. An empty variable
    /// counts as unset, as libpq treats it.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Params, UsageError> {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        Ok(Params {
            host: get("PGHOST"),
            hostaddr: get("PGHOSTADDR"),
            port: get("PGPORT"),
            user: get("PGUSER"),
            password: get("PGPASSWORD").map(Secret),
            passfile: get("PGPASSFILE"),
            dbname: get("PGDATABASE"),
            sslmode: get("PGSSLMODE"),
            sslrootcert: get("PGSSLROOTCERT"),
            sslcert: get("PGSSLCERT"),
            sslkey: get("PGSSLKEY"),
            sslcrl: get("PGSSLCRL"),
            sslcrldir: get("PGSSLCRLDIR"),
            connect_timeout: get("PGCONNECT_TIMEOUT"),
            application_name: get("PGAPPNAME"),
            channel_binding: get("PGCHANNELBINDING"),
            sslnegotiation: get("PGSSLNEGOTIATION"),
            service: get("PGSERVICE"),
            servicefile: get("PGSERVICEFILE"),
        })
    }

    /// Field by field, `self` wins wherever it has a value.
    pub fn over(self, lower: Params) -> Params {
        Params {
            host: self.host.or(lower.host),
            hostaddr: self.hostaddr.or(lower.hostaddr),
            port: self.port.or(lower.port),
            user: self.user.or(lower.user),
            password: self.password.or(lower.password),
            passfile: self.passfile.or(lower.passfile),
            dbname: self.dbname.or(lower.dbname),
            sslmode: self.sslmode.or(lower.sslmode),
            sslrootcert: self.sslrootcert.or(lower.sslrootcert),
            sslcert: self.sslcert.or(lower.sslcert),
            sslkey: self.sslkey.or(lower.sslkey),
            sslcrl: self.sslcrl.or(lower.sslcrl),
            sslcrldir: self.sslcrldir.or(lower.sslcrldir),
            connect_timeout: self.connect_timeout.or(lower.connect_timeout),
            application_name: self.application_name.or(lower.application_name),
            channel_binding: self.channel_binding.or(lower.channel_binding),
            sslnegotiation: self.sslnegotiation.or(lower.sslnegotiation),
            service: self.service.or(lower.service),
            servicefile: self.servicefile.or(lower.servicefile),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_classifies_keywords() {
        let mut p = Params::default();
        assert_eq!(p.set("host", "db".into()), Ok(Keyword::Used));
        assert_eq!(p.host.as_deref(), Some("db"));
        assert_eq!(p.set("keepalives", "1".into()), Ok(Keyword::Ignored));
        assert_eq!(p.set("sslcrl", "x".into()), Ok(Keyword::Used));
        assert_eq!(p.sslcrl.as_deref(), Some("x"));
        assert_eq!(
            p.set("fallback_application_name", "x".into()),
            Ok(Keyword::Used)
        );
        assert_eq!(p.application_name, None);
        assert_eq!(p.set("foo", "x".into()), Ok(Keyword::Unknown));
        assert_eq!(p.set("HOST", "x".into()), Ok(Keyword::Unknown));
        assert_eq!(p.set("service", "x".into()), Ok(Keyword::Used));
    }

    #[test]
    fn later_value_wins() {
        let mut p = Params::default();
        p.set("port", "1".into()).unwrap();
        p.set("port", "2".into()).unwrap();
        assert_eq!(p.port.as_deref(), Some("2"));
    }

    #[test]
    fn empty_env_is_unset() {
        let env = |k: &str| match k {
            "PGHOST" => Some(String::new()),
            "PGPORT" => Some("6543".to_string()),
            "PGSERVICE" => Some(String::new()),
            "PGSERVICEFILE" => Some("/etc/services.conf".to_string()),
            _ => None,
        };
        let p = Params::from_env(&env).unwrap();
        assert_eq!(p.host, None);
        assert_eq!(p.port.as_deref(), Some("6543"));
        assert_eq!(p.service, None);
        assert_eq!(p.servicefile.as_deref(), Some("/etc/services.conf"));
    }

    #[test]
    fn over_prefers_upper_even_when_empty() {
        let upper = Params {
            host: Some(String::new()),
            ..Params::default()
        };
        let lower = Params {
            host: Some("env".into()),
            port: Some("1".into()),
            ..Params::default()
        };
        let p = upper.over(lower);
        assert_eq!(p.host.as_deref(), Some(""));
        assert_eq!(p.port.as_deref(), Some("1"));
    }
}
