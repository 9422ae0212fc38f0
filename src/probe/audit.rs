//! `--audit`: the server's own view of its TLS setup, read over the
//! verify-full session once it has logged in (so no query ever goes to a
//! server that failed verification).
//!
//! Round trips: one statement returns the role's privileges, the settings
//! and the TCP sessions as one row (JSON columns, read by key, so every
//! version's column set works); a second batch reads pg_hba_file_rules and
//! the file's mtime only when the privileges say both will succeed. An
//! unprivileged role therefore costs one round trip and leaves no
//! "permission denied" errors in the server log. Everything uses the simple
//! protocol, like the pg_stat_ssl query.

use std::time::Instant;

use tokio_postgres::{Client, SimpleQueryMessage};

use super::ProbeCtx;
use crate::facts::audit::{
    AuditAccess, AuditFacts, AuditFailure, FileCertsProblem, FileTime, FilesCheck, HbaFacts,
    HbaRule, NotChecked, OnDisk, ReloadCheck, TcpSession, SETTINGS,
};

/// Runs the audit queries on an authenticated verify-full session, until
/// the run's deadline.
pub async fn probe(
    ctx: &ProbeCtx<'_>,
    client: &Client,
    server_version_num: Option<i32>,
) -> AuditFacts {
    let start = Instant::now();
    let mut facts = AuditFacts::default();
    let version = server_version_num.unwrap_or(0);
    if version < 100_000 {
        facts.failure = Some(AuditFailure::TooOld(server_version_num));
        return facts;
    }
    if ctx
        .within_run(read(client, version, &mut facts))
        .await
        .is_none()
    {
        let after_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        if facts.access.is_none() {
            facts.failure = Some(AuditFailure::Timeout {
                what: "audit queries",
                after_ms,
            });
        } else if facts.hba.is_none() && facts.hba_failure.is_none() {
            facts.hba_failure = Some(AuditFailure::Timeout {
                what: "reading pg_hba_file_rules",
                after_ms,
            });
        }
    }
    facts
}

async fn read(client: &Client, version: i32, facts: &mut AuditFacts) {
    let messages = match client.simple_query(&first_query(version)).await {
        Ok(m) => m,
        Err(e) => {
            facts.failure = Some(query_error("the audit query", &e));
            return;
        }
    };
    let Some(row) = statements(&messages)
        .into_iter()
        .next()
        .and_then(|s| s.into_iter().next())
    else {
        facts.failure = Some(AuditFailure::NoRow("the audit query"));
        return;
    };
    if let Err(e) = read_first_row(&row, facts) {
        facts.failure = Some(e);
        return;
    }
    let Some(access) = facts.access.clone() else {
        return;
    };
    read_files(client, version, &access, facts).await;
    if !(access.hba_select && access.hba_execute) {
        return;
    }
    let mut hba = HbaFacts {
        hba_file: facts.settings.get("hba_file").cloned(),
        ..HbaFacts::default()
    };
    let stat = stat_allowed(&access, version, &facts.settings);
    let mut sql = RULES_QUERY.to_string();
    if stat.is_ok() {
        sql.push_str("; ");
        sql.push_str(STAT_QUERY);
    }
    let messages = match client.simple_query(&sql).await {
        Ok(m) => m,
        // The mtime was expected to be readable but was not: say why and
        // read the rules alone rather than lose them.
        Err(e) if stat.is_ok() => {
            hba.reload = ReloadCheck::NotChecked(NotChecked::Failed(query_error(
                "pg_stat_file on hba_file",
                &e,
            )));
            match client.simple_query(RULES_QUERY).await {
                Ok(m) => m,
                Err(e) => {
                    facts.hba_failure = Some(query_error("pg_hba_file_rules", &e));
                    return;
                }
            }
        }
        Err(e) => {
            facts.hba_failure = Some(query_error("pg_hba_file_rules", &e));
            return;
        }
    };
    let mut results = statements(&messages).into_iter();
    let rules = results.next().and_then(|s| s.into_iter().next());
    match rules
        .as_ref()
        .map(|r| parse_json::<Vec<HbaRule>>(r, "rules"))
    {
        Some(Ok(rules)) => hba.rules = rules.unwrap_or_default(),
        Some(Err(e)) => {
            facts.hba_failure = Some(e);
            return;
        }
        None => {
            facts.hba_failure = Some(AuditFailure::NoRow("pg_hba_file_rules query"));
            return;
        }
    }
    hba.reload = match (&stat, results.next().and_then(|s| s.into_iter().next())) {
        (Err(reason), _) => ReloadCheck::NotChecked(reason.clone()),
        (Ok(()), Some(row)) => reload_check(&row),
        // Only reached after the fallback above set the reason.
        (Ok(()), None) => hba.reload,
    };
    facts.hba = Some(hba);
}

