//! The embedded store on SQLite.
//!
//! Writes go through one writer thread that owns the only write connection. It takes every
//! write queued at the moment, runs each in its own savepoint inside one transaction and
//! commits once: many concurrent writers share one fsync (group commit), and a failed write
//! rolls back alone. Reads use a small pool of read connections; in WAL mode they never wait
//! for the writer.

mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use helse_fhir_r4::{Instant, ResourceId, ResourceType};
use helse_store::{
    AUDIT_GENESIS, AuditRecord, AuditRow, HistoryPage, HistoryQuery, JobRecord, JobStatus, Method, Position,
    ResourceStore, SearchQuery, SortValue, SortValueKind, SqlArg, StoreError, StoreResult, StoredVersion,
    Write, WriteOutcome, audit_hash, history_filter, search_filter,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::writer::{Job, Writer};

/// How hard SQLite works to make a commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync on every commit: survives power loss (default).
    Full,
    /// fsync at checkpoints only: survives a process crash, not a power cut.
    Normal,
}

pub struct SqliteStore {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    jobs: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    /// Bulk-job bookkeeping: rare, small writes on their own connection (they wait at most
    /// for one group commit of the writer thread).
    job_conn: Mutex<Connection>,
    /// The access log, in a file of its own beside the store (`audit_path`): every write to
    /// a SQLite file empties its readers' page caches, and one access-log entry per read
    /// made that a third of the reads' time. Appended without an fsync per append (see
    /// `append_audit`).
    audit_conn: Mutex<Connection>,
}

/// The access log's file: `helse.audit.db` beside `helse.db`.
pub fn audit_path(store: &Path) -> PathBuf {
    store.with_extension("audit.db")
}

impl SqliteStore {
    pub fn open(path: &Path, durability: Durability) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path).map_err(backend)?;
        schema::configure(&conn, durability).map_err(backend)?;
        schema::migrate(&conn).map_err(backend)?;
        let job_conn = Connection::open(path).map_err(backend)?;
        schema::configure(&job_conn, durability).map_err(backend)?;
        let audit_conn = Connection::open(audit_path(path)).map_err(backend)?;
        schema::configure(&audit_conn, Durability::Normal).map_err(backend)?;
        schema::migrate_audit(&audit_conn).map_err(backend)?;
        // Appends touch only the log's last pages; and SQLite scans the whole page cache at
        // every commit, which with the store's 64 MiB cost more than the append.
        audit_conn.pragma_update(None, "cache_size", -1024).map_err(backend)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = Writer::new(conn);
        let handle = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(SqliteStore {
            path: path.to_owned(),
            readers: Mutex::new(Vec::new()),
            jobs: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(handle)),
            job_conn: Mutex::new(job_conn),
            audit_conn: Mutex::new(audit_conn),
        })
    }

    /// Runs `f` on a pooled read connection. Point reads take microseconds, so they run on the
    /// calling thread rather than paying for a hop to a blocking pool.
    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let conn = self.readers.lock().expect("reader pool").pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(backend)?;
                c.busy_timeout(std::time::Duration::from_secs(5)).map_err(backend)?;
                c
            }
        };
        let result = f(&conn).map_err(backend);
        let mut pool = self.readers.lock().expect("reader pool");
        if pool.len() < 16 {
            pool.push(conn);
        }
        result
    }
}

fn job_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    let status: String = r.get(1)?;
    Ok(JobRecord {
        id: r.get(0)?,
        status: JobStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, status.into())
        })?,
        request: r.get(2)?,
        result: r.get(3)?,
        created: Instant::from_millis(r.get(4)?),
        heartbeat: Instant::from_millis(r.get(5)?),
    })
}

const JOB_COLUMNS: &str = "id, status, request, result, created, heartbeat";

pub(crate) fn sql_value(a: SqlArg) -> rusqlite::types::Value {
    match a {
        SqlArg::Text(t) => t.into(),
        SqlArg::Int(i) => i.into(),
        SqlArg::Real(r) => r.into(),
        SqlArg::Null => rusqlite::types::Value::Null,
    }
}

pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok(AuditRow {
        seq: r.get(0)?,
        record: AuditRecord {
            recorded: Instant::from_millis(r.get(1)?),
            patient: r.get(2)?,
            event: r.get(3)?,
        },
        hash: r.get(4)?,
    })
}

const VERSION_COLUMNS: &str = "v.resource_type, v.id, v.version_id, v.last_updated, v.method, v.body";

pub(crate) fn version_from_row(row: &rusqlite::Row<'_>, offset: usize) -> rusqlite::Result<StoredVersion> {
    let ty: String = row.get(offset)?;
    let id: String = row.get(offset + 1)?;
    let method: String = row.get(offset + 4)?;
    let corrupt = |what: String| {
        rusqlite::Error::FromSqlConversionFailure(offset, rusqlite::types::Type::Text, what.into())
    };
    Ok(StoredVersion {
        resource_type: ResourceType::parse(&ty).map_err(|e| corrupt(e.to_string()))?,
        id: ResourceId::parse(&id).map_err(|e| corrupt(e.to_string()))?,
        version_id: row.get::<_, i64>(offset + 2)? as u64,
        last_updated: Instant::from_millis(row.get(offset + 3)?),
        method: Method::parse(&method).ok_or_else(|| corrupt(format!("method {method}")))?,
        body: row.get::<_, Option<String>>(offset + 5)?.map(Arc::from),
    })
}

#[async_trait]
impl ResourceStore for SqliteStore {
    async fn read(&self, resource_type: ResourceType, id: &ResourceId) -> StoreResult<Option<StoredVersion>> {
        self.with_reader(|c| {
            c.prepare_cached(&format!(
                "SELECT {VERSION_COLUMNS} FROM resources r JOIN resource_versions v ON v.seq = r.seq
                 WHERE r.resource_type = ?1 AND r.id = ?2"
            ))?
            .query_row(params![resource_type.as_str(), id.as_str()], |row| version_from_row(row, 0))
            .optional()
        })
    }

    async fn vread(
        &self,
        resource_type: ResourceType,
        id: &ResourceId,
        version_id: u64,
    ) -> StoreResult<Option<StoredVersion>> {
        self.with_reader(|c| {
            c.prepare_cached(&format!(
                "SELECT {VERSION_COLUMNS} FROM resource_versions v
                 WHERE v.resource_type = ?1 AND v.id = ?2 AND v.version_id = ?3"
            ))?
            .query_row(params![resource_type.as_str(), id.as_str(), version_id as i64], |row| {
                version_from_row(row, 0)
            })
            .optional()
        })
    }

    async fn write(&self, write: Write) -> StoreResult<WriteOutcome> {
        let mut outcomes = self.write_all(vec![write]).await?;
        outcomes.pop().ok_or_else(|| StoreError::Backend("no outcome".into()))
    }

