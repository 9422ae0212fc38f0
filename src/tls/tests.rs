//! libpq rules and the strict view, checked without a handshake, plus
//! end-to-end handshakes against a local tokio-rustls server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::verify::{describe_presented, evaluate, strict_verifier};
use super::*;
use crate::facts::CertProblem;

/// 2025-01-01T00:00:00Z: every generated certificate is judged at this instant.
const NOW: i64 = 1_735_689_600;

type Issuer = CertifiedIssuer<'static, KeyPair>;

fn ca_params(cn: &str, from: (i32, u8), until: (i32, u8)) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = rcgen::date_time_ymd(from.0, from.1, 1);
    p.not_after = rcgen::date_time_ymd(until.0, until.1, 1);
    p
}

fn root(cn: &str) -> Issuer {
    CertifiedIssuer::self_signed(
        ca_params(cn, (2020, 1), (2035, 1)),
        KeyPair::generate().unwrap(),
    )
    .unwrap()
}

fn leaf_params(sans: &[&str], cn: Option<&str>) -> CertificateParams {
    let mut p =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    if let Some(cn) = cn {
        p.distinguished_name.push(DnType::CommonName, cn);
    }
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2026, 1, 1);
    p
}

fn sign(params: CertificateParams, issuer: &Issuer) -> CertificateDer<'static> {
    params
        .signed_by(&KeyPair::generate().unwrap(), &**issuer)
        .unwrap()
        .der()
        .clone()
}

fn leaf(sans: &[&str], cn: Option<&str>, issuer: &Issuer) -> CertificateDer<'static> {
    sign(leaf_params(sans, cn), issuer)
}

fn trust(roots: &[&Issuer]) -> TrustStore {
    trust_from_certificates(roots.iter().map(|r| r.der().clone()).collect()).unwrap()
}

