//! Golden tests of the OpenAI-client <-> Bedrock-provider translation, on the recorded traffic in
//! `tests/fixtures/bedrock` (fidelity notes in `tests/fixtures/INDEX.md` and each
//! `.meta.json`) and the Bedrock payloads kept by the Vercel AI SDK in
//! `tests/fixtures/vercel-ai/amazon-bedrock`. It owns no translation code; it drives
//! `providers::bedrock` and `api::openai_chat` as the proxy will.
//!
//! - Every recorded event stream (`.bin`; ConverseStream or InvokeModelWithResponseStream, as its
//!   meta.json URL says) goes through translator + OpenAI encoder whole, split in two (at every
//!   byte offset up to 4 KiB; beyond, at every offset of the first and last frames and every frame
//!   boundary +-2, see `FULL_SPLIT_MAX_BYTES`), and one byte at a time; the client bytes must equal
//!   `tests/golden/bedrock/<fixture file name>.expected`, and usage, tool calls and the terminal event are
//!   asserted with numbers read from the fixture. The Vercel `.chunks.txt` files (one event JSON per
//!   line, no framing) are wrapped in event-stream frames here first, as their INDEX entry says.
//! - Every recorded non-streaming body becomes an OpenAI `chat.completion` equal to its expected file;
//!   recorded error bodies become the OpenAI error the client sees.
//! - Requests: OpenAI requests equivalent to the recorded Bedrock requests reproduce them exactly
//!   (compared as JSON: the cassettes re-serialized some); hand-written cases pin the rest. The
//!   signing helper reproduces the botocore-generated SigV4 vectors for Bedrock.
//!
//! `CORELAY_BLESS=1 cargo test --test golden_bedrock` rewrites the expected files from the current
//! output; read the diff before committing it.

use std::collections::BTreeMap;
use std::path::Path;

use corelay::api::openai_chat::{ChunkEncoder, encode_response, error_body, error_status, parse_request};
use corelay::aws::eventstream::{Decoder, crc32};
use corelay::aws::sigv4::{Credentials, SigningTime};
use corelay::chat::{FinishReason, ProviderErrorKind, StreamEvent, Usage};
use corelay::providers::bedrock::{
    self, Api, Auth, ModelFamily, RequestOptions, SignedRequest, StreamTranslator, classify_error, parse_response,
    request_body, request_headers,
};
use serde_json::value::RawValue;
use serde_json::{Value, json};

mod golden_files;
use golden_files::mutations;
mod translated_relay;
use corelay::providers::Translator;
use golden_files::read;
use translated_relay::Outcome;

const FIXTURES: &str = corelay::fixture_path!("");
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/bedrock/");
const GATEWAY_MODEL: &str = "acme/claude";
/// 2025-11-26T00:00:00Z: any fixed time keeps the expected files stable.
const CREATED: u64 = 1_764_115_200;
/// Stands for the `x-amzn-requestid` header the recordings did not keep; Converse answers have no
/// other id.
const REQUEST_ID: &str = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b";

fn fixture(relative: &str) -> Vec<u8> {
    read(&Path::new(FIXTURES).join(relative))
}

/// Compares `actual` with the expected file `name`, or writes it when blessing.
fn check_golden(name: &str, actual: &[u8]) {
    golden_files::check(GOLDEN, name, actual);
}

fn relay<'a>(api: Api, pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let translator = Translator::Bedrock(StreamTranslator::new(api, REQUEST_ID));
    translated_relay::relay(translator, ChunkEncoder::new(GATEWAY_MODEL, CREATED, true), pieces)
}

/// How a recorded stream must end.
enum End {
    Finish(FinishReason),
    Error(ProviderErrorKind),
}

struct StreamCase {
    /// Under `FIXTURES`.
    path: &'static str,
    api: Api,
    end: End,
    /// As recorded: Converse `metadata.usage` (input, output), or Anthropic's `message_start` /
    /// `message_delta` counts.
    usage: Usage,
    tool_calls: usize,
}

