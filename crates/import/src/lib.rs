//! `helse-import`: bulk loading of FHIR resources.
//!
//! A pipeline with bounded queues, so memory stays flat however large the input: one thread
//! reads and parses the files in order, worker threads validate and index batches in
//! parallel, and the writer hands batches to the destination in input order, each as one
//! transaction. Writes are create-if-absent, so an import repeated or resumed after a crash
//! ends with exactly one copy of everything. A checkpoint file (items committed so far) lets a
//! resumed import skip validated work instead of redoing it.

mod checkpoint;
pub mod prepare;
pub mod sink;
pub mod source;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

pub use checkpoint::Checkpoint;
pub use prepare::{Ready, Rejected};
pub use sink::{HttpSink, Landed, Sink, StoreSink};
pub use source::{Format, Item, Source, discover};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: not .ndjson, .jsonl or .json (optionally .gz)")]
    UnknownFormat(String),
    #[error("store: {0}")]
    Store(helse_store::StoreError),
    #[error("server: {0}")]
    Http(String),
    #[error("checkpoint {0}: {1}")]
    Checkpoint(String, String),
}

#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Resources per transaction.
    pub batch: usize,
    /// Threads validating and indexing.
    pub workers: usize,
    pub checkpoint: Option<Checkpoint>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ImportOptions { batch: 1000, workers: cores, checkpoint: None }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub bytes_read: u64,
    pub bytes_total: u64,
    pub created: u64,
    pub already_present: u64,
    pub rejected: u64,
    /// Items passed over because the checkpoint says they are in.
    pub resumed_past: u64,
    pub elapsed: Duration,
}

impl Progress {
    pub fn processed(&self) -> u64 {
        self.created + self.already_present + self.rejected
    }

    pub fn per_second(&self) -> f64 {
        self.processed() as f64 / self.elapsed.as_secs_f64().max(0.001)
    }