/// The shipped SECURITY DEFINER function (docs/rotation.md): the contents
/// of the files named by ssl_cert_file and ssl_ca_file, nothing else.
const FILES_QUERY: &str = "SELECT json_agg(c) AS files FROM public.pg_tls_probe_certificates() c";

/// The TLS files' modification times against the last configuration
/// load (pg_stat_file reads no content; whole seconds, as for hba_file).
const TIMES_QUERY: &str = "SELECT json_agg(f) AS files FROM \
     (SELECT s.name AS setting, s.setting AS path, \
      extract(epoch FROM m.modification) AS modified, \
      extract(epoch FROM pg_conf_load_time()) AS loaded \
      FROM pg_catalog.pg_settings s, \
      LATERAL pg_catalog.pg_stat_file(s.setting, true) m \
      WHERE s.name IN ('ssl_cert_file', 'ssl_key_file', 'ssl_ca_file', 'ssl_crl_file') \
      AND s.setting <> '' ORDER BY s.name) f";

/// The settings whose files the time check stats.
const TLS_FILES: [&str; 4] = [
    "ssl_cert_file",
    "ssl_key_file",
    "ssl_ca_file",
    "ssl_crl_file",
];

/// Whether the server serves what is on disk: by content with the shipped
/// function, else by time with pg_stat_file, else not checked (and why).
async fn read_files(client: &Client, version: i32, access: &AuditAccess, facts: &mut AuditFacts) {
    #[derive(serde::Deserialize)]
    struct Row {
        setting: String,
        path: String,
        pem: Option<String>,
    }
    let first = |messages: &[SimpleQueryMessage]| {
        statements(messages)
            .into_iter()
            .next()
            .and_then(|s| s.into_iter().next())
    };
    facts.files = if access.cert_function {
        match client.simple_query(FILES_QUERY).await {
            Ok(messages) => match first(&messages).map(|r| parse_json::<Vec<Row>>(&r, "files")) {
                Some(Ok(rows)) => FilesCheck::Content(
                    rows.unwrap_or_default()
                        .into_iter()
                        .map(|row| OnDisk {
                            certs: certificates(row.pem.as_deref()),
                            setting: row.setting,
                            path: row.path,
                        })
                        .collect(),
                ),
                Some(Err(e)) => FilesCheck::NotChecked(NotChecked::Failed(e)),
                None => FilesCheck::NotChecked(NotChecked::Failed(AuditFailure::NoRow(
                    "pg_tls_probe_certificates()",
                ))),
            },
            Err(e) => FilesCheck::NotChecked(NotChecked::Failed(query_error(
                "pg_tls_probe_certificates()",
                &e,
            ))),
        }
    } else {
        match files_stat_allowed(access, version, &facts.settings) {
            Err(reason) => FilesCheck::NotChecked(reason),
            Ok(()) => match client.simple_query(TIMES_QUERY).await {
                Ok(messages) => {
                    match first(&messages).map(|r| parse_json::<Vec<FileTime>>(&r, "files")) {
                        Some(Ok(times)) => FilesCheck::Times(times.unwrap_or_default()),
                        Some(Err(e)) => FilesCheck::NotChecked(NotChecked::Failed(e)),
                        None => FilesCheck::NotChecked(NotChecked::Failed(AuditFailure::NoRow(
                            "pg_stat_file on the TLS files",
                        ))),
                    }
                }
                Err(e) => FilesCheck::NotChecked(NotChecked::Failed(query_error(
                    "pg_stat_file on the TLS files",
                    &e,
                ))),
            },
        }
    };
}

/// The certificates of a PEM text, described; Err says why there are none.
fn certificates(pem: Option<&str>) -> Result<Vec<crate::facts::CertFacts>, FileCertsProblem> {
    use rustls_pki_types::pem::PemObject;
    let pem = pem.ok_or(FileCertsProblem::Missing)?;
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .map(|der| crate::certs::describe(&der))
        .collect::<Result<_, _>>()?;
    if certs.is_empty() {
        return Err(FileCertsProblem::NoPem);
    }
    Ok(certs)
}

