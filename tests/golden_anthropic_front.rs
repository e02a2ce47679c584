//! Golden tests of the Anthropic Messages front door (`api::anthropic_messages`) on the recorded
//! traffic in `tests/fixtures`. It owns no translation code; it drives the front door with the
//! provider mappings (`providers::anthropic`, `providers::openai_chat`) as the proxy will.
//!
//! - Round trips: every recorded Anthropic stream, decoded by `anthropic::StreamTranslator` and
//!   re-encoded by `StreamEncoder`, must give back the recorded events. What differs, and why, is
//!   exactly what [`normalize_events`] takes out of both sides:
//!   - `ping` events: keep-alives, not content; the encoder writes none.
//!   - `message_start.message.model` (the gateway's id is shown) and `message_start.message.usage`
//!     (zero: the internal stream reports usage at the end).
//!   - `message_delta.usage`: compared as the recording's cumulative counters (`message_start`'s,
//!     overridden by `message_delta`'s), since the encoder writes all four there. Extra usage members
//!     (`cache_creation`, `service_tier`, `inference_geo`, `server_tool_use`) and `stop_details` are
//!     not carried.
//!   - Server-tool blocks (`server_tool_use`, `*_tool_result`) are not the client's and are skipped
//!     by the translator, so later blocks move down; text blocks that then touch merge (the internal
//!     stream has no text-block boundary). Empty deltas (the customary first `input_json_delta` of
//!     `""`, a `thinking_delta` of `""` before the signature) are not carried, nor a tool block's
//!     `caller`, nor `details` / `request_id` of an `error` event.
//!   - A block the recording leaves open at `message_delta` (the SDK's truncated tool-use fixture)
//!     is closed first, as the encoder, like the API, always closes blocks before `message_delta`.
//! - OpenAI recordings through `openai_chat::StreamTranslator` and `StreamEncoder` must equal
//!   `tests/golden/anthropic-front/openai/<fixture>.expected`, split at every byte offset
//!   (`split_check`) and one byte at a time, with usage asserted from the fixtures.
//! - Requests: every recorded Anthropic request parses and maps back through `anthropic::request_body`
//!   to the same JSON (the one with a server tool is refused by name, and maps back once the server
//!   tool and `defer_loading` are taken out); each also maps to an OpenAI body, checked in as
//!   `requests/<fixture>.openai.expected`.
//! - Responses: recorded Anthropic bodies round-trip through `anthropic::parse_response` and
//!   `encode_response` (less model and the extra usage members); recorded OpenAI bodies map to
//!   `responses/<fixture>.expected`.
//!
//! `CORELAY_BLESS=1 cargo test --test golden_anthropic_front` rewrites the expected files from the
//! current output; read them before committing.

use std::collections::HashMap;
use std::path::Path;

use corelay::api::anthropic_messages::{StreamEncoder, encode_response, parse_request};
use corelay::chat::{FinishReason, ProviderErrorKind, RequestError, StreamEvent};
use corelay::providers::{anthropic, openai_chat};
use serde_json::{Map, Value, json};

mod golden_files;
use golden_files::mutations;

mod split_check;

const FIXTURES: &str = corelay::fixture_path!("");
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/anthropic-front/");
const GATEWAY_MODEL: &str = "acme/claude";

fn fixture(relative: &str) -> Vec<u8> {
    let path = Path::new(FIXTURES).join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture_json(relative: &str) -> Value {
    serde_json::from_slice(&fixture(relative)).unwrap()
}

/// The files in `dir` (under the fixtures) whose names end with `suffix`, as relative paths.
fn listed(dir: &str, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(Path::new(FIXTURES).join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(suffix))
        .map(|name| format!("{dir}/{name}"))
        .collect();
    names.sort();
    names
}

fn stem(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.split_once('.').map_or(name, |(stem, _)| stem)
}

/// Compares `actual` with the expected file `name`, or writes it when blessing.
fn check_golden(name: &str, actual: &[u8]) {
    golden_files::check(GOLDEN, name, actual);
}

/// The events of an Anthropic SSE body as their data JSON; each event's name must equal its type.
fn sse_events(body: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(body).unwrap().replace("\r\n", "\n");
    let mut events = Vec::new();
    for block in text.split("\n\n").filter(|block| !block.trim().is_empty()) {
        let mut name = None;
        let mut data = None;
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event: ") {
                name = Some(value.to_owned());
            } else if let Some(value) = line.strip_prefix("data: ") {
                data = Some(serde_json::from_str::<Value>(value).unwrap_or_else(|e| panic!("{value}: {e}")));
            }
        }
        let data = data.unwrap_or_else(|| panic!("an event without data: {block}"));
        assert_eq!(name.as_deref(), data["type"].as_str(), "{block}");
        events.push(data);
    }
    events
}

