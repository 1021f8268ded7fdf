//! Authorization codes (OAuth 2.0 authorization code grant with PKCE, as SMART App Launch
//! requires): what a signed-in user approved, handed to the app through its redirect and
//! traded once, within a minute, by the app that proves it holds the PKCE verifier.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::users::Role;

/// How long a code can be traded for a token.
pub const CODE_SECONDS: i64 = 60;

/// What a code stands for, kept in the store until it is traded or expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationCode {
    pub client_id: String,
    pub redirect_uri: String,
    /// The scopes granted (already narrowed to the client and the user's role).
    pub scope: String,
    /// `BASE64URL(SHA256(code_verifier))`.
    pub code_challenge: String,
    pub username: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    /// The patient the app works on (launch context): the user, or one they are proxy for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// The FHIR base URL the app asked for (`aud`).
    pub audience: String,
}

/// Where a code waits in the store's key-value table.
pub fn code_key(code: &str) -> String {
    format!("oauth-code/{code}")
}

/// Where a traded code is remembered, so that a second trade (a replay) is refused.
pub fn used_code_key(code: &str) -> String {
    format!("oauth-code-used/{code}")
}

/// A new code (256 random bits).
pub fn new_code() -> String {
    crate::base64url(&crate::random_bytes::<32>())
}

/// The S256 challenge of a verifier.
pub fn s256_challenge(verifier: &str) -> String {
    crate::base64url(&Sha256::digest(verifier.as_bytes()))
}

/// Whether a PKCE verifier is well formed (RFC 7636 §4.1: 43–128 unreserved characters) and
/// matches the challenge.
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    well_formed && s256_challenge(verifier) == challenge
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_follows_rfc_7636() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(s256_challenge(verifier), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(verifier_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!verifier_matches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj", &s256_challenge(verifier)));
        // Too short, or with characters outside the set, even when the hash would match.
        assert!(!verifier_matches("short", &s256_challenge("short")));
        let spaced = "a b".repeat(20);
        assert!(!verifier_matches(&spaced, &s256_challenge(&spaced)));
    }
}
