//! Decoding of `application/vnd.amazon.eventstream` bodies (what Bedrock's ConverseStream and
//! InvokeModelWithResponseStream answer with): frames fed in arbitrary pieces, both CRCs checked, headers
//! read in place, plus the Bedrock helpers for a frame's kind and for a `chunk` event's base64 `bytes`.
//! It does not interpret event JSON, map exceptions to gateway errors or encode frames; the Bedrock
//! adapter does the first two and nothing in the gateway needs the third.
//!
//! Wire format of one frame (all integers big-endian):
//!
//! ```text
//! total length u32 | headers length u32 | prelude CRC32 (of the 8 bytes before) u32
//! headers: { name length u8 | name | value type u8 | value } ...
//! payload
//! message CRC32 (of every byte before it) u32
//! ```

use std::borrow::Cow;
use std::fmt;

/// Bytes before the headers: total length, headers length, prelude CRC.
const PRELUDE_LEN: usize = 12;
/// The trailing message CRC.
const MESSAGE_CRC_LEN: usize = 4;
/// A frame with no headers and no payload.
const MIN_FRAME_LEN: usize = PRELUDE_LEN + MESSAGE_CRC_LEN;

/// Default bound on one frame. AWS documents 16 MiB as the largest event-stream message; anything
/// bigger is corruption or abuse, and refusing it before buffering caps what one frame can allocate.
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// Why a stream cannot be decoded. Every variant is fatal: after a bad frame the byte boundaries of
/// later frames are unknown, so the stream cannot be resynchronised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventStreamError {
    /// The prelude CRC does not match its first 8 bytes.
    PreludeCrcMismatch { expected: u32, computed: u32 },
    /// The message CRC does not match the bytes before it.
    MessageCrcMismatch { expected: u32, computed: u32 },
    /// The total length is below the 16 bytes of prelude and message CRC.
    FrameTooShort { total_len: u32 },
    /// The total length exceeds the decoder's configured maximum.
    FrameTooLarge { total_len: u32, max: usize },
    /// The headers section does not fit in the frame beside the prelude and message CRC.
    HeadersLengthPastFrame { headers_len: u32, total_len: u32 },
    /// A header name is empty or runs past the end of the headers section.
    InvalidHeaderNameLength,
    /// A header value type byte outside the ten defined types (0..=9).
    InvalidHeaderValueType(u8),
    /// A header value, or the length prefix of a string or bytes value, runs past the end of the
    /// headers section.
    HeaderValueCutOff,
    /// A header name or string value is not UTF-8.
    InvalidUtf8,
    /// The stream ended inside a frame.
    Truncated { buffered: usize },
}

impl fmt::Display for EventStreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PreludeCrcMismatch { expected, computed } => {
                write!(f, "event-stream prelude CRC mismatch (frame says {expected:#010x}, computed {computed:#010x})")
            }
            Self::MessageCrcMismatch { expected, computed } => {
                write!(f, "event-stream message CRC mismatch (frame says {expected:#010x}, computed {computed:#010x})")
            }
            Self::FrameTooShort { total_len } => write!(f, "event-stream frame length {total_len} is below 16"),
            Self::FrameTooLarge { total_len, max } => {
                write!(f, "event-stream frame length {total_len} exceeds the maximum of {max}")
            }
            Self::HeadersLengthPastFrame { headers_len, total_len } => {
                write!(f, "event-stream headers length {headers_len} does not fit a frame of {total_len} bytes")
            }
            Self::InvalidHeaderNameLength => f.write_str("event-stream header name is empty or runs past the headers"),
            Self::InvalidHeaderValueType(t) => write!(f, "event-stream header value type {t} is not defined"),
            Self::HeaderValueCutOff => f.write_str("event-stream header value runs past the headers"),
            Self::InvalidUtf8 => f.write_str("event-stream header name or string value is not UTF-8"),
            Self::Truncated { buffered } => {
                write!(f, "event stream ended inside a frame ({buffered} bytes of it received)")
            }
        }
    }
}

impl std::error::Error for EventStreamError {}

/// Incremental decoder: [`push`](Self::push) bytes as they arrive, then call
/// [`next_frame`](Self::next_frame) until it returns `Ok(None)`; at the end of the body call
/// [`finish`](Self::finish) to detect a stream cut inside a frame.
///
/// Frames borrow the decoder's buffer (no per-frame allocation). The buffer holds the bytes not yet
/// returned in a frame plus, because compaction is amortised, at most as many already returned; a
/// caller that drains after every push keeps it near one frame.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// First byte of `buf` not yet returned in a frame; compacted on the next push.
    start: usize,
    state: State,
    max_frame_len: usize,
}

