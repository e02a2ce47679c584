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

/// What the mock reads from an embeddings request: the model, how many inputs (a string or a token
/// array is one; an array of either is one per element), their total length for the token count,
/// and whether vectors go back as base64 (what the OpenAI SDKs ask for by default).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct EmbeddingsRequest {
    pub model: String,
    pub inputs: usize,
    pub prompt_tokens: u64,
    pub base64: bool,
}

/// Parses an embeddings request body; the error is the message for a 400 envelope.
pub(crate) fn parse_embeddings_request(body: &[u8]) -> Result<EmbeddingsRequest, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("We could not parse the JSON body of your request. ({e})"))?;
    let input = value.get("input").ok_or("you must provide an input parameter")?;
    let (inputs, chars) = match input {
        Value::String(text) => (1, text.len()),
        Value::Array(items) if items.is_empty() => (0, 0),
        Value::Array(items) if items.iter().all(Value::is_number) => (1, items.len() * 4),
        Value::Array(items) => (items.len(), items.iter().map(input_chars).sum()),
        _ => return Err("'input' must be a string or an array".to_owned()),
    };
    if inputs == 0 {
        return Err("'input' must not be empty".to_owned());
    }
    Ok(EmbeddingsRequest {
        model: value.get("model").and_then(Value::as_str).unwrap_or("mock-embedding").to_owned(),
        inputs,
        prompt_tokens: (chars as u64).div_ceil(4).max(1),
        base64: value.get("encoding_format").and_then(Value::as_str) == Some("base64"),
    })
}

/// A string's length, or four characters per token of a token array.
fn input_chars(item: &Value) -> usize {
    match item {
        Value::String(text) => text.len(),
        Value::Array(tokens) => tokens.len() * 4,
        _ => 0,
    }
}

/// Dimensions of the mock's vectors: enough to look like an embedding, small enough to read.
pub(crate) const EMBEDDING_DIMENSIONS: usize = 8;

/// A deterministic vector for input `index`: distinct per input, in [-0.5, 0.5).
fn embedding_vector(index: usize) -> Vec<f32> {
    // Computed in f64 and rounded once, so each value prints as its two decimals.
    (0..EMBEDDING_DIMENSIONS).map(|d| (((index * 31 + d * 7) % 100) as f64 / 100.0 - 0.5) as f32).collect()
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<Embedding>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct Embedding {
    object: &'static str,
    index: usize,
    embedding: Vector,
}

/// A vector as OpenAI sends it: floats (written as f32, so `-0.43` rather than its f64 widening),
/// or base64 of their little-endian bytes.
#[derive(Serialize)]
#[serde(untagged)]
enum Vector {
    Floats(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// An OpenAI `list` of embeddings, one per input, as floats or (asked for) base64 of little-endian
/// f32s, as OpenAI sends them.
pub(crate) fn embeddings_json(request: &EmbeddingsRequest, model: &str) -> Vec<u8> {
    let data = (0..request.inputs)
        .map(|index| {
            let vector = embedding_vector(index);
            let embedding = if request.base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
                Vector::Base64(base64(&bytes))
            } else {
                Vector::Floats(vector)
            };
            Embedding { object: "embedding", index, embedding }
        })
        .collect();
    let usage = EmbeddingUsage { prompt_tokens: request.prompt_tokens, total_tokens: request.prompt_tokens };
    to_json(&EmbeddingList { object: "list", data, model, usage })
}

/// Standard base64 with padding (RFC 4648 section 4); the mock's only use is embeddings.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
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

    #[test]
    fn embeddings_answer_one_vector_per_input() {
        let many =
            parse_embeddings_request(br#"{"model":"text-embedding-3-small","input":["hello","world!"]}"#).unwrap();
        assert_eq!((many.inputs, many.prompt_tokens, many.base64), (2, 3, false));
        let body: Value = serde_json::from_slice(&embeddings_json(&many, "text-embedding-3-small")).unwrap();
        assert_eq!(body["object"], "list");
        assert_eq!(body["data"].as_array().unwrap().len(), 2);
        assert_eq!(body["data"][1]["index"], 1);
        assert_eq!(body["data"][0]["embedding"].as_array().unwrap().len(), EMBEDDING_DIMENSIONS);
        assert_ne!(body["data"][0]["embedding"], body["data"][1]["embedding"]);
        assert_eq!(body["usage"]["total_tokens"], 3);
        let tokens = parse_embeddings_request(br#"{"model":"m","input":[1,2,3]}"#).unwrap();
        assert_eq!(tokens.inputs, 1);
        assert!(parse_embeddings_request(br#"{"model":"m"}"#).is_err());
        assert!(parse_embeddings_request(br#"{"model":"m","input":[]}"#).is_err());
    }

    #[test]
    fn base64_is_rfc_4648_and_carries_four_bytes_per_dimension() {
        let vectors =
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
        let request = parse_embeddings_request(br#"{"input":"x","encoding_format":"base64"}"#).unwrap();
        let body: Value = serde_json::from_slice(&embeddings_json(&request, "m")).unwrap();
        let encoded = body["data"][0]["embedding"].as_str().unwrap();
        assert_eq!(encoded.len(), (EMBEDDING_DIMENSIONS * 4).div_ceil(3) * 4);
    }

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
