//! Cross-check of the protocol scan (`scan.protocols`) against a real peer:
//! testssl.sh 3.0.8 (`testssl --starttls postgres --protocols`) aimed at
//! the same real PostgreSQL server, on the article's setup and on a legacy
//! one that also accepts TLS 1.0 and 1.1. Both tools must give the same
//! accepted / not-accepted verdict for SSLv3, TLS 1.0, 1.1, 1.2 and 1.3.
//! SSLv2 is not compared: the probe does not test it (the contract lists
//! five versions) and no current server speaks it.
//!
//! How testssl is run, and why (checked by hand with Debian's testssl.sh
//! 3.0.8 and OpenSSL 3.0):
//! - Its protocol checks use its own bash sockets, not `openssl s_client`,
//!   so Debian's OpenSSL 3 (which refuses TLS 1.0/1.1 at its default
//!   security level) does not matter. `--ssl-native` must NOT be used: it
//!   routes the checks through that OpenSSL and then reports TLS 1.0/1.1 as
//!   "not offered" on a server that accepts them (`fixtures/testssl/
//!   legacy-ssl-native.json`).
//! - No network beyond the target: the target is an IP literal,
//!   `--nodns none` skips rDNS, `--phone-out` stays off (the default), and
//!   `NXCONNECT=127.0.0.1:0` stops its start-up OpenSSL capability checks
//!   from resolving the name `invalid.` over DNS (30 lookups otherwise).
//! - Never prompts or colours: `--quiet --warnings off --color 0`, stdin
//!   from /dev/null; bounded by `--connect-timeout`, `--openssl-timeout`
//!   and a hard kill of its whole process group here.
//! - Verdicts come from `--jsonfile` (flat JSON, one object per finding,
//!   ids `SSLv3`, `TLS1`, `TLS1_1`, `TLS1_2`, `TLS1_3`).
//!
//! testssl is found on `PATH` as `testssl` (Debian) or `testssl.sh`.
//! Without it the tests print a message and skip, except under `CI=true`,
//! where they fail (as for PostgreSQL in `util/pg.rs`).

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use serde_json::Value;

use crate::util::pg::{self, Server, ServerSpec, ServerTls, SharedServer};
use crate::util::pki::{Ca, Validity};
use crate::util::Probe;

/// The versions compared, in the contract's order: PostgreSQL's spelling
/// (the probe's `version`) and testssl's finding id.
const VERSIONS: [(&str, &str); 5] = [
    ("SSLv3", "SSLv3"),
    ("TLSv1", "TLS1"),
    ("TLSv1.1", "TLS1_1"),
    ("TLSv1.2", "TLS1_2"),
    ("TLSv1.3", "TLS1_3"),
];

/// The legacy server's extra postgresql.conf lines: TLS 1.0 as the floor,
/// and security level 0 so OpenSSL 3 will sign a TLS 1.0/1.1 handshake.
const LEGACY_CONF: [&str; 2] = [
    "ssl_min_protocol_version = 'TLSv1'",
    "ssl_ciphers = 'DEFAULT:@SECLEVEL=0'",
];

/// How long testssl may run before it is killed: it takes about 6 s for
/// `--protocols` on an idle machine, half of that its own start-up.
const TESTSSL_LIMIT: Duration = Duration::from_secs(120);

/// One tool's verdict on one version: `accepted` is `None` when the tool
/// could not decide; `detail` is its own wording.
#[derive(Clone, Debug)]
struct Verdict {
    version: &'static str,
    accepted: Option<bool>,
    detail: String,
}

/// Reads testssl's `--jsonfile` output: exactly one finding per compared
/// id. "offered…" is accepted, "not offered…" is not; anything else
/// ("likely not offered", "supported but couldn't detect a cipher", "not
/// tested due to lack of local support", …) is undecided.
fn parse_testssl(json: &str) -> Result<Vec<Verdict>, String> {
    let doc: Value =
        serde_json::from_str(json).map_err(|e| format!("testssl JSON does not parse: {e}"))?;
    let findings = doc
        .as_array()
        .ok_or("testssl JSON is not an array of findings")?;
    VERSIONS
        .iter()
        .map(|&(version, id)| {
            let mut matching = findings.iter().filter(|f| f["id"] == id);
            let finding = match (matching.next(), matching.next()) {
                (Some(f), None) => f,
                (None, _) => return Err(format!("testssl JSON has no finding with id {id:?}")),
                (Some(_), Some(_)) => {
                    return Err(format!("testssl JSON has several findings with id {id:?}"))
                }
            };
            let text = finding["finding"]
                .as_str()
                .ok_or_else(|| format!("finding {id:?} has no text: {finding}"))?;
            let accepted = if text.starts_with("not offered") {
                Some(false)
            } else if text.starts_with("offered") {
                Some(true)
            } else {
                None
            };
            Ok(Verdict {
                version,
                accepted,
                detail: format!("{} {text}", finding["severity"].as_str().unwrap_or("?")),
            })
        })
        .collect()
}

