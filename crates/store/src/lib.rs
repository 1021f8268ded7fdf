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
    Clause, Condition, Cursor, IndexEntry, IndexTable, IndexValue, Position, Prefix, SearchQuery, SortKey,
    SortValue, SortValueKind, StringMatch, TokenSystem, UriMatch, order_by, search_filter,
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
        /// Search index rows for the new resource.
        index: Vec<IndexEntry>,
    },
    /// Update, or create with the client's id when none exists.
    Update {
        resource_type: ResourceType,
        id: ResourceId,
        resource: Value,
        method: Method,
        if_match: Option<u64>,
        /// Search index rows for the new current version.
        index: Vec<IndexEntry>,
    },
    Delete {
        resource_type: ResourceType,
        id: ResourceId,
        if_match: Option<u64>,
    },
    /// Create with the given id unless a resource with that id has ever been written: how a
    /// bulk import writes, so that an import run again (after a crash, say) skips what is in.
    CreateIfAbsent {
        resource_type: ResourceType,
        id: ResourceId,
        resource: Value,
        index: Vec<IndexEntry>,
    },
    /// Replace the search index rows of `version_id`, if it is still the current version
    /// (a reindex running beside the server must not overwrite a newer version's rows).
    Reindex {
        resource_type: ResourceType,
        id: ResourceId,
        version_id: u64,
        index: Vec<IndexEntry>,
    },
    /// The access-log entry of the request making the other writes: stored with them, in
    /// their transaction (the outbox), and chained by `drain_audit_outbox`.
    AccessLog(AuditRecord),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Created(StoredVersion),
    Updated(StoredVersion),
    Deleted(StoredVersion),
    /// Delete of something absent or already deleted: nothing changed.
    NothingToDelete,
    /// Index rows replaced (`true`), or left alone because a newer version exists (`false`).
    Reindexed(bool),
    /// `CreateIfAbsent` found the id taken: nothing changed.
    AlreadyPresent,
    /// An access-log entry went into the outbox.
    Logged,
}

impl WriteOutcome {
    pub fn version(&self) -> Option<&StoredVersion> {
        match self {
            WriteOutcome::Created(v) | WriteOutcome::Updated(v) | WriteOutcome::Deleted(v) => Some(v),
            WriteOutcome::NothingToDelete
            | WriteOutcome::Reindexed(_)
            | WriteOutcome::AlreadyPresent
            | WriteOutcome::Logged => None,
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

/// A durable background job (a bulk export). The store keeps it so that any server instance
/// can answer for it and take it over when the one running it dies; what the request and
/// result mean is the server's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub id: String,
    pub status: JobStatus,
    /// The request as the server recorded it (JSON text).
    pub request: String,
    /// When done, the result (an export manifest); when failed, why.
    pub result: Option<String>,
    pub created: Instant,
    /// The runner's last sign of life (or when it finished): a running job whose heartbeat
    /// is stale is taken over, a finished one expires after the retention period.
    pub heartbeat: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Running,
    Done,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => JobStatus::Running,
            "done" => JobStatus::Done,
            "failed" => JobStatus::Failed,
            _ => return None,
        })
    }
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

/// The search-index rows a write carries.
pub fn write_index(write: &Write) -> &[IndexEntry] {
    match write {
        Write::Create { index, .. }
        | Write::Update { index, .. }
        | Write::Reindex { index, .. }
        | Write::CreateIfAbsent { index, .. } => index,
        Write::Delete { .. } | Write::AccessLog(_) => &[],
    }
}

/// The resource a write concerns (none for an access-log entry).
pub fn write_target(write: &Write) -> Option<(ResourceType, &ResourceId)> {
    match write {
        Write::Create { resource_type, id, .. }
        | Write::Update { resource_type, id, .. }
        | Write::Delete { resource_type, id, .. }
        | Write::CreateIfAbsent { resource_type, id, .. }
        | Write::Reindex { resource_type, id, .. } => Some((*resource_type, id)),
        Write::AccessLog(_) => None,
    }
}

