//! What the verify-full session's protocol showed, as the probe's wire tap
//! (probe/wire.rs) recorded it beneath tokio-postgres: the authentication
//! exchange, the server's ParameterStatus reports, and any bound it hit.

/// The largest backend message accepted (its announced length). The
/// biggest legitimate one is the audit's row (sessions and rules as JSON):
/// a few MiB on a server with tens of thousands of sessions.
pub const MAX_MESSAGE: u32 = 16 * 1024 * 1024;

/// The most bytes one session may deliver, all messages together: bounds
/// a server that streams rows without end.
pub const MAX_SESSION_BYTES: u64 = 64 * 1024 * 1024;

/// One authentication request from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequestSeen {
    /// The AuthenticationRequest code: 0 ok, 3 cleartext, 5 md5, 10 SASL, ...
    pub code: u32,
    /// With SASL (10): the mechanisms offered.
    pub mechanisms: Vec<String>,
}

/// Why the tap ended the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Overrun {
    /// A message announced more than [`MAX_MESSAGE`] bytes.
    #[error(
        "the server announced a message of {announced} bytes (type {}); the probe reads at most {MAX_MESSAGE} bytes per message",
        crate::hex::peek(&[*tag])
    )]
    Message { tag: u8, announced: u32 },
    /// The session delivered more than [`MAX_SESSION_BYTES`].
    #[error(
        "the server sent more than {MAX_SESSION_BYTES} bytes on one session, the probe's limit"
    )]
    Session,
}

/// What the session's protocol showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireRecord {
    /// Authentication requests in the order the server sent them.
    pub auth_requests: Vec<AuthRequestSeen>,
    /// The SASL mechanism the client answered with (SCRAM-SHA-256 or -PLUS).
    pub sasl_mechanism: Option<String>,
    /// The channel-binding type the client's SCRAM GS2 header named
    /// (`p=tls-server-end-point`), when it bound the exchange to TLS.
    pub channel_binding: Option<String>,
    /// The server's SASLFinal arrived (its proof of the password).
    pub sasl_final: bool,
    /// The client answered a cleartext or md5 request (the message itself
    /// is never looked into).
    pub password_sent: bool,
    /// ParameterStatus reports (name, value), in order.
    pub parameters: Vec<(String, String)>,
    /// Backend bytes read on the session (after the TLS handshake).
    pub bytes_read: u64,
    /// Set when a bound was hit; the read that hit it failed.
    pub overrun: Option<Overrun>,
    /// Set when `require_auth` refused an authentication request (the read
    /// carrying it failed, so it was never answered).
    pub refused: Option<crate::conn::AuthRefusal>,
}
