//! Golden tests of the OpenAI-client <-> Anthropic-provider translation, on the recorded traffic in
//! `tests/fixtures/anthropic` and `tests/fixtures/vercel-ai/anthropic` (fidelity notes in
//! `INDEX.md`). It owns no translation code;
//! it drives `sse::decoder`, `providers::anthropic` and `api::openai_chat` as the proxy will.
//!
//! - Every recorded stream goes through decoder + translator + OpenAI encoder whole, split in two at
//!   every byte offset, and one byte at a time; the client bytes must equal
//!   `tests/golden/anthropic/<fixture>.expected` exactly, and usage and the terminal event are
//!   asserted with numbers read from the fixture.
//! - Every recorded non-streaming body becomes an OpenAI `chat.completion` equal to its expected file.
//! - Requests: OpenAI requests equivalent to recorded Anthropic requests must reproduce those
//!   requests exactly (Vertex dialect included); the recorded OpenAI requests map to checked-in
//!   expected bodies; hand-written cases pin images, documents, tool results and system prompts.
//!
//! `CORELAY_BLESS=1 cargo test --test golden_anthropic` rewrites the expected files from the current
//! output; read the diff before committing it.

use std::path::{Path, PathBuf};

use corelay::api::openai_chat::{ChunkEncoder, encode_response, parse_request};
use corelay::chat::{FinishReason, ProviderErrorKind, StreamEvent, Usage};
use corelay::providers::anthropic::{Dialect, RequestOptions, StreamTranslator, parse_response, request_body};
use serde_json::{Value, json};

mod golden_files;
use golden_files::mutations;
mod translated_relay;
use corelay::providers::Translator;
use golden_files::read;
use translated_relay::Outcome;

const FIXTURES: &str = corelay::fixture_path!("");
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/anthropic/");
const GATEWAY_MODEL: &str = "acme/claude";
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
    let translator = Translator::Anthropic(StreamTranslator::new());
    translated_relay::relay(translator, ChunkEncoder::new(GATEWAY_MODEL, CREATED, true), pieces)
}

/// How a recorded stream must end, with its usage as recorded (`input_tokens` +
/// cache counters -> prompt, `output_tokens` -> completion).
enum End {
    Finish(FinishReason),
    Error(ProviderErrorKind),
}

struct StreamCase {
    path: &'static str,
    end: End,
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
            path: "anthropic/anthropic-messages-stream-text.sse",
            end: Finish(FinishReason::Stop),
            usage: usage(20, 5),
            tool_calls: 0,
        },
        StreamCase {
            path: "anthropic/anthropic-messages-stream-thinking.sse",
            end: Finish(FinishReason::Stop),
            usage: usage(43, 282),
            tool_calls: 0,
        },
        StreamCase {
            path: "anthropic/anthropic-messages-stream-redacted-thinking.sse",
            end: Finish(FinishReason::Stop),
            usage: usage(92, 189),
            tool_calls: 0,
        },
        // message_start says 702 input tokens; message_delta's 1591 (after the server-side tool
        // search) is the final count.
        StreamCase {
            path: "anthropic/anthropic-messages-stream-tool.sse",
            end: Finish(FinishReason::ToolCalls),
            usage: usage(1591, 175),
            tool_calls: 1,
        },
        // Cut off by the error: only message_start's counts are known.
        StreamCase {
            path: "anthropic/anthropic-messages-stream-overloaded-error.RECONSTRUCTED.sse",
            end: Error(ProviderErrorKind::Overloaded),
            usage: usage(20, 1),
            tool_calls: 0,
        },
        StreamCase {
            path: "anthropic/sdk/anthropic-sdk-stream-basic.sse",
            end: Finish(FinishReason::Stop),
            usage: usage(11, 6),
            tool_calls: 0,
        },
        StreamCase {
            path: "anthropic/sdk/anthropic-sdk-stream-incomplete-partial-json.sse",
            end: Finish(FinishReason::Length),
            usage: usage(450, 124),
            tool_calls: 1,
        },
        StreamCase {
            path: "anthropic/sdk/anthropic-sdk-stream-tool-use.sse",
            end: Finish(FinishReason::ToolCalls),
            usage: usage(377, 65),
            tool_calls: 1,
        },
        // The Vercel AI SDK's recordings: one event JSON per line, framed as SSE by `stream_fixture`.
        StreamCase {
            path: "vercel-ai/anthropic/anthropic-clear-thinking.1.chunks.txt",
            end: Finish(FinishReason::Stop),
            usage: usage(69, 53),
            tool_calls: 0,
        },
        StreamCase {
            path: "vercel-ai/anthropic/anthropic-json-tool.1.chunks.txt",
            end: Finish(FinishReason::ToolCalls),
            usage: usage(849, 47),
            tool_calls: 1,
        },
        // message_delta's input_tokens (61) replaces message_start's (43).
        StreamCase {
            path: "vercel-ai/anthropic/anthropic-message-delta-input-tokens.chunks.txt",
            end: Finish(FinishReason::Stop),
            usage: usage(61, 2),
            tool_calls: 0,
        },
        StreamCase {
            path: "vercel-ai/anthropic/anthropic-text.chunks.txt",
            end: Finish(FinishReason::Stop),
            usage: usage(12, 30),
            tool_calls: 0,
        },
        StreamCase {
            path: "vercel-ai/anthropic/anthropic-tool-no-args.chunks.txt",
            end: Finish(FinishReason::ToolCalls),
            usage: usage(565, 48),
            tool_calls: 1,
        },
    ]
}

