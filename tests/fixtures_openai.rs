//! The recorded OpenAI streams and responses, replayed by the mock through the gateway, must come out
//! byte for byte as recorded except for the `model` value.

mod common;

use std::path::PathBuf;

use common::{Client, chat_body, config_text, start_gateway};
use loadtest::{MockConfig, MockProvider, Reply};

const MODEL: &str = "acme/chat-small";

fn fixture_dir() -> PathBuf {
    PathBuf::from(corelay::fixture_path!("openai/chat"))
}

fn fixtures(extension: &str) -> Vec<(String, Vec<u8>)> {
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(fixture_dir())
        .expect("shared fixtures present")
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(extension) && !p.to_string_lossy().ends_with(".meta.json"))
        .filter(|p| !p.to_string_lossy().ends_with(".request.json"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    found.sort();
    found
}

/// The expected client bytes: every `"model":"<value>"` (the recorded spelling, no spaces) gets the
/// gateway id. Written independently of the gateway's scanner on purpose.
fn expected(recorded: &[u8]) -> (Vec<u8>, usize) {
    let text = String::from_utf8(recorded.to_vec()).unwrap();
    let mut out = String::new();
    let mut rest = text.as_str();
    let mut count = 0;
    while let Some(at) = rest.find("\"model\":\"") {
        let value_start = at + "\"model\":\"".len();
        let value_end = value_start + rest[value_start..].find('"').unwrap();
        out.push_str(&rest[..value_start]);
        out.push_str(MODEL);
        rest = &rest[value_end..];
        count += 1;
    }
    out.push_str(rest);
    (out.into_bytes(), count)
}

#[test]
fn recorded_streams_come_out_identical_but_for_the_model() {
    let streams = fixtures(".sse");
    assert!(streams.len() >= 8, "expected the recorded OpenAI chat streams, found {}", streams.len());
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let mut client = Client::connect(gateway.local_addr());
    for (name, recorded) in &streams {
        let (want, rewrites) = expected(recorded);
        assert!(rewrites > 0, "{name}: the fixture has model values to rewrite");
        // One piece per event, then awkward 7-byte pieces that split lines, keys and values.
        for piece_bytes in [0, 7] {
            provider.set_config(MockConfig {
                reply: Reply::Sse(recorded.clone()),
                replay_piece_bytes: piece_bytes,
                ..MockConfig::default()
            });
            let response = client.post("/v1/chat/completions", &[], &chat_body(MODEL, true));
            assert_eq!(response.status, 200, "{name}");
            assert!(response.body == want, "{name} (pieces of {piece_bytes}) differs:\n{}", response.text());
        }
    }
    assert_eq!(provider.connections_accepted(), 1, "the whole replay ran over one pooled connection");
}

#[test]
fn recorded_json_responses_come_out_identical_but_for_the_model() {
    let responses = fixtures(".response.json");
    assert!(responses.len() >= 3, "expected recorded chat responses, found {}", responses.len());
    let provider = MockProvider::start(MockConfig::default()).unwrap();
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let mut client = Client::connect(gateway.local_addr());
    for (name, recorded) in &responses {
        provider.set_config(MockConfig { reply: Reply::Json(recorded.clone()), ..MockConfig::default() });
        let response = client.post("/v1/chat/completions", &[], &chat_body(MODEL, false));
        assert_eq!(response.status, 200, "{name}");
        let mut got: serde_json::Value = response.json();
        let mut want: serde_json::Value = serde_json::from_slice(recorded).unwrap();
        assert_eq!(got["model"], MODEL, "{name}");
        got["model"] = serde_json::Value::Null;
        want["model"] = serde_json::Value::Null;
        assert_eq!(got, want, "{name}: nothing but the model changes");
    }
}
