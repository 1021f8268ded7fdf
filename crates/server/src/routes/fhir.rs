//! Every request under `/fhir`: parse the interaction, negotiate, run it, answer with a
//! resource, a Bundle or an OperationOutcome.

use std::sync::Arc;
use std::time::Instant as StdInstant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use helse_fhir_r4::{Instant, Issue, IssueType, ResourceId, ResourceType, SummaryMode, validate_resource};
use helse_store::{HistoryScope, Method as WriteMethod, StoredVersion, Write, WriteOutcome};
use serde_json::Value;

use crate::AppState;
use crate::access::{Access, authenticate, authorize};
use crate::error::FhirError;
use crate::interaction::{self, Interaction, InteractionKind};
use crate::negotiation::{BodyKind, body_kind, check_acceptable};
use crate::reach;
use crate::response::{FhirResponse, Payload, Presentation, parse_etag};
use crate::routes::{history, search};

/// What every interaction needs to know about its request.
pub struct Ctx<'a> {
    pub state: &'a AppState,
    pub access: &'a Access,
    pub base: String,
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
    pub presentation: &'a Presentation,
    /// `Prefer: handling=strict`.
    pub strict: bool,
    /// The request's access-log entry, for the writes that store it with them (none for a
    /// batch's entries: the batch has one entry, stored after it).
    pub log: Option<(&'a crate::audit::RequestLog<'a>, &'a Interaction)>,
}

impl Ctx<'_> {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn prefer(&self, key: &str) -> Option<&str> {
        prefer(self.headers, key)
    }
}

/// A `Prefer` header preference, e.g. `return` or `handling`.
fn prefer<'h>(headers: &'h HeaderMap, key: &str) -> Option<&'h str> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"'))
        })
}

/// `_count`, bounded by the configured maximum.
pub fn page_size(ctx: &Ctx<'_>) -> Result<usize, FhirError> {
    let limits = &ctx.state.limits;
    match ctx.param("_count") {
        None => Ok(limits.default_page_size),
        Some(c) => c
            .parse::<usize>()
            .map(|n| n.clamp(1, limits.max_page_size))
            .map_err(|_| FhirError::BadRequest(format!("_count '{c}' is not a number"))),
    }
}

pub async fn not_found(uri: Uri) -> Response {
    FhirError::NotFound(format!("the path {}", uri.path())).into_response()
}

pub async fn handle(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let access = authenticate(&state, &headers, &request_base(&state, &headers)).await;
    serve(&state, access, peer, method, uri, headers, body).await
}

/// One FHIR request from whoever `access` says sent it, start to end: run it within the
/// time limit, queue emergency access for review, store its access-log entry, count it.
/// The API (bearer tokens) and the portal (sign-in sessions) both come through here, so
/// what a person reaches and what is logged of it is the same whichever way they ask.
pub(crate) async fn serve(
    state: &AppState,
    access: Result<Access, FhirError>,
    peer: std::net::SocketAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = StdInstant::now();
    let timeout = state.limits.request_timeout;
    let mut seen = None;
    // A refused token is logged as an anonymous attempt.
    let purpose = headers.get("x-purpose-of-use").and_then(|v| v.to_str().ok());
    let log =
        crate::audit::RequestLog { method: &method, uri: &uri, peer, purpose, written: Default::default() };
    let (access, mut response) = match access {
        Err(e) => (Access::Anonymous, e.into_response()),
        Ok(access) => {
            let run = dispatch(state, &access, &method, &uri, &headers, body, &mut seen, Some(&log));
            let response = match tokio::time::timeout(timeout, run).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => e.into_response(),
                Err(_) => FhirError::Timeout(timeout.as_secs()).into_response(),
            };
            (access, response)
        }
    };
    // Emergency access is queued for review before the answer goes out.
    if let Some(person) = access.person()
        && let Err(e) = crate::emergency::queue(state, person, seen.as_ref()).await
    {
        response = e.into_response();
    }
    // Every request but the CapabilityStatement goes into the access log; one that may
    // change data is answered only once its entry is stored (see `audit`) — with its writes,
    // when it wrote.
    // Emergency access is never left to a queue that a crash could lose.
    let emergency = access.person().is_some_and(|p| p.emergency.is_some());
    let reads_only = (method == Method::GET || method == Method::HEAD) && !emergency;
    let status = response.status().as_u16();
    if log.was_written() {
        state.audit.nudge();
    } else if let Some(record) =
        crate::audit::entry(&access, &method, &uri, seen.as_ref(), peer, purpose, status)
        && let Err(e) = state.audit.record(record, !reads_only).await
    {
        response = e.into_response();
    }
    let status = response.status().as_u16();
    let kind = seen.as_ref().map_or(InteractionKind::Other, Interaction::kind);
    state.metrics.record(kind, status, started.elapsed());
    // Ids and bodies can identify patients: log the interaction kind only.
    tracing::debug!(
        interaction = kind.code(),
        status,
        micros = started.elapsed().as_micros() as u64,
        "fhir request"
    );
    response
}

