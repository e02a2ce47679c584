//! Rewrites the top-level `"model"` value of OpenAI-style JSON bodies: [`ModelRewriter`] for SSE byte
//! streams fed in arbitrary pieces, [`rewrite_model_in_json`] for whole (non-streaming) bodies. It
//! does not decode transfer or content encodings, frame events, or parse JSON beyond locating the key
//! (see `json_scan`).
//!
//! Stream contract: the output is the input byte for byte, except that the content of the first
//! top-level `"model"` string of each `data:` line whose payload is a JSON object is replaced by the
//! gateway model id. Line terminators (CRLF, LF, CR), spacing, key order and every other line are
//! untouched.
//!
//! Buffering choice: complete lines are released at once, copied straight from the input piece to
//! `out`; only the trailing incomplete line of a piece is held (in `carry`) until its terminator
//! arrives. Holding a partial line costs the client nothing, since an SSE client cannot act on a line
//! before its terminator, and it keeps the rewrite a pure function of one line. The price is that the
//! carry grows to the longest line that arrives split across pieces.
//!
//! Limits, on purpose: each `data:` line is judged alone (a JSON object spread over several `data:`
//! lines of one event is passed through unchanged; no OpenAI-compatible provider sends that), and a
//! leading byte-order mark on the first line makes that line a non-`data` line.

use core::ops::Range;

use super::json_scan::{find_model_value, is_complete_object};

/// Rewrites the top-level "model" string of every `data:` JSON payload in an SSE byte stream.
#[derive(Debug, Clone)]
pub struct ModelRewriter {
    /// The gateway model id, JSON-escaped once, without quotes.
    replacement: Vec<u8>,
    /// The start of a line whose terminator has not arrived yet (only in [`Stream::Partial`]).
    carry: Vec<u8>,
    state: Stream,
    rewrites: u64,
}

/// Where the stream stands between two pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    /// At the start of a line; nothing is held.
    LineStart,
    /// The last piece ended with CR. An LF opening the next piece completes that CRLF terminator.
    AfterCr,
    /// `carry` holds the start of a line whose terminator has not arrived yet.
    Partial,
}

/// A line found in a buffer: its content and its terminator, as ranges of that buffer.
struct Line {
    content: Range<usize>,
    terminator: Range<usize>,
}

impl Line {
    /// True for a terminator that is a lone CR ending the buffer: an LF may still follow it.
    fn ends_in_cr(&self, buf: &[u8]) -> bool {
        self.terminator.end == buf.len() && buf.last() == Some(&b'\r')
    }
}

impl ModelRewriter {
    /// `gateway_model` is the plain model id; it is stored JSON-escaped once (quotes, backslashes,
    /// control chars).
    pub fn new(gateway_model: &str) -> Self {
        let mut replacement = Vec::with_capacity(gateway_model.len());
        escape_json_str(gateway_model, &mut replacement);
        Self { replacement, carry: Vec::new(), state: Stream::LineStart, rewrites: 0 }
    }

