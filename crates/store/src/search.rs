//! Search, storage-neutral: the index rows a write carries, the query the search layer builds,
//! and the SQL both SQL backends run for it (`?` placeholders, like `history_filter`).
//!
//! Only current versions are indexed: a write replaces the resource's rows, a delete removes
//! them. A condition is an `EXISTS` over one index table, correlated with the resource row, so
//! every search is a conjunction of indexed lookups.

use crate::SqlArg;

/// One value of one search parameter, as indexed at write time.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexValue {
    /// `system|code`; `text` is the lower-cased display text for `:text`.
    Token {
        system: Option<String>,
        code: String,
        text: Option<String>,
    },
    /// `normalized` (lower case, accents removed) serves the default and `:contains` searches,
    /// `exact` the `:exact` modifier.
    String {
        normalized: String,
        exact: String,
    },
    /// `[start, end)` in epoch milliseconds; open ends are `i64::MIN`/`i64::MAX`.
    Date {
        start: i64,
        end: i64,
    },
    /// A reference: `Type/id` (local or absolute) or a URL (canonical, external).
    Reference {
        target_type: Option<String>,
        target_id: Option<String>,
        url: Option<String>,
    },
    Number(f64),
    Quantity {
        value: f64,
        system: Option<String>,
        code: Option<String>,
    },
    Uri(String),
}

impl IndexValue {
    pub fn table(&self) -> IndexTable {
        match self {
            IndexValue::Token { .. } => IndexTable::Token,
            IndexValue::String { .. } => IndexTable::String,
            IndexValue::Date { .. } => IndexTable::Date,
            IndexValue::Reference { .. } => IndexTable::Reference,
            IndexValue::Number(_) => IndexTable::Number,
            IndexValue::Quantity { .. } => IndexTable::Quantity,
            IndexValue::Uri(_) => IndexTable::Uri,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    /// The search parameter's code, e.g. `family`; `code-value-quantity$1` for the second
    /// component of a composite parameter.
    pub param: String,
    pub value: IndexValue,
    /// For composite components: which element of the resource the value came from (from 1),
    /// so that the components of one element are matched together. `None` otherwise.
    pub group: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexTable {
    Token,
    String,
    Date,
    Reference,
    Number,
    Quantity,
    Uri,
}

impl IndexTable {
    pub const ALL: [IndexTable; 7] = [
        IndexTable::Token,
        IndexTable::String,
        IndexTable::Date,
        IndexTable::Reference,
        IndexTable::Number,
        IndexTable::Quantity,
        IndexTable::Uri,
    ];
    pub fn name(self) -> &'static str {
        match self {
            IndexTable::Token => "search_token",
            IndexTable::String => "search_string",
            IndexTable::Date => "search_date",
            IndexTable::Reference => "search_reference",
            IndexTable::Number => "search_number",
            IndexTable::Quantity => "search_quantity",
            IndexTable::Uri => "search_uri",
        }
    }
    /// Value columns after `(resource_type, id, param)`.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            IndexTable::Token => &["system", "code", "text"],
            IndexTable::String => &["value", "exact"],
            IndexTable::Date => &["start_ms", "end_ms"],
            IndexTable::Reference => &["target_type", "target_id", "url"],
            IndexTable::Number => &["value"],
            IndexTable::Quantity => &["value", "system", "code"],
            IndexTable::Uri => &["value"],
        }
    }
}

/// Which `[start, end)` relation a date, number or quantity condition asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
    Ap,
}

