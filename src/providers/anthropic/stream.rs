//! Anthropic Messages stream -> internal stream events, incrementally. [`StreamTranslator`] takes the
//! SSE body in arbitrary pieces; [`EventMapper`] is the state machine behind it and takes one event's
//! JSON, for transports that frame events themselves (Bedrock's event stream).
//!
//! It dispatches on the JSON `type`, never on the SSE event name (they are equal on the wire, and
//! Bedrock frames have no name). It does not encode anything for clients.
//!
//! Mapping choices:
//! - Tool calls are numbered 0, 1, ... in arrival order; Anthropic's block index counts text and
//!   thinking blocks too. Server-side tools (`server_tool_use`, `*_tool_result`) ran at Anthropic and
//!   are not the client's to call, so their blocks are skipped, like citations and future block or
//!   delta types.
//! - A tool call that closes without argument text gets `{}`, so clients that parse the arguments
//!   see a JSON object, as OpenAI sends for a call without parameters.
//! - Empty deltas (the customary first `input_json_delta` of `""`) are not forwarded.
//! - Usage is merged: `message_start` gives input and cache counts, `message_delta` the final
//!   output count (and, in current API versions, updated input counts, which win). A `Usage` event
//!   goes out at `message_delta` (at `message_stop` when no delta came); `Finish` at `message_stop`.
//! - An `error` event ends the stream with `Error`, classified like an HTTP error (an
//!   `overloaded_error` is retryable). Malformed JSON, an oversized event, an event before
//!   `message_start` or the body ending before `message_stop` end it with a `Malformed` error.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{ErrorDetail, finish_reason};
use crate::chat::{FinishReason, ProviderError, ProviderErrorKind, SseEventMapper, SseTranslator, StreamEvent, Usage};

/// SSE bytes -> internal events: the shared SSE translator driving [`EventMapper`].
pub type StreamTranslator = SseTranslator<EventMapper>;

impl SseEventMapper for EventMapper {
    const PROVIDER: &'static str = "Anthropic";

    fn on_data(&mut self, data: &[u8], out: &mut Vec<StreamEvent>) {
        self.on_event(data, out);
    }

    fn fail(&mut self, error: ProviderError, out: &mut Vec<StreamEvent>) {
        EventMapper::fail(self, error, out);
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        EventMapper::finish(self, out);
    }

    fn usage(&self) -> Usage {
        EventMapper::usage(self)
    }

    fn is_done(&self) -> bool {
        EventMapper::is_done(self)
    }
}

/// Where the stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Nothing but pings seen yet; `message_start` must come first.
    #[default]
    AwaitingStart,
    /// In the message, outside any content block.
    Message,
    /// In content block `index`.
    Block { index: u64, block: Block },
    /// A terminal event went out; everything else is ignored.
    Done,
}

/// What the current content block turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    ToolUse {
        call: u32,
        has_arguments: bool,
    },
    /// Blocks the client has no use for (redacted thinking is whole at its start, server tools,
    /// unknown types).
    Skipped,
}

/// Anthropic's usage counters as they stand; input tokens exclude cached ones.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    input: u64,
    output: u64,
    cache_write: u64,
    cache_read: u64,
}

/// The stream state machine over decoded event JSON.
#[derive(Debug, Default)]
pub struct EventMapper {
    state: State,
    /// Tool calls started so far: the next call's index.
    tool_calls: u32,
    stop_reason: Option<FinishReason>,
    counters: Counters,
    /// A `Usage` event went out (at `message_delta`).
    usage_sent: bool,
}

/// An event's head: its type and index, with the members left as raw JSON until the type says
/// which one matters and what shape it has (a `delta` means different things in
/// `content_block_delta` and `message_delta`).
#[derive(Deserialize)]
struct WireEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    index: Option<u64>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    #[serde(borrow)]
    content_block: Option<&'a RawValue>,
    #[serde(borrow)]
    delta: Option<&'a RawValue>,
    usage: Option<WireUsage>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WireMessage<'a> {
    #[serde(borrow, default)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    usage: Option<WireUsage>,
}

