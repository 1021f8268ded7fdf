//! The REST interactions end to end.

use serde_json::json;

use helse_test_support::{Backend, TestServer, on_both_stores};

on_both_stores!(
    create_read_update_delete_and_history,
    versioned_update_and_conditional_reads,
    prefer_and_presentation,
    conditional_interactions,
    json_patch,
    history_paging_since_and_at,
    validate_operation,
    capability_statement_and_operator_endpoints,
);

fn patient(id: Option<&str>, family: &str) -> serde_json::Value {
    let mut p = json!({"resourceType": "Patient", "name": [{"family": family}], "gender": "female"});
    if let Some(id) = id {
        p["id"] = json!(id);
    }
    p
}

async fn create_read_update_delete_and_history(backend: Backend) {
    let s = TestServer::start(backend).await;
    let created = s.post("Patient", &patient(None, "Hansen")).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let body = created.json();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(body["meta"]["versionId"], "1");
    assert!(created.header("location").unwrap().ends_with(&format!("/fhir/Patient/{id}/_history/1")));
    assert_eq!(created.header("etag"), Some("W/\"1\""));

    let read = s.get(&format!("Patient/{id}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), body);
    assert!(read.header("last-modified").is_some());

    let updated = s.put(&format!("Patient/{id}"), &patient(Some(&id), "Olsen")).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json()["meta"]["versionId"], "2");

    let v1 = s.get(&format!("Patient/{id}/_history/1")).await;
    assert_eq!(v1.json()["name"][0]["family"], "Hansen");
    assert_eq!(s.get(&format!("Patient/{id}/_history/3")).await.status, 404);

    let deleted = s.send("DELETE", &format!("Patient/{id}"), None, &[]).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(s.get(&format!("Patient/{id}")).await.status, 410);
    assert_eq!(s.get(&format!("Patient/{id}/_history/3")).await.status, 410);
    // Deleting again changes nothing.
    assert_eq!(s.send("DELETE", &format!("Patient/{id}"), None, &[]).await.status, 200);

    let history = s.get(&format!("Patient/{id}/_history")).await.json();
    assert_eq!(history["type"], "history");
    assert_eq!(history["total"], 3);
    let methods: Vec<&str> = history["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request"]["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["DELETE", "PUT", "POST"]);
    assert!(history["entry"][0].get("resource").is_none());

    // Update-as-create with a client id, then resurrect after delete.
    let put_new = s.put("Patient/client-chosen", &patient(Some("client-chosen"), "Berg")).await;
    assert_eq!(put_new.status, 201);
    assert_eq!(put_new.json()["id"], "client-chosen");
    let revived = s.put(&format!("Patient/{id}"), &patient(Some(&id), "Lie")).await;
    assert_eq!(revived.status, 201);
    assert_eq!(revived.json()["meta"]["versionId"], "4");

    assert_eq!(s.get("Patient/_history").await.json()["total"], 5);
    assert_eq!(s.get("_history").await.json()["total"], 5);
    s.stop().await;
}

async fn versioned_update_and_conditional_reads(backend: Backend) {
    let s = TestServer::start(backend).await;
    s.put("Patient/p1", &patient(Some("p1"), "A")).await;
    let stale =
        s.send("PUT", "Patient/p1", Some(&patient(Some("p1"), "B")), &[("if-match", "W/\"7\"")]).await;
    assert_eq!(stale.status, 412);
    assert_eq!(stale.issue_code(), "conflict");
    let fresh =
        s.send("PUT", "Patient/p1", Some(&patient(Some("p1"), "B")), &[("if-match", "W/\"1\"")]).await;
    assert_eq!(fresh.status, 200);
    let gone_match = s.send("DELETE", "Patient/p1", None, &[("if-match", "W/\"1\"")]).await;
    assert_eq!(gone_match.status, 412);

    let etag = s.get("Patient/p1").await.header("etag").unwrap().to_owned();
    assert_eq!(etag, "W/\"2\"");
    assert_eq!(s.send("GET", "Patient/p1", None, &[("if-none-match", &etag)]).await.status, 304);
    assert_eq!(s.send("GET", "Patient/p1", None, &[("if-none-match", "W/\"1\"")]).await.status, 200);
    let lm = s.get("Patient/p1").await.header("last-modified").unwrap().to_owned();
    assert_eq!(s.send("GET", "Patient/p1", None, &[("if-modified-since", &lm)]).await.status, 304);
    assert_eq!(
        s.send("GET", "Patient/p1", None, &[("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT")])
            .await
            .status,
        200
    );
    s.stop().await;
}

async fn prefer_and_presentation(backend: Backend) {
    let s = TestServer::start(backend).await;
    let minimal = s.send("POST", "Patient", Some(&patient(None, "M")), &[("prefer", "return=minimal")]).await;
    assert_eq!(minimal.status, 201);
    assert!(minimal.text.is_empty());
    assert!(minimal.header("location").is_some());
    let oo = s
        .send("PUT", "Patient/p2", Some(&patient(Some("p2"), "O")), &[("prefer", "return=OperationOutcome")])
        .await;
    assert_eq!(oo.status, 201);
    assert_eq!(oo.json()["resourceType"], "OperationOutcome");

    let pretty = s.get("Patient/p2?_pretty=true").await;
    assert!(pretty.text.contains("\n  \"resourceType\""));
    let summary = s.get("Patient/p2?_summary=true").await.json();
    assert_eq!(summary["meta"]["tag"][0]["code"], "SUBSETTED");
    let elements = s.get("Patient/p2?_elements=gender").await.json();
    assert!(elements.get("name").is_none());
    assert_eq!(elements["gender"], "female");

    let json_format =
        s.send("GET", "Patient/p2?_format=json", None, &[("accept", "application/fhir+xml")]).await;
    assert_eq!(json_format.status, 200);
    assert_eq!(s.send("GET", "Patient/p2", None, &[("accept", "application/fhir+xml")]).await.status, 406);
    assert!(s.get("Patient/p2").await.header("content-type").unwrap().starts_with("application/fhir+json"));
    s.stop().await;
}

async fn conditional_interactions(backend: Backend) {
    let s = TestServer::start(backend).await;
    s.put("Patient/c1", &patient(Some("c1"), "C")).await;
    let existing = s.send("POST", "Patient", Some(&patient(None, "D")), &[("if-none-exist", "_id=c1")]).await;
    assert_eq!(existing.status, 200);
    assert_eq!(existing.json()["id"], "c1");
    let created =
        s.send("POST", "Patient", Some(&patient(None, "D")), &[("if-none-exist", "_id=none")]).await;
    assert_eq!(created.status, 201);

    let cond_update = s.put("Patient?_id=c1", &patient(None, "Updated")).await;
    assert_eq!(cond_update.status, 200, "{}", cond_update.text);
    assert_eq!(cond_update.json()["meta"]["versionId"], "2");
    let unknown = s.put("Patient?shoe-size=42", &patient(None, "X")).await;
    assert_eq!(unknown.status, 400, "an unknown criterion must not be ignored");
    assert_eq!(unknown.issue_code(), "not-supported");

    // Criteria go through search: identifiers, names, several matches.
    let mut with_id = patient(None, "Nordmann");
    with_id["identifier"] = json!([{"system": "urn:oid:2.16.578.1.12.4.1.4.1", "value": "13031353453"}]);
    let first = s
        .send(
            "POST",
            "Patient",
            Some(&with_id),
            &[("if-none-exist", "identifier=urn:oid:2.16.578.1.12.4.1.4.1|13031353453")],
        )
        .await;
    assert_eq!(first.status, 201);
    let again = s
        .send(
            "POST",
            "Patient",
            Some(&with_id),
            &[("if-none-exist", "identifier=urn:oid:2.16.578.1.12.4.1.4.1|13031353453")],
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["id"], first.json()["id"]);
    let by_identifier = s.put("Patient?identifier=13031353453", &with_id).await;
    assert_eq!(by_identifier.status, 200);
    assert_eq!(by_identifier.json()["meta"]["versionId"], "2");
    s.post("Patient", &patient(None, "Nordmann")).await;
    let ambiguous = s.send("DELETE", "Patient?family=Nordmann", None, &[]).await;
    assert_eq!(ambiguous.status, 412);

    assert_eq!(s.send("DELETE", "Patient?_id=c1", None, &[]).await.status, 200);
    assert_eq!(s.get("Patient/c1").await.status, 410);
    s.stop().await;
}

async fn json_patch(backend: Backend) {
    let s = TestServer::start(backend).await;
    s.put("Patient/jp", &patient(Some("jp"), "Before")).await;
    let patch = json!([{"op": "replace", "path": "/name/0/family", "value": "After"}, {"op": "add", "path": "/active", "value": true}]);
    let send_patch = |body: serde_json::Value, if_match: Option<&'static str>| {
        let mut req = s
            .client
            .patch(s.url("Patient/jp"))
            .header("content-type", "application/json-patch+json")
            .body(body.to_string());
        if let Some(m) = if_match {
            req = req.header("if-match", m);
        }
        req.send()
    };
    let r = send_patch(patch.clone(), None).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["name"][0]["family"], "After");
    assert_eq!(v["active"], true);
    assert_eq!(v["meta"]["versionId"], "2");
    let stale = send_patch(patch.clone(), Some("W/\"1\"")).await.unwrap();
    assert_eq!(stale.status().as_u16(), 412);
    let invalid =
        send_patch(json!([{"op": "replace", "path": "/gender", "value": "robot"}]), None).await.unwrap();
    assert_eq!(invalid.status().as_u16(), 422);
    let history = s.get("Patient/jp/_history").await.json();
    assert_eq!(history["total"], 2);
    assert_eq!(history["entry"][0]["request"]["method"], "PATCH");
    s.stop().await;
}

