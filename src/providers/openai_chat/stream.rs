//! OpenAI `chat.completion.chunk` stream -> internal stream events, incrementally.
//! [`StreamTranslator`] takes the SSE body in arbitrary pieces; [`ChunkMapper`] is the state machine
//! behind it and takes one event's data. It does not encode anything for clients.
//!
//! Mapping choices:
//! - The first chunk gives `Start` (its `id` and `model`); a chunk with an `error` member ends the
//!   stream with `Error` wherever it comes, classified by its type and code (a first-chunk error
//!   leaves the answer uncommitted, so routing can fail over).
//! - Within a delta: reasoning (`reasoning_content`, or `reasoning` from the servers that use that
//!   name), then `content`, then `refusal`, then tool calls. Empty strings are not forwarded (the role
//!   chunk's `content: ""`).
//! - Tool calls are renumbered 0, 1, ... in order of first appearance of their OpenAI `index` (an
//!   entry without `index` counts by its position in the array). The first appearance gives
//!   `ToolCallStart` with its `id` and `name` (empty when absent); argument text of any appearance
//!   gives `ToolCallDelta`. More than `MAX_TOOL_CALLS` (1024) calls end the stream as malformed.
//! - Only choice 0 is read: the gateway never asks for `n` above 1, so other choices are not the
//!   client's answer.
//! - A non-null `usage` gives a `Usage` event at once (cumulative; the last one counts), with
//!   `prompt_tokens_details.cached_tokens` as cache reads and
//!   `completion_tokens_details.reasoning_tokens` as reasoning.
//! - `finish_reason` is remembered; `Finish` goes out at `data: [DONE]` (the usage chunk comes in
//!   between), as `Stop` when no reason came. `[DONE]` before any chunk, malformed JSON, an oversized
//!   event, or the body ending before `[DONE]` end the stream with a `Malformed` error.
//! - Ignored: `system_fingerprint`, `service_tier`, `logprobs`, `obfuscation` and other members the
//!   internal model has no place for.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{error_detail, finish_reason};
use crate::chat::{FinishReason, ProviderError, ProviderErrorKind, SseEventMapper, SseTranslator, StreamEvent, Usage};
use crate::providers::anthropic::borrow_opt;

/// The most tool calls one answer may make; beyond it the stream is treated as broken (it also
/// bounds the index lookup).
const MAX_TOOL_CALLS: usize = 1024;

/// SSE bytes -> internal events: the shared SSE translator driving [`ChunkMapper`].
pub type StreamTranslator = SseTranslator<ChunkMapper>;

impl SseEventMapper for ChunkMapper {
    const PROVIDER: &'static str = "OpenAI";

    fn on_data(&mut self, data: &[u8], out: &mut Vec<StreamEvent>) {
        self.on_data(data, out);
    }

    fn fail(&mut self, error: ProviderError, out: &mut Vec<StreamEvent>) {
        ChunkMapper::fail(self, error, out);
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        ChunkMapper::finish(self, out);
    }

    fn usage(&self) -> Usage {
        ChunkMapper::usage(self)
    }

    fn is_done(&self) -> bool {
        ChunkMapper::is_done(self)
    }
}

fn malformed(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Malformed, message)
}

/// Where the stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// No chunk yet.
    #[default]
    AwaitingStart,
    /// `Start` went out; content, usage and the finish reason may come, then `[DONE]`.
    Streaming,
    /// A terminal event went out; everything else is ignored.
    Done,
}

/// The stream state machine over each event's data.
#[derive(Debug, Clone, Default)]
pub struct ChunkMapper {
    state: State,
    /// OpenAI's tool-call indexes in order of first appearance: position = internal index.
    calls: Vec<u64>,
    finish_reason: Option<FinishReason>,
    usage: Usage,
}

