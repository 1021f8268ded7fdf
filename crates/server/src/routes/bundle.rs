//! `POST /` with a Bundle: `batch` runs each entry as its own request through the same
//! dispatcher and reports each outcome; a failing entry does not affect the others.
//! `transaction` resolves every entry first (ids, `urn:uuid:` and conditional references,
//! conditional criteria), validates every resource, and stores all writes in one store
//! transaction: any failure leaves nothing behind and answers with that entry's outcome.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

use helse_fhir_r4::{ResourceId, ResourceType};
use helse_store::{Method as WriteMethod, Write, WriteOutcome};
use serde_json::{Value, json};

use crate::error::FhirError;
use crate::response::{FhirResponse, Payload, parse_etag};
use crate::routes::fhir::{Ctx, dispatch, validated};
use crate::routes::search;

/// Entries one Bundle may carry.
const MAX_ENTRIES: usize = 10_000;

pub async fn process(ctx: &Ctx<'_>, bundle: Value) -> Result<FhirResponse, FhirError> {
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(FhirError::BadRequest("POST to the base takes a Bundle".into()));
    }
    // The Bundle's own structure; each entry's resource is validated when the entry runs.
    let mut shell = bundle.clone();
    if let Some(entries) = shell.get_mut("entry").and_then(Value::as_array_mut) {
        for e in entries.iter_mut().filter_map(Value::as_object_mut) {
            e.shift_remove("resource");
        }
    }
    let issues = helse_fhir_r4::validate_resource(&shell, Some("Bundle"));
    if !issues.is_empty() {
        return Err(FhirError::Invalid(issues));
    }
    let entries = bundle.get("entry").and_then(Value::as_array).cloned().unwrap_or_default();
    if entries.len() > MAX_ENTRIES {
        return Err(FhirError::PayloadTooLarge(MAX_ENTRIES));
    }
    match bundle.get("type").and_then(Value::as_str) {
        Some("batch") => batch(ctx, &entries).await,
        Some("transaction") => transaction(ctx, &entries).await,
        other => Err(FhirError::BadRequest(format!(
            "a Bundle posted to the base must be a batch or transaction, not {}",
            other.unwrap_or("untyped")
        ))),
    }
}

async fn batch(ctx: &Ctx<'_>, entries: &[Value]) -> Result<FhirResponse, FhirError> {
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let response = match entry_request(entry) {
            Ok((method, uri, headers, body)) => {
                match dispatch_boxed(ctx.state, ctx.access, method, uri, headers, body).await {
                    Ok(r) => r,
                    Err(e) => e.into_response(),
                }
            }
            Err(e) => e.into_response(),
        };
        out.push(response_entry(response).await);
    }
    let bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "batch-response",
        "entry": out,
    });
    Ok(FhirResponse::new(StatusCode::OK, Payload::Json(bundle)))
}

type Dispatched<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, FhirError>> + Send + 'a>>;

/// `dispatch` behind a box: an entry re-enters the dispatcher (one level deep, since Bundles
/// do not nest), and the box makes that recursion a known, `Send` type.
fn dispatch_boxed<'a>(
    state: &'a crate::AppState,
    access: &'a crate::access::Access,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Dispatched<'a> {
    Box::pin(async move { dispatch(state, access, &method, &uri, &headers, body, &mut None, None).await })
}

