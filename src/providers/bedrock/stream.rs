//! Bedrock event streams (`application/vnd.amazon.eventstream`) -> internal stream events,
//! incrementally. Frames are decoded and CRC-checked by `aws::eventstream::Decoder`; ConverseStream
//! events are mapped here by [`ConverseMapper`]; InvokeModelWithResponseStream `chunk` frames carry
//! Anthropic stream events in base64 `bytes`, which go to `anthropic::EventMapper` as they are. It
//! encodes nothing for clients.
//!
//! Both APIs:
//! - An exception frame (`:message-type` `exception`) or an unmodelled error frame ends the stream
//!   with `Error`, classified by its name (`throttlingException` is retryable, `validationException`
//!   is not). One arriving before any content leaves the proxy free to fail over.
//! - A frame that fails its CRC, a frame without a recognised message type, an event payload that
//!   is not the JSON its type requires, or a body ending inside a frame or before the answer ended,
//!   ends the stream with a `Malformed` error.
//!
//! ConverseStream mapping choices:
//! - `messageStart` gives no id or model: `Start` carries the request id the caller passes (the
//!   response's `x-amzn-requestid`) and an empty model (front doors show the gateway's).
//! - Text blocks may come without `contentBlockStart`: a delta for a block that is not open opens it.
//!   Tool calls are numbered 0, 1, ... in arrival order, apart from Bedrock's block indexes. A tool
//!   call that closes without input gets `{}`, as OpenAI sends for a call without parameters.
//! - Reasoning text and signatures go out as they come. Redacted reasoning is gathered over its
//!   block and goes out whole at the block's end (`RedactedReasoning` is one part), as the base64
//!   text Bedrock sent (what Converse takes back).
//! - `messageStop` gives the finish reason, `metadata` the usage; Bedrock sends `metadata` last, so
//!   `Finish` goes out once both arrived. A body ending after `messageStop` without `metadata` still
//!   finishes cleanly, without usage. Empty deltas, citations, images and event types added later are
//!   skipped.

use std::borrow::Cow;

use serde::Deserialize;

use super::error::stream_exception;
use super::{Api, WireUsage, borrow_opt, finish_reason};
use crate::aws::eventstream::{Decoder, Frame, FrameKind};
use crate::chat::{FinishReason, ProviderError, ProviderErrorKind, StreamEvent, Usage};
use crate::providers::anthropic::EventMapper;

/// The most redacted reasoning gathered for one block; a provider that sends more is broken.
const MAX_REDACTED_BYTES: usize = 16 * 1024 * 1024;

/// Event-stream bytes -> internal events. Feed every body piece, then call
/// [`StreamTranslator::finish`] at the end of the body; each call appends to `out` the events it
/// completed.
#[derive(Debug)]
pub struct StreamTranslator {
    decoder: Decoder,
    mapper: Mapper,
    /// A `chunk` frame's decoded bytes, reused across frames.
    scratch: Vec<u8>,
}

/// The per-API state machine behind the frame decoder.
#[derive(Debug)]
enum Mapper {
    Converse(ConverseMapper),
    Invoke(EventMapper),
}

impl StreamTranslator {
    /// A translator for a stream of `api`. `request_id` (the `x-amzn-requestid` response header, or
    /// empty) is a Converse stream's id; Anthropic streams carry their own.
    pub fn new(api: Api, request_id: &str) -> Self {
        Self::with_decoder(api, request_id, Decoder::new())
    }

    /// A translator that rejects frames longer than `max_frame_len` bytes.
    pub fn with_max_frame_len(api: Api, request_id: &str, max_frame_len: usize) -> Self {
        Self::with_decoder(api, request_id, Decoder::with_max_frame_len(max_frame_len))
    }

    fn with_decoder(api: Api, request_id: &str, decoder: Decoder) -> Self {
        let mapper = match api {
            Api::Converse => Mapper::Converse(ConverseMapper::new(request_id)),
            Api::InvokeAnthropic => Mapper::Invoke(EventMapper::new()),
        };
        Self { decoder, mapper, scratch: Vec::new() }
    }

