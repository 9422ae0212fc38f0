//! What the handshake showed of the server's certificates, and the typed
//! reasons libpq's rules (OpenSSL) or strict verifiers (webpki) refuse
//! them. The `Display` of each reason is the sentence an engineer would
//! act on, modelled on OpenSSL's verify errors.

use std::fmt;

/// One X.509 certificate as the probe saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// X.509 version as written in the certificate (1, 2 or 3).
    pub version: u32,
    /// Subject distinguished name, RFC 4514 style.
    pub subject: String,
    pub issuer: String,
    /// Serial number as colon-separated hex, leading zeros kept.
    pub serial: String,
    /// Validity window, seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// Common Name(s) of the subject, in order.
    pub common_names: Vec<String>,
    /// dNSName entries of subjectAltName.
    pub san_dns: Vec<String>,
    /// iPAddress entries of subjectAltName, in text form.
    pub san_ip: Vec<String>,
    /// Key type and size, e.g. "RSA 2048", "EC P-256", "Ed25519".
    pub key: String,
    /// Signature algorithm name, e.g. "sha256WithRSAEncryption".
    pub signature_algorithm: String,
    /// basicConstraints cA flag (false when the extension is absent).
    pub is_ca: bool,
    pub self_signed: bool,
    /// SHA-256 of the DER, uppercase colon-separated hex.
    pub sha256_fingerprint: String,
    /// How SCRAM channel binding hashes this certificate.
    pub end_point_hash: EndPointHash,
}

/// The hash RFC 5929's `tls-server-end-point` channel binding takes of the
/// server's certificate, as libpq and the server compute it: the
/// signature's own hash (RSA-PSS's from its parameters), MD5 and SHA-1
/// raised to SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndPointHash {
    Sha256,
    Sha384,
    Sha512,
    /// A signature with no separate hash (Ed25519, Ed448): OpenSSL names
    /// none, and libpq fails every login that uses channel binding, with
    /// "could not find digest for NID UNDEF".
    NoDigest,
    /// One the probe cannot compute (SHA-224, an unknown algorithm).
    Unknown,
}

/// Where trusted certificates came from, for "not found in ..." reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustSource {
    /// An sslrootcert PEM file.
    File,
    /// `sslrootcert=system`.
    System,
}

impl fmt::Display for TrustSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrustSource::File => "sslrootcert",
            TrustSource::System => "the system roots (sslrootcert=system)",
        })
    }
}

/// Which certificates `sslrootcert=system` trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemStore {
    /// The OS store as OpenSSL finds it (so libpq 16+): the bundle file
    /// and the `openssl rehash` directories, from `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR` where set.
    Os {
        file: Option<std::path::PathBuf>,
        dirs: Vec<std::path::PathBuf>,
        certificates: usize,
    },
    /// No OS store on this machine (libpq here would trust nothing): the
    /// webpki-roots set (Mozilla's), as the clients' own machines would have.
    WebpkiRoots { certificates: usize },
}

impl fmt::Display for SystemStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SystemStore::Os {
                file,
                dirs,
                certificates,
            } => {
                let places: Vec<String> = file
                    .iter()
                    .chain(dirs)
                    .map(|p| p.display().to_string())
                    .collect();
                write!(
                    f,
                    "the OS store ({}: {certificates} certificates)",
                    places.join(", ")
                )
            }
            SystemStore::WebpkiRoots { certificates } => write!(
                f,
                "webpki-roots' {certificates} certificates (no OS store on this machine, where \
                 libpq would trust none)"
            ),
        }
    }
}

/// No path from the presented chain to a trusted certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuerNotFound {
    #[error("self-signed certificate \"{subject}\" is not in {trust}")]
    SelfSignedLeaf { subject: String, trust: TrustSource },
    #[error("self-signed certificate \"{subject}\" in the chain is not in {trust}")]
    SelfSignedInChain { subject: String, trust: TrustSource },
    #[error("issuer \"{issuer}\" not found in {trust}")]
    Issuer { issuer: String, trust: TrustSource },
    #[error(
        "issuer \"{issuer}\" of trusted certificate \"{subject}\" not found in {trust} \
         (OpenSSL needs the chain to end at a self-signed root)"
    )]
    OfTrusted {
        issuer: String,
        subject: String,
        trust: TrustSource,
    },
    /// A certificate with the issuer's name is there, but its
    /// subjectKeyIdentifier is not the authorityKeyIdentifier: OpenSSL does
    /// not take it as the issuer, whatever the signature says.
    #[error(
        "issuer \"{issuer}\" not found in {trust}: a certificate of that name is there, \
         but its subjectKeyIdentifier does not match the authorityKeyIdentifier"
    )]
    KeyIdMismatch { issuer: String, trust: TrustSource },
    #[error("no trusted certificate ends the chain")]
    NoTrustedEnd,
}

