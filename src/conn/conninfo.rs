//! libpq connection strings: `key=value` lists and `postgresql://` URIs.
//!
//! Parsing follows libpq's rules (libpq-connect.html, "Connection Strings")
//! so a string that works with psql means the same here. Values go straight
//! into [`Params`]; `resolve` validates them after layering. Error messages
//! never quote text that may be part of a password.

use super::params::{ignored_note, Keyword, Params};
use super::{push_note, Secret, UsageError};

/// libpq's test for "this is a connection string, not a database name".
pub(crate) fn is_conninfo(s: &str) -> bool {
    uri_rest(s).is_some() || s.contains('=')
}

/// Parses a `key=value` string or a URI into one source's settings.
pub(crate) fn parse(s: &str, notes: &mut Vec<String>) -> Result<Params, UsageError> {
    let mut params = Params::default();
    match uri_rest(s) {
        Some(rest) => parse_uri(rest, &mut params, notes)?,
        None => parse_keyword_value(s, &mut params, notes)?,
    }
    Ok(params)
}

/// The part after the scheme; libpq compares the prefix case-sensitively.
fn uri_rest(s: &str) -> Option<&str> {
    s.strip_prefix("postgresql://")
        .or_else(|| s.strip_prefix("postgres://"))
}

/// Keywords whose values are secrets: text right after them is never echoed.
const SECRET_KEYWORDS: &[&str] = &["password", "sslpassword"];

/// C `isspace`, which libpq uses to separate keywords.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// Stores one keyword, turning an unknown one into libpq's error.
fn store(
    params: &mut Params,
    key: &str,
    value: String,
    notes: &mut Vec<String>,
    unknown: impl FnOnce() -> UsageError,
) -> Result<(), UsageError> {
    match params.set(key, value)? {
        Keyword::Used => Ok(()),
        Keyword::Ignored => {
            push_note(notes, ignored_note(key));
            Ok(())
        }
        Keyword::Unknown => Err(unknown()),
    }
}