/// A content block, in stream starts and in non-streaming bodies.
#[derive(Deserialize)]
pub(super) struct WireBlock<'a> {
    #[serde(rename = "type", borrow)]
    pub(super) kind: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "super::borrow_opt")]
    pub(super) id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "super::borrow_opt")]
    pub(super) name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "super::borrow_opt")]
    pub(super) text: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "super::borrow_opt")]
    pub(super) thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "super::borrow_opt")]
    pub(super) signature: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "super::borrow_opt")]
    pub(super) data: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub(super) input: Option<&'a RawValue>,
}

/// A `content_block_delta`'s delta.
#[derive(Deserialize)]
struct WireDelta<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "super::borrow_opt")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "super::borrow_opt")]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "super::borrow_opt")]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "super::borrow_opt")]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "super::borrow_opt")]
    partial_json: Option<Cow<'a, str>>,
}

/// A `message_delta`'s delta.
#[derive(Deserialize)]
struct WireMessageDelta<'a> {
    #[serde(borrow, default, deserialize_with = "super::borrow_opt")]
    stop_reason: Option<Cow<'a, str>>,
}

/// Parses the member `name` the event type requires.
fn member<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>, name: &str) -> Result<T, ProviderError> {
    let raw = raw.ok_or_else(|| malformed(format!("an event without its `{name}`")))?;
    serde_json::from_str(raw.get()).map_err(|e| malformed(format!("malformed `{name}`: {e}")))
}

#[derive(Deserialize, Clone, Copy)]
pub(super) struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

impl Counters {
    /// Present counters replace the known ones (Anthropic's counts are cumulative).
    fn merge(&mut self, usage: &WireUsage) {
        let update = |slot: &mut u64, value: Option<u64>| *slot = value.unwrap_or(*slot);
        update(&mut self.input, usage.input_tokens);
        update(&mut self.output, usage.output_tokens);
        update(&mut self.cache_write, usage.cache_creation_input_tokens);
        update(&mut self.cache_read, usage.cache_read_input_tokens);
    }

    fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.input.saturating_add(self.cache_write).saturating_add(self.cache_read),
            completion_tokens: self.output,
            cache_read_tokens: self.cache_read,
            cache_write_tokens: self.cache_write,
            reasoning_tokens: 0,
        }
    }
}

/// Internal usage from a non-streaming body's `usage`.
pub(super) fn usage_from(wire: Option<&WireUsage>) -> Usage {
    let mut counters = Counters::default();
    if let Some(wire) = wire {
        counters.merge(wire);
    }
    counters.usage()
}

/// `Some(text)` when non-empty, owned.
fn non_empty(text: Option<Cow<'_, str>>) -> Option<String> {
    text.filter(|t| !t.is_empty()).map(Cow::into_owned)
}

impl EventMapper {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    pub fn usage(&self) -> Usage {
        self.counters.usage()
    }

