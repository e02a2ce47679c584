//! Internal stream events -> Anthropic Messages SSE bytes, in api.anthropic.com's exact shapes:
//! `message_start` (an empty message with the gateway's model id), then content blocks, each
//! `content_block_start` / `content_block_delta`* / `content_block_stop` with its position as
//! `index`, then `message_delta` (stop reason and usage) and `message_stop`. Every event is
//! `event: <type>\ndata: <json with the same type>\n\n`. It owns the encoding only; it reads no
//! provider bytes and does not decide when to flush.
//!
//! The blocks are an explicit state machine: text (and refusal text) deltas go to a `text` block,
//! reasoning deltas to a `thinking` block (closed by its signature: reasoning after a signature
//! opens a new block), each redacted reasoning part is a whole `redacted_thinking` block, and each
//! tool call is a `tool_use` block fed by `input_json_delta`. A delta of another kind closes the
//! open block first, as Anthropic does: one block is open at a time.
//!
//! Choices where the internal stream carries less than Anthropic's:
//! - `message_start.usage` is zero: providers report usage at the end, so the counts go out in
//!   `message_delta.usage` with every counter (as current API versions send them, and as the SDKs
//!   read them), cache reads and writes split back out of the input count.
//! - Refusal text is text: Anthropic has no refusal block (its refusals are text with
//!   `stop_reason: "refusal"`, which is what `FinishReason::ContentFilter` becomes).
//! - `stop_sequence` is always `null` (a stop sequence ends as `end_turn`) and no `ping` events are
//!   written (keep-alives are the proxy's business).
//! - A tool call's arguments that arrive after its block closed (no provider interleaves calls, but
//!   the internal stream allows it) go out as a delta with that block's index: the SDKs accumulate
//!   deltas by index, so the final message stays whole. Arguments of a call that never started are
//!   dropped: there is no id or name to show them under.
//! - An error ends the stream with one `error` event and nothing after it, the open block left
//!   unclosed, as Anthropic's own mid-stream errors do. Events after the end are ignored.

use std::io::Write;

use super::{error_body, stop_reason, wire_usage, write_error_event};
use crate::chat::{FinishReason, ProviderError, StreamEvent, Usage};
use crate::sse::escape_json_str;

/// Encodes one stream for one client. Feed it every event in order.
#[derive(Debug, Clone)]
pub struct StreamEncoder {
    /// The gateway model id, JSON-escaped.
    model: Vec<u8>,
    state: State,
    /// The index the next content block gets.
    next_index: u32,
    /// (internal tool-call index, block index) of every tool call started.
    calls: Vec<(u32, u32)>,
    usage: Usage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing written yet.
    AwaitingStart,
    /// `message_start` is out and no content block is open.
    Between,
    /// Content block `index` is open.
    InBlock { index: u32, block: Block },
    /// `message_stop` or an error is out; later events are ignored.
    Done,
}

/// What the open block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    /// `signed` once its signature went out: more reasoning needs a new block.
    Thinking {
        signed: bool,
    },
    ToolUse {
        call: u32,
    },
}

impl StreamEncoder {
    /// `gateway_model` is the id the client asked for; every `message_start` shows it.
    pub fn new(gateway_model: &str) -> Self {
        let mut model = Vec::with_capacity(gateway_model.len());
        escape_json_str(gateway_model, &mut model);
        Self { model, state: State::AwaitingStart, next_index: 0, calls: Vec::new(), usage: Usage::default() }
    }

