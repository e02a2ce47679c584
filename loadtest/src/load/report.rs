//! The result of a load run: `Report` (serialised as the `--json` file, field names stable and
//! documented in loadtest/README.md) and its text table. Built from merged `Recorder`s; measuring
//! is `stats.rs`'s job.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::config::{LoadConfig, Pace};
use super::stats::{ErrorCounts, Recorder};

/// Everything a run measured. Latencies are in milliseconds, rounded to the microsecond.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub config: ReportConfig,
    /// The client's I/O driver: `io_uring` or `epoll`.
    pub driver: String,
    /// From the end of warmup to the last measured response.
    pub elapsed_s: f64,
    /// Measured requests that finished, successfully or not.
    pub requests: u64,
    pub ok: u64,
    pub errors: ErrorCounts,
    /// Non-2xx responses by status code.
    pub status_codes: BTreeMap<String, u64>,
    /// Open loop: requests due before the end that no connection was free to send.
    pub unsent: u64,
    /// Successful requests per second.
    pub throughput_rps: f64,
    /// `data:` events (not counting `[DONE]`) of successful streams.
    pub events: u64,
    pub events_per_s: f64,
    /// Scheduled start to the end of the response.
    pub latency_ms: Summary,
    /// Streams only: scheduled start to the first event.
    pub ttfe_ms: Option<Summary>,
    /// Streams only: between consecutive events.
    pub gap_ms: Option<Summary>,
    /// Streams only: first event to the end of the stream.
    pub stream_ms: Option<Summary>,
}

/// The run's settings, echoed so a JSON file stands on its own.
#[derive(Clone, Debug, Serialize)]
pub struct ReportConfig {
    pub url: String,
    pub method: String,
    /// `closed` or `open`.
    pub mode: String,
    /// Open loop: requests per second.
    pub rate: Option<f64>,
    pub connections: usize,
    pub threads: usize,
    pub stream: bool,
    pub model: String,
    /// Actual request body size.
    pub body_bytes: usize,
    pub duration_s: Option<f64>,
    pub requests_limit: Option<u64>,
    pub warmup_s: f64,
    pub timeout_s: f64,
}

/// Distribution of one measure, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    fn of(histogram: &Histogram<u64>) -> Summary {
        if histogram.is_empty() {
            return Summary::default();
        }
        let ms = |micros: f64| (micros).round() / 1000.0;
        let at = |q: f64| ms(histogram.value_at_quantile(q) as f64);
        Summary {
            count: histogram.len(),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            max: ms(histogram.max() as f64),
            mean: ms(histogram.mean()),
        }
    }
}