/// Where the decoder is within the current frame.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Waiting for the 12 prelude bytes of the next frame.
    AwaitPrelude,
    /// The prelude is checked; waiting until all `total_len` bytes of the frame are buffered.
    AwaitFrame { total_len: usize, headers_len: usize },
    /// A frame was rejected; every later call reports the same error.
    Failed(EventStreamError),
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder accepting frames up to [`DEFAULT_MAX_FRAME_LEN`].
    pub fn new() -> Self {
        Self::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }

    /// A decoder that rejects any frame longer than `max_frame_len` bytes (at least 16 is enforced).
    pub fn with_max_frame_len(max_frame_len: usize) -> Self {
        Self { buf: Vec::new(), start: 0, state: State::AwaitPrelude, max_frame_len: max_frame_len.max(MIN_FRAME_LEN) }
    }

    /// Appends received bytes. Ignored once the stream has failed, so a broken upstream cannot make
    /// the buffer grow.
    pub fn push(&mut self, bytes: &[u8]) {
        if matches!(self.state, State::Failed(_)) {
            return;
        }
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed, or the error that ended the
    /// stream. Both CRCs and every header are verified before a frame is returned.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, EventStreamError> {
        loop {
            match &self.state {
                State::Failed(error) => return Err(error.clone()),
                State::AwaitPrelude => {
                    if !self.advance_past_prelude()? {
                        return Ok(None);
                    }
                }
                State::AwaitFrame { total_len, headers_len } => {
                    let (total_len, headers_len) = (*total_len, *headers_len);
                    return self.take_frame(total_len, headers_len);
                }
            }
        }
    }

    /// Checks that the stream ended on a frame boundary. Call it at the end of the body, after
    /// [`next_frame`](Self::next_frame) returned `Ok(None)`.
    pub fn finish(&self) -> Result<(), EventStreamError> {
        match &self.state {
            State::Failed(error) => Err(error.clone()),
            _ if self.buffered_len() == 0 => Ok(()),
            _ => Err(EventStreamError::Truncated { buffered: self.buffered_len() }),
        }
    }

    /// Bytes received but not yet returned in a frame.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether the stream has failed (every later call returns the error).
    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed(_))
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Drops bytes already handed out in frames, once they are at least as many as the bytes still
    /// pending: only the unfinished frame moves, and tiny pushes do not move it every time.
    fn compact(&mut self) {
        if self.start > 0 && self.start >= self.buffered_len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Moves from `AwaitPrelude` to `AwaitFrame` when 12 bytes are there; `Ok(false)` if they are not.
    fn advance_past_prelude(&mut self) -> Result<bool, EventStreamError> {
        let Some(prelude) = self.pending().get(..PRELUDE_LEN) else {
            return Ok(false);
        };
        match check_prelude(prelude, self.max_frame_len) {
            Ok((total_len, headers_len)) => {
                self.state = State::AwaitFrame { total_len, headers_len };
                Ok(true)
            }
            Err(error) => Err(self.fail(error)),
        }
    }

    /// Returns the frame once all its bytes are buffered, after verifying it.
    fn take_frame(&mut self, total_len: usize, headers_len: usize) -> Result<Option<Frame<'_>>, EventStreamError> {
        let Some(bytes) = self.pending().get(..total_len) else {
            return Ok(None);
        };
        if let Err(error) = check_frame(bytes, headers_len) {
            return Err(self.fail(error));
        }
        let frame_start = self.start;
        self.start += total_len;
        self.state = State::AwaitPrelude;
        Ok(Some(Frame::from_checked(&self.buf[frame_start..frame_start + total_len], headers_len)))
    }

    fn fail(&mut self, error: EventStreamError) -> EventStreamError {
        self.state = State::Failed(error.clone());
        // The buffered bytes can never become a frame; release them.
        self.buf = Vec::new();
        self.start = 0;
        error
    }
}

