//! Type-level search on the search engine: `GET /Type?…` and `POST /Type/_search`, with
//! `_include`/`_revinclude`, `_sort`, paging, `_total` and `_summary=count`; and the
//! resolution of conditional-interaction criteria.

use std::collections::HashSet;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use helse_auth::Permission;
use helse_fhir_r4::{Issue, IssueType, ResourceId, ResourceType, operation_outcome};
use helse_search::query::Include;
use helse_search::{ParamType, SearchError, parse_search, search_parameters};
use helse_store::{
    Clause, Condition, Cursor, Position, SearchQuery, SortValue, SortValueKind, StoredVersion, TokenSystem,
};
use serde_json::{Value, json};

use crate::access::authorize_clauses;
use crate::error::FhirError;
use crate::response::{FhirResponse, Payload};
use crate::routes::fhir::{Ctx, page_size};
use crate::routes::history::resource_value;
use crate::routes::paging::{page_url, result_bundle};

/// How many resources one `_revinclude` may add per page.
const MAX_REVINCLUDE: usize = 1000;
/// How deep `:iterate` follows references.
const MAX_INCLUDE_ITERATIONS: usize = 3;

fn search_error(e: SearchError) -> FhirError {
    match e {
        SearchError::InvalidValue { .. } => FhirError::BadRequest(e.to_string()),
        other => FhirError::NotSupported(other.to_string()),
    }
}

/// The clause that keeps `ty` resources in the compartment of `compartment/id`, or `None`
/// when the type cannot be in that compartment.
fn compartment_clause(compartment: ResourceType, id: &ResourceId, ty: ResourceType) -> Option<Clause> {
    let params = helse_search::search_parameters().compartment_params(compartment.as_str(), ty.as_str())?;
    Some(Clause(
        params
            .iter()
            .map(|p| Condition::Reference {
                param: p.clone(),
                target_type: Some(compartment.to_string()),
                target_id: Some(id.to_string()),
                url: None,
            })
            .collect(),
    ))
}

