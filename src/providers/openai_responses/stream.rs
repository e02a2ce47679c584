//! OpenAI Responses stream -> internal stream events, incrementally. [`StreamTranslator`] takes the
//! SSE body (`event: <type>` / `data: <json>`, no `[DONE]`) in arbitrary pieces; [`EventMapper`] is
//! the state machine behind it and takes one event's JSON. It dispatches on the JSON `type`, never
//! on the SSE event name (they are equal on the wire, and recordings without framing have no name).
//! It does not encode anything for clients.
//!
//! Mapping choices:
//! - `response.created` gives `Start` (the response id and model); `response.in_progress` or
//!   `response.queued` stand in for it when it is missing. A content event before any of them ends
//!   the stream as malformed.
//! - `response.output_text.delta` is text, `response.refusal.delta` refusal, and both
//!   `response.reasoning_summary_text.delta` and `response.reasoning_text.delta` reasoning. A
//!   reasoning summary's second and later parts are preceded by a blank line (`"\n\n"`), since the
//!   internal stream has a single reasoning text and the parts are separate paragraphs.
//! - A reasoning item's `encrypted_content` goes out whole as `RedactedReasoning` when the item is
//!   done: OpenAI sends a provisional blob when the item is added and the final one at its end.
//! - `function_call` items are numbered 0, 1, ... in order of `response.output_item.added`
//!   (OpenAI's `output_index` counts messages and reasoning too); `ToolCallStart` carries the
//!   `call_id` (what a tool result must name), and argument deltas find their call by `item_id`, else
//!   by `output_index`. A call whose arguments came only with `output_item.done` gets them then.
//!   Argument deltas for an unknown call, or more than `MAX_TOOL_CALLS` calls, end the stream as
//!   malformed. Empty deltas are not forwarded.
//! - `response.completed` gives `Usage` and `Finish` (`tool_calls` when a call was made, else
//!   `stop`); `response.incomplete` gives `Usage` and `Finish` by its reason (`length`, or
//!   `content_filter`).
//! - An `error` event (code and message at the top level, or in an `error` member) and
//!   `response.failed` end the stream with one `Error`, classified by code (`insufficient_quota` is
//!   billing and not retried). OpenAI sends both for one failure; the first wins and the rest of the
//!   stream is ignored, as after any terminal event.
//! - Malformed JSON, an event without a `type`, an oversized event, or the body ending before a
//!   terminal event end the stream with a `Malformed` error.
//! - Ignored: the `*.done` echoes of streamed text, content-part and annotation events, built-in tool
//!   progress (web search, file search, ...), `sequence_number`, `obfuscation`, and event types
//!   added later.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{IncompleteDetails, WireItem, WireUsage, completed_finish, in_band_error, incomplete_finish};
use crate::chat::{ProviderError, ProviderErrorKind, SseEventMapper, SseTranslator, StreamEvent, Usage};
use crate::providers::anthropic::borrow_opt;

/// The most function calls one answer may make; beyond it the stream is treated as broken (it also
/// bounds the call lookup).
const MAX_TOOL_CALLS: usize = 1024;

/// SSE bytes -> internal events: the shared SSE translator driving [`EventMapper`].
pub type StreamTranslator = SseTranslator<EventMapper>;

impl SseEventMapper for EventMapper {
    const PROVIDER: &'static str = "OpenAI Responses";

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

fn malformed(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Malformed, message)
}

/// Where the stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// No `response.created` yet.
    #[default]
    AwaitingStart,
    /// `Start` went out; output events come until the response completes or fails.
    Streaming,
    /// A terminal event went out; everything else is ignored.
    Done,
}

/// A function call announced to the client.
#[derive(Debug, Clone)]
struct Call {
    /// OpenAI's item id (`fc_...`), which argument deltas name.
    item_id: String,
    /// Its position in the response's output.
    output_index: Option<u64>,
    /// Some argument text went out for it.
    has_arguments: bool,
}

/// The stream state machine over decoded event JSON.
#[derive(Debug, Clone, Default)]
pub struct EventMapper {
    state: State,
    /// Function calls in order of announcement: position = internal index.
    calls: Vec<Call>,
    usage: Usage,
}

/// An event's head: its type and the members any type uses, the rest left raw until the type says
/// what shape it has (a `delta` is text in the events read here, but not in every event type).
#[derive(Deserialize)]
struct WireEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    response: Option<&'a RawValue>,
    #[serde(borrow, default)]
    item: Option<&'a RawValue>,
    #[serde(default)]
    output_index: Option<u64>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    item_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    delta: Option<&'a RawValue>,
    #[serde(default)]
    summary_index: Option<u64>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// The members of a `response` object the stream needs (the output is read from the events).
