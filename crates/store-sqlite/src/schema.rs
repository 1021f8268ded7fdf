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
    Ok(())
}

/// Each entry moves the schema from version `i` to `i + 1`.
fn migrations() -> Vec<String> {
    vec![MIGRATION_1.to_owned(), helse_store::index_schema("REAL")]
}

const MIGRATION_1: &str =
    // 1: versions hold every body ever written; `resources` points at the current one.
    // 2: search index tables (current versions only).
    "CREATE TABLE resource_versions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        resource_type TEXT NOT NULL,
        id TEXT NOT NULL,
        version_id INTEGER NOT NULL,
        last_updated INTEGER NOT NULL,
        method TEXT NOT NULL,
        body TEXT,
        UNIQUE (resource_type, id, version_id)
     );
     CREATE INDEX resource_versions_by_type ON resource_versions (resource_type, seq);
     CREATE INDEX resource_versions_by_time ON resource_versions (last_updated);
     CREATE TABLE resources (
        rid INTEGER PRIMARY KEY,
        resource_type TEXT NOT NULL,
        id TEXT NOT NULL,
        version_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        deleted INTEGER NOT NULL,
        UNIQUE (resource_type, id)
     );
     CREATE INDEX resources_by_type ON resources (resource_type, deleted, seq);";

pub(crate) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    for (i, sql) in migrations().iter().enumerate().skip(current) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