pub async fn search(
    ctx: &Ctx<'_>,
    ty: ResourceType,
    within: Option<(ResourceType, &ResourceId)>,
) -> Result<FhirResponse, FhirError> {
    // Token modifiers that need terminology are answered from the ValueSets and CodeSystems
    // stored on this server; the rest of the query parses as usual.
    type Params = Vec<(String, String)>;
    let (terminology, rest): (Params, Params) =
        ctx.query.iter().cloned().partition(|(name, _)| terminology_modifier(ty, name).is_some());
    let mut parsed = parse_search(ty.as_str(), &rest, ctx.strict).map_err(search_error)?;
    authorize_clauses(ctx.access, &parsed.clauses)?;
    for (name, value) in &terminology {
        parsed.clauses.push(terminology_clause(ctx, ty, name, value).await?);
    }
    if let Some((compartment, id)) = within {
        let clause = compartment_clause(compartment, id, ty).ok_or_else(|| {
            FhirError::NotSupported(format!("{ty} resources are not in the {compartment} compartment"))
        })?;
        parsed.clauses.push(clause);
    }
    let notes = crate::reach::restrict_search(ctx.state, ctx.access, ty, within, &mut parsed.clauses).await?;
    let warnings: Vec<Issue> = notes
        .into_iter()
        .chain(parsed.ignored.iter().map(|(name, e)| {
            Issue::warning(IssueType::NotSupported, format!("parameter '{name}' was ignored: {e}"))
        }))
        .collect();
    let summary_count = ctx.param("_summary") == Some("count");
    let count = if summary_count { 0 } else { page_size(ctx)? };
    let number = |name: &str| -> Result<Option<i64>, FhirError> {
        ctx.param(name)
            .map(|o| o.parse().map_err(|_| FhirError::BadRequest(format!("{name} '{o}' is not a number"))))
            .transpose()
    };
    // Pages are keyset pages in every order: a cursor names the position (sort values and
    // key) of the page's boundary, so a page stays put while writes happen.
    let position = |name: &str| -> Result<Option<Position>, FhirError> {
        ctx.param(name).map(|text| decode_position(text, &parsed.sort)).transpose()
    };
    let cursor = match (position("_after")?, position("_before")?) {
        (Some(a), _) => Cursor::After(a),
        (_, Some(b)) => Cursor::Before(b),
        _ => Cursor::Start,
    };
    let offset = match cursor {
        Cursor::Start => number("_offset")?.unwrap_or(0).max(0) as usize,
        _ => 0,
    };
    let want_total = summary_count || ctx.param("_total") != Some("none");
    let query = SearchQuery {
        resource_type: ty.as_str().to_owned(),
        clauses: parsed.clauses,
        sort: parsed.sort,
        count: count + 1,
        offset,
        cursor: cursor.clone(),
        want_total,
    };
    let (mut rows, total) = ctx.state.store.search(&query).await?;
    let more = rows.len() > count;
    rows.truncate(count);
    if let Cursor::Before(_) = cursor {
        rows.reverse();
    }
    let (has_next, has_previous) = match cursor {
        Cursor::Start => (more, offset > 0),
        Cursor::After(_) => (more, true),
        Cursor::Before(_) => (true, more),
    };
    // Positions for the links there will be (a sorted order's costs a query each).
    let boundary = |row: Option<&(i64, StoredVersion)>| {
        let rid = row.map(|(rid, _)| *rid);
        let query = &query;
        async move {
            match rid {
                Some(rid) => ctx.state.store.position(query, rid).await.map(|p| Some(encode_position(&p))),
                None => Ok(None),
            }
        }
    };
    let first = match cursor {
        Cursor::After(_) | Cursor::Before(_) if has_previous => boundary(rows.first()).await?,
        _ => None,
    };
    let last = if has_next { boundary(rows.last()).await? } else { None };
    let matches: Vec<StoredVersion> = rows.into_iter().map(|(_, v)| v).collect();
    crate::reach::note_patients_found(ctx.state, ctx.access, ty, &matches).await?;

    let mut entries: Vec<Value> = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for v in &matches {
        seen.insert((v.resource_type.to_string(), v.id.to_string()));
        entries.push(entry(ctx, v, "match")?);
    }
    let extra = included(ctx, ty, &matches, &parsed.includes, &parsed.revincludes, &mut seen).await?;
    for v in crate::reach::keep_visible(ctx.state, ctx.access, extra).await? {
        entries.push(entry(ctx, &v, "include")?);
    }
    if !warnings.is_empty() {
        entries.push(json!({"resource": operation_outcome(&warnings), "search": {"mode": "outcome"}}));
    }

    const PAGING: &[&str] = &["_offset", "_after", "_before"];
    let path = match within {
        Some((compartment, id)) => format!("{compartment}/{id}/{ty}"),
        None => ty.to_string(),
    };
    let url = |page: Option<String>| page_url(ctx, &path, PAGING, page);
    let this_page = match (&cursor, ctx.param("_after"), ctx.param("_before")) {
        (Cursor::After(_), Some(a), _) => Some(format!("_after={a}")),
        (Cursor::Before(_), _, Some(b)) => Some(format!("_before={b}")),
        _ => (offset > 0).then(|| format!("_offset={offset}")),
    };
    let mut links = vec![json!({"relation": "self", "url": url(this_page)})];
    if has_next && let Some(after) = last {
        links.push(json!({"relation": "next", "url": url(Some(format!("_after={after}")))}));
    }
    if has_previous {
        // From an `_offset` page the previous page is an offset too (a cursor needs a row).
        let previous = match (&cursor, first) {
            (Cursor::Start, _) => Some(format!("_offset={}", offset.saturating_sub(count))),
            (_, Some(before)) => Some(format!("_before={before}")),
            (_, None) => None,
        };
        if let Some(p) = previous {
            links.push(json!({"relation": "previous", "url": url(Some(p))}));
        }
    }
    let bundle = result_bundle("searchset", total, links, entries);
    Ok(FhirResponse::new(StatusCode::OK, Payload::Json(bundle)))
}

/// A position as a paging parameter: the key alone in the default order; with sort values,
/// base64url of the JSON array `[key, value…]`.
fn encode_position(p: &Position) -> String {
    if p.values.is_empty() {
        return p.rid.to_string();
    }
    let mut items = vec![json!(p.rid)];
    items.extend(p.values.iter().map(|v| match v {
        SortValue::Null => Value::Null,
        SortValue::Int(i) => json!(i),
        SortValue::Real(r) => json!(r),
        SortValue::Text(t) => json!(t),
    }));
    URL_SAFE_NO_PAD.encode(Value::Array(items).to_string())
}