/// The FHIR base URL requests are answered for: configured, or from the Host header.
pub fn request_base(state: &AppState, headers: &HeaderMap) -> String {
    match &state.base_url {
        Some(b) => b.clone(),
        None => format!(
            "http://{}/fhir",
            headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost")
        ),
    }
}

// The request's parts as axum hands them over, plus what the caller learns back (`seen`)
// and the access-log entry writes carry (`log`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn dispatch(
    state: &AppState,
    access: &Access,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    seen: &mut Option<Interaction>,
    log: Option<&crate::audit::RequestLog<'_>>,
) -> Result<Response, FhirError> {
    let path = uri.path().strip_prefix("/fhir").unwrap_or("");
    let mut query: Vec<(String, String)> = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| FhirError::BadRequest(format!("query string: {e}")))?;
    let has_criteria = query.iter().any(|(k, _)| k != "_format" && k != "_pretty");
    let interaction = interaction::parse(method, path, has_criteria)?;
    *seen = Some(interaction.clone());
    authorize(access, &interaction, headers)?;
    let mut body = Some(body);
    if matches!(interaction, Interaction::SearchType(_)) && method == Method::POST {
        // POST _search: the parameters come as a form body (and may also be in the URL).
        let bytes = read_limited(body.take().expect("unread"), state.limits.max_body_bytes).await?;
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| FhirError::BadRequest(format!("_search body is not a form: {e}")))?;
        query.extend(form);
    }

    // Bulk status and file requests answer with their own media types (JSON manifest,
    // NDJSON), not FHIR content negotiation.
    match &interaction {
        Interaction::ExportStatus(id) => {
            return super::export::status(state.store.as_ref(), access, id).await;
        }
        Interaction::ExportCancel(id) => {
            return super::export::cancel(state.store.as_ref(), access, id).await;
        }
        Interaction::ExportFile(id, n) => {
            return super::export::file(state.store.as_ref(), access, id, *n).await;
        }
        _ => {}
    }
    let header = |n: header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
    let param = |n: &str| query.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    check_acceptable(header(header::ACCEPT), param("_format"))?;
    let presentation = Presentation {
        pretty: param("_pretty") == Some("true"),
        summary: match param("_summary") {
            None | Some("count") => None,
            Some(s) => Some(
                SummaryMode::parse(s)
                    .ok_or_else(|| FhirError::BadRequest(format!("_summary '{s}' is not valid")))?,
            ),
        },
        elements: param("_elements").map(|e| e.split(',').map(|s| s.trim().to_owned()).collect()),
    };
    let base = request_base(state, headers);
    let strict = prefer(headers, "handling") == Some("strict");
    let logged_as = interaction.clone();
    let ctx = Ctx {
        state,
        access,
        base,
        query: &query,
        headers,
        presentation: &presentation,
        strict,
        log: log.map(|l| (l, &logged_as)),
    };

    let needs_body = matches!(
        interaction,
        Interaction::Create(_)
            | Interaction::Update(..)
            | Interaction::ConditionalUpdate(_)
            | Interaction::Patch(..)
            | Interaction::ConditionalPatch(_)
            | Interaction::Validate(..)
            | Interaction::Bundle
    );
    let body = match (needs_body, body) {
        (true, Some(b)) => Some(read_body(state, headers, b).await?),
        _ => None,
    };

    let response = match interaction {
        Interaction::Capabilities => {
            FhirResponse::new(StatusCode::OK, Payload::Json(state.capability_statement.clone()))
        }
        Interaction::Read(ty, id) => read(&ctx, ty, &id).await?,
        Interaction::Vread(ty, id, vid) => vread(&ctx, ty, &id, vid).await?,
        Interaction::Create(ty) => create(&ctx, ty, body.expect("read above")).await?,
        Interaction::Update(ty, id) => {
            update(&ctx, ty, id, body.expect("read above"), WriteMethod::Put).await?
        }
        Interaction::ConditionalUpdate(ty) => conditional_update(&ctx, ty, body.expect("read above")).await?,
        Interaction::Patch(ty, id) => patch(&ctx, ty, id, body.expect("read above")).await?,
        Interaction::ConditionalPatch(ty) => {
            let id = single_match(&ctx, ty).await?;
            patch(&ctx, ty, id, body.expect("read above")).await?
        }
        Interaction::Delete(ty, id) => delete(&ctx, ty, id).await?,
        Interaction::ConditionalDelete(ty) => {
            let ids = search::resolve_criteria(&ctx, ty, &query).await?;
            match ids.as_slice() {
                [] => deleted_outcome("no resource matched; nothing was deleted", None),
                [id] => delete(&ctx, ty, id.clone()).await?,
                _ => {
                    return Err(FhirError::PreconditionFailed(format!(
                        "{} resources match; refusing to delete more than one",
                        ids.len()
                    )));
                }
            }
        }
        Interaction::SearchType(ty) => search::search(&ctx, ty, None).await?,
        Interaction::CompartmentSearch { compartment, id, target } => {
            search::search(&ctx, target, Some((compartment, &id))).await?
        }
        Interaction::Everything(ty, id) => search::everything(&ctx, ty, &id).await?,
        Interaction::AccessLog(id) => super::access_log::search(&ctx, &id).await?,
        Interaction::Summary(id) => super::summary::summary(&ctx, &id).await?,
        Interaction::Bundle => {
            super::bundle::process(&ctx, expect_resource(body.expect("read above"))?).await?
        }
        Interaction::HistoryInstance(ty, id) => {
            history::history(&ctx, HistoryScope::Instance(ty, id)).await?
        }
        Interaction::HistoryType(ty) => history::history(&ctx, HistoryScope::Type(ty)).await?,
        Interaction::HistorySystem => history::history(&ctx, HistoryScope::System).await?,
        Interaction::Validate(ty, id) => validate(ty, id, body.expect("read above"))?,
        Interaction::Export(level) => {
            let uri = uri.path_and_query().map_or("", |p| p.as_str()).strip_prefix("/fhir").unwrap_or("");
            return super::export::kick_off(&ctx, level, uri).await;
        }
        Interaction::ExportStatus(_) | Interaction::ExportCancel(_) | Interaction::ExportFile(..) => {
            unreachable!("answered above")
        }
    };
    let mut response = response.render(&presentation);
    if method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
    Ok(response)
}

