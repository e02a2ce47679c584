//! Observability: what each call used, cost and took, counted per worker without locks, merged by
//! the control thread into Prometheus text, and written as one access-log line per request.
//!
//! Workers record into `WorkerMetrics` (plain cells and maps, one per core) and hand their delta to
//! the control thread every tick; `Registry` (control thread only) keeps the totals and renders the
//! scrape, which workers then serve from their own copy.

pub mod access_log;
pub mod cost;
pub mod histogram;
pub mod process;
pub mod registry;
pub mod timeline;
pub mod usage;

use std::cell::{Cell, RefCell};
use std::time::Duration;

use hashbrown::{Equivalent, HashMap};

use hdrhistogram::Histogram;

use crate::chat::Usage;
use crate::health::{Outcome, new_histogram, record_micros};

/// Everything known about one client request when it ends.
#[derive(Debug, Clone, Default)]
pub struct CallRecord {
    pub request_id: String,
    /// When the request's body had been read and handling began.
    pub started: Option<std::time::Instant>,
    pub front_door: &'static str,
    /// The gateway key's name (never the secret); empty when the gateway is open.
    pub key: String,
    /// The client's address (the TCP peer; a proxy in front shows as itself).
    pub client: Option<std::net::SocketAddr>,
    /// Request method and path (without the query), as sent.
    pub method: String,
    pub path: String,
    /// The client's `user-agent`, as sent (the access log cuts and escapes it).
    pub user_agent: String,
    /// The end user the client named (OpenAI's `user`, the AI SDK's `providerOptions.gateway.user`).
    /// Client-chosen: logged and kept in the history, never a metric label.
    pub user: String,
    /// The AI SDK's `providerOptions.gateway.tags`. Client-chosen, like `user`.
    pub tags: Vec<String>,
    /// The model the client asked for.
    pub model: String,
    /// `model` is one of the gateway's configured ids. Only then does it become a metric label:
    /// a client must not be able to create series by sending names.
    pub model_known: bool,
    /// The gateway model that served (differs when a fallback model served).
    pub served_model: std::sync::Arc<str>,
    pub provider: std::sync::Arc<str>,
    /// Every upstream attempt, in order (almost always one: held inline, no allocation).
    pub attempts: Attempts,
    /// The response status of the attempt in progress, once its head arrived (taken by
    /// [`CallRecord::push_attempt`]).
    pub attempt_status: Option<u16>,
    pub status: u16,
    pub stream: bool,
    pub ttfb: Option<Duration>,
    pub duration: Duration,
    /// Time spent waiting on providers; `duration - upstream` is the gateway's own overhead.
    pub upstream: Duration,
    pub usage: Option<Usage>,
    pub cost_micros: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The request's W3C trace context: the client's trace or one started here; none when the
    /// client sent no valid `traceparent` and tracing is off.
    pub trace: Option<crate::trace_context::TraceContext>,
    /// How the response cache met this call (`hit`, `miss`, `bypass`); `None` when it is off.
    pub cache: Option<&'static str>,
    /// What a cache hit saved: the cost of the call that stored the answer.
    pub cache_saved_micros: u64,
}

impl CallRecord {
    /// Ends the record, its request id's and model's buffers going back to the worker's stash
    /// (`buffers::CALL_TEXT`) for the next call's record.
    pub fn recycle(self) {
        crate::buffers::give_back_call_text(self.request_id);
        crate::buffers::give_back_call_text(self.model);
    }
}

/// A call's attempts.
pub type Attempts = smallvec::SmallVec<[AttemptRecord; 1]>;

/// One provider attempt of a call, as the access log and the AI SDK's routing metadata show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub provider: std::sync::Arc<str>,
    pub outcome: Outcome,
    /// The provider's response status, when a response head arrived.
    pub status: Option<u16>,
    pub start_unix_ms: u64,
    pub end_unix_ms: u64,
}

/// The `model` label of calls whose model is not configured (unknown names, or none given).
pub const UNKNOWN_MODEL_LABEL: &str = "(unknown)";

impl CallRecord {
    pub fn overhead(&self) -> Duration {
        self.duration.saturating_sub(self.upstream)
    }

