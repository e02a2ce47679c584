//! Health and cooldowns as the README states them, end to end: a `Retry-After` pause observed on
//! every core (each answer's `x-request-id` names the core that served it), a Gemini `RetryInfo`
//! delay that lasts as long as it says, and error-rate ejection followed by a successful probe that
//! restores the endpoint. Consecutive-failure ejection and the retry budget are failover.rs's.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Client, Response, chat_body, start_gateway};
use corelay::health::{EndpointState, HealthTable};
use loadtest::{Fault, MockConfig, MockProvider, Reply};

const MODEL: &str = "acme/chat";
const WAIT: Duration = Duration::from_secs(10);
/// How late a paused provider may come back: a health tick or two plus a loaded CI machine (the
/// test machine runs at a load of 4 per core at times).
const SLACK: Duration = Duration::from_millis(1000);

fn mock(config: MockConfig) -> MockProvider {
    MockProvider::start(config).expect("mock starts")
}

fn status_fault(code: u16, retry_after_s: Option<u32>, body: Option<Vec<u8>>) -> MockConfig {
    MockConfig { fault: Fault::Status { code, retry_after_s, body }, ..MockConfig::default() }
}

/// `[kind, base_url]` providers named `primary` and `secondary` serving `acme/chat` in that order.
fn config(primary: (&str, &str), secondary_url: &str, cores: usize, sections: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = {cores}\n{sections}\n\
         [providers.primary]\nkind = \"{}\"\nbase_url = \"{}\"\n\
         [providers.secondary]\nkind = \"openai\"\nbase_url = \"{secondary_url}\"\n\
         [models.\"{MODEL}\"]\nendpoints = [{{ provider = \"primary\", model = \"gemini-2.5-flash\" }}, \
         {{ provider = \"secondary\", model = \"gpt-4o\" }}]\n",
        primary.0, primary.1
    )
}

/// A request on a new connection (so the kernel may pick either core).
fn chat_fresh(gateway: &corelay::runtime::Gateway) -> Response {
    let response = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, false));
    assert_eq!(response.status, 200, "{}", response.text());
    response
}

fn provider(response: &Response) -> String {
    response.header("x-corelay-provider").unwrap_or("-").to_string()
}

/// The worker that served a response: the first field of the gateway-made `x-request-id`.
fn core(response: &Response) -> String {
    response.header("x-request-id").and_then(|id| id.split('-').next()).unwrap_or("?").to_string()
}