/// A column value of an index row, borrowed from it (binding a row allocates nothing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColumnValue<'a> {
    Text(&'a str),
    Int(i64),
    Real(f64),
    Null,
}

impl ColumnValue<'_> {
    pub fn to_arg(self) -> SqlArg {
        match self {
            ColumnValue::Text(t) => SqlArg::Text(t.to_owned()),
            ColumnValue::Int(i) => SqlArg::Int(i),
            ColumnValue::Real(r) => SqlArg::Real(r),
            ColumnValue::Null => SqlArg::Null,
        }
    }
}

/// The index row as `(table, value columns)` in the order of `IndexTable::columns` (one
/// to three columns; the rest of the array is `Null`).
pub fn index_row(value: &IndexValue) -> (IndexTable, [ColumnValue<'_>; 3], usize) {
    use ColumnValue::{Int, Null, Real, Text};
    fn opt(s: &Option<String>) -> ColumnValue<'_> {
        s.as_deref().map_or(Null, Text)
    }
    let (row, n) = match value {
        IndexValue::Token { system, code, text } => ([opt(system), Text(code), opt(text)], 3),
        IndexValue::String { normalized, exact } => ([Text(normalized), Text(exact), Null], 2),
        IndexValue::Date { start, end } => ([Int(*start), Int(*end), Null], 2),
        IndexValue::Reference { target_type, target_id, url } => {
            ([opt(target_type), opt(target_id), opt(url)], 3)
        }
        IndexValue::Number(n) => ([Real(*n), Null, Null], 1),
        IndexValue::Quantity { value, system, code } => ([Real(*value), opt(system), opt(code)], 3),
        IndexValue::Uri(u) => ([Text(u), Null, Null], 1),
    };
    (value.table(), row, n)
}

/// Rows per multi-row `INSERT`: large terminology resources index thousands of codes, and
/// SQLite bounds the parameters of one statement.
const INDEX_ROWS_PER_INSERT: usize = 500;

/// The `INSERT`s that write a resource's index rows: multi-row statements per table (`?`
/// placeholders), so a write costs a handful of statements, not one per value.
pub fn index_inserts(resource_type: &str, rid: i64, entries: &[IndexEntry]) -> Vec<(String, Vec<SqlArg>)> {
    let mut out = Vec::new();
    for table in IndexTable::ALL {
        let rows: Vec<&IndexEntry> = entries.iter().filter(|e| e.value.table() == table).collect();
        let columns = table.columns();
        let row_marks = format!("(?, ?, ?, ?, {})", vec!["?"; columns.len()].join(", "));
        for chunk in rows.chunks(INDEX_ROWS_PER_INSERT) {
            let sql = format!(
                "INSERT INTO {} (resource_type, rid, param, grp, {}) VALUES {}",
                table.name(),
                columns.join(", "),
                vec![row_marks.as_str(); chunk.len()].join(", ")
            );
            let mut args = Vec::with_capacity(chunk.len() * (3 + columns.len()));
            for entry in chunk {
                args.push(SqlArg::Text(resource_type.to_owned()));
                args.push(SqlArg::Int(rid));
                args.push(SqlArg::Text(entry.param.clone()));
                args.push(SqlArg::Int(entry.group.unwrap_or(0)));
                let (_, values, n) = index_row(&entry.value);
                args.extend(values[..n].iter().map(|v| v.to_arg()));
            }
            out.push((sql, args));
        }
    }
    out
}

/// The column types that differ between the SQL backends.
#[derive(Debug, Clone, Copy)]
pub struct SqlDialect {
    /// An auto-assigned 64-bit key column.
    pub serial_key: &'static str,
    pub int: &'static str,
    pub boolean: &'static str,
    pub real: &'static str,
}