/// A request body as JSON: media type checked, size and nesting depth bounded.
pub enum RequestBody {
    Resource(Value),
    JsonPatch(Value),
}

async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<RequestBody, FhirError> {
    let kind = body_kind(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()))?;
    let limit = state.limits.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit.saturating_add(DRAIN_LIMIT)) {
        return Err(FhirError::PayloadTooLarge(limit));
    }
    let bytes = read_limited(body, limit).await?;
    check_depth(&bytes, state.limits.max_json_depth)?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| FhirError::MalformedJson(format!("body is not valid JSON: {e}")))?;
    Ok(match kind {
        BodyKind::Resource => RequestBody::Resource(value),
        BodyKind::JsonPatch => RequestBody::JsonPatch(value),
    })
}

/// How much of an oversized body is read and discarded so that the client, still sending,
/// receives the 413 instead of a reset connection. Beyond this the connection is dropped.
const DRAIN_LIMIT: usize = 8 * 1024 * 1024;

async fn read_limited(body: Body, limit: usize) -> Result<bytes::Bytes, FhirError> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let mut discarded = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| FhirError::BadRequest(format!("reading the body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        if discarded > 0 || buf.len() + data.len() > limit {
            discarded += data.len();
            if discarded > DRAIN_LIMIT {
                break;
            }
        } else {
            buf.extend_from_slice(&data);
        }
    }
    if discarded > 0 {
        return Err(FhirError::PayloadTooLarge(limit));
    }
    Ok(buf.freeze())
}