    /// Ends the attempt in progress, which began `took` ago, now, with the status its head carried.
    pub fn push_attempt(&mut self, provider: &std::sync::Arc<str>, outcome: Outcome, took: Duration) {
        let end_unix_ms = crate::clock::unix_now_ms();
        let start_unix_ms = end_unix_ms.saturating_sub(took.as_millis() as u64);
        let status = self.attempt_status.take();
        self.attempts.push(AttemptRecord {
            provider: std::sync::Arc::clone(provider),
            outcome,
            status,
            start_unix_ms,
            end_unix_ms,
        });
    }

    /// The `model` label: the configured id, or one fixed value for anything else.
    pub fn model_label(&self) -> &str {
        if self.model_known { &self.model } else { UNKNOWN_MODEL_LABEL }
    }
}

/// Label set of the per-request counters; every part has few values.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestLabels {
    pub front_door: &'static str,
    pub model: String,
    pub provider: String,
    pub status_class: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpendLabels {
    pub model: String,
    pub provider: String,
    pub key: String,
}

/// Label set of the latency histograms: front door, model (configured id or `(unknown)`) and the
/// provider that served (`none` when none did). All three come from the config or the code, never
/// from what a client sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LatencyLabels {
    pub front_door: &'static str,
    pub model: String,
    pub provider: String,
}

/// The label sets above, borrowed from a call: a recorded call finds its counters without building
/// owned strings, so recording allocates only the first time a label set is seen.
#[derive(Hash)]
struct SpendLabelsRef<'a> {
    model: &'a str,
    provider: &'a str,
    key: &'a str,
}

impl Equivalent<SpendLabels> for SpendLabelsRef<'_> {
    fn equivalent(&self, key: &SpendLabels) -> bool {
        self.model == key.model && self.provider == key.provider && self.key == key.key
    }
}

impl From<&SpendLabelsRef<'_>> for SpendLabels {
    fn from(r: &SpendLabelsRef<'_>) -> SpendLabels {
        SpendLabels { model: r.model.to_string(), provider: r.provider.to_string(), key: r.key.to_string() }
    }
}

#[derive(Hash)]
struct LatencyLabelsRef<'a> {
    front_door: &'static str,
    model: &'a str,
    provider: &'a str,
}

impl Equivalent<LatencyLabels> for LatencyLabelsRef<'_> {
    fn equivalent(&self, key: &LatencyLabels) -> bool {
        self.front_door == key.front_door && self.model == key.model && self.provider == key.provider
    }
}

impl From<&LatencyLabelsRef<'_>> for LatencyLabels {
    fn from(r: &LatencyLabelsRef<'_>) -> LatencyLabels {
        LatencyLabels { front_door: r.front_door, model: r.model.to_string(), provider: r.provider.to_string() }
    }
}

/// Attempts per provider and outcome.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptLabels {
    pub provider: String,
    pub outcome: &'static str,
}

#[derive(Hash)]
struct AttemptLabelsRef<'a> {
    provider: &'a str,
    outcome: &'static str,
}

impl Equivalent<AttemptLabels> for AttemptLabelsRef<'_> {
    fn equivalent(&self, key: &AttemptLabels) -> bool {
        self.provider == key.provider && self.outcome == key.outcome
    }
}

impl From<&AttemptLabelsRef<'_>> for AttemptLabels {
    fn from(r: &AttemptLabelsRef<'_>) -> AttemptLabels {
        AttemptLabels { provider: r.provider.to_string(), outcome: r.outcome }
    }
}

/// The three latency histograms of one label set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyHistograms {
    pub duration: histogram::Buckets,
    pub ttfb: histogram::Buckets,
    pub overhead: histogram::Buckets,
}

impl Default for LatencyHistograms {
    fn default() -> Self {
        LatencyHistograms {
            duration: histogram::Buckets::new(histogram::LATENCY_BOUNDS_US),
            ttfb: histogram::Buckets::new(histogram::LATENCY_BOUNDS_US),
            overhead: histogram::Buckets::new(histogram::OVERHEAD_BOUNDS_US),
        }
    }
}

impl LatencyHistograms {
    pub fn merge(&mut self, other: &LatencyHistograms) {
        self.duration.merge(&other.duration);
        self.ttfb.merge(&other.ttfb);
        self.overhead.merge(&other.overhead);
    }
}

/// Counter increments since the last tick.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub requests: u64,
    pub tokens: [u64; 5],
    pub cost_micros: u64,
    pub without_usage: u64,
}

pub const TOKEN_KINDS: [&str; 5] = ["prompt", "completion", "cache_read", "cache_write", "reasoning"];

