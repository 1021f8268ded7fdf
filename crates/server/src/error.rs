//! Every failure a FHIR request can meet, and the one table mapping each to an HTTP status and
//! an `OperationOutcome`.

use axum::http::StatusCode;
use helse_fhir_r4::{Issue, IssueType};
use helse_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    #[error("{0}")]
    MalformedJson(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("resource type '{0}' is not supported")]
    UnknownType(String),
    #[error("{0} is not known")]
    NotFound(String),
    #[error("{0} has been deleted")]
    Gone(String),
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    #[error("cannot produce {0}; this server speaks application/fhir+json")]
    NotAcceptable(String),
    #[error("content type '{0}' is not supported; send application/fhir+json")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("the resource is invalid")]
    Invalid(Vec<Issue>),
    #[error("{0}")]
    NotSupported(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    InvalidToken(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the request took longer than {0} seconds")]
    Timeout(u64),
    #[error("the store is unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal(String),
}

impl FhirError {
    /// The one table: status code and `OperationOutcome.issue.code` per error.
    pub fn status_and_code(&self) -> (StatusCode, IssueType) {
        use FhirError::*;
        match self {
            MalformedJson(_) => (StatusCode::BAD_REQUEST, IssueType::Structure),
            BadRequest(_) => (StatusCode::BAD_REQUEST, IssueType::Invalid),
            UnknownType(_) => (StatusCode::NOT_FOUND, IssueType::NotSupported),
            NotFound(_) => (StatusCode::NOT_FOUND, IssueType::NotFound),
            Gone(_) => (StatusCode::GONE, IssueType::Deleted),
            MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, IssueType::NotSupported),
            NotAcceptable(_) => (StatusCode::NOT_ACCEPTABLE, IssueType::NotSupported),
            UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, IssueType::NotSupported),
            Conflict(_) => (StatusCode::CONFLICT, IssueType::Conflict),
            PreconditionFailed(_) => (StatusCode::PRECONDITION_FAILED, IssueType::Conflict),
            PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, IssueType::TooLong),
            Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, IssueType::Invalid),
            NotSupported(_) => (StatusCode::BAD_REQUEST, IssueType::NotSupported),
            Unauthorized(_) | InvalidToken(_) => (StatusCode::UNAUTHORIZED, IssueType::Security),
            Forbidden(_) => (StatusCode::FORBIDDEN, IssueType::Forbidden),
            Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, IssueType::Timeout),
            Unavailable => (StatusCode::SERVICE_UNAVAILABLE, IssueType::Exception),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, IssueType::Exception),
        }
    }

    pub fn issues(&self) -> Vec<Issue> {
        match self {
            FhirError::Invalid(issues) => issues.clone(),
            other => {
                let (_, code) = other.status_and_code();
                vec![Issue::error(code, other.to_string())]
            }
        }
    }
}

impl From<StoreError> for FhirError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::VersionConflict { expected, current } => {
                FhirError::PreconditionFailed(match current {
                    Some(c) => {
                        format!("If-Match names version {expected}, but the current version is {c}")
                    }
                    None => format!("If-Match names version {expected}, but the resource does not exist"),
                })
            }
            StoreError::ShuttingDown => FhirError::Unavailable,
            other => {
                // The cause goes to the log, never to the client.
                tracing::error!(error = %other, "store failure");
                FhirError::Internal(other.to_string())
            }
        }
    }
}
