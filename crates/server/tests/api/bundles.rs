//! `batch` Bundles posted to the base.

use helse_test_support::{Backend, TestServer, on_both_stores};
use serde_json::json;

on_both_stores!(batch_entries_succeed_and_fail_independently);

async fn batch_entries_succeed_and_fail_independently(backend: Backend) {
    let s = TestServer::start(backend).await;
    s.put("Patient/existing", &json!({"resourceType": "Patient", "id": "existing", "gender": "male"})).await;
    let patch = "W3sib3AiOiJyZXBsYWNlIiwicGF0aCI6Ii9nZW5kZXIiLCJ2YWx1ZSI6ImZlbWFsZSJ9XQ=="; // [{"op":"replace","path":"/gender","value":"female"}]
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Patient", "name": [{"family": "Ny"}]}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "gender": "boy"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"}}, "request": {"method": "PUT", "url": "Observation/o1"}},
        {"request": {"method": "GET", "url": "Patient/existing"}},
        {"request": {"method": "GET", "url": "Patient/missing"}},
        {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": patch},
         "request": {"method": "PATCH", "url": "Patient/existing"}},
        {"request": {"method": "GET", "url": "Patient?gender=female"}},
        {"request": {"method": "DELETE", "url": "Observation/o1"}},
        {"resource": {"resourceType": "Patient", "id": "existing"}, "request": {"method": "PUT", "url": "Patient/existing", "ifMatch": "W/\"1\""}},
    ]});
    let r = s.post("", &batch).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let out = r.json();
    assert_eq!(out["type"], "batch-response");
    let statuses: Vec<&str> =
        out["entry"].as_array().unwrap().iter().map(|e| e["response"]["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        [
            "201 Created",
            "422 Unprocessable Entity",
            "201 Created",
            "200 OK",
            "404 Not Found",
            "200 OK",
            "200 OK",
            "200 OK",
            "412 Precondition Failed"
        ]
    );
    let entries = out["entry"].as_array().unwrap();
    assert!(entries[0]["response"]["location"].as_str().unwrap().contains("/Patient/"));
    assert_eq!(entries[1]["response"]["outcome"]["issue"][0]["code"], "code-invalid");
    assert_eq!(entries[3]["resource"]["gender"], "male", "entries run in order");
    assert_eq!(entries[5]["resource"]["gender"], "female");
    assert_eq!(entries[6]["resource"]["total"], 1);
    assert_eq!(s.get("Observation/o1").await.status, 410);
    assert_eq!(s.get("Patient?_summary=count").await.json()["total"], 2, "the invalid entry stored nothing");

    // What the base accepts.
    assert_eq!(s.post("", &json!({"resourceType": "Bundle", "type": "collection"})).await.status, 400);
    assert_eq!(s.post("", &json!({"resourceType": "Patient"})).await.status, 400);
    assert_eq!(s.get("").await.status, 405);
    let nested = json!({"resourceType": "Bundle", "type": "batch", "entry": [{"resource": batch, "request": {"method": "POST", "url": ""}}]});
    assert_eq!(s.post("", &nested).await.json()["entry"][0]["response"]["status"], "400 Bad Request");
    s.stop().await;
}