    /// Feed the next piece of the decoded upstream body; append to `out` every byte that can be
    /// released now, rewritten. The trailing incomplete line is held and released by a later
    /// `feed`/`finish`. Does not allocate once `out` and the internal carry have reached the size of
    /// the largest line seen.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let rest = match self.state {
            Stream::LineStart => input,
            Stream::AfterCr => self.after_cr(input, out),
            Stream::Partial => self.complete_carried_line(input, out),
        };
        // An empty rest must not touch the state: AfterCr or Partial still stand.
        if !rest.is_empty() {
            self.feed_lines(rest, out);
        }
    }

    /// Upstream body ended: release anything held. A final line without a terminator is rewritten if
    /// its payload is one complete JSON object, else passed through unchanged. The rewriter is then
    /// ready for a new stream (the rewrite count keeps adding up).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.state == Stream::Partial {
            let line = self.carry.as_slice();
            let span = model_span(line).filter(|_| data_payload(line).is_some_and(is_complete_object));
            self.rewrites += u64::from(emit_line(line, span, &self.replacement, out));
        }
        self.carry.clear();
        self.state = Stream::LineStart;
    }

    /// How many model values were replaced so far (for tests/metrics).
    pub fn rewrites(&self) -> u64 {
        self.rewrites
    }

    /// State AfterCr: pass an LF that completes the previous CRLF, return the rest of `input`.
    fn after_cr<'a>(&mut self, input: &'a [u8], out: &mut Vec<u8>) -> &'a [u8] {
        let Some((&first, rest)) = input.split_first() else {
            return input;
        };
        self.state = Stream::LineStart;
        if first == b'\n' {
            out.push(b'\n');
            rest
        } else {
            input
        }
    }

    /// State Partial: extend the carried line with `input` up to its terminator; once the terminator
    /// is there, release the rewritten line and return the rest of `input`.
    fn complete_carried_line<'a>(&mut self, input: &'a [u8], out: &mut Vec<u8>) -> &'a [u8] {
        let Some(line) = next_line(input, 0) else {
            self.carry.extend_from_slice(input);
            return &[];
        };
        self.carry.extend_from_slice(&input[line.content.clone()]);
        let span = model_span(&self.carry);
        self.rewrites += u64::from(emit_line(&self.carry, span, &self.replacement, out));
        out.extend_from_slice(&input[line.terminator.clone()]);
        self.carry.clear();
        self.state = if line.ends_in_cr(input) { Stream::AfterCr } else { Stream::LineStart };
        &input[line.terminator.end..]
    }

    /// State LineStart with a non-empty `buf`: release its complete lines, hold its incomplete tail.
    ///
    /// Unchanged bytes are copied in runs: one copy from the last replaced value up to the next one,
    /// so a piece without rewrites is a single `extend_from_slice`.
    fn feed_lines(&mut self, buf: &[u8], out: &mut Vec<u8>) {
        let mut copied = 0;
        let mut start = 0;
        let mut last = None;
        while let Some(line) = next_line(buf, start) {
            let content = &buf[line.content.clone()];
            if let Some(span) = model_span(content) {
                out.extend_from_slice(&buf[copied..start + span.start]);
                out.extend_from_slice(&self.replacement);
                copied = start + span.end;
                self.rewrites += 1;
            }
            start = line.terminator.end;
            last = Some(line);
        }
        out.extend_from_slice(&buf[copied..start]);
        self.state = if start < buf.len() {
            self.carry.extend_from_slice(&buf[start..]);
            Stream::Partial
        } else if last.is_some_and(|line| line.ends_in_cr(buf)) {
            Stream::AfterCr
        } else {
            Stream::LineStart
        };
    }
}

/// The next line of `buf` at or after `start`, if its terminator (CRLF, LF or CR) is in `buf`.
fn next_line(buf: &[u8], start: usize) -> Option<Line> {
    let end = start + memchr::memchr2(b'\n', b'\r', buf.get(start..)?)?;
    let crlf = buf[end] == b'\r' && buf.get(end + 1) == Some(&b'\n');
    let terminator_len = if crlf { 2 } else { 1 };
    Some(Line { content: start..end, terminator: end..end + terminator_len })
}

/// The payload of an SSE `data` field line: what follows `data:` and at most one space.
fn data_payload(line: &[u8]) -> Option<&[u8]> {
    let value = line.strip_prefix(b"data:")?;
    Some(value.strip_prefix(b" ").unwrap_or(value))
}

/// Range, within `line` (no terminator), of the model string content to replace, if any.
fn model_span(line: &[u8]) -> Option<Range<usize>> {
    let payload = data_payload(line)?;
    let offset = line.len() - payload.len();
    let span = find_model_value(payload)?;
    Some(span.start + offset..span.end + offset)
}

