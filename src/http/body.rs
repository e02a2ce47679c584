//! Incremental, zero-copy message body decoding (Content-Length, chunked,
//! read-until-close) for both requests and responses. It owns only framing:
//! it does not buffer payload, enforce timeouts or know about sockets.
//!
//! Chunked parsing is a byte-level state machine so input may be split at any
//! offset without an internal line buffer: the few values a partial size line
//! needs (accumulated size, digit count, line length) live in the state.
//! Lines must end in CRLF; a bare LF is refused because lenient line endings
//! are a known request-smuggling differential between hops.

use std::fmt;
use std::ops::Range;

use super::BodyFraming;

/// Bound on one chunk-size line, extensions included.
const MAX_CHUNK_LINE: usize = 4096;
/// Bound on the whole trailer section, which is read and discarded.
const MAX_TRAILERS: usize = 8192;
/// 16 hex digits is exactly a u64; more could only be padding or overflow.
const MAX_SIZE_DIGITS: u8 = 16;

/// Why a body could not be decoded. Every error is terminal: the decoder
/// keeps returning it and the connection must not be reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// A chunk-size line was empty, non-hex, over 16 digits or badly terminated.
    BadChunkSize,
    /// A chunk-size line (with extensions) exceeded 4 KiB.
    ChunkLineTooLong,
    /// A required CRLF (after chunk data, a trailer line or the body) was missing,
    /// or a trailer line held a control byte.
    BadChunkTerminator,
    /// The trailer section exceeded 8 KiB.
    TrailersTooLarge,
    /// The peer closed before the body was complete.
    Truncated,
    /// The payload exceeded the caller's `max_body`.
    TooLarge,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BodyError::BadChunkSize => "invalid chunk size line",
            BodyError::ChunkLineTooLong => "chunk size line too long",
            BodyError::BadChunkTerminator => "missing CRLF in chunked body",
            BodyError::TrailersTooLarge => "chunked trailers too large",
            BodyError::Truncated => "body truncated by connection close",
            BodyError::TooLarge => "body too large",
        })
    }
}

impl std::error::Error for BodyError {}

/// One decoding step: `consumed` input bytes were used; `data`, if any, is a
/// range of payload bytes within the input slice given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub consumed: usize,
    pub data: Option<Range<usize>>,
}

impl Step {
    const IDLE: Step = Step { consumed: 0, data: None };
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Length { remaining: u64 },
    Chunked(Chunked),
    UntilClose,
    Done,
    Failed(BodyError),
}

/// Position inside a chunked body; every variant can be resumed at any byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunked {
    /// Start of a size line, or inside its hex digits.
    Size {
        value: u64,
        digits: u8,
    },
    /// Whitespace after the digits, which is only legal before a `;`.
    SizeSpace {
        value: u64,
        line_len: usize,
    },
    /// Inside chunk extensions, which are ignored.
    Ext {
        value: u64,
        line_len: usize,
    },
    /// Saw the CR that ends a size line.
    SizeLf {
        value: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// Start of a trailer line, or of the empty line that ends the body.
    TrailerStart {
        total: usize,
    },
    TrailerLine {
        total: usize,
    },
    TrailerLf {
        total: usize,
    },
    EndLf,
    Finished,
}

/// Incremental body decoder for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyDecoder {
    state: State,
    /// Payload bytes produced so far, for `decode_into`'s limit.
    decoded: u64,
}

impl BodyDecoder {
    /// `Empty` and `Length(0)` start out done.
    pub fn new(framing: BodyFraming) -> Self {
        let state = match framing {
            BodyFraming::Empty | BodyFraming::Length(0) => State::Done,
            BodyFraming::Length(n) => State::Length { remaining: n },
            BodyFraming::Chunked => State::Chunked(Chunked::Size { value: 0, digits: 0 }),
            BodyFraming::UntilClose => State::UntilClose,
        };
        BodyDecoder { state, decoded: 0 }
    }