    /// Maps one event's JSON (the SSE `data`, or a Bedrock chunk's decoded bytes).
    pub fn on_event(&mut self, json: &[u8], out: &mut Vec<StreamEvent>) {
        if self.is_done() {
            return;
        }
        let mapped = match serde_json::from_slice::<WireEvent<'_>>(json) {
            Ok(event) => self.dispatch(&event, out),
            Err(e) => Err(malformed(format!("malformed event: {e}"))),
        };
        if let Err(error) = mapped {
            self.fail(error, out);
        }
    }

    /// The transport ended: a stream without `message_stop` was cut short.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.is_done() {
            self.fail(malformed("the stream ended before message_stop"), out);
        }
    }

    /// Ends the stream with `error` unless it already ended.
    pub fn fail(&mut self, error: ProviderError, out: &mut Vec<StreamEvent>) {
        if !self.is_done() {
            self.state = State::Done;
            out.push(StreamEvent::Error(error));
        }
    }

    /// One transition; an `Err` ends the stream.
    fn dispatch(&mut self, event: &WireEvent<'_>, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        match (&*event.kind, self.state) {
            ("ping", _) => {}
            ("error", _) => return Err(provider_error(event.error)),
            ("message_start", State::AwaitingStart) => self.on_message_start(member(event.message, "message")?, out),
            (kind, State::AwaitingStart) => return Err(malformed(format!("{kind} before message_start"))),
            ("content_block_start", _) => {
                let index = event.index.ok_or_else(|| malformed("content_block_start without an index"))?;
                self.on_block_start(index, member(event.content_block, "content_block")?, out)
            }
            ("content_block_delta", State::Block { index, block }) if event.index == Some(index) => {
                self.on_block_delta(block, member(event.delta, "delta")?, out)
            }
            ("content_block_stop", State::Block { index, .. }) if event.index == Some(index) => self.close_block(out),
            ("message_delta", _) => {
                let delta: Option<WireMessageDelta<'_>> = member(event.delta, "delta").ok();
                self.on_message_delta(delta, event.usage.as_ref(), out)
            }
            ("message_stop", _) => self.on_message_stop(out),
            // A repeated message_start, deltas of blocks not open, and event types added later.
            _ => {}
        }
        Ok(())
    }

    fn on_message_start(&mut self, message: WireMessage<'_>, out: &mut Vec<StreamEvent>) {
        if let Some(usage) = &message.usage {
            self.counters.merge(usage);
        }
        self.state = State::Message;
        out.push(StreamEvent::Start { id: message.id.into_owned(), model: message.model.into_owned() });
    }

    fn on_block_start(&mut self, index: u64, block: WireBlock<'_>, out: &mut Vec<StreamEvent>) {
        // A block opened before the previous one closed: close that one first, as its stop would.
        self.close_block(out);
        let block = match &*block.kind {
            "text" => self.open_text(block.text, out),
            "thinking" => self.open_thinking(block.thinking, out),
            "redacted_thinking" => self.open_redacted(block.data, out),
            "tool_use" => self.open_tool_use(block, out),
            _ => Block::Skipped,
        };
        self.state = State::Block { index, block };
    }

    fn open_text(&mut self, text: Option<Cow<'_, str>>, out: &mut Vec<StreamEvent>) -> Block {
        out.extend(non_empty(text).map(StreamEvent::TextDelta));
        Block::Text
    }

    fn open_thinking(&mut self, thinking: Option<Cow<'_, str>>, out: &mut Vec<StreamEvent>) -> Block {
        out.extend(non_empty(thinking).map(StreamEvent::ReasoningDelta));
        Block::Thinking
    }

    fn open_redacted(&mut self, data: Option<Cow<'_, str>>, out: &mut Vec<StreamEvent>) -> Block {
        out.extend(non_empty(data).map(StreamEvent::RedactedReasoning));
        Block::Skipped
    }

    fn open_tool_use(&mut self, block: WireBlock<'_>, out: &mut Vec<StreamEvent>) -> Block {
        let call = self.tool_calls;
        self.tool_calls = self.tool_calls.saturating_add(1);
        let id = block.id.map(Cow::into_owned).unwrap_or_default();
        let name = block.name.map(Cow::into_owned).unwrap_or_default();
        out.push(StreamEvent::ToolCallStart { index: call, id, name });
        // Streams start with `input: {}` and send the arguments as deltas; an input given whole
        // at the start is forwarded as the arguments.
        let initial = block.input.map(RawValue::get).filter(|raw| *raw != "{}");
        if let Some(raw) = initial {
            out.push(StreamEvent::ToolCallDelta { index: call, arguments: raw.to_owned() });
        }
        Block::ToolUse { call, has_arguments: initial.is_some() }
    }

    fn on_block_delta(&mut self, block: Block, delta: WireDelta<'_>, out: &mut Vec<StreamEvent>) {
        match (delta.kind.as_deref(), block) {
            (Some("text_delta"), Block::Text) => out.extend(non_empty(delta.text).map(StreamEvent::TextDelta)),
            (Some("thinking_delta"), Block::Thinking) => {
                out.extend(non_empty(delta.thinking).map(StreamEvent::ReasoningDelta))
            }
            (Some("signature_delta"), Block::Thinking) => {
                out.extend(non_empty(delta.signature).map(StreamEvent::ReasoningSignature))
            }
            (Some("input_json_delta"), Block::ToolUse { call, .. }) => {
                if let Some(arguments) = non_empty(delta.partial_json) {
                    out.push(StreamEvent::ToolCallDelta { index: call, arguments });
                    self.set_block(Block::ToolUse { call, has_arguments: true });
                }
            }
            _ => {}
        }
    }

    fn set_block(&mut self, block: Block) {
        if let State::Block { index, .. } = self.state {
            self.state = State::Block { index, block };
        }
    }

    /// Leaves the open block, if any: a tool call that got no argument text gets `{}`.
    fn close_block(&mut self, out: &mut Vec<StreamEvent>) {
        if let State::Block { block, .. } = self.state {
            if let Block::ToolUse { call, has_arguments: false } = block {
                out.push(StreamEvent::ToolCallDelta { index: call, arguments: "{}".to_owned() });
            }
            self.state = State::Message;
        }
    }

    fn on_message_delta(
        &mut self,
        delta: Option<WireMessageDelta<'_>>,
        usage: Option<&WireUsage>,
        out: &mut Vec<StreamEvent>,
    ) {
        self.close_block(out);
        if let Some(reason) = delta.and_then(|d| d.stop_reason) {
            self.stop_reason = Some(finish_reason(&reason));
        }
        if let Some(usage) = usage {
            self.counters.merge(usage);
        }
        out.push(StreamEvent::Usage(self.counters.usage()));
        self.usage_sent = true;
    }

    fn on_message_stop(&mut self, out: &mut Vec<StreamEvent>) {
        self.close_block(out);
        if !self.usage_sent {
            // No message_delta: message_start's counts are all there is, and clients that asked
            // for usage still get it.
            out.push(StreamEvent::Usage(self.counters.usage()));
        }
        self.state = State::Done;
        out.push(StreamEvent::Finish(self.stop_reason.unwrap_or_default()));
    }
}

