//! Bulk Data Access (FHIR Bulk Data IG v2) `$export`: the asynchronous request pattern.
//!
//! A kick-off (`GET [base]/$export`, `/Patient/$export`, `/Group/{id}/$export` with
//! `Prefer: respond-async`) records a job in the store and answers 202 with a status URL.
//! The job runs in the background, writing NDJSON files (at most `FILE_RESOURCES` resources
//! each) into the store and beating a heartbeat. Because jobs and files live in the store,
//! any server instance answers status and file requests, a server that restarts — or another
//! instance — takes over jobs whose runner died (they start over), and finished jobs are
//! deleted after the retention period.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use helse_auth::Permission;
use helse_fhir_r4::{Instant, ResourceId, ResourceType, parse_date_range};
use helse_search::{parse_search, search_parameters};
use helse_store::{Clause, Condition, Cursor, JobRecord, JobStatus, ResourceStore, SearchQuery, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::fhir::Ctx;
use crate::access::Access;
use crate::error::FhirError;

/// Resources per NDJSON file.
const FILE_RESOURCES: usize = 10_000;
/// Resources read per query while exporting.
const PAGE: usize = 1_000;
/// A running job whose heartbeat is older than this has lost its runner.
pub const STALE_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    System,
    Patient,
    Group(String),
}

/// The kick-off request, as recorded in the job.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ExportRequest {
    /// The kick-off URL, echoed in the manifest.
    request: String,
    base: String,
    level: Level,
    types: Vec<String>,
    /// `_since`, in milliseconds.
    since: Option<i64>,
    /// `_typeFilter`: per type, the queries (a resource matching any of them is exported).
    type_filters: Vec<(String, Vec<(String, String)>)>,
    transaction_time: String,
    /// The client that asked (with authorisation on): only it may poll, fetch or cancel.
    #[serde(default)]
    client: Option<String>,
}

fn job_url(base: &str, id: &str) -> String {
    format!("{base}/$export-status/{id}")
}

