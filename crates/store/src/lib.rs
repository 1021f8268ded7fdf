//! The storage interface every backend implements. Store crates never see HTTP types: they
//! take validated resources and hand back stored versions with their exact bytes.
//!
//! Invariants every backend keeps (pinned by the shared story suite in `helse-server`'s tests):
//! - a write is one transaction: the new version row and the current-version row change
//!   together, or not at all;
//! - version ids of a resource count 1, 2, 3… without gaps, deletes included;
//! - a precondition (`If-Match`) is checked inside the write's transaction, so concurrent
//!   writers never lose an update;
//! - the body stored is the body returned, byte for byte.

mod history_sql;
mod search;

use std::sync::Arc;

use async_trait::async_trait;
use helse_fhir_r4::{Instant, ResourceId, ResourceType};
use serde_json::Value;

pub use history_sql::{SqlArg, history_filter};
pub use search::{
    Clause, Condition, IndexEntry, IndexTable, IndexValue, Prefix, SearchQuery, SortKey,
    StringMatch, TokenSystem, UriMatch, order_by, search_filter,
};

/// One version of a resource as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    pub resource_type: ResourceType,
    pub id: ResourceId,
    pub version_id: u64,
    pub last_updated: Instant,
    pub method: Method,
    /// The JSON text with `id` and `meta` stamped; `None` for a delete.
    pub body: Option<Arc<str>>,
}

impl StoredVersion {
    pub fn is_deleted(&self) -> bool {
        self.body.is_none()
    }
}

/// The interaction that produced a version (history entries report it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => return None,
        })
    }
}

/// A write the store performs atomically.
#[derive(Debug, Clone)]
pub enum Write {
    /// Create with a server-assigned id.
    Create {
        resource_type: ResourceType,
        id: ResourceId,
        resource: Value,
    },
    /// Update, or create with the client's id when none exists.
    Update {
        resource_type: ResourceType,
        id: ResourceId,
        resource: Value,
        method: Method,
        if_match: Option<u64>,
    },
    Delete {
        resource_type: ResourceType,
        id: ResourceId,
        if_match: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Created(StoredVersion),
    Updated(StoredVersion),
    Deleted(StoredVersion),
    /// Delete of something absent or already deleted: nothing changed.
    NothingToDelete,
}

impl WriteOutcome {
    pub fn version(&self) -> Option<&StoredVersion> {
        match self {
            WriteOutcome::Created(v) | WriteOutcome::Updated(v) | WriteOutcome::Deleted(v) => {
                Some(v)
            }
            WriteOutcome::NothingToDelete => None,
        }
    }
}

/// Which versions a history request covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryScope {
    System,
    Type(ResourceType),
    Instance(ResourceType, ResourceId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    pub scope: HistoryScope,
    /// Only versions written at or after this instant.
    pub since: Option<Instant>,
    /// Only versions current at some point in `[start, end)` (`_at`).
    pub at: Option<(Instant, Instant)>,
    /// Page size.
    pub count: usize,
    /// Continue after this cursor (exclusive), from a previous page; newest first.
    pub before_seq: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub versions: Vec<(i64, StoredVersion)>,
    /// Cursor for the next page, when there is one.
    pub next_before_seq: Option<i64>,
    pub total: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("version conflict: expected version {expected}, current is {current:?}")]
    VersionConflict { expected: u64, current: Option<u64> },
    #[error("the store is shutting down")]
    ShuttingDown,
    #[error("invalid store location: {0}")]
    Config(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// `If-Match` must name the current version of a live resource. `current` is
/// `(version_id, deleted)` of the current row, read inside the write's transaction.
pub fn check_precondition(if_match: Option<u64>, current: Option<(u64, bool)>) -> StoreResult<()> {
    match (if_match, current) {
        (None, _) => Ok(()),
        (Some(expected), Some((v, false))) if v == expected => Ok(()),
        (Some(expected), current) => Err(StoreError::VersionConflict {
            expected,
            current: current.filter(|(_, deleted)| !deleted).map(|(v, _)| v),
        }),
    }
}

#[async_trait]
pub trait ResourceStore: Send + Sync + 'static {
    /// The current version (which may be a delete marker), or `None` if never written.
    async fn read(
        &self,
        resource_type: ResourceType,
        id: &ResourceId,
    ) -> StoreResult<Option<StoredVersion>>;
    async fn vread(
        &self,
        resource_type: ResourceType,
        id: &ResourceId,
        version_id: u64,
    ) -> StoreResult<Option<StoredVersion>>;
    async fn write(&self, write: Write) -> StoreResult<WriteOutcome>;
    async fn history(&self, query: &HistoryQuery) -> StoreResult<HistoryPage>;
    /// Current, non-deleted resources of a type, in write order, for listing and paging.
    async fn list(
        &self,
        resource_type: ResourceType,
        count: usize,
        after_seq: Option<i64>,
    ) -> StoreResult<(Vec<(i64, StoredVersion)>, u64)>;
    /// Whether the store answers queries (readiness).
    async fn ping(&self) -> StoreResult<()>;
    /// Finishes queued writes and releases the store.
    async fn close(&self);
    fn backend_name(&self) -> &'static str;
}

/// Where a store lives, parsed from `sqlite:PATH` or `postgres://…`.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl StoreLocation {
    pub fn parse(s: &str) -> StoreResult<Self> {
        if let Some(path) = s.strip_prefix("sqlite:") {
            Ok(StoreLocation::Sqlite(path.trim_start_matches("//").into()))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(StoreLocation::Postgres(s.to_owned()))
        } else {
            Err(StoreError::Config(format!(
                "'{}' is neither sqlite:PATH nor postgres://…",
                redact_url(s)
            )))
        }
    }
}

/// Never print a database password.
impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            StoreLocation::Postgres(url) => write!(f, "{}", redact_url(url)),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; also `password=` parameters.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        out = format!("{scheme}://{user}:***@{host}");
    }
    if let Some(i) = out.find("password=") {
        let end = out[i..].find('&').map_or(out.len(), |e| i + e);
        out = format!("{}password=***{}", &out[..i], &out[end..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_redact() {
        assert_eq!(
            StoreLocation::parse("sqlite:./data/x.db").unwrap(),
            StoreLocation::Sqlite("./data/x.db".into())
        );
        let pg = StoreLocation::parse("postgres://helse:s3cret@localhost/helse").unwrap();
        assert_eq!(format!("{pg:?}"), "postgres://helse:***@localhost/helse");
        assert_eq!(
            redact_url("postgres://h@x/db?password=abc&sslmode=off"),
            "postgres://h@x/db?password=***&sslmode=off"
        );
        assert!(StoreLocation::parse("mysql://x").is_err());
    }
}
