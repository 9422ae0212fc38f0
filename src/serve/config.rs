//! `serve --config FILE`: more modules than the default one, and targets
//! beside the service files. TOML:
//!
//! ```toml
//! [modules.quick]          # /probe?target=...&module=quick
//! scan = "none"
//! timeout = 5
//!
//! [modules.weekly]
//! scan = "full"
//! audit = true
//! warning_days = 45
//!
//! [targets.billing-primary]  # /probe?target=billing-primary
//! conninfo = "host=billing-db.internal dbname=billing sslrootcert=/etc/ssl/pg-ca.pem"
//! ```
//!
//! A module takes the probe's own flags by their long names, each one
//! defaulting to the probe's default (not to `serve`'s flags). A target is
//! a connection string; no password may appear in it (passwords come from
//! the password file or the exporter's environment, never from a file the
//! whole configuration management can read, nor from a URL).

use std::collections::BTreeMap;
use std::path::Path;

use clap::Parser;
use serde::Deserialize;

use crate::cli::ModuleFlags;
use crate::conn;
use crate::plan::{self, Module};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    modules: BTreeMap<String, toml::Table>,
    #[serde(default)]
    targets: BTreeMap<String, TargetEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetEntry {
    conninfo: String,
}

/// The modules and targets of a configuration file.
#[derive(Debug, Default)]
pub struct Config {
    pub modules: BTreeMap<String, Module>,
    /// Name → connection string.
    pub targets: BTreeMap<String, String>,
}

/// Module flags parsed the way the command line parses them.
#[derive(Parser)]
#[command(no_binary_name = true)]
struct ModuleOnly {
    #[command(flatten)]
    module: ModuleFlags,
}

/// Reads and validates `path`; every error names the file and what is wrong.
pub fn load(path: &Path) -> Result<Config, String> {
    let shown = path.display();
    let bytes = conn::read_input_file(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{shown} is not valid UTF-8"))?;
    let file: File = toml::from_str(&text).map_err(|e| {
        let before = e.span().and_then(|s| text.get(..s.start)).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        format!("{shown}:{line}: {}", e.message())
    })?;
    let mut config = Config::default();
    for (name, table) in file.modules {
        let module = module(&table).map_err(|e| format!("{shown}: module \"{name}\": {e}"))?;
        config.modules.insert(name, module);
    }
    for (name, entry) in file.targets {
        if has_password(&entry.conninfo) {
            return Err(format!(
                "{shown}: target \"{name}\": no password in the configuration file; use the password file (passfile, PGPASSFILE) or the exporter's environment"
            ));
        }
        config.targets.insert(name, entry.conninfo);
    }
    Ok(config)
}

/// A module table as flags: `scan = "full"` is `--scan full`,
/// `audit = true` is `--audit`, lists repeat the flag.
fn module(table: &toml::Table) -> Result<Module, String> {
    let mut words = Vec::new();
    for (key, value) in table {
        let flag = format!("--{}", key.replace('_', "-"));
        match value {
            toml::Value::Boolean(true) => words.push(flag),
            toml::Value::Boolean(false) => {}
            toml::Value::String(s) => words.extend([flag, s.clone()]),
            toml::Value::Integer(n) => words.extend([flag, n.to_string()]),
            toml::Value::Float(f) => words.extend([flag, f.to_string()]),
            toml::Value::Array(items) => {
                for item in items {
                    match item {
                        toml::Value::String(s) => words.extend([flag.clone(), s.clone()]),
                        _ => return Err(format!("\"{key}\": a list of strings is expected")),
                    }
                }
            }
            _ => return Err(format!("\"{key}\": unsupported value")),
        }
    }
    let parsed = ModuleOnly::try_parse_from(&words).map_err(|e| crate::cli::argument_error(&e))?;
    plan::module(&parsed.module)
}

/// Whether a connection string carries a password (key=value or URI).
fn has_password(conninfo: &str) -> bool {
    let mut notes = Vec::new();
    // An unparsable string is refused when used; its error says why.
    conn::password_in(conninfo, &mut notes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::ScanLevel;

    fn load_text(text: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        std::fs::write(&path, text).unwrap();
        load(&path)
    }

    #[test]
    fn modules_take_the_probe_flags() {
        let config = load_text(
            "[modules.quick]\nscan = \"none\"\ntimeout = 5\n[modules.deep]\nscan = \"full\"\naudit = true\nallow_plaintext_from = [\"10.0.0.0/8\"]\nwarning_days = 45\n[targets.billing]\nconninfo = \"host=db dbname=billing\"\n",
        )
        .unwrap();
        let quick = &config.modules["quick"];
        assert_eq!(quick.checks.scan, None);
        assert_eq!(quick.timeout.as_secs(), 5);
        let deep = &config.modules["deep"];
        assert_eq!(deep.checks.scan, Some(ScanLevel::Full));
        assert!(deep.checks.audit);
        assert_eq!(deep.thresholds.warning_days, 45);
        assert_eq!(deep.thresholds.allow_plaintext_from.len(), 1);
        assert_eq!(config.targets["billing"], "host=db dbname=billing");
    }

    #[test]
    fn mistakes_are_named() {
        for (text, want) in [
            (
                "[modules.m]\nscna = \"none\"\n",
                "module \"m\": unknown option --scna",
            ),
            (
                "[modules.m]\nscan = \"some\"\n",
                "module \"m\": invalid value \"some\" for --scan",
            ),
            (
                "[modules.m]\ncritical_days = 40\n",
                "must not exceed --warning-days",
            ),
            (
                "[targets.t]\nconninfo = \"host=db password=s3cret\"\n",
                "no password in the configuration file",
            ),
            (
                "[targets.t]\nconninfo = \"postgresql://u:s3cret@db/x\"\n",
                "no password in the configuration file",
            ),
            ("\n\n[targetz]\n", "serve.toml:3: unknown field"),
        ] {
            let e = load_text(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(!e.contains("s3cret"), "{e}");
        }
    }
}
