//! Internal stream events -> OpenAI Responses SSE, in OpenAI's shapes and order (checked against
//! the recordings in `tests/fixtures/openai/responses`): `response.created` and
//! `response.in_progress` first, then each output item opened with `response.output_item.added`,
//! streamed, and closed with `response.output_item.done` carrying the whole item, then exactly one
//! terminal event with the accumulated `output` and the usage. Every event is
//! `event: <type>\ndata: <json>\n\n` whose JSON repeats the `type` and numbers itself with
//! `sequence_number` from 0; there is no `[DONE]`. It decodes nothing and does no I/O.
//!
//! [`StreamEncoder`] is a state machine over the item that is open (a message with an open content
//! part, a reasoning item with an open summary part, or a run of function calls) and keeps every
//! item it wrote, since `response.completed` repeats them all. Mapping choices:
//! - Text and refusal deltas go to one `message` item; switching between them closes the content
//!   part (`response.output_text.done` / `response.refusal.done`, `response.content_part.done`) and
//!   opens the next one.
//! - Reasoning text is one `reasoning` item with one summary part (`summary_index` 0); a provider
//!   that separates summary paragraphs sends the blank line as text, which is kept as text. A
//!   `RedactedReasoning` that follows reasoning text becomes that item's `encrypted_content` and
//!   closes it (where OpenAI's own final blob comes, on `response.output_item.done`); one that
//!   follows anything else is a reasoning item of its own with an empty summary. Reasoning
//!   signatures (Anthropic's) have no Responses field and are not sent.
//! - Each tool call is a `function_call` item whose `call_id` is the provider's call id and whose
//!   `id` is derived from the response id. Consecutive calls stay open together, so argument deltas
//!   of interleaved calls still land in their own item, and are closed (in order) when something
//!   else starts or the stream ends. A delta for a call that is already closed is still sent and
//!   accumulated, so the final `output` has all arguments; one for a call never started is dropped
//!   (it has no item to name).
//! - Any first event opens the stream, so an SDK always sees `response.created` first; the
//!   provider's message id and model are not shown (the response id and model are the caller's).
//! - `Finish(stop | tool_calls)` is `response.completed`; `length` and `content_filter` are
//!   `response.incomplete` with `incomplete_details.reason` `max_output_tokens` / `content_filter`,
//!   the open item closing as `incomplete`. `usage` is the last `Usage` event, or null when the
//!   provider reported none (no invented zeros).
//! - `Error` is an `error` event (`code`, `message`, `param: null`) then `response.failed` with
//!   `error: {code, message}`, as OpenAI sends them; open items are left as they were
//!   (`in_progress`).
//! - Nothing is written after the terminal event; empty deltas are not sent.

use std::io::Write;

use serde::Serialize;

use super::{ContentPart, Item, ResponseObject, Status, SummaryPart, finished, item_id, response_error, wire_usage};
use crate::chat::{FinishReason, ProviderError, StreamEvent, Usage};

/// Encodes one Responses stream for one client. Feed it every event in order.
#[derive(Debug, Clone)]
pub struct StreamEncoder {
    response_id: String,
    model: String,
    created_at: u64,
    sink: Sink,
    state: State,
    /// Every output item so far, in order; the open one (if any) is the last, or the calls from
    /// `Open::Calls::first` on.
    output: Vec<Item>,
    open: Open,
    /// (internal call index, output index) of each call, in order of `ToolCallStart`.
    calls: Vec<(u32, usize)>,
    usage: Option<Usage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing written yet.
    AwaitingStart,
    /// `response.created` and `response.in_progress` are out.
    Streaming,
    /// The terminal event is out; later events are ignored.
    Done,
}

/// The output item being streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Nothing,
    /// The last item is a message; `part_open` when its last content part still takes deltas.
    Message {
        part_open: bool,
    },
    /// The last item is a reasoning item whose one summary part takes deltas.
    Reasoning,
    /// The function calls from output index `first` on are open.
    Calls {
        first: usize,
    },
}

/// Which kind of content part a message delta belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartKind {
    Text,
    Refusal,
}

/// Numbers and frames the events.
#[derive(Debug, Clone, Default)]
struct Sink {
    sequence: u64,
}

