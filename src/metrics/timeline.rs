//! The dashboard's live data: the last minutes of traffic in one-second buckets (requests, errors,
//! failovers and spend by model and by provider, spend and tokens by key; latency and
//! time-to-first-byte percentiles), kept by the control thread and rendered as JSON for
//! `GET /v1/stats` without parameters. Longer ranges come from the request history (`history`).
//!
//! Errors are split by status: 4xx are counted as the client's (`client_errors`), 5xx as the
//! providers' (`provider_errors`); the history classes them exactly (a provider's 429 is the
//! provider's), this live view only has the status class.

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
    /// Every answer that was not 2xx: `client_errors + provider_errors` (and 1xx/3xx, never sent).
    pub errors: u64,
    pub cost_micros: u64,
    /// 4xx answers.
    pub client_errors: u64,
    /// 5xx answers.
    pub provider_errors: u64,
    /// Provider attempts after the first (each one a failover).
    pub failovers: u64,
}

/// What one gateway key was served in a second.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeyTally {
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_micros: u64,
}

/// One second of traffic. Percentiles are fixed when the second closes.
#[derive(Debug, Clone, Serialize)]
struct Second {
    t: u64,
    total: Tally,
    by_model: BTreeMap<String, Tally>,
    by_provider: BTreeMap<String, Tally>,
    /// Served calls by gateway key name (`""` when the gateway is open).
    by_key: BTreeMap<String, KeyTally>,
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

fn add_errors(tally: &mut Tally, status_class: &str, n: u64) {
    match status_class {
        "4xx" => tally.client_errors += n,
        "5xx" => tally.provider_errors += n,
        _ => {}
    }
}

impl Timeline {
    /// Adds a worker's delta to the second `now_unix`.
    pub fn merge(&mut self, delta: &MetricsDelta, now_unix: u64) {
        let open = self.open_second(now_unix);
        for (labels, &n) in &delta.requests {
            let errors = if labels.status_class == "2xx" { 0 } else { n };
            let second = &mut open.second;
            let by_model = second.by_model.entry(labels.model.clone()).or_default();
            let by_provider = second.by_provider.entry(labels.provider.clone()).or_default();
            for tally in [&mut second.total, by_model, by_provider] {
                add(tally, n, errors, 0);
                add_errors(tally, labels.status_class, n);
            }
        }
        for (labels, counters) in &delta.spend {
            add(&mut open.second.total, 0, 0, counters.cost_micros);
            add(open.second.by_model.entry(labels.model.clone()).or_default(), 0, 0, counters.cost_micros);
            add(open.second.by_provider.entry(labels.provider.clone()).or_default(), 0, 0, counters.cost_micros);
            let key = open.second.by_key.entry(labels.key.clone()).or_default();
            key.requests += counters.requests;
            key.prompt_tokens += counters.tokens[0];
            key.completion_tokens += counters.tokens[1];
            key.cost_micros += counters.cost_micros;
        }
        for (model, &n) in &delta.failovers {
            open.second.total.failovers += n;
            open.second.by_model.entry(model.clone()).or_default().failovers += n;
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
                by_key: BTreeMap::new(),
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
            model_known: true,
            served_model: "m".into(),
            provider: "p".into(),
            status: 200,
            usage: Some(Default::default()),
            cost_micros: 7,
            duration: std::time::Duration::from_millis(3),
            ..CallRecord::default()
        };
        let failed = CallRecord { status: 502, ..ok.clone() };
        let refused = CallRecord { status: 404, provider: Default::default(), ..ok.clone() };
        let attempt = |outcome| crate::metrics::AttemptRecord {
            provider: "p".into(),
            outcome,
            status: None,
            start_unix_ms: 0,
            end_unix_ms: 0,
        };
        let failed_over = CallRecord {
            key: "team".into(),
            attempts: smallvec::smallvec![
                attempt(crate::health::Outcome::ServerError),
                attempt(crate::health::Outcome::Success)
            ],
            ..ok.clone()
        };
        worker.record(&ok);
        worker.record(&failed);
        worker.record(&refused);
        worker.record(&failed_over);
        let mut timeline = Timeline::default();
        timeline.merge(&worker.take_delta(0, Vec::new(), "epoll"), 100);
        let json: serde_json::Value = serde_json::from_str(&timeline.render(100, &serde_json::Value::Null)).unwrap();
        assert_eq!(json["seconds"].as_array().unwrap().len(), 0, "the current second is still open");
        let json: serde_json::Value = serde_json::from_str(&timeline.render(101, &serde_json::Value::Null)).unwrap();
        let second = &json["seconds"][0];
        assert_eq!(second["t"], 100);
        assert_eq!(second["total"]["requests"], 4);
        assert_eq!(second["total"]["errors"], 2);
        assert_eq!(second["total"]["client_errors"], 1, "the 404 is the client's");
        assert_eq!(second["total"]["provider_errors"], 1);
        assert_eq!(second["by_model"]["m"]["failovers"], 1, "a model whose call failed over shows it");
        assert_eq!(second["by_model"]["m"]["cost_micros"], 14);
        assert_eq!(second["by_key"]["team"]["cost_micros"], 7);
        assert_eq!(second["by_key"]["team"]["requests"], 1);
        assert!(second["latency_p50_ms"].as_f64().unwrap() >= 2.9);
    }
}