    /// True once `message_stop` or an error went out.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Appends the bytes for `event` (possibly none) to `out`.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.is_done() {
            return;
        }
        match event {
            StreamEvent::Start { id, .. } => self.start(id, out),
            StreamEvent::Usage(usage) => self.usage = *usage,
            StreamEvent::Error(error) => self.error(error, out),
            StreamEvent::Finish(reason) => self.finish(*reason, out),
            StreamEvent::TextDelta(text) | StreamEvent::RefusalDelta(text) => self.text(text, out),
            StreamEvent::ReasoningDelta(text) => self.reasoning(text, out),
            StreamEvent::ReasoningSignature(signature) => self.signature(signature, out),
            StreamEvent::RedactedReasoning(data) => self.redacted(data, out),
            StreamEvent::ToolCallStart { index, id, name } => self.tool_start(*index, id, name, out),
            StreamEvent::ToolCallDelta { index, arguments } => self.tool_delta(*index, arguments, out),
        }
    }

    /// Writes `message_start`, once; a stream whose provider sent no start gets an empty id.
    fn start(&mut self, id: &str, out: &mut Vec<u8>) {
        if self.state != State::AwaitingStart {
            return;
        }
        self.state = State::Between;
        out.extend_from_slice(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"");
        escape_json_str(id, out);
        out.extend_from_slice(b"\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"");
        out.extend_from_slice(&self.model);
        out.extend_from_slice(b"\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
        write_usage(&self.usage, out);
        out.extend_from_slice(b"}}\n\n");
    }

    fn error(&mut self, error: &ProviderError, out: &mut Vec<u8>) {
        self.state = State::Done;
        write_error_event(&error_body(error), out);
    }

    fn finish(&mut self, reason: FinishReason, out: &mut Vec<u8>) {
        self.start("", out);
        self.close_block(out);
        out.extend_from_slice(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"");
        out.extend_from_slice(stop_reason(reason).as_bytes());
        out.extend_from_slice(b"\",\"stop_sequence\":null},\"usage\":");
        write_usage(&self.usage, out);
        out.extend_from_slice(b"}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        self.state = State::Done;
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        let index = self.block(Block::Text, out);
        delta(out, index, |o| string_delta(o, "text_delta", "text", text));
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        let index = self.block(Block::Thinking { signed: false }, out);
        delta(out, index, |o| string_delta(o, "thinking_delta", "thinking", text));
    }

    /// The signature closes the reasoning: it goes into the open unsigned thinking block, or into a
    /// new one (a provider may sign reasoning it did not show).
    fn signature(&mut self, signature: &str, out: &mut Vec<u8>) {
        let index = self.block(Block::Thinking { signed: false }, out);
        self.state = State::InBlock { index, block: Block::Thinking { signed: true } };
        delta(out, index, |o| string_delta(o, "signature_delta", "signature", signature));
    }

    fn redacted(&mut self, data: &str, out: &mut Vec<u8>) {
        self.start("", out);
        self.close_block(out);
        let index = self.take_index();
        block_start(out, index, |o| {
            o.extend_from_slice(b"{\"type\":\"redacted_thinking\",\"data\":\"");
            escape_json_str(data, o);
            o.extend_from_slice(b"\"}");
        });
        block_stop(out, index);
    }

    fn tool_start(&mut self, call: u32, id: &str, name: &str, out: &mut Vec<u8>) {
        self.start("", out);
        self.close_block(out);
        let index = self.take_index();
        self.calls.push((call, index));
        self.state = State::InBlock { index, block: Block::ToolUse { call } };
        block_start(out, index, |o| {
            o.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":\"");
            escape_json_str(id, o);
            o.extend_from_slice(b"\",\"name\":\"");
            escape_json_str(name, o);
            o.extend_from_slice(b"\",\"input\":{}}");
        });
    }

    /// Arguments go to the call's block: the open one, or (see the module doc) a closed one.
    fn tool_delta(&mut self, call: u32, arguments: &str, out: &mut Vec<u8>) {
        if arguments.is_empty() {
            return;
        }
        let index = match self.state {
            State::InBlock { index, block: Block::ToolUse { call: open } } if open == call => Some(index),
            _ => self.calls.iter().rev().find(|(known, _)| *known == call).map(|(_, index)| *index),
        };
        if let Some(index) = index {
            delta(out, index, |o| string_delta(o, "input_json_delta", "partial_json", arguments));
        }
    }

    /// The index of an open block of kind `wanted`, opening one (and closing another kind) if needed.
    fn block(&mut self, wanted: Block, out: &mut Vec<u8>) -> u32 {
        self.start("", out);
        if let State::InBlock { index, block } = self.state
            && block == wanted
        {
            return index;
        }
        self.close_block(out);
        let index = self.take_index();
        self.state = State::InBlock { index, block: wanted };
        block_start(out, index, |o| match wanted {
            Block::Thinking { .. } => {
                o.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}")
            }
            _ => o.extend_from_slice(b"{\"type\":\"text\",\"text\":\"\"}"),
        });
        index
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if let State::InBlock { index, .. } = self.state {
            block_stop(out, index);
            self.state = State::Between;
        }
    }

    fn take_index(&mut self) -> u32 {
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        index
    }
}

fn write_usage(usage: &Usage, out: &mut Vec<u8>) {
    // Four integers always serialize.
    let _ = serde_json::to_writer(&mut *out, &wire_usage(usage));
}

fn block_start(out: &mut Vec<u8>, index: u32, write_block: impl FnOnce(&mut Vec<u8>)) {
    let _ = write!(
        out,
        "event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":{index},\"content_block\":"
    );
    write_block(out);
    out.extend_from_slice(b"}\n\n");
}