impl Sink {
    /// Writes `event: <kind>` and `data: {"type":<kind>,"sequence_number":N,<body's members>}`.
    fn emit<T: Serialize>(&mut self, out: &mut Vec<u8>, kind: &str, body: &T) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: {\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"sequence_number\":");
        let _ = write!(out, "{}", self.sequence);
        self.sequence += 1;
        // The body is an object: its opening brace becomes the comma after the head's members.
        let start = out.len();
        let _ = serde_json::to_writer(&mut *out, body);
        if out.len() > start + 2 {
            out[start] = b',';
        } else {
            out.truncate(start);
            out.push(b'}');
        }
        out.extend_from_slice(b"\n\n");
    }
}

#[derive(Serialize)]
struct ResponseEvent<'a> {
    response: ResponseObject<'a>,
}

#[derive(Serialize)]
struct ItemEvent<'a> {
    output_index: usize,
    item: &'a Item,
}

#[derive(Serialize)]
struct PartEvent<'a> {
    item_id: &'a str,
    output_index: usize,
    content_index: usize,
    part: &'a ContentPart,
}

#[derive(Serialize)]
struct TextEvent<'a> {
    item_id: &'a str,
    output_index: usize,
    content_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    logprobs: [(); 0],
}

#[derive(Serialize)]
struct RefusalEvent<'a> {
    item_id: &'a str,
    output_index: usize,
    content_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
}

#[derive(Serialize)]
struct SummaryEvent<'a> {
    item_id: &'a str,
    output_index: usize,
    summary_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    part: Option<&'a SummaryPart>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

#[derive(Serialize)]
struct ArgumentsEvent<'a> {
    item_id: &'a str,
    output_index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    arguments: Option<&'a str>,
}

#[derive(Serialize)]
struct ErrorEvent<'a> {
    code: &'static str,
    message: &'a str,
    param: Option<()>,
}

impl StreamEncoder {
    /// `gateway_model` is the id the client asked for, `created_at` the Unix time of the response,
    /// `response_id` a unique id the caller drew (`resp_...`); item ids are derived from it.
    pub fn new(gateway_model: &str, created_at: u64, response_id: &str) -> Self {
        Self {
            response_id: response_id.to_owned(),
            model: gateway_model.to_owned(),
            created_at,
            sink: Sink::default(),
            state: State::AwaitingStart,
            output: Vec::new(),
            open: Open::Nothing,
            calls: Vec::new(),
            usage: None,
        }
    }