fn stem(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.split_once('.').map_or(name, |(stem, _)| stem)
}

/// A recorded stream as the provider sends it: `.sse` files as they are; the Vercel AI SDK's
/// `.chunks.txt` (one event JSON per line) framed as Anthropic's SSE (`event: {type}` then `data:`).
fn stream_fixture(path: &str) -> Vec<u8> {
    let recorded = fixture(path);
    if !path.ends_with(".chunks.txt") {
        return recorded;
    }
    let mut framed = Vec::new();
    for line in recorded.split(|&b| b == b'\n').filter(|line| !line.is_empty()) {
        let event: Value = serde_json::from_slice(line).unwrap_or_else(|e| panic!("{path}: {e}"));
        framed.extend_from_slice(format!("event: {}\ndata: ", event["type"].as_str().unwrap()).as_bytes());
        framed.extend_from_slice(line);
        framed.extend_from_slice(b"\n\n");
    }
    framed
}

/// Every `.sse` under `anthropic/` and `.chunks.txt` under `vercel-ai/anthropic/`, so a fixture added
/// later cannot go untested.
fn recorded_streams() -> Vec<String> {
    let mut found = Vec::new();
    for (dir, suffix) in [("anthropic", ".sse"), ("anthropic/sdk", ".sse"), ("vercel-ai/anthropic", ".chunks.txt")] {
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

#[test]
fn recorded_streams_match_their_golden_files() {
    for case in stream_cases() {
        let input = stream_fixture(case.path);
        let outcome = relay([input.as_slice()]);
        check_golden(&format!("{}.expected", stem(case.path)), &outcome.client_bytes);

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

#[test]
fn recorded_streams_give_the_same_bytes_however_split() {
    for case in stream_cases() {
        let input = stream_fixture(case.path);
        let whole = relay([input.as_slice()]).client_bytes;
        for at in 0..=input.len() {
            let split = relay([&input[..at], &input[at..]]);
            assert!(split.client_bytes == whole, "{} split at {at}", case.path);
            assert_eq!(split.usage, case.usage, "{} split at {at}", case.path);
        }
        let bytewise = relay(input.chunks(1));
        assert!(bytewise.client_bytes == whole, "{} fed one byte at a time", case.path);
    }
}

#[test]
fn overloaded_before_any_content_leaves_room_to_fail_over() {
    // The reconstructed stream with its content events removed: message_start, ping, error.
    let recorded =
        String::from_utf8(fixture("anthropic/anthropic-messages-stream-overloaded-error.RECONSTRUCTED.sse")).unwrap();
    let kept: Vec<&str> =
        recorded.split_terminator("\n\n").filter(|event| !event.starts_with("event: content_block")).collect();
    let outcome = relay([format!("{}\n\n", kept.join("\n\n")).as_bytes()]);
    let error_at = outcome.events.iter().position(|e| matches!(e, StreamEvent::Error(_))).expect("an error");
    assert!(outcome.events[..error_at].iter().all(|e| !e.commits()), "{:?}", outcome.events);
    let StreamEvent::Error(error) = &outcome.events[error_at] else { unreachable!() };
    assert!(error.retryable());
    assert_eq!(error.message, "Overloaded");
}

#[test]
fn recorded_responses_match_their_golden_files() {
    let cases = [
        ("anthropic-messages-basic", FinishReason::Stop, usage(20, 10), 0),
        ("anthropic-messages-parallel-tool-use", FinishReason::ToolCalls, usage(423, 202), 4),
        ("anthropic-messages-thinking-tool-use", FinishReason::ToolCalls, usage(398, 155), 1),
        ("vercel-ai/anthropic-clear-thinking.1", FinishReason::Stop, usage(69, 33), 0),
        ("vercel-ai/anthropic-json-tool.1", FinishReason::ToolCalls, usage(1151, 87), 1),
        ("vercel-ai/anthropic-text", FinishReason::Stop, usage(12, 29), 0),
        ("vercel-ai/anthropic-tool-no-args", FinishReason::ToolCalls, usage(602, 93), 1),
    ];
    for (name, finish, usage, tool_calls) in cases {
        // Ours are `anthropic/{name}.response.json`; the Vercel AI SDK's `vercel-ai/anthropic/{name}.json`.
        // (Their streams' expected files share the stem, so theirs get `.response.expected`.)
        let (path, expected) = match name.strip_prefix("vercel-ai/") {
            Some(vercel) => {
                (format!("vercel-ai/anthropic/{vercel}.json"), format!("{}.response.expected", stem(vercel)))
            }
            None => (format!("anthropic/{name}.response.json"), format!("{name}.expected")),
        };
        let response = parse_response(&fixture(&path)).unwrap_or_else(|e| panic!("{path}: {e:?}"));
        assert_eq!((response.finish_reason, response.usage, response.tool_calls.len()), (finish, usage, tool_calls));
        let body = encode_response(&response, GATEWAY_MODEL, CREATED);
        check_golden(&expected, &body);
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed["usage"]["total_tokens"], usage.prompt_tokens + usage.completion_tokens);
    }
}

fn anthropic_body(openai: &Value, model: &str, default_max_tokens: u32, dialect: Dialect) -> Value {
    let request = parse_request(openai.to_string().as_bytes()).unwrap();
    let options = RequestOptions { model, default_max_tokens, dialect };
    serde_json::from_slice(&request_body(&request, &options).unwrap()).unwrap()
}

fn recorded_json(relative: &str) -> Value {
    serde_json::from_slice(&fixture(relative)).unwrap()
}

#[test]
fn openai_requests_reproduce_recorded_anthropic_requests() {
    let user = |text: &str| json!({"role": "user", "content": text});
    let basic = json!({"model": GATEWAY_MODEL, "stream": false, "messages": [
        {"role": "system", "content": "You are a helpful assistant.\n\n"},
        user("What is the capital of France?")]});
    assert_eq!(
        anthropic_body(&basic, "claude-3-opus-latest", 4096, Dialect::Anthropic),
        recorded_json("anthropic/anthropic-messages-basic.request.json")
    );
    assert_eq!(
        anthropic_body(&basic, "unused", 4096, Dialect::Vertex),
        recorded_json("vertex/vertex-anthropic-rawpredict.RECONSTRUCTED.request.json")
    );

    let text = json!({"model": GATEWAY_MODEL, "stream": true, "max_tokens": 32000,
                      "messages": [user("What is 1+1? Answer with just the number.")]});
    assert_eq!(
        anthropic_body(&text, "claude-sonnet-4-5", 1024, Dialect::Anthropic),
        recorded_json("anthropic/anthropic-messages-stream-text.request.json")
    );
    assert_eq!(
        anthropic_body(&text, "unused", 1024, Dialect::Vertex),
        recorded_json("vertex/vertex-anthropic-streamrawpredict.RECONSTRUCTED.request.json")
    );

    let thinking = json!({"model": GATEWAY_MODEL, "stream": true, "max_completion_tokens": 4096,
                          "thinking": {"type": "enabled", "budget_tokens": 1024},
                          "messages": [user("How do I cross the street?")]});
    assert_eq!(
        anthropic_body(&thinking, "claude-sonnet-4-0", 1000, Dialect::Anthropic),
        recorded_json("anthropic/anthropic-messages-stream-thinking.request.json")
    );

    let tool = |name: &str, description: &str, parameters: Value| json!({"type": "function", "function": {"name": name, "description": description, "parameters": parameters}});
    let thinking_tools = json!({"model": GATEWAY_MODEL, "stream": false,
        "thinking": {"type": "enabled", "budget_tokens": 3000}, "tool_choice": "auto",
        "tools": [tool("get_user_country", "", json!({"additionalProperties": false, "properties": {}, "type": "object"}))],
        "messages": [user("What is the largest city in the user country?")]});
    // No max_tokens from the client: the 4096 default stays, as the 3000 budget is below it.
    assert_eq!(
        anthropic_body(&thinking_tools, "claude-sonnet-4-0", 4096, Dialect::Anthropic),
        recorded_json("anthropic/anthropic-messages-thinking-tool-use.request.json")
    );

    let redacted = json!({"model": GATEWAY_MODEL, "stream": true, "max_tokens": 4096,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [user("ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_46C9A13E193C177646C7398A98432ECCCE4C1253D5E2D82641AC0E52CC2876CB")]});
    assert_eq!(
        anthropic_body(&redacted, "claude-sonnet-4-5-20250929", 1000, Dialect::Anthropic),
        recorded_json("anthropic/anthropic-messages-stream-redacted-thinking.request.json")
    );

    let system = "\n    Use the `retrieve_entity_info` tool to get information about a specific person.\n    If you need to use `retrieve_entity_info` to get information about multiple people, try\n    to call them in parallel as much as possible.\n    Think step by step and then provide a single most probable concise answer.\n    ";
    let parallel = json!({"model": GATEWAY_MODEL, "stream": false, "tool_choice": "auto",
        "tools": [tool("retrieve_entity_info", "Get the knowledge about the given entity.",
            json!({"additionalProperties": false, "properties": {"name": {"type": "string"}},
                   "required": ["name"], "type": "object"}))],
        "messages": [{"role": "system", "content": system},
                     user("Alice, Bob, Charlie and Daisy are a family. Who is the youngest?")]});
    assert_eq!(
        anthropic_body(&parallel, "claude-haiku-4-5", 4096, Dialect::Anthropic),
        recorded_json("anthropic/anthropic-messages-parallel-tool-use.request.json")
    );
}

/// The recorded OpenAI chat requests, mapped with model `claude-sonnet-4-5` and a 4096 default.
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
        let options =
            RequestOptions { model: "claude-sonnet-4-5", default_max_tokens: 4096, dialect: Dialect::Anthropic };
        let body = request_body(&request, &options).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        check_golden(&format!("requests/{name}.expected"), &body);
    }
}

#[test]
fn images_documents_tool_results_and_system_prompts() {
    let openai = json!({"model": GATEWAY_MODEL, "max_tokens": 100, "temperature": 0.2, "top_p": 0.9,
        "stop": ["END", "STOP"], "seed": 7, "user": "user-42", "stream": true,
        "stream_options": {"include_usage": true}, "parallel_tool_calls": false, "tool_choice": "required",
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "strict": true,
            "schema": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        "tools": [{"type": "function", "function": {"name": "lookup", "strict": true}}],
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
                {"id": "call_2", "type": "function", "function": {"name": "lookup", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "a "}, {"type": "text", "text": "dog"}]},
            {"role": "user", "content": "Thanks. And now?"},
            {"role": "user", "content": ""}]});
    assert_eq!(
        anthropic_body(&openai, "claude-sonnet-4-5", 4096, Dialect::Anthropic),
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 100,
            "system": [{"type": "text", "text": "Be terse."}, {"type": "text", "text": "Answer in English."}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in these?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0"},
                     "title": "r.pdf"}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"q": "a"}},
                    {"type": "tool_use", "id": "call_2", "name": "lookup", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "a cat"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": [
                        {"type": "text", "text": "a "}, {"type": "text", "text": "dog"}]},
                    {"type": "text", "text": "Thanks. And now?"}]}],
            "tools": [{"name": "lookup", "input_schema": {"type": "object", "properties": {}}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "stop_sequences": ["END", "STOP"],
            "temperature": 0.2,
            "top_p": 0.9,
            "metadata": {"user_id": "user-42"},
            "output_config": {"format": {"type": "json_schema",
                "schema": {"type": "object", "properties": {"city": {"type": "string"}}}}},
            "stream": true
        })
    );
}

