//! The response cache end to end, one gateway in front of the mock OpenAI provider: a repeated
//! request is served from the cache without reaching the mock, byte for byte, streamed and not, on
//! every front door; two keys never share; `no-store` is never stored; entries expire; answers that
//! did not end cleanly are not stored; the memory bound holds while ten times it is written.
//! Requests reaching the provider are counted at the mock.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Response, config_text, start_gateway};
use loadtest::{Fault, MockConfig, MockProvider};
use serde_json::json;

const MODEL: &str = "acme/chat-small";

/// `cache = true` lands in `[models."acme/chat-small"]`: `config_text` appends right after it.
fn cached_config(base_url: &str, cache_extra: &str, extra: &str) -> String {
    config_text(base_url, "", &format!("cache = true\n\n[cache]\nenabled = true\n{cache_extra}\n{extra}"))
}

fn mock(config: MockConfig) -> MockProvider {
    MockProvider::start(config).expect("mock starts")
}

/// A path, its extra headers and its body.
type DoorRequest = (&'static str, Vec<(&'static str, &'static str)>, Vec<u8>);

/// One request per front door, streamed or not, each with temperature 0.
fn door_requests(stream: bool) -> Vec<DoorRequest> {
    let text = "Say hello";
    let ai_stream = if stream { "true" } else { "false" };
    let ai_headers = vec![("ai-language-model-id", MODEL), ("ai-language-model-streaming", ai_stream)];
    let ai_body = json!({"prompt": [{"role": "user", "content": [{"type": "text", "text": text}]}], "temperature": 0});
    vec![
        (
            "/v1/chat/completions",
            vec![],
            json!({"model": MODEL, "messages": [{"role": "user", "content": text}], "temperature": 0, "stream": stream}),
        ),
        (
            "/v1/messages",
            vec![],
            json!({"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": text}], "temperature": 0, "stream": stream}),
        ),
        ("/v1/responses", vec![], json!({"model": MODEL, "input": text, "temperature": 0, "stream": stream})),
        ("/v4/ai/language-model", ai_headers, ai_body),
    ]
    .into_iter()
    .map(|(path, headers, body)| (path, headers, serde_json::to_vec(&body).unwrap()))
    .collect()
}

fn post(gateway: &corelay::Gateway, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let response = Client::connect(gateway.local_addr()).post(path, headers, body);
    assert_eq!(response.status, 200, "{path}: {}", response.text());
    response
}

fn chat(temperature: f64, content: &str) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"model": MODEL, "messages": [{"role": "user", "content": content}], "temperature": temperature}),
    )
    .unwrap()
}

#[test]
fn the_same_request_twice_is_served_from_the_cache_on_every_front_door() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&cached_config(&provider.base_url(), "", ""));
    for stream in [false, true] {
        for (path, headers, body) in door_requests(stream) {
            let before = provider.requests().len();
            let first = post(&gateway, path, &headers, &body);
            assert_eq!(first.header("x-corelay-cache"), Some("miss"), "{path} stream={stream}");
            assert_eq!(provider.requests().len(), before + 1, "{path}: the miss reached the provider");
            let second = post(&gateway, path, &headers, &body);
            assert_eq!(second.header("x-corelay-cache"), Some("hit"), "{path} stream={stream}");
            assert_eq!(provider.requests().len(), before + 1, "{path} stream={stream}: the hit never reached it");
            assert_eq!(second.text(), first.text(), "{path} stream={stream}: the same bytes");
            assert_eq!(second.header("content-type"), first.header("content-type"), "{path}");
            assert_eq!(second.header("x-corelay-cost-usd-micros"), Some("0"));
            if stream {
                assert!(second.chunks > 1, "{path}: replayed as events, not one blob");
                assert!(first.text().contains("data:"), "{path}: a stream was stored");
            }
        }
    }
}

#[test]
fn a_stream_and_a_buffered_answer_never_serve_each_other() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&cached_config(&provider.base_url(), "", ""));
    let (_, _, buffered) = door_requests(false).remove(0);
    let (_, _, streamed) = door_requests(true).remove(0);
    post(&gateway, "/v1/chat/completions", &[], &buffered);
    let response = post(&gateway, "/v1/chat/completions", &[], &streamed);
    assert_eq!(response.header("x-corelay-cache"), Some("miss"));
    assert_eq!(provider.requests().len(), 2);
}

