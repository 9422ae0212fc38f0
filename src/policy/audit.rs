//! Judges `--audit` facts against the recipe: three checks
//! (`audit_settings`, `audit_hba`, `audit_sessions`) plus the details the
//! JSON `audit` object carries.
//!
//! A part the login role may not read is UNKNOWN with the GRANT that would
//! fix it; the other parts are judged all the same. Findings quote the
//! recipe line they break, so the fix is in the message.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use super::{Finding, Status, TlsVersion};
use crate::facts::audit::{
    AuditAccess, AuditFacts, HbaRule, ReloadCheck, TcpSession, SUPERUSER_ONLY,
};

const RECIPE_SSL: &str = "ssl = on";
const RECIPE_MIN: &str = "ssl_min_protocol_version = 'TLSv1.2'";
const RECIPE_HOSTSSL: &str = "hostssl all all 0.0.0.0/0 scram-sha-256";
const RECIPE_REJECT_V4: &str = "host all all 0.0.0.0/0 reject";
const RECIPE_REJECT_V6: &str = "host all all ::/0 reject";

/// Methods that make the client send its password (oauth, PostgreSQL 18:
/// its bearer token) in clear over the connection: fatal without TLS.
const CLEARTEXT_METHODS: &[&str] = &["password", "ldap", "radius", "pam", "bsd", "oauth"];

/// At most this many items are named in a one-line summary.
const NAMED: usize = 3;

/// An address range for `--allow-plaintext-from`; a bare address is a
/// single host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let bad = || format!("--allow-plaintext-from: \"{text}\" is not an address or CIDR range");
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        // A range inside ::ffff:0:0/96 is its IPv4 range, as clients are
        // compared (`contains`); other IPv6 ranges never take IPv4 clients.
        if let IpAddr::V6(v6) = addr {
            if let (Some(v4), true) = (v6.to_ipv4_mapped(), prefix >= 96) {
                return Ok(Cidr {
                    addr: IpAddr::V4(v4),
                    prefix: prefix - 96,
                });
            }
        }
        Ok(Cidr { addr, prefix })
    }

    /// IPv4-mapped IPv6 clients (::ffff:a.b.c.d) match IPv4 ranges.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let bits = |a: IpAddr| -> u128 {
            match a {
                IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
                IpAddr::V6(v6) => u128::from(v6),
            }
        };
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        // IPv4 sits in the top 32 bits, so the mask is the top `prefix` bits either way.
        let mask = u128::MAX
            .checked_shl(128 - u32::from(self.prefix))
            .unwrap_or(0);
        bits(ip) & mask == bits(self.addr) & mask
    }
}