/// Everything the verifier would record, judged at `now`.
fn judge_at(
    chain: &[CertificateDer<'static>],
    trust: &TrustStore,
    mode: SslMode,
    host: &str,
    now: i64,
) -> CertChainFacts {
    let (ee, inter) = chain.split_first().unwrap();
    let (presented, malformed) = describe_presented(ee, inter);
    let strict = strict_verifier(trust, &provider());
    let server_name = ServerName::try_from(host.to_string()).unwrap();
    let now = UnixTime::since_unix_epoch(Duration::from_secs(now as u64));
    let (facts, _) = evaluate(
        presented,
        malformed,
        ee,
        inter,
        trust,
        &strict,
        mode,
        host,
        &server_name,
        now,
    );
    facts
}

fn judge(chain: &[CertificateDer<'static>], trust: &TrustStore, host: &str) -> CertChainFacts {
    judge_at(chain, trust, SslMode::VerifyFull, host, NOW)
}

fn libpq_problem(facts: &CertChainFacts) -> CertProblem {
    match &facts.libpq {
        Some(Err(p)) => p.clone(),
        other => panic!("expected a libpq rejection, got {other:?}"),
    }
}

#[test]
fn v3_leaf_and_ca_accepted() {
    let ca = root("Test CA");
    let chain = [leaf(&["db.example.com"], Some("db.example.com"), &ca)];
    let facts = judge(&chain, &trust(&[&ca]), "db.example.com");
    assert_eq!(facts.libpq, Some(Ok(())));
    assert_eq!(facts.strict, Some(Ok(())));
    assert!(facts.strict_only_issues.is_empty());
    assert_eq!(facts.checked_name.as_deref(), Some("db.example.com"));
    assert_eq!(facts.presented.len(), 1);
    assert_eq!(
        facts.anchor.map(|a| a.subject).as_deref(),
        Some("CN=Test CA")
    );
}

#[test]
fn wrong_host_rejected() {
    let ca = root("Test CA");
    let chain = [leaf(&["db.example.com"], Some("db.example.com"), &ca)];
    let facts = judge(&chain, &trust(&[&ca]), "other.example.com");
    assert_eq!(
        libpq_problem(&facts),
        CertProblem::NameMismatch {
            host: "other.example.com".to_string(),
            presented: vec!["db.example.com".to_string()],
        }
    );
    assert!(matches!(facts.strict, Some(Err(_))));
    assert!(facts.anchor.is_none());
}

#[test]
fn verify_ca_skips_the_name() {
    let ca = root("Test CA");
    let chain = [leaf(&["db.example.com"], None, &ca)];
    let facts = judge_at(
        &chain,
        &trust(&[&ca]),
        SslMode::VerifyCa,
        "other.example.com",
        NOW,
    );
    assert_eq!(facts.libpq, Some(Ok(())));
    assert_eq!(facts.strict, Some(Ok(())));
    assert_eq!(facts.checked_name, None);
}

#[test]
fn wildcard_matches_exactly_one_label() {
    let ca = root("Test CA");
    let store = trust(&[&ca]);
    let chain = [leaf(&["*.example.com"], None, &ca)];
    assert_eq!(judge(&chain, &store, "a.example.com").libpq, Some(Ok(())));
    assert_eq!(judge(&chain, &store, "A.Example.COM").libpq, Some(Ok(())));
    for host in ["a.b.example.com", "example.com"] {
        assert!(
            matches!(
                libpq_problem(&judge(&chain, &store, host)),
                CertProblem::NameMismatch { .. }
            ),
            "{host}"
        );
    }
}

#[test]
fn ip_san_matches_ip_host() {
    let ca = root("Test CA");
    let store = trust(&[&ca]);
    let chain = [leaf(&["db.example.com", "10.1.2.3", "::1"], None, &ca)];
    assert_eq!(judge(&chain, &store, "10.1.2.3").libpq, Some(Ok(())));
    assert_eq!(judge(&chain, &store, "::1").libpq, Some(Ok(())));
    assert_eq!(
        libpq_problem(&judge(&chain, &store, "10.1.2.4")),
        CertProblem::NameMismatch {
            host: "10.1.2.4".to_string(),
            presented: vec![
                "db.example.com".to_string(),
                "10.1.2.3".to_string(),
                "::1".to_string()
            ],
        }
    );
}

#[test]
fn cn_counts_only_without_san_of_the_hosts_kind() {
    let ca = root("Test CA");
    let store = trust(&[&ca]);

    // A dNSName SAN shuts the CN out for a DNS host.
    let with_dns = [leaf(&["other.internal"], Some("db.internal"), &ca)];
    assert_eq!(
        libpq_problem(&judge(&with_dns, &store, "db.internal")),
        CertProblem::NameMismatch {
            host: "db.internal".to_string(),
            presented: vec!["other.internal".to_string()],
        }
    );

    // Only an iPAddress SAN: libpq still reads the CN for a DNS host.
    let with_ip = [leaf(&["10.0.0.1"], Some("db.internal"), &ca)];
    let facts = judge(&with_ip, &store, "db.internal");
    assert_eq!(facts.libpq, Some(Ok(())));
    assert!(matches!(facts.strict, Some(Err(_))));
    assert_eq!(
        facts.strict_only_issues,
        vec![
            "host name only in the CN, not in subjectAltName (strict verifiers ignore the CN)"
                .to_string()
        ]
    );

    // No SAN at all: the CN decides.
    let no_san = [leaf(&[], Some("db.internal"), &ca)];
    let facts = judge(&no_san, &store, "db.internal");
    assert_eq!(facts.libpq, Some(Ok(())));
    assert_eq!(
        facts.strict_only_issues,
        vec![
            "no subjectAltName; host name only in the CN (strict verifiers ignore the CN)"
                .to_string()
        ]
    );
}

#[test]
fn expired_leaf() {
    let ca = root("Test CA");
    let mut p = leaf_params(&["db.example.com"], Some("db.example.com"));
    p.not_after = rcgen::date_time_ymd(2024, 6, 1);
    let facts = judge(&[sign(p, &ca)], &trust(&[&ca]), "db.example.com");
    assert!(matches!(
        libpq_problem(&facts),
        CertProblem::Expired { subject, .. } if subject == "CN=db.example.com"
    ));
}

#[test]
fn not_yet_valid_leaf() {
    let ca = root("Test CA");
    let mut p = leaf_params(&["db.example.com"], Some("db.example.com"));
    p.not_before = rcgen::date_time_ymd(2025, 6, 1);
    let facts = judge(&[sign(p, &ca)], &trust(&[&ca]), "db.example.com");
    assert!(matches!(
        libpq_problem(&facts),
        CertProblem::NotYetValid { subject, .. } if subject == "CN=db.example.com"
    ));
}

#[test]
fn expired_ca() {
    let ca = CertifiedIssuer::self_signed(
        ca_params("Old CA", (2015, 1), (2024, 1)),
        KeyPair::generate().unwrap(),
    )
    .unwrap();
    let facts = judge(
        &[leaf(&["db.example.com"], None, &ca)],
        &trust(&[&ca]),
        "db.example.com",
    );
    assert!(matches!(
        libpq_problem(&facts),
        CertProblem::Expired { subject, .. } if subject == "CN=Old CA"
    ));
}

#[test]
fn unknown_ca() {
    let ca = root("Test CA");
    let other = root("Other CA");
    let facts = judge(
        &[leaf(&["db.example.com"], None, &ca)],
        &trust(&[&other]),
        "db.example.com",
    );
    assert_eq!(
        libpq_problem(&facts),
        CertProblem::UnknownIssuer {
            detail: "issuer \"CN=Test CA\" not found in sslrootcert".to_string()
        }
    );
    assert_eq!(facts.presented.len(), 1);
}

#[test]
fn same_name_other_key_is_a_bad_signature() {
    let ca = root("Test CA");
    let impostor = root("Test CA");
    let facts = judge(
        &[leaf(&["db.example.com"], None, &ca)],
        &trust(&[&impostor]),
        "db.example.com",
    );
    assert!(matches!(
        libpq_problem(&facts),
        CertProblem::BadSignature { .. }
    ));
}

fn intermediate(
    cn: &str,
    params_tweak: impl FnOnce(&mut CertificateParams),
    by: &Issuer,
) -> Issuer {
    let mut p = ca_params(cn, (2020, 1), (2030, 1));
    params_tweak(&mut p);
    CertifiedIssuer::signed_by(p, KeyPair::generate().unwrap(), &**by).unwrap()
}

#[test]
fn intermediate_sent_root_trusted() {
    let ca = root("Root CA");
    let int = intermediate("Intermediate", |_| {}, &ca);
    let ee = leaf(&["db.example.com"], None, &int);
    let store = trust(&[&ca]);

    let facts = judge(&[ee.clone(), int.der().clone()], &store, "db.example.com");
    assert_eq!(facts.libpq, Some(Ok(())));
    assert_eq!(facts.strict, Some(Ok(())));
    assert_eq!(facts.presented.len(), 2);
    assert_eq!(
        facts.anchor.map(|a| a.subject).as_deref(),
        Some("CN=Root CA")
    );

    // Server order does not matter, and an extra copy of the root is harmless.
    let facts = judge(
        &[ee.clone(), ca.der().clone(), int.der().clone()],
        &store,
        "db.example.com",
    );
    assert_eq!(facts.libpq, Some(Ok(())));

    // Without the intermediate there is no path.
    let facts = judge(&[ee], &store, "db.example.com");
    assert_eq!(
        libpq_problem(&facts),
        CertProblem::UnknownIssuer {
            detail: "issuer \"CN=Intermediate\" not found in sslrootcert".to_string()
        }
    );
}

#[test]
fn only_intermediate_trusted_is_not_enough_for_openssl() {
    let ca = root("Root CA");
    let int = intermediate("Intermediate", |_| {}, &ca);
    let ee = leaf(&["db.example.com"], None, &int);
    let facts = judge(&[ee, int.der().clone()], &trust(&[&int]), "db.example.com");
    assert!(matches!(
        libpq_problem(&facts),
        CertProblem::UnknownIssuer { detail } if detail.contains("self-signed root")
    ));
}

#[test]
fn intermediate_without_ca_flag_rejected() {
    let ca = root("Root CA");
    for tweak in [
        (|p: &mut CertificateParams| p.is_ca = IsCa::ExplicitNoCa) as fn(&mut CertificateParams),
        |p: &mut CertificateParams| {
            p.is_ca = IsCa::NoCa;
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        },
    ] {
        let int = intermediate("Intermediate", tweak, &ca);
        let ee = leaf(&["db.example.com"], None, &int);
        let facts = judge(&[ee, int.der().clone()], &trust(&[&ca]), "db.example.com");
        assert_eq!(
            libpq_problem(&facts),
            CertProblem::NotCa {
                subject: "CN=Intermediate".to_string()
            }
        );
    }
}

#[test]
fn path_length_constraint_honoured() {
    let mut p = ca_params("Root CA", (2020, 1), (2035, 1));
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let int = intermediate("Intermediate", |_| {}, &ca);
    let int2 = intermediate("Intermediate 2", |_| {}, &int);
    let ee = leaf(&["db.example.com"], None, &int2);
    let facts = judge(
        &[ee, int2.der().clone(), int.der().clone()],
        &trust(&[&ca]),
        "db.example.com",
    );
    assert_eq!(
        libpq_problem(&facts),
        CertProblem::NotCa {
            subject: "CN=Root CA".to_string()
        }
    );
}

#[test]
fn client_auth_only_leaf_rejected() {
    let ca = root("Test CA");
    let mut p = leaf_params(&["db.example.com"], None);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let facts = judge(&[sign(p, &ca)], &trust(&[&ca]), "db.example.com");
    assert!(matches!(
        libpq_problem(&facts),
        CertProblem::BadPurpose { detail, .. } if detail.contains("clientAuth")
    ));
}

#[test]
fn trusted_self_signed_leaf_anchors_itself() {
    let mut p = leaf_params(&["db.example.com"], Some("db.example.com"));
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap().der().clone();
    let store = trust_from_certificates(vec![cert.clone()]).unwrap();
    let facts = judge(std::slice::from_ref(&cert), &store, "db.example.com");
    assert_eq!(facts.libpq, Some(Ok(())));

    let other = root("Test CA");
    let facts = judge(&[cert], &trust(&[&other]), "db.example.com");
    assert!(matches!(
        libpq_problem(&facts),
        CertProblem::UnknownIssuer { detail } if detail.starts_with("self-signed certificate")
    ));
}

#[test]
fn malformed_certificate_recorded() {
    let ca = root("Test CA");
    let facts = judge(
        &[CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00])],
        &trust(&[&ca]),
        "x",
    );
    assert!(matches!(
        libpq_problem(&facts),
        CertProblem::Malformed { .. }
    ));
    assert!(facts.presented.is_empty());
}

