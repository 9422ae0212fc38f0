//! Differential suite (issue 14): the probe against libpq itself.
//!
//! One real PostgreSQL serves, in turn, every chain of the corpus
//! (`tests/fixtures/corpus.sh`, made with the openssl CLI), swapped in with
//! `Server::replace_tls` (which checks the reload took). For each case psql
//! (`sslmode=verify-full`, the same sslrootcert and sslcrl) says whether
//! libpq gets in, `openssl verify` at libpq's settings (security level 2 as
//! Debian ships it, the SSL server purpose, CRL_CHECK_ALL with a CRL) says
//! OpenSSL's reason, and the probe must agree with both: the same
//! accept/reject, the problem kind matching OpenSSL's reason. Where the
//! probe's own crypto cannot check what libpq can, it must say UNKNOWN with
//! the limit named, never CRITICAL.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::pg::{Server, ServerSpec, ServerTls};
use crate::util::Probe;

/// What libpq (psql) does with a case, and what the probe must say.
#[derive(Debug, Clone, Copy)]
enum Libpq {
    /// psql gets in; the probe's certificate check is OK.
    Accepts,
    /// psql gets in; the probe cannot check this crypto: UNKNOWN naming the
    /// limit, no CRITICAL.
    AcceptsBeyondProbe,
    /// psql is refused; OpenSSL's verify error, and the probe's problem kind.
    Refuses {
        openssl: &'static str,
        kind: &'static str,
    },
    /// OpenSSL's chain check passes; libpq's own host name check refuses.
    RefusesName,
}

use Libpq::*;

/// The corpus, by directory name, with libpq's verdict as observed with
/// psql 15 / OpenSSL 3.0 on Debian 12 (asserted below, so a different
/// libpq fails loudly rather than moving the goalposts).
const CASES: &[(&str, Libpq)] = &[
    ("good_rsa2048", Accepts),
    (
        "leaf_rsa1024",
        Refuses {
            openssl: "EE certificate key too weak",
            kind: "security_level",
        },
    ),
    (
        "leaf_sha1",
        Refuses {
            openssl: "CA signature digest algorithm too weak",
            kind: "security_level",
        },
    ),
    (
        "leaf_md5",
        Refuses {
            openssl: "CA signature digest algorithm too weak",
            kind: "security_level",
        },
    ),
    (
        "leaf_ecdsa_sha1",
        Refuses {
            openssl: "CA signature digest algorithm too weak",
            kind: "security_level",
        },
    ),
    (
        "intermediate_sha1",
        Refuses {
            openssl: "CA signature digest algorithm too weak",
            kind: "security_level",
        },
    ),
    (
        "leaf_any_eku",
        Refuses {
            openssl: "unsuitable certificate purpose",
            kind: "bad_purpose",
        },
    ),
    (
        "intermediate_any_eku",
        Refuses {
            openssl: "unsuitable certificate purpose",
            kind: "bad_purpose",
        },
    ),
    (
        "intermediate_not_ca",
        Refuses {
            openssl: "invalid CA certificate",
            kind: "not_ca",
        },
    ),
    (
        "path_length_exceeded",
        Refuses {
            openssl: "path length constraint exceeded",
            kind: "path_length_exceeded",
        },
    ),
    (
        "akid_mismatch",
        Refuses {
            openssl: "unable to get local issuer certificate",
            kind: "unknown_issuer",
        },
    ),
    (
        "unknown_ca",
        Refuses {
            openssl: "unable to get local issuer certificate",
            kind: "unknown_issuer",
        },
    ),
    (
        "leaf_expired",
        Refuses {
            openssl: "certificate has expired",
            kind: "expired",
        },
    ),
    ("wrong_name", RefusesName),
    ("chain_20_intermediates", Accepts),
    ("leaf_p384", Accepts),
    ("leaf_ed25519", Accepts),
    ("leaf_rsa_pss_signature", Accepts),
    ("x509_v1_leaf", Accepts),
    ("leaf_p521", AcceptsBeyondProbe),
    ("leaf_ed448", AcceptsBeyondProbe),
    ("leaf_rsa_pss_key", AcceptsBeyondProbe),
    ("leaf_ecdsa_sha512", AcceptsBeyondProbe),
    ("leaf_rsa_pss_max_salt", AcceptsBeyondProbe),
    (
        "crl_revoked_leaf",
        Refuses {
            openssl: "certificate revoked",
            kind: "revoked",
        },
    ),
    ("crl_not_revoked", Accepts),
    (
        "crl_only_root_of_two",
        Refuses {
            openssl: "unable to get certificate CRL",
            kind: "crl",
        },
    ),
    ("crl_both_of_two", Accepts),
];

