use std::sync::Arc;

use helse_store::ResourceStore;
use helse_store_sqlite::{Durability, SqliteStore};

use super::*;

fn patients(n: usize, bad_every: usize) -> String {
    (0..n)
        .map(|i| {
            if bad_every > 0 && i % bad_every == 0 {
                format!("{{\"resourceType\":\"Patient\",\"id\":\"p{i}\",\"gender\":\"unknown-gender\"}}\n")
            } else {
                format!(
                    "{{\"resourceType\":\"Patient\",\"id\":\"p{i}\",\"name\":[{{\"family\":\"F{i}\"}}]}}\n"
                )
            }
        })
        .collect()
}

async fn run(sources: Vec<Source>, store: Arc<dyn ResourceStore>, checkpoint: Option<Checkpoint>) -> Summary {
    let options = ImportOptions { batch: 7, workers: 2, checkpoint };
    import(sources, Arc::new(StoreSink { store }), options, |_| {}).await.unwrap()
}

#[tokio::test]
async fn imports_reject_bad_resources_and_repeat_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Patient.ndjson"), patients(50, 10)).unwrap();
    let store: Arc<dyn ResourceStore> =
        Arc::new(SqliteStore::open(&dir.path().join("db.sqlite"), Durability::Normal).unwrap());
    let sources = discover(&[dir.path().join("Patient.ndjson")]).unwrap();
    let first = run(sources.clone(), store.clone(), None).await;
    assert_eq!((first.progress.created, first.progress.rejected), (45, 5));
    assert!(first.rejections[0].reason.contains("Patient.gender"), "{:?}", first.rejections[0]);
    assert!(first.rejections[0].origin.ends_with("Patient.ndjson:1"));
    assert_eq!(first.progress.bytes_read, first.progress.bytes_total);
    assert_eq!(store.count_current().await.unwrap(), 45);
    let again = run(sources, store.clone(), None).await;
    assert_eq!((again.progress.created, again.progress.already_present), (0, 45));
    assert_eq!(store.count_current().await.unwrap(), 45);
    let p = store
        .read(
            helse_fhir_r4::ResourceType::parse("Patient").unwrap(),
            &helse_fhir_r4::ResourceId::parse("p7").unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(p.unwrap().version_id, 1, "a repeated import writes no new version");
}

#[tokio::test]
async fn a_checkpoint_resumes_where_the_last_run_stopped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Patient.ndjson"), patients(30, 0)).unwrap();
    let store: Arc<dyn ResourceStore> =
        Arc::new(SqliteStore::open(&dir.path().join("db.sqlite"), Durability::Normal).unwrap());
    let sources = discover(&[dir.path().to_owned()]).unwrap();
    let checkpoint = Checkpoint { path: dir.path().join("cp"), fingerprint: fingerprint(&sources, "test") };
    // An earlier run committed the first 14 items, then died.
    checkpoint.save(14).unwrap();
    let resumed = run(sources.clone(), store.clone(), Some(checkpoint.clone())).await;
    assert_eq!((resumed.progress.resumed_past, resumed.progress.created), (14, 16));
    assert!(!checkpoint.path.exists(), "a finished import removes its checkpoint");
    // A checkpoint of some other import is ignored.
    let other = Checkpoint { path: dir.path().join("cp"), fingerprint: "other".into() };
    checkpoint.save(29).unwrap();
    let full = run(sources, store.clone(), Some(other)).await;
    assert_eq!(
        (full.progress.resumed_past, full.progress.created, full.progress.already_present),
        (0, 14, 16)
    );
}
