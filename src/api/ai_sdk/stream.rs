//! Internal stream events -> AI SDK SSE bytes: one `data: <LanguageModelV4StreamPart JSON>\n\n` per
//! part, in the order `ai` core expects (spec §1.7): `stream-start` (no warnings), `response-metadata`
//! (`id`, `modelId`, `timestamp` when the caller gave a clock reading), content parts, and `finish`
//! last (finish reason, usage and, once the caller set it, `providerMetadata.gateway`). It owns the
//! encoding only; it reads no provider bytes, no clock, and does not decide when to flush.
//!
//! Parts are an explicit state machine. Text and reasoning share one slot: a delta of the other
//! kind closes the open part (`*-end`) and opens a new one (`*-start`) with the next id (`"0"`,
//! `"1"`, ...), since a `*-delta` must follow its `*-start`. A reasoning signature goes out as an
//! empty `reasoning-delta` with `providerMetadata.anthropic.signature`, and redacted reasoning as a
//! `reasoning-start` carrying `providerMetadata.anthropic.redactedData` plus its `reasoning-end`, as
//! `@ai-sdk/anthropic` writes them, so the SDK sends them back in the next prompt. Refusal text is text.
//!
//! Tool calls have their own parts, keyed by the call id: `tool-input-start` at the call's start,
//! `tool-input-delta` per argument chunk, and `tool-input-end` plus the `tool-call` (whole input as a
//! JSON string) at the end of the stream. They stay open until then because the internal stream
//! may feed an earlier call's arguments after a later call started; the SDK keys tool inputs by id,
//! so open inputs may interleave with text.
//!
//! A `generationId` in the gateway metadata set before the first content delta also rides on that
//! delta (`providerMetadata.gateway.generationId`), as the real gateway does, so clients see it early.
//!
//! An error writes the `error` part (`message`, `type`, `statusCode`, `isRetryable`, which `ai` core
//! reads), closes the open parts (tool inputs get their `tool-input-end` but no `tool-call`: a cut-off
//! input must not be executed) and ends with a `finish` of `unified: "error"`, so the SDK's result
//! settles with the usage so far instead of an unknown reason. Events after the end are ignored.

use serde_json::{Value, json};

use super::{SpecVersion, error_finish_json, error_part, finish_json, usage_json};
use crate::chat::{FinishReason, ProviderError, StreamEvent, Usage};
use crate::sse::escape_json_str;

/// Encodes one stream for one client. Feed it every event in order.
#[derive(Debug, Clone)]
pub struct StreamEncoder {
    gateway_model: String,
    spec: SpecVersion,
    /// `response-metadata.timestamp`, ISO 8601, when the caller gave a clock reading.
    timestamp: Option<String>,
    /// `providerMetadata.gateway` of the `finish` part.
    gateway_metadata: Option<Value>,
    state: State,
    /// The id the next text or reasoning part gets.
    next_id: u32,
    /// True once a content delta went out (the generation id rides on the first).
    delta_written: bool,
    calls: Vec<Call>,
    usage: Usage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing written yet.
    AwaitingStart,
    /// The preamble is out; `open` is the text or reasoning part in progress.
    Streaming { open: Open },
    /// `finish` is out; later events are ignored.
    Done,
}

/// The text-or-reasoning slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text {
        id: u32,
    },
    /// `signed` once its signature went out: more reasoning needs a new part.
    Reasoning {
        id: u32,
        signed: bool,
    },
}

/// A tool call whose input is still open.
#[derive(Debug, Clone)]
struct Call {
    index: u32,
    id: String,
    name: String,
    arguments: String,
}

impl StreamEncoder {
    /// `gateway_model` is the id the client asked for; `response-metadata` shows it when the
    /// provider named no model. Writes spec-4 shapes unless [`Self::with_spec`] says otherwise.
    pub fn new(gateway_model: &str) -> Self {
        Self {
            gateway_model: gateway_model.to_owned(),
            spec: SpecVersion::V4,
            timestamp: None,
            gateway_metadata: None,
            state: State::AwaitingStart,
            next_id: 0,
            delta_written: false,
            calls: Vec::new(),
            usage: Usage::default(),
        }
    }

    /// Writes the finish-reason and usage shapes of `spec` (from the client's spec-version header).
    pub fn with_spec(mut self, spec: SpecVersion) -> Self {
        self.spec = spec;
        self
    }

