//! libpq keywords that change what libpq accepts, parsed as libpq 17/18
//! parses them (fe-connect.c), with libpq's wording for bad values.
//!
//! Each type says what the probe must refuse, or do, to reach libpq's
//! verdict; the probe enforces them (probe/wire.rs for `require_auth`,
//! probe/session.rs for the rest) and `policy` words the outcome.

use std::fmt;

use super::UsageError;
use crate::facts::auth_code as code;
use crate::facts::TlsVersion;

/// `require_auth`: which authentication requests the client answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequireAuth {
    /// The value as given, for messages (libpq quotes it whole).
    pub text: String,
    /// Bit `1 << code` for each AuthenticationRequest code allowed.
    allowed: u32,
    /// The server must run an authentication exchange to completion
    /// (false when `none` is listed, or with a negated list without `!none`).
    required: bool,
    /// SCRAM allowed as a SASL mechanism (libpq 18 checks the mechanism
    /// as well as the request: `oauth` also allows SASL requests).
    scram: bool,
}

/// Why a `require_auth` requirement refused the server's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRefusal {
    /// The server asked for a method not allowed (its request code).
    Requested(u32),
    /// AuthenticationOk before any allowed exchange completed.
    NotCompleted,
    /// A SASL request allowed, but not the SCRAM mechanism libpq would pick.
    Mechanism(String),
}

impl AuthRefusal {
    /// libpq's reason after "authentication method requirement ... failed: ".
    pub fn reason(&self) -> String {
        match self {
            AuthRefusal::Mechanism(m) => format!("server requested {m} authentication"),
            other => other.request_reason().to_string(),
        }
    }

    fn request_reason(&self) -> &'static str {
        match self {
            AuthRefusal::Mechanism(_) => "server requested SASL authentication",
            AuthRefusal::NotCompleted => "server did not complete authentication",
            AuthRefusal::Requested(code::CLEARTEXT) => "server requested a cleartext password",
            AuthRefusal::Requested(code::MD5) => "server requested a hashed password",
            AuthRefusal::Requested(code::GSS | code::GSS_CONTINUE) => {
                "server requested GSSAPI authentication"
            }
            AuthRefusal::Requested(code::SSPI) => "server requested SSPI authentication",
            AuthRefusal::Requested(code::SASL | code::SASL_CONTINUE | code::SASL_FINAL) => {
                "server requested SASL authentication"
            }
            AuthRefusal::Requested(_) => "server requested an unknown authentication type",
        }
    }
}

const fn bits(codes: &[u32]) -> u32 {
    let mut out = 0;
    let mut i = 0;
    while i < codes.len() {
        out |= 1 << codes[i];
        i += 1;
    }
    out
}

impl RequireAuth {
    /// Parses libpq's syntax: a comma list of `password`, `md5`, `gss`,
    /// `sspi`, `scram-sha-256`, `oauth` (libpq 18) and `none`, either all
    /// plain (allowed) or all negated with `!` (forbidden). None when empty.
    pub fn parse(text: &str) -> Result<Option<RequireAuth>, UsageError> {
        if text.is_empty() {
            return Ok(None);
        }
        let mut req = RequireAuth {
            text: text.to_string(),
            allowed: 0,
            required: true,
            scram: false,
        };
        let mut negated = false;
        let mut seen: Vec<&str> = Vec::new();
        for (i, part) in text.split(',').enumerate() {
            // libpq's list parser drops surrounding whitespace.
            let part = part.trim_matches(|c: char| c.is_ascii_whitespace());
            let method = match part.strip_prefix('!') {
                Some(rest) => {
                    if i == 0 {
                        req.required = false;
                        req.allowed = u32::MAX;
                        req.scram = true;
                        negated = true;
                    } else if !negated {
                        return Err(UsageError(format!(
                            "negative require_auth method \"{part}\" cannot be mixed with non-negative methods"
                        )));
                    }
                    rest
                }
                None if negated => {
                    return Err(UsageError(format!(
                        "require_auth method \"{part}\" cannot be mixed with negative methods"
                    )))
                }
                None => part,
            };
            let duplicate = || {
                UsageError(format!(
                    "require_auth method \"{part}\" is specified more than once"
                ))
            };
            let mask = match method {
                "password" => bits(&[code::CLEARTEXT]),
                "md5" => bits(&[code::MD5]),
                "gss" => bits(&[code::GSS, code::GSS_CONTINUE]),
                "sspi" => bits(&[code::SSPI, code::GSS_CONTINUE]),
                // SCRAM and OAUTHBEARER (libpq 18) are both SASL: a SASL
                // request is allowed while either is, and the mechanism is
                // checked on its own (check_sasl).
                "scram-sha-256" | "oauth" => {
                    if method == "scram-sha-256" {
                        req.scram = !negated;
                    }
                    if !negated || seen.iter().any(|m| matches!(*m, "scram-sha-256" | "oauth")) {
                        bits(&[code::SASL, code::SASL_CONTINUE, code::SASL_FINAL])
                    } else {
                        0
                    }
                }
                "none" => {
                    // "none": no exchange needed; "!none": one is.
                    if negated == req.required {
                        return Err(duplicate());
                    }
                    req.required = negated;
                    continue;
                }
                _ => {
                    return Err(UsageError(format!(
                        "invalid require_auth value: \"{method}\""
                    )))
                }
            };
            if seen.contains(&method) {
                return Err(duplicate());
            }
            seen.push(method);
            if negated {
                req.allowed &= !mask;
            } else {
                req.allowed |= mask;
            }
        }
        Ok(Some(req))
    }

