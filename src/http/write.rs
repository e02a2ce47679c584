//! HTTP/1.1 encoders: response heads, chunked framing and upstream request
//! heads, appended to a caller's `Vec<u8>` with no other allocation. It does
//! not decide which headers to forward or when to close; callers pass that in.
//!
//! The writer owns the framing it emits, so caller headers that would
//! duplicate or contradict it (Content-Length and Transfer-Encoding always,
//! Connection when it writes `connection: close`; Host on requests) are
//! skipped, as are headers whose value holds a control byte: forwarding one would
//! let a peer split or smuggle messages. Names are the program's own
//! ([`OutField`]), checked as tokens in debug builds.

use super::{is_tchar, same_name};

/// How a response body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutFraming {
    Length(u64),
    Chunked,
    /// No body, e.g. 1xx/204/304: emits no length header.
    None,
}

/// Standard reason phrases; "Unknown" for anything unregistered.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        511 => "Network Authentication Required",
        _ => "Unknown",
    }
}

/// A header to write: a name written into the program (so never one a peer chose) and a value from
/// anywhere. Nothing a peer sends is forwarded under its own name: the one client header that goes
/// on to a provider (`anthropic-beta`) and a provider's that reach a client (`content-type`,
/// `retry-after`) travel under names Corelay lists. So the type rules out a peer's bytes as a name,
/// and names are checked as tokens in debug builds (the tests), not on every head. Values are
/// checked on every head: they may come from a peer or from the config.
pub type OutField<'a> = (&'static str, &'a [u8]);