/// Validates the 12 prelude bytes; returns (total length, headers length).
fn check_prelude(prelude: &[u8], max_frame_len: usize) -> Result<(usize, usize), EventStreamError> {
    let total = be_u32(prelude, 0);
    let headers = be_u32(prelude, 4);
    let expected = be_u32(prelude, 8);
    let computed = crc32(&prelude[..8]);
    if expected != computed {
        return Err(EventStreamError::PreludeCrcMismatch { expected, computed });
    }
    // u32 always fits usize on the 32- and 64-bit targets Corelay builds for.
    let (total_len, headers_len) = (total as usize, headers as usize);
    if total_len < MIN_FRAME_LEN {
        return Err(EventStreamError::FrameTooShort { total_len: total });
    }
    if total_len > max_frame_len {
        return Err(EventStreamError::FrameTooLarge { total_len: total, max: max_frame_len });
    }
    if headers_len > total_len - MIN_FRAME_LEN {
        return Err(EventStreamError::HeadersLengthPastFrame { headers_len: headers, total_len: total });
    }
    Ok((total_len, headers_len))
}

/// Validates a whole frame whose prelude already passed [`check_prelude`].
///
/// Headers are checked before the message CRC. Nothing leaves the decoder unless both pass, so the
/// order only decides which error names a frame that is broken twice; headers first names the
/// structural defect, which is what the shared AWS test vectors (edited without recomputing the CRC)
/// expect, and the header walk is bounds-checked so it is safe on unverified bytes.
fn check_frame(frame: &[u8], headers_len: usize) -> Result<(), EventStreamError> {
    let headers = &frame[PRELUDE_LEN..PRELUDE_LEN + headers_len];
    let mut reader = Reader::new(headers);
    while !reader.is_empty() {
        read_header(&mut reader)?;
    }
    let crc_at = frame.len() - MESSAGE_CRC_LEN;
    let expected = be_u32(frame, crc_at);
    let computed = crc32(&frame[..crc_at]);
    if expected != computed {
        return Err(EventStreamError::MessageCrcMismatch { expected, computed });
    }
    Ok(())
}

/// Big-endian u32 at `at`; callers have checked the length.
fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// One verified frame, borrowing the decoder's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    headers: &'a [u8],
    payload: &'a [u8],
}

impl<'a> Frame<'a> {
    fn from_checked(frame: &'a [u8], headers_len: usize) -> Self {
        let headers_end = PRELUDE_LEN + headers_len;
        let payload_end = frame.len() - MESSAGE_CRC_LEN;
        Self { headers: &frame[PRELUDE_LEN..headers_end], payload: &frame[headers_end..payload_end] }
    }

    /// The frame's headers in wire order.
    pub fn headers(&self) -> Headers<'a> {
        Headers { reader: Reader::new(self.headers) }
    }

    /// The first header named `name` (names are case-sensitive on the wire).
    pub fn header(&self, name: &str) -> Option<HeaderValue<'a>> {
        self.headers().find(|h| h.name == name).map(|h| h.value)
    }

    /// The first header named `name` if it is a string.
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        match self.header(name)? {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The payload bytes (JSON for every Bedrock frame).
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The frame's size on the wire, prelude and CRCs included.
    pub fn total_len(&self) -> usize {
        MIN_FRAME_LEN + self.headers.len() + self.payload.len()
    }

    /// The size of the headers section.
    pub fn headers_len(&self) -> usize {
        self.headers.len()
    }

    /// `:message-type`: `event`, `exception` or `error`.
    pub fn message_type(&self) -> Option<&'a str> {
        self.header_str(":message-type")
    }

    /// `:event-type` of an event frame (`messageStart`, `contentBlockDelta`, `chunk`, ...).
    pub fn event_type(&self) -> Option<&'a str> {
        self.header_str(":event-type")
    }

    /// `:exception-type` of an exception frame (`throttlingException`, ...).
    pub fn exception_type(&self) -> Option<&'a str> {
        self.header_str(":exception-type")
    }

    /// `:error-code` of an error frame.
    pub fn error_code(&self) -> Option<&'a str> {
        self.header_str(":error-code")
    }

    /// `:error-message` of an error frame.
    pub fn error_message(&self) -> Option<&'a str> {
        self.header_str(":error-message")
    }

    /// `:content-type` (`application/json` on Bedrock).
    pub fn content_type(&self) -> Option<&'a str> {
        self.header_str(":content-type")
    }

    /// What the frame is, from `:message-type` and the header that goes with it.
    pub fn kind(&self) -> FrameKind<'a> {
        match self.message_type() {
            Some("event") => self.event_type().map_or(FrameKind::Unrecognised, FrameKind::Event),
            Some("exception") => self.exception_type().map_or(FrameKind::Unrecognised, FrameKind::Exception),
            Some("error") => match self.error_code() {
                Some(code) => FrameKind::Error { code, message: self.error_message().unwrap_or("") },
                None => FrameKind::Unrecognised,
            },
            _ => FrameKind::Unrecognised,
        }
    }

    /// For an InvokeModelWithResponseStream `chunk` event: the model's own event JSON, i.e. the
    /// payload's base64 `bytes` field decoded, appended to `out` (reused across frames by the caller).
    pub fn decode_chunk_bytes(&self, out: &mut Vec<u8>) -> Result<(), ChunkError> {
        decode_chunk_bytes(self.payload, out)
    }

    /// For an exception frame: the `message` (Bedrock) or `Message` (other AWS services) field of
    /// its JSON payload.
    pub fn exception_message(&self) -> Option<String> {
        exception_message(self.payload)
    }
}