/// Internal events for a body, through a provider translator.
fn anthropic_events(body: &[u8]) -> Vec<StreamEvent> {
    let mut translator = anthropic::StreamTranslator::new();
    let mut events = Vec::new();
    translator.feed(body, &mut events);
    translator.finish(&mut events);
    events
}

fn encode(events: &[StreamEvent]) -> Vec<u8> {
    let mut encoder = StreamEncoder::new(GATEWAY_MODEL);
    let mut out = Vec::new();
    events.iter().for_each(|event| encoder.encode(event, &mut out));
    assert!(encoder.is_done());
    out
}

const USAGE_COUNTERS: [&str; 4] =
    ["input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens"];

/// The counters of `usage` laid over `base`.
fn merged_usage(base: &Value, usage: &Value) -> Value {
    let mut merged = Map::new();
    for counter in USAGE_COUNTERS {
        let value = usage.get(counter).or_else(|| base.get(counter)).cloned().unwrap_or(json!(0));
        merged.insert(counter.to_owned(), value);
    }
    Value::Object(merged)
}

/// One stream as the round-trip comparison sees it (see the module doc).
fn normalize_events(events: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut start_usage = json!({});
    // Recorded block index -> compared index; `None` for skipped blocks.
    let mut blocks: HashMap<u64, Option<u64>> = HashMap::new();
    let mut next_index = 0;
    // The compared index of a text block whose stop is the last event kept, for merging.
    let mut text_stop: Option<u64> = None;
    for mut event in events {
        let index = event["index"].as_u64().unwrap_or(u64::MAX);
        let mapped = blocks.get(&index).copied().flatten();
        let kept_before = out.len();
        let mut stopped_text = None;
        match event["type"].as_str().unwrap() {
            "ping" => {}
            "message_start" => {
                let message = event["message"].as_object_mut().unwrap();
                start_usage = message.remove("usage").unwrap_or(json!({}));
                message.remove("stop_details");
                message.insert("model".into(), json!("<model>"));
                out.push(event);
            }
            "content_block_start" => {
                let kind = event["content_block"]["type"].as_str().unwrap().to_owned();
                if !["text", "thinking", "redacted_thinking", "tool_use"].contains(&kind.as_str()) {
                    blocks.insert(index, None);
                } else if let (Some(merged), "text") = (text_stop, kind.as_str()) {
                    out.pop();
                    blocks.insert(index, Some(merged));
                } else {
                    blocks.insert(index, Some(next_index));
                    event["index"] = json!(next_index);
                    next_index += 1;
                    event["content_block"].as_object_mut().unwrap().remove("caller");
                    out.push(event);
                }
            }
            "content_block_delta" => {
                let empty = ["text", "thinking", "partial_json"].iter().any(|field| event["delta"][field] == "");
                if let (Some(mapped), false) = (mapped, empty) {
                    event["index"] = json!(mapped);
                    out.push(event);
                }
            }
            "content_block_stop" => {
                if let Some(mapped) = mapped {
                    let is_text = out.iter().any(|e| {
                        e["type"] == "content_block_start"
                            && e["index"] == mapped
                            && e["content_block"]["type"] == "text"
                    });
                    stopped_text = is_text.then_some(mapped);
                    event["index"] = json!(mapped);
                    out.push(event);
                }
            }
            "message_delta" => {
                close_open_block(&mut out);
                event["delta"].as_object_mut().unwrap().remove("stop_details");
                event["usage"] = merged_usage(&start_usage, &event["usage"]);
                out.push(event);
            }
            "error" => out.push(json!({"type": "error", "error": {
                "type": event["error"]["type"], "message": event["error"]["message"]}})),
            _ => out.push(event),
        }
        // Only kept (or merged-away) events move the merge point; skipped ones are invisible.
        if out.len() != kept_before {
            text_stop = stopped_text;
        }
    }
    out
}

/// Equal event lists, reporting the first difference rather than both lists whole.
fn assert_same_events(ours: &[Value], recorded: &[Value], name: &str) {
    for (position, (a, b)) in ours.iter().zip(recorded).enumerate() {
        assert_eq!(a, b, "{name}: event {position}");
    }
    assert_eq!(ours.len(), recorded.len(), "{name}: {ours:?}");
}

