//! A corpus of broken requests: each gets the right status and an OperationOutcome, and the
//! store is unchanged afterwards.

use helse_server::Limits;
use serde_json::json;

use helse_test_support::{Backend, TestServer, on_both_stores};

on_both_stores!(broken_inputs_are_refused_and_change_nothing, a_stalled_request_times_out);

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    content_type: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: String,
    status: u16,
    code: &'static str,
}

fn case(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    body: impl Into<String>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        method,
        path,
        content_type: "application/fhir+json",
        headers: &[],
        body: body.into(),
        status,
        code,
    }
}

const BODY_LIMIT: usize = 64 * 1024;
const JSON_PATCH: &str = "application/json-patch+json";

fn corpus() -> Vec<Case> {
    let deep =
        format!("{{\"resourceType\":\"Patient\",\"extension\":{}1{}}}", "[".repeat(200), "]".repeat(200));
    let huge = json!({"resourceType": "Patient", "name": [{"family": "x".repeat(BODY_LIMIT)}]}).to_string();
    let obs = |extra: &str| {
        format!(r#"{{"resourceType":"Observation","status":"final","code":{{"text":"x"}}{extra}}}"#)
    };
    vec![
        case("truncated JSON", "POST", "Patient", r#"{"resourceType":"Patient","#, 400, "structure"),
        case("not JSON at all", "POST", "Patient", "hello", 400, "structure"),
        case("JSON array instead of a resource", "POST", "Patient", "[1,2]", 400, "structure"),
        case("trailing garbage", "POST", "Patient", r#"{"resourceType":"Patient"} x"#, 400, "structure"),
        case("deeply nested JSON", "POST", "Patient", deep, 400, "structure"),
        case("oversized body", "POST", "Patient", huge, 413, "too-long"),
        case("missing resourceType", "POST", "Patient", r#"{"active":true}"#, 400, "invalid"),
        case("type differs from URL", "POST", "Patient", obs(""), 400, "invalid"),
        case(
            "unknown element",
            "POST",
            "Patient",
            r#"{"resourceType":"Patient","nickname":"Ola"}"#,
            422,
            "structure",
        ),
        case(
            "boolean as string",
            "POST",
            "Patient",
            r#"{"resourceType":"Patient","active":"yes"}"#,
            422,
            "value",
        ),
        case(
            "object where array required",
            "POST",
            "Patient",
            r#"{"resourceType":"Patient","name":{"family":"x"}}"#,
            422,
            "structure",
        ),
        case(
            "array where single value required",
            "POST",
            "Patient",
            r#"{"resourceType":"Patient","birthDate":["2000-01-01"]}"#,
            422,
            "structure",
        ),
        case("empty array", "POST", "Patient", r#"{"resourceType":"Patient","name":[]}"#, 422, "structure"),
        case(
            "null value",
            "POST",
            "Patient",
            r#"{"resourceType":"Patient","gender":null}"#,
            422,
            "structure",
        ),
        case(
            "bad date",
            "POST",
            "Patient",
            r#"{"resourceType":"Patient","birthDate":"1999-02-30"}"#,
            422,
            "value",
        ),
        case(
            "Norwegian date format",
            "POST",
            "Patient",
            r#"{"resourceType":"Patient","birthDate":"31.12.1999"}"#,
            422,
            "value",
        ),
        case(
            "dateTime without seconds",
            "POST",
            "Observation",
            obs(r#","effectiveDateTime":"2020-01-01T10:00Z""#),
            422,
            "value",
        ),
        case(
            "instant without zone",
            "POST",
            "Observation",
            obs(r#","issued":"2020-01-01T10:00:00""#),
            422,
            "value",
        ),
        case(
            "decimal as string",
            "POST",
            "Observation",
            obs(r#","valueQuantity":{"value":"1.5"}"#),
            422,
            "value",
        ),
        case(
            "integer overflow",
            "POST",
            "Patient",
            r#"{"resourceType":"Patient","multipleBirthInteger":99999999999}"#,
            422,
            "value",
        ),
        case(
            "code outside required value set",
            "POST",
            "Patient",
            r#"{"resourceType":"Patient","gender":"M"}"#,
            422,
            "code-invalid",
        ),
        case(
            "missing required element",
            "POST",
            "Observation",
            r#"{"resourceType":"Observation","code":{"text":"x"}}"#,
            422,
            "required",
        ),
        case("unknown choice type", "POST", "Observation", obs(r#","valueColour":"red""#), 422, "structure"),
        case(
            "malformed reference",
            "POST",
            "Observation",
            obs(r#","subject":{"reference":"Patient/"}"#),
            422,
            "value",
        ),
        case(
            "reference to a disallowed type",
            "POST",
            "Observation",
            obs(r#","subject":{"reference":"Medication/1"}"#),
            422,
            "value",
        ),
        case(
            "reference to an unknown type",
            "POST",
            "Observation",
            obs(r#","subject":{"reference":"Pasient/1"}"#),
            422,
            "value",
        ),
        case(
            "invalid contained resource",
            "POST",
            "Patient",
            r#"{"resourceType":"Patient","contained":[{"resourceType":"Organization","id":"o","colour":"red"}]}"#,
            422,
            "structure",
        ),
        case(
            "invalid id in body",
            "PUT",
            "Patient/ok",
            r#"{"resourceType":"Patient","id":"not ok"}"#,
            422,
            "value",
        ),
        case("update without id", "PUT", "Patient/p1", r#"{"resourceType":"Patient"}"#, 400, "invalid"),
        case(
            "update with another id",
            "PUT",
            "Patient/p1",
            r#"{"resourceType":"Patient","id":"p2"}"#,
            400,
            "invalid",
        ),
        case(
            "unknown resource type",
            "POST",
            "Pasient",
            r#"{"resourceType":"Pasient"}"#,
            404,
            "not-supported",
        ),
        case(
            "invalid id in URL",
            "PUT",
            "Patient/bad_id!",
            r#"{"resourceType":"Patient","id":"x"}"#,
            400,
            "invalid",
        ),
        case(
            "method not allowed",
            "POST",
            "Patient/p1",
            r#"{"resourceType":"Patient"}"#,
            405,
            "not-supported",
        ),
        case(
            "patch with a resource body",
            "PATCH",
            "Patient/p1",
            r#"{"resourceType":"Patient","id":"p1"}"#,
            415,
            "not-supported",
        ),
        Case {
            content_type: JSON_PATCH,
            ..case(
                "patch that breaks the resource",
                "PATCH",
                "Patient/p1",
                r#"[{"op":"add","path":"/colour","value":"red"}]"#,
                422,
                "structure",
            )
        },
        Case {
            content_type: JSON_PATCH,
            ..case("patch that is not JSON Patch", "PATCH", "Patient/p1", r#"{"op":"add"}"#, 400, "invalid")
        },
        Case {
            content_type: JSON_PATCH,
            ..case("patch of a missing resource", "PATCH", "Patient/nobody", r#"[]"#, 404, "not-found")
        },
        Case {
            content_type: "text/plain",
            ..case(
                "unsupported content type",
                "POST",
                "Patient",
                r#"{"resourceType":"Patient"}"#,
                415,
                "not-supported",
            )
        },
        Case {
            content_type: "application/fhir+xml",
            ..case("XML body", "POST", "Patient", "<Patient/>", 415, "not-supported")
        },
        Case {
            headers: &[("accept", "application/fhir+xml")],
            ..case("XML wanted", "GET", "Patient/p1", "", 406, "not-supported")
        },
        Case {
            headers: &[("if-match", "abc")],
            ..case(
                "unreadable If-Match",
                "PUT",
                "Patient/p1",
                r#"{"resourceType":"Patient","id":"p1"}"#,
                400,
                "invalid",
            )
        },
        Case {
            headers: &[("if-match", "W/\"9\"")],
            ..case(
                "stale If-Match",
                "PUT",
                "Patient/p1",
                r#"{"resourceType":"Patient","id":"p1"}"#,
                412,
                "conflict",
            )
        },
        case("bad _count", "GET", "Patient/_history?_count=many", "", 400, "invalid"),
        case("bad _summary", "GET", "Patient/p1?_summary=maybe", "", 400, "invalid"),
        case("unknown path", "GET", "Patient/p1/_history/1/extra", "", 404, "not-found"),
        case("read of a missing resource", "GET", "Patient/nobody", "", 404, "not-found"),
    ]
}

async fn broken_inputs_are_refused_and_change_nothing(backend: Backend) {
    let limits = Limits { max_body_bytes: BODY_LIMIT, ..Limits::default() };
    let s = TestServer::start_with(backend, limits).await;
    let seed = s.put("Patient/p1", &json!({"resourceType": "Patient", "id": "p1", "gender": "other"})).await;
    assert_eq!(seed.status, 201);
    let before = s.get("Patient/p1").await.text;
    let versions_before = s.version_count().await;

    let corpus = corpus();
    let mut failures = Vec::new();
    for c in &corpus {
        let mut req = s.client.request(c.method.parse().unwrap(), s.url(c.path));
        if !c.body.is_empty() {
            req = req.header("content-type", c.content_type).body(c.body.clone());
        }
        for (k, v) in c.headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let body: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap_or_default();
        let code = body["issue"][0]["code"].as_str().unwrap_or("");
        let ok = status == c.status
            && body["resourceType"] == "OperationOutcome"
            && code == c.code
            && ct.starts_with("application/fhir+json")
            && body["issue"][0]["diagnostics"].as_str().is_some_and(|d| !d.is_empty())
            && (status != 422 || body["issue"][0]["expression"][0].is_string());
        if !ok {
            failures.push(format!("{}: got {status} {code} {body}, want {} {}", c.name, c.status, c.code));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
    println!("{} broken inputs refused correctly", corpus.len());

    assert_eq!(s.version_count().await, versions_before, "a refused request wrote a version");
    assert_eq!(s.get("Patient/p1").await.text, before, "a refused request changed the resource");
    s.stop().await;
}

/// A client that sends half a body and stalls is cut off after the request time limit with an
/// OperationOutcome, and nothing is stored.
async fn a_stalled_request_times_out(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let limits = Limits { request_timeout: std::time::Duration::from_secs(1), ..Limits::default() };
    let s = TestServer::start_with(backend, limits).await;
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = "POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nContent-Type: application/fhir+json\r\nContent-Length: 100\r\n\r\n{\"resourceType\"";
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("\"code\":\"timeout\""), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(s.version_count().await, 0);
    s.stop().await;
}
