//! Registered OAuth clients and how they authenticate at the token endpoint: a secret
//! (`client_secret_basic`/`client_secret_post`) or a JWT signed with their private key
//! (`private_key_jwt`, SMART Backend Services), checked against the public keys they
//! registered.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::AuthError;
use crate::tokens::token_problem;

/// A registered client, kept as JSON in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    pub id: String,
    pub name: String,
    /// SHA-256 (hex) of the client's secret. Secrets are 256 random bits, so a plain hash
    /// is as hard to reverse as the secret is to guess.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_sha256: Option<String>,
    /// The public keys (a JWK Set) the client signs its assertions with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// The scopes the client may be granted (it may ask for fewer).
    pub scope: String,
    /// Where the authorization endpoint may send a user back to (apps; exact match).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
}

/// Where clients are kept in the store's key-value table: this prefix and the client id.
pub const CLIENT_KEY_PREFIX: &str = "oauth-client/";

/// Where a used assertion id is remembered (until the assertion expires), so it cannot be
/// replayed.
pub fn used_assertion_key(client_id: &str, jti: &str) -> String {
    format!("oauth-assertion/{client_id}/{jti}")
}

/// The claims of a verified client assertion.
#[derive(Debug, Clone, Deserialize)]
pub struct AssertionClaims {
    pub iss: String,
    pub sub: String,
    pub exp: i64,
    pub jti: String,
}

/// Signature algorithms accepted for client assertions and external issuers' tokens (SMART
/// requires RS384 and ES384).
const ASSERTION_ALGORITHMS: [Algorithm; 4] =
    [Algorithm::RS384, Algorithm::ES384, Algorithm::RS256, Algorithm::ES256];

/// The longest an assertion may be valid for (SMART Backend Services: five minutes).
pub const MAX_ASSERTION_LIFETIME_SECONDS: i64 = 300;

impl Client {
    pub fn store_key(id: &str) -> String {
        format!("{CLIENT_KEY_PREFIX}{id}")
    }

    /// A public client (an app in a browser or on a phone) has no credential of its own:
    /// PKCE is what proves that the app that trades a code is the one that asked for it.
    pub fn is_public(&self) -> bool {
        self.secret_sha256.is_none() && self.jwks.is_none()
    }

    pub fn check_secret(&self, secret: &str) -> Result<(), AuthError> {
        match &self.secret_sha256 {
            Some(hash) if *hash == hash_secret(secret) => Ok(()),
            Some(_) => Err(AuthError::InvalidClient("wrong client secret".into())),
            None => Err(AuthError::InvalidClient("this client authenticates with a signed assertion".into())),
        }
    }

    /// Verifies a `private_key_jwt` assertion: signed by one of the client's keys, issued by
    /// and about the client, for `token_url`, expiring within five minutes of `now`, with a
    /// `jti` (which the caller must check was not used before).
    pub fn check_assertion(
        &self,
        assertion: &str,
        token_url: &str,
        now: i64,
    ) -> Result<AssertionClaims, AuthError> {
        let invalid = |why: String| AuthError::InvalidClient(why);
        let jwks =
            self.jwks.as_ref().ok_or_else(|| invalid("this client has no registered public keys".into()))?;
        let claims: AssertionClaims =
            verify_with_keys(assertion, jwks, &self.id, token_url).map_err(invalid)?;
        if claims.sub != self.id {
            return Err(invalid("the assertion's sub is not the client".into()));
        }
        if claims.exp > now + MAX_ASSERTION_LIFETIME_SECONDS {
            return Err(invalid("the assertion is valid for more than five minutes".into()));
        }
        if claims.jti.is_empty() {
            return Err(invalid("the assertion has no jti".into()));
        }
        Ok(claims)
    }
}

/// Verifies a JWT signed with one of the keys of a JWK Set (chosen by `kid` when it names
/// one), issued by `issuer` for `audience`, not expired; asymmetric algorithms only.
pub(crate) fn verify_with_keys<T: serde::de::DeserializeOwned>(
    token: &str,
    jwks: &serde_json::Value,
    issuer: &str,
    audience: &str,
) -> Result<T, String> {
    let keys: JwkSet =
        serde_json::from_value(jwks.clone()).map_err(|e| format!("the key set is unreadable: {e}"))?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| token_problem(&e))?;
    if !ASSERTION_ALGORITHMS.contains(&header.alg) {
        return Err(format!("tokens signed with {:?} are not accepted", header.alg));
    }
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 5;
    let mut problem = "no key matches the token's kid".to_owned();
    for jwk in keys.keys.iter().filter(|k| header.kid.is_none() || k.common.key_id == header.kid) {
        let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
        match jsonwebtoken::decode::<T>(token, &key, &validation) {
            Ok(data) => return Ok(data.claims),
            Err(e) => problem = token_problem(&e),
        }
    }
    Err(problem)
}

/// The `iss` of a JWT, read before verifying it, to find whose keys verify it.
pub fn unverified_issuer(assertion: &str) -> Result<String, AuthError> {
    use base64::Engine;
    let bad = || AuthError::InvalidClient("not a JWT".into());
    let payload = assertion.split('.').nth(1).ok_or_else(bad)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).map_err(|_| bad())?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    value.get("iss").and_then(|v| v.as_str()).map(str::to_owned).ok_or_else(bad)
}

/// A new secret (256 random bits, base64url): a client's, or the token signing secret.
pub fn new_secret() -> String {
    crate::base64url(&crate::random_bytes::<32>())
}

/// A new client id (128 random bits, base64url).
pub fn new_client_id() -> String {
    crate::base64url(&crate::random_bytes::<16>())
}

pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}