    /// Adds `timestamp` (milliseconds since the Unix epoch, read by the caller) to `response-metadata`.
    pub fn with_timestamp_millis(mut self, unix_millis: u64) -> Self {
        self.timestamp = Some(iso8601(unix_millis));
        self
    }

    /// Hook for the proxy: the routing, cost and `generationId` object to write as
    /// `providerMetadata.gateway` on `finish` (spec §1.8). Can be set at any time before `Finish`.
    pub fn set_gateway_metadata(&mut self, metadata: Value) {
        self.gateway_metadata = Some(metadata);
    }

    /// True once `finish` went out.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Appends the bytes for `event` (possibly none) to `out`.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.is_done() {
            return;
        }
        match event {
            StreamEvent::Start { id, model } => self.start(id, model, out),
            StreamEvent::Usage(usage) => self.usage = *usage,
            StreamEvent::TextDelta(text) | StreamEvent::RefusalDelta(text) => self.text(text, out),
            StreamEvent::ReasoningDelta(text) => self.reasoning(text, out),
            StreamEvent::ReasoningSignature(signature) => self.signature(signature, out),
            StreamEvent::RedactedReasoning(data) => self.redacted(data, out),
            StreamEvent::ToolCallStart { index, id, name } => self.tool_start(*index, id, name, out),
            StreamEvent::ToolCallDelta { index, arguments } => self.tool_delta(*index, arguments, out),
            StreamEvent::Finish(reason) => self.finish(*reason, out),
            StreamEvent::Error(error) => self.error(error, out),
        }
    }

    /// Writes `stream-start` and `response-metadata`, once; a stream whose provider sent no start
    /// gets no id.
    fn start(&mut self, id: &str, model: &str, out: &mut Vec<u8>) {
        if self.state != State::AwaitingStart {
            return;
        }
        self.state = State::Streaming { open: Open::None };
        write_part(&json!({"type": "stream-start", "warnings": []}), out);
        let model = if model.is_empty() { self.gateway_model.as_str() } else { model };
        let mut metadata = json!({"type": "response-metadata", "modelId": model});
        if !id.is_empty() {
            metadata["id"] = json!(id);
        }
        if let Some(timestamp) = &self.timestamp {
            metadata["timestamp"] = json!(timestamp);
        }
        write_part(&metadata, out);
    }

    fn open(&self) -> Open {
        match self.state {
            State::Streaming { open } => open,
            State::AwaitingStart | State::Done => Open::None,
        }
    }

    fn set_open(&mut self, open: Open) {
        self.state = State::Streaming { open };
    }

    /// Ends the open text or reasoning part, if any.
    fn close_open(&mut self, out: &mut Vec<u8>) {
        match self.open() {
            Open::None => return,
            Open::Text { id } => write_id_part("text-end", id, out),
            Open::Reasoning { id, .. } => write_id_part("reasoning-end", id, out),
        }
        self.set_open(Open::None);
    }

    fn take_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        id
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        self.start("", "", out);
        let id = match self.open() {
            Open::Text { id } => id,
            _ => {
                self.close_open(out);
                let id = self.take_id();
                write_id_part("text-start", id, out);
                self.set_open(Open::Text { id });
                id
            }
        };
        self.write_delta("text-delta", id, text, out);
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        let id = self.reasoning_part(out);
        self.write_delta("reasoning-delta", id, text, out);
    }

    /// The id of the unsigned reasoning part in progress, opening one if needed.
    fn reasoning_part(&mut self, out: &mut Vec<u8>) -> u32 {
        self.start("", "", out);
        if let Open::Reasoning { id, signed: false } = self.open() {
            return id;
        }
        self.close_open(out);
        let id = self.take_id();
        write_id_part("reasoning-start", id, out);
        self.set_open(Open::Reasoning { id, signed: false });
        id
    }

    fn signature(&mut self, signature: &str, out: &mut Vec<u8>) {
        let id = self.reasoning_part(out);
        write_part(
            &json!({"type": "reasoning-delta", "id": id.to_string(), "delta": "",
                "providerMetadata": {"anthropic": {"signature": signature}}}),
            out,
        );
        self.set_open(Open::Reasoning { id, signed: true });
    }

    fn redacted(&mut self, data: &str, out: &mut Vec<u8>) {
        self.start("", "", out);
        self.close_open(out);
        let id = self.take_id();
        write_part(
            &json!({"type": "reasoning-start", "id": id.to_string(),
                "providerMetadata": {"anthropic": {"redactedData": data}}}),
            out,
        );
        write_id_part("reasoning-end", id, out);
    }

    fn tool_start(&mut self, index: u32, id: &str, name: &str, out: &mut Vec<u8>) {
        if self.calls.iter().any(|c| c.index == index) {
            return;
        }
        self.start("", "", out);
        self.close_open(out);
        write_part(&json!({"type": "tool-input-start", "id": id, "toolName": name}), out);
        self.calls.push(Call { index, id: id.to_owned(), name: name.to_owned(), arguments: String::new() });
    }

    /// Arguments of a call that never started are dropped: there is no id to show them under.
    fn tool_delta(&mut self, index: u32, arguments: &str, out: &mut Vec<u8>) {
        let Some(call) = self.calls.iter_mut().find(|c| c.index == index) else {
            return;
        };
        call.arguments.push_str(arguments);
        write_part(&json!({"type": "tool-input-delta", "id": call.id, "delta": arguments}), out);
    }

    /// Ends every open tool input; `complete` also writes each `tool-call`.
    fn close_calls(&mut self, complete: bool, out: &mut Vec<u8>) {
        for call in std::mem::take(&mut self.calls) {
            write_part(&json!({"type": "tool-input-end", "id": call.id}), out);
            if complete {
                // An empty input is no JSON; `{}` is what a call without arguments means.
                let input = if call.arguments.is_empty() { "{}" } else { call.arguments.as_str() };
                write_part(
                    &json!({"type": "tool-call", "toolCallId": call.id, "toolName": call.name, "input": input}),
                    out,
                );
            }
        }
    }

    fn finish(&mut self, reason: FinishReason, out: &mut Vec<u8>) {
        self.start("", "", out);
        self.close_open(out);
        self.close_calls(true, out);
        self.write_finish(finish_json(reason, self.spec), out);
    }

    fn error(&mut self, error: &ProviderError, out: &mut Vec<u8>) {
        self.start("", "", out);
        write_part(&error_part(error), out);
        self.close_open(out);
        self.close_calls(false, out);
        self.write_finish(error_finish_json(self.spec), out);
    }

    fn write_finish(&mut self, finish_reason: Value, out: &mut Vec<u8>) {
        let mut part =
            json!({"type": "finish", "finishReason": finish_reason, "usage": usage_json(&self.usage, self.spec)});
        if let Some(gateway) = self.gateway_metadata.take() {
            part["providerMetadata"] = json!({ "gateway": gateway });
        }
        write_part(&part, out);
        self.state = State::Done;
    }

    /// A text or reasoning delta, written by hand: it is the hot path. The first one carries the
    /// generation id when it is known.
    fn write_delta(&mut self, kind: &str, id: u32, delta: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(b"data: {\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"id\":\"");
        out.extend_from_slice(id.to_string().as_bytes());
        out.extend_from_slice(b"\",\"delta\":\"");
        escape_json_str(delta, out);
        out.push(b'"');
        if !self.delta_written {
            self.delta_written = true;
            let generation = self.gateway_metadata.as_ref().and_then(|g| g.get("generationId"));
            if let Some(generation) = generation {
                let metadata = json!({"gateway": {"generationId": generation}});
                out.extend_from_slice(b",\"providerMetadata\":");
                out.extend_from_slice(metadata.to_string().as_bytes());
            }
        }
        out.extend_from_slice(b"}\n\n");
    }
}

