//! End-to-end tests of the mock provider through real sockets with a blocking client: reply
//! shapes, streaming, delays, the request log, keep-alive, every fault, replay, framing, TLS and
//! shutdown. They test the mock only; the gateway's own tests use the mock as their upstream.

mod client;
mod tls;

use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use client::{Client, chat, connect, data_lines, request};
use loadtest::{Fault, Framing, MockConfig, MockOptions, MockProvider, Reply, refused_addr};
use serde_json::Value;

const STREAM: &str = r#"{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
const STREAM_USAGE: &str = r#"{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;
const PLAIN: &str = r#"{"model":"gpt-test","messages":[{"role":"user","content":"hello there"}]}"#;
const WAIT: Duration = Duration::from_secs(5);

fn start(config: MockConfig) -> MockProvider {
    MockProvider::start(config).expect("start the mock")
}

fn client(mock: &MockProvider) -> Client<TcpStream> {
    Client::new(connect(mock.addr()))
}

fn with_fault(fault: Fault) -> MockConfig {
    MockConfig { fault, ..MockConfig::default() }
}

fn parse_json_lines(lines: &[String]) -> Vec<Value> {
    lines.iter().map(|l| serde_json::from_str(l).expect("JSON event")).collect()
}

#[test]
fn non_streaming_reply_has_openai_shape() {
    let mock = start(MockConfig { content_bytes: 100, ..MockConfig::default() });
    let response = client(&mock).exchange(&chat(PLAIN));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert!(response.header("x-request-id").is_some_and(|v| !v.is_empty()));
    assert!(response.header("openai-processing-ms").is_some());
    let v = response.json();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().is_some_and(|id| id.starts_with("chatcmpl-")));
    assert!(v["created"].is_u64());
    assert_eq!(v["model"], "gpt-test");
    let choice = &v["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"].as_str().unwrap().len(), 100);
    assert_eq!(choice["message"]["refusal"], Value::Null);
    assert_eq!(choice["finish_reason"], "stop");
    let usage = &v["usage"];
    let sum = usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap();
    assert_eq!(usage["total_tokens"].as_u64(), Some(sum));
}

#[test]
fn response_model_overrides_the_echo() {
    let mock = start(MockConfig { response_model: Some("gpt-4o-2024-08-06".into()), ..MockConfig::default() });
    let v = client(&mock).exchange(&chat(PLAIN)).json();
    assert_eq!(v["model"], "gpt-4o-2024-08-06");
}

#[test]
fn stream_has_role_content_finish_and_done_events() {
    let mock = start(MockConfig { events: 4, ..MockConfig::default() });
    let response = client(&mock).exchange(&chat(STREAM));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/event-stream; charset=utf-8"));
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    let lines = response.data_lines();
    assert_eq!(lines.len(), 4 + 2 + 1);
    assert_eq!(lines.last().map(String::as_str), Some("[DONE]"));
    let events = parse_json_lines(&lines[..lines.len() - 1]);
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(events[0]["choices"][0]["delta"]["content"], "");
    for event in &events {
        assert_eq!(event["object"], "chat.completion.chunk");
        assert_eq!(event["id"], events[0]["id"]);
        assert_eq!(event["model"], "gpt-test");
        assert!(event.get("usage").is_none(), "no usage without include_usage");
    }
    for event in &events[1..5] {
        assert!(event["choices"][0]["delta"]["content"].as_str().is_some_and(|c| !c.is_empty()));
    }
    assert_eq!(events[5]["choices"][0]["finish_reason"], "stop");
    // Every event is its own SSE frame.
    let body = String::from_utf8(response.body).unwrap();
    assert_eq!(body.matches("\n\n").count(), 7);
}

