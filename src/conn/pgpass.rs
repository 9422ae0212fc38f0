//! libpq's password file (`passfile`, PGPASSFILE, `~/.pgpass`).
//!
//! Format (libpq-pgpass.html): `hostname:port:database:username:password`
//! per line, `*` matches anything, `\` escapes `:` and `\`, lines starting
//! with `#` are comments, and the first matching line wins. On Unix libpq
//! skips a file that is not a plain file or that group or others can access;
//! so does this module, recording why in a note instead of a WARNING.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use super::{read_input_file, ReadFailure, Secret, UsageError};

/// The connection a password is looked up for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lookup<'a> {
    /// The host name, or the hostaddr text when no host name was given.
    pub host: &'a str,
    pub port: &'a str,
    pub dbname: &'a str,
    pub user: &'a str,
}

/// Returns the password of the first matching line of the file at `path`.
///
/// A missing file is normal and silent; any other reason for not using the
/// file is pushed to `notes` (never the file's contents), as libpq skips
/// such a file. A file larger than [`super::MAX_INPUT_FILE`] is refused instead:
/// reading gigabytes before the deadline starts would stall the run, and
/// skipping it would turn a broken setup into a login failure blamed on
/// the server.
pub(crate) fn lookup(
    path: &Path,
    want: Lookup<'_>,
    notes: &mut Vec<String>,
) -> Result<Option<Secret>, UsageError> {
    let shown = path.display();
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            notes.push(format!("password file \"{shown}\" ignored: {e}"));
            return Ok(None);
        }
    };
    if !meta.is_file() {
        notes.push(format!(
            "password file \"{shown}\" ignored: it is not a plain file"
        ));
        return Ok(None);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            notes.push(format!(
                "password file \"{shown}\" ignored: it has group or world access (mode {:04o}); permissions should be u=rw (0600) or less",
                mode & 0o7777
            ));
            return Ok(None);
        }
    }
    let contents = match read_input_file(path) {
        Ok(contents) => contents,
        Err(why @ ReadFailure::TooLarge) => {
            return Err(UsageError(format!(
                "password file \"{shown}\" not read: {why}"
            )))
        }
        Err(e) => {
            notes.push(format!("password file \"{shown}\" ignored: {e}"));
            return Ok(None);
        }
    };
    let Some(password) = find(&contents, want) else {
        return Ok(None);
    };
    Ok(match String::from_utf8(password) {
        // libpq treats an empty password as none.
        Ok(p) if p.is_empty() => None,
        Ok(p) => Some(Secret(p)),
        Err(_) => {
            notes.push(format!(
                "password file \"{shown}\": the matching password is not valid UTF-8; not used"
            ));
            None
        }
    })
}

/// The (unescaped) password of the first line matching `want`.
pub(crate) fn find(contents: &[u8], want: Lookup<'_>) -> Option<Vec<u8>> {
    contents.split(|&b| b == b'\n').find_map(|line| {
        let mut line = line;
        while let Some(rest) = line.strip_suffix(b"\r") {
            line = rest;
        }
        if line.is_empty() || line.starts_with(b"#") {
            return None;
        }
        let mut rest = line;
        for token in [want.host, want.port, want.dbname, want.user] {
            rest = match_field(rest, token.as_bytes())?;
        }
        Some(unescape_password(rest))
    })
}

/// If the field at the start of `line` matches `token`, the text after its
/// `:`. A field that is exactly `*` matches anything; `\*` is a literal star.
fn match_field<'l>(line: &'l [u8], token: &[u8]) -> Option<&'l [u8]> {
    if let Some(rest) = line.strip_prefix(b"*:") {
        return Some(rest);
    }
    let mut field = Vec::new();
    let mut i = 0;
    while let Some(&b) = line.get(i) {
        match b {
            b'\\' if i + 1 < line.len() => {
                field.push(line[i + 1]);
                i += 2;
            }
            b':' => return (field == token).then(|| &line[i + 1..]),
            _ => {
                field.push(b);
                i += 1;
            }
        }
    }
    // A line with fewer than five fields matches nothing.
    None
}

