//! The access log against the real binary on both stores: requests leave entries (reads'
//! queued ones stored at a graceful stop), `helse audit verify` finds the chain intact, and
//! finds it broken after an entry is changed or removed behind the server's back.

use helse_test_support::{Backend, FreshStore, free_port, on_both_stores, spawn_helse};

on_both_stores!(tampering_with_the_access_log_is_detected);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_helse")
}

fn helse(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(bin()).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Runs one SQL statement against the store, as someone with database access would.
async fn tamper(store: &FreshStore, backend: Backend, sql: &str) {
    match backend {
        Backend::Sqlite => {
            // The access log has a file of its own beside the store.
            let path = std::path::Path::new(store.location.strip_prefix("sqlite:").unwrap());
            let log = helse_store_sqlite::audit_path(path);
            rusqlite::Connection::open(log).unwrap().execute(sql, []).unwrap();
        }
        Backend::Postgres => {
            let (client, conn) =
                tokio_postgres::connect(&store.location, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            client.execute(sql, &[]).await.unwrap();
        }
    }
}

async fn tampering_with_the_access_log_is_detected(backend: Backend) {
    let store = FreshStore::new(backend).await;
    let port = free_port();
    let mut server = spawn_helse(bin(), &store.location, port).await;
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}/fhir");
    for i in 0..5 {
        let body = serde_json::json!({"resourceType": "Patient", "id": format!("p{i}")});
        let r = http
            .put(format!("{base}/Patient/p{i}"))
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        assert_eq!(http.get(format!("{base}/Patient/p{i}")).send().await.unwrap().status().as_u16(), 200);
    }
    // SIGTERM: reads' entries still queued are stored before the server exits.
    let pid = server.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(server.wait().unwrap().success());

    let (ok, text) = helse(&["audit", "--store", &store.location, "verify"]);
    assert!(ok, "{text}");
    assert!(text.contains("intact: 10 entries"), "{text}");
    let (ok, text) = helse(&["audit", "--store", &store.location, "patient", "p3"]);
    assert!(ok, "{text}");
    assert_eq!(text.lines().count(), 2, "p3 was written and read: {text}");

    // An entry's event rewritten (to hide who looked): detected at that entry.
    tamper(
        &store,
        backend,
        "UPDATE audit_log SET event = replace(event, 'no-auth', 'someone') WHERE seq = 4",
    )
    .await;
    let (ok, text) = helse(&["audit", "--store", &store.location, "verify"]);
    assert!(!ok, "a changed entry went unnoticed: {text}");
    assert!(text.contains("broken at entry 4"), "{text}");
    // Put back, then an entry removed: detected at the one after it.
    tamper(
        &store,
        backend,
        "UPDATE audit_log SET event = replace(event, 'someone', 'no-auth') WHERE seq = 4",
    )
    .await;
    assert!(helse(&["audit", "--store", &store.location, "verify"]).0, "restored");
    tamper(&store, backend, "DELETE FROM audit_log WHERE seq = 7").await;
    let (ok, text) = helse(&["audit", "--store", &store.location, "verify"]);
    assert!(!ok, "a removed entry went unnoticed: {text}");
    assert!(text.contains("broken at entry 8"), "{text}");
}
