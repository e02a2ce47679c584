//! Golden tests of the OpenAI Responses front door (`api::openai_responses`) against the recorded
//! Responses traffic in `tests/fixtures/openai/responses` and the Vercel AI SDK's Responses
//! recordings in `tests/fixtures/vercel-ai/openai` (fidelity notes in
//! `tests/fixtures/INDEX.md`). It owns no translation code: it drives the front door and its
//! inverse, the provider adapter `providers::openai_responses`, back to back.
//!
//! - Requests: every recorded Responses request through the front door's `parse_request` and the
//!   provider's `request_body` gives the recorded body back, up to the differences
//!   [`as_corelay_sends_it`] lists.
//! - Streams: every recorded Responses stream through the provider's `StreamTranslator` (internal
//!   events) and the front door's `StreamEncoder` (client bytes). The bytes must equal
//!   `tests/golden/openai-responses-front/<name>.expected`, be well-formed Responses SSE (`event:`
//!   equal to the JSON `type`, `sequence_number` 0, 1, 2, ...), give the same internal events when
//!   read back by the provider's translator (lossless), hold every field OpenAI's recording holds,
//!   event by event, with the same values except the ids, times, model and reasoning blobs
//!   ([`assert_like_recorded`]), report the fixture's usage, and be the same however the recorded
//!   body is split (`split_check`).
//! - Bodies: the recorded non-streaming responses through the provider's `parse_response`, the
//!   front door's `encode_response` and `parse_response` again give the same internal response.
//!
//! `CORELAY_BLESS=1 cargo test --test golden_openai_responses_front` rewrites the expected files
//! from the current output; read the diff before committing it.

use std::path::Path;

use corelay::api::openai_responses::{StreamEncoder, encode_response, parse_request};
use corelay::chat::{ChatResponse, Part, ProviderErrorKind, StreamEvent, Usage};
use corelay::providers::openai_responses::{RequestOptions, StreamTranslator, parse_response, request_body};
use serde_json::{Value, json};

mod golden_files;
mod responses_recordings;
mod split_check;

use golden_files::{mutations, read};

const FIXTURES: &str = corelay::fixture_path!("");
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/openai-responses-front/");
const RESPONSES: &str = "openai/responses/";
const VERCEL: &str = "vercel-ai/openai/";
const GATEWAY_MODEL: &str = "acme/o3-pro";
/// The id the caller (the proxy) would draw for the client's response.
const RESPONSE_ID: &str = "resp_corelay0001";
/// 2025-11-26T00:00:00Z: any fixed time keeps the expected files stable.
const CREATED: u64 = 1_764_115_200;

fn fixture(relative: &str) -> Vec<u8> {
    read(&Path::new(FIXTURES).join(relative))
}

fn json_fixture(relative: &str) -> Value {
    serde_json::from_slice(&fixture(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Requests

/// A recorded request as the provider adapter writes it after the front door read it. The
/// differences, each a documented mapping choice of one side or an SDK's own addition:
/// - `store: false` is added: the provider never asks OpenAI to keep a conversation.
/// - A message's string `content` comes back as one `input_text` part (the same input).
/// - pydantic-ai's `instructions: ""` is left out: the front door drops empty instructions rather
///   than send an empty system prompt to other providers.
/// - `include`, `service_tier` and a null `previous_response_id` are ignored by the front door, and
///   a null `reasoning.summary` is the default.
/// - A whole-number `temperature` comes back as a float (`-1` as `-1.0`): the same number.
fn as_corelay_sends_it(mut recorded: Value) -> Value {
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
    if let Some(temperature) = body.get("temperature").and_then(Value::as_f64) {
        body.insert("temperature".into(), json!(temperature));
    }
    for item in body["input"].as_array_mut().unwrap() {
        if let Some(text) = item.get("content").and_then(Value::as_str) {
            item["content"] = json!([{"type": "input_text", "text": text}]);
        }
    }
    recorded
}

/// Every recorded Responses request: those under `openai/responses/`, and the one that drew the
/// recorded 400 under `openai/errors/`.
fn recorded_requests() -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(Path::new(FIXTURES).join(RESPONSES))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".request.json"))
        .map(|name| format!("{RESPONSES}{name}"))
        .collect();
    found.sort();
    found.push("openai/errors/openai-error-400-responses-invalid-param.request.json".into());
    found
}