#[test]
fn tool_schemas_pass_through_byte_for_byte() {
    // Key order and spacing inside a schema are the client's; they reach the provider untouched.
    let body = br#"{"model":"m","messages":[{"role":"user","content":"x"}],
        "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","required":["z"],"properties":{"z":{"type":"string"}}}}}]}"#;
    let request = parse_request(body).unwrap();
    let options = RequestOptions { model: "claude", default_max_tokens: 10, dialect: Dialect::Anthropic };
    let out = String::from_utf8(request_body(&request, &options).unwrap()).unwrap();
    assert!(
        out.contains(r#""input_schema":{"type":"object","required":["z"],"properties":{"z":{"type":"string"}}}"#),
        "{out}"
    );
}

#[test]
fn corrupted_requests_and_responses_never_panic() {
    let request = br#"{"model":"gw","stream":true,"stream_options":{"include_usage":true},"max_tokens":9,
        "messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"t"},
        {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
        {"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},
        {"role":"tool","tool_call_id":"c","content":"x"}],"reasoning_effort":"low","stop":["a"],
        "tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"tool_choice":"required"}"#;
    let options = RequestOptions { model: "claude", default_max_tokens: 64, dialect: Dialect::Anthropic };
    assert!(request_body(&parse_request(request).unwrap(), &options).is_ok());
    for body in mutations(request) {
        if let Ok(parsed) = parse_request(&body) {
            let _ = request_body(&parsed, &options);
        }
    }
    let response = fixture("anthropic/anthropic-messages-thinking-tool-use.response.json");
    let compact = serde_json::to_vec(&serde_json::from_slice::<Value>(&response).unwrap()).unwrap();
    for body in mutations(&compact) {
        if let Ok(parsed) = parse_response(&body) {
            let _ = encode_response(&parsed, GATEWAY_MODEL, CREATED);
        }
    }
}
