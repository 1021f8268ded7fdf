//! The SQL filter for a history query, shared by the SQL backends (`?` placeholders).

use crate::{HistoryQuery, HistoryScope};

/// A bound parameter of a generated SQL fragment.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlArg {
    Text(String),
    Int(i64),
    Real(f64),
    Null,
}

/// `WHERE` conditions over `resource_versions v` for the scope, `_since` and `_at` (a version
/// counts for `_at` when its lifetime, up to the next version, overlaps the range).
pub fn history_filter(q: &HistoryQuery) -> (String, Vec<SqlArg>) {
    let mut sql = String::from("1 = 1");
    let mut args = Vec::new();
    match &q.scope {
        HistoryScope::System => {}
        HistoryScope::Type(t) => {
            sql.push_str(" AND v.resource_type = ?");
            args.push(SqlArg::Text(t.as_str().to_owned()));
        }
        HistoryScope::Instance(t, id) => {
            sql.push_str(" AND v.resource_type = ? AND v.id = ?");
            args.push(SqlArg::Text(t.as_str().to_owned()));
            args.push(SqlArg::Text(id.as_str().to_owned()));
        }
    }
    if let Some(since) = q.since {
        sql.push_str(" AND v.last_updated >= ?");
        args.push(SqlArg::Int(since.millis()));
    }
    if let Some((start, end)) = q.at {
        sql.push_str(
            " AND v.last_updated < ? AND COALESCE((SELECT n.last_updated FROM resource_versions n
               WHERE n.resource_type = v.resource_type AND n.id = v.id AND n.version_id = v.version_id + 1),
               9223372036854775807) > ?",
        );
        args.push(SqlArg::Int(end.millis()));
        args.push(SqlArg::Int(start.millis()));
    }
    (sql, args)
}