#[derive(Deserialize)]
struct WireChunk<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Option<Vec<WireChoice<'a>>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WireChoice<'a> {
    #[serde(default)]
    index: u64,
    #[serde(borrow, default)]
    delta: Option<WireDelta<'a>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WireDelta<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    reasoning: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<WireToolCall<'a>>>,
}

#[derive(Deserialize)]
struct WireToolCall<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<WireFunction<'a>>,
}

#[derive(Deserialize)]
struct WireFunction<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    arguments: Option<Cow<'a, str>>,
}

/// OpenAI's usage object, in chunks and in `chat.completion` bodies.
#[derive(Deserialize, Clone, Copy, Default)]
pub(super) struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize, Clone, Copy, Default)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Clone, Copy, Default)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    /// Internal usage; OpenAI's `prompt_tokens` already counts cached tokens, as the internal one does.
    pub(super) fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens.unwrap_or(0),
            completion_tokens: self.completion_tokens.unwrap_or(0),
            cache_read_tokens: self.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_write_tokens: 0,
            reasoning_tokens: self.completion_tokens_details.and_then(|d| d.reasoning_tokens).unwrap_or(0),
        }
    }
}

/// `Some(text)` when non-empty, owned.
fn non_empty(text: Option<Cow<'_, str>>) -> Option<String> {
    text.filter(|t| !t.is_empty()).map(Cow::into_owned)
}

impl ChunkMapper {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Maps one event's data: a chunk's JSON or `[DONE]`.
    pub fn on_data(&mut self, data: &[u8], out: &mut Vec<StreamEvent>) {
        if self.is_done() {
            return;
        }
        let data = data.trim_ascii();
        if data == b"[DONE]" {
            self.on_done(out);
            return;
        }
        // serde would read a struct from an array too; a chunk is an object.
        let mapped = match serde_json::from_slice::<WireChunk<'_>>(data) {
            Ok(chunk) if data.starts_with(b"{") => self.on_chunk(chunk, out),
            Ok(_) => Err(malformed("a chunk that is not a JSON object")),
            Err(e) => Err(malformed(format!("malformed chunk: {e}"))),
        };
        if let Err(error) = mapped {
            self.fail(error, out);
        }
    }

    /// The transport ended: a stream without `[DONE]` was cut short.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.is_done() {
            self.fail(malformed("the stream ended before [DONE]"), out);
        }
    }

    /// Ends the stream with `error` unless it already ended.
    pub fn fail(&mut self, error: ProviderError, out: &mut Vec<StreamEvent>) {
        if !self.is_done() {
            self.state = State::Done;
            out.push(StreamEvent::Error(error));
        }
    }

    fn on_done(&mut self, out: &mut Vec<StreamEvent>) {
        match self.state {
            State::AwaitingStart => self.fail(malformed("[DONE] before any chunk"), out),
            State::Streaming => {
                self.state = State::Done;
                out.push(StreamEvent::Finish(self.finish_reason.unwrap_or_default()));
            }
            State::Done => {}
        }
    }

    /// One chunk; an `Err` ends the stream.
    fn on_chunk(&mut self, chunk: WireChunk<'_>, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if let Some(raw) = chunk.error {
            return Err(stream_error(raw));
        }
        if self.state == State::AwaitingStart {
            self.state = State::Streaming;
            let owned = |text: Option<Cow<'_, str>>| text.map(Cow::into_owned).unwrap_or_default();
            out.push(StreamEvent::Start { id: owned(chunk.id), model: owned(chunk.model) });
        }
        for choice in chunk.choices.into_iter().flatten().filter(|choice| choice.index == 0) {
            self.on_choice(choice, out)?;
        }
        if let Some(usage) = chunk.usage {
            self.usage = usage.usage();
            out.push(StreamEvent::Usage(self.usage));
        }
        Ok(())
    }

    fn on_choice(&mut self, choice: WireChoice<'_>, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if let Some(delta) = choice.delta {
            self.on_delta(delta, out)?;
        }
        if let Some(reason) = choice.finish_reason {
            self.finish_reason = Some(finish_reason(&reason));
        }
        Ok(())
    }

    fn on_delta(&mut self, delta: WireDelta<'_>, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        let reasoning = non_empty(delta.reasoning_content).or_else(|| non_empty(delta.reasoning));
        out.extend(reasoning.map(StreamEvent::ReasoningDelta));
        out.extend(non_empty(delta.content).map(StreamEvent::TextDelta));
        out.extend(non_empty(delta.refusal).map(StreamEvent::RefusalDelta));
        for (position, call) in delta.tool_calls.into_iter().flatten().enumerate() {
            self.on_tool_call(position as u64, call, out)?;
        }
        Ok(())
    }

    fn on_tool_call(
        &mut self,
        position: u64,
        call: WireToolCall<'_>,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ProviderError> {
        let openai_index = call.index.unwrap_or(position);
        let (name, arguments) = match call.function {
            Some(function) => (function.name, function.arguments),
            None => (None, None),
        };
        let index = match self.calls.iter().rposition(|known| *known == openai_index) {
            Some(index) => index,
            None => self.start_call(openai_index, call.id, name, out)?,
        };
        if let Some(arguments) = non_empty(arguments) {
            // `index` is below MAX_TOOL_CALLS, so it fits.
            out.push(StreamEvent::ToolCallDelta { index: index as u32, arguments });
        }
        Ok(())
    }

    /// Numbers a new call and announces it; returns its internal index.
    fn start_call(
        &mut self,
        openai_index: u64,
        id: Option<Cow<'_, str>>,
        name: Option<Cow<'_, str>>,
        out: &mut Vec<StreamEvent>,
    ) -> Result<usize, ProviderError> {
        let index = self.calls.len();
        if index >= MAX_TOOL_CALLS {
            return Err(malformed(format!("more than {MAX_TOOL_CALLS} tool calls in one answer")));
        }
        self.calls.push(openai_index);
        let owned = |text: Option<Cow<'_, str>>| text.map(Cow::into_owned).unwrap_or_default();
        out.push(StreamEvent::ToolCallStart { index: index as u32, id: owned(id), name: owned(name) });
        Ok(index)
    }
}

