//! `Patient/{id}/$summary` on synthetic patients: each section's content is checked against
//! the source resources found by ordinary searches (a different path through the server
//! than the summary's own rules), every entry's recording institution against the record,
//! and the document by an independent R4 parser.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use helse_synth::{Population, SynthConfig};
use helse_test_support::{Backend, TestServer, on_both_stores};
use serde_json::{Value, json};

on_both_stores!(summary_sections_hold_what_the_record_holds);

const PATIENTS: usize = 20;

/// Loads a small synthetic population (the health service and `n` patients) through batches.
async fn load(server: &TestServer, n: usize) -> Population {
    let population = Population::new(SynthConfig { seed: 7, patients: n, ..SynthConfig::default() });
    let mut resources: Vec<Value> = population.infrastructure().to_vec();
    for i in 0..n {
        resources.extend(population.patient(i));
    }
    for chunk in resources.chunks(500) {
        let entries: Vec<Value> = chunk
            .iter()
            .map(|r| {
                let url = format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap());
                json!({"resource": r, "request": {"method": "PUT", "url": url}})
            })
            .collect();
        let r = server.post("", &json!({"resourceType": "Bundle", "type": "batch", "entry": entries})).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.entry_statuses().iter().all(|s| s.starts_with("201")), "{:?}", r.entry_statuses());
    }
    population
}

/// Every resource a search finds (following `next` links).
async fn found(server: &TestServer, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut url = server.url(query);
    loop {
        let page: Value = server.client.get(&url).send().await.unwrap().json().await.unwrap();
        assert_eq!(page["resourceType"], "Bundle", "{query}: {page}");
        out.extend(page["entry"].as_array().into_iter().flatten().map(|e| e["resource"].clone()));
        match page["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next") {
            Some(next) => url = next["url"].as_str().unwrap().to_owned(),
            None => return out,
        }
    }
}

fn reference(r: &Value) -> String {
    format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap())
}

fn refs(resources: &[Value]) -> BTreeSet<String> {
    resources.iter().map(reference).collect()
}