/// The article's recipe, run verbatim in a temp dir: an X.509 v1, CN-only
/// server certificate signed by a v3 CA.
struct ArticlePki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server_crt: PathBuf,
    server_key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is needed for the article fixture");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn article_pki() -> ArticlePki {
    article_pki_signing_with(&[])
}

/// The article's commands, with `extra` options for the signing step.
fn article_pki_signing_with(extra: &[&str]) -> ArticlePki {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-new",
            "-x509",
            "-days",
            "3650",
            "-nodes",
            "-out",
            "ca.crt",
            "-keyout",
            "ca.key",
            "-subj",
            "/CN=PostgreSQL CA",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-new",
            "-nodes",
            "-out",
            "server.csr",
            "-keyout",
            "server.key",
            "-subj",
            "/CN=db.internal",
        ],
    );
    let mut sign = vec![
        "x509",
        "-req",
        "-days",
        "365",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
    ];
    sign.extend_from_slice(extra);
    openssl(d, &sign);
    ArticlePki {
        ca: d.join("ca.crt"),
        server_crt: d.join("server.crt"),
        server_key: d.join("server.key"),
        _dir: dir,
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn article_v1_cn_only_leaf_libpq_accepts_strict_rejects() {
    let pki = article_pki();
    let store = load_trust(&RootCerts::File(pki.ca.clone())).unwrap();
    let server = CertificateDer::from_pem_file(&pki.server_crt).unwrap();

    let facts = judge_at(
        &[server],
        &store,
        SslMode::VerifyFull,
        "db.internal",
        unix_now(),
    );
    let leaf = &facts.presented[0];
    assert_eq!(leaf.version, 1);
    assert_eq!(leaf.subject, "CN=db.internal");
    assert!(leaf.san_dns.is_empty());
    assert_eq!(leaf.key, "RSA 2048");
    assert_eq!(leaf.signature_algorithm, "sha256WithRSAEncryption");
    assert_eq!(facts.libpq, Some(Ok(())));
    assert_eq!(
        facts.anchor.as_ref().map(|a| a.subject.as_str()),
        Some("CN=PostgreSQL CA")
    );
    assert!(matches!(facts.strict, Some(Err(_))), "{:?}", facts.strict);
    assert_eq!(
        facts.strict_only_issues,
        vec![
            "X.509 v1 certificate (strict verifiers parse only v3)".to_string(),
            "no subjectAltName; host name only in the CN (strict verifiers ignore the CN)"
                .to_string(),
        ]
    );
}

#[test]
fn load_trust_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.crt");
    let err = load_trust(&RootCerts::File(missing.clone())).unwrap_err();
    assert!(err.0.contains(&missing.display().to_string()), "{err}");
    assert!(!err.0.contains('\n'));

    let empty = dir.path().join("empty.crt");
    std::fs::write(&empty, "no certificates here\n").unwrap();
    let err = load_trust(&RootCerts::File(empty.clone())).unwrap_err();
    assert!(err.0.contains("contains no PEM certificate"), "{err}");

    let bad = dir.path().join("bad.crt");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = load_trust(&RootCerts::File(bad.clone())).unwrap_err();
    assert!(err.0.contains(&bad.display().to_string()), "{err}");

    assert!(load_trust(&RootCerts::System).unwrap().anchors.len() > 50);
}

