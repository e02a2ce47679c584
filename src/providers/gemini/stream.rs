//! Gemini `streamGenerateContent?alt=sse` -> internal stream events, incrementally.
//! [`StreamTranslator`] takes the SSE body in arbitrary pieces; [`ChunkMapper`] is the state machine
//! behind it and takes one chunk's JSON, for transports that frame chunks themselves. It encodes
//! nothing for clients, and what parts mean is `wire.rs`'s business.
//!
//! Gemini's stream has no start or stop events: every chunk is a whole `GenerateContentResponse`
//! (`data: {json}` with CRLF line ends, no `event:` names, no `[DONE]`), the last one carries
//! `finishReason`, and the body just ends. So:
//! - `Start` goes out with the first chunk (`responseId`, `modelVersion`).
//! - Function calls are numbered 0, 1, ... across the answer. A whole call (`args`) is a
//!   `ToolCallStart` and one `ToolCallDelta` with all its arguments. A call whose arguments stream
//!   (`partialArgs`, Gemini 3) is a `ToolCallStart` when its named part opens it, then a
//!   `ToolCallDelta` for each part that adds text (`partial_args.rs` writes it), the last one when a
//!   part without `willContinue` closes it; all its deltas together are the arguments' JSON. A call
//!   left open is closed by the next call's start and by the end of the answer, so its JSON is
//!   whole; text parts in between are forwarded and leave it open. A piece that cannot be placed
//!   (out of order, or with no call open) ends the stream with a `Malformed` error: the text before
//!   it is out, and a call with other arguments than the model's must not reach a client that runs
//!   it.
//! - `usageMetadata` is cumulative and repeated on (almost) every chunk: each new value replaces the
//!   last and goes out as a `Usage` event when it changed, so usage is live mid-stream and never
//!   summed.
//! - A `finishReason` (or a prompt blocked by `promptFeedback.blockReason`) is remembered, and
//!   `Finish` goes out when the body ends, after any later usage; content after it is still
//!   forwarded (Gemini sends none, and dropping it would lose text). Function calls turn `STOP` into
//!   `tool_calls`. A `Usage` event always precedes `Finish`, so clients that asked for usage get it.
//! - An `{"error": {...}}` chunk ends the stream with `Error`, classified like an HTTP error body
//!   (`UNAVAILABLE` and `RESOURCE_EXHAUSTED` are retryable). Malformed JSON, an oversized event, or
//!   the body ending before any chunk or before a `finishReason` end it with a `Malformed` error.

use super::partial_args::ArgsAssembler;
use super::wire::{CallFragment, Piece, StreamPiece, WireCandidate, WireResponse};
use super::{final_reason, finish_reason};
use crate::chat::{FinishReason, ProviderError, ProviderErrorKind, SseEventMapper, SseTranslator, StreamEvent, Usage};

/// SSE bytes -> internal events: the shared SSE translator driving [`ChunkMapper`].
pub type StreamTranslator = SseTranslator<ChunkMapper>;

impl SseEventMapper for ChunkMapper {
    const PROVIDER: &'static str = "Gemini";

    fn on_data(&mut self, data: &[u8], out: &mut Vec<StreamEvent>) {
        self.on_chunk(data, out);
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

/// Where the stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// No chunk yet; the first one starts the answer.
    #[default]
    AwaitingStart,
    /// Chunks are coming and none has said why the answer ended.
    Streaming,
    /// A chunk gave the finish reason (before the tool-call rule); the end of the body closes the
    /// stream.
    Finishing(FinishReason),
    /// A terminal event went out; everything else is ignored.
    Done,
}

/// The stream state machine over decoded chunk JSON.
#[derive(Debug, Clone, Default)]
pub struct ChunkMapper {
    state: State,
    /// Function calls seen so far: the next call's index.
    tool_calls: u32,
    /// The call whose arguments are streaming, between the part that opens it and the one that
    /// closes it.
    streamed: Option<StreamedCall>,
    /// The latest `usageMetadata`, mapped.
    usage: Usage,
    /// The usage of the last `Usage` event, if any went out.
    usage_sent: Option<Usage>,
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

