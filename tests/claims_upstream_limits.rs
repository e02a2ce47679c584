//! The upstream and routing limits the README documents, end to end against mock providers whose
//! request logs count every attempt: `pool.connect_timeout_ms` (504, or failover, against a port
//! that does not answer SYNs), `routing.max_attempts`, `routing.deadline_ms`,
//! `routing.first_event_timeout_ms` and `pool.max_response_bytes`. Not here: `first_byte_timeout_ms`
//! (proxy_openai.rs), the retry budget and cooldowns (failover.rs).

mod common;

use std::time::{Duration, Instant};

use common::{Client, RefusingPort, Response, SilentPort, chat_body, start_gateway};
use loadtest::{Fault, MockConfig, MockProvider};

const MODEL: &str = "acme/chat";
/// "Promptly after the limit": generous for a loaded machine, yet below what each test would take
/// if its limit were not enforced (a 5 s provider delay, SYN retransmissions of 1 s and more).
const SLACK: Duration = Duration::from_millis(2500);

fn mock(config: MockConfig) -> MockProvider {
    MockProvider::start(config).expect("mock starts")
}

fn failing(code: u16) -> MockConfig {
    MockConfig { fault: Fault::Status { code, retry_after_s: None, body: None }, ..MockConfig::default() }
}

/// One `openai` provider per (name, base URL), all serving `acme/chat` in this order; `sections`
/// are appended (e.g. `[routing]`).
fn config(providers: &[(&str, String)], sections: &str) -> String {
    let mut text = "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\n".to_string();
    for (name, url) in providers {
        text.push_str(&format!("[providers.{name}]\nkind = \"openai\"\nbase_url = \"{url}\"\n"));
    }
    let endpoints: Vec<String> =
        providers.iter().map(|(name, _)| format!("{{ provider = \"{name}\", model = \"m-{name}\" }}")).collect();
    text.push_str(&format!("[models.\"{MODEL}\"]\nendpoints = [{}]\n{sections}\n", endpoints.join(", ")));
    text
}

fn chat(gateway: &corelay::runtime::Gateway, stream: bool) -> (Response, Duration) {
    let started = Instant::now();
    let response = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, stream));
    (response, started.elapsed())
}

fn attempts(response: &Response) -> &str {
    response.header("x-corelay-attempts").unwrap_or("-")
}

#[test]
fn a_provider_that_never_answers_the_syn_is_a_504_after_connect_timeout() {
    let silent = SilentPort::new();
    let providers = [("silent", format!("http://{}/v1", silent.addr()))];
    let gateway = start_gateway(&config(&providers, "[pool]\nconnect_timeout_ms = 60\n"));

    let (response, elapsed) = chat(&gateway, false);

    assert_eq!(response.status, 504, "{}", response.text());
    assert_eq!(response.json()["error"]["code"], "upstream_timeout");
    assert!(elapsed >= Duration::from_millis(60), "gave up after {elapsed:?}, before the connect timeout");
    // Without the timeout the connect would wait for SYN retransmissions (1 s, 3 s, ...).
    assert!(elapsed < Duration::from_millis(60) + SLACK, "gave up only after {elapsed:?}");
}

#[test]
fn a_connect_timeout_fails_over_to_the_next_provider() {
    let silent = SilentPort::new();
    let healthy = mock(MockConfig::default());
    let providers = [("silent", format!("http://{}/v1", silent.addr())), ("healthy", healthy.base_url())];
    let gateway = start_gateway(&config(&providers, "[pool]\nconnect_timeout_ms = 60\n"));

    let (response, elapsed) = chat(&gateway, true);

    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-corelay-provider"), Some("healthy"));
    assert_eq!(attempts(&response), "2");
    assert!(elapsed >= Duration::from_millis(60) && elapsed < Duration::from_millis(60) + SLACK, "{elapsed:?}");
    assert_eq!(healthy.requests().len(), 1);
}

#[test]
fn no_more_than_max_attempts_providers_are_tried() {
    let down: Vec<MockProvider> = (0..4).map(|_| mock(failing(503))).collect();
    let names = ["a", "b", "c", "d"];
    let providers: Vec<(&str, String)> = names.iter().zip(&down).map(|(n, m)| (*n, m.base_url())).collect();
    let gateway = start_gateway(&config(&providers, "[routing]\nmax_attempts = 2\n"));

    let (response, _) = chat(&gateway, false);

    assert_eq!(response.status, 503, "the last failure is the answer: {}", response.text());
    assert_eq!(attempts(&response), "2");
    let counts: Vec<usize> = down.iter().map(|m| m.requests().len()).collect();
    assert_eq!(counts, [1, 1, 0, 0], "exactly the first two providers were asked, once each");
}

#[test]
fn a_refused_connection_counts_as_an_attempt_too() {
    let refusing = RefusingPort::new();
    let down = mock(failing(500));
    let never = mock(MockConfig::default());
    let providers = [
        ("refusing", format!("http://{}/v1", refusing.addr())),
        ("down", down.base_url()),
        ("never", never.base_url()),
    ];
    let gateway = start_gateway(&config(&providers, "[routing]\nmax_attempts = 2\n"));

    let (response, _) = chat(&gateway, true);

    assert_eq!(response.status, 500, "{}", response.text());
    assert_eq!(attempts(&response), "2");
    assert_eq!((down.requests().len(), never.requests().len()), (1, 0));
}

