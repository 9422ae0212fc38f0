//! libpq's connection service files (`pg_service.conf`): named groups of
//! connection keywords, the inventory DBAs already keep.
//!
//! Read exactly as libpq's `parseServiceInfo`/`parseServiceFile` read them
//! (fe-connect.c, PostgreSQL 17/18):
//! - Files: the user file (`servicefile` keyword, PostgreSQL 18, else
//!   `PGSERVICEFILE`, else `~/.pg_service.conf`), then the system file
//!   (`PGSYSCONFDIR/pg_service.conf`; without `PGSYSCONFDIR`, the
//!   directory Debian's and Ubuntu's libpq are built with,
//!   `/etc/postgresql-common`). A missing file is skipped; the first file
//!   that defines the service is the only one read for it.
//! - Lines: leading and trailing white space ignored; empty lines and lines
//!   starting with `#` skipped; a line of 1,022 bytes or more is an error
//!   (libpq reads into a 1,024-byte buffer). `[name]` opens a group
//!   (anything after the `]` is ignored); only the wanted group's lines are
//!   parsed, up to the next `[`. A line is `keyword=value`, split at the
//!   first `=`, nothing trimmed around it; no `include`.
//! - Keywords: a nested `service` or `servicefile` is an error, as is a
//!   keyword libpq does not know; the first value of a repeated keyword
//!   wins ("don't override any previous explicit setting").
//! - Precedence: the service's values are defaults beneath the connection
//!   string and the flags, above the PG* variables and the built-in
//!   defaults (`conninfo_add_defaults` applies the service before the
//!   environment).
//!
//! Errors name the file and the line, never a value (a value may be a
//! password).

use std::path::{Path, PathBuf};

use super::params::{ignored_note, Keyword, Params};
use super::{push_note, read_input_file, UsageError};

/// Where libpq's Debian and Ubuntu builds look for the system file
/// (`pg_config --sysconfdir`), when `PGSYSCONFDIR` is unset.
pub const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// libpq reads lines into a 1,024-byte buffer and refuses a line that
/// fills it: content of this many bytes or more, before the newline.
const MAX_LINE: usize = 1022;

/// The service files libpq consults, in order: the user file, then the
/// system file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFiles {
    pub user: PathBuf,
    pub system: PathBuf,
}

impl ServiceFiles {
    /// `servicefile` (the keyword) wins over `PGSERVICEFILE`, which wins
    /// over `~/.pg_service.conf`; `PGSYSCONFDIR` names the system file's
    /// directory.
    pub fn locate(
        servicefile: Option<&str>,
        env_servicefile: Option<&str>,
        sysconfdir: Option<&str>,
        home: Option<&Path>,
    ) -> ServiceFiles {
        let user = match servicefile.or(env_servicefile) {
            Some(path) => PathBuf::from(path),
            None => home
                .map(|h| h.join(".pg_service.conf"))
                .unwrap_or_else(|| PathBuf::from(".pg_service.conf")),
        };
        let system = Path::new(sysconfdir.unwrap_or(DEFAULT_SYSCONFDIR)).join("pg_service.conf");
        ServiceFiles { user, system }
    }

    /// The group `name`, from the first file that defines it.
    pub(crate) fn lookup(&self, name: &str, notes: &mut Vec<String>) -> Result<Params, UsageError> {
        for path in [&self.user, &self.system] {
            let Some(text) = read(path)? else { continue };
            if let Some(params) = group(path, &text, name, notes)? {
                return Ok(params);
            }
        }
        Err(UsageError(format!(
            "definition of service \"{name}\" not found (looked in {} and {})",
            self.user.display(),
            self.system.display()
        )))
    }