/// The HTTP request an entry stands for.
fn entry_request(entry: &Value) -> Result<(Method, Uri, HeaderMap, Body), FhirError> {
    let request = entry.get("request").ok_or_else(|| FhirError::BadRequest("entry has no request".into()))?;
    let method_text = request.get("method").and_then(Value::as_str).unwrap_or("");
    let method: Method = method_text
        .parse()
        .ok()
        .filter(|m| {
            [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(m)
        })
        .ok_or_else(|| FhirError::BadRequest(format!("entry method '{method_text}' is not supported")))?;
    let url = request.get("url").and_then(Value::as_str).unwrap_or("");
    // Nothing outside this server can be reached from a Bundle: absolute URLs name Type/id here.
    let relative = relative_url(url);
    if relative.is_empty() {
        return Err(FhirError::BadRequest("entry url is empty (Bundles do not nest)".into()));
    }
    let uri: Uri = format!("/fhir/{relative}")
        .parse()
        .map_err(|_| FhirError::BadRequest(format!("entry url '{url}' is not a valid URL")))?;
    let mut headers = HeaderMap::new();
    for (field, name) in [
        ("ifMatch", header::IF_MATCH),
        ("ifNoneMatch", header::IF_NONE_MATCH),
        ("ifModifiedSince", header::IF_MODIFIED_SINCE),
        ("ifNoneExist", header::HeaderName::from_static("if-none-exist")),
    ] {
        if let Some(v) =
            request.get(field).and_then(Value::as_str).and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert(name, v);
        }
    }
    let body = match entry.get("resource") {
        Some(resource) => {
            // A Binary carrying a JSON Patch is how a Bundle PATCHes.
            let is_patch = method == Method::PATCH
                && resource.get("resourceType").and_then(Value::as_str) == Some("Binary");
            let bytes = if is_patch {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json-patch+json"));
                let data = resource.get("data").and_then(Value::as_str).unwrap_or("");
                base64_decode(data)
                    .ok_or_else(|| FhirError::BadRequest("patch Binary data is not base64".into()))?
            } else {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/fhir+json"));
                serde_json::to_vec(resource).expect("JSON values serialize")
            };
            Body::from(bytes)
        }
        None => Body::empty(),
    };
    Ok((method, uri, headers, body))
}

/// The JSON Patch a PATCH entry carries, as a Binary with `contentType`
/// `application/json-patch+json` and base64 `data` (how FHIR Bundles carry JSON Patch).
fn patch_document(entry: &Value) -> Result<json_patch::Patch, FhirError> {
    let resource = entry
        .get("resource")
        .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("Binary"))
        .ok_or_else(|| FhirError::BadRequest("a PATCH entry carries its JSON Patch as a Binary".into()))?;
    let data = resource.get("data").and_then(Value::as_str).unwrap_or("");
    let bytes =
        base64_decode(data).ok_or_else(|| FhirError::BadRequest("patch Binary data is not base64".into()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| FhirError::BadRequest(format!("not a JSON Patch document: {e}")))
}

/// One entry of a transaction, resolved.
enum Planned {
    Write {
        write_index: usize,
        status: StatusCode,
    },
    /// A conditional create that found its match: nothing to write.
    Existing(helse_store::StoredVersion),
    /// A delete that found nothing.
    NothingDeleted,
    Read,
}

fn order(method: &str) -> u8 {
    match method {
        "DELETE" => 0,
        "POST" => 1,
        "PUT" | "PATCH" => 2,
        _ => 3,
    }
}

fn entry_error(i: usize, e: FhirError) -> FhirError {
    match e {
        FhirError::BadRequest(m) => FhirError::BadRequest(format!("entry {i}: {m}")),
        FhirError::NotFound(m) => FhirError::NotFound(format!("entry {i}: {m}")),
        FhirError::PreconditionFailed(m) => FhirError::PreconditionFailed(format!("entry {i}: {m}")),
        FhirError::NotSupported(m) => FhirError::NotSupported(format!("entry {i}: {m}")),
        FhirError::Forbidden(m) => FhirError::Forbidden(format!("entry {i}: {m}")),
        other => other,
    }
}

/// What an entry URL names: a type, and an id or search criteria.
type EntryTarget = (ResourceType, Option<ResourceId>, Vec<(String, String)>);

/// An entry URL relative to a base: `Patient/1`, `Patient?x=y`. Absolute URLs, ours or
/// another base's (`http://hl7.org/fhir/us/sdc/Questionnaire/54127-6`), name `Type/id`.
fn relative_url(url: &str) -> String {
    if url.contains("://")
        && let Some((ty, id)) = helse_fhir_r4::reference_target(url.split('?').next().unwrap_or(url))
    {
        return format!("{ty}/{id}");
    }
    url.trim_start_matches('/').to_owned()
}

