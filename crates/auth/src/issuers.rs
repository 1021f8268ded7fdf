//! External OpenID Connect issuers this server trusts: a token an issuer signed (checked
//! against the public keys it publishes as a JWK Set) is accepted like one of our own, for
//! the scopes it carries. A token about a person says who they are by `fhirUser`, or as
//! Norway's identity providers do: ID-porten's `pid` (a patient, by national identity
//! number) and HelseID's HPR number (health personnel); the server finds them in the record.

use serde::Deserialize;

use crate::AuthError;
use crate::clients::verify_with_keys;

/// An issuer and its public keys.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustedIssuer {
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// Its JWK Set.
    pub jwks: serde_json::Value,
}

/// What we read from an external token.
#[derive(Debug, Clone, Deserialize)]
pub struct ExternalClaims {
    pub sub: String,
    /// Space-separated scopes (`scope`), or a list (`scp`, as some issuers write it).
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub scp: Option<Vec<String>>,
    /// Who the person is in the record, when the issuer knows (`Patient/…`, `Practitioner/…`).
    #[serde(default, rename = "fhirUser")]
    pub fhir_user: Option<String>,
    /// ID-porten: the person's national identity number (fødselsnummer or D-nummer).
    #[serde(default)]
    pub pid: Option<String>,
    /// HelseID: the health professional's HPR number.
    #[serde(default, rename = "helseid://claims/hpr/hpr_number")]
    pub hpr_number: Option<String>,
}

impl ExternalClaims {
    pub fn scopes(&self) -> String {
        match (&self.scope, &self.scp) {
            (Some(s), _) => s.clone(),
            (None, Some(list)) => list.join(" "),
            (None, None) => String::new(),
        }
    }
}

impl TrustedIssuer {
    /// The claims of a token this issuer signed for `audience` (our FHIR base URL).
    pub fn verify(&self, token: &str, audience: &str) -> Result<ExternalClaims, AuthError> {
        verify_with_keys(token, &self.jwks, &self.issuer, audience).map_err(AuthError::InvalidToken)
    }
}
