//! Internal stream events -> OpenAI `chat.completion.chunk` SSE bytes, in OpenAI's exact shapes:
//! a first chunk with the role, one chunk per delta, a chunk with `delta: {}` and the finish reason,
//! a usage chunk with `choices: []` when the client asked for `include_usage` (and then, as OpenAI
//! does, `"usage": null` on every other chunk), and `data: [DONE]`. A failed stream ends with an
//! in-band `{"error": ...}` event and no `[DONE]`, which OpenAI's SDKs raise as an error.
//!
//! Chunks are written by hand from a prefix built once per stream: the per-event cost is a copy
//! and an escape of the delta text, with no allocation once `out` has grown.
//!
//! Choices where OpenAI has no counterpart: reasoning text goes out as `delta.reasoning_content`
//! (the de-facto field of DeepSeek, vLLM and most OpenAI-compatible clients); reasoning signatures
//! and redacted reasoning are provider-private and not sent. The chunk `id` is the provider's
//! message id, so a client report can be matched with the provider's logs.

use std::io::Write;

use crate::chat::{FinishReason, ProviderError, StreamEvent, Usage};
use crate::sse::escape_json_str;

/// Encodes one stream for one client. Feed it every event in order.
#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    /// The gateway model id, JSON-escaped.
    model: Vec<u8>,
    created: u64,
    include_usage: bool,
    /// `data: {"id":...,"object":"chat.completion.chunk","created":...,"model":...,` for this stream.
    prefix: Vec<u8>,
    usage: Option<Usage>,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No chunk written yet.
    AwaitingStart,
    /// The role chunk is out.
    Streaming,
    /// `[DONE]` or an error event is out; later events are ignored.
    Done,
}

const CHOICE_OPEN: &[u8] = br#""choices":[{"index":0,"delta":"#;

impl ChunkEncoder {
    /// `gateway_model` is the id the client asked for; `created` the Unix time shown in every chunk;
    /// `include_usage` the client's `stream_options.include_usage`.
    pub fn new(gateway_model: &str, created: u64, include_usage: bool) -> Self {
        let mut model = Vec::with_capacity(gateway_model.len());
        escape_json_str(gateway_model, &mut model);
        Self { model, created, include_usage, prefix: Vec::new(), usage: None, state: State::AwaitingStart }
    }