/// The password field runs to the end of the line or an unescaped `:`.
fn unescape_password(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b':' => break,
            b'\\' => match bytes.next() {
                Some(&escaped) => out.push(escaped),
                None => out.push(b'\\'),
            },
            _ => out.push(b),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const WANT: Lookup<'static> = Lookup {
        host: "db.example",
        port: "5432",
        dbname: "app",
        user: "alice",
    };

    fn found(contents: &str, want: Lookup<'_>) -> Option<String> {
        find(contents.as_bytes(), want).map(|p| String::from_utf8(p).unwrap())
    }

    #[test]
    fn exact_match() {
        assert_eq!(
            found("db.example:5432:app:alice:s3cret\n", WANT).as_deref(),
            Some("s3cret")
        );
    }

    #[test]
    fn wildcards() {
        assert_eq!(found("*:*:*:*:any", WANT).as_deref(), Some("any"));
        assert_eq!(found("db.example:*:*:alice:w", WANT).as_deref(), Some("w"));
        // '*' is a wildcard only as a whole field.
        assert_eq!(found("db.*:*:*:*:no", WANT), None);
        // An escaped star is literal.
        assert_eq!(found(r"\*:*:*:*:no", WANT), None);
        let star = Lookup { host: "*", ..WANT };
        assert_eq!(found(r"\*:*:*:*:yes", star).as_deref(), Some("yes"));
    }

    #[test]
    fn first_match_wins() {
        let file = "\
other:5432:app:alice:wrong
db.example:5432:app:alice:first
*:*:*:*:second
";
        assert_eq!(found(file, WANT).as_deref(), Some("first"));
        let file = "*:*:*:*:general\ndb.example:5432:app:alice:specific\n";
        assert_eq!(found(file, WANT).as_deref(), Some("general"));
    }

    #[test]
    fn fields_must_all_match() {
        assert_eq!(found("db.example:5433:app:alice:x", WANT), None);
        assert_eq!(found("db.example:5432:other:alice:x", WANT), None);
        assert_eq!(found("db.example:5432:app:bob:x", WANT), None);
        assert_eq!(found("DB.EXAMPLE:5432:app:alice:x", WANT), None);
        assert_eq!(found("db.example:5432:app:alicex:x", WANT), None);
        assert_eq!(found("db.example:5432:app:alic:x", WANT), None);
    }

    #[test]
    fn escapes() {
        let want = Lookup {
            host: "::1",
            user: r"dom\user",
            ..WANT
        };
        assert_eq!(
            found(r"\:\:1:5432:app:dom\\user:pa\:ss\\word", want).as_deref(),
            Some(r"pa:ss\word")
        );
        // The password ends at an unescaped ':'.
        assert_eq!(
            found("db.example:5432:app:alice:pw:extra", WANT).as_deref(),
            Some("pw")
        );
    }

    #[test]
    fn comments_blank_lines_and_crlf() {
        let file = "# hostname:port:database:username:password\r\n\r\n  \n*:*:*:*:pw\r\n";
        assert_eq!(found(file, WANT).as_deref(), Some("pw"));
        assert_eq!(found("#*:*:*:*:pw", WANT), None);
    }

    #[test]
    fn short_lines_match_nothing() {
        assert_eq!(found("*:*:*", WANT), None);
        assert_eq!(found("db.example:5432:app:alice", WANT), None);
        assert_eq!(found(r"db.example:5432:app:alice\", WANT), None);
        assert_eq!(found("*:*:*:*:", WANT).as_deref(), Some(""));
    }

    fn write_file(dir: &Path, contents: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.join("pgpass");
        fs::write(&path, contents).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        }
        let _ = mode;
        path
    }

    #[test]
    fn reads_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(dir.path(), "*:*:*:*:pw\n", 0o600);
        let mut notes = Vec::new();
        assert_eq!(
            lookup(&path, WANT, &mut notes),
            Ok(Some(Secret("pw".into())))
        );
        assert!(notes.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn ignores_group_or_world_readable_file() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o644, 0o640, 0o604, 0o610] {
            let path = write_file(dir.path(), "*:*:*:*:pw\n", mode);
            let mut notes = Vec::new();
            assert_eq!(lookup(&path, WANT, &mut notes), Ok(None), "mode {mode:o}");
            assert_eq!(notes.len(), 1);
            assert!(notes[0].contains("group or world access"), "{}", notes[0]);
            assert!(!notes[0].contains("pw\n"));
        }
    }

    #[test]
    fn missing_file_is_silent() {
        let dir = tempfile::tempdir().unwrap();
        let mut notes = Vec::new();
        assert_eq!(lookup(&dir.path().join("nope"), WANT, &mut notes), Ok(None));
        assert!(notes.is_empty());
    }

    #[test]
    fn directory_is_ignored_with_note() {
        let dir = tempfile::tempdir().unwrap();
        let mut notes = Vec::new();
        assert_eq!(lookup(dir.path(), WANT, &mut notes), Ok(None));
        assert!(notes[0].contains("not a plain file"), "{notes:?}");
    }

    #[test]
    fn empty_password_counts_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(dir.path(), "*:*:*:*:\n", 0o600);
        assert_eq!(lookup(&path, WANT, &mut Vec::new()), Ok(None));
    }

    /// A password file of gigabytes would be read before the deadline
    /// starts: refused at once, naming the file, before any connection.
    #[test]
    fn oversized_file_is_refused_unread() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        let file = fs::File::create(&path).unwrap();
        // Sparse: no disk is used, but the length is past the cap.
        file.set_len(super::super::MAX_INPUT_FILE + 1).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let mut notes = Vec::new();
        let err = lookup(&path, WANT, &mut notes).unwrap_err();
        assert!(err.0.contains("pgpass\" not read: larger than"), "{err}");
    }
}
