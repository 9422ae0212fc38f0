//! Test PKI generated with rcgen at test time (style habit 9: nothing that
//! expires is committed).
//!
//! A [`Ca`] issues server leaves, client certificates and intermediate CAs.
//! Validity windows are relative to now so the expiry scenarios stay correct
//! whenever the suite runs. `pg.rs` writes the PEM strings to disk; the
//! article's exact v1 certificate comes from `docker/postgres/make-certs.sh`,
//! not from here.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// A certificate authority: its certificate (PEM) and the means to sign.
pub struct Ca {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// An issued certificate with its private key, both PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// When a certificate is valid, relative to now.
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// Valid from yesterday for a year.
    pub fn normal() -> Self {
        Self::window(-1, 365)
    }

    /// Valid from `from_days` to `until_days` relative to now. An extra hour
    /// on `until_days` keeps "expires in N days" from rounding down to N-1.
    pub fn window(from_days: i64, until_days: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now + Duration::days(from_days),
            not_after: now + Duration::days(until_days) + Duration::hours(1),
        }
    }
}

impl Ca {
    /// A self-signed root CA, valid for ten years.
    pub fn root(common_name: &str) -> Ca {
        Ca::root_valid(common_name, Validity::window(-1, 3650))
    }

    /// A self-signed root CA valid over `validity`.
    pub fn root_valid(common_name: &str, validity: Validity) -> Ca {
        let key = KeyPair::generate().expect("generate CA key");
        let params = ca_params(common_name, validity);
        let cert = params.self_signed(&key).expect("self-sign CA");
        Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A self-signed root CA with an Ed25519 key: what it signs carries an
    /// Ed25519 signature, which has no hash for SCRAM channel binding.
    pub fn root_ed25519(common_name: &str) -> Ca {
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("generate Ed25519 CA key");
        let params = ca_params(common_name, Validity::window(-1, 3650));
        let cert = params.self_signed(&key).expect("self-sign CA");
        Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// An intermediate CA signed by this one, valid for ten years.
    pub fn intermediate(&self, common_name: &str) -> Ca {
        self.intermediate_valid(common_name, Validity::window(-1, 3650))
    }

    /// An intermediate CA signed by this one, valid over `validity`.
    pub fn intermediate_valid(&self, common_name: &str, validity: Validity) -> Ca {
        let key = KeyPair::generate().expect("generate intermediate key");
        let params = ca_params(common_name, validity);
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign intermediate");
        Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate with these subjectAltNames (DNS names or IP
    /// literals) and the first name as CN.
    pub fn server(&self, names: &[&str], validity: Validity) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("server SANs");
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].as_str());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        self.issue(params)
    }

    /// A client certificate whose CN is the PostgreSQL role name, which is
    /// what `clientcert=verify-full` and the `cert` method compare.
    pub fn client(&self, role: &str) -> Issued {
        self.client_valid(role, Validity::normal())
    }

    /// [`Ca::client`] valid over `validity`.
    pub fn client_valid(&self, role: &str, validity: Validity) -> Issued {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, role);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = validity.not_before;
        params.not_after = validity.not_after;
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> Issued {
        let key = KeyPair::generate().expect("generate leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

fn ca_params(common_name: &str, validity: Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params
}