fn usage(prompt: u64, completion: u64) -> Usage {
    Usage { prompt_tokens: prompt, completion_tokens: completion, ..Usage::default() }
}

fn stream_cases() -> Vec<StreamCase> {
    use End::*;
    vec![
        StreamCase {
            path: "bedrock/bedrock-converse-stream.bin",
            api: Api::Converse,
            end: Finish(FinishReason::Stop),
            usage: usage(13, 82),
            tool_calls: 0,
        },
        StreamCase {
            path: "bedrock/bedrock-converse-stream-claude-thinking.bin",
            api: Api::Converse,
            end: Finish(FinishReason::Stop),
            usage: usage(36, 73),
            tool_calls: 0,
        },
        StreamCase {
            path: "bedrock/bedrock-converse-stream-redacted-thinking.bin",
            api: Api::Converse,
            end: Finish(FinishReason::Stop),
            usage: usage(92, 253),
            tool_calls: 0,
        },
        StreamCase {
            path: "bedrock/bedrock-converse-stream-tool-use.bin",
            api: Api::Converse,
            end: Finish(FinishReason::ToolCalls),
            usage: usage(471, 91),
            tool_calls: 1,
        },
        StreamCase {
            path: "bedrock/bedrock-invoke-stream-anthropic.RECONSTRUCTED.bin",
            api: Api::InvokeAnthropic,
            end: Finish(FinishReason::Stop),
            usage: usage(20, 5),
            tool_calls: 0,
        },
        // Cut off by the exception: only message_start's counts are known.
        StreamCase {
            path: "bedrock/bedrock-invoke-stream-throttling-exception.RECONSTRUCTED.bin",
            api: Api::InvokeAnthropic,
            end: Error(ProviderErrorKind::RateLimited),
            usage: usage(20, 1),
            tool_calls: 0,
        },
        StreamCase {
            path: "vercel-ai/amazon-bedrock/amazon-bedrock-text.chunks.txt",
            api: Api::Converse,
            end: Finish(FinishReason::Stop),
            usage: usage(22, 55),
            tool_calls: 0,
        },
        StreamCase {
            path: "vercel-ai/amazon-bedrock/amazon-bedrock-reasoning.chunks.txt",
            api: Api::Converse,
            end: Finish(FinishReason::Stop),
            usage: usage(51, 94),
            tool_calls: 0,
        },
    ]
}

/// `<fixture file name>.expected`: the whole name, since a Vercel stream and body share a stem.
fn expected_name(path: &str) -> String {
    format!("{}.expected", path.rsplit('/').next().unwrap_or(path))
}

/// One event-stream frame with string headers, as Bedrock writes them.
fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut encoded = Vec::new();
    for (name, value) in headers {
        encoded.push(u8::try_from(name.len()).unwrap());
        encoded.extend_from_slice(name.as_bytes());
        encoded.push(7);
        encoded.extend_from_slice(&u16::try_from(value.len()).unwrap().to_be_bytes());
        encoded.extend_from_slice(value.as_bytes());
    }
    let total = u32::try_from(16 + encoded.len() + payload.len()).unwrap();
    let mut out = Vec::new();
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&u32::try_from(encoded.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&crc32(&out).to_be_bytes());
    out.extend_from_slice(&encoded);
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32(&out).to_be_bytes());
    out
}

/// A Vercel `.chunks.txt` (one `{"<event type>": payload}` per line) as the event stream Bedrock
/// would have sent: each line becomes a frame whose `:event-type` is its single key.
fn frames_from_chunks(text: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for line in std::str::from_utf8(text).unwrap().lines().filter(|l| !l.trim().is_empty()) {
        let event: BTreeMap<String, Box<RawValue>> = serde_json::from_str(line).unwrap();
        assert_eq!(event.len(), 1, "{line}");
        let (event_type, payload) = event.iter().next().unwrap();
        let headers =
            [(":event-type", event_type.as_str()), (":content-type", "application/json"), (":message-type", "event")];
        body.extend(frame(&headers, payload.get().as_bytes()));
    }
    body
}