/// `ifNoneExist` criteria; some clients (and HL7's own examples) prefix them with `Type?`.
pub(crate) fn criteria_of(text: &str) -> &str {
    text.split_once('?').map_or(text, |(_, query)| query)
}

/// Splits `Type/id` or `Type?criteria` from an entry URL.
fn target(url: &str) -> Result<EntryTarget, FhirError> {
    let relative = relative_url(url);
    let relative = relative.as_str();
    let (path, query) = relative.split_once('?').unwrap_or((relative, ""));
    let mut parts = path.split('/');
    let ty =
        ResourceType::parse(parts.next().unwrap_or("")).map_err(|e| FhirError::BadRequest(e.to_string()))?;
    let id =
        parts.next().map(ResourceId::parse).transpose().map_err(|e| FhirError::BadRequest(e.to_string()))?;
    let criteria: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| FhirError::BadRequest(format!("criteria in '{url}': {e}")))?;
    Ok((ty, id, criteria))
}

/// Rewrites every `reference` that names another entry (`urn:uuid:…` or its fullUrl) or a
/// search (`Patient?identifier=…`, which must match exactly one resource).
fn references_to_rewrite(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "reference"
                    && let Some(r) = v.as_str()
                {
                    out.push(r.to_owned());
                } else {
                    references_to_rewrite(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references_to_rewrite(v, out)),
        _ => {}
    }
}

/// The base of an absolute fullUrl (`http://x/fhir/` of `http://x/fhir/Patient/1`): a
/// relative reference inside that entry is resolved against it, as the specification says.
fn full_url_base(entry: &Value) -> Option<String> {
    let full_url = entry.get("fullUrl")?.as_str()?;
    let (ty, id) = helse_fhir_r4::reference_target(full_url)?;
    full_url.contains("://").then(|| full_url.trim_end_matches(&format!("{ty}/{id}")).to_owned())
}

/// The entry a reference names, by its literal text or resolved against the fullUrl base.
fn mapped<'m>(map: &'m HashMap<String, String>, reference: &str, base: Option<&str>) -> Option<&'m String> {
    map.get(reference).or_else(|| base.and_then(|b| map.get(&format!("{b}{reference}"))))
}