fn parse_keyword_value(
    s: &str,
    params: &mut Params,
    notes: &mut Vec<String>,
) -> Result<(), UsageError> {
    let mut chars = s.chars().peekable();
    // An unquoted password stops at a space; if the user meant a space in
    // it, the next "keyword" is the rest of the password: don't echo it.
    let mut after_secret = false;
    loop {
        while chars.next_if(|&c| is_space(c)).is_some() {}
        if chars.peek().is_none() {
            return Ok(());
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|&c| c != '=' && !is_space(c)) {
            key.push(c);
        }
        let shown = if after_secret {
            "(the keyword after an unquoted password, not shown in case it belongs to the password; quote a password that contains spaces)".to_string()
        } else {
            format!("\"{key}\"")
        };
        while chars.next_if(|&c| is_space(c)).is_some() {}
        if chars.next() != Some('=') {
            return Err(UsageError(format!(
                "missing \"=\" after {shown} in connection info string"
            )));
        }
        while chars.next_if(|&c| is_space(c)).is_some() {}

        let mut value = String::new();
        let quoted = chars.next_if_eq(&'\'').is_some();
        if quoted {
            loop {
                match chars.next() {
                    None => {
                        return Err(UsageError(
                            "unterminated quoted string in connection info string".to_string(),
                        ))
                    }
                    Some('\'') => break,
                    Some('\\') => {
                        if let Some(c) = chars.next() {
                            value.push(c);
                        }
                    }
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next() {
                if is_space(c) {
                    break;
                }
                if c == '\\' {
                    if let Some(escaped) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }

        let unknown = || UsageError(format!("invalid connection option {shown}"));
        store(params, &key, value, notes, unknown)?;
        after_secret = !quoted && SECRET_KEYWORDS.contains(&key.as_str());
    }
}

/// `[user[:password]@][host][:port][,...][/dbname][?param=value&...]`.
fn parse_uri(rest: &str, params: &mut Params, notes: &mut Vec<String>) -> Result<(), UsageError> {
    let mut s = rest;

    // User info ends at an '@' seen before the path or query starts (RFC
    // 3986: a raw '/' or '?' cannot be in it; percent-encode them).
    let at = s.find(['@', '/', '?']).filter(|&i| s[i..].starts_with('@'));
    if ambiguous_userinfo(s, at) {
        // "user:pa/ss@host", "user:pa?ss@host" or "user:p@ss@host": libpq
        // would read part of the password as a host, port or parameter, and
        // an error would echo it. Refuse without quoting anything.
        return Err(UsageError(
            "ambiguous URI: percent-encode \"@\", \"/\" and \"?\" in a user name or password (%40, %2F, %3F)"
                .to_string(),
        ));
    }
    if let Some(at) = at {
        let (user, password) = match s[..at].split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (&s[..at], None),
        };
        let user = decode(user)?;
        if !user.is_empty() {
            params.user = Some(user);
        }
        if let Some(password) = password {
            let password = decode(password)?;
            if !password.is_empty() {
                params.password = Some(Secret(password));
            }
        }
        s = &s[at + 1..];
    }

    let netloc_end = s.find(['/', '?']).unwrap_or(s.len());
    let (netloc, mut tail) = s.split_at(netloc_end);
    if !netloc.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for entry in netloc.split(',') {
            let (host, port) = split_host_port(entry)?;
            hosts.push(decode(host)?);
            ports.push(decode(port.unwrap_or(""))?);
        }
        // Lists are kept joined, as libpq does, so resolve's one-host rule
        // applies to URIs and key=value strings alike.
        if hosts.iter().any(|h| !h.is_empty()) {
            params.host = Some(hosts.join(","));
        }
        if ports.iter().any(|p| !p.is_empty()) {
            params.port = Some(ports.join(","));
        }
    }

    if let Some(path) = tail.strip_prefix('/') {
        let end = path.find('?').unwrap_or(path.len());
        let dbname = decode(&path[..end])?;
        if !dbname.is_empty() {
            params.dbname = Some(dbname);
        }
        tail = &path[end..];
    }

    if let Some(query) = tail.strip_prefix('?') {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(UsageError(
                    "missing key/value separator \"=\" in URI query parameter".to_string(),
                ));
            };
            let mut key = decode(key)?;
            if value.contains('=') {
                return Err(UsageError(format!(
                    "extra key/value separator \"=\" in URI query parameter \"{key}\""
                )));
            }
            let mut value = decode(value)?;
            // libpq's JDBC-compatible spelling.
            if key == "ssl" && value == "true" {
                key = "sslmode".to_string();
                value = "require".to_string();
            }
            let unknown = || UsageError(format!("invalid URI query parameter: \"{key}\""));
            store(params, &key, value, notes, unknown)?;
        }
    }
    Ok(())
}

/// A ':' before the first '/' and an '@' between it and the query.
/// True when the user-info part cannot be told apart from the rest: a
/// second '@' in the authority, or "name:word" (not "host:port") before a
/// '/' or '?' with an '@' after it.
fn ambiguous_userinfo(s: &str, at: Option<usize>) -> bool {
    if let Some(at) = at {
        let rest = &s[at + 1..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        return rest[..authority_end].contains('@');
    }
    let head_end = s.find(['/', '?']).unwrap_or(s.len());
    let head = &s[..head_end];
    if head.starts_with('[') || !s[head_end..].contains('@') {
        return false;
    }
    head.rsplit_once(':')
        .is_some_and(|(_, after)| !after.bytes().all(|b| b.is_ascii_digit()))
}

/// One `host[:port]` entry of the netloc; IPv6 addresses come in brackets.
fn split_host_port(entry: &str) -> Result<(&str, Option<&str>), UsageError> {
    if let Some(inner) = entry.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            return Err(UsageError(
                "missing \"]\" after IPv6 host address in URI".to_string(),
            ));
        };
        let host = &inner[..close];
        if host.is_empty() {
            return Err(UsageError(
                "IPv6 host address may not be empty in URI".to_string(),
            ));
        }
        let after = &inner[close + 1..];
        if after.is_empty() {
            return Ok((host, None));
        }
        return match after.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None => Err(UsageError(
                "unexpected character after IPv6 host address in URI (expected \":\", \"/\" or \"?\")"
                    .to_string(),
            )),
        };
    }
    Ok(match entry.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (entry, None),
    })
}

