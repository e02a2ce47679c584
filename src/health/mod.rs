//! Provider health: what each worker measures (`recorder`), how the control thread merges all cores
//! into sliding windows and decides ejections (`aggregator`, `ejection`), and the immutable table it
//! publishes back to every worker (`HealthTable`).
//!
//! Workers never lock: they record into core-local histograms and `try_send` a delta every tick.
//! Only the control thread blocks (on the report channel).

pub mod aggregator;
pub mod ejection;
pub mod recorder;
pub mod remote;

use std::time::Instant;

use hdrhistogram::Histogram;

/// Index of a (provider, provider model) pair in the routing snapshot; health is kept per endpoint.
pub type EndpointId = usize;

/// How one upstream attempt ended, as health sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Success,
    /// Connect refused or reset, TLS failure, provider closed before answering.
    ConnectError,
    /// Connect, first-byte or read-idle timeout.
    Timeout,
    /// 429, or 408/409 which providers use for transient overload.
    RateLimited,
    /// 5xx, 529, or an invalid response.
    ServerError,
    /// A 200 whose stream failed or began with an error event.
    StreamError,
    /// The client's fault (400, 401, 404, 413): says nothing about the provider's health.
    ClientError,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Success,
        Outcome::ConnectError,
        Outcome::Timeout,
        Outcome::RateLimited,
        Outcome::ServerError,
        Outcome::StreamError,
        Outcome::ClientError,
    ];

    pub fn index(self) -> usize {
        Outcome::ALL.iter().position(|&o| o == self).unwrap_or(0)
    }

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::ConnectError => "connect_error",
            Outcome::Timeout => "timeout",
            Outcome::RateLimited => "rate_limited",
            Outcome::ServerError => "server_error",
            Outcome::StreamError => "stream_error",
            Outcome::ClientError => "client_error",
        }
    }

    /// Counts against the endpoint's health.
    pub fn is_failure(self) -> bool {
        !matches!(self, Outcome::Success | Outcome::ClientError)
    }
}

/// Latency histograms hold microseconds up to ten minutes at two significant digits: enough to tell
/// p99 apart from p50 at any scale, small enough to keep many per endpoint.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 2).expect("static bounds are valid")
}

/// Records `micros`, clamped into the histogram's range so an outlier is never dropped.
pub fn record_micros(histogram: &mut Histogram<u64>, micros: u64) {
    let clamped = micros.clamp(1, histogram.high());
    let _ = histogram.record(clamped);
}

/// One worker's measurements of one endpoint since its last report.
#[derive(Debug, Clone)]
pub struct EndpointDelta {
    pub latency: Histogram<u64>,
    pub ttfb: Histogram<u64>,
    pub outcomes: [u64; 7],
    /// Failures after the last success in this delta, in order: lets the aggregator continue a
    /// consecutive-failure count across reports.
    pub trailing_failures: u64,
    /// Whether this delta contains at least one success.
    pub had_success: bool,
    /// A provider-announced cooldown (`Retry-After`) that should reach every core.
    pub cooldown_until: Option<Instant>,
    /// The result of this worker's probe request, when it sent one.
    pub probe_succeeded: Option<bool>,
}

impl Default for EndpointDelta {
    fn default() -> Self {
        EndpointDelta {
            latency: new_histogram(),
            ttfb: new_histogram(),
            outcomes: [0; 7],
            trailing_failures: 0,
            had_success: false,
            cooldown_until: None,
            probe_succeeded: None,
        }
    }
}

/// What a worker sends each tick.
#[derive(Debug)]
pub struct HealthReport {
    pub worker: usize,
    /// Increases with every report of this worker; the published table acknowledges it.
    pub seq: u64,
    /// The version of the health table this worker routes with now.
    pub applied_version: u64,
    /// The config version the endpoint ids below belong to.
    pub routes_version: u64,
    pub endpoints: Vec<(EndpointId, EndpointDelta)>,
}

/// The state routing acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointState {
    Healthy,
    /// Skipped (unless nothing else is left) until the instant.
    Ejected {
        until: Instant,
    },
    /// One probe request, sent by `worker`, decides.
    Probing {
        worker: usize,
    },
}

/// Published health of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointHealth {
    pub state: EndpointState,
    /// A `Retry-After` cooldown: skip until then (like an ejection, but no probe needed).
    pub cooldown_until: Option<Instant>,
    pub requests: u64,
    pub failures: u64,
    pub consecutive_failures: u64,
    pub ejections: u32,
    /// Microseconds over the window; 0 when nothing was measured.
    pub latency_p50_us: u64,
    pub latency_p99_us: u64,
    pub ttfb_p50_us: u64,
    pub ttfb_p99_us: u64,
    /// Why the endpoint was last ejected; `None` once a probe restored it.
    pub ejection_reason: Option<ejection::EjectionReason>,
}

impl Default for EndpointHealth {
    fn default() -> Self {
        EndpointHealth {
            state: EndpointState::Healthy,
            cooldown_until: None,
            requests: 0,
            failures: 0,
            consecutive_failures: 0,
            ejections: 0,
            latency_p50_us: 0,
            latency_p99_us: 0,
            ttfb_p50_us: 0,
            ttfb_p99_us: 0,
            ejection_reason: None,
        }
    }
}

impl EndpointHealth {
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.failures as f64 / self.requests as f64 }
    }

    /// Whether routing should avoid the endpoint at `now` on `worker` (probing endpoints are avoided
    /// by every worker but the one holding the probe).
    pub fn is_avoided(&self, now: Instant, worker: usize) -> bool {
        let cooling = self.cooldown_until.is_some_and(|until| now < until);
        let state = match self.state {
            EndpointState::Healthy => false,
            EndpointState::Ejected { until } => now < until,
            EndpointState::Probing { worker: prober } => prober != worker,
        };
        cooling || state
    }
}

/// The health of every endpoint, as published by the control thread.
#[derive(Debug, Clone, Default)]
pub struct HealthTable {
    pub version: u64,
    /// The config version whose endpoint ids index `endpoints`.
    pub routes_version: u64,
    pub endpoints: Vec<EndpointHealth>,
    /// Per worker, the last report sequence number merged into this table.
    pub acked_seq: Vec<u64>,
}

impl HealthTable {
    pub fn new(endpoints: usize, workers: usize) -> HealthTable {
        HealthTable {
            version: 0,
            routes_version: 0,
            endpoints: vec![EndpointHealth::default(); endpoints],
            acked_seq: vec![0; workers],
        }
    }

    pub fn get(&self, id: EndpointId) -> EndpointHealth {
        self.endpoints.get(id).copied().unwrap_or_default()
    }
}