/// The judged audit: the three checks and the JSON details.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    #[serde(skip)]
    pub checks: Vec<Finding>,
    pub settings: Option<SettingsReport>,
    /// One finding per rule that breaks the recipe, plus one per missing
    /// catch-all reject (with `line` null).
    pub hba_rules: Vec<RuleFinding>,
    pub hba: Option<HbaReport>,
    pub sessions: Option<SessionsReport>,
    /// Why the audit could not run at all.
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SettingsReport {
    pub status: Status,
    /// The audited settings the role could see, as pg_settings shows them.
    pub values: BTreeMap<String, String>,
    pub findings: Vec<SettingFinding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SettingFinding {
    pub setting: String,
    pub value: Option<String>,
    pub status: Status,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleFinding {
    pub file: String,
    pub line: Option<i32>,
    pub status: Status,
    pub reason: String,
    /// The rule as the view parsed it (null for a line with a parse error).
    pub rule: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HbaReport {
    pub status: Status,
    pub file: String,
    pub rules: usize,
    /// Line of the catch-all reject per address family, null when missing.
    pub catch_all_reject: CatchAll,
    pub reload: ReloadCheck,
    /// True when the view may not match the rules in force: a pending
    /// reload, or a parse error (the server keeps its previous rules).
    pub differs_from_running: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CatchAll {
    pub ipv4: Option<i32>,
    pub ipv6: Option<i32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionsReport {
    pub status: Status,
    /// TCP sessions only: Unix-socket sessions are not a TLS matter.
    pub total: usize,
    pub tls: usize,
    /// Encrypted by GSSAPI rather than TLS (not counted as plaintext).
    pub gss: usize,
    /// Neither TLS nor GSSAPI, including the allowed ones.
    pub plaintext: usize,
    pub plaintext_allowed: usize,
    pub plaintext_sessions: Vec<PlaintextSession>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlaintextSession {
    /// As read from the server (pid, user, database, client_addr, ...).
    #[serde(flatten)]
    pub session: TcpSession,
    pub replication: bool,
    /// Matched `--allow-plaintext-from` (never for replication).
    pub allowed: bool,
    pub status: Status,
}

fn check(name: &'static str, status: Status, summary: String) -> Finding {
    Finding {
        name,
        status,
        summary,
    }
}

pub fn evaluate(facts: &AuditFacts, allow: &[Cidr]) -> AuditReport {
    let Some(access) = facts.access.as_ref().filter(|_| facts.failure.is_none()) else {
        let reason = facts
            .failure
            .clone()
            .unwrap_or_else(|| "the audit did not run".into());
        return AuditReport {
            checks: ["audit_settings", "audit_hba", "audit_sessions"]
                .into_iter()
                .map(|name| check(name, Status::Unknown, reason.clone()))
                .collect(),
            settings: None,
            hba_rules: Vec::new(),
            hba: None,
            sessions: None,
            failure: Some(reason),
        };
    };
    let (settings_check, settings) = settings(facts, access);
    let (hba_check, hba_rules, hba) = hba(facts, access);
    let (sessions_check, sessions) = sessions(facts, access, allow);
    AuditReport {
        checks: vec![settings_check, hba_check, sessions_check],
        settings,
        hba_rules,
        hba,
        sessions,
        failure: None,
    }
}

fn worst(statuses: impl Iterator<Item = Status>) -> Status {
    statuses.max().unwrap_or(Status::Ok)
}

fn named<T>(items: &[T], show: impl Fn(&T) -> String) -> String {
    let mut text = items
        .iter()
        .take(NAMED)
        .map(show)
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > NAMED {
        text.push_str(&format!("; and {} more", items.len() - NAMED));
    }
    text
}

// ---- settings ----

fn settings(facts: &AuditFacts, access: &AuditAccess) -> (Finding, Option<SettingsReport>) {
    let values = &facts.settings;
    let get = |name: &str| values.get(name).map(String::as_str);
    let mut findings = Vec::new();
    let mut add = |setting: &str, status, reason: String| {
        findings.push(SettingFinding {
            setting: setting.into(),
            value: values.get(setting).cloned(),
            status,
            reason,
        })
    };
    if get("ssl") == Some("off") {
        add(
            "ssl",
            Status::Critical,
            format!("ssl = off breaks the recipe line `{RECIPE_SSL}`"),
        );
    }
    match get("ssl_min_protocol_version") {
        Some(v) if TlsVersion::parse(v).is_some_and(|v| v < TlsVersion::Tls12) => add(
            "ssl_min_protocol_version",
            Status::Warning,
            format!("ssl_min_protocol_version = '{v}' is below the recipe line `{RECIPE_MIN}`"),
        ),
        // Visible settings but no such row: a server before PostgreSQL 12.
        None if access.read_all_settings => add(
            "ssl_min_protocol_version",
            Status::Warning,
            format!("the server has no ssl_min_protocol_version (before PostgreSQL 12), so TLS 1.0 and 1.1 are not excluded (recipe line `{RECIPE_MIN}`)"),
        ),
        _ => {}
    }
    if let Some(v) = get("ssl_max_protocol_version")
        .filter(|v| TlsVersion::parse(v).is_some_and(|v| v < TlsVersion::Tls12))
    {
        add(
            "ssl_max_protocol_version",
            Status::Warning,
            format!("ssl_max_protocol_version = '{v}' keeps TLS below the recipe's floor `{RECIPE_MIN}`"),
        );
    }
    // "on" is md5 before PostgreSQL 14.
    if let Some(v) = get("password_encryption").filter(|v| *v == "md5" || *v == "on") {
        add(
            "password_encryption",
            Status::Warning,
            format!("password_encryption = {v} stores new passwords as MD5, which cannot log in through the recipe line `{RECIPE_HOSTSSL}`; set scram-sha-256"),
        );
    }
    let mut status = worst(findings.iter().map(|f| f.status));
    let mut parts: Vec<String> = findings.iter().map(|f| f.reason.clone()).collect();
    if !access.read_all_settings {
        let hidden: Vec<&str> = SUPERUSER_ONLY
            .iter()
            .copied()
            .filter(|n| !values.contains_key(*n))
            .collect();
        status = status.max(Status::Unknown);
        parts.push(format!(
            "{} not visible to {role}: GRANT pg_monitor TO {role};",
            hidden.join(", "),
            role = access.role
        ));
    }
    let summary = if parts.is_empty() {
        format!(
            "ssl on, minimum {}, password_encryption {}",
            get("ssl_min_protocol_version").unwrap_or("?"),
            get("password_encryption").unwrap_or("?")
        )
    } else {
        parts.join("; ")
    };
    let mut shown = values.clone();
    shown.remove("data_directory");
    (
        check("audit_settings", status, summary),
        Some(SettingsReport {
            status,
            values: shown,
            findings,
        }),
    )
}

// ---- pg_hba.conf ----

fn hba(facts: &AuditFacts, access: &AuditAccess) -> (Finding, Vec<RuleFinding>, Option<HbaReport>) {
    let Some(hba) = &facts.hba else {
        let summary = match &facts.hba_failure {
            Some(reason) => reason.clone(),
            None => {
                let mut grants = Vec::new();
                if !access.hba_select {
                    grants.push(format!(
                        "GRANT SELECT ON pg_catalog.pg_hba_file_rules TO {};",
                        access.role
                    ));
                }
                if !access.hba_execute {
                    grants.push(format!(
                        "GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO {};",
                        access.role
                    ));
                }
                format!(
                    "pg_hba_file_rules not readable by {}: {}",
                    access.role,
                    grants.join(" ")
                )
            }
        };
        return (
            check("audit_hba", Status::Unknown, summary),
            Vec::new(),
            None,
        );
    };
    let default_file = hba.hba_file.clone().unwrap_or_else(|| "pg_hba.conf".into());
    let file_of = |rule: &HbaRule| {
        rule.file_name
            .clone()
            .unwrap_or_else(|| default_file.clone())
    };
    let mut findings: Vec<RuleFinding> = hba
        .rules
        .iter()
        .filter_map(|rule| {
            let (status, reason) = judge_rule(rule)?;
            Some(RuleFinding {
                file: file_of(rule),
                line: rule.line_number,
                status,
                reason,
                rule: rule_text(rule),
            })
        })
        .collect();
    let catch_all = catch_all(&hba.rules);
    for (found, family, recipe) in [
        (catch_all.ipv4, "IPv4", RECIPE_REJECT_V4),
        (catch_all.ipv6, "IPv6", RECIPE_REJECT_V6),
    ] {
        if found.is_none() {
            findings.push(RuleFinding {
                file: default_file.clone(),
                line: None,
                status: Status::Warning,
                reason: format!("no final catch-all reject for {family} (recipe line `{recipe}`): nothing but the absence of a matching rule keeps other non-TLS connections out"),
                rule: Some(recipe.to_string()),
            });
        }
    }
    let has_errors = hba.rules.iter().any(unparsed);
    let pending = matches!(hba.reload, ReloadCheck::Checked { pending: true, .. });
    let differs = if has_errors || pending {
        Some(true)
    } else {
        match hba.reload {
            ReloadCheck::Checked { .. } => Some(false),
            _ => None,
        }
    };
    let mut status = worst(findings.iter().map(|f| f.status));
    let mut parts = Vec::new();
    if !findings.is_empty() {
        // The worst findings by line; every finding has a line of its own
        // in the long output and in JSON.
        let counts = [Status::Critical, Status::Warning]
            .into_iter()
            .map(|s| (s, findings.iter().filter(|f| f.status == s).count()))
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{n} {}", s.label()))
            .collect::<Vec<_>>()
            .join(", ");
        let worst_ones: Vec<&RuleFinding> =
            findings.iter().filter(|f| f.status == status).collect();
        parts.push(format!(
            "{default_file}: {counts}; {}: {}",
            status.label(),
            named(&worst_ones, |f| {
                // Rules from an included file (PostgreSQL 16+) say which.
                let at = |line| {
                    if f.file == default_file {
                        format!("line {line}")
                    } else {
                        format!("{}:{line}", f.file)
                    }
                };
                match (f.line, &f.rule) {
                    (Some(line), Some(rule)) => format!("{} [{rule}]", at(line)),
                    (Some(line), None) => format!("{} (does not parse)", at(line)),
                    (None, _) => f.reason.clone(),
                }
            })
        ));
    }
    if pending {
        status = status.max(Status::Warning);
        parts.push("the file changed after the last configuration reload: these rules are on disk, not yet in force (SELECT pg_reload_conf())".into());
    }
    if has_errors {
        parts.push("PostgreSQL does not load a pg_hba.conf with errors: the server still runs the rules it loaded before, which pg_hba_file_rules does not show".into());
    }
    let summary = if parts.is_empty() {
        format!(
            "{} rules in {default_file}: none lets a connection in without TLS; catch-all reject at lines {} (IPv4) and {} (IPv6)",
            hba.rules.len(),
            catch_all.ipv4.unwrap_or_default(),
            catch_all.ipv6.unwrap_or_default()
        )
    } else {
        parts.join("; ")
    };
    (
        check("audit_hba", status, summary),
        findings,
        Some(HbaReport {
            status,
            file: default_file,
            rules: hba.rules.len(),
            catch_all_reject: catch_all,
            reload: hba.reload.clone(),
            differs_from_running: differs,
        }),
    )
}

/// A line PostgreSQL could not parse: with an `error`, or (a radiussecrets
/// list it cannot split) with every column NULL, `error` included.
fn unparsed(rule: &HbaRule) -> bool {
    rule.error.is_some() || rule.kind.is_none()
}

/// What is wrong with one rule, or None when it is fine by the recipe.
fn judge_rule(rule: &HbaRule) -> Option<(Status, String)> {
    if let Some(error) = &rule.error {
        return Some((
            Status::Critical,
            format!("line does not parse: {}", redact_error(error)),
        ));
    }
    let Some(kind) = rule.kind.as_deref() else {
        return Some((
            Status::Critical,
            "line does not parse (pg_hba_file_rules gives no reason; the server log of a reload does)".into(),
        ));
    };
    let method = rule.auth_method.as_deref().unwrap_or("");
    if kind == "local" || method == "reject" {
        return None;
    }
    let trust = method == "trust";
    let cleartext = CLEARTEXT_METHODS.contains(&method);
    let mut reasons = Vec::new();
    let mut status = Status::Ok;
    let mut flag = |s: Status, reason: String| {
        status = status.max(s);
        reasons.push(reason);
    };
    match kind {
        "host" | "hostnossl" | "hostnogssenc" => {
            let how = if trust {
                ", with trust (no password at all)"
            } else if method == "oauth" {
                ", and the bearer token crosses the network in clear"
            } else if cleartext {
                ", and the password crosses the network in clear"
            } else {
                ""
            };
            flag(
                if trust || cleartext {
                    Status::Critical
                } else {
                    Status::Warning
                },
                format!("{kind} rule lets connections in without TLS{how}; recipe line `{RECIPE_HOSTSSL}`"),
            );
        }
        "hostgssenc" => flag(
            Status::Warning,
            format!("encrypted by GSSAPI, not TLS (recipe line `{RECIPE_HOSTSSL}`)"),
        ),
        _ => {}
    }
    // Encrypted rules (hostssl, hostgssenc): the reason above covers trust
    // on the plaintext ones.
    if trust && !matches!(kind, "host" | "hostnossl" | "hostnogssenc") {
        flag(
            Status::Warning,
            format!("trust over TCP: anyone who reaches the port logs in without a password, TLS or not (recipe line `{RECIPE_HOSTSSL}`)"),
        );
    }
    if method == "md5" || method == "password" {
        flag(
            Status::Warning,
            format!("method {method} instead of scram-sha-256 (recipe line `{RECIPE_HOSTSSL}`)"),
        );
    }
    (status != Status::Ok).then(|| (status, reasons.join("; ")))
}

/// Lines of `host`/`hostnossl all all <everything> reject` per family.
fn catch_all(rules: &[HbaRule]) -> CatchAll {
    let mut found = CatchAll::default();
    let all = |v: &Option<Vec<String>>| v.as_deref() == Some(&["all".to_string()][..]);
    for rule in rules.iter().filter(|r| {
        r.error.is_none()
            && matches!(r.kind.as_deref(), Some("host" | "hostnossl"))
            && r.auth_method.as_deref() == Some("reject")
            && all(&r.database)
            && all(&r.user_name)
    }) {
        // A zero-length mask matches the whole family, whatever the address
        // (the view shows `1.2.3.4/0` as written).
        let whole = rule.netmask.as_deref().and_then(prefix_len) == Some(0);
        let (v4, v6) = match rule.address.as_deref() {
            Some("all") => (true, true),
            Some(a) if whole => match a.parse::<IpAddr>() {
                Ok(IpAddr::V4(_)) => (true, false),
                Ok(IpAddr::V6(_)) => (false, true),
                Err(_) => (false, false),
            },
            _ => (false, false),
        };
        if v4 {
            found.ipv4 = found.ipv4.or(rule.line_number);
        }
        if v6 {
            found.ipv6 = found.ipv6.or(rule.line_number);
        }
    }
    found
}

/// The rule as a pg_hba.conf line, rebuilt from the view's columns.
fn rule_text(rule: &HbaRule) -> Option<String> {
    let kind = rule.kind.as_deref()?;
    let list = |v: &Option<Vec<String>>| v.as_ref().map(|v| v.join(",")).unwrap_or_default();
    let mut words = vec![
        kind.to_string(),
        list(&rule.database),
        list(&rule.user_name),
    ];
    if let Some(address) = &rule.address {
        words.push(match rule.netmask.as_deref().and_then(prefix_len) {
            Some(prefix) => format!("{address}/{prefix}"),
            None => match &rule.netmask {
                Some(mask) => format!("{address} {mask}"),
                None => address.clone(),
            },
        });
    }
    words.extend(rule.auth_method.clone());
    words.extend(rule.options.iter().flatten().map(|o| redact(o)));
    Some(words.join(" "))
}

/// Options the view shows that hold secrets (the reason it is
/// superuser-only): the value never reaches the output.
const SECRET_OPTIONS: &[&str] = &["ldapbindpasswd", "radiussecrets"];

fn redact(option: &str) -> String {
    match option.split_once('=') {
        Some((name, _)) if SECRET_OPTIONS.contains(&name) => format!("{name}=(hidden)"),
        _ => option.to_string(),
    }
}

/// The one error text of pg_hba_file_rules that quotes a raw word of the
/// options: an unquoted comma in ldapbindpasswd or radiussecrets makes the
/// rest of the secret such a word.
fn redact_error(error: &str) -> String {
    const BARE_WORD: &str = "authentication option not in name=value format:";
    if error.starts_with(BARE_WORD) {
        format!("{BARE_WORD} (word hidden: it may be part of a password; quote values that contain a comma)")
    } else {
        error.to_string()
    }
}

/// "255.255.255.0" -> 24; None for a mask that is not a prefix.
fn prefix_len(mask: &str) -> Option<u32> {
    let bits = match mask.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
        IpAddr::V6(v6) => u128::from(v6),
    };
    let ones = bits.leading_ones();
    (bits.checked_shl(ones).unwrap_or(0) == 0).then_some(ones)
}

// ---- sessions ----

fn sessions(
    facts: &AuditFacts,
    access: &AuditAccess,
    allow: &[Cidr],
) -> (Finding, Option<SessionsReport>) {
    if !access.read_all_stats {
        return (
            check(
                "audit_sessions",
                Status::Unknown,
                format!(
                    "other roles' sessions are hidden from {role}: GRANT pg_monitor TO {role};",
                    role = access.role
                ),
            ),
            None,
        );
    }
    let mut report = SessionsReport {
        status: Status::Ok,
        total: facts.sessions.len(),
        tls: 0,
        gss: 0,
        plaintext: 0,
        plaintext_allowed: 0,
        plaintext_sessions: Vec::new(),
    };
    for s in &facts.sessions {
        if s.ssl == Some(true) {
            report.tls += 1;
        } else if s.gss_encrypted == Some(true) {
            report.gss += 1;
        } else {
            report.plaintext += 1;
            report.plaintext_sessions.push(plaintext_session(s, allow));
        }
    }
    report.plaintext_allowed = report
        .plaintext_sessions
        .iter()
        .filter(|p| p.allowed)
        .count();
    report.status = worst(report.plaintext_sessions.iter().map(|p| p.status));
    let mut summary = format!(
        "TCP sessions: {} ({} TLS, {} plaintext",
        report.total, report.tls, report.plaintext
    );
    if report.gss > 0 {
        summary.push_str(&format!(", {} GSSAPI-encrypted", report.gss));
    }
    if report.plaintext_allowed > 0 {
        summary.push_str(&format!(
            ", {} of them from --allow-plaintext-from ranges",
            report.plaintext_allowed
        ));
    }
    summary.push(')');
    let refused: Vec<&PlaintextSession> = report
        .plaintext_sessions
        .iter()
        .filter(|p| !p.allowed)
        .collect();
    if !refused.is_empty() {
        summary.push_str(": ");
        summary.push_str(&named(&refused, |p| describe_session(p)));
    }
    (
        check("audit_sessions", report.status, summary),
        Some(report),
    )
}

fn plaintext_session(s: &TcpSession, allow: &[Cidr]) -> PlaintextSession {
    let replication = s.backend_type.as_deref() == Some("walsender");
    let addr = s
        .client_addr
        .as_deref()
        .and_then(|a| a.parse::<IpAddr>().ok());
    let allowed = !replication && addr.is_some_and(|a| allow.iter().any(|c| c.contains(a)));
    PlaintextSession {
        session: s.clone(),
        replication,
        allowed,
        status: if allowed {
            Status::Ok
        } else {
            Status::Critical
        },
    }
}

pub fn describe_session(p: &PlaintextSession) -> String {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let s = &p.session;
    format!(
        "{} {}{} from {} (pid {}, database {}, application_name \"{}\") without TLS",
        if p.replication {
            "replication"
        } else {
            "client"
        },
        or_dash(&s.user),
        s.backend_type
            .as_deref()
            .map(|b| format!(" [{b}]"))
            .unwrap_or_default(),
        or_dash(&s.client_addr),
        s.pid,
        or_dash(&s.database),
        or_dash(&s.application_name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::audit::HbaFacts;

    fn rule(line: i32, text: &str) -> HbaRule {
        let words: Vec<&str> = text.split_whitespace().collect();
        let (address, netmask) = match words[3].split_once('/') {
            Some(("0.0.0.0", "0")) => (Some("0.0.0.0"), Some("0.0.0.0")),
            Some(("::", "0")) => (Some("::"), Some("::")),
            Some((a, "32")) => (Some(a), Some("255.255.255.255")),
            Some((a, "16")) => (Some(a), Some("255.255.0.0")),
            _ => (Some(words[3]), None),
        };
        let list = |w: &str| Some(w.split(',').map(str::to_string).collect());
        HbaRule {
            line_number: Some(line),
            kind: Some(words[0].into()),
            database: list(words[1]),
            user_name: list(words[2]),
            address: address.map(str::to_string),
            netmask: netmask.map(str::to_string),
            auth_method: Some(words[4].into()),
            ..HbaRule::default()
        }
    }

    fn access() -> AuditAccess {
        AuditAccess {
            role: "monitor".into(),
            read_all_settings: true,
            read_all_stats: true,
            hba_select: true,
            hba_execute: true,
            ..AuditAccess::default()
        }
    }

    /// The article's postgresql.conf and pg_hba.conf, one TLS session.
    fn article() -> AuditFacts {
        let settings = [
            ("ssl", "on"),
            ("ssl_min_protocol_version", "TLSv1.2"),
            ("ssl_max_protocol_version", ""),
            ("password_encryption", "scram-sha-256"),
            ("ssl_ciphers", "HIGH:!aNULL"),
        ];
        AuditFacts {
            access: Some(access()),
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            sessions: vec![session(1, "client backend", Some(true))],
            hba: Some(HbaFacts {
                hba_file: Some("/etc/pg/pg_hba.conf".into()),
                rules: vec![
                    rule(1, "local all all - trust"),
                    rule(3, "hostssl all all 0.0.0.0/0 scram-sha-256"),
                    rule(4, "hostssl all all ::/0 scram-sha-256"),
                    rule(6, "host all all 0.0.0.0/0 reject"),
                    rule(7, "host all all ::/0 reject"),
                ],
                reload: ReloadCheck::NotRun,
            }),
            failure: None,
            hba_failure: None,
        }
    }

    fn session(pid: i32, backend_type: &str, ssl: Option<bool>) -> TcpSession {
        TcpSession {
            pid,
            user: Some("app".into()),
            database: Some("db".into()),
            client_addr: Some("10.0.0.5".into()),
            application_name: Some("x".into()),
            backend_type: Some(backend_type.into()),
            ssl,
            tls_version: None,
            gss_encrypted: Some(false),
        }
    }

    fn statuses(report: &AuditReport) -> Vec<(&'static str, Status)> {
        report.checks.iter().map(|c| (c.name, c.status)).collect()
    }

    #[test]
    fn article_setup_is_clean() {
        let report = evaluate(&article(), &[]);
        assert_eq!(
            statuses(&report),
            [
                ("audit_settings", Status::Ok),
                ("audit_hba", Status::Ok),
                ("audit_sessions", Status::Ok)
            ]
        );
        assert!(report.hba_rules.is_empty());
        let hba = report.hba.unwrap();
        assert_eq!(
            (hba.catch_all_reject.ipv4, hba.catch_all_reject.ipv6),
            (Some(6), Some(7))
        );
        assert_eq!(hba.differs_from_running, None);
    }

    /// PostgreSQL 12 as an unprivileged role sees it: ssl_crl_dir does not
    /// exist there (14+), so it is not "hidden"; the five that are, are named.
    #[test]
    fn hidden_settings_are_the_superuser_only_ones() {
        let mut facts = article();
        facts.access.as_mut().unwrap().read_all_settings = false;
        facts.settings = [
            "password_encryption",
            "ssl",
            "ssl_ca_file",
            "ssl_cert_file",
            "ssl_crl_file",
            "ssl_key_file",
            "ssl_prefer_server_ciphers",
        ]
        .iter()
        .map(|k| (k.to_string(), "x".to_string()))
        .collect();
        let check = &evaluate(&facts, &[]).checks[0];
        assert_eq!(check.status, Status::Unknown);
        assert!(
            check.summary.starts_with("ssl_min_protocol_version, ssl_max_protocol_version, ssl_ciphers, ssl_ecdh_curve, hba_file not visible to monitor"),
            "{}",
            check.summary
        );
    }

    #[test]
    fn settings_against_the_recipe() {
        let mut facts = article();
        let set = |f: &mut AuditFacts, k: &str, v: &str| {
            f.settings.insert(k.into(), v.into());
        };
        set(&mut facts, "ssl_min_protocol_version", "TLSv1.1");
        set(&mut facts, "password_encryption", "md5");
        let report = evaluate(&facts, &[]);
        assert_eq!(report.checks[0].status, Status::Warning);
        let s = report.settings.unwrap();
        assert_eq!(s.findings.len(), 2);
        assert!(
            s.findings[0].reason.contains(RECIPE_MIN),
            "{}",
            s.findings[0].reason
        );
        set(&mut facts, "ssl", "off");
        assert_eq!(evaluate(&facts, &[]).checks[0].status, Status::Critical);
        // Without pg_read_all_settings the hidden ones are named with the GRANT.
        let mut facts = article();
        facts.access.as_mut().unwrap().read_all_settings = false;
        facts.settings.remove("ssl_min_protocol_version");
        let check = &evaluate(&facts, &[]).checks[0];
        assert_eq!(check.status, Status::Unknown);
        assert!(
            check.summary.contains("ssl_min_protocol_version"),
            "{}",
            check.summary
        );
        assert!(check.summary.contains("GRANT pg_monitor TO monitor;"));
    }

    #[test]
    fn each_rule_kind_gets_its_status() {
        let cases = [
            (
                "host all all 0.0.0.0/0 scram-sha-256",
                Some(Status::Warning),
            ),
            ("hostnossl all all 0.0.0.0/0 trust", Some(Status::Critical)),
            ("host all all 0.0.0.0/0 password", Some(Status::Critical)),
            ("host all all 0.0.0.0/0 ldap", Some(Status::Critical)),
            ("hostnossl all all 0.0.0.0/0 reject", None),
            ("host db app 10.0.0.0/16 md5", Some(Status::Warning)),
            ("hostssl all all 0.0.0.0/0 trust", Some(Status::Warning)),
            ("hostssl all all 0.0.0.0/0 md5", Some(Status::Warning)),
            ("hostssl all all 0.0.0.0/0 cert", None),
            ("hostgssenc all all 0.0.0.0/0 gss", Some(Status::Warning)),
            (
                "hostnogssenc all all 0.0.0.0/0 scram-sha-256",
                Some(Status::Warning),
            ),
            ("local all all - trust", None),
        ];
        for (text, want) in cases {
            assert_eq!(judge_rule(&rule(1, text)).map(|(s, _)| s), want, "{text}");
        }
        let broken = HbaRule {
            line_number: Some(9),
            error: Some("invalid CIDR mask".into()),
            ..HbaRule::default()
        };
        assert_eq!(judge_rule(&broken).unwrap().0, Status::Critical);
        assert_eq!(rule_text(&broken), None);
    }

    #[test]
    fn rule_text_uses_prefix_lengths() {
        assert_eq!(
            rule_text(&rule(1, "host app,other alice 10.1.0.0/16 md5")).unwrap(),
            "host app,other alice 10.1.0.0/16 md5"
        );
        assert_eq!(prefix_len("ffff:ffff:ffff:ffff::"), Some(64));
        assert_eq!(prefix_len("255.0.255.0"), None);
        let odd = HbaRule {
            netmask: Some("255.0.255.0".into()),
            ..rule(1, "host all all 10.0.0.0 md5")
        };
        assert_eq!(
            rule_text(&odd).unwrap(),
            "host all all 10.0.0.0 255.0.255.0 md5"
        );
    }

    #[test]
    fn rule_text_never_shows_secrets() {
        let ldap = HbaRule {
            options: Some(vec![
                "ldapserver=ldap.example".into(),
                "ldapbindpasswd=s3cret".into(),
                "radiussecrets=r4dius,other".into(),
            ]),
            ..rule(1, "host all all 10.0.0.0/16 ldap")
        };
        let text = rule_text(&ldap).unwrap();
        assert_eq!(
            text,
            "host all all 10.0.0.0/16 ldap ldapserver=ldap.example ldapbindpasswd=(hidden) radiussecrets=(hidden)"
        );
        let mut facts = article();
        facts.hba.as_mut().unwrap().rules.push(ldap);
        let report = evaluate(&facts, &[]);
        let shown = format!("{:?}{}", report.hba_rules, report.checks[1].summary);
        assert!(
            !shown.contains("s3cret") && !shown.contains("r4dius"),
            "{shown}"
        );
    }

    #[test]
    fn catch_all_needs_all_databases_users_and_addresses() {
        let mut facts = article();
        let hba = facts.hba.as_mut().unwrap();
        hba.rules.truncate(3);
        hba.rules.push(rule(6, "host app all 0.0.0.0/0 reject"));
        hba.rules.push(rule(7, "hostnossl all all all reject"));
        let report = evaluate(&facts, &[]);
        let catch_all = &report.hba.as_ref().unwrap().catch_all_reject;
        assert_eq!((catch_all.ipv4, catch_all.ipv6), (Some(7), Some(7)));
        assert_eq!(report.checks[1].status, Status::Ok);
        facts.hba.as_mut().unwrap().rules.pop();
        let report = evaluate(&facts, &[]);
        assert_eq!(report.checks[1].status, Status::Warning);
        assert_eq!(report.hba_rules.len(), 2);
        assert!(report.hba_rules.iter().all(|f| f.line.is_none()));
    }

    #[test]
    fn pending_reload_and_parse_errors_say_the_view_differs() {
        let mut facts = article();
        facts.hba.as_mut().unwrap().reload = ReloadCheck::Checked {
            file_modified: 2.0,
            loaded: 1.0,
            pending: true,
        };
        let report = evaluate(&facts, &[]);
        assert_eq!(report.checks[1].status, Status::Warning);
        assert!(report.checks[1].summary.contains("pg_reload_conf"));
        assert_eq!(report.hba.unwrap().differs_from_running, Some(true));
        facts.hba.as_mut().unwrap().reload = ReloadCheck::Checked {
            file_modified: 1.0,
            loaded: 2.0,
            pending: false,
        };
        assert_eq!(
            evaluate(&facts, &[]).hba.unwrap().differs_from_running,
            Some(false)
        );
    }

    #[test]
    fn missing_rule_privileges_give_the_grants() {
        let mut facts = article();
        facts.hba = None;
        facts.access.as_mut().unwrap().hba_execute = false;
        let check = &evaluate(&facts, &[]).checks[1];
        assert_eq!(check.status, Status::Unknown);
        assert!(check
            .summary
            .contains("GRANT EXECUTE ON FUNCTION pg_catalog.pg_hba_file_rules() TO monitor;"));
        assert!(!check.summary.contains("GRANT SELECT"));
    }

    #[test]
    fn sessions_replication_is_never_allowed() {
        let mut facts = article();
        facts
            .sessions
            .push(session(2, "client backend", Some(false)));
        facts.sessions.push(session(3, "walsender", Some(false)));
        let mut gss = session(4, "client backend", Some(false));
        gss.gss_encrypted = Some(true);
        facts.sessions.push(gss);
        let allow = [Cidr::parse("10.0.0.0/8").unwrap()];
        let report = evaluate(&facts, &allow);
        let s = report.sessions.unwrap();
        assert_eq!(
            (s.total, s.tls, s.gss, s.plaintext, s.plaintext_allowed),
            (4, 1, 1, 2, 1)
        );
        assert_eq!(s.status, Status::Critical);
        assert!(s.plaintext_sessions[0].allowed && !s.plaintext_sessions[1].allowed);
        assert!(s.plaintext_sessions[1].replication);
        assert!(report.checks[2]
            .summary
            .contains("replication app [walsender] from 10.0.0.5"));
        let mut facts = article();
        facts.access.as_mut().unwrap().read_all_stats = false;
        let check = &evaluate(&facts, &[]).checks[2];
        assert_eq!(check.status, Status::Unknown);
        assert!(check.summary.contains("GRANT pg_monitor TO monitor;"));
    }

    #[test]
    fn failed_audit_is_unknown_everywhere() {
        let facts = AuditFacts {
            failure: Some("audit queries timed out after 9.0 s".into()),
            ..AuditFacts::default()
        };
        let report = evaluate(&facts, &[]);
        assert_eq!(report.checks.len(), 3);
        assert!(report.checks.iter().all(|c| c.status == Status::Unknown));
    }

    #[test]
    fn cidr_ranges() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let host = Cidr::parse("192.0.2.7").unwrap();
        assert_eq!(host, Cidr::parse("192.0.2.7/32").unwrap());
        assert!(host.contains("192.0.2.7".parse().unwrap()));
        assert!(!host.contains("192.0.2.8".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "fd00::/129", "db.internal", "10.0.0.0/", ""] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    /// PostgreSQL leaves some lines that do not parse with every column
    /// NULL, `error` included (a radiussecrets list it cannot split): still
    /// a line that keeps the whole file from loading.
    #[test]
    fn line_without_type_or_error_does_not_parse() {
        let mut facts = article();
        facts.hba.as_mut().unwrap().rules.push(HbaRule {
            line_number: Some(9),
            ..HbaRule::default()
        });
        let report = evaluate(&facts, &[]);
        assert_eq!(report.checks[1].status, Status::Critical);
        let f = &report.hba_rules[0];
        assert_eq!((f.line, f.status), (Some(9), Status::Critical));
        assert!(f.reason.contains("does not parse"), "{}", f.reason);
        assert_eq!(report.hba.unwrap().differs_from_running, Some(true));
    }

    /// The one error text that quotes a raw option word: an unquoted comma
    /// in a password or secret list makes its tail such a word.
    #[test]
    fn parse_errors_never_show_option_words() {
        let mut facts = article();
        facts.hba.as_mut().unwrap().rules.push(HbaRule {
            line_number: Some(9),
            error: Some("authentication option not in name=value format: Rad-Two".into()),
            ..HbaRule::default()
        });
        let report = evaluate(&facts, &[]);
        let shown = format!("{:?}{}", report.hba_rules, report.checks[1].summary);
        assert!(!shown.contains("Rad-Two"), "{shown}");
        assert!(
            report.hba_rules[0]
                .reason
                .contains("authentication option not in name=value format"),
            "{shown}"
        );
    }

    #[test]
    fn encrypted_but_trusting_rules_say_trust() {
        let (status, reason) = judge_rule(&rule(1, "hostgssenc all all 0.0.0.0/0 trust")).unwrap();
        assert_eq!(status, Status::Warning);
        assert!(reason.contains("trust"), "{reason}");
    }

    /// PostgreSQL 18's oauth sends a bearer token: in clear without TLS.
    #[test]
    fn oauth_without_tls_is_critical() {
        let (status, reason) = judge_rule(&rule(1, "host all all 0.0.0.0/0 oauth")).unwrap();
        assert_eq!(status, Status::Critical);
        assert!(reason.contains("token"), "{reason}");
        assert_eq!(
            judge_rule(&rule(1, "hostssl all all 0.0.0.0/0 oauth")),
            None
        );
    }

    /// Any address with a zero-length mask matches the whole family.
    #[test]
    fn catch_all_by_mask_not_by_address_text() {
        let mut facts = article();
        let hba = facts.hba.as_mut().unwrap();
        hba.rules.truncate(3);
        hba.rules.push(HbaRule {
            address: Some("1.2.3.4".into()),
            netmask: Some("0.0.0.0".into()),
            ..rule(6, "host all all 1.2.3.4 reject")
        });
        hba.rules.push(HbaRule {
            address: Some("fd00::".into()),
            netmask: Some("::".into()),
            ..rule(7, "host all all fd00:: reject")
        });
        let catch_all = evaluate(&facts, &[]).hba.unwrap().catch_all_reject;
        assert_eq!((catch_all.ipv4, catch_all.ipv6), (Some(6), Some(7)));
    }

    /// From PostgreSQL 16 rules can come from included files: the summary
    /// names the file of a finding that is not in the main one.
    #[test]
    fn summary_names_included_files() {
        let mut facts = article();
        facts.hba.as_mut().unwrap().rules.push(HbaRule {
            file_name: Some("/etc/pg/conf.d/extra.conf".into()),
            ..rule(2, "host all all 10.0.0.0/16 trust")
        });
        let summary = &evaluate(&facts, &[]).checks[1].summary;
        assert!(
            summary.contains("/etc/pg/conf.d/extra.conf:2 [host all all 10.0.0.0/16 trust]"),
            "{summary}"
        );
    }

    /// A range written as IPv4-mapped IPv6 matches the same clients as the
    /// IPv4 range, whichever way the server shows their address.
    #[test]
    fn cidr_v4_mapped_ranges() {
        let mapped = Cidr::parse("::ffff:10.1.0.0/112").unwrap();
        assert_eq!(mapped, Cidr::parse("10.1.0.0/16").unwrap());
        assert!(mapped.contains("10.1.2.3".parse().unwrap()));
        assert!(mapped.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!mapped.contains("10.2.0.1".parse().unwrap()));
        // IPv6 ranges outside ::ffff:0:0/96 never take IPv4 clients.
        let v6 = Cidr::parse("::/0").unwrap();
        assert!(!v6.contains("10.1.2.3".parse().unwrap()));
        assert!(v6.contains("2001:db8::1".parse().unwrap()));
    }
}