/// Adds the `content_block_stop` of a block still open (a recording that ends a block with the
/// message).
fn close_open_block(out: &mut Vec<Value>) {
    let last_block_event =
        out.iter().rev().find(|e| e["type"].as_str().is_some_and(|t| t.starts_with("content_block")));
    if let Some(event) = last_block_event.filter(|e| e["type"] != "content_block_stop") {
        let index = event["index"].clone();
        out.push(json!({"type": "content_block_stop", "index": index}));
    }
}

#[test]
fn recorded_anthropic_streams_round_trip() {
    let recorded = [listed("anthropic", ".sse"), listed("anthropic/sdk", ".sse")].concat();
    assert_eq!(recorded.len(), 8);
    for path in recorded {
        let input = fixture(&path);
        let events = anthropic_events(&input);
        let ours = normalize_events(sse_events(&encode(&events)));
        let recorded = normalize_events(sse_events(&input));
        assert_same_events(&ours, &recorded, &path);
    }
}

#[test]
fn the_tool_stream_round_trip_shows_the_listed_differences() {
    // Pins what the normalization hides for the richest recording: server-tool blocks 1 and 2 are
    // gone, text blocks 0 and 3 are one block, the client tool call is block 1.
    let ours = sse_events(&encode(&anthropic_events(&fixture("anthropic/anthropic-messages-stream-tool.sse"))));
    let starts: Vec<(u64, &str)> = ours
        .iter()
        .filter(|e| e["type"] == "content_block_start")
        .map(|e| (e["index"].as_u64().unwrap(), e["content_block"]["type"].as_str().unwrap()))
        .collect();
    assert_eq!(starts, vec![(0, "text"), (1, "tool_use")]);
    assert_eq!(ours[0]["message"]["model"], GATEWAY_MODEL);
    assert_eq!(ours[0]["message"]["id"], "msg_01E3Wn1NynZw9FALZ68znj9S");
    let delta = ours.iter().find(|e| e["type"] == "message_delta").unwrap();
    assert_eq!(
        delta["usage"],
        json!({"input_tokens": 1591, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 175})
    );
}

struct OpenAiCase {
    name: &'static str,
    stop_reason: &'static str,
    /// (input, output) tokens of the final `message_delta`, as recorded in the usage chunk.
    usage: (u64, u64),
    tool_calls: usize,
}

fn openai_cases() -> Vec<OpenAiCase> {
    let case = |name, stop_reason, usage, tool_calls| OpenAiCase { name, stop_reason, usage, tool_calls };
    vec![
        case("openai/chat/openai-chat-stream-finish-length.sse", "max_tokens", (79, 1), 0),
        case("openai/chat/openai-chat-stream-logprobs.sse", "end_turn", (9, 2), 0),
        case("openai/chat/openai-chat-stream-long-content.sse", "end_turn", (19, 177), 0),
        case("openai/chat/openai-chat-stream-n3-choices.sse", "end_turn", (79, 42), 0),
        case("openai/chat/openai-chat-stream-parallel-tool-calls.sse", "tool_use", (149, 60), 2),
        case("openai/chat/openai-chat-stream-refusal.sse", "end_turn", (79, 11), 0),
        case("openai/chat/openai-chat-stream-text-usage.sse", "end_turn", (78, 9), 0),
        case("openai/chat/openai-chat-stream-tool-call-usage.sse", "tool_use", (53, 15), 1),
        case("openai/chat/openai-chat-stream-tool-call.sse", "tool_use", (44, 16), 1),
        case("openai/chat/openai-chat-stream-usage.sse", "end_turn", (14, 30), 0),
    ]
}

type Relay = (openai_chat::StreamTranslator, StreamEncoder);

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

fn fresh_relay() -> Relay {
    (openai_chat::StreamTranslator::new(), StreamEncoder::new(GATEWAY_MODEL))
}

#[test]
fn every_recorded_openai_stream_has_a_case() {
    let cased: Vec<String> = openai_cases().iter().map(|c| c.name.to_owned()).collect();
    assert_eq!(cased, listed("openai/chat", ".sse"));
}