/// Reads the probe's `scan.protocols` per the contract: the five versions
/// in order, each with `accepted` true, false or null and a `detail`.
fn parse_probe(protocols: &Value) -> Result<Vec<Verdict>, String> {
    let rows = protocols
        .as_array()
        .ok_or_else(|| format!("scan.protocols is not an array: {protocols}"))?;
    if rows.len() != VERSIONS.len() {
        return Err(format!(
            "scan.protocols has {} entries, expected {}: {protocols}",
            rows.len(),
            VERSIONS.len()
        ));
    }
    rows.iter()
        .zip(VERSIONS)
        .map(|(row, (version, _))| {
            if row["version"] != version {
                return Err(format!("expected version {version:?} here, got {row}"));
            }
            let accepted = match &row["accepted"] {
                Value::Bool(b) => Some(*b),
                Value::Null => None,
                other => return Err(format!("{version}: accepted is {other}, not a bool/null")),
            };
            let detail = row["detail"]
                .as_str()
                .ok_or_else(|| format!("{version}: no detail string in {row}"))?;
            Ok(Verdict {
                version,
                accepted,
                detail: detail.to_string(),
            })
        })
        .collect()
}

/// The accepted set as the expected flags in `VERSIONS` order, for asserts.
fn accepted(verdicts: &[Verdict]) -> Vec<(&'static str, Option<bool>)> {
    verdicts.iter().map(|v| (v.version, v.accepted)).collect()
}

/// `expected` as `(version, Some(flag))` pairs in `VERSIONS` order.
fn expect(flags: [bool; 5]) -> Vec<(&'static str, Option<bool>)> {
    VERSIONS
        .iter()
        .zip(flags)
        .map(|(&(version, _), flag)| (version, Some(flag)))
        .collect()
}

/// A side-by-side table for failure messages.
fn table(testssl: &[Verdict], probe: &[Verdict]) -> String {
    testssl
        .iter()
        .zip(probe)
        .map(|(t, p)| {
            format!(
                "{:8} testssl {:?} ({})  probe {:?} ({})\n",
                t.version, t.accepted, t.detail, p.accepted, p.detail
            )
        })
        .collect()
}

/// testssl on `PATH`, or `None` after saying why the test is skipped;
/// under `CI=true` a missing testssl panics instead.
fn testssl_bin() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    let bin = BIN.get_or_init(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .flat_map(|dir| [dir.join("testssl"), dir.join("testssl.sh")])
            .find(|p| p.is_file())
    });
    if bin.is_none() {
        let msg = "testssl (Debian package testssl.sh) not found on PATH";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}; CI=true, so this fails instead of skipping");
        }
        eprintln!("skipping: {msg}");
    }
    bin.as_deref()
}

/// Runs `testssl --starttls postgres --protocols` against 127.0.0.1:`port`
/// and returns its verdicts, or why there are none (with its output).
fn run_testssl(bin: &Path, port: u16) -> Result<Vec<Verdict>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    // testssl refuses to write into an existing file.
    let json_path = dir.path().join("testssl.json");
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("NXCONNECT", "127.0.0.1:0")
        .current_dir(dir.path())
        .args(["--quiet", "--warnings", "off", "--color", "0"])
        .args(["--nodns", "none"])
        .args(["--connect-timeout", "10", "--openssl-timeout", "10"])
        .args(["--starttls", "postgres", "--protocols"])
        .arg("--jsonfile")
        .arg(&json_path)
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout kills the openssl children as well.
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let pid = child.id();
    let stdout = read_capped(child.stdout.take());
    let stderr = read_capped(child.stderr.take());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(TESTSSL_LIMIT) {
        Ok(status) => status.map_err(|e| format!("wait for testssl: {e}"))?,
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &format!("-{pid}")])
                .status();
            return Err(format!(
                "testssl still running after {TESTSSL_LIMIT:?}; killed it"
            ));
        }
    };
    let output = format!(
        "testssl exited {status}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    let json = std::fs::read_to_string(&json_path)
        .map_err(|e| format!("read {}: {e}\n{output}", json_path.display()))?;
    parse_testssl(&json).map_err(|e| format!("{e}\n{output}"))
}

