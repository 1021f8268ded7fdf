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
    let mut migrations = helse_store::schema_migrations(helse_store::SqlDialect::SQLITE);
    migrations.push(helse_store::audit_outbox_schema(helse_store::SqlDialect::SQLITE));
    for (i, sql) in migrations.iter().enumerate().skip(current) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// The access log's own file, versioned in its `user_version`: the chain, then the last
/// outbox key moved into it (the outbox is in the other file, so moving an entry is two
/// transactions; this marker makes a repeated move skip what is already chained).
pub(crate) fn migrate_audit(conn: &Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let migrations = [
        helse_store::audit_schema(helse_store::SqlDialect::SQLITE),
        "CREATE TABLE audit_moved (last_outbox_id INTEGER NOT NULL); INSERT INTO audit_moved VALUES (0);"
            .to_owned(),
    ];
    for (i, sql) in migrations.iter().enumerate().skip(current as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