/// `GET …/$export`: checks the request, records the job, starts it.
pub async fn kick_off(ctx: &Ctx<'_>, level: Level, uri: &str) -> Result<Response, FhirError> {
    let async_requested = ctx
        .headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split([',', ';']).any(|p| p.trim() == "respond-async"));
    if !async_requested {
        return Err(FhirError::BadRequest(
            "$export runs asynchronously: send 'Prefer: respond-async'".into(),
        ));
    }
    if let Some(format) = ctx.param("_outputFormat")
        && !matches!(format, "application/fhir+ndjson" | "application/ndjson" | "ndjson")
    {
        return Err(FhirError::BadRequest(format!(
            "_outputFormat '{format}' is not supported (only NDJSON)"
        )));
    }
    let params = search_parameters();
    let types: Vec<String> = match ctx.param("_type") {
        Some(list) => list
            .split(',')
            .map(|t| {
                ResourceType::parse(t.trim())
                    .map(|t| t.to_string())
                    .map_err(|_| FhirError::UnknownType(t.into()))
            })
            .collect::<Result<_, _>>()?,
        None => match level {
            Level::System => {
                helse_fhir_r4::definitions().resource_types().iter().map(|t| t.to_string()).collect()
            }
            Level::Patient | Level::Group(_) => {
                let mut t: Vec<String> =
                    params.compartment_members("Patient").iter().map(|t| t.to_string()).collect();
                if !t.iter().any(|x| x == "Patient") {
                    t.insert(0, "Patient".into());
                }
                t
            }
        },
    };
    // Named types must all be readable; by default, the readable ones are exported.
    let types: Vec<String> = if ctx.param("_type").is_some() {
        for ty in &types {
            ctx.access.require(ty, Permission::Read)?;
        }
        types
    } else {
        types.into_iter().filter(|t| ctx.access.can(t, Permission::Read)).collect()
    };
    if types.is_empty() {
        return Err(FhirError::Forbidden(
            "the access token's scopes allow reading none of the exported types".into(),
        ));
    }
    let since = ctx
        .param("_since")
        .map(|s| {
            parse_date_range(s)
                .map(|r| r.start)
                .ok_or_else(|| FhirError::BadRequest(format!("_since '{s}' is not an instant")))
        })
        .transpose()?;
    let mut type_filters = Vec::new();
    for filter in ctx.query.iter().filter(|(k, _)| k == "_typeFilter").flat_map(|(_, v)| v.split(',')) {
        let (ty, query) = filter
            .split_once('?')
            .ok_or_else(|| FhirError::BadRequest(format!("_typeFilter '{filter}' is not Type?query")))?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| FhirError::BadRequest(format!("_typeFilter '{filter}': {e}")))?;
        // Checked now, strictly: a filter the server cannot apply must not widen the export.
        parse_search(ty, &pairs, true)
            .map_err(|e| FhirError::BadRequest(format!("_typeFilter '{filter}': {e}")))?;
        type_filters.push((ty.to_owned(), pairs));
    }
    if let Level::Group(id) = &level {
        let group = ResourceType::parse("Group").expect("a type");
        let id = ResourceId::parse(id).map_err(|e| FhirError::BadRequest(e.to_string()))?;
        match ctx.state.store.read(group, &id).await? {
            Some(v) if !v.is_deleted() => {}
            _ => return Err(FhirError::NotFound(format!("Group/{id}"))),
        }
    }
    let now = Instant::now();
    let request = ExportRequest {
        request: format!("{}{}", ctx.base, uri),
        base: ctx.base.clone(),
        level,
        types,
        since,
        type_filters,
        transaction_time: now.to_string(),
        client: ctx.access.client_id().map(str::to_owned),
    };
    let job = JobRecord {
        id: uuid::Uuid::new_v4().simple().to_string(),
        status: JobStatus::Running,
        request: serde_json::to_string(&request).expect("serializes"),
        result: None,
        created: now,
        heartbeat: now,
    };
    ctx.state.store.put_job(&job).await?;
    spawn(ctx.state.store.clone(), job.clone());
    Ok(Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(header::CONTENT_LOCATION, job_url(&ctx.base, &job.id))
        .body(Body::empty())
        .expect("a response"))
}

/// `GET $export-status/{id}`: 202 while running, the manifest when done, an
/// OperationOutcome (500) when it failed, 404 when unknown or expired.
/// A job, if it exists and belongs to the caller (another client's job is "not found": its
/// existence is not theirs to know).
async fn owned_job(store: &dyn ResourceStore, access: &Access, id: &str) -> Result<JobRecord, FhirError> {
    let missing = || FhirError::NotFound(format!("export job {id}"));
    let job = store.job(id).await?.ok_or_else(missing)?;
    if let Some(client) = access.client_id() {
        let owner = serde_json::from_str::<ExportRequest>(&job.request).ok().and_then(|r| r.client);
        if owner.as_deref() != Some(client) {
            return Err(missing());
        }
    }
    Ok(job)
}

pub async fn status(store: &dyn ResourceStore, access: &Access, id: &str) -> Result<Response, FhirError> {
    let job = owned_job(store, access, id).await?;
    match job.status {
        JobStatus::Running => Ok(Response::builder()
            .status(StatusCode::ACCEPTED)
            .header("x-progress", "in progress")
            .header(header::RETRY_AFTER, "2")
            .body(Body::empty())
            .expect("a response")),
        JobStatus::Done => Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::EXPIRES, "0")
            .body(Body::from(job.result.unwrap_or_default()))
            .expect("a response")),
        JobStatus::Failed => Err(FhirError::Internal(format!(
            "the export failed: {}",
            job.result.unwrap_or_else(|| "unknown error".into())
        ))),
    }
}

/// `DELETE $export-status/{id}`: cancels a running job or deletes a finished one.
pub async fn cancel(store: &dyn ResourceStore, access: &Access, id: &str) -> Result<Response, FhirError> {
    owned_job(store, access, id).await?;
    store.delete_job(id).await?;
    Ok(Response::builder().status(StatusCode::ACCEPTED).body(Body::empty()).expect("a response"))
}

