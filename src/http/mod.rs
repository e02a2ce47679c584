//! Sans-IO HTTP/1.1 codec: head parsing, body framing and encoders, plus the
//! types they share. It owns only bytes-in/values-out logic; it does not own
//! sockets, buffers, timeouts, routing or any policy beyond message framing.

pub mod body;
pub mod origin;
mod plain_head;
pub mod request;
pub mod response;
pub mod write;

use std::fmt;

/// The header fields of one head, without a copy per field: the head's bytes are copied once and
/// each field is a pair of ranges into them. Values are raw bytes (no trimming beyond what httparse
/// does, which strips surrounding spaces and tabs); names compare ASCII case-insensitively, as
/// RFC 9110 §5.1 says they are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers {
    raw: Vec<u8>,
    fields: Vec<Field>,
    /// Bit `n` set when some field's name is `n` bytes long (63 for 63 or longer): a lookup of a
    /// name no field can match, the usual case (`transfer-encoding`, `expect`, `x-api-key` on
    /// most heads), answers without walking the fields.
    name_lengths: u64,
}

impl Drop for Headers {
    fn drop(&mut self) {
        crate::buffers::HEAD_BYTES.give_back(std::mem::take(&mut self.raw));
        HEAD_FIELDS.give_back(std::mem::take(&mut self.fields));
    }
}

crate::buffers::stash!(
    /// Parsed heads' field lists (`Headers::fields`), kept per worker like their bytes.
    HEAD_FIELDS: Field, kept_capacity = 128, small = 16
);

/// The bit of [`Headers::name_lengths`] for names of `len` bytes.
fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

/// Where one field's name and value lie in `Headers::raw`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    name: Span,
    value: Span,
}

impl Field {
    /// The name as text. httparse only hands out names made of token characters, which are ASCII.
    fn name_str(self, raw: &[u8]) -> &str {
        ascii_text(self.name.of(raw))
    }
}

/// ASCII case-insensitive equality of two header names, 8 bytes at a time from 8 bytes up. Every
/// lookup of a name some field has the length of compares here (`content-length` four times a
/// request, once each way it is counted and read), and `eq_ignore_ascii_case` folds a byte at a
/// time.
fn same_name(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a.eq_ignore_ascii_case(b);
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let mut at = 0;
    // Whole words, then the last 8 bytes (overlapping the one before when `n` is not a multiple).
    while at + 8 < n {
        if !same_word(word(a, at), word(b, at)) {
            return false;
        }
        at += 8;
    }
    same_word(word(a, n - 8), word(b, n - 8))
}

/// Two words of a name equal but for case. Names looked up are nearly always written in the same
/// case as the field's (both lower case), and bytes that differ in more than the case bit cannot
/// be the same letter: only words that differ in case bits alone are folded.
#[inline(always)]
fn same_word(a: u64, b: u64) -> bool {
    const CASE_BITS: u64 = 0x2020_2020_2020_2020;
    let differ = a ^ b;
    differ == 0 || (differ & !CASE_BITS == 0 && lower_case_word(a) == lower_case_word(b))
}

/// Each byte of `word` in ASCII lower case (`u8::to_ascii_lowercase`), by per-byte sums on the low
/// seven bits, which cannot carry into the next byte: a byte is upper case when its low bits reach
/// `A` but not past `Z` and its top bit is clear; 0x20 is added to those.
fn lower_case_word(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOP: u64 = ONES * 0x80;
    let low = word & (ONES * 0x7f);
    let from_a = low + ONES * u64::from(0x80 - b'A');
    let past_z = low + ONES * u64::from(0x80 - b'Z' - 1);
    let upper = from_a & !past_z & !word & TOP;
    word | (upper >> 2)
}

/// `bytes` as text when they are ASCII, else "": for what the parser or a writer only ever makes of
/// ASCII (header names, the request line's method and target, digits). An ASCII check is a few
/// instructions where `str::from_utf8` on every such span was a visible share of a request's.
fn ascii_text(bytes: &[u8]) -> &str {
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are UTF-8.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    } else {
        ""
    }
}

/// RFC 9110 §5.6.2 token characters, as a table: the plain head reader's name check
/// (`plain_head`) and the writers' debug check of their names (`write`; a test there spells the set
/// out apart from the table).
fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

static TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
            );
        b += 1;
    }
    table
};

