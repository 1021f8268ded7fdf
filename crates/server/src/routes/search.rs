//! Type-level search. Until the search engine lands this supports listing a type in write
//! order with `_id`, `_count`, `_total` and `_summary=count`; any other parameter is reported
//! as a warning in the Bundle (or refused under `Prefer: handling=strict`).

use axum::http::StatusCode;
use helse_fhir_r4::{Instant, Issue, IssueType, ResourceId, ResourceType, operation_outcome};
use serde_json::{Value, json};

use crate::error::FhirError;
use crate::response::{FhirResponse, Payload};
use crate::routes::fhir::{Ctx, page_size};
use crate::routes::history::{encode, resource_value};

/// Search parameters this server implements: (name, type, documentation).
pub const SUPPORTED_SEARCH_PARAMETERS: &[(&str, &str, &str)] =
    &[("_id", "token", "Logical id of the resource")];

/// Parameters that shape the result rather than select it.
const RESULT_PARAMETERS: &[&str] = &[
    "_count",
    "_cursor",
    "_total",
    "_summary",
    "_elements",
    "_format",
    "_pretty",
];

pub async fn search(ctx: &Ctx<'_>, ty: ResourceType) -> Result<FhirResponse, FhirError> {
    let mut warnings = Vec::new();
    let mut ids: Option<Vec<ResourceId>> = None;
    for (name, value) in ctx.query {
        if name == "_id" {
            let parsed: Vec<ResourceId> = value
                .split(',')
                .filter_map(|v| ResourceId::parse(v).ok())
                .collect();
            ids = Some(match ids {
                Some(prev) => prev.into_iter().filter(|i| parsed.contains(i)).collect(),
                None => parsed,
            });
        } else if !RESULT_PARAMETERS.contains(&name.as_str()) {
            let issue = Issue::warning(
                IssueType::NotSupported,
                format!("search parameter '{name}' is not supported yet and was ignored"),
            );
            if ctx.strict {
                return Err(FhirError::NotSupported(issue.diagnostics));
            }
            warnings.push(issue);
        }
    }
    let count = page_size(ctx)?;
    let after = ctx
        .param("_cursor")
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| FhirError::BadRequest(format!("_cursor '{c}' is not valid")))
        })
        .transpose()?;
    let (matches, total, next) = match ids {
        Some(ids) => {
            let mut found = Vec::new();
            for id in &ids {
                if let Some(v) = ctx.state.store.read(ty, id).await?
                    && !v.is_deleted()
                {
                    found.push(v);
                }
            }
            let total = found.len() as u64;
            (found, total, None)
        }
        None => {
            let (rows, total) = ctx.state.store.list(ty, count, after).await?;
            let next = (rows.len() == count)
                .then(|| rows.last().map(|(s, _)| *s))
                .flatten();
            (rows.into_iter().map(|(_, v)| v).collect(), total, next)
        }
    };
    let summary_count =
        ctx.presentation.summary.is_none() && ctx.param("_summary") == Some("count");
    let mut entries: Vec<Value> = Vec::new();
    if !summary_count {
        for v in &matches {
            let body = v.body.as_deref().unwrap_or("{}");
            entries.push(json!({
                "fullUrl": format!("{}/{}/{}", ctx.base, v.resource_type, v.id),
                "resource": resource_value(body, ctx.presentation)?,
                "search": {"mode": "match"},
            }));
        }
    }
    if !warnings.is_empty() {
        entries
            .push(json!({"resource": operation_outcome(&warnings), "search": {"mode": "outcome"}}));
    }
    let base_query: Vec<String> = ctx
        .query
        .iter()
        .filter(|(k, _)| k != "_cursor")
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    let url = |extra: Option<String>| {
        let mut q = base_query.clone();
        q.extend(extra);
        if q.is_empty() {
            format!("{}/{ty}", ctx.base)
        } else {
            format!("{}/{ty}?{}", ctx.base, q.join("&"))
        }
    };
    let mut links =
        vec![json!({"relation": "self", "url": url(after.map(|a| format!("_cursor={a}")))})];
    if let Some(n) = next {
        links.push(json!({"relation": "next", "url": url(Some(format!("_cursor={n}")))}));
    }
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": Instant::now().to_string()},
        "type": "searchset",
        "link": links,
    });
    if ctx.param("_total") != Some("none") {
        bundle["total"] = json!(total);
    }
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    Ok(FhirResponse::new(StatusCode::OK, Payload::Json(bundle)))
}

/// Resolves conditional criteria (`If-None-Exist`, conditional update/delete) to matching ids.
/// Only `_id` is understood until the search engine lands; anything else is refused, because
/// ignoring a criterion here would update or delete the wrong resource.
pub async fn resolve_criteria(
    ctx: &Ctx<'_>,
    ty: ResourceType,
    criteria: &[(String, String)],
) -> Result<Vec<ResourceId>, FhirError> {
    let mut ids: Option<Vec<ResourceId>> = None;
    for (name, value) in criteria {
        if name == "_format" || name == "_pretty" {
            continue;
        }
        if name != "_id" {
            return Err(FhirError::NotSupported(format!(
                "conditional criterion '{name}' is not supported yet (only _id)"
            )));
        }
        let parsed: Vec<ResourceId> = value
            .split(',')
            .filter_map(|v| ResourceId::parse(v).ok())
            .collect();
        ids = Some(match ids {
            Some(prev) => prev.into_iter().filter(|i| parsed.contains(i)).collect(),
            None => parsed,
        });
    }
    let Some(ids) = ids else {
        return Err(FhirError::BadRequest(
            "conditional interaction without criteria".into(),
        ));
    };
    let mut found = Vec::new();
    for id in ids {
        if let Some(v) = ctx.state.store.read(ty, &id).await?
            && !v.is_deleted()
        {
            found.push(id);
        }
    }
    Ok(found)
}
