//! Opening a store named on the command line, for the commands that work on one directly.

use std::sync::Arc;

use helse_server::SqliteDurability;
use helse_store::{ResourceStore, StoreLocation};

/// `--store` of the commands that work on a store directly.
#[derive(Debug, clap::Args)]
pub struct StoreArg {
    /// Store: `sqlite:PATH` or `postgres://user@host/db`.
    #[arg(long, env = "HELSE_STORE", default_value = "sqlite:./helse-data/helse.db")]
    pub store: String,
}

pub async fn open(location: &str) -> anyhow::Result<Arc<dyn ResourceStore>> {
    Ok(helse_server::open_store(&StoreLocation::parse(location)?, SqliteDurability::Full, 8).await?)
}

/// Opens the store, runs `work` on it and closes it, whatever `work` returned.
pub async fn with_store<T>(
    location: &str,
    work: impl for<'s> FnOnce(&'s dyn ResourceStore) -> futures::future::BoxFuture<'s, anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let store = open(location).await?;
    let result = work(store.as_ref()).await;
    store.close().await;
    result
}