/// The body the provider sent for a stream case.
fn stream_body(case: &StreamCase) -> Vec<u8> {
    let raw = fixture(case.path);
    if case.path.ends_with(".chunks.txt") { frames_from_chunks(&raw) } else { raw }
}

/// Every stream under `bedrock/` and `vercel-ai/amazon-bedrock/`, so one added later cannot go
/// untested.
fn recorded_streams() -> Vec<String> {
    let mut found = Vec::new();
    for (dir, suffix) in [("bedrock", ".bin"), ("vercel-ai/amazon-bedrock", ".chunks.txt")] {
        for entry in std::fs::read_dir(Path::new(FIXTURES).join(dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(suffix) {
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

/// The API each recorded stream's meta.json names in its URL (the throttling reconstruction has no
/// URL; its name and chunk frames say InvokeModelWithResponseStream).
#[test]
fn stream_cases_use_the_api_of_their_recording() {
    for case in stream_cases().iter().filter(|c| c.path.starts_with("bedrock/")) {
        let meta: Value = serde_json::from_slice(&fixture(&case.path.replace(".bin", ".meta.json"))).unwrap();
        let expected = match meta["request"]["url"].as_str() {
            Some(url) if url.ends_with("/converse-stream") => Api::Converse,
            Some(url) if url.ends_with("/invoke-with-response-stream") => Api::InvokeAnthropic,
            Some(url) => panic!("{}: unexpected URL {url}", case.path),
            None => {
                assert!(case.path.contains("invoke-stream"), "{}", case.path);
                Api::InvokeAnthropic
            }
        };
        assert_eq!(case.api, expected, "{}", case.path);
    }
}

#[test]
fn recorded_streams_match_their_golden_files() {
    for case in stream_cases() {
        let input = stream_body(&case);
        let outcome = relay(case.api, [input.as_slice()]);
        check_golden(&expected_name(case.path), &outcome.client_bytes);

        assert_eq!(outcome.usage, case.usage, "{}", case.path);
        let last = outcome.events.last().unwrap_or_else(|| panic!("{}: no events", case.path));
        match (&case.end, last) {
            (End::Finish(expected), StreamEvent::Finish(actual)) => assert_eq!(expected, actual, "{}", case.path),
            (End::Error(expected), StreamEvent::Error(actual)) => assert_eq!(*expected, actual.kind, "{}", case.path),
            _ => panic!("{}: ends with {last:?}", case.path),
        }
        assert_eq!(outcome.events.iter().filter(|e| e.is_terminal()).count(), 1, "{}", case.path);
        let calls = outcome.events.iter().filter(|e| matches!(e, StreamEvent::ToolCallStart { .. })).count();
        assert_eq!(calls, case.tool_calls, "{}", case.path);
        if let End::Finish(_) = case.end {
            // The usage chunk carries the totals the client is billed for.
            assert_usage_chunk(&outcome.client_bytes, &case.usage, case.path);
        }
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
}

/// Streams up to this size are split at every byte offset. Beyond it, a debug build spends about
/// 2 ms per pass re-verifying CRCs (1.4 ms of it for a 6.6 KB stream), so larger streams are split
/// at every offset of their first and last frames and at every frame boundary +-2, as
/// `tests/aws_eventstream.rs` does for the same recordings: the translator sees whole frames
/// whatever the split, so offsets inside middle frames exercise only the decoder, tested there at
/// every offset.
const FULL_SPLIT_MAX_BYTES: usize = 4096;

/// The offsets a stream is split at; see [`FULL_SPLIT_MAX_BYTES`].
fn split_offsets(input: &[u8]) -> Vec<usize> {
    if input.len() <= FULL_SPLIT_MAX_BYTES {
        return (0..=input.len()).collect();
    }
    let spans = frame_spans(input);
    let (first_end, last_start) = (spans[0].1, spans[spans.len() - 1].0);
    let mut offsets: Vec<usize> = (0..=first_end).chain(last_start..=input.len()).collect();
    for (start, _) in spans {
        offsets.extend(start.saturating_sub(2)..=(start + 2).min(input.len()));
    }
    offsets.sort_unstable();
    offsets.dedup();
    offsets
}

#[test]
fn recorded_streams_give_the_same_bytes_however_split() {
    for case in stream_cases() {
        let input = stream_body(&case);
        let whole = relay(case.api, [input.as_slice()]);
        for at in split_offsets(&input) {
            let split = relay(case.api, [&input[..at], &input[at..]]);
            assert!(split.client_bytes == whole.client_bytes, "{} split at {at}", case.path);
            assert!(split.events == whole.events, "{} split at {at}", case.path);
            assert_eq!(split.usage, case.usage, "{} split at {at}", case.path);
        }
        let bytewise = relay(case.api, input.chunks(1));
        assert!(bytewise.client_bytes == whole.client_bytes, "{} fed one byte at a time", case.path);
        assert!(bytewise.events == whole.events, "{} fed one byte at a time", case.path);
    }
}

/// `(offset, length)` of every frame of a valid event stream.
fn frame_spans(body: &[u8]) -> Vec<(usize, usize)> {
    let mut decoder = Decoder::new();
    decoder.push(body);
    let mut spans = Vec::new();
    let mut at = 0;
    while let Some(frame) = decoder.next_frame().unwrap() {
        spans.push((at, frame.total_len()));
        at += frame.total_len();
    }
    assert_eq!(at, body.len());
    spans
}

#[test]
fn throttling_before_any_content_leaves_room_to_fail_over() {
    // The reconstructed stream with its content frames removed: message_start, then the exception.
    let recorded = fixture("bedrock/bedrock-invoke-stream-throttling-exception.RECONSTRUCTED.bin");
    let spans = frame_spans(&recorded);
    assert_eq!(spans.len(), 4);
    let mut body = Vec::new();
    for (at, len) in [spans[0], spans[3]] {
        body.extend_from_slice(&recorded[at..at + len]);
    }
    let outcome = relay(Api::InvokeAnthropic, [body.as_slice()]);
    let error_at = outcome.events.iter().position(|e| matches!(e, StreamEvent::Error(_))).expect("an error");
    assert!(outcome.events[..error_at].iter().all(|e| !e.commits()), "{:?}", outcome.events);
    let StreamEvent::Error(error) = &outcome.events[error_at] else { unreachable!() };
    assert!(error.retryable());
    assert_eq!(error.message, "Too many requests, please wait before trying again.");

    // The same exception right after a Converse messageStart.
    let converse = fixture("bedrock/bedrock-converse-stream.bin");
    let (at, len) = frame_spans(&converse)[0];
    let mut body = converse[at..at + len].to_vec();
    body.extend_from_slice(&recorded[spans[3].0..]);
    let outcome = relay(Api::Converse, [body.as_slice()]);
    assert!(!outcome.events[0].commits());
    assert!(matches!(&outcome.events[1..], [StreamEvent::Error(e)] if e.kind == ProviderErrorKind::RateLimited));
}

#[test]
fn corrupted_streams_fail_cleanly() {
    for case in stream_cases() {
        let input = stream_body(&case);
        // Bytes flipped where splits go: the CRCs catch it, or a header or payload change is mapped.
        for at in split_offsets(&input).into_iter().filter(|at| *at < input.len()) {
            let mut corrupt = input.clone();
            corrupt[at] ^= 0x20;
            let outcome = relay(case.api, [corrupt.as_slice()]);
            assert_eq!(outcome.events.iter().filter(|e| e.is_terminal()).count(), 1, "{} flipped at {at}", case.path);
            assert!(outcome.events.last().is_some_and(StreamEvent::is_terminal), "{} flipped at {at}", case.path);
        }
        // Cut at every frame boundary before the last frame: the stream was cut short.
        let spans = frame_spans(&input);
        for &(at, _) in &spans[..spans.len() - 1] {
            let outcome = relay(case.api, [&input[..at]]);
            assert!(
                matches!(outcome.events.last(), Some(StreamEvent::Error(e)) if e.retryable()),
                "{} cut at {at}",
                case.path
            );
        }
    }
}

#[test]
fn a_converse_stream_cut_before_its_metadata_finishes_without_usage() {
    let input = fixture("bedrock/bedrock-converse-stream.bin");
    let (last, _) = *frame_spans(&input).last().unwrap();
    let outcome = relay(Api::Converse, [&input[..last]]);
    assert_eq!(outcome.events.last(), Some(&StreamEvent::Finish(FinishReason::Stop)));
    assert!(!outcome.events.iter().any(|e| matches!(e, StreamEvent::Usage(_))));
    let text = String::from_utf8(outcome.client_bytes).unwrap();
    assert!(text.ends_with("\"finish_reason\":\"stop\"}],\"usage\":null}\n\ndata: [DONE]\n\n"), "{text}");
}

struct ResponseCase {
    path: &'static str,
    api: Api,
    finish: FinishReason,
    usage: Usage,
    reasoning: bool,
}

#[test]
fn recorded_responses_match_their_golden_files() {
    let cases = [
        ResponseCase {
            path: "bedrock/bedrock-converse-basic.response.json",
            api: Api::Converse,
            finish: FinishReason::Stop,
            usage: usage(7, 30),
            reasoning: false,
        },
        ResponseCase {
            path: "bedrock/bedrock-invoke-anthropic.response.json",
            api: Api::InvokeAnthropic,
            finish: FinishReason::Stop,
            usage: usage(68, 508),
            reasoning: false,
        },
        ResponseCase {
            path: "vercel-ai/amazon-bedrock/amazon-bedrock-text.json",
            api: Api::Converse,
            finish: FinishReason::Stop,
            usage: usage(22, 57),
            reasoning: false,
        },
        ResponseCase {
            path: "vercel-ai/amazon-bedrock/amazon-bedrock-reasoning.json",
            api: Api::Converse,
            finish: FinishReason::Stop,
            usage: usage(51, 78),
            reasoning: true,
        },
    ];
    for case in cases {
        let response = parse_response(case.api, &fixture(case.path), REQUEST_ID).unwrap();
        assert_eq!((response.finish_reason, response.usage), (case.finish, case.usage), "{}", case.path);
        assert!(response.tool_calls.is_empty(), "{}", case.path);
        let body = encode_response(&response, GATEWAY_MODEL, CREATED);
        check_golden(&expected_name(case.path), &body);
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["usage"]["total_tokens"], case.usage.prompt_tokens + case.usage.completion_tokens);
        assert_eq!(parsed["choices"][0]["message"].get("reasoning_content").is_some(), case.reasoning, "{}", case.path);
    }
}

#[test]
fn recorded_error_bodies_become_the_openai_error_the_client_sees() {
    for name in ["bedrock-error-400-converse-invalid-model", "bedrock-error-400-converse-stream-invalid-model"] {
        let meta: Value = serde_json::from_slice(&fixture(&format!("bedrock/errors/{name}.meta.json"))).unwrap();
        let status = u16::try_from(meta["response"]["status"].as_u64().unwrap()).unwrap();
        let body = fixture(&format!("bedrock/errors/{name}.json"));
        // The recordings lost `x-amzn-errortype`; Bedrock sends `ValidationException` with this 400.
        for header in [None, Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/")] {
            let error = classify_error(status, header, &body);
            assert!(!error.retryable(), "{name}");
            assert_eq!(error_status(&error), 400, "{name}");
            let client: Value = serde_json::from_slice(&error_body(&error)).unwrap();
            assert_eq!(
                client,
                json!({"error": {"message": "The provided model identifier is invalid.",
                                 "type": "invalid_request_error", "param": null, "code": null}}),
                "{name}"
            );
        }
    }
}

fn bedrock_body(openai: &Value, api: Api, model: &str) -> Value {
    let request = parse_request(openai.to_string().as_bytes()).unwrap();
    let options = RequestOptions { model, api, family: ModelFamily::detect(model), default_max_tokens: 4096 };
    serde_json::from_slice(&request_body(&request, &options).unwrap()).unwrap()
}

fn recorded_json(relative: &str) -> Value {
    serde_json::from_slice(&fixture(relative)).unwrap()
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

fn system(text: &str) -> Value {
    json!({"role": "system", "content": text})
}

const NOVA: &str = "us.amazon.nova-micro-v1:0";

#[test]
fn openai_requests_reproduce_recorded_converse_requests() {
    let basic = json!({"model": GATEWAY_MODEL, "messages": [system("You are a chatbot."), user("Hello!")]});
    assert_eq!(bedrock_body(&basic, Api::Converse, NOVA), recorded_json("bedrock/bedrock-converse-basic.request.json"));

    let stream = json!({"model": GATEWAY_MODEL, "stream": true, "temperature": 0.0,
        "messages": [system("You are a helpful chatbot."), user("What is the capital of France?")]});
    assert_eq!(
        bedrock_body(&stream, Api::Converse, NOVA),
        recorded_json("bedrock/bedrock-converse-stream.request.json")
    );

    let tool = |name: &str, description: &str, field: &str, about: &str, title: &str| {
        json!({"type": "function", "function": {"name": name, "description": description, "parameters": {
            "properties": {field: {"description": about, "title": title, "type": "string"}},
            "required": [field], "type": "object", "additionalProperties": false}}})
    };
    let tools = json!({"model": GATEWAY_MODEL, "stream": true, "top_p": 0.5,
        "tools": [tool("get_capital", "Get the capital of a country.", "country", "The country name.", "Country"),
                  tool("get_temperature", "Get the temperature in a city.", "city", "The city name.", "City")],
        "messages": [system("You are a helpful chatbot."), user("What is the temperature of the capital of France?")]});
    assert_eq!(
        bedrock_body(&tools, Api::Converse, NOVA),
        recorded_json("bedrock/bedrock-converse-stream-tool-use.request.json")
    );

    let thinking = |text: &str| {
        json!({"model": GATEWAY_MODEL, "stream": true, "thinking": {"type": "enabled", "budget_tokens": 1024},
               "messages": [user(text)]})
    };
    assert_eq!(
        bedrock_body(&thinking("Hello"), Api::Converse, "us.anthropic.claude-sonnet-4-20250514-v1:0"),
        recorded_json("bedrock/bedrock-converse-stream-claude-thinking.request.json")
    );
    let magic = "ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_46C9A13E193C177646C7398A98432ECCCE4C1253D5E2D82641AC0E52CC2876CB";
    assert_eq!(
        bedrock_body(&thinking(magic), Api::Converse, "us.anthropic.claude-3-7-sonnet-20250219-v1:0"),
        recorded_json("bedrock/bedrock-converse-stream-redacted-thinking.request.json")
    );

    for name in ["bedrock-error-400-converse-invalid-model", "bedrock-error-400-converse-stream-invalid-model"] {
        let hello = json!({"model": GATEWAY_MODEL, "messages": [user("hello")]});
        assert_eq!(
            bedrock_body(&hello, Api::Converse, "us.does-not-exist-model-v1:0"),
            recorded_json(&format!("bedrock/errors/{name}.request.json")),
            "{name}"
        );
    }
}

#[test]
fn openai_requests_reproduce_recorded_invoke_requests() {
    let text = json!({"model": GATEWAY_MODEL, "stream": true, "max_tokens": 32000,
                      "messages": [user("What is 1+1? Answer with just the number.")]});
    assert_eq!(
        bedrock_body(&text, Api::InvokeAnthropic, "anthropic.claude-sonnet-4-20250514-v1:0"),
        recorded_json("bedrock/bedrock-invoke-stream-anthropic.RECONSTRUCTED.request.json")
    );

    // pydantic-ai sent its mid-conversation system prompt as a `system` turn; the Anthropic mapping
    // hoists every system message into `system`, in order.
    let mid_system = json!({"model": GATEWAY_MODEL, "messages": [
        system("You are a code reviewer."),
        user("Review `def add(a, b): return a + b`."),
        {"role": "assistant", "content": "Looks fine."},
        user("Review it again."),
        system("From now on, every suggestion must include explicit type annotations.")]});
    let mut expected = recorded_json("bedrock/bedrock-invoke-anthropic.request.json");
    expected["messages"].as_array_mut().unwrap().pop();
    expected["system"] = json!([
        {"type": "text", "text": "You are a code reviewer."},
        {"type": "text", "text": "From now on, every suggestion must include explicit type annotations."}]);
    assert_eq!(bedrock_body(&mid_system, Api::InvokeAnthropic, "us.anthropic.claude-opus-4-8"), expected);
}

#[test]
fn images_documents_tool_results_and_settings() {
    let openai = json!({"model": GATEWAY_MODEL, "max_tokens": 10000, "temperature": 0.2, "top_p": 0.9,
        "stop": ["END", "STOP"], "seed": 7, "user": "user-42", "stream": true,
        "stream_options": {"include_usage": true}, "parallel_tool_calls": false, "tool_choice": "required",
        "reasoning_effort": "low",
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "strict": true,
            "schema": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "", "strict": true}}],
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "low"}},
                {"type": "file", "file": {"filename": "r.pdf", "file_data": "data:application/pdf;base64,JVBERi0"}}]},
            {"role": "assistant", "content": "Let me look.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\": \"a\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "lookup", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "a "}, {"type": "text", "text": "dog"}]},
            {"role": "user", "content": "Thanks. And now?"},
            {"role": "user", "content": ""}]});
    assert_eq!(
        bedrock_body(&openai, Api::Converse, "anthropic.claude-3-7-sonnet-20250219-v1:0"),
        json!({
            "messages": [
                {"role": "user", "content": [
                    {"text": "What is in these?"},
                    {"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}},
                    {"document": {"format": "pdf", "name": "r", "source": {"bytes": "JVBERi0"}}}]},
                {"role": "assistant", "content": [
                    {"text": "Let me look."},
                    {"toolUse": {"toolUseId": "call_1", "name": "lookup", "input": {"q": "a"}}},
                    {"toolUse": {"toolUseId": "call_2", "name": "lookup", "input": {}}}]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "call_1", "content": [{"text": "a cat"}]}},
                    {"toolResult": {"toolUseId": "call_2", "content": [{"text": "a "}, {"text": "dog"}]}},
                    {"text": "Thanks. And now?"}]}],
            "system": [{"text": "Be terse."}, {"text": "Answer in English."}],
            "inferenceConfig": {"maxTokens": 10000, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END", "STOP"]},
            "toolConfig": {
                "tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object", "properties": {}}},
                           "strict": true}}],
                "toolChoice": {"any": {}}},
            "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 2048}},
            // The schema's text as the client sent it (`json!` sorted its keys).
            "outputConfig": {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {
                "schema": "{\"properties\":{\"city\":{\"type\":\"string\"}},\"type\":\"object\"}", "name": "answer"}}}}
        })
    );
}

