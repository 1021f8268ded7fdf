//! The web portal (`/portal`): pages for patients — my summary, my organ-donor statement,
//! who has looked at my record — and for health personnel — the patients in my care, a
//! patient's summary with critical information first, emergency access with a reason.
//! Rendered on the server, in Norwegian or English, without scripts.
//!
//! A page asks the FHIR API for what it shows, in-process, as the signed-in person
//! (`fhir::serve` with the session's access): the same reach, the same refusals and the
//! same access-log entries as an app with a token gets — the portal adds no way in.

// A page that cannot go on answers at once with the page (or redirect) to show instead:
// `Result<_, Response>`, built once per request, so its size does not matter.
#![allow(clippy::result_large_err)]

mod layout;
mod patient;
mod practitioner;
mod render;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use helse_auth::Role;
use serde_json::Value;

use crate::AppState;
use crate::error::FhirError;
use crate::html::{Lang, escape};
use crate::routes::fhir::{request_base, serve};
pub use session::{PORTAL_CLIENT, Session};

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/portal", get(home))
        .route("/portal/", get(home))
        .route("/portal/style.css", get(stylesheet))
        .route("/portal/login", get(patient::login_page).post(patient::login))
        .route("/portal/logout", post(patient::logout))
        .route("/portal/choose", get(patient::choose_page).post(patient::choose))
        .route("/portal/summary", get(patient::summary))
        .route("/portal/donor", get(patient::donor_page).post(patient::donor_save))
        .route("/portal/access-log", get(patient::access_log))
        .route("/portal/patients", get(practitioner::patients))
        .route("/portal/patients/{id}", get(practitioner::patient_summary))
        .route("/portal/emergency", post(practitioner::emergency))
}

/// Where a signed-in person starts.
async fn home(visit: Visit) -> Response {
    match visit.session.as_ref().map(|s| s.role) {
        None => redirect("/portal/login"),
        Some(Role::Practitioner) => redirect("/portal/patients"),
        Some(_) => redirect("/portal/summary"),
    }
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        crate::html::STYLESHEET,
    )
        .into_response()
}

/// One page view: the server, who asks from where, in which language, and their session.
pub struct Visit {
    state: Arc<AppState>,
    peer: SocketAddr,
    headers: HeaderMap,
    lang: Lang,
    /// The page's own path (for the language links).
    path: String,
    query: Vec<(String, String)>,
    /// The language was chosen by `?lang=`: remembered in a cookie.
    chose_lang: bool,
    session: Option<Session>,
}

impl FromRequestParts<Arc<AppState>> for Visit {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let query: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or("")).unwrap_or_default();
        let chosen = query.iter().find(|(k, _)| k == "lang").and_then(|(_, v)| Lang::parse(v));
        let lang = chosen
            .or_else(|| session::cookie(&parts.headers, LANG_COOKIE).and_then(Lang::parse))
            .or_else(|| {
                let accept = parts.headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
                accept.split(',').find_map(|tag| Lang::parse(tag.split(';').next()?.split('-').next()?))
            })
            .unwrap_or(Lang::No);
        let session = Session::find(state, &parts.headers).await.map_err(|e| error_page(lang, &e))?;
        Ok(Visit {
            state: state.clone(),
            peer,
            headers: parts.headers.clone(),
            lang,
            path: parts.uri.path().to_owned(),
            query,
            chose_lang: chosen.is_some(),
            session,
        })
    }
}

const LANG_COOKIE: &str = "helse_lang";

/// What the FHIR API answered a page's request.
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// The OperationOutcome's first diagnostics (for a refusal).
    pub fn problem(&self) -> String {
        self.body
            .pointer("/issue/0/diagnostics")
            .and_then(Value::as_str)
            .unwrap_or_else(|| self.status.canonical_reason().unwrap_or("error"))
            .to_owned()
    }
}

impl Visit {
    /// The session, or the sign-in page.
    fn signed_in(&self) -> Result<&Session, Response> {
        self.session.as_ref().ok_or_else(|| redirect("/portal/login"))
    }