#[derive(Deserialize)]
struct WireResponse<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    model: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
    #[serde(borrow, default)]
    incomplete_details: Option<IncompleteDetails<'a>>,
}

/// A JSON string, borrowed when it has no escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// Parses the member `name` the event type requires.
fn member<'a, T: Deserialize<'a>>(raw: Option<&'a RawValue>, name: &str) -> Result<T, ProviderError> {
    let raw = raw.ok_or_else(|| malformed(format!("an event without its `{name}`")))?;
    serde_json::from_str(raw.get()).map_err(|e| malformed(format!("malformed `{name}`: {e}")))
}

/// The event's `delta` text, when non-empty.
fn delta_text<'a>(event: &WireEvent<'a>) -> Result<Option<String>, ProviderError> {
    let Text(text) = member(event.delta, "delta")?;
    Ok((!text.is_empty()).then(|| text.into_owned()))
}

fn owned(text: Option<Cow<'_, str>>) -> String {
    text.map(Cow::into_owned).unwrap_or_default()
}

impl EventMapper {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The usage reported so far (the total once the response completed).
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// Maps one event's JSON.
    pub fn on_event(&mut self, data: &[u8], out: &mut Vec<StreamEvent>) {
        if self.is_done() {
            return;
        }
        // serde would read a struct from an array too; an event is an object.
        let mapped = match serde_json::from_slice::<WireEvent<'_>>(data) {
            Ok(event) if data.trim_ascii_start().starts_with(b"{") => self.dispatch(event, data, out),
            Ok(_) => Err(malformed("an event that is not a JSON object")),
            Err(e) => Err(malformed(format!("malformed event: {e}"))),
        };
        if let Err(error) = mapped {
            self.fail(error, out);
        }
    }

    /// The transport ended: a stream without a terminal event was cut short.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.is_done() {
            self.fail(malformed("the stream ended before the response completed"), out);
        }
    }

    /// Ends the stream with `error` unless it already ended.
    pub fn fail(&mut self, error: ProviderError, out: &mut Vec<StreamEvent>) {
        if !self.is_done() {
            self.state = State::Done;
            out.push(StreamEvent::Error(error));
        }
    }

    /// One event by type; an `Err` ends the stream.
    fn dispatch(&mut self, event: WireEvent<'_>, data: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        match event.kind.as_ref() {
            "response.created" | "response.in_progress" | "response.queued" => self.on_start(&event, out),
            // The error object is the event itself, or (in some recordings) its `error` member.
            "error" => match event.error {
                Some(error) => Err(in_band_error(Some(error))),
                None => Err(in_band_error(Some(raw_event(data)?))),
            },
            "response.failed" => {
                let response: WireResponse<'_> = member(event.response, "response")?;
                Err(in_band_error(response.error))
            }
            kind => self.on_output(kind, &event, out),
        }
    }

    /// The events that need a started stream.
    fn on_output(
        &mut self,
        kind: &str,
        event: &WireEvent<'_>,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ProviderError> {
        let content = match kind {
            "response.output_text.delta" => Content::Text,
            "response.refusal.delta" => Content::Refusal,
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => Content::Reasoning,
            "response.reasoning_summary_part.added" => Content::SummaryPart,
            "response.output_item.added" => Content::ItemAdded,
            "response.output_item.done" => Content::ItemDone,
            "response.function_call_arguments.delta" => Content::Arguments,
            "response.completed" => Content::Completed,
            "response.incomplete" => Content::Incomplete,
            _ => return Ok(()),
        };
        if self.state == State::AwaitingStart {
            return Err(malformed(format!("`{kind}` before response.created")));
        }
        match content {
            Content::Text => out.extend(delta_text(event)?.map(StreamEvent::TextDelta)),
            Content::Refusal => out.extend(delta_text(event)?.map(StreamEvent::RefusalDelta)),
            Content::Reasoning => out.extend(delta_text(event)?.map(StreamEvent::ReasoningDelta)),
            Content::SummaryPart if event.summary_index.unwrap_or(0) > 0 => {
                out.push(StreamEvent::ReasoningDelta("\n\n".to_owned()));
            }
            Content::SummaryPart => {}
            Content::ItemAdded => self.on_item_added(event, out)?,
            Content::ItemDone => self.on_item_done(event, out)?,
            Content::Arguments => self.on_arguments(event, out)?,
            Content::Completed => self.on_end(event, false, out)?,
            Content::Incomplete => self.on_end(event, true, out)?,
        }
        Ok(())
    }

    fn on_start(&mut self, event: &WireEvent<'_>, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if self.state != State::AwaitingStart {
            return Ok(());
        }
        let response: WireResponse<'_> = member(event.response, "response")?;
        self.state = State::Streaming;
        out.push(StreamEvent::Start { id: owned(response.id), model: owned(response.model) });
        Ok(())
    }

    fn on_item_added(&mut self, event: &WireEvent<'_>, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        let item: WireItem<'_> = member(event.item, "item")?;
        if item.kind == "function_call" {
            let index = self.start_call(&item, event.output_index, out)?;
            self.arguments(index, item.arguments, out);
        }
        Ok(())
    }

    fn on_item_done(&mut self, event: &WireEvent<'_>, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        let item: WireItem<'_> = member(event.item, "item")?;
        match item.kind.as_ref() {
            "reasoning" => {
                let data = item.encrypted_content.filter(|data| !data.is_empty());
                out.extend(data.map(|data| StreamEvent::RedactedReasoning(data.into_owned())));
            }
            "function_call" => {
                let index = match self.find_call(item.id.as_deref(), event.output_index) {
                    Some(index) => index,
                    None => self.start_call(&item, event.output_index, out)?,
                };
                if !self.calls[index].has_arguments {
                    self.arguments(index, item.arguments, out);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_arguments(&mut self, event: &WireEvent<'_>, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        let index = self
            .find_call(event.item_id.as_deref(), event.output_index)
            .ok_or_else(|| malformed("function call arguments for a call that was never added"))?;
        let Text(text) = member(event.delta, "delta")?;
        self.arguments(index, Some(text), out);
        Ok(())
    }

    /// `Usage` and `Finish`; `incomplete` for `response.incomplete`.
    fn on_end(
        &mut self,
        event: &WireEvent<'_>,
        incomplete: bool,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ProviderError> {
        let response: WireResponse<'_> = member(event.response, "response")?;
        let reason = match incomplete {
            true => incomplete_finish(response.incomplete_details.as_ref()),
            false => completed_finish(!self.calls.is_empty()),
        };
        if let Some(usage) = response.usage {
            self.usage = usage.usage();
            out.push(StreamEvent::Usage(self.usage));
        }
        self.state = State::Done;
        out.push(StreamEvent::Finish(reason));
        Ok(())
    }

    /// The call an event names: by item id when it has one, else by output index.
    fn find_call(&self, item_id: Option<&str>, output_index: Option<u64>) -> Option<usize> {
        match item_id.filter(|id| !id.is_empty()) {
            Some(id) => self.calls.iter().rposition(|call| call.item_id == id),
            None => output_index.and_then(|at| self.calls.iter().rposition(|call| call.output_index == Some(at))),
        }
    }

    /// Numbers a new call and announces it; returns its internal index.
    fn start_call(
        &mut self,
        item: &WireItem<'_>,
        output_index: Option<u64>,
        out: &mut Vec<StreamEvent>,
    ) -> Result<usize, ProviderError> {
        let index = self.calls.len();
        if index >= MAX_TOOL_CALLS {
            return Err(malformed(format!("more than {MAX_TOOL_CALLS} function calls in one response")));
        }
        let item_id = item.id.as_deref().unwrap_or_default().to_owned();
        // `call_id` is what a tool result must name; the item id is only a fallback.
        let id = item.call_id.as_deref().map_or_else(|| item_id.clone(), str::to_owned);
        self.calls.push(Call { item_id, output_index, has_arguments: false });
        out.push(StreamEvent::ToolCallStart { index: index as u32, id, name: owned(item.name.clone()) });
        Ok(index)
    }

    /// Sends argument text for call `index` when there is any.
    fn arguments(&mut self, index: usize, text: Option<Cow<'_, str>>, out: &mut Vec<StreamEvent>) {
        if let Some(arguments) = text.filter(|t| !t.is_empty()) {
            self.calls[index].has_arguments = true;
            // `index` is below MAX_TOOL_CALLS, so it fits.
            out.push(StreamEvent::ToolCallDelta { index: index as u32, arguments: arguments.into_owned() });
        }
    }
}

/// The event types that need a started stream, after their type string is matched once.
#[derive(Clone, Copy)]
enum Content {
    Text,
    Refusal,
    Reasoning,
    SummaryPart,
    ItemAdded,
    ItemDone,
    Arguments,
    Completed,
    Incomplete,
}

/// The whole event data as raw JSON (an `error` event with its code and message at the top level).
fn raw_event(data: &[u8]) -> Result<&RawValue, ProviderError> {
    serde_json::from_slice(data).map_err(|e| malformed(format!("malformed error event: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::FinishReason;

    fn translate(input: &[u8]) -> Vec<StreamEvent> {
        let mut translator = StreamTranslator::new();
        let mut out = Vec::new();
        translator.feed(input, &mut out);
        translator.finish(&mut out);
        out
    }

    /// SSE with the event name taken from each JSON's `type`, as OpenAI frames it.
    fn sse(events: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for data in events {
            let kind = serde_json::from_str::<serde_json::Value>(data)
                .ok()
                .and_then(|v| v["type"].as_str().map(str::to_owned))
                .unwrap_or_default();
            out.extend_from_slice(format!("event: {kind}\ndata: {data}\n\n").as_bytes());
        }
        out
    }

    const CREATED: &str =
        r#"{"type":"response.created","response":{"id":"resp_1","model":"o3-pro","output":[],"usage":null}}"#;
    const IN_PROGRESS: &str = r#"{"type":"response.in_progress","response":{"id":"resp_1","model":"o3-pro"}}"#;
    const COMPLETED: &str = r#"{"type":"response.completed","response":{"id":"resp_1","status":"completed","output":[],
        "usage":{"input_tokens":9,"input_tokens_details":{"cached_tokens":2},"output_tokens":4,
        "output_tokens_details":{"reasoning_tokens":3},"total_tokens":13}}}"#;

    fn start() -> StreamEvent {
        StreamEvent::Start { id: "resp_1".into(), model: "o3-pro".into() }
    }

    fn usage() -> Usage {
        Usage {
            prompt_tokens: 9,
            completion_tokens: 4,
            cache_read_tokens: 2,
            cache_write_tokens: 0,
            reasoning_tokens: 3,
        }
    }

    fn completed() -> String {
        COMPLETED.replace('\n', "")
    }

    #[test]
    fn text_reasoning_refusal_and_calls() {
        let completed = completed();
        let input = sse(&[
            CREATED,
            IN_PROGRESS,
            r#"{"type":"response.output_item.added","output_index":0,"item":{"type":"reasoning","id":"rs_1","encrypted_content":"provisional","summary":[]}}"#,
            r#"{"type":"response.reasoning_summary_part.added","output_index":0,"summary_index":0,"part":{"type":"summary_text","text":""}}"#,
            r#"{"type":"response.reasoning_summary_text.delta","item_id":"rs_1","output_index":0,"summary_index":0,"delta":"**Plan**"}"#,
            r#"{"type":"response.reasoning_summary_part.added","output_index":0,"summary_index":1,"part":{"type":"summary_text","text":""}}"#,
            r#"{"type":"response.reasoning_summary_text.delta","item_id":"rs_1","output_index":0,"summary_index":1,"delta":"more"}"#,
            r#"{"type":"response.reasoning_text.delta","item_id":"rs_1","output_index":0,"delta":"raw"}"#,
            r#"{"type":"response.output_item.done","output_index":0,"item":{"type":"reasoning","id":"rs_1","encrypted_content":"final","summary":[]}}"#,
            r#"{"type":"response.output_item.added","output_index":1,"item":{"type":"message","id":"msg_1","role":"assistant","content":[]}}"#,
            r#"{"type":"response.output_text.delta","item_id":"msg_1","output_index":1,"content_index":0,"delta":"Hi \"you\""}"#,
            r#"{"type":"response.output_text.delta","item_id":"msg_1","output_index":1,"content_index":0,"delta":""}"#,
            r#"{"type":"response.refusal.delta","item_id":"msg_1","output_index":1,"content_index":1,"delta":"no"}"#,
            r#"{"type":"response.output_text.done","item_id":"msg_1","output_index":1,"content_index":0,"text":"Hi"}"#,
            r#"{"type":"response.output_item.added","output_index":2,"item":{"type":"function_call","id":"fc_a","call_id":"call_a","name":"f","arguments":""}}"#,
            r#"{"type":"response.output_item.added","output_index":3,"item":{"type":"function_call","id":"fc_b","call_id":"call_b","name":"g","arguments":""}}"#,
            r#"{"type":"response.function_call_arguments.delta","item_id":"fc_b","output_index":3,"delta":"{\"y\""}"#,
            r#"{"type":"response.function_call_arguments.delta","output_index":2,"delta":"{}"}"#,
            r#"{"type":"response.function_call_arguments.delta","item_id":"fc_b","output_index":3,"delta":":1}"}"#,
            r#"{"type":"response.output_item.done","output_index":3,"item":{"type":"function_call","id":"fc_b","call_id":"call_b","name":"g","arguments":"{\"y\":1}"}}"#,
            r#"{"type":"some.future.event","delta":{"x":1}}"#,
            &completed,
        ]);
        assert_eq!(
            translate(&input),
            vec![
                start(),
                StreamEvent::ReasoningDelta("**Plan**".into()),
                StreamEvent::ReasoningDelta("\n\n".into()),
                StreamEvent::ReasoningDelta("more".into()),
                StreamEvent::ReasoningDelta("raw".into()),
                StreamEvent::RedactedReasoning("final".into()),
                StreamEvent::TextDelta("Hi \"you\"".into()),
                StreamEvent::RefusalDelta("no".into()),
                StreamEvent::ToolCallStart { index: 0, id: "call_a".into(), name: "f".into() },
                StreamEvent::ToolCallStart { index: 1, id: "call_b".into(), name: "g".into() },
                StreamEvent::ToolCallDelta { index: 1, arguments: "{\"y\"".into() },
                StreamEvent::ToolCallDelta { index: 0, arguments: "{}".into() },
                StreamEvent::ToolCallDelta { index: 1, arguments: ":1}".into() },
                StreamEvent::Usage(usage()),
                StreamEvent::Finish(FinishReason::ToolCalls),
            ]
        );
    }

    #[test]
    fn arguments_that_come_only_with_the_finished_item() {
        let completed = completed();
        let input = sse(&[
            CREATED,
            r#"{"type":"response.output_item.added","output_index":0,"item":{"type":"function_call","id":"fc_a","call_id":"call_a","name":"f"}}"#,
            r#"{"type":"response.output_item.done","output_index":0,"item":{"type":"function_call","id":"fc_a","call_id":"call_a","name":"f","arguments":"{}"}}"#,
            r#"{"type":"response.output_item.done","output_index":1,"item":{"type":"function_call","id":"fc_b","name":"g","arguments":"{\"z\":0}"}}"#,
            &completed,
        ]);
        assert_eq!(
            translate(&input)[1..5],
            [
                StreamEvent::ToolCallStart { index: 0, id: "call_a".into(), name: "f".into() },
                StreamEvent::ToolCallDelta { index: 0, arguments: "{}".into() },
                StreamEvent::ToolCallStart { index: 1, id: "fc_b".into(), name: "g".into() },
                StreamEvent::ToolCallDelta { index: 1, arguments: "{\"z\":0}".into() },
            ]
        );
    }

    #[test]
    fn a_plain_answer_stops_and_incomplete_answers_say_why() {
        let events = translate(&sse(&[CREATED, &completed()]));
        assert_eq!(events, vec![start(), StreamEvent::Usage(usage()), StreamEvent::Finish(FinishReason::Stop)]);
        for (reason, finish) in
            [("max_output_tokens", FinishReason::Length), ("content_filter", FinishReason::ContentFilter)]
        {
            let incomplete = format!(
                r#"{{"type":"response.incomplete","response":{{"status":"incomplete","incomplete_details":{{"reason":"{reason}"}},"usage":{{"input_tokens":1,"output_tokens":16}}}}}}"#
            );
            let events = translate(&sse(&[CREATED, &incomplete]));
            let usage = Usage { prompt_tokens: 1, completion_tokens: 16, ..Usage::default() };
            assert_eq!(events[1..], [StreamEvent::Usage(usage), StreamEvent::Finish(finish)], "{reason}");
        }
        // No usage reported: no Usage event, but still a finish.
        let bare = r#"{"type":"response.completed","response":{"usage":null}}"#;
        assert_eq!(translate(&sse(&[CREATED, bare]))[1..], [StreamEvent::Finish(FinishReason::Stop)]);
    }

    #[test]
    fn one_error_for_an_error_event_followed_by_response_failed() {
        let error = r#"{"type":"error","sequence_number":2,"error":{"type":"insufficient_quota","code":"insufficient_quota","message":"pay up","param":null}}"#;
        let failed = r#"{"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"other"}}}"#;
        let events = translate(&sse(&[CREATED, error, failed]));
        assert_eq!(events, vec![start(), StreamEvent::Error(ProviderError::new(ProviderErrorKind::Billing, "pay up"))]);
        // The documented shape: code and message at the top level.
        let flat = r#"{"type":"error","code":"rate_limit_exceeded","message":"slow down","param":null}"#;
        let events = translate(&sse(&[CREATED, flat]));
        assert_eq!(events[1], StreamEvent::Error(ProviderError::new(ProviderErrorKind::RateLimited, "slow down")));
        // `response.failed` alone, before anything the client must see.
        let events = translate(&sse(&[failed]));
        assert_eq!(events, vec![StreamEvent::Error(ProviderError::new(ProviderErrorKind::Server, "other"))]);
        let events = translate(&sse(&[CREATED, r#"{"type":"response.failed","response":{"error":null}}"#]));
        assert!(matches!(&events[1], StreamEvent::Error(e) if e.kind == ProviderErrorKind::Server && e.retryable()));
    }

    #[test]
    fn broken_streams_end_with_a_malformed_error() {
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            sse(&[CREATED]),
            b"data: {nope}\n\n".to_vec(),
            b"data: []\n\n".to_vec(),
            b"data: {\"no\":\"type\"}\n\n".to_vec(),
            sse(&[r#"{"type":"response.output_text.delta","delta":"early"}"#]),
            sse(&[CREATED, r#"{"type":"response.output_text.delta","delta":7}"#]),
            sse(&[CREATED, r#"{"type":"response.output_text.delta"}"#]),
            sse(&[CREATED, r#"{"type":"response.function_call_arguments.delta","item_id":"fc_x","delta":"{}"}"#]),
            sse(&[CREATED, r#"{"type":"response.output_item.added","item":{"id":"x"}}"#]),
            sse(&[r#"{"type":"response.created"}"#]),
        ];
        for input in cases {
            let events = translate(&input);
            let Some(StreamEvent::Error(error)) = events.last() else { panic!("{events:?}") };
            assert_eq!(error.kind, ProviderErrorKind::Malformed, "{:?}", String::from_utf8_lossy(&input));
            assert_eq!(events.iter().filter(|e| e.is_terminal()).count(), 1);
        }
        let mut translator = StreamTranslator::with_max_event_bytes(16);
        let mut out = Vec::new();
        translator.feed(&sse(&[CREATED]), &mut out);
        assert!(matches!(&out[..], [StreamEvent::Error(e)] if e.kind == ProviderErrorKind::Malformed));
        assert!(translator.is_done());
    }

    #[test]
    fn nothing_follows_the_terminal_event() {
        let late = r#"{"type":"response.output_text.delta","delta":"late"}"#;
        let events = translate(&sse(&[CREATED, &completed(), late, CREATED]));
        assert_eq!(events.len(), 3);
        assert_eq!(events.last(), Some(&StreamEvent::Finish(FinishReason::Stop)));
    }

    #[test]
    fn too_many_calls_fail_the_stream() {
        let mut events = vec![CREATED.to_owned()];
        for i in 0..=MAX_TOOL_CALLS {
            events.push(format!(
                r#"{{"type":"response.output_item.added","output_index":{i},"item":{{"type":"function_call","id":"fc_{i}","call_id":"c","name":"f"}}}}"#
            ));
        }
        let refs: Vec<&str> = events.iter().map(String::as_str).collect();
        let out = translate(&sse(&refs));
        assert_eq!(out.iter().filter(|e| matches!(e, StreamEvent::ToolCallStart { .. })).count(), MAX_TOOL_CALLS);
        assert!(matches!(out.last(), Some(StreamEvent::Error(e)) if e.kind == ProviderErrorKind::Malformed));
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let fragments: [&[u8]; 12] = [
            b"event: x\ndata: ",
            CREATED.as_bytes(),
            br#"{"type":"response.output_item.added","output_index":18446744073709551615,"item":{"type":"function_call"}}"#,
            br#"{"type":"response.function_call_arguments.delta","output_index":18446744073709551615,"delta":"x"}"#,
            br#"{"type":"response.output_item.done","item":{"type":"reasoning","encrypted_content":"e"}}"#,
            br#"{"type":"response.completed","response":{"usage":{"input_tokens":18446744073709551615}}}"#,
            br#"{"type":"error","error":{"code":{"a":1}}}"#,
            br#"{"type":"response.reasoning_summary_part.added","summary_index":3}"#,
            b"\n\n",
            b"\r",
            b"\xff\xfe",
            b"{\"type\":null}",
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
