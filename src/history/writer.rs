//! The history threads. The writer drains the channel into batched transactions and prunes rows
//! past retention; a stats query is handed to the reader thread once what was queued before it is
//! written. The reader answers on its own read-only connection, so a long query (a week of rows)
//! never holds up the writer and, through it, the workers' rows. The writer owns the only writing
//! connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Message;
use super::query::{QueryError, StatsQuery, render};
use super::row::Row;
use super::store::Store;

/// Rows per transaction at most: large enough that a burst costs few fsyncs, small enough that a
/// query waits little behind a batch.
const BATCH: usize = 4096;
/// How often rows past retention are deleted (and dropped rows reported).
const PRUNE_EVERY: Duration = Duration::from_secs(300);

/// Rows written and dropped since start, shared with every [`super::History`] handle.
pub struct Counters {
    pub dropped: Arc<AtomicU64>,
    pub written: Arc<AtomicU64>,
}

pub struct Writer {
    store: Store,
    /// To the reader thread; it ends when this is dropped.
    queries: flume::Sender<Query>,
    retention: Duration,
    counters: Counters,
    dropped_reported: u64,
    batch: Vec<Row>,
    last_prune: Option<Instant>,
}

impl Writer {
    pub fn new(store: Store, queries: flume::Sender<Query>, retention: Duration, counters: Counters) -> Writer {
        Writer {
            store,
            queries,
            retention,
            counters,
            dropped_reported: 0,
            batch: Vec::with_capacity(BATCH),
            last_prune: None,
        }
    }

    pub fn run(mut self, rx: flume::Receiver<Message>) {
        self.maintain();
        loop {
            let message = match rx.recv_timeout(PRUNE_EVERY) {
                Ok(message) => message,
                Err(flume::RecvTimeoutError::Timeout) => {
                    self.maintain();
                    continue;
                }
                Err(flume::RecvTimeoutError::Disconnected) => break,
            };
            if !self.handle(message) {
                break;
            }
            // Whatever else is already queued joins this batch.
            while self.batch.len() < BATCH {
                let Ok(message) = rx.try_recv() else { break };
                if !self.handle(message) {
                    self.commit();
                    self.report_drops();
                    return;
                }
            }
            self.commit();
            if self.last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                self.maintain();
            }
        }
        self.commit();
        self.report_drops();
    }

    /// Takes one message; returns false on `Stop`.
    fn handle(&mut self, message: Message) -> bool {
        match message {
            Message::Call(row) => self.batch.push(*row),
            Message::Query(query, reply) => {
                self.commit();
                // Never waits on the reader: a writer blocked behind slow queries would drop rows.
                match self.queries.try_send((query, reply)) {
                    Ok(()) => {}
                    Err(flume::TrySendError::Full((_, reply))) => {
                        let _ = reply.send(Err(QueryError::Busy));
                    }
                    Err(flume::TrySendError::Disconnected((_, reply))) => {
                        let _ = reply.send(Err(QueryError::Unavailable));
                    }
                }
            }
            Message::Stop => return false,
        }
        true
    }

    fn commit(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let rows = self.batch.len() as u64;
        match self.store.insert(&self.batch) {
            Ok(()) => self.counters.written.fetch_add(rows, Ordering::Relaxed),
            Err(e) => {
                // Counted as dropped: a full disk must not stop the gateway, and the log says why.
                log::error!("request history: cannot write {rows} rows: {e}");
                self.counters.dropped.fetch_add(rows, Ordering::Relaxed)
            }
        };
        self.batch.clear();
    }

    /// Deletes rows past retention and reports rows dropped since the last report.
    fn maintain(&mut self) {
        self.last_prune = Some(Instant::now());
        let retention_ms = u64::try_from(self.retention.as_millis()).unwrap_or(u64::MAX);
        let oldest = crate::clock::unix_now_ms().saturating_sub(retention_ms);
        match self.store.prune(oldest) {
            Ok(0) => {}
            Ok(n) => log::info!("request history: pruned {n} rows older than the retention"),
            Err(e) => log::error!("request history: cannot prune: {e}"),
        }
        self.report_drops();
    }

    fn report_drops(&mut self) {
        let dropped = self.counters.dropped.load(Ordering::Relaxed);
        if dropped > self.dropped_reported {
            log::warn!(
                "request history: {} rows dropped (writer behind or store failing), {dropped} since start",
                dropped - self.dropped_reported
            );
            self.dropped_reported = dropped;
        }
    }
}

/// A stats query and where its answer goes.
pub type Query = (StatsQuery, flume::Sender<Result<String, QueryError>>);

/// The reader thread's body: answers queries until the writer ends.
pub fn answer_queries(store: Store, queries: flume::Receiver<Query>) {
    for (query, reply) in queries.iter() {
        let answer = match store.stats(&query) {
            Ok(groups) => Ok(render(&query, &groups)),
            Err(e) => {
                log::error!("request history: query failed: {e}");
                Err(QueryError::Store(e.to_string()))
            }
        };
        let _ = reply.send(answer);
    }
}
