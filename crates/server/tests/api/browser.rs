//! The portal in headless Chromium (Debian's `chromium`, driven by npm `playwright-core`;
//! `scripts/test` installs both and sets `HELSE_CHROMIUM` and `HELSE_PLAYWRIGHT`), with
//! JavaScript off: a patient signs in and registers an organ-donor statement, her GP sees it
//! in her summary, and she sees the GP's look in her access log
//! (`tests/browser/portal.mjs`). Afterwards the store must hold what the browser did.

use helse_test_support::{Backend, on_both_stores};
use serde_json::Value;

use super::people::{access_log_until, call, start};
use super::portal::set_up_portal_record;

on_both_stores!(the_portal_works_in_chromium);

async fn the_portal_works_in_chromium(backend: Backend) {
    let chromium = std::env::var("HELSE_CHROMIUM")
        .expect("HELSE_CHROMIUM names Debian's chromium; run the tests with scripts/test, which installs it");
    let playwright = std::env::var("HELSE_PLAYWRIGHT")
        .expect("HELSE_PLAYWRIGHT names the node_modules holding playwright-core; run scripts/test");
    let (server, admin) = start(backend).await;
    set_up_portal_record(&server, &admin).await;
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("portal-{backend:?}"));
    std::fs::create_dir_all(&shots).unwrap();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/portal.mjs");
    let run = tokio::process::Command::new("node")
        .arg(script)
        .env("PORTAL_URL", format!("http://{}", server.addr))
        .env("HELSE_CHROMIUM", chromium)
        .env("HELSE_PLAYWRIGHT", playwright)
        .env("SCREENSHOTS", &shots)
        .output()
        .await
        .expect("node runs");
    let out = String::from_utf8_lossy(&run.stdout);
    println!("{out}");
    assert!(
        run.status.success(),
        "the browser run failed (screenshots in {}):\n{out}\n{}",
        shots.display(),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.contains("portal: every step passed"));

    // What the browser did is what the record holds.
    let active = call(
        &server,
        &admin,
        "GET",
        "Consent?patient=kari&category=https://fhir.helse.example/CodeSystem/consent-kind|organ-donation&status=active",
        None,
        &[],
    )
    .await
    .json();
    let statement = &active["entry"][0]["resource"];
    assert_eq!(
        statement["provision"]["code"][0]["coding"][0]["code"], "willing-with-restrictions",
        "{active}"
    );
    assert_eq!(statement["provision"]["provision"][0]["code"][0]["coding"][0]["code"], "64033007");
    assert_eq!(statement["provision"]["actor"][0]["reference"]["display"], "Ola Nordmann");
    let log = access_log_until(&server, &admin, "kari", |log| {
        log["entry"].as_array().into_iter().flatten().any(|e| is_gp_summary(&e["resource"]))
    })
    .await;
    assert!(
        log["entry"].as_array().unwrap().iter().any(|e| e["resource"]["action"] == "C"),
        "her registration"
    );
}

fn is_gp_summary(event: &Value) -> bool {
    event["subtype"][0]["code"] == "summary" && event["agent"][0]["who"]["reference"] == "Practitioner/gp"
}
