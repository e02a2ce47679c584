//! Global provider health through Redis: two gateways (two instances) share one real redis-server;
//! an endpoint that fails on instance A is avoided by instance B within a second, without B ever
//! sending it a request. Skips without redis-server (`.ci/run` installs it).

mod common;
mod governance_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Client, chat_body, start_gateway};
use governance_support::{Redis, redis_server_binary};
use loadtest::{Fault, MockConfig, MockProvider};

const MODEL: &str = "acme/chat";

/// `bad` first, `good` second for `acme/chat`; one failure ejects (default tick and ejection time).
fn config(redis: &Redis, bad: &MockProvider, good: &MockProvider) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\n[health]\neject_consecutive_failures = 1\n\
         [governance]\nredis_url = \"{}\"\n\
         [providers.bad]\nkind = \"openai\"\nbase_url = \"{}\"\n\
         [providers.good]\nkind = \"openai\"\nbase_url = \"{}\"\n\
         [models.\"{MODEL}\"]\nendpoints = [{{ provider = \"bad\", model = \"m-bad\" }}, {{ provider = \"good\", \
         model = \"m-good\" }}]\n",
        redis.url(),
        bad.base_url(),
        good.base_url()
    )
}

/// The state B's workers route with for `provider`, as `/v1/health` shows it.
fn state_of(addr: SocketAddr, provider: &str) -> String {
    let health = Client::connect(addr).get("/v1/health", &[]).json();
    let endpoints = health["endpoints"].as_array().cloned().unwrap_or_default();
    let endpoint = endpoints.iter().find(|e| e["provider"] == provider).expect("endpoint listed");
    endpoint["state"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_provider_failing_on_instance_a_is_avoided_by_instance_b_within_a_second() {
    let Some(binary) = redis_server_binary() else { return };
    let redis = Redis::start(binary);
    let bad = MockProvider::start(MockConfig {
        fault: Fault::Status { code: 500, retry_after_s: None, body: None },
        ..MockConfig::default()
    })
    .unwrap();
    let good = MockProvider::start(MockConfig::default()).unwrap();
    let text = config(&redis, &bad, &good);
    let (a, b) = (start_gateway(&text), start_gateway(&text));
    assert_eq!(state_of(b.local_addr(), "bad"), "healthy");

    let on_a = Client::connect(a.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, false));
    let failed_at = Instant::now();
    assert_eq!(on_a.status, 200, "{}", on_a.text());
    assert_eq!(on_a.header("x-corelay-provider"), Some("good"), "A tried bad first and failed over");
    assert_eq!(bad.requests().len(), 1);

    // Bounded poll on what B's workers route with (every 10 ms, 3 s at most); the claim is 1 s.
    let mut seen = None;
    while failed_at.elapsed() < Duration::from_secs(3) {
        if state_of(b.local_addr(), "bad") != "healthy" {
            seen = Some(failed_at.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let seen = seen.expect("B never learned of A's failing provider");
    eprintln!("B avoided the provider {seen:?} after A saw it fail");
    assert!(seen < Duration::from_secs(1), "B avoided it only after {seen:?}");

    let on_b = Client::connect(b.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, false));
    assert_eq!(on_b.status, 200, "{}", on_b.text());
    assert_eq!(on_b.header("x-corelay-provider"), Some("good"));
    assert_eq!(on_b.header("x-corelay-attempts"), Some("1"), "B went straight to the healthy provider");
    assert_eq!(bad.requests().len(), 1, "the failing provider saw nothing from B");
    let announced = redis.connect().call(&["GET", "corelay:health:bad:m-bad"]).unwrap().as_text();
    assert!(announced.is_some_and(|v| v.contains(' ')), "A's ejection is a key in Redis");
}