/// Reads a pipe to the end in a thread, keeping the first 256 KiB.
fn read_capped(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(pipe) = pipe {
            let _ = pipe.take(256 * 1024).read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// A server per the article plus `extra` postgresql.conf lines, with its
/// client's root CA file.
fn start(extra: &[&str]) -> Option<SharedServer> {
    let ca = Ca::root("pg-tls-probe testssl CA");
    let leaf = ca.server(&["localhost", "127.0.0.1"], Validity::normal());
    let tls = ServerTls {
        cert_chain_pem: leaf.cert_pem,
        key_pem: leaf.key_pem,
        ca_pem: ca.cert_pem.clone(),
    };
    let spec = extra
        .iter()
        .fold(ServerSpec::article(tls), |spec, line| spec.conf(line));
    let server = Server::start(&spec)?;
    let root = server.client_file("root.crt", &ca.cert_pem);
    Some((server, root))
}

/// The article's setup; shared by this module's tests.
fn article() -> Option<&'static SharedServer> {
    pg::shared("testssl-article", || start(&[]))
}

/// The article plus [`LEGACY_CONF`]; shared by this module's tests.
fn legacy() -> Option<&'static SharedServer> {
    pg::shared("testssl-legacy", || start(&LEGACY_CONF))
}

/// testssl's verdicts on a shared server, kept in `cell` so the tests on
/// one server share a single run (one takes seconds).
fn testssl_on(
    cell: &'static OnceLock<Vec<Verdict>>,
    what: &str,
    server: &'static SharedServer,
    bin: &Path,
) -> &'static [Verdict] {
    cell.get_or_init(|| {
        run_testssl(bin, server.0.port)
            .unwrap_or_else(|e| panic!("testssl on the {what} server: {e}\n{}", server.0.log()))
    })
}

/// testssl's verdicts on [`article`] and [`legacy`].
static TESTSSL_ARTICLE: OnceLock<Vec<Verdict>> = OnceLock::new();
static TESTSSL_LEGACY: OnceLock<Vec<Verdict>> = OnceLock::new();

/// Runs the probe's protocol scan on `server` and returns its verdicts,
/// after checking its exit code and the `protocols` finding.
fn probe_scan(server: &SharedServer, exit: i32, status: &str) -> Vec<Verdict> {
    let out = Probe::server(&server.0, &server.1)
        .args(["--scan", "protocols"])
        .run();
    let verdicts =
        parse_probe(out.at("/scan/protocols")).unwrap_or_else(|e| panic!("{e}\n{}", out.context()));
    out.expect_at("/scan/level", "protocols")
        .expect_exit(exit)
        .expect_check("protocols", status);
    verdicts
}

/// Asserts that both tools decided every version, identically.
#[track_caller]
fn assert_same(testssl: &[Verdict], probe: &[Verdict]) {
    let undecided = testssl.iter().chain(probe).any(|v| v.accepted.is_none());
    assert!(
        !undecided && accepted(testssl) == accepted(probe),
        "testssl and the probe disagree (or one could not decide):\n{}",
        table(testssl, probe)
    );
}

// ---- the parsers, on captured output ----

#[test]
fn testssl_parser_reads_captured_legacy_run() {
    let got = parse_testssl(include_str!("fixtures/testssl/legacy.json")).unwrap();
    assert_eq!(accepted(&got), expect([false, true, true, true, true]));
    assert_eq!(got[1].detail, "LOW offered (deprecated)");
    assert_eq!(got[4].detail, "OK offered with final");
}

#[test]
fn testssl_parser_reads_captured_article_run() {
    let got = parse_testssl(include_str!("fixtures/testssl/article.json")).unwrap();
    assert_eq!(accepted(&got), expect([false, false, false, true, true]));
    assert_eq!(got[2].detail, "INFO not offered");
}

/// `--ssl-native` on the legacy server: SSLv3 undecided, and TLS 1.0/1.1
/// wrongly "not offered" (why the runner never passes that flag).
#[test]
fn testssl_parser_reads_captured_ssl_native_run() {
    let got = parse_testssl(include_str!("fixtures/testssl/legacy-ssl-native.json")).unwrap();
    assert_eq!(got[0].accepted, None);
    assert_eq!(
        got[0].detail,
        "WARN not tested due to lack of local support"
    );
    assert_eq!(got[1].accepted, Some(false));
}

