//! An OpenAI-format client reaching an Anthropic-kind provider through the running gateway: the mock
//! replays recorded Anthropic traffic, the client sees OpenAI's shapes, the provider sees Anthropic's
//! request with the gateway's key and no client credential.

mod common;

use common::{Client, PROVIDER_KEY, Response, start_gateway};
use loadtest::{Fault, MockConfig, MockProvider, Reply};

const MODEL: &str = "anthropic/claude-sonnet-4";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/anthropic/{name}", corelay::fixture_path!())).unwrap()
}

/// `anthropic/claude-sonnet-4` served by the Anthropic-kind `anthropic` provider, then by the
/// OpenAI-kind `openai` provider when one is given.
fn config(anthropic_url: &str, openai_url: Option<&str>) -> String {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\n[providers.anthropic]\nkind = \"anthropic\"\nbase_url = \"{anthropic_url}\"\napi_key_env = \"UNUSED\"\n"
    );
    let mut endpoints = vec!["{ provider = \"anthropic\", model = \"claude-sonnet-4-5\" }".to_string()];
    if let Some(url) = openai_url {
        text.push_str(&format!("[providers.openai]\nkind = \"openai\"\nbase_url = \"{url}\"\n"));
        endpoints.push("{ provider = \"openai\", model = \"gpt-4o\" }".into());
    }
    text.push_str(&format!("[models.\"{MODEL}\"]\nendpoints = [{}]\n", endpoints.join(", ")));
    text
}

fn chat(client: &mut Client, stream: bool) -> Response {
    let body = serde_json::json!({
        "model": MODEL,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}],
        "stream": stream,
        "stream_options": if stream { serde_json::json!({"include_usage": true}) } else { serde_json::Value::Null },
    });
    client.post(
        "/v1/chat/completions",
        &[("authorization", "Bearer client-secret"), ("x-api-key", "client-anthropic-key")],
        &serde_json::to_vec(&body).unwrap(),
    )
}

/// The text and output tokens of a recorded Anthropic stream, read independently of the gateway.
fn recorded_text_and_output_tokens(sse: &[u8]) -> (String, u64) {
    let (mut text, mut output) = (String::new(), 0);
    for line in String::from_utf8_lossy(sse).lines() {
        let Some(data) = line.strip_prefix("data: ") else { continue };
        let Ok(event) = serde_json::from_str::<serde_json::Value>(data) else { continue };
        if event["delta"]["type"] == "text_delta" {
            text.push_str(event["delta"]["text"].as_str().unwrap());
        }
        if event["type"] == "message_delta" {
            output = event["usage"]["output_tokens"].as_u64().unwrap();
        }
    }
    (text, output)
}

#[test]
fn a_recorded_anthropic_stream_reaches_an_openai_client_as_chunks() {
    let recorded = fixture("anthropic-messages-stream-text.sse");
    let (text, output_tokens) = recorded_text_and_output_tokens(&recorded);
    let mock =
        MockProvider::start(MockConfig { reply: Reply::Sse(recorded), replay_piece_bytes: 7, ..MockConfig::default() })
            .unwrap();
    let gateway = start_gateway(&config(&mock.base_url(), None));

    let response = chat(&mut Client::connect(gateway.local_addr()), true);

    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-corelay-provider"), Some("anthropic"));
    let (chunks, done) = response.sse_data();
    assert!(done, "{}", response.text());
    assert!(chunks.iter().all(|c| c["model"] == MODEL && c["object"] == "chat.completion.chunk"));
    let streamed: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(streamed, text);
    let finish: Vec<&str> = chunks.iter().filter_map(|c| c["choices"][0]["finish_reason"].as_str()).collect();
    assert_eq!(finish, ["stop"]);
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["completion_tokens"].as_u64(), Some(output_tokens), "{usage}");
}

#[test]
fn the_provider_gets_an_anthropic_request_with_the_gateway_key_only() {
    let mock = MockProvider::start(MockConfig {
        reply: Reply::Json(fixture("anthropic-messages-basic.response.json")),
        ..MockConfig::default()
    })
    .unwrap();
    let gateway = start_gateway(&config(&mock.base_url(), None));

    let response = chat(&mut Client::connect(gateway.local_addr()), false);

    assert_eq!(response.status, 200, "{}", response.text());
    let json = response.json();
    assert_eq!(json["object"], "chat.completion");
    assert_eq!(json["model"], MODEL);
    assert_eq!(json["choices"][0]["message"]["content"], "The capital of France is Paris.");
    assert_eq!(json["choices"][0]["finish_reason"], "stop");
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some(PROVIDER_KEY));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.header("authorization"), None, "no client credential reaches the provider");
    let headers = format!("{:?}", seen.headers);
    assert!(!headers.contains("client-secret") && !headers.contains("client-anthropic-key"), "{headers}");
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["max_tokens"], 4096, "defaulted: Anthropic requires it");
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(body["messages"][0]["role"], "user");
}

