//! What `--audit` reads from the server over the verify-full session:
//! the login role's privileges, the TLS-related settings, the rules of
//! pg_hba.conf as `pg_hba_file_rules` shows them, and the live TCP sessions.
//!
//! Plain observations, as the server reported them; `policy::audit` judges.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The settings the audit reports. [`SUPERUSER_ONLY`] ones need
/// pg_read_all_settings; `hba_file` names the rules' file before
/// PostgreSQL 16 added `file_name` to the view.
pub const SETTINGS: &[&str] = &[
    "ssl",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "ssl_ciphers",
    "ssl_prefer_server_ciphers",
    "ssl_ecdh_curve",
    "password_encryption",
    "ssl_cert_file",
    "ssl_key_file",
    "ssl_ca_file",
    "ssl_crl_file",
    "ssl_crl_dir",
    "hba_file",
];

/// The [`SETTINGS`] that only superusers and pg_read_all_settings members
/// see (GUC_SUPERUSER_ONLY, PostgreSQL 12 to 18). Any other one missing from
/// pg_settings does not exist on that major (ssl_crl_dir before 14).
pub const SUPERUSER_ONLY: &[&str] = &[
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "ssl_ciphers",
    "ssl_ecdh_curve",
    "hba_file",
];

/// Everything the audit observed. Parts the role may not read are absent;
/// `access` says why.
#[derive(Debug, Clone, Default)]
pub struct AuditFacts {
    /// The role's privileges; None when the first audit query did not complete.
    pub access: Option<AuditAccess>,
    /// `pg_settings` rows among the audited names that the role can see.
    pub settings: BTreeMap<String, String>,
    /// TCP sessions (`client_addr IS NOT NULL`) from pg_stat_activity and
    /// pg_stat_ssl; complete only when `access.read_all_stats`.
    pub sessions: Vec<TcpSession>,
    /// pg_hba_file_rules, when the role may read it and the query completed.
    pub hba: Option<HbaFacts>,
    /// Why the audit could not run at all (old server, query error, timeout).
    pub failure: Option<AuditFailure>,
    /// Why the rules could not be read although the privileges were there.
    pub hba_failure: Option<AuditFailure>,
    /// Whether the server serves what is on disk (docs/rotation.md).
    pub files: FilesCheck,
}

/// The certificate files the server was told to use, read by the shipped
/// SECURITY DEFINER function (content) or stat'ed (modification time).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum FilesCheck {
    /// `public.pg_tls_probe_certificates()`: each file's certificates.
    Content(Vec<OnDisk>),
    /// pg_stat_file on ssl_cert_file, ssl_key_file, ssl_ca_file and
    /// ssl_crl_file against `pg_conf_load_time()`.
    Times(Vec<FileTime>),
    NotChecked(NotChecked),
    /// The audit did not get that far.
    #[default]
    NotRun,
}

/// One certificate file as the function returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct OnDisk {
    /// `ssl_cert_file` or `ssl_ca_file`.
    pub setting: String,
    pub path: String,
    /// The certificates in the file, first first; Err when it is missing
    /// or holds no PEM certificate (why).
    pub certs: Result<Vec<super::CertFacts>, FileCertsProblem>,
}

/// Why a certificate file on the server yields no certificates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileCertsProblem {
    #[error("no such file")]
    Missing,
    #[error("no PEM certificate in the file")]
    NoPem,
    #[error(transparent)]
    NotCertificate(#[from] crate::certs::NotCertificate),
}

/// One TLS file's modification time against the last configuration load.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FileTime {
    pub setting: String,
    pub path: String,
    /// Unix seconds; None when pg_stat_file found no such file.
    pub modified: Option<f64>,
    pub loaded: f64,
}

/// What the login role may see, as the server answers for itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditAccess {
    /// `current_user`, quoted as an SQL identifier (ready for a GRANT).
    pub role: String,
    /// `current_database()`, quoted as an SQL identifier: privileges on
    /// catalog views and functions are per database, so a GRANT for them
    /// must run in this one.
    pub database: String,
    pub superuser: bool,
    /// Member of pg_read_all_settings (superuser-only settings visible).
    pub read_all_settings: bool,
    /// Member of pg_read_all_stats (other roles' sessions visible).
    pub read_all_stats: bool,
    /// SELECT on the view pg_hba_file_rules.
    pub hba_select: bool,
    /// EXECUTE on the function pg_hba_file_rules().
    pub hba_execute: bool,
    /// EXECUTE on pg_stat_file(text, boolean), for the pending-reload check.
    pub stat_file: bool,
    /// Member of pg_read_server_files (pg_stat_file outside the data directory).
    pub read_server_files: bool,
    /// EXECUTE on the shipped `public.pg_tls_probe_certificates()` (it
    /// exists in this database): the content check of rotation.
    pub cert_function: bool,
}