fn malformed(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Malformed, message)
}

/// The stream's `error` event as a provider error; an unreadable one is still a server failure.
fn provider_error(raw: Option<&RawValue>) -> ProviderError {
    match member::<ErrorDetail<'_>>(raw, "error") {
        Ok(detail) => detail.classify(ProviderErrorKind::Server),
        Err(_) => ProviderError::new(ProviderErrorKind::Server, "Anthropic reported an error without details"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(input: &[u8]) -> Vec<StreamEvent> {
        let mut translator = StreamTranslator::new();
        let mut out = Vec::new();
        translator.feed(input, &mut out);
        translator.finish(&mut out);
        out
    }

    fn sse(events: &[&str]) -> Vec<u8> {
        events.iter().flat_map(|json| format!("data: {json}\n\n").into_bytes()).collect()
    }

    const START: &str = r#"{"type":"message_start","message":{"id":"msg_1","model":"claude","usage":{"input_tokens":5,"cache_read_input_tokens":3,"cache_creation_input_tokens":2,"output_tokens":1}}}"#;

    #[test]
    fn tool_calls_are_numbered_apart_from_blocks_and_get_braces_when_empty() {
        let input = sse(&[
            START,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"Hi"}}"#,
            r#"{"type":"content_block_stop","index":0}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"f","input":{}}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
            r#"{"type":"content_block_stop","index":1}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}"#,
            r#"{"type":"message_stop"}"#,
        ]);
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 9,
            cache_read_tokens: 3,
            cache_write_tokens: 2,
            reasoning_tokens: 0,
        };
        assert_eq!(
            translate(&input),
            vec![
                StreamEvent::Start { id: "msg_1".into(), model: "claude".into() },
                StreamEvent::TextDelta("Hi".into()),
                StreamEvent::ToolCallStart { index: 0, id: "t1".into(), name: "f".into() },
                StreamEvent::ToolCallDelta { index: 0, arguments: "{}".into() },
                StreamEvent::Usage(usage),
                StreamEvent::Finish(FinishReason::ToolCalls),
            ]
        );
    }

    #[test]
    fn a_stream_without_message_delta_still_reports_usage() {
        let events = translate(&sse(&[START, r#"{"type":"message_stop"}"#]));
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 1,
            cache_read_tokens: 3,
            cache_write_tokens: 2,
            ..Usage::default()
        };
        assert_eq!(events[1..], [StreamEvent::Usage(usage), StreamEvent::Finish(FinishReason::Stop)]);
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        for (reason, expected) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("tool_use", FinishReason::ToolCalls),
            ("refusal", FinishReason::ContentFilter),
            ("pause_turn", FinishReason::Stop),
        ] {
            let delta = format!(r#"{{"type":"message_delta","delta":{{"stop_reason":"{reason}"}},"usage":{{}}}}"#);
            let events = translate(&sse(&[START, &delta, r#"{"type":"message_stop"}"#]));
            assert_eq!(events.last(), Some(&StreamEvent::Finish(expected)), "{reason}");
        }
    }

    #[test]
    fn broken_streams_end_with_a_malformed_error() {
        let cases: [&[u8]; 4] = [
            b"data: {\"type\":\"content_block_start\"}\n\n",
            b"data: {not json}\n\n",
            b"",
            b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\n",
        ];
        for input in cases {
            let events = translate(input);
            let Some(StreamEvent::Error(error)) = events.last() else { panic!("{events:?}") };
            assert_eq!(error.kind, ProviderErrorKind::Malformed, "{:?}", String::from_utf8_lossy(input));
            assert!(error.retryable());
        }
    }

    #[test]
    fn error_events_are_classified_and_end_the_stream() {
        let input = sse(&[
            START,
            r#"{"type":"error","error":{"details":null,"type":"rate_limit_error","message":"slow down"},"request_id":"req_1"}"#,
            r#"{"type":"message_stop"}"#,
        ]);
        let events = translate(&input);
        assert_eq!(events[1..], [StreamEvent::Error(ProviderError::new(ProviderErrorKind::RateLimited, "slow down"))]);
    }

    #[test]
    fn oversized_events_fail_the_stream() {
        let mut translator = StreamTranslator::with_max_event_bytes(64);
        let mut out = Vec::new();
        translator.feed(&sse(&[START]), &mut out);
        translator.finish(&mut out);
        assert!(matches!(&out[..], [StreamEvent::Error(e)] if e.kind == ProviderErrorKind::Malformed));
        assert!(translator.is_done());
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let fragments: [&[u8]; 9] = [
            b"data: ",
            START.as_bytes(),
            b"{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\"}}",
            b"{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\"}}",
            b"{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":18446744073709551615}}",
            b"{\"type\":\"content_block_stop\",\"index\":18446744073709551615}",
            b"\n\n",
            b"\r",
            b"\xff\xfe",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..500 {
            let mut input = Vec::new();
            for _ in 0..12 {
                seed = crate::test_fixtures::xorshift(seed);
                input.extend_from_slice(fragments[(seed % fragments.len() as u64) as usize]);
            }
            let events = translate(&input);
            assert!(events.last().is_some_and(StreamEvent::is_terminal));
            assert_eq!(events.iter().filter(|e| e.is_terminal()).count(), 1);
        }
    }
}
