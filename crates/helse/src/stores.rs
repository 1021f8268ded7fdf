//! Opening a store named on the command line, for the commands that work on one directly.

use std::sync::Arc;

use helse_server::SqliteDurability;
use helse_store::{ResourceStore, StoreLocation};

pub async fn open(location: &str) -> anyhow::Result<Arc<dyn ResourceStore>> {
    Ok(helse_server::open_store(&StoreLocation::parse(location)?, SqliteDurability::Full, 8).await?)
}