/// Runs the corpus script into a temp dir; None (skipping) without openssl.
fn corpus() -> Option<tempfile::TempDir> {
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the openssl CLI is missing (CI=true)"
        );
        eprintln!("skipping: no openssl CLI");
        return None;
    }
    let dir = tempfile::tempdir().expect("corpus dir");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/corpus.sh");
    let out = Command::new("sh")
        .arg(script)
        .arg(dir.path())
        .output()
        .expect("run corpus.sh");
    assert!(
        out.status.success(),
        "corpus.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(dir)
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|e| panic!("{}/{name}: {e}", dir.display()))
}

/// OpenSSL's verdict on the case's files, at libpq's settings.
fn openssl_verify(dir: &Path, crl: Option<&Path>) -> String {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args([
        "verify",
        "-auth_level",
        "2",
        "-purpose",
        "sslserver",
        "-CAfile",
        "root.crt",
        "-untrusted",
        "chain.crt",
    ]);
    if let Some(crl) = crl {
        cmd.arg("-CRLfile").arg(crl).arg("-crl_check_all");
    }
    let out = cmd.arg("chain.crt").output().expect("run openssl verify");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// OpenSSL configuration for the server only: security level 0.
const SERVER_OPENSSL_CONF: &str = "openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\n\
    system_default = sys\n[sys]\nCipherString = DEFAULT@SECLEVEL=0\n";

#[test]
fn probe_agrees_with_psql_on_the_corpus() {
    let Some(corpus) = corpus() else { return };
    let first = corpus.path().join("good_rsa2048");
    let tls_of = |dir: &Path| ServerTls {
        cert_chain_pem: read(dir, "chain.crt"),
        key_pem: read(dir, "server.key"),
        ca_pem: read(dir, "root.crt"),
    };
    // The server's own OpenSSL refuses to load a weak key or digest at
    // level 2 (it loads the certificate before ssl_ciphers applies); only
    // the clients are the subject here, so the server runs at level 0.
    let conf = corpus.path().join("openssl-seclevel0.cnf");
    std::fs::write(&conf, SERVER_OPENSSL_CONF).expect("write the server's openssl.cnf");
    std::fs::set_permissions(corpus.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut spec = ServerSpec::article(tls_of(&first));
    spec.env
        .push(("OPENSSL_CONF".into(), conf.display().to_string()));
    let Some(server) = Server::start(&spec) else {
        return;
    };
    let mut disagreements = Vec::new();
    for (name, libpq) in CASES {
        let dir = corpus.path().join(name);
        server.replace_tls(&tls_of(&dir));
        let root = dir.join("root.crt");
        let crl: Option<PathBuf> = Some(dir.join("crl.pem")).filter(|p| p.exists());
        let mut conninfo = format!(
            "host=localhost sslmode=verify-full sslrootcert={}",
            root.display()
        );
        if let Some(crl) = &crl {
            conninfo += &format!(" sslcrl={}", crl.display());
        }
        let (psql_ok, psql_said) = server.psql_tcp(&conninfo, "select 1");
        let openssl = openssl_verify(&dir, crl.as_deref());
        let mut probe = Probe::server(&server, &root).args(["--scan", "none"]);
        if let Some(crl) = &crl {
            probe = probe.env("PGSSLCRL", crl.display().to_string());
        }
        let out = probe.run();
        let cert_status = out.check("certificate")["status"].clone();
        let statuses: Vec<String> = out.json["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["status"].as_str().unwrap_or("").to_string())
            .collect();
        let problem = out.at("/failure/problem/kind").clone();
        let verdict = format!(
            "{name}: psql {} ({}), openssl: {}, probe: exit {:?} certificate {cert_status} \
             problem {problem}: {}",
            if psql_ok { "in" } else { "refused" },
            psql_said.trim(),
            openssl.trim(),
            out.code,
            out.check("certificate")["summary"]
        );
        eprintln!("{verdict}");
        let agrees = match libpq {
            Accepts => psql_ok && cert_status == "OK" && matches!(out.code, Some(0 | 1)),
            AcceptsBeyondProbe => {
                psql_ok
                    && out.code == Some(3)
                    && !statuses.iter().any(|s| s == "CRITICAL")
                    && out.stdout.contains("the probe cannot verify")
            }
            Refuses {
                openssl: reason,
                kind,
            } => {
                !psql_ok
                    && openssl.contains(reason)
                    && out.code == Some(2)
                    && cert_status == "CRITICAL"
                    && problem == *kind
            }
            RefusesName => {
                !psql_ok
                    && psql_said.contains("does not match host name")
                    && openssl.contains(": OK")
                    && problem == "name_mismatch"
            }
        };
        if !agrees {
            disagreements.push(verdict);
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree:\n{}",
        disagreements.len(),
        CASES.len(),
        disagreements.join("\n")
    );
}

/// Issue 10, item 3: path building is bounded. A server sending a 64 KB
/// chain of same-named CAs, and an sslrootcert of thousands of same-named
/// CAs, each end with a verdict well within `--timeout 1` (+ 1 s), and
/// the verdicts are libpq's.
#[test]
fn hostile_chains_end_within_the_timeout() {
    use crate::util::pki::{Ca, Validity};
    let real = Ca::root("Flood CA");
    let leaf = real.server(&["localhost"], Validity::normal());
    // 150 self-signed CAs of the same name: about 60 KB on the wire.
    let flood: Vec<Ca> = (0..150).map(|_| Ca::root("Flood CA")).collect();
    let mut chain = leaf.cert_pem.clone();
    for ca in &flood {
        chain.push_str(&ca.cert_pem);
    }
    assert!(chain.len() > 60_000, "{}", chain.len());
    let spec = ServerSpec::article(ServerTls {
        cert_chain_pem: chain,
        key_pem: leaf.key_pem.clone(),
        ca_pem: real.cert_pem.clone(),
    });
    let Some(server) = Server::start(&spec) else {
        return;
    };

    // The client trusts another CA: every same-named certificate the
    // server sent is a candidate, none is trusted.
    let other = server.client_file("other.crt", &Ca::root("Other CA").cert_pem);
    let (psql_ok, _) = server.psql_tcp(
        &format!(
            "host=localhost sslmode=verify-full sslrootcert={}",
            other.display()
        ),
        "select 1",
    );
    assert!(!psql_ok);
    let out = Probe::server(&server, &other)
        .args(["--timeout", "1", "--scan", "none"])
        .run();
    out.expect_exit(2)
        .expect_failure("certificate")
        .expect_at("/failure/problem/kind", "unknown_issuer");
    assert!(
        out.elapsed < std::time::Duration::from_secs(2),
        "{}",
        out.context()
    );

    // A bundle of 3,000 same-named CAs with the real one last: found by its
    // key identifier, as OpenSSL finds it.
    let mut bundle: String = (0..3_000)
        .map(|_| Ca::root_valid("Flood CA", Validity::normal()).cert_pem)
        .collect();
    bundle.push_str(&real.cert_pem);
    let bundle = server.client_file("bundle.crt", &bundle);
    let (psql_ok, said) = server.psql_tcp(
        &format!(
            "host=localhost sslmode=verify-full sslrootcert={}",
            bundle.display()
        ),
        "select 1",
    );
    assert!(psql_ok, "{said}");
    // A whole login under a parallel test run needs more than 1 s of a
    // debug build; the bound checked is still --timeout + 1 s.
    let out = Probe::server(&server, &bundle)
        .args(["--timeout", "3", "--scan", "none"])
        .run();
    out.expect_check("certificate", "OK");
    assert!(
        out.elapsed < std::time::Duration::from_secs(4),
        "{}",
        out.context()
    );
}