    /// Decodes as much as possible from `input` without copying. Call
    /// repeatedly while it makes progress (consumed > 0 or data.is_some());
    /// Step{consumed:0,data:None} means "need more input" (or done). Bytes
    /// after the end of the body are never consumed.
    pub fn step(&mut self, input: &[u8]) -> Result<Step, BodyError> {
        let result = match &mut self.state {
            State::Length { remaining } => Ok(step_length(remaining, input)),
            State::Chunked(chunked) => step_chunked(chunked, input),
            State::UntilClose => Ok(step_until_close(input)),
            State::Done => Ok(Step::IDLE),
            State::Failed(err) => Err(err.clone()),
        };
        match result {
            Ok(step) => {
                self.after_step(&step);
                Ok(step)
            }
            Err(err) => Err(self.fail(err)),
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The peer closed the connection: Ok for UntilClose (now done) and for
    /// already-done bodies; Err(Truncated) otherwise.
    pub fn on_eof(&mut self) -> Result<(), BodyError> {
        match &self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            State::Failed(err) => Err(err.clone()),
            State::Length { .. } | State::Chunked(_) => Err(self.fail(BodyError::Truncated)),
        }
    }

    /// Convenience for buffered bodies: decode all of `input`, appending
    /// payload to `out`; returns bytes consumed; stops at end of body.
    /// `max_body` bounds the total payload this decoder has produced (across
    /// calls); a Content-Length above it fails before anything is appended.
    pub fn decode_into(&mut self, input: &[u8], out: &mut Vec<u8>, max_body: usize) -> Result<usize, BodyError> {
        let max = u64::try_from(max_body).unwrap_or(u64::MAX);
        if let State::Length { remaining } = self.state
            && self.decoded.saturating_add(remaining) > max
        {
            return Err(self.fail(BodyError::TooLarge));
        }
        let mut pos = 0;
        loop {
            let rest = input.get(pos..).unwrap_or_default();
            let step = self.step(rest)?;
            if self.decoded > max || self.announced_chunk_exceeds(max) {
                return Err(self.fail(BodyError::TooLarge));
            }
            if let Some(range) = &step.data {
                out.extend_from_slice(rest.get(range.clone()).unwrap_or_default());
            }
            if step.consumed == 0 && step.data.is_none() {
                return Ok(pos);
            }
            pos += step.consumed;
        }
    }

    /// A chunk whose announced size alone would pass `max`: refused as soon as its size line is
    /// read, not after the client has sent (or stalled in) the bytes.
    fn announced_chunk_exceeds(&self, max: u64) -> bool {
        matches!(self.state, State::Chunked(Chunked::Data { remaining }) if self.decoded.saturating_add(remaining) > max)
    }

    fn after_step(&mut self, step: &Step) {
        if let Some(range) = &step.data {
            self.decoded = self.decoded.saturating_add(range.len() as u64);
        }
        if matches!(self.state, State::Length { remaining: 0 } | State::Chunked(Chunked::Finished)) {
            self.state = State::Done;
        }
    }

    fn fail(&mut self, err: BodyError) -> BodyError {
        self.state = State::Failed(err.clone());
        err
    }
}

fn step_length(remaining: &mut u64, input: &[u8]) -> Step {
    let n = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
    if n == 0 {
        return Step::IDLE;
    }
    *remaining -= n as u64;
    Step { consumed: n, data: Some(0..n) }
}

fn step_until_close(input: &[u8]) -> Step {
    if input.is_empty() {
        return Step::IDLE;
    }
    Step { consumed: input.len(), data: Some(0..input.len()) }
}

/// Walks framing bytes one at a time and returns as soon as a run of payload
/// is available, so data is always handed out as one contiguous range.
fn step_chunked(state: &mut Chunked, input: &[u8]) -> Result<Step, BodyError> {
    let mut pos = 0;
    loop {
        match *state {
            Chunked::Finished => break,
            Chunked::Data { remaining } => {
                let avail = input.len() - pos;
                let n = usize::try_from(remaining).map_or(avail, |r| r.min(avail));
                if n == 0 {
                    break;
                }
                let left = remaining - n as u64;
                *state = if left == 0 { Chunked::DataCr } else { Chunked::Data { remaining: left } };
                return Ok(Step { consumed: pos + n, data: Some(pos..pos + n) });
            }
            _ => {
                if let Some((used, next)) = plain_size_line(*state, &input[pos..]) {
                    *state = next;
                    pos += used;
                    continue;
                }
                let Some(&byte) = input.get(pos) else { break };
                *state = next_state(*state, byte)?;
                pos += 1;
            }
        }
    }
    Ok(Step { consumed: pos, data: None })
}

/// The framing between two chunks as providers write it, `\r\n` (after the last chunk's data)
/// then `<hex size>\r\n` with no extension, read in one go when it is all in `input`: the bytes
/// used and the state after them. Anything else (an extension or spaces, a line split between
/// reads, too many digits, the last chunk) is `None`, for the byte-at-a-time path, which judges it
/// exactly as before. A streamed event is one chunk, and walking its framing a byte at a time was
/// ~270 instructions an event.
fn plain_size_line(state: Chunked, input: &[u8]) -> Option<(usize, Chunked)> {
    let start = match state {
        Chunked::DataCr if input.starts_with(b"\r\n") => 2,
        Chunked::Size { value: 0, digits: 0 } => 0,
        _ => return None,
    };
    let digits = input[start..].iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > usize::from(MAX_SIZE_DIGITS) {
        return None;
    }
    let end = start + digits;
    if input.get(end..end + 2) != Some(b"\r\n") {
        return None;
    }
    let size = input[start..end].iter().fold(0u64, |size, &b| (size << 4) | u64::from(hex_value(b).unwrap_or(0)));
    (size > 0).then_some((end + 2, Chunked::Data { remaining: size }))
}

fn next_state(state: Chunked, byte: u8) -> Result<Chunked, BodyError> {
    match state {
        Chunked::Size { value, digits } => size_digit(value, digits, byte),
        Chunked::SizeSpace { value, line_len } => size_space(value, line_len, byte),
        Chunked::Ext { value, line_len } => extension(value, line_len, byte),
        Chunked::SizeLf { value } => size_lf(value, byte),
        Chunked::DataCr => expect(byte, b'\r', Chunked::DataLf),
        Chunked::DataLf => expect(byte, b'\n', Chunked::Size { value: 0, digits: 0 }),
        Chunked::TrailerStart { .. } if byte == b'\r' => Ok(Chunked::EndLf),
        Chunked::TrailerStart { total } | Chunked::TrailerLine { total } => trailer_byte(total, byte),
        Chunked::TrailerLf { total } => expect(byte, b'\n', Chunked::TrailerStart { total }),
        Chunked::EndLf => expect(byte, b'\n', Chunked::Finished),
        // Callers never feed bytes in these states; refusing keeps it total.
        Chunked::Data { .. } | Chunked::Finished => Err(BodyError::BadChunkTerminator),
    }
}

fn size_digit(value: u64, digits: u8, byte: u8) -> Result<Chunked, BodyError> {
    if let Some(d) = hex_value(byte) {
        if digits >= MAX_SIZE_DIGITS {
            return Err(BodyError::BadChunkSize);
        }
        return Ok(Chunked::Size { value: (value << 4) | u64::from(d), digits: digits + 1 });
    }
    if digits == 0 {
        return Err(BodyError::BadChunkSize);
    }
    let line_len = usize::from(digits) + 1;
    match byte {
        b'\r' => Ok(Chunked::SizeLf { value }),
        b';' => Ok(Chunked::Ext { value, line_len }),
        b' ' | b'\t' => Ok(Chunked::SizeSpace { value, line_len }),
        _ => Err(BodyError::BadChunkSize),
    }
}

fn size_space(value: u64, line_len: usize, byte: u8) -> Result<Chunked, BodyError> {
    let line_len = grow_line(line_len)?;
    match byte {
        b' ' | b'\t' => Ok(Chunked::SizeSpace { value, line_len }),
        b';' => Ok(Chunked::Ext { value, line_len }),
        _ => Err(BodyError::BadChunkSize),
    }
}

fn extension(value: u64, line_len: usize, byte: u8) -> Result<Chunked, BodyError> {
    if byte == b'\r' {
        return Ok(Chunked::SizeLf { value });
    }
    if !is_field_byte(byte) {
        return Err(BodyError::BadChunkSize);
    }
    Ok(Chunked::Ext { value, line_len: grow_line(line_len)? })
}

fn size_lf(value: u64, byte: u8) -> Result<Chunked, BodyError> {
    match (byte, value) {
        (b'\n', 0) => Ok(Chunked::TrailerStart { total: 0 }),
        (b'\n', remaining) => Ok(Chunked::Data { remaining }),
        _ => Err(BodyError::BadChunkSize),
    }
}

fn trailer_byte(total: usize, byte: u8) -> Result<Chunked, BodyError> {
    // CRLF bytes count too, so an endless run of tiny lines is still bounded.
    let total = total + 1;
    if total > MAX_TRAILERS {
        return Err(BodyError::TrailersTooLarge);
    }
    match byte {
        b'\r' => Ok(Chunked::TrailerLf { total: total + 1 }),
        b if is_field_byte(b) => Ok(Chunked::TrailerLine { total }),
        _ => Err(BodyError::BadChunkTerminator),
    }
}

fn grow_line(line_len: usize) -> Result<usize, BodyError> {
    let line_len = line_len + 1;
    if line_len > MAX_CHUNK_LINE {
        return Err(BodyError::ChunkLineTooLong);
    }
    Ok(line_len)
}

fn expect(byte: u8, want: u8, next: Chunked) -> Result<Chunked, BodyError> {
    if byte == want { Ok(next) } else { Err(BodyError::BadChunkTerminator) }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// HTAB, visible ASCII, space and obs-text: what may appear inside a field line.
fn is_field_byte(byte: u8) -> bool {
    byte == b'\t' || (byte >= b' ' && byte != 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"5;name=val\r\nhello\r\n6\r\n world\r\nA;a;b=\"q\" \r\n0123456789\r\n0;last\r\nX-Trailer: one\r\nX-Other: two\r\n\r\n";
    const PAYLOAD: &[u8] = b"hello world0123456789";
    const NEXT: &[u8] = b"GET /next HTTP/1.1\r\n";

    /// Feeds pieces like a connection would, keeping unconsumed bytes for the
    /// next read; returns the payload and the bytes left once the body ended.
    fn feed(dec: &mut BodyDecoder, pieces: &[&[u8]]) -> Result<(Vec<u8>, Vec<u8>), BodyError> {
        let mut payload = Vec::new();
        let mut pending = Vec::new();
        for piece in pieces {
            pending.extend_from_slice(piece);
            let mut pos = 0;
            loop {
                let step = dec.step(&pending[pos..])?;
                assert!(step.consumed <= pending.len() - pos);
                if let Some(r) = &step.data {
                    assert!(!r.is_empty() && r.end <= step.consumed);
                    payload.extend_from_slice(&pending[pos + r.start..pos + r.end]);
                }
                if step.consumed == 0 && step.data.is_none() {
                    break;
                }
                pos += step.consumed;
            }
            pending.drain(..pos);
        }
        Ok((payload, pending))
    }

    fn chunked() -> BodyDecoder {
        BodyDecoder::new(BodyFraming::Chunked)
    }

    fn whole() -> Vec<u8> {
        [BODY, NEXT].concat()
    }

    #[test]
    fn chunked_in_one_piece() {
        let mut dec = chunked();
        let (payload, rest) = feed(&mut dec, &[&whole()]).unwrap();
        assert_eq!(payload, PAYLOAD);
        assert_eq!(rest, NEXT);
        assert!(dec.is_done());
        assert_eq!(dec.step(NEXT), Ok(Step::IDLE));
        assert_eq!(dec.on_eof(), Ok(()));
    }

    #[test]
    fn chunked_split_at_every_offset() {
        let all = whole();
        for cut in 0..=all.len() {
            let mut dec = chunked();
            let (payload, rest) = feed(&mut dec, &[&all[..cut], &all[cut..]]).unwrap();
            assert_eq!(payload, PAYLOAD, "cut at {cut}");
            assert_eq!(rest, NEXT, "cut at {cut}");
            assert!(dec.is_done());
        }
    }

    #[test]
    fn chunked_byte_by_byte() {
        let all = whole();
        let pieces: Vec<&[u8]> = all.chunks(1).collect();
        let mut dec = chunked();
        let (payload, rest) = feed(&mut dec, &pieces).unwrap();
        assert_eq!(payload, PAYLOAD);
        assert_eq!(rest, NEXT);
        assert!(dec.is_done());
    }

    #[test]
    fn not_done_until_final_crlf() {
        let mut dec = chunked();
        feed(&mut dec, &[&BODY[..BODY.len() - 1]]).unwrap();
        assert!(!dec.is_done());
        assert_eq!(dec.on_eof(), Err(BodyError::Truncated));
    }

    #[test]
    fn minimal_and_uppercase_hex() {
        let mut dec = chunked();
        let (payload, _) = feed(&mut dec, &[b"0\r\n\r\n"]).unwrap();
        assert!(payload.is_empty() && dec.is_done());
        let mut dec = chunked();
        let body = [b"1A\r\n".as_slice(), &[b'x'; 26], b"\r\n0\r\n\r\n"].concat();
        let (payload, _) = feed(&mut dec, &[&body]).unwrap();
        assert_eq!(payload, vec![b'x'; 26]);
        let mut dec = chunked();
        feed(&mut dec, &[b"0000000000000001\r\nz\r\n0 ;x\r\n\r\n"]).unwrap();
        assert!(dec.is_done());
    }

    #[test]
    fn plain_chunk_lines_read_whole_decode_as_byte_by_byte() {
        // As a provider streams events: one chunk each, lowercase and uppercase sizes, no extensions.
        let event = |n: usize| format!("data: {{\"n\":{n:<width$}}}\n\n", width = n * 7);
        let mut body = Vec::new();
        let mut payload = Vec::new();
        for n in 0..40 {
            let data = event(n);
            let size = if n % 2 == 0 { format!("{:x}", data.len()) } else { format!("{:X}", data.len()) };
            body.extend_from_slice(format!("{size}\r\n{data}\r\n").as_bytes());
            payload.extend_from_slice(data.as_bytes());
        }
        body.extend_from_slice(b"0\r\n\r\n");
        let mut whole = chunked();
        assert_eq!(feed(&mut whole, &[&body]).unwrap(), (payload.clone(), Vec::new()));
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        let mut by_byte = chunked();
        assert_eq!(feed(&mut by_byte, &bytes).unwrap(), (payload, Vec::new()));
        assert!(whole.is_done() && by_byte.is_done());
    }

    #[test]
    fn largest_chunk_size_is_accepted() {
        let mut dec = chunked();
        let step = dec.step(b"ffffffffffffffff\r\nab").unwrap();
        assert_eq!(step, Step { consumed: 20, data: Some(18..20) });
        assert_eq!(dec.on_eof(), Err(BodyError::Truncated));
    }

    fn chunked_error(input: &[u8]) -> BodyError {
        let mut dec = chunked();
        let err = feed(&mut dec, &[input]).expect_err("should fail");
        // Errors are sticky so a caller cannot resume a desynchronised stream.
        assert_eq!(dec.step(b"0\r\n\r\n"), Err(err.clone()));
        assert_eq!(dec.on_eof(), Err(err.clone()));
        assert!(!dec.is_done());
        err
    }

    #[test]
    fn bad_chunk_sizes() {
        for input in [
            &b"\r\n"[..],
            b";ext\r\n",
            b"-5\r\n",
            b"+5\r\n",
            b" 5\r\n",
            b"0x5\r\n",
            b"g\r\n",
            b"11111111111111111\r\n",
            b"5 x\r\n",
            b"5 \r\n",
            b"5\n",
            b"5\rx",
            b"5;a\nb\r\n",
            b"5;a\x00\r\n",
        ] {
            assert_eq!(chunked_error(input), BodyError::BadChunkSize, "{input:?}");
        }
    }

    #[test]
    fn chunk_line_too_long() {
        let mut line = b"5;".to_vec();
        line.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE));
        assert_eq!(chunked_error(&line), BodyError::ChunkLineTooLong);
        let mut spaces = b"5".to_vec();
        spaces.extend(std::iter::repeat_n(b' ', MAX_CHUNK_LINE));
        assert_eq!(chunked_error(&spaces), BodyError::ChunkLineTooLong);
        let mut ok = b"5;".to_vec();
        ok.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE - 2));
        ok.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        let mut dec = chunked();
        assert_eq!(feed(&mut dec, &[&ok]).unwrap().0, b"hello");
    }

    #[test]
    fn bad_chunk_terminators() {
        for input in [
            &b"5\r\nhelloX"[..],
            b"5\r\nhello\rX",
            b"5\r\nhello\n",
            b"5\r\nhello\r\r",
            b"0\r\n\n",
            b"0\r\n\rX",
            b"0\r\nX: a\n",
            b"0\r\nX: a\rb",
            b"0\r\nX: \x01\r\n\r\n",
        ] {
            assert_eq!(chunked_error(input), BodyError::BadChunkTerminator, "{input:?}");
        }
    }

    #[test]
    fn trailers_are_bounded() {
        let mut big = b"0\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'v', MAX_TRAILERS));
        assert_eq!(chunked_error(&big), BodyError::TrailersTooLarge);
        let mut lines = b"0\r\n".to_vec();
        for _ in 0..MAX_TRAILERS {
            lines.extend_from_slice(b"a\r\n");
        }
        assert_eq!(chunked_error(&lines), BodyError::TrailersTooLarge);
        let mut fits = b"0\r\nX: ".to_vec();
        fits.extend(std::iter::repeat_n(b'v', 4000));
        fits.extend_from_slice(b"\r\n\r\n");
        let mut dec = chunked();
        feed(&mut dec, &[&fits]).unwrap();
        assert!(dec.is_done());
    }

    #[test]
    fn length_body() {
        let mut dec = BodyDecoder::new(BodyFraming::Length(5));
        assert_eq!(dec.step(b"he"), Ok(Step { consumed: 2, data: Some(0..2) }));
        assert!(!dec.is_done());
        assert_eq!(dec.step(b""), Ok(Step::IDLE));
        assert_eq!(dec.step(b"lloEXTRA"), Ok(Step { consumed: 3, data: Some(0..3) }));
        assert!(dec.is_done());
        assert_eq!(dec.step(b"EXTRA"), Ok(Step::IDLE));
        assert_eq!(dec.on_eof(), Ok(()));
    }

    #[test]
    fn length_truncated() {
        let mut dec = BodyDecoder::new(BodyFraming::Length(5));
        dec.step(b"abc").unwrap();
        assert_eq!(dec.on_eof(), Err(BodyError::Truncated));
        assert_eq!(dec.step(b"de"), Err(BodyError::Truncated));
    }

    #[test]
    fn empty_bodies_start_done() {
        for framing in [BodyFraming::Empty, BodyFraming::Length(0)] {
            let mut dec = BodyDecoder::new(framing);
            assert!(dec.is_done());
            assert_eq!(dec.step(b"next"), Ok(Step::IDLE));
            assert_eq!(dec.on_eof(), Ok(()));
        }
    }

    #[test]
    fn until_close_body() {
        let mut dec = BodyDecoder::new(BodyFraming::UntilClose);
        assert_eq!(dec.step(b"abc"), Ok(Step { consumed: 3, data: Some(0..3) }));
        assert_eq!(dec.step(b""), Ok(Step::IDLE));
        assert!(!dec.is_done());
        assert_eq!(dec.on_eof(), Ok(()));
        assert!(dec.is_done());
        assert_eq!(dec.step(b"late"), Ok(Step::IDLE));
    }

    #[test]
    fn decode_into_collects_and_stops() {
        let all = whole();
        let mut dec = chunked();
        let mut out = Vec::new();
        let used = dec.decode_into(&all, &mut out, PAYLOAD.len()).unwrap();
        assert_eq!(out, PAYLOAD);
        assert_eq!(used, BODY.len());
        let mut dec = chunked();
        let mut out = Vec::new();
        let first = dec.decode_into(&all[..20], &mut out, 1024).unwrap();
        let second = dec.decode_into(&all[first..], &mut out, 1024).unwrap();
        assert_eq!(first + second, BODY.len());
        assert_eq!(out, PAYLOAD);
    }

    #[test]
    fn decode_into_limits() {
        let mut dec = chunked();
        let mut out = Vec::new();
        assert_eq!(dec.decode_into(BODY, &mut out, PAYLOAD.len() - 1), Err(BodyError::TooLarge));
        assert!(out.len() < PAYLOAD.len());
        assert_eq!(dec.step(b"x"), Err(BodyError::TooLarge));

        let mut dec = BodyDecoder::new(BodyFraming::Length(10));
        let mut out = Vec::new();
        assert_eq!(dec.decode_into(b"", &mut out, 9), Err(BodyError::TooLarge));
        assert!(out.is_empty());
        let mut dec = BodyDecoder::new(BodyFraming::Length(10));
        assert_eq!(dec.decode_into(b"0123456789xx", &mut out, 10), Ok(10));
        assert_eq!(out, b"0123456789");

        let mut dec = BodyDecoder::new(BodyFraming::UntilClose);
        let mut out = Vec::new();
        assert_eq!(dec.decode_into(b"abc", &mut out, 5), Ok(3));
        assert_eq!(dec.decode_into(b"def", &mut out, 5), Err(BodyError::TooLarge));
        // A chunk announced larger than the limit fails at its size line, before any of its data.
        let mut dec = BodyDecoder::new(BodyFraming::Chunked);
        let mut out = Vec::new();
        assert_eq!(dec.decode_into(b"FFFFFFF\r\n", &mut out, 1024), Err(BodyError::TooLarge));
        assert!(out.is_empty());
    }

    #[test]
    fn display_messages() {
        assert_eq!(BodyError::Truncated.to_string(), "body truncated by connection close");
        assert_eq!(BodyError::TooLarge.to_string(), "body too large");
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Mostly framing-relevant bytes so the machine reaches deep states.
    fn garbage(rng: &mut XorShift, len: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"0123456789abcdefABCDEF\r\n\r\n;= \t\"xX:\x00\x7f\xff";
        (0..len)
            .map(|_| if rng.below(8) == 0 { rng.next() as u8 } else { ALPHABET[rng.below(ALPHABET.len())] })
            .collect()
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..3000 {
            let len = rng.below(64);
            let mut input = garbage(&mut rng, len);
            if round % 3 == 0 {
                let at = rng.below(BODY.len());
                input.splice(0..0, BODY[..at].iter().copied());
            }
            let framing = match round % 4 {
                0 | 1 => BodyFraming::Chunked,
                2 => BodyFraming::Length(rng.below(40) as u64),
                _ => BodyFraming::UntilClose,
            };
            let mut dec = BodyDecoder::new(framing);
            let pieces: Vec<&[u8]> = input.chunks(1 + rng.below(7)).collect();
            let _ = feed(&mut dec, &pieces);
            let _ = dec.on_eof();
            let mut dec = BodyDecoder::new(framing);
            let _ = dec.decode_into(&input, &mut Vec::new(), rng.below(50));
        }
    }
}