    /// Asks the FHIR API, as the session's person (under emergency access when `emergency`
    /// gives a reason). `path` is below the FHIR base (`Patient/1/$summary`).
    async fn fhir(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
        emergency: Option<String>,
    ) -> Result<Answer, FhirError> {
        let session = self.session.as_ref().ok_or_else(|| FhirError::Unauthorized("not signed in".into()))?;
        let uri: Uri = format!("/fhir/{path}")
            .parse()
            .map_err(|_| FhirError::BadRequest(format!("'{path}' is not a valid path")))?;
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/fhir+json"));
        if let Some(host) = self.headers.get(header::HOST) {
            headers.insert(header::HOST, host.clone());
        }
        if let Some(tag) = if_match.and_then(|t| HeaderValue::from_str(t).ok()) {
            headers.insert(header::IF_MATCH, tag);
        }
        let body = match body {
            Some(b) => {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/fhir+json"));
                Body::from(serde_json::to_vec(b).expect("serialisable"))
            }
            None => Body::empty(),
        };
        let access = session.access(emergency);
        let response = serve(&self.state, Ok(access), self.peer, method, uri, headers, body).await;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(|e| FhirError::Internal(format!("reading the API's answer: {e}")))?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok(Answer { status, body })
    }

    /// A read that must succeed: the answer's body, or the page that says why not.
    async fn read(&self, title: &str, path: &str, emergency: Option<String>) -> Result<Value, Response> {
        match self.fhir(Method::GET, path, None, None, emergency).await {
            Ok(a) if a.ok() => Ok(a.body),
            Ok(a) => Err(self.failed(title, &a)),
            Err(e) => Err(self.error(&e)),
        }
    }

    /// The FHIR base URL (for links in what the API returned).
    fn base(&self) -> String {
        request_base(&self.state, &self.headers)
    }

    /// Whether the browser reached us over HTTPS (for `Secure` cookies).
    fn secure(&self) -> bool {
        self.base().starts_with("https://")
    }

    /// A page in the portal's layout.
    fn page(&self, status: StatusCode, title: &str, body: &str) -> Response {
        let mut response = layout::page(self, status, title, body);
        if self.chose_lang {
            let cookie =
                format!("{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000", self.lang.code());
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        response
    }

    /// A refusal or failure of the API, as a page.
    fn failed(&self, title: &str, answer: &Answer) -> Response {
        let body = format!(r#"<p class="problem" role="alert">{}</p>"#, escape(&answer.problem()));
        self.page(answer.status, title, &body)
    }

    fn error(&self, e: &FhirError) -> Response {
        error_page(self.lang, e)
    }
}

/// A posted form's fields.
fn form(body: &Bytes) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

fn field<'f>(form: &'f [(String, String)], name: &str) -> Option<&'f str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Text percent-encoded for a URL's path segment or query value.
fn encode(text: &str) -> String {
    serde_urlencoded::to_string([("v", text)]).unwrap_or_default()[2..].to_owned()
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned()), (header::CACHE_CONTROL, "no-store".into())])
        .into_response()
}

fn error_page(lang: Lang, e: &FhirError) -> Response {
    let (status, _) = e.status_and_code();
    crate::html::document(
        status,
        lang,
        "Helse",
        &format!(
            r#"<main><h1>{}</h1><p class="problem" role="alert">{}</p></main>"#,
            lang.pick("Noe gikk galt", "Something went wrong"),
            escape(&e.to_string())
        ),
    )
}

/// A form from another site (no or a wrong `csrf` token) is refused.
fn foreign_form(visit: &Visit) -> Response {
    visit.page(
        StatusCode::FORBIDDEN,
        visit.lang.pick("Avvist", "Refused"),
        &format!(
            r#"<p class="problem" role="alert">{}</p>"#,
            visit.lang.pick(
                "Skjemaet kom ikke fra denne siden. Prøv igjen.",
                "The form did not come from this site. Please try again."
            )
        ),
    )
}