/// A `start..end` range into a head's bytes, small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// The span of `part`, a slice httparse handed out from inside `head`.
    fn within(head: &[u8], part: &[u8]) -> Span {
        // Both point into the same buffer, so the difference of addresses is an offset.
        let start = (part.as_ptr() as usize).saturating_sub(head.as_ptr() as usize).min(head.len());
        let end = (start + part.len()).min(head.len());
        Span { start: start as u32, end: end as u32 }
    }

    fn len(self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }

    fn of(self, raw: &[u8]) -> &[u8] {
        raw.get(self.start as usize..self.end as usize).unwrap_or_default()
    }
}

impl Headers {
    /// Copies `head` (the bytes httparse parsed, up to the end of the head) once and records where
    /// each of `parsed`'s fields lies in it.
    fn copy(head: &[u8], parsed: &[httparse::Header<'_>]) -> Headers {
        let mut fields = HEAD_FIELDS.take(parsed.len());
        let mut name_lengths = 0;
        fields.extend(parsed.iter().map(|h| {
            name_lengths |= length_bit(h.name.len());
            Field { name: Span::within(head, h.name.as_bytes()), value: Span::within(head, h.value) }
        }));
        Headers::holding(head, fields, name_lengths)
    }

    /// Copies `head` once, with the fields `plain_head` read in it (spans into `head`), the list
    /// taken at its exact length.
    fn from_spans(head: &[u8], read: &plain_head::FieldList) -> Headers {
        let mut fields = HEAD_FIELDS.take(read.as_slice().len());
        fields.extend_from_slice(read.as_slice());
        Headers::holding(head, fields, read.name_lengths)
    }

    /// A copy of `head` with `fields` (spans into it, from [`HEAD_FIELDS`]) and their names'
    /// length bits. Both buffers come from the worker's stashes and go back to them when the head
    /// drops.
    fn holding(head: &[u8], fields: Vec<Field>, name_lengths: u64) -> Headers {
        let mut raw = crate::buffers::HEAD_BYTES.take(head.len());
        raw.extend_from_slice(head);
        Headers { raw, fields, name_lengths }
    }

    /// False when no field's name has `name`'s length, so none can be `name`.
    fn may_have(&self, name: &str) -> bool {
        self.name_lengths & length_bit(name.len()) != 0
    }

    /// `(name, value)` of every field, in order; names as sent.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields.iter().map(|f| (f.name_str(&self.raw), f.value.of(&self.raw)))
    }

    /// The values of every field called `name` (any case), in order. Compares bytes: no UTF-8
    /// check per field on this path, which every lookup takes.
    fn values<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        let raw = &self.raw;
        let fields: &[Field] = if self.may_have(name) { &self.fields } else { &[] };
        // The length from the span first: most fields walked have another, and need no compare.
        fields
            .iter()
            .filter(move |f| f.name.len() == name.len() && same_name(f.name.of(raw), name.as_bytes()))
            .map(move |f| f.value.of(raw))
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body at all (no framing headers on a request; HEAD/1xx/204/304 responses).
    Empty,
    /// Exactly this many bytes; `Length(0)` is kept as sent rather than folded into `Empty`.
    Length(u64),
    Chunked,
    /// The body ends when the peer closes; only ever produced for responses.
    UntilClose,
}

/// Finds the first header by name (any case).
pub fn find_header<'a>(headers: &'a Headers, name: &str) -> Option<&'a [u8]> {
    headers.values(name).next()
}

/// Why a head could not be accepted. `status()` gives the HTTP status the
/// server should answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    TooLarge,
    TooManyHeaders,
    Malformed(&'static str),
    BadFraming(&'static str),
    UnsupportedVersion,
}

impl HeadError {
    /// 431 for size limits, 505 for versions, 400 for everything else.
    pub fn status(&self) -> u16 {
        match self {
            HeadError::TooLarge | HeadError::TooManyHeaders => 431,
            HeadError::UnsupportedVersion => 505,
            HeadError::Malformed(_) | HeadError::BadFraming(_) => 400,
        }
    }
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::TooLarge => f.write_str("message head too large"),
            HeadError::TooManyHeaders => f.write_str("too many header fields"),
            HeadError::Malformed(why) | HeadError::BadFraming(why) => f.write_str(why),
            HeadError::UnsupportedVersion => f.write_str("unsupported HTTP version"),
        }
    }
}