fn rewrite_references(value: &mut Value, map: &HashMap<String, String>, base: Option<&str>) {
    match value {
        Value::Object(obj) => {
            for (k, v) in obj.iter_mut() {
                match (k.as_str(), v.as_str().and_then(|r| mapped(map, r, base))) {
                    ("reference", Some(new)) => *v = Value::String(new.clone()),
                    _ => rewrite_references(v, map, base),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_references(v, map, base)),
        _ => {}
    }
}

async fn transaction(ctx: &Ctx<'_>, entries: &[Value]) -> Result<FhirResponse, FhirError> {
    // Entries resolve criteria and references across the store before any is judged, so a
    // person's reach could not be checked entry by entry; a batch can be.
    if ctx.access.person().is_some() {
        return Err(FhirError::Forbidden(
            "transactions need a backend (system) client; send a batch instead".into(),
        ));
    }
    // Every entry must be allowed before anything happens: a transaction is all or nothing.
    for (i, entry) in entries.iter().enumerate() {
        let (method, uri, headers, _) = entry_request(entry).map_err(|e| entry_error(i, e))?;
        let path = uri.path().strip_prefix("/fhir").unwrap_or("");
        let has_criteria = uri.query().is_some_and(|q| !q.is_empty());
        let interaction =
            crate::interaction::parse(&method, path, has_criteria).map_err(|e| entry_error(i, e))?;
        crate::access::authorize(ctx.access, &interaction, &headers).map_err(|e| entry_error(i, e))?;
    }
    let mut requests = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let request =
            entry.get("request").ok_or_else(|| FhirError::BadRequest(format!("entry {i} has no request")))?;
        let method = request.get("method").and_then(Value::as_str).unwrap_or("").to_owned();
        let url = request.get("url").and_then(Value::as_str).unwrap_or("").to_owned();
        requests.push((i, method, url, request.clone()));
    }
    let mut sequence: Vec<usize> = (0..entries.len()).collect();
    sequence.sort_by_key(|&i| order(&requests[i].1));

    // 1. Where every entry lands; fullUrls of new resources map to their new ids.
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut targets: Vec<Option<(ResourceType, Option<ResourceId>)>> = vec![None; entries.len()];
    for &i in &sequence {
        let (_, method, url, request) = &requests[i];
        if method == "GET" || method == "HEAD" {
            continue;
        }
        let (ty, id, criteria) = target(url).map_err(|e| entry_error(i, e))?;
        let id = match (method.as_str(), id) {
            ("POST", _) => {
                let existing = match request.get("ifNoneExist").and_then(Value::as_str) {
                    Some(c) => {
                        let crit: Vec<(String, String)> = serde_urlencoded::from_str(criteria_of(c))
                            .map_err(|e| {
                                entry_error(i, FhirError::BadRequest(format!("ifNoneExist: {e}")))
                            })?;
                        let found =
                            search::resolve_criteria(ctx, ty, &crit).await.map_err(|e| entry_error(i, e))?;
                        if found.len() > 1 {
                            return Err(entry_error(
                                i,
                                FhirError::PreconditionFailed("ifNoneExist matches several resources".into()),
                            ));
                        }
                        found.into_iter().next()
                    }
                    None => None,
                };
                Some(existing.unwrap_or_else(|| ResourceId::new_random(uuid::Uuid::new_v4())))
            }
            (_, Some(id)) => Some(id),
            (_, None) => {
                let found =
                    search::resolve_criteria(ctx, ty, &criteria).await.map_err(|e| entry_error(i, e))?;
                match (method.as_str(), found.len()) {
                    (_, 0) if method == "PUT" => Some(ResourceId::new_random(uuid::Uuid::new_v4())),
                    (_, 0) => None,
                    (_, 1) => found.into_iter().next(),
                    _ => {
                        return Err(entry_error(
                            i,
                            FhirError::PreconditionFailed(format!("'{url}' matches several resources")),
                        ));
                    }
                }
            }
        };
        if let (Some(full_url), Some(id)) = (entries[i].get("fullUrl").and_then(Value::as_str), &id) {
            ids.insert(full_url.to_owned(), format!("{ty}/{id}"));
            // A created resource whose fullUrl is `http://other/base/Patient/a2` is also what a
            // plain `Patient/a2` in the Bundle means: the client's own name for it.
            if method == "POST"
                && full_url.contains("://")
                && let Some((t, old)) = helse_fhir_r4::reference_target(full_url)
            {
                ids.entry(format!("{t}/{old}")).or_insert_with(|| format!("{ty}/{id}"));
            }
        }
        targets[i] = Some((ty, id));
    }

    // 2. References to other entries or to searches become Type/id.
    for entry in entries {
        let mut refs = Vec::new();
        if let Some(r) = entry.get("resource") {
            references_to_rewrite(r, &mut refs);
        }
        let base = full_url_base(entry);
        for r in refs {
            if mapped(&ids, &r, base.as_deref()).is_some() {
                continue;
            }
            if r.starts_with("urn:uuid:") || r.starts_with("urn:oid:") {
                return Err(FhirError::BadRequest(format!(
                    "reference '{r}' names no entry of the transaction"
                )));
            }
            if let Some((ty, query)) = r.split_once('?') {
                let ty = ResourceType::parse(ty).map_err(|e| FhirError::BadRequest(e.to_string()))?;
                let crit: Vec<(String, String)> = serde_urlencoded::from_str(query)
                    .map_err(|e| FhirError::BadRequest(format!("reference '{r}': {e}")))?;
                let found = search::resolve_criteria(ctx, ty, &crit).await?;
                match found.as_slice() {
                    [one] => {
                        ids.insert(r.clone(), format!("{ty}/{one}"));
                    }
                    _ => {
                        return Err(FhirError::PreconditionFailed(format!(
                            "conditional reference '{r}' matches {} resources, not one",
                            found.len()
                        )));
                    }
                }
            }
        }
    }

    // 3. Every write, validated, in processing order.
    let mut writes = Vec::new();
    let mut planned: Vec<Option<Planned>> = (0..entries.len()).map(|_| None).collect();
    for &i in &sequence {
        let (_, method, _, request) = &requests[i];
        let if_match = request
            .get("ifMatch")
            .and_then(Value::as_str)
            .map(|v| parse_etag(v).ok_or_else(|| FhirError::BadRequest(format!("entry {i}: ifMatch '{v}'"))))
            .transpose()?;
        let plan = match (method.as_str(), targets[i].clone()) {
            ("GET" | "HEAD", _) => Planned::Read,
            ("DELETE", Some((ty, Some(id)))) => {
                writes.push(Write::Delete { resource_type: ty, id, if_match });
                Planned::Write { write_index: writes.len() - 1, status: StatusCode::NO_CONTENT }
            }
            ("DELETE", _) => Planned::NothingDeleted,
            ("POST" | "PUT", Some((ty, Some(id)))) => {
                let mut resource = entries[i].get("resource").cloned().ok_or_else(|| {
                    FhirError::BadRequest(format!("entry {i}: {method} without a resource"))
                })?;
                if method == "POST"
                    && request.get("ifNoneExist").is_some()
                    && let Some(v) = ctx.state.store.read(ty, &id).await?
                    && !v.is_deleted()
                {
                    planned[i] = Some(Planned::Existing(v));
                    continue;
                }
                rewrite_references(&mut resource, &ids, full_url_base(&entries[i]).as_deref());
                resource["id"] = Value::String(id.to_string());
                let resource = validated(ty, resource).map_err(|e| entry_error(i, e))?;
                let index = helse_search::index_entries(&resource);
                let (write, status) = if method == "POST" {
                    (Write::Create { resource_type: ty, id, resource, index }, StatusCode::CREATED)
                } else {
                    let write = Write::Update {
                        resource_type: ty,
                        id,
                        resource,
                        method: WriteMethod::Put,
                        if_match,
                        index,
                    };
                    (write, StatusCode::OK)
                };
                writes.push(write);
                Planned::Write { write_index: writes.len() - 1, status }
            }
            ("PATCH", Some((ty, Some(id)))) => {
                // The patch applies to the version read here; writing it with that version as
                // the precondition makes a concurrent change fail the transaction (412)
                // instead of being overwritten.
                let patch = patch_document(&entries[i]).map_err(|e| entry_error(i, e))?;
                let current = match ctx.state.store.read(ty, &id).await? {
                    Some(v) if !v.is_deleted() => v,
                    _ => return Err(entry_error(i, FhirError::NotFound(format!("{ty}/{id}")))),
                };
                if let Some(expected) = if_match
                    && expected != current.version_id
                {
                    return Err(entry_error(
                        i,
                        FhirError::PreconditionFailed(format!(
                            "ifMatch names version {expected}, but the current version is {}",
                            current.version_id
                        )),
                    ));
                }
                let resource: Value = serde_json::from_str(current.body.as_deref().expect("live version"))
                    .map_err(|e| FhirError::Internal(e.to_string()))?;
                let resource =
                    super::fhir::patched(ty, &id, resource, &patch).map_err(|e| entry_error(i, e))?;
                let index = helse_search::index_entries(&resource);
                writes.push(Write::Update {
                    resource_type: ty,
                    id,
                    resource,
                    method: WriteMethod::Patch,
                    if_match: Some(current.version_id),
                    index,
                });
                Planned::Write { write_index: writes.len() - 1, status: StatusCode::OK }
            }
            (m, _) => {
                return Err(FhirError::NotSupported(format!(
                    "entry {i}: {m} is not supported in a transaction"
                )));
            }
        };
        planned[i] = Some(plan);
    }

    // 4. All or nothing. A resource written twice in one transaction is ambiguous (and the
    // specification forbids it).
    let mut touched = std::collections::HashSet::new();
    for (ty, id) in writes.iter().filter_map(helse_store::write_target) {
        let key = (ty, id.clone());
        if !touched.insert(key.clone()) {
            return Err(FhirError::BadRequest(format!(
                "the transaction writes {}/{} more than once",
                key.0, key.1
            )));
        }
    }
    let outcomes = crate::routes::fhir::write_all_logged(ctx, writes).await?;

    // 5. Reads see the committed state; answers in the entries' order.
    let mut out = Vec::with_capacity(entries.len());
    for (i, plan) in planned.into_iter().enumerate() {
        let entry = match plan.expect("every entry planned") {
            Planned::Read => {
                let (method, uri, headers, body) =
                    entry_request(&entries[i]).map_err(|e| entry_error(i, e))?;
                let response = match dispatch_boxed(ctx.state, ctx.access, method, uri, headers, body).await {
                    Ok(r) => r,
                    Err(e) => e.into_response(),
                };
                response_entry(response).await
            }
            Planned::NothingDeleted => json!({"response": {"status": "204 No Content"}}),
            Planned::Existing(v) => written_entry(ctx, &v, StatusCode::OK),
            Planned::Write { write_index, status } => match outcomes[write_index].version() {
                Some(v) => written_entry(
                    ctx,
                    v,
                    match outcomes[write_index] {
                        WriteOutcome::Created(_) => StatusCode::CREATED,
                        _ => status,
                    },
                ),
                None => json!({"response": {"status": "204 No Content"}}),
            },
        };
        out.push(entry);
    }
    let bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "transaction-response",
        "entry": out,
    });
    Ok(FhirResponse::new(StatusCode::OK, Payload::Json(bundle)))
}

