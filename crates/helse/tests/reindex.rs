//! `helse reindex` rebuilds lost or outdated index rows while the server keeps running.

use std::process::Command;

use helse_test_support::{Backend, FreshStore, free_port, on_both_stores, spawn_helse};
use serde_json::{Value, json};

on_both_stores!(reindex_rebuilds_indexes_beside_a_running_server);

/// Deletes every string index row behind the server's back, as an outdated definition would
/// leave them missing.
async fn wipe_string_index(location: &str) {
    match location.strip_prefix("sqlite:") {
        Some(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
            conn.execute("DELETE FROM search_string", []).unwrap();
        }
        None => {
            let (client, conn) = tokio_postgres::connect(location, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            client.execute("DELETE FROM search_string", &[]).await.unwrap();
        }
    }
}

async fn family_total(client: &reqwest::Client, base: &str) -> u64 {
    let r: Value =
        client.get(format!("{base}/Patient?family=reindex")).send().await.unwrap().json().await.unwrap();
    r["total"].as_u64().unwrap()
}

async fn reindex_rebuilds_indexes_beside_a_running_server(backend: Backend) {
    let store = FreshStore::new(backend).await;
    let port = free_port();
    let mut server = spawn_helse(env!("CARGO_BIN_EXE_helse"), &store.location, port).await;
    let base = format!("http://127.0.0.1:{port}/fhir");
    let client = reqwest::Client::new();
    for i in 0..30 {
        let body = json!({"resourceType": "Patient", "name": [{"family": format!("Reindex{i}")}]});
        let r = client
            .post(format!("{base}/Patient"))
            .header("content-type", "application/fhir+json")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    assert_eq!(family_total(&client, &base).await, 30);
    wipe_string_index(&store.location).await;
    assert_eq!(family_total(&client, &base).await, 0, "the wiped index no longer finds them");

    let out = Command::new(env!("CARGO_BIN_EXE_helse"))
        .args(["reindex", "--store", &store.location, "--batch", "7"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("reindexed 30 resources"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("30/30 resources"), "progress is shown");
    assert_eq!(family_total(&client, &base).await, 30, "the server finds them again without a restart");
    println!("{backend:?}: {}", stdout.trim());
    server.kill().unwrap();
    server.wait().unwrap();
}

on_both_stores!(reindex_of_a_superseded_version_is_skipped);

async fn reindex_of_a_superseded_version_is_skipped(backend: Backend) {
    use helse_fhir_r4::{ResourceId, ResourceType};
    use helse_store::{Method, Write, WriteOutcome};

    let fresh = FreshStore::new(backend).await;
    let store = helse_test_support::open_store(&fresh.location).await;
    let (ty, id) = (ResourceType::parse("Patient").unwrap(), ResourceId::parse("p").unwrap());
    let patient = |family: &str| json!({"resourceType": "Patient", "id": "p", "name": [{"family": family}]});
    for family in ["First", "Second"] {
        let resource = patient(family);
        let index = helse_search::index_entries(&resource);
        let write = Write::Update {
            resource_type: ty,
            id: id.clone(),
            resource,
            method: Method::Put,
            if_match: None,
            index,
        };
        store.write(write).await.unwrap();
    }
    let stale = helse_search::index_entries(&patient("First"));
    let outcome = store
        .write(Write::Reindex { resource_type: ty, id: id.clone(), version_id: 1, index: stale })
        .await
        .unwrap();
    assert_eq!(
        outcome,
        WriteOutcome::Reindexed(false),
        "version 1 is superseded: its rows must not come back"
    );
    let current = helse_search::index_entries(&patient("Second"));
    let outcome =
        store.write(Write::Reindex { resource_type: ty, id, version_id: 2, index: current }).await.unwrap();
    assert_eq!(outcome, WriteOutcome::Reindexed(true));
    store.close().await;
}