/// Whether pg_stat_file will reach every TLS file, as for hba_file.
fn files_stat_allowed(
    access: &AuditAccess,
    version: i32,
    settings: &std::collections::BTreeMap<String, String>,
) -> Result<(), NotChecked> {
    if access.superuser {
        return Ok(());
    }
    if version < 110_000 || !access.stat_file {
        return Err(NotChecked::NoFileAccess {
            role: access.role.clone(),
            database: access.database.clone(),
        });
    }
    if access.read_server_files {
        return Ok(());
    }
    let data = settings.get("data_directory").map(std::path::Path::new);
    for name in TLS_FILES {
        let Some(file) = settings.get(name).filter(|f| !f.is_empty()) else {
            continue;
        };
        let path = std::path::Path::new(file);
        let inside = path.is_relative() || data.is_some_and(|d| path.starts_with(d));
        if !inside {
            return Err(NotChecked::FileOutsideDataDirectory {
                file: file.clone(),
                role: access.role.clone(),
            });
        }
    }
    Ok(())
}

/// Privileges, settings and TCP sessions in one statement and one row.
/// pg_stat_gssapi exists from PostgreSQL 12: a GSSAPI-encrypted session is
/// not plaintext, so it is told apart where the server can say. From
/// PostgreSQL 18 backends still authenticating are listed as `starting`:
/// not sessions yet (this very run's plaintext check would be one).
fn first_query(version: i32) -> String {
    let (gss_column, gss_join) = if version >= 120_000 {
        (
            ", g.encrypted AS gss_encrypted",
            " LEFT JOIN pg_catalog.pg_stat_gssapi g ON g.pid = a.pid",
        )
    } else {
        ("", "")
    };
    let names = SETTINGS
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT quote_ident(current_user) AS role, \
         quote_ident(current_database()) AS database, \
         current_setting('is_superuser') = 'on' AS superuser, \
         pg_has_role('pg_read_all_settings', 'USAGE') AS read_all_settings, \
         pg_has_role('pg_read_all_stats', 'USAGE') AS read_all_stats, \
         has_table_privilege('pg_catalog.pg_hba_file_rules', 'SELECT') AS hba_select, \
         has_function_privilege('pg_catalog.pg_hba_file_rules()', 'EXECUTE') AS hba_execute, \
         has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE') AS stat_file, \
         (SELECT has_function_privilege(f.p, 'EXECUTE') FROM \
          (SELECT to_regprocedure('public.pg_tls_probe_certificates()') AS p) f \
          WHERE f.p IS NOT NULL) AS cert_function, \
         {read_server_files} AS read_server_files, \
         (SELECT json_object_agg(name, setting) FROM pg_catalog.pg_settings \
          WHERE name IN ({names}, 'data_directory')) AS settings, \
         (SELECT json_agg(s ORDER BY s.pid) FROM \
          (SELECT a.pid, a.usename AS \"user\", a.datname AS database, \
           host(a.client_addr) AS client_addr, a.application_name, a.backend_type, \
           l.ssl, l.version AS tls_version{gss_column} \
           FROM pg_catalog.pg_stat_activity a \
           JOIN pg_catalog.pg_stat_ssl l ON l.pid = a.pid{gss_join} \
           WHERE a.client_addr IS NOT NULL \
           AND a.state IS DISTINCT FROM 'starting') s) AS sessions",
        // pg_read_server_files (PG11+) lets pg_stat_file reach files
        // outside the data directory (Debian keeps pg_hba.conf in /etc).
        read_server_files = if version >= 110_000 {
            "pg_has_role('pg_read_server_files', 'USAGE')"
        } else {
            "current_setting('is_superuser') = 'on'"
        },
    )
}

/// `json_agg` of the view's rows: each row's keys are its column names, so
/// PG16's rule_number and file_name are read where they exist.
const RULES_QUERY: &str = "SELECT json_agg(r) AS rules FROM pg_catalog.pg_hba_file_rules r";

/// The file's mtime against the last configuration load. pg_stat_file
/// reports whole seconds, so a change in the same second as the reload is
/// not seen; the other way round (edit, then reload) never misfires.
const STAT_QUERY: &str = "SELECT extract(epoch FROM m.modification) AS file_modified, \
     extract(epoch FROM pg_conf_load_time()) AS loaded, \
     m.modification > pg_conf_load_time() AS pending \
     FROM pg_catalog.pg_stat_file(current_setting('hba_file'), true) m";