#[test]
fn recorded_requests_survive_the_front_door_and_the_provider_adapter() {
    let requests = recorded_requests();
    assert_eq!(requests.len(), 5, "{requests:?}");
    for path in requests {
        let recorded = json_fixture(&path);
        let request = parse_request(&fixture(&path)).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        assert!(request.include_usage, "{path}: Responses clients always get usage");
        assert_eq!(request.stream, recorded["stream"] == json!(true), "{path}");
        let model = recorded["model"].as_str().unwrap();
        assert_eq!(request.model, model, "{path}");
        let options = RequestOptions { model, reasoning_summary: false };
        let body: Value = serde_json::from_slice(&request_body(&request, &options).unwrap()).unwrap();
        assert_eq!(body, as_corelay_sends_it(recorded), "{path}");
    }
}

// ---------------------------------------------------------------------------------------------
// Streams

/// How a recorded stream ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    Completed,
    Failed(ProviderErrorKind),
}

struct StreamCase {
    path: &'static str,
    /// Which response of the file, from 1 (only the multi-step recording has more than one).
    step: usize,
    end: End,
    /// (input, cached, output, reasoning, total) as `response.completed` reports them.
    usage: Option<(u64, u64, u64, u64, u64)>,
}

fn stream_cases() -> Vec<StreamCase> {
    let case = |path, step, end, usage| StreamCase { path, step, end, usage };
    let quota = End::Failed(ProviderErrorKind::Billing);
    vec![
        case(
            "openai/responses/openai-responses-stream-error-insufficient-quota.RECONSTRUCTED-FRAMING.sse",
            1,
            quota,
            None,
        ),
        case(
            "openai/responses/openai-responses-stream-function-call.sse",
            1,
            End::Completed,
            Some((255, 0, 16, 0, 271)),
        ),
        case(
            "openai/responses/openai-responses-stream-reasoning-usage.sse",
            1,
            End::Completed,
            Some((53, 0, 469, 448, 522)),
        ),
        case("openai/responses/openai-responses-stream-text.sse", 1, End::Completed, Some((278, 0, 9, 0, 287))),
        case("vercel-ai/openai/openai-error.1.chunks.txt", 1, quota, None),
        case(
            "vercel-ai/openai/openai-reasoning-encrypted-content.1.chunks.txt",
            1,
            End::Completed,
            Some((134, 0, 28, 0, 162)),
        ),
        case(
            "vercel-ai/openai/openai-reasoning-encrypted-content.1.chunks.txt",
            2,
            End::Completed,
            Some((221, 0, 26, 0, 247)),
        ),
        case(
            "vercel-ai/openai/openai-reasoning-encrypted-content.1.chunks.txt",
            3,
            End::Completed,
            Some((260, 0, 26, 0, 286)),
        ),
        case(
            "vercel-ai/openai/openai-reasoning-encrypted-content.1.chunks.txt",
            4,
            End::Completed,
            Some((299, 0, 12, 0, 311)),
        ),
    ]
}

/// Every `.sse` under `openai/responses/` and the Vercel Responses recordings.
fn recorded_streams() -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(Path::new(FIXTURES).join(RESPONSES))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".sse"))
        .map(|name| format!("{RESPONSES}{name}"))
        .collect();
    found.extend(
        ["openai-error.1.chunks.txt", "openai-reasoning-encrypted-content.1.chunks.txt"]
            .map(|name| format!("{VERCEL}{name}")),
    );
    found.sort();
    found
}

#[test]
fn every_recorded_stream_has_a_case() {
    let mut cased: Vec<String> = stream_cases().iter().map(|c| c.path.to_owned()).collect();
    cased.dedup();
    cased.sort();
    assert_eq!(cased, recorded_streams());
    for path in recorded_streams() {
        let steps: Vec<usize> = stream_cases().iter().filter(|c| c.path == path).map(|c| c.step).collect();
        assert_eq!(steps, (1..=responses_recordings::responses(&path).len()).collect::<Vec<_>>(), "{path}");
    }
}

