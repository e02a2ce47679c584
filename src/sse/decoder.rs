//! Incremental decoder of `text/event-stream` bodies into events (name and data), for translated
//! streams. It does not read sockets, undo transfer or content encodings, parse the data, or keep
//! `id`/`retry` fields: Corelay never reconnects a provider stream, so those have no use.
//!
//! Rules (the WHATWG event-stream grammar): lines end in LF, CR or CRLF, and a CRLF may arrive split
//! across two pieces; a line starting with `:` is a comment; `field: value` loses one space after the
//! colon; `data` lines join with `\n`; a blank line dispatches the event if it had any `data` line;
//! a leading byte-order mark is dropped. Input may be split at any byte.
//!
//! One deliberate departure: at end of input, [`SseDecoder::finish`] dispatches an event whose blank
//! line (or even whose last line terminator) never came. The grammar says to drop it, but real
//! providers and the official Anthropic SDK fixtures end with `data: {"type":"message_stop"}` and no
//! newline, and dropping the stream's last event would turn a clean answer into a truncated one.
//!
//! Memory is bounded: the bytes of one event (every line since the last blank line, comments and
//! each line terminator counted as one byte, CRLF too, so the count does not depend on where the input
//! was split) may not exceed the limit, or decoding fails for good with
//! [`SseError::EventTooLarge`]. Completed lines are read in place; only a line split across pieces is
//! copied, into a carry buffer that the limit also bounds.

use memchr::{memchr, memchr2};

/// Default bound on one event: Anthropic's largest events (server-tool results, redacted thinking)
/// stay far below it, and it caps what one stalled or hostile stream can hold.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 4 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("a server-sent event exceeds {limit} bytes")]
    EventTooLarge { limit: usize },
}

/// One dispatched event, borrowed from the decoder until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field; empty when the event had none (the grammar's default type `message`).
    pub name: &'a [u8],
    /// The `data:` lines, joined with `\n`.
    pub data: &'a [u8],
}

/// Decodes an SSE byte stream fed in arbitrary pieces. See the module doc for the rules.
#[derive(Debug, Clone)]
pub struct SseDecoder {
    max_event_bytes: usize,
    /// The start of a line whose terminator has not arrived yet.
    carry: Vec<u8>,
    name: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    /// Bytes consumed since the last blank line, checked against `max_event_bytes`.
    event_bytes: usize,
    /// The last piece ended in CR: an LF opening the next piece belongs to that terminator.
    skip_lf: bool,
    /// No line has been completed yet, so a byte-order mark may still open the stream.
    at_stream_start: bool,
    /// The event in `name`/`data` was handed out; clear it before decoding on.
    dispatched: bool,
    failed: bool,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::with_max_event_bytes(DEFAULT_MAX_EVENT_BYTES)
    }

    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        Self {
            max_event_bytes,
            carry: Vec::new(),
            name: Vec::new(),
            data: Vec::new(),
            has_data: false,
            event_bytes: 0,
            skip_lf: false,
            at_stream_start: true,
            dispatched: false,
            failed: false,
        }
    }

    /// Consumes `input` from the front up to the end of the next complete event and returns it;
    /// returns `Ok(None)` with `input` emptied when the piece completes no event (its tail is kept).
    /// Call it until it returns `Ok(None)` for every piece. After an error every call fails.
    pub fn next_event(&mut self, input: &mut &[u8]) -> Result<Option<SseEvent<'_>>, SseError> {
        self.check_usable()?;
        self.clear_dispatched();
        let mut dispatched = false;
        while !dispatched && !input.is_empty() {
            dispatched = self.step(input)?;
        }
        Ok(if dispatched { Some(self.event()) } else { None })
    }

    /// Ends the stream: completes a carried last line and dispatches a pending event even without
    /// its blank line (see the module doc). The decoder is then ready for a new stream.
    pub fn finish(&mut self) -> Result<Option<SseEvent<'_>>, SseError> {
        self.check_usable()?;
        self.clear_dispatched();
        if !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            self.on_line(&carry);
            self.carry = carry;
            self.carry.clear();
        }
        self.skip_lf = false;
        self.at_stream_start = true;
        let dispatched = self.end_of_event();
        Ok(if dispatched { Some(self.event()) } else { None })
    }

    fn check_usable(&self) -> Result<(), SseError> {
        if self.failed { Err(SseError::EventTooLarge { limit: self.max_event_bytes }) } else { Ok(()) }
    }

    fn event(&self) -> SseEvent<'_> {
        SseEvent { name: &self.name, data: &self.data }
    }

    fn clear_dispatched(&mut self) {
        if self.dispatched {
            self.dispatched = false;
            self.name.clear();
            self.data.clear();
            self.has_data = false;
        }
    }

    /// Consumes one line from the front of `input`, or all of it into the carry when it holds no
    /// line end. True when the line was blank and dispatched an event.
    fn step(&mut self, input: &mut &[u8]) -> Result<bool, SseError> {
        if std::mem::take(&mut self.skip_lf) && input[0] == b'\n' {
            *input = &input[1..];
            return Ok(false);
        }
        let Some(end) = memchr2(b'\n', b'\r', input) else {
            self.count(input.len())?;
            self.carry.extend_from_slice(input);
            *input = &[];
            return Ok(false);
        };
        let terminator = self.terminator_len(&input[end..]);
        // Every terminator counts one byte: a CRLF split across pieces has its LF skipped uncounted
        // on the next call, so counting CRLF as two would make the limit depend on the split.
        self.count(end + 1)?;
        let line = &input[..end];
        *input = &input[end + terminator..];
        if self.carry.is_empty() {
            return Ok(self.on_line(line));
        }
        let mut carry = std::mem::take(&mut self.carry);
        carry.extend_from_slice(line);
        let dispatched = self.on_line(&carry);
        carry.clear();
        self.carry = carry;
        Ok(dispatched)
    }

    /// Length of the terminator at the start of `rest` (which starts with CR or LF). A CR ending
    /// the piece counts alone and leaves a following LF to be skipped.
    fn terminator_len(&mut self, rest: &[u8]) -> usize {
        match rest {
            [b'\r', b'\n', ..] => 2,
            [b'\r'] => {
                self.skip_lf = true;
                1
            }
            _ => 1,
        }
    }

    fn count(&mut self, bytes: usize) -> Result<(), SseError> {
        self.event_bytes = self.event_bytes.saturating_add(bytes);
        if self.event_bytes > self.max_event_bytes {
            self.failed = true;
            return Err(SseError::EventTooLarge { limit: self.max_event_bytes });
        }
        Ok(())
    }

    /// Applies one complete line; true when it was blank and dispatched an event.
    fn on_line(&mut self, mut line: &[u8]) -> bool {
        if std::mem::take(&mut self.at_stream_start) {
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            return self.end_of_event();
        }
        if line[0] == b':' {
            return false;
        }
        let (field, value) = match memchr(b':', line) {
            Some(colon) => (&line[..colon], strip_one_space(&line[colon + 1..])),
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.name.clear();
                self.name.extend_from_slice(value);
            }
            _ => {}
        }
        false
    }

    /// A blank line: dispatch when there was data, else forget the event name.
    fn end_of_event(&mut self) -> bool {
        self.event_bytes = 0;
        if self.has_data {
            self.dispatched = true;
            return true;
        }
        self.name.clear();
        false
    }
}