    pub fn feed(&mut self, input: &[u8], out: &mut Vec<StreamEvent>) {
        if self.mapper.is_done() {
            // Nothing more can come out; do not buffer what follows.
            return;
        }
        self.decoder.push(input);
        while !self.mapper.is_done() {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => self.mapper.on_frame(&frame, &mut self.scratch, out),
                Ok(None) => break,
                Err(error) => self.mapper.fail(malformed(format!("Bedrock stream: {error}")), out),
            }
        }
    }

    /// The provider's body ended: close the stream, with an error if it was cut short.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.mapper.is_done()
            && let Err(error) = self.decoder.finish()
        {
            self.mapper.fail(malformed(format!("Bedrock stream: {error}")), out);
        }
        self.mapper.finish(out);
    }

    /// Usage as known so far (complete once the stream finished).
    pub fn usage(&self) -> Usage {
        match &self.mapper {
            Mapper::Converse(mapper) => mapper.usage,
            Mapper::Invoke(mapper) => mapper.usage(),
        }
    }

    /// True once a terminal event (`Finish` or `Error`) went out.
    pub fn is_done(&self) -> bool {
        self.mapper.is_done()
    }
}

impl Mapper {
    fn is_done(&self) -> bool {
        match self {
            Mapper::Converse(mapper) => mapper.is_done(),
            Mapper::Invoke(mapper) => mapper.is_done(),
        }
    }

    fn fail(&mut self, error: ProviderError, out: &mut Vec<StreamEvent>) {
        match self {
            Mapper::Converse(mapper) => mapper.fail(error, out),
            Mapper::Invoke(mapper) => mapper.fail(error, out),
        }
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        match self {
            Mapper::Converse(mapper) => mapper.finish(out),
            Mapper::Invoke(mapper) => mapper.finish(out),
        }
    }

    fn on_frame(&mut self, frame: &Frame<'_>, scratch: &mut Vec<u8>, out: &mut Vec<StreamEvent>) {
        match frame.kind() {
            FrameKind::Event(event_type) => self.on_event(event_type, frame, scratch, out),
            FrameKind::Exception(name) => self.fail(stream_exception(name, frame.exception_message()), out),
            FrameKind::Error { code, message } => self.fail(stream_exception(code, Some(message.to_owned())), out),
            FrameKind::Unrecognised => {
                self.fail(malformed("Bedrock sent a frame without a recognised :message-type"), out)
            }
        }
    }

    fn on_event(&mut self, event_type: &str, frame: &Frame<'_>, scratch: &mut Vec<u8>, out: &mut Vec<StreamEvent>) {
        match self {
            Mapper::Converse(mapper) => mapper.on_event(event_type, frame.payload(), out),
            // InvokeModelWithResponseStream has one event type; others would be later additions.
            Mapper::Invoke(mapper) if event_type == "chunk" => {
                scratch.clear();
                match frame.decode_chunk_bytes(scratch) {
                    Ok(()) => mapper.on_event(scratch, out),
                    Err(error) => mapper.fail(malformed(format!("Bedrock chunk: {error}")), out),
                }
            }
            Mapper::Invoke(_) => {}
        }
    }
}

fn malformed(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Malformed, message)
}

/// Where a Converse stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// `messageStart` must come first.
    #[default]
    AwaitingStart,
    /// In the message, outside any content block.
    Message,
    /// In content block `index`.
    Block { index: u64, block: Block },
    /// `messageStop` came before `metadata`: waiting for the usage to finish.
    Stopped,
    /// A terminal event went out; everything else is ignored.
    Done,
}

/// What the open content block is, as far as mapping its deltas goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// Text, reasoning, or anything else whose deltas say what they are.
    Content,
    ToolUse {
        call: u32,
        has_arguments: bool,
    },
}