fn decode_position(text: &str, sort: &[helse_store::SortKey]) -> Result<Position, FhirError> {
    let bad = || FhirError::BadRequest(format!("paging cursor '{text}' is not one this server made"));
    if sort.is_empty() {
        return text.parse().map(Position::key).map_err(|_| bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    let items: Vec<Value> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let (rid, values) = items.split_first().ok_or_else(bad)?;
    if values.len() != sort.len() {
        return Err(bad());
    }
    let values = values
        .iter()
        .zip(sort)
        .map(|(v, key)| match (v, key.value_kind()) {
            (Value::Null, _) => Some(SortValue::Null),
            (v, SortValueKind::Int) => v.as_i64().map(SortValue::Int),
            (v, SortValueKind::Real) => v.as_f64().map(SortValue::Real),
            (v, SortValueKind::Text) => v.as_str().map(|s| SortValue::Text(s.to_owned())),
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(bad)?;
    Ok(Position { values, rid: rid.as_i64().ok_or_else(bad)? })
}

fn entry(ctx: &Ctx<'_>, v: &StoredVersion, mode: &str) -> Result<Value, FhirError> {
    Ok(json!({
        "fullUrl": format!("{}/{}/{}", ctx.base, v.resource_type, v.id),
        "resource": resource_value(v.body.as_deref().unwrap_or("{}"), ctx.presentation)?,
        "search": {"mode": mode},
    }))
}

/// Most resources `$everything` returns; a patient with more needs bulk export.
const MAX_EVERYTHING: usize = 50_000;

/// A patient (checked against the reach) and the resources of its compartment of the types
/// `wanted` accepts that the access's scopes may read — not yet narrowed to its reach
/// (`reach::keep_visible`, `keep_visible_parsed`). For `$everything` and `$summary`.
pub(crate) async fn compartment(
    ctx: &Ctx<'_>,
    ty: ResourceType,
    id: &ResourceId,
    wanted: impl Fn(&str) -> bool,
) -> Result<(StoredVersion, Vec<StoredVersion>), FhirError> {
    let patient = match ctx.state.store.read(ty, id).await? {
        None => return Err(FhirError::NotFound(format!("{ty}/{id}"))),
        Some(v) if v.is_deleted() => return Err(FhirError::Gone(format!("{ty}/{id}"))),
        Some(v) => v,
    };
    crate::reach::check_read(ctx.state, ctx.access, &patient).await?;
    // The compartment is every resource with a reference to the patient through one of its
    // type's compartment parameters: one lookup of the references to the patient, then one
    // read of those resources, rather than a search per member type.
    let definitions = helse_search::search_parameters();
    let mut keys: Vec<i64> = ctx
        .state
        .store
        .references_to(ty, id)
        .await?
        .into_iter()
        .filter(|(member, param, _)| {
            member != ty.as_str()
                && wanted(member)
                && ctx.access.can(member, Permission::Read)
                && definitions.compartment_params(ty.as_str(), member).is_some_and(|ps| ps.contains(param))
        })
        .map(|(_, _, rid)| rid)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.len() >= MAX_EVERYTHING {
        return Err(FhirError::NotSupported(format!(
            "more than {MAX_EVERYTHING} resources; use bulk export ($export) for this patient"
        )));
    }
    let members: Vec<StoredVersion> =
        ctx.state.store.read_keys(&keys).await?.into_iter().map(|(_, v)| v).collect();
    Ok((patient, members))
}

/// `Patient/{id}/$everything`: the patient and every resource in its compartment, optionally
/// narrowed by `_type` and `_since`, paged with `_count`/`_offset`.
pub async fn everything(ctx: &Ctx<'_>, ty: ResourceType, id: &ResourceId) -> Result<FhirResponse, FhirError> {
    let types: Option<Vec<&str>> = ctx.param("_type").map(|t| t.split(',').map(str::trim).collect());
    let since = ctx
        .param("_since")
        .map(|s| {
            helse_fhir_r4::parse_date_range(s)
                .ok_or_else(|| FhirError::BadRequest(format!("_since '{s}' is not an instant")))
        })
        .transpose()?;
    let (patient, members) =
        compartment(ctx, ty, id, |member| types.as_ref().is_none_or(|t| t.contains(&member))).await?;
    let members = crate::reach::keep_visible(ctx.state, ctx.access, members).await?;
    let mut members: Vec<StoredVersion> =
        members.into_iter().filter(|v| since.is_none_or(|r| v.last_updated.millis() >= r.start)).collect();
    let notes = crate::reach::patient_notes(ctx.state, ctx.access, id.as_str()).await?;
    // Grouped by type, each type in key order (the order of the keys read).
    members.sort_by_key(|v| v.resource_type.as_str());
    let mut all: Vec<StoredVersion> = Vec::with_capacity(members.len() + 1);
    if types.as_ref().is_none_or(|t| t.contains(&ty.as_str())) {
        all.push(patient);
    }
    all.extend(members);
    let total = all.len();
    let count = page_size(ctx)?;
    let offset: usize = match ctx.param("_offset") {
        None => 0,
        Some(o) => o.parse().map_err(|_| FhirError::BadRequest(format!("_offset '{o}' is not a number")))?,
    };
    let mut entries: Vec<Value> =
        all.iter().skip(offset).take(count).map(|v| entry(ctx, v, "match")).collect::<Result<_, _>>()?;
    if !notes.is_empty() {
        entries.push(json!({"resource": operation_outcome(&notes), "search": {"mode": "outcome"}}));
    }
    let path = format!("{ty}/{id}/$everything");
    let url = |off: usize| page_url(ctx, &path, &["_offset"], (off > 0).then(|| format!("_offset={off}")));
    let mut links = vec![json!({"relation": "self", "url": url(offset)})];
    if offset + count < total {
        links.push(json!({"relation": "next", "url": url(offset + count)}));
    }
    let bundle = result_bundle("searchset", Some(total as u64), links, entries);
    Ok(FhirResponse::new(StatusCode::OK, Payload::Json(bundle)))
}

/// Resources added by `_include` (following references out of the page, `:iterate` also out
/// of what was included) and `_revinclude` (resources referring to the page).
async fn included(
    ctx: &Ctx<'_>,
    ty: ResourceType,
    matches: &[StoredVersion],
    includes: &[Include],
    revincludes: &[Include],
    seen: &mut HashSet<(String, String)>,
) -> Result<Vec<StoredVersion>, FhirError> {
    let mut out = Vec::new();
    let mut frontier: Vec<StoredVersion> = matches.to_vec();
    for round in 0..MAX_INCLUDE_ITERATIONS {
        let mut next = Vec::new();
        for inc in includes.iter().filter(|i| round == 0 || i.iterate) {
            let mut by_type: std::collections::BTreeMap<ResourceType, Vec<ResourceId>> = Default::default();
            for v in &frontier {
                if inc.source_type == "*" || inc.source_type == v.resource_type.as_str() {
                    by_type.entry(v.resource_type).or_default().push(v.id.clone());
                }
            }
            for (source, ids) in by_type {
                let refs = ctx.state.store.references_from(source, &ids, inc.param.as_deref()).await?;
                for (_, target_type, target_id) in refs {
                    // What the grant may not read is left out, never an error: the page
                    // itself was allowed.
                    if inc.target_type.as_ref().is_some_and(|t| *t != target_type)
                        || !ctx.access.can(&target_type, Permission::Read)
                        || !seen.insert((target_type.clone(), target_id.clone()))
                    {
                        continue;
                    }
                    let (Ok(t), Ok(i)) = (ResourceType::parse(&target_type), ResourceId::parse(&target_id))
                    else {
                        continue;
                    };
                    if let Some(v) = ctx.state.store.read(t, &i).await?
                        && !v.is_deleted()
                    {
                        next.push(v);
                    }
                }
            }
        }
        if round == 0 {
            for rev in revincludes {
                let Some(param) = &rev.param else { continue };
                if !ctx.access.can(&rev.source_type, Permission::Read) {
                    continue;
                }
                let alternatives: Vec<Condition> = matches
                    .iter()
                    .filter(|v| v.resource_type == ty)
                    .map(|v| Condition::Reference {
                        param: param.clone(),
                        target_type: Some(ty.to_string()),
                        target_id: Some(v.id.to_string()),
                        url: None,
                    })
                    .collect();
                if alternatives.is_empty() {
                    continue;
                }
                let q = SearchQuery {
                    resource_type: rev.source_type.clone(),
                    clauses: vec![Clause(alternatives)],
                    sort: Vec::new(),
                    count: MAX_REVINCLUDE,
                    offset: 0,
                    cursor: Cursor::Start,
                    want_total: false,
                };
                for (_, v) in ctx.state.store.search(&q).await?.0 {
                    if seen.insert((v.resource_type.to_string(), v.id.to_string())) {
                        next.push(v);
                    }
                }
            }
        }
        if next.is_empty() {
            break;
        }
        out.extend(next.iter().cloned());
        frontier = next;
    }
    Ok(out)
}

/// `(code, modifier)` when `name` is a token parameter of `ty` with `:in`, `:not-in`,
/// `:below` or `:above`.
fn terminology_modifier(ty: ResourceType, name: &str) -> Option<(&str, &str)> {
    let (code, modifier) = name.split_once(':')?;
    let token = search_parameters().get(ty.as_str(), code)?.ty == ParamType::Token;
    (token && matches!(modifier, "in" | "not-in" | "below" | "above")).then_some((code, modifier))
}

/// The one stored resource of `ty` whose canonical `url` is `url` (or that `Type/id` names).
async fn canonical(ctx: &Ctx<'_>, ty: ResourceType, url: &str) -> Result<Option<Value>, FhirError> {
    let id = match url.strip_prefix(&format!("{ty}/")) {
        Some(id) => Some(ResourceId::parse(id).map_err(|e| FhirError::BadRequest(e.to_string()))?),
        None => resolve_criteria(ctx, ty, &[("url".to_owned(), url.to_owned())]).await?.into_iter().next(),
    };
    let Some(id) = id else { return Ok(None) };
    Ok(match ctx.state.store.read(ty, &id).await? {
        Some(v) => match v.body {
            Some(body) => Some(serde_json::from_str(&body).map_err(|e| FhirError::Internal(e.to_string()))?),
            None => None,
        },
        None => None,
    })
}

async fn terminology_clause(
    ctx: &Ctx<'_>,
    ty: ResourceType,
    name: &str,
    value: &str,
) -> Result<Clause, FhirError> {
    use helse_search::terminology::{Direction, related_codes, value_set_members};
    let (code, modifier) = terminology_modifier(ty, name).expect("partitioned on it");
    let token = |system: Option<String>, c: Option<String>| Condition::Token {
        param: code.to_owned(),
        system: system.map_or(TokenSystem::Any, TokenSystem::Is),
        code: c,
    };
    let mut conditions = Vec::new();
    for v in value.split(',') {
        match modifier {
            "in" | "not-in" => {
                let vs_type = ResourceType::parse("ValueSet").expect("a type");
                let vs = canonical(ctx, vs_type, v).await?.ok_or_else(|| {
                    FhirError::BadRequest(format!("{name}: no ValueSet '{v}' on this server"))
                })?;
                let members = value_set_members(&vs)
                    .map_err(|e| FhirError::NotSupported(format!("{name}={v}: {e}")))?;
                conditions.extend(members.into_iter().map(|m| token(m.system, m.code)));
            }
            _ => {
                let (system, c) = v
                    .split_once('|')
                    .filter(|(s, c)| !s.is_empty() && !c.is_empty())
                    .ok_or_else(|| FhirError::BadRequest(format!("{name} takes system|code, not '{v}'")))?;
                let cs_type = ResourceType::parse("CodeSystem").expect("a type");
                let cs = canonical(ctx, cs_type, system).await?.ok_or_else(|| {
                    FhirError::BadRequest(format!(
                        "{name}: no CodeSystem '{system}' on this server to know its hierarchy"
                    ))
                })?;
                let direction = if modifier == "below" { Direction::Below } else { Direction::Above };
                let mut codes = related_codes(&cs, c, direction);
                if codes.is_empty() {
                    codes.push(c.to_owned());
                }
                conditions.extend(codes.into_iter().map(|c| token(Some(system.to_owned()), Some(c))));
            }
        }
    }
    if conditions.is_empty() {
        // An empty value set holds nothing.
        conditions.push(Condition::Id(Vec::new()));
    }
    Ok(match modifier {
        "not-in" => Clause(vec![Condition::Not(Box::new(Condition::AnyOf(conditions)))]),
        _ => Clause(conditions),
    })
}

/// Resolves conditional criteria (`If-None-Exist`, conditional update/delete/patch) to the ids
/// of at most two matches. Strict: a criterion that is not understood is an error, because
/// ignoring it would touch the wrong resource.
pub async fn resolve_criteria(
    ctx: &Ctx<'_>,
    ty: ResourceType,
    criteria: &[(String, String)],
) -> Result<Vec<ResourceId>, FhirError> {
    let selecting: Vec<(String, String)> =
        criteria.iter().filter(|(k, _)| k != "_format" && k != "_pretty").cloned().collect();
    if selecting.is_empty() {
        return Err(FhirError::BadRequest("conditional interaction without criteria".into()));
    }
    // Criteria search, whatever interaction they serve (conditional writes, conditional
    // references in a transaction).
    ctx.access.require(ty.as_str(), Permission::Search)?;
    let parsed = parse_search(ty.as_str(), &selecting, true).map_err(search_error)?;
    authorize_clauses(ctx.access, &parsed.clauses)?;
    let q = SearchQuery {
        resource_type: ty.as_str().to_owned(),
        clauses: parsed.clauses,
        sort: Vec::new(),
        count: 2,
        offset: 0,
        cursor: Cursor::Start,
        want_total: false,
    };
    Ok(ctx.state.store.search(&q).await?.0.into_iter().map(|(_, v)| v.id).collect())
}
