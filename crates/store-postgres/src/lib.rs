//! The production store on PostgreSQL. Same schema shape as the SQLite store: an append-only
//! `resource_versions` table and a `resources` table pointing at each current version.
//! Each write is one transaction that locks the current row (`FOR UPDATE`); two writers racing
//! to create the same id collide on the version's unique key, and the loser retries.

use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use helse_fhir_r4::{Instant, ResourceId, ResourceType, stamp_meta};
use helse_store::{
    AUDIT_GENESIS, AuditRecord, AuditRow, Cursor, HistoryPage, HistoryQuery, IndexTable, JobRecord,
    JobStatus, Method, Position, ResourceStore, SearchQuery, SortValue, SortValueKind, SqlArg, StoreError,
    StoreResult, StoredVersion, Write, WriteOutcome, audit_hash, check_precondition, history_filter,
    index_inserts, redact_url, search_filter, write_index, write_target,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// Attempts for a write that loses a race to create the same id.
const WRITE_ATTEMPTS: usize = 5;

pub struct PostgresStore {
    pool: Pool,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl PostgresStore {
    pub async fn connect(url: &str, max_connections: usize) -> StoreResult<Self> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Config(format!("{}: {e}", redact_url(url))))?;
        let manager =
            Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager).max_size(max_connections).build().map_err(backend)?;
        let store = PostgresStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut client = self.pool.get().await.map_err(backend)?;
        let tx = client.transaction().await.map_err(backend)?;
        // One migrator at a time, even with several servers starting together.
        tx.execute("SELECT pg_advisory_xact_lock(7420113)", &[]).await.map_err(backend)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            .await
            .map_err(backend)?;
        let current: i32 = tx
            .query_opt("SELECT version FROM schema_version", &[])
            .await
            .map_err(backend)?
            .map_or(0, |r| r.get(0));
        let mut migrations = helse_store::schema_migrations(helse_store::SqlDialect::POSTGRES);
        migrations.push(helse_store::audit_schema(helse_store::SqlDialect::POSTGRES));
        migrations.push(helse_store::audit_outbox_schema(helse_store::SqlDialect::POSTGRES));
        for sql in migrations.iter().skip(current as usize) {
            tx.batch_execute(sql).await.map_err(backend)?;
        }
        tx.execute("DELETE FROM schema_version", &[]).await.map_err(backend)?;
        tx.execute("INSERT INTO schema_version VALUES ($1)", &[&(migrations.len() as i32)])
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    /// Replaces a resource's index rows: deletes the old ones (when it existed) and sends one
    /// multi-row INSERT per table, all pipelined on the connection.
    async fn replace_index(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        ty: ResourceType,
        rid: i64,
        index: &[helse_store::IndexEntry],
        existed: bool,
    ) -> Result<(), tokio_postgres::Error> {
        if existed {
            // Sent together: pipelined on the connection.
            let deletes: Vec<String> =
                IndexTable::ALL.iter().map(|t| format!("DELETE FROM {} WHERE rid = $1", t.name())).collect();
            let params: [&(dyn ToSql + Sync); 1] = [&rid];
            futures::future::try_join_all(deletes.iter().map(|sql| tx.execute(sql.as_str(), &params)))
                .await?;
        }
        let inserts: Vec<(String, Vec<Box<dyn ToSql + Sync + Send>>)> =
            index_inserts(ty.as_str(), rid, index)
                .into_iter()
                .map(|(sql, args)| (number_placeholders(&sql), args.into_iter().map(pg_arg).collect()))
                .collect();
        let pending = inserts.iter().map(|(sql, args)| {
            let refs: Vec<&(dyn ToSql + Sync)> =
                args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect();
            async move { tx.execute(sql.as_str(), &refs).await }
        });
        futures::future::try_join_all(pending).await?;
        Ok(())
    }

    /// Writes in one transaction; the error says whether retrying may succeed (a lost race to
    /// create the same id).
    async fn try_write_all(&self, writes: &[Write]) -> Result<Vec<WriteOutcome>, (StoreError, bool)> {
        let mut client = self.pool.get().await.map_err(|e| (backend(e), false))?;
        let tx = client.transaction().await.map_err(retryable)?;
        // The writes touch distinct resources (the server refuses a Bundle that writes one
        // twice), so their statements are pipelined on the connection rather than awaited in turn.
        let outcomes = futures::future::try_join_all(writes.iter().map(|w| self.apply(&tx, w))).await?;
        tx.commit().await.map_err(retryable)?;
        Ok(outcomes)
    }

    async fn apply(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        write: &Write,
    ) -> Result<WriteOutcome, (StoreError, bool)> {
        let fail = retryable;
        let Some((ty, id)) = write_target(write) else {
            let Write::AccessLog(r) = write else { unreachable!("only an access-log entry has no target") };
            tx.execute(
                "INSERT INTO audit_outbox (recorded, patient, event) VALUES ($1, $2, $3)",
                &[&r.recorded.millis(), &r.patient, &r.event],
            )
            .await
            .map_err(fail)?;
            return Ok(WriteOutcome::Logged);
        };
        if let Write::Reindex { version_id, .. } = write {
            let row = tx
                .query_opt(
                    "SELECT rid, version_id, deleted FROM resources WHERE resource_type = $1 AND id = $2 FOR UPDATE",
                    &[&ty.as_str(), &id.as_str()],
                )
                .await
                .map_err(fail)?;
            let Some(row) = row.filter(|r| r.get::<_, i64>(1) as u64 == *version_id && !r.get::<_, bool>(2))
            else {
                return Ok(WriteOutcome::Reindexed(false));
            };
            let rid: i64 = row.get(0);
            self.replace_index(tx, ty, rid, write_index(write), true).await.map_err(fail)?;
            return Ok(WriteOutcome::Reindexed(true));
        }
        let current = tx
            .query_opt(
                "SELECT version_id, deleted FROM resources WHERE resource_type = $1 AND id = $2 FOR UPDATE",
                &[&ty.as_str(), &id.as_str()],
            )
            .await
            .map_err(fail)?
            .map(|r| (r.get::<_, i64>(0) as u64, r.get::<_, bool>(1)));
        let (version_id, method, resource) = match write {
            Write::Create { resource, .. } => {
                if current.is_some() {
                    return Err((StoreError::Backend(format!("id {id} already exists")), false));
                }
                (1, Method::Post, Some(resource.clone()))
            }
            Write::CreateIfAbsent { resource, .. } => {
                if current.is_some() {
                    return Ok(WriteOutcome::AlreadyPresent);
                }
                (1, Method::Post, Some(resource.clone()))
            }
            Write::Update { resource, method, if_match, .. } => {
                check_precondition(*if_match, current).map_err(|e| (e, false))?;
                (current.map_or(1, |(v, _)| v + 1), *method, Some(resource.clone()))
            }
            Write::Delete { if_match, .. } => {
                check_precondition(*if_match, current).map_err(|e| (e, false))?;
                match current {
                    Some((v, false)) => (v + 1, Method::Delete, None),
                    _ => return Ok(WriteOutcome::NothingToDelete),
                }
            }
            Write::Reindex { .. } | Write::AccessLog(_) => unreachable!("handled above"),
        };
        // The clock is read inside the transaction so that, per resource, versions are
        // stamped in commit order (the row lock orders them).
        let last_updated = Instant::now();
        let body: Option<Arc<str>> = resource.map(|mut r| {
            stamp_meta(&mut r, id.as_str(), version_id, last_updated);
            Arc::from(serde_json::to_string(&r).expect("JSON values serialize"))
        });
        // The version row and the current-version pointer in one statement (one round trip).
        let rid: i64 = tx
            .query_one(
                "WITH v AS (
                   INSERT INTO resource_versions (resource_type, id, version_id, last_updated, method, body)
                   VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq
                 )
                 INSERT INTO resources (resource_type, id, version_id, seq, deleted)
                 SELECT $1, $2, $3, v.seq, $7 FROM v
                 ON CONFLICT (resource_type, id) DO UPDATE SET version_id = excluded.version_id,
                   seq = excluded.seq, deleted = excluded.deleted
                 RETURNING rid",
                &[
                    &ty.as_str(),
                    &id.as_str(),
                    &(version_id as i64),
                    &last_updated.millis(),
                    &method.as_str(),
                    &body.as_deref(),
                    &body.is_none(),
                ],
            )
            .await
            .map_err(fail)?
            .get(0);
        self.replace_index(tx, ty, rid, write_index(write), current.is_some()).await.map_err(fail)?;
        let v = StoredVersion { resource_type: ty, id: id.clone(), version_id, last_updated, method, body };
        Ok(match (method, current) {
            (Method::Delete, _) => WriteOutcome::Deleted(v),
            (_, Some((_, false))) => WriteOutcome::Updated(v),
            _ => WriteOutcome::Created(v),
        })
    }
}

