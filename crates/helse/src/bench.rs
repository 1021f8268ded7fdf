//! `helse bench`: reads/s, creates/s and updates/s against a running server, with p50/p99
//! latency. Each connection is a keep-alive HTTP/1.1 connection driven by its own task.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// FHIR base URL of the server under test (http only).
    #[arg(long, default_value = "http://127.0.0.1:8080/fhir")]
    url: String,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds per phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// `crud` (create/read/update and a 1,000-entry transaction), `search` (the
    /// patient-level searches of a loaded population: see bench_search.rs) or `summary` (the
    /// patient summary of a 5,000-resource record: see bench_summary.rs).
    #[arg(long, default_value = "crud")]
    suite: String,
    /// With `--suite summary`: also time the portal's page of the summary, signed in as this
    /// practitioner (`NAME:PASSWORD`, a bench account made with `helse user add NAME --role
    /// practitioner --fhir-user Practitioner/bench-portal-gp`, the record's GP).
    #[arg(long)]
    portal_user: Option<String>,
}

pub(crate) struct Target {
    pub(crate) host: String,
    /// The path requests go under (`/fhir`; empty for the server's root).
    pub(crate) path: String,
    /// A session cookie every request carries (the portal's).
    pub(crate) cookie: Option<String>,
}

pub(crate) fn parse_url(url: &str) -> anyhow::Result<Target> {
    let rest = url.strip_prefix("http://").context("only http:// URLs are supported")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.trim_end_matches('/');
    let path = if path.is_empty() { String::new() } else { format!("/{path}") };
    Ok(Target { host: host.to_owned(), path, cookie: None })
}

pub(crate) async fn connect(target: &Target) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(&target.host).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

fn patient(i: usize, id: Option<&str>) -> String {
    let id = id.map(|id| format!(r#""id":"{id}","#)).unwrap_or_default();
    format!(
        r#"{{"resourceType":"Patient",{id}"active":true,"name":[{{"family":"Bench{i}","given":["Kari","Ola"]}}],"gender":"female","birthDate":"1970-01-01","address":[{{"city":"Bergen","postalCode":"5003","country":"NO"}}]}}"#
    )
}

/// One request; returns the status and body.
pub(crate) async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    method: &str,
    path: &str,
    body: Option<String>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    sender.ready().await?;
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{}/{path}", target.path))
        .header("host", &target.host)
        .header("content-type", "application/fhir+json")
        .header("prefer", "return=minimal");
    if let Some(cookie) = &target.cookie {
        req = req.header("cookie", cookie);
    }
    let req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, location.map(Bytes::from).unwrap_or(body)))
}

#[derive(Clone, Copy)]
enum Phase {
    Create,
    Read,
    Update,
}

struct PhaseResult {
    requests: usize,
    errors: usize,
    latencies_micros: Vec<u32>,
    created_ids: Vec<String>,
}

async fn run_phase(
    target: &std::sync::Arc<Target>,
    args: &BenchArgs,
    phase: Phase,
    ids: &std::sync::Arc<Vec<String>>,
) -> anyhow::Result<(PhaseResult, Duration)> {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.connections {
        let target = target.clone();
        let ids = ids.clone();
        let connections = args.connections;
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(&target).await?;
            let mut r =
                PhaseResult { requests: 0, errors: 0, latencies_micros: Vec::new(), created_ids: Vec::new() };
            let mut i = worker;
            while Instant::now() < deadline {
                let t = Instant::now();
                let (method, path, body, ok) = match phase {
                    Phase::Create => {
                        ("POST", "Patient".to_owned(), Some(patient(i, None)), StatusCode::CREATED)
                    }
                    Phase::Read => ("GET", format!("Patient/{}", ids[i % ids.len()]), None, StatusCode::OK),
                    Phase::Update => {
                        // Each worker updates its own slice of ids, so updates do not conflict.
                        let id = &ids[(i % (ids.len() / connections).max(1)) * connections % ids.len()];
                        ("PUT", format!("Patient/{id}"), Some(patient(i, Some(id))), StatusCode::OK)
                    }
                };
                let (status, out) = send(&mut sender, &target, method, &path, body).await?;
                r.latencies_micros.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                r.requests += 1;
                if status != ok {
                    r.errors += 1;
                } else if let Phase::Create = phase {
                    let loc = String::from_utf8_lossy(&out);
                    if let Some(id) = loc.split("/Patient/").nth(1).and_then(|s| s.split('/').next()) {
                        r.created_ids.push(id.to_owned());
                    }
                }
                i += connections;
            }
            anyhow::Ok(r)
        }));
    }
    let mut total =
        PhaseResult { requests: 0, errors: 0, latencies_micros: Vec::new(), created_ids: Vec::new() };
    for t in tasks {
        let r = t.await??;
        total.requests += r.requests;
        total.errors += r.errors;
        total.latencies_micros.extend(r.latencies_micros);
        total.created_ids.extend(r.created_ids);
    }
    Ok((total, started.elapsed()))
}

/// What a timed run of searches measured.
pub(crate) struct Load {
    /// Latencies in microseconds, sorted.
    pub latencies: Vec<u32>,
    /// Entries of every Bundle answered, in all.
    pub entries: usize,
    pub elapsed: Duration,
}

