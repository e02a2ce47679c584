//! The control thread's side of health: merges every worker's deltas into per-endpoint sliding
//! windows, runs the ejection state machines, and produces the `HealthTable` to publish.
//!
//! Single-threaded and blocking-free; the control loop that feeds it lives in `runtime::control`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::ejection::{Ejection, EjectionPolicy, Observed};
use super::{EndpointDelta, EndpointHealth, HealthReport, HealthTable, Outcome, new_histogram};

/// How many buckets a window is cut into; the window slides one bucket at a time.
const BUCKETS_PER_WINDOW: u32 = 10;

#[derive(Debug)]
struct Bucket {
    start: Instant,
    latency: Histogram<u64>,
    ttfb: Histogram<u64>,
    requests: u64,
    failures: u64,
}

impl Bucket {
    fn new(start: Instant) -> Bucket {
        Bucket { start, latency: new_histogram(), ttfb: new_histogram(), requests: 0, failures: 0 }
    }
}

#[derive(Debug, Default)]
struct EndpointWindow {
    buckets: VecDeque<Bucket>,
    consecutive_failures: u64,
    ejection: Ejection,
    cooldown_until: Option<Instant>,
}

/// Merged statistics of one endpoint over the current window.
#[derive(Debug, Clone)]
pub struct WindowStats {
    pub latency: Histogram<u64>,
    pub ttfb: Histogram<u64>,
    pub requests: u64,
    pub failures: u64,
}

pub struct Aggregator {
    policy: EjectionPolicy,
    workers: usize,
    bucket_len: Duration,
    window: Duration,
    endpoints: Vec<EndpointWindow>,
    acked_seq: Vec<u64>,
    version: u64,
    routes_version: u64,
}

impl Aggregator {
    pub fn new(endpoints: usize, workers: usize, window: Duration, policy: EjectionPolicy) -> Aggregator {
        Aggregator {
            policy,
            workers,
            bucket_len: (window / BUCKETS_PER_WINDOW).max(Duration::from_millis(1)),
            window,
            endpoints: (0..endpoints).map(|_| EndpointWindow::default()).collect(),
            acked_seq: vec![0; workers],
            version: 0,
            routes_version: 0,
        }
    }

    /// A config reload changed the endpoint list: windows move to their endpoint's new index (matched
    /// by provider and provider model), new endpoints start empty, removed ones are forgotten.
    pub fn remap(
        &mut self,
        routes_version: u64,
        old_keys: &[(String, String)],
        new_keys: &[(String, String)],
        policy: EjectionPolicy,
    ) {
        let mut old: Vec<Option<EndpointWindow>> = std::mem::take(&mut self.endpoints).into_iter().map(Some).collect();
        self.endpoints = new_keys
            .iter()
            .map(|key| {
                let index = old_keys.iter().position(|k| k == key);
                index.and_then(|i| old.get_mut(i).and_then(Option::take)).unwrap_or_default()
            })
            .collect();
        self.routes_version = routes_version;
        self.policy = policy;
    }

    /// Adds one worker's report at `now`.
    pub fn merge(&mut self, report: HealthReport, now: Instant) {
        if let Some(seq) = self.acked_seq.get_mut(report.worker) {
            *seq = (*seq).max(report.seq);
        }
        if report.routes_version != self.routes_version {
            // Measured against another config's endpoint ids; cannot be attributed.
            return;
        }
        for (id, delta) in report.endpoints {
            let bucket_len = self.bucket_len;
            let policy = self.policy;
            if let Some(endpoint) = self.endpoints.get_mut(id) {
                merge_delta(endpoint, &delta, now, bucket_len, &policy);
            }
        }
    }

    /// Ages the windows, re-evaluates every endpoint, and returns the table to publish.
    pub fn tick(&mut self, now: Instant) -> HealthTable {
        self.version += 1;
        let mut table = HealthTable {
            version: self.version,
            routes_version: self.routes_version,
            endpoints: Vec::with_capacity(self.endpoints.len()),
            acked_seq: self.acked_seq.clone(),
        };
        for endpoint in &mut self.endpoints {
            drop_expired(&mut endpoint.buckets, now, self.window);
            let stats = window_stats(&endpoint.buckets);
            let observed = Observed {
                consecutive_failures: endpoint.consecutive_failures,
                requests: stats.requests,
                failures: stats.failures,
            };
            let was_probing = matches!(endpoint.ejection.state, super::EndpointState::Probing { .. });
            endpoint.ejection.on_tick(now, observed, &self.policy, self.workers);
            if !was_probing && matches!(endpoint.ejection.state, super::EndpointState::Probing { .. }) {
                // The probe alone decides now; old failures must not re-eject a recovered endpoint.
                endpoint.buckets.clear();
                endpoint.consecutive_failures = 0;
            }
            if endpoint.cooldown_until.is_some_and(|until| now >= until) {
                endpoint.cooldown_until = None;
            }
            table.endpoints.push(health_of(endpoint, &stats));
        }
        table
    }

