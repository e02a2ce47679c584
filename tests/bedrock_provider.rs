//! An OpenAI-format client reaching a Bedrock-kind provider through the running gateway: the mock
//! replays recorded ConverseStream event-stream bytes, the gateway signs with SigV4.

mod common;

use common::{AWS_ACCESS_KEY_ID, Client, PROVIDER_KEY, start_gateway};
use loadtest::{Fault, MockConfig, MockProvider, Reply};

const MODEL: &str = "anthropic/claude-sonnet-4";
const BEDROCK_MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/bedrock/{name}", corelay::fixture_path!())).unwrap()
}

fn config(bedrock_url: &str, fallback_url: Option<&str>) -> String {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\n[providers.bedrock]\nkind = \"bedrock\"\nbase_url = \"{bedrock_url}\"\nregion = \"us-east-1\"\n"
    );
    let mut endpoints = vec![format!("{{ provider = \"bedrock\", model = \"{BEDROCK_MODEL}\" }}")];
    if let Some(url) = fallback_url {
        text.push_str(&format!("[providers.openai]\nkind = \"openai\"\nbase_url = \"{url}\"\n"));
        endpoints.push("{ provider = \"openai\", model = \"gpt-4o\" }".into());
    }
    text.push_str(&format!("[models.\"{MODEL}\"]\nendpoints = [{}]\n", endpoints.join(", ")));
    text
}

fn chat(stream: bool) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "stream": stream,
    }))
    .unwrap()
}

/// The text of a recorded ConverseStream, from the fixture's own decoded frames.
fn recorded_text(decoded_jsonl: &[u8]) -> String {
    String::from_utf8_lossy(decoded_jsonl)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|f| f["payload"]["delta"]["text"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_recorded_converse_stream_reaches_an_openai_client_as_chunks_and_the_request_is_signed() {
    let text = recorded_text(&fixture("bedrock-converse-stream.decoded.jsonl"));
    let mock = MockProvider::start(MockConfig {
        reply: Reply::Sse(fixture("bedrock-converse-stream.bin")),
        replay_piece_bytes: 13,
        ..MockConfig::default()
    })
    .unwrap();
    let gateway = start_gateway(&config(&mock.base_url(), None));

    let response = Client::connect(gateway.local_addr()).post(
        "/v1/chat/completions",
        &[("authorization", "Bearer client-secret")],
        &chat(true),
    );

    assert_eq!(response.status, 200, "{}", response.text());
    let (chunks, done) = response.sse_data();
    assert!(done, "{}", response.text());
    let streamed: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(streamed, text);
    assert!(chunks.iter().all(|c| c["model"] == MODEL));
    // Bedrock's stream carries no id and the mock sends no x-amzn-requestid: the gateway makes one.
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("gen-") && id.len() > 4, "{id}");
    assert!(chunks.iter().all(|c| c["id"] == id), "one id for every chunk");
    let seen = &mock.requests()[0];
    assert_eq!(seen.path, "/v1/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream");
    let authorization = seen.header("authorization").unwrap();
    assert!(
        authorization.starts_with(&format!("AWS4-HMAC-SHA256 Credential={AWS_ACCESS_KEY_ID}/"))
            && authorization.contains("/us-east-1/bedrock/aws4_request")
            && authorization.contains("SignedHeaders=")
            && authorization.contains("Signature="),
        "{authorization}"
    );
    assert!(seen.header("x-amz-date").is_some());
    assert_eq!(seen.header("accept"), Some("application/vnd.amazon.eventstream"));
    let headers = format!("{:?}", seen.headers);
    assert!(!headers.contains("client-secret") && !headers.contains(PROVIDER_KEY), "{headers}");
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body["messages"][0]["content"][0]["text"], "What is the capital of France?");
}

#[test]
fn a_recorded_converse_answer_reaches_an_openai_client_as_a_completion() {
    let mock = MockProvider::start(MockConfig {
        reply: Reply::Json(fixture("bedrock-converse-basic.response.json")),
        ..MockConfig::default()
    })
    .unwrap();
    let gateway = start_gateway(&config(&mock.base_url(), None));

    let response = Client::connect(gateway.local_addr()).post(
        "/v1/chat/completions",
        &[("x-request-id", "req-bedrock-1")],
        &chat(false),
    );

    assert_eq!(response.status, 200, "{}", response.text());
    let json = response.json();
    assert_eq!(json["id"], "gen-req-bedrock-1", "a real id, found again by the request id");
    assert!(
        json["choices"][0]["message"]["content"].as_str().unwrap().starts_with("Hello! How can I assist you today?")
    );
    assert_eq!(
        (json["usage"]["prompt_tokens"].as_u64(), json["usage"]["completion_tokens"].as_u64()),
        (Some(7), Some(30))
    );
    assert_eq!(mock.requests()[0].path, "/v1/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse");
}

#[test]
fn a_throttled_bedrock_fails_over_to_the_next_provider() {
    let throttled = Fault::Status {
        code: 429,
        retry_after_s: None,
        body: Some(br#"{"message":"Too many requests, please wait before trying again."}"#.to_vec()),
    };
    let bedrock = MockProvider::start(MockConfig { fault: throttled, ..MockConfig::default() }).unwrap();
    let openai = MockProvider::start(MockConfig::default()).unwrap();
    let gateway = start_gateway(&config(&bedrock.base_url(), Some(&openai.base_url())));

    let response = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat(false));

    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-corelay-provider"), Some("openai"));
    assert_eq!((bedrock.requests().len(), openai.requests().len()), (1, 1));
}