/// How a certificate's purpose extensions forbid TLS server use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Purpose {
    /// anyExtendedKeyUsage does not count: OpenSSL's SSL server purpose
    /// needs serverAuth (or the old SGC OIDs) itself.
    #[error("extendedKeyUsage lacks serverAuth (has {0})")]
    LeafEku(String),
    #[error("keyUsage allows none of digitalSignature, keyEncipherment, keyAgreement")]
    LeafKeyUsage,
    #[error("CA extendedKeyUsage lacks serverAuth (has {0})")]
    CaEku(String),
}

/// Why a leaf name breaks a CA's nameConstraints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintBreach {
    #[error("not in any permitted subtree")]
    NotPermitted,
    #[error("in an excluded subtree")]
    Excluded,
    #[error("directoryName constraints are not evaluated by pg-tls-probe; treated as a violation")]
    DirectoryNameNotEvaluated,
    #[error(
        "constraints of this name type are not evaluated by pg-tls-probe; treated as a violation"
    )]
    TypeNotEvaluated,
}

/// Why a certificate chain fails libpq's `verify-ca`/`verify-full` rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertProblem {
    #[error("certificate signed by an unknown issuer: {0}")]
    UnknownIssuer(IssuerNotFound),
    #[error("certificate {subject} expired on {}", super::date(*.not_after))]
    Expired { subject: String, not_after: i64 },
    #[error("certificate {subject} is not valid until {}", super::date(*.not_before))]
    NotYetValid { subject: String, not_before: i64 },
    /// The host name (or IP) the client asked for is not in the certificate.
    #[error("host name \"{host}\" does not match the certificate (names: {})", names(.presented))]
    NameMismatch {
        host: String,
        presented: Vec<String>,
    },
    /// A signature in the chain does not verify.
    #[error("signature on certificate {subject} does not verify")]
    BadSignature { subject: String },
    /// An issuing certificate is not allowed to act as a CA.
    #[error("issuing certificate {subject} is not a CA")]
    NotCa { subject: String },
    #[error("certificate {subject} is not for TLS servers: {purpose}")]
    BadPurpose { subject: String, purpose: Purpose },
    /// The server sent no certificate, or one that does not parse.
    #[error("malformed certificate: {detail}")]
    Malformed { detail: String },
    /// A critical extension OpenSSL does not process: it refuses such
    /// certificates rather than ignore what the issuer insisted on.
    #[error("certificate {subject} has a critical extension OpenSSL does not handle ({oid})")]
    UnhandledCriticalExtension { subject: String, oid: String },
    /// OpenSSL security level 2 (Debian's default, so libpq's): RSA and DSA
    /// keys under 2048 bits, EC keys under 224 bits.
    #[error(
        "{} certificate {subject} key too weak: {key} is below OpenSSL security level 2 \
         (RSA needs 2048 bits)",
        if *.ca { "CA" } else { "server" }
    )]
    KeyTooWeak {
        subject: String,
        key: String,
        ca: bool,
    },
    /// A signature over SHA-1 or MD5 below the trust anchor: OpenSSL 3
    /// counts those digests as broken ("CA signature digest algorithm too weak").
    #[error(
        "certificate {subject} is signed with {algorithm}: digest too weak for OpenSSL \
         security level 2"
    )]
    DigestTooWeak { subject: String, algorithm: String },
    /// A CA's pathLenConstraint is smaller than the intermediates below it.
    #[error(
        "path length constraint exceeded: CA {subject} allows {limit} intermediate(s) below it"
    )]
    PathLengthExceeded { subject: String, limit: u32 },
    /// More intermediates than OpenSSL's default verify depth.
    #[error("certificate chain too long: more than {0} intermediate certificates")]
    ChainTooLong(usize),
    /// Path building ran out of its budget: a chain or trust store built to
    /// make verification expensive.
    #[error(
        "certificate path building gave up after {candidates} candidate issuers and \
         {signatures} signature checks (the budget; a hostile chain or CA bundle?)"
    )]
    BudgetExhausted {
        candidates: usize,
        signatures: usize,
    },
    /// A CRL (sslcrl/sslcrldir) lists the certificate.
    #[error("certificate {subject} (serial {serial}) is revoked by the CRL of {crl}")]
    Revoked {
        subject: String,
        serial: String,
        crl: String,
    },
    /// A CRL was loaded, so OpenSSL checks every certificate of the chain
    /// (X509_V_FLAG_CRL_CHECK_ALL) and fails one whose issuer has none.
    #[error("{0}")]
    Crl(CrlProblem),
    /// The probe's own crypto cannot verify a signature libpq (OpenSSL)
    /// would: no verdict of libpq's rules, and no credential sent.
    #[error("{0}")]
    ProbeCannotVerify(ProbeLimit),
    /// A name in the leaf lies outside a CA's nameConstraints.
    #[error("name \"{name}\" violates the name constraints of CA {ca}: {breach}")]
    NameConstraint {
        ca: String,
        name: String,
        breach: ConstraintBreach,
    },
}