    /// Time left, from the share of input bytes read so far.
    pub fn eta(&self) -> Option<Duration> {
        let done = self.bytes_read as f64 / self.bytes_total.max(1) as f64;
        (done > 0.0).then(|| self.elapsed.mul_f64(((1.0 - done) / done).max(0.0)))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub progress: Progress,
    /// The first rejections in full, for the report.
    pub rejections: Vec<Rejected>,
    /// How many rejections per reason (the reason's text up to its first detail).
    pub rejected_by_reason: BTreeMap<String, u64>,
}

const REJECTIONS_KEPT: usize = 100;

struct Prepared {
    seq: u64,
    /// Items this batch covers (ready and rejected), for the checkpoint.
    items: u64,
    ready: Vec<Ready>,
    rejected: Vec<Rejected>,
}

/// What to import: files, or resources made in memory (a generated population).
pub enum Input {
    Files(Vec<Source>),
    Items(Box<dyn Iterator<Item = Item> + Send>),
}

impl From<Vec<Source>> for Input {
    fn from(sources: Vec<Source>) -> Self {
        Input::Files(sources)
    }
}

/// Imports `input` into `sink`; `on_progress` is called after every batch.
pub async fn import(
    input: impl Into<Input>,
    sink: Arc<dyn Sink>,
    options: ImportOptions,
    mut on_progress: impl FnMut(&Progress),
) -> Result<Summary, ImportError> {
    let started = Instant::now();
    let bytes_read = Arc::new(AtomicU64::new(0));
    let mut summary = Summary::default();
    let input = input.into();
    if let Input::Files(sources) = &input {
        summary.progress.bytes_total = sources.iter().map(|s| s.bytes).sum();
    }
    let resume_from = match &options.checkpoint {
        Some(c) => c.load()?,
        None => 0,
    };
    summary.progress.resumed_past = resume_from;

    // Reader → workers: batches of items, numbered.
    let (raw_tx, raw_rx) = mpsc::sync_channel::<(u64, Vec<Item>)>(options.workers * 2);
    let batch_size = options.batch.max(1);
    let counter = bytes_read.clone();
    let reader = std::thread::spawn(move || -> Result<(), ImportError> {
        let (mut seq, mut seen, mut batch) = (0u64, 0u64, Vec::with_capacity(batch_size));
        let mut open = true;
        let mut take = |item: Item| {
            seen += 1;
            if seen <= resume_from {
                return true;
            }
            batch.push(item);
            if batch.len() == batch_size {
                open =
                    raw_tx.send((seq, std::mem::replace(&mut batch, Vec::with_capacity(batch_size)))).is_ok();
                seq += 1;
            }
            open
        };
        match input {
            Input::Files(sources) => {
                for source in &sources {
                    let mut stopped = false;
                    source::read(source, counter.clone(), &mut |item| {
                        let more = take(item);
                        stopped = !more;
                        more
                    })?;
                    if stopped {
                        return Ok(());
                    }
                }
            }
            Input::Items(items) => {
                for item in items {
                    if !take(item) {
                        return Ok(());
                    }
                }
            }
        }
        if !batch.is_empty() {
            let _ = raw_tx.send((seq, batch));
        }
        Ok(())
    });

    // Workers → writer: validated, indexed batches, in any order.
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<Prepared>(options.workers * 2);
    let raw_rx = Arc::new(Mutex::new(raw_rx));
    let with_index = sink.needs_index();
    let workers: Vec<_> = (0..options.workers.max(1))
        .map(|_| {
            let raw_rx = raw_rx.clone();
            let ready_tx = ready_tx.clone();
            std::thread::spawn(move || {
                loop {
                    let next = raw_rx.lock().expect("not poisoned").recv();
                    let Ok((seq, items)) = next else { return };
                    let mut p =
                        Prepared { seq, items: items.len() as u64, ready: Vec::new(), rejected: Vec::new() };
                    for item in items {
                        match prepare::prepare(item, with_index) {
                            Ok(r) => p.ready.push(r),
                            Err(r) => p.rejected.push(r),
                        }
                    }
                    if ready_tx.blocking_send(p).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(ready_tx);

    // The writer: in input order, one batch at a time.
    let mut waiting: BTreeMap<u64, Prepared> = BTreeMap::new();
    let (mut next, mut committed) = (0u64, resume_from);
    let mut failure = None;
    'receive: while let Some(p) = ready_rx.recv().await {
        waiting.insert(p.seq, p);
        while let Some(p) = waiting.remove(&next) {
            next += 1;
            // The same resource twice in one batch (Synthea repeats shared resources): the
            // first is written, the rest are already present, as they would be a batch later.
            let mut keys = std::collections::HashSet::new();
            let (ready, repeats): (Vec<Ready>, Vec<Ready>) =
                p.ready.into_iter().partition(|r| keys.insert((r.resource_type, r.id.clone())));
            summary.progress.already_present += repeats.len() as u64;
            let origins: Vec<String> = ready.iter().map(|r| r.origin.clone()).collect();
            let landed = match sink.write(ready).await {
                Ok(l) => l,
                Err(e) => {
                    failure = Some(e);
                    break 'receive;
                }
            };
            for (origin, l) in origins.into_iter().zip(landed) {
                match l {
                    Landed::Created => summary.progress.created += 1,
                    Landed::AlreadyPresent => summary.progress.already_present += 1,
                    Landed::Rejected(reason) => record(&mut summary, Rejected { origin, reason }),
                }
            }
            for r in p.rejected {
                record(&mut summary, r);
            }
            committed += p.items;
            if let Some(c) = &options.checkpoint {
                c.save(committed)?;
            }
            summary.progress.bytes_read = bytes_read.load(Ordering::Relaxed);
            summary.progress.elapsed = started.elapsed();
            on_progress(&summary.progress);
        }
    }
    drop(ready_rx);
    for w in workers {
        let _ = w.join();
    }
    let read = reader.join().map_err(|_| ImportError::Http("the reader thread panicked".into()))?;
    if let Some(e) = failure {
        return Err(e);
    }
    read?;
    if let Some(c) = &options.checkpoint {
        c.finish()?;
    }
    summary.progress.bytes_read = bytes_read.load(Ordering::Relaxed);
    summary.progress.elapsed = started.elapsed();
    Ok(summary)
}

fn record(summary: &mut Summary, r: Rejected) {
    summary.progress.rejected += 1;
    let reason = r.reason.split(": ").next().unwrap_or(&r.reason).to_owned();
    *summary.rejected_by_reason.entry(reason).or_default() += 1;
    if summary.rejections.len() < REJECTIONS_KEPT {
        summary.rejections.push(r);
    }
}

/// A fingerprint of the input and destination, so a checkpoint is only trusted for the very
/// same import.
pub fn fingerprint(sources: &[Source], destination: &str) -> String {
    let mut parts: Vec<String> = vec![destination.to_owned()];
    for s in sources {
        let modified = std::fs::metadata(&s.path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        parts.push(format!("{}|{}|{}", s.path.display(), s.bytes, modified));
    }
    let text = parts.join("\n");
    let h = text
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3));
    format!("{h:016x}")
}

/// Where a checkpoint lives by default: the user's cache, keyed by the fingerprint.
pub fn default_checkpoint_path(fingerprint: &str) -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("helse").join("import").join(format!("{fingerprint}.checkpoint"))
}

#[cfg(test)]
mod tests;
