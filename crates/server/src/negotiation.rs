//! Content negotiation: what we accept (`Content-Type`) and what we return (`Accept`, `_format`).

use crate::error::FhirError;

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// Decides whether a JSON response is acceptable. `_format` wins over `Accept`.
pub fn check_acceptable(accept: Option<&str>, format: Option<&str>) -> Result<(), FhirError> {
    if let Some(f) = format {
        return match f.trim() {
            "json" | "application/json" | "application/fhir+json" | "application/json+fhir" => Ok(()),
            other => Err(FhirError::NotAcceptable(other.to_owned())),
        };
    }
    let Some(accept) = accept else { return Ok(()) };
    let acceptable = accept.split(',').any(|part| {
        let mut params = part.split(';');
        let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = params.any(|p| p.trim().replace(' ', "") == "q=0");
        !refused
            && matches!(
                media.as_str(),
                "" | "*/*"
                    | "application/*"
                    | "application/json"
                    | "application/fhir+json"
                    | "application/json+fhir"
            )
    });
    if acceptable { Ok(()) } else { Err(FhirError::NotAcceptable(accept.to_owned())) }
}

/// What a request body may be: FHIR JSON, or a JSON Patch document for PATCH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Resource,
    JsonPatch,
}

pub fn body_kind(content_type: Option<&str>) -> Result<BodyKind, FhirError> {
    let Some(ct) = content_type else {
        return Err(FhirError::UnsupportedMediaType("(none)".into()));
    };
    let media = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match media.as_str() {
        "application/fhir+json" | "application/json" | "application/json+fhir" => Ok(BodyKind::Resource),
        "application/json-patch+json" => Ok(BodyKind::JsonPatch),
        _ => Err(FhirError::UnsupportedMediaType(ct.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(accept: Option<&str>, format: Option<&str>, ok: bool) {
        assert_eq!(check_acceptable(accept, format).is_ok(), ok, "{accept:?} {format:?}");
    }

    #[test]
    fn accept_and_format() {
        check(None, None, true);
        check(Some("application/fhir+json"), None, true);
        check(Some("text/html, application/json;q=0.9"), None, true);
        check(Some("*/*"), None, true);
        check(Some("application/fhir+xml"), None, false);
        check(Some("application/json;q=0"), None, false);
        check(Some("application/fhir+xml"), Some("json"), true);
        check(None, Some("xml"), false);
        check(None, Some("application/fhir+xml"), false);
    }

    #[test]
    fn content_types() {
        assert_eq!(body_kind(Some("application/fhir+json; charset=utf-8")).unwrap(), BodyKind::Resource);
        assert_eq!(body_kind(Some("application/json-patch+json")).unwrap(), BodyKind::JsonPatch);
        assert!(body_kind(Some("application/fhir+xml")).is_err());
        assert!(body_kind(Some("text/plain")).is_err());
        assert!(body_kind(None).is_err());
    }
}