#[test]
fn all_attempts_stop_at_deadline_ms() {
    // The first provider answers only after 5 s; the deadline (200 ms) cuts its attempt short and
    // leaves no time for the second, which must never be asked.
    let slow = mock(MockConfig { first_event_delay: Duration::from_secs(5), ..MockConfig::default() });
    let spare = mock(MockConfig::default());
    let providers = [("slow", slow.base_url()), ("spare", spare.base_url())];
    let sections = "[routing]\ndeadline_ms = 200\n[pool]\nfirst_byte_timeout_ms = 60000\n";
    let gateway = start_gateway(&config(&providers, sections));

    let (response, elapsed) = chat(&gateway, false);

    assert_eq!(response.status, 504, "{}", response.text());
    assert!(elapsed >= Duration::from_millis(200), "answered after {elapsed:?}, before the deadline");
    assert!(elapsed < Duration::from_millis(200) + SLACK, "answered after {elapsed:?}, long past the deadline");
    assert_eq!(slow.requests().len(), 1);
    assert_eq!(spare.requests().len(), 0, "no attempt starts after the deadline");
}

#[test]
fn a_stream_silent_past_first_event_timeout_fails_over() {
    // The head comes at once, the first event only after 5 s: held for 100 ms, then abandoned.
    let silent_stream = mock(MockConfig { first_event_delay: Duration::from_secs(5), ..MockConfig::default() });
    let healthy = mock(MockConfig::default());
    let providers = [("sluggish", silent_stream.base_url()), ("healthy", healthy.base_url())];
    let gateway = start_gateway(&config(&providers, "[routing]\nfirst_event_timeout_ms = 100\n"));

    let (response, elapsed) = chat(&gateway, true);

    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-corelay-provider"), Some("healthy"));
    assert_eq!(attempts(&response), "2");
    let (events, done) = response.sse_data();
    assert!(done && !events.is_empty(), "the healthy provider's whole stream: {}", response.text());
    assert!(elapsed >= Duration::from_millis(100), "failed over after {elapsed:?}, before the timeout");
    assert!(elapsed < Duration::from_millis(100) + SLACK, "failed over only after {elapsed:?}");
    assert_eq!(silent_stream.requests().len(), 1);
}

#[test]
fn a_non_streaming_answer_over_max_response_bytes_is_a_502_and_streams_are_not_limited() {
    let big = mock(MockConfig { content_bytes: 8192, ..MockConfig::default() });
    let providers = [("big", big.base_url())];
    let gateway = start_gateway(&config(&providers, "[pool]\nmax_response_bytes = 4096\n"));

    let (response, _) = chat(&gateway, false);
    assert_eq!(response.status, 502, "{}", response.text());
    assert!(response.text().contains("exceeds the gateway's limit"), "{}", response.text());

    let (stream, _) = chat(&gateway, true);
    assert_eq!(stream.status, 200, "a stream is relayed, never buffered whole");
    let (events, done) = stream.sse_data();
    let text: String = events.iter().filter_map(|e| e["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(done && text.len() == 8192, "the whole 8 KiB stream arrived ({} bytes)", text.len());

    big.set_config(MockConfig { content_bytes: 1024, ..MockConfig::default() });
    let (small, _) = chat(&gateway, false);
    assert_eq!(small.status, 200, "under the limit it is served: {}", small.text());
}

#[test]
fn a_retry_on_the_same_provider_waits_a_jittered_backoff_capped_at_backoff_max_ms() {
    // Two models of one provider, both failing: the second attempt goes to the same provider, so it
    // waits a uniform [0, min(backoff_max_ms, backoff_base_ms * 2)] = [0, 80 ms] first. (The bound is
    // checked with the suite's CI slack, so it shows the pause is bounded, not that the cap is exact.)
    let down = mock(failing(503));
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\n\
         [routing]\nbackoff_base_ms = 40\nbackoff_max_ms = 80\nretry_budget_min_per_sec = 1000.0\n\
         [providers.only]\nkind = \"openai\"\nbase_url = \"{}\"\n\
         [models.\"{MODEL}\"]\nendpoints = [{{ provider = \"only\", model = \"m-1\" }}, {{ provider = \"only\", model = \"m-2\" }}]\n",
        down.base_url()
    );
    let gateway = start_gateway(&text);

    let mut pauses = Vec::new();
    for _ in 0..12 {
        let (response, elapsed) = chat(&gateway, false);
        assert_eq!((response.status, attempts(&response)), (503, "2"), "{}", response.text());
        pauses.push(elapsed);
    }

    assert_eq!(down.requests().len(), 24);
    let longest = pauses.iter().max().unwrap();
    assert!(*longest < Duration::from_millis(80) + SLACK, "a pause beyond backoff_max_ms: {pauses:?}");
    // With a uniform draw over [0, 80 ms], twelve pauses all under 10 ms would happen once in 10^11.
    assert!(pauses.iter().any(|p| *p >= Duration::from_millis(10)), "no backoff at all: {pauses:?}");
}