impl Prefix {
    /// Splits a leading prefix off a search value.
    pub fn split(value: &str) -> (Prefix, &str) {
        let prefixes = [
            ("eq", Prefix::Eq),
            ("ne", Prefix::Ne),
            ("gt", Prefix::Gt),
            ("lt", Prefix::Lt),
            ("ge", Prefix::Ge),
            ("le", Prefix::Le),
            ("sa", Prefix::Sa),
            ("eb", Prefix::Eb),
            ("ap", Prefix::Ap),
        ];
        for (p, prefix) in prefixes {
            if let Some(rest) = value.strip_prefix(p)
                && rest.starts_with(|c: char| c.is_ascii_digit() || c == '-')
            {
                return (prefix, rest);
            }
        }
        (Prefix::Eq, value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringMatch {
    Prefix,
    Exact,
    Contains,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriMatch {
    Exact,
    /// The stored URI starts with the search value.
    Below,
    /// The search value starts with the stored URI.
    Above,
}

/// Which system a token condition requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSystem {
    Any,
    /// `|code`: no system.
    Absent,
    Is(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Id(Vec<String>),
    LastUpdated {
        prefix: Prefix,
        start: i64,
        end: i64,
    },
    Token {
        param: String,
        system: TokenSystem,
        code: Option<String>,
    },
    TokenText {
        param: String,
        text: String,
    },
    /// `value` is normalised for `Prefix`/`Contains`, as typed for `Exact`.
    String {
        param: String,
        value: String,
        mode: StringMatch,
    },
    Date {
        param: String,
        prefix: Prefix,
        start: i64,
        end: i64,
    },
    Number {
        param: String,
        prefix: Prefix,
        low: f64,
        high: f64,
    },
    Quantity {
        param: String,
        prefix: Prefix,
        low: f64,
        high: f64,
        system: Option<String>,
        code: Option<String>,
    },
    Uri {
        param: String,
        value: String,
        mode: UriMatch,
    },
    Reference {
        param: String,
        target_type: Option<String>,
        target_id: Option<String>,
        url: Option<String>,
    },
    /// `subject:Patient.name=x`: the reference's target (of `target_type`) matches `inner`.
    Chain {
        param: String,
        target_type: String,
        inner: Vec<Clause>,
    },
    /// `_has:Observation:subject:code=x`: some `source_type` resource refers here through
    /// `param` and matches `inner`.
    Has {
        source_type: String,
        param: String,
        inner: Vec<Clause>,
    },
    Missing {
        param: String,
        table: IndexTable,
        missing: bool,
    },
    /// A composite parameter: every part (on `param$k`, an index condition) holds for the
    /// same element of the resource.
    Composite {
        param: String,
        parts: Vec<Condition>,
    },
    /// Any of the conditions holds.
    AnyOf(Vec<Condition>),
    /// The condition does not hold (`:not`).
    Not(Box<Condition>),
}

/// Alternatives joined by OR (a comma in the URL).
#[derive(Debug, Clone, PartialEq)]
pub struct Clause(pub Vec<Condition>);

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub param: String,
    pub table: IndexTable,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub resource_type: String,
    /// All must hold (repetition in the URL).
    pub clauses: Vec<Clause>,
    pub sort: Vec<SortKey>,
    pub count: usize,
    /// Rows to skip (an explicit `_offset`); paging links use `cursor`.
    pub offset: usize,
    /// Keyset paging: only resources after, or before (returned nearest first), a position
    /// in the query's order. Pages stay put while writes happen.
    pub cursor: Cursor,
    pub want_total: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum Cursor {
    #[default]
    Start,
    After(Position),
    Before(Position),
}

/// A place in a search's order: the sort values of a page's boundary resource (one per sort
/// key; none in the default order), then its key, which breaks ties and never changes. The
/// values travel with the position, so a page stays put even when the boundary resource is
/// changed or deleted.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Position {
    pub values: Vec<SortValue>,
    pub rid: i64,
}

impl Position {
    /// A position in the default order (by key).
    pub fn key(rid: i64) -> Position {
        Position { values: Vec::new(), rid }
    }
}

/// A value a search is sorted by (the kind follows the sort key's index table).
#[derive(Debug, Clone, PartialEq)]
pub enum SortValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl SortKey {
    /// What kind of value the key sorts by.
    pub fn value_kind(&self) -> SortValueKind {
        match self.table {
            IndexTable::Date => SortValueKind::Int,
            IndexTable::Number | IndexTable::Quantity => SortValueKind::Real,
            _ => SortValueKind::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortValueKind {
    Int,
    Real,
    Text,
}

impl SearchQuery {
    /// The total, when the first page already holds every match (it came back short): no
    /// second query needed.
    pub fn total_from_page(&self, rows: usize) -> Option<u64> {
        (self.cursor == Cursor::Start && self.offset == 0 && rows < self.count).then_some(rows as u64)
    }

    /// The page's extra condition and order for the cursor (`?` placeholders), with the
    /// arguments in text order (condition, then order).
    pub fn page_sql(&self, alias: &str) -> (String, String, Vec<SqlArg>) {
        match &self.cursor {
            Cursor::Start => {
                let (order, args) = order_by(&self.sort, alias, false);
                (String::new(), order, args)
            }
            Cursor::After(p) | Cursor::Before(p) => {
                let forward = matches!(self.cursor, Cursor::After(_));
                let (cond, mut args) = beyond(&self.sort, p, alias, forward);
                let (order, order_args) = order_by(&self.sort, alias, !forward);
                args.extend(order_args);
                (format!(" AND ({cond})"), order, args)
            }
        }
    }

    /// `SELECT` of one resource's sort values (its key bound last), for the position of a
    /// page's boundary; `None` in the default order, where the key alone is the position.
    pub fn position_sql(&self) -> Option<(String, Vec<SqlArg>)> {
        if self.sort.is_empty() {
            return None;
        }
        let exprs: Vec<String> = self.sort.iter().map(|k| sort_expr(k, "r")).collect();
        let args = self.sort.iter().map(|k| SqlArg::Text(k.param.clone())).collect();
        Some((format!("SELECT {} FROM resources r WHERE r.rid = ?", exprs.join(", ")), args))
    }
}

/// Rows past `p` in the traversal direction (forward: the query's order; backward: its
/// reverse). Lexicographic over the sort keys, then the key, with resources without a value
/// last in the query's order.
fn beyond(sort: &[SortKey], p: &Position, alias: &str, forward: bool) -> (String, Vec<SqlArg>) {
    let mut alternatives = Vec::new();
    let mut args = Vec::new();
    let mut equal_so_far: Vec<(String, Vec<SqlArg>)> = Vec::new();
    for (key, value) in sort.iter().zip(&p.values) {
        let e = sort_expr(key, alias);
        let param = || SqlArg::Text(key.param.clone());
        let greater = forward != key.descending;
        let op = if greater { ">" } else { "<" };
        let past: (String, Vec<SqlArg>) = match (value.arg(), forward) {
            // Nothing comes after a missing value (missing values are last)…
            (None, true) => ("1 = 0".into(), Vec::new()),
            // …and every present value comes before one.
            (None, false) => (format!("{e} IS NOT NULL"), vec![param()]),
            (Some(v), true) => (format!("({e} IS NULL OR {e} {op} ?)"), vec![param(), param(), v]),
            (Some(v), false) => (format!("({e} IS NOT NULL AND {e} {op} ?)"), vec![param(), param(), v]),
        };
        let mut parts: Vec<String> = equal_so_far.iter().map(|(s, _)| s.clone()).collect();
        parts.push(past.0);
        alternatives.push(format!("({})", parts.join(" AND ")));
        args.extend(equal_so_far.iter().flat_map(|(_, a)| a.clone()));
        args.extend(past.1);
        equal_so_far.push(match value.arg() {
            None => (format!("{e} IS NULL"), vec![param()]),
            Some(v) => (format!("{e} = ?"), vec![param(), v]),
        });
    }
    let mut parts: Vec<String> = equal_so_far.iter().map(|(s, _)| s.clone()).collect();
    parts.push(format!("{alias}.rid {} ?", if forward { ">" } else { "<" }));
    alternatives.push(format!("({})", parts.join(" AND ")));
    args.extend(equal_so_far.into_iter().flat_map(|(_, a)| a));
    args.push(SqlArg::Int(p.rid));
    (alternatives.join(" OR "), args)
}

impl SortValue {
    fn arg(&self) -> Option<SqlArg> {
        match self {
            SortValue::Null => None,
            SortValue::Int(i) => Some(SqlArg::Int(*i)),
            SortValue::Real(r) => Some(SqlArg::Real(*r)),
            SortValue::Text(t) => Some(SqlArg::Text(t.clone())),
        }
    }
}

/// `WHERE` conditions over `resources {alias}` (current, not deleted, of the type).
pub fn search_filter(
    resource_type: &str,
    clauses: &[Clause],
    alias: &str,
    depth: usize,
) -> (String, Vec<SqlArg>) {
    let mut sql = format!("{alias}.resource_type = ? AND NOT {alias}.deleted");
    let mut args = vec![SqlArg::Text(resource_type.to_owned())];
    // The most selective clause drives the query (its index rows are looked up and the
    // resources fetched by key); every other clause is checked per candidate through the
    // index rows of that one resource. Checking every clause as its own `IN` list would
    // materialise them all, which for a broad clause (a date range) is most of a table.
    let mut ordered: Vec<&Clause> = clauses.iter().collect();
    ordered.sort_by_key(|c| selectivity(c));
    for (i, clause) in ordered.into_iter().enumerate() {
        let probe = if i == 0 && selectivity(clause) <= DRIVING_RANK { Probe::Drive } else { Probe::Check };
        // A driving OR is one set (a UNION), not an OR of `IN`s: PostgreSQL answers the
        // latter by filtering every resource of the type (236 ms against 0.7 ms for a
        // chain whose inner clause has two alternatives, on 200k resources).
        if probe == Probe::Drive
            && clause.0.len() > 1
            && let Some((set, a)) = union_set(&clause.0, resource_type, depth)
        {
            sql.push_str(&format!(" AND {alias}.rid IN ({set})"));
            args.extend(a);
            continue;
        }
        let mut parts = Vec::new();
        for condition in &clause.0 {
            let (s, a) = condition_sql(condition, resource_type, alias, depth, probe);
            parts.push(s);
            args.extend(a);
        }
        if !parts.is_empty() {
            sql.push_str(&format!(" AND ({})", parts.join(" OR ")));
        }
    }
    (sql, args)
}

/// How a condition on index rows is phrased: as the set of resources it selects (to drive
/// the query from), or as a check of one candidate resource's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Drive,
    Check,
}

/// Clauses ranked this selective or better may drive a query.
const DRIVING_RANK: u8 = 4;

/// A rough rank of how few resources a clause selects (lower is fewer): an id or a reference
/// to one resource first, ranges and negations last. A clause (an OR) is as broad as its
/// broadest condition.
fn selectivity(clause: &Clause) -> u8 {
    fn rank(c: &Condition) -> u8 {
        match c {
            Condition::Id(_) => 0,
            Condition::Reference { target_id: Some(_), .. } => 1,
            Condition::Token { code: Some(_), .. } | Condition::Uri { .. } | Condition::Composite { .. } => 2,
            Condition::String { .. } | Condition::Chain { .. } => 3,
            Condition::Has { .. } | Condition::TokenText { .. } | Condition::Token { code: None, .. } => 4,
            Condition::AnyOf(cs) => cs.iter().map(rank).max().unwrap_or(0),
            Condition::Date { .. }
            | Condition::LastUpdated { .. }
            | Condition::Number { .. }
            | Condition::Quantity { .. }
            | Condition::Reference { target_id: None, .. } => 5,
            Condition::Missing { .. } | Condition::Not(_) => 6,
        }
    }
    clause.0.iter().map(rank).max().unwrap_or(0)
}

/// The resources with a row in one index table for the parameter bound as the next argument:
/// driving, `rid IN (SELECT …)`, an uncorrelated subquery the planner runs first; checking,
/// `EXISTS (…)` over the candidate's own rows (the `_by_resource` index).
fn exists(table: IndexTable, ty: &str, alias: &str, depth: usize, cond: &str, probe: Probe) -> String {
    match probe {
        Probe::Drive => format!("{alias}.rid IN ({})", rows_with(table, ty, depth, cond)),
        // The type is repeated (though the key alone decides) so that an exact condition can
        // be checked with one seek in the lookup index, which ends in `rid`.
        Probe::Check => {
            let x = format!("x{depth}");
            let cond = cond.replace("{x}", &x);
            let cond = if cond.is_empty() { String::new() } else { format!(" AND {cond}") };
            format!(
                "EXISTS (SELECT 1 FROM {} {x} WHERE {x}.resource_type = {} AND {x}.param = ?{cond} AND {x}.rid = {alias}.rid)",
                table.name(),
                type_literal(ty),
            )
        }
    }
}

/// `SELECT rid` of the resources of a type with a row in one index table for the parameter
/// bound as the next argument and matching `cond` over the row `{x}`.
fn rows_with(table: IndexTable, ty: &str, depth: usize, cond: &str) -> String {
    let x = format!("x{depth}");
    let cond = cond.replace("{x}", &x);
    let cond = if cond.is_empty() { String::new() } else { format!(" AND {cond}") };
    format!(
        "SELECT {x}.rid FROM {} {x} WHERE {x}.resource_type = {} AND {x}.param = ?{cond}",
        table.name(),
        type_literal(ty)
    )
}

/// Alternatives as one `SELECT rid … UNION ALL …` set, when each is a set of rows in an
/// index (a chain, a composite, an indexed value); `None` if one is not.
fn union_set(conditions: &[Condition], ty: &str, depth: usize) -> Option<(String, Vec<SqlArg>)> {
    let mut sets = Vec::new();
    let mut args = Vec::new();
    for c in conditions {
        let (set, a) = rid_set(c, ty, depth)?;
        sets.push(set);
        args.extend(a);
    }
    Some((sets.join(" UNION ALL "), args))
}

/// The `SELECT rid …` of the resources one condition selects, for conditions that are sets of
/// index rows.
fn rid_set(c: &Condition, ty: &str, depth: usize) -> Option<(String, Vec<SqlArg>)> {
    match c {
        Condition::AnyOf(cs) => union_set(cs, ty, depth),
        Condition::Composite { .. } => Some(composite_set(c, ty, depth)),
        Condition::Chain { param, target_type, inner } => {
            let (cond, args) = chain_cond(param, target_type, inner, depth);
            Some((rows_with(IndexTable::Reference, ty, depth, &cond), args))
        }
        _ => {
            let (table, cond, args) = index_cond(c)?;
            Some((rows_with(table, ty, depth, &cond), args))
        }
    }
}

/// `SELECT rid` of the resources with a composite's components in one element: the
/// component rows of one element share `(rid, grp)`.
fn composite_set(c: &Condition, ty: &str, depth: usize) -> (String, Vec<SqlArg>) {
    let Condition::Composite { parts, .. } = c else { unreachable!("a composite condition") };
    let mut from = Vec::new();
    let mut conds = Vec::new();
    let mut args = Vec::new();
    for (k, part) in parts.iter().enumerate() {
        let Some((table, cond, part_args)) = index_cond(part) else { continue };
        let c = format!("c{depth}_{k}");
        from.push(if k == 0 {
            format!("{} {c}", table.name())
        } else {
            format!("JOIN {} {c} ON {c}.rid = c{depth}_0.rid AND {c}.grp = c{depth}_0.grp", table.name())
        });
        conds.push(format!("{c}.param = ? AND {}", cond.replace("{x}", &c)));
        args.extend(part_args);
    }
    let sql = format!(
        "SELECT c{depth}_0.rid FROM {} WHERE c{depth}_0.resource_type = {} AND {}",
        from.join(" "),
        type_literal(ty),
        conds.join(" AND ")
    );
    (sql, args)
}

/// A chain's condition on a reference row `{x}`: it points at a resource of the target type
/// that matches the inner clauses. Arguments start with the parameter's code.
fn chain_cond(param: &str, target_type: &str, inner: &[Clause], depth: usize) -> (String, Vec<SqlArg>) {
    let inner_alias = format!("r{}", depth + 1);
    let (inner_sql, inner_args) = search_filter(target_type, inner, &inner_alias, depth + 1);
    let cond = format!(
        "{{x}}.target_type = ? AND {{x}}.target_id IN (SELECT {inner_alias}.id FROM resources {inner_alias} WHERE {inner_sql})"
    );
    let mut args = vec![SqlArg::Text(param.to_owned()), SqlArg::Text(target_type.to_owned())];
    args.extend(inner_args);
    (cond, args)
}

/// A resource type as an SQL literal. Types are names of letters and digits; anything else
/// (which parsing rejects before it gets here) becomes a literal that matches nothing.
fn type_literal(ty: &str) -> String {
    if !ty.is_empty() && ty.chars().all(|c| c.is_ascii_alphanumeric()) {
        format!("'{ty}'")
    } else {
        "NULL".into()
    }
}

/// The spec's date search relations between a stored `[s, e)` (`{s}`, `{e}` in the SQL) and
/// the searched `[start, end)`, with the arguments in placeholder order.
fn range_cond(prefix: Prefix, start: i64, end: i64) -> (&'static str, Vec<SqlArg>) {
    use SqlArg::Int;
    match prefix {
        // The searched range contains the stored one.
        Prefix::Eq => ("({s} >= ? AND {e} <= ?)", vec![Int(start), Int(end)]),
        Prefix::Ne => ("NOT ({s} >= ? AND {e} <= ?)", vec![Int(start), Int(end)]),
        // Some of the stored range lies beyond the searched one.
        Prefix::Gt => ("{e} > ?", vec![Int(end)]),
        Prefix::Lt => ("{s} < ?", vec![Int(start)]),
        Prefix::Ge => ("({e} > ? OR ({s} >= ? AND {e} <= ?))", vec![Int(end), Int(start), Int(end)]),
        Prefix::Le => ("({s} < ? OR ({s} >= ? AND {e} <= ?))", vec![Int(start), Int(start), Int(end)]),
        // Entirely after / before.
        Prefix::Sa => ("{s} >= ?", vec![Int(end)]),
        Prefix::Eb => ("{e} <= ?", vec![Int(start)]),
        // Approximately: the ranges overlap.
        Prefix::Ap => ("({s} < ? AND {e} > ?)", vec![Int(end), Int(start)]),
    }
}

fn condition_sql(c: &Condition, ty: &str, alias: &str, depth: usize, probe: Probe) -> (String, Vec<SqlArg>) {
    let text = |s: &str| SqlArg::Text(s.to_owned());
    match c {
        Condition::Id(ids) => {
            let marks = vec!["?"; ids.len().max(1)].join(", ");
            let mut args: Vec<SqlArg> = ids.iter().map(|i| text(i)).collect();
            if args.is_empty() {
                args.push(text(""));
            }
            (format!("{alias}.id IN ({marks})"), args)
        }
        Condition::LastUpdated { prefix, start, end } => {
            let (cond, args) = range_cond(*prefix, *start, *end);
            let cond = cond.replace("{s}", "lu.last_updated").replace("{e}", "(lu.last_updated + 1)");
            (
                format!("EXISTS (SELECT 1 FROM resource_versions lu WHERE lu.seq = {alias}.seq AND {cond})"),
                args,
            )
        }
        Condition::Composite { .. } => {
            let (set, args) = composite_set(c, ty, depth);
            (format!("{alias}.rid IN ({set})"), args)
        }
        Condition::Token { .. }
        | Condition::TokenText { .. }
        | Condition::String { .. }
        | Condition::Date { .. }
        | Condition::Number { .. }
        | Condition::Quantity { .. }
        | Condition::Uri { .. }
        | Condition::Reference { .. } => {
            let (table, cond, args) = index_cond(c).expect("an index condition");
            (exists(table, ty, alias, depth, &cond, probe), args)
        }
        Condition::Chain { param, target_type, inner } => {
            let (cond, args) = chain_cond(param, target_type, inner, depth);
            (exists(IndexTable::Reference, ty, alias, depth, &cond, probe), args)
        }
        Condition::Has { source_type, param, inner } => {
            let inner_alias = format!("r{}", depth + 1);
            let x = format!("h{depth}");
            let (inner_sql, inner_args) = search_filter(source_type, inner, &inner_alias, depth + 1);
            let sql = format!(
                "{alias}.id IN (SELECT {x}.target_id FROM search_reference {x} JOIN resources {inner_alias} ON {inner_alias}.rid = {x}.rid \
                 WHERE {x}.resource_type = {} AND {x}.param = ? AND {x}.target_type = {} AND {inner_sql})",
                type_literal(source_type),
                type_literal(ty)
            );
            let mut args = vec![text(param)];
            args.extend(inner_args);
            (sql, args)
        }
        Condition::Missing { param, table, missing } => {
            let e = exists(*table, ty, alias, depth, "", probe);
            (if *missing { format!("NOT ({e})") } else { e }, vec![text(param)])
        }
        Condition::AnyOf(conditions) => {
            let mut parts = Vec::new();
            let mut args = Vec::new();
            for c in conditions {
                let (s, a) = condition_sql(c, ty, alias, depth, probe);
                parts.push(s);
                args.extend(a);
            }
            (format!("({})", parts.join(" OR ")), args)
        }
        Condition::Not(inner) => {
            let (s, a) = condition_sql(inner, ty, alias, depth, Probe::Check);
            (format!("NOT ({s})"), a)
        }
    }
}

/// A condition on one index table: the table, the condition over its row `{x}` (SQL with
/// `?` placeholders), and the arguments, the parameter's code first.
fn index_cond(c: &Condition) -> Option<(IndexTable, String, Vec<SqlArg>)> {
    let text = |s: &str| SqlArg::Text(s.to_owned());
    Some(match c {
        Condition::Token { param, system, code } => {
            let mut cond = Vec::new();
            let mut args = vec![text(param)];
            match system {
                TokenSystem::Any => {}
                TokenSystem::Absent => cond.push("{x}.system IS NULL".to_owned()),
                TokenSystem::Is(s) => {
                    cond.push("{x}.system = ?".to_owned());
                    args.push(text(s));
                }
            }
            if let Some(code) = code {
                cond.push("{x}.code = ?".to_owned());
                args.push(text(code));
            }
            (IndexTable::Token, cond.join(" AND "), args)
        }
        Condition::TokenText { param, text: t } => (
            IndexTable::Token,
            "{x}.text LIKE ?".to_string(),
            vec![text(param), SqlArg::Text(format!("{}%", like_escape(t)))],
        ),
        Condition::String { param, value, mode } => {
            let (cond, pattern) = match mode {
                StringMatch::Exact => ("{x}.exact = ?", value.clone()),
                StringMatch::Prefix => ("{x}.value LIKE ? ESCAPE '\\'", format!("{}%", like_escape(value))),
                StringMatch::Contains => {
                    ("{x}.value LIKE ? ESCAPE '\\'", format!("%{}%", like_escape(value)))
                }
            };
            (IndexTable::String, cond.to_owned(), vec![text(param), SqlArg::Text(pattern)])
        }
        Condition::Date { param, prefix, start, end } => {
            let (cond, range_args) = range_cond(*prefix, *start, *end);
            let cond = cond.replace("{s}", "{x}.start_ms").replace("{e}", "{x}.end_ms");
            let mut args = vec![text(param)];
            args.extend(range_args);
            (IndexTable::Date, cond, args)
        }
        Condition::Number { param, prefix, low, high } => {
            let (cond, args) = number_cond(*prefix, *low, *high);
            let mut all = vec![text(param)];
            all.extend(args);
            (IndexTable::Number, cond, all)
        }
        Condition::Quantity { param, prefix, low, high, system, code } => {
            let (mut cond, mut args) = number_cond(*prefix, *low, *high);
            if let Some(s) = system {
                cond.push_str(" AND {x}.system = ?");
                args.push(text(s));
            }
            if let Some(c) = code {
                cond.push_str(" AND {x}.code = ?");
                args.push(text(c));
            }
            let mut all = vec![text(param)];
            all.extend(args);
            (IndexTable::Quantity, cond, all)
        }
        Condition::Uri { param, value, mode } => {
            let (cond, arg) = match mode {
                UriMatch::Exact => ("{x}.value = ?", text(value)),
                UriMatch::Below => {
                    ("{x}.value LIKE ? ESCAPE '\\'", SqlArg::Text(format!("{}%", like_escape(value))))
                }
                UriMatch::Above => ("? LIKE ({x}.value || '%')", text(value)),
            };
            (IndexTable::Uri, cond.to_owned(), vec![text(param), arg])
        }
        Condition::Reference { param, target_type, target_id, url } => {
            let mut cond = Vec::new();
            let mut args = vec![text(param)];
            if let Some(t) = target_type {
                cond.push("{x}.target_type = ?");
                args.push(text(t));
            }
            if let Some(i) = target_id {
                cond.push("{x}.target_id = ?");
                args.push(text(i));
            }
            if let Some(u) = url {
                cond.push("{x}.url = ?");
                args.push(text(u));
            }
            (IndexTable::Reference, cond.join(" AND "), args)
        }
        _ => return None,
    })
}

/// Numbers and quantities: `eq` means within the value's implicit precision `[low, high)`.
fn number_cond(prefix: Prefix, low: f64, high: f64) -> (String, Vec<SqlArg>) {
    let (cond, args) = match prefix {
        Prefix::Eq | Prefix::Ap => ("{x}.value >= ? AND {x}.value < ?", vec![low, high]),
        Prefix::Ne => ("NOT ({x}.value >= ? AND {x}.value < ?)", vec![low, high]),
        Prefix::Gt | Prefix::Sa => ("{x}.value > ?", vec![(low + high) / 2.0]),
        Prefix::Lt | Prefix::Eb => ("{x}.value < ?", vec![(low + high) / 2.0]),
        Prefix::Ge => ("{x}.value >= ?", vec![(low + high) / 2.0]),
        Prefix::Le => ("{x}.value <= ?", vec![(low + high) / 2.0]),
    };
    (cond.to_owned(), args.into_iter().map(SqlArg::Real).collect())
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// `ORDER BY` for the sort keys, then the resource key (creation order, stable).
/// The value a resource sorts by for one key (one `?`: the parameter): the least of its
/// values, or the greatest for a descending date, number or string.
fn sort_expr(key: &SortKey, alias: &str) -> String {
    let (column, agg) = match key.table {
        IndexTable::Date => ("start_ms", if key.descending { "MAX" } else { "MIN" }),
        IndexTable::Token => ("code", "MIN"),
        IndexTable::Reference => ("target_id", "MIN"),
        _ => ("value", if key.descending { "MAX" } else { "MIN" }),
    };
    format!(
        "(SELECT {agg}(s.{column}) FROM {} s WHERE s.rid = {alias}.rid AND s.param = ?)",
        key.table.name()
    )
}

/// `ORDER BY` for the sort keys then the key; `reversed` for walking backwards.
pub fn order_by(sort: &[SortKey], alias: &str, reversed: bool) -> (String, Vec<SqlArg>) {
    let mut parts = Vec::new();
    let mut args = Vec::new();
    let flip = |ascending: bool| if ascending != reversed { "ASC" } else { "DESC" };
    for key in sort {
        let value = sort_expr(key, alias);
        // Resources without a value sort last either way (the backends disagree on NULLs).
        parts.push(format!("({value} IS NULL) {}, {value} {}", flip(true), flip(!key.descending)));
        args.push(SqlArg::Text(key.param.clone()));
        args.push(SqlArg::Text(key.param.clone()));
    }
    parts.push(format!("{alias}.rid {}", flip(true)));
    (parts.join(", "), args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_split_only_before_values() {
        assert_eq!(Prefix::split("ge2020-01-01"), (Prefix::Ge, "2020-01-01"));
        assert_eq!(Prefix::split("2020"), (Prefix::Eq, "2020"));
        assert_eq!(Prefix::split("ne-5"), (Prefix::Ne, "-5"));
        assert_eq!(Prefix::split("eq"), (Prefix::Eq, "eq"));
    }

    #[test]
    fn filters_nest_chains_with_fresh_aliases() {
        let q = vec![Clause(vec![Condition::Chain {
            param: "subject".into(),
            target_type: "Patient".into(),
            inner: vec![Clause(vec![Condition::String {
                param: "name".into(),
                value: "ola".into(),
                mode: StringMatch::Prefix,
            }])],
        }])];
        let (sql, args) = search_filter("Observation", &q, "r0", 0);
        assert!(sql.contains("FROM resources r1 WHERE r1.resource_type = ?"), "{sql}");
        assert!(sql.contains("FROM search_string x1 WHERE x1.resource_type = 'Patient'"), "{sql}");
        assert_eq!(sql.matches('?').count(), args.len(), "{sql}");
    }

    #[test]
    fn cursors_bind_one_argument_per_placeholder() {
        let sort = vec![
            SortKey { param: "family".into(), table: IndexTable::String, descending: false },
            SortKey { param: "birthdate".into(), table: IndexTable::Date, descending: true },
        ];
        let positions = [
            Position { values: vec![SortValue::Text("berg".into()), SortValue::Int(5)], rid: 7 },
            Position { values: vec![SortValue::Null, SortValue::Int(5)], rid: 7 },
            Position { values: vec![SortValue::Text("berg".into()), SortValue::Null], rid: 7 },
        ];
        for p in positions {
            for cursor in [Cursor::After(p.clone()), Cursor::Before(p.clone())] {
                let q = SearchQuery {
                    resource_type: "Patient".into(),
                    clauses: Vec::new(),
                    sort: sort.clone(),
                    count: 10,
                    offset: 0,
                    cursor,
                    want_total: false,
                };
                let (cond, order, args) = q.page_sql("r");
                let text = format!("{cond} {order}");
                assert_eq!(text.matches('?').count(), args.len(), "{text}");
                assert!(cond.contains("r.rid"), "ties are broken by the key: {cond}");
            }
        }
    }
}