impl SqlDialect {
    pub const SQLITE: SqlDialect =
        SqlDialect { serial_key: "INTEGER PRIMARY KEY", int: "INTEGER", boolean: "INTEGER", real: "REAL" };
    pub const POSTGRES: SqlDialect = SqlDialect {
        serial_key: "BIGSERIAL PRIMARY KEY",
        int: "BIGINT",
        boolean: "BOOLEAN",
        real: "DOUBLE PRECISION",
    };
}

/// The schema, one migration per entry (entry `i` moves from version `i` to `i + 1`), the
/// same for every SQL backend:
/// 1. `resource_versions` holds every version ever written (global `seq` for history order);
///    `resources` has one row per logical resource (integer key `rid`) pointing at the
///    current version;
/// 2. the search index tables, current versions only.
pub fn schema_migrations(d: SqlDialect) -> Vec<String> {
    let SqlDialect { serial_key, int, boolean, real } = d;
    let base = format!(
        "CREATE TABLE resource_versions (
            seq {serial_key},
            resource_type TEXT NOT NULL,
            id TEXT NOT NULL,
            version_id {int} NOT NULL,
            last_updated {int} NOT NULL,
            method TEXT NOT NULL,
            body TEXT,
            UNIQUE (resource_type, id, version_id)
         );
         CREATE INDEX resource_versions_by_type ON resource_versions (resource_type, seq);
         CREATE INDEX resource_versions_by_time ON resource_versions (last_updated);
         CREATE TABLE resources (
            rid {serial_key},
            resource_type TEXT NOT NULL,
            id TEXT NOT NULL,
            version_id {int} NOT NULL,
            seq {int} NOT NULL,
            deleted {boolean} NOT NULL,
            UNIQUE (resource_type, id)
         );
         CREATE INDEX resources_by_type ON resources (resource_type, deleted, seq);"
    );
    let jobs = format!(
        "CREATE TABLE bulk_jobs (
            id TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            request TEXT NOT NULL,
            result TEXT,
            created {int} NOT NULL,
            heartbeat {int} NOT NULL
         );
         CREATE TABLE bulk_job_files (
            job_id TEXT NOT NULL,
            n {int} NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (job_id, n)
         );"
    );
    // Server state every server on the store shares (see `ResourceStore::kv_get`).
    let kv = format!("CREATE TABLE server_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires {int});");
    vec![base, index_schema(real), jobs, kv]
}

/// The access log: append-only, each row's hash covering the previous row's hash. PostgreSQL
/// keeps it beside the resources (migration 5); SQLite in a file of its own, since every
/// write to the resources' file empties the page caches of its readers.
pub fn audit_schema(d: SqlDialect) -> String {
    let SqlDialect { serial_key, int, .. } = d;
    format!(
        "CREATE TABLE audit_log (
            seq {serial_key},
            recorded {int} NOT NULL,
            patient TEXT,
            event TEXT NOT NULL,
            hash TEXT NOT NULL
         );
         CREATE INDEX audit_log_by_patient ON audit_log (patient, seq);"
    )
}

/// The access log's outbox, beside the resources: a request's entry goes in with its writes,
/// in their transaction, so a write is never stored without its entry; `drain_audit_outbox`
/// moves entries into the hash chain. Keys only grow (SQLite `AUTOINCREMENT`), so what was
/// moved can be told by the last key moved.
pub fn audit_outbox_schema(d: SqlDialect) -> String {
    let key =
        if d.serial_key.starts_with("INTEGER") { "INTEGER PRIMARY KEY AUTOINCREMENT" } else { d.serial_key };
    format!(
        "CREATE TABLE audit_outbox (id {key}, recorded {int} NOT NULL, patient TEXT, event TEXT NOT NULL);",
        int = d.int
    )
}