/// At most one block open, stops matching starts, `message_stop` last.
fn assert_well_formed(events: &[Value], name: &str) {
    let mut open: Option<&Value> = None;
    let mut next = 0;
    for event in events {
        match event["type"].as_str().unwrap() {
            "content_block_start" => {
                assert!(open.is_none(), "{name}");
                assert_eq!(event["index"], next, "{name}");
                next += 1;
                open = Some(&event["index"]);
            }
            "content_block_delta" => assert_eq!(Some(&event["index"]), open, "{name}"),
            "content_block_stop" => assert_eq!(Some(&event["index"]), open.take(), "{name}"),
            _ => {}
        }
    }
    assert_eq!(events.last().map(|e| &e["type"]), Some(&json!("message_stop")), "{name}");
}

#[test]
fn recorded_openai_streams_match_their_golden_files() {
    for case in openai_cases() {
        let input = fixture(case.name);
        let whole = split_check::assert_every_split(&fresh_relay(), &input, feed, finish, case.name);
        let mut bytewise_relay = fresh_relay();
        let mut bytewise = Vec::new();
        input.chunks(1).for_each(|piece| feed(&mut bytewise_relay, piece, &mut bytewise));
        finish(&mut bytewise_relay, &mut bytewise);
        assert!(bytewise == whole, "{} fed one byte at a time", case.name);
        check_golden(&format!("openai/{}.expected", stem(case.name)), &whole);

        let events = sse_events(&whole);
        assert_well_formed(&events, case.name);
        let delta = events.iter().find(|e| e["type"] == "message_delta").unwrap();
        assert_eq!(delta["delta"]["stop_reason"], case.stop_reason, "{}", case.name);
        assert_eq!(delta["usage"]["input_tokens"], case.usage.0, "{}", case.name);
        assert_eq!(delta["usage"]["output_tokens"], case.usage.1, "{}", case.name);
        let tools = events.iter().filter(|e| e["content_block"]["type"] == "tool_use").count();
        assert_eq!(tools, case.tool_calls, "{}", case.name);
    }
}

#[test]
fn openai_tool_arguments_arrive_whole() {
    let whole = split_check::assert_every_split(
        &fresh_relay(),
        &fixture("openai/chat/openai-chat-stream-parallel-tool-calls.sse"),
        feed,
        finish,
        "parallel",
    );
    let events = sse_events(&whole);
    let arguments = |index: u64| -> Value {
        let text: String = events
            .iter()
            .filter(|e| e["index"] == index && e["delta"]["type"] == "input_json_delta")
            .map(|e| e["delta"]["partial_json"].as_str().unwrap())
            .collect();
        serde_json::from_str(&text).unwrap()
    };
    assert_eq!(arguments(0), json!({"city": "Edinburgh", "country": "GB", "units": "c"}));
    assert_eq!(arguments(1), json!({"ticker": "AAPL", "exchange": "NASDAQ"}));
}

#[test]
fn an_openai_error_mid_stream_is_an_anthropic_error_event() {
    let input = b"data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n\
        data: {\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}\n\n";
    let mut relay = fresh_relay();
    let mut out = Vec::new();
    feed(&mut relay, input, &mut out);
    finish(&mut relay, &mut out);
    let events = sse_events(&out);
    assert_eq!(
        events.last(),
        Some(&json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limit reached"}}))
    );
    let cut = sse_events(&{
        let mut relay = fresh_relay();
        let mut out = Vec::new();
        feed(&mut relay, &input[..input.len() / 2], &mut out);
        finish(&mut relay, &mut out);
        out
    });
    assert_eq!(cut.last().unwrap()["error"]["type"], "api_error");
}

fn anthropic_options(model: &str) -> anthropic::RequestOptions<'_> {
    anthropic::RequestOptions { model, default_max_tokens: 4096, dialect: anthropic::Dialect::Anthropic }
}

fn openai_options(model: &str) -> openai_chat::RequestOptions<'_> {
    openai_chat::RequestOptions { model, legacy_max_tokens: false, pass_extra: false }
}

/// The recorded request through the front door and back out as an Anthropic body.
fn round_trip(recorded: &Value) -> Result<Value, RequestError> {
    let request = parse_request(recorded.to_string().as_bytes())?;
    let model = recorded["model"].as_str().unwrap();
    Ok(serde_json::from_slice(&anthropic::request_body(&request, &anthropic_options(model))?).unwrap())
}

