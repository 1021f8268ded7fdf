//! Connection settings and schema migrations (tracked in `PRAGMA user_version`).

use rusqlite::Connection;

use crate::Durability;

pub(crate) fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        },
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // A 64 MiB page cache keeps the index B-trees' hot pages in memory between commits.
    conn.pragma_update(None, "cache_size", -65536)?;
    // Table statistics for the query planner, refreshed when tables have grown (see
    // https://sqlite.org/lang_analyze.html#pragopt); the writer repeats it as data arrives.
    conn.execute_batch("PRAGMA optimize=0x10002")?;
    Ok(())
}

pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    for (i, sql) in
        helse_store::schema_migrations(helse_store::SqlDialect::SQLITE).iter().enumerate().skip(current)
    {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// The access log's own file: one table, versioned in its `user_version`.
pub(crate) fn migrate_audit(conn: &Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current < 1 {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(&helse_store::audit_schema(helse_store::SqlDialect::SQLITE))?;
        tx.pragma_update(None, "user_version", 1)?;
        tx.commit()?;
    }
    Ok(())
}