async fn history_paging_since_and_at(backend: Backend) {
    let s = TestServer::start(backend).await;
    for i in 0..7 {
        s.put(&format!("Patient/h{i}"), &patient(Some(&format!("h{i}")), "H")).await;
    }
    let mid = s.get("Patient/h3").await.json()["meta"]["lastUpdated"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    let mut url = "Patient/_history?_count=3".to_owned();
    loop {
        let page = s.get(&url).await.json();
        assert_eq!(page["total"], 7);
        for e in page["entry"].as_array().unwrap() {
            seen.push(e["resource"]["id"].as_str().unwrap().to_owned());
        }
        // A write between pages must not shift them.
        s.put(
            "Observation/o-between",
            &json!({"resourceType":"Observation","id":"o-between","status":"final","code":{"text":"x"}}),
        )
        .await;
        match page["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next") {
            Some(next) => url = next["url"].as_str().unwrap().split("/fhir/").nth(1).unwrap().to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, ["h6", "h5", "h4", "h3", "h2", "h1", "h0"]);
    let since = s.get(&format!("Patient/_history?_since={}", mid.replace('+', "%2B"))).await.json();
    let ids: Vec<&str> =
        since["entry"].as_array().unwrap().iter().map(|e| e["resource"]["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"h3") && ids.contains(&"h6") && !ids.contains(&"h0"), "{ids:?}");
    let at = s.get("Patient/_history?_at=1999").await.json();
    assert_eq!(at["total"], 0);
    assert_eq!(s.get("Patient/_history?_since=yesterday").await.status, 400);
    s.stop().await;
}

async fn validate_operation(backend: Backend) {
    let s = TestServer::start(backend).await;
    let ok = s.post("Patient/$validate", &patient(None, "V")).await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["issue"][0]["severity"], "information");
    let bad =
        s.post("Patient/$validate", &json!({"resourceType": "Patient", "birthDate": "31.12.1999"})).await;
    assert_eq!(bad.status, 200);
    assert_eq!(bad.json()["issue"][0]["expression"][0], "Patient.birthDate");
    let wrapped = s
        .post("Patient/$validate", &json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Patient", "gender": "x"}}]}))
        .await;
    assert_eq!(wrapped.json()["issue"][0]["code"], "code-invalid");
    assert_eq!(s.version_count().await, 0, "$validate stores nothing");
    s.stop().await;
}

async fn capability_statement_and_operator_endpoints(backend: Backend) {
    let s = TestServer::start(backend).await;
    let cs = s.get("metadata").await.json();
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    let patient =
        cs["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Patient").unwrap();
    let codes: Vec<&str> =
        patient["interaction"].as_array().unwrap().iter().map(|i| i["code"].as_str().unwrap()).collect();
    for code in ["read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create"] {
        assert!(codes.contains(&code), "{code} missing");
    }
    let system: Vec<&str> = cs["rest"][0]["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(system, ["history-system", "batch", "transaction"]);
    let root = format!("http://{}", s.addr);
    assert_eq!(s.client.get(format!("{root}/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(s.client.get(format!("{root}/readyz")).send().await.unwrap().status(), 200);
    let metrics = s.client.get(format!("{root}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("helse_http_requests_total{interaction=\"capabilities\",status=\"2xx\"} 1"),
        "{metrics}"
    );
    s.stop().await;
}