    async fn write_all(&self, writes: Vec<Write>) -> StoreResult<Vec<WriteOutcome>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        {
            let jobs = self.jobs.lock().expect("writer queue");
            let sender = jobs.as_ref().ok_or(StoreError::ShuttingDown)?;
            sender.send(Job { writes, reply }).map_err(|_| StoreError::ShuttingDown)?;
        }
        answer.await.map_err(|_| StoreError::ShuttingDown)?
    }

    async fn history(&self, q: &HistoryQuery) -> StoreResult<HistoryPage> {
        let (filter, args) = history_filter(q);
        let args: Vec<rusqlite::types::Value> = args.into_iter().map(sql_value).collect();
        let count_sql = format!("SELECT count(*) FROM resource_versions v WHERE {filter}");
        let mut page_filter = filter.clone();
        let mut page_args = args.clone();
        if let Some(before) = q.before_seq {
            page_filter.push_str(" AND v.seq < ?");
            page_args.push(before.into());
        }
        let page_sql = format!(
            "SELECT v.seq, {VERSION_COLUMNS} FROM resource_versions v WHERE {page_filter} ORDER BY v.seq DESC LIMIT ?"
        );
        page_args.push(((q.count + 1) as i64).into());
        self.with_reader(|c| {
            let total: i64 = c.query_row(&count_sql, rusqlite::params_from_iter(&args), |r| r.get(0))?;
            let mut stmt = c.prepare_cached(&page_sql)?;
            let mut versions = stmt
                .query_map(rusqlite::params_from_iter(&page_args), |row| {
                    Ok((row.get::<_, i64>(0)?, version_from_row(row, 1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let next = (versions.len() > q.count).then(|| {
                versions.truncate(q.count);
                versions.last().map(|(s, _)| *s).unwrap_or_default()
            });
            Ok(HistoryPage { versions, next_before_seq: next, total: total as u64 })
        })
    }

    async fn search(&self, q: &SearchQuery) -> StoreResult<(Vec<(i64, StoredVersion)>, Option<u64>)> {
        let (filter, args) = search_filter(&q.resource_type, &q.clauses, "r", 0);
        let (cursor, order, page_only) = q.page_sql("r");
        let args: Vec<rusqlite::types::Value> = args.into_iter().map(sql_value).collect();
        let mut page_args = args.clone();
        page_args.extend(page_only.into_iter().map(sql_value));
        page_args.push((q.count as i64).into());
        page_args.push((q.offset as i64).into());
        let page_sql = format!(
            "SELECT r.rid, {VERSION_COLUMNS} FROM resources r JOIN resource_versions v ON v.seq = r.seq
             WHERE {filter}{cursor} ORDER BY {order} LIMIT ? OFFSET ?"
        );
        self.with_reader(|c| {
            let rows = c
                .prepare_cached(&page_sql)?
                .query_map(rusqlite::params_from_iter(&page_args), |row| {
                    Ok((row.get(0)?, version_from_row(row, 1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let total = if !q.want_total {
                None
            } else if let Some(total) = q.total_from_page(rows.len()) {
                Some(total)
            } else {
                let sql = format!("SELECT count(*) FROM resources r WHERE {filter}");
                Some(
                    c.prepare_cached(&sql)?
                        .query_row(rusqlite::params_from_iter(&args), |r| r.get::<_, i64>(0))?
                        as u64,
                )
            };
            Ok((rows, total))
        })
    }

    async fn position(&self, q: &SearchQuery, rid: i64) -> StoreResult<Position> {
        let Some((sql, args)) = q.position_sql() else { return Ok(Position::key(rid)) };
        let mut args: Vec<rusqlite::types::Value> = args.into_iter().map(sql_value).collect();
        args.push(rid.into());
        let values = self.with_reader(|c| {
            c.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(&args), |row| {
                q.sort
                    .iter()
                    .enumerate()
                    .map(|(i, key)| {
                        use rusqlite::types::Value as V;
                        Ok(match (row.get::<_, V>(i)?, key.value_kind()) {
                            (V::Null, _) => SortValue::Null,
                            (V::Integer(n), SortValueKind::Int) => SortValue::Int(n),
                            (V::Integer(n), SortValueKind::Real) => SortValue::Real(n as f64),
                            (V::Real(r), _) => SortValue::Real(r),
                            (V::Integer(n), SortValueKind::Text) => SortValue::Text(n.to_string()),
                            (V::Text(t), _) => SortValue::Text(t),
                            (V::Blob(_), _) => SortValue::Null,
                        })
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
        })?;
        Ok(Position { values, rid })
    }

    async fn references_from(
        &self,
        resource_type: ResourceType,
        ids: &[ResourceId],
        param: Option<&str>,
    ) -> StoreResult<Vec<(String, String, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; ids.len()].join(", ");
        let mut args: Vec<rusqlite::types::Value> = vec![resource_type.as_str().to_owned().into()];
        args.extend(ids.iter().map(|i| i.as_str().to_owned().into()));
        let mut sql = format!(
            "SELECT x.param, x.target_type, x.target_id FROM search_reference x JOIN resources r ON r.rid = x.rid
             WHERE r.resource_type = ? AND r.id IN ({marks}) AND x.target_type IS NOT NULL AND x.target_id IS NOT NULL"
        );
        if let Some(p) = param {
            sql.push_str(" AND x.param = ?");
            args.push(p.to_owned().into());
        }
        self.with_reader(|c| {
            c.prepare(&sql)?
                .query_map(rusqlite::params_from_iter(&args), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
    }

    async fn references_to(
        &self,
        target_type: ResourceType,
        target_id: &ResourceId,
    ) -> StoreResult<Vec<(String, String, i64)>> {
        self.with_reader(|c| {
            c.prepare_cached(
                "SELECT x.resource_type, x.param, x.rid FROM search_reference x WHERE x.target_type = ?1 AND x.target_id = ?2",
            )?
            .query_map(params![target_type.as_str(), target_id.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect()
        })
    }

    async fn read_keys(&self, rids: &[i64]) -> StoreResult<Vec<(i64, StoredVersion)>> {
        let mut out = Vec::with_capacity(rids.len());
        // Bounded statements: SQLite caps the number of parameters.
        for chunk in rids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT r.rid, {VERSION_COLUMNS} FROM resources r JOIN resource_versions v ON v.seq = r.seq
                 WHERE r.rid IN ({marks}) AND r.deleted = 0"
            );
            out.extend(self.with_reader(|c| {
                c.prepare(&sql)?
                    .query_map(rusqlite::params_from_iter(chunk), |row| {
                        Ok((row.get(0)?, version_from_row(row, 1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })?);
        }
        out.sort_unstable_by_key(|(rid, _)| *rid);
        Ok(out)
    }

    async fn scan_current(&self, after_rid: i64, limit: usize) -> StoreResult<Vec<(i64, StoredVersion)>> {
        self.with_reader(|c| {
            c.prepare_cached(&format!(
                "SELECT r.rid, {VERSION_COLUMNS} FROM resources r JOIN resource_versions v ON v.seq = r.seq
                 WHERE r.rid > ?1 AND r.deleted = 0 ORDER BY r.rid LIMIT ?2"
            ))?
            .query_map(params![after_rid, limit as i64], |row| Ok((row.get(0)?, version_from_row(row, 1)?)))?
            .collect()
        })
    }

    async fn count_current(&self) -> StoreResult<u64> {
        self.with_reader(|c| {
            c.query_row("SELECT count(*) FROM resources WHERE deleted = 0", [], |r| r.get::<_, i64>(0))
        })
        .map(|n| n as u64)
    }

    async fn kv_get(&self, key: &str, now: Instant) -> StoreResult<Option<String>> {
        let c = self.job_conn.lock().expect("job connection");
        c.query_row(
            "SELECT value FROM server_kv WHERE key = ?1 AND (expires IS NULL OR expires > ?2)",
            params![key, now.millis()],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)
    }

    async fn kv_put(&self, key: &str, value: &str, expires: Option<Instant>) -> StoreResult<()> {
        let c = self.job_conn.lock().expect("job connection");
        c.execute(
            "INSERT OR REPLACE INTO server_kv (key, value, expires) VALUES (?1, ?2, ?3)",
            params![key, value, expires.map(|e| e.millis())],
        )
        .map(|_| ())
        .map_err(backend)
    }

    async fn kv_put_new(
        &self,
        key: &str,
        value: &str,
        expires: Option<Instant>,
        now: Instant,
    ) -> StoreResult<bool> {
        let mut c = self.job_conn.lock().expect("job connection");
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
        tx.execute("DELETE FROM server_kv WHERE key = ?1 AND expires <= ?2", params![key, now.millis()])
            .map_err(backend)?;
        let set = tx
            .execute(
                "INSERT OR IGNORE INTO server_kv (key, value, expires) VALUES (?1, ?2, ?3)",
                params![key, value, expires.map(|e| e.millis())],
            )
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        Ok(set == 1)
    }

    async fn kv_list(&self, prefix: &str, now: Instant) -> StoreResult<Vec<(String, String)>> {
        let c = self.job_conn.lock().expect("job connection");
        c.prepare(
            "SELECT key, value FROM server_kv WHERE substr(key, 1, length(?1)) = ?1
               AND (expires IS NULL OR expires > ?2) ORDER BY key",
        )
        .and_then(|mut s| {
            s.query_map(params![prefix, now.millis()], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
        .map_err(backend)
    }

    async fn kv_delete(&self, key: &str) -> StoreResult<()> {
        let c = self.job_conn.lock().expect("job connection");
        c.execute("DELETE FROM server_kv WHERE key = ?1", params![key]).map(|_| ()).map_err(backend)
    }

    /// Written to the WAL before returning (so a killed process loses nothing), but not
    /// fsynced per append, which would bound reads by the disk's fsync rate; a checkpoint
    /// fsyncs them, and a power cut can lose the newest entries.
    async fn append_audit(&self, records: Vec<AuditRecord>) -> StoreResult<()> {
        let mut c = self.audit_conn.lock().expect("audit connection");
        // IMMEDIATE: the chain's last hash is read and extended under the write lock.
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
        chain(&tx, &records)?;
        tx.commit().map_err(backend)
    }

    async fn drain_audit_outbox(&self) -> StoreResult<usize> {
        // 1. What the outbox holds (the resources' file).
        let waiting: Vec<(i64, AuditRecord)> = {
            let c = self.job_conn.lock().expect("job connection");
            c.prepare_cached("SELECT id, recorded, patient, event FROM audit_outbox ORDER BY id LIMIT 10000")
                .and_then(|mut s| {
                    s.query_map([], |r| {
                        Ok((
                            r.get(0)?,
                            AuditRecord {
                                recorded: Instant::from_millis(r.get(1)?),
                                patient: r.get(2)?,
                                event: r.get(3)?,
                            },
                        ))
                    })?
                    .collect()
                })
                .map_err(backend)?
        };
        if waiting.is_empty() {
            return Ok(0);
        }
        // 2. Chained (the log's file) with the last key moved, skipping what a move cut
        //    short before step 3 chained already.
        let (moved, last) = {
            let mut c = self.audit_conn.lock().expect("audit connection");
            let tx =
                c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            let done: i64 =
                tx.query_row("SELECT last_outbox_id FROM audit_moved", [], |r| r.get(0)).map_err(backend)?;
            let fresh: Vec<AuditRecord> =
                waiting.iter().filter(|(id, _)| *id > done).map(|(_, r)| r.clone()).collect();
            let last = waiting.last().map_or(done, |(id, _)| (*id).max(done));
            chain(&tx, &fresh)?;
            tx.execute("UPDATE audit_moved SET last_outbox_id = ?1", params![last]).map_err(backend)?;
            tx.commit().map_err(backend)?;
            (fresh.len(), last)
        };
        // 3. Out of the outbox.
        let c = self.job_conn.lock().expect("job connection");
        c.execute("DELETE FROM audit_outbox WHERE id <= ?1", params![last]).map_err(backend)?;
        Ok(moved)
    }

    async fn audit_entries(&self, after_seq: i64, limit: usize) -> StoreResult<Vec<AuditRow>> {
        let c = self.audit_conn.lock().expect("audit connection");
        c.prepare_cached(
            "SELECT seq, recorded, patient, event, hash FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .and_then(|mut s| s.query_map(params![after_seq, limit as i64], audit_row)?.collect())
        .map_err(backend)
    }

    async fn audit_for_patient(&self, patient: &str, limit: usize) -> StoreResult<Vec<AuditRow>> {
        let c = self.audit_conn.lock().expect("audit connection");
        c.prepare_cached(
            "SELECT seq, recorded, patient, event, hash FROM audit_log WHERE patient = ?1 ORDER BY seq DESC LIMIT ?2",
        )
        .and_then(|mut s| s.query_map(params![patient, limit as i64], audit_row)?.collect())
        .map_err(backend)
    }

    async fn put_job(&self, job: &JobRecord) -> StoreResult<()> {
        let c = self.job_conn.lock().expect("job connection");
        c.execute(
            &format!("INSERT OR REPLACE INTO bulk_jobs ({JOB_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![
                job.id,
                job.status.as_str(),
                job.request,
                job.result,
                job.created.millis(),
                job.heartbeat.millis()
            ],
        )
        .map(|_| ())
        .map_err(backend)
    }

    async fn job(&self, id: &str) -> StoreResult<Option<JobRecord>> {
        let c = self.job_conn.lock().expect("job connection");
        c.query_row(&format!("SELECT {JOB_COLUMNS} FROM bulk_jobs WHERE id = ?1"), params![id], job_from_row)
            .optional()
            .map_err(backend)
    }

    async fn take_over_stale_jobs(&self, stale_before: Instant, now: Instant) -> StoreResult<Vec<JobRecord>> {
        let mut c = self.job_conn.lock().expect("job connection");
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
        let jobs = tx
            .prepare(&format!(
                "UPDATE bulk_jobs SET heartbeat = ?1 WHERE status = 'running' AND heartbeat < ?2 RETURNING {JOB_COLUMNS}"
            ))
            .and_then(|mut s| s.query_map(params![now.millis(), stale_before.millis()], job_from_row)?.collect())
            .map_err(backend)?;
        for job in &jobs {
            let job: &JobRecord = job;
            tx.execute("DELETE FROM bulk_job_files WHERE job_id = ?1", params![job.id]).map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(jobs)
    }

    async fn expired_jobs(&self, before: Instant) -> StoreResult<Vec<String>> {
        let c = self.job_conn.lock().expect("job connection");
        c.prepare("SELECT id FROM bulk_jobs WHERE status <> 'running' AND heartbeat < ?1")
            .and_then(|mut s| s.query_map(params![before.millis()], |r| r.get(0))?.collect())
            .map_err(backend)
    }

    async fn delete_job(&self, id: &str) -> StoreResult<()> {
        let mut c = self.job_conn.lock().expect("job connection");
        let tx = c.transaction().map_err(backend)?;
        tx.execute("DELETE FROM bulk_job_files WHERE job_id = ?1", params![id]).map_err(backend)?;
        tx.execute("DELETE FROM bulk_jobs WHERE id = ?1", params![id]).map_err(backend)?;
        tx.commit().map_err(backend)
    }

    async fn put_job_file(&self, job: &str, n: u32, body: String) -> StoreResult<()> {
        let c = self.job_conn.lock().expect("job connection");
        c.execute(
            "INSERT OR REPLACE INTO bulk_job_files (job_id, n, body) VALUES (?1, ?2, ?3)",
            params![job, n, body],
        )
        .map(|_| ())
        .map_err(backend)
    }

    async fn job_file(&self, job: &str, n: u32) -> StoreResult<Option<String>> {
        self.with_reader(|c| {
            c.query_row(
                "SELECT body FROM bulk_job_files WHERE job_id = ?1 AND n = ?2",
                params![job, n],
                |r| r.get(0),
            )
            .optional()
        })
    }

    async fn ping(&self) -> StoreResult<()> {
        self.with_reader(|c| c.query_row("SELECT 1", [], |_| Ok(())))
    }

    async fn close(&self) {
        // Dropping the sender lets the writer finish what is queued and stop.
        self.jobs.lock().expect("writer queue").take();
        let handle = self.writer_thread.lock().expect("writer thread").take();
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }

    fn backend_name(&self) -> &'static str {
        "sqlite"
    }
}

/// Appends records to the access log's chain inside `tx` (which holds the write lock).
fn chain(tx: &rusqlite::Transaction<'_>, records: &[AuditRecord]) -> StoreResult<()> {
    let mut previous: String = tx
        .query_row("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1", [], |r| r.get(0))
        .optional()
        .map_err(backend)?
        .unwrap_or_else(|| AUDIT_GENESIS.to_owned());
    let mut insert = tx
        .prepare_cached("INSERT INTO audit_log (recorded, patient, event, hash) VALUES (?1, ?2, ?3, ?4)")
        .map_err(backend)?;
    for r in records {
        let hash = audit_hash(&previous, r);
        insert.execute(params![r.recorded.millis(), r.patient, r.event, hash]).map_err(backend)?;
        previous = hash;
    }
    Ok(())
}
