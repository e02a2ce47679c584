//! Golden tests of OpenAI's Responses API as a translated provider (`providers::openai_responses`),
//! on the recorded traffic in `tests/fixtures/openai/responses` and the Vercel AI SDK's Responses
//! recordings in `tests/fixtures/vercel-ai/openai` (fidelity notes in
//! `tests/fixtures/INDEX.md`). It owns no translation code; it drives the provider mappings and
//! the OpenAI front door (`api::openai_chat`) back to back, as the proxy will.
//!
//! - Streams: every recorded Responses stream goes through translator + `ChunkEncoder` whole, split
//!   in two at every byte offset (`split_check`) and one byte at a time. The internal events (one
//!   `Debug` line each, so redacted reasoning, which no OpenAI chunk carries, is pinned too) must
//!   equal `tests/golden/openai-responses/<name>.events.expected`, and the client bytes
//!   `<name>.expected`. Usage, the terminal event, the tool calls, the text, the reasoning and the
//!   encrypted reasoning are asserted with values written out from the fixtures and checked once
//!   more against the fixture's own `*.done` / `response.completed` events read with a plain JSON
//!   parser.
//! - The Vercel `.chunks.txt` files hold one event JSON per line without SSE framing; they are
//!   framed as OpenAI frames them (`event: <type>` then `data: <json>`, blank line). The encrypted
//!   reasoning recording holds the four responses of a multi-step agent run back to back; each is
//!   its own stream (its own `response.created` ... `response.completed`), named `-step<n>`.
//! - Bodies: the recorded non-streaming responses through `parse_response` (and `encode_response`
//!   for a golden chat completion).
//! - Requests: OpenAI chat requests equivalent to the recorded Responses requests, through the front
//!   door's `parse_request` and this provider's `request_body`, give the recorded bodies, up to the
//!   differences [`recorded_request_as_corelay_sends_it`] lists.
//! - Errors: the recorded error bodies through `classify_error`, and as in-band `error` events.
//!
//! `CORELAY_BLESS=1 cargo test --test golden_openai_responses` rewrites the expected files from the
//! current output; read the diff before committing it.

use std::path::Path;

use corelay::api::openai_chat::{ChunkEncoder, encode_response, parse_request};
use corelay::chat::{ChatResponse, FinishReason, Part, ProviderErrorKind, StreamEvent, ToolCall, Usage};
use corelay::providers::Translator;
use corelay::providers::openai_responses::{
    RESPONSES_PATH, RequestOptions, StreamTranslator, classify_error, parse_response, request_body,
};
use serde_json::{Value, json};

mod golden_files;
mod responses_recordings;
mod split_check;
mod translated_relay;

use golden_files::{mutations, read};
use translated_relay::Outcome;

const FIXTURES: &str = corelay::fixture_path!("");
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/openai-responses/");
const GATEWAY_MODEL: &str = "acme/o3-pro";
/// 2025-11-26T00:00:00Z: any fixed time keeps the expected files stable.
const CREATED: u64 = 1_764_115_200;

fn fixture(relative: &str) -> Vec<u8> {
    read(&Path::new(FIXTURES).join(relative))
}

fn relay<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let translator = Translator::OpenaiResponses(StreamTranslator::new());
    translated_relay::relay(translator, ChunkEncoder::new(GATEWAY_MODEL, CREATED, true), pieces)
}

/// How a recorded stream ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    Finish(FinishReason),
    Error(ProviderErrorKind),
}

struct StreamCase {
    path: &'static str,
    /// Which response of the file, from 1 (only the multi-step recording has more than one).
    step: usize,
    end: End,
    /// (input, output, cached, reasoning), as `response.completed` reports them.
    usage: (u64, u64, u64, u64),
    /// (call_id, name, arguments) of each function call.
    calls: &'static [(&'static str, &'static str, &'static str)],
    text: &'static str,
    /// The start of the reasoning summary, when there is one.
    reasoning: &'static str,
    /// The start of each encrypted reasoning item's final `encrypted_content`.
    redacted: &'static [&'static str],
}

const RESPONSES: &str = "openai/responses/";
const VERCEL: &str = "vercel-ai/openai/";

