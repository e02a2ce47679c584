//! Golden tests of the AI SDK gateway front door (`api::ai_sdk`) against the real `ai@7` /
//! `@ai-sdk/gateway@4` traffic captured in `tests/fixtures/ai-sdk-captures`. It owns no
//! translation code; it checks that the front door reads what the SDK sends and writes what the
//! SDK was seen to accept.
//!
//! - Requests: every captured language-model request body parses (with the model and streaming flag
//!   from its captured headers); the full-featured, file/tool and routing ones field by field.
//! - Streams: internal events equivalent to a captured stream encode to the captured parts. What
//!   differs, and why, is exactly what [`normalize`] takes out of both sides: `finishReason.raw` (the
//!   provider's own reason is not carried internally, so Corelay writes its own name), `usage.raw` and `providerMetadata.anthropic`
//!   (provider-native extras the internal model does not keep).
//! - The mid-stream error capture: the same part sequence; the error part's `type`/`statusCode` are
//!   Corelay's classification (the mock's `overloaded_error`/529 has no SDK class of its own).
//! - Generate results, error envelopes and statuses, and the `/config` entry shape likewise.

use corelay::api::ai_sdk::{
    self, GatewayOptions, SpecVersion, StreamEncoder, config_json, encode_response_with, error_body, error_status,
    gateway_error_body, gateway_options, model_not_found_body, parse_request,
};
use corelay::chat::{
    ChatResponse, FinishReason, Media, Message, Part, ProviderError, ProviderErrorKind, Reasoning, StreamEvent,
    ToolCall, ToolChoice, Usage,
};
use corelay::error::{ErrorKind, GatewayError};
use serde_json::{Value, json};

mod split_check;

const CAPTURES: &str = corelay::fixture_path!("ai-sdk-captures/");

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{CAPTURES}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A captured request: its raw body, the model-id header and the streaming header.
struct CapturedRequest {
    body: String,
    model: String,
    stream: bool,
}