/// Whether the mtime query will succeed, or why it is not attempted.
fn stat_allowed(
    access: &AuditAccess,
    version: i32,
    settings: &std::collections::BTreeMap<String, String>,
) -> Result<(), NotChecked> {
    if access.superuser {
        return Ok(());
    }
    let role = || access.role.clone();
    // Before 11 pg_stat_file has a hard-coded superuser check.
    if version < 110_000 || !access.stat_file {
        return Err(NotChecked::NeedsStatFile {
            role: role(),
            database: access.database.clone(),
        });
    }
    let (Some(hba), Some(data)) = (settings.get("hba_file"), settings.get("data_directory")) else {
        return Err(NotChecked::HbaFileHidden { role: role() });
    };
    let inside = std::path::Path::new(hba).starts_with(data);
    if inside || access.read_server_files {
        Ok(())
    } else {
        Err(NotChecked::OutsideDataDirectory {
            file: hba.clone(),
            role: role(),
        })
    }
}

type Row = Vec<(String, Option<String>)>;

/// Rows of each statement in a simple-query batch, columns by name.
fn statements(messages: &[SimpleQueryMessage]) -> Vec<Vec<Row>> {
    let mut out = vec![Vec::new()];
    for message in messages {
        match message {
            SimpleQueryMessage::Row(row) => {
                let columns = row
                    .columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name().to_string(), row.get(i).map(str::to_string)))
                    .collect();
                if let Some(last) = out.last_mut() {
                    last.push(columns);
                }
            }
            SimpleQueryMessage::CommandComplete(_) => out.push(Vec::new()),
            _ => {}
        }
    }
    out
}

fn column<'a>(row: &'a Row, name: &str) -> Option<&'a str> {
    row.iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
}

fn flag(row: &Row, name: &str) -> bool {
    column(row, name) == Some("t")
}

/// A JSON column; `None` for SQL NULL (json_agg over no rows).
fn parse_json<T: serde::de::DeserializeOwned>(
    row: &Row,
    name: &'static str,
) -> Result<Option<T>, AuditFailure> {
    column(row, name)
        .map(|text| {
            serde_json::from_str(text).map_err(|e| AuditFailure::BadAnswer {
                what: name,
                detail: e.to_string(),
            })
        })
        .transpose()
}

fn read_first_row(row: &Row, facts: &mut AuditFacts) -> Result<(), AuditFailure> {
    facts.access = Some(AuditAccess {
        role: column(row, "role").unwrap_or("CURRENT_USER").to_string(),
        database: column(row, "database")
            .unwrap_or("<the probe's database>")
            .to_string(),
        superuser: flag(row, "superuser"),
        read_all_settings: flag(row, "read_all_settings"),
        read_all_stats: flag(row, "read_all_stats"),
        hba_select: flag(row, "hba_select"),
        hba_execute: flag(row, "hba_execute"),
        stat_file: flag(row, "stat_file"),
        read_server_files: flag(row, "read_server_files"),
        cert_function: flag(row, "cert_function"),
    });
    facts.settings = parse_json(row, "settings")?.unwrap_or_default();
    facts.sessions = parse_json::<Vec<TcpSession>>(row, "sessions")?.unwrap_or_default();
    Ok(())
}

fn reload_check(row: &Row) -> ReloadCheck {
    let number = |name| column(row, name).and_then(|v| v.parse::<f64>().ok());
    match (number("file_modified"), number("loaded")) {
        (Some(file_modified), Some(loaded)) => ReloadCheck::Checked {
            file_modified,
            loaded,
            pending: flag(row, "pending"),
        },
        _ => ReloadCheck::NotChecked(NotChecked::NotFound),
    }
}