fn stream_cases() -> Vec<StreamCase> {
    let case = |path, step, end, usage| StreamCase {
        path,
        step,
        end,
        usage,
        calls: &[],
        text: "",
        reasoning: "",
        redacted: &[],
    };
    let quota = End::Error(ProviderErrorKind::Billing);
    vec![
        // 200, then `error` (insufficient_quota) and `response.failed`: one error, billing.
        case(
            "openai/responses/openai-responses-stream-error-insufficient-quota.RECONSTRUCTED-FRAMING.sse",
            1,
            quota,
            (0, 0, 0, 0),
        ),
        StreamCase {
            calls: &[("call_kL0PCQV7M2WMoVX8V8OtYSAL", "get_capital", r#"{"country":"France"}"#)],
            ..case(
                "openai/responses/openai-responses-stream-function-call.sse",
                1,
                End::Finish(FinishReason::ToolCalls),
                (255, 16, 0, 0),
            )
        },
        // gpt-5 with `include: reasoning.encrypted_content`: an encrypted reasoning item, then a call.
        StreamCase {
            calls: &[("call_CWXgs68YprAjp6t0371hiPOI", "final_result", r#"{"result":6666}"#)],
            redacted: &["gAAAAABoyXvxI6jwG5j6rvTGC7PD6JN5758K"],
            ..case(
                "openai/responses/openai-responses-stream-reasoning-usage.sse",
                1,
                End::Finish(FinishReason::ToolCalls),
                (53, 469, 0, 448),
            )
        },
        StreamCase {
            text: "The capital of France is Paris.",
            ..case(
                "openai/responses/openai-responses-stream-text.sse",
                1,
                End::Finish(FinishReason::Stop),
                (278, 9, 0, 0),
            )
        },
        // The Vercel recording the reconstructed file above was framed from.
        case("vercel-ai/openai/openai-error.1.chunks.txt", 1, quota, (0, 0, 0, 0)),
        // gpt-5.1-codex-max, four steps of one agent run: reasoning summary + encrypted reasoning +
        // call, two bare calls, then the answer.
        StreamCase {
            calls: &[("call_AB6AaRZ1FYZB2RwS6A5vbdqn", "calculator", r#"{"a":12,"b":7,"op":"add"}"#)],
            reasoning: "**Calculating step-by-step using calculator**\n\nI'll compute 12 plus 7,",
            redacted: &["gAAAAABpPDIVOKrsHNZ0GwsoEKA_IG"],
            ..case(
                "vercel-ai/openai/openai-reasoning-encrypted-content.1.chunks.txt",
                1,
                End::Finish(FinishReason::ToolCalls),
                (134, 28, 0, 0),
            )
        },
        StreamCase {
            calls: &[("call_Q6pW65MUgW9vF59BmItYGos3", "calculator", r#"{"a":19,"b":3,"op":"multiply"}"#)],
            ..case(
                "vercel-ai/openai/openai-reasoning-encrypted-content.1.chunks.txt",
                2,
                End::Finish(FinishReason::ToolCalls),
                (221, 26, 0, 0),
            )
        },
        StreamCase {
            calls: &[("call_Zl5vIMnD7dVAjgU6FkhmiCZh", "calculator", r#"{"a":57,"b":10,"op":"multiply"}"#)],
            ..case(
                "vercel-ai/openai/openai-reasoning-encrypted-content.1.chunks.txt",
                3,
                End::Finish(FinishReason::ToolCalls),
                (260, 26, 0, 0),
            )
        },
        StreamCase {
            text: "The final result is **570**.",
            ..case(
                "vercel-ai/openai/openai-reasoning-encrypted-content.1.chunks.txt",
                4,
                End::Finish(FinishReason::Stop),
                (299, 12, 0, 0),
            )
        },
    ]
}

/// Vercel's recording of a chat-completions stream, which `golden_openai_provider` covers.
const CHAT_COMPLETIONS_FORMAT: [&str; 1] = ["openai-text.chunks.txt"];

/// Every `.sse` under `openai/responses/` and every Responses `.chunks.txt` under
/// `vercel-ai/openai/`, so a fixture added later cannot go untested.
fn recorded_streams() -> Vec<String> {
    let mut found = Vec::new();
    for (dir, suffix) in [(RESPONSES, ".sse"), (VERCEL, ".chunks.txt")] {
        for entry in std::fs::read_dir(Path::new(FIXTURES).join(dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.ends_with(suffix) && !CHAT_COMPLETIONS_FORMAT.contains(&name.as_str()) {
                found.push(format!("{dir}{name}"));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_recorded_stream_has_a_case() {
    let mut cased: Vec<String> = stream_cases().iter().map(|c| c.path.to_owned()).collect();
    cased.dedup();
    cased.sort();
    assert_eq!(cased, recorded_streams());
    // Every response of a multi-response recording has its case.
    for path in recorded_streams() {
        let steps: Vec<usize> = stream_cases().iter().filter(|c| c.path == path).map(|c| c.step).collect();
        assert_eq!(steps, (1..=responses_recordings::responses(&path).len()).collect::<Vec<_>>(), "{path}");
    }
}

/// The event JSONs of an SSE body, read with a plain JSON parser.
fn recorded_events(sse: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(sse).unwrap();
    text.split("\n\n")
        .filter_map(|event| event.lines().find_map(|line| line.strip_prefix("data: ")))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

fn of_type<'a>(events: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    events.iter().filter(move |event| event["type"] == kind)
}

/// One line per internal event.
fn event_lines(events: &[StreamEvent]) -> Vec<u8> {
    events.iter().flat_map(|event| format!("{event:?}\n").into_bytes()).collect()
}

fn usage_of(case: &StreamCase) -> Usage {
    let (input, output, cached, reasoning) = case.usage;
    Usage {
        prompt_tokens: input,
        completion_tokens: output,
        cache_read_tokens: cached,
        cache_write_tokens: 0,
        reasoning_tokens: reasoning,
    }
}

/// The calls the events make, put together: (id, name, arguments).
fn assembled_calls(events: &[StreamEvent]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for event in events {
        match event {
            StreamEvent::ToolCallStart { index, id, name } => {
                assert_eq!(*index as usize, calls.len());
                calls.push((id.clone(), name.clone(), String::new()));
            }
            StreamEvent::ToolCallDelta { index, arguments } => calls[*index as usize].2.push_str(arguments),
            _ => {}
        }
    }
    calls
}

fn joined(events: &[StreamEvent], pick: impl Fn(&StreamEvent) -> Option<&str>) -> String {
    events.iter().filter_map(pick).collect()
}

#[test]
fn recorded_streams_match_their_golden_files() {
    for case in stream_cases() {
        let name = responses_recordings::golden_name(case.path, case.step);
        let input = responses_recordings::response(case.path, case.step);
        let outcome = relay([input.as_slice()]);
        golden_files::check(GOLDEN, &format!("{name}.events.expected"), &event_lines(&outcome.events));
        golden_files::check(GOLDEN, &format!("{name}.expected"), &outcome.client_bytes);

        let events = &outcome.events;
        let recorded = recorded_events(&input);
        let created = &of_type(&recorded, "response.created").next().unwrap()["response"];
        let start = StreamEvent::Start {
            id: created["id"].as_str().unwrap().to_owned(),
            model: created["model"].as_str().unwrap().to_owned(),
        };
        assert_eq!(events[0], start, "{name}");
        assert_eq!(events.iter().filter(|e| e.is_terminal()).count(), 1, "{name}");
        match (case.end, events.last().unwrap()) {
            (End::Finish(reason), last) => assert_eq!(last, &StreamEvent::Finish(reason), "{name}"),
            (End::Error(kind), StreamEvent::Error(error)) => assert_eq!(error.kind, kind, "{name}"),
            (End::Error(_), last) => panic!("{name}: ends with {last:?}"),
        }
        assert_usage(&case, &outcome, &recorded, &name);
        assert_content(&case, events, &recorded, &name);
    }
}

fn assert_usage(case: &StreamCase, outcome: &Outcome, recorded: &[Value], name: &str) {
    let usage = usage_of(case);
    assert_eq!(outcome.usage, usage, "{name}");
    let usages: Vec<&StreamEvent> = outcome.events.iter().filter(|e| matches!(e, StreamEvent::Usage(_))).collect();
    let Some(completed) = of_type(recorded, "response.completed").next() else {
        assert!(usages.is_empty(), "{name}: {usages:?}");
        return;
    };
    assert_eq!(usages, [&StreamEvent::Usage(usage)], "{name}");
    let wire = &completed["response"]["usage"];
    assert_eq!(usage.prompt_tokens, wire["input_tokens"], "{name}");
    assert_eq!(usage.completion_tokens, wire["output_tokens"], "{name}");
    assert_eq!(usage.cache_read_tokens, wire["input_tokens_details"]["cached_tokens"], "{name}");
    assert_eq!(usage.reasoning_tokens, wire["output_tokens_details"]["reasoning_tokens"], "{name}");
    assert_eq!(usage.total_tokens(), wire["total_tokens"], "{name}");
    // The client's usage chunk, before [DONE], carries the same numbers.
    let text = std::str::from_utf8(&outcome.client_bytes).unwrap();
    let chunks: Vec<&str> = text.split_terminator("\n\n").collect();
    assert_eq!(chunks.last(), Some(&"data: [DONE]"), "{name}");
    let chunk: Value = serde_json::from_str(chunks[chunks.len() - 2].strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(chunk["usage"]["prompt_tokens"], usage.prompt_tokens, "{name}");
    assert_eq!(chunk["usage"]["completion_tokens"], usage.completion_tokens, "{name}");
    assert_eq!(chunk["usage"]["total_tokens"], usage.total_tokens(), "{name}");
    assert_eq!(chunk["usage"]["completion_tokens_details"]["reasoning_tokens"], usage.reasoning_tokens, "{name}");
}

fn assert_content(case: &StreamCase, events: &[StreamEvent], recorded: &[Value], name: &str) {
    let calls = assembled_calls(events);
    let expected: Vec<(String, String, String)> =
        case.calls.iter().map(|(id, n, args)| ((*id).to_owned(), (*n).to_owned(), (*args).to_owned())).collect();
    assert_eq!(calls, expected, "{name}");
    let finished_calls: Vec<(String, String, String)> = of_type(recorded, "response.output_item.done")
        .map(|event| &event["item"])
        .filter(|item| item["type"] == "function_call")
        .map(|item| {
            let field = |key: &str| item[key].as_str().unwrap().to_owned();
            (field("call_id"), field("name"), field("arguments"))
        })
        .collect();
    assert_eq!(calls, finished_calls, "{name}");

    let text = joined(events, |e| if let StreamEvent::TextDelta(t) = e { Some(t) } else { None });
    assert_eq!(text, case.text, "{name}");
    let recorded_text: String =
        of_type(recorded, "response.output_text.done").map(|e| e["text"].as_str().unwrap()).collect();
    assert_eq!(text, recorded_text, "{name}");

    let reasoning = joined(events, |e| if let StreamEvent::ReasoningDelta(t) = e { Some(t) } else { None });
    assert!(reasoning.starts_with(case.reasoning) && reasoning.is_empty() == case.reasoning.is_empty(), "{name}");
    let summaries: Vec<&str> =
        of_type(recorded, "response.reasoning_summary_text.done").map(|e| e["text"].as_str().unwrap()).collect();
    assert_eq!(reasoning, summaries.join("\n\n"), "{name}");

    let redacted: Vec<&str> = events
        .iter()
        .filter_map(|e| if let StreamEvent::RedactedReasoning(d) = e { Some(d.as_str()) } else { None })
        .collect();
    assert_eq!(redacted.len(), case.redacted.len(), "{name}");
    assert!(redacted.iter().zip(case.redacted).all(|(data, start)| data.starts_with(start)), "{name}");
    let final_blobs: Vec<&str> = of_type(recorded, "response.output_item.done")
        .filter(|event| event["item"]["type"] == "reasoning")
        .map(|event| event["item"]["encrypted_content"].as_str().unwrap())
        .collect();
    assert_eq!(redacted, final_blobs, "{name}");
}

type Relay = (StreamTranslator, ChunkEncoder);

/// Writes the events' lines and the client bytes, so a split may change neither.
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

fn write(encoder: &mut ChunkEncoder, events: &[StreamEvent], out: &mut Vec<u8>) {
    for event in events {
        out.extend_from_slice(format!("{event:?}\n").as_bytes());
        encoder.encode(event, out);
    }
}

#[test]
fn recorded_streams_give_the_same_events_and_bytes_however_split() {
    for case in stream_cases() {
        let name = responses_recordings::golden_name(case.path, case.step);
        let input = responses_recordings::response(case.path, case.step);
        let fresh = (StreamTranslator::new(), ChunkEncoder::new(GATEWAY_MODEL, CREATED, true));
        let whole = split_check::assert_every_split(&fresh, &input, feed, finish, &name);
        let reference = relay([input.as_slice()]);
        let mut expected = Vec::new();
        write(&mut ChunkEncoder::new(GATEWAY_MODEL, CREATED, true), &reference.events, &mut expected);
        assert!(whole == expected, "{name}: split_check's reference run differs from the relay");
        let bytewise = relay(input.chunks(1));
        assert!(bytewise.events == reference.events, "{name} fed one byte at a time");
        assert!(bytewise.client_bytes == reference.client_bytes, "{name} fed one byte at a time");
        assert_eq!(bytewise.usage, usage_of(&case), "{name} fed one byte at a time");
    }
}

#[test]
fn a_stream_error_after_http_200_is_billing_and_not_retried() {
    let recorded: Value = serde_json::from_slice(&fixture("vercel-ai/openai/openai-error.1.json")).unwrap();
    let message = recorded["error"]["message"].as_str().unwrap();
    for case in stream_cases().iter().filter(|c| matches!(c.end, End::Error(_))) {
        let outcome = relay([responses_recordings::response(case.path, case.step).as_slice()]);
        // Start, then the one error: `response.failed` after the `error` event adds nothing.
        let [StreamEvent::Start { .. }, StreamEvent::Error(error)] = outcome.events.as_slice() else {
            panic!("{}: {:?}", case.path, outcome.events)
        };
        assert_eq!(
            (error.kind, error.retryable(), error.message.as_str()),
            (ProviderErrorKind::Billing, false, message)
        );
        // Nothing the client must see came before it, so routing could still fail over.
        assert!(!outcome.events.iter().any(|e| !e.is_terminal() && e.commits()), "{}", case.path);
        let text = String::from_utf8(outcome.client_bytes).unwrap();
        assert!(text.contains("\"error\":") && !text.contains("[DONE]"), "{text}");
    }
}

#[test]
fn a_stream_cut_before_its_terminal_event_is_malformed() {
    let input = fixture("openai/responses/openai-responses-stream-text.sse");
    let text = String::from_utf8(input.clone()).unwrap();
    let cut = &text[..text.find("event: response.completed").unwrap()];
    let outcome = relay([cut.as_bytes()]);
    let Some(StreamEvent::Error(error)) = outcome.events.last() else { panic!("{:?}", outcome.events) };
    assert_eq!((error.kind, error.retryable()), (ProviderErrorKind::Malformed, true));
    assert_eq!(outcome.usage, Usage::default());
    // The text that came is still delivered, and cut anywhere the stream ends exactly once.
    assert!(outcome.events.contains(&StreamEvent::TextDelta(" Paris".into())));
    for at in (0..input.len()).step_by(7) {
        let outcome = relay([&input[..at]]);
        assert_eq!(outcome.events.iter().filter(|e| e.is_terminal()).count(), 1, "cut at {at}");
        assert!(outcome.events.last().is_some_and(StreamEvent::is_terminal), "cut at {at}");
    }
}

#[test]
fn recorded_responses_parse() {
    let basic = parse_response(&fixture("openai/responses/openai-responses-basic.response.json")).unwrap();
    assert_eq!(
        basic,
        ChatResponse {
            id: "resp_67f3fdfd9fa08191a3d5825db81b8df6003bc73febb56d77".into(),
            model: "gpt-4o-2024-08-06".into(),
            content: vec![Part::Text("The capital of France is Paris.".into())],
            tool_calls: vec![],
            finish_reason: FinishReason::Stop,
            usage: Usage { prompt_tokens: 24, completion_tokens: 8, ..Usage::default() },
        }
    );
    assert_eq!(basic.usage.total_tokens(), 32);
    let body = encode_response(&basic, GATEWAY_MODEL, CREATED);
    golden_files::check(GOLDEN, "openai-responses-basic.response.expected", &body);

    // The Vercel recording's last step, not streamed: reasoning summary, encrypted reasoning, answer.
    let path = "vercel-ai/openai/openai-reasoning-encrypted-content.1.json";
    let recorded: Value = serde_json::from_slice(&fixture(path)).unwrap();
    let response = parse_response(&fixture(path)).unwrap();
    assert_eq!(response.id, "resp_0f35ed53160b395301693cc957829881909359e7f80cdd20b5");
    assert_eq!(
        (response.finish_reason, response.usage),
        (
            FinishReason::Stop,
            Usage { prompt_tokens: 865, completion_tokens: 163, reasoning_tokens: 128, ..Usage::default() }
        )
    );
    let reasoning = &recorded["output"][0];
    assert_eq!(
        response.content,
        vec![
            Part::Reasoning { text: reasoning["summary"][0]["text"].as_str().unwrap().to_owned(), signature: None },
            Part::RedactedReasoning { data: reasoning["encrypted_content"].as_str().unwrap().to_owned() },
            Part::Text("12 + 7 = 19\n19 × 3 = 57\n57 × 10 = 570\n\nFinal result: 570".into()),
        ]
    );
    let Part::Reasoning { text, .. } = &response.content[0] else { unreachable!() };
    assert!(text.starts_with("**Reporting final result**"), "{text}");
    assert_eq!(response.tool_calls, Vec::<ToolCall>::new());
}

/// A recorded request as Corelay sends the same conversation. The differences, each a mapping
/// choice (see `providers::openai_responses::request`) or the recording SDK's own addition:
/// - `store: false` is added: the gateway never asks OpenAI to keep a conversation.
/// - A user message's string `content` is written as one `input_text` part (the same input).
/// - pydantic-ai's `instructions: ""` without any system prompt is left out.
/// - The reasoning recording's SDK additions are left out: `include: ["reasoning.encrypted_content"]`
///   (Corelay cannot send reasoning items back, so it does not ask for them), `previous_response_id:
///   null` and `reasoning.summary: null` (the defaults) and `service_tier: "flex"` (a pricing choice
///   of that caller).
fn recorded_request_as_corelay_sends_it(mut recorded: Value) -> Value {
    let body = recorded.as_object_mut().unwrap();
    body.insert("store".into(), json!(false));
    if body.get("instructions") == Some(&json!("")) {
        body.remove("instructions");
    }
    for key in ["include", "previous_response_id", "service_tier"] {
        body.remove(key);
    }
    if let Some(reasoning) = body.get_mut("reasoning").and_then(Value::as_object_mut) {
        reasoning.retain(|_, value| !value.is_null());
    }
    for item in body["input"].as_array_mut().unwrap() {
        if let Some(text) = item.get("content").and_then(Value::as_str) {
            item["content"] = json!([{"type": "input_text", "text": text}]);
        }
    }
    recorded
}

fn responses_body(openai: &Value, model: &str) -> Value {
    let request = parse_request(openai.to_string().as_bytes()).unwrap();
    let options = RequestOptions { model, reasoning_summary: false };
    serde_json::from_slice(&request_body(&request, &options).unwrap()).unwrap()
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

fn get_capital() -> Value {
    json!({"type": "function", "function": {"name": "get_capital", "description": "", "strict": true,
        "parameters": {"additionalProperties": false, "properties": {"country": {"type": "string"}},
                       "required": ["country"], "type": "object"}}})
}

#[test]
fn openai_requests_reproduce_recorded_responses_requests() {
    let question = user("What is the capital of France?");
    // The call id pydantic-ai sent back is the `fc_` item id of the recorded function-call stream.
    let call_id = "fc_67e554a1de488191af0831d35cbe082e0794405d35281ae2";
    let cases = [
        (
            json!({"model": GATEWAY_MODEL, "messages": [
                {"role": "system", "content": "You are a helpful assistant."}, question]}),
            "openai-responses-basic.request.json",
        ),
        (
            json!({"model": GATEWAY_MODEL, "stream": true, "messages": [question],
                   "tools": [get_capital()], "tool_choice": "auto"}),
            "openai-responses-stream-function-call.request.json",
        ),
        (
            json!({"model": GATEWAY_MODEL, "stream": true, "tools": [get_capital()], "tool_choice": "auto",
                   "messages": [question,
                    {"role": "assistant", "content": null, "tool_calls": [{"id": call_id, "type": "function",
                        "function": {"name": "get_capital", "arguments": "{\"country\":\"France\"}"}}]},
                    {"role": "tool", "tool_call_id": call_id, "content": "Paris"}]}),
            "openai-responses-stream-text.request.json",
        ),
        (
            json!({"model": GATEWAY_MODEL, "stream": true, "messages": [user("Calculate 100 * 200 / 3")],
                   "reasoning_effort": "low", "tool_choice": "required",
                   "tools": [{"type": "function", "function": {"name": "final_result", "strict": true,
                       "description": "The final response which ends this conversation",
                       "parameters": {"additionalProperties": false, "properties": {"result": {"type": "integer"}},
                                      "required": ["result"], "type": "object"}}}]}),
            "openai-responses-stream-reasoning-usage.request.json",
        ),
    ];
    for (openai, name) in cases {
        let recorded: Value = serde_json::from_slice(&fixture(&format!("{RESPONSES}{name}"))).unwrap();
        let model = recorded["model"].as_str().unwrap().to_owned();
        assert_eq!(responses_body(&openai, &model), recorded_request_as_corelay_sends_it(recorded), "{name}");
    }
    // The request that drew the recorded 400, and that 400.
    let invalid = "openai/errors/openai-error-400-responses-invalid-param";
    let mut recorded: Value = serde_json::from_slice(&fixture(&format!("{invalid}.request.json"))).unwrap();
    // The internal request holds the temperature as a float: the same number, written `-1.0`.
    recorded["temperature"] = json!(recorded["temperature"].as_f64().unwrap());
    let openai = json!({"model": GATEWAY_MODEL, "stream": true, "temperature": -1, "messages": [question]});
    assert_eq!(responses_body(&openai, "gpt-4o"), recorded_request_as_corelay_sends_it(recorded));
    let error = classify_error(400, &fixture(&format!("{invalid}.json")));
    assert_eq!((error.kind, error.retryable()), (ProviderErrorKind::InvalidRequest, false));
    assert!(error.message.starts_with("Invalid 'temperature': decimal below minimum value."), "{}", error.message);
    assert_eq!(RESPONSES_PATH, "/responses");
}

/// Recorded error bodies with the status each came with: (path, status, kind).
const ERROR_CASES: [(&str, u16, ProviderErrorKind); 3] = [
    ("vercel-ai/openai/openai-error.1.json", 429, ProviderErrorKind::Billing),
    ("vercel-ai/openai/reasoning-model-legacy-parameter-error.json", 400, ProviderErrorKind::InvalidRequest),
    ("openai/errors/openai-error-429-rate-limit-tpm.json", 429, ProviderErrorKind::RateLimited),
];

#[test]
fn recorded_errors_are_classified_as_bodies_and_as_stream_events() {
    for (path, status, kind) in ERROR_CASES {
        let body = fixture(path);
        let recorded: Value = serde_json::from_slice(&body).unwrap();
        let message = recorded["error"]["message"].as_str().unwrap();
        let error = classify_error(status, &body);
        assert_eq!((error.kind, error.message.as_str()), (kind, message), "{path}");
        assert_eq!(error.retryable(), kind == ProviderErrorKind::RateLimited, "{path}");

        // The same error object in an `error` event of a 200 stream, nested as recorded and flat as
        // documented (where `type` is the event's own "error"): the same kind and message.
        let nested = json!({"type": "error", "sequence_number": 0, "error": recorded["error"]});
        let mut flat = recorded["error"].clone();
        flat["type"] = json!("error");
        for event in [nested, flat] {
            let outcome = relay([format!("event: error\ndata: {event}\n\n").as_bytes()]);
            let [StreamEvent::Error(in_stream)] = outcome.events.as_slice() else {
                panic!("{path}: {:?}", outcome.events)
            };
            assert_eq!(in_stream, &error, "{path}: {event}");
        }
    }
}

#[test]
fn corrupted_streams_and_bodies_never_panic() {
    for body in mutations(&fixture("openai/responses/openai-responses-stream-function-call.sse")) {
        let outcome = relay([body.as_slice()]);
        assert_eq!(outcome.events.iter().filter(|e| e.is_terminal()).count(), 1);
        assert!(outcome.events.last().is_some_and(StreamEvent::is_terminal));
    }
    let response = fixture("openai/responses/openai-responses-basic.response.json");
    let compact = serde_json::to_vec(&serde_json::from_slice::<Value>(&response).unwrap()).unwrap();
    for body in mutations(&compact) {
        if let Ok(parsed) = parse_response(&body) {
            let _ = encode_response(&parsed, GATEWAY_MODEL, CREATED);
        }
    }
}
