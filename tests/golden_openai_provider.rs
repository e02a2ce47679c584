//! Golden tests of OpenAI chat completions as a translated provider (`providers::openai_chat`), on
//! the recorded traffic in `tests/fixtures/openai/chat` (and the Vercel AI SDK's recorded chat
//! stream, `vercel-ai/openai/openai-text.chunks.txt`). It owns no translation code; it drives
//! the provider mappings and the OpenAI front door's encoders (`api::openai_chat`) back to back.
//!
//! - Streams: every recorded stream, whole, split in two at every byte offset (`split_check`) and
//!   fed one byte at a time, is translated to internal events and re-encoded with `ChunkEncoder` (with the recording's
//!   model and `created`); the chunks must equal the recorded ones semantically, and usage, the finish
//!   reason and the tool calls are asserted with numbers read from the fixtures. What differs, and
//!   why, is exactly what [`normalize_chunk`] removes:
//!   - `system_fingerprint`, `service_tier`, `obfuscation` and `logprobs`: the internal stream does
//!     not carry them (`ChunkEncoder` writes `logprobs: null`).
//!   - `"usage": null` on content chunks (older recordings omit it, `ChunkEncoder` writes it) and the
//!     usage details other than `cached_tokens` and `reasoning_tokens` (audio and prediction
//!     tokens), which the internal usage does not count; details absent from a recording count 0.
//!   - Choices other than 0 (the `n=3` recording): the gateway never asks for more than one.
//!   - The role chunk: recordings put `content: null` / `refusal: ""` or the first tool call in it;
//!     the internal stream has no role event, so `ChunkEncoder` writes its own role chunk
//!     (`content: ""`, `refusal: null`) and the first content in a chunk of its own. Null and empty
//!     delta members are dropped and a role chunk is compared as `{"role": "assistant"}`.
//! - Responses: the recorded bodies through `parse_response` and `encode_response` give back the
//!   recorded body, less `annotations`, `service_tier`, `system_fingerprint` and the same usage
//!   details.
//! - Requests: the recorded OpenAI requests through the front door's `parse_request` and this
//!   provider's `request_body` give back the recorded body, with the differences the mappings choose
//!   (`n: 1` is the default and not written; `stream_options.include_usage` is always on for
//!   streams; an assistant turn without text has `content: null`).

use std::path::Path;

use corelay::api::openai_chat::{ChunkEncoder, encode_response, parse_request};
use corelay::chat::{FinishReason, StreamEvent, Usage};
use corelay::providers::Translator;
use corelay::providers::openai_chat::{RequestOptions, StreamTranslator, parse_response, request_body};
use serde_json::{Map, Value, json};
use translated_relay::Outcome;

mod translated_relay;

mod split_check;

const FIXTURES: &str = corelay::fixture_path!("openai/chat/");

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(FIXTURES).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A file under `tests/fixtures/vercel-ai/`.
fn vercel_fixture(relative: &str) -> Vec<u8> {
    let path = format!("{}/vercel-ai/{relative}", corelay::fixture_path!());
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A recorded stream: ours (`openai/chat/*.sse`) as they are; the Vercel AI SDK's
/// `vercel-ai/openai/*.chunks.txt` (one chunk JSON per line, and no `[DONE]`, which the SDK's fixture
/// format leaves out) framed as OpenAI's SSE with the `[DONE]` OpenAI ends every stream with.
fn stream_fixture(name: &str) -> Vec<u8> {
    let Some(vercel) = name.strip_prefix("vercel-ai/") else { return fixture(name) };
    let recorded = vercel_fixture(vercel);
    let mut framed = Vec::new();
    for line in recorded.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
        framed.extend_from_slice(b"data: ");
        framed.extend_from_slice(line);
        framed.extend_from_slice(b"\n\n");
    }
    framed.extend_from_slice(b"data: [DONE]\n\n");
    framed
}

fn relay<'a>(pieces: impl IntoIterator<Item = &'a [u8]>, model: &str, created: u64) -> Outcome {
    let translator = Translator::OpenaiChat(StreamTranslator::new());
    translated_relay::relay(translator, ChunkEncoder::new(model, created, true), pieces)
}