#[test]
fn recorded_anthropic_requests_round_trip() {
    let requests = listed("anthropic", ".request.json");
    assert_eq!(requests.len(), 7);
    for path in requests {
        let recorded = fixture_json(&path);
        if path.ends_with("anthropic-messages-stream-tool.request.json") {
            let error = round_trip(&recorded).unwrap_err();
            assert!(matches!(&error, RequestError::Unsupported { param, .. } if param == "tools.2.type"), "{error:?}");
            let mut without = recorded.clone();
            let tools = without["tools"].as_array_mut().unwrap();
            tools.pop();
            for tool in tools.iter_mut() {
                tool.as_object_mut().unwrap().remove("defer_loading");
            }
            assert_eq!(round_trip(&without).unwrap(), without, "{path}");
            continue;
        }
        assert_eq!(round_trip(&recorded).unwrap(), recorded, "{path}");
        let request = parse_request(&fixture(&path)).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        let model = recorded["model"].as_str().unwrap();
        let body = openai_chat::request_body(&request, &openai_options(model)).unwrap();
        check_golden(&format!("requests/{}.openai.expected", stem(&path)), &body);
    }
}

/// An Anthropic message body as the response comparison sees it: the gateway model and the usage
/// counters only.
fn normalize_message(mut message: Value) -> Value {
    message["model"] = json!("<model>");
    message["usage"] = merged_usage(&json!({}), &message["usage"]);
    message
}

#[test]
fn recorded_anthropic_responses_round_trip() {
    let responses = listed("anthropic", ".response.json");
    assert_eq!(responses.len(), 3);
    for path in responses {
        let recorded = fixture_json(&path);
        let response = anthropic::parse_response(&fixture(&path)).unwrap();
        let ours: Value = serde_json::from_slice(&encode_response(&response, GATEWAY_MODEL)).unwrap();
        assert_eq!(ours["model"], GATEWAY_MODEL);
        assert_eq!(normalize_message(ours), normalize_message(recorded), "{path}");
    }
}

#[test]
fn recorded_openai_responses_match_their_golden_files() {
    let cases = [
        ("openai/chat/openai-chat-basic.response.json", "end_turn", (24, 8), 0),
        ("openai/chat/openai-chat-tool-call.response.json", "tool_use", (68, 12), 1),
        ("openai/chat/openai-chat-tool-result-followup.response.json", "tool_use", (89, 36), 1),
    ];
    assert_eq!(cases.map(|c| c.0.to_owned()).to_vec(), listed("openai/chat", ".response.json"));
    for (path, stop_reason, (input, output), tool_calls) in cases {
        let response = openai_chat::parse_response(&fixture(path)).unwrap();
        let body = encode_response(&response, GATEWAY_MODEL);
        check_golden(&format!("responses/{}.expected", stem(path)), &body);
        let message: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(message["stop_reason"], stop_reason, "{path}");
        assert_eq!(
            (message["usage"]["input_tokens"].clone(), message["usage"]["output_tokens"].clone()),
            (json!(input), json!(output)),
            "{path}"
        );
        let tools = message["content"].as_array().unwrap().iter().filter(|b| b["type"] == "tool_use").count();
        assert_eq!(tools, tool_calls, "{path}");
    }
}