    /// Maps one chunk's JSON (the SSE `data`).
    pub fn on_chunk(&mut self, json: &[u8], out: &mut Vec<StreamEvent>) {
        if self.is_done() {
            return;
        }
        let mapped = match serde_json::from_slice::<WireResponse<'_>>(json) {
            Ok(chunk) => self.dispatch(chunk, out),
            Err(e) => Err(malformed(format!("malformed Gemini chunk: {e}"))),
        };
        if let Err(error) = mapped {
            self.fail(error, out);
        }
    }

    /// The transport ended: the answer is complete if a finish reason came, cut short otherwise.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        match self.state {
            State::Finishing(reason) => self.close(reason, out),
            State::AwaitingStart => self.fail(malformed("the Gemini stream ended before any chunk"), out),
            State::Streaming => self.fail(malformed("the Gemini stream ended before a finishReason"), out),
            State::Done => {}
        }
    }

    /// Ends the stream with `error` unless it already ended.
    pub fn fail(&mut self, error: ProviderError, out: &mut Vec<StreamEvent>) {
        if !self.is_done() {
            self.state = State::Done;
            out.push(StreamEvent::Error(error));
        }
    }

    /// One chunk; an `Err` ends the stream.
    fn dispatch(&mut self, mut chunk: WireResponse<'_>, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if let Some(error) = &chunk.error {
            return Err(error.classify(ProviderErrorKind::Server));
        }
        if self.state == State::AwaitingStart {
            out.push(StreamEvent::Start { id: chunk.id(), model: chunk.model() });
            self.state = State::Streaming;
        }
        match chunk.take_candidate() {
            Some(candidate) => self.on_candidate(candidate, out)?,
            None if chunk.prompt_blocked() => self.finish_with(FinishReason::ContentFilter),
            // A chunk with usage only.
            None => {}
        }
        if let Some(wire) = &chunk.usage_metadata {
            self.usage = wire.usage();
            self.send_usage_if_changed(out);
        }
        Ok(())
    }

    fn on_candidate(&mut self, candidate: WireCandidate<'_>, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        for part in candidate.content.into_iter().flat_map(|content| content.parts) {
            match part.into_stream_piece(self.tool_calls) {
                Some(StreamPiece::Whole(piece)) => self.on_piece(piece, out),
                Some(StreamPiece::Fragment(fragment)) => self.on_fragment(fragment, out)?,
                None => {}
            }
        }
        if let Some(reason) = candidate.finish_reason.as_deref() {
            self.finish_with(finish_reason(reason));
        }
        Ok(())
    }

    fn on_piece(&mut self, piece: Piece<'_>, out: &mut Vec<StreamEvent>) {
        match piece {
            Piece::Text(text) => out.push(StreamEvent::TextDelta(text.into_owned())),
            Piece::Thought(text) => out.push(StreamEvent::ReasoningDelta(text.into_owned())),
            Piece::Call { id, name, arguments } => {
                // Calls follow one another: one still streaming ends where the next begins.
                self.close_streamed_call(out);
                let index = self.start_call(id, name, out);
                out.push(StreamEvent::ToolCallDelta { index, arguments });
            }
        }
    }

    /// One part of a call whose arguments stream: it may open the call, add pieces, close it.
    fn on_fragment(&mut self, fragment: CallFragment<'_>, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if let Some((id, name)) = fragment.start {
            self.close_streamed_call(out);
            let index = self.start_call(id, name, out);
            self.streamed = Some(StreamedCall { index, args: ArgsAssembler::new() });
        }
        let Some(call) = self.streamed.as_mut() else {
            // A closing or empty part with no call open carries nothing; pieces would have no call.
            if fragment.args.is_empty() {
                return Ok(());
            }
            return Err(malformed("Gemini streamed function-call arguments with no call open"));
        };
        for piece in fragment.args.iter().filter_map(|arg| arg.piece()) {
            call.args.push(&piece).map_err(|e| malformed(format!("Gemini streamed a function-call argument {e}")))?;
        }
        if fragment.more {
            call.send_text(out);
        } else {
            self.close_streamed_call(out);
        }
        Ok(())
    }

    /// Sends a call's `ToolCallStart` and returns its index.
    fn start_call(&mut self, id: String, name: String, out: &mut Vec<StreamEvent>) -> u32 {
        let index = self.tool_calls;
        self.tool_calls = self.tool_calls.saturating_add(1);
        out.push(StreamEvent::ToolCallStart { index, id, name });
        index
    }

    /// Ends the call whose arguments are streaming, if one is, with the text that closes its JSON.
    fn close_streamed_call(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(call) = self.streamed.take() {
            let index = call.index;
            push_delta(index, call.args.finish(), out);
        }
    }

    /// Remembers why the answer ended; the first reason given stands.
    fn finish_with(&mut self, reason: FinishReason) {
        if self.state == State::Streaming {
            self.state = State::Finishing(reason);
        }
    }

    fn send_usage_if_changed(&mut self, out: &mut Vec<StreamEvent>) {
        if self.usage_sent != Some(self.usage) {
            self.usage_sent = Some(self.usage);
            out.push(StreamEvent::Usage(self.usage));
        }
    }

    fn close(&mut self, reason: FinishReason, out: &mut Vec<StreamEvent>) {
        // A call still open at the end (cut off by MAX_TOKENS, say) still gets whole JSON.
        self.close_streamed_call(out);
        if self.usage_sent.is_none() {
            // No chunk carried usage: clients that asked for it still get a usage chunk.
            self.send_usage_if_changed(out);
        }
        self.state = State::Done;
        out.push(StreamEvent::Finish(final_reason(reason, self.tool_calls > 0)));
    }
}

