//! Global provider health through Redis: two gateways (two instances) share one real redis-server;
//! an endpoint that fails on instance A is avoided by instance B well within a second, without B ever
//! sending it a request, and B's workers route around it as soon as B reads it from Redis (not at
//! their next tick: B's tick here is 5 s). Skips without redis-server (`.ci/run` installs it).

mod common;
mod governance_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Client, chat_body, start_gateway};
use governance_support::{Redis, redis_server_binary};
use loadtest::{Fault, MockConfig, MockProvider};

const MODEL: &str = "acme/chat";

/// `bad` first, `good` second for `acme/chat`; one failure ejects; `tick_ms` as given.
fn config(redis: &Redis, bad: &MockProvider, good: &MockProvider, tick_ms: u64) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\n[health]\neject_consecutive_failures = 1\ntick_ms = {tick_ms}\n\
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
    // A runs the default tick; B's 5 s tick would show if its workers waited for it.
    let (a, b) = (start_gateway(&config(&redis, &bad, &good, 250)), start_gateway(&config(&redis, &bad, &good, 5_000)));
    assert_eq!(state_of(b.local_addr(), "bad"), "healthy");

    let on_a = Client::connect(a.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, false));
    let failed_at = Instant::now();
    assert_eq!(on_a.status, 200, "{}", on_a.text());
    assert_eq!(on_a.header("x-corelay-provider"), Some("good"), "A tried bad first and failed over");
    assert_eq!(bad.requests().len(), 1);

    // Bounded polls (every 5 ms, 3 s at most): first until A's announcement is in Redis, then until
    // B's workers route around it.
    let announced_at =
        poll_until(failed_at, || redis.connect().call(&["GET", HEALTH_KEY]).unwrap().as_text().is_some())
            .expect("A never announced its failing provider");
    let avoided_at =
        poll_until(failed_at, || state_of(b.local_addr(), "bad") != "healthy").expect("B never learned of it");
    let (seen, on_b) = (avoided_at - failed_at, avoided_at - announced_at);
    eprintln!("B avoided the provider {seen:?} after A saw it fail, {on_b:?} after A announced it");
    // A's worker reports within its tick (250 ms) and A announces at once; 50 ms to write, 50 to
    // read: about 350 ms at worst, bounded here with room for a loaded CI machine (the claim is 1 s).
    assert!(seen < Duration::from_millis(750), "B avoided it only after {seen:?}");
    // B reads Redis every 50 ms and its workers take the news at their next request; a tick (5 s)
    // would be far over. The bound leaves room for a loaded CI machine.
    assert!(on_b < Duration::from_millis(500), "B's workers took {on_b:?} after the announcement");

    let answer = Client::connect(b.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, false));
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("x-corelay-provider"), Some("good"));
    assert_eq!(answer.header("x-corelay-attempts"), Some("1"), "B went straight to the healthy provider");
    assert_eq!(bad.requests().len(), 1, "the failing provider saw nothing from B");
    let announced = redis.connect().call(&["GET", HEALTH_KEY]).unwrap().as_text();
    assert!(announced.is_some_and(|v| v.contains(' ')), "A's ejection is a key in Redis");
}

/// The Redis key A announces `bad` under.
const HEALTH_KEY: &str = "corelay:health:bad:m-bad";

/// When `condition` first held, polling every 5 ms for at most 3 s from `since`.
fn poll_until(since: Instant, mut condition: impl FnMut() -> bool) -> Option<Instant> {
    while since.elapsed() < Duration::from_secs(3) {
        if condition() {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}
