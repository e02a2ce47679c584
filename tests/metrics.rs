//! Usage, cost and Prometheus counters after a known set of requests through mocks speaking the
//! OpenAI and Anthropic formats, streaming and not, including a failover. Expected numbers come from
//! the recorded fixtures and the configured prices, computed here by hand.

mod common;

use std::time::Duration;

use common::{Client, Response, start_gateway};
use loadtest::{Fault, MockConfig, MockProvider, Reply};

const KEY: &str = "gw-team-a-key-0123456789";

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/{path}", corelay::fixture_path!())).unwrap()
}

fn config(openai: &str, anthropic: &str, bad: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
cores = 2
[health]
tick_ms = 20
[providers.openai]
kind = "openai"
base_url = "{openai}"
[providers.anthropic]
kind = "anthropic"
base_url = "{anthropic}"
[providers.bad]
kind = "openai"
base_url = "{bad}"
[models."acme/openai"]
endpoints = [{{ provider = "openai", model = "gpt-4o" }}]
price = {{ input = 2.5, output = 10.0, cached_input = 1.25 }}
[models."acme/claude"]
endpoints = [{{ provider = "anthropic", model = "claude-sonnet-4-5" }}]
price = {{ input = 3.0, output = 15.0 }}
[models."acme/failover"]
endpoints = [{{ provider = "bad", model = "x" }}, {{ provider = "openai", model = "gpt-4o", price = {{ input = 1.0, output = 2.0 }} }}]
price = {{ input = 100.0, output = 100.0 }}
[[keys]]
name = "team-a"
key = "{KEY}"
"#
    )
}

fn chat(client: &mut Client, model: &str, stream: bool) -> Response {
    let body = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
        "stream_options": if stream { serde_json::json!({"include_usage": true}) } else { serde_json::Value::Null },
    });
    client.post(
        "/v1/chat/completions",
        &[("authorization", &format!("Bearer {KEY}"))],
        &serde_json::to_vec(&body).unwrap(),
    )
}

