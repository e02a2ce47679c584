//! The SQLite file: schema, batched inserts in one transaction, pruning, and the stats query. Used
//! only by the writer thread; owns no threads or channels.

use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, params, params_from_iter};

use super::query::{Group, StatsQuery};
use super::row::Row;

/// Schema version in `PRAGMA user_version`; a file of another version is refused rather than read
/// wrongly.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS calls (
    ts_ms INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    key TEXT NOT NULL,
    user TEXT NOT NULL,
    tags TEXT NOT NULL,
    door TEXT NOT NULL,
    model TEXT NOT NULL,
    served_model TEXT NOT NULL,
    provider TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    status INTEGER NOT NULL,
    error_class TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cost_micros INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    ttfb_us INTEGER,
    stream INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_by_time ON calls(ts_ms);
";

pub struct Store {
    conn: Connection,
}

/// SQLite stores signed 64-bit integers; counters beyond that are clamped, not wrapped.
fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens or creates the file in WAL mode (readers never block the writer, and a crash loses at
    /// most the transaction in progress).
    pub fn open(path: &Path) -> rusqlite::Result<Store> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL with WAL: a power loss may lose the last transactions, never corrupts the file.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version != 0 && version != SCHEMA_VERSION {
            return Err(rusqlite::Error::InvalidParameterName(format!(
                "history schema version {version}, expected {SCHEMA_VERSION}"
            )));
        }
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(Store { conn })
    }

    /// A read-only connection to the file the writer opened (WAL: it reads while the writer writes).
    pub fn open_reader(path: &Path) -> rusqlite::Result<Store> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Ok(Store { conn: Connection::open_with_flags(path, flags)? })
    }

    /// Appends `rows` in one transaction (one fsync per batch, not per row).
    pub fn insert(&mut self, rows: &[Row]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO calls VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
                 ?17, ?18, ?19, ?20, ?21)",
            )?;
            for r in rows {
                insert.execute(params![
                    int(r.ts_ms),
                    r.request_id,
                    r.key,
                    r.user,
                    r.tags,
                    r.door,
                    r.model,
                    r.served_model,
                    r.provider,
                    r.attempts,
                    r.status,
                    r.error_class,
                    int(r.tokens[0]),
                    int(r.tokens[1]),
                    int(r.tokens[2]),
                    int(r.tokens[3]),
                    int(r.tokens[4]),
                    int(r.cost_micros),
                    int(r.duration_us),
                    r.ttfb_us.map(int),
                    r.stream,
                ])?;
            }
        }
        tx.commit()
    }

    /// Deletes rows that ended before `oldest_ms`; returns how many.
    pub fn prune(&self, oldest_ms: u64) -> rusqlite::Result<usize> {
        self.conn.execute("DELETE FROM calls WHERE ts_ms < ?1", [int(oldest_ms)])
    }

    /// The rows of `query`: one per group (and time bucket), counters summed over its calls.
    pub fn stats(&self, query: &StatsQuery) -> rusqlite::Result<Vec<GroupTotals>> {
        let sql = stats_sql(query);
        let mut statement = self.conn.prepare_cached(&sql)?;
        let from_ms = int(query.from_s.saturating_mul(1000));
        let to_ms = int(query.to_s.saturating_mul(1000));
        let interval = int(query.interval_s.unwrap_or(0));
        let mut values = vec![Value::Integer(from_ms), Value::Integer(to_ms), Value::Integer(interval)];
        values.extend(query.filters.iter().map(|(_, v)| Value::Text(v.clone())));
        let rows = statement.query_map(params_from_iter(values), |r| {
            let keys = (0..query.group_by.len()).map(|i| r.get::<_, String>(i)).collect::<Result<Vec<_>, _>>()?;
            let at = query.group_by.len();
            let bucket: Option<i64> = if query.interval_s.is_some() { Some(r.get(at)?) } else { None };
            let counters = (0..COUNTERS.len()).map(|i| r.get::<_, i64>(at + 1 + i)).collect::<Result<Vec<_>, _>>()?;
            Ok(GroupTotals { keys, bucket, counters })
        })?;
        rows.collect()
    }
}