impl std::error::Error for HeadError {}

/// Upper bound on header slots; sized so the parse scratch space stays on the stack.
const MAX_HEADER_SLOTS: usize = 128;

fn count_headers(headers: &Headers, name: &str) -> usize {
    values_of(headers, name).count()
}

fn values_of<'a>(headers: &'a Headers, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers.values(name)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = v {
        if !is_ows(*first) {
            break;
        }
        v = rest;
    }
    while let [rest @ .., last] = v {
        if !is_ows(*last) {
            break;
        }
        v = rest;
    }
    v
}

/// Comma-separated list elements across every header called `name`, trimmed;
/// empty elements are dropped as RFC 9110 §5.6.1 asks recipients to do.
fn list_elements<'a>(headers: &'a Headers, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    values_of(headers, name).flat_map(|v| v.split(|b| *b == b',')).map(trim_ows).filter(|e| !e.is_empty())
}

fn has_token(headers: &Headers, name: &str, token: &str) -> bool {
    // What `list_elements` yields, without its chain of adapters: every response and request asks
    // this of `connection`, and the chain cost more than the one short field it looks at.
    values_of(headers, name).any(|value| value_has_token(value, token.as_bytes()))
}

/// Whether the comma-separated list `value` has `token` as an element (any case, spaces around an
/// element ignored). A value of one element, the usual `keep-alive` or `close`, is judged without
/// splitting: the split and trims cost more than the rest of a head's framing decision.
fn value_has_token(value: &[u8], token: &[u8]) -> bool {
    if !value.contains(&b',') {
        return trim_ows(value).eq_ignore_ascii_case(token);
    }
    value.split(|b| *b == b',').any(|e| trim_ows(e).eq_ignore_ascii_case(token))
}

/// Persistence per RFC 9112 §9.3: `close` always wins; otherwise 1.1 defaults
/// to persistent and 1.0 only persists when asked to.
fn keep_alive_from(headers: &Headers, minor_version: u8) -> bool {
    if has_token(headers, "connection", "close") {
        return false;
    }
    minor_version >= 1 || has_token(headers, "connection", "keep-alive")
}

/// `1*DIGIT` and nothing else; signs, spaces, lists and overflow are refused
/// because lenient length parsing is the classic smuggling lever.
fn parse_content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |acc, &b| {
        let digit = match b {
            b'0'..=b'9' => u64::from(b - b'0'),
            _ => return None,
        };
        acc.checked_mul(10)?.checked_add(digit)
    })
}

/// httparse reports any unknown version as `Version`; only a well-formed
/// `HTTP/x.y` deserves 505, garbage is a plain 400.
fn version_error(version_token: &[u8]) -> HeadError {
    match version_token {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] if major.is_ascii_digit() && minor.is_ascii_digit() => {
            HeadError::UnsupportedVersion
        }
        _ => HeadError::Malformed("invalid HTTP version"),
    }
}

/// The first non-empty line of `buf`, without its terminator.
fn first_line(buf: &[u8]) -> &[u8] {
    let start = buf.iter().position(|b| *b != b'\r' && *b != b'\n').unwrap_or(buf.len());
    let rest = &buf[start..];
    let end = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
    &rest[..end]
}

