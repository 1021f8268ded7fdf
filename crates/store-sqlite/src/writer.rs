//! The single writer: batches queued writes into one transaction (group commit).

use std::sync::Arc;
use std::sync::mpsc::Receiver;

use helse_fhir_r4::{Instant, ResourceId, ResourceType, stamp_meta};
use helse_store::{
    ColumnValue, IndexEntry, IndexTable, Method, StoreError, StoreResult, StoredVersion, Write, WriteOutcome,
    check_precondition, index_row,
};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use crate::backend;

/// Upper bound on writes sharing one commit; keeps a commit's latency bounded.
const MAX_BATCH: usize = 256;

/// Writes that succeed or fail together (one for a plain write, many for a transaction).
pub(crate) struct Job {
    pub writes: Vec<Write>,
    pub reply: oneshot::Sender<StoreResult<Vec<WriteOutcome>>>,
}

pub(crate) struct Writer {
    conn: Connection,
    last_stamp: i64,
    writes_since_optimize: usize,
}

/// Writes between `PRAGMA optimize` runs.
const OPTIMIZE_EVERY: usize = 50_000;

impl Writer {
    pub(crate) fn new(conn: Connection) -> Self {
        conn.set_prepared_statement_cache_capacity(64);
        Writer { conn, last_stamp: 0, writes_since_optimize: 0 }
    }