impl Load {
    /// Requests per second.
    pub(crate) fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// The median and 99th-percentile latency, in ms.
    pub(crate) fn p50_p99(&self) -> (f64, f64) {
        (percentile(&self.latencies, 0.50), percentile(&self.latencies, 0.99))
    }
}

/// GETs for `seconds` on `connections` keep-alive connections, request `i` of connection
/// `worker` asking for `path(worker, i)`; every answer must be a 200 (a Bundle's entries
/// are counted).
pub(crate) async fn timed_gets(
    target: &std::sync::Arc<Target>,
    connections: usize,
    seconds: u64,
    path: std::sync::Arc<dyn Fn(usize, usize) -> String + Send + Sync>,
) -> anyhow::Result<Load> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..connections {
        let (target, path) = (target.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(&target).await?;
            let (mut latencies, mut entries, mut i) = (Vec::new(), 0usize, 0usize);
            while Instant::now() < deadline {
                let path = path(worker, i);
                let t = Instant::now();
                let (status, body) = send(&mut sender, &target, "GET", &path, None).await?;
                latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                if status != StatusCode::OK {
                    bail!("{path} answered {status}: {}", String::from_utf8_lossy(&body));
                }
                if let Ok(bundle) = serde_json::from_slice::<serde_json::Value>(&body) {
                    entries += bundle["entry"].as_array().map_or(0, |e| e.len());
                }
                i += 1;
            }
            anyhow::Ok((latencies, entries))
        }));
    }
    let mut load = Load { latencies: Vec::new(), entries: 0, elapsed: Duration::ZERO };
    for t in tasks {
        let (l, e) = t.await??;
        load.latencies.extend(l);
        load.entries += e;
    }
    load.elapsed = started.elapsed();
    load.latencies.sort_unstable();
    Ok(load)
}

pub(crate) fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.suite.as_str() {
        "crud" => {}
        "search" => return crate::bench_search::run(&args.url, args.connections, args.seconds).await,
        "summary" => {
            let portal = args.portal_user.as_deref();
            return crate::bench_summary::run(&args.url, args.connections, args.seconds, portal).await;
        }
        other => bail!("--suite must be crud, search or summary, not {other}"),
    }
    let target = std::sync::Arc::new(parse_url(&args.url)?);
    let mut probe = connect(&target).await.with_context(|| format!("cannot reach {}", args.url))?;
    let (status, _) = send(&mut probe, &target, "GET", "metadata", None).await?;
    if status != StatusCode::OK {
        bail!("GET metadata answered {status}");
    }
    println!(
        "helse bench: {} connections, {} s per phase, against {}",
        args.connections, args.seconds, args.url
    );
    println!(
        "{:<8} {:>10} {:>10} {:>9} {:>9} {:>8}",
        "phase", "requests", "per sec", "p50 ms", "p99 ms", "errors"
    );
    let mut ids = std::sync::Arc::new(Vec::new());
    for (name, phase) in [("create", Phase::Create), ("read", Phase::Read), ("update", Phase::Update)] {
        let (mut r, elapsed) = run_phase(&target, &args, phase, &ids).await?;
        r.latencies_micros.sort_unstable();
        println!(
            "{name:<8} {:>10} {:>10.0} {:>9.2} {:>9.2} {:>8}",
            r.requests,
            r.requests as f64 / elapsed.as_secs_f64(),
            percentile(&r.latencies_micros, 0.50),
            percentile(&r.latencies_micros, 0.99),
            r.errors
        );
        if let Phase::Create = phase {
            if r.created_ids.is_empty() {
                bail!("no creates succeeded");
            }
            ids = std::sync::Arc::new(r.created_ids);
        }
    }
    transaction_phase(&target).await
}

/// One transaction Bundle of 1,000 entries: 500 Patients and 500 Observations referring to
/// them by `urn:uuid:`; prints how long it took, three times.
async fn transaction_phase(target: &Target) -> anyhow::Result<()> {
    let mut sender = connect(target).await?;
    for round in 0..3 {
        let mut entries = Vec::with_capacity(1000);
        for i in 0..500 {
            let full_url = format!("urn:uuid:00000000-0000-4000-8000-{round:04}{i:08}");
            entries.push(format!(
                r#"{{"fullUrl":"{full_url}","request":{{"method":"POST","url":"Patient"}},"resource":{}}}"#,
                patient(i, None)
            ));
            entries.push(format!(
                r#"{{"request":{{"method":"POST","url":"Observation"}},"resource":{{"resourceType":"Observation","status":"final","code":{{"coding":[{{"system":"http://loinc.org","code":"8867-4"}}]}},"subject":{{"reference":"{full_url}"}},"valueQuantity":{{"value":{},"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}}}}}"#,
                60 + i % 40
            ));
        }
        let body =
            format!(r#"{{"resourceType":"Bundle","type":"transaction","entry":[{}]}}"#, entries.join(","));
        let started = Instant::now();
        let (status, _) = send(&mut sender, target, "POST", "", Some(body)).await?;
        let elapsed = started.elapsed();
        if status != StatusCode::OK {
            bail!("transaction answered {status}");
        }
        println!("transaction of 1000 entries: {:.0} ms", elapsed.as_secs_f64() * 1000.0);
    }
    Ok(())
}