#[test]
fn load_identity_checks_key_against_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = root("Client CA");
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params(&[], Some("probe"))
        .signed_by(&key, &*ca)
        .unwrap();
    let cert_path = dir.path().join("client.crt");
    let key_path = dir.path().join("client.key");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    assert!(load_identity(&cert_path, &key_path).is_ok());

    let other_key = dir.path().join("other.key");
    std::fs::write(&other_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let err = load_identity(&cert_path, &other_key).unwrap_err();
    assert!(err.0.contains("does not match"), "{err}");

    let err = load_identity(&cert_path, &cert_path).unwrap_err();
    assert!(err.0.contains("sslkey"), "{err}");
}

mod handshake {
    use super::*;
    use rustls::sign::{CertifiedKey, SingleCertAndKey};
    use rustls::SupportedProtocolVersion;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// Serves the article's v1 certificate once; rustls's own key/cert
    /// consistency check would refuse a v1 certificate, so it is bypassed.
    async fn serve(
        pki: &ArticlePki,
        version: &'static SupportedProtocolVersion,
    ) -> std::net::SocketAddr {
        let provider = provider();
        let chain = vec![CertificateDer::from_pem_file(&pki.server_crt).unwrap()];
        let key = PrivateKeyDer::from_pem_file(&pki.server_key).unwrap();
        let key = provider.key_provider.load_private_key(key).unwrap();
        let resolver = SingleCertAndKey::from(CertifiedKey::new(chain, key));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let _ = tls.write_all(b"ok").await;
                let _ = tls.shutdown().await;
            }
        });
        addr
    }

    async fn connect(
        addr: std::net::SocketAddr,
        config: rustls::ClientConfig,
        name: &str,
    ) -> std::io::Result<(rustls::ProtocolVersion, Vec<u8>)> {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await?;
        let server_name = ServerName::try_from(name.to_string()).unwrap();
        let mut tls = connector.connect(server_name, tcp).await?;
        let version = tls.get_ref().1.protocol_version().unwrap();
        let mut buf = Vec::new();
        tls.read_to_end(&mut buf).await?;
        Ok((version, buf))
    }

    async fn completes_with(version: &'static SupportedProtocolVersion) {
        let pki = article_pki();
        let addr = serve(&pki, version).await;
        let store = load_trust(&RootCerts::File(pki.ca.clone())).unwrap();
        let (config, recorder) =
            client_config(&store, None, SslMode::VerifyFull, "db.internal").unwrap();
        let (negotiated, data) = connect(addr, config, "db.internal").await.unwrap();
        assert_eq!(negotiated, version.version);
        assert_eq!(data, b"ok");
        assert_eq!(recorder.progress(), HandshakeProgress::Verified);
        let facts = recorder.facts();
        assert_eq!(facts.libpq, Some(Ok(())));
        assert_eq!(facts.presented[0].version, 1);
        assert_eq!(facts.strict_only_issues.len(), 2);
    }

    #[tokio::test]
    async fn v1_certificate_tls13() {
        completes_with(&rustls::version::TLS13).await;
    }

    #[tokio::test]
    async fn v1_certificate_tls12() {
        completes_with(&rustls::version::TLS12).await;
    }

    #[tokio::test]
    async fn wrong_host_stops_the_handshake_after_recording() {
        let pki = article_pki();
        let addr = serve(&pki, &rustls::version::TLS13).await;
        let store = load_trust(&RootCerts::File(pki.ca.clone())).unwrap();
        let (config, recorder) =
            client_config(&store, None, SslMode::VerifyFull, "other.internal").unwrap();
        let err = connect(addr, config, "other.internal").await.unwrap_err();
        let rustls_err = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
            .cloned();
        assert!(
            matches!(
                rustls_err,
                Some(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { .. }
                ))
            ),
            "{err:?}"
        );
        assert_eq!(recorder.progress(), HandshakeProgress::CertificateSeen);
        let facts = recorder.facts();
        assert_eq!(facts.presented.len(), 1);
        assert_eq!(facts.presented[0].subject, "CN=db.internal");
        assert_eq!(
            facts.libpq,
            Some(Err(CertProblem::NameMismatch {
                host: "other.internal".to_string(),
                presented: vec!["db.internal".to_string()],
            }))
        );
    }
}

