//! OpenTelemetry trace export over OTLP/HTTP (protobuf), off the request path. Owns the exporter
//! thread and its queue; trace ids and `traceparent` are `trace_context`'s, the spans' content
//! `spans`'s, the encoding `otlp`'s.
//!
//! Workers hand each finished, sampled call's record to a bounded queue (`try_send`: when it is
//! full the call is dropped and counted, a worker never waits). The exporter thread turns records
//! into spans, gathers them into batches (`batch_size` spans, or whatever came within
//! `batch_delay_ms`) and POSTs each batch to `{otlp_endpoint}/v1/traces` with a blocking client; a
//! failed POST drops its batch (counted) rather than retrying, so a dead receiver costs one timeout
//! per batch and never grows memory.

pub mod otlp;
pub mod spans;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use crate::config::TracingConfig;
use crate::metrics::CallRecord;

enum Message {
    /// A finished call and when it ended (Unix nanoseconds).
    Call(Box<CallRecord>, u64),
    /// Send what is queued, then end.
    Stop,
}

/// Counts of what the exporter did, shared with its handles.
#[derive(Debug, Default)]
pub struct ExportCounters {
    /// Calls dropped because the queue was full.
    pub dropped_calls: AtomicU64,
    /// Spans the receiver accepted (a 2xx answer).
    pub exported_spans: AtomicU64,
    /// Spans lost to failed POSTs (no answer, or a non-2xx one).
    pub failed_spans: AtomicU64,
}

/// A worker's handle: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Exporter {
    tx: Sender<Message>,
    sample_ratio: f64,
    counters: Arc<ExportCounters>,
}

impl Exporter {
    /// The share of new traces to sample, for `TraceContext::start`.
    pub fn sample_ratio(&self) -> f64 {
        self.sample_ratio
    }

    /// Queues a finished call when its trace is sampled.
    pub fn export(&self, call: &CallRecord) {
        if !call.trace.is_some_and(|t| t.sampled) {
            return;
        }
        let message = Message::Call(Box::new(call.clone()), unix_now_ns());
        if let Err(TrySendError::Full(_)) = self.tx.try_send(message) {
            self.counters.dropped_calls.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Asks the exporter to send what is queued and end. Blocks only while the queue is full.
    pub fn stop(&self) {
        let _ = self.tx.send(Message::Stop);
    }

    pub fn counters(&self) -> &ExportCounters {
        &self.counters
    }
}

/// Starts the exporter thread; `None` when `[tracing] otlp_endpoint` is not set.
pub fn start(config: &TracingConfig) -> io::Result<Option<(Exporter, JoinHandle<()>)>> {
    if !config.enabled() {
        return Ok(None);
    }
    let (tx, rx) = crossbeam_channel::bounded(config.queue_size);
    let counters = Arc::new(ExportCounters::default());
    let sender = BatchSender {
        url: traces_url(&config.otlp_endpoint),
        origin: otlp::Origin { service_name: config.service_name.clone(), service_version: env!("CARGO_PKG_VERSION") },
        timeout: Duration::from_millis(config.export_timeout_ms),
        counters: Arc::clone(&counters),
    };
    let batching = Batching { size: config.batch_size, delay: Duration::from_millis(config.batch_delay_ms) };
    let handle =
        std::thread::Builder::new().name("corelay-otlp".into()).spawn(move || export_loop(&rx, batching, &sender))?;
    Ok(Some((Exporter { tx, sample_ratio: config.sample_ratio, counters }, handle)))
}

/// `/v1/traces` appended to an endpoint given without a path (the OTLP/HTTP default).
fn traces_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim_end_matches('/');
    let after_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
    if after_scheme.contains('/') { trimmed.to_string() } else { format!("{trimmed}/v1/traces") }
}

#[derive(Clone, Copy)]
struct Batching {
    size: usize,
    delay: Duration,
}

/// Where and how batches are sent.
struct BatchSender {
    url: String,
    origin: otlp::Origin,
    timeout: Duration,
    counters: Arc<ExportCounters>,
}

impl BatchSender {
    fn send(&self, spans: &[otlp::Span]) {
        let body = otlp::encode_request(&self.origin, spans);
        let content = ("application/x-protobuf", "application/x-protobuf");
        let count = spans.len() as u64;
        match crate::upstream::blocking::post(&self.url, content, &[], &body, self.timeout) {
            Ok(answer) if (200..300).contains(&answer.status) => {
                self.counters.exported_spans.fetch_add(count, Ordering::Relaxed);
            }
            Ok(answer) => self.failed(count, &format!("the receiver answered {}", answer.status)),
            Err(e) => self.failed(count, &e.to_string()),
        }
    }