fn query_error(what: &'static str, e: &tokio_postgres::Error) -> AuditFailure {
    match e.as_db_error() {
        Some(db) => AuditFailure::Server {
            what,
            sqlstate: db.code().code().to_string(),
            message: db.message().to_string(),
        },
        None => AuditFailure::Client {
            what,
            detail: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, Option<&str>)]) -> Row {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn first_row_reads_privileges_settings_and_sessions_by_name() {
        let r = row(&[
            (
                "sessions",
                Some(
                    r#"[{"pid":7,"user":"repl","database":null,"client_addr":"127.0.0.1","application_name":"walreceiver","backend_type":"walsender","ssl":false,"tls_version":null,"gss_encrypted":false}]"#,
                ),
            ),
            ("role", Some("\"Mon itor\"")),
            ("superuser", Some("f")),
            ("read_all_settings", Some("t")),
            ("read_all_stats", Some("t")),
            ("hba_select", Some("f")),
            ("hba_execute", Some("t")),
            ("stat_file", Some("f")),
            ("read_server_files", Some("f")),
            (
                "settings",
                Some(r#"{"ssl":"on","ssl_min_protocol_version":"TLSv1.2"}"#),
            ),
        ]);
        let mut facts = AuditFacts::default();
        read_first_row(&r, &mut facts).unwrap();
        let access = facts.access.unwrap();
        assert_eq!(access.role, "\"Mon itor\"");
        assert!(access.read_all_stats && !access.hba_select && access.hba_execute);
        assert_eq!(facts.settings["ssl_min_protocol_version"], "TLSv1.2");
        assert_eq!(facts.sessions[0].backend_type.as_deref(), Some("walsender"));
        assert_eq!(facts.sessions[0].ssl, Some(false));
    }

    /// json_agg over no rows is NULL, and PG 10/11 have no gss_encrypted.
    #[test]
    fn no_sessions_and_old_columns() {
        let mut facts = AuditFacts::default();
        read_first_row(&row(&[("sessions", None), ("settings", None)]), &mut facts).unwrap();
        assert!(facts.sessions.is_empty() && facts.settings.is_empty());
        let old = row(&[(
            "sessions",
            Some(
                r#"[{"pid":1,"user":"a","database":"d","client_addr":"::1","application_name":"","backend_type":"client backend","ssl":true,"tls_version":"TLSv1.3"}]"#,
            ),
        )]);
        read_first_row(&old, &mut facts).unwrap();
        assert_eq!(facts.sessions[0].gss_encrypted, None);
    }

    #[test]
    fn rules_read_by_key_with_and_without_pg16_columns() {
        let pg15 = row(&[(
            "rules",
            Some(
                r#"[{"line_number":5,"type":"hostssl","database":["all"],"user_name":["all"],"address":"0.0.0.0","netmask":"0.0.0.0","auth_method":"scram-sha-256","options":null,"error":null},{"line_number":9,"type":null,"database":null,"user_name":null,"address":null,"netmask":null,"auth_method":null,"options":null,"error":"invalid CIDR mask in address \"10.0.0.0/33\""}]"#,
            ),
        )]);
        let rules = parse_json::<Vec<HbaRule>>(&pg15, "rules").unwrap().unwrap();
        assert_eq!(rules[0].kind.as_deref(), Some("hostssl"));
        assert_eq!(rules[0].file_name, None);
        assert!(rules[1].error.as_deref().unwrap().contains("CIDR"));
        let pg16 = row(&[(
            "rules",
            Some(
                r#"[{"rule_number":1,"file_name":"/etc/pg/pg_hba.conf","line_number":3,"type":"host","database":["all"],"user_name":["all"],"address":"all","netmask":null,"auth_method":"reject","options":null,"error":null}]"#,
            ),
        )]);
        let rules = parse_json::<Vec<HbaRule>>(&pg16, "rules").unwrap().unwrap();
        assert_eq!(rules[0].file_name.as_deref(), Some("/etc/pg/pg_hba.conf"));
        assert_eq!(rules[0].rule_number, Some(1));
    }

    #[test]
    fn mtime_check_needs_privilege_and_a_reachable_file() {
        let mut access = AuditAccess {
            role: "mon".into(),
            database: "app".into(),
            stat_file: true,
            ..AuditAccess::default()
        };
        let mut settings = std::collections::BTreeMap::new();
        settings.insert("hba_file".to_string(), "/etc/pg/pg_hba.conf".to_string());
        settings.insert("data_directory".to_string(), "/var/lib/pg".to_string());
        let err = stat_allowed(&access, 150_000, &settings)
            .unwrap_err()
            .to_string();
        assert!(err.contains("GRANT pg_read_server_files TO mon"), "{err}");
        settings.insert(
            "hba_file".to_string(),
            "/var/lib/pg/pg_hba.conf".to_string(),
        );
        assert_eq!(stat_allowed(&access, 150_000, &settings), Ok(()));
        assert!(stat_allowed(&access, 100_000, &settings).is_err());
        access.stat_file = false;
        let err = stat_allowed(&access, 150_000, &settings)
            .unwrap_err()
            .to_string();
        assert!(err.contains(
            "GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO mon; run in database app"
        ));
    }

    #[test]
    fn statements_split_at_command_complete() {
        // Only CommandComplete is constructible outside tokio-postgres.
        let split = statements(&[
            SimpleQueryMessage::CommandComplete(1),
            SimpleQueryMessage::CommandComplete(0),
        ]);
        assert_eq!(split.len(), 3);
    }
}