/// `GET $export-file/{id}/{n}`: one NDJSON file.
pub async fn file(
    store: &dyn ResourceStore,
    access: &Access,
    id: &str,
    n: u32,
) -> Result<Response, FhirError> {
    owned_job(store, access, id).await?;
    let body =
        store.job_file(id, n).await?.ok_or_else(|| FhirError::NotFound(format!("export file {id}/{n}")))?;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/fhir+ndjson")
        .body(Body::from(body))
        .expect("a response"))
}

pub fn spawn(store: Arc<dyn ResourceStore>, job: JobRecord) {
    tokio::spawn(async move {
        let id = job.id.clone();
        match run(store.as_ref(), job.clone()).await {
            // A job cancelled while it ran must not come back (nor leave files behind).
            Ok(Some(manifest)) if matches!(store.job(&id).await, Ok(Some(_))) => {
                let done = JobRecord {
                    status: JobStatus::Done,
                    result: Some(manifest),
                    heartbeat: Instant::now(),
                    ..job
                };
                let _ = store.put_job(&done).await;
            }
            Ok(_) => {
                tracing::info!(job = %id, "export cancelled");
                let _ = store.delete_job(&id).await;
            }
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "export failed");
                let failed = JobRecord {
                    status: JobStatus::Failed,
                    result: Some(e.to_string()),
                    heartbeat: Instant::now(),
                    ..job
                };
                let _ = store.put_job(&failed).await;
            }
        }
    });
}