fn captured_request(name: &str) -> CapturedRequest {
    let capture: Value = serde_json::from_str(&read(name)).unwrap();
    let header = |wanted: &str| {
        capture["rawHeaders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|pair| pair[0] == wanted)
            .map(|pair| pair[1].as_str().unwrap().to_owned())
    };
    CapturedRequest {
        body: capture["rawBody"].as_str().unwrap().to_owned(),
        model: header("ai-language-model-id").unwrap(),
        stream: header("ai-language-model-streaming").as_deref() == Some("true"),
    }
}

fn parse_captured(name: &str) -> corelay::chat::ChatRequest {
    let request = captured_request(name);
    parse_request(request.body.as_bytes(), &request.model, request.stream).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A captured response: status and body.
fn captured_response(name: &str) -> (u16, String) {
    // The captures keep HTTP's CRLF head; the SSE body inside uses bare LF.
    let text = read(name);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// The `data:` payloads of an SSE body.
fn sse_parts(body: &str) -> Vec<Value> {
    body.lines().filter_map(|line| line.strip_prefix("data: ")).map(|d| serde_json::from_str(d).unwrap()).collect()
}

/// Takes out of a captured part or result what the internal model does not carry (module doc).
fn normalize(mut value: Value) -> Value {
    if let Some(reason) = value.get_mut("finishReason").and_then(Value::as_object_mut) {
        reason.remove("raw");
    }
    if let Some(usage) = value.get_mut("usage").and_then(Value::as_object_mut) {
        usage.remove("raw");
    }
    if let Some(metadata) = value.get_mut("providerMetadata").and_then(Value::as_object_mut) {
        metadata.remove("anthropic");
    }
    value
}

fn encode(events: &[StreamEvent], encoder: &mut StreamEncoder) -> Vec<Value> {
    let mut out = Vec::new();
    for event in events {
        encoder.encode(event, &mut out);
    }
    sse_parts(std::str::from_utf8(&out).unwrap())
}

fn usage(input: u64, output: u64) -> Usage {
    Usage { prompt_tokens: input, completion_tokens: output, ..Usage::default() }
}

#[test]
fn every_captured_request_parses() {
    let mut seen = 0;
    for entry in std::fs::read_dir(CAPTURES).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.ends_with("-language-model-request.json") {
            continue;
        }
        let request = parse_captured(&name);
        assert!(!request.messages.is_empty(), "{name}");
        assert_eq!(request.tool_choice, Some(ToolChoice::Auto), "{name}: the SDK always sends auto");
        gateway_options(captured_request(&name).body.as_bytes()).unwrap();
        seen += 1;
    }
    assert_eq!(seen, 13);
}

#[test]
fn full_featured_request() {
    let request = parse_captured("extra-07-post-v4-ai-language-model-request.json");
    assert_eq!(request.model, "anthropic/claude-sonnet-4");
    assert!(!request.stream);
    assert_eq!(
        request.messages,
        vec![
            Message::System { content: vec![Part::Text("You are terse.".into())], developer: false },
            Message::User { content: vec![Part::Text("weather in Paris?".into())] },
        ]
    );
    assert_eq!(request.tools.len(), 1);
    let tool = &request.tools[0];
    assert_eq!((tool.name.as_str(), tool.description.as_deref()), ("weather", Some("Get weather")));
    assert_eq!(
        tool.parameters.as_ref().unwrap().get(),
        r#"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"#
    );
    assert_eq!(request.max_tokens, Some(256));
    assert_eq!(request.temperature, Some(0.2));
    assert_eq!(request.stop, vec!["END"]);
    assert_eq!(request.seed, Some(7));
    assert_eq!(request.reasoning, Some(Reasoning::Budget(1024)));
    assert_eq!(request.user.as_deref(), Some("user-123"));
    let options = gateway_options(captured_request("extra-07-post-v4-ai-language-model-request.json").body.as_bytes());
    assert_eq!(
        options.unwrap(),
        GatewayOptions {
            order: vec![],
            only: vec!["anthropic".into(), "bedrock".into()],
            models: vec!["openai/gpt-5".into(), "google/gemini-2.5-pro".into()],
            user: Some("user-123".into()),
            tags: vec!["feature:chat".into()],
            sort: Some("ttft".into()),
        }
    );
}

#[test]
fn files_tool_calls_and_results() {
    let request = parse_captured("filepart-01-post-v4-ai-language-model-request.json");
    assert_eq!(
        request.messages,
        vec![
            Message::User {
                content: vec![
                    Part::Text("describe".into()),
                    Part::Image(Media::Base64 {
                        media_type: "image/png".into(),
                        data: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
                            .into(),
                    }),
                    Part::File { media: Media::Url("https://example.com/a.pdf".into()), filename: None },
                ]
            },
            Message::Assistant {
                content: vec![],
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "weather".into(),
                    arguments: r#"{"city":"Paris"}"#.into()
                }],
            },
            Message::Tool { tool_call_id: "call_1".into(), content: vec![Part::Text(r#"{"tempC":21}"#.into())] },
        ]
    );
}

#[test]
fn streaming_request_and_routing_order() {
    let request = parse_captured("seed-02-post-v4-ai-language-model-request.json");
    assert!(request.stream);
    let body = captured_request("seed-02-post-v4-ai-language-model-request.json").body;
    assert_eq!(gateway_options(body.as_bytes()).unwrap().order, vec!["vertex", "bedrock", "anthropic"]);
}

/// The internal events of a captured text stream: its text deltas, then usage and finish.
fn text_events(captured: &[Value], input: u64, output: u64) -> Vec<StreamEvent> {
    let meta = &captured[1];
    let mut events = vec![StreamEvent::Start {
        id: meta["id"].as_str().unwrap().into(),
        model: meta["modelId"].as_str().unwrap().into(),
    }];
    for part in captured.iter().filter(|p| p["type"] == "text-delta") {
        events.push(StreamEvent::TextDelta(part["delta"].as_str().unwrap().into()));
    }
    events.push(StreamEvent::Usage(usage(input, output)));
    events
}

/// 2026-11-24T18:57:22.444Z, the seed stream's `response-metadata.timestamp`.
const SEED_STREAM_MILLIS: u64 = 1_795_546_642_444;

#[test]
fn seed_stream_matches_capture() {
    let (status, body) = captured_response("seed-02-post-v4-ai-language-model-response.sse.http");
    assert_eq!(status, 200);
    let captured = sse_parts(&body);
    let finish = captured.last().unwrap();
    let mut encoder = StreamEncoder::new("anthropic/claude-sonnet-4").with_timestamp_millis(SEED_STREAM_MILLIS);
    encoder.set_gateway_metadata(finish["providerMetadata"]["gateway"].clone());
    let mut events = text_events(&captured, 12, 21);
    events.push(StreamEvent::Finish(FinishReason::Stop));
    let encoded = encode(&events, &mut encoder);
    assert_eq!(encoded.last().unwrap()["finishReason"]["raw"], "stop");
    let encoded: Vec<Value> = encoded.into_iter().map(normalize).collect();
    let expected: Vec<Value> = captured.into_iter().map(normalize).collect();
    assert_eq!(encoded, expected);
}

#[test]
fn midstream_error_keeps_the_captured_sequence() {
    let (_, body) = captured_response("extra-14-post-v4-ai-language-model-response.sse.http");
    let captured = sse_parts(&body);
    let mut events = text_events(&captured, 12, 6);
    events.push(StreamEvent::Error(ProviderError::new(ProviderErrorKind::Overloaded, "Upstream provider overloaded")));
    let encoded = encode(&events, &mut StreamEncoder::new("mock/midstream-error"));
    let types = |parts: &[Value]| parts.iter().map(|p| p["type"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(types(&encoded), types(&captured));
    let error = &encoded[encoded.len() - 3]["error"];
    assert_eq!(error["message"], "Upstream provider overloaded");
    assert_eq!(error["isRetryable"], true);
    assert!(error["statusCode"].as_u64().unwrap() >= 500);
    let finish = encoded.last().unwrap();
    assert_eq!(finish["finishReason"]["unified"], "error");
    assert_eq!(finish["usage"], normalize(captured.last().unwrap().clone())["usage"]);
}

#[test]
fn generate_result_matches_capture() {
    for name in [
        "seed-01-post-v4-ai-language-model-response.http",
        "extra-07-post-v4-ai-language-model-response.http",
        "filepart-01-post-v4-ai-language-model-response.http",
    ] {
        let (status, body) = captured_response(name);
        assert_eq!(status, 200);
        let mut captured: Value = serde_json::from_str(&body).unwrap();
        // This module reads no clock; the SDK drops `response` on non-streaming calls anyway.
        captured["response"].as_object_mut().unwrap().remove("timestamp");
        let response = ChatResponse {
            id: captured["response"]["id"].as_str().unwrap().into(),
            model: captured["response"]["modelId"].as_str().unwrap().into(),
            content: vec![Part::Text(captured["content"][0]["text"].as_str().unwrap().into())],
            tool_calls: vec![],
            finish_reason: FinishReason::Stop,
            usage: usage(14, 52),
        };
        let gateway = captured["providerMetadata"]["gateway"].clone();
        let encoded = encode_response_with(&response, "anthropic/claude-sonnet-4", SpecVersion::V4, Some(&gateway));
        let encoded: Value = serde_json::from_slice(&encoded).unwrap();
        assert_eq!(normalize(encoded), normalize(captured), "{name}");
    }
}

/// The captured status and `error.type` of an error response.
fn captured_error(name: &str) -> (u16, Value) {
    let (status, body) = captured_response(name);
    (status, serde_json::from_str::<Value>(&body).unwrap()["error"].clone())
}

fn error_of(body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(body).unwrap()["error"].clone()
}

#[test]
fn errors_match_captured_types_and_statuses() {
    let (status, captured) = captured_error("extra-08-post-v4-ai-language-model-response.http");
    let ours = error_of(&model_not_found_body("mock/404", "Mock model_not_found for mock/404"));
    assert_eq!((status, &ours["type"], &ours["param"]), (404, &captured["type"], &captured["param"]));
    assert_eq!(GatewayError::new(ErrorKind::ModelNotFound, "x").status(), 404);

    let (status, captured) = captured_error("extra-09-post-v4-ai-language-model-response.http");
    let key = GatewayError::new(ErrorKind::Unauthorized, "bad key");
    assert_eq!((key.status(), error_of(&gateway_error_body(&key))["type"].clone()), (status, captured["type"].clone()));

    for (name, kind) in [
        ("extra-11-post-v4-ai-language-model-response.http", ProviderErrorKind::RateLimited),
        ("extra-13-post-v4-ai-language-model-response.http", ProviderErrorKind::Server),
    ] {
        let (status, captured) = captured_error(name);
        let error = ProviderError::new(kind, captured["message"].as_str().unwrap());
        let ours = error_of(&error_body(&error));
        assert_eq!(error_status(&error), status, "{name}");
        assert_eq!(ours["type"], captured["type"], "{name}");
        assert_eq!(ours["message"], captured["message"], "{name}");
    }
}

#[test]
fn config_matches_captured_entry_shape() {
    let (_, body) = captured_response("extra-01-get-v4-ai-config-response.http");
    let captured: Value = serde_json::from_str(&body).unwrap();
    let mut entry = captured["models"][0].clone();
    // Description and prices are optional and Corelay's configuration has none to show.
    entry.as_object_mut().unwrap().remove("description");
    entry.as_object_mut().unwrap().remove("pricing");
    let ours: Value =
        serde_json::from_slice(&config_json(&[("anthropic/claude-sonnet-4", "Claude Sonnet 4", "anthropic")])).unwrap();
    assert_eq!(ours, json!({ "models": [entry] }));
    let v3: Value = serde_json::from_slice(&ai_sdk::config_json_for(SpecVersion::V3, &[("a/b", "B", "a")])).unwrap();
    assert_eq!(v3["models"][0]["specification"]["specificationVersion"], "v3");
}

#[test]
fn truncated_and_mangled_bodies_never_panic() {
    for name in
        ["extra-07-post-v4-ai-language-model-request.json", "filepart-01-post-v4-ai-language-model-request.json"]
    {
        let body = captured_request(name).body.into_bytes();
        for end in 0..body.len() {
            let _ = parse_request(&body[..end], "m", false);
            let _ = gateway_options(&body[..end]);
        }
        let mut flipped = body.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0x20;
            let _ = parse_request(&flipped, "m", false);
            flipped[i] ^= 0x20;
        }
    }
}

#[test]
fn embedding_call_and_answer_match_the_capture() {
    let capture: Value = serde_json::from_str(&read("extra-05-post-v4-ai-embedding-model-request.json")).unwrap();
    let body = capture["rawBody"].as_str().unwrap();
    let request: Value =
        serde_json::from_slice(&ai_sdk::embeddings_request(body.as_bytes(), "openai/text-embedding-3-small").unwrap())
            .unwrap();
    assert_eq!(request["input"], json!(["hello", "world"]));
    assert_eq!(request["model"], "openai/text-embedding-3-small");
    assert_eq!(request["providerOptions"], json!({"gateway": {"tags": ["emb"]}}));

    let (status, captured) = captured_response("extra-05-post-v4-ai-embedding-model-response.http");
    assert_eq!(status, 200);
    let captured: Value = serde_json::from_str(&captured).unwrap();
    let openai = br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]},{"object":"embedding","index":1,"embedding":[0.2,0.2,0.3]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
    let metadata = captured["providerMetadata"]["gateway"].clone();
    let ours: Value = serde_json::from_slice(&ai_sdk::embeddings_response(openai, &metadata).unwrap()).unwrap();
    assert_eq!(ours, captured);
}

type Relay = (corelay::providers::openai_chat::StreamTranslator, StreamEncoder);

fn feed((translator, encoder): &mut Relay, piece: &[u8], out: &mut Vec<u8>) {
    let mut events = Vec::new();
    translator.feed(piece, &mut events);
    events.iter().for_each(|event| encoder.encode(event, out));
}

fn finish((translator, encoder): &mut Relay, out: &mut Vec<u8>) {
    let mut events = Vec::new();
    translator.finish(&mut events);
    events.iter().for_each(|event| encoder.encode(event, out));
}

/// The door's stream encoding, behind a provider whose bytes are parsed: every recorded OpenAI chat
/// stream, translated and encoded as AI SDK parts, gives the same parts however the provider's bytes
/// are split (at every event boundary and inside every event, and one byte at a time), and ends with
/// exactly one `finish` part whose reason is the recording's.
#[test]
fn recorded_provider_streams_give_the_same_parts_however_split() {
    let dir = corelay::fixture_path!("openai/chat/");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".sse"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "the recorded OpenAI streams are there: {names:?}");
    for name in &names {
        let input = std::fs::read(format!("{dir}{name}")).unwrap();
        let fresh: Relay = (
            corelay::providers::openai_chat::StreamTranslator::new(),
            StreamEncoder::new("acme/chat").with_spec(SpecVersion::V4),
        );
        let whole = split_check::assert_every_split(&fresh, &input, feed, finish, name);
        let mut bytewise_relay = fresh.clone();
        let mut bytewise = Vec::new();
        input.chunks(1).for_each(|piece| feed(&mut bytewise_relay, piece, &mut bytewise));
        finish(&mut bytewise_relay, &mut bytewise);
        assert!(bytewise == whole, "{name} fed one byte at a time");

        let parts = sse_parts(std::str::from_utf8(&whole).unwrap());
        let finishes: Vec<&Value> = parts.iter().filter(|p| p["type"] == "finish").collect();
        assert_eq!(finishes.len(), 1, "{name}");
        assert_eq!(parts.last().map(|p| &p["type"]), Some(&json!("finish")), "{name}");
        let recorded = String::from_utf8(input).unwrap();
        let expected = if recorded.contains("\"finish_reason\":\"tool_calls\"") {
            "tool-calls"
        } else if recorded.contains("\"finish_reason\":\"length\"") {
            "length"
        } else {
            "stop"
        };
        let reason = &finishes[0]["finishReason"];
        let unified = reason.get("unified").unwrap_or(reason);
        assert_eq!(unified, expected, "{name}");
    }
}
