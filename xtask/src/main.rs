//! Build-time assets of pg-tls-probe, generated from the very `clap`
//! definitions that parse its flags (`pg_tls_probe::cli`), so they cannot
//! drift from `--help`:
//!
//!   cargo run -p xtask -- assets DIR
//!
//! writes `DIR/man/pg-tls-probe.1`, `DIR/man/pg-tls-probe-serve.1` and
//! `DIR/completions/{pg-tls-probe.bash,_pg-tls-probe,pg-tls-probe.fish}`
//! (scripts/package-deb.sh packs them). A crate of its own rather than a
//! hidden flag of the binary: the generators stay out of what is shipped,
//! and a release build does not build them (the workspace's
//! default-members is the probe alone).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{roman, Roff};
use clap_mangen::Man;
use pg_tls_probe::cli::{Args, ServeArgs};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [command, dir] = args.as_slice() else {
        eprintln!("usage: xtask assets DIR");
        return ExitCode::from(2);
    };
    if command != "assets" {
        eprintln!("usage: xtask assets DIR");
        return ExitCode::from(2);
    }
    match assets(Path::new(dir)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn assets(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let man = dir.join("man");
    std::fs::create_dir_all(&man)?;
    for (name, page) in [
        ("pg-tls-probe.1", man_page()?),
        ("pg-tls-probe-serve.1", serve_man_page()?),
    ] {
        let path = man.join(name);
        std::fs::write(&path, page)?;
        written.push(path);
    }
    let completions = dir.join("completions");
    std::fs::create_dir_all(&completions)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        written.push(clap_complete::generate_to(
            shell,
            &mut completion_command(),
            "pg-tls-probe",
            &completions,
        )?);
    }
    Ok(written)
}

/// The command completions know: the probe's flags, and `serve` with its own.
fn completion_command() -> clap::Command {
    Args::command().subcommand(ServeArgs::command().name("serve"))
}

/// pg-tls-probe(1): clap's sections (the options under their help
/// headings), then what --help says in prose, as man sections of their own.
fn man_page() -> std::io::Result<Vec<u8>> {
    let cmd = Args::command();
    let man = Man::new(cmd.clone()).manual("pg-tls-probe");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    let mut roff = Roff::default();
    section(
        &mut roff,
        "ENVIRONMENT",
        &[
            "PGSSLROOTCERT: the CA certificate file the server's certificate must chain to (sslrootcert=; default ~/.postgresql/root.crt). The first thing to set.",
            "PGHOST, PGHOSTADDR, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGPASSFILE, PGSERVICE, PGSERVICEFILE, PGSSLMODE (verify-full or verify-ca only), PGSSLCRL, PGSSLCERT, PGSSLKEY, PGCONNECT_TIMEOUT and the other libpq variables, as libpq reads them. In a connection string, hostaddr= is the address dialled and host= the name the certificate must match.",
        ],
    );
    section(
        &mut roff,
        "EXIT STATUS",
        &["0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN: the monitoring-plugins convention. Bad arguments are UNKNOWN (3), reported in the format asked for."],
    );
    section(
        &mut roff,
        "FILES",
        &[
            "/usr/lib/nagios/plugins/check_pg_tls: the same program under the name Nagios users look for.",
            "/usr/share/icinga2/include/plugins-contrib.d/pg-tls-probe.conf: the Icinga 2 CheckCommand.",
            "/usr/share/doc/pg-tls-probe/examples/: Nagios, Icinga 2, Prometheus and CI pipeline examples.",
        ],
    );
    if let Some(after) = cmd.get_after_help() {
        let text = after.to_string();
        let paragraphs: Vec<&str> = text.split("\n\n").collect();
        section(&mut roff, "NOTES", &paragraphs);
    }
    section(
        &mut roff,
        "SEE ALSO",
        &["pg-tls-probe-serve(1), psql(1), the PostgreSQL documentation on SSL support (libpq-ssl)."],
    );
    roff.to_writer(&mut out)?;
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// pg-tls-probe-serve(1): the exporter's flags.
fn serve_man_page() -> std::io::Result<Vec<u8>> {
    let cmd = ServeArgs::command().name("pg-tls-probe-serve");
    let man = Man::new(cmd).manual("pg-tls-probe");
    let mut out = Vec::new();
    man.render(&mut out)?;
    let mut roff = Roff::default();
    section(
        &mut roff,
        "FILES",
        &["/usr/lib/systemd/system/pg-tls-probe.service: a hardened unit running it (options in /etc/default/pg-tls-probe, password file as a systemd credential)."],
    );
    section(&mut roff, "SEE ALSO", &["pg-tls-probe(1)"]);
    roff.to_writer(&mut out)?;
    Ok(out)
}

fn section(roff: &mut Roff, title: &str, paragraphs: &[&str]) {
    roff.control("SH", [title]);
    for (i, p) in paragraphs.iter().enumerate() {
        if i > 0 {
            roff.control("PP", []);
        }
        roff.text([roman(*p)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every long flag of --help is in the man page (roff writes '-' as
    /// "\-"): a flag added to cli.rs without regenerating cannot happen,
    /// and one the generator dropped fails here.
    #[test]
    fn man_pages_mention_every_long_flag() {
        for (cmd, page) in [
            (Args::command(), man_page().unwrap()),
            (ServeArgs::command(), serve_man_page().unwrap()),
        ] {
            let page = String::from_utf8(page).unwrap();
            let flags: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
            assert!(flags.len() >= 10, "{flags:?}");
            for flag in flags {
                let roff = format!("\\-\\-{}", flag.replace('-', "\\-"));
                assert!(page.contains(&roff), "{flag} missing from the man page");
            }
        }
    }

    /// The help headings become sections, and the prose sections are there.
    #[test]
    fn man_page_has_the_sections() {
        let page = String::from_utf8(man_page().unwrap()).unwrap();
        for heading in [
            ".SH CONNECTION",
            ".SH CHECKS",
            ".SH THRESHOLDS",
            ".SH OUTPUT",
            ".SH ENVIRONMENT",
            ".SH \"EXIT STATUS\"",
            ".SH FILES",
            ".SH NOTES",
            ".SH \"SEE ALSO\"",
        ] {
            assert!(page.contains(heading), "{heading}\n{page}");
        }
        assert!(page.contains("PGSSLROOTCERT"));
    }

    /// Completions know every long flag and `serve`.
    #[test]
    fn completions_know_every_flag_and_serve() {
        let dir = std::env::temp_dir().join(format!("xtask-test-{}", std::process::id()));
        let files = assets(&dir).unwrap();
        let bash = std::fs::read_to_string(dir.join("completions/pg-tls-probe.bash")).unwrap();
        for flag in Args::command().get_arguments().filter_map(|a| a.get_long()) {
            assert!(bash.contains(&format!("--{flag}")), "{flag}");
        }
        assert!(bash.contains("serve"));
        assert_eq!(files.len(), 5, "{files:?}");
        assert!(dir.join("completions/_pg-tls-probe").exists());
        assert!(dir.join("completions/pg-tls-probe.fish").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