/// Rejects JSON nested deeper than `max` before parsing it (the parser recurses).
fn check_depth(bytes: &[u8], max: usize) -> Result<(), FhirError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return Err(FhirError::MalformedJson(format!("JSON is nested deeper than {max} levels")));
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn expect_resource(body: RequestBody) -> Result<Value, FhirError> {
    match body {
        RequestBody::Resource(v) => Ok(v),
        RequestBody::JsonPatch(_) => {
            Err(FhirError::UnsupportedMediaType("application/json-patch+json".into()))
        }
    }
}

/// Checks shape and type, then validates; returns the resource ready to store.
pub(crate) fn validated(ty: ResourceType, value: Value) -> Result<Value, FhirError> {
    if !value.is_object() {
        return Err(FhirError::MalformedJson("a resource must be a JSON object".into()));
    }
    match value.get("resourceType").and_then(Value::as_str) {
        None => return Err(FhirError::BadRequest("the body has no resourceType".into())),
        Some(t) if t != ty.as_str() => {
            return Err(FhirError::BadRequest(format!(
                "resourceType '{t}' does not match the URL's type '{ty}'"
            )));
        }
        Some(_) => {}
    }
    let issues = validate_resource(&value, Some(ty.as_str()));
    if issues.iter().any(|i| {
        matches!(i.severity, helse_fhir_r4::IssueSeverity::Error | helse_fhir_r4::IssueSeverity::Fatal)
    }) {
        return Err(FhirError::Invalid(issues));
    }
    if crate::donor::is_statement(&value) {
        crate::donor::check_shape(&value)
            .map_err(|why| FhirError::Invalid(vec![Issue::error(IssueType::Invalid, why).at("Consent")]))?;
    }
    Ok(value)
}

fn location(ctx: &Ctx<'_>, v: &StoredVersion) -> String {
    format!("{}/{}/{}/_history/{}", ctx.base, v.resource_type, v.id, v.version_id)
}

async fn current(ctx: &Ctx<'_>, ty: ResourceType, id: &ResourceId) -> Result<StoredVersion, FhirError> {
    match ctx.state.store.read(ty, id).await? {
        None => Err(FhirError::NotFound(format!("{ty}/{id}"))),
        Some(v) if v.is_deleted() => Err(FhirError::Gone(format!("{ty}/{id}"))),
        Some(v) => Ok(v),
    }
}

async fn read(ctx: &Ctx<'_>, ty: ResourceType, id: &ResourceId) -> Result<FhirResponse, FhirError> {
    let v = current(ctx, ty, id).await?;
    reach::check_read(ctx.state, ctx.access, &v).await?;
    let not_modified = ctx.header(header::IF_NONE_MATCH).and_then(parse_etag) == Some(v.version_id)
        || ctx
            .header(header::IF_MODIFIED_SINCE)
            .and_then(Instant::parse_http_date)
            .is_some_and(|since| v.last_updated.millis() / 1000 <= since.millis() / 1000);
    if not_modified {
        return Ok(FhirResponse::new(StatusCode::NOT_MODIFIED, Payload::None).version_headers(&v));
    }
    let body = v.body.clone().expect("live version has a body");
    Ok(FhirResponse::new(StatusCode::OK, Payload::Stored(body)).version_headers(&v))
}

async fn vread(
    ctx: &Ctx<'_>,
    ty: ResourceType,
    id: &ResourceId,
    vid: u64,
) -> Result<FhirResponse, FhirError> {
    match ctx.state.store.vread(ty, id, vid).await? {
        None => Err(FhirError::NotFound(format!("{ty}/{id}/_history/{vid}"))),
        Some(v) => match v.body.clone() {
            None => Err(FhirError::Gone(format!("{ty}/{id}/_history/{vid}"))),
            Some(body) => {
                reach::check_read(ctx.state, ctx.access, &v).await?;
                Ok(FhirResponse::new(StatusCode::OK, Payload::Stored(body)).version_headers(&v))
            }
        },
    }
}

/// One write with the request's access-log entry, in one transaction.
async fn write_logged(ctx: &Ctx<'_>, write: Write) -> Result<WriteOutcome, FhirError> {
    let mut outcomes = write_all_logged(ctx, vec![write]).await?;
    Ok(outcomes.swap_remove(0))
}

