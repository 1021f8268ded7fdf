//! Bulk Data `$export` against the real binary on both stores: kick-off, status polling and
//! NDJSON files; `_type`, `_since`, `_typeFilter`; Patient and Group level; jobs that survive
//! a restart (finished ones stay readable, a job whose runner died is taken over) and expire
//! after the retention period; and an export imported into an empty store reproducing the
//! same resources.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use helse_import::{ImportOptions, StoreSink, discover};
use helse_store::{JobStatus, ResourceStore};
use helse_test_support::{Backend, FreshStore, free_port, on_both_stores, open_store, spawn_helse_with};
use serde_json::Value;

on_both_stores!(export_kick_off_poll_download_and_round_trip, export_filters_levels_and_job_lifecycle);

const SEED: &str = "23";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_helse")
}

fn synth_into(location: &str, patients: &str) {
    let out = std::process::Command::new(bin())
        .args(["synth", "--patients", patients, "--seed", SEED, "--store", location])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Kicks off `path` (relative to the base) and returns the status URL.
async fn kick_off(client: &reqwest::Client, base: &str, path: &str) -> String {
    let r = client.get(format!("{base}/{path}")).header("prefer", "respond-async").send().await.unwrap();
    assert_eq!(r.status(), 202, "{path}: {}", r.text().await.unwrap());
    r.headers()["content-location"].to_str().unwrap().to_owned()
}

async fn manifest(client: &reqwest::Client, status_url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = client.get(status_url).send().await.unwrap();
        match r.status().as_u16() {
            202 => assert!(Instant::now() < deadline, "the export never finished"),
            200 => return r.json().await.unwrap(),
            other => panic!("status {other}: {}", r.text().await.unwrap()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every exported resource, by file.
async fn download(client: &reqwest::Client, manifest: &Value) -> Vec<(String, Vec<Value>)> {
    let mut out = Vec::new();
    for o in manifest["output"].as_array().unwrap() {
        let r = client
            .get(o["url"].as_str().unwrap())
            .header("accept", "application/fhir+ndjson")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/fhir+ndjson");
        let lines: Vec<Value> =
            r.text().await.unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len() as u64, o["count"].as_u64().unwrap());
        assert!(lines.iter().all(|r| r["resourceType"] == o["type"]));
        out.push((o["type"].as_str().unwrap().to_owned(), lines));
    }
    out
}

fn without_meta(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("meta");
    v
}

async fn all_current(store: &dyn ResourceStore) -> BTreeMap<String, Value> {
    let (mut out, mut after) = (BTreeMap::new(), 0);
    loop {
        let page = store.scan_current(after, 1000).await.unwrap();
        let Some((last, _)) = page.last() else { break };
        after = *last;
        for (_, v) in page {
            let body: Value = serde_json::from_str(v.body.as_deref().unwrap()).unwrap();
            out.insert(format!("{}/{}", v.resource_type, v.id), without_meta(body));
        }
    }
    out
}

async fn export_kick_off_poll_download_and_round_trip(backend: Backend) {
    let source = FreshStore::new(backend).await;
    synth_into(&source.location, "12");
    let port = free_port();
    let mut server = spawn_helse_with(bin(), &source.location, port, &[]).await;
    let base = format!("http://127.0.0.1:{port}/fhir");
    let client = reqwest::Client::new();

    // Without Prefer: respond-async the request is refused with an OperationOutcome.
    let r = client.get(format!("{base}/$export")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["resourceType"], "OperationOutcome");

    let status_url = kick_off(&client, &base, "$export").await;
    let m = manifest(&client, &status_url).await;
    assert_eq!(m["requiresAccessToken"], false);
    assert!(m["request"].as_str().unwrap().ends_with("/$export"));
    let files = download(&client, &m).await;

    // A finished export survives a restart of the server.
    server.kill().unwrap();
    server.wait().unwrap();
    let mut server = spawn_helse_with(bin(), &source.location, port, &[]).await;
    let again = manifest(&client, &status_url).await;
    assert_eq!(again, m);
    assert_eq!(download(&client, &again).await.len(), files.len());
    server.kill().unwrap();
    server.wait().unwrap();

    // The files, imported into an empty store, give back the same resources.
    let dir = tempfile::tempdir().unwrap();
    for (i, (ty, lines)) in files.iter().enumerate() {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(dir.path().join(format!("{i:04}-{ty}.ndjson")), text).unwrap();
    }
    let target = FreshStore::new(backend).await;
    let t = open_store(&target.location).await;
    let sink = Arc::new(StoreSink { store: t.clone() });
    let summary = helse_import::import(
        discover(&[dir.path().to_owned()]).unwrap(),
        sink,
        ImportOptions::default(),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(summary.progress.rejected, 0, "{:?}", summary.rejections);
    let s = open_store(&source.location).await;
    let (before, after) = (all_current(&*s).await, all_current(&*t).await);
    assert!(before.len() > 5_000, "{}", before.len());
    assert_eq!(before.len(), after.len());
    assert!(before == after, "the round trip changed resources");
    println!(
        "{backend:?}: {} resources exported in {} files and imported back unchanged",
        before.len(),
        files.len()
    );
    s.close().await;
    t.close().await;
}

async fn export_filters_levels_and_job_lifecycle(backend: Backend) {
    let store = FreshStore::new(backend).await;
    synth_into(&store.location, "6");
    let port = free_port();
    let mut server = spawn_helse_with(bin(), &store.location, port, &["--export-retention", "2"]).await;
    let base = format!("http://127.0.0.1:{port}/fhir");
    let client = reqwest::Client::new();

    // _type and _typeFilter: only hypertension Conditions, and Patients.
    let url = kick_off(
        &client,
        &base,
        "Patient/$export?_type=Patient,Condition&_typeFilter=Condition%3Fcode%3Dhttp%3A%2F%2Fhl7.org%2Ffhir%2Fsid%2Ficd-10%7CI10",
    )
    .await;
    let files = download(&client, &manifest(&client, &url).await).await;
    let types: HashSet<&str> = files.iter().map(|(t, _)| t.as_str()).collect();
    assert!(types.contains("Patient") && types.len() <= 2, "{types:?}");
    let conditions: Vec<&Value> =
        files.iter().filter(|(t, _)| t == "Condition").flat_map(|(_, l)| l).collect();
    for c in &conditions {
        assert!(c["code"]["coding"].as_array().unwrap().iter().any(|c| c["code"] == "I10"), "{c}");
    }

    // Group level: a GP's list; only its members and their data.
    let groups: Value =
        client.get(format!("{base}/Group?_count=1")).send().await.unwrap().json().await.unwrap();
    let group = &groups["entry"][0]["resource"];
    let members: HashSet<String> = group["member"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["entity"]["reference"].as_str().unwrap().to_owned())
        .collect();
    let url = kick_off(
        &client,
        &base,
        &format!("Group/{}/$export?_type=Patient,Observation", group["id"].as_str().unwrap()),
    )
    .await;
    let files = download(&client, &manifest(&client, &url).await).await;
    let mut observations = 0;
    for (ty, lines) in &files {
        for r in lines {
            let patient = match ty.as_str() {
                "Patient" => format!("Patient/{}", r["id"].as_str().unwrap()),
                _ => r["subject"]["reference"].as_str().unwrap().to_owned(),
            };
            assert!(members.contains(&patient), "{patient} is not in the group");
            observations += (ty == "Observation") as usize;
        }
    }
    assert!(observations > 0);
    let r = client
        .get(format!("{base}/Group/nope/$export"))
        .header("prefer", "respond-async")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // _since: only what changed after the given instant.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = helse_fhir_r4::Instant::now().to_string();
    let patient: Value =
        client.get(format!("{base}/Patient?_count=1")).send().await.unwrap().json().await.unwrap();
    let mut p = patient["entry"][0]["resource"].clone();
    p["active"] = Value::Bool(false);
    let r = client
        .put(format!("{base}/Patient/{}", p["id"].as_str().unwrap()))
        .header("content-type", "application/fhir+json")
        .body(p.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let url = kick_off(&client, &base, &format!("$export?_since={}", urlencode(&since))).await;
    let files = download(&client, &manifest(&client, &url).await).await;
    let ids: Vec<String> =
        files.iter().flat_map(|(_, l)| l).map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, vec![p["id"].as_str().unwrap().to_owned()]);

    // A job whose runner died (its server killed mid-export) is taken over by the next server.
    server.kill().unwrap();
    server.wait().unwrap();
    let s = open_store(&store.location).await;
    let job_id = url.rsplit('/').next().unwrap().to_owned();
    let mut job = s.job(&job_id).await.unwrap().unwrap();
    job.status = JobStatus::Running;
    job.result = None;
    job.heartbeat = helse_fhir_r4::Instant::from_millis(0);
    s.put_job(&job).await.unwrap();
    s.close().await;
    let mut server = spawn_helse_with(bin(), &store.location, port, &["--export-retention", "2"]).await;
    let resumed = manifest(&client, &url).await;
    assert_eq!(download(&client, &resumed).await.iter().map(|(_, l)| l.len()).sum::<usize>(), 1);

    // Cancelling deletes; finished jobs expire after the retention period.
    let cancelled = kick_off(&client, &base, "$export?_type=Observation").await;
    assert_eq!(client.delete(&cancelled).send().await.unwrap().status(), 202);
    assert_eq!(client.get(&cancelled).send().await.unwrap().status(), 404);
    let file = resumed["output"][0]["url"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(&url).send().await.unwrap().status() != 404 {
        assert!(Instant::now() < deadline, "the finished export never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(client.get(&file).send().await.unwrap().status(), 404);
    server.kill().unwrap();
    server.wait().unwrap();
}

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}
