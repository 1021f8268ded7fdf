//! SIGTERM during a stream of writes: the server stops accepting, finishes what is in flight,
//! and every write it acknowledged is in the store after a restart.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use helse_test_support::{Backend, FreshStore, free_port, on_both_stores, spawn_helse};
use serde_json::{Value, json};

on_both_stores!(sigterm_finishes_in_flight_writes);

async fn sigterm_finishes_in_flight_writes(backend: Backend) {
    let store = FreshStore::new(backend).await;
    let port = free_port();
    let mut server = spawn_helse(env!("CARGO_BIN_EXE_helse"), &store.location, port).await;
    let base = format!("http://127.0.0.1:{port}/fhir");
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..8 {
        let (acked, base) = (acked.clone(), base.clone());
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
            for i in 0.. {
                let body = json!({"resourceType": "Patient", "name": [{"family": format!("T{w}-{i}")}]});
                let sent = client
                    .post(format!("{base}/Patient"))
                    .header("content-type", "application/fhir+json")
                    .json(&body)
                    .send()
                    .await;
                let Ok(r) = sent else { break };
                // A response the server sent must be a success: in-flight work is finished,
                // not cut off with an error.
                assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
                let v: Value = r.json().await.unwrap();
                acked.lock().unwrap().push(v["id"].as_str().unwrap().to_owned());
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let pid = server.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || server.wait().unwrap()).await.unwrap();
    assert!(status.success(), "helse exits cleanly on SIGTERM: {status:?}");
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 8, "the writers barely wrote");

    let mut server = spawn_helse(env!("CARGO_BIN_EXE_helse"), &store.location, port).await;
    let client = reqwest::Client::new();
    for id in &acked {
        let r = client.get(format!("{base}/Patient/{id}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "acknowledged Patient/{id} is missing after a graceful stop");
    }
    println!("{backend:?}: {} acknowledged creates present after SIGTERM and restart", acked.len());
    server.kill().unwrap();
    server.wait().unwrap();
}
