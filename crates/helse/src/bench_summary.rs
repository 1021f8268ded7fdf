//! `helse bench --suite summary`: the patient summary of a patient with a long record.
//! Loads one patient with 5,000 resources (lab results over 200 codes, vital signs,
//! encounters, conditions, medications, immunizations, allergies) through batches, then
//! asks for `Patient/{id}/$summary` on every connection for the given time and prints
//! p50/p99 (issue 6's target: under 100 ms). With `--portal-user`, then the portal's page of
//! that summary as the patient's GP sees it (`/portal/patients/{id}`: the same `$summary`
//! in-process, rendered as HTML).

use std::sync::Arc;

use anyhow::{Context, bail};
use hyper::StatusCode;
use serde_json::{Value, json};

use crate::bench::{Target, connect, parse_url, send, timed_gets};

/// Resources in the record, the Patient and their GP included.
const RECORD: usize = 5_000;
/// The record's GP, whom the portal user of `--portal-user` must be.
const PORTAL_GP: &str = "bench-portal-gp";

fn record(patient: &str) -> Vec<Value> {
    let subject = json!({"reference": format!("Patient/{patient}")});
    let day = |i: usize| {
        format!("20{:02}-{:02}-{:02}T08:00:00Z", 5 + (i / 336) % 20, 1 + (i / 28) % 12, 1 + i % 28)
    };
    let mut out = vec![
        json!({"resourceType": "Practitioner", "id": PORTAL_GP, "name": [{"family": "Benkmark"}]}),
        json!({"resourceType": "Patient", "id": patient, "name": [{"family": "Langjournal"}], "birthDate": "1940-01-01",
            "generalPractitioner": [{"reference": format!("Practitioner/{PORTAL_GP}")}]}),
    ];
    let mut i = 0;
    while out.len() < RECORD {
        i += 1;
        let id = format!("{patient}-{i}");
        let r = match i % 25 {
            0 => json!({"resourceType": "Encounter", "id": id, "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": subject, "period": {"start": day(i), "end": day(i)}}),
            1 => json!({"resourceType": "Condition", "id": id, "subject": subject,
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": if i % 2 == 0 { "active" } else { "resolved" }}]},
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": format!("{}", 100_000 + i % 300)}]}, "onsetDateTime": day(i)}),
            2 => {
                json!({"resourceType": "MedicationRequest", "id": id, "status": if i % 4 == 2 { "active" } else { "completed" },
                "intent": "order", "subject": subject, "authoredOn": day(i),
                "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": format!("C{:02}", i % 90)}]}})
            }
            3 => json!({"resourceType": "Immunization", "id": id, "status": "completed", "patient": subject,
                "vaccineCode": {"coding": [{"system": "http://snomed.info/sct", "code": format!("{}", 200_000 + i % 40)}]}, "occurrenceDateTime": day(i)}),
            4 if i % 100 == 4 => json!({"resourceType": "AllergyIntolerance", "id": id, "patient": subject,
                "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": format!("{}", 300_000 + i)}]}}),
            n => {
                let (category, code) =
                    if n % 3 == 0 { ("vital-signs", 8000 + i % 8) } else { ("laboratory", 10_000 + i % 200) };
                json!({"resourceType": "Observation", "id": id, "status": "final", "subject": subject,
                    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
                    "code": {"coding": [{"system": "http://loinc.org", "code": format!("{code}-0")}]},
                    "effectiveDateTime": day(i), "valueQuantity": {"value": (i % 97) as f64 / 3.0, "unit": "mmol/L"}})
            }
        };
        out.push(r);
    }
    out
}

async fn load(target: &Target, patient: &str) -> anyhow::Result<()> {
    let mut sender = connect(target).await?;
    for chunk in record(patient).chunks(500) {
        let entries: Vec<Value> = chunk
            .iter()
            .map(|r| {
                let url = format!(
                    "{}/{}",
                    r["resourceType"].as_str().unwrap_or(""),
                    r["id"].as_str().unwrap_or("")
                );
                json!({"resource": r, "request": {"method": "PUT", "url": url}})
            })
            .collect();
        let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
        let (status, body) = send(&mut sender, target, "POST", "", Some(bundle.to_string())).await?;
        if status != StatusCode::OK {
            bail!("loading the record answered {status}: {}", String::from_utf8_lossy(&body));
        }
    }
    Ok(())
}

pub async fn run(
    url: &str,
    connections: usize,
    seconds: u64,
    portal_user: Option<&str>,
) -> anyhow::Result<()> {
    let target = Arc::new(parse_url(url)?);
    let patient = format!("bench-summary-{}", std::process::id());
    load(&target, &patient).await?;
    let path = format!("Patient/{patient}/$summary");
    let load = timed_gets(&target, connections, seconds, Arc::new(move |_, _| path.clone())).await?;
    let n = load.latencies.len();
    println!(
        "helse bench --suite summary: a record of {RECORD} resources, {connections} connections, {seconds} s"
    );
    let (p50, p99) = load.p50_p99();
    println!(
        "$summary: {n} requests, {:.0}/s, p50 {p50:.2} ms, p99 {p99:.2} ms, {} entries in the document",
        load.rate(),
        load.entries / n.max(1)
    );
    if let Some(user) = portal_user {
        let (name, password) = user.split_once(':').context("--portal-user is NAME:PASSWORD")?;
        // The portal is at the server's root, beside the FHIR base.
        let portal = Arc::new(Target {
            host: target.host.clone(),
            path: String::new(),
            cookie: Some(sign_in(&target, name, password).await?),
        });
        let page = format!("portal/patients/{patient}");
        let load = timed_gets(&portal, connections, seconds, Arc::new(move |_, _| page.clone())).await?;
        let (p50, p99) = load.p50_p99();
        println!(
            "portal page of the summary: {} requests, {:.0}/s, p50 {p50:.2} ms, p99 {p99:.2} ms",
            load.latencies.len(),
            load.rate()
        );
    }
    Ok(())
}

/// Signs in at the portal; returns the session cookie (`helse_portal=…`).
async fn sign_in(target: &Target, name: &str, password: &str) -> anyhow::Result<String> {
    let mut sender = connect(target).await?;
    let form = serde_urlencoded::to_string([("username", name), ("password", password)])?;
    let req = hyper::Request::builder()
        .method("POST")
        .uri("/portal/login")
        .header("host", &target.host)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(http_body_util::Full::new(bytes::Bytes::from(form)))?;
    let resp = sender.send_request(req).await?;
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("helse_portal="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    match cookie {
        Some(c) if resp.status() == StatusCode::SEE_OTHER => Ok(c),
        _ => bail!("signing in at the portal as {name} answered {}", resp.status()),
    }
}
