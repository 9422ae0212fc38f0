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
    /// The chain passes, but libpq's SCRAM login fails with this message;
    /// the probe says so (CRITICAL) with its certificate check OK.
    RefusesLogin { psql: &'static str },
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
    (
        "signed_by_ed25519",
        RefusesLogin {
            psql: "could not find digest for NID UNDEF",
        },
    ),
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
    ("ip_san", Accepts),
    ("ip_san_mismatch", RefusesName),
    ("ip_in_cn_only", Accepts),
    ("wildcard_san", Accepts),
    ("wildcard_two_labels", RefusesName),
    ("cn_only_no_san", Accepts),
    ("san_present_cn_ignored", RefusesName),
    ("uppercase_san", Accepts),
    ("idna_san", Accepts),
    (
        "not_yet_valid",
        Refuses {
            openssl: "certificate is not yet valid",
            kind: "not_yet_valid",
        },
    ),
    (
        "intermediate_expired",
        Refuses {
            openssl: "certificate has expired",
            kind: "expired",
        },
    ),
    ("extra_cert_in_bundle", Accepts),
    (
        "cross_signed",
        Refuses {
            openssl: "unable to get local issuer certificate",
            kind: "unknown_issuer",
        },
    ),
    (
        "leaf_key_usage_cert_sign",
        Refuses {
            openssl: "unsuitable certificate purpose",
            kind: "bad_purpose",
        },
    ),
    (
        "leaf_eku_client_auth",
        Refuses {
            openssl: "unsuitable certificate purpose",
            kind: "bad_purpose",
        },
    ),
    ("leaf_ca_true", Accepts),
    (
        "intermediate_no_basic_constraints",
        Refuses {
            openssl: "invalid CA certificate",
            kind: "not_ca",
        },
    ),
    (
        "intermediate_v1",
        Refuses {
            openssl: "invalid CA certificate",
            kind: "not_ca",
        },
    ),
    ("p256_chain_sha384", Accepts),
    ("rsa3072_leaf_rsa4096_root", Accepts),
];

