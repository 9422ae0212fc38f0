//! Certificate revocation lists as libpq loads them and OpenSSL checks them.
//!
//! libpq (fe-secure-openssl.c) hands `sslcrl` (a PEM file) and `sslcrldir`
//! (a directory of `<hash>.r<n>` files, as `openssl rehash` names them) to
//! `X509_STORE_load_locations`, falling back to `~/.postgresql/root.crl`
//! when neither is set. Only when that load succeeds does it set
//! `X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL`: then every
//! certificate of the chain, the root included, needs a CRL from its
//! issuer (the root's own for the root), and a missing file is silently no
//! check at all. The probe does the same, and says so in a note.
//!
//! The directory is read whole at start-up (bounded below) rather than
//! looked up by name hash; a CRL counts for the certificates whose issuer
//! name matches its own, as OpenSSL's lookup ends up choosing.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateRevocationListDer;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Name};

use super::chain::{verify_signature, Budget, Signature};
use crate::certs;
use crate::conn::{self, CrlFiles};
use crate::facts::{CertProblem, CrlProblem, ProbeLimit};

/// Files read from `sslcrldir` at most; a CRL directory holds one or two
/// per CA.
const MAX_DIR_FILES: usize = 1_000;

/// One loaded CRL, with what the check needs read once.
#[derive(Debug, Clone)]
pub(crate) struct Crl {
    der: CertificateRevocationListDer<'static>,
    /// [`certs::name_key`] of the CRL's issuer.
    issuer_key: Vec<u8>,
    issuer: String,
    this_update: i64,
    next_update: Option<i64>,
    /// Serial numbers (DER INTEGER contents) of the revoked certificates.
    revoked: Vec<Vec<u8>>,
}

impl Crl {
    fn parse(der: CertificateRevocationListDer<'static>) -> Result<Crl, CrlFileProblem> {
        let (_, crl) = CertificateRevocationList::from_der(der.as_ref())
            .map_err(|e| CrlFileProblem::NotCrl(e.to_string()))?;
        Ok(Crl {
            issuer_key: certs::name_key(crl.issuer()),
            issuer: certs::name_to_string(crl.issuer()),
            this_update: crl.last_update().timestamp(),
            next_update: crl.next_update().map(|t| t.timestamp()),
            revoked: crl
                .iter_revoked_certificates()
                .map(|r| r.raw_serial().to_vec())
                .collect(),
            der,
        })
    }
}

/// Loads the CRLs the way libpq's X509_STORE_load_locations call does:
/// None means "no revocation check", as when libpq's load fails (a
/// missing file included); `notes` says why when something was asked for.
pub(crate) fn load(source: &CrlFiles, notes: &mut Vec<String>) -> Option<Vec<Crl>> {
    if source.file.is_none() && source.dir.is_none() {
        return None;
    }
    let mut crls = Vec::new();
    if let Some(file) = &source.file {
        match read_pem_crls(file) {
            Ok(found) => crls.extend(found),
            Err(why) => {
                notes.push(format!(
                    "CRL file \"{}\" not loaded ({why}); libpq then checks no revocation at all, \
                     and neither does this probe",
                    file.display()
                ));
                return None;
            }
        }
    }
    if let Some(dir) = &source.dir {
        crls.extend(read_dir_crls(dir, notes));
        if crls.is_empty() {
            // libpq sets the CRL flags for a directory whatever it holds:
            // every certificate then lacks its CRL.
            notes.push(format!(
                "sslcrldir \"{}\" holds no CRL: libpq then refuses every certificate \
                 (unable to get certificate CRL)",
                dir.display()
            ));
        }
    }
    Some(crls)
}

/// Why a CRL file was not loaded (said in the notes).
#[derive(Debug, thiserror::Error)]
enum CrlFileProblem {
    #[error(transparent)]
    Read(#[from] conn::ReadFailure),
    #[error("not valid PEM: {0}")]
    Pem(rustls_pki_types::pem::Error),
    #[error("not a valid CRL: {0}")]
    NotCrl(String),
    #[error("no PEM CRL in it")]
    Empty,
}

fn read_pem_crls(path: &Path) -> Result<Vec<Crl>, CrlFileProblem> {
    let pem = conn::read_input_file(path)?;
    let mut crls = Vec::new();
    for item in CertificateRevocationListDer::pem_slice_iter(&pem) {
        crls.push(Crl::parse(item.map_err(CrlFileProblem::Pem)?)?);
    }
    if crls.is_empty() {
        return Err(CrlFileProblem::Empty);
    }
    Ok(crls)
}

/// `openssl rehash` names: eight hex digits, `.r`, a number.
fn is_crl_hash_name(name: &str) -> bool {
    let Some((hash, n)) = name.split_once(".r") else {
        return false;
    };
    hash.len() == 8
        && hash.bytes().all(|b| b.is_ascii_hexdigit())
        && !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
}

fn read_dir_crls(dir: &Path, notes: &mut Vec<String>) -> Vec<Crl> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(is_crl_hash_name))
        .map(|e| e.path())
        .take(MAX_DIR_FILES + 1)
        .collect();
    if names.len() > MAX_DIR_FILES {
        notes.push(format!(
            "sslcrldir \"{}\": only the first {MAX_DIR_FILES} CRL files are read",
            dir.display()
        ));
        names.truncate(MAX_DIR_FILES);
    }
    names.sort();
    let mut crls = Vec::new();
    for path in names {
        match read_pem_crls(&path) {
            Ok(found) => crls.extend(found),
            Err(why) => notes.push(format!("CRL file \"{}\" skipped: {why}", path.display())),
        }
    }
    crls
}

