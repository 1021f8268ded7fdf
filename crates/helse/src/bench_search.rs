//! `helse bench --suite search`: latency of the searches a clinician's system makes, against
//! a server holding a synthetic population (`helse synth`). Patients are sampled from the
//! server first; each query kind then runs for the given time over all connections, each
//! request for another patient, and prints p50/p99.

use std::sync::Arc;

use anyhow::{Context, bail};
use hyper::StatusCode;
use serde_json::Value;

use crate::bench::{Target, connect, parse_url, send, timed_gets};

/// What a query needs to know about a patient.
struct Sample {
    id: String,
    identifier: String,
    family: String,
}

type Query = fn(&Sample) -> String;

const QUERIES: [(&str, Query); 7] = [
    ("patient by identifier", |p| format!("Patient?identifier={}", encode(&p.identifier))),
    ("patient by name prefix", |p| format!("Patient?name={}", &p.family[..3.min(p.family.len())])),
    ("observations by code+date", |p| {
        format!(
            "Observation?subject=Patient/{}&code=http://loinc.org%7C8867-4&date=ge2010-01-01&date=lt2026-01-01",
            p.id
        )
    }),
    ("conditions _include subject", |p| {
        format!("Condition?subject=Patient/{}&_include=Condition:subject", p.id)
    }),
    ("two-level chain", |p| {
        format!("Observation?encounter.subject:Patient.identifier={}&_count=50", encode(&p.identifier))
    }),
    ("$everything (whole record)", |p| format!("Patient/{}/$everything?_count=1000", p.id)),
    ("$summary (patient summary)", |p| format!("Patient/{}/$summary", p.id)),
];

fn encode(s: &str) -> String {
    s.replace('|', "%7C").replace(':', "%3A")
}

async fn sample(target: &Target, count: usize) -> anyhow::Result<Vec<Sample>> {
    let mut sender = connect(target).await?;
    let (status, body) = send(&mut sender, target, "GET", &format!("Patient?_count={count}"), None).await?;
    if status != StatusCode::OK {
        bail!("sampling patients answered {status}");
    }
    let bundle: Value = serde_json::from_slice(&body)?;
    let samples: Vec<Sample> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let p = &e["resource"];
            let identifier = &p["identifier"][0];
            Some(Sample {
                id: p["id"].as_str()?.to_owned(),
                identifier: format!("{}|{}", identifier["system"].as_str()?, identifier["value"].as_str()?),
                family: p["name"][0]["family"].as_str()?.to_owned(),
            })
        })
        .collect();
    if samples.is_empty() {
        bail!("the server has no patients with identifiers and names: load some with `helse synth`");
    }
    Ok(samples)
}

pub async fn run(url: &str, connections: usize, seconds: u64) -> anyhow::Result<()> {
    let target = Arc::new(parse_url(url)?);
    let samples = Arc::new(sample(&target, 1000).await.with_context(|| format!("cannot sample {url}"))?);
    println!(
        "helse bench --suite search: {connections} connections, {seconds} s per query, {} sampled patients",
        samples.len()
    );
    println!(
        "{:<30} {:>9} {:>9} {:>9} {:>9} {:>11}",
        "query", "requests", "per sec", "p50 ms", "p99 ms", "avg entries"
    );
    for (name, query) in QUERIES {
        let samples = samples.clone();
        // Each connection starts at another patient.
        let path =
            Arc::new(move |worker: usize, i: usize| query(&samples[(worker * 7919 + i) % samples.len()]));
        let load = timed_gets(&target, connections, seconds, path).await?;
        let n = load.latencies.len();
        let (p50, p99) = load.p50_p99();
        println!(
            "{name:<30} {n:>9} {:>9.0} {p50:>9.2} {p99:>9.2} {:>11.1}",
            load.rate(),
            load.entries as f64 / n.max(1) as f64
        );
    }
    Ok(())
}
