//! `--format junit` from real runs: a single target and a fleet, each
//! document validated with xmllint against the vendored junit-10.xsd
//! (tests/fixtures/junit/), and the verdicts where CI tools look for them.

use std::path::Path;
use std::process::Command;

use crate::fleet::{article, group, plaintext_allowed};
use crate::util::Probe;

/// Validates `xml` against junit-10.xsd; false (after saying why) when
/// xmllint is missing, a failure under `CI=true`.
#[track_caller]
fn valid(xml: &str, dir: &Path) -> bool {
    if Command::new("xmllint").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "xmllint missing (apt-get install libxml2-utils)"
        );
        eprintln!("skipping schema validation: no xmllint");
        return false;
    }
    let file = dir.join("report.xml");
    std::fs::write(&file, xml).unwrap();
    let schema = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/junit/junit-10.xsd"
    );
    let out = Command::new("xmllint")
        .args(["--noout", "--schema", schema])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "not valid against junit-10.xsd: {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

#[test]
fn single_target_is_one_suite_of_passing_checks() {
    let Some((server, root)) = article() else {
        return;
    };
    let out = Probe::server(server, root)
        .format("junit")
        .args(["--scan", "none"])
        .run_raw();
    out.expect_code(0);
    let xml = &out.stdout;
    let dir = tempfile::tempdir().unwrap();
    valid(xml, dir.path());
    let suite = format!("<testsuite name=\"localhost:{}\" ", server.port);
    assert_eq!(xml.matches("<testsuite ").count(), 1, "{xml}");
    assert!(xml.contains(&suite), "{xml}");
    assert!(
        !xml.contains("<failure") && !xml.contains("<error"),
        "{xml}"
    );
    assert!(
        xml.contains("<testcase name=\"plaintext\" ")
            && xml.contains("<skipped message=\"not run: --scan none\"/>"),
        "{xml}"
    );
}

/// A fleet of a good server and one that lets plaintext reach a password:
/// a suite each, the second's plaintext check a failure carrying the
/// reason, exit 2.
#[test]
fn fleet_is_a_suite_per_target_with_the_failure_and_its_reason() {
    let (Some((good, root)), Some((plain, plain_root))) = (article(), plaintext_allowed()) else {
        return;
    };
    let text = [
        group("db-good", good, root, ""),
        group("db-open", plain, plain_root, ""),
    ]
    .join("\n");
    let file = good.client_file("junit-services.conf", &text);
    let out = Probe::new()
        .format("junit")
        .env("PGSERVICEFILE", file.display().to_string())
        .env("PGPASSWORD", crate::util::pg::PASSWORD)
        .args(["--services", "db-*", "--scan", "none"])
        .run_raw();
    out.expect_code(2);
    let xml = &out.stdout;
    let dir = tempfile::tempdir().unwrap();
    valid(xml, dir.path());
    assert!(
        xml.contains("<testsuites name=\"pg-tls-probe\" tests=\"16\" failures=\"1\" errors=\"0\""),
        "{xml}"
    );
    let open = xml.split("<testsuite name=\"db-open\"").nth(1).expect(xml);
    let plaintext = open
        .split("<testcase name=\"plaintext\"")
        .nth(1)
        .expect(xml);
    let case = plaintext.split("</testcase>").next().unwrap();
    assert!(
        case.contains("<failure type=\"CRITICAL\" message=\"plaintext"),
        "{case}"
    );
    let good_suite = xml.split("<testsuite name=\"db-good\"").nth(1).expect(xml);
    assert!(
        good_suite.starts_with(" tests=\"8\" failures=\"0\""),
        "{good_suite}"
    );
}