/// One worker's measurements since its last report.
#[derive(Debug, Clone)]
pub struct MetricsDelta {
    pub worker: usize,
    pub requests: HashMap<RequestLabels, u64>,
    pub spend: HashMap<SpendLabels, Counters>,
    pub attempts: HashMap<AttemptLabels, u64>,
    pub failovers: HashMap<String, u64>,
    /// Whole-process latency for the dashboard's percentiles (HDR: fine-grained, not aggregatable).
    pub latency: Histogram<u64>,
    pub ttfb: Histogram<u64>,
    /// The Prometheus histograms, per label set.
    pub histograms: HashMap<LatencyLabels, LatencyHistograms>,
    /// Gauges, sampled at report time.
    pub in_flight: u64,
    pub open_connections: u64,
    /// Cumulative pool counters per origin.
    pub pool: Vec<(String, crate::upstream::PoolCounters)>,
    pub driver: &'static str,
    /// The response cache's counters since the last report, and its memory gauge.
    pub cache: CacheCounters,
}

/// The response cache's counters: lookups by model label and result, what hits saved, what was
/// stored and evicted, and (a gauge) the bytes the worker's memory tier holds.
#[derive(Debug, Clone, Default)]
pub struct CacheCounters {
    pub lookups: HashMap<(String, &'static str), u64>,
    pub saved_micros: u64,
    pub stored_bytes: u64,
    pub evictions: u64,
    pub memory_bytes: u64,
}

/// A worker's recorder. Single-threaded; `RefCell`s only.
pub struct WorkerMetrics {
    worker: usize,
    delta: RefCell<MetricsDelta>,
    /// Per label set, since the last report (folded into the delta by `take_delta`).
    routes: RefCell<HashMap<LatencyLabels, RouteTally>>,
    pub in_flight: Cell<u64>,
    /// The response cache's memory gauge, sampled into each delta.
    cache_memory_bytes: Cell<u64>,
}

fn empty_delta(worker: usize) -> MetricsDelta {
    MetricsDelta {
        worker,
        requests: HashMap::new(),
        spend: HashMap::new(),
        attempts: HashMap::new(),
        failovers: HashMap::new(),
        latency: new_histogram(),
        ttfb: new_histogram(),
        histograms: HashMap::new(),
        in_flight: 0,
        open_connections: 0,
        pool: Vec::new(),
        driver: "",
        cache: CacheCounters::default(),
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// One call into its label set's histograms; TTFB only when a provider answered.
fn observe_latency(histograms: &mut LatencyHistograms, call: &CallRecord) {
    histograms.duration.observe(micros(call.duration));
    histograms.overhead.observe(micros(call.overhead()));
    if let Some(ttfb) = call.ttfb {
        histograms.ttfb.observe(micros(ttfb));
    }
}

/// The `status_class` label values, in the order of [`status_class_index`].
const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn status_class_index(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// What a worker records per front door, model and provider between two reports: the latency
/// histograms and the requests per status class. One map lookup per call serves both; the report
/// splits them into `MetricsDelta::requests` and `::histograms`.
#[derive(Default)]
struct RouteTally {
    histograms: LatencyHistograms,
    requests_by_class: [u64; 5],
}

impl WorkerMetrics {
    pub fn new(worker: usize) -> WorkerMetrics {
        WorkerMetrics {
            worker,
            delta: RefCell::new(empty_delta(worker)),
            routes: RefCell::new(HashMap::new()),
            in_flight: Cell::new(0),
            cache_memory_bytes: Cell::new(0),
        }
    }

    /// Counts a finished request. Allocates only for a label set seen for the first time.
    pub fn record(&self, call: &CallRecord) {
        let mut delta = self.delta.borrow_mut();
        let model = call.model_label();
        let provider = if call.provider.is_empty() { "none" } else { &call.provider };
        let labels = LatencyLabelsRef { front_door: call.front_door, model, provider };
        let mut routes = self.routes.borrow_mut();
        let tally = routes.entry_ref(&labels).or_default();
        tally.requests_by_class[status_class_index(call.status)] += 1;
        observe_latency(&mut tally.histograms, call);
        for attempt in &call.attempts {
            let labels = AttemptLabelsRef { provider: &attempt.provider, outcome: attempt.outcome.name() };
            *delta.attempts.entry_ref(&labels).or_default() += 1;
        }
        if call.attempts.len() > 1 {
            *delta.failovers.entry_ref(model).or_default() += call.attempts.len() as u64 - 1;
        }
        if !call.provider.is_empty() && (200..300).contains(&call.status) {
            let spend = SpendLabelsRef { model: &call.served_model, provider: &call.provider, key: &call.key };
            let counters = delta.spend.entry_ref(&spend).or_default();
            counters.requests += 1;
            match &call.usage {
                Some(u) => {
                    let kinds = [
                        u.prompt_tokens,
                        u.completion_tokens,
                        u.cache_read_tokens,
                        u.cache_write_tokens,
                        u.reasoning_tokens,
                    ];
                    for (total, add) in counters.tokens.iter_mut().zip(kinds) {
                        *total += add;
                    }
                    counters.cost_micros += call.cost_micros;
                }
                None => counters.without_usage += 1,
            }
        }
        if let Some(result) = call.cache {
            *delta.cache.lookups.entry((model.to_string(), result)).or_default() += 1;
            delta.cache.saved_micros += call.cache_saved_micros;
        }
        record_micros(&mut delta.latency, micros(call.duration));
        if let Some(ttfb) = call.ttfb {
            record_micros(&mut delta.ttfb, micros(ttfb));
        }
    }

    /// Everything since the last call, with the gauges sampled now.
    pub fn take_delta(
        &self,
        open_connections: u64,
        pool: Vec<(String, crate::upstream::PoolCounters)>,
        driver: &'static str,
    ) -> MetricsDelta {
        let mut delta = std::mem::replace(&mut *self.delta.borrow_mut(), empty_delta(self.worker));
        for (labels, tally) in self.routes.borrow_mut().drain() {
            for (class, &n) in STATUS_CLASSES.iter().zip(&tally.requests_by_class) {
                if n > 0 {
                    let key = RequestLabels {
                        front_door: labels.front_door,
                        model: labels.model.clone(),
                        provider: labels.provider.clone(),
                        status_class: class,
                    };
                    *delta.requests.entry(key).or_default() += n;
                }
            }
            // Each label set comes once out of the drained map, into a fresh delta.
            delta.histograms.insert(labels, tally.histograms);
        }
        delta.in_flight = self.in_flight.get();
        delta.open_connections = open_connections;
        delta.pool = pool;
        delta.driver = driver;
        delta.cache.memory_bytes = self.cache_memory_bytes.get();
        delta
    }

    /// The response cache stored an entry of `bytes`, evicting `evictions`; its memory tier now
    /// holds `memory_bytes`.
    pub fn note_cache_store(&self, bytes: u64, evictions: u64, memory_bytes: u64) {
        let mut delta = self.delta.borrow_mut();
        delta.cache.stored_bytes += bytes;
        delta.cache.evictions += evictions;
        self.cache_memory_bytes.set(memory_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(status: u16) -> CallRecord {
        CallRecord {
            front_door: "openai",
            model: "acme/chat".into(),
            model_known: true,
            provider: "mock".into(),
            status,
            duration: Duration::from_millis(3),
            ..CallRecord::default()
        }
    }

    #[test]
    fn a_report_splits_each_label_set_into_requests_per_status_class_and_its_histograms() {
        let worker = WorkerMetrics::new(0);
        for status in [200, 200, 503, 404, 200] {
            worker.record(&call(status));
        }
        let mut other = call(200);
        other.provider = "other".into();
        worker.record(&other);
        let delta = worker.take_delta(0, Vec::new(), "epoll");
        let requests = |provider: &str, class: &'static str| {
            let labels = RequestLabels {
                front_door: "openai",
                model: "acme/chat".into(),
                provider: provider.into(),
                status_class: class,
            };
            delta.requests.get(&labels).copied()
        };
        assert_eq!(requests("mock", "2xx"), Some(3));
        assert_eq!(requests("mock", "4xx"), Some(1));
        assert_eq!(requests("mock", "5xx"), Some(1));
        assert_eq!(requests("other", "2xx"), Some(1));
        assert_eq!(delta.requests.len(), 4, "no series for a class without requests");
        let histograms = |provider: &str| {
            let labels = LatencyLabels { front_door: "openai", model: "acme/chat".into(), provider: provider.into() };
            delta.histograms.get(&labels).map(|h| h.duration.count())
        };
        assert_eq!((histograms("mock"), histograms("other")), (Some(5), Some(1)));
        let next = worker.take_delta(0, Vec::new(), "epoll");
        assert!(next.requests.is_empty() && next.histograms.is_empty(), "the next report starts from nothing");
    }
}
