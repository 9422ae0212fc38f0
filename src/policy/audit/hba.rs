//! `audit_hba`: every rule of pg_hba_file_rules against the recipe's
//! `hostssl ... scram-sha-256` plus a catch-all `host ... reject`, with the
//! rule rebuilt (secrets hidden) and the file and line that hold it.

use std::net::IpAddr;

use super::{named, worst, RECIPE_HOSTSSL, RECIPE_REJECT_V4, RECIPE_REJECT_V6};
use crate::facts::audit::{AuditAccess, AuditFacts, HbaRule, ReloadCheck};
use crate::policy::{finding, Check, Finding, Status};

/// Methods that make the client send its password (oauth, PostgreSQL 18:
/// its bearer token) in clear over the connection: fatal without TLS.
const CLEARTEXT_METHODS: &[&str] = &["password", "ldap", "radius", "pam", "bsd", "oauth"];

#[derive(Debug, Clone)]
pub struct RuleFinding {
    pub file: String,
    pub line: Option<i32>,
    pub status: Status,
    pub reason: String,
    /// The rule as the view parsed it (None for a line with a parse error).
    pub rule: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HbaReport {
    pub status: Status,
    pub file: String,
    pub rules: usize,
    /// Line of the catch-all reject per address family, None when missing.
    pub catch_all_reject: CatchAll,
    pub reload: ReloadCheck,
    /// True when the view may not match the rules in force: a pending
    /// reload, or a parse error (the server keeps its previous rules).
    pub differs_from_running: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct CatchAll {
    pub ipv4: Option<i32>,
    pub ipv6: Option<i32>,
}

pub(super) fn judge(
    facts: &AuditFacts,
    access: &AuditAccess,
) -> (Finding, Vec<RuleFinding>, Option<HbaReport>) {
    let Some(hba) = &facts.hba else {
        let summary = match &facts.hba_failure {
            Some(reason) => reason.to_string(),
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
                    "pg_hba_file_rules not readable by {}: {} (run in database {}: privileges on catalog views and functions are per database)",
                    access.role,
                    grants.join(" "),
                    access.database
                )
            }
        };
        return (
            finding(Check::AuditHba, Status::Unknown, summary),
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
    // A connection no rule matches is refused, so a missing catch-all is a
    // hole only where some rule lets that family in without TLS; that
    // rule is a finding of its own, and the missing line is named beside it.
    for (found, family, recipe) in [
        (catch_all.ipv4, Family::V4, RECIPE_REJECT_V4),
        (catch_all.ipv6, Family::V6, RECIPE_REJECT_V6),
    ] {
        if found.is_some() {
            continue;
        }
        let openers: Vec<i32> = hba
            .rules
            .iter()
            .filter(|r| admits_plaintext(r, family))
            .filter_map(|r| r.line_number)
            .collect();
        if openers.is_empty() {
            continue;
        }
        let lines = openers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        findings.push(RuleFinding {
            file: default_file.clone(),
            line: None,
            status: Status::Warning,
            reason: format!(
                "no final catch-all reject for {} (recipe line `{recipe}`), and line(s) {lines} let {} connections in without TLS",
                family.name(),
                family.name()
            ),
            rule: Some(recipe.to_string()),
        });
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
        let at = |line: Option<i32>, family: &str| {
            match line {
            Some(line) => format!("line {line} ({family})"),
            None => format!("none for {family} (not needed: no rule lets {family} in without TLS, and a connection no rule matches is refused)"),
        }
        };
        format!(
            "{} rules in {default_file}: none lets a connection in without TLS; catch-all reject: {}, {}",
            hba.rules.len(),
            at(catch_all.ipv4, "IPv4"),
            at(catch_all.ipv6, "IPv6")
        )
    } else {
        parts.join("; ")
    };
    (
        finding(Check::AuditHba, status, summary),
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

/// An address family, for the catch-all reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// Whether `rule` can let a connection of `family` in without any
/// encryption: a non-`reject` `host`, `hostnossl` or `hostnogssenc` rule
/// whose address may be of that family (`all`, `samehost`, `samenet` and
/// host names may be either).
fn admits_plaintext(rule: &HbaRule, family: Family) -> bool {
    if unparsed(rule)
        || !matches!(
            rule.kind.as_deref(),
            Some("host" | "hostnossl" | "hostnogssenc")
        )
        || rule.auth_method.as_deref() == Some("reject")
    {
        return false;
    }
    match rule.address.as_deref().map(str::parse::<IpAddr>) {
        Some(Ok(IpAddr::V4(_))) => family == Family::V4,
        Some(Ok(IpAddr::V6(_))) => family == Family::V6,
        _ => true,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::audit::ReloadCheck;
    use crate::fixtures::audit::{article, rule};
    use crate::policy::audit::evaluate;

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
        // No catch-all, but nothing to catch: connections no rule matches
        // are refused anyway.
        let report = evaluate(&facts, &[]);
        assert_eq!(report.checks[1].status, Status::Ok);
        assert!(report.hba_rules.is_empty());
        assert!(
            report.checks[1]
                .summary
                .contains("none for IPv6 (not needed"),
            "{}",
            report.checks[1].summary
        );
        // A rule that lets IPv6 in without TLS makes the missing line matter.
        let hba = facts.hba.as_mut().unwrap();
        hba.rules
            .push(rule(8, "host all all ::1/128 scram-sha-256"));
        let report = evaluate(&facts, &[]);
        assert_eq!(report.checks[1].status, Status::Warning);
        let missing: Vec<_> = report
            .hba_rules
            .iter()
            .filter(|f| f.line.is_none())
            .collect();
        assert_eq!(missing.len(), 2, "{:?}", report.hba_rules);
        assert!(
            missing[1].reason.contains("line(s) 8 let IPv6"),
            "{:?}",
            missing[1]
        );
    }

    /// The article's pg_hba.conf lines exactly as the seed prints them
    /// (IPv4 only): clean, the missing IPv6 catch-all only information.
    #[test]
    fn the_articles_own_lines_audit_clean() {
        let lines = crate::fixtures::audit::article_hba_lines();
        let mut facts = article();
        facts.hba.as_mut().unwrap().rules = lines
            .iter()
            .enumerate()
            .map(|(i, l)| rule(i as i32 + 2, l))
            .collect();
        let report = evaluate(&facts, &[]);
        assert_eq!(
            report.checks[1].status,
            Status::Ok,
            "{:?}",
            report.checks[1]
        );
        assert!(report.hba_rules.is_empty(), "{:?}", report.hba_rules);
        let hba = report.hba.unwrap();
        assert_eq!(
            (hba.catch_all_reject.ipv4, hba.catch_all_reject.ipv6),
            (Some(3), None)
        );
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
}
