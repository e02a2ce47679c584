//! Three Corelay gateways (each its own listener, workers and governance thread, as three instances
//! would be) sharing one real redis-server, driven end to end over HTTP: budgets, RPM and TPM hold
//! exactly across them under concurrent requests, spend in Redis is the sum of what each answer
//! cost to the micro-dollar, and Redis going away and coming back loses and double-counts nothing.
//! Skips without redis-server (`.ci/run` installs it).

mod common;
mod governance_support;

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{Client, Response, config_text, start_gateway};
use corelay::Gateway;
use governance_support::{Redis, eventually, redis_server_binary};
use loadtest::{MockConfig, MockProvider};

/// Priced at $0 input and $10 output per million tokens. The mock's replies carry 16 completion
/// tokens (64 bytes of text), and 16 tokens are reserved per request, so a request's reservation
/// and its real cost are both 160 micro-dollars.
const PRICED: &str = "acme/priced";
const COST: u64 = 160;
/// Priced at $3 input and $15 output per million tokens: cost depends on each prompt.
const DEAR: &str = "acme/dear";

fn secret(name: &str) -> String {
    format!("sk-{name}-0123456789")
}

fn config(provider: &MockProvider, redis: &Redis, keys: &[(&str, &str)]) -> String {
    let mut extra = format!(
        "[models.\"{PRICED}\"]\nendpoints = [{{ provider = \"mock\", model = \"gpt-4o-mini\" }}]\nprice = {{ input = \
         0.0, output = 10.0 }}\n[models.\"{DEAR}\"]\nendpoints = [{{ provider = \"mock\", model = \"gpt-4o\" }}]\nprice \
         = {{ input = 3.0, output = 15.0 }}\n[governance]\nredis_url = \"{}\"\nredis_timeout_ms = 500\nlocal_share = \
         0.5\ndefault_estimated_tokens = 16\n",
        redis.url()
    );
    for (name, limits) in keys {
        extra.push_str(&format!("[[keys]]\nname = \"{name}\"\nkey = \"{}\"\n{limits}\n", secret(name)));
    }
    config_text(&provider.base_url(), "", &extra)
}

fn three(provider: &MockProvider, redis: &Redis, keys: &[(&str, &str)]) -> Vec<Gateway> {
    let text = config(provider, redis, keys);
    (0..3).map(|_| start_gateway(&text)).collect()
}

fn body(model: &str, prompt: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "model": model, "messages": [{ "role": "user", "content": prompt }] }))
        .unwrap()
}