/// The index tables. Rows point at `resources.rid`.
fn index_schema(real: &str) -> String {
    let mut sql = String::new();
    for table in IndexTable::ALL {
        let columns: Vec<String> = table
            .columns()
            .iter()
            .map(|c| {
                let ty = match *c {
                    "start_ms" | "end_ms" => "BIGINT",
                    "value" if matches!(table, IndexTable::Number | IndexTable::Quantity) => real,
                    _ => "TEXT",
                };
                format!("{c} {ty}")
            })
            .collect();
        let name = table.name();
        let lookup = match table {
            IndexTable::Token => "param, code, system",
            IndexTable::Date => "param, start_ms",
            IndexTable::Reference => "param, target_id, target_type",
            _ => "param, value",
        };
        sql.push_str(&format!(
            "CREATE TABLE {name} (resource_type TEXT NOT NULL, rid BIGINT NOT NULL, param TEXT NOT NULL, grp BIGINT NOT NULL, {});
             CREATE INDEX {name}_lookup ON {name} (resource_type, {lookup}, rid);
             CREATE INDEX {name}_by_resource ON {name} (rid);\n",
            columns.join(", ")
        ));
    }
    sql.push_str(
        "CREATE INDEX search_reference_by_target ON search_reference (target_type, target_id, param);\n",
    );
    sql
}

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
    async fn read(&self, resource_type: ResourceType, id: &ResourceId) -> StoreResult<Option<StoredVersion>>;
    async fn vread(
        &self,
        resource_type: ResourceType,
        id: &ResourceId,
        version_id: u64,
    ) -> StoreResult<Option<StoredVersion>>;
    async fn write(&self, write: Write) -> StoreResult<WriteOutcome>;
    /// Several writes as one transaction: all happen, or (on the first error) none does.
    async fn write_all(&self, writes: Vec<Write>) -> StoreResult<Vec<WriteOutcome>>;
    async fn history(&self, query: &HistoryQuery) -> StoreResult<HistoryPage>;
    /// Current resources matching a search, in the query's order, with their keys (`rid`, for
    /// cursors); the total when asked for.
    async fn search(&self, query: &SearchQuery) -> StoreResult<(Vec<(i64, StoredVersion)>, Option<u64>)>;
    /// Where a resource stands in a search's order (its sort values and key), for the
    /// cursor of a paging link.
    async fn position(&self, query: &SearchQuery, rid: i64) -> StoreResult<Position>;
    /// Reference index rows `(param, target_type, target_id)` of the given resources, for
    /// `_include`; `param` narrows to one parameter.
    async fn references_from(
        &self,
        resource_type: ResourceType,
        ids: &[ResourceId],
        param: Option<&str>,
    ) -> StoreResult<Vec<(String, String, String)>>;
    /// Reference index rows `(resource_type, param, rid)` pointing at one resource, for
    /// compartments (`$everything`).
    async fn references_to(
        &self,
        target_type: ResourceType,
        target_id: &ResourceId,
    ) -> StoreResult<Vec<(String, String, i64)>>;
    /// Current, live resources by key, in key order; keys of deleted or unknown resources are
    /// left out.
    async fn read_keys(&self, rids: &[i64]) -> StoreResult<Vec<(i64, StoredVersion)>>;
    /// Current, live resources after `after_rid` in key order, for reindexing; with their keys.
    async fn scan_current(&self, after_rid: i64, limit: usize) -> StoreResult<Vec<(i64, StoredVersion)>>;
    /// How many live resources there are.
    async fn count_current(&self) -> StoreResult<u64>;
    /// Creates or replaces a job record.
    async fn put_job(&self, job: &JobRecord) -> StoreResult<()>;
    async fn job(&self, id: &str) -> StoreResult<Option<JobRecord>>;
    /// Running jobs whose heartbeat is older than `stale_before`, taken over: their heartbeat
    /// becomes `now` (so two servers do not both take one) and their files are removed.
    async fn take_over_stale_jobs(&self, stale_before: Instant, now: Instant) -> StoreResult<Vec<JobRecord>>;
    /// Finished or failed jobs whose heartbeat is older than `before`.
    async fn expired_jobs(&self, before: Instant) -> StoreResult<Vec<String>>;
    /// Removes a job and its files.
    async fn delete_job(&self, id: &str) -> StoreResult<()>;
    async fn put_job_file(&self, job: &str, n: u32, body: String) -> StoreResult<()>;
    async fn job_file(&self, job: &str, n: u32) -> StoreResult<Option<String>>;
    /// A small key-value table for state every server on this store shares: the access-token
    /// signing secret, OAuth clients, client assertions already used. An entry past its
    /// `expires` reads as absent.
    async fn kv_get(&self, key: &str, now: Instant) -> StoreResult<Option<String>>;
    /// Sets a key, replacing any value.
    async fn kv_put(&self, key: &str, value: &str, expires: Option<Instant>) -> StoreResult<()>;
    /// Sets a key unless it holds a live value; whether it was set. Two servers racing to set
    /// one key: exactly one wins.
    async fn kv_put_new(
        &self,
        key: &str,
        value: &str,
        expires: Option<Instant>,
        now: Instant,
    ) -> StoreResult<bool>;
    /// Live entries whose key starts with `prefix`, in key order.
    async fn kv_list(&self, prefix: &str, now: Instant) -> StoreResult<Vec<(String, String)>>;
    async fn kv_delete(&self, key: &str) -> StoreResult<()>;
    /// Appends access-log entries in order, chaining each to the last (appends from several
    /// servers are serialised).
    async fn append_audit(&self, records: Vec<AuditRecord>) -> StoreResult<()>;
    /// Entries after `after_seq` in chain order (for verification).
    async fn audit_entries(&self, after_seq: i64, limit: usize) -> StoreResult<Vec<AuditRow>>;
    /// Moves the outbox's entries (see `Write::AccessLog`) to the end of the chain, in the
    /// order they were stored; how many. Safe to run on several servers at once and to be
    /// interrupted: an entry is chained exactly once.
    async fn drain_audit_outbox(&self) -> StoreResult<usize>;
    /// A patient's entries, newest first ("who looked at my data").
    async fn audit_for_patient(&self, patient: &str, limit: usize) -> StoreResult<Vec<AuditRow>>;
    /// Whether the store answers queries (readiness).
    async fn ping(&self) -> StoreResult<()>;
    /// Finishes queued writes and releases the store.
    async fn close(&self);
    fn backend_name(&self) -> &'static str;
}