    /// The merged window of one endpoint (for tests and the health endpoint).
    pub fn window_stats(&self, id: usize) -> Option<WindowStats> {
        self.endpoints.get(id).map(|e| window_stats(&e.buckets))
    }
}

fn merge_delta(
    endpoint: &mut EndpointWindow,
    delta: &EndpointDelta,
    now: Instant,
    bucket_len: Duration,
    policy: &EjectionPolicy,
) {
    let needs_bucket = endpoint.buckets.back().is_none_or(|b| now.duration_since(b.start) >= bucket_len);
    if needs_bucket {
        endpoint.buckets.push_back(Bucket::new(now));
    }
    let bucket = endpoint.buckets.back_mut().expect("just ensured");
    let _ = bucket.latency.add(&delta.latency);
    let _ = bucket.ttfb.add(&delta.ttfb);
    let failures: u64 = Outcome::ALL.iter().filter(|o| o.is_failure()).map(|o| delta.outcomes[o.index()]).sum();
    let successes = delta.outcomes[Outcome::Success.index()];
    bucket.requests += failures + successes;
    bucket.failures += failures;
    endpoint.consecutive_failures =
        if delta.had_success { delta.trailing_failures } else { endpoint.consecutive_failures + failures };
    if let Some(until) = delta.cooldown_until {
        endpoint.cooldown_until = Some(endpoint.cooldown_until.map_or(until, |current| current.max(until)));
    }
    if let Some(succeeded) = delta.probe_succeeded {
        endpoint.ejection.on_probe(succeeded, now, policy);
        if succeeded {
            endpoint.consecutive_failures = 0;
        }
    }
}

fn drop_expired(buckets: &mut VecDeque<Bucket>, now: Instant, window: Duration) {
    while buckets.front().is_some_and(|b| now.duration_since(b.start) >= window) {
        buckets.pop_front();
    }
}

fn window_stats(buckets: &VecDeque<Bucket>) -> WindowStats {
    let mut stats = WindowStats { latency: new_histogram(), ttfb: new_histogram(), requests: 0, failures: 0 };
    for bucket in buckets {
        let _ = stats.latency.add(&bucket.latency);
        let _ = stats.ttfb.add(&bucket.ttfb);
        stats.requests += bucket.requests;
        stats.failures += bucket.failures;
    }
    stats
}

fn percentile(histogram: &Histogram<u64>, q: f64) -> u64 {
    if histogram.is_empty() { 0 } else { histogram.value_at_quantile(q) }
}