/// The provider's reading of a Responses body.
fn translate(body: &[u8]) -> Vec<StreamEvent> {
    let mut translator = StreamTranslator::new();
    let mut events = Vec::new();
    translator.feed(body, &mut events);
    translator.finish(&mut events);
    events
}

fn encoder() -> StreamEncoder {
    StreamEncoder::new(GATEWAY_MODEL, CREATED, RESPONSE_ID)
}

/// The front door's client bytes for `events`.
fn encode(events: &[StreamEvent]) -> Vec<u8> {
    let mut encoder = encoder();
    let mut out = Vec::new();
    for event in events {
        encoder.encode(event, &mut out);
    }
    out
}

/// The events of a Responses SSE body as (`event:` name, JSON). With `strict`, each event must be
/// exactly `event: <type>\ndata: <json>\n\n`, numbered from 0, as the front door writes them.
fn sse_events(body: &[u8], strict: bool, name: &str) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(body).unwrap();
    if strict {
        assert!(text.ends_with("\n\n") && !text.contains("[DONE]") && !text.contains('\r'), "{name}");
    }
    let mut events = Vec::new();
    for block in text.split("\n\n").filter(|block| !block.trim().is_empty()) {
        let lines: Vec<&str> = block.lines().collect();
        let event_name = lines.iter().find_map(|l| l.strip_prefix("event: ")).unwrap_or_default().to_owned();
        let data = lines.iter().find_map(|l| l.strip_prefix("data: ")).unwrap();
        let json: Value = serde_json::from_str(data).unwrap();
        if strict {
            assert_eq!(lines.len(), 2, "{name}: {block}");
            assert_eq!(json["type"], event_name.as_str(), "{name}: the `event:` line and the `type` differ");
            assert_eq!(json["sequence_number"], events.len() as u64, "{name}: {block}");
        }
        events.push((event_name, json));
    }
    events
}

/// Members of a recorded event whose values differ by design: the ids are the gateway's
/// (`RESPONSE_ID` and item ids derived from it), `created_at` and `model` the caller's, and the
/// encrypted reasoning is the blob of the item's `output_item.done`, which OpenAI re-encrypts for
/// `response.completed`.
const OURS: [&str; 6] = ["id", "item_id", "created_at", "model", "sequence_number", "encrypted_content"];

/// The members of a `response` object the front door writes; the others echo the request, which
/// the encoder does not see.
const RESPONSE_MEMBERS: [&str; 9] =
    ["id", "object", "created_at", "status", "error", "incomplete_details", "model", "output", "usage"];

/// Every member of the recorded `expected` is in `actual` with an equal value, recursively, except
/// `obfuscation` (random padding), the request echoes of a `response`, and the values of [`OURS`].
fn assert_like_recorded(actual: &Value, expected: &Value, at: &str) {
    match (actual, expected) {
        (Value::Object(actual), Value::Object(expected)) => {
            let response = at.ends_with(".response");
            for (key, value) in expected {
                if key == "obfuscation" || (response && !RESPONSE_MEMBERS.contains(&key.as_str())) {
                    continue;
                }
                let Some(ours) = actual.get(key) else { panic!("{at}.{key} is missing") };
                if !OURS.contains(&key.as_str()) {
                    assert_like_recorded(ours, value, &format!("{at}.{key}"));
                }
            }
        }
        (Value::Array(actual), Value::Array(expected)) => {
            assert_eq!(actual.len(), expected.len(), "{at}");
            for (i, (ours, theirs)) in actual.iter().zip(expected).enumerate() {
                assert_like_recorded(ours, theirs, &format!("{at}[{i}]"));
            }
        }
        // A whole-number float (`1.0`) in an older recording equals its integer.
        (Value::Number(a), Value::Number(b)) => assert_eq!(a.as_f64(), b.as_f64(), "{at}"),
        _ => assert_eq!(actual, expected, "{at}"),
    }
}