/// Percent-decoding as libpq does it: `+` stays `+`, `%00` is refused.
/// Errors do not quote the text: it may be a password.
fn decode(s: &str) -> Result<String, UsageError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| Some(hex_digit(h[0])? << 4 | hex_digit(h[1])?));
            match hex {
                Some(0) => {
                    return Err(UsageError(
                        "forbidden value %00 in percent-encoded value in URI".to_string(),
                    ))
                }
                Some(b) => out.push(b),
                None => {
                    return Err(UsageError(
                        "invalid percent-encoded token in URI".to_string(),
                    ))
                }
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| UsageError("percent-encoded value in URI is not valid UTF-8".to_string()))
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(s: &str) -> (Params, Vec<String>) {
        let mut notes = Vec::new();
        match parse(s, &mut notes) {
            Ok(p) => (p, notes),
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    fn parse_err(s: &str) -> String {
        let mut notes = Vec::new();
        match parse(s, &mut notes) {
            Ok(p) => panic!("{s:?} parsed: {p:?}"),
            Err(e) => e.0,
        }
    }

    fn password(p: &Params) -> Option<&str> {
        p.password.as_ref().map(|s| s.0.as_str())
    }

    /// A raw '@', '/' or '?' in a password would be split off and echoed
    /// as a host or parameter name: refuse, quoting nothing.
    #[test]
    fn ambiguous_user_info_is_refused_without_echo() {
        for uri in [
            "postgresql://app:s3cr@t@db.invalid/postgres",
            "postgresql://app:pa?ss=1@db.invalid/postgres",
            "postgresql://app:pa/ss@db.invalid/postgres",
        ] {
            let e = parse_err(uri);
            assert!(e.starts_with("ambiguous URI"), "{uri}: {e}");
            for part in ["s3cr", ":pa", "ss=", "t@db", "/ss"] {
                assert!(!e.contains(part), "{uri}: {e}");
            }
        }
    }

    #[test]
    fn at_signs_after_host_port_or_in_brackets_are_fine() {
        for uri in [
            "postgresql://db:5432/postgres?user=me@example.com",
            "postgresql://[::1]/postgres?user=me@example.com",
            "postgresql://db/d@b",
            "postgresql://me%40corp:p%40ss@db/postgres",
        ] {
            parse_ok(uri);
        }
        let (p, _) = parse_ok("postgresql://me%40corp:p%40ss@db/postgres");
        assert_eq!(password(&p), Some("p@ss"));
    }

    #[test]
    fn recognizes_connection_strings() {
        assert!(is_conninfo("host=db"));
        assert!(is_conninfo("postgresql://db"));
        assert!(is_conninfo("postgres://"));
        assert!(!is_conninfo("mydb"));
        assert!(!is_conninfo("postgresql:/db"));
        assert!(!is_conninfo("POSTGRESQL://db"));
    }

    #[test]
    fn keyword_value_basics() {
        let (p, notes) = parse_ok("host=db.example port=5433 dbname=app user=alice");
        assert_eq!(p.host.as_deref(), Some("db.example"));
        assert_eq!(p.port.as_deref(), Some("5433"));
        assert_eq!(p.dbname.as_deref(), Some("app"));
        assert_eq!(p.user.as_deref(), Some("alice"));
        assert!(notes.is_empty());
    }

    #[test]
    fn whitespace_around_equals() {
        let (p, _) = parse_ok("  host = db \t port\n=\n5433  ");
        assert_eq!(p.host.as_deref(), Some("db"));
        assert_eq!(p.port.as_deref(), Some("5433"));
    }

    #[test]
    fn quoted_values_and_escapes() {
        let (p, _) = parse_ok(r"password='it\'s a \\ secret' application_name='' user=x");
        assert_eq!(password(&p), Some(r"it's a \ secret"));
        assert_eq!(p.application_name.as_deref(), Some(""));
        assert_eq!(p.user.as_deref(), Some("x"));
    }

    #[test]
    fn quoted_value_needs_no_space_after() {
        let (p, _) = parse_ok("host='a b'port=1");
        assert_eq!(p.host.as_deref(), Some("a b"));
        assert_eq!(p.port.as_deref(), Some("1"));
    }

    #[test]
    fn unquoted_backslash_escapes() {
        let (p, _) = parse_ok(r"password=a\ b\\c\'d dbname=x\=y");
        assert_eq!(password(&p), Some(r"a b\c'd"));
        assert_eq!(p.dbname.as_deref(), Some("x=y"));
    }

    #[test]
    fn later_duplicate_wins() {
        let (p, _) = parse_ok("host=a host=b");
        assert_eq!(p.host.as_deref(), Some("b"));
    }

    #[test]
    fn keyword_value_errors() {
        assert_eq!(
            parse_err("host=db foo=bar"),
            "invalid connection option \"foo\""
        );
        assert_eq!(
            parse_err("host db"),
            "missing \"=\" after \"host\" in connection info string"
        );
        assert_eq!(
            parse_err("password='abc"),
            "unterminated quoted string in connection info string"
        );
        assert_eq!(
            parse_err(r"password='abc\'"),
            "unterminated quoted string in connection info string"
        );
        let (p, _) = parse_ok("service=prod");
        assert_eq!(p.service.as_deref(), Some("prod"));
    }

    #[test]
    fn password_fragments_are_not_echoed() {
        let e = parse_err("password=hunter two=x");
        assert!(!e.contains("two"), "{e}");
        assert!(e.starts_with("invalid connection option"), "{e}");
        let e = parse_err("password=hunter two words=x");
        assert!(!e.contains("two"), "{e}");
        assert!(e.starts_with("missing \"=\""), "{e}");
        // A quoted password ends cleanly, so the next word is a real keyword.
        assert_eq!(
            parse_err("password='a b' two=x"),
            "invalid connection option \"two\""
        );
    }

    #[test]
    fn ignored_keywords_are_noted_once() {
        let (p, notes) = parse_ok(
            "host=db keepalives=1 sslcompression=0 keepalives=0 fallback_application_name=y",
        );
        assert_eq!(p.host.as_deref(), Some("db"));
        assert_eq!(
            notes,
            vec![
                "ignored connection option \"keepalives\": TCP keepalive matters for long sessions; the probe's last milliseconds",
                "ignored connection option \"sslcompression\": OpenSSL 1.1+ and PostgreSQL 14+ never compress",
            ]
        );
    }

    #[test]
    fn empty_string_sets_nothing() {
        let (p, notes) = parse_ok("   ");
        assert!(p.host.is_none() && p.port.is_none() && notes.is_empty());
    }

    #[test]
    fn uri_full() {
        let (p, _) = parse_ok("postgresql://al%40ice:p%3As%2Fw%25rd@db.example:5433/my%20db?sslmode=verify-ca&application_name=a+b");
        assert_eq!(p.user.as_deref(), Some("al@ice"));
        assert_eq!(password(&p), Some("p:s/w%rd"));
        assert_eq!(p.host.as_deref(), Some("db.example"));
        assert_eq!(p.port.as_deref(), Some("5433"));
        assert_eq!(p.dbname.as_deref(), Some("my db"));
        assert_eq!(p.sslmode.as_deref(), Some("verify-ca"));
        // '+' is not a space in libpq URIs.
        assert_eq!(p.application_name.as_deref(), Some("a+b"));
    }

    #[test]
    fn uri_short_forms() {
        let (p, _) = parse_ok("postgres://");
        assert!(p.host.is_none() && p.dbname.is_none() && p.user.is_none());
        let (p, _) = parse_ok("postgresql://localhost");
        assert_eq!(p.host.as_deref(), Some("localhost"));
        let (p, _) = parse_ok("postgresql://:6000/");
        assert_eq!((p.host, p.port.as_deref()), (None, Some("6000")));
        let (p, _) = parse_ok("postgresql:///app?host=db");
        assert_eq!(p.dbname.as_deref(), Some("app"));
        assert_eq!(p.host.as_deref(), Some("db"));
        let (p, _) = parse_ok("postgresql://bob@db");
        assert_eq!(p.user.as_deref(), Some("bob"));
        assert!(p.password.is_none());
        let (p, _) = parse_ok("postgresql://db?user=me@example.com");
        assert_eq!(p.host.as_deref(), Some("db"));
        assert_eq!(p.user.as_deref(), Some("me@example.com"));
    }

    #[test]
    fn uri_ipv6() {
        let (p, _) = parse_ok("postgresql://[::1]:5433/db");
        assert_eq!(p.host.as_deref(), Some("::1"));
        assert_eq!(p.port.as_deref(), Some("5433"));
        let (p, _) = parse_ok("postgresql://u@[2001:db8::7]");
        assert_eq!(p.host.as_deref(), Some("2001:db8::7"));
        assert_eq!(p.port, None);
        assert_eq!(
            parse_err("postgresql://[::1/db"),
            "missing \"]\" after IPv6 host address in URI"
        );
        assert_eq!(
            parse_err("postgresql://[]:5432"),
            "IPv6 host address may not be empty in URI"
        );
        assert!(parse_err("postgresql://[::1]x").starts_with("unexpected character"));
    }

    #[test]
    fn uri_host_lists_are_kept_joined() {
        let (p, _) = parse_ok("postgresql://a:1,b:2/db");
        assert_eq!(p.host.as_deref(), Some("a,b"));
        assert_eq!(p.port.as_deref(), Some("1,2"));
    }

    #[test]
    fn uri_query_params() {
        let (p, notes) = parse_ok("postgresql://db?connect_timeout=5&&keepalives=0&ssl=true");
        assert_eq!(p.connect_timeout.as_deref(), Some("5"));
        assert_eq!(p.sslmode.as_deref(), Some("require"));
        assert_eq!(notes.len(), 1);
        assert_eq!(
            parse_err("postgresql://db?foo=1"),
            "invalid URI query parameter: \"foo\""
        );
        assert_eq!(
            parse_err("postgresql://db?password"),
            "missing key/value separator \"=\" in URI query parameter"
        );
        let e = parse_err("postgresql://db?password=a=b");
        assert!(!e.contains("a=b"), "{e}");
        let (p, _) = parse_ok("postgresql://db?service=x&servicefile=/s.conf");
        assert_eq!(p.service.as_deref(), Some("x"));
        assert_eq!(p.servicefile.as_deref(), Some("/s.conf"));
    }

    #[test]
    fn uri_raw_slash_in_password_is_not_echoed() {
        let e = parse_err("postgresql://u:hunt/er2@db/app");
        assert!(!e.contains("hunt"), "{e}");
        assert!(e.contains("%2F"), "{e}");
        // '@' in the query, or without a port-like ':', is fine.
        let (p, _) = parse_ok("postgresql://db:5432/app?user=me@example.com");
        assert_eq!(p.user.as_deref(), Some("me@example.com"));
        let (p, _) = parse_ok("postgresql://db/a@b");
        assert_eq!(p.dbname.as_deref(), Some("a@b"));
    }

    #[test]
    fn uri_percent_errors_do_not_echo() {
        let e = parse_err("postgresql://u:sec%zzret@db");
        assert_eq!(e, "invalid percent-encoded token in URI");
        assert_eq!(
            parse_err("postgresql://u:sec%2@db"),
            "invalid percent-encoded token in URI"
        );
        assert!(parse_err("postgresql://db/a%00b").contains("%00"));
        assert!(parse_err("postgresql://db/a%ffb").contains("UTF-8"));
        // A non-ASCII byte after '%' must not panic on a char boundary.
        assert_eq!(
            parse_err("postgresql://db/%é"),
            "invalid percent-encoded token in URI"
        );
        assert_eq!(
            parse_err("postgresql://db/%+1"),
            "invalid percent-encoded token in URI"
        );
    }
}
