//! Optimistic locking under load: no update is lost when many clients race with If-Match.

use serde_json::json;

use helse_test_support::{Backend, TestServer, on_both_stores};

on_both_stores!(concurrent_read_modify_write_loses_nothing);

const CLIENTS: usize = 32;
const ROUNDS: usize = 8;

async fn concurrent_read_modify_write_loses_nothing(backend: Backend) {
    let s = std::sync::Arc::new(TestServer::start(backend).await);
    let r = s
        .put("Patient/shared", &json!({"resourceType": "Patient", "id": "shared", "multipleBirthInteger": 0}))
        .await;
    assert_eq!(r.status, 201);

    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut conflicts) = (0u64, 0u64);
            for _ in 0..ROUNDS {
                let current = s.get("Patient/shared").await;
                let etag = current.header("etag").unwrap().to_owned();
                let mut body = current.json();
                let n = body["multipleBirthInteger"].as_i64().unwrap();
                body["multipleBirthInteger"] = json!(n + 1);
                body.as_object_mut().unwrap().remove("meta");
                let put = s.send("PUT", "Patient/shared", Some(&body), &[("if-match", &etag)]).await;
                match put.status {
                    200 => ok += 1,
                    412 => conflicts += 1,
                    other => panic!("unexpected {other}: {}", put.text),
                }
            }
            (ok, conflicts)
        }));
    }
    let (mut ok, mut conflicts) = (0, 0);
    for t in tasks {
        let (o, c) = t.await.unwrap();
        ok += o;
        conflicts += c;
    }
    let last = s.get("Patient/shared").await.json();
    println!("{ok} updates succeeded, {conflicts} refused with 412");
    assert!(ok > 0);
    assert_eq!(ok + conflicts, (CLIENTS * ROUNDS) as u64);
    // Every successful update is a version, and each one saw the one before it.
    assert_eq!(last["meta"]["versionId"], (ok + 1).to_string());
    assert_eq!(last["multipleBirthInteger"], ok);
    assert_eq!(s.get("Patient/shared/_history").await.json()["total"], ok + 1);
}