/// The client stream is OpenAI's stream event for event: the same types in the same order, and
/// every recorded field present with its value (see [`assert_like_recorded`]). Two differences by
/// design: the `error` event is written in the documented flat shape (`code`, `message`, `param`
/// at the top level) where the recording nests them in `error`; and a reasoning item announced
/// before its summary streams has no `encrypted_content` yet (OpenAI sends a provisional blob there
/// that no client can use; the final one comes with `output_item.done`).
fn assert_same_stream(ours: &[(String, Value)], recorded: &[(String, Value)], name: &str) {
    let kinds = |events: &[(String, Value)]| events.iter().map(|(_, e)| e["type"].clone()).collect::<Vec<_>>();
    assert_eq!(kinds(ours), kinds(recorded), "{name}");
    for (n, ((_, ours), (_, theirs))) in ours.iter().zip(recorded).enumerate() {
        let at = format!("{name}[{n}]");
        let mut theirs = theirs.clone();
        match theirs["type"].as_str().unwrap() {
            "error" => {
                let nested = theirs["error"].clone();
                assert_eq!((&ours["code"], &ours["message"]), (&nested["code"], &nested["message"]), "{at}");
                assert_eq!(ours["param"], Value::Null, "{at}");
                continue;
            }
            "response.output_item.added" if ours["item"].get("encrypted_content").is_none() => {
                theirs["item"].as_object_mut().unwrap().remove("encrypted_content");
            }
            _ => {}
        }
        assert_like_recorded(ours, &theirs, &at);
    }
}

fn usage_of(case: &StreamCase) -> Option<Usage> {
    case.usage.map(|(input, cached, output, reasoning, _)| Usage {
        prompt_tokens: input,
        completion_tokens: output,
        cache_read_tokens: cached,
        cache_write_tokens: 0,
        reasoning_tokens: reasoning,
    })
}

fn assert_usage_and_end(case: &StreamCase, ours: &[(String, Value)], events: &[StreamEvent], name: &str) {
    let (last_name, last) = ours.last().unwrap();
    match case.end {
        End::Completed => assert_eq!(last_name, "response.completed", "{name}"),
        End::Failed(kind) => {
            assert_eq!(last_name, "response.failed", "{name}");
            let [.., StreamEvent::Error(error)] = events else { panic!("{name}: {events:?}") };
            assert_eq!(error.kind, kind, "{name}");
            assert_eq!(last["response"]["error"], json!({"code": "insufficient_quota", "message": error.message}));
        }
    }
    let usage = &last["response"]["usage"];
    let Some((input, cached, output, reasoning, total)) = case.usage else {
        assert_eq!(usage, &Value::Null, "{name}");
        return;
    };
    assert_eq!(
        usage,
        &json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": cached}, "output_tokens": output,
                "output_tokens_details": {"reasoning_tokens": reasoning}, "total_tokens": total}),
        "{name}"
    );
    assert!(events.contains(&StreamEvent::Usage(usage_of(case).unwrap())), "{name}");
}

#[test]
fn recorded_streams_come_back_out_as_openai_wrote_them() {
    for case in stream_cases() {
        let name = responses_recordings::golden_name(case.path, case.step);
        let input = responses_recordings::response(case.path, case.step);
        let events = translate(&input);
        let bytes = encode(&events);
        golden_files::check(GOLDEN, &format!("{name}.expected"), &bytes);

        let ours = sse_events(&bytes, true, &name);
        assert_same_stream(&ours, &sse_events(&input, false, &name), &name);
        assert_usage_and_end(&case, &ours, &events, &name);

        // Read back by the provider adapter: the same events, but for `Start`, which names the
        // response the client saw rather than the provider's.
        let again = translate(&bytes);
        assert!(matches!(&events[0], StreamEvent::Start { .. }), "{name}");
        assert_eq!(again[0], StreamEvent::Start { id: RESPONSE_ID.into(), model: GATEWAY_MODEL.into() }, "{name}");
        assert_eq!(again[1..], events[1..], "{name}");
    }
}