/// The ConverseStream state machine over decoded event payloads.
#[derive(Debug, Default)]
struct ConverseMapper {
    state: State,
    request_id: String,
    /// Tool calls started so far: the next call's index.
    tool_calls: u32,
    finish_reason: FinishReason,
    usage: Usage,
    /// `metadata` arrived (and its `Usage` went out).
    usage_sent: bool,
    /// Redacted reasoning of the open block.
    redacted: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireBlockStart<'a> {
    #[serde(default)]
    content_block_index: u64,
    #[serde(borrow)]
    start: Option<WireStart<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireStart<'a> {
    #[serde(borrow)]
    tool_use: Option<WireToolStart<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireToolStart<'a> {
    #[serde(borrow, default)]
    tool_use_id: Cow<'a, str>,
    #[serde(borrow, default)]
    name: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireBlockDelta<'a> {
    #[serde(default)]
    content_block_index: u64,
    #[serde(borrow)]
    delta: Option<WireDelta<'a>>,
}

/// A delta: a union, so one member is set (unknown ones, such as citations, leave all unset).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireDelta<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tool_use: Option<WireToolDelta<'a>>,
    #[serde(borrow)]
    reasoning_content: Option<WireReasoningDelta<'a>>,
}

#[derive(Deserialize)]
struct WireToolDelta<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    input: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireReasoningDelta<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    redacted_content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireBlockStop {
    #[serde(default)]
    content_block_index: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMessageStop<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    stop_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WireMetadata {
    usage: Option<WireUsage>,
}

/// The payload of a `event_type` event, or a `Malformed` error naming it.
fn payload<'a, T: Deserialize<'a>>(json: &'a [u8], event_type: &str) -> Result<T, ProviderError> {
    serde_json::from_slice(json).map_err(|e| malformed(format!("malformed Bedrock {event_type} event: {e}")))
}

/// `Some(text)` when non-empty, owned.
fn non_empty(text: Option<Cow<'_, str>>) -> Option<String> {
    text.filter(|t| !t.is_empty()).map(Cow::into_owned)
}

impl ConverseMapper {
    fn new(request_id: &str) -> Self {
        Self { request_id: request_id.to_owned(), ..Self::default() }
    }

    fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Maps one event's JSON payload.
    fn on_event(&mut self, event_type: &str, json: &[u8], out: &mut Vec<StreamEvent>) {
        if self.is_done() {
            return;
        }
        if let Err(error) = self.dispatch(event_type, json, out) {
            self.fail(error, out);
        }
    }

    /// The body ended: clean after `messageStop`, cut short before it.
    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        match self.state {
            State::Done => {}
            State::Stopped => self.end(out),
            _ => self.fail(malformed("the Bedrock stream ended before messageStop"), out),
        }
    }

    /// Ends the stream with `error` unless it already ended.
    fn fail(&mut self, error: ProviderError, out: &mut Vec<StreamEvent>) {
        if !self.is_done() {
            self.state = State::Done;
            out.push(StreamEvent::Error(error));
        }
    }

    /// One transition; an `Err` ends the stream.
    fn dispatch(&mut self, event_type: &str, json: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        const KNOWN: [&str; 5] =
            ["contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"];
        match (event_type, self.state) {
            ("messageStart", State::AwaitingStart) => self.on_message_start(out),
            (kind, State::AwaitingStart) if KNOWN.contains(&kind) => {
                return Err(malformed(format!("Bedrock sent {kind} before messageStart")));
            }
            ("metadata", _) => self.on_metadata(payload(json, event_type)?, out),
            // Only metadata follows messageStop.
            (_, State::Stopped) => {}
            ("contentBlockStart", _) => self.on_block_start(payload(json, event_type)?, out),
            ("contentBlockDelta", _) => self.on_block_delta(payload(json, event_type)?, out)?,
            ("contentBlockStop", _) => self.on_block_stop(payload(json, event_type)?, out),
            ("messageStop", _) => self.on_message_stop(payload(json, event_type)?, out),
            // A repeated messageStart, and event types added later.
            _ => {}
        }
        Ok(())
    }

    fn on_message_start(&mut self, out: &mut Vec<StreamEvent>) {
        self.state = State::Message;
        out.push(StreamEvent::Start { id: self.request_id.clone(), model: String::new() });
    }