/// A call whose arguments are streaming.
#[derive(Debug, Clone)]
struct StreamedCall {
    index: u32,
    args: ArgsAssembler,
}

impl StreamedCall {
    /// Sends the text the last part added, if any.
    fn send_text(&mut self, out: &mut Vec<StreamEvent>) {
        push_delta(self.index, self.args.take_text(), out);
    }
}

/// A `ToolCallDelta`, unless `arguments` is empty (deltas never are).
fn push_delta(index: u32, arguments: String, out: &mut Vec<StreamEvent>) {
    if !arguments.is_empty() {
        out.push(StreamEvent::ToolCallDelta { index, arguments });
    }
}

fn malformed(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Malformed, message)
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

    fn sse(chunks: &[&str]) -> Vec<u8> {
        chunks.iter().flat_map(|json| format!("data: {json}\r\n\r\n").into_bytes()).collect()
    }

    fn usage(prompt: u64, completion: u64, reasoning: u64) -> Usage {
        Usage { prompt_tokens: prompt, completion_tokens: completion, reasoning_tokens: reasoning, ..Usage::default() }
    }

    const FIRST: &str = r#"{"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":1,"thoughtsTokenCount":3},"modelVersion":"gemini-x","responseId":"r1"}"#;

    #[test]
    fn usage_is_replaced_never_summed_and_sent_when_it_changes() {
        let input = sse(&[
            FIRST,
            r#"{"candidates":[{"content":{"parts":[{"text":" there"}]}}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":1,"thoughtsTokenCount":3}}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"!"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":4,"thoughtsTokenCount":3}}"#,
        ]);
        assert_eq!(
            translate(&input),
            vec![
                StreamEvent::Start { id: "r1".into(), model: "gemini-x".into() },
                StreamEvent::TextDelta("Hi".into()),
                StreamEvent::Usage(usage(5, 4, 3)),
                StreamEvent::TextDelta(" there".into()),
                StreamEvent::TextDelta("!".into()),
                StreamEvent::Usage(usage(9, 7, 3)),
                StreamEvent::Finish(FinishReason::Stop),
            ]
        );
    }

    #[test]
    fn function_calls_are_numbered_and_make_stop_tool_calls() {
        let input = sse(&[
            r#"{"candidates":[{"content":{"parts":[{"text":"plan","thought":true},{"functionCall":{"name":"a","args":{"x": 1}}},{"functionCall":{"name":"b"}}]}}],"responseId":"r"}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":""}]},"finishReason":"STOP"}]}"#,
        ]);
        assert_eq!(
            translate(&input),
            vec![
                StreamEvent::Start { id: "r".into(), model: String::new() },
                StreamEvent::ReasoningDelta("plan".into()),
                StreamEvent::ToolCallStart { index: 0, id: "call_0".into(), name: "a".into() },
                StreamEvent::ToolCallDelta { index: 0, arguments: r#"{"x":1}"#.into() },
                StreamEvent::ToolCallStart { index: 1, id: "call_1".into(), name: "b".into() },
                StreamEvent::ToolCallDelta { index: 1, arguments: "{}".into() },
                StreamEvent::Usage(Usage::default()),
                StreamEvent::Finish(FinishReason::ToolCalls),
            ]
        );
    }

    #[test]
    fn finish_reasons_wait_for_the_end_of_the_body() {
        let mut translator = StreamTranslator::new();
        let mut out = Vec::new();
        translator.feed(&sse(&[r#"{"candidates":[{"finishReason":"MAX_TOKENS"}]}"#]), &mut out);
        assert!(!translator.is_done());
        // Late usage still counts.
        translator.feed(&sse(&[r#"{"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":8}}"#]), &mut out);
        translator.finish(&mut out);
        assert_eq!(out[1..], [StreamEvent::Usage(usage(2, 8, 0)), StreamEvent::Finish(FinishReason::Length)]);
        for (reason, expected) in [("SAFETY", FinishReason::ContentFilter), ("RECITATION", FinishReason::ContentFilter)]
        {
            let chunk = format!(r#"{{"candidates":[{{"finishReason":"{reason}"}}]}}"#);
            assert_eq!(translate(&sse(&[&chunk])).last(), Some(&StreamEvent::Finish(expected)), "{reason}");
        }
    }

    #[test]
    fn a_blocked_prompt_is_a_content_filter_finish() {
        let input = sse(&[
            r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":7},"responseId":"r"}"#,
        ]);
        assert_eq!(
            translate(&input),
            vec![
                StreamEvent::Start { id: "r".into(), model: String::new() },
                StreamEvent::Usage(usage(7, 0, 0)),
                StreamEvent::Finish(FinishReason::ContentFilter),
            ]
        );
    }

    #[test]
    fn error_chunks_are_classified_and_end_the_stream() {
        let input = sse(&[
            FIRST,
            r#"{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}"#,
            r#"{"candidates":[{"finishReason":"STOP"}]}"#,
        ]);
        let events = translate(&input);
        let error =
            ProviderError::new(ProviderErrorKind::Overloaded, "The model is overloaded. Please try again later.");
        assert_eq!(events[3..], [StreamEvent::Error(error)]);
        assert!(matches!(&events[3], StreamEvent::Error(e) if e.retryable()));
    }

    #[test]
    fn broken_streams_end_with_a_malformed_error() {
        let cases: [&[u8]; 4] =
            [b"", b"data: {not json}\r\n\r\n", b"data: [DONE]\n\n", FIRST.as_bytes() /* no `data:` field */];
        for input in cases {
            let events = translate(input);
            let Some(StreamEvent::Error(error)) = events.last() else { panic!("{events:?}") };
            assert_eq!(error.kind, ProviderErrorKind::Malformed, "{:?}", String::from_utf8_lossy(input));
            assert!(error.retryable());
        }
        // Cut off before the finish reason, after content.
        let events = translate(&sse(&[FIRST]));
        assert!(matches!(events.last(), Some(StreamEvent::Error(e)) if e.message.contains("finishReason")));
    }

    #[test]
    fn oversized_events_fail_the_stream() {
        let mut translator = StreamTranslator::with_max_event_bytes(64);
        let mut out = Vec::new();
        translator.feed(&sse(&[FIRST]), &mut out);
        translator.finish(&mut out);
        assert!(matches!(&out[..], [StreamEvent::Error(e)] if e.kind == ProviderErrorKind::Malformed));
        assert!(translator.is_done());
    }

    #[test]
    fn other_candidates_are_ignored() {
        let input = sse(&[
            r#"{"candidates":[{"content":{"parts":[{"text":"two"}]},"index":1},{"content":{"parts":[{"text":"one"}]},"index":0,"finishReason":"STOP"}]}"#,
        ]);
        let texts: Vec<_> = translate(&input).into_iter().filter(|e| matches!(e, StreamEvent::TextDelta(_))).collect();
        assert_eq!(texts, [StreamEvent::TextDelta("one".into())]);
    }

    /// A chunk with the parts `parts` (JSON, comma-separated), and `finish` as its finishReason.
    fn parts(parts: &str, finish: Option<&str>) -> String {
        let finish = finish.map(|reason| format!(r#","finishReason":"{reason}""#)).unwrap_or_default();
        format!(r#"{{"candidates":[{{"content":{{"role":"model","parts":[{parts}]}}{finish}}}],"responseId":"r"}}"#)
    }

    fn open(name: &str) -> String {
        format!(r#"{{"functionCall":{{"name":"{name}","willContinue":true}},"thoughtSignature":"c2ln"}}"#)
    }

    fn arg(path: &str, value: &str, more: bool) -> String {
        let more = if more { r#","willContinue":true"# } else { "" };
        format!(r#"{{"functionCall":{{"partialArgs":[{{"jsonPath":"{path}",{value}{more}}}],"willContinue":true}}}}"#)
    }

    const CLOSE: &str = r#"{"functionCall":{}}"#;
    const EMPTY: &str = r#"{"functionCall":{"willContinue":true}}"#;

    /// Each call's name and the concatenation of its deltas, by index, checking the event contract
    /// on the way: a start before any delta, and no empty delta.
    fn calls(events: &[StreamEvent]) -> Vec<(String, String)> {
        let mut calls: Vec<(String, String)> = Vec::new();
        for event in events {
            match event {
                StreamEvent::ToolCallStart { index, name, .. } => {
                    assert_eq!(*index as usize, calls.len(), "{events:?}");
                    calls.push((name.clone(), String::new()));
                }
                StreamEvent::ToolCallDelta { index, arguments } => {
                    assert!(!arguments.is_empty(), "{events:?}");
                    calls[*index as usize].1.push_str(arguments);
                }
                _ => {}
            }
        }
        calls
    }

    fn arguments(calls: &[(String, String)], index: usize) -> serde_json::Value {
        serde_json::from_str(&calls[index].1).unwrap_or_else(|e| panic!("{}: {e}", calls[index].1))
    }

    #[test]
    fn a_streamed_call_sends_its_arguments_as_they_come() {
        let input = sse(&[
            &parts(&open("getWeather"), None),
            &parts(&arg("$.location", r#""stringValue":"Bos""#, true), None),
            &parts(&arg("$.location", r#""stringValue":"ton""#, true), None),
            &parts(EMPTY, None),
            &parts(&arg("$.location", r#""stringValue":"""#, false), None),
            &parts(CLOSE, Some("STOP")),
        ]);
        assert_eq!(
            translate(&input),
            vec![
                StreamEvent::Start { id: "r".into(), model: String::new() },
                StreamEvent::ToolCallStart { index: 0, id: "call_0".into(), name: "getWeather".into() },
                StreamEvent::ToolCallDelta { index: 0, arguments: r#"{"location":"Bos"#.into() },
                StreamEvent::ToolCallDelta { index: 0, arguments: "ton".into() },
                StreamEvent::ToolCallDelta { index: 0, arguments: "\"".into() },
                StreamEvent::ToolCallDelta { index: 0, arguments: "}".into() },
                StreamEvent::Usage(Usage::default()),
                StreamEvent::Finish(FinishReason::ToolCalls),
            ]
        );
    }

    #[test]
    fn streamed_calls_are_numbered_with_whole_ones_and_keep_gemini_ids() {
        let input = sse(&[
            &parts(&open("a"), None),
            &parts(&arg("$.x", r#""stringValue":"1""#, false), None),
            &parts(CLOSE, None),
            &parts(r#"{"functionCall":{"id":"fc_9","name":"b","willContinue":true}}"#, None),
            &parts(CLOSE, None),
            &parts(r#"{"functionCall":{"name":"c","args":{"k": [1]}}}"#, None),
            // A name with pieces and no willContinue: a call opened and closed by one part.
            &parts(
                r#"{"functionCall":{"name":"d","partialArgs":[{"jsonPath":"$.y","boolValue":true}]}}"#,
                Some("STOP"),
            ),
        ]);
        let events = translate(&input);
        let starts: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCallStart { index, id, .. } => Some((*index, id.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(starts, [(0, "call_0"), (1, "fc_9"), (2, "call_2"), (3, "call_3")]);
        let calls = calls(&events);
        let texts: Vec<(&str, &str)> = calls.iter().map(|(n, a)| (n.as_str(), a.as_str())).collect();
        assert_eq!(texts, [("a", r#"{"x":"1"}"#), ("b", "{}"), ("c", r#"{"k":[1]}"#), ("d", r#"{"y":true}"#)]);
        assert_eq!(events.last(), Some(&StreamEvent::Finish(FinishReason::ToolCalls)));
    }

    #[test]
    fn numbers_booleans_and_nulls_stream_as_json_values() {
        let pieces = r#"{"functionCall":{"partialArgs":[
            {"jsonPath":"$.n[0]","numberValue":2.5},{"jsonPath":"$.n[1]","numberValue":-7},
            {"jsonPath":"$.n[2]","numberValue":"NaN"},{"jsonPath":"$.ok","boolValue":false},
            {"jsonPath":"$.none","nullValue":"NULL_VALUE"},{"jsonPath":"$.nothing"},
            {"jsonPath":"$.s","stringValue":"\"q\" \\ °"}],"willContinue":true}}"#;
        // One line, as an SSE `data` field carries it.
        let pieces: String = pieces.lines().map(str::trim).collect();
        let input = sse(&[&parts(&format!("{},{pieces},{CLOSE}", open("f")), Some("STOP"))]);
        let calls = calls(&translate(&input));
        assert_eq!(calls[0].1, r#"{"n":[2.5,-7,null],"ok":false,"none":null,"s":"\"q\" \\ °"}"#);
        assert_eq!(arguments(&calls, 0)["s"], "\"q\" \\ °");
    }

    #[test]
    fn text_between_pieces_is_forwarded_and_the_call_goes_on() {
        let input = sse(&[
            &parts(&format!(r#"{},{}"#, open("f"), arg("$.a", r#""stringValue":"x""#, true)), None),
            &parts(r#"{"text":"thinking aloud"}"#, None),
            &parts(&format!(r#"{},{CLOSE}"#, arg("$.a", r#""stringValue":"y""#, false)), Some("STOP")),
        ]);
        let events = translate(&input);
        assert_eq!(
            events[1..6],
            [
                StreamEvent::ToolCallStart { index: 0, id: "call_0".into(), name: "f".into() },
                StreamEvent::ToolCallDelta { index: 0, arguments: r#"{"a":"x"#.into() },
                StreamEvent::TextDelta("thinking aloud".into()),
                StreamEvent::ToolCallDelta { index: 0, arguments: "y\"".into() },
                StreamEvent::ToolCallDelta { index: 0, arguments: "}".into() },
            ]
        );
    }

    #[test]
    fn a_call_left_open_is_closed_by_the_next_call_and_by_the_end() {
        let input = sse(&[
            &parts(&open("a"), None),
            &parts(&arg("$.p[0].q", r#""stringValue":"cut""#, true), None),
            &parts(&open("b"), None),
            &parts(&arg("$.r", r#""numberValue":1"#, false), Some("MAX_TOKENS")),
        ]);
        let events = translate(&input);
        let calls = calls(&events);
        assert_eq!(arguments(&calls, 0), serde_json::json!({"p": [{"q": "cut"}]}));
        assert_eq!(arguments(&calls, 1), serde_json::json!({"r": 1}));
        assert_eq!(events[events.len() - 3..][0], StreamEvent::ToolCallDelta { index: 1, arguments: "}".into() });
        assert_eq!(events.last(), Some(&StreamEvent::Finish(FinishReason::Length)));
    }

    #[test]
    fn pieces_that_cannot_be_placed_end_the_stream_with_an_error() {
        let out_of_order = [
            parts(&open("f"), None),
            parts(&arg("$.a[0]", r#""stringValue":"x""#, false), None),
            parts(&arg("$.a[2]", r#""stringValue":"y""#, false), None),
            parts(CLOSE, Some("STOP")),
        ];
        let stray = [parts(&arg("$.a", r#""stringValue":"x""#, false), Some("STOP"))];
        let bad_path = [parts(&open("f"), None), parts(&arg("$[0]", r#""boolValue":true"#, false), Some("STOP"))];
        for (input, message) in [
            (&out_of_order[..], "`$.a[2]` comes out of order"),
            (&stray[..], "no call open"),
            (&bad_path[..], "`$[0]` is not a JSONPath"),
        ] {
            let chunks: Vec<&str> = input.iter().map(String::as_str).collect();
            let events = translate(&sse(&chunks));
            let Some(StreamEvent::Error(error)) = events.last() else { panic!("{events:?}") };
            assert_eq!(error.kind, ProviderErrorKind::Malformed, "{message}");
            assert!(error.message.contains(message), "{}", error.message);
            assert_eq!(events.iter().filter(|e| e.is_terminal()).count(), 1);
        }
        // A closing or empty part with no call open carries nothing and is not an error.
        let events = translate(&sse(&[&parts(&format!("{CLOSE},{EMPTY}"), Some("STOP"))]));
        assert_eq!(events.last(), Some(&StreamEvent::Finish(FinishReason::Stop)));
    }

    #[test]
    fn streamed_calls_give_the_same_events_fed_one_byte_at_a_time() {
        let input = sse(&[
            &parts(&open("cook"), None),
            &parts(&arg("$.recipe.steps[0]", r#""stringValue":"375°F, \"hot\"""#, true), None),
            &parts(&arg("$.recipe.steps[0]", r#""stringValue":"""#, false), None),
            &parts(EMPTY, None),
            &parts(&arg("$.recipe.name", r#""stringValue":"L""#, false), None),
            &parts(CLOSE, Some("STOP")),
        ]);
        let whole = translate(&input);
        let mut translator = StreamTranslator::new();
        let mut bytewise = Vec::new();
        for byte in input.chunks(1) {
            translator.feed(byte, &mut bytewise);
        }
        translator.finish(&mut bytewise);
        assert_eq!(bytewise, whole);
        assert_eq!(
            arguments(&calls(&whole), 0),
            serde_json::json!({"recipe": {"steps": ["375°F, \"hot\""], "name": "L"}})
        );
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let fragments: [&[u8]; 14] = [
            b"data: ",
            FIRST.as_bytes(),
            br#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","willContinue":true}}]}}]}"#,
            br#"{"candidates":[{"content":{"parts":[{"functionCall":{"partialArgs":[{"jsonPath":"$.a[0]","stringValue":"x","willContinue":true}],"willContinue":true}}]}}]}"#,
            br#"{"candidates":[{"content":{"parts":[{"functionCall":{"partialArgs":[{"jsonPath":"$.a[1].b","numberValue":1}],"willContinue":true}}]}}]}"#,
            br#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":[1]}}]},"finishReason":"STOP"}]}"#,
            br#"{"candidates":[{"content":{"parts":[{"functionCall":{}}]},"index":4294967295}]}"#,
            br#"{"usageMetadata":{"promptTokenCount":18446744073709551615,"toolUsePromptTokenCount":9,"thoughtsTokenCount":18446744073709551615,"candidatesTokenCount":1}}"#,
            br#"{"error":{"code":70000,"status":7}}"#,
            br#"{"promptFeedback":{"blockReason":"OTHER"}}"#,
            b"\r\n\r\n",
            b"\r",
            b"\n",
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