/// The summed columns of a stats row, in this order, with their JSON names.
pub const COUNTERS: [(&str, &str); 14] = [
    ("requests", "COUNT(*)"),
    ("ok", "SUM(error_class = 'ok')"),
    ("client_errors", "SUM(error_class = 'client')"),
    ("provider_errors", "SUM(error_class = 'provider')"),
    ("failovers", "SUM(attempts > 1)"),
    ("extra_attempts", "SUM(MAX(attempts - 1, 0))"),
    ("prompt_tokens", "SUM(prompt_tokens)"),
    ("completion_tokens", "SUM(completion_tokens)"),
    ("cache_read_tokens", "SUM(cache_read_tokens)"),
    ("cache_write_tokens", "SUM(cache_write_tokens)"),
    ("reasoning_tokens", "SUM(reasoning_tokens)"),
    ("cost_micros", "SUM(cost_micros)"),
    ("duration_us_sum", "SUM(duration_us)"),
    ("ttfb_us_sum", "COALESCE(SUM(ttfb_us), 0)"),
];

/// One group of a stats answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupTotals {
    /// The group's values, in `group_by` order.
    pub keys: Vec<String>,
    /// The bucket's start (Unix seconds) when an interval was asked for.
    pub bucket: Option<i64>,
    /// In [`COUNTERS`] order.
    pub counters: Vec<i64>,
}

/// The query's SQL. Only fixed column names are spliced in (from [`Group::column`]); the range,
/// interval and filter values are bound parameters.
fn stats_sql(query: &StatsQuery) -> String {
    const BUCKET: &str = "(ts_ms / 1000 / ?3) * ?3";
    let mut groups: Vec<String> = query.group_by.iter().map(|g| g.column().to_string()).collect();
    let mut select = groups.clone();
    // The third parameter is bound even without an interval (then unused), so every query binds three.
    select.push(if query.interval_s.is_some() { BUCKET.into() } else { "?3".into() });
    select.extend(COUNTERS.iter().map(|(_, sum)| format!("COALESCE({sum}, 0)")));
    if query.interval_s.is_some() {
        groups.push(BUCKET.into());
    }
    let mut sql = format!("SELECT {} FROM calls WHERE ts_ms >= ?1 AND ts_ms < ?2", select.join(", "));
    for (i, (group, _)) in query.filters.iter().enumerate() {
        sql.push_str(&format!(" AND {} = ?{}", group.column(), i + 4));
    }
    if !groups.is_empty() {
        sql.push_str(&format!(" GROUP BY {} ORDER BY {}", groups.join(", "), groups.join(", ")));
    }
    sql
}

impl Group {
    /// The SQL expression of a group: a fixed column name or expression, never client text.
    pub fn column(self) -> &'static str {
        match self {
            Group::Key => "key",
            Group::User => "user",
            Group::Model => "served_model",
            Group::Provider => "provider",
            Group::Door => "door",
            Group::StatusClass => {
                "CASE WHEN status < 200 THEN '1xx' WHEN status < 300 THEN '2xx' WHEN status < 400 THEN '3xx' \
                 WHEN status < 500 THEN '4xx' ELSE '5xx' END"
            }
            Group::ErrorClass => "error_class",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::query::StatsQuery;
    use crate::metrics::CallRecord;

    #[test]
    fn prune_deletes_only_rows_that_ended_before_the_cutoff() {
        let path = std::env::temp_dir().join(format!("corelay-history-prune-{}.sqlite", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut store = Store::open(&path).unwrap();
        let call = CallRecord { status: 200, ..CallRecord::default() };
        let rows: Vec<Row> = [1_000, 2_000, 3_000].iter().map(|&ts| Row::from_call(&call, ts)).collect();
        store.insert(&rows).unwrap();
        assert_eq!(store.prune(2_000).unwrap(), 1, "only the row before the cutoff");
        let all = StatsQuery { from_s: 0, to_s: 10, group_by: Vec::new(), interval_s: None, filters: Vec::new() };
        assert_eq!(store.stats(&all).unwrap()[0].counters[0], 2);
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
