//! History interactions (instance, type, system) as `history` Bundles with cursor paging.

use axum::http::StatusCode;
use helse_fhir_r4::{Instant, parse_date_range};
use helse_store::{HistoryQuery, HistoryScope, Method, StoredVersion};
use serde_json::{Value, json};

use crate::error::FhirError;
use crate::response::{FhirResponse, Payload, Presentation, etag};
use crate::routes::fhir::{Ctx, page_size};
use crate::routes::paging::{page_url, result_bundle};

pub async fn history(ctx: &Ctx<'_>, scope: HistoryScope) -> Result<FhirResponse, FhirError> {
    if let HistoryScope::Instance(ty, id) = &scope {
        match ctx.state.store.read(*ty, id).await? {
            None => return Err(FhirError::NotFound(format!("{ty}/{id}"))),
            // A deleted resource's reach is judged by its last version with a body, below.
            Some(v) if v.body.is_some() => crate::reach::check_read(ctx.state, ctx.access, &v).await?,
            Some(_) => {}
        }
    }
    let since = ctx
        .param("_since")
        .map(|s| {
            parse_date_range(s)
                .map(|r| Instant::from_millis(r.start))
                .ok_or_else(|| FhirError::BadRequest(format!("_since '{s}' is not an instant")))
        })
        .transpose()?;
    let at = ctx
        .param("_at")
        .map(|s| {
            parse_date_range(s)
                .map(|r| (Instant::from_millis(r.start), Instant::from_millis(r.end)))
                .ok_or_else(|| FhirError::BadRequest(format!("_at '{s}' is not a date")))
        })
        .transpose()?;
    let before_seq = ctx
        .param("_cursor")
        .map(|c| c.parse().map_err(|_| FhirError::BadRequest(format!("_cursor '{c}' is not valid"))))
        .transpose()?;
    let count = page_size(ctx)?;
    let query = HistoryQuery { scope: scope.clone(), since, at, count, before_seq };
    let page = ctx.state.store.history(&query).await?;

    let self_path = match &scope {
        HistoryScope::System => "_history".to_owned(),
        HistoryScope::Type(t) => format!("{t}/_history"),
        HistoryScope::Instance(t, id) => format!("{t}/{id}/_history"),
    };
    let this_page = ctx.param("_cursor").map(|c| format!("_cursor={c}"));
    let mut links =
        vec![json!({"relation": "self", "url": page_url(ctx, &self_path, &["_cursor"], this_page)})];
    if let Some(next) = page.next_before_seq {
        let next = Some(format!("_cursor={next}"));
        links.push(json!({"relation": "next", "url": page_url(ctx, &self_path, &["_cursor"], next)}));
    }
    // A version outside the reach (a person's: the subject changed) is left out; a
    // deletion carries no data.
    let versions: Vec<StoredVersion> = page.versions.into_iter().map(|(_, v)| v).collect();
    let versions = crate::reach::keep_visible(ctx.state, ctx.access, versions).await?;
    let entries: Vec<Value> = versions.iter().map(|v| history_entry(ctx, v)).collect::<Result<_, _>>()?;
    let bundle = result_bundle("history", Some(page.total), links, entries);
    Ok(FhirResponse::new(StatusCode::OK, Payload::Json(bundle)))
}

fn history_entry(ctx: &Ctx<'_>, v: &StoredVersion) -> Result<Value, FhirError> {
    let full_url = format!("{}/{}/{}", ctx.base, v.resource_type, v.id);
    let (url, status) = match v.method {
        Method::Post => (v.resource_type.to_string(), "201 Created"),
        Method::Delete => (format!("{}/{}", v.resource_type, v.id), "204 No Content"),
        _ if v.version_id == 1 => (format!("{}/{}", v.resource_type, v.id), "201 Created"),
        _ => (format!("{}/{}", v.resource_type, v.id), "200 OK"),
    };
    let mut entry = json!({
        "fullUrl": full_url,
        "request": {"method": v.method.as_str(), "url": url},
        "response": {"status": status, "etag": etag(v.version_id), "lastModified": v.last_updated.to_string()},
    });
    if let Some(body) = &v.body {
        entry["resource"] = resource_value(body, ctx.presentation)?;
    }
    Ok(entry)
}

/// A stored body as JSON, with `_summary`/`_elements` applied.
pub fn resource_value(body: &str, presentation: &Presentation) -> Result<Value, FhirError> {
    let mut value: Value = serde_json::from_str(body)
        .map_err(|e| FhirError::Internal(format!("stored body unreadable: {e}")))?;
    presentation.subset(&mut value);
    Ok(value)
}
