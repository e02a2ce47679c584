//! Watches a passed-through SSE stream on its way to the client: every `data:` payload must be the
//! JSON its format promises, the stream must reach its format's end before the body ends, and the
//! caller learns where complete events end (so it never sends half an event) and whether the stream
//! has committed (sent something past its preamble, so failing over is no longer possible).
//!
//! It does not rewrite, decode or copy anything: it reads each complete line once, and in the same
//! validating walk notes where each payload's top-level model value is, for `PassThrough` to replace
//! as it copies the event out, and where the payloads that may report token usage are (a top-level
//! `usage` object, or a `message` / `response` envelope, where the formats put it), for the caller to
//! read. It allocates only while the lists of those places grow to the most events one read brings.
//!
//! Each `data:` line is judged alone: no provider that Corelay passes through spreads one JSON value
//! over several `data:` lines.

use std::ops::Range;

use super::by_difference::{LastPayload, PayloadFacts};
use super::json_scan;
use crate::json_check::{self, JsonFault};

/// The wire format of a passed-through stream: what "complete" and "committed" mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// OpenAI chat completions: ends with `data: [DONE]` (or a chunk with a `finish_reason`).
    OpenAiChat,
    /// Anthropic Messages (also Claude on Vertex): ends with `message_stop`.
    AnthropicMessages,
    /// OpenAI Responses: ends with `response.completed`, `.incomplete` or `.failed`.
    OpenAiResponses,
}

/// What the events seen so far say about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Seen {
    /// Nothing but preamble (`message_start`, `ping`, `response.created`, comments).
    #[default]
    Preamble,
    /// An event that gives the client something (content, a role chunk).
    Committed,
}

/// An event that may not pass, at `event_start` (where it begins in the buffer), and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadEvent {
    pub event_start: usize,
    pub fault: EventFault,
}

/// Why an event may not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFault {
    /// A `data:` payload is not JSON.
    NotJson,
    /// The event grew past the size bound before its blank line came (a broken or hostile
    /// provider).
    TooLarge,
}

/// The audit of one stream. Offsets are into the caller's buffer of released lines; after the caller
/// removes a prefix it says so with [`StreamAudit::consume`].
#[derive(Debug, Clone)]
pub struct StreamAudit {
    format: StreamFormat,
    seen: Seen,
    /// The format's end (or an error event, which ends it too) has been seen.
    complete: bool,
    /// An error event arrived before the stream committed: where its payload is, to fail over
    /// with its message.
    early_error: Option<Range<usize>>,
    /// Data events seen (the Responses API numbers its events from 0).
    data_events: u64,
    /// Bytes of the buffer already scanned.
    scanned: usize,
    /// Where the event being read began, and where the last complete one ended.
    event_start: usize,
    /// The current event's `event:` name is terminal / an error / preamble.
    event_kind: EventKind,
    /// The last scanned line ended with CR: an LF opening the next bytes belongs to it.
    after_cr: bool,
    /// Where the model value (between its quotes) of each scanned data payload that has one is, in
    /// order.
    model_spans: Vec<Range<usize>>,
    /// Where each scanned data payload that may report token usage is, in order: found in the
    /// validating walk, so the caller need not search every event for it.
    usage_payloads: Vec<Range<usize>>,
    /// The last data payload that passed, to judge the next one by difference (most of an event's
    /// bytes repeat the one before it).
    last_payload: LastPayload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum EventKind {
    #[default]
    Unnamed,
    Preamble,
    Terminal,
    Error,
    Other,
}

impl StreamAudit {
    pub fn new(format: StreamFormat) -> StreamAudit {
        StreamAudit {
            format,
            seen: Seen::Preamble,
            complete: false,
            early_error: None,
            data_events: 0,
            scanned: 0,
            event_start: 0,
            event_kind: EventKind::Unnamed,
            after_cr: false,
            model_spans: Vec::new(),
            usage_payloads: Vec::new(),
            last_payload: LastPayload::default(),
        }
    }

    /// A new stream's audit (`format`, nothing seen) in this one's buffers, emptied: a worker's
    /// streams reuse them rather than each growing its own (`sse::PassThrough::reusing`).
    pub fn reusing(self, format: StreamFormat) -> StreamAudit {
        let StreamAudit { mut model_spans, mut usage_payloads, last_payload, .. } = self;
        model_spans.clear();
        usage_payloads.clear();
        StreamAudit { model_spans, usage_payloads, last_payload: last_payload.emptied(), ..StreamAudit::new(format) }
    }