/// One access-log entry to append: when, whose record (a Patient id, when known), and the
/// event (an `AuditEvent` as JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub recorded: Instant,
    pub patient: Option<String>,
    pub event: String,
}

/// An access-log entry as stored: its place in the chain and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub record: AuditRecord,
    pub hash: String,
}

/// The chain's link: SHA-256 (hex) over the previous entry's hash and this entry's fields,
/// so changing, removing or reordering an entry breaks every hash after it.
pub fn audit_hash(previous: &str, record: &AuditRecord) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [
        previous,
        &record.recorded.millis().to_string(),
        record.patient.as_deref().unwrap_or(""),
        &record.event,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash before the first entry.
pub const AUDIT_GENESIS: &str = "helse-audit-log";

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
            Err(StoreError::Config(format!("'{}' is neither sqlite:PATH nor postgres://…", redact_url(s))))
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
    fn index_inserts_chunk_large_resources() {
        let entries: Vec<IndexEntry> = (0..1200)
            .map(|i| IndexEntry {
                param: "code".into(),
                value: IndexValue::Token { system: None, code: i.to_string(), text: None },
                group: None,
            })
            .chain([IndexEntry {
                param: "date".into(),
                value: IndexValue::Date { start: 0, end: 1 },
                group: None,
            }])
            .collect();
        let inserts = index_inserts("CodeSystem", 7, &entries);
        assert_eq!(inserts.len(), 4, "3 token chunks and 1 date insert");
        for (sql, args) in &inserts {
            assert_eq!(sql.matches('?').count(), args.len(), "{sql}");
        }
        assert_eq!(inserts[0].1.len(), 500 * 7);
    }

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
