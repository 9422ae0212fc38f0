//! Flags as typed → a validated [`Plan`]: everything that needs no network.
//!
//! A plan has two halves, kept apart so that many targets can share one
//! module (as a blackbox_exporter module is shared by its targets): the
//! [`Module`] says what to check and how to judge it (checks, thresholds,
//! timeout), the [`Endpoint`] which server, as whom, trusting what.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cli::{Args, ModuleFlags, Scan, Severity};
use crate::conn::{self, Flags};
use crate::facts::{ScanLevel, TlsVersion};
use crate::policy::{scan::ScanPolicy, Status, Thresholds};
use crate::probe::{Checks, Endpoint};
use crate::tls;

/// One planned run.
#[derive(Debug)]
pub enum Plan {
    /// One server: the report and exit code are its own.
    Single(Box<Single>),
    /// Several (`--services`, or a host list): one report per target, the
    /// worst status as the run's.
    Fleet(Fleet),
}

/// The module, the endpoint and the run's deadline.
#[derive(Debug)]
pub struct Single {
    pub module: Module,
    pub endpoint: Endpoint,
    /// When the whole run must be over (start + `--timeout`).
    pub deadline: Instant,
}

/// Many targets under one module and one deadline.
#[derive(Debug)]
pub struct Fleet {
    pub module: Module,
    pub targets: Vec<FleetTarget>,
    pub deadline: Instant,
    /// How many targets are probed at once (`--concurrency`).
    pub concurrency: usize,
    /// How many targets of one server are probed at once (`--per-server`).
    pub per_server: usize,
}

/// One target of a fleet: its name (the service, or host:port) and its
/// endpoint, or why it could not be planned (then only it is UNKNOWN).
#[derive(Debug)]
pub struct FleetTarget {
    pub name: String,
    pub endpoint: Result<Endpoint, String>,
}

/// The most targets one run takes: far past any fleet a single process
/// should probe within a plugin's timeout (shard across engines beyond).
pub const MAX_TARGETS: usize = 100_000;

/// What to check and how to judge it; the same for every target.
#[derive(Debug, Clone)]
pub struct Module {
    pub checks: Checks,
    pub thresholds: Thresholds,
    /// `--timeout`: the whole run, per target.
    pub timeout: Duration,
}

/// Looks up an environment variable.
pub type VarLookup = Box<dyn Fn(&str) -> Option<OsString> + Send + Sync>;

/// The process's view of its surroundings, passed in so tests and fuzzers
/// need no process state.
pub struct Environment {
    pub var: VarLookup,
    /// The user's home directory (~/.pgpass, ~/.postgresql/root.crt).
    pub home: Option<PathBuf>,
    /// The default user name.
    pub os_user: String,
}

impl Environment {
    /// This process's environment.
    pub fn process() -> Environment {
        Environment {
            var: Box::new(|name: &str| std::env::var_os(name)),
            home: std::env::var_os("HOME").map(PathBuf::from),
            os_user: std::env::var("USER")
                .or_else(|_| std::env::var("LOGNAME"))
                .unwrap_or_else(|_| "postgres".into()),
        }
    }
}

/// Validates the flags and loads what the probes need (CA and key files).
pub fn plan(args: &Args, started: Instant, env: &Environment) -> Result<Plan, String> {
    let module = module(&args.module)?;
    let deadline = started + module.timeout;
    for (flag, n) in [
        ("--concurrency", args.concurrency),
        ("--per-server", args.per_server),
    ] {
        if !(1..=4096).contains(&n) {
            return Err(format!("{flag} must be 1 to 4096, not {n}"));
        }
    }
    let flags = Flags {
        conninfo: args.conninfo.clone(),
        host: args.host.clone(),
        port: args.port.clone(),
        username: args.username.clone(),
        dbname: args.dbname.clone(),
        sslnegotiation: args.sslnegotiation.clone(),
        service: None,
    };
    let var = |name: &str| (env.var)(name).map(|v| v.to_string_lossy().into_owned());
    let home = env.home.as_deref();
    let mut loaded = Loaded::default();
    let targets = if args.services.is_empty() {
        let mut targets =
            conn::resolve_all(&flags, &var, home, &env.os_user).map_err(|e| e.to_string())?;
        if targets.len() == 1 {
            let endpoint = loaded.endpoint(targets.remove(0))?;
            return Ok(Plan::Single(Box::new(Single {
                module,
                endpoint,
                deadline,
            })));
        }
        targets
            .into_iter()
            .map(|t| FleetTarget {
                name: format!("{}:{}", t.host, t.port),
                endpoint: loaded.endpoint(t),
            })
            .collect()
    } else {
        let names = matching_services(&args.services, &flags, &var, home)?;
        let mut targets = Vec::new();
        for name in names {
            let flags = Flags {
                service: Some(name.clone()),
                ..flags.clone()
            };
            match conn::resolve_all(&flags, &var, home, &env.os_user) {
                Ok(found) if found.len() == 1 => {
                    targets.extend(found.into_iter().map(|t| FleetTarget {
                        name: name.clone(),
                        endpoint: loaded.endpoint(t),
                    }))
                }
                Ok(found) => targets.extend(found.into_iter().map(|t| FleetTarget {
                    name: format!("{name}/{}:{}", t.host, t.port),
                    endpoint: loaded.endpoint(t),
                })),
                Err(e) => targets.push(FleetTarget {
                    name,
                    endpoint: Err(e.to_string()),
                }),
            }
        }
        targets
    };
    if targets.len() > MAX_TARGETS {
        return Err(format!(
            "{} targets: one run takes at most {MAX_TARGETS}; shard the fleet across runs",
            targets.len()
        ));
    }
    Ok(Plan::Fleet(Fleet {
        module,
        targets,
        deadline,
        concurrency: args.concurrency,
        per_server: args.per_server,
    }))
}