    /// Appends the bytes for `event` (possibly none) to `out`.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.state == State::Done {
            return;
        }
        self.start(out);
        match event {
            StreamEvent::Start { .. } | StreamEvent::ReasoningSignature(_) => {}
            StreamEvent::TextDelta(text) => self.message_delta(PartKind::Text, text, out),
            StreamEvent::RefusalDelta(text) => self.message_delta(PartKind::Refusal, text, out),
            StreamEvent::ReasoningDelta(text) => self.reasoning_delta(text, out),
            StreamEvent::RedactedReasoning(data) => self.redacted_reasoning(data, out),
            StreamEvent::ToolCallStart { index, id, name } => self.call_start(*index, id, name, out),
            StreamEvent::ToolCallDelta { index, arguments } => self.call_delta(*index, arguments, out),
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            StreamEvent::Finish(reason) => self.finish(*reason, out),
            StreamEvent::Error(error) => self.fail(error, out),
        }
    }

    /// `response.created` and `response.in_progress`, once.
    fn start(&mut self, out: &mut Vec<u8>) {
        if self.state != State::AwaitingStart {
            return;
        }
        self.state = State::Streaming;
        for kind in ["response.created", "response.in_progress"] {
            self.emit_response(out, kind, Status::InProgress, None, None);
        }
    }

    /// A `response.*` event carrying the response as it stands.
    fn emit_response(
        &mut self,
        out: &mut Vec<u8>,
        kind: &str,
        status: Status,
        incomplete_details: Option<super::IncompleteDetails>,
        error: Option<&ProviderError>,
    ) {
        let Self { response_id, model, created_at, sink, output, usage, .. } = self;
        let response = ResponseObject {
            id: response_id,
            object: "response",
            created_at: *created_at,
            status,
            error: error.map(response_error),
            incomplete_details,
            model,
            output,
            // OpenAI reports usage only once the response ended.
            usage: usage.as_ref().filter(|_| status != Status::InProgress).map(wire_usage),
        };
        sink.emit(out, kind, &ResponseEvent { response });
    }

    /// Adds `item` and announces it.
    fn add_item(&mut self, item: Item, out: &mut Vec<u8>) -> usize {
        let output_index = self.output.len();
        self.output.push(item);
        self.sink.emit(
            out,
            "response.output_item.added",
            &ItemEvent { output_index, item: &self.output[output_index] },
        );
        output_index
    }

    fn message_delta(&mut self, kind: PartKind, delta: &str, out: &mut Vec<u8>) {
        if delta.is_empty() {
            return;
        }
        let (output_index, content_index) = self.open_part(kind, out);
        let Item::Message { id, content, .. } = &mut self.output[output_index] else { return };
        let item_id = id.as_str();
        match &mut content[content_index] {
            ContentPart::OutputText { text, .. } => {
                text.push_str(delta);
                let body =
                    TextEvent { item_id, output_index, content_index, delta: Some(delta), text: None, logprobs: [] };
                self.sink.emit(out, "response.output_text.delta", &body);
            }
            ContentPart::Refusal { refusal } => {
                refusal.push_str(delta);
                let body = RefusalEvent { item_id, output_index, content_index, delta: Some(delta), refusal: None };
                self.sink.emit(out, "response.refusal.delta", &body);
            }
        }
    }

    /// The message item and content part of `kind` that take the next delta, opened as needed.
    fn open_part(&mut self, kind: PartKind, out: &mut Vec<u8>) -> (usize, usize) {
        if !matches!(self.open, Open::Message { .. }) {
            self.close_open(Status::Completed, out);
            let id = item_id("msg", &self.response_id, self.output.len());
            let item = Item::Message { id, status: Status::InProgress, content: Vec::new(), role: "assistant" };
            self.add_item(item, out);
            self.open = Open::Message { part_open: false };
        }
        let output_index = self.output.len() - 1;
        let Item::Message { id, content, .. } = &mut self.output[output_index] else { unreachable!() };
        let open_kind = content.last().map(|part| match part {
            ContentPart::OutputText { .. } => PartKind::Text,
            ContentPart::Refusal { .. } => PartKind::Refusal,
        });
        if self.open == (Open::Message { part_open: true }) {
            if open_kind == Some(kind) {
                return (output_index, content.len() - 1);
            }
            close_part(&mut self.sink, output_index, id, content, out);
        }
        content.push(match kind {
            PartKind::Text => ContentPart::text(),
            PartKind::Refusal => ContentPart::Refusal { refusal: String::new() },
        });
        let content_index = content.len() - 1;
        let body = PartEvent { item_id: id, output_index, content_index, part: &content[content_index] };
        self.sink.emit(out, "response.content_part.added", &body);
        self.open = Open::Message { part_open: true };
        (output_index, content_index)
    }

    fn reasoning_delta(&mut self, delta: &str, out: &mut Vec<u8>) {
        if delta.is_empty() {
            return;
        }
        if self.open != Open::Reasoning {
            self.close_open(Status::Completed, out);
            let id = item_id("rs", &self.response_id, self.output.len());
            let output_index = self.add_item(Item::Reasoning { id, summary: Vec::new(), encrypted_content: None }, out);
            let Item::Reasoning { id, summary, .. } = &mut self.output[output_index] else { unreachable!() };
            summary.push(SummaryPart::new(String::new()));
            let body = summary_event(id, output_index, Some(&summary[0]), None, None);
            self.sink.emit(out, "response.reasoning_summary_part.added", &body);
            self.open = Open::Reasoning;
        }
        let output_index = self.output.len() - 1;
        let Item::Reasoning { id, summary, .. } = &mut self.output[output_index] else { return };
        summary[0].text.push_str(delta);
        let body = summary_event(id, output_index, None, Some(delta), None);
        self.sink.emit(out, "response.reasoning_summary_text.delta", &body);
    }

    /// The encrypted reasoning closes the open reasoning item, or is an item of its own.
    fn redacted_reasoning(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.open == Open::Reasoning {
            if let Some(Item::Reasoning { encrypted_content, .. }) = self.output.last_mut() {
                *encrypted_content = Some(data.to_owned());
            }
            self.close_open(Status::Completed, out);
            return;
        }
        self.close_open(Status::Completed, out);
        let id = item_id("rs", &self.response_id, self.output.len());
        let item = Item::Reasoning { id, summary: Vec::new(), encrypted_content: Some(data.to_owned()) };
        let output_index = self.add_item(item, out);
        self.sink.emit(out, "response.output_item.done", &ItemEvent { output_index, item: &self.output[output_index] });
    }

    fn call_start(&mut self, index: u32, call_id: &str, name: &str, out: &mut Vec<u8>) {
        if !matches!(self.open, Open::Calls { .. }) {
            self.close_open(Status::Completed, out);
            self.open = Open::Calls { first: self.output.len() };
        }
        let item = Item::FunctionCall {
            id: item_id("fc", &self.response_id, self.output.len()),
            status: Status::InProgress,
            arguments: String::new(),
            call_id: call_id.to_owned(),
            name: name.to_owned(),
        };
        let output_index = self.add_item(item, out);
        self.calls.push((index, output_index));
    }

    fn call_delta(&mut self, index: u32, delta: &str, out: &mut Vec<u8>) {
        let Some(&(_, output_index)) = self.calls.iter().rev().find(|(i, _)| *i == index) else { return };
        if delta.is_empty() {
            return;
        }
        let Item::FunctionCall { id, arguments, .. } = &mut self.output[output_index] else { return };
        arguments.push_str(delta);
        let body = ArgumentsEvent { item_id: id, output_index, delta: Some(delta), arguments: None };
        self.sink.emit(out, "response.function_call_arguments.delta", &body);
    }

    /// Closes the open item(s) with `status`: their `*.done` events, then `response.output_item.done`.
    fn close_open(&mut self, status: Status, out: &mut Vec<u8>) {
        let open = std::mem::replace(&mut self.open, Open::Nothing);
        let range = match open {
            Open::Nothing => return,
            Open::Message { .. } | Open::Reasoning => self.output.len() - 1..self.output.len(),
            Open::Calls { first } => first..self.output.len(),
        };
        for output_index in range {
            self.close_item(output_index, open, status, out);
        }
    }

    fn close_item(&mut self, output_index: usize, open: Open, status: Status, out: &mut Vec<u8>) {
        match &mut self.output[output_index] {
            Item::Message { id, status: item_status, content, .. } => {
                if open == (Open::Message { part_open: true }) {
                    close_part(&mut self.sink, output_index, id, content, out);
                }
                *item_status = status;
            }
            Item::Reasoning { id, summary, .. } => {
                for (summary_index, part) in summary.iter().enumerate() {
                    let mut text = summary_event(id, output_index, None, None, Some(&part.text));
                    text.summary_index = summary_index;
                    self.sink.emit(out, "response.reasoning_summary_text.done", &text);
                    let mut done = summary_event(id, output_index, Some(part), None, None);
                    done.summary_index = summary_index;
                    self.sink.emit(out, "response.reasoning_summary_part.done", &done);
                }
            }
            Item::FunctionCall { id, status: item_status, arguments, .. } => {
                let body = ArgumentsEvent { item_id: id, output_index, delta: None, arguments: Some(arguments) };
                self.sink.emit(out, "response.function_call_arguments.done", &body);
                *item_status = status;
            }
        }
        self.sink.emit(out, "response.output_item.done", &ItemEvent { output_index, item: &self.output[output_index] });
    }

    fn finish(&mut self, reason: FinishReason, out: &mut Vec<u8>) {
        let (status, details) = finished(reason);
        self.close_open(if status == Status::Incomplete { Status::Incomplete } else { Status::Completed }, out);
        self.state = State::Done;
        let kind = if status == Status::Incomplete { "response.incomplete" } else { "response.completed" };
        self.emit_response(out, kind, status, details, None);
    }

    fn fail(&mut self, error: &ProviderError, out: &mut Vec<u8>) {
        self.state = State::Done;
        let body = ErrorEvent { code: super::error_code(error.kind), message: &error.message, param: None };
        self.sink.emit(out, "error", &body);
        self.emit_response(out, "response.failed", Status::Failed, None, Some(error));
    }
}

