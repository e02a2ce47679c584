//! End to end: hostile clients and broken providers against the gateway on port 0 (issue #15). Each
//! test names the defect it guards against; each failed (or aborted the process) before its fix.

mod common;

use common::{Client, chat_body, config_text, start_gateway};
use loadtest::{Fault, MockConfig, MockProvider, Reply};

const MODEL: &str = "acme/chat-small";

fn mock(config: MockConfig) -> MockProvider {
    MockProvider::start(config).expect("mock starts")
}

/// `{"model": ..., "x": [[[...]]]}` with `depth` brackets: valid JSON, nested far past any limit.
fn deeply_nested_body(depth: usize) -> Vec<u8> {
    let mut body = format!("{{\"model\":\"{MODEL}\",\"stream\":false,\"messages\":[],\"x\":").into_bytes();
    body.extend(std::iter::repeat_n(b'[', depth));
    body.extend(std::iter::repeat_n(b']', depth));
    body.push(b'}');
    body
}

#[test]
fn deeply_nested_request_bodies_get_a_400_on_every_door_and_the_process_lives() {
    let provider = mock(MockConfig::default());
    let gateway = start_gateway(&config_text(&provider.base_url(), "max_body_bytes = 4194304", ""));
    let doors = [
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/responses",
        "/v1/embeddings",
        "/v4/ai/language-model",
        "/v1/ai/embedding-model",
    ];
    for depth in [200, 20_000, 1_000_000] {
        let body = deeply_nested_body(depth);
        for door in doors {
            let headers = [("ai-language-model-id", MODEL), ("ai-model-id", MODEL)];
            let response = Client::connect(gateway.local_addr()).post(door, &headers, &body);
            assert_eq!(response.status, 400, "{door} at depth {depth}: {}", response.text());
            assert!(response.text().contains("nested deeper than 128"), "{door}: {}", response.text());
        }
    }
    assert!(provider.requests().is_empty(), "nothing reached the provider");
    let fine = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, false));
    assert_eq!(fine.status, 200, "the worker is still serving");
}

#[test]
fn a_deeply_nested_first_stream_event_fails_over_and_the_process_lives() {
    let mut event = b"data: {\"id\":\"x\",\"choices\":".to_vec();
    event.extend(std::iter::repeat_n(b'[', 100_000));
    event.extend(std::iter::repeat_n(b']', 100_000));
    event.extend_from_slice(b"}\n\n");
    let broken = mock(MockConfig { reply: Reply::Sse(event), ..MockConfig::default() });
    let healthy = mock(MockConfig::default());
    let extra = format!(
        "[providers.backup]\nkind = \"openai\"\nbase_url = \"{}\"\n\n[models.\"acme/two\"]\nendpoints = [{{ provider = \
         \"mock\", model = \"gpt-4o-mini\" }}, {{ provider = \"backup\", model = \"gpt-4o-mini\" }}]\n",
        healthy.base_url()
    );
    let gateway = start_gateway(&config_text(&broken.base_url(), "", &extra));

    let response =
        Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body("acme/two", true));

    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-corelay-provider"), Some("backup"), "the broken first event was failed over");
    assert_eq!(broken.requests().len(), 1);
    let (events, done) = response.sse_data();
    assert!(done && !events.is_empty());
    let again = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, false));
    assert_eq!(again.status, 200, "the worker is still serving");
}

/// A recorded provider stream (see the fixtures' INDEX.md for where each came from).
fn recorded(path: &str) -> Vec<u8> {
    let full = format!("{}/../shared/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The recorded events of `sse` up to (not including) the first whose `event:` line names `stop_at`.
fn events_before(sse: &[u8], stop_at: &str) -> Vec<u8> {
    let text = String::from_utf8(sse.to_vec()).unwrap();
    let cut = text.find(&format!("event: {stop_at}")).unwrap_or_else(|| panic!("no {stop_at} event"));
    text.as_bytes()[..cut].to_vec()
}

fn one_provider(kind: &str, base_url: &str, model: &str, upstream_model: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\n[providers.p]\nkind = \"{kind}\"\nbase_url = \"{base_url}\"\n\
         [models.\"{model}\"]\nendpoints = [{{ provider = \"p\", model = \"{upstream_model}\" }}]\n"
    )
}

#[test]
fn an_openai_stream_cut_before_its_end_ends_with_an_error_not_a_clean_finish() {
    let provider = mock(MockConfig { fault: Fault::MissingFinalEvent, ..MockConfig::default() });
    let gateway = start_gateway(&config_text(&provider.base_url(), "", ""));
    let mut body: serde_json::Value = serde_json::from_slice(&chat_body(MODEL, true)).unwrap();
    body["stream_options"] = serde_json::json!({"include_usage": true});

    let response =
        Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &serde_json::to_vec(&body).unwrap());

    assert_eq!(response.status, 200);
    let (events, done) = response.sse_data();
    assert!(!done, "no [DONE]: {}", response.text());
    let last = events.last().expect("events");
    assert!(last["error"]["message"].as_str().unwrap().contains("before it was complete"), "{}", response.text());
    assert!(!response.text().contains("corelay usage"), "a cut stream gets no closing usage comment");
    assert_eq!(events.iter().filter(|e| e.get("error").is_some()).count(), 1, "exactly one error event");
}