/// One TCP session on the server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TcpSession {
    pub pid: i32,
    pub user: Option<String>,
    pub database: Option<String>,
    pub client_addr: Option<String>,
    pub application_name: Option<String>,
    /// e.g. "client backend", "walsender".
    pub backend_type: Option<String>,
    /// pg_stat_ssl.ssl (None when the role may not see it).
    pub ssl: Option<bool>,
    pub tls_version: Option<String>,
    /// pg_stat_gssapi.encrypted (PostgreSQL 12+; None before).
    #[serde(default)]
    pub gss_encrypted: Option<bool>,
}

/// pg_hba_file_rules and what can be told about its relation to the
/// rules the server has loaded.
#[derive(Debug, Clone, Default)]
pub struct HbaFacts {
    /// The `hba_file` setting, when visible (names the file before PG16).
    pub hba_file: Option<String>,
    pub rules: Vec<HbaRule>,
    pub reload: ReloadCheck,
}

/// Whether pg_hba.conf changed on disk after the server last loaded its
/// configuration (file mtime against `pg_conf_load_time()`).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ReloadCheck {
    /// Both times, Unix seconds; `pending` when the file is newer.
    Checked {
        file_modified: f64,
        loaded: f64,
        pending: bool,
    },
    /// Could not be checked: a missing privilege, an error.
    NotChecked(NotChecked),
    /// The run did not get that far.
    #[default]
    NotRun,
}

/// One row of pg_hba_file_rules, read by column name: `rule_number` and
/// `file_name` exist from PostgreSQL 16 on, so they are optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct HbaRule {
    pub rule_number: Option<i32>,
    pub file_name: Option<String>,
    pub line_number: Option<i32>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub database: Option<Vec<String>>,
    pub user_name: Option<Vec<String>>,
    pub address: Option<String>,
    pub netmask: Option<String>,
    pub auth_method: Option<String>,
    pub options: Option<Vec<String>>,
    pub error: Option<String>,
}

/// Why the pending-reload check did not run; the advice names the GRANT
/// for the role the probe logged in as, and where to run it: EXECUTE on a
/// catalog function is granted per database, role membership cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotChecked {
    #[error("pending reload not checked: needs GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO {role}; run in database {database}")]
    NeedsStatFile { role: String, database: String },
    #[error("pending reload not checked: hba_file is not visible (needs pg_read_all_settings, e.g. GRANT pg_monitor TO {role}; in any database: role membership is cluster-wide)")]
    HbaFileHidden { role: String },
    #[error("pending reload not checked: {file} is outside the data directory (needs GRANT pg_read_server_files TO {role}; in any database: role membership is cluster-wide)")]
    OutsideDataDirectory { file: String, role: String },
    #[error("pending reload not checked: hba_file not found by pg_stat_file")]
    NotFound,
    /// Rotation: neither the function nor pg_stat_file is available.
    #[error("not checked: install public.pg_tls_probe_certificates() (docs/rotation.md) in database {database}, or GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO {role}; run in database {database}")]
    NoFileAccess { role: String, database: String },
    /// Rotation by time: a TLS file is outside the data directory.
    #[error("not checked: {file} is outside the data directory (needs GRANT pg_read_server_files TO {role}; in any database: role membership is cluster-wide, or the function of docs/rotation.md)")]
    FileOutsideDataDirectory { file: String, role: String },
    #[error(transparent)]
    Failed(AuditFailure),
}

/// An audit query that did not give its answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditFailure {
    #[error("the audit needs PostgreSQL 10 or later (pg_hba_file_rules, pg_monitor); server_version_num is {}", .0.map_or_else(|| "unknown".to_string(), |v| v.to_string()))]
    TooOld(Option<i32>),
    #[error("{what} failed (SQLSTATE {sqlstate}): {message}")]
    Server {
        what: &'static str,
        sqlstate: String,
        message: String,
    },
    #[error("{what} failed: {detail}")]
    Client { what: &'static str, detail: String },
    #[error("{0} returned no row")]
    NoRow(&'static str),
    #[error("unexpected {what} in the audit answer: {detail}")]
    BadAnswer { what: &'static str, detail: String },
    #[error("{what} timed out after {:.1} s", *.after_ms as f64 / 1000.0)]
    Timeout { what: &'static str, after_ms: u64 },
}