#[test]
fn a_retry_after_pause_seen_on_one_core_holds_on_every_core_for_its_length() {
    let primary = mock(status_fault(429, Some(2), None));
    let secondary = mock(MockConfig::default());
    let gateway =
        start_gateway(&config(("openai", &primary.base_url()), &secondary.base_url(), 2, "[health]\ntick_ms = 20\n"));
    let primary_id = gateway.endpoint_id("primary", "gemini-2.5-flash").unwrap();

    // Taken before the request: the pause starts when the gateway reads the 429, a little later.
    let limited_at = Instant::now();
    let first = chat_fresh(&gateway);
    assert_eq!(provider(&first), "secondary");
    primary.set_config(MockConfig::default());
    let cooling = |t: &HealthTable| t.get(primary_id).cooldown_until.is_some();
    assert!(gateway.health().wait_until(cooling, WAIT), "the pause is published to every core");

    // Within the pause: new connections on both cores avoid the primary.
    // Only requests sent well inside the pause count (a slow machine may need most of it).
    let mut cores_seen = BTreeSet::new();
    for _ in 0..40 {
        if limited_at.elapsed() > Duration::from_millis(1800) {
            break;
        }
        let response = chat_fresh(&gateway);
        assert_eq!(provider(&response), "secondary", "core {} sent to a paused provider", core(&response));
        cores_seen.insert(core(&response));
    }
    assert_eq!(cores_seen.len(), 2, "requests within the pause reached both cores: {cores_seen:?}");
    assert_eq!(primary.requests().len(), 1, "only the request that got the 429");

    // After it: the primary serves again, on both cores, about 2 s after the 429.
    let mut back_on = BTreeSet::new();
    let deadline = limited_at + Duration::from_secs(2) + SLACK + Duration::from_secs(2);
    for _ in 0..100_000 {
        let response = chat_fresh(&gateway);
        if provider(&response) == "primary" {
            if back_on.is_empty() {
                let back = limited_at.elapsed();
                assert!(back >= Duration::from_secs(2), "back after {back:?}, before Retry-After's 2 s");
                assert!(back < Duration::from_secs(2) + SLACK, "back only after {back:?}");
            }
            back_on.insert(core(&response));
        }
        if back_on.len() == 2 || Instant::now() > deadline {
            break;
        }
        // Pacing the polling client, not synchronising with the gateway.
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(back_on.len(), 2, "both cores send to the primary again");
}

#[test]
fn a_gemini_retry_info_delay_pauses_the_provider_for_that_long() {
    // Google's recorded RESOURCE_EXHAUSTED body, its RetryInfo delay shortened from 34.4 s to 1.5 s.
    let recorded =
        std::fs::read_to_string(corelay::fixture_path!("gemini/errors/gemini-error-429-resource-exhausted.json"))
            .unwrap();
    assert!(recorded.contains("\"retryDelay\": \"34.4s\""), "the recording's delay");
    let body = recorded.replace("\"retryDelay\": \"34.4s\"", "\"retryDelay\": \"1.5s\"");
    let gemini = mock(status_fault(429, None, Some(body.into_bytes())));
    let secondary = mock(MockConfig::default());
    let gemini_url = gemini.base_url();
    let gateway = start_gateway(&config(("gemini", &gemini_url), &secondary.base_url(), 1, "[health]\ntick_ms = 20\n"));

    // Taken before the request: the pause starts when the gateway reads the 429, a little later.
    let limited_at = Instant::now();
    assert_eq!(provider(&chat_fresh(&gateway)), "secondary");
    let mut back = None;
    for _ in 0..100_000 {
        chat_fresh(&gateway);
        if gemini.requests().len() == 2 {
            back = Some(limited_at.elapsed());
            break;
        }
        if limited_at.elapsed() > Duration::from_secs(1) + Duration::from_millis(500) + SLACK {
            break;
        }
        // Pacing the polling client, not synchronising with the gateway.
        std::thread::sleep(Duration::from_millis(5));
    }

    let back = back.expect("Gemini is tried again once its RetryInfo delay has passed");
    assert!(back >= Duration::from_millis(1500), "tried again after {back:?}, within the 1.5 s delay");
    assert!(back < Duration::from_millis(1500) + SLACK, "tried again only after {back:?}");
}

#[test]
fn an_error_rate_over_the_threshold_ejects_and_a_successful_probe_restores() {
    // The streak limit is out of reach (alternating answers), so only the error rate can eject.
    let primary = mock(MockConfig { reply: Reply::Generated, ..MockConfig::default() });
    let secondary = mock(MockConfig::default());
    let health = "[health]\ntick_ms = 20\neject_consecutive_failures = 50\neject_error_rate = 0.5\nmin_requests = 10\n\
                  eject_base_ms = 300\n";
    let gateway = start_gateway(&config(("openai", &primary.base_url()), &secondary.base_url(), 1, health));
    let primary_id = gateway.endpoint_id("primary", "gemini-2.5-flash").unwrap();
    let mut client = Client::connect(gateway.local_addr());
    let only_primary = [("x-corelay-only", "primary")];

    for i in 0..10 {
        let failing = i % 2 == 0;
        primary.set_config(if failing { status_fault(500, None, None) } else { MockConfig::default() });
        let response = client.post("/v1/chat/completions", &only_primary, &chat_body(MODEL, false));
        assert_eq!(response.status, if failing { 500 } else { 200 }, "request {i}");
    }
    let ejected = |t: &HealthTable| matches!(t.get(primary_id).state, EndpointState::Ejected { .. });
    assert!(gateway.health().wait_until(ejected, WAIT), "5 failures in 10 requests reach the 0.5 error rate");
    assert_eq!(gateway.health().latest().get(primary_id).consecutive_failures, 0, "not by a streak");
    primary.set_config(MockConfig::default());
    let before = primary.requests().len();
    assert_eq!(provider(&chat_fresh(&gateway)), "secondary", "an ejected endpoint is skipped");

    let probing = |t: &HealthTable| matches!(t.get(primary_id).state, EndpointState::Probing { .. });
    assert!(gateway.health().wait_until(probing, WAIT), "after eject_base_ms a probe is due");
    assert_eq!(provider(&chat_fresh(&gateway)), "primary", "the probe goes to the primary, which answers");
    let healthy = |t: &HealthTable| t.get(primary_id).state == EndpointState::Healthy;
    assert!(gateway.health().wait_until(healthy, WAIT), "the successful probe restores it");
    for _ in 0..5 {
        assert_eq!(provider(&chat_fresh(&gateway)), "primary", "traffic is back on the first choice");
    }
    assert_eq!(primary.requests().len(), before + 6);
}