#[test]
fn an_anthropic_stream_passed_through_and_cut_ends_with_an_anthropic_error_event() {
    let cut = events_before(&recorded("anthropic/anthropic-messages-stream-text.sse"), "message_stop");
    let provider = mock(MockConfig { reply: Reply::Sse(cut), ..MockConfig::default() });
    let gateway = start_gateway(&one_provider("anthropic", &provider.base_url(), "a/claude", "claude-sonnet-4-5"));
    let body = br#"{"model":"a/claude","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

    let response = Client::connect(gateway.local_addr()).post("/v1/messages", &[], body);

    assert_eq!(response.status, 200);
    let text = response.text();
    let tail = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(tail.starts_with("event: error\ndata: "), "Anthropic's error event, not OpenAI's: {tail}");
    let data: serde_json::Value = serde_json::from_str(tail.split_once("data: ").unwrap().1).unwrap();
    assert_eq!(data["type"], "error");
    assert!(data["error"]["message"].as_str().unwrap().contains("before it was complete"), "{data}");
    assert!(text.contains("content_block_delta"), "the content before the cut was relayed");
}

#[test]
fn message_start_then_overloaded_error_fails_over_to_the_next_endpoint() {
    let recorded_stream = recorded("anthropic/anthropic-messages-stream-overloaded-error.RECONSTRUCTED.sse");
    let mut early_error = events_before(&recorded_stream, "content_block_start");
    early_error.extend_from_slice(b"event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n");
    let overloaded = mock(MockConfig { reply: Reply::Sse(early_error), ..MockConfig::default() });
    let healthy = mock(MockConfig {
        reply: Reply::Sse(recorded("anthropic/anthropic-messages-stream-text.sse")),
        ..MockConfig::default()
    });
    let config = format!(
        "{}[providers.q]\nkind = \"anthropic\"\nbase_url = \"{}\"\n",
        one_provider("anthropic", &overloaded.base_url(), "a/claude", "claude-sonnet-4-5"),
        healthy.base_url()
    )
    .replace(
        "endpoints = [{ provider = \"p\", model = \"claude-sonnet-4-5\" }]",
        "endpoints = [{ provider = \"p\", model = \"claude-sonnet-4-5\" }, { provider = \"q\", model = \"claude-sonnet-4-5\" }]",
    );
    let gateway = start_gateway(&config);
    let body = br#"{"model":"a/claude","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

    let response = Client::connect(gateway.local_addr()).post("/v1/messages", &[], body);

    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-corelay-provider"), Some("q"), "{}", response.text());
    assert_eq!(response.header("x-corelay-attempts"), Some("2"));
    assert!(!response.text().contains("overloaded_error"));
    assert!(response.text().contains("event: message_stop"));
    assert_eq!(overloaded.requests().len(), 1);
}

#[test]
fn a_responses_stream_passed_through_and_cut_ends_with_a_responses_error_event() {
    let cut = events_before(&recorded("openai/responses/openai-responses-stream-text.sse"), "response.completed");
    let data_events =
        String::from_utf8_lossy(&cut).matches("\ndata: ").count() + usize::from(cut.starts_with(b"data: "));
    let provider = mock(MockConfig { reply: Reply::Sse(cut), ..MockConfig::default() });
    let gateway = start_gateway(&one_provider("openai_responses", &provider.base_url(), "o/pro", "o3-pro"));
    let body = br#"{"model":"o/pro","stream":true,"input":"hi"}"#;

    let response = Client::connect(gateway.local_addr()).post("/v1/responses", &[], body);

    assert_eq!(response.status, 200);
    let text = response.text();
    let tail = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(tail.starts_with("event: error\ndata: "), "{tail}");
    let data: serde_json::Value = serde_json::from_str(tail.split_once("data: ").unwrap().1).unwrap();
    assert_eq!(data["type"], "error");
    assert_eq!(data["sequence_number"], data_events as u64, "numbering continues the provider's");
    assert!(data["message"].as_str().unwrap().contains("before it was complete"));
}

/// A provider written by hand for answers the mock cannot give: accepts one connection, reads one
/// request (head and `content-length` body), writes `answer` in a single write and closes.
fn raw_provider(answer: Vec<u8>) -> (String, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        socket.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let mut request = Vec::new();
        let mut chunk = [0u8; 4096];
        for _ in 0..1000 {
            let n = socket.read(&mut chunk).unwrap_or(0);
            request.extend_from_slice(&chunk[..n]);
            if n == 0 || request_is_complete(&request) {
                break;
            }
        }
        socket.write_all(&answer).unwrap();
        request
    });
    (url, handle)
}

fn request_is_complete(request: &[u8]) -> bool {
    let text = String::from_utf8_lossy(request);
    let Some(head_end) = text.find("\r\n\r\n") else { return false };
    let length = text[..head_end]
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    request.len() >= head_end + 4 + length
}

#[test]
fn a_100_continue_and_the_final_head_in_one_read_are_both_parsed_at_once() {
    let body = br#"{"id":"c","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;
    let mut answer =
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: application/json\r\n"
            .to_vec();
    answer.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    answer.extend_from_slice(body);
    let (url, provider) = raw_provider(answer);
    // Before the fix the gateway waited for the first-byte timeout, then answered 504.
    let gateway = start_gateway(&config_text(&url, "", "[pool]\nfirst_byte_timeout_ms = 5000\n"));
    let started = std::time::Instant::now();

    let response = Client::connect(gateway.local_addr()).post("/v1/chat/completions", &[], &chat_body(MODEL, false));

    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["choices"][0]["message"]["content"], "hi");
    assert!(started.elapsed() < std::time::Duration::from_secs(4), "answered without waiting for a timeout");
    drop(gateway);
    let seen = provider.join().unwrap();
    assert!(
        String::from_utf8_lossy(&seen).starts_with("POST /chat/completions"),
        "{:?}",
        String::from_utf8_lossy(&seen)
    );
}
