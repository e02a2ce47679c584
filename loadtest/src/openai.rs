//! OpenAI Chat Completions wire shapes the mock produces: reading the few request fields it
//! needs, and serialising completions, stream chunks (as `data: …\n\n` events), the model list
//! and error envelopes. Field order follows OpenAI's recordings, hence structs rather than
//! `json!` (which would sort keys). Knows nothing of HTTP framing or faults (see `plan.rs`).

use serde::Serialize;
use serde_json::Value;

/// What the mock reads from a chat-completions request body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ChatRequest {
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    pub prompt_tokens: u64,
}

/// Parses the request body; the error is the message for a 400 envelope.
pub(crate) fn parse_chat_request(body: &[u8]) -> Result<ChatRequest, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("We could not parse the JSON body of your request. ({e})"))?;
    let Value::Object(map) = value else {
        return Err("The request body must be a JSON object.".to_owned());
    };
    let model = map.get("model").and_then(Value::as_str).unwrap_or("mock-model");
    let include_usage = map.get("stream_options").and_then(|o| o.get("include_usage")).and_then(Value::as_bool);
    Ok(ChatRequest {
        model: model.to_owned(),
        stream: map.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: include_usage.unwrap_or(false),
        prompt_tokens: estimate_prompt_tokens(map.get("messages")),
    })
}

// Roughly four characters per token, like OpenAI's rule of thumb; never zero.
fn estimate_prompt_tokens(messages: Option<&Value>) -> u64 {
    let chars: usize = messages
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(|m| m.get("content").and_then(Value::as_str)).map(str::len).sum())
        .unwrap_or(0);
    (chars as u64).div_ceil(4).max(1)
}

/// Deterministic ASCII filler text of exactly `len` bytes (JSON-safe, no escapes needed).
pub(crate) fn filler_text(len: usize) -> String {
    const WORDS: &str = "The quick brown fox jumps over the lazy dog while the mock provider streams tokens. ";
    WORDS.bytes().cycle().take(len).map(char::from).collect()
}