    /// Checks one authentication request before the client answers it.
    /// `finished`: an allowed exchange completed (the server's SASLFinal,
    /// or a password sent), which libpq requires before AuthenticationOk.
    pub fn check(&self, request: u32, finished: bool) -> Result<(), AuthRefusal> {
        if request == code::OK {
            return if !self.required || finished {
                Ok(())
            } else {
                Err(AuthRefusal::NotCompleted)
            };
        }
        let allowed = request < 32 && self.allowed & (1 << request) != 0;
        if allowed {
            Ok(())
        } else {
            Err(AuthRefusal::Requested(request))
        }
    }
}

impl RequireAuth {
    /// A SASL request passed [`RequireAuth::check`]: the mechanism libpq 18
    /// picks from `offered` must be allowed too. It picks
    /// SCRAM-SHA-256-PLUS when offered and channel binding is not disabled
    /// (`plus`), else SCRAM-SHA-256; the probe speaks no other.
    pub fn check_sasl(&self, offered: &[String], plus: bool) -> Result<(), AuthRefusal> {
        if self.scram {
            return Ok(());
        }
        let has = |m: &str| offered.iter().any(|o| o == m);
        let mechanism = if plus && has("SCRAM-SHA-256-PLUS") {
            "SCRAM-SHA-256-PLUS"
        } else {
            "SCRAM-SHA-256"
        };
        Err(AuthRefusal::Mechanism(mechanism.into()))
    }
}

impl fmt::Display for RequireAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `sslcertmode` (libpq 16+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslCertMode {
    /// Never send a client certificate.
    Disable,
    /// Send one if configured and asked for (the default).
    Allow,
    /// The server must ask for a client certificate, else libpq fails
    /// ("server did not request an SSL certificate").
    Require,
}

impl SslCertMode {
    pub fn parse(value: Option<&str>) -> Result<SslCertMode, UsageError> {
        match value.unwrap_or("allow") {
            "disable" => Ok(SslCertMode::Disable),
            "allow" => Ok(SslCertMode::Allow),
            "require" => Ok(SslCertMode::Require),
            other => Err(UsageError(format!(
                "invalid sslcertmode value: \"{other}\""
            ))),
        }
    }
}

/// `target_session_attrs`, as libpq checks it after login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSessionAttrs {
    /// Any server (also `prefer-standby` with one host: libpq falls back
    /// to any server when none is a standby).
    Any,
    ReadWrite,
    ReadOnly,
    Primary,
    Standby,
}