fn write_part(part: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: ");
    // Writing a `Value` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, part);
    out.extend_from_slice(b"\n\n");
}

/// `{"type":kind,"id":"<id>"}`.
fn write_id_part(kind: &str, id: u32, out: &mut Vec<u8>) {
    write_part(&json!({"type": kind, "id": id.to_string()}), out);
}

/// Milliseconds since the epoch -> `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic Gregorian, UTC), the
/// form JavaScript's `Date.toISOString` writes.
fn iso8601(unix_millis: u64) -> String {
    let millis = unix_millis % 1000;
    let secs = unix_millis / 1000;
    let (day_secs, days) = (secs % 86_400, secs / 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60
    )
}

/// Howard Hinnant's `civil_from_days` for days since 1970-01-01 (non-negative).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ProviderErrorKind;

    fn parts(events: &[StreamEvent], encoder: &mut StreamEncoder) -> Vec<Value> {
        let mut out = Vec::new();
        for event in events {
            encoder.encode(event, &mut out);
        }
        let text = String::from_utf8(out).unwrap();
        text.split("\n\n")
            .filter(|s| !s.is_empty())
            .map(|s| serde_json::from_str(s.strip_prefix("data: ").unwrap()).unwrap())
            .collect()
    }

    fn types(parts: &[Value]) -> Vec<&str> {
        parts.iter().map(|p| p["type"].as_str().unwrap()).collect()
    }

    #[test]
    fn timestamps_match_javascript() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_795_546_642_444), "2026-11-24T18:57:22.444Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn reasoning_then_text_then_tools() {
        let events = [
            StreamEvent::Start { id: "m".into(), model: "p".into() },
            StreamEvent::ReasoningDelta("think".into()),
            StreamEvent::ReasoningSignature("sig".into()),
            StreamEvent::RedactedReasoning("xx".into()),
            StreamEvent::TextDelta("hi".into()),
            StreamEvent::ToolCallStart { index: 0, id: "c0".into(), name: "w".into() },
            StreamEvent::ToolCallStart { index: 1, id: "c1".into(), name: "v".into() },
            StreamEvent::ToolCallDelta { index: 0, arguments: "{\"a\":".into() },
            StreamEvent::ToolCallDelta { index: 0, arguments: "1}".into() },
            StreamEvent::ToolCallDelta { index: 7, arguments: "lost".into() },
            StreamEvent::Finish(FinishReason::ToolCalls),
            StreamEvent::TextDelta("ignored".into()),
        ];
        let p = parts(&events, &mut StreamEncoder::new("gw"));
        assert_eq!(
            types(&p),
            [
                "stream-start",
                "response-metadata",
                "reasoning-start",
                "reasoning-delta",
                "reasoning-delta",
                "reasoning-end",
                "reasoning-start",
                "reasoning-end",
                "text-start",
                "text-delta",
                "text-end",
                "tool-input-start",
                "tool-input-start",
                "tool-input-delta",
                "tool-input-delta",
                "tool-input-end",
                "tool-call",
                "tool-input-end",
                "tool-call",
                "finish"
            ]
        );
        assert_eq!(p[4]["providerMetadata"]["anthropic"]["signature"], "sig");
        assert_eq!(p[6]["providerMetadata"]["anthropic"]["redactedData"], "xx");
        assert_eq!(p[8]["id"], "2");
        assert_eq!(p[16], json!({"type": "tool-call", "toolCallId": "c0", "toolName": "w", "input": "{\"a\":1}"}));
        assert_eq!(p[18]["input"], "{}");
        assert_eq!(p[19]["finishReason"]["unified"], "tool-calls");
    }

    #[test]
    fn error_closes_parts_without_tool_calls() {
        let events = [
            StreamEvent::TextDelta("a".into()),
            StreamEvent::ToolCallStart { index: 0, id: "c0".into(), name: "w".into() },
            StreamEvent::Error(ProviderError::new(ProviderErrorKind::Overloaded, "busy")),
        ];
        let p = parts(&events, &mut StreamEncoder::new("gw").with_spec(SpecVersion::V2));
        assert_eq!(
            types(&p),
            [
                "stream-start",
                "response-metadata",
                "text-start",
                "text-delta",
                "text-end",
                "tool-input-start",
                "error",
                "tool-input-end",
                "finish"
            ]
        );
        assert_eq!(p[1]["modelId"], "gw");
        assert_eq!(
            p[6]["error"],
            json!({"message": "busy", "type": "internal_server_error", "statusCode": 503, "isRetryable": true})
        );
        assert_eq!(p[8]["finishReason"], "error");
    }

    #[test]
    fn generation_id_rides_on_the_first_delta_only() {
        let mut encoder = StreamEncoder::new("gw");
        encoder.set_gateway_metadata(json!({"generationId": "gen_1", "cost": "0"}));
        let events = [
            StreamEvent::TextDelta("a".into()),
            StreamEvent::TextDelta("b".into()),
            StreamEvent::Finish(FinishReason::Stop),
        ];
        let p = parts(&events, &mut encoder);
        assert_eq!(p[3]["providerMetadata"], json!({"gateway": {"generationId": "gen_1"}}));
        assert!(p[4].get("providerMetadata").is_none());
        assert_eq!(p[6]["providerMetadata"]["gateway"]["cost"], "0");
    }
}