fn audit_row(r: &Row) -> AuditRow {
    AuditRow {
        seq: r.get(0),
        record: AuditRecord { recorded: Instant::from_millis(r.get(1)), patient: r.get(2), event: r.get(3) },
        hash: r.get(4),
    }
}

const VERSION_COLUMNS: &str = "v.resource_type, v.id, v.version_id, v.last_updated, v.method, v.body";

const JOB_COLUMNS: &str = "id, status, request, result, created, heartbeat";

fn job_from_row(r: &Row) -> StoreResult<JobRecord> {
    let status: &str = r.get(1);
    Ok(JobRecord {
        id: r.get(0),
        status: JobStatus::parse(status)
            .ok_or_else(|| StoreError::Corrupt(format!("job status {status}")))?,
        request: r.get(2),
        result: r.get(3),
        created: Instant::from_millis(r.get(4)),
        heartbeat: Instant::from_millis(r.get(5)),
    })
}

fn version_from_row(row: &Row, offset: usize) -> StoreResult<StoredVersion> {
    let corrupt = |e: String| StoreError::Corrupt(e);
    let method: &str = row.get(offset + 4);
    Ok(StoredVersion {
        resource_type: ResourceType::parse(row.get(offset)).map_err(|e| corrupt(e.to_string()))?,
        id: ResourceId::parse(row.get(offset + 1)).map_err(|e| corrupt(e.to_string()))?,
        version_id: row.get::<_, i64>(offset + 2) as u64,
        last_updated: Instant::from_millis(row.get(offset + 3)),
        method: Method::parse(method).ok_or_else(|| corrupt(format!("method {method}")))?,
        body: row.get::<_, Option<&str>>(offset + 5).map(Arc::from),
    })
}

