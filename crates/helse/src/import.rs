//! `helse import`: loads NDJSON and Bundle files (gzipped or not, files or directories) into a
//! store directly or into a running server, with progress, a rejection report, and a
//! checkpoint so that an interrupted import resumes where it stopped.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use helse_import::{
    Checkpoint, HttpSink, ImportOptions, Input, Item, Progress, Sink, StoreSink, Summary,
    default_checkpoint_path, discover, fingerprint,
};
use helse_store::ResourceStore;
use helse_synth::Population;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files or directories (.ndjson, .jsonl, .json; each optionally .gz).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Import straight into this store (`sqlite:PATH` or `postgres://…`); the server may be
    /// running beside it.
    #[arg(long, env = "HELSE_STORE", conflicts_with = "server")]
    store: Option<String>,
    /// Import through a running server's FHIR API (its base URL), as batch Bundles.
    #[arg(long)]
    server: Option<String>,
    /// An access token for `--server` (from its /auth/token; tokens last five minutes, so
    /// large loads go better with `--store`).
    #[arg(long, env = "HELSE_TOKEN", requires = "server")]
    token: Option<String>,
    /// Resources per transaction: default 5,000 into a store (larger commits dirty each
    /// index page once for many rows), 1,000 per batch Bundle to a server.
    #[arg(long)]
    batch: Option<usize>,
    /// Where to keep the checkpoint (default: under ~/.cache/helse/import).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Start from the beginning even if a checkpoint says part is in (nothing is written
    /// twice either way; the checkpoint only saves work).
    #[arg(long)]
    no_resume: bool,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    let sources = discover(&args.paths)?;
    anyhow::ensure!(!sources.is_empty(), "no .ndjson or .json files under the given paths");
    let (sink, destination): (Arc<dyn Sink>, String) = match (&args.store, &args.server) {
        (_, Some(url)) => (Arc::new(HttpSink::new(url, args.token.clone())), url.clone()),
        (Some(store), None) => {
            (Arc::new(StoreSink { store: crate::stores::open(store).await? }), helse_store::redact_url(store))
        }
        (None, None) => anyhow::bail!("say where to import: --store LOCATION or --server URL"),
    };
    let fingerprint = fingerprint(&sources, &destination);
    let checkpoint = Checkpoint {
        path: args.checkpoint.clone().unwrap_or_else(|| default_checkpoint_path(&fingerprint)),
        fingerprint,
    };
    if args.no_resume {
        checkpoint.finish()?;
    }
    eprintln!("importing {} files into {destination}", sources.len());
    let batch = args.batch.unwrap_or(if args.server.is_some() { 1000 } else { 5000 });
    let options = ImportOptions { batch, checkpoint: Some(checkpoint), ..ImportOptions::default() };
    let summary = helse_import::import(sources, sink, options, report).await?;
    crate::progress::done();
    print_summary(&summary);
    anyhow::ensure!(
        summary.progress.created + summary.progress.already_present > 0 || summary.progress.rejected == 0,
        "nothing could be imported"
    );
    Ok(())
}

/// Loads a generated population into a store (for `helse synth --store` and `serve --demo`).
pub async fn into_store(store: Arc<dyn ResourceStore>, population: Arc<Population>) -> anyhow::Result<()> {
    let patients = population.config().patients;
    let p = population.clone();
    let infrastructure = population.infrastructure().to_vec().into_iter();
    let items = infrastructure.chain((0..patients).flat_map(move |i| p.patient(i))).map(|resource| Item {
        origin: "synth".into(),
        resource: Ok(resource),
        id: None,
    });
    let sink = Arc::new(StoreSink { store: store.clone() });
    let options = ImportOptions { batch: 5000, ..ImportOptions::default() };
    let summary = helse_import::import(Input::Items(Box::new(items)), sink, options, report).await?;
    crate::progress::done();
    print_summary(&summary);
    store.close().await;
    anyhow::ensure!(summary.progress.rejected == 0, "generated resources were rejected");
    Ok(())
}

fn report(p: &Progress) {
    // Twice a second is enough for a person; more only fills logs.
    static LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().expect("not poisoned");
    if last.is_some_and(|t| t.elapsed() < std::time::Duration::from_millis(500)) {
        return;
    }
    *last = Some(std::time::Instant::now());
    let eta = p.eta().map(|d| format!(", {} left", crate::progress::seconds(d))).unwrap_or_default();
    let fraction = if p.bytes_total == 0 { 0.0 } else { p.bytes_read as f64 / p.bytes_total as f64 };
    crate::progress::bar(
        fraction,
        &format!(
            "{} created, {} already in, {} rejected, {:.0} resources/s{eta}",
            p.created,
            p.already_present,
            p.rejected,
            p.per_second()
        ),
    );
}

fn print_summary(s: &Summary) {
    let p = &s.progress;
    println!(
        "{} created, {} already present, {} rejected in {:.1} s ({:.0} resources/s){}",
        p.created,
        p.already_present,
        p.rejected,
        p.elapsed.as_secs_f64(),
        p.per_second(),
        if p.resumed_past > 0 { format!("; resumed after {} items", p.resumed_past) } else { String::new() }
    );
    if p.rejected > 0 {
        println!("rejected, by reason:");
        for (reason, n) in &s.rejected_by_reason {
            println!("  {n:>7}  {reason}");
        }
        println!("first rejections:");
        for r in s.rejections.iter().take(10) {
            println!("  {}: {}", r.origin, r.reason);
        }
    }
}
