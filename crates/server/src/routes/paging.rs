//! What every result Bundle (history, search, `$everything`) shares: paging links built from
//! the request's own parameters, and the Bundle around the entries.

use helse_fhir_r4::Instant;
use serde_json::{Value, json};

use crate::routes::fhir::Ctx;

/// Percent-encodes a query value for links.
pub fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' | b':' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `base/path` with the request's parameters, less the paging ones (`paging`), plus `page`
/// (such as `_after=42`).
pub fn page_url(ctx: &Ctx<'_>, path: &str, paging: &[&str], page: Option<String>) -> String {
    let mut q: Vec<String> = ctx
        .query
        .iter()
        .filter(|(k, _)| !paging.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    q.extend(page);
    if q.is_empty() { format!("{}/{path}", ctx.base) } else { format!("{}/{path}?{}", ctx.base, q.join("&")) }
}

/// A `history` or `searchset` Bundle with a fresh id; `total` when known, `entry` when there
/// are entries (FHIR arrays are never empty).
pub fn result_bundle(kind: &str, total: Option<u64>, links: Vec<Value>, entries: Vec<Value>) -> Value {
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": Instant::now().to_string()},
        "type": kind,
    });
    if let Some(t) = total {
        bundle["total"] = json!(t);
    }
    bundle["link"] = Value::Array(links);
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    bundle
}