    fn on_block_start(&mut self, event: WireBlockStart<'_>, out: &mut Vec<StreamEvent>) {
        // A block opened before the previous one closed: close that one first, as its stop would.
        self.close_block(out);
        let block = match event.start.and_then(|start| start.tool_use) {
            Some(tool) => self.open_tool_use(tool, out),
            // Server-side tool results and images are not the client's; their deltas are skipped.
            None => Block::Content,
        };
        self.state = State::Block { index: event.content_block_index, block };
    }

    fn open_tool_use(&mut self, tool: WireToolStart<'_>, out: &mut Vec<StreamEvent>) -> Block {
        let call = self.tool_calls;
        self.tool_calls = self.tool_calls.saturating_add(1);
        out.push(StreamEvent::ToolCallStart {
            index: call,
            id: tool.tool_use_id.into_owned(),
            name: tool.name.into_owned(),
        });
        Block::ToolUse { call, has_arguments: false }
    }

    /// The open block if it is `index`, else a new content block `index` (text blocks have no start).
    fn enter_block(&mut self, index: u64, out: &mut Vec<StreamEvent>) -> Block {
        if let State::Block { index: open, block } = self.state
            && open == index
        {
            return block;
        }
        self.close_block(out);
        self.state = State::Block { index, block: Block::Content };
        Block::Content
    }

    fn on_block_delta(&mut self, event: WireBlockDelta<'_>, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        let block = self.enter_block(event.content_block_index, out);
        let Some(delta) = event.delta else { return Ok(()) };
        out.extend(non_empty(delta.text).map(StreamEvent::TextDelta));
        if let Some(reasoning) = delta.reasoning_content {
            self.on_reasoning(reasoning, out)?;
        }
        if let (Some(tool), Block::ToolUse { call, .. }) = (delta.tool_use, block)
            && let Some(arguments) = non_empty(tool.input)
        {
            out.push(StreamEvent::ToolCallDelta { index: call, arguments });
            self.set_block(Block::ToolUse { call, has_arguments: true });
        }
        Ok(())
    }

    fn on_reasoning(&mut self, delta: WireReasoningDelta<'_>, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        out.extend(non_empty(delta.text).map(StreamEvent::ReasoningDelta));
        out.extend(non_empty(delta.signature).map(StreamEvent::ReasoningSignature));
        if let Some(data) = delta.redacted_content {
            if self.redacted.len().saturating_add(data.len()) > MAX_REDACTED_BYTES {
                return Err(malformed("Bedrock sent more redacted reasoning than one block can hold"));
            }
            self.redacted.push_str(&data);
        }
        Ok(())
    }

    fn set_block(&mut self, block: Block) {
        if let State::Block { index, .. } = self.state {
            self.state = State::Block { index, block };
        }
    }

    fn on_block_stop(&mut self, event: WireBlockStop, out: &mut Vec<StreamEvent>) {
        if matches!(self.state, State::Block { index, .. } if index == event.content_block_index) {
            self.close_block(out);
        }
    }

    /// Leaves the open block, if any: gathered redacted reasoning goes out, and a tool call that got
    /// no input gets `{}`.
    fn close_block(&mut self, out: &mut Vec<StreamEvent>) {
        let State::Block { block, .. } = self.state else { return };
        if !self.redacted.is_empty() {
            out.push(StreamEvent::RedactedReasoning(std::mem::take(&mut self.redacted)));
        }
        if let Block::ToolUse { call, has_arguments: false } = block {
            out.push(StreamEvent::ToolCallDelta { index: call, arguments: "{}".to_owned() });
        }
        self.state = State::Message;
    }

    fn on_message_stop(&mut self, event: WireMessageStop<'_>, out: &mut Vec<StreamEvent>) {
        self.close_block(out);
        self.finish_reason = event.stop_reason.as_deref().map(finish_reason).unwrap_or_default();
        if self.usage_sent {
            self.end(out);
        } else {
            self.state = State::Stopped;
        }
    }

    fn on_metadata(&mut self, event: WireMetadata, out: &mut Vec<StreamEvent>) {
        if let Some(usage) = event.usage {
            self.usage = usage.usage();
        }
        out.push(StreamEvent::Usage(self.usage));
        self.usage_sent = true;
        if self.state == State::Stopped {
            self.end(out);
        }
    }