/// A database error, and whether retrying the transaction may succeed.
fn retryable(e: tokio_postgres::Error) -> (StoreError, bool) {
    let retry = e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
        || e.code() == Some(&tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE);
    (backend(e), retry)
}

fn pg_arg(a: SqlArg) -> Box<dyn ToSql + Sync + Send> {
    match a {
        SqlArg::Text(t) => Box::new(t),
        SqlArg::Int(i) => Box::new(i),
        SqlArg::Real(r) => Box::new(r),
        SqlArg::Null => Box::new(None::<String>),
    }
}

/// Turns `?` placeholders into `$1, $2, …` so one filter builder serves both dialects.
fn number_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

#[async_trait]
impl ResourceStore for PostgresStore {
    async fn read(&self, resource_type: ResourceType, id: &ResourceId) -> StoreResult<Option<StoredVersion>> {
        let client = self.pool.get().await.map_err(backend)?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {VERSION_COLUMNS} FROM resources r JOIN resource_versions v ON v.seq = r.seq
                 WHERE r.resource_type = $1 AND r.id = $2"
            ))
            .await
            .map_err(backend)?;
        let row = client.query_opt(&stmt, &[&resource_type.as_str(), &id.as_str()]).await.map_err(backend)?;
        row.map(|r| version_from_row(&r, 0)).transpose()
    }

    async fn vread(
        &self,
        resource_type: ResourceType,
        id: &ResourceId,
        version_id: u64,
    ) -> StoreResult<Option<StoredVersion>> {
        let client = self.pool.get().await.map_err(backend)?;
        let stmt = client
            .prepare_cached(&format!(
                "SELECT {VERSION_COLUMNS} FROM resource_versions v
                 WHERE v.resource_type = $1 AND v.id = $2 AND v.version_id = $3"
            ))
            .await
            .map_err(backend)?;
        let row = client
            .query_opt(&stmt, &[&resource_type.as_str(), &id.as_str(), &(version_id as i64)])
            .await
            .map_err(backend)?;
        row.map(|r| version_from_row(&r, 0)).transpose()
    }

    async fn write(&self, write: Write) -> StoreResult<WriteOutcome> {
        let mut outcomes = self.write_all(vec![write]).await?;
        outcomes.pop().ok_or_else(|| StoreError::Backend("no outcome".into()))
    }

    async fn write_all(&self, writes: Vec<Write>) -> StoreResult<Vec<WriteOutcome>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.try_write_all(&writes).await {
                Ok(outcomes) => return Ok(outcomes),
                Err((_, true)) if attempt < WRITE_ATTEMPTS => continue,
                Err((e, _)) => return Err(e),
            }
        }
    }

    async fn history(&self, q: &HistoryQuery) -> StoreResult<HistoryPage> {
        let (filter, args) = history_filter(q);
        let args: Vec<Box<dyn ToSql + Sync + Send>> = args.into_iter().map(pg_arg).collect();
        let client = self.pool.get().await.map_err(backend)?;
        let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect();
        let total: i64 = client
            .query_one(
                &number_placeholders(&format!("SELECT count(*) FROM resource_versions v WHERE {filter}")),
                &refs,
            )
            .await
            .map_err(backend)?
            .get(0);
        let mut page_filter = filter;
        let before = q.before_seq.unwrap_or(i64::MAX);
        let limit = (q.count + 1) as i64;
        page_filter.push_str(" AND v.seq < ?");
        let mut page_refs = refs.clone();
        page_refs.push(&before);
        page_refs.push(&limit);
        let sql = number_placeholders(&format!(
            "SELECT v.seq, {VERSION_COLUMNS} FROM resource_versions v WHERE {page_filter} ORDER BY v.seq DESC LIMIT ?"
        ));
        let rows = client.query(&sql, &page_refs).await.map_err(backend)?;
        let mut versions = rows
            .iter()
            .map(|r| Ok((r.get::<_, i64>(0), version_from_row(r, 1)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let next = (versions.len() > q.count).then(|| {
            versions.truncate(q.count);
            versions.last().map(|(s, _)| *s).unwrap_or_default()
        });
        Ok(HistoryPage { versions, next_before_seq: next, total: total as u64 })
    }

    async fn search(&self, q: &SearchQuery) -> StoreResult<(Vec<(i64, StoredVersion)>, Option<u64>)> {
        let (filter, args) = search_filter(&q.resource_type, &q.clauses, "r", 0);
        let (cursor, order, page_only) = q.page_sql("r");
        let counted = q.want_total && q.cursor == Cursor::Start;
        // Placeholders are numbered in the text's order: in the counted form the sort keys
        // (in the window, before WHERE) come first; there is no cursor condition.
        let mut page_args: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        if counted {
            page_args.extend(page_only.into_iter().map(pg_arg));
            page_args.extend(args.iter().cloned().map(pg_arg));
        } else {
            page_args.extend(args.iter().cloned().map(pg_arg));
            page_args.extend(page_only.into_iter().map(pg_arg));
        }
        page_args.push(Box::new(q.count as i64));
        page_args.push(Box::new(q.offset as i64));
        // A first page that needs the total counts the matches in the same pass that finds
        // them (a window over the keys; the versions are joined for the page only). Counting
        // in a second query filtered every candidate twice: a heavy patient's observations by
        // code and date took 35 ms at p99 that way.
        let page_sql = number_placeholders(&if counted {
            format!(
                "SELECT p.rid, {VERSION_COLUMNS}, p.total FROM (
                   SELECT r.rid, r.seq, count(*) OVER () AS total, row_number() OVER (ORDER BY {order}) AS n
                   FROM resources r WHERE {filter}{cursor} ORDER BY n LIMIT ? OFFSET ?
                 ) p JOIN resource_versions v ON v.seq = p.seq ORDER BY p.n"
            )
        } else {
            format!(
                "SELECT r.rid, {VERSION_COLUMNS} FROM resources r JOIN resource_versions v ON v.seq = r.seq
                 WHERE {filter}{cursor} ORDER BY {order} LIMIT ? OFFSET ?"
            )
        });
        let client = self.pool.get().await.map_err(backend)?;
        let refs: Vec<&(dyn ToSql + Sync)> =
            page_args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect();
        let rows = client.query(&page_sql, &refs).await.map_err(backend)?;
        let versions = rows
            .iter()
            .map(|r| Ok((r.get::<_, i64>(0), version_from_row(r, 1)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let counted_total = match rows.first() {
            Some(row) if counted => Some(row.get::<_, i64>(row.len() - 1) as u64),
            _ => None,
        };
        let total = if !q.want_total {
            None
        } else if let Some(total) = counted_total.or_else(|| q.total_from_page(versions.len())) {
            Some(total)
        } else {
            let count_args: Vec<Box<dyn ToSql + Sync + Send>> = args.into_iter().map(pg_arg).collect();
            let refs: Vec<&(dyn ToSql + Sync)> =
                count_args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect();
            let sql = number_placeholders(&format!("SELECT count(*) FROM resources r WHERE {filter}"));
            Some(client.query_one(&sql, &refs).await.map_err(backend)?.get::<_, i64>(0) as u64)
        };
        Ok((versions, total))
    }

    async fn position(&self, q: &SearchQuery, rid: i64) -> StoreResult<Position> {
        let Some((sql, args)) = q.position_sql() else { return Ok(Position::key(rid)) };
        let mut args: Vec<Box<dyn ToSql + Sync + Send>> = args.into_iter().map(pg_arg).collect();
        args.push(Box::new(rid));
        let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref() as &(dyn ToSql + Sync)).collect();
        let client = self.pool.get().await.map_err(backend)?;
        let row = client.query_one(&number_placeholders(&sql), &refs).await.map_err(backend)?;
        let values = q
            .sort
            .iter()
            .enumerate()
            .map(|(i, key)| match key.value_kind() {
                SortValueKind::Int => row.get::<_, Option<i64>>(i).map_or(SortValue::Null, SortValue::Int),
                SortValueKind::Real => row.get::<_, Option<f64>>(i).map_or(SortValue::Null, SortValue::Real),
                SortValueKind::Text => {
                    row.get::<_, Option<String>>(i).map_or(SortValue::Null, SortValue::Text)
                }
            })
            .collect();
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
        let ids: Vec<&str> = ids.iter().map(ResourceId::as_str).collect();
        let client = self.pool.get().await.map_err(backend)?;
        let rows = client
            .query(
                "SELECT x.param, x.target_type, x.target_id FROM search_reference x JOIN resources r ON r.rid = x.rid
                 WHERE r.resource_type = $1 AND r.id = ANY($2) AND x.target_type IS NOT NULL
                   AND x.target_id IS NOT NULL AND ($3::text IS NULL OR x.param = $3)",
                &[&resource_type.as_str(), &ids, &param],
            )
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }

    async fn references_to(
        &self,
        target_type: ResourceType,
        target_id: &ResourceId,
    ) -> StoreResult<Vec<(String, String, i64)>> {
        let client = self.pool.get().await.map_err(backend)?;
        let rows = client
            .query(
                "SELECT x.resource_type, x.param, x.rid FROM search_reference x WHERE x.target_type = $1 AND x.target_id = $2",
                &[&target_type.as_str(), &target_id.as_str()],
            )
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }

    async fn read_keys(&self, rids: &[i64]) -> StoreResult<Vec<(i64, StoredVersion)>> {
        let client = self.pool.get().await.map_err(backend)?;
        let rows = client
            .query(
                &format!(
                    "SELECT r.rid, {VERSION_COLUMNS} FROM resources r JOIN resource_versions v ON v.seq = r.seq
                     WHERE r.rid = ANY($1) AND NOT r.deleted ORDER BY r.rid"
                ),
                &[&rids],
            )
            .await
            .map_err(backend)?;
        rows.iter().map(|r| Ok((r.get::<_, i64>(0), version_from_row(r, 1)?))).collect()
    }

    async fn scan_current(&self, after_rid: i64, limit: usize) -> StoreResult<Vec<(i64, StoredVersion)>> {
        let client = self.pool.get().await.map_err(backend)?;
        let rows = client
            .query(
                &format!(
                    "SELECT r.rid, {VERSION_COLUMNS} FROM resources r JOIN resource_versions v ON v.seq = r.seq
                     WHERE r.rid > $1 AND NOT r.deleted ORDER BY r.rid LIMIT $2"
                ),
                &[&after_rid, &(limit as i64)],
            )
            .await
            .map_err(backend)?;
        rows.iter().map(|r| Ok((r.get::<_, i64>(0), version_from_row(r, 1)?))).collect()
    }

    async fn count_current(&self) -> StoreResult<u64> {
        let client = self.pool.get().await.map_err(backend)?;
        let row = client
            .query_one("SELECT count(*) FROM resources WHERE NOT deleted", &[])
            .await
            .map_err(backend)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn kv_get(&self, key: &str, now: Instant) -> StoreResult<Option<String>> {
        let client = self.pool.get().await.map_err(backend)?;
        let row = client
            .query_opt(
                "SELECT value FROM server_kv WHERE key = $1 AND (expires IS NULL OR expires > $2)",
                &[&key, &now.millis()],
            )
            .await
            .map_err(backend)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn kv_put(&self, key: &str, value: &str, expires: Option<Instant>) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(backend)?;
        client
            .execute(
                "INSERT INTO server_kv (key, value, expires) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
                &[&key, &value, &expires.map(|e| e.millis())],
            )
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn kv_put_new(
        &self,
        key: &str,
        value: &str,
        expires: Option<Instant>,
        now: Instant,
    ) -> StoreResult<bool> {
        let client = self.pool.get().await.map_err(backend)?;
        // Inserted, or replacing an expired value: one row either way; a live value stays.
        let n = client
            .execute(
                "INSERT INTO server_kv (key, value, expires) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires
                 WHERE server_kv.expires IS NOT NULL AND server_kv.expires <= $4",
                &[&key, &value, &expires.map(|e| e.millis()), &now.millis()],
            )
            .await
            .map_err(backend)?;
        Ok(n == 1)
    }

    async fn kv_list(&self, prefix: &str, now: Instant) -> StoreResult<Vec<(String, String)>> {
        let client = self.pool.get().await.map_err(backend)?;
        let rows = client
            .query(
                "SELECT key, value FROM server_kv WHERE substr(key, 1, length($1)) = $1
                   AND (expires IS NULL OR expires > $2) ORDER BY key",
                &[&prefix, &now.millis()],
            )
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn kv_delete(&self, key: &str) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(backend)?;
        client.execute("DELETE FROM server_kv WHERE key = $1", &[&key]).await.map_err(backend)?;
        Ok(())
    }

    /// See `chain`.
    async fn append_audit(&self, records: Vec<AuditRecord>) -> StoreResult<()> {
        let mut client = self.pool.get().await.map_err(backend)?;
        let tx = client.transaction().await.map_err(backend)?;
        chain(&tx, &records).await?;
        tx.commit().await.map_err(backend)
    }

    /// The outbox and the chain are in one database: entries move in one transaction.
    async fn drain_audit_outbox(&self) -> StoreResult<usize> {
        let mut client = self.pool.get().await.map_err(backend)?;
        let tx = client.transaction().await.map_err(backend)?;
        // Another server draining holds the rows: wait for the chain's lock first, so the
        // rows read here are the ones nobody else is moving.
        tx.batch_execute("SELECT pg_advisory_xact_lock(7420114)").await.map_err(backend)?;
        let rows = tx
            .query("SELECT id, recorded, patient, event FROM audit_outbox ORDER BY id LIMIT 10000", &[])
            .await
            .map_err(backend)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let records: Vec<AuditRecord> = rows
            .iter()
            .map(|r| AuditRecord {
                recorded: Instant::from_millis(r.get(1)),
                patient: r.get(2),
                event: r.get(3),
            })
            .collect();
        let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        chain(&tx, &records).await?;
        tx.execute("DELETE FROM audit_outbox WHERE id = ANY($1)", &[&ids]).await.map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(records.len())
    }

    async fn audit_entries(&self, after_seq: i64, limit: usize) -> StoreResult<Vec<AuditRow>> {
        let client = self.pool.get().await.map_err(backend)?;
        let rows = client
            .query(
                "SELECT seq, recorded, patient, event, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after_seq, &(limit as i64)],
            )
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(audit_row).collect())
    }

    async fn audit_for_patient(&self, patient: &str, limit: usize) -> StoreResult<Vec<AuditRow>> {
        let client = self.pool.get().await.map_err(backend)?;
        let rows = client
            .query(
                "SELECT seq, recorded, patient, event, hash FROM audit_log WHERE patient = $1 ORDER BY seq DESC LIMIT $2",
                &[&patient, &(limit as i64)],
            )
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(audit_row).collect())
    }

    async fn put_job(&self, job: &JobRecord) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(backend)?;
        client
            .execute(
                &format!(
                    "INSERT INTO bulk_jobs ({JOB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (id) DO UPDATE SET status = excluded.status, request = excluded.request,
                       result = excluded.result, created = excluded.created, heartbeat = excluded.heartbeat"
                ),
                &[
                    &job.id,
                    &job.status.as_str(),
                    &job.request,
                    &job.result,
                    &job.created.millis(),
                    &job.heartbeat.millis(),
                ],
            )
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn job(&self, id: &str) -> StoreResult<Option<JobRecord>> {
        let client = self.pool.get().await.map_err(backend)?;
        let row = client
            .query_opt(&format!("SELECT {JOB_COLUMNS} FROM bulk_jobs WHERE id = $1"), &[&id])
            .await
            .map_err(backend)?;
        row.map(|r| job_from_row(&r)).transpose()
    }

    async fn take_over_stale_jobs(&self, stale_before: Instant, now: Instant) -> StoreResult<Vec<JobRecord>> {
        let mut client = self.pool.get().await.map_err(backend)?;
        let tx = client.transaction().await.map_err(backend)?;
        let rows = tx
            .query(
                &format!(
                    "UPDATE bulk_jobs SET heartbeat = $1 WHERE status = 'running' AND heartbeat < $2 RETURNING {JOB_COLUMNS}"
                ),
                &[&now.millis(), &stale_before.millis()],
            )
            .await
            .map_err(backend)?;
        let jobs = rows.iter().map(job_from_row).collect::<StoreResult<Vec<_>>>()?;
        for job in &jobs {
            tx.execute("DELETE FROM bulk_job_files WHERE job_id = $1", &[&job.id]).await.map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(jobs)
    }

    async fn expired_jobs(&self, before: Instant) -> StoreResult<Vec<String>> {
        let client = self.pool.get().await.map_err(backend)?;
        let rows = client
            .query(
                "SELECT id FROM bulk_jobs WHERE status <> 'running' AND heartbeat < $1",
                &[&before.millis()],
            )
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn delete_job(&self, id: &str) -> StoreResult<()> {
        let mut client = self.pool.get().await.map_err(backend)?;
        let tx = client.transaction().await.map_err(backend)?;
        tx.execute("DELETE FROM bulk_job_files WHERE job_id = $1", &[&id]).await.map_err(backend)?;
        tx.execute("DELETE FROM bulk_jobs WHERE id = $1", &[&id]).await.map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn put_job_file(&self, job: &str, n: u32, body: String) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(backend)?;
        client
            .execute(
                "INSERT INTO bulk_job_files (job_id, n, body) VALUES ($1, $2, $3)
                 ON CONFLICT (job_id, n) DO UPDATE SET body = excluded.body",
                &[&job, &(n as i64), &body],
            )
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn job_file(&self, job: &str, n: u32) -> StoreResult<Option<String>> {
        let client = self.pool.get().await.map_err(backend)?;
        let row = client
            .query_opt("SELECT body FROM bulk_job_files WHERE job_id = $1 AND n = $2", &[&job, &(n as i64)])
            .await
            .map_err(backend)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn ping(&self) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(backend)?;
        client.execute("SELECT 1", &[]).await.map_err(backend)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close();
    }

    fn backend_name(&self) -> &'static str {
        "postgres"
    }
}

/// Appends records to the access log's chain inside `tx`: one appender at a time across
/// every server (the chain's last hash is read and extended under an advisory lock), one
/// statement per batch, committed without waiting for the WAL flush (`synchronous_commit =
/// off`: on disk within `wal_writer_delay`), since waiting for it on every read's entry held
/// reads to a fifth of their speed. Entries that must not be lost travel in the outbox.
async fn chain(tx: &deadpool_postgres::Transaction<'_>, records: &[AuditRecord]) -> StoreResult<()> {
    tx.batch_execute("SET LOCAL synchronous_commit = off; SELECT pg_advisory_xact_lock(7420114)")
        .await
        .map_err(backend)?;
    let mut previous: String = tx
        .query_opt("SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1", &[])
        .await
        .map_err(backend)?
        .map_or_else(|| AUDIT_GENESIS.to_owned(), |r| r.get(0));
    let mut hashes = Vec::with_capacity(records.len());
    for r in records {
        previous = audit_hash(&previous, r);
        hashes.push(previous.clone());
    }
    let recorded: Vec<i64> = records.iter().map(|r| r.recorded.millis()).collect();
    let patients: Vec<Option<&str>> = records.iter().map(|r| r.patient.as_deref()).collect();
    let events: Vec<&str> = records.iter().map(|r| r.event.as_str()).collect();
    tx.execute(
        "INSERT INTO audit_log (recorded, patient, event, hash)
         SELECT r, p, e, h FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(r, p, e, h, n)
         ORDER BY n",
        &[&recorded, &patients, &events, &hashes],
    )
    .await
    .map_err(backend)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(super::number_placeholders("a = ? AND b < ? LIMIT ?"), "a = $1 AND b < $2 LIMIT $3");
    }
}