/// What libpq (psql) and the probe do with a server setting the probe's
/// own TLS stack (rustls) cannot speak.
#[derive(Debug, Clone, Copy)]
enum Setting {
    /// psql gets in; the probe's hello is refused, and the one it sends as
    /// libpq's OpenSSL would names what rustls lacks: UNKNOWN, the
    /// certificate (read in the clear from TLS 1.2) OK, no CRITICAL.
    BeyondProbe { named: &'static str },
    /// As above, but TLS 1.3 only: the certificate is never in the clear.
    BeyondProbeUnseen { named: &'static str },
    /// psql is refused by the certificate, which the probe reads in the
    /// clear and judges: CRITICAL with this problem kind.
    RefusesCertificate { kind: &'static str },
    /// No suite any client offers: psql refused, the probe CRITICAL.
    NoClient,
}

const P521: &str = "ssl_ecdh_curve = 'secp521r1'";
const TLS12_ONLY: &str = "ssl_max_protocol_version = 'TLSv1.2'";
const CBC_ECDSA: &str = "ssl_ciphers = 'ECDHE-ECDSA-AES256-SHA384'";
const CBC_RSA: &str = "ssl_ciphers = 'ECDHE-RSA-AES256-SHA384'";

/// Server settings (issue 14: "TLS 1.2-only suites, curves"), each with a
/// chain of the corpus, by the case's name.
const SETTINGS: &[(&str, &str, &[&str], Setting)] = &[
    (
        "ecdh_curve_p521",
        "good_rsa2048",
        &[P521],
        Setting::BeyondProbe { named: "secp521r1" },
    ),
    (
        "tls12_cbc_ecdsa",
        "leaf_p384",
        &[TLS12_ONLY, CBC_ECDSA],
        Setting::BeyondProbe {
            named: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        },
    ),
    (
        "tls12_cbc_rsa",
        "good_rsa2048",
        &[TLS12_ONLY, CBC_RSA],
        Setting::BeyondProbe {
            named: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        },
    ),
    (
        "tls12_cbc_expired",
        "leaf_expired",
        &[TLS12_ONLY, CBC_RSA],
        Setting::RefusesCertificate { kind: "expired" },
    ),
    (
        "tls12_cbc_wrong_name",
        "wrong_name",
        &[TLS12_ONLY, CBC_RSA],
        Setting::RefusesCertificate {
            kind: "name_mismatch",
        },
    ),
    (
        "ecdh_curve_p521_unknown_ca",
        "unknown_ca",
        &[P521],
        Setting::RefusesCertificate {
            kind: "unknown_issuer",
        },
    ),
    (
        "ecdh_curve_p521_tls13_only",
        "good_rsa2048",
        &[P521, "ssl_min_protocol_version = 'TLSv1.3'"],
        Setting::BeyondProbeUnseen { named: "secp521r1" },
    ),
    (
        "no_shared_cipher",
        "good_rsa2048",
        &[TLS12_ONLY, "ssl_ciphers = 'PSK-AES256-GCM-SHA384'"],
        Setting::NoClient,
    ),
];

/// pg_stat_ssl's cipher (OpenSSL's name) as IANA names it, for the suites
/// the settings above allow.
fn iana(openssl: &str) -> &str {
    match openssl {
        "ECDHE-ECDSA-AES256-SHA384" => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        "ECDHE-RSA-AES256-SHA384" => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        tls13 => tls13,
    }
}

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
        // The name the client asks for (an IP, a name under a wildcard),
        // always dialled at 127.0.0.1.
        let host = std::fs::read_to_string(dir.join("host"))
            .map_or_else(|_| "localhost".to_string(), |h| h.trim().to_string());
        let mut conninfo = format!(
            "host={host} hostaddr=127.0.0.1 sslmode=verify-full sslrootcert={}",
            root.display()
        );
        if let Some(crl) = &crl {
            conninfo += &format!(" sslcrl={}", crl.display());
        }
        let (psql_ok, psql_said) = server.psql_tcp(&conninfo, "select 1");
        let openssl = openssl_verify(&dir, crl.as_deref());
        let mut probe = Probe::server(&server, &root)
            .env("PGHOST", host.clone())
            .env("PGHOSTADDR", "127.0.0.1")
            .args(["--scan", "none"]);
        if let Some(crl) = &crl {
            probe = probe.env("PGSSLCRL", crl.display().to_string());
        }
        let out = probe.clone().run();
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
            RefusesLogin { psql } => {
                !psql_ok
                    && psql_said.contains(psql)
                    && openssl.contains(": OK")
                    && cert_status == "OK"
                    && out.code == Some(2)
                    && out.check("connection")["summary"]
                        .as_str()
                        .is_some_and(|s| s.contains(psql))
            }
        };
        // Channel binding required: libpq binds with the hash of the
        // signature (RSA-PSS's from its parameters); the probe must too.
        if matches!(libpq, Accepts) {
            let (bound, said) =
                server.psql_tcp(&format!("{conninfo} channel_binding=require"), "select 1");
            let probe = probe.arg("channel_binding=require").run();
            if bound != (probe.check("connection")["status"] == "OK") {
                disagreements.push(format!(
                    "{name} with channel_binding=require: psql {} ({}), probe connection {}",
                    if bound { "in" } else { "refused" },
                    said.trim(),
                    probe.check("connection")
                ));
            }
        }
        if !agrees {
            disagreements.push(verdict);
        }
    }
    for (name, chain, settings, setting) in SETTINGS {
        let dir = corpus.path().join(chain);
        server.replace_tls_with(&tls_of(&dir), settings);
        if let Some(verdict) = setting_disagrees(&server, &dir, name, *setting) {
            disagreements.push(verdict);
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} cases disagree:\n{}",
        disagreements.len(),
        CASES.len() + SETTINGS.len(),
        disagreements.join("\n")
    );
}