/// `count` requests of `key`, all sent together (each on its own connection and thread), spread over
/// the gateways in turn; request `i` asks `bodies(i)`.
fn burst(gateways: &[Gateway], key: &str, count: usize, bodies: impl Fn(usize) -> Vec<u8> + Sync) -> Vec<Response> {
    let addrs: Vec<SocketAddr> = gateways.iter().map(Gateway::local_addr).collect();
    let bearer = format!("Bearer {}", secret(key));
    let start = Arc::new(Barrier::new(count));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..count)
            .map(|i| {
                let (addr, start, bearer, body) = (addrs[i % addrs.len()], Arc::clone(&start), &bearer, bodies(i));
                s.spawn(move || {
                    let mut client = Client::connect(addr);
                    start.wait();
                    client.post("/v1/chat/completions", &[("authorization", bearer.as_str())], &body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn admitted(responses: &[Response]) -> Vec<&Response> {
    let unexpected: Vec<_> = responses.iter().filter(|r| ![200, 403, 429].contains(&r.status)).collect();
    assert!(unexpected.is_empty(), "{:?}", unexpected.iter().map(|r| (r.status, r.text())).collect::<Vec<_>>());
    responses.iter().filter(|r| r.status == 200).collect()
}

/// What an answer cost at `(input, output)` dollars per million tokens, from its own usage.
fn cost_of(response: &Response, input: u64, output: u64) -> u64 {
    let usage = &response.json()["usage"];
    usage["prompt_tokens"].as_u64().unwrap() * input + usage["completion_tokens"].as_u64().unwrap() * output
}

fn tokens_of(response: &Response) -> u64 {
    let usage = &response.json()["usage"];
    usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
}

fn minute_now() -> u64 {
    corelay::clock::unix_now_ms() / 60_000
}

/// Runs a rate-limit burst until one ran inside a single UTC minute (at most twice: a burst lasts
/// seconds), with a fresh key each time, since a minute's limit is what is checked.
fn within_one_minute<T>(mut run: impl FnMut(usize) -> T) -> T {
    for attempt in 0..2 {
        let before = minute_now();
        let outcome = run(attempt);
        if minute_now() == before {
            return outcome;
        }
    }
    panic!("two bursts in a row crossed a minute boundary");
}

/// Spend Redis holds for a key (reservations in flight included).
fn spent(redis: &Redis, key: &str) -> i64 {
    redis.counter(key, "spent_total")
}

fn metric(gateway: &Gateway, line: &str) -> bool {
    Client::connect(gateway.local_addr()).get("/metrics", &[]).text().lines().any(|l| l == line)
}

fn metric_value(gateway: &Gateway, name: &str) -> u64 {
    let text = Client::connect(gateway.local_addr()).get("/metrics", &[]).text();
    let line = text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')).map(str::to_string));
    line.and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} not in /metrics"))
}

fn stop(gateways: Vec<Gateway>) {
    for gateway in gateways {
        gateway.shutdown(Duration::from_secs(5));
    }
}

#[test]
fn a_budget_for_two_requests_admits_exactly_two_of_a_hundred_across_three_gateways() {
    let Some(binary) = redis_server_binary() else { return };
    let redis = Redis::start(binary);
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let budget = format!("budget_micros_total = {}", 2 * COST);
    let gateways = three(&provider, &redis, &[("two", &budget)]);

    let responses = burst(&gateways, "two", 100, |i| body(PRICED, &format!("request {i}")));

    let admitted = admitted(&responses);
    assert_eq!(admitted.len(), 2, "exactly two of a hundred");
    assert_eq!(provider.requests().len(), 2, "the 98 refused never reached the provider");
    for refused in responses.iter().filter(|r| r.status != 200) {
        assert_eq!(refused.status, 403, "{}", refused.text());
        assert!(refused.text().contains("budget"), "{}", refused.text());
    }
    let costs: u64 = admitted.iter().map(|r| cost_of(r, 0, 10)).sum();
    assert_eq!(costs, 2 * COST);
    stop(gateways);
    assert_eq!(spent(&redis, "two"), costs as i64, "spend in Redis is what the answers cost");
}

#[test]
fn sixty_rpm_admits_sixty_of_ninety_across_three_gateways() {
    let Some(binary) = redis_server_binary() else { return };
    let redis = Redis::start(binary);
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let gateways = three(&provider, &redis, &[("rpm-0", "rpm = 60"), ("rpm-1", "rpm = 60")]);

    let responses = within_one_minute(|attempt| {
        burst(&gateways, &format!("rpm-{attempt}"), 90, |i| body(PRICED, &format!("request {i}")))
    });

    assert_eq!(admitted(&responses).len(), 60, "all ninety came within one minute: sixty admitted");
    for refused in responses.iter().filter(|r| r.status != 200) {
        assert_eq!(refused.status, 429);
        let wait: u64 = refused.header("retry-after").expect("Retry-After").parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
    }
    stop(gateways);
}

#[test]
fn a_tpm_limit_holds_within_one_reservation_across_three_gateways() {
    let Some(binary) = redis_server_binary() else { return };
    let redis = Redis::start(binary);
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    const TPM: u64 = 400;
    let limits = format!("tpm = {TPM}");
    let gateways = three(&provider, &redis, &[("tpm-0", &limits), ("tpm-1", &limits)]);
    let prompt = "x".repeat(200);
    // The reservation: the body's bytes / 4 (prompt) + 16 (reply).
    let reservation = (body(PRICED, &prompt).len() as u64).div_ceil(4) + 16;

    let (key, responses) = within_one_minute(|attempt| {
        let key = format!("tpm-{attempt}");
        let responses = burst(&gateways, &key, 60, |_| body(PRICED, &prompt));
        (key, responses)
    });

    let admitted = admitted(&responses);
    let used: u64 = admitted.iter().map(|r| tokens_of(r)).sum();
    assert!(!admitted.is_empty() && admitted.len() < 60, "{} admitted", admitted.len());
    assert!(used <= TPM + reservation, "{used} tokens used against a limit of {TPM}");
    assert!(responses.iter().filter(|r| r.status != 200).all(|r| r.status == 429));
    stop(gateways);
    // Every admission came within one minute, the one Redis still holds: settled there.
    let counted = redis.counter(&key, "tpm");
    assert_eq!(counted, used as i64, "Redis counted the tokens the answers used, reservations settled");
}

#[test]
fn spend_recorded_in_redis_is_the_sum_of_each_answers_cost() {
    let Some(binary) = redis_server_binary() else { return };
    let redis = Redis::start(binary);
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let gateways = three(&provider, &redis, &[("spend", "budget_micros_total = 1000000000")]);

    // Prompts of different lengths, so each answer costs something else.
    let responses = burst(&gateways, "spend", 30, |i| body(DEAR, &"word ".repeat(1 + i * 7)));

    let admitted = admitted(&responses);
    assert_eq!(admitted.len(), 30);
    let costs: u64 = admitted.iter().map(|r| cost_of(r, 3, 15)).sum();
    assert!(eventually(Duration::from_secs(5), || spent(&redis, "spend") == costs as i64));
    stop(gateways);
    assert_eq!(spent(&redis, "spend"), costs as i64, "to the micro-dollar, once each");
}

#[test]
fn redis_killed_mid_run_requests_flow_locally_and_its_return_resumes_shared_enforcement() {
    let Some(binary) = redis_server_binary() else { return };
    let mut redis = Redis::start(binary);
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let budget = format!("budget_micros_total = {}", 40 * COST);
    let gateways = three(&provider, &redis, &[("flow", &budget)]);
    let priced = |i: usize| body(PRICED, &format!("request {i}"));

    // Shared.
    assert_eq!(admitted(&burst(&gateways, "flow", 6, priced)).len(), 6);
    assert!(eventually(Duration::from_secs(5), || spent(&redis, "flow") == 6 * COST as i64));

    // Redis gone: every request still served, under each gateway's local share.
    redis.kill();
    assert_eq!(admitted(&burst(&gateways, "flow", 6, priced)).len(), 6, "requests keep flowing");
    // `/metrics` is rendered every tick: polled (bounded) until it shows the outage.
    let says = |line: &str| gateways.iter().all(|g| metric(g, line));
    assert!(eventually(Duration::from_secs(5), || says("corelay_governance_redis_up 0")), "the outage is shown");
    assert!(says("corelay_governance_redis_outages_total 1"));
    let local = || gateways.iter().map(|g| metric_value(g, "corelay_governance_local_admissions_total")).sum::<u64>();
    assert!(eventually(Duration::from_secs(5), || local() == 6), "the six were admitted locally: {}", local());

    // Back: what was settled locally reaches Redis once, and Redis decides again.
    redis.restart();
    assert!(
        eventually(Duration::from_secs(10), || says("corelay_governance_redis_up 1")),
        "every gateway reconnects by itself"
    );
    assert!(
        eventually(Duration::from_secs(10), || spent(&redis, "flow") == 12 * COST as i64),
        "spend after the switch: {} (want {})",
        spent(&redis, "flow"),
        12 * COST
    );
    // 28 requests' worth is left. Local shares (half of what each gateway last saw left) would
    // admit about 57 of these; shared enforcement admits exactly 28.
    let responses = burst(&gateways, "flow", 60, priced);
    assert_eq!(admitted(&responses).len(), 28, "shared enforcement resumed");
    stop(gateways);
    assert_eq!(spent(&redis, "flow"), 40 * COST as i64, "nothing lost or counted twice across the switch");
    assert_eq!(provider.requests().len(), 40);
}
