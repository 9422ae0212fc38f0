//! Prometheus and Icinga 2 for real, with the configurations shipped in
//! examples/: promtool checks the Prometheus configurations and runs the
//! alert rules' unit tests; Debian's `prometheus` scrapes `pg-tls-probe
//! serve` against real servers through the example's relabelling, then two
//! exporters sharded by hashmod; `icinga2 daemon -C` validates the Icinga
//! example, and a real Icinga 2 daemon runs its CheckCommand.
//!
//! The examples are used as shipped; only what a test must change (the
//! exporters' addresses, intervals short enough for a test, the target
//! list) is substituted, each substitution asserted to match, so an edited
//! example cannot silently drift from what is tested. Without promtool,
//! prometheus or icinga2 (Debian packages `prometheus`, `icinga2-bin`) the
//! tests print a message and skip, except under `CI=true`.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::pg::{self, Plaintext, Server, ServerSpec, ServerTls, SharedServer};
use crate::util::pki::{Ca, Validity};

const BIN: &str = env!("CARGO_BIN_EXE_pg-tls-probe");
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");

/// How long Prometheus or Icinga may take to show what a test waits for:
/// far above the few seconds it takes, so only a real failure trips it.
const WAIT: Duration = Duration::from_secs(90);

/// A tool on `PATH` (or in /usr/sbin, where Debian puts icinga2), or `None`
/// after saying why the test is skipped; under `CI=true` a missing tool
/// panics instead.
fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        let msg = format!("{name} (Debian package {package}) not found on PATH");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}; CI=true, so this fails instead of skipping");
        }
        eprintln!("skipping: {msg}");
    }
    found
}

/// Runs a command to completion (killed after a minute) with a scrubbed
/// environment: whether it succeeded, and its stdout and stderr together.
fn run(cmd: &mut Command) -> (bool, String) {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let out = read_all(child.stdout.take().unwrap());
    let err = read_all(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{shown} still running after a minute; killed it");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = out.join().unwrap_or_default() + &err.join().unwrap_or_default();
    (status.success(), text)
}

fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// `text` with each `(from, to, times)` replaced, after asserting `from`
/// occurs exactly `times` times in the shipped file `name`.
fn substitute(name: &str, text: &str, edits: &[(&str, String, usize)]) -> String {
    let mut text = text.to_string();
    for (from, to, times) in edits {
        let found = text.matches(from).count();
        assert_eq!(
            found, *times,
            "{name}: expected {times} × {from:?}, found {found}; update this test with the example"
        );
        text = text.replace(from, to);
    }
    text
}

// ---- real servers and the exporter's inventory ----

/// A server per the article (`plaintext` as given) with room for the
/// connections of two exporters and Icinga probing it at once.
fn start(key: &'static str, plaintext: Plaintext) -> Option<&'static SharedServer> {
    pg::shared(key, || {
        let ca = Ca::root("pg-tls-probe monitoring CA");
        let leaf = ca.server(&["localhost", "127.0.0.1"], Validity::normal());
        let mut spec = ServerSpec::article(ServerTls {
            cert_chain_pem: leaf.cert_pem,
            key_pem: leaf.key_pem,
            ca_pem: ca.cert_pem.clone(),
        })
        .conf("max_connections = 200");
        spec.plaintext = plaintext;
        let server = Server::start(&spec)?;
        let root = server.client_file("root.crt", &ca.cert_pem);
        Some((server, root))
    })
}

/// The article's setup: every check OK.
fn article() -> Option<&'static SharedServer> {
    start("monitoring-article", Plaintext::Reject)
}

/// `host ... scram-sha-256` instead of `reject`: plaintext reaches
/// authentication, a CRITICAL verdict.
fn plaintext_open() -> Option<&'static SharedServer> {
    start("monitoring-plaintext", Plaintext::Scram)
}

/// A service file and a password file in `dir`: one group per
/// `(name, server)`, verify-full against the server's CA.
struct Inventory {
    service_file: PathBuf,
    pass_file: PathBuf,
}