impl TargetSessionAttrs {
    pub fn parse(value: Option<&str>) -> Result<TargetSessionAttrs, UsageError> {
        match value.unwrap_or("any") {
            "any" | "prefer-standby" => Ok(TargetSessionAttrs::Any),
            "read-write" => Ok(TargetSessionAttrs::ReadWrite),
            "read-only" => Ok(TargetSessionAttrs::ReadOnly),
            "primary" => Ok(TargetSessionAttrs::Primary),
            "standby" => Ok(TargetSessionAttrs::Standby),
            other => Err(UsageError(format!(
                "invalid target_session_attrs value: \"{other}\""
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::ReadOnly => "read-only",
            TargetSessionAttrs::Primary => "primary",
            TargetSessionAttrs::Standby => "standby",
        }
    }

    /// libpq's refusal for a server that is (or is not) read-only and in
    /// hot standby; None when it matches.
    pub fn refusal(self, read_only: bool, hot_standby: bool) -> Option<&'static str> {
        match self {
            TargetSessionAttrs::Any => None,
            TargetSessionAttrs::ReadWrite if read_only || hot_standby => {
                Some("session is read-only")
            }
            TargetSessionAttrs::ReadOnly if !(read_only || hot_standby) => {
                Some("session is not read-only")
            }
            TargetSessionAttrs::Primary if hot_standby => Some("server is in hot standby mode"),
            TargetSessionAttrs::Standby if !hot_standby => {
                Some("server is not in hot standby mode")
            }
            _ => None,
        }
    }
}

/// The TLS versions the session may negotiate (`ssl_min_protocol_version`,
/// default TLSv1.2 as in libpq, and `ssl_max_protocol_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsRange {
    pub min: TlsVersion,
    pub max: Option<TlsVersion>,
}

impl TlsRange {
    pub fn parse(min: Option<&str>, max: Option<&str>) -> Result<TlsRange, UsageError> {
        let version = |keyword: &str, value: Option<&str>| match value {
            None | Some("") => Ok(None),
            Some(text) => TlsVersion::parse_minimum(text)
                .map(Some)
                .ok_or_else(|| UsageError(format!("invalid {keyword} value: \"{text}\""))),
        };
        let min_v = version("ssl_min_protocol_version", min)?;
        let max_v = version("ssl_max_protocol_version", max)?;
        // Unset minimum is libpq's default; explicitly empty means none.
        let min_v = match (min, min_v) {
            (None, _) => TlsVersion::Tls12,
            (_, Some(v)) => v,
            (_, None) => TlsVersion::Tls10,
        };
        if let Some(max_v) = max_v {
            if max_v < min_v {
                return Err(UsageError("invalid SSL protocol version range".into()));
            }
            // The session is rustls: it can offer TLS 1.2 alone, nothing older.
            if max_v < TlsVersion::Tls12 {
                return Err(UsageError(format!(
                    "ssl_max_protocol_version={} is not supported: the probe's session speaks TLSv1.2 and TLSv1.3 only, so it would not negotiate what libpq negotiates",
                    max_v.name()
                )));
            }
        }
        Ok(TlsRange {
            min: min_v,
            max: max_v,
        })
    }
}

/// `min_protocol_version`/`max_protocol_version` (libpq 18): the probe
/// speaks protocol 3.0, so a minimum above it cannot be honoured.
pub fn check_protocol_versions(min: Option<&str>, max: Option<&str>) -> Result<(), UsageError> {
    for (keyword, value) in [("min_protocol_version", min), ("max_protocol_version", max)] {
        match value {
            None | Some("" | "3.0" | "3.2" | "latest") => {}
            Some(other) => return Err(UsageError(format!("invalid {keyword} value: \"{other}\""))),
        }
    }
    match min {
        Some(v @ ("3.2" | "latest")) => Err(UsageError(format!(
            "min_protocol_version={v} is not supported: the probe speaks protocol 3.0 only"
        ))),
        _ => Ok(()),
    }
}

/// `gssencmode`: the probe checks TLS and never asks for GSSAPI
/// encryption. `disable` and `prefer` (which falls back to TLS without
/// Kerberos credentials) are fine; `require` cannot be met.
pub fn check_gssencmode(value: Option<&str>) -> Result<(), UsageError> {
    match value {
        None | Some("disable" | "prefer") => Ok(()),
        Some("require") => Err(UsageError(
            "gssencmode=require cannot be met: libpq would encrypt with GSSAPI instead of TLS, and this probe checks TLS (it speaks no GSSAPI)".into(),
        )),
        Some(other) => Err(UsageError(format!(
            "invalid gssencmode value: \"{other}\""
        ))),
    }
}

/// `sslsni`: libpq sends the host name in SNI exactly when the value is
/// "1" (the default); it does not validate other values, so neither does
/// this.
pub fn sslsni(value: Option<&str>) -> bool {
    value.unwrap_or("1") == "1"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> RequireAuth {
        RequireAuth::parse(text).unwrap().unwrap()
    }

    fn err(text: &str) -> String {
        RequireAuth::parse(text).unwrap_err().0
    }

    #[test]
    fn require_auth_lists_and_negation() {
        let md5 = req("md5");
        assert_eq!(md5.check(code::MD5, false), Ok(()));
        assert_eq!(
            md5.check(code::SASL, false),
            Err(AuthRefusal::Requested(code::SASL))
        );
        assert_eq!(md5.check(code::OK, false), Err(AuthRefusal::NotCompleted));
        assert_eq!(md5.check(code::OK, true), Ok(()));

        let scram = req("scram-sha-256, password");
        assert_eq!(scram.check(code::SASL, false), Ok(()));
        assert_eq!(scram.check(code::SASL_FINAL, false), Ok(()));
        assert_eq!(scram.check(code::CLEARTEXT, false), Ok(()));
        assert!(scram.check(code::MD5, false).is_err());

        let none = req("none");
        assert_eq!(none.check(code::OK, false), Ok(()));
        assert!(none.check(code::SASL, false).is_err());
        let none_or_scram = req("scram-sha-256,none");
        assert_eq!(none_or_scram.check(code::OK, false), Ok(()));

        let not_password = req("!password,!md5");
        assert_eq!(not_password.check(code::OK, false), Ok(()));
        assert_eq!(not_password.check(code::SASL, false), Ok(()));
        assert!(not_password.check(code::CLEARTEXT, false).is_err());
        assert!(not_password.check(code::MD5, false).is_err());
        let not_none = req("!none");
        assert_eq!(
            not_none.check(code::OK, false),
            Err(AuthRefusal::NotCompleted)
        );
        assert_eq!(not_none.check(code::MD5, false), Ok(()));

        assert_eq!(RequireAuth::parse("").unwrap(), None);
        assert_eq!(
            err("md5,!password"),
            "negative require_auth method \"!password\" cannot be mixed with non-negative methods"
        );
        assert_eq!(
            err("!md5,password"),
            "require_auth method \"password\" cannot be mixed with negative methods"
        );
        assert_eq!(
            err("md5,md5"),
            "require_auth method \"md5\" is specified more than once"
        );
        assert_eq!(
            err("none,none"),
            "require_auth method \"none\" is specified more than once"
        );
        assert_eq!(err("cert"), "invalid require_auth value: \"cert\"");
        assert_eq!(err("md5,"), "invalid require_auth value: \"\"");
        assert_eq!(
            AuthRefusal::Requested(code::SASL).reason(),
            "server requested SASL authentication"
        );
    }

    #[test]
    fn tls_ranges() {
        let r = TlsRange::parse(None, None).unwrap();
        assert_eq!((r.min, r.max), (TlsVersion::Tls12, None));
        let r = TlsRange::parse(Some("TLSv1.3"), Some("tlsv1.3")).unwrap();
        assert_eq!((r.min, r.max), (TlsVersion::Tls13, Some(TlsVersion::Tls13)));
        assert_eq!(
            TlsRange::parse(Some("TLSv1.3"), Some("TLSv1.2"))
                .unwrap_err()
                .0,
            "invalid SSL protocol version range"
        );
        let r = TlsRange::parse(None, Some("TLSv1.2")).unwrap();
        assert_eq!(r.max, Some(TlsVersion::Tls12));
        assert!(TlsRange::parse(Some("TLSv1"), Some("TLSv1.1"))
            .unwrap_err()
            .0
            .contains("TLSv1.2 and TLSv1.3 only"));
        assert_eq!(
            TlsRange::parse(Some("TLSv9"), None).unwrap_err().0,
            "invalid ssl_min_protocol_version value: \"TLSv9\""
        );
    }

    #[test]
    fn session_attrs_as_libpq_checks_them() {
        use TargetSessionAttrs::*;
        assert_eq!(ReadWrite.refusal(false, false), None);
        assert_eq!(ReadWrite.refusal(true, false), Some("session is read-only"));
        assert_eq!(
            ReadOnly.refusal(false, false),
            Some("session is not read-only")
        );
        assert_eq!(ReadOnly.refusal(false, true), None);
        assert_eq!(
            Primary.refusal(false, true),
            Some("server is in hot standby mode")
        );
        assert_eq!(
            Standby.refusal(false, false),
            Some("server is not in hot standby mode")
        );
        assert_eq!(
            TargetSessionAttrs::parse(Some("prefer-standby")).unwrap(),
            Any
        );
        assert!(TargetSessionAttrs::parse(Some("master")).is_err());
        assert!(check_gssencmode(Some("require"))
            .unwrap_err()
            .0
            .contains("cannot be met"));
        assert!(check_protocol_versions(Some("3.2"), None).is_err());
        assert!(check_protocol_versions(Some("3.0"), Some("latest")).is_ok());
    }
}