/// A request's writes and its access-log entry, in one transaction: the entry is stored
/// exactly when the writes are (and marked written, so the request adds no other).
pub(crate) async fn write_all_logged(
    ctx: &Ctx<'_>,
    mut writes: Vec<Write>,
) -> Result<Vec<WriteOutcome>, FhirError> {
    let Some((log, interaction)) = ctx.log else { return Ok(ctx.state.store.write_all(writes).await?) };
    let Some(record) = log.entry(ctx.access, interaction, 200) else {
        return Ok(ctx.state.store.write_all(writes).await?);
    };
    let n = writes.len();
    writes.push(Write::AccessLog(record));
    let mut outcomes = ctx.state.store.write_all(writes).await?;
    outcomes.truncate(n);
    log.written.store(true, std::sync::atomic::Ordering::Release);
    Ok(outcomes)
}

/// The response to a successful write, shaped by `Prefer: return=`.
fn written(ctx: &Ctx<'_>, status: StatusCode, v: &StoredVersion) -> FhirResponse {
    let payload = match ctx.prefer("return") {
        Some("minimal") => Payload::None,
        Some("OperationOutcome") => Payload::Json(helse_fhir_r4::operation_outcome(&[Issue {
            severity: helse_fhir_r4::IssueSeverity::Information,
            code: IssueType::Informational,
            diagnostics: format!(
                "{} {}/{} version {}",
                status.canonical_reason().unwrap_or(""),
                v.resource_type,
                v.id,
                v.version_id
            ),
            expression: None,
        }])),
        _ => Payload::Stored(v.body.clone().expect("written version has a body")),
    };
    FhirResponse::new(status, payload).version_headers(v).header(header::LOCATION, &location(ctx, v))
}

async fn create(ctx: &Ctx<'_>, ty: ResourceType, body: RequestBody) -> Result<FhirResponse, FhirError> {
    let resource = validated(ty, expect_resource(body)?)?;
    if let Some(criteria) = ctx.header(header::HeaderName::from_static("if-none-exist")) {
        let criteria: Vec<(String, String)> = Query::<Vec<(String, String)>>::try_from_uri(
            &format!("/?{}", super::bundle::criteria_of(criteria))
                .parse::<Uri>()
                .map_err(|_| FhirError::BadRequest("If-None-Exist is not a query".into()))?,
        )
        .map(|q| q.0)
        .map_err(|e| FhirError::BadRequest(format!("If-None-Exist: {e}")))?;
        let ids = search::resolve_criteria(ctx, ty, &criteria).await?;
        match ids.as_slice() {
            [] => {}
            [id] => {
                let v = current(ctx, ty, id).await?;
                return Ok(written(ctx, StatusCode::OK, &v));
            }
            _ => {
                return Err(FhirError::PreconditionFailed(format!(
                    "If-None-Exist matches {} resources",
                    ids.len()
                )));
            }
        }
    }
    reach::check_write(ctx.state, ctx.access, ty, None, Some(&resource)).await?;
    crate::donor::check_single(ctx.state, None, &resource).await?;
    let id = ResourceId::new_random(uuid::Uuid::new_v4());
    let index = helse_search::index_entries(&resource);
    let outcome = write_logged(ctx, Write::Create { resource_type: ty, id, resource, index }).await?;
    let v = outcome.version().expect("create writes a version");
    Ok(written(ctx, StatusCode::CREATED, v))
}

fn if_match(ctx: &Ctx<'_>) -> Result<Option<u64>, FhirError> {
    ctx.header(header::IF_MATCH)
        .map(|v| {
            parse_etag(v)
                .ok_or_else(|| FhirError::BadRequest(format!("If-Match '{v}' is not a version ETag")))
        })
        .transpose()
}