/// PostgreSQL's default group is P-256: offering its key share first saves
/// a HelloRetryRequest; the groups offered stay the same.
#[test]
fn key_share_leads_with_p256_and_offers_the_same_groups() {
    let ours = provider();
    assert_eq!(ours.kx_groups[0].name(), rustls::NamedGroup::secp256r1);
    let mut names: Vec<_> = ours.kx_groups.iter().map(|g| g.name()).collect();
    let mut defaults: Vec<_> = rustls::crypto::ring::default_provider()
        .kx_groups
        .iter()
        .map(|g| g.name())
        .collect();
    names.sort_by_key(|n| u16::from(*n));
    defaults.sort_by_key(|n| u16::from(*n));
    assert_eq!(names, defaults);
}

/// OpenSSL makes strict CA checks implicit below the top of the chain: an
/// intermediate with keyCertSign but no basicConstraints is not a CA.
#[test]
fn intermediate_needs_explicit_basic_constraints() {
    let ca = root("Root CA");
    let int = intermediate(
        "Intermediate",
        |p| {
            p.is_ca = IsCa::NoCa;
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        },
        &ca,
    );
    let ee = leaf(&["db.example.com"], None, &int);
    let facts = judge(&[ee, int.der().clone()], &trust(&[&ca]), "db.example.com");
    assert_eq!(
        libpq_problem(&facts),
        CertProblem::NotCa {
            subject: "CN=Intermediate".to_string()
        }
    );
}

