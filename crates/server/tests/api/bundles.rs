//! `batch` Bundles posted to the base.

use helse_test_support::{Backend, TestServer, on_both_stores};
use serde_json::json;

on_both_stores!(
    batch_entries_succeed_and_fail_independently,
    transaction_rewrites_references_and_resolves_conditions,
    transaction_is_all_or_nothing,
    transaction_patches_atomically,
    official_example_bundles,
);

/// PATCH inside a transaction: applied with the other entries, and a failing patch (or a
/// stale ifMatch) rolls everything back.
async fn transaction_patches_atomically(backend: Backend) {
    let s = TestServer::start(backend).await;
    s.put("Patient/p", &json!({"resourceType": "Patient", "id": "p", "gender": "male"})).await;
    let to_female = "W3sib3AiOiJyZXBsYWNlIiwicGF0aCI6Ii9nZW5kZXIiLCJ2YWx1ZSI6ImZlbWFsZSJ9XQ=="; // [{"op":"replace","path":"/gender","value":"female"}]
    let bad = "W3sib3AiOiJyZXBsYWNlIiwicGF0aCI6Ii9nZW5kZXIiLCJ2YWx1ZSI6ImJveSJ9XQ=="; // [{"op":"replace","path":"/gender","value":"boy"}]
    let patch = |data: &str, if_match: Option<&str>| {
        let mut request = json!({"method": "PATCH", "url": "Patient/p"});
        if let Some(m) = if_match {
            request["ifMatch"] = json!(m);
        }
        json!({"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data}, "request": request})
    };
    let new_obs = json!({"fullUrl": "urn:uuid:0b6c4b7e-7d0b-4a55-9f5a-7a1f0c7e7a11",
        "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/p"}},
        "request": {"method": "POST", "url": "Observation"}});
    let tx = |entries: Vec<serde_json::Value>| json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});

    // An invalid result (gender "boy") fails the whole transaction: the Observation is not created.
    let r = s.post("", &tx(vec![new_obs.clone(), patch(bad, None)])).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(s.get("Observation?_summary=count").await.json()["total"], 0);
    // A stale ifMatch fails it too.
    let r = s.post("", &tx(vec![new_obs.clone(), patch(to_female, Some("W/\"7\""))])).await;
    assert_eq!(r.status, 412, "{}", r.text);
    assert_eq!(s.get("Patient/p").await.json()["gender"], "male");
    // A good patch lands with the rest, as version 2 made by PATCH.
    let r = s.post("", &tx(vec![new_obs, patch(to_female, Some("W/\"1\""))])).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.entry_statuses(), ["201 Created", "200 OK"]);
    let p = s.get("Patient/p").await.json();
    assert_eq!((p["gender"].as_str(), p["meta"]["versionId"].as_str()), (Some("female"), Some("2")));
    let history = s.get("Patient/p/_history").await.json();
    assert_eq!(history["entry"][0]["request"]["method"], "PATCH");
    assert_eq!(s.get("Observation?_summary=count").await.json()["total"], 1);
    s.stop().await;
}

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
    let statuses = r.entry_statuses();
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

async fn transaction_rewrites_references_and_resolves_conditions(backend: Backend) {
    let s = TestServer::start(backend).await;
    s.put(
        "Organization/legekontor",
        &json!({"resourceType": "Organization", "id": "legekontor",
        "identifier": [{"system": "urn:oid:2.16.578.1.12.4.1.4.101", "value": "974600951"}]}),
    )
    .await;
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": "Observation?subject:Patient.family=Berg"}},
        {"fullUrl": "urn:uuid:6b2c1a4e-0000-4000-8000-000000000002", "request": {"method": "POST", "url": "Observation"},
         "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "puls"},
                      "subject": {"reference": "urn:uuid:6b2c1a4e-0000-4000-8000-000000000001"}}},
        {"fullUrl": "urn:uuid:6b2c1a4e-0000-4000-8000-000000000001", "request": {"method": "POST", "url": "Patient"},
         "resource": {"resourceType": "Patient", "name": [{"family": "Berg"}],
                      "managingOrganization": {"reference": "Organization?identifier=urn:oid:2.16.578.1.12.4.1.4.101|974600951"}}},
        {"request": {"method": "POST", "url": "Organization", "ifNoneExist": "identifier=urn:oid:2.16.578.1.12.4.1.4.101|974600951"},
         "resource": {"resourceType": "Organization", "name": "would be a duplicate"}},
    ]});
    let r = s.post("", &tx).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let out = r.json();
    assert_eq!(out["type"], "transaction-response");
    let entries = out["entry"].as_array().unwrap();
    assert_eq!(r.entry_statuses(), ["200 OK", "201 Created", "201 Created", "200 OK"]);
    let patient_id = entries[2]["resource"]["id"].as_str().unwrap();
    assert_eq!(entries[1]["resource"]["subject"]["reference"], format!("Patient/{patient_id}"));
    assert_eq!(entries[2]["resource"]["managingOrganization"]["reference"], "Organization/legekontor");
    assert_eq!(entries[3]["resource"]["id"], "legekontor", "ifNoneExist found the existing one");
    assert_eq!(entries[0]["resource"]["total"], 1, "GET runs after the writes");
    assert_eq!(s.get("Organization?_summary=count").await.json()["total"], 1);
    let found = s.get(&format!("Observation?patient={patient_id}")).await.json();
    assert_eq!(found["total"], 1);

    let dangling = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "POST", "url": "Observation"}, "resource": {"resourceType": "Observation", "status": "final",
         "code": {"text": "x"}, "subject": {"reference": "urn:uuid:6b2c1a4e-0000-4000-8000-0000000000ff"}}}]});
    assert_eq!(s.post("", &dangling).await.status, 400);
    s.stop().await;
}

