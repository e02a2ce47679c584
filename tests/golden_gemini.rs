//! Golden tests of the OpenAI-client <-> Gemini-provider translation, on the recorded Gemini traffic
//! in `tests/fixtures/gemini`, the Gemini half of `tests/fixtures/vertex` and the Vercel AI
//! SDK's `tests/fixtures/vercel-ai/google` (fidelity notes
//! in `tests/fixtures/INDEX.md`; the Vertex-Anthropic files belong to `golden_anthropic`). It owns
//! no translation code; it drives `providers::gemini` and `api::openai_chat` as the proxy will.
//!
//! - Every recorded stream goes through translator + OpenAI encoder whole, split in two at every
//!   byte offset, and one byte at a time; the client bytes must equal
//!   `tests/golden/gemini/<fixture>.expected` exactly, and usage and the terminal event are asserted
//!   with numbers read from the fixture (Gemini's usage is cumulative: the last chunk's counts, never
//!   a sum).
//! - The recordings of streamed function-call arguments (`partialArgs`) are cases like the others,
//!   and the calls they carry are asserted too: each call's deltas, concatenated, parse to the
//!   arguments the recorded pieces describe.
//! - Every recorded non-streaming body becomes an OpenAI `chat.completion` equal to its expected file;
//!   every recorded error body is classified, as an HTTP error and as an error chunk in a stream.
//! - Requests: OpenAI requests equivalent to recorded Gemini requests must reproduce them, up to the
//!   recording SDK's own additions (see [`without_sdk_additions`]); the recorded OpenAI requests map
//!   to checked-in expected bodies; hand-written cases pin every mapped field.
//!
//! `CORELAY_BLESS=1 cargo test --test golden_gemini` rewrites the expected files from the current
//! output; read the diff before committing it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use corelay::api::openai_chat::{ChunkEncoder, encode_response, parse_request};
use corelay::chat::{FinishReason, ProviderErrorKind, StreamEvent, Usage};
use corelay::providers::gemini::{
    RequestOptions, StreamTranslator, classify_error, parse_response, request_body, retry_delay,
};
use serde_json::{Value, json};

mod golden_files;
use golden_files::mutations;
mod split_check;
mod translated_relay;
use corelay::providers::Translator;
use golden_files::read;
use translated_relay::Outcome;

const FIXTURES: &str = corelay::fixture_path!("");
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/gemini/");
const GATEWAY_MODEL: &str = "acme/gemini";
/// 2025-11-26T00:00:00Z: any fixed time keeps the expected files stable.
const CREATED: u64 = 1_764_115_200;

fn fixture(relative: &str) -> Vec<u8> {
    read(&Path::new(FIXTURES).join(relative))
}

/// Compares `actual` with the expected file `name`, or writes it when blessing.
fn check_golden(name: &str, actual: &[u8]) {
    golden_files::check(GOLDEN, name, actual);
}

fn relay<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let translator = Translator::Gemini(StreamTranslator::new());
    translated_relay::relay(translator, ChunkEncoder::new(GATEWAY_MODEL, CREATED, true), pieces)
}

/// The state `split_check` snapshots: the provider translator and the client's encoder.
type Relay = (StreamTranslator, ChunkEncoder);

fn feed((translator, encoder): &mut Relay, piece: &[u8], out: &mut Vec<u8>) {
    let mut events = Vec::new();
    translator.feed(piece, &mut events);
    write(encoder, &events, out);
}

fn finish((translator, encoder): &mut Relay, out: &mut Vec<u8>) {
    let mut events = Vec::new();
    translator.finish(&mut events);
    write(encoder, &events, out);
}

/// Each event's `Debug` line and then its client bytes, so a split that changed either is caught.
fn write(encoder: &mut ChunkEncoder, events: &[StreamEvent], out: &mut Vec<u8>) {
    for event in events {
        out.extend_from_slice(format!("{event:?}\n").as_bytes());
        encoder.encode(event, out);
    }
}

struct StreamCase {
    path: &'static str,
    finish: FinishReason,
    usage: Usage,
    tool_calls: usize,
}

/// `promptTokenCount` -> prompt; `candidatesTokenCount` + `thoughtsTokenCount` -> completion, of
/// which the thoughts are reasoning.
fn usage(prompt: u64, candidates: u64, thoughts: u64) -> Usage {
    Usage {
        prompt_tokens: prompt,
        completion_tokens: candidates + thoughts,
        reasoning_tokens: thoughts,
        ..Usage::default()
    }
}