/// libpq loads sslrootcert without trust settings: the root's own
/// extendedKeyUsage must allow TLS servers too.
#[test]
fn root_with_client_only_purpose_is_rejected() {
    let mut p = ca_params("Client-only Root", (2020, 1), (2035, 1));
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let facts = judge(
        &[leaf(&["db.example.com"], None, &ca)],
        &trust(&[&ca]),
        "db.example.com",
    );
    assert!(matches!(
        libpq_problem(&facts),
        CertProblem::BadPurpose { subject, .. } if subject == "CN=Client-only Root"
    ));
}

#[test]
fn unhandled_critical_extension_is_rejected_non_critical_ignored() {
    let ca = root("Test CA");
    for critical in [true, false] {
        let mut p = leaf_params(&["db.example.com"], None);
        let mut ext = rcgen::CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 99999, 1],
            vec![0x05, 0x00],
        );
        ext.set_criticality(critical);
        p.custom_extensions.push(ext);
        let facts = judge(&[sign(p, &ca)], &trust(&[&ca]), "db.example.com");
        if critical {
            assert_eq!(
                libpq_problem(&facts),
                CertProblem::UnhandledCriticalExtension {
                    subject: "CN=rcgen self signed cert".to_string(),
                    oid: "1.3.6.1.4.1.99999.1".to_string()
                }
            );
        } else {
            assert_eq!(facts.libpq, Some(Ok(())));
        }
    }
}