    pub(crate) fn run(mut self, jobs: Receiver<Job>) {
        while let Ok(first) = jobs.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.commit_batch(batch);
        }
    }

    /// Keeps the planner's statistics in step with a growing store (an import fills tables
    /// from nothing, and plans made for empty tables are wrong for full ones).
    fn maybe_optimize(&mut self, writes: usize) {
        self.writes_since_optimize += writes;
        if self.writes_since_optimize >= OPTIMIZE_EVERY {
            self.writes_since_optimize = 0;
            let _ = self.conn.execute_batch("PRAGMA optimize");
        }
    }

    fn commit_batch(&mut self, mut batch: Vec<Job>) {
        self.maybe_optimize(batch.iter().map(|j| j.writes.len()).sum());
        let mut results = Vec::with_capacity(batch.len());
        let began = self.conn.execute_batch("BEGIN IMMEDIATE").map_err(backend);
        if let Err(e) = began {
            for job in batch {
                let _ = job.reply.send(Err(StoreError::Backend(e.to_string())));
            }
            return;
        }
        // A job alone in its transaction needs no savepoint: on failure the whole transaction
        // rolls back. (Savepoints journal every page they touch, which costs large imports.)
        if let [job] = batch.as_mut_slice() {
            let result = job.writes.iter_mut().map(|w| self.apply(w)).collect::<StoreResult<Vec<_>>>();
            let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
            let result = match self.conn.execute_batch(end) {
                Ok(()) => result,
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    Err(StoreError::Backend(format!("commit failed: {e}")))
                }
            };
            let [job] = <[Job; 1]>::try_from(batch).ok().expect("one job");
            let _ = job.reply.send(result);
            return;
        }
        for job in &mut batch {
            results.push(self.apply_in_savepoint(&mut job.writes));
        }
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            for job in batch {
                let _ = job.reply.send(Err(StoreError::Backend(format!("commit failed: {e}"))));
            }
            return;
        }
        for (job, result) in batch.into_iter().zip(results) {
            let _ = job.reply.send(result);
        }
    }

    fn apply_in_savepoint(&mut self, writes: &mut [Write]) -> StoreResult<Vec<WriteOutcome>> {
        self.conn.execute_batch("SAVEPOINT write").map_err(backend)?;
        let result = writes.iter_mut().map(|w| self.apply(w)).collect::<StoreResult<Vec<_>>>();
        let end = if result.is_ok() { "RELEASE write" } else { "ROLLBACK TO write; RELEASE write" };
        self.conn.execute_batch(end).map_err(backend)?;
        result
    }

    /// Timestamps never go backwards, even if the wall clock does.
    fn stamp(&mut self) -> Instant {
        let now = Instant::now().millis().max(self.last_stamp);
        self.last_stamp = now;
        Instant::from_millis(now)
    }

    fn current(&self, ty: ResourceType, id: &ResourceId) -> StoreResult<Option<(u64, bool)>> {
        self.conn
            .prepare_cached("SELECT version_id, deleted FROM resources WHERE resource_type = ?1 AND id = ?2")
            .and_then(|mut s| {
                s.query_row(params![ty.as_str(), id.as_str()], |r| {
                    Ok((r.get::<_, i64>(0)? as u64, r.get::<_, bool>(1)?))
                })
                .optional()
            })
            .map_err(backend)
    }

    /// Applies one write, taking its resource (a write is applied once, never retried:
    /// whatever fails is answered as failed), so the body is stamped without a copy.
    fn apply(&mut self, write: &mut Write) -> StoreResult<WriteOutcome> {
        match write {
            Write::Create { resource_type, id, resource, index } => {
                if self.current(*resource_type, id)?.is_some() {
                    return Err(StoreError::Backend(format!("id {id} already exists")));
                }
                let (v, rid) =
                    self.insert(*resource_type, id, 1, Method::Post, Some(std::mem::take(resource)))?;
                self.write_index(*resource_type, rid, index, false)?;
                Ok(WriteOutcome::Created(v))
            }
            Write::CreateIfAbsent { resource_type, id, resource, index } => {
                if self.current(*resource_type, id)?.is_some() {
                    return Ok(WriteOutcome::AlreadyPresent);
                }
                let (v, rid) =
                    self.insert(*resource_type, id, 1, Method::Post, Some(std::mem::take(resource)))?;
                self.write_index(*resource_type, rid, index, false)?;
                Ok(WriteOutcome::Created(v))
            }
            Write::Update { resource_type, id, resource, method, if_match, index } => {
                let current = self.current(*resource_type, id)?;
                check_precondition(*if_match, current)?;
                let next = current.map_or(1, |(v, _)| v + 1);
                let (v, rid) =
                    self.insert(*resource_type, id, next, *method, Some(std::mem::take(resource)))?;
                self.write_index(*resource_type, rid, index, current.is_some())?;
                let created = current.is_none_or(|(_, deleted)| deleted);
                Ok(if created { WriteOutcome::Created(v) } else { WriteOutcome::Updated(v) })
            }
            Write::Reindex { resource_type, id, version_id, index } => {
                let row: Option<(i64, u64, bool)> = self
                    .conn
                    .prepare_cached(
                        "SELECT rid, version_id, deleted FROM resources WHERE resource_type = ?1 AND id = ?2",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![resource_type.as_str(), id.as_str()], |r| {
                            Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
                        })
                        .optional()
                    })
                    .map_err(backend)?;
                match row {
                    Some((rid, current, false)) if current == *version_id => {
                        self.write_index(*resource_type, rid, index, true)?;
                        Ok(WriteOutcome::Reindexed(true))
                    }
                    _ => Ok(WriteOutcome::Reindexed(false)),
                }
            }
            Write::AccessLog(r) => {
                self.conn
                    .prepare_cached("INSERT INTO audit_outbox (recorded, patient, event) VALUES (?1, ?2, ?3)")
                    .and_then(|mut s| s.execute(params![r.recorded.millis(), r.patient, r.event]))
                    .map_err(backend)?;
                Ok(WriteOutcome::Logged)
            }
            Write::Delete { resource_type, id, if_match } => {
                let current = self.current(*resource_type, id)?;
                check_precondition(*if_match, current)?;
                match current {
                    Some((v, false)) => {
                        let (deleted, rid) = self.insert(*resource_type, id, v + 1, Method::Delete, None)?;
                        self.write_index(*resource_type, rid, &[], true)?;
                        Ok(WriteOutcome::Deleted(deleted))
                    }
                    _ => Ok(WriteOutcome::NothingToDelete),
                }
            }
        }
    }

    /// Replaces the resource's search index rows (only the current version is indexed).
    fn write_index(
        &mut self,
        ty: ResourceType,
        rid: i64,
        index: &[IndexEntry],
        existed: bool,
    ) -> StoreResult<()> {
        if existed {
            for table in IndexTable::ALL {
                self.conn
                    .prepare_cached(&format!("DELETE FROM {} WHERE rid = ?1", table.name()))
                    .and_then(|mut s| s.execute(params![rid]))
                    .map_err(backend)?;
            }
        }
        // One cached single-row statement per table: SQLite runs a prepared insert in about a
        // microsecond, while multi-row statements differ in shape from resource to resource
        // and would be compiled again and again. Values are bound borrowed: the writer is
        // the import's bottleneck, and allocating per row cost it several per cent.
        for entry in index {
            let (table, values, n) = index_row(&entry.value);
            let mut stmt = self.conn.prepare_cached(single_row_insert(table)).map_err(backend)?;
            stmt.raw_bind_parameter(1, ty.as_str()).map_err(backend)?;
            stmt.raw_bind_parameter(2, rid).map_err(backend)?;
            stmt.raw_bind_parameter(3, entry.param.as_str()).map_err(backend)?;
            stmt.raw_bind_parameter(4, entry.group.unwrap_or(0)).map_err(backend)?;
            for (i, value) in values[..n].iter().enumerate() {
                let at = 5 + i;
                match *value {
                    ColumnValue::Text(t) => stmt.raw_bind_parameter(at, t),
                    ColumnValue::Int(v) => stmt.raw_bind_parameter(at, v),
                    ColumnValue::Real(v) => stmt.raw_bind_parameter(at, v),
                    ColumnValue::Null => stmt.raw_bind_parameter(at, rusqlite::types::Null),
                }
                .map_err(backend)?;
            }
            stmt.raw_execute().map_err(backend)?;
        }
        Ok(())
    }

    fn insert(
        &mut self,
        ty: ResourceType,
        id: &ResourceId,
        version_id: u64,
        method: Method,
        resource: Option<serde_json::Value>,
    ) -> StoreResult<(StoredVersion, i64)> {
        let last_updated = self.stamp();
        let body: Option<Arc<str>> = resource.map(|mut r| {
            stamp_meta(&mut r, id.as_str(), version_id, last_updated);
            Arc::from(serde_json::to_string(&r).expect("JSON values serialize"))
        });
        let seq: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO resource_versions (resource_type, id, version_id, last_updated, method, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING seq",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![
                        ty.as_str(),
                        id.as_str(),
                        version_id as i64,
                        last_updated.millis(),
                        method.as_str(),
                        body.as_deref()
                    ],
                    |r| r.get(0),
                )
            })
            .map_err(backend)?;
        let rid: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO resources (resource_type, id, version_id, seq, deleted) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (resource_type, id) DO UPDATE SET version_id = excluded.version_id,
                   seq = excluded.seq, deleted = excluded.deleted
                 RETURNING rid",
            )
            .and_then(|mut s| {
                s.query_row(params![ty.as_str(), id.as_str(), version_id as i64, seq, body.is_none()], |r| r.get(0))
            })
            .map_err(backend)?;
        Ok((StoredVersion { resource_type: ty, id: id.clone(), version_id, last_updated, method, body }, rid))
    }
}

/// `INSERT INTO search_x (resource_type, rid, param, grp, …) VALUES (?, …)`, built once per table.
fn single_row_insert(table: IndexTable) -> &'static str {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        IndexTable::ALL
            .iter()
            .map(|t| {
                let columns = t.columns();
                format!(
                    "INSERT INTO {} (resource_type, rid, param, grp, {}) VALUES (?, ?, ?, ?, {})",
                    t.name(),
                    columns.join(", "),
                    vec!["?"; columns.len()].join(", ")
                )
            })
            .collect()
    });
    &all[IndexTable::ALL.iter().position(|t| *t == table).expect("listed")]
}