#[test]
fn tool_schemas_pass_through_byte_for_byte() {
    // Key order and spacing inside a schema are the client's; they reach the provider untouched.
    let body = br#"{"model":"m","messages":[{"role":"user","content":"x"}],
        "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","required":["z"],"properties":{"z":{"type":"string"}}}}}]}"#;
    let request = parse_request(body).unwrap();
    let options =
        RequestOptions { model: NOVA, api: Api::Converse, family: ModelFamily::Other, default_max_tokens: 10 };
    let out = String::from_utf8(request_body(&request, &options).unwrap()).unwrap();
    assert!(
        out.contains(
            r#""inputSchema":{"json":{"type":"object","required":["z"],"properties":{"z":{"type":"string"}}}}"#
        ),
        "{out}"
    );
}

/// The botocore-generated vectors: path, content headers and signature must all agree with them.
#[test]
fn signing_reproduces_the_generated_sigv4_vectors() {
    let cases = [
        ("bedrock-runtime-converse", Api::Converse, false),
        ("bedrock-runtime-converse-stream", Api::Converse, true),
        ("bedrock-runtime-invoke-with-response-stream", Api::InvokeAnthropic, true),
    ];
    for (name, api, stream) in cases {
        let vector: Value =
            serde_json::from_slice(&fixture(&format!("aws-sigv4/bedrock/{name}.sigv4.GENERATED.json"))).unwrap();
        let url = vector["request"]["url"].as_str().unwrap();
        let (host, path) = url.strip_prefix("https://").unwrap().split_once('/').unwrap();
        let model = path.split('/').nth(1).unwrap().replace("%3A", ":");
        assert_eq!(bedrock::path(api, &model, stream), format!("/{path}"), "{name}");
        let region = vector["region"].as_str().unwrap();
        assert_eq!(bedrock::host(region), host, "{name}");

        let creds = &vector["credentials"];
        let mut credentials =
            Credentials::new(creds["accessKeyId"].as_str().unwrap(), creds["secretAccessKey"].as_str().unwrap());
        if let Some(token) = creds["sessionToken"].as_str() {
            credentials = credentials.with_session_token(token);
        }
        let body_file = vector["request"]["body_file"].as_str().unwrap().trim_start_matches("../../");
        let body = fixture(body_file);
        let time = SigningTime::from_amz_date(vector["signingDate"].as_str().unwrap()).unwrap();
        let auth = Auth::SigV4 { region, credentials: &credentials, time };
        let request = SignedRequest { method: "POST", path: &format!("/{path}"), host, body: &body };
        let headers = request_headers(api, stream, &auth, &request).unwrap();

        let mut expected: Vec<(String, String)> = vector["request"]["headers_before_signing"]
            .as_object()
            .unwrap()
            .iter()
            .chain(vector["expected"]["headers_added"].as_object().unwrap())
            .map(|(name, value)| (name.to_ascii_lowercase(), value.as_str().unwrap().to_owned()))
            .collect();
        let mut actual: Vec<(String, String)> =
            headers.into_iter().map(|(name, value)| (name.to_owned(), String::from_utf8(value).unwrap())).collect();
        expected.sort();
        actual.sort();
        assert_eq!(actual, expected, "{name}");
    }
}

