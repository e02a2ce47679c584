//! A passed-through SSE stream, sans IO: provider bytes in, whole events out with the top-level
//! `model` of each `data:` payload replaced by the gateway's id, every payload checked to be JSON on
//! the way. It does not read sockets, decode transfer encodings, count usage or decide failover (the
//! proxy's relay does, from what [`StreamAudit`] says).
//!
//! One pass per event: the audit validates each payload and finds its model value in the same walk
//! (`json_scan::validated_model_value_visiting`), noting where it is; the substitution happens while the event
//! is copied out. Before, a model rewriter walked each line's head and copied it, then the audit
//! walked it again (about a fifth of a streamed event's instructions, loadtest/RESULTS.md).
//!
//! Output contract: the input byte for byte, except that the content of the first top-level
//! `"model"` string of each `data:` payload (or of a top-level `message` / `response` object's own
//! `model`, as Anthropic's `message_start` and the Responses API's lifecycle events carry it) is the
//! gateway model id; only whole events (up to a blank line) are released; at the end an event the
//! provider left open is closed (clients treat the end of the body as its end).
//!
//! Memory is bounded: an event still open past `max_event_bytes` (4 MiB by default, the translated
//! path's decoder bound) is refused as [`EventFault::TooLarge`], so a provider that never ends an
//! event cannot grow a stream's buffer without limit.

use std::ops::Range;

use super::audit::{BadEvent, EventFault, StreamAudit, StreamFormat};
use super::decoder::DEFAULT_MAX_EVENT_BYTES;
use super::model_rewrite::escape_json_str;

/// What a [`PassThrough`] holds of one stream.
#[derive(Debug, Clone)]
pub struct PassThrough {
    audit: StreamAudit,
    /// The gateway model id, JSON-escaped once, without quotes.
    replacement: Vec<u8>,
    /// Provider bytes not released yet: the start of an event whose blank line has not arrived.
    pending: Vec<u8>,
    /// The most bytes one event may hold before its blank line.
    max_event_bytes: usize,
    rewrites: u64,
}

impl PassThrough {
    /// `pending` starts with room for `capacity` bytes (a typical event, so it seldom grows).
    pub fn new(gateway_model: &str, format: StreamFormat, capacity: usize) -> PassThrough {
        let mut replacement = Vec::with_capacity(gateway_model.len());
        escape_json_str(gateway_model, &mut replacement);
        PassThrough {
            audit: StreamAudit::new(format),
            replacement,
            pending: Vec::with_capacity(capacity),
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            rewrites: 0,
        }
    }

    /// A new stream's state in `spare`'s buffers (a finished stream's), emptied: what
    /// [`Self::new`] gives, without allocating the buffers again or growing them event by event.
    pub fn reusing(spare: PassThrough, gateway_model: &str, format: StreamFormat) -> PassThrough {
        let PassThrough { audit, mut replacement, mut pending, .. } = spare;
        replacement.clear();
        escape_json_str(gateway_model, &mut replacement);
        pending.clear();
        PassThrough {
            audit: audit.reusing(format),
            replacement,
            pending,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            rewrites: 0,
        }
    }

    /// The heap it holds, in bytes (what keeping it for [`Self::reusing`] costs).
    pub fn held_bytes(&self) -> usize {
        self.replacement.capacity() + self.pending.capacity() + self.audit.held_bytes()
    }

    /// The same with another bound on one event's size.
    pub fn with_max_event_bytes(mut self, max_event_bytes: usize) -> PassThrough {
        self.max_event_bytes = max_event_bytes;
        self
    }

    /// Takes the next piece of the decoded body (`None`: the body ended) and judges the lines it
    /// completes. On `Err` the bad event and what follows it are never released; [`Self::release`]
    /// still gives out the events before it.
    pub fn feed(&mut self, piece: Option<&[u8]>) -> Result<(), BadEvent> {
        match piece {
            Some(bytes) => self.pending.extend_from_slice(bytes),
            None => close_final_event(&mut self.pending),
        }
        self.audit.scan(&self.pending)?;
        let open_event = self.audit.event_end();
        if self.pending.len() - open_event > self.max_event_bytes {
            return Err(BadEvent { event_start: open_event, fault: EventFault::TooLarge });
        }
        Ok(())
    }