    fn end(&mut self, out: &mut Vec<StreamEvent>) {
        self.state = State::Done;
        out.push(StreamEvent::Finish(self.finish_reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::eventstream::crc32;

    /// One event-stream frame with string headers.
    fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
        let mut encoded = Vec::new();
        for (name, value) in headers {
            encoded.push(name.len() as u8);
            encoded.extend_from_slice(name.as_bytes());
            encoded.push(7);
            encoded.extend_from_slice(&(value.len() as u16).to_be_bytes());
            encoded.extend_from_slice(value.as_bytes());
        }
        let total = (16 + encoded.len() + payload.len()) as u32;
        let mut out = Vec::new();
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        out.extend_from_slice(&crc32(&out).to_be_bytes());
        out.extend_from_slice(&encoded);
        out.extend_from_slice(payload);
        out.extend_from_slice(&crc32(&out).to_be_bytes());
        out
    }

    fn event(event_type: &str, json: &str) -> Vec<u8> {
        frame(
            &[(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")],
            json.as_bytes(),
        )
    }

    fn exception(name: &str, message: &str) -> Vec<u8> {
        let json = format!(r#"{{"message":"{message}"}}"#);
        frame(
            &[(":exception-type", name), (":content-type", "application/json"), (":message-type", "exception")],
            json.as_bytes(),
        )
    }

    fn translate(api: Api, frames: &[Vec<u8>]) -> Vec<StreamEvent> {
        let mut translator = StreamTranslator::new(api, "req-1");
        let mut out = Vec::new();
        for frame in frames {
            translator.feed(frame, &mut out);
        }
        translator.finish(&mut out);
        out
    }

    const START: &str = r#"{"p":"abc","role":"assistant"}"#;
    const METADATA: &str = r#"{"metrics":{"latencyMs":1},"usage":{"inputTokens":5,"outputTokens":7,"totalTokens":14,"cacheReadInputTokens":2}}"#;

    fn usage() -> Usage {
        Usage { prompt_tokens: 7, completion_tokens: 7, cache_read_tokens: 2, ..Usage::default() }
    }

    #[test]
    fn text_tool_calls_and_usage() {
        let events = translate(
            Api::Converse,
            &[
                event("messageStart", START),
                event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"x"}"#),
                event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":""}}"#),
                event("contentBlockStop", r#"{"contentBlockIndex":0}"#),
                event(
                    "contentBlockStart",
                    r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t1","name":"f"}}}"#,
                ),
                event("contentBlockStop", r#"{"contentBlockIndex":1}"#),
                event(
                    "contentBlockStart",
                    r#"{"contentBlockIndex":2,"start":{"toolUse":{"toolUseId":"t2","name":"g"}}}"#,
                ),
                event("contentBlockDelta", r#"{"contentBlockIndex":2,"delta":{"toolUse":{"input":"{\"a\":"}}}"#),
                event("contentBlockDelta", r#"{"contentBlockIndex":2,"delta":{"toolUse":{"input":"1}"}}}"#),
                event("contentBlockStop", r#"{"contentBlockIndex":2}"#),
                event("messageStop", r#"{"stopReason":"tool_use"}"#),
                event("metadata", METADATA),
            ],
        );
        assert_eq!(
            events,
            vec![
                StreamEvent::Start { id: "req-1".into(), model: String::new() },
                StreamEvent::TextDelta("Hi".into()),
                StreamEvent::ToolCallStart { index: 0, id: "t1".into(), name: "f".into() },
                StreamEvent::ToolCallDelta { index: 0, arguments: "{}".into() },
                StreamEvent::ToolCallStart { index: 1, id: "t2".into(), name: "g".into() },
                StreamEvent::ToolCallDelta { index: 1, arguments: r#"{"a":"#.into() },
                StreamEvent::ToolCallDelta { index: 1, arguments: "1}".into() },
                StreamEvent::Usage(usage()),
                StreamEvent::Finish(FinishReason::ToolCalls),
            ]
        );
    }

    #[test]
    fn redacted_reasoning_goes_out_whole_at_the_block_end() {
        let events = translate(
            Api::Converse,
            &[
                event("messageStart", START),
                event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"hm"}}}"#),
                event(
                    "contentBlockDelta",
                    r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"sig"}}}"#,
                ),
                event(
                    "contentBlockDelta",
                    r#"{"contentBlockIndex":1,"delta":{"reasoningContent":{"redactedContent":"YWJj"}}}"#,
                ),
                event(
                    "contentBlockDelta",
                    r#"{"contentBlockIndex":1,"delta":{"reasoningContent":{"redactedContent":"ZGVm"}}}"#,
                ),
                event("contentBlockDelta", r#"{"contentBlockIndex":2,"delta":{"citation":{"title":"x"}}}"#),
                event("messageStop", r#"{"stopReason":"max_tokens"}"#),
            ],
        );
        assert_eq!(
            events[1..],
            [
                StreamEvent::ReasoningDelta("hm".into()),
                StreamEvent::ReasoningSignature("sig".into()),
                StreamEvent::RedactedReasoning("YWJjZGVm".into()),
                // No metadata before the end: a clean finish without usage.
                StreamEvent::Finish(FinishReason::Length),
            ]
        );
    }

    #[test]
    fn metadata_before_message_stop_finishes_at_the_stop() {
        let events = translate(
            Api::Converse,
            &[
                event("messageStart", START),
                event("metadata", METADATA),
                event("messageStop", r#"{"stopReason":"guardrail_intervened"}"#),
            ],
        );
        assert_eq!(events[1..], [StreamEvent::Usage(usage()), StreamEvent::Finish(FinishReason::ContentFilter)]);
    }

    #[test]
    fn an_exception_before_content_leaves_room_to_fail_over() {
        for (name, kind, retryable) in [
            ("throttlingException", ProviderErrorKind::RateLimited, true),
            ("serviceUnavailableException", ProviderErrorKind::Overloaded, true),
            ("modelStreamErrorException", ProviderErrorKind::Server, true),
            ("internalServerException", ProviderErrorKind::Server, true),
            ("validationException", ProviderErrorKind::InvalidRequest, false),
        ] {
            let events = translate(Api::Converse, &[event("messageStart", START), exception(name, "no")]);
            assert!(!events[0].commits());
            assert_eq!(events[1..], [StreamEvent::Error(ProviderError::new(kind, "no"))], "{name}");
            assert_eq!(kind.retryable(), retryable);
            let first = translate(Api::InvokeAnthropic, &[exception(name, "no")]);
            assert_eq!(first, [StreamEvent::Error(ProviderError::new(kind, "no"))], "{name}");
        }
    }

    #[test]
    fn error_frames_and_unrecognised_frames() {
        let error_frame =
            frame(&[(":message-type", "error"), (":error-code", "InternalFailure"), (":error-message", "boom")], b"");
        let events = translate(Api::Converse, &[event("messageStart", START), error_frame]);
        assert_eq!(events[1], StreamEvent::Error(ProviderError::new(ProviderErrorKind::Server, "boom")));
        let unknown = frame(&[(":message-type", "gossip")], b"{}");
        let events = translate(Api::Converse, &[unknown]);
        assert!(matches!(&events[..], [StreamEvent::Error(e)] if e.kind == ProviderErrorKind::Malformed));
    }

    #[test]
    fn invoke_chunks_go_through_the_anthropic_mapper() {
        let chunk = |json: &str| {
            let mut encoded = String::new();
            base64_encode(json.as_bytes(), &mut encoded);
            event("chunk", &format!(r#"{{"bytes":"{encoded}","p":"abcd"}}"#))
        };
        let events = translate(
            Api::InvokeAnthropic,
            &[
                chunk(
                    r#"{"type":"message_start","message":{"id":"msg_bdrk_1","model":"claude","usage":{"input_tokens":3,"output_tokens":1}}}"#,
                ),
                event("somethingElse", "{}"),
                chunk(r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"Hi"}}"#),
                chunk(r#"{"type":"content_block_stop","index":0}"#),
                chunk(r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":4}}"#),
                chunk(
                    r#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":3,"outputTokenCount":4}}"#,
                ),
            ],
        );
        let usage = Usage { prompt_tokens: 3, completion_tokens: 4, ..Usage::default() };
        assert_eq!(
            events,
            vec![
                StreamEvent::Start { id: "msg_bdrk_1".into(), model: "claude".into() },
                StreamEvent::TextDelta("Hi".into()),
                StreamEvent::Usage(usage),
                StreamEvent::Finish(FinishReason::Stop),
            ]
        );
    }

    /// Test-only standard base64, padded.
    fn base64_encode(input: &[u8], out: &mut String) {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for chunk in input.chunks(3) {
            let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for k in 0..4 {
                if k <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
    }

    #[test]
    fn broken_streams_end_with_a_malformed_error() {
        let mut corrupt = event("messageStart", START);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        let bad_chunk = event("chunk", r#"{"bytes":"not base64!"}"#);
        let cases: [(Api, Vec<Vec<u8>>); 6] = [
            (Api::Converse, vec![]),
            (Api::Converse, vec![corrupt]),
            (Api::Converse, vec![event("messageStart", START)[..20].to_vec()]),
            (Api::Converse, vec![event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"x"}}"#)]),
            (Api::Converse, vec![event("messageStart", START), event("contentBlockDelta", "{not json")]),
            (Api::InvokeAnthropic, vec![bad_chunk]),
        ];
        for (i, (api, frames)) in cases.into_iter().enumerate() {
            let events = translate(api, &frames);
            let Some(StreamEvent::Error(error)) = events.last() else { panic!("case {i}: {events:?}") };
            assert_eq!(error.kind, ProviderErrorKind::Malformed, "case {i}");
            assert_eq!(events.iter().filter(|e| e.is_terminal()).count(), 1, "case {i}");
        }
    }

    #[test]
    fn nothing_is_buffered_or_emitted_after_the_end() {
        let mut translator = StreamTranslator::new(Api::Converse, "");
        let mut out = Vec::new();
        translator.feed(&exception("throttlingException", "slow"), &mut out);
        assert!(translator.is_done());
        translator.feed(&event("messageStart", START), &mut out);
        translator.feed(b"garbage that would fail the decoder", &mut out);
        translator.finish(&mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn oversized_frames_fail_the_stream() {
        let mut translator = StreamTranslator::with_max_frame_len(Api::Converse, "", 32);
        let mut out = Vec::new();
        translator.feed(&event("messageStart", START), &mut out);
        assert!(matches!(&out[..], [StreamEvent::Error(e)] if e.kind == ProviderErrorKind::Malformed));
    }

    #[test]
    fn arbitrary_frame_sequences_never_panic() {
        let fragments: Vec<Vec<u8>> = vec![
            event("messageStart", START),
            event("contentBlockStart", r#"{"contentBlockIndex":1,"start":{"toolUse":{}}}"#),
            event("contentBlockStart", r#"{"contentBlockIndex":18446744073709551615,"start":{}}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{"}}}"#),
            event(
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"redactedContent":"x"}}}"#,
            ),
            event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"t"}}"#),
            event("contentBlockStop", r#"{"contentBlockIndex":1}"#),
            event("messageStop", r#"{"stopReason":7}"#),
            event("messageStop", r#"{}"#),
            event("metadata", r#"{"usage":{"inputTokens":18446744073709551615,"cacheWriteInputTokens":9}}"#),
            event("chunk", r#"{"bytes":"eyJ0eXBlIjoibWVzc2FnZV9zdG9wIn0="}"#),
            exception("throttlingException", "x"),
            b"\x00\x00\x00\x10".to_vec(),
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for api in [Api::Converse, Api::InvokeAnthropic] {
            for _ in 0..500 {
                let mut frames = Vec::new();
                for _ in 0..10 {
                    seed = crate::test_fixtures::xorshift(seed);
                    frames.push(fragments[(seed % fragments.len() as u64) as usize].clone());
                }
                let events = translate(api, &frames);
                assert!(events.last().is_some_and(StreamEvent::is_terminal), "{events:?}");
                assert_eq!(events.iter().filter(|e| e.is_terminal()).count(), 1);
            }
        }
    }
}