fn delta(out: &mut Vec<u8>, index: u32, write_delta: impl FnOnce(&mut Vec<u8>)) {
    let _ = write!(
        out,
        "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":"
    );
    write_delta(out);
    out.extend_from_slice(b"}\n\n");
}

fn block_stop(out: &mut Vec<u8>, index: u32) {
    let _ = write!(out, "event: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":{index}}}\n\n");
}

/// `{"type":"<kind>","<field>":"<text>"}`.
fn string_delta(out: &mut Vec<u8>, kind: &str, field: &str, text: &str) {
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"");
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(b"\":\"");
    escape_json_str(text, out);
    out.extend_from_slice(b"\"}");
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::chat::{ProviderErrorKind, StreamEvent as E};

    /// (event name, data JSON) pairs; every name must equal the data's `type`.
    fn encode_all(events: &[StreamEvent]) -> Vec<Value> {
        let mut encoder = StreamEncoder::new("acme/\"quoted\"");
        let mut out = Vec::new();
        for event in events {
            encoder.encode(event, &mut out);
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.is_empty() || text.ends_with("\n\n"));
        text.split_terminator("\n\n")
            .map(|event| {
                let (name, data) = event.split_once('\n').unwrap();
                let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(name.strip_prefix("event: "), data["type"].as_str(), "{event}");
                data
            })
            .collect()
    }

    fn start() -> StreamEvent {
        E::Start { id: "msg_1".into(), model: "provider-model".into() }
    }

    fn usage() -> Usage {
        Usage {
            prompt_tokens: 10,
            completion_tokens: 4,
            cache_read_tokens: 3,
            cache_write_tokens: 2,
            reasoning_tokens: 1,
        }
    }

    fn zero_usage() -> Value {
        json!({"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0})
    }

    fn block_start(index: u32, block: Value) -> Value {
        json!({"type": "content_block_start", "index": index, "content_block": block})
    }

    fn block_delta(index: u32, delta: Value) -> Value {
        json!({"type": "content_block_delta", "index": index, "delta": delta})
    }

    fn block_stop(index: u32) -> Value {
        json!({"type": "content_block_stop", "index": index})
    }

    #[test]
    fn events_have_anthropic_shapes_and_indexes() {
        let events = [
            start(),
            E::ReasoningDelta("hmm".into()),
            E::ReasoningDelta(" ok".into()),
            E::ReasoningSignature("sig".into()),
            E::ReasoningDelta("again".into()),
            E::RedactedReasoning("opaque".into()),
            E::TextDelta("a\"b\n".into()),
            E::RefusalDelta("no".into()),
            E::ToolCallStart { index: 0, id: "toolu_1".into(), name: "f".into() },
            E::ToolCallDelta { index: 0, arguments: "{\"x\":".into() },
            E::ToolCallDelta { index: 0, arguments: "1}".into() },
            E::ToolCallStart { index: 1, id: "toolu_2".into(), name: "g".into() },
            E::Usage(usage()),
            E::Finish(FinishReason::ToolCalls),
            E::TextDelta("ignored after the end".into()),
        ];
        assert_eq!(
            encode_all(&events),
            vec![
                json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                       "model": "acme/\"quoted\"", "content": [], "stop_reason": null, "stop_sequence": null,
                       "usage": zero_usage()}}),
                block_start(0, json!({"type": "thinking", "thinking": "", "signature": ""})),
                block_delta(0, json!({"type": "thinking_delta", "thinking": "hmm"})),
                block_delta(0, json!({"type": "thinking_delta", "thinking": " ok"})),
                block_delta(0, json!({"type": "signature_delta", "signature": "sig"})),
                block_stop(0),
                block_start(1, json!({"type": "thinking", "thinking": "", "signature": ""})),
                block_delta(1, json!({"type": "thinking_delta", "thinking": "again"})),
                block_stop(1),
                block_start(2, json!({"type": "redacted_thinking", "data": "opaque"})),
                block_stop(2),
                block_start(3, json!({"type": "text", "text": ""})),
                block_delta(3, json!({"type": "text_delta", "text": "a\"b\n"})),
                block_delta(3, json!({"type": "text_delta", "text": "no"})),
                block_stop(3),
                block_start(4, json!({"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}})),
                block_delta(4, json!({"type": "input_json_delta", "partial_json": "{\"x\":"})),
                block_delta(4, json!({"type": "input_json_delta", "partial_json": "1}"})),
                block_stop(4),
                block_start(5, json!({"type": "tool_use", "id": "toolu_2", "name": "g", "input": {}})),
                block_stop(5),
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
                       "usage": {"input_tokens": 5, "cache_creation_input_tokens": 2, "cache_read_input_tokens": 3,
                                 "output_tokens": 4}}),
                json!({"type": "message_stop"}),
            ]
        );
    }

    #[test]
    fn stop_reasons() {
        for (reason, expected) in [
            (FinishReason::Stop, "end_turn"),
            (FinishReason::Length, "max_tokens"),
            (FinishReason::ToolCalls, "tool_use"),
            (FinishReason::ContentFilter, "refusal"),
        ] {
            let events = encode_all(&[start(), E::Finish(reason)]);
            assert_eq!(events[1]["delta"]["stop_reason"], expected);
            assert_eq!(events[1]["usage"], zero_usage());
        }
    }

    #[test]
    fn a_signature_without_reasoning_gets_its_own_block() {
        let events = encode_all(&[start(), E::TextDelta("a".into()), E::ReasoningSignature("s".into())]);
        assert_eq!(events[3], block_stop(0));
        assert_eq!(events[4], block_start(1, json!({"type": "thinking", "thinking": "", "signature": ""})));
        assert_eq!(events[5], block_delta(1, json!({"type": "signature_delta", "signature": "s"})));
    }

    #[test]
    fn late_and_orphan_tool_arguments() {
        let events = encode_all(&[
            start(),
            E::ToolCallStart { index: 0, id: "a".into(), name: "f".into() },
            E::ToolCallStart { index: 1, id: "b".into(), name: "g".into() },
            E::ToolCallDelta { index: 0, arguments: "{}".into() },
            E::ToolCallDelta { index: 7, arguments: "lost".into() },
            E::ToolCallDelta { index: 1, arguments: "".into() },
        ]);
        assert_eq!(events.len(), 5, "{events:?}");
        assert_eq!(events[4], block_delta(0, json!({"type": "input_json_delta", "partial_json": "{}"})));
    }

    #[test]
    fn errors_end_the_stream_without_closing() {
        let overloaded = ProviderError::new(ProviderErrorKind::Overloaded, "Overloaded");
        let first = encode_all(&[E::Error(overloaded.clone()), E::Finish(FinishReason::Stop)]);
        assert_eq!(
            first,
            vec![json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})]
        );
        let later = encode_all(&[start(), E::TextDelta("x".into()), E::Error(overloaded)]);
        assert_eq!(later.len(), 4);
        assert_eq!(later[3]["type"], "error");
    }

    #[test]
    fn content_before_start_gets_an_empty_id() {
        let events = encode_all(&[E::TextDelta("x".into()), E::Finish(FinishReason::Stop)]);
        assert_eq!(events[0]["message"]["id"], "");
        assert_eq!(events.len(), 6);
        assert!(encode_all(&[E::Usage(usage())]).is_empty());
    }

    #[test]
    fn arbitrary_event_sequences_stay_well_formed() {
        let pool = [
            start(),
            E::TextDelta("t".into()),
            E::TextDelta(String::new()),
            E::ReasoningDelta("r".into()),
            E::ReasoningSignature("s".into()),
            E::RedactedReasoning("d".into()),
            E::ToolCallStart { index: 0, id: "i".into(), name: "n".into() },
            E::ToolCallStart { index: u32::MAX, id: "j".into(), name: "m".into() },
            E::ToolCallDelta { index: 0, arguments: "{".into() },
            E::ToolCallDelta { index: u32::MAX, arguments: "}".into() },
            E::RefusalDelta("no".into()),
            E::Usage(usage()),
            E::Finish(FinishReason::Length),
            E::Error(ProviderError::new(ProviderErrorKind::Malformed, "x")),
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..500 {
            let mut events = Vec::new();
            for _ in 0..16 {
                seed = crate::test_fixtures::xorshift(seed);
                events.push(pool[(seed % pool.len() as u64) as usize].clone());
            }
            let encoded = encode_all(&events);
            // At most one block open at a time, stops match starts, nothing after the end.
            let mut open: Option<u64> = None;
            for (position, event) in encoded.iter().enumerate() {
                match event["type"].as_str().unwrap() {
                    "content_block_start" => {
                        assert!(open.is_none(), "{encoded:?}");
                        open = event["index"].as_u64();
                    }
                    "content_block_stop" => assert_eq!(open.take(), event["index"].as_u64(), "{encoded:?}"),
                    "message_stop" | "error" => assert_eq!(position + 1, encoded.len(), "{encoded:?}"),
                    _ => {}
                }
            }
        }
    }
}
