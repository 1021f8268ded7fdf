//! The built-in OAuth 2.0 authorisation server: the `/.well-known/smart-configuration`
//! discovery document and the token endpoint, where a backend client trades its
//! credentials (a signed assertion or a secret) for a short-lived access token (SMART
//! Backend Services), and an app trades the code a person approved (`routes::authorize`)
//! with its PKCE verifier (SMART App Launch).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use helse_auth::clients::{new_client_id, unverified_issuer, used_assertion_key};
use helse_auth::codes::{AuthorizationCode, CODE_SECONDS, code_key, used_code_key, verifier_matches};
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
        "authorization_endpoint": format!("{}/auth/authorize", origin(&base)),
        "token_endpoint": token_url(&base),
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384", "RS256", "ES256"],
        "scopes_supported": ["patient/*.rs", "patient/*.cruds", "user/*.rs", "user/*.cruds", "system/*.cruds", "system/*.rs", "system/*.read", "system/*.write", "launch/patient"],
        "capabilities": ["launch-standalone", "context-standalone-patient", "client-public", "client-confidential-asymmetric", "client-confidential-symmetric", "permission-patient", "permission-user", "permission-v2", "permission-v1"],
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

pub(crate) enum TokenError {
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
    let form = Form(
        serde_urlencoded::from_bytes(body)
            .map_err(|e| AuthError::InvalidRequest(format!("the body is not a form: {e}")))?,
    );
    let field = |name: &str| form.get(name);
    let base = request_base(state, headers);
    let now = Instant::now();
    let now_seconds = now.millis() / 1000;

    let mut claims = AccessClaims {
        iss: origin(&base).to_owned(),
        sub: String::new(),
        aud: base.clone(),
        iat: now_seconds,
        exp: now_seconds + ACCESS_TOKEN_SECONDS,
        jti: new_client_id(),
        scope: String::new(),
        client_id: None,
        role: None,
        fhir_user: None,
        patient: None,
    };
    match field("grant_type") {
        Some("client_credentials") => {
            let client = authenticate_client(state, headers, &form, &base, now)
                .await?
                .ok_or_else(|| AuthError::InvalidClient("no client credentials".into()))?;
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
            claims.sub = client.id.clone();
            claims.scope = granted.to_string();
        }
        Some("authorization_code") => {
            let code = trade_code(state, headers, &form, &base, now).await?;
            claims.sub = code.username;
            claims.client_id = Some(code.client_id);
            claims.scope = code.scope;
            claims.role = Some(code.role);
            claims.fhir_user = code.fhir_user;
            claims.patient = code.patient;
        }
        Some(other) => return Err(AuthError::UnsupportedGrantType(other.into()).into()),
        None => return Err(AuthError::InvalidRequest("grant_type is missing".into()).into()),
    }
    tracing::info!(client = %claims.client_id.as_deref().unwrap_or(&claims.sub), scope = %claims.scope, "access token issued");
    let mut body = json!({
        "access_token": keys.issue(&claims),
        "token_type": "bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "scope": claims.scope,
    });
    if let Some(p) = &claims.patient {
        body["patient"] = json!(p);
        body["need_patient_banner"] = json!(true);
    }
    if let Some(u) = &claims.fhir_user {
        body["fhirUser"] = json!(format!("{base}/{u}"));
    }
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

/// A form-encoded token request.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The client a token request comes from, by its credentials: a signed assertion, or a
/// secret (HTTP Basic or in the form). `None` when it sent none (a public client).
async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
    base: &str,
    now: Instant,
) -> Result<Option<Client>, TokenError> {
    let store = state.store.as_ref();
    if form.get("client_assertion_type") == Some(JWT_BEARER) {
        let assertion = form
            .get("client_assertion")
            .ok_or_else(|| AuthError::InvalidRequest("client_assertion is missing".into()))?;
        let client = load_client(state, &unverified_issuer(assertion)?).await?;
        let claims = client.check_assertion(assertion, &token_url(base), now.millis() / 1000)?;
        let until = Instant::from_millis((claims.exp + 60) * 1000);
        if !store.kv_put_new(&used_assertion_key(&client.id, &claims.jti), "used", Some(until), now).await? {
            return Err(AuthError::InvalidGrant("this client assertion was used before".into()).into());
        }
        return Ok(Some(client));
    }
    let (id, secret) = match basic_credentials(headers)? {
        Some(pair) => pair,
        None => match (form.get("client_id"), form.get("client_secret")) {
            (Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
            _ => return Ok(None),
        },
    };
    let client = load_client(state, &id).await?;
    client.check_secret(&secret)?;
    Ok(Some(client))
}

/// The authorization code grant: the code is used up whatever the outcome (a second trade is
/// refused, RFC 6749 §4.1.2), then the app proves it is the one the code was issued to (its
/// credentials, or for a public app its `client_id`), for the same redirect URI, holding the
/// PKCE verifier.
async fn trade_code(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
    base: &str,
    now: Instant,
) -> Result<AuthorizationCode, TokenError> {
    let store = state.store.as_ref();
    let code = form.get("code").ok_or_else(|| AuthError::InvalidRequest("code is missing".into()))?;
    let invalid = |why: &str| TokenError::Auth(AuthError::InvalidGrant(why.into()));
    let until = Instant::from_millis((now.millis() / 1000 + CODE_SECONDS * 2) * 1000);
    if !store.kv_put_new(&used_code_key(code), "used", Some(until), now).await? {
        return Err(invalid("this authorization code was used before"));
    }
    let text = store
        .kv_get(&code_key(code), now)
        .await?
        .ok_or_else(|| invalid("unknown or expired authorization code"))?;
    store.kv_delete(&code_key(code)).await?;
    let record: AuthorizationCode =
        serde_json::from_str(&text).map_err(|_| invalid("unknown or expired authorization code"))?;
    let client = match authenticate_client(state, headers, form, base, now).await? {
        Some(c) => c,
        None => {
            let id = form.get("client_id").ok_or_else(|| AuthError::InvalidClient("no client_id".into()))?;
            let client = load_client(state, id).await?;
            if !client.is_public() {
                return Err(AuthError::InvalidClient("this client must authenticate".into()).into());
            }
            client
        }
    };
    if client.id != record.client_id {
        return Err(invalid("the authorization code was issued to another client"));
    }
    if form.get("redirect_uri") != Some(record.redirect_uri.as_str()) {
        return Err(invalid("redirect_uri differs from the authorization request's"));
    }
    if record.audience != base {
        return Err(invalid("the authorization code is for another server"));
    }
    let verifier = form
        .get("code_verifier")
        .ok_or_else(|| AuthError::InvalidRequest("code_verifier is missing".into()))?;
    if !verifier_matches(verifier, &record.code_challenge) {
        return Err(invalid("code_verifier does not match the code_challenge"));
    }
    Ok(record)
}

pub(crate) async fn load_client(state: &AppState, id: &str) -> Result<Client, TokenError> {
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
