//! `helse emergency`: the review queue of emergency access — who opened whose record without
//! a care relationship, when and why — and the administrator's verdict on each.

use clap::{Args, Subcommand};
use helse_fhir_r4::Instant;
use helse_server::emergency::{EMERGENCY_KEY_PREFIX, Review, list, review};

#[derive(Debug, Args)]
pub struct EmergencyArgs {
    #[command(flatten)]
    store: crate::stores::StoreArg,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Entries waiting for review (all entries with --all), oldest first, as JSON lines.
    List {
        #[arg(long)]
        all: bool,
    },
    /// Record the verdict on one entry (its key, as `list` prints it).
    Review {
        key: String,
        /// Who reviewed it.
        #[arg(long)]
        by: String,
        /// The access was not justified (default: it was).
        #[arg(long)]
        unjustified: bool,
        #[arg(long, default_value = "")]
        note: String,
    },
}

pub async fn run(args: EmergencyArgs) -> anyhow::Result<()> {
    crate::stores::with_store(&args.store.store, |store| Box::pin(act(store, args.action))).await
}

async fn act(store: &dyn helse_store::ResourceStore, action: Action) -> anyhow::Result<()> {
    match action {
        Action::List { all } => {
            for (key, entry) in list(store, all).await? {
                let key = key.strip_prefix(EMERGENCY_KEY_PREFIX).unwrap_or(&key);
                let mut line = serde_json::to_value(&entry)?;
                line["key"] = serde_json::json!(key);
                println!("{line}");
            }
        }
        Action::Review { key, by, unjustified, note } => {
            let verdict = Review { by, at: Instant::now().to_string(), justified: !unjustified, note };
            let entry = review(store, &key, verdict).await?;
            println!("reviewed: {}", serde_json::to_string(&entry)?);
        }
    }
    Ok(())
}