impl Inventory {
    fn write(dir: &Path, groups: &[(&str, &SharedServer)]) -> Inventory {
        let mut services = String::new();
        let mut passwords = String::new();
        for (name, (server, root)) in groups {
            services += &format!(
                "[{name}]\nhost=localhost\nport={}\nuser={}\ndbname=postgres\nsslmode=verify-full\nsslrootcert={}\n\n",
                server.port,
                pg::ROLE,
                root.display()
            );
            let line = format!(
                "localhost:{}:*:{}:{}\n",
                server.port,
                pg::ROLE,
                pg::PASSWORD
            );
            if !passwords.contains(&line) {
                passwords += &line;
            }
        }
        let service_file = dir.join("pg_service.conf");
        let pass_file = dir.join("pgpass");
        fs::write(&service_file, services).unwrap();
        fs::write(&pass_file, passwords).unwrap();
        // libpq (and the probe) ignore a password file others can read.
        fs::set_permissions(&pass_file, fs::Permissions::from_mode(0o600)).unwrap();
        Inventory {
            service_file,
            pass_file,
        }
    }

    /// The only variables an exporter gets besides PATH and HOME.
    fn env(&self) -> [(&'static str, String); 2] {
        [
            ("PGSERVICEFILE", self.service_file.display().to_string()),
            ("PGPASSFILE", self.pass_file.display().to_string()),
        ]
    }
}

// ---- HTTP ----

/// One GET over HTTP/1.0 (so no chunked body): status and body.
fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let limit = Some(Duration::from_secs(30));
    stream.set_read_timeout(limit).map_err(|e| e.to_string())?;
    stream.set_write_timeout(limit).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of headers from {addr}: {raw:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line from {addr}: {head:?}"))?;
    Ok((status, body.to_string()))
}

/// A sample's value in Prometheus text exposition, summed over the series
/// of `name` whose line contains every one of `labels`.
fn sum_samples(exposition: &str, name: &str, labels: &[&str]) -> f64 {
    exposition
        .lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// ---- pg-tls-probe serve ----

/// `pg-tls-probe serve --listen 127.0.0.1:0`, with nothing from the test's
/// environment but PATH, a fresh HOME and the inventory's variables.
struct Exporter {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    _home: tempfile::TempDir,
}

impl Exporter {
    fn start(inventory: &Inventory) -> Exporter {
        let home = tempfile::tempdir().expect("temp HOME");
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .envs(inventory.env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN} serve: {e}"));
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let shared = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                shared.lock().unwrap().push_str(&format!("{line}\n"));
                if let Some(rest) = line.strip_prefix("pg-tls-probe serve: listening on http://") {
                    let _ = tx.send(rest.trim_end_matches('/').parse::<SocketAddr>());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(addr)) => Exporter {
                child,
                addr,
                log,
                _home: home,
            },
            other => {
                let _ = child.kill();
                panic!(
                    "serve did not say where it listens ({other:?})\n--- stderr ---\n{}",
                    log.lock().unwrap()
                );
            }
        }
    }

    /// Its own metrics (`/metrics`).
    fn metrics(&self) -> String {
        match http_get(self.addr, "/metrics") {
            Ok((200, body)) => body,
            other => panic!("GET /metrics: {other:?}\n{}", self.log()),
        }
    }

    fn log(&self) -> String {
        format!(
            "--- serve {} stderr ---\n{}",
            self.addr,
            self.log.lock().unwrap()
        )
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- prometheus ----

/// Debian's prometheus on a free port of 127.0.0.1 with its own data
/// directory, reading `prometheus.yml` (and what it names) from `dir`.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Writes `config` as prometheus.yml beside the shipped rules.yml and a
    /// file_sd target file listing `targets`, starts prometheus and waits
    /// until it is ready.
    fn start(bin: &Path, config: &str, targets: &[&str]) -> Prometheus {
        let dir = tempfile::tempdir().expect("prometheus dir");
        fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        fs::copy(
            Path::new(EXAMPLES).join("prometheus/rules.yml"),
            dir.path().join("rules.yml"),
        )
        .unwrap();
        fs::create_dir(dir.path().join("targets")).unwrap();
        let list: String = targets.iter().map(|t| format!("    - {t}\n")).collect();
        fs::write(
            dir.path().join("targets/postgres.yml"),
            format!("- targets:\n{list}"),
        )
        .unwrap();
        let log = fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", pg::free_port()).parse().unwrap();
        let child = Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut prometheus = Prometheus { child, addr, dir };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok((200, _)) = http_get(addr, "/-/ready") {
                return prometheus;
            }
            if let Ok(Some(status)) = prometheus.child.try_wait() {
                panic!("prometheus exited ({status})\n{}", prometheus.log());
            }
            if Instant::now() > deadline {
                panic!("prometheus not ready after {WAIT:?}\n{}", prometheus.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        let log = fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        format!(
            "--- prometheus log (last 40 lines) ---\n{}",
            lines[lines.len().saturating_sub(40)..].join("\n")
        )
    }

    /// GET an API path; its `data`, or why not.
    fn api(&self, path: &str) -> Result<Value, String> {
        let (status, body) = http_get(self.addr, path)?;
        let json: Value =
            serde_json::from_str(&body).map_err(|e| format!("{path}: {e}: {body}"))?;
        if status != 200 || json["status"] != "success" {
            return Err(format!("{path}: HTTP {status}: {body}"));
        }
        Ok(json["data"].clone())
    }

    /// An instant query's result vector.
    fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let q = percent_encoding::utf8_percent_encode(promql, percent_encoding::NON_ALPHANUMERIC);
        let data = self.api(&format!("/api/v1/query?query={q}"))?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// Polls `promql` until `done` holds of its result (or [`WAIT`] passes,
    /// then panics with the last answer and every log in `context`).
    #[track_caller]
    fn wait_for(
        &self,
        promql: &str,
        done: impl Fn(&[Value]) -> bool,
        context: &dyn Fn() -> String,
    ) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let answer = self.query(promql);
            if let Ok(result) = &answer {
                if done(result) {
                    return result.clone();
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "after {WAIT:?}, {promql}\nstill answers {answer:?}\n{}\n{}",
                    self.log(),
                    context()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A result vector as label value → sample value.
fn by_label(result: &[Value], label: &str) -> BTreeMap<String, String> {
    result
        .iter()
        .map(|r| {
            (
                r["metric"][label].as_str().unwrap_or_default().to_string(),
                r["value"][1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The shipped example with test intervals: scrapes every 2 s with a 2 s
/// timeout (the exporter then allows each probe 1.5 s), rules every second.
fn example_config(name: &str, scrape_timeouts: usize, addresses: &[(&str, String)]) -> String {
    let text = fs::read_to_string(Path::new(EXAMPLES).join("prometheus").join(name)).unwrap();
    let mut edits = vec![
        ("scrape_interval: 60s", "scrape_interval: 2s".to_string(), 1),
        (
            "evaluation_interval: 60s",
            "evaluation_interval: 1s".to_string(),
            1,
        ),
        (
            "scrape_timeout: 12s",
            "scrape_timeout: 2s".to_string(),
            scrape_timeouts,
        ),
    ];
    // Each exporter is named twice: its probe job's __address__ and the
    // exporter job's own target.
    edits.extend(addresses.iter().map(|(from, to)| (*from, to.clone(), 2)));
    substitute(name, &text, &edits)
}

// ---- the tests: Prometheus ----

/// promtool accepts both configurations (with the rules and the file_sd
/// file they name) and the rules, and the rules' unit tests pass; each
/// alert has a firing and a silent case there.
#[test]
fn promtool_checks_the_examples_and_the_rule_tests_pass() {
    let Some(promtool) = tool("promtool", "prometheus") else {
        return;
    };
    let dir = Path::new(EXAMPLES).join("prometheus");
    for args in [
        ["check", "config", "prometheus.yml"],
        ["check", "config", "prometheus-sharded.yml"],
        ["check", "rules", "rules.yml"],
        ["test", "rules", "rules.test.yml"],
    ] {
        let (ok, out) = run(Command::new(&promtool).args(args).current_dir(&dir));
        assert!(
            ok && out.contains("SUCCESS") && !out.contains("FAILED"),
            "promtool {args:?} in {}:\n{out}",
            dir.display()
        );
    }
    let rules = fs::read_to_string(dir.join("rules.yml")).unwrap();
    let tests = fs::read_to_string(dir.join("rules.test.yml")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 6, "{alerts:?}");
    for alert in alerts {
        // One block per evaluation: its alertname, then its expectations.
        let cases: Vec<&str> = tests
            .split(&format!("alertname: {alert}\n"))
            .skip(1)
            .collect();
        let silent = cases
            .iter()
            .filter(|c| c.trim_start().starts_with("exp_alerts: []"))
            .count();
        assert!(
            silent >= 1 && cases.len() > silent,
            "{alert}: rules.test.yml needs a firing and a silent case ({} silent of {})",
            silent,
            cases.len()
        );
    }
}

/// The example's relabelling against a real exporter and real servers:
/// Prometheus stores probe_success 1 for the article's server and 0 for one
/// whose pg_hba.conf lets plaintext reach authentication (with the reason
/// in pgtls_plaintext_rejected and pgtls_check_status), puts the alert for
/// it in ALERTS, and scrapes the exporter's own metrics.
#[test]
fn prometheus_scrapes_the_exporter_through_the_example_config() {
    let Some(bin) = tool("prometheus", "prometheus") else {
        return;
    };
    let (Some(good), Some(open)) = (article(), plaintext_open()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let inventory = Inventory::write(dir.path(), &[("good", good), ("plaintext-open", open)]);
    let exporter = Exporter::start(&inventory);
    let config = example_config(
        "prometheus.yml",
        1,
        &[("127.0.0.1:10543", exporter.addr.to_string())],
    );
    let prometheus = Prometheus::start(&bin, &config, &["good", "plaintext-open"]);
    let context = || exporter.log() + &good.0.log() + &open.0.log();

    // One scrape's samples: the verdict, plaintext refused, OK overall.
    prometheus.wait_for(
        r#"probe_success{job="pgtls", instance="good"} == 1
           and on (instance) pgtls_plaintext_rejected == 1
           and on (instance) pgtls_status == 0"#,
        |r| r.len() == 1,
        &context,
    );
    prometheus.wait_for(
        r#"probe_success{job="pgtls", instance="plaintext-open"} == 0
           and on (instance) pgtls_plaintext_rejected == 0
           and on (instance) pgtls_check_status{check="plaintext"} == 2"#,
        |r| r.len() == 1,
        &context,
    );
    // The rule matched real metrics (pending: its `for` is minutes).
    prometheus.wait_for(
        r#"ALERTS{alertname="PostgresTLSPlaintextAccepted"}"#,
        |r| r.len() == 1 && r[0]["metric"]["instance"] == "plaintext-open",
        &context,
    );
    // The exporter job: the exporter's own counters, by result.
    prometheus.wait_for(
        r#"sum by (result) (pgtls_exporter_probes_total{job="pgtls-exporter"}) > 0"#,
        |r| {
            let m = by_label(r, "result");
            m.contains_key("ok") && m.contains_key("critical")
        },
        &context,
    );
    let quiet = prometheus
        .query(
            r#"ALERTS{instance="good", alertname=~"PostgresTLS(Plaintext|Certificate|Legacy).*"}"#,
        )
        .unwrap();
    assert!(quiet.is_empty(), "{quiet:?}");
}

/// The sharded example with two exporters: every target is scraped by
/// exactly one job (hence one exporter), each exporter takes a share,
/// and every target's probe succeeds.
#[test]
fn hashmod_shards_each_target_to_exactly_one_exporter() {
    let Some(bin) = tool("prometheus", "prometheus") else {
        return;
    };
    let Some(good) = article() else {
        return;
    };
    // Names spread over both shards (hashmod is deterministic: md5 of the
    // name, modulus 2).
    let names = [
        "orders-eu",
        "orders-us",
        "billing-1",
        "billing-2",
        "search",
        "ledger",
        "auth",
        "reports",
    ];
    let dir = tempfile::tempdir().unwrap();
    let groups: Vec<(&str, &SharedServer)> = names.iter().map(|n| (*n, good)).collect();
    let inventory = Inventory::write(dir.path(), &groups);
    let exporters = [Exporter::start(&inventory), Exporter::start(&inventory)];
    let config = example_config(
        "prometheus-sharded.yml",
        2,
        &[
            (
                "pgtls-exporter-0.internal:10543",
                exporters[0].addr.to_string(),
            ),
            (
                "pgtls-exporter-1.internal:10543",
                exporters[1].addr.to_string(),
            ),
        ],
    );
    let prometheus = Prometheus::start(&bin, &config, &names);
    let context = || exporters[0].log() + &exporters[1].log() + &good.0.log();

    // Every target probed, and OK.
    let all = names.len().to_string();
    prometheus.wait_for(
        r#"count(probe_success{job=~"pgtls-[01]"} == 1)"#,
        |r| r.len() == 1 && r[0]["value"][1] == all.as_str(),
        &context,
    );

    // Prometheus's own targets: each name once, at its job's exporter.
    let targets = prometheus.api("/api/v1/targets?state=active").unwrap();
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut per_shard = [0; 2];
    for t in targets["activeTargets"].as_array().unwrap() {
        let pool = t["scrapePool"].as_str().unwrap_or_default();
        let shard = match pool {
            "pgtls-0" => 0,
            "pgtls-1" => 1,
            _ => continue,
        };
        let instance = t["labels"]["instance"].as_str().unwrap().to_string();
        let url = t["scrapeUrl"].as_str().unwrap_or_default();
        let want = format!("http://{}/probe?", exporters[shard].addr);
        assert!(
            url.starts_with(&want) && url.contains(&format!("target={instance}")),
            "{pool}: {url} is not {want}...target={instance}"
        );
        per_shard[shard] += 1;
        seen.entry(instance).or_default().push(pool.to_string());
    }
    assert_eq!(
        seen.keys().map(String::as_str).collect::<Vec<_>>(),
        {
            let mut sorted = names.to_vec();
            sorted.sort_unstable();
            sorted
        },
        "targets: {targets}"
    );
    assert!(
        seen.values().all(|pools| pools.len() == 1),
        "a target in both shards: {seen:?}"
    );
    assert!(
        per_shard.iter().all(|n| *n > 0),
        "one shard has no targets: {seen:?}"
    );

    // Over the whole run, no target was ever scraped by both jobs.
    let history = prometheus
        .query(r#"count by (instance) (last_over_time(up{job=~"pgtls-[01]"}[1h]))"#)
        .unwrap();
    let counts = by_label(&history, "instance");
    assert_eq!(counts.len(), names.len(), "{history:?}");
    assert!(counts.values().all(|c| c == "1"), "{counts:?}");

    // Each exporter did its share of the probing, and nothing it was asked
    // for was unknown to it.
    for (shard, exporter) in exporters.iter().enumerate() {
        let own = exporter.metrics();
        let probes = sum_samples(&own, "pgtls_exporter_probes_total", &[]);
        let rejected = sum_samples(&own, "pgtls_exporter_scrapes_rejected_total", &[]);
        assert!(
            probes >= per_shard[shard] as f64 && rejected == 0.0,
            "exporter {shard}: {probes} probes, {rejected} rejected\n{own}"
        );
    }
}

// ---- the tests: Icinga 2 ----

/// An Icinga 2 configuration in a temporary directory: the ITL, templates
/// as a default installation's conf.d/templates.conf has them (checks
/// every second here), the shipped CheckCommand and apply rule, and
/// `objects`; paths and the user are the test's own.
struct Icinga {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Icinga {
    fn new(bin: PathBuf, objects: &str) -> Icinga {
        let dir = tempfile::tempdir().expect("icinga2 dir");
        for sub in ["data", "log", "cache", "spool", "run", "plugins"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        // The CheckCommand runs PluginDir + "/check_pg_tls", as packaged.
        std::os::unix::fs::symlink(BIN, dir.path().join("plugins/check_pg_tls")).unwrap();
        let example = |f: &str| Path::new(EXAMPLES).join("icinga2").join(f);
        let conf = format!(
            r#"const PluginDir = "{plugins}"
const ManubulonPluginDir = "/usr/lib/nagios/plugins"
const PluginContribDir = "/usr/lib/nagios/plugins"
include <itl>
include <plugins>
include <plugins-contrib>
template Host "generic-host" {{
  check_command = "dummy"
}}
template Service "generic-service" {{
  check_interval = 1s
  retry_interval = 1s
  max_check_attempts = 1
}}
include "{command}"
include "{services}"
{objects}
"#,
            plugins = dir.path().join("plugins").display(),
            command = example("pg-tls-probe.conf").display(),
            services = example("services.conf").display(),
        );
        fs::write(dir.path().join("icinga2.conf"), conf).unwrap();
        Icinga { bin, dir }
    }

    /// `icinga2 daemon` with this configuration, its paths in the
    /// temporary directory, running as the current user.
    fn daemon(&self) -> Command {
        let id = |flag: &str| {
            let out = Command::new("id").arg(flag).output().expect("id");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let d = self.dir.path();
        let mut cmd = Command::new(&self.bin);
        cmd.arg("daemon")
            .arg("-c")
            .arg(d.join("icinga2.conf"))
            .arg(format!("-DRunAsUser={}", id("-un")))
            .arg(format!("-DRunAsGroup={}", id("-gn")));
        for (constant, sub) in [
            ("DataDir", "data"),
            ("LogDir", "log"),
            ("CacheDir", "cache"),
            ("SpoolDir", "spool"),
            ("InitRunDir", "run"),
        ] {
            cmd.arg(format!("-D{constant}={}", d.join(sub).display()));
        }
        cmd
    }

    /// The last check result of every service in the state file the
    /// daemon writes when it stops (netstrings of JSON objects).
    fn results(&self) -> BTreeMap<String, Value> {
        let state = fs::read(self.dir.path().join("data/icinga2.state")).unwrap_or_default();
        let mut rest = &state[..];
        let mut results = BTreeMap::new();
        while let Some(colon) = rest.iter().position(|b| *b == b':') {
            let len: usize = std::str::from_utf8(&rest[..colon])
                .ok()
                .and_then(|s| s.parse().ok())
                .expect("netstring length");
            let object: Value =
                serde_json::from_slice(&rest[colon + 1..colon + 1 + len]).expect("a JSON object");
            rest = &rest[colon + 1 + len + 1..];
            if object["type"] == "Service" {
                let result = object["update"]["last_check_result"].clone();
                results.insert(object["name"].as_str().unwrap().to_string(), result);
            }
        }
        results
    }
}

/// `icinga2 daemon -C` accepts the shipped CheckCommand, apply rule and
/// example hosts with the ITL, and the apply rule makes one service per
/// entry of the hosts' `postgres_tls` dictionaries.
#[test]
fn icinga2_validates_the_example() {
    let Some(bin) = tool("icinga2", "icinga2-bin") else {
        return;
    };
    let hosts = Path::new(EXAMPLES).join("icinga2/hosts.conf");
    let icinga = Icinga::new(bin, &format!("include \"{}\"\n", hosts.display()));
    let (ok, out) = run(icinga.daemon().arg("-C"));
    assert!(ok, "icinga2 daemon -C:\n{out}");
    for want in [
        "Instantiated 2 Hosts.",
        "Instantiated 3 Services.",
        "Finished validating the configuration file(s).",
    ] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
}

/// A real Icinga 2 daemon runs the CheckCommand against real servers: the
/// article's (OK, exit 0), one that lets plaintext reach authentication
/// (CRITICAL, exit 2), and the article's again through a service of a
/// service file. The command lines are exactly what the vars say, and
/// none carries the password.
#[test]
fn icinga2_runs_the_check_command_against_real_servers() {
    let Some(bin) = tool("icinga2", "icinga2-bin") else {
        return;
    };
    let (Some(good), Some(open)) = (article(), plaintext_open()) else {
        return;
    };
    let files = tempfile::tempdir().unwrap();
    let inventory = Inventory::write(files.path(), &[("good", good)]);
    let objects = format!(
        r#"object Host "localhost" {{
  import "generic-host"
  address = "127.0.0.1"
  vars.postgres_dbuser = "{role}"
  vars.postgres_dbname = "postgres"
  vars.postgres_dbpass = "{password}"
  vars.postgres_sslrootcert = "{root}"
  vars.postgres_tls["article"] = {{ postgres_port = {good_port} }}
  vars.postgres_tls["plaintext"] = {{
    postgres_port = {open_port}
    postgres_sslrootcert = "{open_root}"
    pg_tls_probe_scan = "none"
  }}
}}
object Host "by-service" {{
  import "generic-host"
  address = "192.0.2.1"
  vars.postgres_tls["good"] = {{
    postgres_dbservice = "good"
    postgres_servicefile = "{service_file}"
    postgres_passfile = "{pass_file}"
  }}
}}
"#,
        role = pg::ROLE,
        password = pg::PASSWORD,
        root = good.1.display(),
        good_port = good.0.port,
        open_port = open.0.port,
        open_root = open.1.display(),
        service_file = inventory.service_file.display(),
        pass_file = inventory.pass_file.display(),
    );
    let icinga = Icinga::new(bin, &objects);
    let debug_log = icinga.dir.path().join("log/debug.log");
    fs::write(
        icinga.dir.path().join("debug.conf"),
        format!(
            "object CheckerComponent \"checker\" {{ }}\nobject FileLogger \"debug\" {{ path = \"{}\"; severity = \"notice\" }}\n",
            debug_log.display()
        ),
    )
    .unwrap();
    let conf = icinga.dir.path().join("icinga2.conf");
    let mut text = fs::read_to_string(&conf).unwrap();
    text += &format!(
        "include \"{}\"\n",
        icinga.dir.path().join("debug.conf").display()
    );
    fs::write(&conf, text).unwrap();

    let log = fs::File::create(icinga.dir.path().join("log/stdout.log")).unwrap();
    let mut child = icinga
        .daemon()
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", icinga.dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        // Its own process group, so that a hung daemon (it forks a worker
        // and a spawn helper) can be killed whole.
        .process_group(0)
        .spawn()
        .expect("start icinga2 daemon");
    let umbrella = child.id().to_string();
    let kill_all = || {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{umbrella}")])
            .status();
    };
    let logs = || {
        let read = |f: &str| fs::read_to_string(icinga.dir.path().join(f)).unwrap_or_default();
        format!(
            "--- icinga2 stdout ---\n{}\n--- notice log (probe lines) ---\n{}",
            read("log/stdout.log"),
            read("log/debug.log")
                .lines()
                .filter(|l| l.contains("pg-tls-probe"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    };

    // Each of the three services has run its command once.
    let finished = |port_or_service: &str| {
        fs::read_to_string(&debug_log)
            .unwrap_or_default()
            .lines()
            .any(|l| l.contains("terminated with exit code") && l.contains(port_or_service))
    };
    let marks = [
        format!("'{}'", good.0.port),
        format!("'{}'", open.0.port),
        "'service=good'".to_string(),
    ];
    let deadline = Instant::now() + WAIT;
    while !marks.iter().all(|m| finished(m)) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("icinga2 exited ({status})\n{}", logs());
        }
        if Instant::now() > deadline {
            kill_all();
            let _ = child.wait();
            panic!("not every service was checked after {WAIT:?}\n{}", logs());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SIGTERM to the umbrella process only: it forwards it to its worker,
    // which writes the state file and exits. (The worker ignores SIGTERM
    // from anyone else, and a signal to the whole group also kills the
    // spawn helper under it, which can leave the worker hanging.)
    let _ = Command::new("kill").args(["-TERM", &umbrella]).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            kill_all();
            let _ = child.wait();
            panic!("icinga2 did not stop on SIGTERM\n{}", logs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Anything left of the group (a check still running).
    kill_all();

    let results = icinga.results();
    let result = |name: &str| -> &Value {
        results
            .get(name)
            .unwrap_or_else(|| panic!("no service {name:?} in {:?}\n{}", results.keys(), logs()))
    };
    let command = |r: &Value| -> Vec<String> {
        r["command"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let plugin = icinga
        .dir
        .path()
        .join("plugins/check_pg_tls")
        .display()
        .to_string();
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cases = [
        (
            "localhost!pg-tls article",
            0,
            "PGTLS OK",
            strings(&[
                &plugin,
                "--dbname",
                "postgres",
                "--host",
                "localhost",
                "--port",
                &good.0.port.to_string(),
                "--username",
                pg::ROLE,
                "hostaddr=127.0.0.1",
            ]),
        ),
        (
            "localhost!pg-tls plaintext",
            2,
            "PGTLS CRITICAL",
            strings(&[
                &plugin,
                "--dbname",
                "postgres",
                "--host",
                "localhost",
                "--port",
                &open.0.port.to_string(),
                "--scan",
                "none",
                "--username",
                pg::ROLE,
                "hostaddr=127.0.0.1",
            ]),
        ),
        (
            "by-service!pg-tls good",
            0,
            "PGTLS OK",
            strings(&[&plugin, "service=good"]),
        ),
    ];
    for (name, exit, first, argv) in cases {
        let r = result(name);
        let output = r["output"].as_str().unwrap_or_default();
        assert!(
            r["exit_status"] == exit && output.starts_with(first),
            "{name}: expected exit {exit} and {first:?}, got {r}\n{}",
            logs()
        );
        assert_eq!(command(r), argv, "{name}: the command line Icinga built");
        assert!(
            !r.to_string().contains(pg::PASSWORD),
            "{name}: the password shows in the check result: {r}"
        );
    }
    let why = result("localhost!pg-tls plaintext")["output"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(why.contains("plaintext"), "{why}");
}