fn stream_cases() -> Vec<StreamCase> {
    vec![
        // Usage on every chunk, growing: 31, 79, then 80 candidate tokens; 35 thought tokens.
        StreamCase {
            path: "gemini/gemini-stream.sse",
            finish: FinishReason::Stop,
            usage: usage(18, 80, 35),
            tool_calls: 0,
        },
        // One whole functionCall part (with a thoughtSignature), then an empty text with STOP.
        StreamCase {
            path: "gemini/gemini-stream-function-call.sse",
            finish: FinishReason::ToolCalls,
            usage: usage(29, 10, 202),
            tool_calls: 1,
        },
        // The prompt count jumps from 55 to 257 on the last chunk: the latest count is the total.
        StreamCase {
            path: "gemini/gemini-stream-after-function-response.sse",
            finish: FinishReason::Stop,
            usage: usage(257, 8, 0),
            tool_calls: 0,
        },
        // Four `thought: true` parts (reasoning) before the answer; no candidate count until then.
        StreamCase {
            path: "gemini/gemini-stream-thinking.sse",
            finish: FinishReason::Stop,
            usage: usage(34, 469, 787),
            tool_calls: 0,
        },
        // One chunk, `role` before `parts`, no candidate `index`, `createTime`.
        StreamCase {
            path: "vertex/vertex-gemini-stream.sse",
            finish: FinishReason::Stop,
            usage: usage(5, 1, 100),
            tool_calls: 0,
        },
        // The Vercel AI SDK's recordings: one chunk JSON per line, framed as SSE by `stream_fixture`.
        StreamCase {
            path: "vercel-ai/google/google-reasoning.chunks.txt",
            finish: FinishReason::Stop,
            usage: usage(9, 29, 256),
            tool_calls: 0,
        },
        StreamCase {
            path: "vercel-ai/google/google-text.chunks.txt",
            finish: FinishReason::Stop,
            usage: usage(9, 23, 185),
            tool_calls: 0,
        },
        // A functionCall, then an empty text part with STOP: still a tool call to the client.
        StreamCase {
            path: "vercel-ai/google/google-tool-call.chunks.txt",
            finish: FinishReason::ToolCalls,
            usage: usage(29, 15, 45),
            tool_calls: 1,
        },
        // Streamed arguments (`partialArgs`): two calls, each opened by a named part, its string
        // ended by an empty piece and the call closed by an empty `functionCall`; usage only on the
        // last chunk (the others carry `trafficType` alone).
        StreamCase {
            path: "vercel-ai/google/google-stream-tool-call-arguments.chunks.txt",
            finish: FinishReason::ToolCalls,
            usage: usage(26, 23, 132),
            tool_calls: 2,
        },
        // One call filling nested objects and arrays in order, a string in two pieces, `°`.
        StreamCase {
            path: "vercel-ai/google/google-vertex-stream-tool-call-arguments-nested.1.chunks.txt",
            finish: FinishReason::ToolCalls,
            usage: usage(31, 684, 1026),
            tool_calls: 1,
        },
    ]
}

fn stem(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.split_once('.').map_or(name, |(stem, _)| stem)
}

/// A recorded stream as the provider sends it: `.sse` files as they are; the Vercel AI SDK's
/// `.chunks.txt` (one chunk JSON per line) framed as Gemini's SSE (`data: ...` and CRLF CRLF).
fn stream_fixture(path: &str) -> Vec<u8> {
    let recorded = fixture(path);
    if !path.ends_with(".chunks.txt") {
        return recorded;
    }
    let mut framed = Vec::new();
    for line in recorded.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
        framed.extend_from_slice(b"data: ");
        framed.extend_from_slice(line);
        framed.extend_from_slice(b"\r\n\r\n");
    }
    framed
}

