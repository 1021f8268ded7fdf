//! The access tokens this server issues: JWTs signed (HS256) with a secret every server on
//! the store shares, so any of them can check a token without asking the others.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::AuthError;

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccessClaims {
    /// This server (the token endpoint's origin).
    pub iss: String,
    /// The client the token was issued to.
    pub sub: String,
    /// The FHIR base URL the token is for.
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique per token (for the access log).
    pub jti: String,
    /// The granted scopes, space-separated.
    pub scope: String,
    /// The app the token was issued to, when `sub` is the person who signed in (RFC 9068).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The person who signed in (authorization code grant); none for a backend client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<crate::Role>,
    /// Who that person is in the record (`Patient/123`, `Practitioner/456`).
    #[serde(default, rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
    /// The patient whose record `patient/` scopes reach (the launch context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
}

/// The shared signing secret.
#[derive(Clone)]
pub struct TokenKeys {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

/// Tokens are accepted this many seconds past `exp`, for clocks a little apart.
const LEEWAY_SECONDS: u64 = 5;

impl TokenKeys {
    pub fn from_secret(secret: &str) -> TokenKeys {
        TokenKeys { secret: secret.as_bytes().to_vec() }
    }

    pub fn issue(&self, claims: &AccessClaims) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(&self.secret))
            .expect("HS256 signing of serialisable claims")
    }

    /// The claims of a token signed with this secret, issued by `issuer` for `audience`, and
    /// not expired.
    pub fn verify(&self, token: &str, issuer: &str, audience: &str) -> Result<AccessClaims, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        jsonwebtoken::decode::<AccessClaims>(token, &DecodingKey::from_secret(&self.secret), &validation)
            .map(|d| d.claims)
            .map_err(|e| AuthError::InvalidToken(token_problem(&e)))
    }
}

/// What was wrong with a token, in words safe to show the client.
pub(crate) fn token_problem(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind::*;
    match e.kind() {
        ExpiredSignature => "the token has expired".into(),
        InvalidAudience => "the token is meant for another server".into(),
        InvalidIssuer => "the token was issued by another server".into(),
        InvalidSignature => "the token's signature does not verify".into(),
        ImmatureSignature => "the token is not valid yet".into(),
        InvalidAlgorithm => "the token is signed with an algorithm not accepted here".into(),
        MissingRequiredClaim(c) => format!("the token has no '{c}' claim"),
        _ => "the token is malformed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp_from_now: i64) -> AccessClaims {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        AccessClaims {
            iss: "https://helse.example".into(),
            sub: "client-1".into(),
            aud: "https://helse.example/fhir".into(),
            iat: now,
            exp: now + exp_from_now,
            jti: "t1".into(),
            scope: "system/*.rs".into(),
            client_id: None,
            role: None,
            fhir_user: None,
            patient: None,
        }
    }

    #[test]
    fn tokens_verify_only_with_their_secret_issuer_audience_and_time() {
        let keys = TokenKeys::from_secret(&crate::new_secret());
        let token = keys.issue(&claims(300));
        let ok = keys.verify(&token, "https://helse.example", "https://helse.example/fhir").unwrap();
        assert_eq!((ok.sub.as_str(), ok.scope.as_str()), ("client-1", "system/*.rs"));

        let wrong = |r: Result<AccessClaims, AuthError>| match r {
            Err(AuthError::InvalidToken(why)) => why,
            other => panic!("accepted: {other:?}"),
        };
        let other_keys = TokenKeys::from_secret(&crate::new_secret());
        assert!(
            wrong(other_keys.verify(&token, "https://helse.example", "https://helse.example/fhir"))
                .contains("signature")
        );
        assert!(
            wrong(keys.verify(&token, "https://helse.example", "https://other.example/fhir"))
                .contains("another server")
        );
        assert!(
            wrong(keys.verify(&token, "https://evil.example", "https://helse.example/fhir"))
                .contains("issued by")
        );
        let expired = keys.issue(&claims(-60));
        assert!(
            wrong(keys.verify(&expired, "https://helse.example", "https://helse.example/fhir"))
                .contains("expired")
        );
        // A token with its payload changed (scope widened) no longer verifies.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut widened = claims(300);
        widened.scope = "system/*.cruds".into();
        parts[1] = crate::base64url(&serde_json::to_vec(&widened).unwrap());
        assert!(
            wrong(keys.verify(&parts.join("."), "https://helse.example", "https://helse.example/fhir"))
                .contains("signature")
        );
        assert!(
            wrong(keys.verify("not a token", "https://helse.example", "https://helse.example/fhir"))
                .contains("malformed")
        );
    }
}