    /// Appends the whole events judged so far to `out`, their model values replaced.
    pub fn release(&mut self, out: &mut Vec<u8>) {
        let end = self.audit.event_end();
        if end == 0 {
            return;
        }
        let mut copied = 0;
        for span in self.audit.model_spans().iter().take_while(|span| span.end <= end) {
            out.extend_from_slice(&self.pending[copied..span.start]);
            out.extend_from_slice(&self.replacement);
            copied = span.end;
            self.rewrites += 1;
        }
        out.extend_from_slice(&self.pending[copied..end]);
        self.pending.drain(..end);
        self.audit.consume(end);
    }

    pub fn audit(&self) -> &StreamAudit {
        &self.audit
    }

    /// Hands `read` each data payload scanned since the last call that may report token usage
    /// (the audit notes them in its walk), as the provider sent it.
    pub fn drain_usage_payloads(&mut self, mut read: impl FnMut(&[u8])) {
        for span in self.audit.usage_payloads() {
            read(&self.pending[span.clone()]);
        }
        self.audit.clear_usage_payloads();
    }

    /// The payload of an error event that came before anything committed, as the provider sent it.
    pub fn early_error_payload(&self) -> Option<&[u8]> {
        self.audit.early_error().map(|span: Range<usize>| &self.pending[span])
    }

    /// How many model values were replaced so far.
    pub fn rewrites(&self) -> u64 {
        self.rewrites
    }
}