    /// Every group name, user file first, each once (a user group hides
    /// the system group of the same name, as in a lookup).
    pub fn names(&self) -> Result<Vec<String>, UsageError> {
        let mut names: Vec<String> = Vec::new();
        for path in [&self.user, &self.system] {
            let Some(text) = read(path)? else { continue };
            for name in group_names(path, &text)? {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        Ok(names)
    }
}

/// The file's bytes; None when it does not exist (libpq skips it).
fn read(path: &Path) -> Result<Option<Vec<u8>>, UsageError> {
    if !path.exists() {
        return Ok(None);
    }
    read_input_file(path).map(Some).map_err(|why| {
        UsageError(format!(
            "cannot read service file \"{}\": {why}",
            path.display()
        ))
    })
}

/// The lines libpq looks at: (1-based number, trimmed content), comments
/// and blank lines left out; Err for a line too long.
fn lines<'t>(
    path: &'t Path,
    text: &'t [u8],
) -> impl Iterator<Item = Result<(usize, &'t [u8]), UsageError>> + 't {
    text.split(|&b| b == b'\n')
        .enumerate()
        .filter_map(move |(i, raw)| {
            let number = i + 1;
            if raw.len() >= MAX_LINE {
                return Some(Err(UsageError(format!(
                    "line {number} too long in service file \"{}\"",
                    path.display()
                ))));
            }
            let line = raw.trim_ascii();
            (!line.is_empty() && line[0] != b'#').then_some(Ok((number, line)))
        })
}

/// `[name]`: the name, when the line opens a group.
fn group_name(line: &[u8]) -> Option<&[u8]> {
    let inner = line.strip_prefix(b"[")?;
    // libpq matches the wanted name followed by ']'; for listing, the name
    // is what comes before the first ']'.
    let end = inner.iter().position(|&b| b == b']')?;
    Some(&inner[..end])
}

fn group_names(path: &Path, text: &[u8]) -> Result<Vec<String>, UsageError> {
    let mut names = Vec::new();
    for line in lines(path, text) {
        let (_, line) = line?;
        if let Some(name) = group_name(line) {
            names.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    Ok(names)
}

/// The keywords of group `name` in one file; None when the file has no
/// such group.
fn group(
    path: &Path,
    text: &[u8],
    name: &str,
    notes: &mut Vec<String>,
) -> Result<Option<Params>, UsageError> {
    let shown = path.display();
    let mut params = Params::default();
    let mut seen: Vec<String> = Vec::new();
    let mut found = false;
    for line in lines(path, text) {
        let (number, line) = line?;
        if line.starts_with(b"[") {
            if found {
                break;
            }
            // libpq: the wanted name, then ']' (anything may follow).
            found =
                line[1..].starts_with(name.as_bytes()) && line.get(name.len() + 1) == Some(&b']');
            continue;
        }
        if !found {
            continue;
        }
        let syntax = || {
            UsageError(format!(
                "syntax error in service file \"{shown}\", line {number}"
            ))
        };
        if line.starts_with(b"ldap") {
            return Err(UsageError(format!(
                "service file \"{shown}\", line {number}: LDAP service lookups are not supported"
            )));
        }
        let Some(eq) = line.iter().position(|&b| b == b'=') else {
            return Err(syntax());
        };
        let (key, value) = (&line[..eq], &line[eq + 1..]);
        let key = std::str::from_utf8(key).map_err(|_| syntax())?;
        if key == "service" || key == "servicefile" {
            return Err(UsageError(format!(
                "nested service specifications not supported in service file \"{shown}\", line {number}"
            )));
        }
        let value = String::from_utf8(value.to_vec()).map_err(|_| {
            UsageError(format!(
                "service file \"{shown}\", line {number}: the value of \"{key}\" is not valid UTF-8"
            ))
        })?;
        // The first value of a keyword wins.
        if seen.iter().any(|k| k == key) {
            continue;
        }
        match params.set(key, value)? {
            Keyword::Used => {}
            Keyword::Ignored => push_note(notes, ignored_note(key)),
            Keyword::Unknown => {
                return Err(UsageError(format!(
                    "syntax error in service file \"{shown}\", line {number}: unknown keyword \"{key}\""
                )))
            }
        }
        seen.push(key.to_string());
    }
    Ok(found.then_some(params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_of(text: &str, name: &str) -> Result<Option<Params>, UsageError> {
        group(
            Path::new("pg_service.conf"),
            text.as_bytes(),
            name,
            &mut Vec::new(),
        )
    }

    fn found(text: &str, name: &str) -> Params {
        group_of(text, name)
            .unwrap()
            .unwrap_or_else(|| panic!("no [{name}]"))
    }

    #[test]
    fn groups_comments_blanks_and_white_space() {
        let text =
            "# fleet\n\n  [prod]  \n\thost=db1.internal\nport=5433  \n# dbname=x\n[test]\nhost=t\n";
        let p = found(text, "prod");
        assert_eq!(p.host.as_deref(), Some("db1.internal"));
        assert_eq!(p.port.as_deref(), Some("5433"));
        assert_eq!(p.dbname, None);
        assert_eq!(found(text, "test").host.as_deref(), Some("t"));
        assert!(group_of(text, "other").unwrap().is_none());
    }

    /// libpq compares the name then a ']': a longer name or a prefix is
    /// another group, and what follows the ']' does not matter.
    #[test]
    fn group_names_match_as_libpq_matches_them() {
        let text = "[prod-eu] # comment\nhost=eu\n[prod]x\nhost=p\n";
        assert_eq!(found(text, "prod-eu").host.as_deref(), Some("eu"));
        assert_eq!(found(text, "prod").host.as_deref(), Some("p"));
        assert!(group_of(text, "pro").unwrap().is_none());
    }

    /// Nothing is trimmed around '=': "host = db" is the keyword "host ".
    #[test]
    fn keyword_lines_are_split_at_the_first_equals_sign() {
        let p = found("[s]\napplication_name=a=b\nhost= db\n", "s");
        assert_eq!(p.application_name.as_deref(), Some("a=b"));
        assert_eq!(p.host.as_deref(), Some(" db"));
        let e = group_of("[s]\nhost = db\n", "s").unwrap_err();
        assert_eq!(
            e.0,
            "syntax error in service file \"pg_service.conf\", line 2: unknown keyword \"host \""
        );
        let e = group_of("[s]\n\nno equals sign\n", "s").unwrap_err();
        assert_eq!(
            e.0,
            "syntax error in service file \"pg_service.conf\", line 3"
        );
    }

    #[test]
    fn the_first_value_of_a_keyword_wins() {
        assert_eq!(
            found("[s]\nport=1\nport=2\n", "s").port.as_deref(),
            Some("1")
        );
    }

    /// Errors in groups other than the one asked for are not seen.
    #[test]
    fn only_the_wanted_group_is_parsed() {
        let text = "[broken]\nnonsense\nservice=x\n[good]\nhost=g\n";
        assert_eq!(found(text, "good").host.as_deref(), Some("g"));
        assert!(group_of(text, "broken").is_err());
    }

    #[test]
    fn nested_services_unknown_keywords_and_long_lines_are_refused() {
        for (text, want) in [
            ("[s]\nservice=t\n", "nested service specifications not supported in service file \"pg_service.conf\", line 2"),
            ("[s]\nservicefile=/x\n", "nested service specifications not supported in service file \"pg_service.conf\", line 2"),
            ("[s]\nhots=db\n", "unknown keyword \"hots\""),
            ("[s]\nldap://ldap.example/dc=x?y\n", "LDAP service lookups are not supported"),
        ] {
            let e = group_of(text, "s").unwrap_err();
            assert!(e.0.contains(want), "{text:?}: {e}");
        }
        let long = format!("[s]\nhost={}\n", "h".repeat(MAX_LINE));
        assert_eq!(
            group_of(&long, "s").unwrap_err().0,
            "line 2 too long in service file \"pg_service.conf\""
        );
        let just_fits = format!("[s]\nhost={}\n", "h".repeat(MAX_LINE - 6));
        assert!(group_of(&just_fits, "s").is_ok());
    }

    /// A password in a service file is taken, and never shown in an error.
    #[test]
    fn values_never_appear_in_errors() {
        let e = group_of("[s]\npassword=s3cret\nbogus=s3cret2\n", "s").unwrap_err();
        assert!(!e.0.contains("s3cret"), "{e}");
        let p = found("[s]\npassword=s3cret\n", "s");
        assert_eq!(p.password.map(|s| s.0), Some("s3cret".to_string()));
    }

    #[test]
    fn ignored_keywords_are_noted() {
        let mut notes = Vec::new();
        group(Path::new("f"), b"[s]\nkeepalives=1\n", "s", &mut notes).unwrap();
        assert_eq!(notes, vec![ignored_note("keepalives")]);
    }

    fn files(dir: &Path, user: &str, system: &str) -> ServiceFiles {
        let files = ServiceFiles {
            user: dir.join("user.conf"),
            system: dir.join("pg_service.conf"),
        };
        std::fs::write(&files.user, user).unwrap();
        std::fs::write(&files.system, system).unwrap();
        files
    }

    /// The user file is read first; a service it defines is taken whole
    /// from it, the system file is not merged in.
    #[test]
    fn the_first_file_defining_the_service_is_the_only_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(
            dir.path(),
            "[a]\nhost=user-a\n",
            "[a]\nport=1\n[b]\nhost=sys-b\n",
        );
        let a = f.lookup("a", &mut Vec::new()).unwrap();
        assert_eq!((a.host.as_deref(), a.port), (Some("user-a"), None));
        assert_eq!(
            f.lookup("b", &mut Vec::new()).unwrap().host.as_deref(),
            Some("sys-b")
        );
        let e = f.lookup("c", &mut Vec::new()).unwrap_err();
        assert!(
            e.0.starts_with("definition of service \"c\" not found"),
            "{e}"
        );
        assert_eq!(f.names().unwrap(), ["a", "b"]);
    }

    #[test]
    fn missing_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let f = ServiceFiles::locate(
            None,
            None,
            Some(dir.path().to_str().unwrap()),
            Some(dir.path()),
        );
        assert_eq!(f.user, dir.path().join(".pg_service.conf"));
        assert!(f.names().unwrap().is_empty());
        assert!(f.lookup("x", &mut Vec::new()).is_err());
    }

    #[test]
    fn locate_follows_libpq_precedence() {
        let home = Path::new("/home/u");
        let f = ServiceFiles::locate(Some("/kw"), Some("/env"), None, Some(home));
        assert_eq!(f.user, PathBuf::from("/kw"));
        assert_eq!(
            f.system,
            PathBuf::from("/etc/postgresql-common/pg_service.conf")
        );
        let f = ServiceFiles::locate(None, Some("/env"), Some("/etc/pg"), Some(home));
        assert_eq!(
            (f.user, f.system),
            (
                PathBuf::from("/env"),
                PathBuf::from("/etc/pg/pg_service.conf")
            )
        );
    }
}
