//! A server killed with SIGKILL in the middle of a stream of writes restarts with a consistent
//! store: every acknowledged write is there, no version is half-written, and every stored
//! version has exactly one access-log entry (stored in the write's own transaction), in an
//! unbroken chain.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use helse_test_support::{Backend, FreshStore, free_port, on_both_stores, spawn_helse};
use serde_json::{Value, json};

on_both_stores!(acknowledged_writes_survive_sigkill);

const WRITERS: usize = 16;

async fn acknowledged_writes_survive_sigkill(backend: Backend) {
    let store = FreshStore::new(backend).await;
    let port = free_port();
    let mut server = spawn_helse(env!("CARGO_BIN_EXE_helse"), &store.location, port).await;
    let base = format!("http://127.0.0.1:{port}/fhir");

    // id -> highest version the server acknowledged.
    let acked: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (acked, base) = (acked.clone(), base.clone());
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
            let mut i = 0u64;
            loop {
                i += 1;
                // Alternate creates of new resources with updates of this writer's own one.
                let (req, id) = if i % 2 == 1 {
                    let body = json!({"resourceType": "Patient", "name": [{"family": format!("W{w}-{i}")}]});
                    (client.post(format!("{base}/Patient")).json(&body), None)
                } else {
                    let id = format!("writer-{w}");
                    let body = json!({"resourceType": "Patient", "id": id, "multipleBirthInteger": i});
                    (client.put(format!("{base}/Patient/{id}")).json(&body), Some(id))
                };
                let Ok(r) = req.header("content-type", "application/fhir+json").send().await else { break };
                if !r.status().is_success() {
                    break;
                }
                let Ok(v) = r.json::<Value>().await else { break };
                let id = id.unwrap_or_else(|| v["id"].as_str().unwrap().to_owned());
                let version: u64 = v["meta"]["versionId"].as_str().unwrap().parse().unwrap();
                let mut acked = acked.lock().unwrap();
                let e = acked.entry(id).or_default();
                *e = (*e).max(version);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix
    server.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > WRITERS, "the writers barely wrote ({} resources)", acked.len());

    let mut server = spawn_helse(env!("CARGO_BIN_EXE_helse"), &store.location, port).await;
    let client = reqwest::Client::new();
    for (id, version) in &acked {
        let r = client.get(format!("{base}/Patient/{id}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "acknowledged Patient/{id} is missing after the crash");
        let v: Value = r.json().await.unwrap();
        let current: u64 = v["meta"]["versionId"].as_str().unwrap().parse().unwrap();
        assert!(current >= *version, "Patient/{id}: acknowledged version {version}, found {current}");
    }
    // Every stored version is whole: bodies parse, versions of a resource count 1..n.
    let mut versions: HashMap<String, Vec<u64>> = HashMap::new();
    let mut url = format!("{base}/_history?_count=1000");
    loop {
        let page: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        for e in page["entry"].as_array().into_iter().flatten() {
            let r = &e["resource"];
            assert_eq!(r["resourceType"], "Patient", "{e}");
            let vid: u64 = r["meta"]["versionId"].as_str().unwrap().parse().unwrap();
            assert_eq!(e["response"]["etag"], format!("W/\"{vid}\""));
            versions.entry(r["id"].as_str().unwrap().to_owned()).or_default().push(vid);
        }
        match page["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next") {
            Some(next) => url = next["url"].as_str().unwrap().to_owned(),
            None => break,
        }
    }
    let stored_versions: usize = versions.values().map(Vec::len).sum();
    for (id, mut vs) in versions {
        vs.sort_unstable();
        assert_eq!(vs, (1..=vs.len() as u64).collect::<Vec<_>>(), "Patient/{id} has a gap in its versions");
    }
    println!("{backend:?}: {} acknowledged resources intact after SIGKILL", acked.len());
    // A graceful stop, so the restarted server's own entries are all stored too.
    let pid = server.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    server.wait().unwrap();

    // One successful create/update entry per stored version: none lost, none without its write.
    let log = helse_test_support::open_store(&store.location).await;
    let mut writes_logged = 0;
    let mut after = 0;
    loop {
        let rows = log.audit_entries(after, 10_000).await.unwrap();
        let Some(last) = rows.last() else { break };
        after = last.seq;
        writes_logged += rows
            .iter()
            .map(|r| serde_json::from_str::<Value>(&r.record.event).unwrap())
            .filter(|e| matches!(e["action"].as_str(), Some("C" | "U")) && e["outcome"] == "0")
            .count();
    }
    log.close().await;
    assert_eq!(writes_logged, stored_versions, "access-log entries of writes vs versions stored");
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_helse"))
        .args(["audit", "--store", &store.location, "verify"])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}
