//! `POST /` with a Bundle: `batch` runs each entry as its own request through the same
//! dispatcher and reports each outcome; a failing entry does not affect the others.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::FhirError;
use crate::interaction::InteractionKind;
use crate::response::{FhirResponse, Payload};
use crate::routes::fhir::{Ctx, dispatch};

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
        Some("transaction") => {
            Err(FhirError::NotSupported("transaction Bundles are not supported yet".into()))
        }
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
                match dispatch_boxed(ctx.state, method, uri, headers, body).await {
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
fn dispatch_boxed(
    state: &crate::AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Dispatched<'_> {
    Box::pin(async move {
        let mut kind = InteractionKind::Other;
        dispatch(state, &method, &uri, &headers, body, &mut kind).await
    })
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
    // Entries name a path relative to the base; an absolute URL of ours would work too, but
    // nothing outside this server can be reached from a batch.
    let relative = url.split_once("/fhir/").map_or(url, |(_, rest)| rest).trim_start_matches('/');
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