/// Why revocation could not be settled the way OpenSSL settles it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlProblem {
    #[error(
        "unable to get certificate CRL: no CRL from {issuer} (issuer of {subject}); with \
         sslcrl/sslcrldir set, libpq needs one for every certificate in the chain"
    )]
    Missing { subject: String, issuer: String },
    #[error("CRL of {issuer} has expired (nextUpdate {})", super::date(*.next_update))]
    Expired { issuer: String, next_update: i64 },
    #[error("CRL of {issuer} is not yet valid (thisUpdate {})", super::date(*.this_update))]
    NotYetValid { issuer: String, this_update: i64 },
    #[error("CRL signature failure: the CRL of {issuer} does not verify with its key")]
    BadSignature { issuer: String },
}

/// What the probe's own crypto provider (ring) cannot do that OpenSSL can.
/// Not a fault of the server: policy must not blame it for these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeLimit {
    /// A signature in the chain the probe cannot check.
    #[error(
        "the probe cannot verify the {algorithm} signature on {subject} (issuer key {key}): \
         its crypto provider (ring) lacks it, OpenSSL does not"
    )]
    ChainSignature {
        subject: String,
        algorithm: String,
        key: String,
    },
    /// The server's key cannot sign a TLS handshake the probe can check.
    #[error(
        "the probe cannot verify TLS handshake signatures made with the server's {key} key \
         (its crypto provider, ring, lacks it; OpenSSL and libpq do not)"
    )]
    HandshakeKey { key: String },
    /// The server refused rustls' ClientHello and answered one as libpq's
    /// OpenSSL sends it with a suite or group rustls lacks.
    #[error("{}", negotiated(*.version, *.lacking))]
    Negotiated {
        version: super::TlsVersion,
        lacking: super::Lacking,
    },
}

fn negotiated(version: super::TlsVersion, lacking: super::Lacking) -> String {
    let (what, chosen) = match lacking {
        super::Lacking::Suite(suite) => ("cipher suite", super::suite_name(suite)),
        super::Lacking::Group(group) => ("key-exchange group", super::group_name(group)),
    };
    format!(
        "the server refused the probe's ClientHello; to one as libpq's OpenSSL sends it, it \
         chose {what} {chosen} ({}), which the probe's TLS stack (rustls with ring) lacks",
        version.name()
    )
}

fn names(presented: &[String]) -> String {
    if presented.is_empty() {
        "none".to_string()
    } else {
        presented.join(", ")
    }
}

/// Why webpki (rustls, and most clients that are not libpq) refuses the
/// chain, from its typed error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrictProblem {
    /// No certificate of sslrootcert is usable by webpki.
    NoUsableRoot,
    /// The host is not among the leaf's subjectAltName entries (listed).
    NameNotInSan {
        presented: Vec<String>,
    },
    Webpki(webpki::Error),
}