#[test]
fn counters_tokens_and_costs_are_exact() {
    let openai = MockProvider::start(MockConfig::default()).unwrap();
    let anthropic = MockProvider::start(MockConfig::default()).unwrap();
    let bad = MockProvider::start(MockConfig {
        fault: Fault::Status { code: 500, retry_after_s: None, body: None },
        ..MockConfig::default()
    })
    .unwrap();
    let gateway = start_gateway(&config(&openai.base_url(), &anthropic.base_url(), &bad.base_url()));
    let mut client = Client::connect(gateway.local_addr());
    let json = |bytes: Vec<u8>| MockConfig { reply: Reply::Json(bytes), ..MockConfig::default() };
    let sse = |bytes: Vec<u8>| MockConfig { reply: Reply::Sse(bytes), ..MockConfig::default() };

    // OpenAI, non-streaming: 24 prompt + 8 completion tokens at $2.50 / $10 per Mtok = 60 + 80 = 140 µ$.
    openai.set_config(json(fixture("openai/chat/openai-chat-basic.response.json")));
    let first = chat(&mut client, "acme/openai", false);
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-corelay-cost-usd-micros"), Some("140"));
    assert!(first.header("x-request-id").is_some_and(|id| !id.is_empty()));
    assert!(first.header("x-corelay-overhead-us").and_then(|v| v.parse::<u64>().ok()).is_some());
    // OpenAI, streaming: 14 + 30 tokens = 35 + 300 = 335 µ$.
    openai.set_config(sse(fixture("openai/chat/openai-chat-stream-usage.sse")));
    let streamed = chat(&mut client, "acme/openai", true);
    assert!(
        streamed.text().contains(": corelay usage prompt_tokens=14 completion_tokens=30 cost_usd_micros=335"),
        "{}",
        streamed.text()
    );
    // Anthropic, streaming: 20 input + 5 output at $3 / $15 = 60 + 75 = 135 µ$.
    anthropic.set_config(sse(fixture("anthropic/anthropic-messages-stream-text.sse")));
    assert_eq!(chat(&mut client, "acme/claude", true).status, 200);
    // Anthropic, non-streaming: 20 input + 10 output = 60 + 150 = 210 µ$.
    anthropic.set_config(json(fixture("anthropic/anthropic-messages-basic.response.json")));
    assert_eq!(chat(&mut client, "acme/claude", false).header("x-corelay-cost-usd-micros"), Some("210"));
    // A failover: `bad` fails (counted, not charged), `openai` serves at its endpoint price $1 / $2:
    // 24 + 16 = 40 µ$ (the model's $100 price would give 3200).
    openai.set_config(json(fixture("openai/chat/openai-chat-basic.response.json")));
    let failover = chat(&mut client, "acme/failover", false);
    assert_eq!((failover.status, failover.header("x-corelay-cost-usd-micros")), (200, Some("40")));

    let expected = [
        r#"corelay_requests_total{front_door="openai",model="acme/openai",provider="openai",status_class="2xx"} 2"#,
        r#"corelay_requests_total{front_door="openai",model="acme/claude",provider="anthropic",status_class="2xx"} 2"#,
        r#"corelay_requests_total{front_door="openai",model="acme/failover",provider="openai",status_class="2xx"} 1"#,
        r#"corelay_upstream_attempts_total{provider="bad",outcome="server_error"} 1"#,
        r#"corelay_upstream_attempts_total{provider="openai",outcome="success"} 3"#,
        r#"corelay_upstream_attempts_total{provider="anthropic",outcome="success"} 2"#,
        r#"corelay_failovers_total{model="acme/failover"} 1"#,
        r#"corelay_tokens_total{model="acme/openai",provider="openai",kind="prompt"} 38"#,
        r#"corelay_tokens_total{model="acme/openai",provider="openai",kind="completion"} 38"#,
        r#"corelay_tokens_total{model="acme/claude",provider="anthropic",kind="prompt"} 40"#,
        r#"corelay_tokens_total{model="acme/claude",provider="anthropic",kind="completion"} 15"#,
        r#"corelay_tokens_total{model="acme/failover",provider="openai",kind="prompt"} 24"#,
        r#"corelay_cost_usd_micros_total{model="acme/openai",provider="openai",key="team-a"} 475"#,
        r#"corelay_cost_usd_micros_total{model="acme/claude",provider="anthropic",key="team-a"} 345"#,
        r#"corelay_cost_usd_micros_total{model="acme/failover",provider="openai",key="team-a"} 40"#,
        r#"corelay_calls_without_usage_total{model="acme/openai",provider="openai"} 0"#,
        r#"corelay_request_duration_seconds_count{front_door="openai",model="acme/openai",provider="openai"} 2"#,
        r#"corelay_request_duration_seconds_count{front_door="openai",model="acme/failover",provider="openai"} 1"#,
    ];
    let all_there = |text: &str| expected.iter().all(|line| text.lines().any(|l| l == *line));
    assert!(
        gateway.health().wait_until_metrics(all_there, Duration::from_secs(10)),
        "{}",
        gateway.health().latest_metrics()
    );
    let scraped = Client::connect(gateway.local_addr()).get("/metrics", &[]);
    assert_eq!(scraped.status, 200);
    assert!(scraped.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    for line in expected {
        assert!(scraped.text().lines().any(|l| l == line), "missing {line}\n{}", scraped.text());
    }
    assert!(!scraped.text().contains(KEY), "the key's secret never appears, only its name");
    let origin = format!("origin=\"http://{}\"", openai.addr());
    let text = scraped.text();
    let pool_lines = text.lines().filter(|l| l.starts_with("corelay_pool_misses_total{") && l.contains(&origin));
    assert!(pool_lines.count() > 0, "pool counters per provider origin: {text}");
}

#[test]
fn a_stream_without_usage_is_counted_as_such() {
    // The client asks for usage, but the provider's (recorded) stream ends without a usage chunk.
    let recorded = String::from_utf8(fixture("openai/chat/openai-chat-stream-refusal.sse")).unwrap();
    let recorded: String = recorded.split_inclusive("\n\n").filter(|event| !event.contains("\"usage\":{")).collect();
    let recorded = recorded.into_bytes();
    let openai = MockProvider::start(MockConfig { reply: Reply::Sse(recorded), ..MockConfig::default() }).unwrap();
    let gateway = start_gateway(&config(&openai.base_url(), &openai.base_url(), &openai.base_url()));
    let body = serde_json::json!({
        "model": "acme/openai",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    let response = Client::connect(gateway.local_addr()).post(
        "/v1/chat/completions",
        &[("authorization", &format!("Bearer {KEY}"))],
        &serde_json::to_vec(&body).unwrap(),
    );
    assert!(response.text().contains(": corelay usage unreported"), "{}", response.text());
    let line = r#"corelay_calls_without_usage_total{model="acme/openai",provider="openai"} 1"#;
    assert!(gateway.health().wait_until_metrics(|t| t.lines().any(|l| l == line), Duration::from_secs(10)));
}

#[test]
fn gemini_and_bedrock_usage_and_costs_are_exact_streaming_and_not() {
    let gemini = MockProvider::start(MockConfig::default()).unwrap();
    let bedrock = MockProvider::start(MockConfig::default()).unwrap();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
cores = 1
[health]
tick_ms = 20
[providers.gemini]
kind = "gemini"
base_url = "{}"
[providers.bedrock]
kind = "bedrock"
base_url = "{}"
region = "us-east-1"
[models."acme/gemini"]
endpoints = [{{ provider = "gemini", model = "gemini-2.5-flash" }}]
price = {{ input = 1.0, output = 2.0 }}
[models."acme/bedrock"]
endpoints = [{{ provider = "bedrock", model = "anthropic.claude-3-5-sonnet-20240620-v1:0" }}]
price = {{ input = 3.0, output = 4.0 }}
[[keys]]
name = "team-a"
key = "{KEY}"
"#,
        gemini.base_url(),
        bedrock.base_url()
    );
    let gateway = start_gateway(&text);
    let mut client = Client::connect(gateway.local_addr());
    let json = |bytes: Vec<u8>| MockConfig { reply: Reply::Json(bytes), ..MockConfig::default() };
    let sse = |bytes: Vec<u8>| MockConfig { reply: Reply::Sse(bytes), ..MockConfig::default() };

    // Gemini: 13 + 8 tokens = 13 + 16 = 29 µ$; streamed 18 prompt + (80 + 35 thinking) = 18 + 230 = 248 µ$.
    gemini.set_config(json(fixture("gemini/gemini-generate-basic.response.json")));
    assert_eq!(chat(&mut client, "acme/gemini", false).header("x-corelay-cost-usd-micros"), Some("29"));
    gemini.set_config(sse(fixture("gemini/gemini-stream.sse")));
    let streamed = chat(&mut client, "acme/gemini", true);
    assert!(streamed.text().contains("cost_usd_micros=248"), "{}", streamed.text());
    // Bedrock: 7 + 30 tokens = 21 + 120 = 141 µ$; streamed 13 + 82 = 39 + 328 = 367 µ$.
    bedrock.set_config(json(fixture("bedrock/bedrock-converse-basic.response.json")));
    assert_eq!(chat(&mut client, "acme/bedrock", false).header("x-corelay-cost-usd-micros"), Some("141"));
    bedrock.set_config(sse(fixture("bedrock/bedrock-converse-stream.bin")));
    let streamed = chat(&mut client, "acme/bedrock", true);
    assert!(streamed.text().contains("cost_usd_micros=367"), "{}", streamed.text());

    let expected = [
        r#"corelay_tokens_total{model="acme/gemini",provider="gemini",kind="prompt"} 31"#,
        r#"corelay_tokens_total{model="acme/gemini",provider="gemini",kind="completion"} 123"#,
        r#"corelay_tokens_total{model="acme/gemini",provider="gemini",kind="reasoning"} 35"#,
        r#"corelay_cost_usd_micros_total{model="acme/gemini",provider="gemini",key="team-a"} 277"#,
        r#"corelay_tokens_total{model="acme/bedrock",provider="bedrock",kind="prompt"} 20"#,
        r#"corelay_tokens_total{model="acme/bedrock",provider="bedrock",kind="completion"} 112"#,
        r#"corelay_cost_usd_micros_total{model="acme/bedrock",provider="bedrock",key="team-a"} 508"#,
        r#"corelay_requests_total{front_door="openai",model="acme/bedrock",provider="bedrock",status_class="2xx"} 2"#,
    ];
    let all_there = |text: &str| expected.iter().all(|line| text.lines().any(|l| l == *line));
    assert!(
        gateway.health().wait_until_metrics(all_there, Duration::from_secs(10)),
        "{}",
        gateway.health().latest_metrics()
    );
}