fn written_entry(ctx: &Ctx<'_>, v: &helse_store::StoredVersion, status: StatusCode) -> Value {
    let mut entry = json!({
        "fullUrl": format!("{}/{}/{}", ctx.base, v.resource_type, v.id),
        "response": {
            "status": format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")),
            "location": format!("{}/{}/{}/_history/{}", ctx.base, v.resource_type, v.id, v.version_id),
            "etag": crate::response::etag(v.version_id),
            "lastModified": v.last_updated.to_string(),
        },
    });
    if let Some(body) = &v.body
        && let Ok(resource) = serde_json::from_str::<Value>(body)
        && status != StatusCode::NO_CONTENT
    {
        entry["resource"] = resource;
    }
    entry
}

/// The `response` part of a response entry (and the resource or outcome it returned).
async fn response_entry(response: Response) -> Value {
    let status = response.status();
    let mut result =
        json!({"status": format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""))});
    for (name, field) in
        [(header::LOCATION, "location"), (header::ETAG, "etag"), (header::LAST_MODIFIED, "lastModified")]
    {
        if let Some(v) = response.headers().get(name).and_then(|v| v.to_str().ok()) {
            result[field] = json!(v);
        }
    }
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default();
    let body: Option<Value> = serde_json::from_slice(&bytes).ok();
    let mut entry = json!({});
    match body {
        Some(b) if !status.is_success() => result["outcome"] = b,
        Some(b) => entry["resource"] = b,
        None => {}
    }
    entry["response"] = result;
    entry
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64() {
        assert_eq!(super::base64_decode("W3sib3AiOiJhZGQifV0=").unwrap(), br#"[{"op":"add"}]"#);
        assert!(super::base64_decode("not*base64").is_none());
    }
}
