//! `helse audit`: checks the access log's hash chain end to end, and lists the entries about
//! one patient ("who looked at my data").

use clap::{Args, Subcommand};
use helse_store::{AUDIT_GENESIS, ResourceStore, audit_hash};

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    store: crate::stores::StoreArg,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Recompute every entry's hash from the first; exits non-zero at the first that does
    /// not match (an entry changed, removed or reordered).
    Verify,
    /// The entries about one patient, newest first, as JSON lines.
    Patient {
        id: String,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

pub async fn run(args: AuditArgs) -> anyhow::Result<()> {
    crate::stores::with_store(&args.store.store, |store| Box::pin(act(store, args.action))).await
}

async fn act(store: &dyn ResourceStore, action: Action) -> anyhow::Result<()> {
    match action {
        Action::Verify => verify(store).await,
        Action::Patient { id, limit } => {
            for row in store.audit_for_patient(&id, limit).await? {
                println!("{}", row.record.event);
            }
            Ok(())
        }
    }
}

async fn verify(store: &dyn ResourceStore) -> anyhow::Result<()> {
    let mut previous = AUDIT_GENESIS.to_owned();
    let (mut after, mut checked) = (0i64, 0u64);
    loop {
        let rows = store.audit_entries(after, 10_000).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for row in &rows {
            let expected = audit_hash(&previous, &row.record);
            anyhow::ensure!(
                expected == row.hash,
                "the access log is broken at entry {} (after {checked} good entries): its hash does not follow from the entries before it",
                row.seq
            );
            previous = row.hash.clone();
            checked += 1;
        }
    }
    println!("the access log is intact: {checked} entries");
    Ok(())
}