/// At the body's end: terminates a last line and event the provider left open, so the audit judges
/// them like any other.
fn close_final_event(buf: &mut Vec<u8>) {
    if buf.is_empty() {
        return;
    }
    if !matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.push(b'\n');
    }
    let without_terminator = match buf.as_slice() {
        [rest @ .., b'\r', b'\n'] | [rest @ .., b'\n'] | [rest @ .., b'\r'] => rest,
        _ => return,
    };
    if !without_terminator.is_empty() && !matches!(without_terminator.last(), Some(b'\n' | b'\r')) {
        // After a lone CR an LF would only complete a CRLF, not add the blank line.
        let blank_line = if buf.last() == Some(&b'\r') { b'\r' } else { b'\n' };
        buf.push(blank_line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GW: &str = "acme/chat-small";

    /// What a stream gave out: the released bytes, the values replaced, and whether every event was
    /// JSON (feeding stops at the first that is not, as the relay does).
    #[derive(Debug, PartialEq)]
    struct Run {
        out: Vec<u8>,
        rewrites: u64,
        all_json: bool,
    }

    fn run_as(format: StreamFormat, model: &str, pieces: &[&[u8]]) -> Run {
        let mut events = PassThrough::new(model, format, 0);
        let mut out = Vec::new();
        let mut all_json = true;
        for piece in pieces.iter().map(|piece| Some(*piece)).chain([None]) {
            all_json = events.feed(piece).is_ok();
            events.release(&mut out);
            if !all_json {
                break;
            }
        }
        Run { out, rewrites: events.rewrites(), all_json }
    }

    fn run(pieces: &[&[u8]]) -> Run {
        run_as(StreamFormat::OpenAiChat, GW, pieces)
    }

    /// The same run fed whole, in two pieces at every offset, and one byte at a time.
    fn same_however_split(format: StreamFormat, model: &str, input: &[u8]) -> Run {
        let whole = run_as(format, model, &[input]);
        for split in 0..=input.len() {
            let (head, tail) = input.split_at(split);
            assert_eq!(run_as(format, model, &[head, tail]), whole, "split at {split}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run_as(format, model, &bytes), whole, "a byte at a time");
        whole
    }

    fn check_with(format: StreamFormat, model: &str, input: &[u8], expected: &[u8], rewrites: u64) {
        let got = same_however_split(format, model, input);
        let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert_eq!(show(&got.out), show(expected));
        assert_eq!((got.rewrites, got.all_json), (rewrites, true));
    }

    fn check(input: &str, expected: &str, rewrites: u64) {
        check_with(StreamFormat::OpenAiChat, GW, input.as_bytes(), expected.as_bytes(), rewrites);
    }

    fn unchanged(input: &str) {
        check(input, input, 0);
    }

    /// A stream run in a finished stream's reused state gives out what it does in a new state, and
    /// ends in the same state (all of it: audit, kept payload, counts): for every recorded stream
    /// after every other, in their formats, each fed in reads of 100 bytes; after streams stopped
    /// part way (at an event that is not JSON, at an event over the size bound); and after each
    /// stream's first read was fed and never released (a client that left).
    #[test]
    fn a_reused_state_runs_a_stream_as_a_new_one_does() {
        let mut streams = Vec::new();
        for (dir, format) in [
            ("openai/chat", StreamFormat::OpenAiChat),
            ("openai/responses", StreamFormat::OpenAiResponses),
            ("anthropic", StreamFormat::AnthropicMessages),
        ] {
            let dir = std::path::PathBuf::from(crate::fixture_path!()).join(dir);
            let mut paths: Vec<_> =
                std::fs::read_dir(&dir).expect("fixture directory").map(|e| e.unwrap().path()).collect();
            paths.retain(|path| path.extension().is_some_and(|ext| ext == "sse"));
            paths.sort();
            streams
                .extend(paths.iter().take(4).map(|path| (format, std::fs::read(path).expect("fixture"), usize::MAX)));
        }
        assert!(streams.len() >= 8, "recorded streams found: {}", streams.len());
        let cut = b"data: {\"model\":\"m\"}\n\ndata: {\"model\":\"m\",\"half\":".to_vec();
        streams.push((StreamFormat::OpenAiChat, [&cut[..], b"x}\n\n"].concat(), usize::MAX));
        streams.push((StreamFormat::OpenAiChat, cut, 24));

        /// Feeds `stream` in 100-byte reads until the end or the first refusal; what went out.
        fn feed(events: &mut PassThrough, stream: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            for piece in stream.chunks(100).map(Some).chain([None]) {
                let fed = events.feed(piece);
                events.release(&mut out);
                if fed.is_err() {
                    break;
                }
            }
            out
        }
        let mut spares = Vec::new();
        for (first_format, first, first_bound) in &streams {
            let mut spare = PassThrough::new("first/model", *first_format, 0).with_max_event_bytes(*first_bound);
            feed(&mut spare, first);
            spares.push(spare);
            // A client that left mid-read: fed, never released.
            let mut left = PassThrough::new("first/model", *first_format, 0);
            let _ = left.feed(Some(&first[..first.len().min(300)]));
            spares.push(left);
        }
        for spare in spares {
            for (format, stream, _) in &streams {
                let mut fresh = PassThrough::new(GW, *format, 0);
                let mut reused = PassThrough::reusing(spare.clone(), GW, *format);
                assert_eq!(feed(&mut reused, stream), feed(&mut fresh, stream));
                assert_eq!(format!("{reused:?}"), format!("{fresh:?}"));
            }
        }
    }

    #[test]
    fn lf_crlf_cr_and_mixed_terminators() {
        check(
            "data: {\"id\":\"x\",\"model\":\"gpt-4o\",\"choices\":[]}\n\ndata: {\"model\":\"gpt-4o\"}\n\ndata: [DONE]\n\n",
            "data: {\"id\":\"x\",\"model\":\"acme/chat-small\",\"choices\":[]}\n\ndata: {\"model\":\"acme/chat-small\"}\n\ndata: [DONE]\n\n",
            2,
        );
        check(
            "data: {\"model\":\"m\"}\r\n\r\ndata: {\"model\":\"m\"}\r\n\r\ndata: [DONE]\r\n\r\n",
            "data: {\"model\":\"acme/chat-small\"}\r\n\r\ndata: {\"model\":\"acme/chat-small\"}\r\n\r\ndata: [DONE]\r\n\r\n",
            2,
        );
        check(
            "data: {\"model\":\"m\"}\r\rdata: {\"model\":\"m\"}\r\r",
            "data: {\"model\":\"acme/chat-small\"}\r\rdata: {\"model\":\"acme/chat-small\"}\r\r",
            2,
        );
        check(
            "data: {\"model\":\"m\"}\r\n\ndata: {\"model\":\"m\"}\n\r\ndata: {\"model\":\"m\"}\r\n\r",
            "data: {\"model\":\"acme/chat-small\"}\r\n\ndata: {\"model\":\"acme/chat-small\"}\n\r\ndata: {\"model\":\"acme/chat-small\"}\r\n\r",
            3,
        );
    }

    #[test]
    fn a_crlf_split_between_pieces_is_one_terminator() {
        let got = run(&[b"data: {\"model\":\"m\"}\r", b"\ndata: {\"model\":\"m\"}\r", b"\n\r\n"]);
        assert_eq!(got.out, b"data: {\"model\":\"acme/chat-small\"}\r\ndata: {\"model\":\"acme/chat-small\"}\r\n\r\n");
        assert_eq!(got.rewrites, 2);
        let got = run(&[b"", b"data: {\"mo", b"", b"del\":\"m\"}\r", b"\n", b"\r", b"", b"\n"]);
        assert_eq!(got.out, b"data: {\"model\":\"acme/chat-small\"}\r\n\r\n");
    }

    #[test]
    fn only_whole_events_are_released() {
        let mut events = PassThrough::new(GW, StreamFormat::OpenAiChat, 0);
        let mut out = Vec::new();
        events.feed(Some(b"data: {\"model\":\"m\"}\n\ndata: {\"model\":\"m\"}\n")).unwrap();
        events.release(&mut out);
        assert_eq!(out, b"data: {\"model\":\"acme/chat-small\"}\n\n", "the second event has no blank line yet");
        events.feed(Some(b"\n")).unwrap();
        events.release(&mut out);
        assert_eq!(out, b"data: {\"model\":\"acme/chat-small\"}\n\ndata: {\"model\":\"acme/chat-small\"}\n\n");
    }

    #[test]
    fn an_event_that_never_ends_is_refused_at_the_bound_and_what_came_before_still_passes() {
        let mut events = PassThrough::new(GW, StreamFormat::OpenAiChat, 0).with_max_event_bytes(64);
        let mut out = Vec::new();
        events.feed(Some(b"data: {\"model\":\"m\"}\n\n")).unwrap();
        let before = b"data: {\"model\":\"acme/chat-small\"}\n\n".as_slice();
        // One unending line, and then lines without a blank one: both count toward the event.
        let mut refused = None;
        for (round, piece) in
            [b"data: {\"content\":\"".as_slice(), b"aaaaaaaaaaaaaaaa"].iter().cycle().take(20).enumerate()
        {
            if let Err(bad) = events.feed(Some(piece)) {
                refused = Some((round, bad));
                break;
            }
        }
        let (round, bad) = refused.expect("the bound is reached within 20 pieces");
        assert_eq!(bad, BadEvent { event_start: 21, fault: EventFault::TooLarge });
        assert!(round >= 3, "not refused before the bound: round {round}");
        events.release(&mut out);
        assert_eq!(out, before);

        let mut lines = PassThrough::new(GW, StreamFormat::OpenAiChat, 0).with_max_event_bytes(64);
        let refused = (0..20).find_map(|_| lines.feed(Some(b": a comment line\n")).err());
        assert_eq!(refused, Some(BadEvent { event_start: 0, fault: EventFault::TooLarge }));
    }

    #[test]
    fn events_up_to_the_bound_pass_however_many() {
        let event = b"data: {\"model\":\"m\",\"x\":\"0123456789\"}\n\n";
        let mut events = PassThrough::new(GW, StreamFormat::OpenAiChat, 0).with_max_event_bytes(event.len());
        let mut out = Vec::new();
        for _ in 0..100 {
            events.feed(Some(event)).unwrap();
            events.release(&mut out);
        }
        events.feed(Some(&event[..event.len() - 1])).unwrap();
        assert_eq!(events.rewrites(), 100);
    }

    #[test]
    fn data_fields_with_and_without_space_and_other_fields() {
        check(
            "data:{\"model\":\"m\"}\n\ndata:  {\"model\":\"m\"}\n\n",
            "data:{\"model\":\"acme/chat-small\"}\n\ndata:  {\"model\":\"acme/chat-small\"}\n\n",
            2,
        );
        unchanged(
            "event: {\"model\":\"m\"}\nid: {\"model\":\"m\"}\nDATA: {\"model\":\"m\"}\n data: {\"model\":\"m\"}\ndata\n\n",
        );
        unchanged(": ping\n\n:\n\ndata: [DONE]\n\n\n\n\r\n\r");
        unchanged("data: \"model\"\n\ndata: 42\n\n");
    }

    #[test]
    fn only_the_first_top_level_model_string_is_replaced() {
        unchanged("data: {\"choices\":[{\"model\":\"m\"}],\"meta\":{\"model\":\"m\"}}\n\n");
        check(
            "data: {\"meta\":{\"model\":\"inner\",\"x\":[1,{\"model\":\"y\"}]},\"model\":\"outer\"}\n\n",
            "data: {\"meta\":{\"model\":\"inner\",\"x\":[1,{\"model\":\"y\"}]},\"model\":\"acme/chat-small\"}\n\n",
            1,
        );
        unchanged("data: {\"content\":\"\\\"model\\\":\\\"m\\\"\",\"note\":\"model\"}\n\n");
        unchanged("data: {\"kind\":\"model\",\"name\":\"m\"}\n\ndata: {\"a\":[\"model\",\"m\"]}\n\n");
        check(
            "data: {\"model\":\"a\",\"model\":\"b\"}\n\n",
            "data: {\"model\":\"acme/chat-small\",\"model\":\"b\"}\n\n",
            1,
        );
        // Not a string: the payload is left alone, even when a later duplicate is one.
        unchanged("data: {\"model\":null}\n\ndata: {\"model\":42,\"x\":1}\n\ndata: {\"model\":{\"id\":\"m\"}}\n\n");
        unchanged("data: {\"model\":null,\"model\":\"m\"}\n\n");
    }

    #[test]
    fn escapes_whitespace_and_values_of_every_kind_before_the_model() {
        check(
            "data: {\"a\":\"x\\\"y\\\\\",\"model\":\"gpt\\\"4\\\\\",\"b\":\"\\\\\"}\n\n",
            "data: {\"a\":\"x\\\"y\\\\\",\"model\":\"acme/chat-small\",\"b\":\"\\\\\"}\n\n",
            1,
        );
        check(
            "data: { \"model\" \t:  \"m\" , \"b\" : 1 } \n\n",
            "data: { \"model\" \t:  \"acme/chat-small\" , \"b\" : 1 } \n\n",
            1,
        );
        check(
            "data: {\"n\":-1.5e3,\"t\":true,\"z\":null,\"a\":[[],{}],\"o\":{\"k\":\"}\"},\"s\":\"]\",\"model\":\"\"}\n\n",
            "data: {\"n\":-1.5e3,\"t\":true,\"z\":null,\"a\":[[],{}],\"o\":{\"k\":\"}\"},\"s\":\"]\",\"model\":\"acme/chat-small\"}\n\n",
            1,
        );
    }

    #[test]
    fn the_model_of_an_anthropic_or_responses_envelope_is_replaced() {
        check_with(
            StreamFormat::AnthropicMessages,
            GW,
            b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude\"}}\n\n",
            b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"acme/chat-small\"}}\n\n",
            1,
        );
        check_with(
            StreamFormat::OpenAiResponses,
            GW,
            b"data: {\"type\":\"response.created\",\"response\":{\"model\":\"o3\"},\"model\":\"top\"}\n\n",
            b"data: {\"type\":\"response.created\",\"response\":{\"model\":\"acme/chat-small\"},\"model\":\"top\"}\n\n",
            1,
        );
    }

    #[test]
    fn the_replacement_is_json_escaped() {
        check_with(
            StreamFormat::OpenAiChat,
            "a\"b\\c\n\u{1}é",
            b"data: {\"model\":\"m\"}\n\n",
            b"data: {\"model\":\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"}\n\n",
            1,
        );
    }

    #[test]
    fn an_event_that_is_not_json_ends_the_release_before_it() {
        for bad in [
            "data: {\"model\" \"m\"}\n\n",
            "data: {model:\"m\"}\n\n",
            "data: {\"a\":1 \"model\":\"m\"}\n\n",
            "data: {\"model\":\"m\"}}\n\n",
            "data: {\"model\":\"m\",\"choices\":[",
            "data: {\"a\":\"\\\n\n",
        ] {
            let input = format!("data: {{\"model\":\"m\"}}\n\nid: 2\n{bad}data: {{\"model\":\"m\"}}\n\n");
            let got = same_however_split(StreamFormat::OpenAiChat, GW, input.as_bytes());
            assert_eq!(got.out, b"data: {\"model\":\"acme/chat-small\"}\n\n", "{bad:?}");
            assert!(!got.all_json, "{bad:?}");
        }
    }

    #[test]
    fn a_final_event_left_open_is_closed_and_judged() {
        check("data: {\"model\":\"m\"}", "data: {\"model\":\"acme/chat-small\"}\n\n", 1);
        check("data: {\"model\":\"m\"}\r\n", "data: {\"model\":\"acme/chat-small\"}\r\n\n", 1);
        check("data: [DONE]", "data: [DONE]\n\n", 0);
        assert!(!run(&[b"data: {\"model\":\"m\""]).all_json, "cut inside the object");
    }

    #[test]
    fn close_final_event_leaves_a_closed_event_alone() {
        for (given, closed) in [
            (&b"data: x"[..], &b"data: x\n\n"[..]),
            (b"data: x\n", b"data: x\n\n"),
            (b"data: x\r\n", b"data: x\r\n\n"),
            (b"data: x\r", b"data: x\r\r"),
            (b"data: x\n\n", b"data: x\n\n"),
            (b"data: x\r\n\r\n", b"data: x\r\n\r\n"),
            (b"", b""),
        ] {
            let mut buf = given.to_vec();
            close_final_event(&mut buf);
            assert_eq!(buf, closed, "{:?}", String::from_utf8_lossy(given));
        }
    }

    #[test]
    fn an_early_error_payload_is_the_providers_bytes() {
        let mut events = PassThrough::new(GW, StreamFormat::AnthropicMessages, 0);
        let error = b"{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";
        let mut stream = b"event: ping\ndata: {\"type\":\"ping\"}\n\nevent: error\ndata: ".to_vec();
        stream.extend_from_slice(error);
        stream.extend_from_slice(b"\n\n");
        events.feed(Some(&stream)).unwrap();
        assert_eq!(events.early_error_payload(), Some(&error[..]));
    }

    fn next_random(seed: &mut u64) -> u64 {
        *seed = crate::test_fixtures::xorshift(*seed);
        *seed
    }

    /// Random streams built from JSON and SSE fragments: no panics, the same outcome however the
    /// bytes are split, and the input itself whenever nothing was replaced or refused.
    #[test]
    fn random_streams_are_split_invariant() {
        const TOKENS: &[&[u8]] = &[
            b"data:",
            b"data: ",
            b"{",
            b"}",
            b"[",
            b"]",
            b"\"model\"",
            b":",
            b"\"m\"",
            b",",
            b"\\",
            b"\"",
            b"\r",
            b"\n",
            b"\r\n",
            b"\n\n",
            b" ",
            b"1",
            b"null",
            b": x",
            b"event: e",
            b"\xff",
            b"\"a\\\"\"",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..400 {
            let mut input = Vec::new();
            for _ in 0..(next_random(&mut seed) % 40) {
                input.extend_from_slice(TOKENS[(next_random(&mut seed) % TOKENS.len() as u64) as usize]);
            }
            let whole = run(&[&input]);
            if whole.rewrites == 0 && whole.all_json {
                let mut closed = input.clone();
                close_final_event(&mut closed);
                assert_eq!(whole.out, closed, "{:?}", String::from_utf8_lossy(&input));
            }
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(run(&bytes), whole);
            let mut pieces = Vec::new();
            let mut rest = input.as_slice();
            while !rest.is_empty() {
                let (head, tail) = rest.split_at(((next_random(&mut seed) % 7) as usize).min(rest.len()));
                pieces.push(head);
                rest = tail;
            }
            assert_eq!(run(&pieces), whole, "{:?} in {pieces:?}", String::from_utf8_lossy(&input));
        }
    }
}
