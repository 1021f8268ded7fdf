//! "Who looked at my data": `GET [base]/AuditEvent?patient=…` answered from the access log
//! (the hash-chained log of every request, not the resource tables), newest first. A
//! patient sees their own record's entries (or those of whom they are proxy for, through
//! a token for that patient); a backend client or an administrator any patient's; health
//! personnel none.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::error::FhirError;
use crate::reach::Reach;
use crate::response::{FhirResponse, Payload};
use crate::routes::fhir::{Ctx, page_size};
use crate::routes::paging::{page_url, result_bundle};

pub async fn search(ctx: &Ctx<'_>) -> Result<FhirResponse, FhirError> {
    for (name, _) in ctx.query {
        if !matches!(name.as_str(), "patient" | "_count" | "_format" | "_pretty") {
            return Err(FhirError::NotSupported(format!(
                "the access log is searched by 'patient' (and '_count') only, not '{name}'"
            )));
        }
    }
    let asked = ctx.param("patient").map(|p| p.trim_start_matches("Patient/").to_owned());
    let patient = match ctx.access.reach() {
        Reach::Patient(me) => match asked {
            Some(p) if p != me => {
                return Err(FhirError::Forbidden("you may see the access log of your own record".into()));
            }
            _ => me.to_owned(),
        },
        Reach::Care(_) => {
            return Err(FhirError::Forbidden(
                "the access log of a record is for its patient and for administrators".into(),
            ));
        }
        Reach::All | Reach::None => asked.ok_or_else(|| {
            FhirError::BadRequest("name the patient whose access log to show (patient=…)".into())
        })?,
    };
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
    let links = vec![json!({"relation": "self", "url": page_url(ctx, "AuditEvent", &[], None)})];
    let total = entries.len() as u64;
    Ok(FhirResponse::new(
        StatusCode::OK,
        Payload::Json(result_bundle("searchset", Some(total), links, entries)),
    ))
}
