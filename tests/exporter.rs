//! `serve`: the blackbox multi-target pattern against real servers (the
//! verdict a scrape reports is the command line's), only inventory targets
//! probed, Prometheus's scrape timeout honoured, probes in flight capped,
//! malformed and slow requests refused, SIGTERM letting scrapes finish.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::fleet::{article, group, plaintext_allowed};
use crate::util::fake::{Behaviour, Fake};
use crate::util::pg;
use crate::util::pki::Ca;
use crate::util::serve::Exporter;
use crate::util::Probe;

/// A service file in `dir` whose groups point at `port`, where a peer
/// accepts TCP and says nothing (with a CA file, so the probe gets as far
/// as connecting).
fn silent_groups(dir: &Path, names: &[&str], port: u16) -> String {
    let root = dir.join("root.crt");
    std::fs::write(&root, Ca::root("pg-tls-probe silent CA").cert_pem).unwrap();
    let groups: String = names
        .iter()
        .map(|n| {
            format!(
                "[{n}]\nhost=127.0.0.1\nport={port}\nuser=probe\ndbname=postgres\nsslrootcert={}\n\n",
                root.display()
            )
        })
        .collect();
    service_file(dir, &groups)
}

fn service_file(dir: &Path, text: &str) -> String {
    let path = dir.join("pg_service.conf");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A scrape reports what the command line reports for the same service:
/// OK with the plaintext refused on the article's server, CRITICAL with
/// plaintext reaching authentication on the other; the password comes from
/// the password file; a module of --config chooses the checks.
#[test]
fn a_scrape_reports_the_command_lines_verdict() {
    let (Some((good, root)), Some((plain, plain_root))) = (article(), plaintext_allowed()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let services = service_file(
        dir.path(),
        &format!(
            "{}\n{}\n",
            group("good", good, root, ""),
            group("plain", plain, plain_root, "")
        ),
    );
    let passfile = dir.path().join("pgpass");
    std::fs::write(
        &passfile,
        format!(
            "localhost:{}:*:{role}:{pw}\nlocalhost:{}:*:{role}:{pw}\n",
            good.port,
            plain.port,
            role = pg::ROLE,
            pw = pg::PASSWORD
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&passfile).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&passfile, perms).unwrap();
    let passfile = passfile.display().to_string();
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, "[modules.quick]\nscan = \"none\"\n").unwrap();
    let env = [
        ("PGSERVICEFILE", services.clone()),
        ("PGPASSFILE", passfile.clone()),
    ];
    let exporter = Exporter::start(&env, &["--config", &config.display().to_string()]);

    let cli = Probe::new()
        .env("PGSERVICEFILE", services.clone())
        .env("PGPASSFILE", passfile.clone())
        .env("PGSERVICE", "good")
        .run();
    cli.expect_exit(0);
    let days = cli.at("/certificate/days_left").as_f64().unwrap();
    let scraped = exporter.get("/probe?target=good", &[]);
    scraped
        .expect_status(200)
        .expect("probe_success", 1.0)
        .expect("pgtls_status", 0.0)
        .expect("pgtls_plaintext_rejected", 1.0)
        .expect("pgtls_check_status{check=\"certificate\"}", 0.0)
        .expect("pgtls_cert_days_left", days)
        .expect("probe_tls_version_info{version=\"TLS 1.3\"}", 1.0)
        .expect("pgtls_protocol_accepted{version=\"TLSv1.1\"}", 0.0)
        .expect("pgtls_protocol_accepted{version=\"TLSv1.2\"}", 1.0);
    assert!(
        scraped.head.contains("text/plain; version=0.0.4"),
        "{}",
        scraped.head
    );

    let cli = Probe::new()
        .env("PGSERVICEFILE", services.clone())
        .env("PGPASSFILE", passfile)
        .env("PGSERVICE", "plain")
        .run();
    cli.expect_exit(2).expect_check("plaintext", "CRITICAL");
    exporter
        .get("/probe?target=plain", &[])
        .expect_status(200)
        .expect("probe_success", 0.0)
        .expect("pgtls_status", 2.0)
        .expect("pgtls_check_status{check=\"plaintext\"}", 2.0)
        .expect("pgtls_plaintext_rejected", 0.0);

    let quick = exporter.get("/probe?target=good&module=quick", &[]);
    quick.expect_status(200).expect("probe_success", 1.0);
    assert!(
        !quick.body.contains("pgtls_protocol_accepted"),
        "{}",
        quick.body
    );

    let own = exporter.get("/metrics", &[]);
    own.expect(
        "pgtls_exporter_probes_total{module=\"default\",result=\"ok\"}",
        1.0,
    )
    .expect(
        "pgtls_exporter_probes_total{module=\"default\",result=\"critical\"}",
        1.0,
    )
    .expect(
        "pgtls_exporter_probes_total{module=\"quick\",result=\"ok\"}",
        1.0,
    )
    .expect(
        "pgtls_exporter_probe_duration_seconds_count{module=\"default\"}",
        2.0,
    );
    assert!(!exporter.stderr().contains(pg::PASSWORD));
}

/// No relay: a target that is not a service of the inventory or a target
/// of --config is a 404 and nothing connects anywhere, whether it is
/// spelled as a conninfo, a URI or host:port; an unknown module is a 400.
#[test]
fn only_inventory_targets_are_probed() {
    let mut peer = Fake::start(Behaviour::Silent);
    let dir = tempfile::tempdir().unwrap();
    let services = silent_groups(dir.path(), &["known"], peer.port);
    let exporter = Exporter::start(&[("PGSERVICEFILE", services)], &[]);
    let port = peer.port;
    for target in [
        format!("host%3D127.0.0.1%20port%3D{port}"),
        format!("postgresql%3A%2F%2F127.0.0.1%3A{port}%2Fpostgres"),
        format!("127.0.0.1%3A{port}"),
        "service%3Dknown".to_string(),
        "Known".to_string(),
    ] {
        let r = exporter.get(&format!("/probe?target={target}"), &[]);
        r.expect_status(404);
        assert!(r.body.contains("unknown target"), "{}", r.body);
    }
    let r = exporter.get("/probe?target=known&module=nope", &[]);
    r.expect_status(400);
    assert!(r.body.contains("unknown module \"nope\""), "{}", r.body);
    exporter
        .get("/metrics", &[])
        .expect(
            "pgtls_exporter_scrapes_rejected_total{reason=\"unknown_target\"}",
            5.0,
        )
        .expect(
            "pgtls_exporter_scrapes_rejected_total{reason=\"unknown_module\"}",
            1.0,
        )
        .expect(
            "pgtls_exporter_probes_total{module=\"default\",result=\"ok\"}",
            0.0,
        );
    drop(exporter);
    assert_eq!(
        peer.received(),
        Vec::<Vec<u8>>::new(),
        "something connected"
    );
}

/// A password in --config is refused before listening, without echoing it.
#[test]
fn a_password_in_the_configuration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        "[targets.t]\nconninfo = \"host=db password=hunter2-secret\"\n",
    )
    .unwrap();
    let e = Exporter::try_start(&[], &["--config", &config.display().to_string()])
        .err()
        .expect("serve started with a password in its configuration");
    assert!(e.contains("exit status: 2"), "{e}");
    assert!(e.contains("no password in the configuration file"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

/// Prometheus's X-Prometheus-Scrape-Timeout-Seconds minus the offset
/// bounds the probe when it is shorter than the module's timeout, so the
/// answer (probe_success 0) arrives before Prometheus gives up; a header
/// that is no number of seconds is a 400.
#[test]
fn the_scrape_timeout_header_bounds_the_probe() {
    let peer = Fake::start(Behaviour::Silent);
    let dir = tempfile::tempdir().unwrap();
    let services = silent_groups(dir.path(), &["silent"], peer.port);
    let exporter = Exporter::start(
        &[("PGSERVICEFILE", services)],
        &["--timeout", "30", "--timeout-offset", "0.5"],
    );
    let started = Instant::now();
    let r = exporter.get(
        "/probe?target=silent",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
    );
    let took = started.elapsed();
    r.expect_status(200).expect("probe_success", 0.0);
    assert!(
        took < Duration::from_millis(1500),
        "answered after {took:?}"
    );
    let probed = r.value("probe_duration_seconds").unwrap();
    assert!((0.9..1.5).contains(&probed), "probe took {probed} s");
    for bad in ["soon", "0", "-1", "NaN", "0.2"] {
        exporter
            .get(
                "/probe?target=silent",
                &[("X-Prometheus-Scrape-Timeout-Seconds", bad)],
            )
            .expect_status(400);
    }
}

/// Scrapes of different targets run side by side (the in-flight gauge
/// reaches 2 with two silent targets); one more than --max-in-flight gets
/// 503 at once, counted; the two in flight still answer.
#[test]
fn probes_beyond_the_cap_get_503_at_once() {
    let peer = Fake::start(Behaviour::Silent);
    let dir = tempfile::tempdir().unwrap();
    let services = silent_groups(dir.path(), &["a", "b", "c"], peer.port);
    let exporter = Exporter::start(
        &[("PGSERVICEFILE", services)],
        &["--max-in-flight", "2", "--timeout", "4"],
    );
    let addr = exporter.addr;
    let scrape = |target: &'static str| {
        std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            write!(
                s,
                "GET /probe?target={target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut reply = String::new();
            let _ = s.read_to_string(&mut reply);
            reply
        })
    };
    let (a, b) = (scrape("a"), scrape("b"));
    exporter.wait_for("pgtls_exporter_probes_in_flight", 2.0);
    let started = Instant::now();
    let r = exporter.get("/probe?target=c", &[]);
    r.expect_status(503);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "503 took {:?}",
        started.elapsed()
    );
    exporter.expect_own(
        "pgtls_exporter_scrapes_rejected_total{reason=\"in_flight\"}",
        1.0,
    );
    for reply in [a.join().unwrap(), b.join().unwrap()] {
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.contains("\nprobe_success 0"), "{reply}");
    }
    exporter.expect_own("pgtls_exporter_probes_in_flight", 0.0);
}

