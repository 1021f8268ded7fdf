//! `helse reindex`: rebuilds every search index row from the stored resources, for example
//! after the search parameter definitions change. It runs beside a live server: each
//! resource's rows are replaced in their own write, only if the version read is still the
//! current one, so a concurrent update is never overwritten with stale rows.

use std::time::{Duration, Instant};

use clap::Args;
use helse_store::{Write, WriteOutcome};

#[derive(Debug, Args)]
pub struct ReindexArgs {
    #[command(flatten)]
    store: crate::stores::StoreArg,
    /// Resources read and rewritten per batch.
    #[arg(long, default_value_t = 500)]
    batch: usize,
}

pub async fn run(args: ReindexArgs) -> anyhow::Result<()> {
    let store = crate::stores::open(&args.store.store).await?;
    let total = store.count_current().await?;
    let started = Instant::now();
    let (mut done, mut skipped, mut after) = (0u64, 0u64, 0i64);
    let mut last_report = Instant::now() - Duration::from_secs(1);
    loop {
        let batch = store.scan_current(after, args.batch.max(1)).await?;
        let Some((last, _)) = batch.last() else { break };
        after = *last;
        // Sent together, the writes share commits (SQLite) or connections (PostgreSQL).
        let writes = batch.into_iter().map(|(_, v)| {
            let store = store.clone();
            async move {
                let resource: serde_json::Value = serde_json::from_str(v.body.as_deref().unwrap_or("{}"))?;
                let index = helse_search::index_entries(&resource);
                let write = Write::Reindex {
                    resource_type: v.resource_type,
                    id: v.id,
                    version_id: v.version_id,
                    index,
                };
                anyhow::Ok(store.write(write).await?)
            }
        });
        for outcome in futures::future::try_join_all(writes).await? {
            match outcome {
                WriteOutcome::Reindexed(true) => done += 1,
                _ => skipped += 1,
            }
        }
        if last_report.elapsed() >= Duration::from_millis(500) {
            report(done + skipped, total, started);
            last_report = Instant::now();
        }
    }
    report(done + skipped, total, started);
    crate::progress::done();
    println!(
        "reindexed {done} resources in {:.1} s; {skipped} skipped because a newer version was written meanwhile",
        started.elapsed().as_secs_f64()
    );
    store.close().await;
    Ok(())
}

fn report(seen: u64, total: u64, started: Instant) {
    let rate = seen as f64 / started.elapsed().as_secs_f64().max(0.001);
    let left = Duration::from_secs_f64(total.saturating_sub(seen) as f64 / rate.max(1.0));
    let fraction = if total == 0 { 1.0 } else { seen as f64 / total as f64 };
    crate::progress::bar(
        fraction,
        &format!("{seen}/{total} resources, {rate:.0}/s, {} left", crate::progress::seconds(left)),
    );
}
