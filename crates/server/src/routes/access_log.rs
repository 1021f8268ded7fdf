//! "Who looked at my data": `GET [base]/Patient/{id}/$access-log`, a searchset of
//! `AuditEvent`s from the access log (the hash-chained log of every request, kept apart
//! from the resource tables, where stored AuditEvents stay searchable as usual), newest
//! first. A patient sees their own record's entries (or those of whom they are proxy for,
//! through a token for that patient); a backend client or an administrator any patient's;
//! health personnel none.

use axum::http::StatusCode;
use helse_fhir_r4::ResourceId;
use serde_json::{Value, json};

use crate::error::FhirError;
use crate::reach::Reach;
use crate::response::{FhirResponse, Payload};
use crate::routes::fhir::{Ctx, page_size};
use crate::routes::paging::{page_url, result_bundle};

pub async fn search(ctx: &Ctx<'_>, id: &ResourceId) -> Result<FhirResponse, FhirError> {
    for (name, _) in ctx.query {
        if !matches!(name.as_str(), "_count" | "_format" | "_pretty") {
            return Err(FhirError::NotSupported(format!("$access-log takes '_count' only, not '{name}'")));
        }
    }
    let patient = id.to_string();
    match ctx.access.reach() {
        Reach::Patient(me) if me != patient => {
            return Err(FhirError::Forbidden("you may see the access log of your own record".into()));
        }
        Reach::Care(_) => {
            return Err(FhirError::Forbidden(
                "the access log of a record is for its patient and for administrators".into(),
            ));
        }
        _ => {}
    }
    let count = page_size(ctx)?;
    let rows = ctx.state.store.audit_for_patient(&patient, count).await?;
    let entries: Vec<Value> = rows
        .iter()
        .filter_map(|row| {
            let mut event: Value = serde_json::from_str(&row.record.event).ok()?;
            event["id"] = json!(format!("log-{}", row.seq));
            Some(json!({
                "fullUrl": format!("{}/AuditEvent/log-{}", ctx.base, row.seq),
                "resource": event,
                "search": {"mode": "match"},
            }))
        })
        .collect();
    let links = vec![
        json!({"relation": "self", "url": page_url(ctx, &format!("Patient/{id}/$access-log"), &[], None)}),
    ];
    let total = entries.len() as u64;
    Ok(FhirResponse::new(
        StatusCode::OK,
        Payload::Json(result_bundle("searchset", Some(total), links, entries)),
    ))
}
