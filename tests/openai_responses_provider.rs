//! OpenAI's Responses API through the running gateway, both ways. As a provider
//! (`kind = "openai_responses"`): an OpenAI chat client's request goes to `POST {base_url}/responses`
//! in the Responses format, and the recorded Responses stream and body come back as chat
//! completions; the Anthropic front door works the same way. As a front door (`POST /v1/responses`):
//! passed through to such a provider with only the model and key replaced, and translated for an
//! OpenAI chat provider. The mock replays recorded bytes from tests/fixtures/openai/responses.

mod common;

use common::{Client, PROVIDER_KEY, chat_body, start_gateway};
use loadtest::{Fault, MockConfig, MockProvider, Reply};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/openai/responses/{name}", corelay::fixture_path!());
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn config(mock: &MockProvider) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
cores = 1
[providers.openai-responses]
kind = "openai_responses"
base_url = "http://{}/v1"
api_key_env = "UNUSED"
[models."openai/o3-pro"]
endpoints = [{{ provider = "openai-responses", model = "o3-pro" }}]
"#,
        mock.addr()
    )
}

fn upstream_body(mock: &MockProvider) -> serde_json::Value {
    serde_json::from_slice(&mock.requests()[0].body).unwrap()
}

#[test]
fn a_chat_stream_is_served_from_a_responses_stream() {
    let recorded = fixture("openai-responses-stream-text.sse");
    let mock = MockProvider::start(MockConfig { reply: Reply::Sse(recorded), ..MockConfig::default() }).unwrap();
    let gateway = start_gateway(&config(&mock));
    let mut body: serde_json::Value = serde_json::from_slice(&chat_body("openai/o3-pro", true)).unwrap();
    body["stream_options"] = serde_json::json!({"include_usage": true});

    let response = Client::connect(gateway.local_addr()).post(
        "/v1/chat/completions",
        &[("authorization", "Bearer client-secret")],
        &serde_json::to_vec(&body).unwrap(),
    );

    assert_eq!(response.status, 200, "{}", response.text());
    let (chunks, done) = response.sse_data();
    assert!(done, "{}", response.text());
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "The capital of France is Paris.");
    assert!(chunks.iter().all(|c| c["model"] == "openai/o3-pro"));
    let finish = chunks.iter().find_map(|c| c["choices"][0]["finish_reason"].as_str());
    assert_eq!(finish, Some("stop"));
    let usage = chunks.iter().find(|c| c["usage"].is_object()).expect("a usage chunk")["usage"].clone();
    assert_eq!((usage["prompt_tokens"].as_u64(), usage["completion_tokens"].as_u64()), (Some(278), Some(9)));

    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1/responses");
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {PROVIDER_KEY}").as_str()));
    let sent = upstream_body(&mock);
    assert_eq!(sent["model"], "o3-pro");
    assert_eq!(sent["stream"], true);
    assert!(sent.get("messages").is_none() && sent["input"].is_array(), "{sent}");
}

#[test]
fn a_chat_completion_is_served_from_a_responses_body() {
    let recorded = fixture("openai-responses-basic.response.json");
    let mock = MockProvider::start(MockConfig { reply: Reply::Json(recorded), ..MockConfig::default() }).unwrap();
    let gateway = start_gateway(&config(&mock));

    let response =
        Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body("openai/o3-pro", false));

    assert_eq!(response.status, 200, "{}", response.text());
    let json = response.json();
    assert_eq!(json["object"], "chat.completion");
    assert_eq!(json["model"], "openai/o3-pro");
    assert_eq!(json["choices"][0]["message"]["content"], "The capital of France is Paris.");
    assert_eq!(json["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        (json["usage"]["prompt_tokens"].as_u64(), json["usage"]["completion_tokens"].as_u64()),
        (Some(24), Some(8))
    );
    assert_eq!(mock.requests()[0].path, "/v1/responses");
    assert_ne!(upstream_body(&mock)["stream"], true);
}