fn map_parse_error(err: httparse::Error, version_token: impl FnOnce() -> HeadError) -> HeadError {
    match err {
        httparse::Error::HeaderName => HeadError::Malformed("invalid header name"),
        httparse::Error::HeaderValue => HeadError::Malformed("invalid header value"),
        httparse::Error::NewLine => HeadError::Malformed("invalid line ending"),
        httparse::Error::Status => HeadError::Malformed("invalid status line"),
        httparse::Error::Token => HeadError::Malformed("invalid request line"),
        httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
        httparse::Error::Version => version_token(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Headers as the parsers build them, from a head's text.
    fn headers_of(head: &str) -> Headers {
        let mut slots = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut slots);
        let httparse::Status::Complete(n) = req.parse(head.as_bytes()).unwrap() else { panic!("partial") };
        Headers::copy(&head.as_bytes()[..n], req.headers)
    }

    #[test]
    fn find_header_returns_first_match_in_any_case() {
        let hs = headers_of("GET / HTTP/1.1\r\na: 1\r\nB: 2\r\nA: 3\r\n\r\n");
        assert_eq!(find_header(&hs, "a"), Some(&b"1"[..]));
        assert_eq!(find_header(&hs, "b"), Some(&b"2"[..]));
        assert_eq!(find_header(&hs, "c"), None);
        assert_eq!(count_headers(&hs, "a"), 2);
        let fields: Vec<(&str, &[u8])> = hs.iter().collect();
        assert_eq!(fields, [("a", &b"1"[..]), ("B", &b"2"[..]), ("A", &b"3"[..])]);
    }

    /// The word-wide fold is `to_ascii_lowercase` for every byte value in every place of a word.
    #[test]
    fn words_fold_to_lower_case_as_bytes_do() {
        for place in 0..8 {
            for b in 0..=255u8 {
                let mut bytes = *b"aZ-0~^_@";
                bytes[place] = b;
                let folded = lower_case_word(u64::from_le_bytes(bytes)).to_le_bytes();
                assert_eq!(folded, bytes.map(|c| c.to_ascii_lowercase()), "{b:#x} at {place}");
            }
        }
    }

    /// Names compare as `eq_ignore_ascii_case` does at every length up to 40, whatever byte differs
    /// where, case flips included.
    #[test]
    fn names_compare_as_eq_ignore_ascii_case() {
        let base: Vec<u8> = b"content-length-x-corelay-overhead-us-1234".to_vec();
        for n in 0..=40 {
            let a = &base[..n];
            assert!(same_name(a, &a.to_ascii_uppercase()));
            assert!(!same_name(a, &base[..n + 1]));
            for at in 0..n {
                for b in [0u8, b'@', b'[', b'`', b'{', b'^', b'~', 0x7f, 0xc3, b'A', b'z', b'-', b'\r'] {
                    let mut other = a.to_vec();
                    other[at] = b;
                    assert_eq!(same_name(a, &other), a.eq_ignore_ascii_case(&other), "{b:#x} at {at} of {n}");
                    other[at] = a[at].to_ascii_uppercase();
                    assert!(same_name(a, &other));
                }
            }
        }
    }

    #[test]
    fn lookups_by_a_length_no_field_has_find_nothing_and_long_names_share_a_length() {
        let long = "x".repeat(70);
        let longer = "y".repeat(90);
        let hs = headers_of(&format!("GET / HTTP/1.1\r\nhost: h\r\n{long}: 1\r\nContent-Length: 2\r\n\r\n"));
        assert_eq!(find_header(&hs, "expect"), None);
        assert_eq!(count_headers(&hs, "transfer-encoding"), 0);
        assert_eq!(find_header(&hs, "hosts"), None);
        assert_eq!(find_header(&hs, "content-length"), Some(&b"2"[..]));
        assert_eq!(find_header(&hs, &long.to_uppercase()), Some(&b"1"[..]));
        // 70 and 90 bytes share the last bit: the walk, not the bits, tells them apart.
        assert!(hs.may_have(&longer));
        assert_eq!(find_header(&hs, &longer), None);
        assert_eq!(find_header(&Headers::default(), "host"), None);
    }

    #[test]
    fn status_codes_per_error() {
        assert_eq!(HeadError::TooLarge.status(), 431);
        assert_eq!(HeadError::TooManyHeaders.status(), 431);
        assert_eq!(HeadError::UnsupportedVersion.status(), 505);
        assert_eq!(HeadError::Malformed("x").status(), 400);
        assert_eq!(HeadError::BadFraming("x").status(), 400);
    }

    #[test]
    fn display_is_human() {
        assert_eq!(
            HeadError::BadFraming("both Content-Length and Transfer-Encoding present").to_string(),
            "both Content-Length and Transfer-Encoding present"
        );
        assert_eq!(HeadError::TooLarge.to_string(), "message head too large");
    }

    #[test]
    fn content_length_grammar() {
        assert_eq!(parse_content_length(b"0"), Some(0));
        assert_eq!(parse_content_length(b"0042"), Some(42));
        assert_eq!(parse_content_length(b"18446744073709551615"), Some(u64::MAX));
        for bad in [&b""[..], b"18446744073709551616", b"+1", b"-1", b"1 2", b"1,1", b"0x10", b" 1"] {
            assert_eq!(parse_content_length(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn trim_and_tokens() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"  "), b"");
        let hs = headers_of("GET / HTTP/1.1\r\nconnection: Upgrade , KEEP-ALIVE\r\nConnection: ,close,\r\n\r\n");
        assert!(has_token(&hs, "connection", "keep-alive"));
        assert!(has_token(&hs, "connection", "close"));
        assert!(!has_token(&hs, "connection", "upgrade2"));
    }

    /// The one-element shortcut answers as the split does, for every value a list could take.
    #[test]
    fn a_token_is_found_with_or_without_commas() {
        let split =
            |value: &[u8], token: &[u8]| value.split(|b| *b == b',').any(|e| trim_ows(e).eq_ignore_ascii_case(token));
        let values: [&[u8]; 12] = [
            b"close",
            b"Close",
            b" close\t",
            b"keep-alive",
            b"closed",
            b"clos",
            b"",
            b" ",
            b"a, close",
            b"close,",
            b",,",
            b"keep-alive ,CLOSE ,x",
        ];
        for value in values {
            for token in [&b"close"[..], b"keep-alive", b"x"] {
                assert_eq!(value_has_token(value, token), split(value, token), "{value:?} {token:?}");
            }
        }
    }

    #[test]
    fn version_classification() {
        assert_eq!(version_error(b"HTTP/2.0"), HeadError::UnsupportedVersion);
        assert_eq!(version_error(b"HTTP/1.2"), HeadError::UnsupportedVersion);
        assert!(matches!(version_error(b"HTTP/1.1x"), HeadError::Malformed(_)));
        assert!(matches!(version_error(b"http/1.1"), HeadError::Malformed(_)));
        assert_eq!(first_line(b"\r\nGET / HTTP/9.9\r\nx"), b"GET / HTTP/9.9");
        assert_eq!(first_line(b""), b"");
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

    const SEED_REQUEST: &[u8] = b"POST /v1/chat HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, close\r\nExpect: 100-continue\r\n\r\n";
    const SEED_VALID_REQUEST: &[u8] = b"POST /v1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    const SEED_RESPONSE: &[u8] =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5, 5\r\nConnection: close\r\n\r\n";

    /// Mutates a valid head so the parsers see near-valid inputs, not only noise.
    fn mutate(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
        const SPICY: &[u8] = b"\r\n :,;\t\0\x7f\x80\xffHTP/0123456789";
        let mut buf = seed.to_vec();
        for _ in 0..rng.below(4) {
            let at = rng.below(buf.len() + 1);
            let byte = if rng.below(2) == 0 { SPICY[rng.below(SPICY.len())] } else { rng.next() as u8 };
            match rng.below(3) {
                0 if at < buf.len() => buf[at] = byte,
                1 if at < buf.len() => {
                    buf.remove(at);
                }
                _ => buf.insert(at, byte),
            }
        }
        let cut = rng.below(buf.len() + 1);
        buf.truncate(if rng.below(4) == 0 { cut } else { buf.len() });
        buf
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut parsed = 0;
        for round in 0..4000 {
            let buf = match round % 4 {
                0 => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
                1 => mutate(&mut rng, SEED_REQUEST),
                2 => mutate(&mut rng, SEED_VALID_REQUEST),
                _ => mutate(&mut rng, SEED_RESPONSE),
            };
            // Mostly roomy limits so the post-parse paths run; sometimes tight ones.
            let tight = rng.below(4) == 0;
            let limits = request::RequestLimits {
                max_head_bytes: if tight { rng.below(200) } else { 8192 },
                max_headers: if tight { rng.below(6) } else { 32 },
            };
            if let Ok(Some((head, n))) = request::parse_request_head(&buf, &limits) {
                assert!(n <= buf.len() && n <= limits.max_head_bytes);
                parsed += 1;
                let mut dec = body::BodyDecoder::new(head.framing);
                let _ = dec.decode_into(&buf[n..], &mut Vec::new(), 64);
            }
            let max = if tight { rng.below(200) } else { 8192 };
            if let Ok(Some((head, n))) = response::parse_response_head(&buf, max, round % 2 == 0) {
                assert!(n <= buf.len() && n <= max);
                parsed += 1;
                let mut dec = body::BodyDecoder::new(head.framing);
                let _ = dec.decode_into(&buf[n..], &mut Vec::new(), 64);
            }
        }
        // Guards against the loop silently degenerating into all-rejects.
        assert!(parsed > 500, "only {parsed} inputs parsed");
    }
}