impl Report {
    pub(crate) fn new(config: &LoadConfig, body_bytes: usize, recorder: &Recorder, run: RunFacts) -> Report {
        let seconds = run.elapsed.as_secs_f64();
        let per_second = |n: u64| if seconds > 0.0 { round3(n as f64 / seconds) } else { 0.0 };
        let streamed = |h: &Histogram<u64>| config.stream.then(|| Summary::of(h));
        Report {
            config: report_config(config, body_bytes),
            driver: run.driver.to_owned(),
            elapsed_s: round3(seconds),
            requests: recorder.ok + recorder.errors.total,
            ok: recorder.ok,
            errors: recorder.errors,
            status_codes: recorder.status_codes.iter().map(|(code, n)| (code.to_string(), *n)).collect(),
            unsent: run.unsent,
            throughput_rps: per_second(recorder.ok),
            events: recorder.events,
            events_per_s: per_second(recorder.events),
            latency_ms: Summary::of(&recorder.latency),
            ttfe_ms: streamed(&recorder.ttfe),
            gap_ms: streamed(&recorder.gap),
            stream_ms: streamed(&recorder.stream),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report holds only plain numbers and strings")
    }

    /// The human-readable table printed on stdout.
    pub fn table(&self) -> String {
        let c = &self.config;
        let mut out = String::new();
        let mode = match c.rate {
            Some(rate) => format!("open loop at {rate} req/s, at most {} connections", c.connections),
            None => format!("closed loop, {} connections", c.connections),
        };
        let stream = if c.stream { ", stream" } else { "" };
        let _ =
            writeln!(out, "{} {} ({mode}, {} thread(s), {} driver{stream})", c.method, c.url, c.threads, self.driver);
        let _ = writeln!(out, "  elapsed     {:.3} s", self.elapsed_s);
        let _ = writeln!(out, "  requests    {} (ok {}, errors {})", self.requests, self.ok, self.errors.total);
        let _ = writeln!(out, "  throughput  {:.1} req/s", self.throughput_rps);
        if c.stream {
            let _ = writeln!(out, "  events      {} ({:.1} events/s)", self.events, self.events_per_s);
        }
        if self.errors.total > 0 {
            let _ = writeln!(out, "  errors      {}", self.error_line());
        }
        if self.unsent > 0 {
            let _ = writeln!(out, "  unsent      {} (due, but no connection was free before the end)", self.unsent);
        }
        let _ = writeln!(
            out,
            "  {:<10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}  (ms)",
            "", "p50", "p90", "p99", "p99.9", "max", "mean"
        );
        let rows = [
            ("latency", Some(&self.latency_ms)),
            ("ttfe", self.ttfe_ms.as_ref()),
            ("gap", self.gap_ms.as_ref()),
            ("stream", self.stream_ms.as_ref()),
        ];
        for (name, summary) in rows {
            if let Some(s) = summary {
                let _ = writeln!(
                    out,
                    "  {name:<10}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}",
                    s.p50, s.p90, s.p99, s.p999, s.max, s.mean
                );
            }
        }
        out
    }

    fn error_line(&self) -> String {
        let kinds = self.errors.nonzero().iter().map(|(kind, n)| format!("{kind} {n}")).collect::<Vec<_>>().join(", ");
        if self.status_codes.is_empty() {
            return kinds;
        }
        let codes = self.status_codes.iter().map(|(code, n)| format!("{code}: {n}")).collect::<Vec<_>>().join(", ");
        format!("{kinds} (status {codes})")
    }
}

/// What the run itself, not the recorders, knows.
pub(crate) struct RunFacts {
    pub elapsed: Duration,
    pub unsent: u64,
    pub driver: &'static str,
}

fn report_config(config: &LoadConfig, body_bytes: usize) -> ReportConfig {
    let (mode, rate) = match config.pace {
        Pace::Closed => ("closed", None),
        Pace::Open { rate } => ("open", Some(rate)),
    };
    ReportConfig {
        url: config.url.clone(),
        method: config.method.as_str().to_owned(),
        mode: mode.to_owned(),
        rate,
        connections: config.connections,
        threads: config.threads,
        stream: config.stream,
        model: config.model.clone(),
        body_bytes,
        duration_s: config.duration.map(|d| d.as_secs_f64()),
        requests_limit: config.requests,
        warmup_s: config.warmup.as_secs_f64(),
        timeout_s: config.timeout.as_secs_f64(),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::stats::Failure;

    #[test]
    fn json_and_table() {
        let mut recorder = Recorder::new();
        for ms in 1..=100 {
            recorder.success(Duration::from_millis(ms), None);
        }
        recorder.failure(Failure::Status(502));
        let facts = RunFacts { elapsed: Duration::from_secs(2), unsent: 0, driver: "io_uring" };
        let report = Report::new(&LoadConfig::default(), 1024, &recorder, facts);
        assert_eq!((report.requests, report.ok, report.throughput_rps), (101, 100, 50.0));
        assert_eq!((report.latency_ms.p50, report.latency_ms.max), (50.015, 100.031));
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["errors"]["status_5xx"], 1);
        assert_eq!(json["status_codes"]["502"], 1);
        assert_eq!(json["config"]["mode"], "closed");
        assert!(json["ttfe_ms"].is_null());
        let table = report.table();
        assert!(table.contains("errors      status_5xx 1 (status 502: 1)"), "{table}");
        assert!(table.contains("  latency       50.015"), "{table}");
    }
}
