//! The authorization endpoint (SMART App Launch, standalone launch): an app sends the
//! person here; they sign in, pick whose record the app may work on when they are proxy for
//! someone, and the app gets back a one-time code (redirect), which it trades at the token
//! endpoint with its PKCE verifier.
//!
//! Errors before the app's `redirect_uri` is known to be registered are shown here (never
//! redirected: that would make the server an open redirector); later ones go back to the
//! app as `error=` parameters (RFC 6749 §4.1.2.1).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use helse_auth::codes::{AuthorizationCode, CODE_SECONDS, code_key, new_code};
use helse_auth::{Client, Grant, Role, ScopeContext};
use helse_fhir_r4::Instant;

use crate::AppState;
use crate::html::{escape, page};
use crate::routes::fhir::request_base;
use crate::routes::oauth::load_client;

/// How long a signed-in person has to pick a patient.
const LOGIN_TICKET_SECONDS: i64 = 300;

/// The parameters of an authorization request, carried through the sign-in form.
#[derive(Debug, Clone, Default)]
struct AuthRequest {
    response_type: String,
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: String,
    aud: String,
    code_challenge: String,
    code_challenge_method: String,
}

const CARRIED: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
];

impl AuthRequest {
    fn from_pairs(pairs: &[(String, String)]) -> AuthRequest {
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        AuthRequest {
            response_type: get("response_type"),
            client_id: get("client_id"),
            redirect_uri: get("redirect_uri"),
            scope: get("scope"),
            state: get("state"),
            aud: get("aud"),
            code_challenge: get("code_challenge"),
            code_challenge_method: get("code_challenge_method"),
        }
    }

    fn values(&self) -> [&str; 8] {
        [
            &self.response_type,
            &self.client_id,
            &self.redirect_uri,
            &self.scope,
            &self.state,
            &self.aud,
            &self.code_challenge,
            &self.code_challenge_method,
        ]
    }