    /// The heap it holds, in bytes.
    pub fn held_bytes(&self) -> usize {
        let spans = self.model_spans.capacity() + self.usage_payloads.capacity();
        spans * size_of::<Range<usize>>() + self.last_payload.held_bytes()
    }

    /// Scans the complete lines of `buf` not scanned yet (a trailing line without its terminator
    /// waits for the next call). `buf` starts where the caller's last `consume` left it.
    pub fn scan(&mut self, buf: &[u8]) -> Result<(), BadEvent> {
        let mut at = self.scanned;
        if at == buf.len() {
            // Nothing new: an LF may still follow a CR that ended the last scan.
            return Ok(());
        }
        if self.after_cr && buf[at] == b'\n' {
            // The LF of a CRLF split across reads belongs to the line before it: if that line ended
            // an event, the next one starts after the LF.
            if self.event_start == at {
                self.event_start += 1;
            }
            at += 1;
        }
        self.after_cr = false;
        while at < buf.len() {
            let Some(found) = memchr::memchr2(b'\n', b'\r', &buf[at..]) else { break };
            let end = at + found;
            let crlf = buf[end] == b'\r' && buf.get(end + 1) == Some(&b'\n');
            let next = end + if crlf { 2 } else { 1 };
            if let Err(bad) = self.line(buf, at..end, next) {
                // Scanned up to the bad line, so `consume` of what came before it stays in range.
                self.scanned = at;
                return Err(bad);
            }
            self.after_cr = !crlf && buf[end] == b'\r' && next == buf.len();
            at = next;
        }
        self.scanned = at;
        Ok(())
    }

    /// The caller removed the first `n` bytes of its buffer (at most [`Self::event_end`]).
    pub fn consume(&mut self, n: usize) {
        self.scanned -= n;
        self.event_start -= n;
        self.early_error = None;
        for spans in [&mut self.model_spans, &mut self.usage_payloads] {
            let released = spans.iter().take_while(|span| span.end <= n).count();
            spans.drain(..released);
            for span in spans.iter_mut() {
                *span = span.start - n..span.end - n;
            }
        }
    }

    /// Where the model value of each scanned data payload is (see the field), in order.
    pub fn model_spans(&self) -> &[Range<usize>] {
        &self.model_spans
    }

    /// The end of the last complete event in the buffer: everything before it can go to the client.
    pub fn event_end(&self) -> usize {
        self.event_start
    }

    /// The stream reached its format's end (or an error event).
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// An event past the preamble went by: the client would see content, so no failover.
    pub fn is_committed(&self) -> bool {
        self.seen == Seen::Committed
    }

    /// Where the payload of an error event that came before anything was committed lies.
    pub fn early_error(&self) -> Option<Range<usize>> {
        self.early_error.clone()
    }

    /// Data events seen so far.
    pub fn data_events(&self) -> u64 {
        self.data_events
    }

    /// Where the scanned data payloads that may report token usage are (see the field), in order:
    /// OpenAI's usage chunk, Anthropic's `message_start` and `message_delta`, the Responses API's
    /// lifecycle events.
    pub fn usage_payloads(&self) -> &[Range<usize>] {
        &self.usage_payloads
    }

    /// Data payloads accepted by their difference from the one before (`sse::by_difference`) rather
    /// than by the full walk.
    pub fn judged_by_difference(&self) -> u64 {
        self.last_payload.judged_by_difference()
    }

    /// The caller has read the payloads [`Self::usage_payloads`] named.
    pub fn clear_usage_payloads(&mut self) {
        self.usage_payloads.clear();
    }

    fn line(&mut self, buf: &[u8], span: Range<usize>, next: usize) -> Result<(), BadEvent> {
        let line = &buf[span.clone()];
        if line.is_empty() {
            self.event_start = next;
            self.event_kind = EventKind::Unnamed;
        } else if let Some(name) = line.strip_prefix(b"event:") {
            self.event_kind = self.kind_of_name(trim_space(name));
        } else if let Some(payload) = line.strip_prefix(b"data:") {
            let payload = trim_space(payload);
            let data_span = span.end - payload.len()..span.end;
            self.data(payload, data_span)?;
        }
        Ok(())
    }