struct StreamCase {
    name: &'static str,
    finish: FinishReason,
    /// (prompt, completion, cached, reasoning), as recorded in the usage chunk.
    usage: (u64, u64, u64, u64),
    tool_calls: usize,
}

fn stream_cases() -> Vec<StreamCase> {
    let case = |name, finish, usage, tool_calls| StreamCase { name, finish, usage, tool_calls };
    vec![
        case("openai-chat-stream-finish-length.sse", FinishReason::Length, (79, 1, 0, 0), 0),
        case("openai-chat-stream-logprobs.sse", FinishReason::Stop, (9, 2, 0, 0), 0),
        case("openai-chat-stream-long-content.sse", FinishReason::Stop, (19, 177, 0, 0), 0),
        case("openai-chat-stream-n3-choices.sse", FinishReason::Stop, (79, 42, 0, 0), 0),
        case("openai-chat-stream-parallel-tool-calls.sse", FinishReason::ToolCalls, (149, 60, 0, 0), 2),
        case("openai-chat-stream-refusal.sse", FinishReason::Stop, (79, 11, 0, 0), 0),
        case("openai-chat-stream-text-usage.sse", FinishReason::Stop, (78, 9, 0, 0), 0),
        case("openai-chat-stream-tool-call-usage.sse", FinishReason::ToolCalls, (53, 15, 0, 0), 1),
        case("openai-chat-stream-tool-call.sse", FinishReason::ToolCalls, (44, 16, 0, 0), 1),
        case("openai-chat-stream-usage.sse", FinishReason::Stop, (14, 30, 0, 0), 0),
        case("vercel-ai/openai/openai-text.chunks.txt", FinishReason::Stop, (16, 300, 0, 0), 0),
    ]
}

fn listed(suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(suffix))
        .collect();
    names.sort();
    names
}

#[test]
fn every_recorded_stream_has_a_case() {
    let cased: Vec<String> =
        stream_cases().iter().map(|c| c.name.to_owned()).filter(|name| !name.starts_with("vercel-ai/")).collect();
    assert_eq!(cased, listed(".sse"));
}

/// The `data:` payloads of an SSE body (these recordings have no other fields).
fn data_events(body: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(body).unwrap().replace("\r\n", "\n");
    text.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| event.strip_prefix("data: ").unwrap_or_else(|| panic!("not a data event: {event}")).to_owned())
        .collect()
}

/// The first chunk's `model` and `created`, which the re-encoding reuses.
fn recorded_identity(chunks: &[String]) -> (String, u64) {
    let first: Value = serde_json::from_str(&chunks[0]).unwrap();
    (first["model"].as_str().unwrap().to_owned(), first["created"].as_u64().unwrap())
}