#[test]
fn two_gateway_keys_never_share_an_entry() {
    let provider = mock(MockConfig::default());
    let keys = "[[keys]]\nname = \"team-a\"\nkey = \"gw-key-a-0123456789\"\n\n[[keys]]\nname = \"team-b\"\nkey = \"gw-key-b-0123456789\"\n";
    let gateway = start_gateway(&cached_config(&provider.base_url(), "", keys));
    let body = chat(0.0, "shared question");
    let as_a = [("authorization", "Bearer gw-key-a-0123456789")];
    let as_b = [("authorization", "Bearer gw-key-b-0123456789")];
    assert_eq!(post(&gateway, "/v1/chat/completions", &as_a, &body).header("x-corelay-cache"), Some("miss"));
    assert_eq!(post(&gateway, "/v1/chat/completions", &as_a, &body).header("x-corelay-cache"), Some("hit"));
    assert_eq!(post(&gateway, "/v1/chat/completions", &as_b, &body).header("x-corelay-cache"), Some("miss"));
    assert_eq!(post(&gateway, "/v1/chat/completions", &as_b, &body).header("x-corelay-cache"), Some("hit"));
    assert_eq!(provider.requests().len(), 2, "one provider call per key");
}

#[test]
fn a_key_opts_in_for_itself_only() {
    let provider = mock(MockConfig::default());
    let keys = "[[keys]]\nname = \"cached\"\nkey = \"gw-key-c-0123456789\"\ncache = true\n\n[[keys]]\nname = \"plain\"\nkey = \"gw-key-p-0123456789\"\n";
    // The model is not opted in here: only the key is.
    let text = config_text(&provider.base_url(), "", &format!("\n[cache]\nenabled = true\n\n{keys}"));
    let gateway = start_gateway(&text);
    let body = chat(0.0, "opt in by key");
    let cached = [("authorization", "Bearer gw-key-c-0123456789")];
    let plain = [("authorization", "Bearer gw-key-p-0123456789")];
    assert_eq!(post(&gateway, "/v1/chat/completions", &plain, &body).header("x-corelay-cache"), Some("bypass"));
    assert_eq!(post(&gateway, "/v1/chat/completions", &cached, &body).header("x-corelay-cache"), Some("miss"));
    assert_eq!(post(&gateway, "/v1/chat/completions", &cached, &body).header("x-corelay-cache"), Some("hit"));
    // A request opts itself in with a TTL.
    let asked = [plain[0], ("cache-control", "max-age=60")];
    assert_eq!(post(&gateway, "/v1/chat/completions", &asked, &body).header("x-corelay-cache"), Some("miss"));
    assert_eq!(post(&gateway, "/v1/chat/completions", &asked, &body).header("x-corelay-cache"), Some("hit"));
    assert_eq!(provider.requests().len(), 3);
}

#[test]
fn no_store_is_never_stored_and_no_cache_revalidates() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&cached_config(&provider.base_url(), "", ""));
    let body = chat(0.0, "private");
    let no_store = [("cache-control", "no-store")];
    for _ in 0..2 {
        assert_eq!(post(&gateway, "/v1/chat/completions", &no_store, &body).header("x-corelay-cache"), Some("bypass"));
    }
    assert_eq!(provider.requests().len(), 2);
    assert_eq!(
        post(&gateway, "/v1/chat/completions", &[], &body).header("x-corelay-cache"),
        Some("miss"),
        "nothing was stored"
    );
    let no_cache = [("cache-control", "no-cache")];
    assert_eq!(post(&gateway, "/v1/chat/completions", &no_cache, &body).header("x-corelay-cache"), Some("miss"));
    assert_eq!(provider.requests().len(), 4, "no-cache went to the provider");
    assert_eq!(post(&gateway, "/v1/chat/completions", &[], &body).header("x-corelay-cache"), Some("hit"));
    assert_eq!(provider.requests().len(), 4);
}

#[test]
fn sampled_requests_bypass_unless_the_operator_allows_them() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&cached_config(&provider.base_url(), "", ""));
    let sampled = chat(0.7, "creative");
    for _ in 0..2 {
        assert_eq!(post(&gateway, "/v1/chat/completions", &[], &sampled).header("x-corelay-cache"), Some("bypass"));
    }
    let no_temperature =
        serde_json::to_vec(&json!({"model": MODEL, "messages": [{"role": "user", "content": "x"}]})).unwrap();
    assert_eq!(post(&gateway, "/v1/chat/completions", &[], &no_temperature).header("x-corelay-cache"), Some("bypass"));
    drop(gateway);

    let allowed = start_gateway(&cached_config(&provider.base_url(), "allow_nondeterministic = true", ""));
    assert_eq!(post(&allowed, "/v1/chat/completions", &[], &sampled).header("x-corelay-cache"), Some("miss"));
    assert_eq!(post(&allowed, "/v1/chat/completions", &[], &sampled).header("x-corelay-cache"), Some("hit"));
}

