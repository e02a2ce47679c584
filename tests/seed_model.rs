//! The seed's model: `anthropic/claude-sonnet-4` served by Vertex, Bedrock and Anthropic, each in its
//! own wire format, chosen per request with `providerOptions.gateway.order` as the AI SDK sends it.

mod common;

use common::{Client, start_gateway};
use loadtest::{MockConfig, MockProvider, Reply};

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/{path}", corelay::fixture_path!())).unwrap()
}

fn sse_mock(path: &str) -> MockProvider {
    MockProvider::start(MockConfig { reply: Reply::Sse(fixture(path)), ..MockConfig::default() }).unwrap()
}

#[test]
fn each_endpoint_of_a_mixed_model_works_in_its_own_format() {
    let vertex = sse_mock("anthropic/anthropic-messages-stream-text.sse");
    let bedrock = sse_mock("bedrock/bedrock-converse-stream.bin");
    let anthropic = sse_mock("anthropic/anthropic-messages-stream-thinking.sse");
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"
cores = 1
[providers.vertex]
kind = "vertex"
base_url = "http://{}"
project = "p"
location = "us-east5"
[providers.bedrock]
kind = "bedrock"
base_url = "{}"
region = "us-east-1"
[providers.anthropic]
kind = "anthropic"
base_url = "{}"
[models."anthropic/claude-sonnet-4"]
endpoints = [
  {{ provider = "vertex", model = "claude-sonnet-4@20250514" }},
  {{ provider = "bedrock", model = "anthropic.claude-sonnet-4-20250514-v1:0" }},
  {{ provider = "anthropic", model = "claude-sonnet-4-20250514" }},
]
"#,
        vertex.addr(),
        bedrock.base_url(),
        anthropic.base_url()
    );
    let gateway = start_gateway(&config);
    let mut client = Client::connect(gateway.local_addr());

    for (provider, mock) in [("vertex", &vertex), ("bedrock", &bedrock), ("anthropic", &anthropic)] {
        let body = serde_json::json!({
            "model": "anthropic/claude-sonnet-4",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": true,
            "providerOptions": {"gateway": {"order": [provider]}},
        });
        let response = client.post("/v1/chat/completions", &[], &serde_json::to_vec(&body).unwrap());
        assert_eq!(response.status, 200, "{provider}: {}", response.text());
        assert_eq!(response.header("x-corelay-provider"), Some(provider));
        let (chunks, done) = response.sse_data();
        assert!(done, "{provider}: {}", response.text());
        let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert!(!text.is_empty(), "{provider} streamed text");
        assert_eq!(mock.requests().len(), 1, "{provider} was asked once");
    }
}
