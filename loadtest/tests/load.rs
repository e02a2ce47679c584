//! End-to-end tests of the load generator (`loadtest::load::run`) against the mock provider on
//! port 0: counting, stream event timing, open-loop latency from the scheduled start, and every
//! error kind the mock can provoke. Each run is bounded by a small request count so it finishes in
//! well under a second; the mock's delays give lower bounds only, never exact timings.

use std::time::Duration;

use loadtest::load::{LoadConfig, Method, Pace, Report, run};
use loadtest::{Fault, MockConfig, MockProvider, refused_addr};

/// Stream events the mock sends for `events` content chunks: the role chunk, the content chunks
/// and the finish chunk (`[DONE]` is not counted).
fn stream_events(events: usize) -> u64 {
    events as u64 + 2
}

fn start(config: MockConfig) -> MockProvider {
    MockProvider::start(config).expect("start the mock")
}

/// A config aimed at `mock`, bounded by `requests` (the duration is only a safety net).
fn load(mock: &MockProvider, requests: u64) -> LoadConfig {
    LoadConfig {
        url: format!("{}/chat/completions", mock.base_url()),
        connections: 2,
        requests: Some(requests),
        duration: Some(Duration::from_secs(20)),
        timeout: Duration::from_secs(5),
        ..LoadConfig::default()
    }
}

fn run_ok(config: &LoadConfig) -> Report {
    run(config).expect("the load run")
}

#[test]
fn closed_loop_counts_every_request() {
    let mock = start(MockConfig::default());
    let report = run_ok(&LoadConfig { connections: 4, ..load(&mock, 200) });
    assert_eq!((report.requests, report.ok, report.errors.total), (200, 200, 0), "{}", report.table());
    assert_eq!(report.latency_ms.count, 200);
    assert!(report.throughput_rps > 0.0 && report.latency_ms.p50 > 0.0);
    assert!(report.ttfe_ms.is_none() && report.events == 0);
    assert_eq!(report.config.body_bytes, 1024);
    // Keep-alive: one connection per client connection, not per request.
    assert_eq!(mock.connections_accepted(), 4);
}

#[test]
fn threads_share_the_connections_and_the_count() {
    let mock = start(MockConfig::default());
    let report = run_ok(&LoadConfig { threads: 2, connections: 3, ..load(&mock, 51) });
    assert_eq!((report.ok, report.errors.total), (51, 0));
    assert_eq!(mock.connections_accepted(), 3);
}

#[test]
fn streams_count_events_and_time_the_first_one() {
    let delay = Duration::from_millis(20);
    let mock = start(MockConfig { events: 5, first_event_delay: delay, ..MockConfig::default() });
    let report = run_ok(&LoadConfig { stream: true, ..load(&mock, 6) });
    assert_eq!((report.ok, report.errors.total), (6, 0), "{}", report.table());
    assert_eq!(report.events, 6 * stream_events(5));
    let ttfe = report.ttfe_ms.expect("stream summaries");
    assert_eq!(ttfe.count, 6);
    assert!(ttfe.p50 >= 20.0 && report.latency_ms.p50 >= 20.0, "{}", report.table());
    let gap = report.gap_ms.expect("gap summary");
    assert_eq!(gap.count, 6 * (stream_events(5) - 1));
    assert_eq!(report.stream_ms.map(|s| s.count), Some(6));
}

#[test]
fn open_loop_latency_includes_the_server_delay() {
    let mock = start(MockConfig { first_event_delay: Duration::from_millis(30), ..MockConfig::default() });
    let report = run_ok(&LoadConfig { pace: Pace::Open { rate: 50.0 }, ..load(&mock, 5) });
    assert_eq!((report.ok, report.unsent), (5, 0));
    assert!(report.latency_ms.p50 >= 30.0, "{}", report.table());
}

#[test]
fn open_loop_counts_the_wait_for_a_busy_connection() {
    // One connection, a request due every 10 ms, each taking 30 ms: request 4 (due at 40 ms)
    // cannot start before 120 ms, so its latency from the scheduled start is at least 110 ms.
    let mock = start(MockConfig { first_event_delay: Duration::from_millis(30), ..MockConfig::default() });
    let config = LoadConfig { pace: Pace::Open { rate: 100.0 }, connections: 1, ..load(&mock, 5) };
    let report = run_ok(&config);
    assert_eq!(report.ok, 5);
    assert!(report.latency_ms.max >= 110.0, "{}", report.table());
}

#[test]
fn server_errors_are_counted_by_status() {
    let fault = Fault::Status { code: 500, retry_after_s: None, body: None };
    let mock = start(MockConfig { fault, ..MockConfig::default() });
    let report = run_ok(&load(&mock, 10));
    assert_eq!((report.ok, report.errors.total, report.errors.status_5xx), (0, 10, 10));
    assert_eq!(report.status_codes.get("500"), Some(&10));
    // Errors are not latencies.
    assert_eq!(report.latency_ms.count, 0);
    assert!(report.table().contains("status_5xx 10 (status 500: 10)"), "{}", report.table());
}

#[test]
fn stream_without_done_is_incomplete() {
    let mock = start(MockConfig { fault: Fault::MissingFinalEvent, ..MockConfig::default() });
    let report = run_ok(&LoadConfig { stream: true, ..load(&mock, 4) });
    assert_eq!((report.ok, report.errors.stream_incomplete), (0, 4), "{}", report.table());
}

#[test]
fn stalled_streams_time_out() {
    let mock = start(MockConfig { fault: Fault::StallAfterEvents(1), ..MockConfig::default() });
    let config = LoadConfig { stream: true, timeout: Duration::from_millis(200), ..load(&mock, 2) };
    let report = run_ok(&config);
    assert_eq!((report.ok, report.errors.timeout), (0, 2), "{}", report.table());
}

#[test]
fn refused_connections_are_connect_errors() {
    let config = LoadConfig {
        url: format!("http://{}/v1/chat/completions", refused_addr()),
        connections: 1,
        requests: Some(3),
        ..LoadConfig::default()
    };
    let report = run_ok(&config);
    assert_eq!((report.requests, report.errors.connect), (3, 3));
}

#[test]
fn plain_gets() {
    let mock = start(MockConfig::default());
    let config = LoadConfig { url: format!("{}/models", mock.base_url()), method: Method::Get, ..load(&mock, 20) };
    let report = run_ok(&config);
    assert_eq!((report.ok, report.config.body_bytes), (20, 0), "{}", report.table());
}

#[test]
fn warmup_requests_are_not_reported() {
    let mock = start(MockConfig { first_event_delay: Duration::from_millis(5), ..MockConfig::default() });
    let config = LoadConfig { warmup: Duration::from_millis(30), connections: 1, ..load(&mock, 3) };
    let report = run_ok(&config);
    assert_eq!(report.ok, 3);
    // The first request, sent at t0, fell in the warmup: it reached the mock but not the report.
    assert!(mock.requests().len() > 3, "{}", mock.requests().len());
}