/// One server setting: psql's verdict (and the versions it gets in with)
/// against the probe's; Some(the whole story) when they disagree.
fn setting_disagrees(server: &Server, dir: &Path, name: &str, setting: Setting) -> Option<String> {
    let root = dir.join("root.crt");
    let conninfo = format!(
        "host=localhost sslmode=verify-full sslrootcert={}",
        root.display()
    );
    let query = "select version, cipher from pg_stat_ssl where pid = pg_backend_pid()";
    let (psql_ok, psql_said) = server.psql_tcp(&conninfo, query);
    // Which versions libpq gets in with, each alone.
    let versions: Vec<bool> = [
        "ssl_max_protocol_version=TLSv1.2",
        "ssl_min_protocol_version=TLSv1.3",
    ]
    .iter()
    .map(|only| server.psql_tcp(&format!("{conninfo} {only}"), "select 1").0)
    .collect();
    let out = Probe::server(server, &root).run();
    let statuses: Vec<String> = out.json["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}={}",
                c["name"].as_str().unwrap_or(""),
                c["status"].as_str().unwrap_or("")
            )
        })
        .collect();
    let critical = statuses.iter().any(|s| s.ends_with("=CRITICAL"));
    let status_of = |check: &str| {
        statuses
            .iter()
            .find_map(|s| s.strip_prefix(&format!("{check}=")))
            .unwrap_or("absent")
            .to_string()
    };
    let detail = out.at("/failure/detail").as_str().unwrap_or("").to_string();
    let connection = out.check("connection")["summary"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let scan_accepts = |i: usize| {
        out.at(&format!("/scan/protocols/{i}/accepted")) == &serde_json::Value::Bool(true)
    };
    let verdict = format!(
        "{name}: psql {} ({}), TLSv1.2/1.3 alone {versions:?}; probe: exit {:?} {statuses:?} \
         failure {} {detail:?} second opinion {}; connection: {connection}",
        if psql_ok { "in" } else { "refused" },
        psql_said.trim(),
        out.code,
        out.at("/failure/kind"),
        out.at("/openssl_hello"),
    );
    eprintln!("{verdict}");
    let (psql_version, psql_cipher) = psql_said.trim().split_once('|').unwrap_or(("", ""));
    let agrees = match setting {
        Setting::BeyondProbe { named } => {
            psql_ok
                && out.code == Some(3)
                && !critical
                && out.at("/failure/kind") == "probe_limit"
                && detail.contains(named)
                && status_of("certificate") == "OK"
                && status_of("tls_session") == "OK"
                && out.at("/openssl_hello/version") == psql_version
                && out.at("/openssl_hello/suite") == iana(psql_cipher)
                && versions == [scan_accepts(3), scan_accepts(4)]
        }
        Setting::BeyondProbeUnseen { named } => {
            psql_ok
                && out.code == Some(3)
                && !critical
                && detail.contains(named)
                && connection.contains("was not seen")
                && status_of("certificate") == "absent"
                && versions == [scan_accepts(3), scan_accepts(4)]
        }
        Setting::RefusesCertificate { kind } => {
            !psql_ok
                && (psql_said.contains("certificate verify failed")
                    || psql_said.contains("does not match host name"))
                && out.code == Some(2)
                && out.at("/failure/kind") == "certificate"
                && out.at("/failure/problem/kind") == kind
                && out.at("/openssl_hello/answer") == "chose"
        }
        Setting::NoClient => {
            !psql_ok
                && psql_said.contains("handshake failure")
                && out.code == Some(2)
                && status_of("connection") == "CRITICAL"
                && connection.contains("refused too")
                && out.at("/openssl_hello/answer") == "refused"
        }
    };
    (!agrees).then_some(verdict)
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

/// Issue 14: a certificate signed with Ed25519 (whatever its own key) has
/// no hash for SCRAM channel binding. PostgreSQL's source
/// (`pgtls_get_peer_certificate_hash`, fe-secure-openssl.c, the same from
/// 11 to 18) says libpq then fails every login that binds, which every
/// libpq from 11 does by default; 13 and later get in with
/// `channel_binding=disable`. Checked with libpq 15 (Debian's psql), 17 and
/// 18 (psql 15 over the cached libpq) against servers 15 and 18, which both
/// offer SCRAM-SHA-256-PLUS; the probe must name the failure.
#[test]
fn ed25519_signed_certificates_fail_libpq_logins_by_version() {
    use crate::util::pki::{Ca, Validity};
    let ca = Ca::root_ed25519("Ed CA");
    let leaf = ca.server(&["localhost"], Validity::normal());
    for server_major in [15, 18] {
        let spec = ServerSpec::article(ServerTls {
            cert_chain_pem: leaf.cert_pem.clone(),
            key_pem: leaf.key_pem.clone(),
            ca_pem: ca.cert_pem.clone(),
        })
        .on_major(server_major);
        let Some(server) = Server::start(&spec) else {
            return;
        };
        let root = server.client_file("root.crt", &ca.cert_pem);
        for binding in ["prefer", "require", "disable"] {
            let conninfo = format!(
                "host=localhost sslmode=verify-full sslrootcert={} channel_binding={binding}",
                root.display()
            );
            let mut said = vec![(15, server.psql_tcp(&conninfo, "select 1"))];
            for libpq in [17, 18] {
                if let Some(got) = server.psql_tcp_libpq(libpq, &[], &conninfo, "select 1") {
                    said.push((libpq, got));
                }
            }
            for (libpq, (ok, text)) in &said {
                let fails = text.contains("could not find digest for NID UNDEF");
                assert_eq!(
                    (*ok, fails),
                    (binding == "disable", binding != "disable"),
                    "server {server_major}, libpq {libpq}, channel_binding={binding}: {text}"
                );
            }
            let out = Probe::server(&server, &root)
                .args(["--scan", "none"])
                .arg(format!("channel_binding={binding}"))
                .run();
            out.expect_exit(2)
                .expect_check("connection", "CRITICAL")
                .expect_check("certificate", "OK");
            let summary = out.check("connection")["summary"].as_str().unwrap_or("");
            assert!(
                summary.contains("signed with Ed25519")
                    && summary.contains("could not find digest for NID UNDEF"),
                "{}",
                out.context()
            );
            if binding != "require" {
                let auth = out.check("authentication")["summary"]
                    .as_str()
                    .unwrap_or("");
                assert!(auth.contains("cannot log in"), "{}", out.context());
            }
        }
    }
}

/// Issue 14: `sslrootcert=system` as libpq 16+ reads it, the OS store
/// through OpenSSL: a company CA given by SSL_CERT_FILE, or in an
/// `openssl rehash` directory given by SSL_CERT_DIR, is trusted by psql 17
/// and 18 and by the probe alike; the same CA in a directory that was not
/// rehashed is found by neither (OpenSSL opens `<hash>.<n>` names only), and
/// without either variable the OS store lacks it. psql 15 reads `system` as
/// a file name and refuses: the probe follows the newest libpq.
#[test]
fn sslrootcert_system_reads_the_os_store_as_libpq_16() {
    use crate::util::pki::{Ca, Validity};
    let ca = Ca::root("Company CA");
    let leaf = ca.server(&["localhost"], Validity::normal());
    let spec = ServerSpec::article(ServerTls {
        cert_chain_pem: leaf.cert_pem.clone(),
        key_pem: leaf.key_pem.clone(),
        ca_pem: ca.cert_pem.clone(),
    });
    let Some(server) = Server::start(&spec) else {
        return;
    };
    let file = server.client_file("company.pem", &ca.cert_pem);
    let hashed = file.with_file_name("hashed");
    let unhashed = file.with_file_name("unhashed");
    for dir in [&hashed, &unhashed] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::copy(&file, dir.join("company.pem")).unwrap();
    }
    let rehash = Command::new("openssl")
        .arg("rehash")
        .arg(&hashed)
        .output()
        .expect("run openssl rehash");
    assert!(rehash.status.success(), "{rehash:?}");
    let conninfo = "host=localhost sslmode=verify-full sslrootcert=system";
    /// What the case is, the variable it sets, whether libpq trusts the CA.
    type Case<'a> = (&'a str, Option<(&'static str, &'a Path)>, bool);
    let cases: [Case; 4] = [
        ("SSL_CERT_FILE", Some(("SSL_CERT_FILE", &file)), true),
        (
            "SSL_CERT_DIR rehashed",
            Some(("SSL_CERT_DIR", &hashed)),
            true,
        ),
        (
            "SSL_CERT_DIR not rehashed",
            Some(("SSL_CERT_DIR", &unhashed)),
            false,
        ),
        ("the OS store alone", None, false),
    ];
    for (what, var, trusted) in cases {
        let env: Vec<(&str, String)> = var
            .iter()
            .map(|(k, v)| (*k, v.display().to_string()))
            .collect();
        for libpq in [17, 18] {
            let Some((ok, said)) = server.psql_tcp_libpq(libpq, &env, conninfo, "select 1") else {
                continue;
            };
            assert_eq!(ok, trusted, "libpq {libpq}, {what}: {said}");
        }
        let mut probe = Probe::server(&server, &file)
            .env("PGSSLROOTCERT", "system")
            .args(["--scan", "none"]);
        for (k, v) in &env {
            probe = probe.env(k, v.clone());
        }
        let out = probe.run();
        out.expect_at("/certificate/trust_store/kind", "os");
        if trusted {
            out.expect_exit(0).expect_check("certificate", "OK");
        } else {
            out.expect_exit(2)
                .expect_at("/failure/problem/kind", "unknown_issuer");
        }
        let summary = out.check("certificate")["summary"].as_str().unwrap_or("");
        assert!(summary.contains("the OS store ("), "{}", out.context());
        if let Some((_, path)) = var {
            assert!(
                summary.contains(&path.display().to_string()),
                "{}",
                out.context()
            );
        }
    }
    let (ok, said) = server.psql_tcp(conninfo, "select 1");
    assert!(!ok && said.contains("\"system\" does not exist"), "{said}");
}
