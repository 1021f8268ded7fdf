//! Opening a store named on the command line, for the commands that work on one directly.

use std::sync::Arc;

use helse_server::{AuthMode, ServerConfig, SqliteDurability};
use helse_store::{ResourceStore, StoreLocation};

pub async fn open(location: &str) -> anyhow::Result<Arc<dyn ResourceStore>> {
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse()?,
        base_url: None,
        store: StoreLocation::parse(location)?,
        sqlite_durability: SqliteDurability::Full,
        postgres_pool_size: 8,
        limits: Default::default(),
        auth: AuthMode::Enforced,
        trusted_issuers: Vec::new(),
    };
    Ok(helse_server::open_store(&config).await?)
}
