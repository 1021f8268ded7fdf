//! `helse synth`: writes a synthetic Norwegian population as NDJSON, one file per resource
//! type (the Bulk Data layout `helse import` reads), or straight into a store.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use helse_synth::{Population, SynthConfig};
use serde_json::Value;

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// How many patients.
    #[arg(long, default_value_t = 100)]
    patients: usize,
    /// Same seed, same population.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Years of history per patient (100: whole lives).
    #[arg(long, default_value_t = 100)]
    years: u32,
    /// Directory for `Type.ndjson` files.
    #[arg(long, conflicts_with = "store")]
    out: Option<PathBuf>,
    /// Gzip the files (`Type.ndjson.gz`).
    #[arg(long, requires = "out")]
    gzip: bool,
    /// Import straight into this store (`sqlite:PATH` or `postgres://…`) instead of writing files.
    #[arg(long, env = "HELSE_STORE")]
    store: Option<String>,
}

/// Patients generated per round; each round is spread over the cores and written in order.
const ROUND: usize = 256;

pub async fn run(args: SynthArgs) -> anyhow::Result<()> {
    let config =
        SynthConfig { seed: args.seed, patients: args.patients, years: args.years, ..SynthConfig::default() };
    let population = Arc::new(Population::new(config));
    match (&args.out, &args.store) {
        (Some(dir), _) => write_files(&population, dir, args.gzip),
        (None, Some(store)) => {
            let store = crate::stores::open(store).await?;
            crate::import::into_store(store, population).await
        }
        (None, None) => anyhow::bail!("say where the population goes: --out DIR or --store LOCATION"),
    }
}

fn write_files(population: &Population, dir: &PathBuf, gzip: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files: BTreeMap<String, BufWriter<Output>> = BTreeMap::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut write = |resources: Vec<(String, String)>| -> anyhow::Result<u64> {
        let n = resources.len() as u64;
        for (ty, line) in resources {
            if !files.contains_key(&ty) {
                let name = if gzip { format!("{ty}.ndjson.gz") } else { format!("{ty}.ndjson") };
                let file = File::create(dir.join(&name)).with_context(|| format!("creating {name}"))?;
                let sink = if gzip {
                    Output::Gzip(flate2::write::GzEncoder::new(file, flate2::Compression::fast()))
                } else {
                    Output::Plain(file)
                };
                files.insert(ty.clone(), BufWriter::with_capacity(1 << 20, sink));
            }
            let f = files.get_mut(&ty).expect("opened above");
            f.write_all(line.as_bytes())?;
            f.write_all(b"\n")?;
            *counts.entry(ty).or_default() += 1;
        }
        Ok(n)
    };
    let started = Instant::now();
    let mut total = write(serialize(population.infrastructure().to_vec()))?;
    let patients = population.config().patients;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    for round in (0..patients).step_by(ROUND) {
        let end = (round + ROUND).min(patients);
        let parts: Vec<Vec<(String, String)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || {
                        (round + t..end)
                            .step_by(threads)
                            .map(|i| serialize(population.patient(i)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            // Reassemble in patient order, whichever thread made each.
            let mut per_thread: Vec<std::vec::IntoIter<Vec<(String, String)>>> =
                handles.into_iter().map(|h| h.join().expect("generator thread").into_iter()).collect();
            (round..end).map(|i| per_thread[(i - round) % threads].next().expect("one per patient")).collect()
        });
        for part in parts {
            total += write(part)?;
        }
        crate::progress::bar(
            end as f64 / patients.max(1) as f64,
            &format!(
                "{end}/{patients} patients, {total} resources, {:.0}/s",
                total as f64 / started.elapsed().as_secs_f64()
            ),
        );
    }
    for (_, f) in files {
        match f.into_inner().map_err(|e| anyhow::anyhow!("flushing: {}", e.error()))? {
            Output::Plain(file) => file.sync_all()?,
            Output::Gzip(gz) => gz.finish()?.sync_all()?,
        }
    }
    crate::progress::done();
    let total: u64 = counts.values().sum();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{total} resources for {patients} patients in {secs:.1} s ({:.0} resources/s) in {}",
        total as f64 / secs,
        dir.display()
    );
    for (ty, n) in &counts {
        println!("  {ty:<20} {n:>9}");
    }
    Ok(())
}

enum Output {
    Plain(File),
    Gzip(flate2::write::GzEncoder<File>),
}

impl std::io::Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Output::Plain(f) => f.write(buf),
            Output::Gzip(g) => g.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::Plain(f) => f.flush(),
            Output::Gzip(g) => g.flush(),
        }
    }
}

fn serialize(resources: Vec<Value>) -> Vec<(String, String)> {
    resources
        .into_iter()
        .map(|r| {
            let ty = r["resourceType"].as_str().unwrap_or("Unknown").to_owned();
            (ty, r.to_string())
        })
        .collect()
}