/// Malformed requests get a 4xx (or a close) and never stop the exporter:
/// garbage, an oversized head, other methods, bad encodings, unknown paths;
/// a client that stops mid-head is cut off after the header timeout.
#[test]
fn malformed_and_slow_requests_are_refused_without_harm() {
    let exporter = Exporter::start(&[], &[]);
    let huge = format!(
        "GET /probe?target=x HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let long_target = format!(
        "GET /probe?target={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a".repeat(300)
    );
    for (request, want) in [
        (&b"\x00\x01\x02 garbage\r\n\r\n"[..], &[400u16][..]),
        (huge.as_bytes(), &[431]),
        (
            b"POST /probe?target=x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            &[405],
        ),
        (
            b"GET /probe?target=%ff%fe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            &[400],
        ),
        (
            b"GET /probe?target=a%0Ab HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            &[400],
        ),
        (long_target.as_bytes(), &[400]),
        (
            b"GET /probe?target=a&target=b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            &[400],
        ),
        (
            b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            &[404, 400],
        ),
        (b"GET /metrics HTTP/1.0\r\n\r\n", &[200]),
    ] {
        let r = exporter.raw(request);
        assert!(
            want.contains(&r.status),
            "{:?}: {} {}",
            String::from_utf8_lossy(&request[..request.len().min(60)]),
            r.head,
            r.body
        );
    }
    // A head that never ends and a connection that never speaks: both are
    // closed after HEADER_TIMEOUT (5 s), side by side.
    let started = Instant::now();
    let mut slow = exporter.connect();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut idle = exporter.connect();
    let idle = std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = idle.read_to_end(&mut rest);
        started.elapsed()
    });
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    for (what, took) in [
        ("slow head", started.elapsed()),
        ("idle", idle.join().unwrap()),
    ] {
        assert!(
            (Duration::from_secs(4)..Duration::from_secs(8)).contains(&took),
            "{what} connection closed after {took:?}"
        );
    }
    // Still serving, and the refusals were counted.
    exporter.expect_own(
        "pgtls_exporter_scrapes_rejected_total{reason=\"bad_request\"}",
        4.0,
    );
}

/// SIGTERM stops accepting and lets the scrape under way answer; the
/// process then exits 0 within the module timeout plus a second.
#[test]
fn sigterm_lets_the_scrape_under_way_finish() {
    let peer = Fake::start(Behaviour::Silent);
    let dir = tempfile::tempdir().unwrap();
    let services = silent_groups(dir.path(), &["silent"], peer.port);
    let mut exporter = Exporter::start(&[("PGSERVICEFILE", services)], &["--timeout", "2"]);
    let mut scrape = exporter.connect();
    scrape
        .write_all(b"GET /probe?target=silent HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    exporter.wait_for("pgtls_exporter_probes_in_flight", 1.0);
    let (status, took) = exporter.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status}; stderr:\n{}", exporter.stderr());
    assert!(
        took < Duration::from_secs(3),
        "exited {took:?} after SIGTERM"
    );
    let mut reply = String::new();
    let _ = scrape.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("\nprobe_success 0"), "{reply}");
    assert!(std::net::TcpStream::connect(exporter.addr).is_err());
}
