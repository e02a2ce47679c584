//! The response cache's Redis tier against a real redis-server: two gateways (as two instances)
//! share one Redis, so an answer one stored is served by the other without a provider call; with
//! Redis stopped requests still succeed through the provider; once it is back, hits resume. Skips
//! when redis-server is not installed (`.ci/run` installs it).

mod common;
mod governance_support;

use std::time::Duration;

use common::{Client, Response, config_text, start_gateway};
use governance_support::{Redis, eventually, redis_server_binary};
use loadtest::{MockConfig, MockProvider};
use serde_json::json;

const MODEL: &str = "acme/chat-small";

fn shared_config(base_url: &str, redis: &Redis) -> String {
    let cache =
        format!("cache = true\n\n[cache]\nenabled = true\nredis_url = \"{}\"\nredis_timeout_ms = 500\n", redis.url());
    config_text(base_url, "", &cache)
}

fn ask(gateway: &corelay::Gateway, question: &str, stream: bool) -> Response {
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": question}], "temperature": 0, "stream": stream});
    let response =
        Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &serde_json::to_vec(&body).unwrap());
    assert_eq!(response.status, 200, "{}", response.text());
    response
}

fn cache_result(response: &Response) -> &str {
    response.header("x-corelay-cache").unwrap_or("none")
}

/// Entries the cache holds in Redis.
fn stored_in(redis: &Redis) -> usize {
    redis.connect().call(&["KEYS", "corelay-cache:*"]).map_or(0, |reply| reply.items().len())
}

#[test]
fn two_instances_share_answers_through_redis_and_survive_its_outage() {
    let Some(binary) = redis_server_binary() else { return };
    let mut redis = Redis::start(binary);
    let provider = MockProvider::start(MockConfig::default()).expect("mock starts");
    let text = shared_config(&provider.base_url(), &redis);
    let (a, b) = (start_gateway(&text), start_gateway(&text));

    for (question, stream) in [("shared buffered", false), ("shared stream", true)] {
        let calls = provider.requests().len();
        let stored = stored_in(&redis);
        let first = ask(&a, question, stream);
        assert_eq!(cache_result(&first), "miss");
        // The write to Redis is queued after the answer: wait until it landed.
        assert!(eventually(Duration::from_secs(5), || stored_in(&redis) > stored), "stored in Redis");
        let other = ask(&b, question, stream);
        assert_eq!(cache_result(&other), "hit", "{question}: served by the other instance");
        assert_eq!(other.text(), first.text(), "{question}: the same bytes");
        assert_eq!(provider.requests().len(), calls + 1, "{question}: one provider call in all");
    }

    redis.kill();
    for n in 0..3 {
        let question = format!("during the outage {n}");
        assert_eq!(cache_result(&ask(&a, &question, false)), "miss");
        assert_eq!(cache_result(&ask(&b, &question, true)), "miss");
    }
    // Each instance still serves what it keeps in memory.
    assert_eq!(cache_result(&ask(&a, "during the outage 0", false)), "hit");

    redis.restart();
    let mut n = 0;
    let resumed = eventually(Duration::from_secs(10), || {
        n += 1;
        let question = format!("after the outage {n}");
        let stored = stored_in(&redis);
        ask(&a, &question, false);
        eventually(Duration::from_secs(1), || stored_in(&redis) > stored)
            && cache_result(&ask(&b, &question, false)) == "hit"
    });
    assert!(resumed, "hits through Redis resume once it is back");
}

#[test]
fn a_redis_that_is_never_there_costs_a_miss_not_an_error() {
    let provider = MockProvider::start(MockConfig::default()).expect("mock starts");
    let refused = common::RefusingPort::new();
    let cache = format!("cache = true\n\n[cache]\nenabled = true\nredis_url = \"redis://{}\"\n", refused.addr());
    let gateway = start_gateway(&config_text(&provider.base_url(), "", &cache));
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "q"}], "temperature": 0});
    let body = serde_json::to_vec(&body).unwrap();
    let mut client = Client::connect(gateway.local_addr());
    assert_eq!(client.post("/v1/chat/completions", &[], &body).header("x-corelay-cache"), Some("miss"));
    assert_eq!(client.post("/v1/chat/completions", &[], &body).header("x-corelay-cache"), Some("hit"));
    assert_eq!(provider.requests().len(), 1);
}

#[test]
fn a_redis_that_does_not_answer_costs_at_most_its_timeout() {
    let provider = MockProvider::start(MockConfig::default()).expect("mock starts");
    let silent = common::SilentPort::new();
    let cache = format!(
        "cache = true\n\n[cache]\nenabled = true\nredis_url = \"redis://{}\"\nredis_timeout_ms = 100\n",
        silent.addr()
    );
    let gateway = start_gateway(&config_text(&provider.base_url(), "", &cache));
    let started = std::time::Instant::now();
    assert_eq!(cache_result(&ask(&gateway, "slow redis", false)), "miss");
    assert!(started.elapsed() < Duration::from_secs(2), "the lookup gave up on Redis: {:?}", started.elapsed());
    assert_eq!(cache_result(&ask(&gateway, "slow redis", false)), "hit", "memory still serves");
    assert_eq!(provider.requests().len(), 1);
}
