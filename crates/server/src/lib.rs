//! The Helse FHIR server: configuration, startup and the HTTP API.

pub mod access;
pub mod accounts;
pub mod audit;
pub mod capability;
pub mod consent;
pub mod describe;
pub mod donor;
pub mod emergency;
pub mod error;
pub mod html;
pub mod interaction;
pub mod metrics;
pub mod negotiation;
pub mod reach;
pub mod response;
pub mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use helse_store::{ResourceStore, StoreError, StoreLocation};
use helse_store_sqlite::{Durability, SqliteStore};
use serde_json::Value;

pub use helse_store_sqlite::Durability as SqliteDurability;

/// Bounds on what one request may cost.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_json_depth: usize,
    pub request_timeout: Duration,
    pub default_page_size: usize,
    pub max_page_size: usize,
    /// How long finished bulk exports (manifest and files) are kept.
    pub export_retention: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // HL7's own definition Bundles reach 35 MB; bulk import is the path for more.
            max_body_bytes: 64 * 1024 * 1024,
            max_json_depth: 64,
            request_timeout: Duration::from_secs(30),
            default_page_size: 50,
            max_page_size: 1000,
            export_retention: Duration::from_secs(24 * 3600),
        }
    }
}

/// Whether requests need an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// SMART on FHIR: patient data only with a token whose scopes cover the request.
    Enforced,
    /// Development: everything open. Refused unless listening on loopback.
    Disabled,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Public base URL (`https://host/fhir`); derived from the Host header when unset.
    pub base_url: Option<String>,
    pub store: StoreLocation,
    pub sqlite_durability: Durability,
    pub postgres_pool_size: usize,
    pub limits: Limits,
    pub auth: AuthMode,
    /// External OpenID Connect issuers whose tokens are accepted.
    pub trusted_issuers: Vec<helse_auth::TrustedIssuer>,
}

pub struct AppState {
    pub store: Arc<dyn ResourceStore>,
    pub base_url: Option<String>,
    pub limits: Limits,
    pub metrics: metrics::Metrics,
    pub capability_statement: Value,
    /// The access-token signing secret; `None` under `--no-auth`.
    pub token_keys: Option<helse_auth::TokenKeys>,
    pub trusted_issuers: Vec<helse_auth::TrustedIssuer>,
    pub audit: audit::AuditLog,
}

/// Opens (and migrates) a store; `sqlite_durability` and `postgres_pool_size` apply to the
/// one kind they name.
pub async fn open_store(
    location: &StoreLocation,
    sqlite_durability: Durability,
    postgres_pool_size: usize,
) -> Result<Arc<dyn ResourceStore>, StoreError> {
    Ok(match location {
        StoreLocation::Sqlite(path) => {
            let path = path.clone();
            let durability = sqlite_durability;
            Arc::new(
                tokio::task::spawn_blocking(move || SqliteStore::open(&path, durability))
                    .await
                    .map_err(|e| StoreError::Backend(e.to_string()))??,
            )
        }
        StoreLocation::Postgres(url) => {
            Arc::new(helse_store_postgres::PostgresStore::connect(url, postgres_pool_size).await?)
        }
    })
}

/// A server bound to its socket, ready to run.
pub struct Server {
    pub local_addr: SocketAddr,
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
}

impl Server {
    pub async fn bind(config: &ServerConfig) -> Result<Self, StartupError> {
        if config.auth == AuthMode::Disabled && !config.listen.ip().is_loopback() {
            return Err(StartupError::OpenOffLoopback(config.listen));
        }
        let store = open_store(&config.store, config.sqlite_durability, config.postgres_pool_size)
            .await
            .map_err(StartupError::Store)?;
        let token_keys = match config.auth {
            AuthMode::Enforced => Some(token_keys(store.as_ref()).await.map_err(StartupError::Store)?),
            AuthMode::Disabled => {
                tracing::warn!(listen = %config.listen, "authorisation is off (--no-auth): anyone who can reach this port can read and change every record");
                None
            }
        };
        let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(StartupError::Bind)?;
        let local_addr = listener.local_addr().map_err(StartupError::Bind)?;
        let audit = audit::AuditLog::start(store.clone());
        let state = Arc::new(AppState {
            base_url: config.base_url.clone(),
            limits: config.limits.clone(),
            metrics: metrics::Metrics::default(),
            capability_statement: capability::capability_statement(
                config.base_url.as_deref(),
                config.auth == AuthMode::Enforced,
            ),
            token_keys,
            trusted_issuers: config.trusted_issuers.clone(),
            audit,
            store,
        });
        Ok(Server { local_addr, listener, state })
    }

    pub fn store(&self) -> Arc<dyn ResourceStore> {
        self.state.store.clone()
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests (and so their writes)
    /// finish and closes the store.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = routes::router(self.state.clone());
        // Bulk export upkeep: take over jobs whose server died, delete expired ones.
        let (store, retention) = (self.state.store.clone(), self.state.limits.export_retention);
        let keeper = tokio::spawn(async move {
            let period = (retention / 4).clamp(Duration::from_millis(200), Duration::from_secs(10));
            loop {
                routes::export::keep_jobs(store.clone(), retention).await;
                tokio::time::sleep(period).await;
            }
        });
        // The peer address goes into the access log.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(self.listener, app).with_graceful_shutdown(shutdown).await;
        keeper.abort();
        // Reads' access-log entries still queued are stored before the store closes.
        if self.state.audit.flush().await.is_err() {
            tracing::error!("access-log entries still queued at shutdown were lost");
        }
        self.state.store.close().await;
        result
    }
}

/// Where the token signing secret is kept in the store.
const TOKEN_SECRET_KEY: &str = "auth/token-signing-secret";

/// The token signing secret every server on the store shares: made by the first to start.
async fn token_keys(store: &dyn ResourceStore) -> Result<helse_auth::TokenKeys, StoreError> {
    let now = helse_fhir_r4::Instant::now();
    store.kv_put_new(TOKEN_SECRET_KEY, &helse_auth::new_secret(), None, now).await?;
    let secret = store
        .kv_get(TOKEN_SECRET_KEY, now)
        .await?
        .ok_or_else(|| StoreError::Backend("the token signing secret vanished".into()))?;
    Ok(helse_auth::TokenKeys::from_secret(&secret))
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the store: {0}")]
    Store(StoreError),
    #[error("cannot listen: {0}")]
    Bind(std::io::Error),
    #[error(
        "--no-auth opens every record to anyone who can connect, so it listens on loopback only, not {0}"
    )]
    OpenOffLoopback(SocketAddr),
}