fn summary_event<'a>(
    item_id: &'a str,
    output_index: usize,
    part: Option<&'a SummaryPart>,
    delta: Option<&'a str>,
    text: Option<&'a str>,
) -> SummaryEvent<'a> {
    SummaryEvent { item_id, output_index, summary_index: 0, part, delta, text }
}

/// Closes a message's last content part: `response.output_text.done` or `response.refusal.done`,
/// then `response.content_part.done`.
fn close_part(sink: &mut Sink, output_index: usize, item_id: &str, content: &[ContentPart], out: &mut Vec<u8>) {
    let Some(part) = content.last() else { return };
    let content_index = content.len() - 1;
    match part {
        ContentPart::OutputText { text, .. } => {
            let body = TextEvent { item_id, output_index, content_index, delta: None, text: Some(text), logprobs: [] };
            sink.emit(out, "response.output_text.done", &body);
        }
        ContentPart::Refusal { refusal } => {
            let body = RefusalEvent { item_id, output_index, content_index, delta: None, refusal: Some(refusal) };
            sink.emit(out, "response.refusal.done", &body);
        }
    }
    sink.emit(out, "response.content_part.done", &PartEvent { item_id, output_index, content_index, part });
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::chat::ProviderErrorKind;

    /// The events as (SSE name, JSON), after checking the framing, the `type` and the numbering.
    fn encode_all(events: &[StreamEvent]) -> Vec<(String, Value)> {
        let mut encoder = StreamEncoder::new("acme/\"model\"", 7, "resp_r1");
        let mut out = Vec::new();
        for event in events {
            encoder.encode(event, &mut out);
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("\n\n") && !text.contains("[DONE]"));
        let parsed: Vec<(String, Value)> = text
            .split_terminator("\n\n")
            .map(|event| {
                let (name, data) = event.split_once('\n').unwrap();
                let name = name.strip_prefix("event: ").unwrap().to_owned();
                let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
                assert_eq!(data["type"], name.as_str());
                (name, data)
            })
            .collect();
        for (n, (_, data)) in parsed.iter().enumerate() {
            assert_eq!(data["sequence_number"], n as u64);
        }
        parsed
    }

    fn names(events: &[(String, Value)]) -> Vec<&str> {
        events.iter().map(|(name, _)| name.as_str()).collect()
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

    fn start() -> StreamEvent {
        StreamEvent::Start { id: "msg_provider".into(), model: "claude".into() }
    }

    #[test]
    fn a_text_answer_has_openai_shapes() {
        let events = encode_all(&[
            start(),
            StreamEvent::TextDelta("Hi \"you\"".into()),
            StreamEvent::TextDelta(String::new()),
            StreamEvent::TextDelta("!".into()),
            StreamEvent::Usage(usage()),
            StreamEvent::Finish(FinishReason::Stop),
            StreamEvent::TextDelta("ignored after the end".into()),
        ]);
        assert_eq!(
            names(&events),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        assert_eq!(
            events[0].1,
            json!({"type": "response.created", "sequence_number": 0, "response": {"id": "resp_r1", "object": "response",
                   "created_at": 7, "status": "in_progress", "error": null, "incomplete_details": null,
                   "model": "acme/\"model\"", "output": [], "usage": null}})
        );
        assert_eq!(
            events[2].1,
            json!({"type": "response.output_item.added", "sequence_number": 2, "output_index": 0,
                   "item": {"type": "message", "id": "msg_r1_0", "status": "in_progress", "content": [], "role": "assistant"}})
        );
        assert_eq!(
            events[3].1,
            json!({"type": "response.content_part.added", "sequence_number": 3, "item_id": "msg_r1_0", "output_index": 0,
                   "content_index": 0, "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}})
        );
        assert_eq!(
            events[4].1,
            json!({"type": "response.output_text.delta", "sequence_number": 4, "item_id": "msg_r1_0", "output_index": 0,
                   "content_index": 0, "delta": "Hi \"you\"", "logprobs": []})
        );
        assert_eq!(events[6].1["text"], "Hi \"you\"!");
        let message = json!({"type": "message", "id": "msg_r1_0", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Hi \"you\"!"}]});
        assert_eq!(events[8].1["item"], message);
        assert_eq!(
            events[9].1["response"],
            json!({"id": "resp_r1", "object": "response", "created_at": 7, "status": "completed", "error": null,
                   "incomplete_details": null, "model": "acme/\"model\"", "output": [message],
                   "usage": {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 3}, "output_tokens": 4,
                             "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 14}})
        );
    }

    #[test]
    fn reasoning_refusal_and_calls() {
        let events = encode_all(&[
            start(),
            StreamEvent::ReasoningDelta("think".into()),
            StreamEvent::ReasoningSignature("sig".into()),
            StreamEvent::RedactedReasoning("gAAA".into()),
            StreamEvent::RedactedReasoning("gBBB".into()),
            StreamEvent::TextDelta("a".into()),
            StreamEvent::RefusalDelta("no".into()),
            StreamEvent::ToolCallStart { index: 0, id: "call_a".into(), name: "f".into() },
            StreamEvent::ToolCallStart { index: 1, id: "call_b".into(), name: "g".into() },
            StreamEvent::ToolCallDelta { index: 1, arguments: "{}".into() },
            StreamEvent::ToolCallDelta { index: 0, arguments: "{\"x\":1}".into() },
            StreamEvent::ToolCallDelta { index: 9, arguments: "lost".into() },
            StreamEvent::Finish(FinishReason::ToolCalls),
        ]);
        assert_eq!(
            names(&events)[2..],
            [
                "response.output_item.added",
                "response.reasoning_summary_part.added",
                "response.reasoning_summary_text.delta",
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.output_item.done",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.content_part.added",
                "response.refusal.delta",
                "response.refusal.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.output_item.added",
                "response.output_item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        assert_eq!(
            events[3].1,
            json!({"type": "response.reasoning_summary_part.added", "sequence_number": 3, "item_id": "rs_r1_0",
                   "output_index": 0, "summary_index": 0, "part": {"type": "summary_text", "text": ""}})
        );
        assert_eq!(
            events[4].1,
            json!({"type": "response.reasoning_summary_text.delta", "sequence_number": 4, "item_id": "rs_r1_0",
                   "output_index": 0, "summary_index": 0, "delta": "think"})
        );
        assert_eq!(events[5].1["text"], "think");
        assert_eq!(
            events[7].1["item"],
            json!({"type": "reasoning", "id": "rs_r1_0", "summary": [{"type": "summary_text", "text": "think"}],
                   "encrypted_content": "gAAA"})
        );
        assert_eq!(
            events[8].1["item"],
            json!({"type": "reasoning", "id": "rs_r1_1", "summary": [], "encrypted_content": "gBBB"})
        );
        assert_eq!(events[16].1["delta"], "no");
        assert_eq!(events[17].1["refusal"], "no");
        assert_eq!(
            events[20].1["item"],
            json!({"type": "function_call", "id": "fc_r1_3", "status": "in_progress", "arguments": "",
                   "call_id": "call_a", "name": "f"})
        );
        assert_eq!(
            events[22].1,
            json!({"type": "response.function_call_arguments.delta", "sequence_number": 22, "item_id": "fc_r1_4",
                   "output_index": 4, "delta": "{}"})
        );
        assert_eq!(
            events[24].1,
            json!({"type": "response.function_call_arguments.done", "sequence_number": 24, "item_id": "fc_r1_3",
                   "output_index": 3, "arguments": "{\"x\":1}"})
        );
        let output = &events.last().unwrap().1["response"]["output"];
        assert_eq!(output.as_array().unwrap().len(), 5);
        assert_eq!(
            output[2]["content"],
            json!([
            {"type": "output_text", "annotations": [], "logprobs": [], "text": "a"},
            {"type": "refusal", "refusal": "no"}])
        );
        assert_eq!(output[4]["status"], "completed");
        assert_eq!(output[4]["arguments"], "{}");
        assert_eq!(events.last().unwrap().1["response"]["usage"], Value::Null);
    }

    #[test]
    fn cut_answers_are_incomplete() {
        for (reason, why) in
            [(FinishReason::Length, "max_output_tokens"), (FinishReason::ContentFilter, "content_filter")]
        {
            let events = encode_all(&[start(), StreamEvent::TextDelta("cut".into()), StreamEvent::Finish(reason)]);
            let (name, last) = events.last().unwrap();
            assert_eq!(name, "response.incomplete");
            assert_eq!(last["response"]["status"], "incomplete");
            assert_eq!(last["response"]["incomplete_details"], json!({"reason": why}));
            assert_eq!(last["response"]["output"][0]["status"], "incomplete");
        }
    }

    #[test]
    fn errors_end_the_stream_with_error_and_response_failed() {
        let quota = ProviderError::new(ProviderErrorKind::Billing, "pay up");
        let events = encode_all(&[StreamEvent::Error(quota.clone()), StreamEvent::Finish(FinishReason::Stop)]);
        assert_eq!(names(&events), ["response.created", "response.in_progress", "error", "response.failed"]);
        assert_eq!(
            events[2].1,
            json!({"type": "error", "sequence_number": 2, "code": "insufficient_quota", "message": "pay up", "param": null})
        );
        let failed = &events[3].1["response"];
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["error"], json!({"code": "insufficient_quota", "message": "pay up"}));

        let late = encode_all(&[start(), StreamEvent::TextDelta("x".into()), StreamEvent::Error(quota)]);
        assert_eq!(names(&late)[late.len() - 2..], ["error", "response.failed"]);
        assert_eq!(late.last().unwrap().1["response"]["output"][0]["status"], "in_progress");
    }
}