#[test]
fn an_entry_expires_at_its_ttl() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&cached_config(&provider.base_url(), "", ""));
    let body = chat(0.0, "short-lived");
    let ttl = [("x-corelay-cache-ttl", "1")];
    let stored_at = Instant::now();
    assert_eq!(post(&gateway, "/v1/chat/completions", &ttl, &body).header("x-corelay-cache"), Some("miss"));
    assert_eq!(post(&gateway, "/v1/chat/completions", &ttl, &body).header("x-corelay-cache"), Some("hit"));
    // Bounded poll: a miss must come once the second is over, and not before.
    let mut expired_after = None;
    for _ in 0..60 {
        let result = post(&gateway, "/v1/chat/completions", &ttl, &body).header("x-corelay-cache").map(str::to_string);
        if result.as_deref() == Some("miss") {
            expired_after = Some(stored_at.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let expired_after = expired_after.expect("the entry expired within three seconds");
    assert!(expired_after >= Duration::from_millis(900), "expired too early: {expired_after:?}");
}

#[test]
fn answers_that_did_not_end_cleanly_are_not_stored() {
    let provider = mock(MockConfig { fault: Fault::MissingFinalEvent, ..MockConfig::default() });
    let gateway = start_gateway(&cached_config(&provider.base_url(), "", ""));
    let (_, _, streamed) = door_requests(true).remove(0);
    for _ in 0..2 {
        let response = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &streamed);
        assert_eq!(response.header("x-corelay-cache"), Some("miss"));
    }
    assert_eq!(provider.requests().len(), 2, "the cut stream was not stored");
    provider.set_config(MockConfig {
        fault: Fault::Status { code: 400, retry_after_s: None, body: None },
        ..MockConfig::default()
    });
    let body = chat(0.0, "refused");
    for _ in 0..2 {
        let response = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &body);
        assert_eq!(response.status, 400);
        assert_eq!(response.header("x-corelay-cache"), Some("miss"));
    }
    assert_eq!(provider.requests().len(), 4, "errors are not stored");
    let unavailable = Fault::Status { code: 503, retry_after_s: None, body: None };
    provider.set_config(MockConfig { fault: unavailable, ..MockConfig::default() });
    let failed = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &body);
    assert_eq!(failed.status, 503);
    assert_eq!(failed.header("x-corelay-cache"), Some("miss"), "a failure says how it met the cache too");
}

#[test]
fn memory_stays_within_its_bound_while_ten_times_it_is_written() {
    let provider = mock(MockConfig { content_bytes: 2000, ..MockConfig::default() });
    let bound = 32 * 1024;
    let gateway = start_gateway(&cached_config(&provider.base_url(), &format!("memory_bytes = {bound}"), ""));
    let mut client = Client::connect(gateway.local_addr());
    for n in 0..200 {
        let response = client.post("/v1/chat/completions", &[], &chat(0.0, &format!("question {n}")));
        assert_eq!(response.header("x-corelay-cache"), Some("miss"));
    }
    let gauge = |text: &str| metric(text, "corelay_cache_memory_bytes{core=\"0\"}");
    let written = |text: &str| metric(text, "corelay_cache_stored_bytes_total");
    assert!(
        gateway
            .health()
            .wait_until_metrics(|t| written(t).is_some_and(|w| w >= 10 * bound as u64), Duration::from_secs(10)),
        "ten times the bound was written"
    );
    let text = Client::connect(gateway.local_addr()).get("/metrics", &[]).text();
    let held = gauge(&text).expect("the memory gauge");
    assert!(held > 0 && held <= bound as u64, "{held} bytes held, bound {bound}");
    assert!(metric(&text, "corelay_cache_evictions_total").is_some_and(|e| e > 0));
    assert_eq!(metric(&text, &format!("corelay_cache_requests_total{{model=\"{MODEL}\",result=\"miss\"}}")), Some(200));
    // The most recent answer is still there.
    let last = client.post("/v1/chat/completions", &[], &chat(0.0, "question 199"));
    assert_eq!(last.header("x-corelay-cache"), Some("hit"));
}

fn metric(text: &str, series: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn with_the_cache_off_nothing_changes() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let body = chat(0.0, "uncached");
    for _ in 0..2 {
        assert_eq!(
            post(&gateway, "/v1/chat/completions", &[("cache-control", "max-age=60")], &body).header("x-corelay-cache"),
            None
        );
    }
    assert_eq!(provider.requests().len(), 2);
}

#[test]
fn a_reload_opts_a_model_in() {
    let provider = mock(MockConfig::default());
    let text = |model_extra: &str| {
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\n\n[providers.mock]\nkind = \"openai\"\nbase_url = \"{}\"\n\n[models.\"{MODEL}\"]\nendpoints = [{{ provider = \"mock\", model = \"gpt-4o-mini\" }}]\n{model_extra}\n\n[cache]\nenabled = true\n",
            provider.base_url()
        )
    };
    let gateway = start_gateway(&text(""));
    let body = chat(0.0, "after a reload");
    assert_eq!(post(&gateway, "/v1/chat/completions", &[], &body).header("x-corelay-cache"), Some("bypass"));
    let path = common::temp_file("cache-reload", "toml", &text("cache = true"));
    gateway.reload_from(&path).expect("the reload applies");
    let _ = std::fs::remove_file(&path);
    assert_eq!(post(&gateway, "/v1/chat/completions", &[], &body).header("x-corelay-cache"), Some("miss"));
    assert_eq!(post(&gateway, "/v1/chat/completions", &[], &body).header("x-corelay-cache"), Some("hit"));
}