/// Append `line` to `out` with `span` (if any) replaced; returns whether it replaced.
fn emit_line(line: &[u8], span: Option<Range<usize>>, replacement: &[u8], out: &mut Vec<u8>) -> bool {
    match span {
        Some(span) => {
            out.extend_from_slice(&line[..span.start]);
            out.extend_from_slice(replacement);
            out.extend_from_slice(&line[span.end..]);
            true
        }
        None => {
            out.extend_from_slice(line);
            false
        }
    }
}

/// Non-streaming body: if `json` is a JSON object with a top-level "model" string, append `json` to
/// `out` with that string's content replaced by `replacement_escaped` (already JSON-escaped, without
/// quotes) and return true; otherwise append nothing and return false.
///
/// "A JSON object" is checked structurally (see `json_scan`): one object, closed, with only
/// whitespace around it.
pub fn rewrite_model_in_json(json: &[u8], replacement_escaped: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(span) = find_model_value(json) else {
        return false;
    };
    if !is_complete_object(json) {
        return false;
    }
    emit_line(json, Some(span), replacement_escaped, out)
}

/// JSON-escape a plain string into `out` (no quotes added).
///
/// Escapes what JSON requires: `"`, `\` and the control characters below U+0020 (with the short
/// forms where JSON has them). Everything else, non-ASCII included, is copied as UTF-8.
pub fn escape_json_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &byte in s.as_bytes() {
        let short = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0x00..=0x1f => {
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 0xf)],
                ]);
                continue;
            }
            _ => {
                out.push(byte);
                continue;
            }
        };
        out.extend_from_slice(&[b'\\', short]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GW: &str = "acme/chat-small";

    /// Runs `input` through a fresh rewriter fed as `pieces`, then `finish`.
    fn run(pieces: &[&[u8]], model: &str) -> (Vec<u8>, u64) {
        let mut rewriter = ModelRewriter::new(model);
        let mut out = Vec::new();
        for piece in pieces {
            rewriter.feed(piece, &mut out);
        }
        rewriter.finish(&mut out);
        (out, rewriter.rewrites())
    }

    /// Asserts the output and rewrite count for `input` fed whole, in two pieces at every offset,
    /// and one byte at a time.
    fn check_with(model: &str, input: &[u8], expected: &[u8], rewrites: u64) {
        let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let (out, n) = run(&[input], model);
        assert_eq!(show(&out), show(expected), "whole");
        assert_eq!(n, rewrites, "whole: rewrite count");
        for split in 0..=input.len() {
            let (head, tail) = input.split_at(split);
            let (out, n) = run(&[head, tail], model);
            assert_eq!(show(&out), show(expected), "split at {split}");
            assert_eq!(n, rewrites, "split at {split}: rewrite count");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let (out, n) = run(&bytes, model);
        assert_eq!(show(&out), show(expected), "byte at a time");
        assert_eq!(n, rewrites, "byte at a time: rewrite count");
    }

    fn check(input: &str, expected: &str, rewrites: u64) {
        check_with(GW, input.as_bytes(), expected.as_bytes(), rewrites);
    }

    /// Input that must come out unchanged.
    fn unchanged(input: &str) {
        check(input, input, 0);
    }

    #[test]
    fn lf_terminated_events() {
        check(
            "data: {\"id\":\"x\",\"model\":\"gpt-4o\",\"choices\":[]}\n\ndata: {\"model\":\"gpt-4o\"}\n\ndata: [DONE]\n\n",
            "data: {\"id\":\"x\",\"model\":\"acme/chat-small\",\"choices\":[]}\n\ndata: {\"model\":\"acme/chat-small\"}\n\ndata: [DONE]\n\n",
            2,
        );
    }

    #[test]
    fn crlf_terminated_events() {
        check(
            "data: {\"model\":\"m\"}\r\n\r\ndata: {\"model\":\"m\"}\r\n\r\ndata: [DONE]\r\n\r\n",
            "data: {\"model\":\"acme/chat-small\"}\r\n\r\ndata: {\"model\":\"acme/chat-small\"}\r\n\r\ndata: [DONE]\r\n\r\n",
            2,
        );
    }

    #[test]
    fn cr_terminated_events() {
        check(
            "data: {\"model\":\"m\"}\r\rdata: {\"model\":\"m\"}\r\r",
            "data: {\"model\":\"acme/chat-small\"}\r\rdata: {\"model\":\"acme/chat-small\"}\r\r",
            2,
        );
    }

    #[test]
    fn mixed_terminators() {
        check(
            "data: {\"model\":\"m\"}\r\n\ndata: {\"model\":\"m\"}\n\r\ndata: {\"model\":\"m\"}\r\n\r",
            "data: {\"model\":\"acme/chat-small\"}\r\n\ndata: {\"model\":\"acme/chat-small\"}\n\r\ndata: {\"model\":\"acme/chat-small\"}\r\n\r",
            3,
        );
    }

    #[test]
    fn crlf_split_between_pieces_is_one_terminator() {
        let (out, n) = run(&[b"data: {\"model\":\"m\"}\r", b"\ndata: {\"model\":\"m\"}\r", b"\n\r\n"], GW);
        assert_eq!(out, b"data: {\"model\":\"acme/chat-small\"}\r\ndata: {\"model\":\"acme/chat-small\"}\r\n\r\n");
        assert_eq!(n, 2);
        // The same with the line itself split, so the CR ends a carried line.
        let (out, n) = run(&[b"data: {\"mo", b"del\":\"m\"}\r", b"\n", b"\r", b"\n"], GW);
        assert_eq!(out, b"data: {\"model\":\"acme/chat-small\"}\r\n\r\n");
        assert_eq!(n, 1);
    }

    #[test]
    fn empty_pieces_change_nothing() {
        let (out, n) =
            run(&[b"", b"data: {\"model\":\"m\"}\r", b"", b"\n", b"", b"data: {\"mo", b"", b"del\":\"m\"}\n"], GW);
        assert_eq!(out, b"data: {\"model\":\"acme/chat-small\"}\r\ndata: {\"model\":\"acme/chat-small\"}\n");
        assert_eq!(n, 2);
    }

    #[test]
    fn data_field_with_and_without_space() {
        check(
            "data:{\"model\":\"m\"}\ndata: {\"model\":\"m\"}\ndata:  {\"model\":\"m\"}\n",
            "data:{\"model\":\"acme/chat-small\"}\ndata: {\"model\":\"acme/chat-small\"}\ndata:  {\"model\":\"acme/chat-small\"}\n",
            3,
        );
    }

    #[test]
    fn other_fields_are_not_candidates() {
        unchanged(
            "event: {\"model\":\"m\"}\nid: {\"model\":\"m\"}\nDATA: {\"model\":\"m\"}\n data: {\"model\":\"m\"}\ndata\n\n",
        );
        unchanged("dat: {\"model\":\"m\"}\ndatax: {\"model\":\"m\"}\n");
    }

    #[test]
    fn event_lines_pass_and_data_lines_rewrite() {
        check(
            "event: response.created\ndata: {\"type\":\"x\",\"model\":\"m\"}\n\n",
            "event: response.created\ndata: {\"type\":\"x\",\"model\":\"acme/chat-small\"}\n\n",
            1,
        );
    }

    #[test]
    fn comments_done_and_empty_lines_pass() {
        unchanged(": ping\n\n:\n\ndata: [DONE]\n\n\n\n\r\n\r");
        unchanged("data: \ndata:\ndata: \"model\"\ndata: 42\n");
    }

    #[test]
    fn nested_model_keys_are_not_touched() {
        unchanged("data: {\"choices\":[{\"model\":\"m\"}],\"meta\":{\"model\":\"m\"}}\n");
        check(
            "data: {\"meta\":{\"model\":\"inner\",\"x\":[1,{\"model\":\"y\"}]},\"model\":\"outer\"}\n",
            "data: {\"meta\":{\"model\":\"inner\",\"x\":[1,{\"model\":\"y\"}]},\"model\":\"acme/chat-small\"}\n",
            1,
        );
    }

    #[test]
    fn model_inside_string_values_is_not_touched() {
        unchanged("data: {\"content\":\"\\\"model\\\":\\\"m\\\"\",\"note\":\"model\"}\n");
        check(
            "data: {\"note\":\"model\",\"text\":\"{\\\"model\\\":\\\"m\\\"}\",\"model\":\"m\"}\n",
            "data: {\"note\":\"model\",\"text\":\"{\\\"model\\\":\\\"m\\\"}\",\"model\":\"acme/chat-small\"}\n",
            1,
        );
    }

    #[test]
    fn model_as_a_value_is_not_a_key() {
        unchanged("data: {\"kind\":\"model\",\"name\":\"m\"}\n");
        unchanged("data: {\"a\":[\"model\",\"m\"]}\n");
    }

    #[test]
    fn escaped_quotes_in_values() {
        check(
            "data: {\"a\":\"x\\\"y\\\\\",\"model\":\"gpt\\\"4\\\\\",\"b\":\"\\\\\"}\n",
            "data: {\"a\":\"x\\\"y\\\\\",\"model\":\"acme/chat-small\",\"b\":\"\\\\\"}\n",
            1,
        );
    }

    #[test]
    fn whitespace_around_the_colon() {
        check(
            "data: { \"model\" \t:  \"m\" , \"b\" : 1 }\n",
            "data: { \"model\" \t:  \"acme/chat-small\" , \"b\" : 1 }\n",
            1,
        );
    }

    #[test]
    fn non_string_model_value_leaves_the_line() {
        unchanged("data: {\"model\":null}\n");
        unchanged("data: {\"model\":42,\"x\":1}\n");
        unchanged("data: {\"model\":{\"id\":\"m\"}}\n");
        // Only the first top-level key counts, even when a duplicate later has a string.
        unchanged("data: {\"model\":null,\"model\":\"m\"}\n");
    }

    #[test]
    fn only_the_first_top_level_model_is_replaced() {
        check(
            "data: {\"model\":\"a\",\"model\":\"b\"}\n",
            "data: {\"model\":\"acme/chat-small\",\"model\":\"b\"}\n",
            1,
        );
    }

    #[test]
    fn values_before_the_model_of_every_kind() {
        check(
            "data: {\"n\":-1.5e3,\"t\":true,\"z\":null,\"a\":[[],{}],\"o\":{\"k\":\"}\"},\"s\":\"]\",\"model\":\"\"}\n",
            "data: {\"n\":-1.5e3,\"t\":true,\"z\":null,\"a\":[[],{}],\"o\":{\"k\":\"}\"},\"s\":\"]\",\"model\":\"acme/chat-small\"}\n",
            1,
        );
    }

    #[test]
    fn malformed_payloads_pass_unchanged() {
        unchanged("data: {\"model\" \"m\"}\n");
        unchanged("data: {model:\"m\"}\n");
        unchanged("data: {\"a\" 1,\"model\":\"m\"}\n");
        unchanged("data: {\"a\":1 \"model\":\"m\"}\n");
        unchanged("data: {,\"model\":\"m\"}\n");
        unchanged("data: {\"model\":\"unterminated\n");
        unchanged("data: {\"a\":{\"b\":1,\"model\":\"m\"}\n");
        unchanged("data: {\"a\":\"\\\n");
        unchanged("data: {}\ndata: {\n");
    }

    #[test]
    fn final_line_without_terminator() {
        check("data: {\"model\":\"m\"}", "data: {\"model\":\"acme/chat-small\"}", 1);
        check("data: {\"model\":\"m\"} \t", "data: {\"model\":\"acme/chat-small\"} \t", 1);
        // Cut short: the object never closed, so it passes through as it came.
        unchanged("data: {\"model\":\"m\",\"choices\":[");
        unchanged("data: {\"model\":\"m\"}}");
        unchanged("data: {\"model\":\"m");
        unchanged("data: [DONE]");
    }

    #[test]
    fn replacement_is_json_escaped() {
        check_with(
            "a\"b\\c\n\u{1}é",
            b"data: {\"model\":\"m\"}\n",
            b"data: {\"model\":\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"}\n",
            1,
        );
    }

    #[test]
    fn escape_json_str_covers_control_chars() {
        let mut out = Vec::new();
        escape_json_str("\u{0}\u{8}\u{c}\t\r\u{1f} /\u{7f}", &mut out);
        assert_eq!(out, b"\\u0000\\b\\f\\t\\r\\u001f /\x7f");
    }

    #[test]
    fn finish_resets_for_a_new_stream() {
        let mut rewriter = ModelRewriter::new(GW);
        let mut out = Vec::new();
        rewriter.feed(b"data: {\"model\":\"m\"", &mut out);
        rewriter.finish(&mut out);
        assert_eq!(out, b"data: {\"model\":\"m\"");
        out.clear();
        rewriter.feed(b"data: {\"model\":\"m\"}\r", &mut out);
        rewriter.finish(&mut out);
        rewriter.feed(b"\ndata: {\"model\":\"m\"}\n", &mut out);
        assert_eq!(out, b"data: {\"model\":\"acme/chat-small\"}\r\ndata: {\"model\":\"acme/chat-small\"}\n");
        assert_eq!(rewriter.rewrites(), 2);
    }

    #[test]
    fn complete_lines_are_released_at_once() {
        let mut rewriter = ModelRewriter::new(GW);
        let mut out = Vec::new();
        rewriter.feed(b"data: {\"model\":\"m\"}\n\ndata: {\"mod", &mut out);
        assert_eq!(out, b"data: {\"model\":\"acme/chat-small\"}\n\n");
        rewriter.feed(b"el\":\"m\"}", &mut out);
        assert_eq!(out.len(), 35, "an unterminated line is held");
        rewriter.feed(b"\n", &mut out);
        assert_eq!(out, b"data: {\"model\":\"acme/chat-small\"}\n\ndata: {\"model\":\"acme/chat-small\"}\n");
    }

    #[test]
    fn rewrite_model_in_json_whole_bodies() {
        let mut out = Vec::new();
        assert!(rewrite_model_in_json(b" {\"id\":1,\"model\" : \"m\",\"x\":[{}]}\n", b"a\\\"b", &mut out));
        assert_eq!(out, b" {\"id\":1,\"model\" : \"a\\\"b\",\"x\":[{}]}\n");
        for body in [
            &b"{\"model\":\"m\""[..],
            b"{\"model\":\"m\"}x",
            b"{\"model\":\"m\"}{}",
            b"{\"model\":1}",
            b"{\"x\":{\"model\":\"m\"}}",
            b"[{\"model\":\"m\"}]",
            b"",
            b"null",
        ] {
            out.clear();
            assert!(!rewrite_model_in_json(body, b"r", &mut out), "{}", String::from_utf8_lossy(body));
            assert!(out.is_empty());
        }
    }

    /// Deterministic xorshift, so the fuzz test needs no dependency and always runs the same cases.
    fn next_random(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// Random streams built from JSON and SSE fragments: no panics, the same output however the
    /// bytes are split, and unchanged output when nothing was rewritten.
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
                let token = TOKENS[(next_random(&mut seed) % TOKENS.len() as u64) as usize];
                input.extend_from_slice(token);
            }
            let (whole, n) = run(&[&input], GW);
            if n == 0 {
                assert_eq!(whole, input);
            }
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(run(&bytes, GW), (whole.clone(), n));
            let mut pieces = Vec::new();
            let mut rest = input.as_slice();
            while !rest.is_empty() {
                let take = (next_random(&mut seed) % 7) as usize;
                let (head, tail) = rest.split_at(take.min(rest.len()));
                pieces.push(head);
                rest = tail;
            }
            assert_eq!(run(&pieces, GW), (whole, n));
        }
    }
}