impl fmt::Display for StrictProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use webpki::Error as E;
        let text = match self {
            StrictProblem::NoUsableRoot => {
                "no trusted certificate usable by strict verifiers".to_string()
            }
            StrictProblem::NameNotInSan { presented } => {
                format!(
                    "host name not in subjectAltName (has: {})",
                    names(presented)
                )
            }
            StrictProblem::Webpki(e) => match e {
                E::UnsupportedCertVersion => {
                    "unsupported certificate version (webpki parses only X.509 v3)".to_string()
                }
                E::BadDer | E::BadDerTime | E::TrailingData(_) => {
                    "certificate encoding rejected (webpki parses only X.509 v3)".to_string()
                }
                E::CertExpired { .. } | E::InvalidCertValidity => {
                    "a certificate in the chain has expired".to_string()
                }
                E::CertNotValidYet { .. } => "a certificate in the chain is not yet valid".into(),
                E::UnknownIssuer => "no path to a trusted root".into(),
                E::InvalidSignatureForPublicKey => {
                    "a signature in the chain does not verify".to_string()
                }
                #[allow(deprecated)]
                E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => {
                    "certificate not valid for TLS server use (extendedKeyUsage)".to_string()
                }
                E::CaUsedAsEndEntity => "a CA certificate is used as the server certificate".into(),
                E::EndEntityUsedAsCa => "a non-CA certificate is used as an issuer".into(),
                E::PathLenConstraintViolated => "a CA's path length constraint is exceeded".into(),
                E::NameConstraintViolation => "a name violates a CA's name constraints".into(),
                E::UnsupportedCriticalExtension => "an unsupported critical extension".into(),
                E::MaximumPathDepthExceeded
                | E::MaximumPathBuildCallsExceeded
                | E::MaximumSignatureChecksExceeded => {
                    "the chain is too long or too tangled for webpki".to_string()
                }
                #[allow(deprecated)]
                E::UnsupportedSignatureAlgorithm
                | E::UnsupportedSignatureAlgorithmContext(_)
                | E::UnsupportedSignatureAlgorithmForPublicKey
                | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
                | E::SignatureAlgorithmMismatch => {
                    "a signature algorithm in the chain is not supported by webpki".to_string()
                }
                other => {
                    // The variant's name, without any Debug payload.
                    let debug = format!("{other:?}");
                    let name = debug.split(['(', ' ', '{']).next().unwrap_or("unknown");
                    format!("refused by webpki ({name})")
                }
            },
        };
        f.write_str(&text)
    }
}

/// Why strict verifiers reject what libpq accepts, most specific first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrictOnlyIssue {
    /// The leaf is not X.509 v3.
    LeafVersion(u32),
    /// The host name matched only the CN; `has_san` when a SAN exists.
    CommonNameOnly {
        has_san: bool,
    },
    IntermediateVersion {
        subject: String,
        version: u32,
    },
    /// None of the above: webpki's own reason.
    Other(StrictProblem),
}

impl fmt::Display for StrictOnlyIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StrictOnlyIssue::LeafVersion(v) => write!(
                f,
                "X.509 v{v} certificate (strict verifiers parse only v3)"
            ),
            StrictOnlyIssue::CommonNameOnly { has_san: true } => f.write_str(
                "host name only in the CN, not in subjectAltName (strict verifiers ignore the CN)",
            ),
            StrictOnlyIssue::CommonNameOnly { has_san: false } => f.write_str(
                "no subjectAltName; host name only in the CN (strict verifiers ignore the CN)",
            ),
            StrictOnlyIssue::IntermediateVersion { subject, version } => write!(
                f,
                "intermediate \"{subject}\" is an X.509 v{version} certificate (strict verifiers parse only v3)"
            ),
            StrictOnlyIssue::Other(problem) => problem.fmt(f),
        }
    }
}

/// Everything learned about the server's certificate during the handshake.
///
/// Recorded before any verdict is reached, so it is present even when
/// verification (and therefore login) fails.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CertChainFacts {
    /// Certificates the server sent, leaf first.
    pub presented: Vec<CertFacts>,
    /// The sslrootcert certificate the chain ends at, when one was found.
    pub anchor: Option<CertFacts>,
    /// Host name the name check used (None under verify-ca).
    pub checked_name: Option<String>,
    /// libpq's rules: `None` when the handshake never reached the certificate.
    pub libpq: Option<Result<(), CertProblem>>,
    /// The strict (webpki) view.
    pub strict: Option<Result<(), StrictProblem>>,
    /// Why strict clients disagree with libpq (e.g. an X.509 v1 certificate).
    pub strict_only_issues: Vec<StrictOnlyIssue>,
    /// CRLs loaded when revocation was checked (sslcrl/sslcrldir); None
    /// when libpq's rules check none.
    pub crls_checked: Option<usize>,
    /// With `sslrootcert=system`: the store that decided.
    pub system_store: Option<SystemStore>,
}