#[test]
fn testssl_parser_rejects_missing_duplicate_and_odd_findings() {
    let sample = include_str!("fixtures/testssl/legacy.json");
    let mut doc: Vec<Value> = serde_json::from_str(sample).unwrap();
    doc.retain(|f| f["id"] != "TLS1_3");
    let err = parse_testssl(&Value::from(doc.clone()).to_string()).unwrap_err();
    assert!(err.contains("no finding with id \"TLS1_3\""), "{err}");

    doc.push(serde_json::json!({"id": "TLS1", "severity": "INFO", "finding": "not offered"}));
    let err = parse_testssl(&Value::from(doc.clone()).to_string()).unwrap_err();
    assert!(err.contains("several findings with id \"TLS1\""), "{err}");

    assert!(parse_testssl("").is_err());
    assert!(parse_testssl("{}").is_err());

    let odd = sample.replace(
        "\"finding\"      : \"offered (deprecated)\"",
        "\"finding\"      : \"likely not offered\"",
    );
    let got = parse_testssl(&odd).unwrap();
    assert_eq!((got[1].accepted, got[2].accepted), (None, None));
}

#[test]
fn probe_parser_reads_the_contract_shape() {
    let row = |v: &str, a: Value| serde_json::json!({"version": v, "accepted": a, "detail": "d"});
    let rows = serde_json::json!([
        row("SSLv3", false.into()),
        row("TLSv1", Value::Null),
        row("TLSv1.1", false.into()),
        row("TLSv1.2", true.into()),
        row("TLSv1.3", true.into()),
    ]);
    let got = parse_probe(&rows).unwrap();
    assert_eq!(got[1].accepted, None);
    assert_eq!(got[3].accepted, Some(true));

    let mut swapped = rows.clone();
    swapped.as_array_mut().unwrap().swap(3, 4);
    assert!(parse_probe(&swapped).unwrap_err().contains("TLSv1.2"));
    let mut short = rows.clone();
    short.as_array_mut().unwrap().pop();
    assert!(parse_probe(&short).is_err());
    assert!(parse_probe(&Value::Null).is_err());
    let mut stringly = rows;
    stringly[0]["accepted"] = "no".into();
    assert!(parse_probe(&stringly).is_err());
}

#[test]
fn comparison_needs_every_version_decided_and_equal() {
    let fails = |a: Vec<Verdict>, b: Vec<Verdict>| {
        std::panic::catch_unwind(move || assert_same(&a, &b)).is_err()
    };
    let testssl = parse_testssl(include_str!("fixtures/testssl/legacy.json")).unwrap();
    assert!(!fails(testssl.clone(), testssl.clone()));
    let mut differs = testssl.clone();
    differs[2].accepted = Some(false);
    assert!(fails(testssl.clone(), differs), "a mismatch got through");
    let mut undecided = testssl.clone();
    undecided[0].accepted = None;
    assert!(
        fails(undecided.clone(), undecided),
        "undecided on both sides got through"
    );
}

// ---- testssl alone against real servers (the peer's side works) ----

#[test]
fn testssl_sees_only_tls12_and_tls13_on_the_article_server() {
    let (Some(bin), Some(server)) = (testssl_bin(), article()) else {
        return;
    };
    let got = testssl_on(&TESTSSL_ARTICLE, "article", server, bin);
    assert_eq!(accepted(got), expect([false, false, false, true, true]));
}

#[test]
fn testssl_sees_tls10_and_tls11_on_the_legacy_server() {
    let (Some(bin), Some(server)) = (testssl_bin(), legacy()) else {
        return;
    };
    let got = testssl_on(&TESTSSL_LEGACY, "legacy", server, bin);
    assert_eq!(accepted(got), expect([false, true, true, true, true]));
}

// ---- the cross-check: the probe's scan agrees with testssl ----

#[test]
fn scan_agrees_with_testssl_on_the_article_server() {
    let (Some(bin), Some(server)) = (testssl_bin(), article()) else {
        return;
    };
    let probe = probe_scan(server, 0, "OK");
    let testssl = testssl_on(&TESTSSL_ARTICLE, "article", server, bin);
    assert_same(testssl, &probe);
    assert_eq!(accepted(&probe), expect([false, false, false, true, true]));
}

#[test]
fn scan_agrees_with_testssl_on_the_legacy_server() {
    let (Some(bin), Some(server)) = (testssl_bin(), legacy()) else {
        return;
    };
    // TLS 1.0/1.1 accepted: --legacy-tls defaults to warning.
    let probe = probe_scan(server, 1, "WARNING");
    let testssl = testssl_on(&TESTSSL_LEGACY, "legacy", server, bin);
    assert_same(testssl, &probe);
    assert_eq!(accepted(&probe), expect([false, true, true, true, true]));
}
