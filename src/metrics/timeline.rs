//! The dashboard's data: the last minutes of traffic in one-second buckets (requests, errors and
//! spend by model and by provider; latency and time-to-first-byte percentiles), kept by the control
//! thread and rendered as JSON for `GET /v1/stats`.

use std::collections::{BTreeMap, VecDeque};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::MetricsDelta;
use crate::health::new_histogram;

/// Seconds of history kept and served.
pub const WINDOW_SECONDS: u64 = 600;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub requests: u64,
    pub errors: u64,
    pub cost_micros: u64,
}

/// One second of traffic. Percentiles are fixed when the second closes.
#[derive(Debug, Clone, Serialize)]
struct Second {
    t: u64,
    total: Tally,
    by_model: BTreeMap<String, Tally>,
    by_provider: BTreeMap<String, Tally>,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    ttfb_p50_ms: f64,
    ttfb_p99_ms: f64,
}

struct Open {
    second: Second,
    latency: Histogram<u64>,
    ttfb: Histogram<u64>,
}

#[derive(Default)]
pub struct Timeline {
    closed: VecDeque<Second>,
    open: Option<Open>,
}

fn ms(histogram: &Histogram<u64>, q: f64) -> f64 {
    if histogram.is_empty() { 0.0 } else { histogram.value_at_quantile(q) as f64 / 1000.0 }
}

fn add(tally: &mut Tally, requests: u64, errors: u64, cost: u64) {
    tally.requests += requests;
    tally.errors += errors;
    tally.cost_micros += cost;
}

impl Timeline {
    /// Adds a worker's delta to the second `now_unix`.
    pub fn merge(&mut self, delta: &MetricsDelta, now_unix: u64) {
        let open = self.open_second(now_unix);
        for (labels, &n) in &delta.requests {
            let errors = if labels.status_class == "2xx" { 0 } else { n };
            add(&mut open.second.total, n, errors, 0);
            add(open.second.by_model.entry(labels.model.clone()).or_default(), n, errors, 0);
            add(open.second.by_provider.entry(labels.provider.clone()).or_default(), n, errors, 0);
        }
        for (labels, counters) in &delta.spend {
            add(&mut open.second.total, 0, 0, counters.cost_micros);
            add(open.second.by_model.entry(labels.model.clone()).or_default(), 0, 0, counters.cost_micros);
            add(open.second.by_provider.entry(labels.provider.clone()).or_default(), 0, 0, counters.cost_micros);
        }
        let _ = open.latency.add(&delta.latency);
        let _ = open.ttfb.add(&delta.ttfb);
    }

    fn open_second(&mut self, now_unix: u64) -> &mut Open {
        if self.open.as_ref().is_some_and(|o| o.second.t != now_unix) {
            self.close();
        }
        self.open.get_or_insert_with(|| Open {
            second: Second {
                t: now_unix,
                total: Tally::default(),
                by_model: BTreeMap::new(),
                by_provider: BTreeMap::new(),
                latency_p50_ms: 0.0,
                latency_p99_ms: 0.0,
                ttfb_p50_ms: 0.0,
                ttfb_p99_ms: 0.0,
            },
            latency: new_histogram(),
            ttfb: new_histogram(),
        })
    }

    fn close(&mut self) {
        if let Some(mut open) = self.open.take() {
            open.second.latency_p50_ms = ms(&open.latency, 0.5);
            open.second.latency_p99_ms = ms(&open.latency, 0.99);
            open.second.ttfb_p50_ms = ms(&open.ttfb, 0.5);
            open.second.ttfb_p99_ms = ms(&open.ttfb, 0.99);
            self.closed.push_back(open.second);
        }
        while self.closed.len() as u64 > WINDOW_SECONDS {
            self.closed.pop_front();
        }
    }

    /// The JSON for `/v1/stats`: closed seconds only (the open one is still changing), and `health`
    /// already rendered by `api::health`.
    pub fn render(&mut self, now_unix: u64, health: &serde_json::Value) -> String {
        if self.open.as_ref().is_some_and(|o| o.second.t < now_unix) {
            self.close();
        }
        let oldest = now_unix.saturating_sub(WINDOW_SECONDS);
        let seconds: Vec<&Second> = self.closed.iter().filter(|s| s.t >= oldest).collect();
        serde_json::json!({
            "now": now_unix,
            "window_seconds": WINDOW_SECONDS,
            "seconds": seconds,
            "health": health,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{CallRecord, WorkerMetrics};

    #[test]
    fn seconds_close_and_carry_their_totals() {
        let worker = WorkerMetrics::new(0);
        let ok = CallRecord {
            front_door: "openai",
            model: "m".into(),
            served_model: "m".into(),
            provider: "p".into(),
            status: 200,
            usage: Some(Default::default()),
            cost_micros: 7,
            duration: std::time::Duration::from_millis(3),
            ..CallRecord::default()
        };
        let failed = CallRecord { status: 502, ..ok.clone() };
        worker.record(&ok);
        worker.record(&failed);
        let mut timeline = Timeline::default();
        timeline.merge(&worker.take_delta(0, Vec::new(), "epoll"), 100);
        let json: serde_json::Value = serde_json::from_str(&timeline.render(100, &serde_json::Value::Null)).unwrap();
        assert_eq!(json["seconds"].as_array().unwrap().len(), 0, "the current second is still open");
        let json: serde_json::Value = serde_json::from_str(&timeline.render(101, &serde_json::Value::Null)).unwrap();
        let second = &json["seconds"][0];
        assert_eq!(second["t"], 100);
        assert_eq!(second["total"]["requests"], 2);
        assert_eq!(second["total"]["errors"], 1);
        assert_eq!(second["by_model"]["m"]["cost_micros"], 7);
        assert!(second["latency_p50_ms"].as_f64().unwrap() >= 2.9);
    }
}
