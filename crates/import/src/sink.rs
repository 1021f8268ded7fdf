//! Where imported resources go: straight into a store, or to a running server as batch
//! Bundles. Both create only what is not there yet, so an import run twice changes nothing.

use std::sync::Arc;

use async_trait::async_trait;
use helse_store::{ResourceStore, Write, WriteOutcome};
use serde_json::{Value, json};

use crate::ImportError;
use crate::prepare::Ready;

/// What happened to one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    Created,
    AlreadyPresent,
    Rejected(String),
}

#[async_trait]
pub trait Sink: Send + Sync {
    /// Whether resources must come with their search index rows.
    fn needs_index(&self) -> bool;
    /// Writes a batch; one result per resource, in order. An `Err` is a failure of the
    /// destination itself (unreachable, out of disk), which stops the import.
    async fn write(&self, batch: Vec<Ready>) -> Result<Vec<Landed>, ImportError>;
}

pub struct StoreSink {
    pub store: Arc<dyn ResourceStore>,
}

fn write_of(r: Ready) -> Write {
    Write::CreateIfAbsent { resource_type: r.resource_type, id: r.id, resource: r.resource, index: r.index }
}

fn landed(outcome: WriteOutcome) -> Landed {
    match outcome {
        WriteOutcome::Created(_) => Landed::Created,
        _ => Landed::AlreadyPresent,
    }
}

#[async_trait]
impl Sink for StoreSink {
    fn needs_index(&self) -> bool {
        true
    }

    async fn write(&self, batch: Vec<Ready>) -> Result<Vec<Landed>, ImportError> {
        // One transaction a batch. Resources are validated before they get here and written
        // create-if-absent, so a failing transaction is a failure of the store, not of one
        // resource: the import stops (and resumes from its checkpoint).
        let outcomes = self.store.write_all(batch.into_iter().map(write_of).collect()).await;
        Ok(outcomes.map_err(ImportError::Store)?.into_iter().map(landed).collect())
    }
}

/// Sends `batch` Bundles of `PUT Type/id` with `If-None-Match: *` to a server's base URL.
pub struct HttpSink {
    pub base: String,
    pub client: reqwest::Client,
    /// A bearer access token, for a server with authorisation on.
    pub token: Option<String>,
}

impl HttpSink {
    pub fn new(base: &str, token: Option<String>) -> Self {
        HttpSink { base: base.trim_end_matches('/').to_owned(), client: reqwest::Client::new(), token }
    }
}

#[async_trait]
impl Sink for HttpSink {
    fn needs_index(&self) -> bool {
        false
    }

    async fn write(&self, batch: Vec<Ready>) -> Result<Vec<Landed>, ImportError> {
        let entries: Vec<Value> = batch
            .iter()
            .map(|r| {
                json!({
                    "resource": r.resource,
                    "request": {"method": "PUT", "url": format!("{}/{}", r.resource_type, r.id), "ifNoneMatch": "*"}
                })
            })
            .collect();
        let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
        let http = |e: reqwest::Error| ImportError::Http(e.to_string());
        let mut request = self
            .client
            .post(&self.base)
            .header("content-type", "application/fhir+json")
            .body(bundle.to_string());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(http)?;
        let status = response.status();
        let body: Value = response.json().await.map_err(http)?;
        if !status.is_success() {
            return Err(ImportError::Http(format!("the server answered {status}: {}", outcome_text(&body))));
        }
        let entries = body.get("entry").and_then(Value::as_array).cloned().unwrap_or_default();
        if entries.len() != batch.len() {
            return Err(ImportError::Http(format!("{} answers for {} entries", entries.len(), batch.len())));
        }
        Ok(entries
            .iter()
            .map(|e| {
                let status = e["response"]["status"].as_str().unwrap_or("");
                match status.split(' ').next() {
                    Some("201") => Landed::Created,
                    Some("412") => Landed::AlreadyPresent,
                    _ => Landed::Rejected(format!("{status}: {}", outcome_text(&e["response"]["outcome"]))),
                }
            })
            .collect())
    }
}

/// The diagnostics of an OperationOutcome, joined.
fn outcome_text(outcome: &Value) -> String {
    outcome["issue"]
        .as_array()
        .map(|issues| issues.iter().filter_map(|i| i["diagnostics"].as_str()).collect::<Vec<_>>().join("; "))
        .unwrap_or_default()
}