async fn update(
    ctx: &Ctx<'_>,
    ty: ResourceType,
    id: ResourceId,
    body: RequestBody,
    method: WriteMethod,
) -> Result<FhirResponse, FhirError> {
    let resource = validated(ty, expect_resource(body)?)?;
    match resource.get("id").and_then(Value::as_str) {
        None => {
            return Err(FhirError::BadRequest(
                "the resource has no id; an update must carry the id of the URL".into(),
            ));
        }
        Some(body_id) if body_id != id.as_str() => {
            return Err(FhirError::BadRequest(format!(
                "the body's id '{body_id}' does not match the URL's id '{id}'"
            )));
        }
        Some(_) => {}
    }
    if ctx.access.person().is_some() {
        let old = ctx.state.store.read(ty, &id).await?.filter(|v| !v.is_deleted());
        reach::check_write(ctx.state, ctx.access, ty, old.as_ref(), Some(&resource)).await?;
    }
    // `If-None-Match: *` (RFC 9110): write only if the resource has never existed. Bulk
    // import sends it so a repeated import leaves what is already in untouched.
    if ctx.header(header::IF_NONE_MATCH).is_some_and(|v| v.trim() == "*") {
        let index = helse_search::index_entries(&resource);
        let write = Write::CreateIfAbsent { resource_type: ty, id: id.clone(), resource, index };
        return match write_logged(ctx, write).await? {
            WriteOutcome::Created(v) => Ok(written(ctx, StatusCode::CREATED, &v)),
            _ => Err(FhirError::PreconditionFailed(format!("{ty}/{id} exists already (If-None-Match: *)"))),
        };
    }
    let if_match = if_match(ctx)?;
    store_update(ctx, ty, id, resource, method, if_match).await
}

async fn store_update(
    ctx: &Ctx<'_>,
    ty: ResourceType,
    id: ResourceId,
    resource: Value,
    method: WriteMethod,
    if_match: Option<u64>,
) -> Result<FhirResponse, FhirError> {
    crate::donor::check_single(ctx.state, Some(id.as_str()), &resource).await?;
    let index = helse_search::index_entries(&resource);
    let outcome =
        write_logged(ctx, Write::Update { resource_type: ty, id, resource, method, if_match, index }).await?;
    match &outcome {
        WriteOutcome::Created(v) => Ok(written(ctx, StatusCode::CREATED, v)),
        WriteOutcome::Updated(v) => Ok(written(ctx, StatusCode::OK, v)),
        _ => Err(FhirError::Internal("update produced no version".into())),
    }
}

async fn single_match(ctx: &Ctx<'_>, ty: ResourceType) -> Result<ResourceId, FhirError> {
    let ids = search::resolve_criteria(ctx, ty, ctx.query).await?;
    match ids.len() {
        0 => Err(FhirError::NotFound(format!("no {ty} matches the criteria"))),
        1 => Ok(ids.into_iter().next().expect("one")),
        n => Err(FhirError::PreconditionFailed(format!("{n} resources match the criteria"))),
    }
}

async fn conditional_update(
    ctx: &Ctx<'_>,
    ty: ResourceType,
    body: RequestBody,
) -> Result<FhirResponse, FhirError> {
    let resource = validated(ty, expect_resource(body)?)?;
    let ids = search::resolve_criteria(ctx, ty, ctx.query).await?;
    let body_id = resource
        .get("id")
        .and_then(Value::as_str)
        .map(ResourceId::parse)
        .transpose()
        .map_err(|e| FhirError::BadRequest(e.to_string()))?;
    let id = match (ids.as_slice(), body_id) {
        ([], Some(id)) => id,
        ([], None) => ResourceId::new_random(uuid::Uuid::new_v4()),
        ([found], Some(id)) if *found != id => {
            return Err(FhirError::BadRequest(format!(
                "the body's id '{id}' differs from the matching resource '{found}'"
            )));
        }
        ([found], _) => found.clone(),
        (many, _) => {
            return Err(FhirError::PreconditionFailed(format!(
                "{} resources match the criteria",
                many.len()
            )));
        }
    };
    let if_match = if_match(ctx)?;
    store_update(ctx, ty, id, resource, WriteMethod::Put, if_match).await
}

/// Attempts for a PATCH without `If-Match` that races another writer.
const PATCH_ATTEMPTS: usize = 3;

async fn patch(
    ctx: &Ctx<'_>,
    ty: ResourceType,
    id: ResourceId,
    body: RequestBody,
) -> Result<FhirResponse, FhirError> {
    let RequestBody::JsonPatch(patch_doc) = body else {
        return Err(FhirError::UnsupportedMediaType("PATCH takes application/json-patch+json".into()));
    };
    let patch: json_patch::Patch = serde_json::from_value(patch_doc)
        .map_err(|e| FhirError::BadRequest(format!("not a JSON Patch document: {e}")))?;
    let client_if_match = if_match(ctx)?;
    for attempt in 1..=PATCH_ATTEMPTS {
        let v = current(ctx, ty, &id).await?;
        if let Some(expected) = client_if_match
            && expected != v.version_id
        {
            return Err(FhirError::PreconditionFailed(format!(
                "If-Match names version {expected}, but the current version is {}",
                v.version_id
            )));
        }
        let resource: Value = serde_json::from_str(v.body.as_deref().expect("live version has a body"))
            .map_err(|e| FhirError::Internal(e.to_string()))?;
        let resource = patched(ty, &id, resource, &patch)?;
        reach::check_write(ctx.state, ctx.access, ty, Some(&v), Some(&resource)).await?;
        match store_update(ctx, ty, id.clone(), resource, WriteMethod::Patch, Some(v.version_id)).await {
            Err(FhirError::PreconditionFailed(_))
                if client_if_match.is_none() && attempt < PATCH_ATTEMPTS =>
            {
                continue;
            }
            other => return other,
        }
    }
    Err(FhirError::Conflict("the resource kept changing during the patch".into()))
}