/// The usage members the internal usage carries; absent details count 0.
fn normalize_usage(usage: &Value) -> Value {
    json!({
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "total_tokens": usage["total_tokens"],
        "prompt_tokens_details": {"cached_tokens": usage["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0)},
        "completion_tokens_details":
            {"reasoning_tokens": usage["completion_tokens_details"]["reasoning_tokens"].as_u64().unwrap_or(0)},
    })
}

/// One chunk as the comparison sees it (see the module doc): zero, one or two chunks.
fn normalize_chunk(data: &str) -> Vec<Value> {
    if data == "[DONE]" {
        return vec![json!("[DONE]")];
    }
    let mut chunk: Map<String, Value> = serde_json::from_str(data).unwrap();
    for member in ["system_fingerprint", "service_tier", "obfuscation"] {
        chunk.remove(member);
    }
    match chunk.remove("usage") {
        Some(usage) if !usage.is_null() => {
            chunk.insert("usage".into(), normalize_usage(&usage));
        }
        _ => {}
    }
    let choices = chunk.remove("choices").and_then(|c| c.as_array().cloned()).unwrap_or_default();
    if choices.is_empty() {
        chunk.insert("choices".into(), json!([]));
        return vec![Value::Object(chunk)];
    }
    let Some(choice) = choices.into_iter().find(|choice| choice["index"] == 0) else { return Vec::new() };
    split_choice(&chunk, choice)
}

/// Choice 0 of a chunk without nulls or empties; a role is split into a chunk of its own.
fn split_choice(chunk: &Map<String, Value>, mut choice: Value) -> Vec<Value> {
    let mut delta: Map<String, Value> = choice["delta"].as_object().cloned().unwrap_or_default();
    delta.retain(|_, value| !value.is_null() && value != "");
    choice.as_object_mut().unwrap().remove("logprobs");
    let with_delta = |delta: Map<String, Value>, finish: &Value| {
        let mut choice = choice.clone();
        choice["delta"] = Value::Object(delta);
        choice["finish_reason"] = finish.clone();
        let mut chunk = chunk.clone();
        chunk.insert("choices".into(), json!([choice]));
        Value::Object(chunk)
    };
    let finish = choice["finish_reason"].clone();
    let mut out = Vec::new();
    if let Some(role) = delta.remove("role") {
        out.push(with_delta(Map::from_iter([("role".to_owned(), role)]), &Value::Null));
    }
    if !delta.is_empty() || !finish.is_null() {
        out.push(with_delta(delta, &finish));
    }
    out
}

fn normalize(chunks: &[String]) -> Vec<Value> {
    chunks.iter().flat_map(|data| normalize_chunk(data)).collect()
}

#[test]
fn recorded_streams_come_back_as_the_same_chunks() {
    for case in stream_cases() {
        let input = stream_fixture(case.name);
        let recorded = data_events(&input);
        let (model, created) = recorded_identity(&recorded);
        let outcome = relay([input.as_slice()], &model, created);
        let ours = data_events(&outcome.client_bytes);
        assert_eq!(normalize(&ours), normalize(&recorded), "{}", case.name);

        let (prompt, completion, cached, reasoning) = case.usage;
        let usage = Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cache_read_tokens: cached,
            cache_write_tokens: 0,
            reasoning_tokens: reasoning,
        };
        assert_eq!(outcome.usage, usage, "{}", case.name);
        assert_eq!(outcome.events.last(), Some(&StreamEvent::Finish(case.finish)), "{}", case.name);
        assert_eq!(outcome.events.iter().filter(|e| e.is_terminal()).count(), 1, "{}", case.name);
        let usage_events: Vec<&StreamEvent> =
            outcome.events.iter().filter(|e| matches!(e, StreamEvent::Usage(_))).collect();
        assert_eq!(usage_events, vec![&StreamEvent::Usage(usage)], "{}", case.name);
        let calls = outcome.events.iter().filter(|e| matches!(e, StreamEvent::ToolCallStart { .. })).count();
        assert_eq!(calls, case.tool_calls, "{}", case.name);
        // The client's usage chunk, before [DONE], carries the same numbers.
        let usage_chunk: Value = serde_json::from_str(&ours[ours.len() - 2]).unwrap();
        assert_eq!(usage_chunk["usage"]["prompt_tokens"], prompt, "{}", case.name);
        assert_eq!(usage_chunk["usage"]["completion_tokens"], completion, "{}", case.name);
        assert_eq!(usage_chunk["usage"]["total_tokens"], prompt + completion, "{}", case.name);
    }
}

#[test]
fn recorded_streams_give_the_same_bytes_however_split() {
    for case in stream_cases() {
        let input = stream_fixture(case.name);
        let fresh = (StreamTranslator::new(), ChunkEncoder::new("m", 1, true));
        let whole = split_check::assert_every_split(&fresh, &input, feed, finish, case.name);
        assert!(whole == relay([input.as_slice()], "m", 1).client_bytes, "{}", case.name);
        let bytewise = relay(input.chunks(1), "m", 1);
        assert!(bytewise.client_bytes == whole, "{} fed one byte at a time", case.name);
    }
}

type Relay = (StreamTranslator, ChunkEncoder);

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

#[test]
fn parallel_tool_calls_keep_their_ids_names_and_arguments() {
    let outcome = relay([fixture("openai-chat-stream-parallel-tool-calls.sse").as_slice()], "m", 1);
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for event in &outcome.events {
        match event {
            StreamEvent::ToolCallStart { index, id, name } => {
                assert_eq!(*index as usize, calls.len());
                calls.push((id.clone(), name.clone(), String::new()));
            }
            StreamEvent::ToolCallDelta { index, arguments } => calls[*index as usize].2.push_str(arguments),
            _ => {}
        }
    }
    assert_eq!(
        calls,
        vec![
            (
                "call_JMW1whyEaYG438VE1OIflxA2".into(),
                "GetWeatherArgs".into(),
                r#"{"city": "Edinburgh", "country": "GB", "units": "c"}"#.into()
            ),
            (
                "call_DNYTawLBoN8fj3KN6qU9N1Ou".into(),
                "get_stock_price".into(),
                r#"{"ticker": "AAPL", "exchange": "NASDAQ"}"#.into()
            ),
        ]
    );
}

#[test]
fn a_stream_cut_before_done_is_malformed() {
    let input = fixture("openai-chat-stream-usage.sse");
    let text = String::from_utf8(input).unwrap();
    let cut = text.strip_suffix("data: [DONE]\n\n").unwrap();
    let outcome = relay([cut.as_bytes()], "m", 1);
    assert!(
        matches!(outcome.events.last(), Some(StreamEvent::Error(e)) if e.kind == corelay::chat::ProviderErrorKind::Malformed)
    );
    // The usage that did arrive is still known.
    assert_eq!(outcome.usage.total_tokens(), 44);
}

/// A completion body as the comparison sees it (see the module doc).
fn normalize_completion(mut body: Value) -> Value {
    let object = body.as_object_mut().unwrap();
    object.remove("service_tier");
    object.remove("system_fingerprint");
    let usage = normalize_usage(&object["usage"]);
    object.insert("usage".into(), usage);
    let message = body["choices"][0]["message"].as_object_mut().unwrap();
    message.remove("annotations");
    body
}

#[test]
fn recorded_responses_come_back_as_the_same_body() {
    let mut names = listed(".response.json");
    assert_eq!(names.len(), 3);
    // The Vercel AI SDK's recorded chat completion too.
    names.push("vercel-ai/openai/openai-text.json".to_owned());
    for name in names {
        let bytes = match name.strip_prefix("vercel-ai/") {
            Some(vercel) => vercel_fixture(vercel),
            None => fixture(&name),
        };
        let recorded: Value = serde_json::from_slice(&bytes).unwrap();
        let response = parse_response(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let model = recorded["model"].as_str().unwrap();
        let created = recorded["created"].as_u64().unwrap();
        let ours: Value = serde_json::from_slice(&encode_response(&response, model, created)).unwrap();
        assert_eq!(normalize_completion(ours), normalize_completion(recorded.clone()), "{name}");
        assert_eq!(response.usage.total_tokens(), recorded["usage"]["total_tokens"].as_u64().unwrap(), "{name}");
    }
}

/// A recorded request with the differences the mappings choose (see the module doc).
fn expected_request(mut recorded: Value) -> Value {
    let object = recorded.as_object_mut().unwrap();
    object.remove("n");
    if object.get("stream") == Some(&json!(true)) {
        object.insert("stream_options".into(), json!({"include_usage": true}));
    }
    for message in object["messages"].as_array_mut().unwrap() {
        if message["role"] == "assistant" && message.get("content").is_none() {
            message["content"] = Value::Null;
        }
    }
    recorded
}

#[test]
fn recorded_requests_come_back_as_the_same_body() {
    let names = listed(".request.json");
    assert_eq!(names.len(), 7);
    for name in names {
        let recorded: Value = serde_json::from_slice(&fixture(&name)).unwrap();
        let request = parse_request(&fixture(&name)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let model = recorded["model"].as_str().unwrap();
        let options = RequestOptions { model, legacy_max_tokens: false, pass_extra: true };
        let body: Value = serde_json::from_slice(&request_body(&request, &options).unwrap()).unwrap();
        assert_eq!(body, expected_request(recorded), "{name}");
    }
}