/// A frame's role in the stream, as Bedrock uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind<'a> {
    /// A normal event; the value is `:event-type`.
    Event(&'a str),
    /// A modelled error (the service's exception shapes); the value is `:exception-type`, e.g.
    /// `throttlingException`, `modelStreamErrorException`. The payload is JSON with `message`.
    Exception(&'a str),
    /// An unmodelled error, with `:error-code` and `:error-message` headers.
    Error { code: &'a str, message: &'a str },
    /// `:message-type` missing or unknown, or the header that goes with it missing. The adapter
    /// should treat this as a protocol error.
    Unrecognised,
}

/// One header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: &'a str,
    pub value: HeaderValue<'a>,
}

/// A header value; the ten types of the event-stream format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderValue<'a> {
    /// Types 0 (true) and 1 (false): the value is in the type byte.
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Short(i16),
    /// Type 4.
    Int(i32),
    /// Type 5.
    Long(i64),
    /// Type 6: u16 length, then bytes.
    Bytes(&'a [u8]),
    /// Type 7: u16 length, then UTF-8.
    String(&'a str),
    /// Type 8: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9: 16 bytes.
    Uuid([u8; 16]),
}

/// Iterator over a verified frame's headers.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    reader: Reader<'a>,
}

impl<'a> Iterator for Headers<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        if self.reader.is_empty() {
            return None;
        }
        // The frame was verified when it was decoded, so this cannot fail; stop rather than panic.
        read_header(&mut self.reader).ok()
    }
}

/// Bounds-checked cursor over the headers section.
#[derive(Debug, Clone)]
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let taken = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(taken)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

/// Reads one header; every length is checked against the end of the headers section.
fn read_header<'a>(reader: &mut Reader<'a>) -> Result<Header<'a>, EventStreamError> {
    let [name_len] = reader.array::<1>().ok_or(EventStreamError::InvalidHeaderNameLength)?;
    if name_len == 0 {
        return Err(EventStreamError::InvalidHeaderNameLength);
    }
    let name = reader.take(usize::from(name_len)).ok_or(EventStreamError::InvalidHeaderNameLength)?;
    let name = std::str::from_utf8(name).map_err(|_| EventStreamError::InvalidUtf8)?;
    let [value_type] = reader.array::<1>().ok_or(EventStreamError::HeaderValueCutOff)?;
    let value = read_value(reader, value_type)?;
    Ok(Header { name, value })
}

fn read_value<'a>(reader: &mut Reader<'a>, value_type: u8) -> Result<HeaderValue<'a>, EventStreamError> {
    let cut = EventStreamError::HeaderValueCutOff;
    Ok(match value_type {
        0 => HeaderValue::Bool(true),
        1 => HeaderValue::Bool(false),
        2 => HeaderValue::Byte(i8::from_be_bytes(reader.array().ok_or(cut)?)),
        3 => HeaderValue::Short(i16::from_be_bytes(reader.array().ok_or(cut)?)),
        4 => HeaderValue::Int(i32::from_be_bytes(reader.array().ok_or(cut)?)),
        5 => HeaderValue::Long(i64::from_be_bytes(reader.array().ok_or(cut)?)),
        6 => HeaderValue::Bytes(read_prefixed(reader)?),
        7 => {
            let text = std::str::from_utf8(read_prefixed(reader)?).map_err(|_| EventStreamError::InvalidUtf8)?;
            HeaderValue::String(text)
        }
        8 => HeaderValue::Timestamp(i64::from_be_bytes(reader.array().ok_or(cut)?)),
        9 => HeaderValue::Uuid(reader.array().ok_or(cut)?),
        other => return Err(EventStreamError::InvalidHeaderValueType(other)),
    })
}