/// Response head: status line, the given headers, then `content-length: n` or
/// `transfer-encoding: chunked`, then `connection: close` when !keep_alive
/// (HTTP/1.1 keep-alive is the default so say nothing then), then CRLF.
/// Caller `content-length`/`transfer-encoding` headers are always skipped, and
/// a caller `connection` header is skipped when `!keep_alive`. A value with a control byte is
/// skipped (header injection; see [`OutField`] for names).
pub fn write_response_head(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[OutField<'_>],
    framing: OutFraming,
    keep_alive: bool,
) {
    write_response_head_with(out, status, headers, &[], framing, keep_alive);
}

/// [`write_response_head`] with a second list of headers after the first (the connection's own,
/// such as `x-request-id`), so callers need not join the two into a new list.
pub fn write_response_head_with(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[OutField<'_>],
    more_headers: &[OutField<'_>],
    framing: OutFraming,
    keep_alive: bool,
) {
    push_status_line(out, status);
    // A caller may still send `connection: keep-alive` (HTTP/1.0 clients need
    // it), but never alongside the `close` written below.
    let owned: &[&str] = if keep_alive {
        &["content-length", "transfer-encoding"]
    } else {
        &["content-length", "transfer-encoding", "connection"]
    };
    push_fields(out, headers, owned);
    push_fields(out, more_headers, owned);
    match framing {
        OutFraming::Length(n) => push_content_length(out, n),
        OutFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        OutFraming::None => {}
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// `{len:x}\r\n{data}\r\n`; writes nothing for empty data because an empty
/// chunk is the end-of-body marker.
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    push_hex(out, data.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// A chunk whose bytes are appended before their count is known: the events of one upstream read
/// go straight into the connection's write buffer instead of through a buffer of their own (which
/// grew with every burst and was then copied). Room for the size line is kept in front, as wide as
/// `expected` bytes need; [`OpenChunk::close`] writes the line there, and moves the bytes only when
/// their count needs a line of another width (the estimate is the bytes read, and rewriting events
/// seldom changes their count's number of hex digits).
#[derive(Debug)]
#[must_use = "a chunk left open leaves a blank size line in the buffer"]
pub struct OpenChunk {
    /// Where the size line starts in the buffer.
    start: usize,
    /// The room kept for it (digits and CRLF).
    line: usize,
}

impl OpenChunk {
    pub fn open(out: &mut Vec<u8>, expected: usize) -> OpenChunk {
        let start = out.len();
        let line = size_line_len(expected);
        out.resize(start + line, 0);
        OpenChunk { start, line }
    }

    /// The chunk's bytes so far.
    pub fn bytes<'a>(&self, out: &'a [u8]) -> &'a [u8] {
        &out[self.start + self.line..]
    }

    /// Writes the size line and the closing CRLF. An empty chunk leaves nothing, since an empty
    /// chunk would end the body.
    pub fn close(self, out: &mut Vec<u8>) {
        let data_start = self.start + self.line;
        let len = out.len() - data_start;
        if len == 0 {
            out.truncate(self.start);
            return;
        }
        let line = size_line_len(len);
        if line > self.line {
            let shift = line - self.line;
            out.resize(out.len() + shift, 0);
            out.copy_within(data_start..data_start + len, data_start + shift);
        } else if line < self.line {
            out.copy_within(data_start.., self.start + line);
            out.truncate(self.start + line + len);
        }
        let digits = NumberText::hex(len as u64, 1);
        let digits = digits.as_bytes();
        out[self.start..self.start + digits.len()].copy_from_slice(digits);
        out[self.start + digits.len()..self.start + line].copy_from_slice(b"\r\n");
        out.extend_from_slice(b"\r\n");
    }
}

/// The length of the size line of a chunk of `len` bytes: its hex digits and CRLF.
fn size_line_len(len: usize) -> usize {
    let bits = usize::BITS - len.max(1).leading_zeros();
    bits.div_ceil(4) as usize + 2
}

/// The last chunk with no trailers.
pub fn write_last_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}

/// A request body written after its head: its length is known before its bytes are written, so a
/// body assembled from pieces (the client's body with its model replaced) goes straight into the
/// request buffer instead of through a copy of its own.
pub trait RequestBody {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn write_into(&self, out: &mut Vec<u8>);
}

impl RequestBody for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }
    fn write_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl RequestBody for Vec<u8> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn write_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

/// Request head for an upstream call: "{method} {path_and_query} HTTP/1.1\r\nhost: {host}\r\n"
/// + headers + "content-length: n\r\n" when body_len is Some, then CRLF.
///
/// `method`, `path_and_query` and `host` are written verbatim: they must come
/// from a parsed request or from configuration, never from raw peer bytes.
pub fn write_request_head(
    out: &mut Vec<u8>,
    method: &str,
    path_and_query: &str,
    host: &str,
    headers: &[OutField<'_>],
    body_len: Option<u64>,
) {
    write_request_head_at(out, method, ["", path_and_query], host, headers, body_len);
}

/// [`write_request_head`] with the target in two parts written one after the other (an origin's
/// base path and the operation's path), so callers need not join them into a new string.
pub fn write_request_head_at(
    out: &mut Vec<u8>,
    method: &str,
    target: [&str; 2],
    host: &str,
    headers: &[OutField<'_>],
    body_len: Option<u64>,
) {
    // Room for the line and host with their fixed text (64 bytes is more than enough for it).
    out.reserve(method.len() + target[0].len() + target[1].len() + host.len() + 64);
    append_short(out, method.as_bytes());
    out.push(b' ');
    append_short(out, target[0].as_bytes());
    append_short(out, target[1].as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    append_short(out, host.as_bytes());
    // Bodies are relayed and parsed as sent and no content coding is decoded, so none is accepted:
    // a gzip answer would otherwise reach clients as binary with its `content-encoding` dropped.
    out.extend_from_slice(b"\r\naccept-encoding: identity\r\n");
    const OWNED: &[&str] = &["host", "content-length", "transfer-encoding", "accept-encoding"];
    push_fields(out, headers, OWNED);
    if let Some(n) = body_len {
        push_content_length(out, n);
    }
    out.extend_from_slice(b"\r\n");
}

fn push_status_line(out: &mut Vec<u8>, status: u16) {
    // Nearly every answer is a 200: one copy of its whole line.
    if status == 200 {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        return;
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Writes each of `headers` but those named in `owned` (the writer's own) and those whose value has
/// a control byte.
fn push_fields(out: &mut Vec<u8>, headers: &[OutField<'_>], owned: &[&str]) {
    // One capacity check for the list: each piece below is then a copy and a length update.
    out.reserve(headers.iter().map(|(name, value)| name.len() + value.len() + 4).sum());
    for &(name, value) in headers {
        debug_assert!(!name.is_empty() && is_token(name.as_bytes()), "{name:?} is not a header name");
        if owned.iter().any(|o| same_name(name.as_bytes(), o.as_bytes())) || !is_safe_value(value) {
            continue;
        }
        append_short(out, name.as_bytes());
        append_short(out, b": ");
        append_short(out, value);
        append_short(out, b"\r\n");
    }
}

/// Appends `piece`. A head is written in short pieces (names, small values, separators), and for
/// those a call to memcpy with `extend_from_slice`'s bookkeeping cost more than the copy (~140
/// instructions a field): a piece of 2 to 32 bytes that fits the room already reserved is moved as
/// two overlapping loads and stores in line. Anything else is `extend_from_slice`.
#[inline(always)]
fn append_short(out: &mut Vec<u8>, piece: &[u8]) {
    let n = piece.len();
    if !(2..=32).contains(&n) || out.capacity() - out.len() < n {
        out.extend_from_slice(piece);
        return;
    }
    let len = out.len();
    // SAFETY: `out` has room for `n` more bytes (checked above). Each pair of moves covers exactly
    // bytes `0..n` of `piece` and of that room: the first move starts at 0, the second ends at `n`,
    // and each is no wider than `n` (2 <= n <= 32 picks the width). `set_len` then counts just
    // those `n` bytes, all written.
    unsafe {
        let src = piece.as_ptr();
        let dst = out.as_mut_ptr().add(len);
        match n {
            16.. => move_pair::<u128>(src, dst, n),
            8.. => move_pair::<u64>(src, dst, n),
            4.. => move_pair::<u32>(src, dst, n),
            _ => move_pair::<u16>(src, dst, n),
        }
        out.set_len(len + n);
    }
}

/// Copies `n` bytes from `src` to `dst` as two unaligned `W`s: one at the start, one ending at `n`
/// (they overlap when `n` is less than two `W`s).
///
/// # Safety
/// `size_of::<W>() <= n <= 2 * size_of::<W>()`, `src` readable and `dst` writable for `n` bytes.
#[inline(always)]
unsafe fn move_pair<W: Copy>(src: *const u8, dst: *mut u8, n: usize) {
    let tail = n - size_of::<W>();
    // SAFETY: both words lie within the `n` bytes the caller vouches for.
    unsafe {
        let (first, last) = (src.cast::<W>().read_unaligned(), src.add(tail).cast::<W>().read_unaligned());
        dst.cast::<W>().write_unaligned(first);
        dst.add(tail).cast::<W>().write_unaligned(last);
    }
}

fn push_content_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"content-length: ");
    push_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Every byte a token character. Only debug builds ask it (names are `'static`, see [`OutField`]),
/// so it is not on a release head's path.
fn is_token(name: &[u8]) -> bool {
    name.iter().fold(true, |ok, &b| ok & is_tchar(b))
}

/// No control byte but tab (and no DEL). Every header of every response and upstream request
/// passes here, and values are short, so the check is word-wide with no byte loop but for the last
/// three: 16-byte blocks (the last one overlapping) from 16 bytes up, two overlapping 8-byte words
/// from 8, two 4-byte halves from 4. Held to the plain byte-by-byte rule by a test at every length
/// and position.
fn is_safe_value(value: &[u8]) -> bool {
    let n = value.len();
    #[cfg(target_arch = "x86_64")]
    if n >= 16 {
        let block = |at: usize| value_block_is_safe(value[at..at + 16].try_into().expect("16 bytes"));
        return (0..n - 16).step_by(16).all(block) && block(n - 16);
    }
    let word = |at: usize| u64::from_le_bytes(value[at..at + 8].try_into().expect("8 bytes"));
    let half = |at: usize| u64::from(u32::from_le_bytes(value[at..at + 4].try_into().expect("4 bytes")));
    // Spaces stand in for the bytes a half leaves out.
    const SPACES_ABOVE_HALF: u64 = 0x2020_2020_0000_0000;
    match n {
        8.. => (0..n - 8).step_by(8).all(|at| word_is_safe(word(at))) && word_is_safe(word(n - 8)),
        4.. => word_is_safe(half(0) | SPACES_ABOVE_HALF) && word_is_safe(half(n - 4) | SPACES_ABOVE_HALF),
        _ => value.iter().all(|&b| is_safe_value_byte(b)),
    }
}

/// The rule [`is_safe_value`] applies to each byte.
fn is_safe_value_byte(b: u8) -> bool {
    (b >= b' ' && b != 0x7f) || b == b'\t'
}

/// [`is_safe_value_byte`] for each byte of a little-endian word, exactly: per-byte sums on the low
/// seven bits, which cannot carry into the next byte (`byte < 0x20` is "the low seven bits plus
/// 0x60 stay below 0x80, and the top bit is clear"; `byte == c` is "byte xor c is zero").
fn word_is_safe(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOP: u64 = ONES * 0x80;
    const LOW7: u64 = ONES * 0x7f;
    let is_zero = |w: u64| !(((w & LOW7) + LOW7) | w) & TOP;
    let below_space = !(((word & LOW7) + ONES * (0x80 - 0x20)) | word) & TOP;
    let tab = is_zero(word ^ (ONES * 0x09));
    let delete = is_zero(word ^ (ONES * 0x7f));
    (below_space & !tab) | delete == 0
}

/// [`is_safe_value_byte`] for each byte of a 16-byte block.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn value_block_is_safe(block: &[u8; 16]) -> bool {
    use std::arch::x86_64::{
        __m128i, _mm_andnot_si128, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline; the load reads exactly the 16 bytes of `block`.
    unsafe {
        let bytes = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
        // Unsigned `byte <= 0x1f`: bytes 0x80 and above (obs-text) are allowed.
        let control = _mm_cmpeq_epi8(_mm_min_epu8(bytes, _mm_set1_epi8(0x1f)), bytes);
        let tab = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(0x09));
        let delete = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(0x7f));
        _mm_movemask_epi8(_mm_or_si128(_mm_andnot_si128(tab, control), delete)) == 0
    }
}

fn push_decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(NumberText::decimal(n).as_bytes());
}

fn push_hex(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(NumberText::hex(n, 1).as_bytes());
}

/// `n`'s two decimal digits, for `n < 100`.
fn digit_pair(n: u64) -> &'static [u8] {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
                                2021222324252627282930313233343536373839\
                                4041424344454647484950515253545556575859\
                                6061626364656667686970717273747576777879\
                                8081828384858687888990919293949596979899";
    let at = n as usize * 2;
    &PAIRS[at..at + 2]
}

/// The eight lowercase hex digits of `word`, most significant first, computed in one `u64`: each
/// nibble is spread into a byte of its own, then turned into ASCII in every byte at once (`'0' +
/// nibble`, plus 39 more where the nibble is 10 or above, which makes `'a'..='f'`).
fn hex_word(word: u32) -> [u8; 8] {
    let mut x = u64::from(word);
    x = ((x & 0xffff_0000) << 16) | (x & 0x0000_ffff);
    x = ((x & 0x0000_ff00_0000_ff00) << 8) | (x & 0x0000_00ff_0000_00ff);
    x = ((x & 0x00f0_00f0_00f0_00f0) << 4) | (x & 0x000f_000f_000f_000f);
    // Bit 4 of `nibble + 6` is set exactly when the nibble is 10 or more; no byte carries into the next.
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (x + 0x3030_3030_3030_3030 + letters * 39).to_be_bytes()
}

/// A number's digits, held inline: for header values, chunk sizes and request ids, which would
/// otherwise be formatted into a `String` allocated each time.
#[derive(Debug, Clone, Copy)]
pub struct NumberText {
    digits: [u8; 20],
    start: u8,
}

impl NumberText {
    /// Two digits a step from a table of the hundred pairs: half the divisions of one digit a step,
    /// and every response writes four or five of these (`content-length`, the `x-corelay-*` figures).
    pub fn decimal(mut n: u64) -> NumberText {
        let mut digits = [b'0'; 20];
        let mut start = digits.len();
        // Constant divisors: the compiler turns each step into multiplications.
        while n >= 100 {
            start -= 2;
            digits[start..start + 2].copy_from_slice(digit_pair(n % 100));
            n /= 100;
        }
        if n >= 10 {
            start -= 2;
            digits[start..start + 2].copy_from_slice(digit_pair(n));
        } else {
            start -= 1;
            digits[start] = b'0' + n as u8;
        }
        NumberText { digits, start: start as u8 }
    }

    /// Lowercase hex, zero-padded to at least `width` digits (16 at most). All sixteen digits are
    /// made at once in two words (`hex_word`), then the leading zeros beyond `width` are left out:
    /// every request id is three of these, and a loop of a digit a step cost ~75 instructions each.
    pub fn hex(n: u64, width: usize) -> NumberText {
        let mut digits = [b'0'; 20];
        digits[4..12].copy_from_slice(&hex_word((n >> 32) as u32));
        digits[12..20].copy_from_slice(&hex_word(n as u32));
        let significant = (64 - n.leading_zeros() as usize).div_ceil(4).max(1);
        let start = digits.len() - significant.max(width.clamp(1, 16));
        NumberText { digits, start: start as u8 }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.digits[usize::from(self.start)..]
    }

    /// The digits as text (always ASCII: `0..=9` and `a..=f`). `from_utf8` cost three times what
    /// writing the number did, on every request id.
    pub fn as_str(&self) -> &str {
        super::ascii_text(self.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(out: &[u8]) -> &str {
        std::str::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers() {
        for (n, want) in [(0u64, "0"), (7, "7"), (10, "10"), (u64::MAX, "18446744073709551615")] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(text(&out), want);
        }
        for (n, want) in [(0u64, "0"), (10, "a"), (0x1f, "1f"), (4096, "1000"), (u64::MAX, "ffffffffffffffff")] {
            let mut out = Vec::new();
            push_hex(&mut out, n);
            assert_eq!(text(&out), want);
        }
    }

    /// Every digit count and every pair and nibble in each place, against the standard formatter.
    #[test]
    fn numbers_match_the_formatter() {
        let mut values: Vec<u64> = vec![0, 9, 10, 99, 100, 101, 999, 1000, u64::MAX, u64::MAX - 1];
        for shift in 0..64 {
            let bit = 1u64 << shift;
            values.extend([bit, bit - 1, bit + 1, bit.wrapping_mul(0x0123_4567_89ab_cdef)]);
        }
        let mut power = 1u64;
        while let Some(next) = power.checked_mul(10) {
            values.extend([power - 1, power, next - 1]);
            power = next;
        }
        values.extend((0..=0xffff).map(|n| n * 0x1_0001));
        for n in values {
            assert_eq!(NumberText::decimal(n).as_str(), n.to_string());
            for width in [0, 1, 2, 8, 16, 17] {
                let padded = width.clamp(1, 16);
                assert_eq!(NumberText::hex(n, width).as_str(), format!("{n:0padded$x}"), "{n:#x} at width {width}");
            }
        }
    }

    /// The word-wide value check says what the byte rule says, for every byte value at every
    /// position of every length up to 80 (so each width, tail and overlap is met), on a base of
    /// printable bytes and one of obs-text.
    #[test]
    fn value_check_matches_the_byte_rule_everywhere() {
        for base in [b'a', 0xe9] {
            for n in 0..=80 {
                let mut value = vec![base; n];
                assert!(is_safe_value(&value), "length {n}");
                for at in 0..n {
                    for b in 0..=255u8 {
                        value[at] = b;
                        assert_eq!(is_safe_value(&value), is_safe_value_byte(b), "byte {b:#x} at {at} of {n}");
                    }
                    value[at] = base;
                }
            }
        }
    }

    /// A short piece is appended as `extend_from_slice` would, at every length, with room reserved
    /// and without, after bytes already there.
    #[test]
    fn short_pieces_append_exactly() {
        let piece: Vec<u8> = (0..48u8).map(|i| b'A' + i).collect();
        for n in 0..=48 {
            for reserve in [0, n, 64] {
                let mut out = b"head".to_vec();
                out.shrink_to_fit();
                out.reserve_exact(reserve);
                append_short(&mut out, &piece[..n]);
                assert_eq!(out, [b"head", &piece[..n]].concat(), "{n} bytes, {reserve} reserved");
            }
        }
    }

    #[test]
    fn reason_phrases() {
        assert_eq!(reason_phrase(200), "OK");
        assert_eq!(reason_phrase(404), "Not Found");
        assert_eq!(reason_phrase(429), "Too Many Requests");
        assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
        assert_eq!(reason_phrase(502), "Bad Gateway");
        assert_eq!(reason_phrase(799), "Unknown");
    }

    #[test]
    fn response_head_with_length() {
        let mut out = b"prefix".to_vec();
        write_response_head(
            &mut out,
            200,
            &[("content-type", b"application/json"), ("x-id", b"1")],
            OutFraming::Length(17),
            true,
        );
        assert_eq!(
            text(&out),
            "prefixHTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-id: 1\r\ncontent-length: 17\r\n\r\n"
        );
    }

    #[test]
    fn response_head_chunked_close() {
        let mut out = Vec::new();
        write_response_head(&mut out, 503, &[], OutFraming::Chunked, false);
        assert_eq!(
            text(&out),
            "HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        );
    }

    #[test]
    fn response_head_without_body() {
        let mut out = Vec::new();
        write_response_head(&mut out, 100, &[], OutFraming::None, true);
        assert_eq!(text(&out), "HTTP/1.1 100 Continue\r\n\r\n");
        let mut out = Vec::new();
        write_response_head(&mut out, 299, &[("a", b"b"), ("connection", b"keep-alive")], OutFraming::None, false);
        assert_eq!(text(&out), "HTTP/1.1 299 Unknown\r\na: b\r\nconnection: close\r\n\r\n");
    }

    #[test]
    fn response_head_skips_owned_and_unsafe_headers() {
        let mut out = Vec::new();
        write_response_head(
            &mut out,
            200,
            &[
                ("Content-Length", b"999"),
                ("transfer-encoding", b"chunked"),
                ("x-evil", b"a\r\nset-cookie: x"),
                ("x-nul", b"a\0"),
                ("x-ok", b"tab\there \xff"),
            ],
            OutFraming::Length(2),
            true,
        );
        assert_eq!(out, b"HTTP/1.1 200 OK\r\nx-ok: tab\there \xff\r\ncontent-length: 2\r\n\r\n");
    }

    /// Names are the program's own (`OutField`), so a wrong one fails the tests rather than being
    /// checked on every head.
    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "is not a header name")]
    fn a_response_name_that_is_not_a_token_fails_in_tests() {
        write_response_head(&mut Vec::new(), 200, &[("bad name", b"v")], OutFraming::None, true);
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "is not a header name")]
    fn a_request_name_that_is_not_a_token_fails_in_tests() {
        write_request_head(&mut Vec::new(), "GET", "/", "h", &[("x\r\nset-cookie", b"v")], None);
    }

    /// RFC 9110 §5.6.2, spelled out apart from the table: every byte, first, inside and last.
    #[test]
    fn a_name_is_a_token_only_when_every_byte_is_one() {
        let reference = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        for b in 0..=255u8 {
            for name in [vec![b], vec![b, b'a', b'b'], vec![b'a', b, b'b'], vec![b'a', b'b', b'c', b'd', b'e', b]] {
                assert_eq!(is_token(&name), reference(b), "byte {b:#04x} in {name:?}");
            }
        }
        assert!(is_token(b"X-Custom_Header.v2!"));
    }

    #[test]
    fn keep_alive_connection_header_is_passed_through() {
        let mut out = Vec::new();
        write_response_head(&mut out, 200, &[("connection", b"keep-alive")], OutFraming::Length(0), true);
        assert_eq!(text(&out), "HTTP/1.1 200 OK\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n");
    }

    #[test]
    fn number_text_writes_every_width() {
        for n in [0, 7, 10, 99, 1_000_000, u64::MAX] {
            assert_eq!(NumberText::decimal(n).as_bytes(), n.to_string().as_bytes());
        }
        for (n, width) in [(0u64, 1), (0, 8), (0xa, 1), (0x1f, 8), (0xdead_beef, 8), (u64::MAX, 1), (0x123, 2)] {
            assert_eq!(NumberText::hex(n, width).as_str(), format!("{n:0width$x}"));
        }
    }

    #[test]
    fn chunks() {
        let mut out = Vec::new();
        write_chunk(&mut out, b"hello");
        write_chunk(&mut out, b"");
        write_chunk(&mut out, &[b'x'; 26]);
        write_last_chunk(&mut out);
        let want = [b"5\r\nhello\r\n".as_slice(), b"1a\r\n", &[b'x'; 26], b"\r\n0\r\n\r\n"].concat();
        assert_eq!(out, want);
    }

    #[test]
    fn an_open_chunk_is_written_as_write_chunk_writes_it_whatever_the_estimate() {
        // Sizes at each hex width's edges, as estimates and as the bytes written: an estimate of
        // another width moves the bytes, one of the same width does not, and both frame alike.
        let sizes = [0, 1, 15, 16, 255, 256, 4095, 4096, 65535, 65536];
        for expected in sizes {
            for len in sizes {
                let data: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                let mut out = b"before".to_vec();
                let chunk = OpenChunk::open(&mut out, expected);
                out.extend_from_slice(&data);
                assert_eq!(chunk.bytes(&out), &data[..]);
                chunk.close(&mut out);
                let mut want = b"before".to_vec();
                write_chunk(&mut want, &data);
                assert!(out == want, "estimate {expected}, {len} bytes");
            }
        }
    }

    #[test]
    fn chunks_round_trip_through_decoder() {
        use super::super::{BodyFraming, body::BodyDecoder};
        let mut wire = Vec::new();
        write_chunk(&mut wire, b"data: {}\n\n");
        write_chunk(&mut wire, &[b'z'; 300]);
        write_last_chunk(&mut wire);
        let mut dec = BodyDecoder::new(BodyFraming::Chunked);
        let mut out = Vec::new();
        assert_eq!(dec.decode_into(&wire, &mut out, 1 << 20), Ok(wire.len()));
        assert!(dec.is_done());
        assert_eq!(out, [b"data: {}\n\n".as_slice(), &[b'z'; 300]].concat());
    }

    #[test]
    fn request_head() {
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            "POST",
            "/v1/chat/completions?a=b",
            "api.openai.com",
            &[
                ("authorization", b"Bearer sk-x"),
                ("Host", b"evil"),
                ("content-length", b"1"),
                ("Transfer-Encoding", b"chunked"),
                ("content-type", b"application/json"),
                ("Accept-Encoding", b"gzip"),
            ],
            Some(42),
        );
        assert_eq!(
            text(&out),
            "POST /v1/chat/completions?a=b HTTP/1.1\r\nhost: api.openai.com\r\naccept-encoding: identity\r\nauthorization: Bearer sk-x\r\ncontent-type: application/json\r\ncontent-length: 42\r\n\r\n"
        );
        let mut out = Vec::new();
        write_request_head(&mut out, "GET", "/v1/models", "h:8080", &[], None);
        assert_eq!(text(&out), "GET /v1/models HTTP/1.1\r\nhost: h:8080\r\naccept-encoding: identity\r\n\r\n");
    }

    #[test]
    fn written_heads_parse_back() {
        use super::super::{BodyFraming, request, response};
        let mut out = Vec::new();
        write_request_head(&mut out, "POST", "/x", "h", &[("accept", b"*/*")], Some(0));
        let limits = request::RequestLimits::default();
        let (req, n) = request::parse_request_head(&out, &limits).unwrap().unwrap();
        assert_eq!(n, out.len());
        assert_eq!(req.framing, BodyFraming::Length(0));
        assert_eq!(req.header("host"), Some(&b"h"[..]));
        let mut out = Vec::new();
        write_response_head(&mut out, 200, &[], OutFraming::Chunked, false);
        let (resp, _) = response::parse_response_head(&out, 1024, false).unwrap().unwrap();
        assert_eq!((resp.framing, resp.keep_alive), (BodyFraming::Chunked, false));
    }
}