    fn data(&mut self, payload: &[u8], span: Range<usize>) -> Result<(), BadEvent> {
        self.data_events += 1;
        if self.format == StreamFormat::OpenAiChat && payload == b"[DONE]" {
            self.complete = true;
            return Ok(());
        }
        let facts = match self.last_payload.judge(payload) {
            Some(facts) => facts,
            None => judge_in_full(payload, self.format, &mut self.last_payload)
                .map_err(|_| BadEvent { event_start: self.event_start, fault: EventFault::NotJson })?,
        };
        if let Some(model) = facts.model {
            self.model_spans.push(span.start + model.start..span.start + model.end);
        }
        if facts.reports_usage {
            self.usage_payloads.push(span.clone());
        }
        let kind = match self.event_kind {
            EventKind::Unnamed => self.kind_of_payload(payload),
            named => named,
        };
        match kind {
            EventKind::Terminal => self.complete = true,
            EventKind::Error => {
                self.complete = true;
                if self.seen == Seen::Preamble && self.early_error.is_none() {
                    self.early_error = Some(span);
                }
            }
            EventKind::Preamble => {}
            EventKind::Unnamed | EventKind::Other => self.seen = Seen::Committed,
        }
        if facts.finish && kind != EventKind::Error {
            self.complete = true;
        }
        Ok(())
    }

    fn kind_of_name(&self, name: &[u8]) -> EventKind {
        match (self.format, name) {
            (_, b"error") => EventKind::Error,
            (StreamFormat::AnthropicMessages, b"message_stop") => EventKind::Terminal,
            (StreamFormat::AnthropicMessages, b"message_start" | b"ping") => EventKind::Preamble,
            (StreamFormat::OpenAiResponses, b"response.completed" | b"response.incomplete") => EventKind::Terminal,
            (StreamFormat::OpenAiResponses, b"response.failed") => EventKind::Error,
            (StreamFormat::OpenAiResponses, b"response.created" | b"response.in_progress") => EventKind::Preamble,
            _ => EventKind::Other,
        }
    }

    /// For events without an `event:` line: the payload's leading `"type"` (Anthropic and the
    /// Responses API put it first), or OpenAI's `{"error": ...}` envelope.
    fn kind_of_payload(&self, payload: &[u8]) -> EventKind {
        if let Some(name) = leading_type(payload) {
            return self.kind_of_name(name);
        }
        let starts_with_error = payload.strip_prefix(b"{").map(trim_space).is_some_and(|p| p.starts_with(b"\"error\""));
        if starts_with_error { EventKind::Error } else { EventKind::Other }
    }
}

/// Judges a data payload with the full validating walk (`json_scan`), noting its values for `last`
/// to keep, and keeps it there if it passes.
pub(super) fn judge_in_full(
    payload: &[u8],
    format: StreamFormat,
    last: &mut LastPayload,
) -> Result<PayloadFacts, JsonFault> {
    // Where usage may be is noted in the validating walk: a separate substring search of every
    // event for `"usage":{` was ~3% of a stream's instructions.
    let mut reports_usage = false;
    // Only a choice says why it finished: the search for `finish_reason` below looks at the
    // `choices` value alone, not at the whole event again.
    let mut choices = None;
    let members = |key: &[u8], value: Range<usize>| {
        reports_usage |= payload[value.start] == b'{' && matches!(key, b"\"usage\"" | b"\"message\"" | b"\"response\"");
        if key == b"\"choices\"" {
            choices = Some(value);
        }
    };
    last.start_noting(payload.len());
    let model = json_scan::validated_model_value_visiting(payload, members, |atom, at| last.note_atom(atom, at))?;
    let finish =
        format == StreamFormat::OpenAiChat && choices.is_some_and(|choices| has_finish_reason(&payload[choices]));
    let facts = PayloadFacts { model, reports_usage, finish };
    last.keep(payload, &facts);
    Ok(facts)
}

/// The value of a `"type"` member written first in an object, without escapes.
fn leading_type(payload: &[u8]) -> Option<&[u8]> {
    let rest = trim_space(payload.strip_prefix(b"{")?);
    let rest = trim_space(rest.strip_prefix(b"\"type\"")?);
    let rest = trim_space(rest.strip_prefix(b":")?);
    let rest = rest.strip_prefix(b"\"")?;
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    (rest[end] == b'"').then(|| &rest[..end])
}

/// A chunk's `choices` of which one says why it finished (`"finish_reason":null` does not count).
fn has_finish_reason(choices: &[u8]) -> bool {
    // Built once: `memmem::find_iter` with a needle builds its searcher on every call, which cost
    // more than the search itself on a 260-byte event.
    static FINISH_REASON: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"finish_reason\""));
    // Any JSON whitespace around the colon (not only SSE's spaces and tabs): a payload judged by
    // difference may differ from the one before in whitespace alone, and must not read otherwise.
    FINISH_REASON.find_iter(choices).any(|at| {
        let colon = json_check::skip_whitespace(choices, at + 15);
        choices.get(colon) == Some(&b':') && choices.get(json_check::skip_whitespace(choices, colon + 1)) == Some(&b'"')
    })
}