#[test]
fn stream_with_include_usage_ends_with_a_usage_chunk() {
    let mock = start(MockConfig { events: 3, ..MockConfig::default() });
    let lines = client(&mock).exchange(&chat(STREAM_USAGE)).data_lines();
    assert_eq!(lines.len(), 3 + 3 + 1);
    assert_eq!(lines[6], "[DONE]");
    let events = parse_json_lines(&lines[..6]);
    assert_eq!(events[4]["choices"][0]["finish_reason"], "stop");
    assert_eq!(events[4]["usage"], Value::Null);
    assert_eq!(events[5]["choices"], Value::Array(Vec::new()));
    assert_eq!(events[5]["usage"]["completion_tokens"], 3);
    assert!(events[5]["usage"]["total_tokens"].as_u64().unwrap() > 3);
}

#[test]
fn first_event_delay_is_honoured() {
    let delay = Duration::from_millis(150);
    let mock = start(MockConfig { first_event_delay: delay, ..MockConfig::default() });
    let mut c = client(&mock);
    for body in [PLAIN, STREAM] {
        let started = Instant::now();
        let response = c.exchange(&chat(body));
        assert_eq!(response.status, 200);
        assert!(started.elapsed() >= delay, "{body}: answered before the delay");
    }
}

#[test]
fn request_log_records_requests_and_keep_alive_reuses_the_connection() {
    let mock = start(MockConfig::default());
    let mut first = client(&mock);
    let raw = request("POST", "/v1/chat/completions", PLAIN, &["X-Test-Header: One", "Authorization: Bearer sk-test"]);
    assert_eq!(first.exchange(&raw).status, 200);
    assert_eq!(first.exchange(&chat(STREAM)).status, 200);
    let mut second = client(&mock);
    assert_eq!(second.exchange(&request("GET", "/v1/models", "", &[])).status, 200);

    assert!(mock.wait_for_requests(3, WAIT));
    assert_eq!(mock.connections_accepted(), 2);
    let log = mock.requests();
    assert_eq!(log.len(), 3);
    assert_eq!((log[0].method.as_str(), log[0].path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(log[0].body, PLAIN.as_bytes());
    assert!(log[0].headers.contains(&("x-test-header".to_owned(), "One".to_owned())));
    assert_eq!(log[0].header("authorization"), Some("Bearer sk-test"));
    assert_eq!(log[1].body, STREAM.as_bytes());
    assert_eq!(log[0].connection_id, log[1].connection_id);
    assert_ne!(log[1].connection_id, log[2].connection_id);
    assert_eq!(log[2].method, "GET");
}

#[test]
fn wait_for_requests_times_out_without_requests() {
    let mock = start(MockConfig::default());
    assert!(!mock.wait_for_requests(1, Duration::from_millis(50)));
}

#[test]
fn chunked_request_body_is_decoded() {
    let mock = start(MockConfig::default());
    let mut c = client(&mock);
    let body = PLAIN.as_bytes();
    let mut raw = b"POST /v1/chat/completions HTTP/1.1\r\nhost: m\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for piece in body.chunks(10) {
        raw.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        raw.extend_from_slice(piece);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(c.exchange(&raw).status, 200);
    assert_eq!(mock.requests()[0].body, body);
}

#[test]
fn expect_continue_gets_an_interim_response() {
    let mock = start(MockConfig::default());
    let mut c = client(&mock);
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: m\r\nexpect: 100-continue\r\ncontent-length: {}\r\n\r\n",
        PLAIN.len()
    );
    c.send(head.as_bytes());
    assert_eq!(c.read_response().unwrap().status, 100);
    assert_eq!(c.exchange(PLAIN.as_bytes()).status, 200);
}

#[test]
fn models_unknown_routes_and_bad_json() {
    let mock = start(MockConfig::default());
    let mut c = client(&mock);
    let models = c.exchange(&request("GET", "/v1/models", "", &[])).json();
    assert_eq!(models["object"], "list");
    assert!(models["data"].as_array().is_some_and(|d| !d.is_empty()));

    let missing = c.exchange(&request("GET", "/v1/nothing", "", &[]));
    assert_eq!(missing.status, 404);
    let error = &missing.json()["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["param"], Value::Null);
    assert_eq!(error["code"], Value::Null);
    assert!(error["message"].is_string());

    let bad = c.exchange(&chat("{not json"));
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["type"], "invalid_request_error");
}

#[test]
fn any_prefix_before_chat_completions_is_accepted() {
    let mock = start(MockConfig::default());
    let raw = request("POST", "/openai/deployments/x/chat/completions?api-version=1", PLAIN, &[]);
    assert_eq!(client(&mock).exchange(&raw).status, 200);
}

#[test]
fn status_fault_sends_status_retry_after_and_envelope() {
    let mock = start(with_fault(Fault::Status { code: 429, retry_after_s: Some(7), body: None }));
    let mut c = client(&mock);
    let response = c.exchange(&chat(STREAM));
    assert_eq!(response.status, 429);
    assert_eq!(response.header("retry-after"), Some("7"));
    assert_eq!(response.header("content-type"), Some("application/json"));
    let error = &response.json()["error"];
    assert!(error["message"].is_string());
    assert_eq!(error["code"], "rate_limit_exceeded");

    mock.set_config(with_fault(Fault::Status { code: 503, retry_after_s: None, body: Some(b"overloaded".to_vec()) }));
    let response = c.exchange(&chat(PLAIN));
    assert_eq!((response.status, response.body.as_slice()), (503, &b"overloaded"[..]));
    assert_eq!(response.header("retry-after"), None);

    // The connection stays usable after an error status.
    mock.set_config(MockConfig::default());
    assert_eq!(c.exchange(&chat(PLAIN)).status, 200);
    assert_eq!(mock.connections_accepted(), 1);
}

#[test]
fn reset_before_headers_sends_no_bytes() {
    let mock = start(with_fault(Fault::ResetBeforeHeaders));
    let mut c = client(&mock);
    c.send(&chat(STREAM));
    let (bytes, ended) = c.read_until_end();
    assert!(bytes.is_empty(), "got {bytes:?}");
    assert!(matches!(ended, None | Some(ErrorKind::ConnectionReset)), "expected reset or EOF, got {ended:?}");
    assert_eq!(mock.requests().len(), 1, "the request was read first");
}

#[test]
fn close_before_headers_is_a_clean_eof() {
    let mock = start(with_fault(Fault::CloseBeforeHeaders));
    let mut c = client(&mock);
    c.send(&chat(PLAIN));
    let (bytes, ended) = c.read_until_end();
    assert!(bytes.is_empty());
    assert_eq!(ended, None);
}

#[test]
fn reset_after_events_cuts_the_stream() {
    let mock = start(MockConfig { events: 5, fault: Fault::ResetAfterEvents(2), ..MockConfig::default() });
    let mut c = client(&mock);
    c.send(&chat(STREAM));
    let (bytes, ended) = c.read_until_end();
    assert!(matches!(ended, None | Some(ErrorKind::ConnectionReset)), "expected reset or EOF, got {ended:?}");
    let lines = data_lines(&bytes);
    assert_eq!(lines.len(), 2, "{}", String::from_utf8_lossy(&bytes));
    assert!(!lines.iter().any(|l| l == "[DONE]"));
    assert!(!bytes.ends_with(b"0\r\n\r\n"), "no chunked terminator");
}

#[test]
fn stall_after_events_keeps_the_connection_open_until_drop() {
    let mock = start(MockConfig { fault: Fault::StallAfterEvents(3), ..MockConfig::default() });
    let stream = connect(mock.addr());
    stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut c = Client::new(stream);
    c.send(&chat(STREAM));
    let (bytes, ended) = c.read_until_end();
    assert!(
        matches!(ended, Some(ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "expected a read timeout, got {ended:?}"
    );
    assert_eq!(data_lines(&bytes).len(), 3);

    // Dropping the mock closes the stalled connection.
    c.stream.set_read_timeout(Some(client::READ_TIMEOUT)).unwrap();
    drop(mock);
    let (rest, ended) = c.read_until_end();
    assert!(rest.is_empty());
    assert!(matches!(ended, None | Some(ErrorKind::ConnectionReset)), "got {ended:?}");
}

#[test]
fn malformed_event_is_injected_and_the_stream_continues() {
    let mock = start(MockConfig { events: 3, fault: Fault::MalformedEventAfter(2), ..MockConfig::default() });
    let response = client(&mock).exchange(&chat(STREAM));
    let body = String::from_utf8(response.body).unwrap();
    assert!(body.contains("data: {not json\n\n"));
    let lines = data_lines(body.as_bytes());
    assert_eq!(lines.len(), 3 + 2 + 1 + 1);
    assert_eq!(lines[2], "{not json");
    assert_eq!(lines.last().map(String::as_str), Some("[DONE]"));
}

#[test]
fn missing_final_event_ends_the_body_without_done() {
    let mock = start(MockConfig { events: 3, fault: Fault::MissingFinalEvent, ..MockConfig::default() });
    let mut c = client(&mock);
    let response = c.exchange(&chat(STREAM_USAGE));
    let lines = response.data_lines();
    assert_eq!(lines.len(), 4);
    assert!(!lines.iter().any(|l| l == "[DONE]"));
    let events = parse_json_lines(&lines);
    assert!(events.iter().all(|e| e["choices"][0]["finish_reason"].is_null()));
    // The body ended cleanly, so the connection is reusable.
    assert_eq!(c.exchange(&chat(PLAIN)).status, 200);
}

/// A recorded-style SSE body with CRLF and LF events, a comment and non-ASCII text.
const REPLAY_SAMPLE: &[u8] = b"data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n: keep-alive comment\n\ndata: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"21\xc2\xb0C\"}}]}\r\n\r\ndata: [DONE]\n\n";

/// A recorded OpenAI chat stream from the workspace's fixture tree (`tests/fixtures` at the root).
fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../tests/fixtures/openai/chat/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn sse_replay_is_verbatim_in_events_and_in_pieces() {
    let samples = [REPLAY_SAMPLE.to_vec(), fixture("openai-chat-stream-usage.sse")];
    let mock = start(MockConfig::default());
    let mut c = client(&mock);
    for sample in &samples {
        for piece_bytes in [0, 7] {
            mock.set_config(MockConfig {
                reply: Reply::Sse(sample.clone()),
                replay_piece_bytes: piece_bytes,
                ..MockConfig::default()
            });
            let response = c.exchange(&chat(STREAM));
            assert_eq!(response.header("content-type"), Some("text/event-stream; charset=utf-8"));
            assert!(response.body == *sample, "replay with piece size {piece_bytes} differs");
        }
    }
}

#[test]
fn json_replay_is_verbatim() {
    let raw = br#"{"id":"x","object":"chat.completion","choices":[]}"#.to_vec();
    let mock = start(MockConfig { reply: Reply::Json(raw.clone()), ..MockConfig::default() });
    assert_eq!(client(&mock).exchange(&chat(PLAIN)).body, raw);
}

#[test]
fn close_after_response_closes_each_connection() {
    let mock = start(MockConfig { close_after_response: true, ..MockConfig::default() });
    for expected_connections in 1..=2 {
        let mut c = client(&mock);
        let response = c.exchange(&chat(PLAIN));
        assert_eq!(response.header("connection"), Some("close"));
        let (rest, ended) = c.read_until_end();
        assert!(rest.is_empty());
        assert_eq!(ended, None, "clean close expected");
        assert_eq!(mock.connections_accepted(), expected_connections);
    }
}

#[test]
fn framing_can_be_content_length_or_close_delimited() {
    let mock = start(MockConfig { framing: Framing::ContentLength, events: 2, ..MockConfig::default() });
    let mut c = client(&mock);
    let response = c.exchange(&chat(STREAM));
    assert_eq!(response.header("content-length"), Some(response.body.len().to_string().as_str()));
    assert_eq!(response.data_lines().len(), 5);

    mock.set_config(MockConfig { framing: Framing::CloseDelimited, ..MockConfig::default() });
    let response = c.exchange(&chat(PLAIN));
    assert_eq!(response.header("content-length"), None);
    assert_eq!(response.header("transfer-encoding"), None);
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(response.json()["object"], "chat.completion");

    mock.set_config(MockConfig { framing: Framing::Chunked, ..MockConfig::default() });
    let response = client(&mock).exchange(&chat(PLAIN));
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(response.json()["object"], "chat.completion");
}

#[test]
fn set_config_applies_to_the_next_request() {
    let mock = start(MockConfig { events: 1, ..MockConfig::default() });
    let mut c = client(&mock);
    assert_eq!(c.exchange(&chat(STREAM)).data_lines().len(), 4);
    mock.set_config(MockConfig { events: 6, ..MockConfig::default() });
    assert_eq!(c.exchange(&chat(STREAM)).data_lines().len(), 9);
}

#[test]
fn several_workers_share_the_port() {
    let options = MockOptions { workers: 2, ..MockOptions::default() };
    let mock = MockProvider::start_with(MockConfig::default(), options).unwrap();
    for _ in 0..6 {
        assert_eq!(client(&mock).exchange(&chat(PLAIN)).status, 200);
    }
    assert!(mock.wait_for_requests(6, WAIT));
    let mut ids: Vec<u64> = mock.requests().iter().map(|r| r.connection_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 6);
}

#[test]
fn recording_can_be_turned_off() {
    let options = MockOptions { record_requests: false, ..MockOptions::default() };
    let mock = MockProvider::start_with(MockConfig::default(), options).unwrap();
    assert_eq!(client(&mock).exchange(&chat(PLAIN)).status, 200);
    assert!(mock.requests().is_empty());
    assert_eq!(mock.connections_accepted(), 1);
}

#[test]
fn drop_closes_idle_connections_and_the_listener() {
    let mock = start(MockConfig::default());
    let addr = mock.addr();
    assert!(mock.base_url().starts_with("http://127.0.0.1:") && mock.base_url().ends_with("/v1"));
    let mut c = client(&mock);
    assert_eq!(c.exchange(&chat(PLAIN)).status, 200);
    drop(mock);
    let (rest, ended) = c.read_until_end();
    assert!(rest.is_empty());
    assert!(matches!(ended, None | Some(ErrorKind::ConnectionReset)), "got {ended:?}");
    let refused = TcpStream::connect(addr).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn refused_addr_refuses() {
    let err = TcpStream::connect(refused_addr()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn zero_workers_is_an_error() {
    let options = MockOptions { workers: 0, ..MockOptions::default() };
    assert!(MockProvider::start_with(MockConfig::default(), options).is_err());
}

#[test]
fn embeddings_come_back_as_an_openai_list_one_vector_per_input() {
    let mock = start(MockConfig::default());
    let mut c = client(&mock);
    let body = r#"{"model":"text-embedding-3-small","input":["hello","world"],"encoding_format":"float"}"#;
    let response = c.exchange(&request("POST", "/v1/embeddings", body, &[]));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let json = response.json();
    assert_eq!((json["object"].as_str(), json["model"].as_str()), (Some("list"), Some("text-embedding-3-small")));
    let vectors: Vec<&Vec<serde_json::Value>> =
        json["data"].as_array().unwrap().iter().map(|d| d["embedding"].as_array().unwrap()).collect();
    assert_eq!(vectors.len(), 2);
    assert!(vectors.iter().all(|v| v.len() == 8 && v.iter().all(serde_json::Value::is_f64)));
    assert_ne!(vectors[0], vectors[1]);
    // The same connection still serves chat: embeddings did not take over the route.
    assert_eq!(c.exchange(&chat(PLAIN)).json()["object"], "chat.completion");
}