/// `resource` with a JSON Patch applied, validated; the patch may not change the id.
pub(crate) fn patched(
    ty: ResourceType,
    id: &ResourceId,
    mut resource: Value,
    patch: &json_patch::Patch,
) -> Result<Value, FhirError> {
    json_patch::patch(&mut resource, patch).map_err(|e| {
        FhirError::Invalid(vec![Issue::error(IssueType::Processing, format!("patch failed: {e}"))])
    })?;
    if resource.get("id").and_then(Value::as_str) != Some(id.as_str()) {
        return Err(FhirError::BadRequest("a patch may not change the resource's id".into()));
    }
    validated(ty, resource)
}

fn deleted_outcome(message: &str, v: Option<&StoredVersion>) -> FhirResponse {
    let issue = Issue {
        severity: helse_fhir_r4::IssueSeverity::Information,
        code: IssueType::Informational,
        diagnostics: message.to_owned(),
        expression: None,
    };
    let r = FhirResponse::outcome(StatusCode::OK, &[issue]);
    match v {
        Some(v) => r.header(header::ETAG, &crate::response::etag(v.version_id)),
        None => r,
    }
}

async fn delete(ctx: &Ctx<'_>, ty: ResourceType, id: ResourceId) -> Result<FhirResponse, FhirError> {
    let if_match = if_match(ctx)?;
    if ctx.access.person().is_some()
        && let Some(old) = ctx.state.store.read(ty, &id).await?.filter(|v| !v.is_deleted())
    {
        reach::check_write(ctx.state, ctx.access, ty, Some(&old), None).await?;
    }
    let outcome = write_logged(ctx, Write::Delete { resource_type: ty, id: id.clone(), if_match }).await?;
    Ok(match &outcome {
        WriteOutcome::Deleted(v) => deleted_outcome(&format!("deleted {ty}/{id}"), Some(v)),
        _ => deleted_outcome(&format!("{ty}/{id} did not exist; nothing was deleted"), None),
    })
}

/// `$validate`: the body is the resource, or a Parameters with a `resource` parameter.
fn validate(ty: ResourceType, id: Option<ResourceId>, body: RequestBody) -> Result<FhirResponse, FhirError> {
    let mut value = expect_resource(body)?;
    if value.get("resourceType").and_then(Value::as_str) == Some("Parameters") && ty.as_str() != "Parameters"
    {
        value = value
            .get("parameter")
            .and_then(Value::as_array)
            .and_then(|ps| ps.iter().find(|p| p.get("name").and_then(Value::as_str) == Some("resource")))
            .and_then(|p| p.get("resource"))
            .cloned()
            .ok_or_else(|| FhirError::BadRequest("Parameters has no 'resource' parameter".into()))?;
    }
    let mut issues = validate_resource(&value, Some(ty.as_str()));
    if let Some(id) = id
        && value.get("id").and_then(Value::as_str) != Some(id.as_str())
    {
        issues.push(
            Issue::error(IssueType::Invalid, format!("the resource's id does not match '{id}'")).at("id"),
        );
    }
    Ok(FhirResponse::outcome(StatusCode::OK, &issues))
}

#[cfg(test)]
mod tests {
    use super::check_depth;

    #[test]
    fn depth_counts_structure_not_strings() {
        assert!(check_depth(br#"{"a":[{"b":1}]}"#, 3).is_ok());
        assert!(check_depth(br#"{"a":[{"b":[1]}]}"#, 3).is_err());
        assert!(check_depth(br#"{"a":"[[[[[[\"[[["}"#, 1).is_ok());
    }
}