/// A u16-length-prefixed value (types 6 and 7).
fn read_prefixed<'a>(reader: &mut Reader<'a>) -> Result<&'a [u8], EventStreamError> {
    let len = u16::from_be_bytes(reader.array().ok_or(EventStreamError::HeaderValueCutOff)?);
    reader.take(usize::from(len)).ok_or(EventStreamError::HeaderValueCutOff)
}

/// Why a `chunk` payload's `bytes` could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// The payload is not a JSON object.
    NotJson,
    /// The object has no string `bytes` field.
    MissingBytes,
    /// `bytes` is not standard base64.
    InvalidBase64,
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotJson => "chunk payload is not a JSON object",
            Self::MissingBytes => "chunk payload has no string \"bytes\" field",
            Self::InvalidBase64 => "chunk \"bytes\" is not valid base64",
        })
    }
}

impl std::error::Error for ChunkError {}

/// The fields of a `chunk` payload that matter; the random-length `p` padding is ignored.
#[derive(serde::Deserialize)]
struct ChunkPayload<'a> {
    // Cow because a JSON string may carry escapes (`\/`) and then cannot be borrowed.
    #[serde(borrow)]
    bytes: Option<Cow<'a, str>>,
}

/// Decodes the base64 `bytes` field of a `chunk` payload (`{"bytes":"...","p":"..."}`) into `out`.
pub fn decode_chunk_bytes(payload: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
    let chunk: ChunkPayload<'_> = serde_json::from_slice(payload).map_err(|_| ChunkError::NotJson)?;
    let encoded = chunk.bytes.ok_or(ChunkError::MissingBytes)?;
    decode_base64(encoded.as_bytes(), out)
}

/// The `message` / `Message` string of an exception payload.
pub fn exception_message(payload: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let object = value.as_object()?;
    let message = object.get("message").or_else(|| object.get("Message"))?;
    message.as_str().map(str::to_owned)
}

/// Marks bytes outside the base64 alphabet.
const NOT_BASE64: u8 = 0xFF;

const BASE64_VALUES: [u8; 256] = base64_values();

