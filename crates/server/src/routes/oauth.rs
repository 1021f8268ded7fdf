//! The built-in OAuth 2.0 authorisation server for SMART Backend Services: the
//! `/.well-known/smart-configuration` discovery document and the token endpoint, where a
//! registered client trades its credentials (a signed assertion or a secret) for a
//! short-lived access token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use helse_auth::clients::{new_client_id, unverified_issuer, used_assertion_key};
use helse_auth::{AccessClaims, AuthError, Client, Grant, ScopeContext};
use helse_fhir_r4::Instant;
use serde_json::json;

use crate::AppState;
use crate::access::origin;
use crate::routes::fhir::request_base;

/// How long an access token is valid.
pub const ACCESS_TOKEN_SECONDS: i64 = 300;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub fn token_url(base: &str) -> String {
    format!("{}/auth/token", origin(base))
}

/// `GET [base]/.well-known/smart-configuration`.
pub async fn smart_configuration(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let base = request_base(&state, &headers);
    let body = json!({
        "issuer": origin(&base),
        "token_endpoint": token_url(&base),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384", "RS256", "ES256"],
        "scopes_supported": ["system/*.cruds", "system/*.rs", "system/*.read", "system/*.write"],
        "capabilities": ["client-confidential-asymmetric", "client-confidential-symmetric", "permission-v2", "permission-v1"],
    });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// `POST /auth/token` (form-encoded): the client credentials grant.
pub async fn token(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    match issue(&state, &headers, &body).await {
        Ok(r) => r,
        Err(TokenError::Auth(e)) => {
            // Refusals name the client at most, never a credential.
            tracing::info!(error = e.oauth_code(), "token request refused");
            oauth_error(&e)
        }
        Err(TokenError::Store(e)) => crate::error::FhirError::from(e).into_response(),
    }
}

enum TokenError {
    Auth(AuthError),
    Store(helse_store::StoreError),
}

impl From<AuthError> for TokenError {
    fn from(e: AuthError) -> Self {
        TokenError::Auth(e)
    }
}

impl From<helse_store::StoreError> for TokenError {
    fn from(e: helse_store::StoreError) -> Self {
        TokenError::Store(e)
    }
}

async fn issue(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Response, TokenError> {
    let Some(keys) = &state.token_keys else {
        return Err(
            AuthError::InvalidRequest("authorisation is off on this server (--no-auth)".into()).into()
        );
    };
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| AuthError::InvalidRequest(format!("the body is not a form: {e}")))?;
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match field("grant_type") {
        Some("client_credentials") => {}
        Some(other) => return Err(AuthError::UnsupportedGrantType(other.into()).into()),
        None => return Err(AuthError::InvalidRequest("grant_type is missing".into()).into()),
    }
    let base = request_base(state, headers);
    let now = Instant::now();
    let now_seconds = now.millis() / 1000;
    let store = state.store.as_ref();

    // Who is asking: a signed assertion, or a secret (HTTP Basic or in the form).
    let client = if field("client_assertion_type") == Some(JWT_BEARER) {
        let assertion = field("client_assertion")
            .ok_or_else(|| AuthError::InvalidRequest("client_assertion is missing".into()))?;
        let client = load_client(state, &unverified_issuer(assertion)?).await?;
        let claims = client.check_assertion(assertion, &token_url(&base), now_seconds)?;
        let until = Instant::from_millis((claims.exp + 60) * 1000);
        if !store.kv_put_new(&used_assertion_key(&client.id, &claims.jti), "used", Some(until), now).await? {
            return Err(AuthError::InvalidGrant("this client assertion was used before".into()).into());
        }
        client
    } else {
        let (id, secret) = match basic_credentials(headers)? {
            Some(pair) => pair,
            None => match (field("client_id"), field("client_secret")) {
                (Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
                _ => return Err(AuthError::InvalidClient("no client credentials".into()).into()),
            },
        };
        let client = load_client(state, &id).await?;
        client.check_secret(&secret)?;
        client
    };

    let registered = Grant::parse(&client.scope);
    let requested = field("scope").map_or_else(|| registered.clone(), Grant::parse);
    let mut granted = registered.narrow(&requested);
    // A backend client acts for no patient and no user.
    granted.scopes.retain(|s| s.context == ScopeContext::System);
    if granted.scopes.is_empty() {
        return Err(AuthError::InvalidScope(
            "none of the requested scopes can be granted to this client".into(),
        )
        .into());
    }
    let claims = AccessClaims {
        iss: origin(&base).to_owned(),
        sub: client.id.clone(),
        aud: base.clone(),
        iat: now_seconds,
        exp: now_seconds + ACCESS_TOKEN_SECONDS,
        jti: new_client_id(),
        scope: granted.to_string(),
    };
    tracing::info!(client = %client.id, scope = %claims.scope, "access token issued");
    let body = json!({
        "access_token": keys.issue(&claims),
        "token_type": "bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "scope": claims.scope,
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        body.to_string(),
    )
        .into_response())
}

async fn load_client(state: &AppState, id: &str) -> Result<Client, TokenError> {
    let unknown = || AuthError::InvalidClient("unknown client".into());
    let text = state.store.kv_get(&Client::store_key(id), Instant::now()).await?.ok_or_else(unknown)?;
    Ok(serde_json::from_str(&text).map_err(|_| unknown())?)
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, AuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(encoded) = value.strip_prefix("Basic ") else { return Ok(None) };
    let bad = || AuthError::InvalidClient("the Basic credentials are malformed".into());
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let decode = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|v| v.into_iter().next())
            .map(|(_, v)| v)
    };
    Ok(Some((decode(id).ok_or_else(bad)?, decode(secret).ok_or_else(bad)?)))
}

fn oauth_error(e: &AuthError) -> Response {
    let status = match e {
        AuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    let body = json!({"error": e.oauth_code(), "error_description": e.to_string()});
    (
        status,
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")],
        body.to_string(),
    )
        .into_response()
}
