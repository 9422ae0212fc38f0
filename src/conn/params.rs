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
    pub require_auth: Option<String>,
    pub ssl_min_protocol_version: Option<String>,
    pub ssl_max_protocol_version: Option<String>,
    pub sslcertmode: Option<String>,
    pub gssencmode: Option<String>,
    pub target_session_attrs: Option<String>,
    pub sslsni: Option<String>,
    pub sslkeylogfile: Option<String>,
    pub options: Option<String>,
    pub min_protocol_version: Option<String>,
    pub max_protocol_version: Option<String>,
    /// Only used to decrypt an encrypted sslkey, which the probe refuses.
    pub sslpassword: Option<Secret>,
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
/// each one, with [`why_ignored`], so nobody believes it took effect.
/// docs/keywords.md has the whole table.
const IGNORED: &[&str] = &[
    "client_encoding",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "load_balance_hosts",
    "sslcompression",
    "requirepeer",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
];

/// Why an [`IGNORED`] keyword cannot change the verdict.
fn why_ignored(key: &str) -> &'static str {
    match key {
        "client_encoding" => "the session's encoding does not touch TLS or the login",
        k if k.starts_with("keepalives") => {
            "TCP keepalive matters for long sessions; the probe's last milliseconds"
        }
        "tcp_user_timeout" => "every step is bounded by --timeout and connect_timeout instead",
        "load_balance_hosts" => "every host of a host list is probed: there is nothing to balance",
        "sslcompression" => "OpenSSL 1.1+ and PostgreSQL 14+ never compress",
        "requirepeer" => "libpq checks it on Unix-domain sockets only; the probe uses TCP",
        "krbsrvname" | "gsslib" | "gssdelegation" => {
            "only used by GSSAPI, which the probe does not speak"
        }
        _ => "it does not affect this probe",
    }
}

/// libpq keywords the probe cannot honour: refused rather than ignored,
/// because libpq's verdict would depend on them. Values are never quoted.
const REFUSED: &[(&str, &str)] = &[
    (
        "replication",
        "a replication connection matches pg_hba.conf's replication lines and runs no SQL; the probe checks ordinary sessions",
    ),
    ("oauth_issuer", "the probe cannot log in with OAuth (OAUTHBEARER)"),
    ("oauth_client_id", "the probe cannot log in with OAuth (OAUTHBEARER)"),
    ("oauth_client_secret", "the probe cannot log in with OAuth (OAUTHBEARER)"),
    ("oauth_scope", "the probe cannot log in with OAuth (OAUTHBEARER)"),
    ("scram_client_key", "the probe logs in with a password, not with SCRAM keys"),
    ("scram_server_key", "the probe logs in with a password, not with SCRAM keys"),
];

/// The note recorded for a keyword from [`IGNORED`].
pub(crate) fn ignored_note(key: &str) -> String {
    format!("ignored connection option \"{key}\": {}", why_ignored(key))
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
            "require_auth" => &mut self.require_auth,
            "ssl_min_protocol_version" => &mut self.ssl_min_protocol_version,
            "ssl_max_protocol_version" => &mut self.ssl_max_protocol_version,
            "sslcertmode" => &mut self.sslcertmode,
            "gssencmode" => &mut self.gssencmode,
            "target_session_attrs" => &mut self.target_session_attrs,
            "sslsni" => &mut self.sslsni,
            "sslkeylogfile" => &mut self.sslkeylogfile,
            "options" => &mut self.options,
            "min_protocol_version" => &mut self.min_protocol_version,
            "max_protocol_version" => &mut self.max_protocol_version,
            "sslpassword" => {
                self.sslpassword = Some(Secret(value));
                return Ok(Keyword::Used);
            }
            "password" => {
                self.password = Some(Secret(value));
                return Ok(Keyword::Used);
            }
            // Only matters when application_name is unset, and then the
            // probe's own name is the better fallback.
            "fallback_application_name" => return Ok(Keyword::Used),
            _ if IGNORED.contains(&key) => return Ok(Keyword::Ignored),
            _ => {
                if let Some((_, why)) = REFUSED.iter().find(|(k, _)| *k == key) {
                    return Err(UsageError(format!(
                        "connection option \"{key}\" is not supported: {why}"
                    )));
                }
                return Ok(Keyword::Unknown);
            }
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
            require_auth: get("PGREQUIREAUTH"),
            ssl_min_protocol_version: get("PGSSLMINPROTOCOLVERSION"),
            ssl_max_protocol_version: get("PGSSLMAXPROTOCOLVERSION"),
            sslcertmode: get("PGSSLCERTMODE"),
            gssencmode: get("PGGSSENCMODE"),
            target_session_attrs: get("PGTARGETSESSIONATTRS"),
            sslsni: get("PGSSLSNI"),
            options: get("PGOPTIONS"),
            min_protocol_version: get("PGMINPROTOCOLVERSION"),
            max_protocol_version: get("PGMAXPROTOCOLVERSION"),
            // libpq has no variables for these two.
            sslkeylogfile: None,
            sslpassword: None,
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
            require_auth: self.require_auth.or(lower.require_auth),
            ssl_min_protocol_version: self
                .ssl_min_protocol_version
                .or(lower.ssl_min_protocol_version),
            ssl_max_protocol_version: self
                .ssl_max_protocol_version
                .or(lower.ssl_max_protocol_version),
            sslcertmode: self.sslcertmode.or(lower.sslcertmode),
            gssencmode: self.gssencmode.or(lower.gssencmode),
            target_session_attrs: self.target_session_attrs.or(lower.target_session_attrs),
            sslsni: self.sslsni.or(lower.sslsni),
            sslkeylogfile: self.sslkeylogfile.or(lower.sslkeylogfile),
            options: self.options.or(lower.options),
            min_protocol_version: self.min_protocol_version.or(lower.min_protocol_version),
            max_protocol_version: self.max_protocol_version.or(lower.max_protocol_version),
            sslpassword: self.sslpassword.or(lower.sslpassword),
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
        assert_eq!(p.set("require_auth", "md5".into()), Ok(Keyword::Used));
        assert_eq!(p.require_auth.as_deref(), Some("md5"));
        let refused = p.set("oauth_client_secret", "s3cret".into()).unwrap_err();
        assert!(
            refused.0.contains("OAuth") && !refused.0.contains("s3cret"),
            "{refused}"
        );
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
