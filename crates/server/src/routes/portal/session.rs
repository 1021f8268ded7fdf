//! Portal sign-in sessions: a random id in an `HttpOnly`, `SameSite=Strict` cookie; the
//! store keeps only its SHA-256 (someone who reads the store cannot take over a session)
//! with who signed in, whose record they work on, and the token every form carries against
//! cross-site requests. A session ends after 30 idle minutes or at sign-out, and lives in
//! the store, so any server of the deployment serves it.

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use helse_auth::clients::hash_secret;
use helse_auth::codes::new_code;
use helse_auth::{Grant, Role, User};
use helse_fhir_r4::Instant;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::access::Access;
use crate::error::FhirError;
use crate::reach::Person;

/// The session cookie's name.
pub const COOKIE: &str = "helse_portal";
/// How long a session lasts without use.
const IDLE_MILLIS: i64 = 30 * 60 * 1000;
/// The client the access log names for what people do through the portal.
pub const PORTAL_CLIENT: &str = "helse-portal";

/// What the store keeps of a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub username: String,
    pub role: Role,
    pub fhir_user: Option<String>,
    /// A patient's: whose record they work on (themselves, or whom they are proxy for);
    /// `None` until they have picked when they may act for several.
    pub patient: Option<String>,
    /// Every form posts it back (`csrf`).
    pub csrf: String,
    expires: i64,
    /// The cookie's value is not kept; its hash is the key.
    #[serde(skip)]
    key: String,
}

fn store_key(id: &str) -> String {
    format!("portal-session/{}", hash_secret(id))
}

impl Session {
    /// Starts a session for `user`; returns it with the cookie's value.
    pub async fn start(
        state: &AppState,
        user: &User,
        patient: Option<String>,
    ) -> Result<(Session, String), FhirError> {
        let id = new_code();
        let mut session = Session {
            username: user.username.clone(),
            role: user.role,
            fhir_user: user.fhir_user.clone(),
            patient,
            csrf: new_code(),
            expires: 0,
            key: store_key(&id),
        };
        session.save(state).await?;
        Ok((session, id))
    }

    /// The session a request's cookie names, if it is live (and renewed when half spent).
    pub async fn find(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, FhirError> {
        let Some(id) = cookie(headers, COOKIE) else { return Ok(None) };
        let key = store_key(id);
        let now = Instant::now();
        let Some(text) = state.store.kv_get(&key, now).await? else { return Ok(None) };
        let Ok(mut session) = serde_json::from_str::<Session>(&text) else { return Ok(None) };
        session.key = key;
        if session.expires - now.millis() < IDLE_MILLIS / 2 {
            session.save(state).await?;
        }
        Ok(Some(session))
    }

    /// Stores the session, good for another idle period.
    pub async fn save(&mut self, state: &AppState) -> Result<(), FhirError> {
        self.expires = Instant::now().millis() + IDLE_MILLIS;
        let text = serde_json::to_string(self).expect("serialisable");
        state.store.kv_put(&self.key, &text, Some(Instant::from_millis(self.expires))).await?;
        Ok(())
    }

    pub async fn end(&self, state: &AppState) -> Result<(), FhirError> {
        state.store.kv_delete(&self.key).await?;
        Ok(())
    }

    /// Whether a posted form came from one of this session's pages.
    pub fn form_is_ours(&self, form: &[(String, String)]) -> bool {
        form.iter().any(|(k, v)| k == "csrf" && constant_time_eq(v.as_bytes(), self.csrf.as_bytes()))
    }

    /// What the session may do, as the FHIR API sees it: the scopes of the person's kind
    /// (patients read their record and register their own donor statement; health personnel
    /// read), and for a practitioner, emergency access with `emergency`'s reason.
    pub fn access(&self, emergency: Option<String>) -> Access {
        let scope = match self.role {
            Role::Patient => "patient/*.rs patient/Consent.cu",
            Role::Practitioner => "user/*.rs",
            Role::Admin => "",
        };
        let person = Person::new(
            self.username.clone(),
            self.role,
            self.fhir_user.clone(),
            self.patient.clone(),
            emergency,
        );
        Access::Client {
            client_id: PORTAL_CLIENT.into(),
            grant: Grant::parse(scope),
            person: Some(Arc::new(person)),
        }
    }

    /// A patient's own Patient id (whom they act for may be another: `patient`).
    pub fn own_patient(&self) -> Option<&str> {
        self.fhir_user.as_deref()?.strip_prefix("Patient/").filter(|_| self.role == Role::Patient)
    }

    /// The patient a patient's session works on.
    pub fn patient(&self) -> Option<&str> {
        self.patient.as_deref().filter(|_| self.role == Role::Patient)
    }
}

/// The value of a request cookie.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// A `Set-Cookie` value for the session (empty `value`: remove it). `Secure` when the
/// server is reached over HTTPS.
pub fn set_cookie(value: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    let age = if value.is_empty() { "; Max-Age=0" } else { "" };
    format!("{COOKIE}={value}; Path=/portal; HttpOnly; SameSite=Strict{secure}{age}")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; helse_portal=abc; b=2".parse().unwrap());
        assert_eq!(cookie(&headers, COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        assert!(set_cookie("x", true).contains("HttpOnly; SameSite=Strict; Secure"));
        assert!(set_cookie("", false).ends_with("Max-Age=0"));
    }

    #[test]
    fn forms_without_the_sessions_token_are_not_ours() {
        let s = Session {
            username: "u".into(),
            role: Role::Patient,
            fhir_user: None,
            patient: None,
            csrf: "token".into(),
            expires: 0,
            key: String::new(),
        };
        assert!(s.form_is_ours(&[("csrf".into(), "token".into())]));
        assert!(!s.form_is_ours(&[("csrf".into(), "tokem".into())]));
        assert!(!s.form_is_ours(&[("csrf".into(), "toke".into())]));
        assert!(!s.form_is_ours(&[]));
    }
}