/// One certificate of the path as the revocation check sees it: the
/// certificate (None for a bare anchor), its subject and key.
pub(super) type PathCert<'a> = (
    Option<&'a x509_parser::certificate::X509Certificate<'a>>,
    &'a X509Name<'a>,
    &'a SubjectPublicKeyInfo<'a>,
);

/// OpenSSL's check_revocation with CRL_CHECK_ALL: each certificate from the
/// leaf to the root needs a current CRL from its issuer (the next one up;
/// the root its own) that verifies and does not list it.
pub(super) fn check_revocation(
    path: &[PathCert<'_>],
    crls: &[Crl],
    now: i64,
    budget: &mut Budget,
) -> Result<(), CertProblem> {
    for (depth, (cert, _, own_key)) in path.iter().enumerate() {
        let Some(cert) = cert else { continue };
        let (issuer_key, issuer_spki) = match path.get(depth + 1) {
            Some((_, name, spki)) => (certs::name_key(name), *spki),
            None => (certs::name_key(cert.issuer()), *own_key),
        };
        let subject = certs::name_to_string(cert.subject());
        let issuer = certs::name_to_string(cert.issuer());
        let valid_now = |c: &&&Crl| c.this_update <= now && c.next_update.is_none_or(|n| n >= now);
        let from_issuer: Vec<&Crl> = crls.iter().filter(|c| c.issuer_key == issuer_key).collect();
        let crl = from_issuer
            .iter()
            .find(valid_now)
            .or_else(|| from_issuer.first())
            .ok_or(CertProblem::Crl(CrlProblem::Missing {
                subject: subject.clone(),
                issuer: issuer.clone(),
            }))?;
        budget.signature()?;
        let parsed = CertificateRevocationList::from_der(crl.der.as_ref())
            .map(|(_, c)| c)
            .map_err(|_| {
                CertProblem::Crl(CrlProblem::BadSignature {
                    issuer: crl.issuer.clone(),
                })
            })?;
        match verify_signature(issuer_spki, |k| parsed.verify_signature(k)) {
            Ok(()) => {}
            Err(Signature::Bad) => {
                return Err(CertProblem::Crl(CrlProblem::BadSignature {
                    issuer: crl.issuer.clone(),
                }))
            }
            Err(Signature::Unsupported) => {
                return Err(CertProblem::ProbeCannotVerify(ProbeLimit::ChainSignature {
                    subject: format!("the CRL of {}", crl.issuer),
                    algorithm: parsed.signature_algorithm.algorithm.to_id_string(),
                    key: certs::key_description(issuer_spki),
                }))
            }
        }
        if crl.this_update > now {
            return Err(CertProblem::Crl(CrlProblem::NotYetValid {
                issuer: crl.issuer.clone(),
                this_update: crl.this_update,
            }));
        }
        if let Some(next_update) = crl.next_update.filter(|n| *n < now) {
            return Err(CertProblem::Crl(CrlProblem::Expired {
                issuer: crl.issuer.clone(),
                next_update,
            }));
        }
        if crl.revoked.iter().any(|s| s == cert.raw_serial()) {
            return Err(CertProblem::Revoked {
                subject,
                serial: crate::hex::lower(cert.raw_serial(), ":"),
                crl: crl.issuer.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::SslMode;
    use crate::fixtures::pki::*;
    use crate::tls::{judge_chain, TrustStore};
    use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};

    /// A CRL by `issuer`, valid at [`AT`] unless `until` says otherwise,
    /// revoking `serials`.
    fn crl_pem(issuer: &Issuer, serials: &[u64], until: (i32, u8)) -> String {
        CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 6, 1),
            next_update: rcgen::date_time_ymd(until.0, until.1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: rcgen::date_time_ymd(2024, 6, 1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(issuer)
        .unwrap()
        .pem()
        .unwrap()
    }

    fn with_crl_file(store: TrustStore, pem: &str) -> (TrustStore, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("root.crl");
        std::fs::write(&file, pem).unwrap();
        let mut notes = Vec::new();
        let files = CrlFiles {
            file: Some(file),
            dir: None,
        };
        (store.with_crls(&files, &mut notes), notes)
    }

    fn serial_leaf(serial: u64, issuer: &Issuer) -> rustls_pki_types::CertificateDer<'static> {
        let mut p = leaf_params(&["db.example.com"], None);
        p.serial_number = Some(SerialNumber::from(serial));
        sign(p, issuer)
    }

    fn judge_crl(
        chain: &[rustls_pki_types::CertificateDer<'static>],
        store: &TrustStore,
    ) -> crate::facts::CertChainFacts {
        judge_chain(chain, store, SslMode::VerifyFull, "db.example.com", AT)
    }

    #[test]
    fn revoked_leaf_names_serial_and_crl() {
        let ca = root("CRL CA");
        let (store, notes) = with_crl_file(trust(&[&ca]), &crl_pem(&ca, &[42], (2026, 1)));
        assert!(notes.is_empty(), "{notes:?}");
        let facts = judge_crl(&[serial_leaf(42, &ca)], &store);
        assert_eq!(
            libpq_problem(&facts),
            CertProblem::Revoked {
                subject: "CN=rcgen self signed cert".into(),
                serial: "2a".into(),
                crl: "CN=CRL CA".into()
            }
        );
        let facts = judge_crl(&[serial_leaf(43, &ca)], &store);
        assert_eq!(facts.libpq, Some(Ok(())));
        assert_eq!(facts.crls_checked, Some(1));
    }

    /// CRL_CHECK_ALL: with a CRL loaded, the intermediate's certificates
    /// need one from it too, and the root its own.
    #[test]
    fn every_ca_needs_its_crl() {
        let ca = root("Root CA");
        let int = intermediate("Int CA", |_| {}, &ca);
        let chain = [serial_leaf(7, &int), int.der().clone()];
        let (store, _) = with_crl_file(trust(&[&ca]), &crl_pem(&ca, &[], (2026, 1)));
        assert_eq!(
            libpq_problem(&judge_crl(&chain, &store)),
            CertProblem::Crl(CrlProblem::Missing {
                subject: "CN=rcgen self signed cert".into(),
                issuer: "CN=Int CA".into()
            })
        );
        let both = crl_pem(&ca, &[], (2026, 1)) + &crl_pem(&int, &[], (2026, 1));
        let (store, _) = with_crl_file(trust(&[&ca]), &both);
        assert_eq!(judge_crl(&chain, &store).libpq, Some(Ok(())));
        let (store, _) = with_crl_file(trust(&[&ca]), &crl_pem(&int, &[], (2026, 1)));
        assert_eq!(
            libpq_problem(&judge_crl(&chain, &store)),
            CertProblem::Crl(CrlProblem::Missing {
                subject: "CN=Int CA".into(),
                issuer: "CN=Root CA".into()
            })
        );
    }

    #[test]
    fn expired_crl_fails_as_openssl_fails() {
        let ca = root("CRL CA");
        let (store, _) = with_crl_file(trust(&[&ca]), &crl_pem(&ca, &[], (2024, 12)));
        assert!(matches!(
            libpq_problem(&judge_crl(&[serial_leaf(1, &ca)], &store)),
            CertProblem::Crl(CrlProblem::Expired { .. })
        ));
    }

    #[test]
    fn a_crl_signed_by_another_key_fails() {
        let ca = root("CRL CA");
        let impostor = root("CRL CA");
        let (store, _) = with_crl_file(trust(&[&ca]), &crl_pem(&impostor, &[], (2026, 1)));
        assert!(matches!(
            libpq_problem(&judge_crl(&[serial_leaf(1, &ca)], &store)),
            CertProblem::Crl(CrlProblem::BadSignature { .. })
        ));
    }

    /// A file that is missing or holds no CRL: libpq checks nothing, silently;
    /// the probe does the same and says so. An empty directory fails everything.
    #[test]
    fn unloadable_sources_follow_libpq() {
        let ca = root("CRL CA");
        let dir = tempfile::tempdir().unwrap();
        let mut notes = Vec::new();
        let store = trust(&[&ca]).with_crls(
            &CrlFiles {
                file: Some(dir.path().join("missing.crl")),
                dir: None,
            },
            &mut notes,
        );
        assert_eq!(
            judge_crl(&[serial_leaf(1, &ca)], &store).libpq,
            Some(Ok(()))
        );
        assert!(notes[0].contains("checks no revocation"), "{notes:?}");

        let mut notes = Vec::new();
        let store = trust(&[&ca]).with_crls(
            &CrlFiles {
                file: None,
                dir: Some(dir.path().to_path_buf()),
            },
            &mut notes,
        );
        assert!(matches!(
            libpq_problem(&judge_crl(&[serial_leaf(1, &ca)], &store)),
            CertProblem::Crl(CrlProblem::Missing { .. })
        ));
        std::fs::write(dir.path().join("0a1b2c3d.r0"), crl_pem(&ca, &[], (2026, 1))).unwrap();
        std::fs::write(dir.path().join("README"), "not a CRL").unwrap();
        let mut notes = Vec::new();
        let store = trust(&[&ca]).with_crls(
            &CrlFiles {
                file: None,
                dir: Some(dir.path().to_path_buf()),
            },
            &mut notes,
        );
        assert_eq!(
            judge_crl(&[serial_leaf(1, &ca)], &store).libpq,
            Some(Ok(()))
        );
        assert!(notes.is_empty(), "{notes:?}");
    }
}
