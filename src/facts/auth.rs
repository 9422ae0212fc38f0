//! How the verify-full session authenticated, as the wire tap saw it
//! (probe/wire.rs) and the handshake's client-certificate exchange.
//!
//! Observation only: which requests the server sent and what the client
//! answered. `policy` says what a method means for the recipe.

use super::WireRecord;

/// AuthenticationRequest codes (protocol "Message Formats").
pub mod code {
    pub const OK: u32 = 0;
    pub const KERBEROS_V5: u32 = 2;
    pub const CLEARTEXT: u32 = 3;
    pub const MD5: u32 = 5;
    pub const GSS: u32 = 7;
    pub const GSS_CONTINUE: u32 = 8;
    pub const SSPI: u32 = 9;
    pub const SASL: u32 = 10;
    pub const SASL_CONTINUE: u32 = 11;
    pub const SASL_FINAL: u32 = 12;
}

/// The method that authenticated the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// No authentication request and no client certificate: pg_hba `trust`
    /// (or a pooler's `auth_type = trust`/`any`).
    Trust,
    /// No authentication request, and the server verified the client
    /// certificate the probe sent: pg_hba `cert` (or `trust` with
    /// `clientcert`, which looks the same on the wire).
    Certificate,
    /// The password in clear (inside TLS): pg_hba `password`, `ldap`, ...
    Password,
    /// The md5 challenge.
    Md5,
    /// SCRAM-SHA-256 without channel binding.
    ScramSha256,
    /// SCRAM-SHA-256-PLUS, bound to the TLS session by `channel_binding`
    /// (the GS2 channel-binding type, `tls-server-end-point`).
    ScramSha256Plus {
        channel_binding: String,
    },
    /// GSSAPI or SSPI (Kerberos).
    Gss,
    Sspi,
    /// A SASL mechanism other than SCRAM (OAUTHBEARER, PostgreSQL 18).
    OtherSasl(String),
    /// A request code this probe does not know.
    Unknown(u32),
}

impl AuthMethod {
    /// The name used in JSON (`auth.method`).
    pub fn name(&self) -> &'static str {
        match self {
            AuthMethod::Trust => "trust",
            AuthMethod::Certificate => "certificate",
            AuthMethod::Password => "password",
            AuthMethod::Md5 => "md5",
            AuthMethod::ScramSha256 => "scram-sha-256",
            AuthMethod::ScramSha256Plus { .. } => "scram-sha-256-plus",
            AuthMethod::Gss => "gss",
            AuthMethod::Sspi => "sspi",
            AuthMethod::OtherSasl(_) => "sasl",
            AuthMethod::Unknown(_) => "unknown",
        }
    }
}

impl std::fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthMethod::Trust => f.write_str("trust (no credential asked)"),
            AuthMethod::Certificate => f.write_str("client certificate (no password asked)"),
            AuthMethod::Password => f.write_str("cleartext password"),
            AuthMethod::Md5 => f.write_str("md5 password"),
            AuthMethod::ScramSha256 => f.write_str("SCRAM-SHA-256"),
            AuthMethod::ScramSha256Plus { channel_binding } => {
                write!(f, "SCRAM-SHA-256-PLUS (channel binding {channel_binding})")
            }
            AuthMethod::Gss => f.write_str("GSSAPI"),
            AuthMethod::Sspi => f.write_str("SSPI"),
            AuthMethod::OtherSasl(m) => write!(f, "SASL {m}"),
            AuthMethod::Unknown(code) => write!(f, "authentication request {code}"),
        }
    }
}

/// Whether the server asked for a client certificate in the TLS handshake
/// and whether the probe sent one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCertExchange {
    pub requested: bool,
    pub sent: bool,
}

/// The session's authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAuth {
    pub method: AuthMethod,
    /// The SASL mechanisms the server offered (empty without SASL).
    pub offered: Vec<String>,
    /// The client certificate exchange of the handshake.
    pub client_cert: ClientCertExchange,
    /// AuthenticationOk arrived: the login succeeded.
    pub completed: bool,
}

impl WireRecord {
    /// The method, from the first authentication request (the one that
    /// decides: SASL steps and AuthenticationOk follow it); None when no
    /// request of any kind was seen.
    pub fn auth(&self, client_cert: ClientCertExchange) -> Option<SessionAuth> {
        let first = self.auth_requests.first()?;
        let completed = self.auth_requests.iter().any(|r| r.code == code::OK);
        let method = match first.code {
            code::OK if client_cert.sent => AuthMethod::Certificate,
            code::OK => AuthMethod::Trust,
            code::CLEARTEXT => AuthMethod::Password,
            code::MD5 => AuthMethod::Md5,
            code::GSS => AuthMethod::Gss,
            code::SSPI => AuthMethod::Sspi,
            code::SASL => match (self.sasl_mechanism.as_deref(), &self.channel_binding) {
                (Some("SCRAM-SHA-256-PLUS"), Some(binding)) => AuthMethod::ScramSha256Plus {
                    channel_binding: binding.clone(),
                },
                (Some("SCRAM-SHA-256-PLUS"), None) => AuthMethod::ScramSha256Plus {
                    channel_binding: "unknown".into(),
                },
                (Some("SCRAM-SHA-256") | None, _) => AuthMethod::ScramSha256,
                (Some(other), _) => AuthMethod::OtherSasl(other.to_string()),
            },
            other => AuthMethod::Unknown(other),
        };
        Some(SessionAuth {
            method,
            offered: first.mechanisms.clone(),
            client_cert,
            completed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::AuthRequestSeen;

    fn record(codes: &[u32], mechanism: Option<&str>, binding: Option<&str>) -> WireRecord {
        WireRecord {
            auth_requests: codes
                .iter()
                .map(|&code| AuthRequestSeen {
                    code,
                    mechanisms: if code == code::SASL {
                        vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()]
                    } else {
                        vec![]
                    },
                })
                .collect(),
            sasl_mechanism: mechanism.map(str::to_string),
            channel_binding: binding.map(str::to_string),
            ..WireRecord::default()
        }
    }

    #[test]
    fn each_method_from_its_requests() {
        let none = ClientCertExchange::default();
        let sent = ClientCertExchange {
            requested: true,
            sent: true,
        };
        let method = |r: WireRecord, cert| r.auth(cert).map(|a| a.method);
        assert_eq!(
            method(record(&[0], None, None), none),
            Some(AuthMethod::Trust)
        );
        assert_eq!(
            method(record(&[0], None, None), sent),
            Some(AuthMethod::Certificate)
        );
        assert_eq!(
            method(record(&[5, 0], None, None), none),
            Some(AuthMethod::Md5)
        );
        assert_eq!(
            method(record(&[3, 0], None, None), none),
            Some(AuthMethod::Password)
        );
        assert_eq!(
            method(record(&[10, 0], Some("SCRAM-SHA-256"), None), none),
            Some(AuthMethod::ScramSha256)
        );
        let plus = record(
            &[10, 0],
            Some("SCRAM-SHA-256-PLUS"),
            Some("tls-server-end-point"),
        )
        .auth(none)
        .unwrap();
        assert_eq!(
            plus.method,
            AuthMethod::ScramSha256Plus {
                channel_binding: "tls-server-end-point".into()
            }
        );
        assert!(plus.completed);
        assert_eq!(plus.offered, ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]);
        assert_eq!(record(&[], None, None).auth(none), None);
        // Refused before AuthenticationOk: the method is known, not completed.
        assert!(!record(&[5], None, None).auth(none).unwrap().completed);
    }
}