type Relay = (StreamTranslator, StreamEncoder);

fn feed((translator, encoder): &mut Relay, piece: &[u8], out: &mut Vec<u8>) {
    let mut events = Vec::new();
    translator.feed(piece, &mut events);
    for event in &events {
        encoder.encode(event, out);
    }
}

fn finish((translator, encoder): &mut Relay, out: &mut Vec<u8>) {
    let mut events = Vec::new();
    translator.finish(&mut events);
    for event in &events {
        encoder.encode(event, out);
    }
}

#[test]
fn recorded_streams_give_the_same_bytes_however_split() {
    for case in stream_cases() {
        let name = responses_recordings::golden_name(case.path, case.step);
        let input = responses_recordings::response(case.path, case.step);
        let whole = split_check::assert_every_split(&(StreamTranslator::new(), encoder()), &input, feed, finish, &name);
        assert!(whole == encode(&translate(&input)), "{name}: split_check's reference run differs");
        let mut relay = (StreamTranslator::new(), encoder());
        let mut bytewise = Vec::new();
        for byte in input.chunks(1) {
            feed(&mut relay, byte, &mut bytewise);
        }
        finish(&mut relay, &mut bytewise);
        assert!(bytewise == whole, "{name} fed one byte at a time");
    }
}

// ---------------------------------------------------------------------------------------------
// Bodies

/// Recorded non-streaming responses: OpenAI's basic one and the Vercel agent run's last step
/// (reasoning summary, encrypted reasoning, answer).
const BODIES: [&str; 2] = [
    "openai/responses/openai-responses-basic.response.json",
    "vercel-ai/openai/openai-reasoning-encrypted-content.1.json",
];

#[test]
fn recorded_bodies_come_back_as_the_same_response() {
    for path in BODIES {
        let response = parse_response(&fixture(path)).unwrap();
        // The provider's id and model as the response id and model, so everything must come back.
        let body = encode_response(&response, &response.model, CREATED, &response.id);
        let again: ChatResponse = parse_response(&body).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        assert_eq!(again, response, "{path}");

        // Every member OpenAI wrote (but the request echoes) is there, with the recorded value.
        let ours: Value = serde_json::from_slice(&body).unwrap();
        assert_like_recorded(&ours, &json_fixture(path), &format!("{path}.response"));
    }
    let basic = parse_response(&fixture(BODIES[0])).unwrap();
    assert_eq!(basic.content, vec![Part::Text("The capital of France is Paris.".into())]);
    let body = encode_response(&basic, GATEWAY_MODEL, CREATED, RESPONSE_ID);
    golden_files::check(GOLDEN, "openai-responses-basic.response.expected", &body);
    let ours: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        ours["usage"],
        json!({"input_tokens": 24, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 8,
               "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 32})
    );
    assert_eq!(
        (&ours["id"], &ours["model"], &ours["status"]),
        (&json!(RESPONSE_ID), &json!(GATEWAY_MODEL), &json!("completed"))
    );
}

// ---------------------------------------------------------------------------------------------
// Corrupted input

/// The terminal events of a Responses stream.
const TERMINAL: [&str; 3] = ["event: response.completed\n", "event: response.incomplete\n", "event: response.failed\n"];

#[test]
fn corrupted_streams_and_requests_never_panic_and_streams_end_once() {
    for body in mutations(&fixture("openai/responses/openai-responses-stream-function-call.sse")) {
        let bytes = encode(&translate(&body));
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("event: response.created\n"), "{text}");
        let terminals = TERMINAL.iter().map(|t| text.matches(t).count()).sum::<usize>();
        assert_eq!(terminals, 1, "{text}");
        let last = text.trim_end().rsplit("\n\n").next().unwrap();
        assert!(TERMINAL.iter().any(|t| last.starts_with(t)), "{last}");
    }
    for body in mutations(&fixture("openai/responses/openai-responses-stream-text.request.json")) {
        let _ = parse_request(&body);
    }
}
