//! SMART on FHIR authorisation, without HTTP: what a scope string grants
//! ([`scopes`]), the access tokens this server issues and checks ([`tokens`]), the
//! registered OAuth clients with the ways they prove who they are ([`clients`]), the people
//! who sign in ([`users`]) and the authorization codes of their approvals ([`codes`]).

pub mod clients;
pub mod codes;
pub mod issuers;
pub mod scopes;
pub mod tokens;
pub mod users;

pub use clients::{Client, new_secret};
pub use issuers::TrustedIssuer;
pub use scopes::{Grant, Permission, Scope, ScopeContext};
pub use tokens::{AccessClaims, TokenKeys};
pub use users::{Role, User};

/// Why a client or a token was refused, with the OAuth 2.0 error code each maps to.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// Unknown client, wrong secret, or a client assertion that does not verify.
    #[error("client authentication failed: {0}")]
    InvalidClient(String),
    /// A client assertion seen before (replay).
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("grant type '{0}' is not supported")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidRequest(String),
    /// An access token that is malformed, forged, expired or meant for another server.
    #[error("{0}")]
    InvalidToken(String),
}

impl AuthError {
    /// The `error` code of an OAuth 2.0 error response (RFC 6749 §5.2, RFC 6750 §3.1).
    pub fn oauth_code(&self) -> &'static str {
        match self {
            AuthError::InvalidClient(_) => "invalid_client",
            AuthError::InvalidGrant(_) => "invalid_grant",
            AuthError::InvalidScope(_) => "invalid_scope",
            AuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            AuthError::InvalidRequest(_) => "invalid_request",
            AuthError::InvalidToken(_) => "invalid_token",
        }
    }
}

/// `n` bytes from the operating system's random source.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("the operating system's random source");
    bytes
}

pub(crate) fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