#[test]
fn corrupted_requests_and_responses_never_panic() {
    let request = br#"{"model":"gw","stream":true,"max_tokens":9,"temperature":0.5,"stop":["a"],
        "messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"t"},
        {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
        {"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},
        {"role":"tool","tool_call_id":"c","content":"x"}],"reasoning_effort":"low",
        "tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"tool_choice":"required"}"#;
    let options = RequestOptions {
        model: "anthropic.claude-x",
        api: Api::Converse,
        family: ModelFamily::Anthropic,
        default_max_tokens: 64,
    };
    assert!(request_body(&parse_request(request).unwrap(), &options).is_ok());
    for body in mutations(request) {
        if let Ok(parsed) = parse_request(&body) {
            let _ = request_body(&parsed, &options);
        }
    }
    let response = fixture("vercel-ai/amazon-bedrock/amazon-bedrock-reasoning.json");
    let compact = serde_json::to_vec(&serde_json::from_slice::<Value>(&response).unwrap()).unwrap();
    for body in mutations(&compact) {
        if let Ok(parsed) = parse_response(Api::Converse, &body, REQUEST_ID) {
            let _ = encode_response(&parsed, GATEWAY_MODEL, CREATED);
        }
        let _ = classify_error(400, Some("ValidationException"), &body);
    }
}
