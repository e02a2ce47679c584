//! Vertex AI through the running gateway: a Gemini model (generateContent) and an Anthropic model
//! (rawPredict, Vertex's Anthropic dialect), both with the access token as a bearer.

mod common;

use common::{Client, PROVIDER_KEY, start_gateway};
use loadtest::{MockConfig, MockProvider, Reply};

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/{path}", corelay::fixture_path!())).unwrap()
}

fn config(mock: &MockProvider) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
cores = 1
[providers.vertex]
kind = "vertex"
base_url = "http://{}"
project = "my-project"
location = "us-east5"
api_key_env = "UNUSED"
[models."google/gemini"]
endpoints = [{{ provider = "vertex", model = "gemini-2.5-flash" }}]
[models."anthropic/claude"]
endpoints = [{{ provider = "vertex", model = "claude-sonnet-4-5@20250929" }}]
"#,
        mock.addr()
    )
}

fn chat(model: &str) -> Vec<u8> {
    serde_json::to_vec(
        &serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": true}),
    )
    .unwrap()
}

fn streamed_text(response: &common::Response) -> String {
    let (chunks, done) = response.sse_data();
    assert!(done, "{}", response.text());
    chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect()
}

#[test]
fn a_gemini_model_on_vertex_streams_with_a_bearer_token() {
    let mock = MockProvider::start(MockConfig {
        reply: Reply::Sse(fixture("vertex/vertex-gemini-stream.sse")),
        ..MockConfig::default()
    })
    .unwrap();
    let gateway = start_gateway(&config(&mock));

    let response = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat("google/gemini"));

    assert_eq!(response.status, 200, "{}", response.text());
    assert!(!streamed_text(&response).is_empty());
    let seen = &mock.requests()[0];
    assert_eq!(
        seen.path,
        "/v1/projects/my-project/locations/us-east5/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {PROVIDER_KEY}").as_str()));
}

#[test]
fn an_anthropic_model_on_vertex_uses_raw_predict_and_the_vertex_dialect() {
    let recorded = fixture("anthropic/anthropic-messages-stream-text.sse");
    let mock = MockProvider::start(MockConfig { reply: Reply::Sse(recorded), ..MockConfig::default() }).unwrap();
    let gateway = start_gateway(&config(&mock));

    let response = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat("anthropic/claude"));

    assert_eq!(response.status, 200, "{}", response.text());
    assert!(!streamed_text(&response).is_empty());
    let seen = &mock.requests()[0];
    assert_eq!(
        seen.path,
        "/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"
    );
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {PROVIDER_KEY}").as_str()));
    assert_eq!(seen.header("x-api-key"), None);
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
    assert!(body.get("model").is_none(), "Vertex takes the model from the path");
}

#[test]
fn an_anthropic_client_reaches_claude_on_vertex_with_its_body_as_sent() {
    let recorded = fixture("anthropic/anthropic-messages-basic.response.json");
    let mock = MockProvider::start(MockConfig { reply: Reply::Json(recorded), ..MockConfig::default() }).unwrap();
    let gateway = start_gateway(&config(&mock));
    let body = serde_json::json!({
        "model": "anthropic/claude",
        "max_tokens": 256,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
    });

    let response = Client::connect(gateway.local_addr()).post(
        "/v1/messages",
        &[("x-api-key", "client-anthropic-key"), ("anthropic-version", "2023-06-01")],
        &serde_json::to_vec(&body).unwrap(),
    );

    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["model"], "anthropic/claude");
    assert_eq!(response.json()["content"][0]["text"], "The capital of France is Paris.");
    let seen = &mock.requests()[0];
    assert_eq!(
        seen.path,
        "/v1/projects/my-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
    );
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {PROVIDER_KEY}").as_str()));
    assert_eq!(seen.header("x-api-key"), None, "the client's key stays here");
    let mut expected = body.clone();
    let object = expected.as_object_mut().unwrap();
    object.remove("model");
    object.insert("anthropic_version".into(), "vertex-2023-10-16".into());
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&seen.body).unwrap(), expected, "cache_control survives");
}