/// Identity shared by every chunk of one reply.
pub(crate) struct ReplyMeta {
    pub id: String,
    pub created: u64,
    pub model: String,
    pub prompt_tokens: u64,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

impl Usage {
    fn new(prompt_tokens: u64, completion_tokens: u64) -> Usage {
        Usage { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens }
    }
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [CompletionChoice<'a>; 1],
    usage: Usage,
    system_fingerprint: &'static str,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: Message<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
    refusal: Option<()>,
}

/// A non-streaming `chat.completion` body carrying `text`.
pub(crate) fn completion_json(meta: &ReplyMeta, text: &str) -> Vec<u8> {
    let completion = Completion {
        id: &meta.id,
        object: "chat.completion",
        created: meta.created,
        model: &meta.model,
        choices: [CompletionChoice {
            index: 0,
            message: Message { role: "assistant", content: text, refusal: None },
            logprobs: None,
            finish_reason: "stop",
        }],
        usage: Usage::new(meta.prompt_tokens, (text.len() as u64).div_ceil(4)),
        system_fingerprint: "fp_mock",
    };
    to_json(&completion)
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: Vec<ChunkChoice<'a>>,
    // Absent without include_usage; `null` on ordinary chunks with it, as OpenAI does.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Default, Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<Option<()>>,
}

/// What a generated stream contains.
pub(crate) struct StreamShape {
    pub events: usize,
    pub text_bytes: usize,
    pub include_usage: bool,
    /// Leave out the finish chunk, the usage chunk and `[DONE]`.
    pub omit_final: bool,
}

/// Every SSE event of a generated stream, in order, each a complete `data: …\n\n`.
pub(crate) fn stream_events(meta: &ReplyMeta, shape: &StreamShape) -> Vec<Vec<u8>> {
    let text = filler_text(shape.text_bytes.max(shape.events));
    let chunk = |choices: Vec<ChunkChoice<'_>>, usage: Option<Option<Usage>>| {
        let usage = if shape.include_usage { usage.or(Some(None)) } else { None };
        sse_data(&to_json(&Chunk {
            id: &meta.id,
            object: "chat.completion.chunk",
            created: meta.created,
            model: &meta.model,
            system_fingerprint: "fp_mock",
            choices,
            usage,
        }))
    };
    let mut events = Vec::with_capacity(shape.events + 4);
    let role = Delta { role: Some("assistant"), content: Some(""), refusal: Some(None) };
    events.push(chunk(vec![choice(role, None)], None));
    for piece in split_even(&text, shape.events) {
        let delta = Delta { content: Some(piece), ..Delta::default() };
        events.push(chunk(vec![choice(delta, None)], None));
    }
    if shape.omit_final {
        return events;
    }
    events.push(chunk(vec![choice(Delta::default(), Some("stop"))], None));
    if shape.include_usage {
        let usage = Usage::new(meta.prompt_tokens, shape.events as u64);
        events.push(chunk(Vec::new(), Some(Some(usage))));
    }
    events.push(b"data: [DONE]\n\n".to_vec());
    events
}

fn choice<'a>(delta: Delta<'a>, finish_reason: Option<&'static str>) -> ChunkChoice<'a> {
    ChunkChoice { index: 0, delta, logprobs: None, finish_reason }
}

/// Splits ASCII `text` into `parts` consecutive pieces whose lengths differ by at most one.
fn split_even(text: &str, parts: usize) -> Vec<&str> {
    let mut pieces = Vec::with_capacity(parts);
    let mut start = 0;
    for i in 0..parts {
        let end = text.len() * (i + 1) / parts;
        pieces.push(&text[start..end]);
        start = end;
    }
    pieces
}

fn sse_data(json: &[u8]) -> Vec<u8> {
    let mut event = Vec::with_capacity(json.len() + 8);
    event.extend_from_slice(b"data: ");
    event.extend_from_slice(json);
    event.extend_from_slice(b"\n\n");
    event
}

#[derive(Serialize)]
struct ModelList {
    object: &'static str,
    data: Vec<Model>,
}

#[derive(Serialize)]
struct Model {
    id: &'static str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

/// A small `GET /models` list.
pub(crate) fn models_json() -> Vec<u8> {
    let model = |id| Model { id, object: "model", created: 1_700_000_000, owned_by: "corelay-mock" };
    to_json(&ModelList { object: "list", data: vec![model("mock-model"), model("gpt-4o-mini"), model("gpt-4o")] })
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<()>,
    code: Option<&'a str>,
}

/// `{"error":{"message","type","param":null,"code"}}`.
pub(crate) fn error_json(message: &str, kind: &str, code: Option<&str>) -> Vec<u8> {
    to_json(&ErrorEnvelope { error: ErrorBody { message, kind, param: None, code } })
}

/// The envelope OpenAI would send with `status`.
pub(crate) fn status_error_json(status: u16) -> Vec<u8> {
    let message = format!("Mock provider fault: HTTP {status}.");
    match status {
        429 => error_json(&message, "requests", Some("rate_limit_exceeded")),
        400..=499 => error_json(&message, "invalid_request_error", None),
        _ => error_json(&message, "server_error", None),
    }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Only our own plain structs are serialised here; they cannot fail.
    serde_json::to_vec(value).expect("serialising a mock reply")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ReplyMeta {
        ReplyMeta { id: "chatcmpl-mock1".into(), created: 1, model: "m".into(), prompt_tokens: 3 }
    }

    #[test]
    fn request_fields() {
        let req = parse_chat_request(
            br#"{"model":"gpt","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"12345678"}]}"#,
        )
        .unwrap();
        assert_eq!(req, ChatRequest { model: "gpt".into(), stream: true, include_usage: true, prompt_tokens: 2 });
        assert!(parse_chat_request(b"{not json").is_err());
        assert!(parse_chat_request(b"[1]").is_err());
    }

    #[test]
    fn stream_matches_openai_shape() {
        let shape = StreamShape { events: 3, text_bytes: 10, include_usage: true, omit_final: false };
        let events = stream_events(&meta(), &shape);
        assert_eq!(events.len(), 3 + 4);
        let first = String::from_utf8(events[0].clone()).unwrap();
        assert!(
            first.starts_with(
                r#"data: {"id":"chatcmpl-mock1","object":"chat.completion.chunk","created":1,"model":"m""#
            )
        );
        assert!(first.contains(r#""delta":{"role":"assistant","content":"","refusal":null}"#));
        assert!(first.ends_with("\"usage\":null}\n\n"));
        let text: String = events[1..4]
            .iter()
            .map(|e| {
                let v: Value = serde_json::from_slice(&e[6..]).unwrap();
                v["choices"][0]["delta"]["content"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(text, filler_text(10));
        let usage: Value = serde_json::from_slice(&events[5][6..]).unwrap();
        assert_eq!(usage["choices"], Value::Array(vec![]));
        assert_eq!(usage["usage"]["total_tokens"], 6);
        assert_eq!(events[6], b"data: [DONE]\n\n");
    }

    #[test]
    fn envelope_shape() {
        let v: Value = serde_json::from_slice(&status_error_json(429)).unwrap();
        assert_eq!(v["error"]["code"], "rate_limit_exceeded");
        assert_eq!(v["error"]["param"], Value::Null);
    }
}
