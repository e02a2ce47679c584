//! An OpenAI-format client reaching a Gemini-kind provider through the running gateway, with the
//! mock replaying recorded Gemini traffic.

mod common;

use common::{Client, PROVIDER_KEY, start_gateway};
use loadtest::{MockConfig, MockProvider, Reply};

const MODEL: &str = "google/gemini-flash";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/gemini/{name}", corelay::fixture_path!())).unwrap()
}

fn config(url: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\n[providers.gemini]\nkind = \"gemini\"\nbase_url = \"{url}\"\napi_key_env = \"UNUSED\"\n[models.\"{MODEL}\"]\nendpoints = [{{ provider = \"gemini\", model = \"gemini-2.5-flash\" }}]\n"
    )
}

fn chat(stream: bool) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": "Count to 50"}],
        "stream": stream,
    }))
    .unwrap()
}

/// The text of a recorded Gemini stream, read independently of the gateway.
fn recorded_text(sse: &[u8]) -> String {
    String::from_utf8_lossy(sse)
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .flat_map(|c| c["candidates"][0]["content"]["parts"].as_array().cloned().unwrap_or_default())
        .filter(|p| p["thought"] != true)
        .filter_map(|p| p["text"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_recorded_gemini_stream_reaches_an_openai_client_as_chunks() {
    let recorded = fixture("gemini-stream.sse");
    let text = recorded_text(&recorded);
    let mock = MockProvider::start(MockConfig {
        reply: Reply::Sse(recorded),
        replay_piece_bytes: 11,
        ..MockConfig::default()
    })
    .unwrap();
    let gateway = start_gateway(&config(&mock.base_url()));

    let response = Client::connect(gateway.local_addr()).post(
        "/v1/chat/completions",
        &[("authorization", "Bearer client-secret")],
        &chat(true),
    );

    assert_eq!(response.status, 200, "{}", response.text());
    let (chunks, done) = response.sse_data();
    assert!(done, "{}", response.text());
    assert!(chunks.iter().all(|c| c["model"] == MODEL));
    let streamed: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(streamed, text);
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    assert_eq!(seen.header("x-goog-api-key"), Some(PROVIDER_KEY));
    assert_eq!(seen.header("authorization"), None, "no client credential reaches the provider");
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body["contents"][0]["role"], "user");
    assert_eq!(body["contents"][0]["parts"][0]["text"], "Count to 50");
}

#[test]
fn a_recorded_gemini_answer_reaches_an_openai_client_as_a_completion() {
    let mock = MockProvider::start(MockConfig {
        reply: Reply::Json(fixture("gemini-generate-basic.response.json")),
        ..MockConfig::default()
    })
    .unwrap();
    let gateway = start_gateway(&config(&mock.base_url()));

    let response = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat(false));

    assert_eq!(response.status, 200, "{}", response.text());
    let json = response.json();
    assert_eq!(json["model"], MODEL);
    assert_eq!(json["choices"][0]["message"]["content"], "The capital of France is Paris.\n");
    assert_eq!(json["choices"][0]["finish_reason"], "stop");
    assert_eq!(json["usage"]["prompt_tokens"], 13);
    assert_eq!(json["usage"]["completion_tokens"], 8);
    assert_eq!(mock.requests()[0].path, "/v1/models/gemini-2.5-flash:generateContent");
}

#[test]
fn a_gemini_429_pauses_the_provider_for_its_retry_info_delay() {
    let exhausted = fixture("errors/gemini-error-429-resource-exhausted.json");
    let gemini = MockProvider::start(MockConfig {
        fault: loadtest::Fault::Status { code: 429, retry_after_s: None, body: Some(exhausted) },
        ..MockConfig::default()
    })
    .unwrap();
    let openai = MockProvider::start(MockConfig::default()).unwrap();
    let config = format!(
        "{}[providers.openai]\nkind = \"openai\"\nbase_url = \"{}\"\n",
        config(&gemini.base_url()).replace(
            "endpoints = [{ provider = \"gemini\", model = \"gemini-2.5-flash\" }]",
            "endpoints = [{ provider = \"gemini\", model = \"gemini-2.5-flash\" }, { provider = \"openai\", model = \"gpt-4o\" }]"
        ),
        openai.base_url()
    );
    let gateway = start_gateway(&config);
    let mut client = Client::connect(gateway.local_addr());

    for _ in 0..5 {
        let response = client.post("/v1/chat/completions", &[], &chat(false));
        assert_eq!(response.header("x-corelay-provider"), Some("openai"));
    }

    assert_eq!(gemini.requests().len(), 1, "after the 429, Gemini is left alone for its RetryInfo delay");
    assert_eq!(openai.requests().len(), 5);
}