/// The section with a LOINC code: its entries (references).
fn section(document: &Value, code: &str) -> Option<BTreeSet<String>> {
    let composition = &document["entry"][0]["resource"];
    composition["section"].as_array().unwrap().iter().find(|s| s["code"]["coding"][0]["code"] == code).map(
        |s| {
            s["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["reference"].as_str().unwrap().to_owned())
                .collect()
        },
    )
}

fn date_of(r: &Value) -> String {
    ["effectiveDateTime", "issued"]
        .iter()
        .find_map(|f| r[*f].as_str())
        .or_else(|| r["effectivePeriod"]["start"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// For each code, the date of its latest result: what "latest per code" must pick.
fn latest_dates(resources: &[Value]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for r in resources {
        let code = format!(
            "{}|{}",
            r["code"]["coding"][0]["system"].as_str().unwrap_or(""),
            r["code"]["coding"][0]["code"].as_str().unwrap_or("")
        );
        let d = date_of(r);
        let slot = out.entry(code).or_default();
        if d > *slot {
            *slot = d;
        }
    }
    out
}

async fn summary_sections_hold_what_the_record_holds(backend: Backend) {
    let server = TestServer::start(backend).await;
    let population = load(&server, PATIENTS).await;
    // Every patient's summary; together they exercise every section.
    let mut totals: BTreeMap<&str, usize> = BTreeMap::new();
    let documents = tempfile::tempdir().unwrap();
    for i in 0..PATIENTS {
        let id = population.patient_id(i);
        for (section, n) in check_summary(&server, &id, backend, documents.path()).await {
            *totals.entry(section).or_default() += n;
        }
    }
    println!("{backend:?}: entries per section over {PATIENTS} patients: {totals:?}");
    for section in ["48765-2", "11450-4", "10160-0", "11369-6", "30954-2", "8716-3", "46240-8"] {
        assert!(
            totals.get(section).copied().unwrap_or(0) > 0,
            "no patient had anything in section {section}"
        );
    }
    // An independent R4 parser accepts every document.
    let python = std::env::var("HELSE_PYTHON")
        .expect("HELSE_PYTHON is not set: run the suite with scripts/test, which installs fhir.resources");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/check_r4_parser.py");
    let output = std::process::Command::new(python).arg(script).arg(documents.path()).output().unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(report.contains(&format!("of {PATIENTS} files")), "{report}");
    server.stop().await;
}

/// Checks one patient's summary; returns how many entries each section held.
async fn check_summary(
    server: &TestServer,
    id: &str,
    backend: Backend,
    documents: &std::path::Path,
) -> Vec<(&'static str, usize)> {
    let r = server.get(&format!("Patient/{id}/$summary")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let document = r.json();
    assert_eq!(document["type"], "document");
    assert_eq!(document["entry"][0]["resource"]["resourceType"], "Composition");
    assert_eq!(document["entry"][0]["resource"]["subject"]["reference"], format!("Patient/{id}"));
    assert_eq!(document["entry"][1]["resource"]["id"], id);
    let in_bundle: BTreeSet<String> = document["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["id"].is_string())
        .map(|e| reference(&e["resource"]))
        .collect();

    // Section by section, against searches.
    let allergies =
        found(server, &format!("AllergyIntolerance?patient={id}&clinical-status=active,recurrence,relapse"))
            .await;
    assert_eq!(section(&document, "48765-2").unwrap(), refs(&allergies), "allergies");
    let problems = found(
        server,
        &format!("Condition?patient={id}&clinical-status=active,recurrence,relapse&_count=1000"),
    )
    .await;
    assert_eq!(section(&document, "11450-4").unwrap(), refs(&problems), "problem list");
    let mut medications =
        found(server, &format!("MedicationRequest?patient={id}&status=active,on-hold")).await;
    medications.extend(
        found(server, &format!("MedicationStatement?patient={id}&status=active,intended,on-hold")).await,
    );
    assert_eq!(section(&document, "10160-0").unwrap(), refs(&medications), "medications");
    let immunizations =
        found(server, &format!("Immunization?patient={id}&status=completed&_count=1000")).await;
    assert_eq!(section(&document, "11369-6").unwrap_or_default(), refs(&immunizations), "immunizations");
    for (code, category) in [("30954-2", "laboratory"), ("8716-3", "vital-signs")] {
        let all = found(
            server,
            &format!(
                "Observation?patient={id}&category={category}&status=final,amended,corrected&_count=1000"
            ),
        )
        .await;
        let listed = section(&document, code).unwrap_or_default();
        let chosen: Vec<Value> = all.iter().filter(|o| listed.contains(&reference(o))).cloned().collect();
        assert_eq!(chosen.len(), listed.len(), "{category}: every entry is a source resource");
        assert_eq!(
            latest_dates(&chosen),
            latest_dates(&all),
            "{category}: the latest result of every code, once"
        );
    }
    let encounters = found(server, &format!("Encounter?patient={id}&_sort=-date&_count=10")).await;
    let listed = section(&document, "46240-8").unwrap_or_default();
    assert_eq!(listed.len(), encounters.len().min(10), "the most recent encounters");
    let newest: BTreeSet<String> =
        encounters.iter().map(|e| e["period"]["start"].as_str().unwrap().to_owned()).collect();
    for e in &encounters {
        if listed.contains(&reference(e)) {
            assert!(newest.contains(e["period"]["start"].as_str().unwrap()));
        }
    }
    // Every listed entry is in the document.
    for code in ["48765-2", "11450-4", "10160-0", "11369-6", "30954-2", "8716-3", "46240-8"] {
        for r in section(&document, code).unwrap_or_default() {
            assert!(in_bundle.contains(&r), "{r} of section {code} is in the Bundle");
        }
    }

    // Provenance: each entry's institution, as the record says (the organisation of the
    // PractitionerRole that recorded or performed it, or of its encounter).
    let provenances: Vec<&Value> = document["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Provenance")
        .collect();
    assert!(!provenances.is_empty(), "{backend:?} {id}: the document says who recorded what");
    let mut institution_of: BTreeMap<String, String> = BTreeMap::new();
    for p in &provenances {
        let org = p["agent"][0]["who"]["reference"].as_str().unwrap().to_owned();
        assert!(in_bundle.contains(&org), "{org} is in the Bundle");
        for t in p["target"].as_array().unwrap() {
            let previous = institution_of.insert(t["reference"].as_str().unwrap().to_owned(), org.clone());
            assert!(previous.is_none(), "one institution per entry");
        }
    }
    for allergy in &allergies {
        let role = allergy["recorder"]["reference"].as_str().unwrap();
        let role_body = server.get(role).await.json();
        assert_eq!(
            institution_of.get(&reference(allergy)).map(String::as_str),
            role_body["organization"]["reference"].as_str(),
            "{} was recorded at its recorder's organisation",
            reference(allergy)
        );
    }
    for problem in &problems {
        assert!(
            institution_of.contains_key(&reference(problem)),
            "{} has its institution",
            reference(problem)
        );
    }

    std::fs::write(documents.join(format!("{id}.json")), serde_json::to_vec(&document).unwrap()).unwrap();
    // And so does ours.
    let composition = &document["entry"][0]["resource"];
    let issues = server.post("Composition/$validate", composition).await.json();
    assert!(issues["issue"].as_array().into_iter().flatten().all(|i| i["severity"] != "error"), "{issues}");
    ["48765-2", "11450-4", "10160-0", "11369-6", "30954-2", "8716-3", "46240-8"]
        .into_iter()
        .map(|c| (c, section(&document, c).map_or(0, |s| s.len())))
        .collect()
}