const fn base64_values() -> [u8; 256] {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut table = [NOT_BASE64; 256];
    let mut i = 0;
    while i < alphabet.len() {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
}

/// Standard-alphabet base64 (RFC 4648 section 4), padded or not, appended to `out`. Written here
/// rather than taken from a crate because Corelay needs only this decode, on one field.
pub fn decode_base64(input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
    let data = strip_padding(input)?;
    if data.len() % 4 == 1 {
        // One leftover character carries 6 bits, not enough for a byte.
        return Err(ChunkError::InvalidBase64);
    }
    out.reserve(data.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in data {
        let sextet = BASE64_VALUES[usize::from(c)];
        if sextet == NOT_BASE64 {
            return Err(ChunkError::InvalidBase64);
        }
        acc = (acc << 6) | u32::from(sextet);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(())
}

/// The input without its `=` padding, which is only valid as the last one or two characters of a
/// multiple of four.
fn strip_padding(input: &[u8]) -> Result<&[u8], ChunkError> {
    let pad = input.iter().rev().take_while(|&&c| c == b'=').count();
    if pad == 0 {
        return Ok(input);
    }
    if pad > 2 || !input.len().is_multiple_of(4) {
        return Err(ChunkError::InvalidBase64);
    }
    Ok(&input[..input.len() - pad])
}

/// CRC-32 (IEEE 802.3, reflected, as zlib), slicing-by-8: the message CRC covers every byte of every
/// frame, so it sits on the streaming hot path.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let lo = crc ^ u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        let hi = u32::from_le_bytes([block[4], block[5], block[6], block[7]]);
        crc = CRC_TABLES[7][(lo & 0xFF) as usize]
            ^ CRC_TABLES[6][((lo >> 8) & 0xFF) as usize]
            ^ CRC_TABLES[5][((lo >> 16) & 0xFF) as usize]
            ^ CRC_TABLES[4][(lo >> 24) as usize]
            ^ CRC_TABLES[3][(hi & 0xFF) as usize]
            ^ CRC_TABLES[2][((hi >> 8) & 0xFF) as usize]
            ^ CRC_TABLES[1][((hi >> 16) & 0xFF) as usize]
            ^ CRC_TABLES[0][(hi >> 24) as usize];
    }
    for &byte in blocks.remainder() {
        crc = CRC_TABLES[0][((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

const CRC_TABLES: [[u32; 256]; 8] = crc_tables();

/// Table 0 is the classic byte table; table k advances a byte k more positions through zeros.
const fn crc_tables() -> [[u32; 256]; 8] {
    let mut tables = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 { 0xEDB8_8320 ^ (crc >> 1) } else { crc >> 1 };
            bit += 1;
        }
        tables[0][i] = crc;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 8 {
            let prev = tables[k - 1][i];
            tables[k][i] = (prev >> 8) ^ tables[0][(prev & 0xFF) as usize];
            k += 1;
        }
        i += 1;
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a frame with valid CRCs from raw header bytes and a payload.
    fn frame(headers: &[u8], payload: &[u8]) -> Vec<u8> {
        let total = (MIN_FRAME_LEN + headers.len() + payload.len()) as u32;
        let mut out = Vec::new();
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let prelude_crc = crc32(&out);
        out.extend_from_slice(&prelude_crc.to_be_bytes());
        out.extend_from_slice(headers);
        out.extend_from_slice(payload);
        let message_crc = crc32(&out);
        out.extend_from_slice(&message_crc.to_be_bytes());
        out
    }

    fn string_header(name: &str, value: &str) -> Vec<u8> {
        let mut out = vec![name.len() as u8];
        out.extend_from_slice(name.as_bytes());
        out.push(7);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
        out
    }

    /// Decodes the first frame of `bytes`; returns its header count and payload.
    fn decode_one(bytes: &[u8]) -> Result<Option<(usize, Vec<u8>)>, EventStreamError> {
        let mut decoder = Decoder::new();
        decoder.push(bytes);
        Ok(decoder.next_frame()?.map(|f| (f.headers().count(), f.payload().to_vec())))
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        // Lengths around the 8-byte block boundary take both loops.
        let data: Vec<u8> = (0..=40u8).collect();
        for len in 0..data.len() {
            assert_eq!(crc32(&data[..len]), bitwise_crc32(&data[..len]), "length {len}");
        }
    }

    fn bitwise_crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 != 0 { 0xEDB8_8320 ^ (crc >> 1) } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn minimal_frame_has_no_headers_and_no_payload() {
        assert_eq!(decode_one(&frame(&[], &[])), Ok(Some((0, Vec::new()))));
    }

    #[test]
    fn every_header_type_round_trips() {
        let mut headers = Vec::new();
        headers.extend_from_slice(b"\x01a\x00\x01b\x01\x01c\x02\xff\x01d\x03\x80\x00");
        headers.extend_from_slice(b"\x01e\x04\x00\x00\x00\x07\x01f\x05\x00\x00\x00\x00\x00\x00\x00\x09");
        headers.extend_from_slice(b"\x01g\x06\x00\x02\x00\xff\x01h\x07\x00\x00");
        headers.extend_from_slice(b"\x01i\x08\xff\xff\xff\xff\xff\xff\xff\xfe\x01j\x09");
        headers.extend_from_slice(&[7; 16]);
        let bytes = frame(&headers, b"x");
        let mut decoder = Decoder::new();
        decoder.push(&bytes);
        let frame = decoder.next_frame().unwrap().unwrap();
        assert_eq!(
            frame.headers().map(|h| h.value).collect::<Vec<_>>(),
            [
                HeaderValue::Bool(true),
                HeaderValue::Bool(false),
                HeaderValue::Byte(-1),
                HeaderValue::Short(i16::MIN),
                HeaderValue::Int(7),
                HeaderValue::Long(9),
                HeaderValue::Bytes(&[0, 255]),
                HeaderValue::String(""),
                HeaderValue::Timestamp(-2),
                HeaderValue::Uuid([7; 16]),
            ]
        );
    }

    #[test]
    fn zero_length_header_name_is_rejected() {
        assert_eq!(decode_one(&frame(b"\x00\x00", b"")), Err(EventStreamError::InvalidHeaderNameLength));
    }

    #[test]
    fn header_name_without_type_byte_is_cut_off() {
        assert_eq!(decode_one(&frame(b"\x01a", b"")), Err(EventStreamError::HeaderValueCutOff));
    }

    #[test]
    fn fixed_size_value_past_headers_is_cut_off() {
        assert_eq!(decode_one(&frame(b"\x01a\x04\x00\x00", b"")), Err(EventStreamError::HeaderValueCutOff));
    }

    #[test]
    fn non_utf8_string_and_name_are_rejected() {
        assert_eq!(decode_one(&frame(b"\x01a\x07\x00\x01\xff", b"")), Err(EventStreamError::InvalidUtf8));
        assert_eq!(decode_one(&frame(b"\x01\xff\x00", b"")), Err(EventStreamError::InvalidUtf8));
    }

    #[test]
    fn lengths_are_checked_at_the_prelude() {
        let mut short = frame(&[], &[]);
        short[3] = 15;
        fix_prelude_crc(&mut short);
        assert_eq!(decode_one(&short), Err(EventStreamError::FrameTooShort { total_len: 15 }));

        let mut headers_too_long = frame(&[], b"abc");
        headers_too_long[7] = 4;
        fix_prelude_crc(&mut headers_too_long);
        assert_eq!(
            decode_one(&headers_too_long),
            Err(EventStreamError::HeadersLengthPastFrame { headers_len: 4, total_len: 19 })
        );
    }

    fn fix_prelude_crc(frame: &mut [u8]) {
        let crc = crc32(&frame[..8]);
        frame[8..12].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn any_flipped_bit_is_rejected() {
        let headers = string_header(":event-type", "chunk");
        let original = frame(&headers, b"{}");
        let headers_end = PRELUDE_LEN + headers.len();
        for at in 0..original.len() {
            let mut bytes = original.clone();
            bytes[at] ^= 0x10;
            let error = decode_one(&bytes).expect_err("a damaged frame is rejected");
            if at < PRELUDE_LEN {
                assert!(matches!(error, EventStreamError::PreludeCrcMismatch { .. }), "{at}: {error:?}");
            } else if at >= headers_end {
                assert!(matches!(error, EventStreamError::MessageCrcMismatch { .. }), "{at}: {error:?}");
            }
            // Inside the headers a structural error may be named first; either way it is an error.
        }
    }

    #[test]
    fn frame_larger_than_the_limit_is_refused_before_it_is_buffered() {
        let bytes = frame(&[], &[0; 100]);
        let mut decoder = Decoder::with_max_frame_len(64);
        decoder.push(&bytes[..PRELUDE_LEN]);
        assert_eq!(decoder.next_frame(), Err(EventStreamError::FrameTooLarge { total_len: 116, max: 64 }));
        // The failure sticks and later input is dropped.
        decoder.push(&bytes[PRELUDE_LEN..]);
        assert_eq!(decoder.buffered_len(), 0);
        assert!(decoder.is_failed());
        assert_eq!(decoder.finish(), Err(EventStreamError::FrameTooLarge { total_len: 116, max: 64 }));
    }

    #[test]
    fn huge_declared_length_is_refused_with_the_default_limit() {
        let mut bytes = frame(&[], &[]);
        bytes[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        fix_prelude_crc(&mut bytes);
        assert!(matches!(decode_one(&bytes), Err(EventStreamError::FrameTooLarge { .. })));
    }

    #[test]
    fn partial_frames_wait_and_finish_reports_truncation() {
        let bytes = frame(&string_header(":event-type", "chunk"), b"{}");
        let mut decoder = Decoder::new();
        decoder.push(&bytes[..bytes.len() - 1]);
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(decoder.finish(), Err(EventStreamError::Truncated { buffered: bytes.len() - 1 }));
        decoder.push(&bytes[bytes.len() - 1..]);
        assert_eq!(decoder.next_frame().unwrap().unwrap().event_type(), Some("chunk"));
        assert_eq!(decoder.next_frame(), Ok(None));
        assert_eq!(decoder.finish(), Ok(()));
    }

    #[test]
    fn frames_after_the_first_in_one_push_are_all_returned() {
        let one = frame(&string_header(":event-type", "a"), b"1");
        let two = frame(&string_header(":event-type", "b"), b"22");
        let mut decoder = Decoder::new();
        decoder.push(&[one.clone(), two, one].concat());
        let mut seen = Vec::new();
        while let Some(f) = decoder.next_frame().unwrap() {
            seen.push((f.event_type().unwrap().to_owned(), f.payload().to_vec()));
        }
        assert_eq!(seen, [("a".into(), b"1".to_vec()), ("b".into(), b"22".to_vec()), ("a".into(), b"1".to_vec())]);
        assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn kind_follows_message_type() {
        let event = [string_header(":message-type", "event"), string_header(":event-type", "chunk")].concat();
        let exception =
            [string_header(":message-type", "exception"), string_header(":exception-type", "throttlingException")]
                .concat();
        let error = [
            string_header(":message-type", "error"),
            string_header(":error-code", "InternalFailure"),
            string_header(":error-message", "boom"),
        ]
        .concat();
        let missing = string_header(":message-type", "event");
        let expected = [
            FrameKind::Event("chunk"),
            FrameKind::Exception("throttlingException"),
            FrameKind::Error { code: "InternalFailure", message: "boom" },
            FrameKind::Unrecognised,
        ];
        for (headers, kind) in [event, exception, error, missing].iter().zip(expected) {
            let mut decoder = Decoder::new();
            decoder.push(&frame(headers, b"{}"));
            assert_eq!(decoder.next_frame().unwrap().unwrap().kind(), kind);
        }
    }

    #[test]
    fn base64_accepts_padded_and_unpadded_and_rejects_garbage() {
        let cases: [(&[u8], &[u8]); 6] = [
            (b"", b""),
            (b"Zg==", b"f"),
            (b"Zm8=", b"fo"),
            (b"Zm9v", b"foo"),
            (b"Zg", b"f"),
            (b"+/+/", b"\xfb\xff\xbf"),
        ];
        for (input, expected) in cases {
            let mut out = Vec::new();
            decode_base64(input, &mut out).unwrap();
            assert_eq!(out, expected, "{}", String::from_utf8_lossy(input));
        }
        for bad in [&b"Z"[..], b"Zg=", b"Z===", b"Zm9v\n", b"Zg==Zg==", b"Zm-v", b"="] {
            assert_eq!(decode_base64(bad, &mut Vec::new()), Err(ChunkError::InvalidBase64), "{bad:?}");
        }
    }

    #[test]
    fn chunk_bytes_ignore_padding_field_and_handle_escapes() {
        let mut out = Vec::new();
        decode_chunk_bytes(br#"{"bytes":"e30=","p":"abcdef"}"#, &mut out).unwrap();
        assert_eq!(out, b"{}");
        out.clear();
        // `\/` is a legal JSON escape for `/`; the decoded string is `+/+/`.
        decode_chunk_bytes(br#"{"bytes":"+\/+\/"}"#, &mut out).unwrap();
        assert_eq!(out, b"\xfb\xff\xbf");
        assert_eq!(decode_chunk_bytes(b"[1]", &mut out), Err(ChunkError::NotJson));
        assert_eq!(decode_chunk_bytes(br#"{"p":"x"}"#, &mut out), Err(ChunkError::MissingBytes));
    }

    #[test]
    fn exception_message_reads_either_spelling() {
        assert_eq!(exception_message(br#"{"message":"slow down"}"#).as_deref(), Some("slow down"));
        assert_eq!(exception_message(br#"{"Message":"bad"}"#).as_deref(), Some("bad"));
        assert_eq!(exception_message(b"not json"), None);
    }

    /// xorshift64*: deterministic, so a failure reproduces from the seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Drains everything decodable, reading every header of every frame; must never panic.
    fn drain(decoder: &mut Decoder) -> usize {
        let mut frames = 0;
        while let Ok(Some(frame)) = decoder.next_frame() {
            frames += 1;
            let _ = frame.headers().count();
            let _ = frame.kind();
            let _ = frame.decode_chunk_bytes(&mut Vec::new());
        }
        frames
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut rng = Rng(0x5EED_0000_0000_0001);
        for _ in 0..2_000 {
            let len = rng.below(300);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let mut decoder = Decoder::with_max_frame_len(1 + rng.below(1 << 16));
            let mut at = 0;
            while at < bytes.len() {
                let end = (at + 1 + rng.below(40)).min(bytes.len());
                decoder.push(&bytes[at..end]);
                drain(&mut decoder);
                at = end;
            }
            let _ = decoder.finish();
        }
    }

    #[test]
    fn mutated_valid_frames_never_panic() {
        let headers = [string_header(":message-type", "event"), string_header(":event-type", "chunk")].concat();
        let original = frame(&headers, br#"{"bytes":"e30=","p":"abc"}"#);
        let mut rng = Rng(0x00DD_BA11_0000_0007);
        for _ in 0..5_000 {
            let mut bytes = original.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len());
                bytes[at] = rng.next() as u8;
            }
            // Half the time, recompute the CRCs so the header walk sees the damage.
            if rng.below(2) == 0 && bytes.len() >= MIN_FRAME_LEN {
                fix_prelude_crc(&mut bytes);
                let end = bytes.len() - MESSAGE_CRC_LEN;
                let crc = crc32(&bytes[..end]);
                bytes[end..].copy_from_slice(&crc.to_be_bytes());
            }
            let mut decoder = Decoder::new();
            decoder.push(&bytes);
            drain(&mut decoder);
            let _ = decoder.finish();
        }
    }
}