fn strip_one_space(value: &[u8]) -> &[u8] {
    value.strip_prefix(b" ").unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Events = Vec<(String, String)>;

    fn owned(event: SseEvent<'_>) -> (String, String) {
        (String::from_utf8_lossy(event.name).into_owned(), String::from_utf8_lossy(event.data).into_owned())
    }

    fn decode_with(decoder: &mut SseDecoder, pieces: &[&[u8]]) -> Result<Events, SseError> {
        let mut events = Vec::new();
        for piece in pieces {
            let mut rest = *piece;
            while let Some(event) = decoder.next_event(&mut rest)? {
                events.push(owned(event));
            }
            assert!(rest.is_empty(), "a piece must be consumed whole once no event is left");
        }
        if let Some(event) = decoder.finish()? {
            events.push(owned(event));
        }
        Ok(events)
    }

    fn decode(pieces: &[&[u8]]) -> Events {
        decode_with(&mut SseDecoder::new(), pieces).expect("decodes")
    }

    fn ev(name: &str, data: &str) -> (String, String) {
        (name.to_owned(), data.to_owned())
    }

    /// Every two-piece split and the one-byte-at-a-time feed must give what the whole input gives.
    fn assert_split_invariant(input: &[u8]) -> Events {
        let whole = decode(&[input]);
        for at in 0..=input.len() {
            assert_eq!(decode(&[&input[..at], &input[at..]]), whole, "split at {at} of {:?}", input);
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(decode(&bytes), whole, "one byte at a time");
        whole
    }

    const ANTHROPIC_LIKE: &[u8] = b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n\
event: ping\ndata: {\"type\": \"ping\"}\n\n";

    #[test]
    fn decodes_named_events() {
        assert_eq!(
            assert_split_invariant(ANTHROPIC_LIKE),
            vec![ev("message_start", "{\"type\":\"message_start\"}"), ev("ping", "{\"type\": \"ping\"}")]
        );
    }

    #[test]
    fn cr_lf_and_crlf_terminators_decode_alike() {
        let lf = ANTHROPIC_LIKE.to_vec();
        let crlf: Vec<u8> = lf.iter().flat_map(|&b| if b == b'\n' { b"\r\n".to_vec() } else { vec![b] }).collect();
        let cr: Vec<u8> = lf.iter().map(|&b| if b == b'\n' { b'\r' } else { b }).collect();
        let expected = decode(&[&lf]);
        assert_eq!(assert_split_invariant(&crlf), expected);
        assert_eq!(assert_split_invariant(&cr), expected);
        assert_eq!(assert_split_invariant(b"data: a\r\ndata: b\n\rdata: c\r\r"), vec![ev("", "a\nb"), ev("", "c")]);
    }

    #[test]
    fn joins_data_lines_and_ignores_comments_ids_and_unknown_fields() {
        let input = b": keep-alive\nid: 7\nretry: 10\ndata: one\nfoo: bar\ndata:two\ndata:  three\n\n";
        assert_eq!(assert_split_invariant(input), vec![ev("", "one\ntwo\n three")]);
    }

    #[test]
    fn field_without_colon_and_empty_data() {
        assert_eq!(assert_split_invariant(b"data\n\ndata:\ndata:\n\n"), vec![ev("", ""), ev("", "\n")]);
    }

    #[test]
    fn blank_lines_without_data_dispatch_nothing_and_reset_the_name() {
        assert_eq!(assert_split_invariant(b"\n\nevent: lost\n\ndata: x\n\n"), vec![ev("", "x")]);
    }

    #[test]
    fn name_does_not_leak_into_the_next_event() {
        assert_eq!(assert_split_invariant(b"event: a\ndata: 1\n\ndata: 2\n\n"), vec![ev("a", "1"), ev("", "2")]);
    }

    #[test]
    fn byte_order_mark_is_dropped_only_at_the_start() {
        assert_eq!(assert_split_invariant(b"\xEF\xBB\xBFdata: x\n\n"), vec![ev("", "x")]);
        assert_eq!(decode(&[b"data: x\n\n\xEF\xBB\xBFdata: y\n\n"]), vec![ev("", "x")]);
    }

    #[test]
    fn finish_flushes_an_unterminated_last_event() {
        assert_eq!(assert_split_invariant(b"data: a\n\ndata: b"), vec![ev("", "a"), ev("", "b")]);
        assert_eq!(assert_split_invariant(b"data: a\n\ndata: b\n"), vec![ev("", "a"), ev("", "b")]);
        assert_eq!(decode(&[b": only a comment"]), vec![]);
        assert_eq!(decode(&[b""]), vec![]);
    }

    #[test]
    fn a_lone_cr_at_a_piece_end_is_one_terminator() {
        assert_eq!(decode(&[b"data: a\r", b"\n", b"\r", b"\ndata: b\r\n\r\n"]), vec![ev("", "a"), ev("", "b")]);
        assert_eq!(decode(&[b"data: a\r", b"\r"]), vec![ev("", "a")]);
    }

    #[test]
    fn events_over_the_limit_fail_for_good() {
        let mut decoder = SseDecoder::with_max_event_bytes(16);
        let mut rest: &[u8] = b"data: 0123456789abcdef\n\n";
        assert_eq!(decoder.next_event(&mut rest), Err(SseError::EventTooLarge { limit: 16 }));
        assert_eq!(decoder.next_event(&mut &b"data: x\n\n"[..]), Err(SseError::EventTooLarge { limit: 16 }));
        assert_eq!(decoder.finish(), Err(SseError::EventTooLarge { limit: 16 }));

        let mut carried = SseDecoder::with_max_event_bytes(16);
        let pieces: Vec<&[u8]> = [b"data: 01234".as_slice(), b"56789", b"abcdef"].to_vec();
        assert_eq!(decode_with(&mut carried, &pieces), Err(SseError::EventTooLarge { limit: 16 }));
    }

    #[test]
    fn the_limit_does_not_depend_on_where_a_crlf_was_split() {
        // 14 + 1 + 1 = 16 bytes with each CRLF counted once: within 17 however the CRLFs arrive.
        let input: &[u8] = b"data: 01234567\r\n\r\n";
        let whole = decode_with(&mut SseDecoder::with_max_event_bytes(17), &[input]);
        let split = decode_with(&mut SseDecoder::with_max_event_bytes(17), &[&input[..15], &input[15..]]);
        assert_eq!(whole, Ok(vec![ev("", "01234567")]));
        assert_eq!(split, whole);
        // 16 + 1 + 1 = 18: over, whole or split.
        let over: &[u8] = b"data: 0123456789\r\n\r\n";
        let over_whole = decode_with(&mut SseDecoder::with_max_event_bytes(17), &[over]);
        let over_split = decode_with(&mut SseDecoder::with_max_event_bytes(17), &[&over[..17], &over[17..]]);
        assert_eq!(over_whole, Err(SseError::EventTooLarge { limit: 17 }));
        assert_eq!(over_split, over_whole);
    }

    #[test]
    fn the_limit_is_per_event() {
        let mut decoder = SseDecoder::with_max_event_bytes(16);
        let input = b"data: 0123456\n\n".repeat(100);
        assert_eq!(decode_with(&mut decoder, &[&input]).unwrap().len(), 100);
        let mut exact = SseDecoder::with_max_event_bytes(16);
        assert_eq!(decode_with(&mut exact, &[b"data: 01234567\n\n"]).unwrap(), vec![ev("", "01234567")]);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic generator: the decoder must hold up on any input and any split.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let alphabet = b"data: event:\r\n\n:x\xEF\xBB\xBF";
        for _ in 0..300 {
            let mut input = Vec::new();
            for _ in 0..64 {
                seed = crate::test_fixtures::xorshift(seed);
                input.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let mut decoder = SseDecoder::with_max_event_bytes(32);
            let _ = decode_with(&mut decoder, &[&input[..20], &input[20..]]);
        }
    }
}