/// A CA limited to one domain (and one network) cannot vouch for others,
/// whether the name is in a SAN or only in the CN.
#[test]
fn name_constraints_bind_the_leaf() {
    use rcgen::{CidrSubnet, GeneralSubtree, NameConstraints};
    let ca = root("Root CA");
    let int = intermediate(
        "Constrained",
        |p| {
            p.name_constraints = Some(NameConstraints {
                permitted_subtrees: vec![
                    GeneralSubtree::DnsName("allowed.example".into()),
                    GeneralSubtree::IpAddress(CidrSubnet::V4([10, 0, 0, 0], [255, 0, 0, 0])),
                ],
                excluded_subtrees: vec![GeneralSubtree::DnsName(".bad.allowed.example".into())],
            })
        },
        &ca,
    );
    let store = trust(&[&ca]);
    let judge_leaf = |sans: &[&str], cn: Option<&str>, host: &str| {
        judge(&[leaf(sans, cn, &int), int.der().clone()], &store, host)
    };
    assert_eq!(
        judge_leaf(
            &["db.allowed.example", "10.1.2.3"],
            None,
            "db.allowed.example"
        )
        .libpq,
        Some(Ok(()))
    );
    for (sans, cn, host, name) in [
        (
            &["db.evil.example"][..],
            None,
            "db.evil.example",
            "db.evil.example",
        ),
        (
            &["x.bad.allowed.example"][..],
            None,
            "x.bad.allowed.example",
            "x.bad.allowed.example",
        ),
        (
            &["db.allowed.example", "127.0.0.1"][..],
            None,
            "db.allowed.example",
            "127.0.0.1",
        ),
        (
            &[][..],
            Some("db.evil.example"),
            "db.evil.example",
            "db.evil.example",
        ),
    ] {
        match libpq_problem(&judge_leaf(sans, cn, host)) {
            CertProblem::NameConstraint { ca, name: got, .. } => {
                assert_eq!(ca, "CN=Constrained");
                assert_eq!(got, name);
            }
            other => panic!("{sans:?} {cn:?}: {other:?}"),
        }
    }
}

#[test]
fn dns_constraint_matching_follows_openssl() {
    use super::chain::dns_within;
    assert!(dns_within("example.com", "example.com"));
    assert!(dns_within("a.Example.COM", "example.com"));
    assert!(!dns_within("badexample.com", "example.com"));
    assert!(dns_within("a.example.com", ".example.com"));
    assert!(!dns_within("example.com", ".example.com"));
    assert!(dns_within("anything", ""));
}

/// OpenSSL (and so libpq) at security level 1 accepts a SHA-1 signature;
/// webpki and Debian's default level 2 do not: said, as a strict-client issue.
#[test]
fn sha1_signed_leaf_is_a_strict_only_issue() {
    let pki = article_pki_signing_with(&["-sha1"]);
    let store = load_trust(&RootCerts::File(pki.ca.clone())).unwrap();
    let server = CertificateDer::from_pem_file(&pki.server_crt).unwrap();
    let facts = judge_at(
        &[server],
        &store,
        SslMode::VerifyFull,
        "db.internal",
        unix_now(),
    );
    assert_eq!(facts.libpq, Some(Ok(())));
    assert_eq!(
        facts.presented[0].signature_algorithm,
        "sha1WithRSAEncryption"
    );
    assert!(
        facts
            .strict_only_issues
            .iter()
            .any(|i| i.contains("signed with SHA-1")),
        "{:?}",
        facts.strict_only_issues
    );
}

#[test]
fn connector_name_normalises_inet_aton_forms_only() {
    assert_eq!(connector_name("127.1"), "127.0.0.1");
    assert_eq!(connector_name("0x7f.1"), "127.0.0.1");
    assert_eq!(connector_name("127.0.0.1"), "127.0.0.1");
    assert_eq!(connector_name("db.example.com"), "db.example.com");
    assert_eq!(connector_name("::1"), "::1");
}

/// sslkey in each format libpq reads: PKCS#1 RSA, SEC1 EC and PKCS#8.
#[test]
fn load_identity_reads_pkcs1_sec1_and_pkcs8_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys: [(&str, &[&str], &str); 3] = [
        (
            "rsa1.key",
            &["genrsa", "-traditional", "-out", "rsa1.key", "2048"],
            "BEGIN RSA PRIVATE KEY",
        ),
        (
            "ec.key",
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                "ec.key",
            ],
            "BEGIN EC PRIVATE KEY",
        ),
        (
            "p8.key",
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                "p8.key",
            ],
            "BEGIN PRIVATE KEY",
        ),
    ];
    for (key, generate, header) in keys {
        openssl(d, generate);
        let pem = std::fs::read_to_string(d.join(key)).unwrap();
        assert!(pem.contains(header), "{key}: {pem}");
        let crt = format!("{key}.crt");
        openssl(
            d,
            &[
                "req",
                "-new",
                "-x509",
                "-key",
                key,
                "-subj",
                "/CN=probe",
                "-days",
                "30",
                "-out",
                &crt,
            ],
        );
        if let Err(e) = load_identity(&d.join(&crt), &d.join(key)) {
            panic!("{key}: {e}");
        }
    }
}