/// The service names matching any of `patterns` (shell-style: `*`, `?`,
/// `[...]`), in the order of the service files.
fn matching_services(
    patterns: &[String],
    flags: &Flags,
    var: &dyn Fn(&str) -> Option<String>,
    home: Option<&std::path::Path>,
) -> Result<Vec<String>, String> {
    let globs = patterns
        .iter()
        .map(|p| {
            glob::Pattern::new(p)
                .map_err(|e| format!("--services: \"{p}\" is not a valid pattern: {}", e.msg))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let files = conn::service_files(flags, var, home).map_err(|e| e.to_string())?;
    let names: Vec<String> = files
        .names()
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|name| globs.iter().any(|g| g.matches(name)))
        .collect();
    if names.is_empty() {
        return Err(format!(
            "--services: no service matches {} in {} or {}",
            patterns.join(", "),
            files.user.display(),
            files.system.display()
        ));
    }
    Ok(names)
}

/// Loads the trust store and client identity `target` names.
pub fn endpoint(target: conn::Target) -> Result<Endpoint, String> {
    Loaded::default().endpoint(target)
}

/// Trust stores already read, by source: a fleet's targets mostly share one.
#[derive(Default)]
struct Loaded {
    trust: Vec<(conn::RootCerts, tls::TrustStore)>,
}

impl Loaded {
    /// Loads the trust store and client identity `target` names.
    fn endpoint(&mut self, mut target: conn::Target) -> Result<Endpoint, String> {
        let trust = match self.trust.iter().find(|(r, _)| *r == target.sslrootcert) {
            Some((_, store)) => store.clone(),
            None => {
                let store = tls::load_trust(&target.sslrootcert).map_err(|e| e.to_string())?;
                self.trust.push((target.sslrootcert.clone(), store.clone()));
                store
            }
        };
        // CRLs are the target's own (sslcrl, sslcrldir), read beside it.
        let trust = trust.with_crls(&target.crl, &mut target.notes);
        let identity = match (&target.sslcert, &target.sslkey) {
            (Some(cert), Some(key)) => Some(tls::load_identity(cert, key).map_err(|e| {
                if key_is_encrypted(key) {
                    format!(
                        "sslkey \"{}\" is encrypted: encrypted client keys are not supported (sslpassword is not used); give the probe a decrypted copy readable only by its user",
                        key.display()
                    )
                } else {
                    e.to_string()
                }
            })?),
            _ => None,
        };
        // Its first certificate, described for the expiry finding (the
        // identity above already proved the file parses).
        let client_cert = identity
            .as_ref()
            .and(target.sslcert.as_ref())
            .and_then(|path| {
                use rustls_pki_types::pem::PemObject;
                let pem = conn::read_input_file(path).ok()?;
                let der = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
                    .next()?
                    .ok()?;
                crate::certs::describe(&der).ok()
            });
        Ok(Endpoint {
            target,
            trust,
            identity,
            client_cert,
        })
    }
}

/// The checks, thresholds and timeout from the flags.
pub fn module(args: &ModuleFlags) -> Result<Module, String> {
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 3600.0) {
        return Err(format!(
            "--timeout must be more than 0 and at most 3600 seconds, not {}",
            args.timeout
        ));
    }
    if args.critical_days > args.warning_days {
        return Err(format!(
            "--critical-days ({}) must not exceed --warning-days ({})",
            args.critical_days, args.warning_days
        ));
    }
    let min_tls = TlsVersion::parse_minimum(&args.min_tls_version).ok_or_else(|| {
        format!(
            "--min-tls-version must be TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3, not \"{}\"",
            args.min_tls_version
        )
    })?;
    if !args.audit && !args.allow_plaintext_from.is_empty() {
        return Err("--allow-plaintext-from only applies with --audit".into());
    }
    let allow_plaintext_from = args
        .allow_plaintext_from
        .iter()
        .map(|c| Cidr::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let checks = Checks {
        plaintext: !args.skip_plaintext_check,
        scan: match args.scan {
            Scan::None => None,
            Scan::Protocols => Some(ScanLevel::Protocols),
            Scan::Full => Some(ScanLevel::Full),
        },
        audit: args.audit,
        // A capability probe like the scan: skipped with --scan none.
        direct_tls: args.scan != Scan::None,
    };
    let thresholds = Thresholds {
        warning_days: args.warning_days,
        critical_days: args.critical_days,
        min_tls,
        scan: ScanPolicy {
            legacy: severity(args.legacy_tls),
            weak: severity(args.weak_ciphers),
        },
        allow_plaintext_from,
    };
    Ok(Module {
        checks,
        thresholds,
        timeout: Duration::from_secs_f64(args.timeout),
    })
}

/// An encrypted PEM key: PKCS#8 `ENCRYPTED PRIVATE KEY`, or OpenSSL's
/// traditional `Proc-Type: 4,ENCRYPTED` header.
fn key_is_encrypted(path: &std::path::Path) -> bool {
    conn::read_input_file(path).is_ok_and(|pem| {
        let text = String::from_utf8_lossy(&pem);
        text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
            || text.contains("Proc-Type: 4,ENCRYPTED")
    })
}

/// `--legacy-tls`/`--weak-ciphers`: the status an accepted one costs, None to ignore.
fn severity(s: Severity) -> Option<Status> {
    match s {
        Severity::Warning => Some(Status::Warning),
        Severity::Critical => Some(Status::Critical),
        Severity::Ignore => None,
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
