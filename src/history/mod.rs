//! Request history: every finished call appended to an embedded SQLite store off the request path,
//! kept `retention_days`, and queried by `/v1/stats?from=&to=&group_by=`.
//!
//! Owns the worker-side handle ([`History`]), the writer thread and its store. It does not own the
//! live ten-minute view (`metrics::timeline`) nor the access log (`metrics::access_log`).
//!
//! Workers `try_send` a [`row::Row`] on a bounded channel and never wait: when the writer falls
//! behind, rows are dropped and counted. Queries go over the same channel, so a query sees every row
//! a worker sent before it; the writer hands each to a reader thread with a read-only connection,
//! which answers on a one-value channel the worker awaits.

mod query;
mod row;
mod store;
mod time;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

pub use query::{QueryError, StatsQuery};
pub use row::{Row, error_class};

use crate::metrics::CallRecord;

/// Rows queued for the writer at most; beyond it new rows are dropped (counted).
const QUEUE: usize = 65_536;

/// What the history needs from `[history]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub path: PathBuf,
    pub retention: Duration,
}

enum Message {
    Call(Box<Row>),
    Query(StatsQuery, flume::Sender<Result<String, QueryError>>),
    /// Write what was queued before this, then end.
    Stop,
}

/// A worker's handle: cheap to clone; `record` never blocks.
#[derive(Clone)]
pub struct History {
    tx: flume::Sender<Message>,
    dropped: Arc<AtomicU64>,
    /// Rows committed to the store, since start.
    written: Arc<AtomicU64>,
}

impl History {
    /// Queues the call for the store; drops (and counts) it when the writer is behind.
    pub fn record(&self, call: &CallRecord) {
        let row = Box::new(Row::from_call(call, crate::clock::unix_now_ms()));
        if self.tx.try_send(Message::Call(row)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Answers a stats query on the writer thread (after the rows queued before it are written).
    pub async fn stats(&self, query: StatsQuery) -> Result<String, QueryError> {
        let (reply, answer) = flume::bounded(1);
        self.tx.send_async(Message::Query(query, reply)).await.map_err(|_| QueryError::Unavailable)?;
        answer.recv_async().await.map_err(|_| QueryError::Unavailable)?
    }

    /// Asks the writer to write the queue and end. Blocks only while the queue is full.
    pub fn stop(&self) {
        let _ = self.tx.send(Message::Stop);
    }

    /// Rows dropped because the writer was behind (or the store failed), since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// `corelay_history_rows_total{outcome="written"|"dropped"}` in Prometheus text.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(out, "# HELP corelay_history_rows_total Finished calls the request history wrote or dropped.");
        let _ = writeln!(out, "# TYPE corelay_history_rows_total counter");
        let _ =
            writeln!(out, "corelay_history_rows_total{{outcome=\"written\"}} {}", self.written.load(Ordering::Relaxed));
        let _ = writeln!(out, "corelay_history_rows_total{{outcome=\"dropped\"}} {}", self.dropped());
    }
}

/// Opens (or creates) the store and starts the writer thread. The thread ends on [`History::stop`]
/// or when every handle is gone.
pub fn start(settings: Settings) -> Result<(History, JoinHandle<()>), String> {
    let at = |e: rusqlite::Error| format!("{}: {e}", settings.path.display());
    let store = store::Store::open(&settings.path).map_err(at)?;
    let reader = store::Store::open_reader(&settings.path).map_err(at)?;
    let (queries, to_answer) = flume::bounded(64);
    // Not joined: it ends when the writer drops `queries`; a query still running then does not
    // hold up shutdown.
    std::thread::Builder::new()
        .name("corelay-history-read".into())
        .spawn(move || writer::answer_queries(reader, to_answer))
        .map_err(|e| format!("cannot start the history reader thread: {e}"))?;
    let (tx, rx) = flume::bounded(QUEUE);
    let (dropped, written) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let counters = writer::Counters { dropped: Arc::clone(&dropped), written: Arc::clone(&written) };
    let writer = writer::Writer::new(store, queries, settings.retention, counters);
    let handle = std::thread::Builder::new()
        .name("corelay-history".into())
        .spawn(move || writer.run(rx))
        .map_err(|e| format!("cannot start the history thread: {e}"))?;
    Ok((History { tx, dropped, written }, handle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Usage;

    fn query_now(history: &History, target: &str) -> serde_json::Value {
        let query = StatsQuery::from_target(target, crate::clock::unix_now()).unwrap().unwrap();
        let (reply, answer) = flume::bounded(1);
        history.tx.send(Message::Query(query, reply)).unwrap();
        serde_json::from_str(&answer.recv().unwrap().unwrap()).unwrap()
    }

    fn served(key: &str, model: &str, prompt: u64, cost: u64) -> CallRecord {
        CallRecord {
            key: key.into(),
            model: model.into(),
            served_model: model.into(),
            provider: "p".into(),
            front_door: "openai",
            status: 200,
            usage: Some(Usage { prompt_tokens: prompt, completion_tokens: 1, ..Usage::default() }),
            cost_micros: cost,
            ..CallRecord::default()
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_rows_instead_of_waiting() {
        // A writer that never reads: the second row finds the queue full.
        let (tx, _stalled) = flume::bounded(1);
        let history = History { tx, dropped: Arc::default(), written: Arc::default() };
        history.record(&served("a", "m", 1, 1));
        history.record(&served("a", "m", 1, 1));
        assert_eq!(history.dropped(), 1);
        let mut text = String::new();
        history.render_metrics(&mut text);
        assert!(text.contains("corelay_history_rows_total{outcome=\"dropped\"} 1\n"), "{text}");
    }

    #[test]
    fn rows_survive_reopening_and_sum_by_group() {
        let dir = std::env::temp_dir().join(format!("corelay-history-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let settings = Settings { path: dir.join("h.sqlite"), retention: Duration::from_secs(86_400) };
        let (history, writer) = start(settings.clone()).unwrap();
        history.record(&served("a", "m1", 10, 100));
        history.record(&served("a", "m2", 20, 200));
        history.record(&served("b", "m1", 30, 300));
        history.record(&CallRecord { status: 404, front_door: "openai", ..CallRecord::default() });
        let by_key = query_now(&history, "/v1/stats?group_by=key");
        assert_eq!(by_key["total"]["requests"], 4);
        assert_eq!(by_key["total"]["cost_micros"], 600);
        assert_eq!(by_key["total"]["client_errors"], 1);
        let a = by_key["rows"].as_array().unwrap().iter().find(|r| r["key"] == "a").unwrap();
        assert_eq!((a["requests"].as_i64(), a["prompt_tokens"].as_i64()), (Some(2), Some(30)));
        history.stop();
        writer.join().unwrap();

        let (history, writer) = start(settings).unwrap();
        let by_model = query_now(&history, "/v1/stats?group_by=model,provider&interval=1h");
        assert_eq!(by_model["total"]["requests"], 4, "{by_model}");
        let m1 = by_model["rows"].as_array().unwrap().iter().find(|r| r["model"] == "m1").unwrap();
        let only_a = query_now(&history, "/v1/stats?key=a&model=m1");
        assert_eq!(
            (only_a["total"]["requests"].as_i64(), only_a["total"]["cost_micros"].as_i64()),
            (Some(1), Some(100))
        );
        assert_eq!(m1["cost_micros"], 400);
        assert!(m1["t"].as_i64().is_some_and(|t| t % 3600 == 0), "{m1}");
        history.stop();
        writer.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