/// An in-stream `error` member as a provider error; an unreadable one is still a server failure.
fn stream_error(raw: &RawValue) -> ProviderError {
    match error_detail(raw) {
        Some(detail) => detail.classify(None),
        None => ProviderError::new(ProviderErrorKind::Server, "OpenAI reported an error without details"),
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
        events.iter().flat_map(|data| format!("data: {data}\n\n").into_bytes()).collect()
    }

    const ROLE: &str = r#"{"id":"c1","model":"gpt","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#;

    #[test]
    fn reasoning_text_refusal_and_tool_calls_in_delta_order() {
        let input = sse(&[
            ROLE,
            r#"{"choices":[{"index":0,"delta":{"reasoning_content":"think","content":"a","refusal":"no"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning":"more"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":3,"id":"t","type":"function","function":{"name":"f","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":3,"function":{"arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"u","function":{"name":"g","arguments":"{\"x\":1}"}}]}}]}"#,
            r#"{"choices":[{"index":1,"delta":{"content":"other choice"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":3}}}"#,
            "[DONE]",
        ]);
        let usage = Usage {
            prompt_tokens: 9,
            completion_tokens: 4,
            cache_read_tokens: 2,
            cache_write_tokens: 0,
            reasoning_tokens: 3,
        };
        assert_eq!(
            translate(&input),
            vec![
                StreamEvent::Start { id: "c1".into(), model: "gpt".into() },
                StreamEvent::ReasoningDelta("think".into()),
                StreamEvent::TextDelta("a".into()),
                StreamEvent::RefusalDelta("no".into()),
                StreamEvent::ReasoningDelta("more".into()),
                StreamEvent::ToolCallStart { index: 0, id: "t".into(), name: "f".into() },
                StreamEvent::ToolCallDelta { index: 0, arguments: "{}".into() },
                StreamEvent::ToolCallStart { index: 1, id: "u".into(), name: "g".into() },
                StreamEvent::ToolCallDelta { index: 1, arguments: "{\"x\":1}".into() },
                StreamEvent::Usage(usage),
                StreamEvent::Finish(FinishReason::ToolCalls),
            ]
        );
    }

    #[test]
    fn done_without_a_finish_reason_is_a_stop() {
        let events = translate(&sse(&[ROLE, "[DONE]"]));
        assert_eq!(events[1..], [StreamEvent::Finish(FinishReason::Stop)]);
    }

    #[test]
    fn in_stream_errors_are_classified() {
        let cases = [
            (
                r#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#,
                ProviderErrorKind::RateLimited,
            ),
            (r#"{"error":{"message":"boom","type":"server_error","code":null}}"#, ProviderErrorKind::Server),
            (r#"{"error":{"message":"too long","type":"invalid_request_error"}}"#, ProviderErrorKind::InvalidRequest),
            (r#"{"error":"plain"}"#, ProviderErrorKind::Server),
            (r#"{"error":7}"#, ProviderErrorKind::Server),
        ];
        for (data, kind) in cases {
            let first = translate(&sse(&[data, "[DONE]"]));
            assert!(matches!(&first[..], [StreamEvent::Error(e)] if e.kind == kind), "{data}: {first:?}");
            let later = translate(&sse(&[ROLE, data, "[DONE]"]));
            assert!(
                matches!(&later[..], [StreamEvent::Start { .. }, StreamEvent::Error(e)] if e.kind == kind),
                "{data}"
            );
        }
    }

    #[test]
    fn broken_streams_end_with_a_malformed_error() {
        let cases: [&[u8]; 5] = [b"", b"data: [DONE]\n\n", b"data: {nope}\n\n", b"data: []\n\n", &sse(&[ROLE])];
        for input in cases {
            let events = translate(input);
            let Some(StreamEvent::Error(error)) = events.last() else { panic!("{events:?}") };
            assert_eq!(error.kind, ProviderErrorKind::Malformed, "{:?}", String::from_utf8_lossy(input));
        }
        let mut translator = StreamTranslator::with_max_event_bytes(16);
        let mut out = Vec::new();
        translator.feed(&sse(&[ROLE]), &mut out);
        assert!(matches!(&out[..], [StreamEvent::Error(e)] if e.kind == ProviderErrorKind::Malformed));
        assert!(translator.is_done());
    }

    #[test]
    fn too_many_tool_calls_fail_the_stream() {
        let calls: Vec<String> =
            (0..=MAX_TOOL_CALLS).map(|i| format!(r#"{{"index":{i},"id":"c","function":{{"name":"f"}}}}"#)).collect();
        let chunk = format!(r#"{{"choices":[{{"index":0,"delta":{{"tool_calls":[{}]}}}}]}}"#, calls.join(","));
        let events = translate(&sse(&[ROLE, &chunk, "[DONE]"]));
        assert_eq!(events.iter().filter(|e| matches!(e, StreamEvent::ToolCallStart { .. })).count(), MAX_TOOL_CALLS);
        assert!(matches!(events.last(), Some(StreamEvent::Error(e)) if e.kind == ProviderErrorKind::Malformed));
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let fragments: [&[u8]; 10] = [
            b"data: ",
            ROLE.as_bytes(),
            br#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":18446744073709551615,"function":{}}]}}]}"#,
            br#"{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"length"}],"usage":{"prompt_tokens":18446744073709551615}}"#,
            br#"{"error":{"code":{"a":1}}}"#,
            b"[DONE]",
            b"\n\n",
            b"\r",
            b"\xff\xfe",
            b"{\"choices\":null,\"usage\":null}",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
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