    /// Appends the bytes for `event` (possibly none) to `out`.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.state == State::Done {
            return;
        }
        match event {
            StreamEvent::Start { id, .. } => self.start(id, out),
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            StreamEvent::Error(error) => {
                self.state = State::Done;
                error_event(error, out);
            }
            StreamEvent::Finish(reason) => {
                self.start("", out);
                self.finish(*reason, out);
            }
            content => {
                self.start("", out);
                self.content(content, out);
            }
        }
    }

    /// Writes the role chunk, once; a stream whose provider sent no start gets an empty id.
    fn start(&mut self, id: &str, out: &mut Vec<u8>) {
        if self.state != State::AwaitingStart {
            return;
        }
        self.state = State::Streaming;
        self.prefix.clear();
        self.prefix.extend_from_slice(br#"data: {"id":""#);
        escape_json_str(id, &mut self.prefix);
        let _ = write!(self.prefix, r#"","object":"chat.completion.chunk","created":{},"model":""#, self.created);
        self.prefix.extend_from_slice(&self.model);
        self.prefix.extend_from_slice(br#"","#);
        self.chunk(out, None, |o| o.extend_from_slice(br#"{"role":"assistant","content":"","refusal":null}"#));
    }

    fn content(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match event {
            StreamEvent::TextDelta(text) => self.chunk(out, None, |o| string_delta(o, "content", text)),
            StreamEvent::ReasoningDelta(text) => self.chunk(out, None, |o| string_delta(o, "reasoning_content", text)),
            StreamEvent::RefusalDelta(text) => self.chunk(out, None, |o| string_delta(o, "refusal", text)),
            StreamEvent::ToolCallStart { index, id, name } => self.chunk(out, None, |o| {
                let _ = write!(o, r#"{{"tool_calls":[{{"index":{index},"id":""#);
                escape_json_str(id, o);
                o.extend_from_slice(br#"","type":"function","function":{"name":""#);
                escape_json_str(name, o);
                o.extend_from_slice(br#"","arguments":""}}]}"#);
            }),
            StreamEvent::ToolCallDelta { index, arguments } => self.chunk(out, None, |o| {
                let _ = write!(o, r#"{{"tool_calls":[{{"index":{index},"function":{{"arguments":""#);
                escape_json_str(arguments, o);
                o.extend_from_slice(br#""}}]}"#);
            }),
            // Provider-private (see the module doc), and the terminal and bookkeeping events are
            // handled by `encode`.
            _ => {}
        }
    }

    fn finish(&mut self, reason: FinishReason, out: &mut Vec<u8>) {
        self.chunk(out, Some(reason), |o| o.extend_from_slice(b"{}"));
        if let (true, Some(usage)) = (self.include_usage, &self.usage) {
            out.extend_from_slice(&self.prefix);
            out.extend_from_slice(br#""choices":[],"usage":"#);
            let _ = serde_json::to_writer(&mut *out, &super::wire_usage(usage));
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.state = State::Done;
    }

    /// One chunk with one choice whose delta `write_delta` writes.
    fn chunk(&self, out: &mut Vec<u8>, finish: Option<FinishReason>, write_delta: impl FnOnce(&mut Vec<u8>)) {
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(CHOICE_OPEN);
        write_delta(out);
        out.extend_from_slice(br#","logprobs":null,"finish_reason":"#);
        match finish {
            Some(reason) => {
                out.push(b'"');
                out.extend_from_slice(reason.as_str().as_bytes());
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"}]");
        if self.include_usage {
            out.extend_from_slice(br#","usage":null"#);
        }
        out.extend_from_slice(b"}\n\n");
    }
}

/// `{"<field>":"<text>"}`.
fn string_delta(out: &mut Vec<u8>, field: &str, text: &str) {
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(b"\":\"");
    escape_json_str(text, out);
    out.extend_from_slice(b"\"}");
}

/// The in-band error event for a stream that already started: `data: {"error":{...}}`.
pub(super) fn error_event(error: &ProviderError, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&super::error_body(error));
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::chat::ProviderErrorKind;

    fn encode_all(events: &[StreamEvent], include_usage: bool) -> Vec<Value> {
        let mut encoder = ChunkEncoder::new("acme/\"quoted\"", 7, include_usage);
        let mut out = Vec::new();
        for event in events {
            encoder.encode(event, &mut out);
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("\n\n"));
        text.split_terminator("\n\n")
            .map(|event| {
                let data = event.strip_prefix("data: ").expect("data events only");
                if data == "[DONE]" { json!("[DONE]") } else { serde_json::from_str(data).unwrap() }
            })
            .collect()
    }

    fn usage() -> Usage {
        Usage {
            prompt_tokens: 10,
            completion_tokens: 4,
            cache_read_tokens: 3,
            cache_write_tokens: 1,
            reasoning_tokens: 2,
        }
    }

    #[test]
    fn chunks_have_openai_shapes() {
        let events = [
            StreamEvent::Start { id: "msg_1".into(), model: "claude".into() },
            StreamEvent::TextDelta("a\"b\n".into()),
            StreamEvent::ReasoningDelta("hmm".into()),
            StreamEvent::ReasoningSignature("sig".into()),
            StreamEvent::ToolCallStart { index: 1, id: "call".into(), name: "f".into() },
            StreamEvent::ToolCallDelta { index: 1, arguments: "{\"x\":".into() },
            StreamEvent::RefusalDelta("no".into()),
            StreamEvent::Usage(usage()),
            StreamEvent::Finish(FinishReason::ToolCalls),
            StreamEvent::TextDelta("ignored after the end".into()),
        ];
        let chunks = encode_all(&events, true);
        let choice = |delta: Value, finish: Value| {
            json!({"id": "msg_1", "object": "chat.completion.chunk", "created": 7, "model": "acme/\"quoted\"",
                   "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}], "usage": null})
        };
        assert_eq!(
            chunks,
            vec![
                choice(json!({"role": "assistant", "content": "", "refusal": null}), Value::Null),
                choice(json!({"content": "a\"b\n"}), Value::Null),
                choice(json!({"reasoning_content": "hmm"}), Value::Null),
                choice(
                    json!({"tool_calls": [{"index": 1, "id": "call", "type": "function",
                                           "function": {"name": "f", "arguments": ""}}]}),
                    Value::Null
                ),
                choice(json!({"tool_calls": [{"index": 1, "function": {"arguments": "{\"x\":"}}]}), Value::Null),
                choice(json!({"refusal": "no"}), Value::Null),
                choice(json!({}), json!("tool_calls")),
                json!({"id": "msg_1", "object": "chat.completion.chunk", "created": 7, "model": "acme/\"quoted\"",
                       "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
                       "prompt_tokens_details": {"cached_tokens": 3},
                       "completion_tokens_details": {"reasoning_tokens": 2}}}),
                json!("[DONE]"),
            ]
        );
    }

    #[test]
    fn without_include_usage_there_is_no_usage_anywhere() {
        let events = [
            StreamEvent::Start { id: "m".into(), model: "c".into() },
            StreamEvent::Usage(usage()),
            StreamEvent::Finish(FinishReason::Stop),
        ];
        let chunks = encode_all(&events, false);
        assert_eq!(chunks.len(), 3);
        assert!(chunks[..2].iter().all(|c| c.get("usage").is_none()));
        assert_eq!(chunks[1]["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn errors_end_the_stream_without_done() {
        let overloaded = ProviderError::new(ProviderErrorKind::Overloaded, "Overloaded");
        let first = encode_all(&[StreamEvent::Error(overloaded.clone())], true);
        assert_eq!(
            first,
            vec![
                json!({"error": {"message": "Overloaded", "type": "server_error", "param": null, "code": "overloaded"}})
            ]
        );
        let later = encode_all(
            &[
                StreamEvent::TextDelta("x".into()),
                StreamEvent::Error(overloaded),
                StreamEvent::Finish(FinishReason::Stop),
            ],
            false,
        );
        assert_eq!(later.len(), 3, "role chunk (with an empty id), text, error");
        assert_eq!(later[0]["id"], "");
        assert!(later[2].get("error").is_some());
    }
}