#[test]
fn an_overloaded_error_as_the_first_event_fails_over_to_the_next_provider() {
    let recorded = fixture("anthropic-messages-stream-overloaded-error.RECONSTRUCTED.sse");
    let text = String::from_utf8(recorded).unwrap();
    let start = text.split("\n\n").next().unwrap();
    let error = text.split("\n\n").find(|e| e.starts_with("event: error")).unwrap();
    let overloaded_at_once = format!("{start}\n\n{error}\n\n").into_bytes();
    let anthropic =
        MockProvider::start(MockConfig { reply: Reply::Sse(overloaded_at_once), ..MockConfig::default() }).unwrap();
    let openai = MockProvider::start(MockConfig::default()).unwrap();
    let gateway = start_gateway(&config(&anthropic.base_url(), Some(&openai.base_url())));

    let response = chat(&mut Client::connect(gateway.local_addr()), true);

    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-corelay-provider"), Some("openai"));
    assert_eq!(response.header("x-corelay-attempts"), Some("2"));
    let (chunks, done) = response.sse_data();
    assert!(done && chunks.iter().all(|c| c.get("error").is_none()), "{}", response.text());
    assert_eq!((anthropic.requests().len(), openai.requests().len()), (1, 1));
}

#[test]
fn anthropic_errors_become_openai_errors_and_only_retryable_ones_fail_over() {
    let overloaded = Fault::Status {
        code: 529,
        retry_after_s: None,
        body: Some(fixture("errors/anthropic-error-529-overloaded-error.RECONSTRUCTED.json")),
    };
    let anthropic = MockProvider::start(MockConfig { fault: overloaded, ..MockConfig::default() }).unwrap();
    let openai = MockProvider::start(MockConfig::default()).unwrap();
    let gateway = start_gateway(&config(&anthropic.base_url(), Some(&openai.base_url())));
    let mut client = Client::connect(gateway.local_addr());
    assert_eq!(chat(&mut client, false).header("x-corelay-provider"), Some("openai"), "529 fails over");

    let invalid = Fault::Status {
        code: 400,
        retry_after_s: None,
        body: Some(fixture("errors/anthropic-error-400-invalid-request.json")),
    };
    anthropic.set_config(MockConfig { fault: invalid, ..MockConfig::default() });
    let response = chat(&mut client, false);
    assert_eq!(response.status, 400, "the client's fault is not retried");
    let json = response.json();
    assert_eq!(json["error"]["type"], "invalid_request_error");
    assert!(json["error"]["message"].as_str().unwrap().contains("effort level"), "{json}");
    assert_eq!(openai.requests().len(), 1);
}

/// An Anthropic client's request to `/v1/messages`, with what only Anthropic's format carries:
/// prompt caching, a server tool, a beta header.
fn anthropic_native(client: &mut Client, stream: bool) -> (serde_json::Value, Response) {
    let body = serde_json::json!({
        "model": MODEL,
        "max_tokens": 256,
        "stream": stream,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}],
        "messages": [{"role": "user", "content": "Say hello"}],
    });
    let headers = [
        ("x-api-key", "client-anthropic-key"),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "context-1m-2025-08-07"),
    ];
    let response = client.post("/v1/messages", &headers, &serde_json::to_vec(&body).unwrap());
    (body, response)
}

#[test]
fn an_anthropic_client_is_passed_through_to_an_anthropic_provider_with_only_model_and_key_replaced() {
    let recorded = fixture("anthropic-messages-basic.response.json");
    let anthropic = MockProvider::start(MockConfig { reply: Reply::Json(recorded), ..MockConfig::default() }).unwrap();
    // The OpenAI-kind endpoint cannot carry a server tool, so it is never tried.
    let openai = MockProvider::start(MockConfig::default()).unwrap();
    let gateway = start_gateway(&config(&format!("http://{}", anthropic.addr()), Some(&openai.base_url())));

    let (mut sent, response) = anthropic_native(&mut Client::connect(gateway.local_addr()), false);

    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["model"], MODEL);
    assert_eq!(response.json()["content"][0]["text"], "The capital of France is Paris.");
    let seen = &anthropic.requests()[0];
    assert_eq!(seen.path, "/messages");
    assert_eq!(seen.header("x-api-key"), Some(PROVIDER_KEY));
    assert_eq!(seen.header("anthropic-beta"), Some("context-1m-2025-08-07"));
    sent["model"] = "claude-sonnet-4-5".into();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&seen.body).unwrap(), sent, "only the model changes");
    assert!(openai.requests().is_empty());
}

#[test]
fn a_passed_through_anthropic_stream_keeps_its_events_and_shows_the_gateway_model() {
    let recorded = fixture("anthropic-messages-stream-text.sse");
    let anthropic =
        MockProvider::start(MockConfig { reply: Reply::Sse(recorded.clone()), ..MockConfig::default() }).unwrap();
    let gateway = start_gateway(&config(&format!("http://{}", anthropic.addr()), None));

    let (_, response) = anthropic_native(&mut Client::connect(gateway.local_addr()), true);

    assert_eq!(response.status, 200, "{}", response.text());
    let (events, _) = response.sse_data();
    let start = events.iter().find(|e| e["type"] == "message_start").expect("message_start");
    assert_eq!(start["message"]["model"], MODEL, "the model is the one the client asked for");
    let text: String = events.iter().filter_map(|e| e["delta"]["text"].as_str()).collect();
    let (recorded_text, output_tokens) = recorded_text_and_output_tokens(&recorded);
    assert_eq!(text, recorded_text);
    let delta = events.iter().find(|e| e["type"] == "message_delta").expect("message_delta");
    assert_eq!(delta["usage"]["output_tokens"].as_u64(), Some(output_tokens));
}
