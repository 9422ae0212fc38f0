//! libpq 17/18 as the oracle for keywords psql 15's libpq does not know
//! (`require_auth`, `sslcertmode`, `sslkeylogfile`, ...).
//!
//! Debian bookworm ships only libpq 15, and the cached `@embedded-postgres`
//! packages (scripts/fetch-postgres.sh) have no psql, but they do have
//! `lib/libpq.so.5`. Connection keywords are parsed and enforced entirely
//! by libpq, so Debian's psql 15 run with `LD_LIBRARY_PATH` at that
//! library is libpq 17's or 18's verdict on a connection string. Without
//! the cache the tests skip, saying so; under `CI=true` they fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::pg;

/// psql driven by a newer libpq.
#[derive(Debug)]
pub struct Libpq {
    psql: PathBuf,
    lib: PathBuf,
}

/// libpq of PostgreSQL `major` (17 or 18) behind psql, or None after
/// saying why (a panic under `CI=true`).
pub fn require(major: u32) -> Option<Libpq> {
    let psql = pg::require()?.psql();
    let bins = pg::require_major(major)?;
    let lib = bins.bindir.parent()?.join("lib");
    if !lib.join("libpq.so.5").is_file() {
        let msg = format!("no libpq.so.5 in {}", lib.display());
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}; CI=true, so this fails instead of skipping");
        }
        eprintln!("skipping: {msg}");
        return None;
    }
    Some(Libpq { psql, lib })
}

impl Libpq {
    /// Runs `sql` with `conninfo` (the whole connection string) and
    /// `password`, an empty environment otherwise and `home` as HOME;
    /// returns (success, stdout + stderr).
    pub fn run(&self, conninfo: &str, password: &str, home: &Path, sql: &str) -> (bool, String) {
        let out = Command::new(&self.psql)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("LD_LIBRARY_PATH", &self.lib)
            .env("PGPASSWORD", password)
            .arg("-X")
            .arg("-At")
            .arg(conninfo)
            .args(["-c", sql])
            .output()
            .expect("run psql with the newer libpq");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }
}
