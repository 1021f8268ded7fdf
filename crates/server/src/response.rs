//! Building FHIR responses: stored bodies pass through untouched unless the client asked for
//! a subset or pretty printing.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use helse_fhir_r4::{Issue, SummaryMode, operation_outcome, subset_elements, subset_summary};
use helse_store::StoredVersion;
use serde_json::Value;

use crate::error::FhirError;
use crate::negotiation::FHIR_JSON;

/// Presentation options every read-like interaction honours.
#[derive(Debug, Clone, Default)]
pub struct Presentation {
    pub pretty: bool,
    pub summary: Option<SummaryMode>,
    pub elements: Option<Vec<String>>,
}

impl Presentation {
    fn is_plain(&self) -> bool {
        !self.pretty && self.summary.is_none() && self.elements.is_none()
    }

    /// Applies `_summary`/`_elements` to one resource.
    pub fn subset(&self, resource: &mut Value) {
        if let Some(mode) = self.summary {
            subset_summary(resource, mode);
        }
        if let Some(elements) = &self.elements {
            let names: Vec<&str> = elements.iter().map(String::as_str).collect();
            subset_elements(resource, &names);
        }
    }
}

pub enum Payload {
    /// A stored body, byte for byte.
    Stored(Arc<str>),
    Json(Value),
    None,
}

pub struct FhirResponse {
    pub status: StatusCode,
    pub payload: Payload,
    pub headers: HeaderMap,
}

impl FhirResponse {
    pub fn new(status: StatusCode, payload: Payload) -> Self {
        FhirResponse { status, payload, headers: HeaderMap::new() }
    }

    pub fn outcome(status: StatusCode, issues: &[Issue]) -> Self {
        Self::new(status, Payload::Json(operation_outcome(issues)))
    }

    pub fn header(mut self, name: header::HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }

    /// `ETag` and `Last-Modified` of a version.
    pub fn version_headers(self, v: &StoredVersion) -> Self {
        self.header(header::ETAG, &etag(v.version_id))
            .header(header::LAST_MODIFIED, &v.last_updated.http_date())
    }

    pub fn render(self, presentation: &Presentation) -> Response {
        let body = match self.payload {
            Payload::None => None,
            Payload::Stored(text) if presentation.is_plain() => {
                Some(Body::from(bytes::Bytes::from(text.as_bytes().to_vec())))
            }
            Payload::Stored(text) => match serde_json::from_str::<Value>(&text) {
                Ok(mut v) => {
                    presentation.subset(&mut v);
                    Some(serialize(&v, presentation.pretty))
                }
                Err(e) => {
                    return FhirError::Internal(format!("stored body unreadable: {e}")).into_response();
                }
            },
            Payload::Json(v) => Some(serialize(&v, presentation.pretty)),
        };
        let mut response = match body {
            Some(b) => {
                let mut r = Response::new(b);
                r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
                r
            }
            None => Response::new(Body::empty()),
        };
        *response.status_mut() = self.status;
        response.headers_mut().extend(self.headers);
        response
    }
}

fn serialize(v: &Value, pretty: bool) -> Body {
    let bytes = if pretty { serde_json::to_vec_pretty(v) } else { serde_json::to_vec(v) };
    Body::from(bytes.expect("JSON values serialize"))
}

pub fn etag(version_id: u64) -> String {
    format!("W/\"{version_id}\"")
}

/// Reads `W/"3"`, `"3"` or `3`.
pub fn parse_etag(value: &str) -> Option<u64> {
    value.trim().trim_start_matches("W/").trim_matches('"').parse().ok()
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), error = %self, "request failed");
        }
        let challenge = match &self {
            // RFC 6750 §3: a 401 says how to authenticate, and why a token was refused.
            FhirError::Unauthorized(_) => Some("Bearer realm=\"helse\"".to_owned()),
            FhirError::InvalidToken(why) => Some(format!(
                "Bearer realm=\"helse\", error=\"invalid_token\", error_description=\"{}\"",
                why.replace('"', "'")
            )),
            _ => None,
        };
        let mut response = FhirResponse::outcome(status, &self.issues()).render(&Presentation::default());
        if let Some(c) = challenge.and_then(|c| axum::http::HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, c);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_round_trip() {
        assert_eq!(etag(3), "W/\"3\"");
        assert_eq!(parse_etag("W/\"3\""), Some(3));
        assert_eq!(parse_etag("\"12\""), Some(12));
        assert_eq!(parse_etag("W/\"x\""), None);
    }
}