    fn hidden_fields(&self) -> String {
        CARRIED
            .iter()
            .zip(self.values())
            .map(|(k, v)| format!(r#"<input type="hidden" name="{k}" value="{}">"#, escape(v)))
            .collect()
    }

    /// Where to send the app back to with `params` (and the request's `state`).
    fn back_to_app(&self, params: &[(&str, &str)]) -> Response {
        let mut pairs: Vec<(&str, &str)> = params.to_vec();
        if !self.state.is_empty() {
            pairs.push(("state", &self.state));
        }
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        let separator = if self.redirect_uri.contains('?') { '&' } else { '?' };
        let location = format!("{}{separator}{query}", self.redirect_uri);
        (StatusCode::SEE_OTHER, [(header::LOCATION, location), (header::CACHE_CONTROL, "no-store".into())])
            .into_response()
    }
}

/// What is wrong with a request, and whether it can go back to the app.
enum Refusal {
    /// Shown here: the client or its redirect URI is not to be trusted.
    Here(String),
    /// Sent back to the app: (`error`, description).
    ToApp(&'static str, String),
}

async fn check(state: &AppState, headers: &HeaderMap, req: &AuthRequest) -> Result<Client, Refusal> {
    let client = match load_client(state, &req.client_id).await {
        Ok(c) => c,
        Err(_) => return Err(Refusal::Here("this app (client_id) is not registered here".into())),
    };
    if req.redirect_uri.is_empty() || !client.redirect_uris.contains(&req.redirect_uri) {
        return Err(Refusal::Here("the app's redirect_uri is not one it registered".into()));
    }
    if req.response_type != "code" {
        return Err(Refusal::ToApp(
            "unsupported_response_type",
            "only response_type=code is supported".into(),
        ));
    }
    if req.code_challenge.is_empty() || req.code_challenge_method != "S256" {
        return Err(Refusal::ToApp(
            "invalid_request",
            "PKCE with code_challenge_method=S256 is required".into(),
        ));
    }
    if req.aud != request_base(state, headers) {
        return Err(Refusal::ToApp("invalid_request", "aud is not this server's FHIR base URL".into()));
    }
    Ok(client)
}

/// `GET /auth/authorize`: the sign-in page.
pub async fn start(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let req = AuthRequest::from_pairs(&pairs);
    match check(&state, &headers, &req).await {
        Err(refusal) => refuse(&req, refusal),
        Ok(client) => page(StatusCode::OK, &sign_in_form(&req, &client.name, None)),
    }
}

/// `POST /auth/authorize`: credentials (or a ticket and the patient picked), then the code.
pub async fn finish(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let req = AuthRequest::from_pairs(&pairs);
    let client = match check(&state, &headers, &req).await {
        Err(refusal) => return refuse(&req, refusal),
        Ok(c) => c,
    };
    let now = Instant::now();
    let store = state.store.as_ref();
    // Who: a password, or the ticket of a sign-in moments ago (when picking a patient).
    let user = match (field("ticket"), field("username"), field("password")) {
        // A ticket is good for the authorization request it was issued in only.
        (Some(ticket), _, _) => match store.kv_get(&ticket_key(ticket), now).await {
            Ok(Some(held)) => match held.split_once('\n') {
                Some((username, request)) if request == ticket_binding(&req) => {
                    crate::accounts::load(&state, username).await
                }
                _ => None,
            },
            _ => None,
        },
        (None, Some(username), Some(password)) => {
            match crate::accounts::sign_in(&state, username, password).await {
                Some(u) => Some(u),
                None => {
                    let form = sign_in_form(
                        &req,
                        &client.name,
                        Some("Feil brukernavn eller passord. / Wrong username or password."),
                    );
                    return page(StatusCode::UNAUTHORIZED, &form);
                }
            }
        }
        _ => None,
    };
    let Some(user) = user else {
        return page(
            StatusCode::UNAUTHORIZED,
            &sign_in_form(&req, &client.name, Some("Logg inn på nytt. / Please sign in again.")),
        );
    };

    // What: the scopes asked for, within the app's registration, of the person's kind.
    let context = if user.role == Role::Patient { ScopeContext::Patient } else { ScopeContext::User };
    let mut granted = Grant::parse(&client.scope).narrow(&Grant::parse(&req.scope));
    granted.scopes.retain(|s| s.context == context);
    if granted.scopes.is_empty() {
        return req.back_to_app(&[
            ("error", "invalid_scope"),
            ("error_description", "none of the requested scopes can be granted to you through this app"),
        ]);
    }

    // Whose record: a patient's token is for one patient — themselves, or whom they pick
    // among those they are proxy for.
    let patient = if user.role == Role::Patient {
        let Some(me) = user.fhir_user_id() else {
            return page(StatusCode::FORBIDDEN, "<p>This account is not linked to a patient record.</p>");
        };
        let candidates = match crate::reach::proxied_patients(&state, me, now).await {
            Ok(c) => c,
            Err(e) => return e.into_response(),
        };
        match field("patient") {
            Some(p) if candidates.iter().any(|c| c == p) => Some(p.to_owned()),
            Some(_) => {
                return page(
                    StatusCode::FORBIDDEN,
                    "<p>Du kan ikke handle for denne pasienten. / You may not act for this patient.</p>",
                );
            }
            None if candidates.len() == 1 => Some(me.to_owned()),
            None => {
                let ticket = new_code();
                let until = Instant::from_millis(now.millis() + LOGIN_TICKET_SECONDS * 1000);
                let held = format!("{}\n{}", user.username, ticket_binding(&req));
                if let Err(e) = store.kv_put(&ticket_key(&ticket), &held, Some(until)).await {
                    return crate::error::FhirError::from(e).into_response();
                }
                let names = patient_names(&state, &candidates).await;
                return page(StatusCode::OK, &picker_form(&req, &ticket, me, &names));
            }
        }
    } else {
        None
    };

    let code = new_code();
    let record = AuthorizationCode {
        client_id: client.id.clone(),
        redirect_uri: req.redirect_uri.clone(),
        scope: granted.to_string(),
        code_challenge: req.code_challenge.clone(),
        username: user.username.clone(),
        role: user.role,
        fhir_user: user.fhir_user.clone(),
        patient,
        audience: req.aud.clone(),
    };
    let until = Instant::from_millis(now.millis() + CODE_SECONDS * 1000);
    let text = serde_json::to_string(&record).expect("serialisable");
    if let Err(e) = store.kv_put(&code_key(&code), &text, Some(until)).await {
        return crate::error::FhirError::from(e).into_response();
    }
    if let Some(ticket) = field("ticket") {
        let _ = store.kv_delete(&ticket_key(ticket)).await;
    }
    tracing::info!(client = %client.id, role = user.role.as_str(), "authorization code issued");
    req.back_to_app(&[("code", &code)])
}

fn ticket_key(ticket: &str) -> String {
    format!("oauth-login/{ticket}")
}

/// What a ticket is bound to: the app, where it gets the code, and its PKCE challenge.
fn ticket_binding(req: &AuthRequest) -> String {
    format!("{} {} {}", req.client_id, req.redirect_uri, req.code_challenge)
}

/// A display name for each patient (`given family`), falling back to the id.
pub(crate) async fn patient_names(state: &AppState, ids: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for id in ids {
        let body = crate::reach::read_json(state, &format!("Patient/{id}")).await.ok().flatten();
        let name = body.as_ref().and_then(crate::describe::person_name);
        out.push((id.clone(), name.unwrap_or_else(|| id.clone())));
    }
    out
}

fn refuse(req: &AuthRequest, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Here(why) => page(
            StatusCode::BAD_REQUEST,
            &format!("<h1>Kan ikke logge inn / Cannot sign in</h1><p>{}</p>", escape(&why)),
        ),
        Refusal::ToApp(error, why) => req.back_to_app(&[("error", error), ("error_description", &why)]),
    }
}

fn sign_in_form(req: &AuthRequest, app: &str, problem: Option<&str>) -> String {
    let problem =
        problem.map(|p| format!(r#"<p class="problem" role="alert">{}</p>"#, escape(p))).unwrap_or_default();
    format!(
        r#"<h1>Logg inn / Sign in</h1>
<p><strong>{app}</strong> ber om tilgang til journalen din. / asks for access to your record.</p>
{problem}<form method="post" action="/auth/authorize">{hidden}
<label>Brukernavn / Username <input name="username" autocomplete="username" required></label>
<label>Passord / Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Logg inn / Sign in</button>
</form>"#,
        app = escape(app),
        hidden = req.hidden_fields(),
    )
}

fn picker_form(req: &AuthRequest, ticket: &str, me: &str, names: &[(String, String)]) -> String {
    let options: String = names
        .iter()
        .map(|(id, name)| {
            let whose = if id == me { " (deg selv / yourself)" } else { "" };
            format!(
                r#"<label><input type="radio" name="patient" value="{}" required> {}{whose}</label>"#,
                escape(id),
                escape(name)
            )
        })
        .collect();
    format!(
        r#"<h1>Hvem gjelder det? / Whose record?</h1>
<form method="post" action="/auth/authorize">{hidden}<input type="hidden" name="ticket" value="{ticket}">
<fieldset><legend>Velg pasient / Choose the patient</legend>{options}</fieldset>
<button type="submit">Fortsett / Continue</button>
</form>"#,
        hidden = req.hidden_fields(),
        ticket = escape(ticket),
    )
}