/// Takes over jobs whose runner died and deletes expired ones; run at start and then
/// periodically by every server instance.
pub async fn keep_jobs(store: Arc<dyn ResourceStore>, retention: Duration) {
    let now = Instant::now();
    let stale = Instant::from_millis(now.millis() - STALE_AFTER.as_millis() as i64);
    match store.take_over_stale_jobs(stale, now).await {
        Ok(jobs) => {
            for job in jobs {
                tracing::info!(job = %job.id, "resuming an export whose runner stopped");
                spawn(store.clone(), job);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot look for stale export jobs"),
    }
    let expired = Instant::from_millis(now.millis() - retention.as_millis() as i64);
    if let Ok(ids) = store.expired_jobs(expired).await {
        for id in ids {
            let _ = store.delete_job(&id).await;
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Request(String),
}

/// Writes the files; the manifest, or `None` when the job was cancelled meanwhile.
async fn run(store: &dyn ResourceStore, mut job: JobRecord) -> Result<Option<String>, ExportError> {
    let req: ExportRequest = serde_json::from_str(&job.request)
        .map_err(|e| ExportError::Request(format!("unreadable job: {e}")))?;
    let members = match &req.level {
        Level::Group(id) => Some(group_members(store, id).await?),
        _ => None,
    };
    let mut outputs: Vec<Value> = Vec::new();
    let mut n = 0u32;
    for ty in &req.types {
        let filters: Vec<&Vec<(String, String)>> =
            req.type_filters.iter().filter(|(t, _)| t == ty).map(|(_, q)| q).collect();
        let mut queries: Vec<Vec<Clause>> = Vec::new();
        let base = scope_clauses(&req, ty, members.as_deref());
        let Some(base) = base else { continue };
        if filters.is_empty() {
            queries.push(base);
        } else {
            for q in filters {
                let parsed = parse_search(ty, q, true).map_err(|e| ExportError::Request(e.to_string()))?;
                let mut clauses = base.clone();
                clauses.extend(parsed.clauses);
                queries.push(clauses);
            }
        }
        let mut seen = std::collections::HashSet::new();
        let mut lines = String::new();
        let mut in_file = 0usize;
        for clauses in queries {
            let mut cursor = Cursor::Start;
            loop {
                let query = SearchQuery {
                    resource_type: ty.clone(),
                    clauses: clauses.clone(),
                    sort: Vec::new(),
                    count: PAGE,
                    offset: 0,
                    cursor,
                    want_total: false,
                };
                let (rows, _) = store.search(&query).await?;
                let Some((last, _)) = rows.last() else { break };
                cursor = Cursor::After(helse_store::Position::key(*last));
                let full = rows.len() == PAGE;
                for (rid, v) in rows {
                    if !seen.insert(rid) {
                        continue;
                    }
                    if let Some(body) = &v.body {
                        lines.push_str(body);
                        lines.push('\n');
                        in_file += 1;
                    }
                    if in_file == FILE_RESOURCES {
                        n += 1;
                        outputs.push(output(&req, &job.id, ty, n, in_file));
                        store.put_job_file(&job.id, n, std::mem::take(&mut lines)).await?;
                        in_file = 0;
                        if !beat(store, &mut job).await? {
                            return Ok(None);
                        }
                    }
                }
                if !full {
                    break;
                }
            }
        }
        if in_file > 0 {
            n += 1;
            outputs.push(output(&req, &job.id, ty, n, in_file));
            store.put_job_file(&job.id, n, lines).await?;
            if !beat(store, &mut job).await? {
                return Ok(None);
            }
        }
    }
    let manifest = json!({
        "transactionTime": req.transaction_time,
        "request": req.request,
        "requiresAccessToken": false,
        "output": outputs,
        "error": []
    });
    Ok(Some(manifest.to_string()))
}

fn output(req: &ExportRequest, job: &str, ty: &str, n: u32, count: usize) -> Value {
    json!({"type": ty, "url": format!("{}/$export-file/{job}/{n}", req.base), "count": count})
}

/// Records a sign of life; `false` when the job is gone (cancelled).
async fn beat(store: &dyn ResourceStore, job: &mut JobRecord) -> Result<bool, StoreError> {
    if store.job(&job.id).await?.is_none() {
        return Ok(false);
    }
    job.heartbeat = Instant::now();
    store.put_job(job).await?;
    Ok(true)
}

/// The clauses that keep the export to its level (`None`: the type cannot be exported at
/// that level) and to `_since`.
fn scope_clauses(req: &ExportRequest, ty: &str, members: Option<&[String]>) -> Option<Vec<Clause>> {
    let mut clauses = Vec::new();
    if let Some(since) = req.since {
        clauses.push(Clause(vec![Condition::LastUpdated {
            prefix: helse_store::Prefix::Ge,
            start: since,
            end: since + 1,
        }]));
    }
    if req.level == Level::System {
        return Some(clauses);
    }
    if ty == "Patient" {
        if let Some(ids) = members {
            clauses.push(Clause(vec![Condition::Id(ids.to_vec())]));
        }
        return Some(clauses);
    }
    let params = search_parameters().compartment_params("Patient", ty)?;
    let conditions: Vec<Condition> = match members {
        None => params
            .iter()
            .map(|p| Condition::Reference {
                param: p.clone(),
                target_type: Some("Patient".into()),
                target_id: None,
                url: None,
            })
            .collect(),
        Some(ids) => params
            .iter()
            .flat_map(|p| {
                ids.iter().map(move |id| Condition::Reference {
                    param: p.clone(),
                    target_type: Some("Patient".into()),
                    target_id: Some(id.clone()),
                    url: None,
                })
            })
            .collect(),
    };
    clauses.push(Clause(conditions));
    Some(clauses)
}

/// The patients a Group lists (`member.entity` references to Patient).
async fn group_members(store: &dyn ResourceStore, id: &str) -> Result<Vec<String>, ExportError> {
    let ty = ResourceType::parse("Group").expect("a type");
    let id = ResourceId::parse(id).map_err(|e| ExportError::Request(e.to_string()))?;
    let group = store
        .read(ty, &id)
        .await?
        .and_then(|v| v.body)
        .ok_or_else(|| ExportError::Request(format!("Group/{id} is gone")))?;
    let group: Value = serde_json::from_str(&group).map_err(|e| ExportError::Request(e.to_string()))?;
    Ok(group["member"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["entity"]["reference"].as_str())
        .filter_map(|r| r.strip_prefix("Patient/"))
        .map(str::to_owned)
        .collect())
}