fn trim_space(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit_all(format: StreamFormat, stream: &[u8]) -> (StreamAudit, Result<(), BadEvent>) {
        let mut audit = StreamAudit::new(format);
        let result = audit.scan(stream);
        (audit, result)
    }

    #[test]
    fn an_openai_stream_is_complete_at_done_or_a_finish_reason_only() {
        let role = b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"},\"finish_reason\":null}]}\n\n";
        let (audit, ok) = audit_all(StreamFormat::OpenAiChat, role);
        assert!(ok.is_ok() && audit.is_committed() && !audit.is_complete());
        assert_eq!(audit.event_end(), role.len());
        let finish = b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
        assert!(audit_all(StreamFormat::OpenAiChat, finish).0.is_complete());
        // Only a choice's reason counts: one elsewhere in the event does not end the stream.
        let elsewhere = b"data: {\"meta\":{\"finish_reason\":\"stop\"},\"choices\":[{\"finish_reason\":null}]}\n\n";
        assert!(!audit_all(StreamFormat::OpenAiChat, elsewhere).0.is_complete());
        let second_choice = b"data: {\"choices\":[{\"finish_reason\":null},{\"finish_reason\":\"length\"}]}\n\n";
        assert!(audit_all(StreamFormat::OpenAiChat, second_choice).0.is_complete());
        assert!(audit_all(StreamFormat::OpenAiChat, b"data: [DONE]\n\n").0.is_complete());
    }

    #[test]
    fn payloads_that_may_report_usage_are_named_and_follow_consume() {
        let stream: &[u8] = b"data: {\"usage\":null,\"choices\":[]}\n\n\
            data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3}}\n\n\
            data: {\"type\":\"message_start\",\"message\":{\"usage\":{}}}\n\n";
        let (mut audit, result) = audit_all(StreamFormat::OpenAiChat, stream);
        assert_eq!(result, Ok(()));
        let named: Vec<&[u8]> = audit.usage_payloads().iter().map(|span| &stream[span.clone()]).collect();
        assert_eq!(
            named,
            [
                &b"{\"choices\":[],\"usage\":{\"prompt_tokens\":3}}"[..],
                b"{\"type\":\"message_start\",\"message\":{\"usage\":{}}}"
            ],
            "a `usage: null` is not named; an object and an envelope are"
        );
        // Releasing the first two events drops the span inside them and moves the other.
        let second_end = stream.windows(2).enumerate().filter(|(_, w)| w == b"\n\n").nth(1).unwrap().0 + 2;
        audit.consume(second_end);
        assert_eq!(audit.usage_payloads().len(), 1);
        assert_eq!(&stream[second_end..][audit.usage_payloads()[0].clone()], named[1]);
        audit.clear_usage_payloads();
        assert!(audit.usage_payloads().is_empty());
    }

    #[test]
    fn a_payload_that_is_not_json_names_where_its_event_began() {
        let stream = b"data: {\"a\":1}\n\nid: 7\ndata: {not json\n\n";
        let (_, result) = audit_all(StreamFormat::OpenAiChat, stream);
        assert_eq!(result, Err(BadEvent { event_start: 15, fault: EventFault::NotJson }));
        let deep = format!("data: {}{}\n\n", "[".repeat(100_000), "]".repeat(100_000));
        assert!(audit_all(StreamFormat::OpenAiChat, deep.as_bytes()).1.is_err());
    }

    #[test]
    fn anthropic_preamble_then_error_is_an_early_error_and_message_stop_completes() {
        let overloaded = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{}}\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        let (audit, ok) = audit_all(StreamFormat::AnthropicMessages, overloaded);
        assert!(ok.is_ok());
        assert!(!audit.is_committed() && audit.is_complete());
        let error = audit.early_error().expect("an early error");
        assert!(overloaded[error].starts_with(b"{\"type\":\"error\""));
        let stream = b"event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\"}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let (audit, ok) = audit_all(StreamFormat::AnthropicMessages, stream);
        assert!(ok.is_ok() && audit.is_committed() && audit.is_complete() && audit.early_error().is_none());
    }

    #[test]
    fn responses_complete_on_their_terminal_events() {
        let created = b"event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0}\n\n";
        let (audit, _) = audit_all(StreamFormat::OpenAiResponses, created);
        assert!(!audit.is_committed() && !audit.is_complete());
        assert_eq!(audit.data_events(), 1);
        let done = b"data: {\"type\":\"response.completed\",\"sequence_number\":9}\n\n";
        assert!(audit_all(StreamFormat::OpenAiResponses, done).0.is_complete());
    }

    /// What an audit reports after each event of `stream`, fed a line at a time as a relay would.
    fn reports(format: StreamFormat, stream: &[u8], by_difference: bool) -> Vec<String> {
        let mut audit = StreamAudit::new(format);
        audit.last_payload.off = !by_difference;
        let mut reports = Vec::new();
        for end in stream.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(at, _)| at + 1) {
            let result = audit.scan(&stream[..end]);
            let models: Vec<&[u8]> = audit.model_spans().iter().map(|span| &stream[span.clone()]).collect();
            let usage: Vec<&[u8]> = audit.usage_payloads().iter().map(|span| &stream[span.clone()]).collect();
            reports.push(format!(
                "{result:?} end {} complete {} committed {} error {:?} models {models:?} usage {usage:?}",
                audit.event_end(),
                audit.is_complete(),
                audit.is_committed(),
                audit.early_error(),
            ));
        }
        if by_difference {
            reports.push(format!("judged by difference: {}", audit.judged_by_difference()));
        }
        reports
    }

    #[test]
    fn judging_by_difference_reports_what_the_full_walk_reports_on_every_recorded_stream() {
        let formats = [
            ("openai/chat", StreamFormat::OpenAiChat),
            ("openai/responses", StreamFormat::OpenAiResponses),
            ("anthropic", StreamFormat::AnthropicMessages),
            ("anthropic/sdk", StreamFormat::AnthropicMessages),
        ];
        let mut streams = 0;
        for (dir, format) in formats {
            let dir = std::path::PathBuf::from(crate::fixture_path!()).join(dir);
            for entry in std::fs::read_dir(&dir).expect("fixture directory") {
                let path = entry.expect("entry").path();
                if path.extension().is_none_or(|ext| ext != "sse") {
                    continue;
                }
                let stream = std::fs::read(&path).expect("fixture");
                let mut with = reports(format, &stream, true);
                let judged = with.pop().expect("count");
                assert_eq!(with, reports(format, &stream, false), "{}", path.display());
                let judged: u64 = judged.rsplit(' ').next().unwrap().parse().unwrap();
                let events = stream.windows(6).filter(|w| w == b"data: ").count() as u64;
                // Every recorded stream of more than a few events repeats its shape somewhere.
                assert!(events < 8 || judged > 0, "{}: none of {events} events judged by difference", path.display());
                streams += 1;
            }
        }
        assert!(streams >= 20, "{streams} recorded streams");
    }

    #[test]
    fn split_anywhere_the_audit_agrees_with_one_pass() {
        let stream: &[u8] =
            b"data: {\"x\":\"a\"}\r\n\r\ndata: {\"choices\":[{\"finish_reason\":\"stop\"}]}\r\rdata: [DONE]\n\n";
        for cut in 0..=stream.len() {
            // Lines are released whole; cut only where a line ends, as the rewriter does.
            if cut > 0 && cut < stream.len() && !matches!(stream[cut - 1], b'\n' | b'\r') {
                continue;
            }
            let mut audit = StreamAudit::new(StreamFormat::OpenAiChat);
            audit.scan(&stream[..cut]).unwrap();
            audit.scan(stream).unwrap();
            assert!(audit.is_complete(), "cut at {cut}");
            assert_eq!(audit.event_end(), stream.len(), "cut at {cut}");
            assert_eq!(audit.data_events(), 3, "cut at {cut}");
        }
    }
}