#[test]
fn an_anthropic_client_is_served_by_the_responses_api() {
    let recorded = fixture("openai-responses-stream-text.sse");
    let mock = MockProvider::start(MockConfig { reply: Reply::Sse(recorded), ..MockConfig::default() }).unwrap();
    let gateway = start_gateway(&config(&mock));
    let body = serde_json::json!({
        "model": "openai/o3-pro", "max_tokens": 64, "stream": true,
        "messages": [{"role": "user", "content": "What is the capital of France?"}]
    });

    let response = Client::connect(gateway.local_addr()).post(
        "/v1/messages",
        &[("x-api-key", "client-secret"), ("anthropic-version", "2023-06-01")],
        &serde_json::to_vec(&body).unwrap(),
    );

    assert_eq!(response.status, 200, "{}", response.text());
    let (events, _) = response.sse_data();
    let text: String = events.iter().filter_map(|e| e["delta"]["text"].as_str()).collect();
    assert_eq!(text, "The capital of France is Paris.");
    assert!(!format!("{:?}", mock.requests()[0]).contains("client-secret"), "client credentials stay here");
}

#[test]
fn a_quota_error_is_reported_as_the_gateways_and_not_retried() {
    let quota = std::fs::read(corelay::fixture_path!("vercel-ai/openai/openai-error.1.json")).unwrap();
    let fault = Fault::Status { code: 429, retry_after_s: None, body: Some(quota) };
    let mock = MockProvider::start(MockConfig { fault, ..MockConfig::default() }).unwrap();
    let gateway = start_gateway(&config(&mock));

    let response =
        Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body("openai/o3-pro", false));

    // Billing is the gateway's account's problem, not the client's: 502, in OpenAI's quota shape.
    assert_eq!(response.status, 502, "{}", response.text());
    assert_eq!(response.json()["error"]["code"], "insufficient_quota", "{}", response.text());
    assert_eq!(mock.requests().len(), 1, "insufficient_quota is not worth a retry");
}

#[test]
fn a_responses_client_is_passed_through_with_only_the_model_and_the_key_replaced() {
    let recorded = fixture("openai-responses-basic.response.json");
    let mock = MockProvider::start(MockConfig { reply: Reply::Json(recorded), ..MockConfig::default() }).unwrap();
    let gateway = start_gateway(&config(&mock));
    // A built-in tool only OpenAI runs: it must reach the provider untouched.
    let body = serde_json::json!({
        "model": "openai/o3-pro",
        "input": "What is the capital of France?",
        "tools": [{"type": "web_search"}],
        "previous_response_id": "resp_abc"
    });

    let response = Client::connect(gateway.local_addr()).post(
        "/v1/responses",
        &[("authorization", "Bearer client-secret")],
        &serde_json::to_vec(&body).unwrap(),
    );

    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["model"], "openai/o3-pro");
    assert_eq!(response.json()["output"][0]["content"][0]["text"], "The capital of France is Paris.");
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1/responses");
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {PROVIDER_KEY}").as_str()));
    let sent = upstream_body(&mock);
    let mut expected = body.clone();
    expected["model"] = "o3-pro".into();
    assert_eq!(sent, expected, "only the model changes");
}

#[test]
fn a_responses_client_is_translated_for_other_providers_and_refused_state_is_a_400() {
    let chat = MockProvider::start(MockConfig::default()).unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\n[providers.chat]\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\n[models.\"acme/chat\"]\nendpoints = [{{ provider = \"chat\", model = \"gpt-4o-mini\" }}]\n",
        chat.addr()
    );
    let gateway = start_gateway(&text);
    let mut client = Client::connect(gateway.local_addr());

    let answer = client.post("/v1/responses", &[], br#"{"model":"acme/chat","input":"hi","instructions":"Be brief."}"#);
    let stateful =
        client.post("/v1/responses", &[], br#"{"model":"acme/chat","input":"hi","previous_response_id":"resp_1"}"#);

    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["object"], "response");
    assert_eq!(answer.json()["status"], "completed");
    let sent: serde_json::Value = serde_json::from_slice(&chat.requests()[0].body).unwrap();
    assert_eq!(sent["messages"][0], serde_json::json!({"role": "system", "content": "Be brief."}));
    assert_eq!(chat.requests()[0].path, "/v1/chat/completions");
    assert_eq!(stateful.status, 400, "{}", stateful.text());
    assert_eq!(stateful.json()["error"]["param"], "previous_response_id");
    assert_eq!(chat.requests().len(), 1, "a refused request reaches no provider");
}