async fn transaction_is_all_or_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    s.put("Patient/p1", &json!({"resourceType": "Patient", "id": "p1"})).await;
    let before = s.version_count().await;
    let good = json!({"request": {"method": "POST", "url": "Patient"}, "resource": {"resourceType": "Patient", "gender": "female"}});
    // Invalid content: refused before anything is written.
    let invalid = json!({"resourceType": "Bundle", "type": "transaction", "entry": [good,
        {"request": {"method": "POST", "url": "Patient"}, "resource": {"resourceType": "Patient", "gender": "boy"}}]});
    let r = s.post("", &invalid).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.issue_code(), "code-invalid");
    // A conflict met inside the store after the first entry was written: rolled back too.
    let conflict = json!({"resourceType": "Bundle", "type": "transaction", "entry": [good,
        {"request": {"method": "DELETE", "url": "Patient/p1", "ifMatch": "W/\"9\""}}]});
    let r = s.post("", &conflict).await;
    assert_eq!(r.status, 412, "{}", r.text);
    let ambiguous = json!({"resourceType": "Bundle", "type": "transaction", "entry": [good,
        {"request": {"method": "PUT", "url": "Patient?gender=female,male,other,unknown"}, "resource": {"resourceType": "Patient"}},
        good]});
    s.post("", &json!({"resourceType": "Bundle", "type": "batch", "entry": [good, good]})).await;
    let before_ambiguous = s.version_count().await;
    assert_eq!(s.post("", &ambiguous).await.status, 412);
    assert_eq!(s.version_count().await, before_ambiguous);
    assert_eq!(before_ambiguous, before + 2, "only the batch wrote");
    let twice = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "PUT", "url": "Patient/p1"}, "resource": {"resourceType": "Patient", "id": "p1"}},
        {"request": {"method": "DELETE", "url": "Patient/p1"}}]});
    let r = s.post("", &twice).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(s.version_count().await, before_ambiguous);
    assert_eq!(s.get("Patient/p1").await.status, 200);
    s.stop().await;
}

/// HL7's own transaction and batch examples (npm `hl7.fhir.r4.examples@4.0.1`).
async fn official_example_bundles(backend: Backend) {
    let dir = std::path::PathBuf::from(std::env::var("HELSE_R4_EXAMPLES").expect("run with scripts/test"))
        .join("package");
    let load = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("Bundle-{name}.json"))).unwrap())
            .unwrap()
    };
    let s = TestServer::start(backend).await;
    for name in ["hla-1", "ussg-fht", "xds"] {
        let r = s.post("", &load(name)).await;
        assert_eq!(r.status, 200, "{name}: {}", r.text);
        let out = r.json();
        assert_eq!(out["type"], "transaction-response");
        assert!(
            out["entry"].as_array().unwrap().iter().all(|e| e["response"]["status"] == "201 Created"),
            "{name}"
        );
    }
    // xds: relative references to entries with absolute fullUrls point at what was created.
    let docs = s.get("DocumentReference?_include=DocumentReference:subject").await.json();
    let kinds: Vec<&str> = docs["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["DocumentReference", "Patient"]);
    // ussg-fht: entry URLs under another base name Type/id here.
    assert_eq!(s.get("Questionnaire/54127-6").await.status, 200);
    for name in ["bundle-request-medsallergies", "bundle-request-simplesummary"] {
        let r = s.post("", &load(name)).await;
        assert_eq!(r.json()["type"], "batch-response", "{name}");
    }
    // The spec's showcase transaction updates Patient/123a at version 2 and calls
    // ValueSet/$lookup, which do not exist here: it must fail whole, storing nothing.
    let before = s.version_count().await;
    let r = s.post("", &load("bundle-transaction")).await;
    assert!(r.status >= 400, "{}", r.text);
    assert_eq!(r.json()["resourceType"], "OperationOutcome");
    assert_eq!(s.version_count().await, before);
    s.stop().await;
}