/// Every Gemini-format `.sse` under `gemini/` and `vertex/`, and `.chunks.txt` under
/// `vercel-ai/google/`, so a fixture added later cannot go untested.
fn recorded_streams() -> Vec<String> {
    let mut found = Vec::new();
    for (dir, suffix) in [("gemini", ".sse"), ("vertex", ".sse"), ("vercel-ai/google", ".chunks.txt")] {
        for entry in std::fs::read_dir(Path::new(FIXTURES).join(dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(suffix) && !name.starts_with("vertex-anthropic") {
                found.push(format!("{dir}/{name}"));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_recorded_stream_has_a_case() {
    let mut cased: Vec<String> = stream_cases().iter().map(|c| c.path.to_owned()).collect();
    cased.sort();
    assert_eq!(cased, recorded_streams());
}

/// The `usageMetadata` of the last chunk that has one, read with a plain JSON parser: what the
/// translator's usage must equal (not a sum over the chunks).
fn last_usage_metadata(sse: &[u8]) -> Value {
    let text = std::str::from_utf8(sse).unwrap();
    text.split("\r\n\r\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(|json| serde_json::from_str::<Value>(json).unwrap())
        .filter_map(|chunk| chunk.get("usageMetadata").cloned())
        .last()
        .expect("a chunk with usage")
}

#[test]
fn recorded_streams_match_their_golden_files() {
    for case in stream_cases() {
        let input = stream_fixture(case.path);
        let outcome = relay([input.as_slice()]);
        check_golden(&format!("{}.expected", stem(case.path)), &outcome.client_bytes);

        assert_eq!(outcome.usage, case.usage, "{}", case.path);
        let last = last_usage_metadata(&input);
        let count = |name: &str| last[name].as_u64().unwrap_or(0);
        assert_eq!(outcome.usage.prompt_tokens, count("promptTokenCount"), "{}", case.path);
        assert_eq!(
            outcome.usage.completion_tokens,
            count("candidatesTokenCount") + count("thoughtsTokenCount"),
            "{}",
            case.path
        );
        assert_eq!(outcome.usage.total_tokens(), count("totalTokenCount"), "{}", case.path);

        assert_eq!(outcome.events.last(), Some(&StreamEvent::Finish(case.finish)), "{}", case.path);
        assert_eq!(outcome.events.iter().filter(|e| e.is_terminal()).count(), 1, "{}", case.path);
        assert!(matches!(outcome.events[0], StreamEvent::Start { .. }), "{}", case.path);
        let calls = outcome.events.iter().filter(|e| matches!(e, StreamEvent::ToolCallStart { .. })).count();
        assert_eq!(calls, case.tool_calls, "{}", case.path);
        // Every Usage event is one chunk's counts, and the last one is the final usage.
        let usages: Vec<Usage> =
            outcome.events.iter().filter_map(|e| if let StreamEvent::Usage(u) = e { Some(*u) } else { None }).collect();
        assert_eq!(usages.last(), Some(&case.usage), "{}", case.path);
        assert!(usages.windows(2).all(|w| w[0] != w[1]), "{}: repeated usage {usages:?}", case.path);
        assert_usage_chunk(&outcome.client_bytes, &case.usage, case.path);
    }
}

/// The last `data:` JSON before `[DONE]` is the usage chunk with the case's numbers.
fn assert_usage_chunk(client_bytes: &[u8], expected: &Usage, path: &str) {
    let text = std::str::from_utf8(client_bytes).unwrap();
    let events: Vec<&str> = text.split_terminator("\n\n").collect();
    assert_eq!(events.last(), Some(&"data: [DONE]"), "{path}");
    let chunk: Value = serde_json::from_str(events[events.len() - 2].strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(chunk["choices"], json!([]), "{path}");
    assert_eq!(chunk["usage"]["prompt_tokens"], expected.prompt_tokens, "{path}");
    assert_eq!(chunk["usage"]["completion_tokens"], expected.completion_tokens, "{path}");
    assert_eq!(chunk["usage"]["total_tokens"], expected.prompt_tokens + expected.completion_tokens, "{path}");
    assert_eq!(chunk["usage"]["completion_tokens_details"]["reasoning_tokens"], expected.reasoning_tokens, "{path}");
}

#[test]
fn recorded_streams_give_the_same_bytes_however_split() {
    for case in stream_cases() {
        let input = stream_fixture(case.path);
        let whole = relay([input.as_slice()]);
        let fresh = (StreamTranslator::new(), ChunkEncoder::new(GATEWAY_MODEL, CREATED, true));
        let split = split_check::assert_every_split(&fresh, &input, feed, finish, case.path);
        let mut expected = Vec::new();
        write(&mut fresh.1.clone(), &whole.events, &mut expected);
        assert!(split == expected, "{}: split_check's reference run differs from the relay", case.path);
        let bytewise = relay(input.chunks(1));
        assert!(bytewise.client_bytes == whole.client_bytes, "{} fed one byte at a time", case.path);
        assert!(bytewise.events == whole.events, "{} fed one byte at a time", case.path);
    }
}

#[test]
fn the_thinking_stream_sends_reasoning_then_text() {
    let outcome = relay([fixture("gemini/gemini-stream-thinking.sse").as_slice()]);
    let kinds: Vec<&str> = outcome
        .events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ReasoningDelta(_) => Some("reasoning"),
            StreamEvent::TextDelta(_) => Some("text"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds[..5], ["reasoning", "reasoning", "reasoning", "reasoning", "text"]);
    assert!(kinds[4..].iter().all(|k| *k == "text"));
    let StreamEvent::ReasoningDelta(first) = &outcome.events[1] else { panic!("{:?}", outcome.events[1]) };
    assert!(first.starts_with("**Clarifying User Goals**"), "{first}");
}

#[test]
fn the_function_call_stream_gives_a_complete_call() {
    let outcome = relay([fixture("gemini/gemini-stream-function-call.sse").as_slice()]);
    assert_eq!(
        outcome.events[..3],
        [
            StreamEvent::Start { id: "QUVVadTSNJ6_qtsPvN7J8Q0".into(), model: "gemini-3-pro-preview".into() },
            StreamEvent::ToolCallStart { index: 0, id: "call_0".into(), name: "get_country".into() },
            StreamEvent::ToolCallDelta { index: 0, arguments: "{}".into() },
        ]
    );
}

/// Each tool call of a relayed stream: its name and the concatenation of its deltas, parsed. Checks
/// the event contract on the way: a call's start before its deltas, indices 0, 1, ..., no empty
/// delta.
fn streamed_calls(events: &[StreamEvent]) -> Vec<(String, Value)> {
    let mut calls: Vec<(String, String)> = Vec::new();
    for event in events {
        match event {
            StreamEvent::ToolCallStart { index, name, .. } => {
                assert_eq!(*index as usize, calls.len());
                calls.push((name.clone(), String::new()));
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                assert!(!arguments.is_empty());
                calls[*index as usize].1.push_str(arguments);
            }
            _ => {}
        }
    }
    let parse = |text: String| serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    calls.into_iter().map(|(name, text)| (name, parse(text))).collect()
}

#[test]
fn streamed_arguments_assemble_into_the_two_recorded_calls() {
    let input = stream_fixture("vercel-ai/google/google-stream-tool-call-arguments.chunks.txt");
    let outcome = relay([input.as_slice()]);
    let ids: Vec<&str> = outcome
        .events
        .iter()
        .filter_map(|e| if let StreamEvent::ToolCallStart { id, .. } = e { Some(id.as_str()) } else { None })
        .collect();
    assert_eq!(ids, ["call_0", "call_1"]);
    assert_eq!(
        streamed_calls(&outcome.events),
        [
            ("getWeather".to_owned(), json!({"location": "Boston"})),
            ("getWeather".to_owned(), json!({"location": "San Francisco"}))
        ]
    );
    // The arguments go out as they come: the value's text before the piece that ends it.
    assert!(
        outcome.events.contains(&StreamEvent::ToolCallDelta { index: 0, arguments: r#"{"location":"Boston"#.into() })
    );
    assert_eq!(outcome.events.last(), Some(&StreamEvent::Finish(FinishReason::ToolCalls)));
    assert_eq!(outcome.usage, usage(26, 23, 132));
    assert_eq!(outcome.usage.total_tokens(), 181);
}

#[test]
fn nested_streamed_arguments_assemble_into_the_recorded_recipe() {
    let input = stream_fixture("vercel-ai/google/google-vertex-stream-tool-call-arguments-nested.1.chunks.txt");
    let outcome = relay([input.as_slice()]);
    let calls = streamed_calls(&outcome.events);
    let [(name, arguments)] = calls.as_slice() else { panic!("{calls:?}") };
    assert_eq!(name, "cookRecipe");
    let recipe = &arguments["recipe"];
    assert_eq!(arguments.as_object().unwrap().len(), 1, "{arguments}");
    assert_eq!(recipe["name"], "Lasagna");
    let ingredients = recipe["ingredients"].as_array().unwrap();
    assert_eq!(ingredients.len(), 10);
    assert_eq!(ingredients[0], json!({"amount": "16 oz", "name": "Lasagna noodles"}));
    assert_eq!(ingredients[9], json!({"amount": "1/2 tsp", "name": "Pepper"}));
    let steps = recipe["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 10);
    assert_eq!(steps[0], "Preheat oven to 375°F (190°C).");
    // Joined from two pieces on one path.
    let second = steps[1].as_str().unwrap();
    assert!(second.ends_with("set aside."), "{second}");
    assert_eq!(second, "Cook lasagna noodles according to package directions, drain and set aside.");
    assert_eq!(steps[4], "In a 9x13 baking dish, spread a thin layer of meat sauce.");
    assert_eq!(outcome.events.last(), Some(&StreamEvent::Finish(FinishReason::ToolCalls)));
    assert_eq!(outcome.usage, usage(31, 684, 1026));
    assert_eq!(outcome.usage.total_tokens(), 1741);
}

/// The recorded error bodies with the HTTP status each came with (from their `meta.json`).
const ERROR_CASES: [(&str, u16, ProviderErrorKind); 5] = [
    ("gemini/errors/gemini-error-400-api-key-invalid.json", 400, ProviderErrorKind::Authentication),
    ("gemini/errors/gemini-error-404-not-found.json", 404, ProviderErrorKind::NotFound),
    ("gemini/errors/gemini-error-429-resource-exhausted.json", 429, ProviderErrorKind::RateLimited),
    ("vertex/vertex-gemini-error-400-invalid-argument.json", 400, ProviderErrorKind::InvalidRequest),
    // The Vercel AI SDK's recording of the same 429 (its QuotaFailure and RetryInfo details).
    ("vercel-ai/google/google-429-retry-info.json", 429, ProviderErrorKind::RateLimited),
];

/// A recorded (pretty-printed) JSON body on one line, as a stream chunk carries it.
fn one_line(body: &[u8]) -> String {
    serde_json::to_string(&serde_json::from_slice::<Value>(body).unwrap()).unwrap()
}

#[test]
fn recorded_errors_are_classified_as_bodies_and_as_stream_chunks() {
    for (path, status, kind) in ERROR_CASES {
        let body = fixture(path);
        let recorded: Value = serde_json::from_slice(&body).unwrap();
        let error = classify_error(status, &body);
        assert_eq!(error.kind, kind, "{path}");
        assert_eq!(error.message, recorded["error"]["message"].as_str().unwrap(), "{path}");
        assert_eq!(error.retryable(), kind == ProviderErrorKind::RateLimited, "{path}");

        // The same envelope as the first chunk of a 200 stream: an error before anything the
        // client must see, so routing may still fail over.
        let outcome = relay([format!("data: {}\r\n\r\n", one_line(&body)).as_bytes()]);
        let [StreamEvent::Error(in_stream)] = outcome.events.as_slice() else { panic!("{path}: {:?}", outcome.events) };
        assert_eq!(in_stream, &error, "{path}");
        assert!(outcome.client_bytes.starts_with(b"data: {\"error\":"), "{path}");
    }
    for quota in
        ["gemini/errors/gemini-error-429-resource-exhausted.json", "vercel-ai/google/google-429-retry-info.json"]
    {
        assert_eq!(retry_delay(&fixture(quota)), Some(Duration::from_millis(34_400)), "{quota}");
    }
}

#[test]
fn an_error_after_content_ends_the_stream_in_band() {
    let recorded = String::from_utf8(fixture("gemini/gemini-stream.sse")).unwrap();
    let first = recorded.split_inclusive("\r\n\r\n").next().unwrap();
    let quota = one_line(&fixture("gemini/errors/gemini-error-429-resource-exhausted.json"));
    let outcome = relay([first.as_bytes(), format!("data: {quota}\r\n\r\n").as_bytes()]);
    let error_at = outcome.events.iter().position(|e| matches!(e, StreamEvent::Error(_))).expect("an error");
    assert!(outcome.events[..error_at].iter().any(StreamEvent::commits), "{:?}", outcome.events);
    assert_eq!(error_at, outcome.events.len() - 1);
    let StreamEvent::Error(error) = &outcome.events[error_at] else { unreachable!() };
    assert_eq!((error.kind, error.retryable()), (ProviderErrorKind::RateLimited, true));
    let text = String::from_utf8(outcome.client_bytes).unwrap();
    assert!(text.ends_with("\"code\":\"rate_limit_exceeded\"}}\n\n") && !text.contains("[DONE]"), "{text}");
}

#[test]
fn recorded_responses_match_their_golden_files() {
    let cases = [
        ("gemini/gemini-generate-basic.response.json", "41peaK-wOMSenvgPh-vRiAY"),
        ("vertex/vertex-gemini-generate-basic.response.json", "1VpeaKq4CfH_2PgPh_z--AY"),
    ];
    for (path, id) in cases {
        let response = parse_response(&fixture(path)).unwrap();
        assert_eq!(response.id, id);
        assert_eq!(response.model, "gemini-2.0-flash");
        assert_eq!((response.finish_reason, response.usage), (FinishReason::Stop, usage(13, 8, 0)), "{path}");
        assert!(response.tool_calls.is_empty());
        let body = encode_response(&response, GATEWAY_MODEL, CREATED);
        check_golden(&format!("{}.expected", stem(path)), &body);
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["choices"][0]["message"]["content"], "The capital of France is Paris.\n");
        assert_eq!(parsed["usage"]["total_tokens"], 21);
    }
}

#[test]
fn the_ai_sdks_recorded_bodies_match_their_golden_files() {
    let cases = [
        ("google-text", "Un6LacrVMcjUxs0PmJfWoQc", FinishReason::Stop, usage(9, 28, 244), 0),
        ("google-reasoning", "YH6LaZT7ENmPxN8P-r2J8Aw", FinishReason::Stop, usage(9, 29, 282), 0),
        // A functionCall part with STOP: a tool call to the client.
        ("google-tool-call", "m36LaZGyCLz1xs0PtNSB-QU", FinishReason::ToolCalls, usage(29, 15, 893), 1),
    ];
    for (name, id, finish, expected_usage, tool_calls) in cases {
        let path = format!("vercel-ai/google/{name}.json");
        let response = parse_response(&fixture(&path)).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        assert_eq!(response.id, id, "{path}");
        assert_eq!(
            (response.finish_reason, response.usage, response.tool_calls.len()),
            (finish, expected_usage, tool_calls)
        );
        let body = encode_response(&response, GATEWAY_MODEL, CREATED);
        // Their streams' expected files share the stem.
        check_golden(&format!("{name}.response.expected"), &body);
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["usage"]["total_tokens"], expected_usage.total_tokens(), "{path}");
    }
}

fn gemini_body(openai: &Value) -> Value {
    let request = parse_request(openai.to_string().as_bytes()).unwrap();
    serde_json::from_slice(&request_body(&request, &RequestOptions::default()).unwrap()).unwrap()
}

fn recorded_json(relative: &str) -> Value {
    serde_json::from_slice(&fixture(relative)).unwrap()
}

/// A recorded request without what the recording SDK (pydantic-ai over google-genai) added on its
/// own account, so it can be compared with what the gateway sends for the same conversation:
/// - `generationConfig.responseModalities: ["TEXT"]`, the API's default, and the `generationConfig`
///   left empty without it;
/// - `systemInstruction.role`: Google documents the instruction without one;
/// - `id` in `functionCall` / `functionResponse`: the SDK's own call ids, which the gateway does not
///   send (Vertex `v1` has no such field);
/// - the real `thoughtSignature`, which an OpenAI client never has: the gateway sends Google's
///   documented sentinel instead;
/// - `parameters_json_schema`: the snake_case spelling the cassette stored, which the API reads as
///   `parametersJsonSchema`.
fn without_sdk_additions(mut recorded: Value) -> Value {
    let body = recorded.as_object_mut().unwrap();
    if let Some(config) = body.get_mut("generationConfig").and_then(Value::as_object_mut) {
        config.remove("responseModalities");
        if config.is_empty() {
            body.remove("generationConfig");
        }
    }
    if let Some(system) = body.get_mut("systemInstruction").and_then(Value::as_object_mut) {
        system.remove("role");
    }
    for part in body["contents"].as_array_mut().unwrap().iter_mut().flat_map(|c| c["parts"].as_array_mut().unwrap()) {
        let part = part.as_object_mut().unwrap();
        for member in ["functionCall", "functionResponse"] {
            if let Some(call) = part.get_mut(member).and_then(Value::as_object_mut) {
                call.remove("id");
            }
        }
        if part.contains_key("thoughtSignature") {
            part.insert("thoughtSignature".into(), json!("skip_thought_signature_validator"));
        }
    }
    for group in body.get_mut("tools").and_then(Value::as_array_mut).into_iter().flatten() {
        for declaration in group["functionDeclarations"].as_array_mut().unwrap() {
            let declaration = declaration.as_object_mut().unwrap();
            if let Some(schema) = declaration.remove("parameters_json_schema") {
                declaration.insert("parametersJsonSchema".into(), schema);
            }
        }
    }
    recorded
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

#[test]
fn openai_requests_reproduce_recorded_gemini_requests() {
    let cases = [
        (
            json!({"model": GATEWAY_MODEL, "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                user("What is the capital of France?")]}),
            "gemini/gemini-generate-basic.request.json",
        ),
        (
            json!({"model": GATEWAY_MODEL, "messages": [
                {"role": "system", "content": "You are a helpful chatbot."},
                user("What is the capital of France?")]}),
            "vertex/vertex-gemini-generate-basic.request.json",
        ),
        (
            json!({"model": GATEWAY_MODEL, "stream": true,
                   "messages": [user("Count from 1 to 30, one number per line, digits only.")]}),
            "gemini/gemini-stream.request.json",
        ),
        (
            json!({"model": GATEWAY_MODEL, "stream": true, "messages": [user("Reply with exactly: OK")]}),
            "vertex/vertex-gemini-stream.request.json",
        ),
    ];
    for (openai, recorded) in cases {
        assert_eq!(gemini_body(&openai), without_sdk_additions(recorded_json(recorded)), "{recorded}");
    }
}

/// The tool round trip: the call the gateway relayed from the recorded function-call stream (id
/// `call_0`) comes back from the client with its result, and the gateway's follow-up request is the
/// one recorded after it.
#[test]
fn a_relayed_tool_call_comes_back_as_the_recorded_follow_up() {
    let get_country = json!({"type": "function", "function": {"name": "get_country", "description": "",
        "parameters": {"additionalProperties": false, "properties": {}, "type": "object"}}});
    let question = user("What is the capital of the user country? Call the tool");
    let first = json!({"model": GATEWAY_MODEL, "stream": true, "tools": [get_country], "messages": [question]});
    assert_eq!(
        gemini_body(&first),
        without_sdk_additions(recorded_json("gemini/gemini-stream-function-call.request.json"))
    );

    let relayed =
        String::from_utf8(relay([fixture("gemini/gemini-stream-function-call.sse").as_slice()]).client_bytes).unwrap();
    let tool_call_chunk: Value = relayed
        .split_terminator("\n\n")
        .filter_map(|event| serde_json::from_str::<Value>(event.strip_prefix("data: ")?).ok())
        .find(|chunk| chunk["choices"][0]["delta"]["tool_calls"][0]["id"].is_string())
        .expect("a tool call chunk");
    let id = tool_call_chunk["choices"][0]["delta"]["tool_calls"][0]["id"].as_str().unwrap();
    assert_eq!(id, "call_0");

    let follow_up = json!({"model": GATEWAY_MODEL, "stream": true, "tools": [get_country], "messages": [
        question,
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": id, "type": "function", "function": {"name": "get_country", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": id, "content": "{\"return_value\": \"Mexico\"}"}]});
    assert_eq!(
        gemini_body(&follow_up),
        without_sdk_additions(recorded_json("gemini/gemini-stream-after-function-response.request.json"))
    );
}

/// The recorded OpenAI chat requests, mapped with no default output budget.
#[test]
fn recorded_openai_requests_match_their_golden_bodies() {
    let dir = Path::new(FIXTURES).join("openai/chat");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".request.json"))
        .collect();
    names.sort();
    assert!(names.len() >= 7, "expected the recorded OpenAI requests");
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().replace(".request.json", "");
        let request = parse_request(&read(&path)).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let body = request_body(&request, &RequestOptions::default()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        check_golden(&format!("requests/{name}.expected"), &body);
    }
}

#[test]
fn every_mapped_field_of_a_rich_request() {
    let openai = json!({"model": GATEWAY_MODEL, "max_tokens": 100, "temperature": 0.2, "top_p": 0.9,
        "stop": ["END", "STOP"], "seed": 7, "user": "user-42", "stream": true,
        "stream_options": {"include_usage": true}, "parallel_tool_calls": false,
        "tool_choice": {"type": "function", "function": {"name": "lookup"}}, "reasoning_effort": "high",
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "strict": true,
            "schema": {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": false}}},
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "Look it up", "strict": true,
                   "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}},
                  {"type": "function", "function": {"name": "now"}}],
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "file", "file": {"filename": "r.pdf", "file_data": "data:application/pdf;base64,JVBERi0"}}]},
            {"role": "assistant", "content": "Let me look.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\": \"a\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
            {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "{\"animal\":"},
                                                                     {"type": "text", "text": " \"cat\"}"}]},
            {"role": "user", "content": "Thanks. And now?"},
            {"role": "user", "content": ""}]});
    assert_eq!(
        gemini_body(&openai),
        json!({
            "systemInstruction": {"parts": [{"text": "Be terse."}, {"text": "Answer in English."}]},
            "contents": [
                {"role": "user", "parts": [
                    {"text": "What is in these?"},
                    {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
                    {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a.png"}},
                    {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0"}}]},
                {"role": "model", "parts": [
                    {"text": "Let me look."},
                    {"functionCall": {"name": "lookup", "args": {"q": "a"}},
                     "thoughtSignature": "skip_thought_signature_validator"},
                    {"functionCall": {"name": "now", "args": {}}}]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "now", "response": {"output": "noon"}}},
                    {"functionResponse": {"name": "lookup", "response": {"animal": "cat"}}},
                    {"text": "Thanks. And now?"}]}],
            "tools": [{"functionDeclarations": [
                {"name": "lookup", "description": "Look it up",
                 "parametersJsonSchema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}},
                {"name": "now"}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}},
            "generationConfig": {
                "temperature": 0.2,
                "topP": 0.9,
                "maxOutputTokens": 100,
                "stopSequences": ["END", "STOP"],
                "seed": 7,
                "responseMimeType": "application/json",
                "responseJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}},
                                       "additionalProperties": false},
                "thinkingConfig": {"thinkingBudget": 24576, "includeThoughts": true}
            }
        })
    );
}

#[test]
fn reasoning_tool_choice_and_json_mode_variants() {
    let with = |extra: Value| {
        let mut openai = json!({"model": GATEWAY_MODEL, "messages": [user("x")],
            "tools": [{"type": "function", "function": {"name": "f"}}]});
        openai.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let body = gemini_body(&openai);
        (body.get("toolConfig").cloned(), body.get("generationConfig").cloned())
    };
    let mode = |mode: &str| Some(json!({"functionCallingConfig": {"mode": mode}}));
    assert_eq!(with(json!({"tool_choice": "auto"})), (mode("AUTO"), None));
    assert_eq!(with(json!({"tool_choice": "none"})), (mode("NONE"), None));
    assert_eq!(with(json!({"tool_choice": "required"})), (mode("ANY"), None));
    assert_eq!(
        with(json!({"reasoning_effort": "none", "response_format": {"type": "json_object"}})),
        (None, Some(json!({"responseMimeType": "application/json", "thinkingConfig": {"thinkingBudget": 0}})))
    );
    assert_eq!(
        with(json!({"thinking": {"type": "enabled", "budget_tokens": 2048}, "response_format": {"type": "text"}})),
        (None, Some(json!({"thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}})))
    );
    assert_eq!(
        with(json!({"reasoning_effort": "low"})),
        (None, Some(json!({"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true}})))
    );
}

#[test]
fn tool_schemas_pass_through_byte_for_byte() {
    // Key order and spacing inside a schema are the client's; they reach the provider untouched.
    let body = br#"{"model":"m","messages":[{"role":"user","content":"x"}],
        "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","required":["z"],"properties":{"z":{"type":"string"}}}}}]}"#;
    let request = parse_request(body).unwrap();
    let out = String::from_utf8(request_body(&request, &RequestOptions::default()).unwrap()).unwrap();
    assert!(
        out.contains(
            r#""parametersJsonSchema":{"type":"object","required":["z"],"properties":{"z":{"type":"string"}}}"#
        ),
        "{out}"
    );
}

#[test]
fn corrupted_requests_responses_and_streams_never_panic() {
    let request = br#"{"model":"gw","stream":true,"stream_options":{"include_usage":true},"max_tokens":9,
        "messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"t"},
        {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
        {"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},
        {"role":"tool","tool_call_id":"c","content":"x"}],"reasoning_effort":"low","stop":["a"],
        "tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"tool_choice":"required"}"#;
    let options = RequestOptions { default_max_tokens: Some(64) };
    assert!(request_body(&parse_request(request).unwrap(), &options).is_ok());
    for body in mutations(request) {
        if let Ok(parsed) = parse_request(&body) {
            let _ = request_body(&parsed, &options);
        }
    }
    let response = fixture("gemini/gemini-generate-basic.response.json");
    let compact = serde_json::to_vec(&serde_json::from_slice::<Value>(&response).unwrap()).unwrap();
    for body in mutations(&compact) {
        if let Ok(parsed) = parse_response(&body) {
            let _ = encode_response(&parsed, GATEWAY_MODEL, CREATED);
        }
    }
    for body in mutations(&fixture("gemini/gemini-stream-function-call.sse")) {
        let outcome = relay([body.as_slice()]);
        assert_eq!(outcome.events.iter().filter(|e| e.is_terminal()).count(), 1);
        assert!(outcome.events.last().is_some_and(StreamEvent::is_terminal));
    }
}