#[test]
fn a_claude_code_style_request_maps_to_both_providers() {
    let body = json!({
        "model": GATEWAY_MODEL, "max_tokens": 32000, "stream": true, "temperature": 1,
        "metadata": {"user_id": "user_abc_account__session_1"},
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "tools": [{"name": "Read", "description": "Read a file",
                   "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "read a.txt", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should read it.", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a.txt"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "hello"}], "is_error": false},
                {"type": "text", "text": "summarize"}]}],
        "context_management": {"edits": []}
    });
    let request = parse_request(body.to_string().as_bytes()).unwrap();
    let anthropic_body: Value =
        serde_json::from_slice(&anthropic::request_body(&request, &anthropic_options("claude-sonnet-4-5")).unwrap())
            .unwrap();
    assert_eq!(
        anthropic_body,
        json!({"model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": true, "temperature": 1.0,
               "metadata": {"user_id": "user_abc_account__session_1"}, "system": "You are Claude Code.",
               "thinking": {"type": "enabled", "budget_tokens": 4000},
               "tools": [{"name": "Read", "description": "Read a file",
                          "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}],
               "messages": [
                   {"role": "user", "content": [{"type": "text", "text": "read a.txt"}]},
                   {"role": "assistant", "content": [
                       {"type": "thinking", "thinking": "I should read it.", "signature": "sig"},
                       {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a.txt"}}]},
                   {"role": "user", "content": [
                       {"type": "tool_result", "tool_use_id": "toolu_1", "content": "hello"},
                       {"type": "text", "text": "summarize"}]}]})
    );
    let openai_body: Value =
        serde_json::from_slice(&openai_chat::request_body(&request, &openai_options("gpt-5")).unwrap()).unwrap();
    assert_eq!(
        openai_body,
        json!({"model": "gpt-5", "max_completion_tokens": 32000, "stream": true, "stream_options": {"include_usage": true},
               "temperature": 1.0, "user": "user_abc_account__session_1", "reasoning_effort": "medium",
               "tools": [{"type": "function", "function": {"name": "Read", "description": "Read a file",
                          "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}],
               "messages": [
                   {"role": "system", "content": "You are Claude Code."},
                   {"role": "user", "content": "read a.txt"},
                   {"role": "assistant", "content": null, "tool_calls": [
                       {"id": "toolu_1", "type": "function", "function": {"name": "Read", "arguments": "{\"path\":\"a.txt\"}"}}]},
                   {"role": "tool", "tool_call_id": "toolu_1", "content": "hello"},
                   {"role": "user", "content": "summarize"}]})
    );
}

#[test]
fn an_overloaded_first_event_leaves_room_to_fail_over() {
    let recorded =
        String::from_utf8(fixture("anthropic/anthropic-messages-stream-overloaded-error.RECONSTRUCTED.sse")).unwrap();
    let kept: Vec<&str> =
        recorded.split_terminator("\n\n").filter(|event| !event.starts_with("event: content_block")).collect();
    let events = anthropic_events(format!("{}\n\n", kept.join("\n\n")).as_bytes());
    assert!(events.iter().all(|e| !e.commits()));
    let encoded = sse_events(&encode(&events));
    assert_eq!(encoded.iter().map(|e| e["type"].as_str().unwrap()).collect::<Vec<_>>(), ["message_start", "error"]);
    assert_eq!(encoded[1]["error"], json!({"type": "overloaded_error", "message": "Overloaded"}));
    let StreamEvent::Error(error) = events.last().unwrap() else { panic!("{events:?}") };
    assert_eq!(error.kind, ProviderErrorKind::Overloaded);
    assert_eq!(corelay::api::anthropic_messages::error_status(error), 529);
}

#[test]
fn corrupted_requests_and_responses_never_panic() {
    let request = br#"{"model":"gw","max_tokens":9,"stream":true,"system":[{"type":"text","text":"s"}],
        "messages":[{"role":"user","content":[{"type":"text","text":"t"},
        {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]},
        {"role":"assistant","content":[{"type":"thinking","thinking":"h","signature":"g"},
        {"type":"tool_use","id":"c","name":"f","input":{}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"c","content":"x"}]}],
        "thinking":{"type":"enabled","budget_tokens":1024},"stop_sequences":["a"],"top_k":3,
        "tools":[{"name":"f","input_schema":{}}],"tool_choice":{"type":"any"},"metadata":{"user_id":"u"}}"#;
    let parsed = parse_request(request).unwrap();
    assert!(anthropic::request_body(&parsed, &anthropic_options("claude")).is_ok());
    assert!(openai_chat::request_body(&parsed, &openai_options("gpt")).is_ok());
    for body in mutations(request) {
        if let Ok(parsed) = parse_request(&body) {
            let _ = anthropic::request_body(&parsed, &anthropic_options("claude"));
            let _ = openai_chat::request_body(&parsed, &openai_options("gpt"));
        }
    }
    let response = fixture("openai/chat/openai-chat-tool-call.response.json");
    let compact = serde_json::to_vec(&serde_json::from_slice::<Value>(&response).unwrap()).unwrap();
    for body in mutations(&compact) {
        if let Ok(parsed) = openai_chat::parse_response(&body) {
            let _ = encode_response(&parsed, GATEWAY_MODEL);
        }
        let _ = openai_chat::classify_error(400, &body);
    }
}

#[test]
fn finish_reasons_become_stop_reasons_in_bodies() {
    for (finish, stop) in [
        (FinishReason::Stop, "end_turn"),
        (FinishReason::Length, "max_tokens"),
        (FinishReason::ToolCalls, "tool_use"),
        (FinishReason::ContentFilter, "refusal"),
    ] {
        let response = corelay::chat::ChatResponse { finish_reason: finish, ..Default::default() };
        let body: Value = serde_json::from_slice(&encode_response(&response, GATEWAY_MODEL)).unwrap();
        assert_eq!(body["stop_reason"], stop);
    }
}