    fn failed(&self, count: u64, why: &str) {
        let before = self.counters.failed_spans.fetch_add(count, Ordering::Relaxed);
        // The first failure is a warning; later ones are debug, so a dead receiver cannot flood the log.
        if before == 0 {
            tracing::warn!(url = %self.url, "trace export failed, spans dropped: {why}");
        } else {
            tracing::debug!(url = %self.url, spans = count, "trace export failed: {why}");
        }
    }
}

fn export_loop(rx: &Receiver<Message>, batching: Batching, sender: &BatchSender) {
    let mut batch: Vec<otlp::Span> = Vec::with_capacity(batching.size);
    let mut first_queued_at: Option<Instant> = None;
    loop {
        let message = match first_queued_at {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => rx.recv_timeout(batching.delay.saturating_sub(at.elapsed())),
        };
        match message {
            Ok(Message::Call(call, end_unix_ns)) => {
                batch.extend(spans::call_spans(&call, end_unix_ns));
                first_queued_at.get_or_insert_with(Instant::now);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => break,
        }
        let due = first_queued_at.is_some_and(|at| at.elapsed() >= batching.delay);
        if batch.len() >= batching.size || (due && !batch.is_empty()) {
            flush(&mut batch, batching.size, sender);
            first_queued_at = None;
        }
    }
    flush(&mut batch, batching.size, sender);
}

fn flush(batch: &mut Vec<otlp::Span>, size: usize, sender: &BatchSender) {
    for chunk in batch.chunks(size.max(1)) {
        sender.send(chunk);
    }
    batch.clear();
}

fn unix_now_ns() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_only_when_the_endpoint_has_none() {
        assert_eq!(traces_url("http://127.0.0.1:4318"), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(traces_url("http://127.0.0.1:4318/"), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(traces_url("https://otel.example/custom/traces"), "https://otel.example/custom/traces");
    }

    #[test]
    fn spans_a_dead_receiver_refuses_are_counted_and_stop_still_ends_the_thread() {
        let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut config = TracingConfig::default();
        config.otlp_endpoint = format!("http://{refused}");
        config.export_timeout_ms = 500;
        let (exporter, thread) = start(&config).unwrap().expect("tracing is on");
        let call =
            CallRecord { trace: crate::trace_context::TraceContext::start(None, Some(1.0)), ..Default::default() };
        exporter.export(&call);
        exporter.export(&call);
        exporter.stop();
        thread.join().unwrap();
        assert_eq!(exporter.counters().failed_spans.load(Ordering::Relaxed), 2, "one request span per call");
        assert_eq!(exporter.counters().exported_spans.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let (tx, _rx) = crossbeam_channel::bounded(1);
        let exporter = Exporter { tx, sample_ratio: 1.0, counters: Arc::default() };
        let call =
            CallRecord { trace: crate::trace_context::TraceContext::start(None, Some(1.0)), ..Default::default() };
        for _ in 0..3 {
            exporter.export(&call);
        }
        assert_eq!(exporter.counters().dropped_calls.load(Ordering::Relaxed), 2);
        let untraced = CallRecord::default();
        exporter.export(&untraced);
        assert_eq!(exporter.counters().dropped_calls.load(Ordering::Relaxed), 2, "untraced calls are not queued");
    }
}