fn health_of(endpoint: &EndpointWindow, stats: &WindowStats) -> EndpointHealth {
    EndpointHealth {
        state: endpoint.ejection.state,
        cooldown_until: endpoint.cooldown_until,
        requests: stats.requests,
        failures: stats.failures,
        consecutive_failures: endpoint.consecutive_failures,
        ejections: endpoint.ejection.ejections,
        latency_p50_us: percentile(&stats.latency, 0.5),
        latency_p99_us: percentile(&stats.latency, 0.99),
        ttfb_p50_us: percentile(&stats.ttfb, 0.5),
        ttfb_p99_us: percentile(&stats.ttfb, 0.99),
        ejection_reason: endpoint.ejection.reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{EndpointState, record_micros};

    fn policy() -> EjectionPolicy {
        EjectionPolicy {
            consecutive_failures: 3,
            error_rate: 0.9,
            min_requests: 1000,
            base: Duration::from_secs(1),
            max: Duration::from_secs(8),
            probe_timeout: Duration::from_secs(1),
        }
    }

    fn delta(values: &[u64], outcomes: &[Outcome]) -> EndpointDelta {
        let mut d = EndpointDelta::default();
        for &v in values {
            record_micros(&mut d.latency, v);
            record_micros(&mut d.ttfb, v / 2);
        }
        for &o in outcomes {
            d.outcomes[o.index()] += 1;
            if o == Outcome::Success {
                d.had_success = true;
                d.trailing_failures = 0;
            } else if o.is_failure() {
                d.trailing_failures += 1;
            }
        }
        d
    }

    fn report(worker: usize, seq: u64, d: EndpointDelta) -> HealthReport {
        HealthReport { worker, seq, applied_version: 0, routes_version: 0, endpoints: vec![(0, d)] }
    }

    #[test]
    fn merged_percentiles_equal_the_percentiles_of_the_union() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed = crate::test_fixtures::xorshift(seed);
            seed % 2_000_000 + 1
        };
        let a: Vec<u64> = (0..5000).map(|_| next()).collect();
        let b: Vec<u64> = (0..3000).map(|_| next() / 7 + 1).collect();
        let t0 = Instant::now();
        let mut agg = Aggregator::new(1, 2, Duration::from_secs(30), policy());
        agg.merge(report(0, 1, delta(&a, &[])), t0);
        agg.merge(report(1, 1, delta(&b, &[])), t0 + Duration::from_secs(4));
        let mut union = new_histogram();
        for &v in a.iter().chain(&b) {
            record_micros(&mut union, v);
        }

        let merged = agg.window_stats(0).unwrap();

        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(merged.latency.value_at_quantile(q), union.value_at_quantile(q), "q={q}");
        }
        assert_eq!(merged.latency.len(), 8000);
        let table = agg.tick(t0 + Duration::from_secs(5));
        assert_eq!(table.endpoints[0].latency_p50_us, union.value_at_quantile(0.5));
        assert_eq!(table.endpoints[0].latency_p99_us, union.value_at_quantile(0.99));
        assert_eq!(table.acked_seq, vec![1, 1]);
    }

    #[test]
    fn the_window_slides() {
        let t0 = Instant::now();
        let mut agg = Aggregator::new(1, 1, Duration::from_secs(10), policy());
        agg.merge(report(0, 1, delta(&[100], &[Outcome::Success])), t0);
        agg.merge(report(0, 2, delta(&[200], &[Outcome::Success])), t0 + Duration::from_secs(5));
        assert_eq!(agg.tick(t0 + Duration::from_secs(9)).endpoints[0].requests, 2);
        assert_eq!(agg.tick(t0 + Duration::from_secs(10)).endpoints[0].requests, 1, "the first bucket aged out");
        assert_eq!(agg.tick(t0 + Duration::from_secs(15)).endpoints[0].requests, 0);
    }

    #[test]
    fn consecutive_failures_continue_across_workers_and_reset_on_success() {
        let t0 = Instant::now();
        let mut agg = Aggregator::new(1, 2, Duration::from_secs(10), policy());
        agg.merge(report(0, 1, delta(&[], &[Outcome::Success, Outcome::Timeout])), t0);
        agg.merge(report(1, 1, delta(&[], &[Outcome::ServerError, Outcome::ClientError])), t0);
        let table = agg.tick(t0);
        assert_eq!(table.endpoints[0].consecutive_failures, 2, "client errors do not count");
        assert_eq!(table.endpoints[0].state, EndpointState::Healthy);
        agg.merge(report(1, 2, delta(&[], &[Outcome::ConnectError])), t0);
        let table = agg.tick(t0);
        assert_eq!(table.endpoints[0].state, EndpointState::Ejected { until: t0 + Duration::from_secs(1) });
        agg.merge(report(0, 2, delta(&[], &[Outcome::Success])), t0);
        assert_eq!(agg.tick(t0).endpoints[0].consecutive_failures, 0);
    }

    #[test]
    fn cooldowns_are_published_until_they_pass() {
        let t0 = Instant::now();
        let mut agg = Aggregator::new(1, 1, Duration::from_secs(10), policy());
        let mut d = delta(&[], &[Outcome::RateLimited]);
        d.cooldown_until = Some(t0 + Duration::from_secs(2));
        agg.merge(report(0, 1, d), t0);
        assert_eq!(agg.tick(t0).endpoints[0].cooldown_until, Some(t0 + Duration::from_secs(2)));
        assert_eq!(agg.tick(t0 + Duration::from_secs(2)).endpoints[0].cooldown_until, None);
    }

    #[test]
    fn a_reload_keeps_the_windows_of_unchanged_endpoints() {
        let t0 = Instant::now();
        let mut agg = Aggregator::new(2, 1, Duration::from_secs(10), policy());
        let mut d = delta(&[100, 200], &[Outcome::Success, Outcome::Success]);
        d.outcomes[Outcome::Success.index()] = 2;
        agg.merge(
            HealthReport { worker: 0, seq: 1, applied_version: 0, routes_version: 0, endpoints: vec![(1, d)] },
            t0,
        );
        let key = |p: &str, m: &str| (p.to_string(), m.to_string());
        let old = [key("a", "x"), key("b", "y")];
        let new = [key("b", "y"), key("c", "z"), key("a", "x")];
        agg.remap(7, &old, &new, policy());
        let table = agg.tick(t0);
        assert_eq!(table.routes_version, 7);
        assert_eq!(table.endpoints.iter().map(|e| e.requests).collect::<Vec<_>>(), vec![2, 0, 0]);
        let stale = HealthReport {
            worker: 0,
            seq: 2,
            applied_version: 0,
            routes_version: 0,
            endpoints: vec![(0, delta(&[1], &[Outcome::Timeout]))],
        };
        agg.merge(stale, t0);
        assert_eq!(agg.tick(t0).endpoints[0].requests, 2, "a report for the old ids is not merged");
    }

    #[test]
    fn a_successful_probe_restores_the_endpoint() {
        let t0 = Instant::now();
        let mut agg = Aggregator::new(1, 2, Duration::from_secs(10), policy());
        let failures = [Outcome::ServerError, Outcome::ServerError, Outcome::ServerError];
        agg.merge(report(0, 1, delta(&[], &failures)), t0);
        agg.tick(t0);
        let after = t0 + Duration::from_secs(1);
        assert_eq!(agg.tick(after).endpoints[0].state, EndpointState::Probing { worker: 0 });
        let mut probe = delta(&[], &[Outcome::Success]);
        probe.probe_succeeded = Some(true);
        agg.merge(report(0, 2, probe), after);
        let table = agg.tick(after);
        assert_eq!(table.endpoints[0].state, EndpointState::Healthy);
        assert_eq!(table.endpoints[0].consecutive_failures, 0);
    }
}
