//! A fast reader for heads written the plain way (`HTTP/1.1 200 OK` or `POST /v1/x HTTP/1.1`, CRLF
//! line ends, single spaces, `name: value` with printable ASCII values), the way clients and
//! providers write them. It accepts a strict subset of what httparse accepts and reads it the same
//! way; anything else, a head not yet complete included, is left to httparse
//! (`request::parse_request_head` and `response::parse_response_head` ask this reader first). It
//! does not decide framing or keep-alive, and it does not report errors: those are httparse's to
//! name.
//!
//! Why: httparse's header loop was ~1,450 instructions for the six fields of a typical provider
//! answer and ~700 for a request's (a byte-at-a-time name check through an iterator, a runtime SIMD
//! dispatch per value), and copying its field lists into `Headers` ~500 more, of a proxied
//! request's ~30,000. This reader writes the spans `Headers` keeps directly (~1,300 for both
//! heads). Differential proptests and the `request_head` / `response_head` fuzz targets hold it to
//! httparse: whatever it accepts, httparse accepts with the same request line or status, version,
//! fields and length.

use super::{Field, Span, is_tchar, length_bit};

/// The most fields a plain head may have; a head with more is left to httparse. Requests and
/// answers carry 5-20.
const MOST_FIELDS: usize = 32;

/// The fields of a head being read, on the stack: the heap list `Headers` keeps is then taken at
/// its exact length, as for httparse's (a list grown while reading held more room per open stream).
pub(super) struct FieldList {
    fields: [Field; MOST_FIELDS],
    len: usize,
    /// Bit `n` set when some field's name is `n` bytes long (`Headers::name_lengths`).
    pub name_lengths: u64,
}

impl FieldList {
    pub fn new() -> FieldList {
        FieldList {
            fields: [Field { name: Span::default(), value: Span::default() }; MOST_FIELDS],
            len: 0,
            name_lengths: 0,
        }
    }

    pub fn as_slice(&self) -> &[Field] {
        &self.fields[..self.len]
    }

    /// Adds a field; false when the list is full.
    fn push(&mut self, name: Span, value: Span) -> bool {
        let Some(slot) = self.fields.get_mut(self.len) else { return false };
        *slot = Field { name, value };
        self.len += 1;
        self.name_lengths |= length_bit((name.end - name.start) as usize);
        true
    }
}

/// The status line of a plain response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct StatusLine {
    pub status: u16,
    pub minor_version: u8,
}

/// Reads `window` as a complete plain response head: its status line, then its fields into
/// `fields` (spans into `window`), at most `max_fields` of them (and at most 32). Returns the
/// status line and the head's length (final CRLF included). `None` when the head is not plain,
/// not complete, or has more fields.
pub(super) fn read_response(window: &[u8], fields: &mut FieldList, max_fields: usize) -> Option<(StatusLine, usize)> {
    let (line, fields_start) = read_status_line(window)?;
    let consumed = read_fields(window, fields_start, fields, max_fields)?;
    Some((line, consumed))
}

/// The request line of a plain request head: spans into the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RequestLine {
    pub method: Span,
    pub target: Span,
    pub minor_version: u8,
}

/// Reads `window` as a complete plain request head, as [`read_response`] reads a response head:
/// a method of token characters, one space, a target of visible ASCII, one space, `HTTP/1.0` or
/// `HTTP/1.1`, then the fields.
pub(super) fn read_request(window: &[u8], fields: &mut FieldList, max_fields: usize) -> Option<(RequestLine, usize)> {
    let (line, fields_start) = read_request_line(window)?;
    let consumed = read_fields(window, fields_start, fields, max_fields)?;
    Some((line, consumed))
}

fn read_request_line(window: &[u8]) -> Option<(RequestLine, usize)> {
    let method_end = name_end(window, 0)?;
    if method_end == 0 || window[method_end] != b' ' {
        return None;
    }
    let target_start = method_end + 1;
    let target_len = window.get(target_start..)?.iter().position(|&b| !(b'!'..=b'~').contains(&b))?;
    let target_end = target_start + target_len;
    let [b' ', b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor @ (b'0' | b'1'), b'\r', b'\n', ..] =
        window[target_end..]
    else {
        return None;
    };
    if target_len == 0 {
        return None;
    }
    let line = RequestLine {
        method: span(0, method_end),
        target: span(target_start, target_end),
        minor_version: minor - b'0',
    };
    Some((line, target_end + 11))
}

/// `HTTP/1.0` or `HTTP/1.1`, one space, three digits, then the line's end or one space and a reason
/// of printable ASCII; returns where the next line starts.
fn read_status_line(window: &[u8]) -> Option<(StatusLine, usize)> {
    let [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor @ (b'0' | b'1'), b' ', d0, d1, d2, rest @ ..] = window else {
        return None;
    };
    let digit = |d: u8| d.is_ascii_digit().then(|| u16::from(d - b'0'));
    let status = digit(*d0)? * 100 + digit(*d1)? * 10 + digit(*d2)?;
    let after_code = window.len() - rest.len();
    let line_end = match rest {
        [b'\r', ..] => after_code,
        [b' ', reason @ ..] => after_code + 1 + reason.iter().position(|&b| !(b' '..=b'~').contains(&b))?,
        _ => return None,
    };
    (window.get(line_end..line_end + 2)? == b"\r\n")
        .then_some((StatusLine { status, minor_version: minor - b'0' }, line_end + 2))
}

/// Reads `name: value` lines from `at` up to the empty line that ends the head; returns where the
/// head ends. Names are one or more token characters followed directly by the colon; values are
/// printable ASCII, spaces and tabs around them not part of them (as httparse reads them).
fn read_fields(window: &[u8], mut at: usize, fields: &mut FieldList, max_fields: usize) -> Option<usize> {
    loop {
        match window.get(at..at + 2)? {
            b"\r\n" => return Some(at + 2),
            _ if fields.len == max_fields => return None,
            _ => {}
        }
        let name_start = at;
        at = name_end(window, at)?;
        if at == name_start || window[at] != b':' {
            return None;
        }
        let name = span(name_start, at);
        at += 1;
        while let Some(b' ' | b'\t') = window.get(at) {
            at += 1;
        }
        let value_start = at;
        let line_end = value_end(window, at)?;
        if window.get(line_end..line_end + 2)? != b"\r\n" {
            return None;
        }
        let mut trimmed = line_end;
        while trimmed > value_start && matches!(window[trimmed - 1], b' ' | b'\t') {
            trimmed -= 1;
        }
        if !fields.push(name, span(value_start, trimmed)) {
            return None;
        }
        at = line_end + 2;
    }
}

/// The first byte at or after `at` that is not a token character; `None` when the window ends
/// first. Names as they are written (letters, digits, `-`) are passed sixteen bytes at a time; at
/// any other byte the table decides, a byte at a time.
fn name_end(window: &[u8], mut at: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    while let Some(block) = window.get(at..at + 16) {
        let common = common_name_bytes_16(block.try_into().expect("16 bytes"));
        if common != 0xffff {
            at += (!common).trailing_zeros() as usize;
            break;
        }
        at += 16;
    }
    while is_tchar(*window.get(at)?) {
        at += 1;
    }
    Some(at)
}

/// Bit `i` set when byte `i` of `block` is a letter, a digit or `-`: the token characters names
/// are made of (`Content-Type` as often as `content-type` behind some providers' front ends).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn common_name_bytes_16(block: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8,
        _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline; the load reads exactly the 16 bytes of `block`.
    unsafe {
        let bytes = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
        // Signed compares: bytes 0x80 and above are negative, so in neither range.
        let in_range = |low: u8, high: u8| {
            _mm_and_si128(
                _mm_cmpgt_epi8(bytes, _mm_set1_epi8(low as i8 - 1)),
                _mm_cmplt_epi8(bytes, _mm_set1_epi8(high as i8 + 1)),
            )
        };
        let letters = _mm_or_si128(in_range(b'a', b'z'), in_range(b'A', b'Z'));
        let common =
            _mm_or_si128(_mm_or_si128(letters, in_range(b'0', b'9')), _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'-' as i8)));
        _mm_movemask_epi8(common) as u32
    }
}

fn span(start: usize, end: usize) -> Span {
    // Heads are bounded far below 4 GiB (`max_head_bytes`).
    Span { start: start as u32, end: end as u32 }
}

/// The first byte at or after `at` that is neither printable ASCII nor a space or tab; `None` when
/// the window ends first.
fn value_end(window: &[u8], mut at: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    while let Some(block) = window.get(at..at + 16) {
        let stops = value_stops_16(block.try_into().expect("16 bytes"));
        if stops != 0 {
            at += stops.trailing_zeros() as usize;
            // A tab is allowed in a value, but flagged with the other control bytes: go past it.
            if window[at] != b'\t' {
                return Some(at);
            }
            at += 1;
            continue;
        }
        at += 16;
    }
    loop {
        match *window.get(at)? {
            b'\t' | b' '..=b'~' => at += 1,
            _ => return Some(at),
        }
    }
}

/// Bit `i` set when byte `i` of `block` is below 0x20 (tab included) or 0x7f and above.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn value_stops_16(block: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline; the load reads exactly the 16 bytes of `block`.
    unsafe {
        let bytes = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
        // Signed: bytes 0x80 and above are negative, so "below 0x20" flags them with the controls.
        let low_or_high = _mm_cmplt_epi8(bytes, _mm_set1_epi8(0x20));
        let delete = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(0x7f));
        _mm_movemask_epi8(_mm_or_si128(low_or_high, delete)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response head as read: status, version, fields as byte pairs, length.
    type View = (u16, u8, Vec<(Vec<u8>, Vec<u8>)>, usize);

    /// The plain reader's view of `head`.
    fn plain(head: &[u8]) -> Option<View> {
        let mut fields = FieldList::new();
        let (line, consumed) = read_response(head, &mut fields, 128)?;
        for f in fields.as_slice() {
            assert_ne!(fields.name_lengths & length_bit(f.name.of(head).len()), 0);
        }
        let pairs = fields.as_slice().iter().map(|f| (f.name.of(head).to_vec(), f.value.of(head).to_vec())).collect();
        Some((line.status, line.minor_version, pairs, consumed))
    }

    /// httparse's view of `head`, when it reads it complete.
    fn httparse_view(head: &[u8]) -> Option<View> {
        let mut slots = [httparse::EMPTY_HEADER; 128];
        let mut response = httparse::Response::new(&mut slots);
        let httparse::Status::Complete(consumed) = response.parse(head).ok()? else { return None };
        let pairs = response.headers.iter().map(|h| (h.name.as_bytes().to_vec(), h.value.to_vec())).collect();
        Some((response.code?, response.version?, pairs, consumed))
    }

    #[test]
    fn a_provider_head_is_read_as_httparse_reads_it() {
        let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: req_1\r\n\
            openai-processing-ms: 0\r\ncontent-length: 380\r\nconnection: keep-alive\r\n\r\n{\"id\":1}";
        let read = plain(head).expect("plain");
        assert_eq!(read.0, 200);
        assert_eq!(read.2.len(), 5);
        assert_eq!(read.3, head.len() - 8);
        assert_eq!(Some(read), httparse_view(head));
    }

    #[test]
    fn what_it_reads_httparse_reads_the_same_and_what_it_leaves_is_not_plain() {
        let cases: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.0 404 Not Found\r\na: b\r\n\r\n",
            b"HTTP/1.1 204\r\nx: \r\ny:\r\n\r\n",
            b"HTTP/1.1 200 \r\nv:  spaced  value \t \r\n\r\n",
            b"HTTP/1.1 200 OK\r\nv:\ta\tb\t\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nlong: 0123456789abcdef0123456789abcdef0\t23456789abcdef!\r\n\r\n",
            b"HTTP/1.1 000 OK\r\n\r\n",
            b"HTTP/1.1 200  OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nv: caf\xc3\xa9\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nv: a\x7fb\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nv: a\rb\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nv: a\nb\r\n\r\n",
            b"HTTP/1.1 200 OK\nv: a\n\n",
            b"HTTP/1.1 200 OK\r\nv : a\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n v: a\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nv: a\r\n b\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n: a\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nv: a\r\n",
            b"HTTP/1.1 200 OK\r\nv: a",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.2 200 OK\r\n\r\n",
            b"HTTP/2.0 200 OK\r\n\r\n",
            b"\r\nHTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\tx\r\n\r\n",
            b"HTTP/1.1 200 \xffOK\r\n\r\n",
        ];
        for &head in cases {
            let read = plain(head);
            let reference = httparse_view(head);
            if read.is_some() {
                assert_eq!(read, reference, "{:?}", String::from_utf8_lossy(head));
            }
        }
        // Which of them the plain reader takes (the rest go to httparse).
        let taken: Vec<bool> = cases.iter().map(|head| plain(head).is_some()).collect();
        assert_eq!(&taken[..8], &[true; 8]);
        assert!(taken[8..].iter().all(|&t| !t), "{taken:?}");
    }

    #[test]
    fn a_name_ends_at_its_first_byte_that_is_not_a_token_character_wherever_it_is() {
        for len in 0..40 {
            for (stop, token) in [
                (b':', b'a'),
                (b' ', b'Z'),
                (0x80, b'~'),
                (b'@', b'0'),
                (b'\r', b'-'),
                (b'{', b'`'),
                (b'[', b'A'),
                (b'/', b'9'),
            ] {
                let mut text = vec![b'x'; len];
                text.extend_from_slice(b":rest of the line");
                assert_eq!(name_end(&text, 0), Some(len), "{len}");
                for at in 0..len {
                    let mut text = text.clone();
                    text[at] = token;
                    assert_eq!(name_end(&text, 0), Some(len), "{len} {at} {token:#x}");
                    text[at] = stop;
                    assert_eq!(name_end(&text, 0), Some(at), "{len} {at} {stop:#x}");
                }
            }
            assert_eq!(name_end(&vec![b'a'; len], 0), None);
        }
    }

    #[test]
    fn a_head_with_more_fields_than_allowed_is_left_to_httparse() {
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..3 {
            head.extend_from_slice(format!("f{i}: v\r\n").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        assert!(read_response(&head, &mut FieldList::new(), 3).is_some());
        assert!(read_response(&head, &mut FieldList::new(), 2).is_none());
        // Past the list's own room, whatever the limit.
        let head_with = |count: usize| {
            let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..count {
                head.extend_from_slice(format!("f{i}: v\r\n").as_bytes());
            }
            head.extend_from_slice(b"\r\n");
            head
        };
        assert!(read_response(&head_with(MOST_FIELDS), &mut FieldList::new(), 128).is_some());
        assert!(read_response(&head_with(MOST_FIELDS + 1), &mut FieldList::new(), 128).is_none());
    }

    /// A request head as read: method, target, version, fields, length.
    type RequestView = (Vec<u8>, Vec<u8>, u8, Vec<(Vec<u8>, Vec<u8>)>, usize);

    fn plain_request(head: &[u8]) -> Option<RequestView> {
        let mut fields = FieldList::new();
        let (line, consumed) = read_request(head, &mut fields, 128)?;
        let pairs = fields.as_slice().iter().map(|f| (f.name.of(head).to_vec(), f.value.of(head).to_vec())).collect();
        Some((line.method.of(head).to_vec(), line.target.of(head).to_vec(), line.minor_version, pairs, consumed))
    }

    fn httparse_request(head: &[u8]) -> Option<RequestView> {
        let mut slots = [httparse::EMPTY_HEADER; 128];
        let mut request = httparse::Request::new(&mut slots);
        let httparse::Status::Complete(consumed) = request.parse(head).ok()? else { return None };
        let pairs = request.headers.iter().map(|h| (h.name.as_bytes().to_vec(), h.value.to_vec())).collect();
        let line = (request.method?.as_bytes().to_vec(), request.path?.as_bytes().to_vec());
        Some((line.0, line.1, request.version?, pairs, consumed))
    }

    #[test]
    fn a_request_line_is_read_as_httparse_reads_it_or_left_to_it() {
        let read_alike: &[&[u8]] = &[
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\n{}",
            b"GET /metrics?x=1&y=%20 HTTP/1.0\r\n\r\n",
            b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
            b"OPTIONS http://a/b HTTP/1.1\r\n\r\n",
            b"M!#$%&'*+-.^_`|~ /\"{}|\\^` HTTP/1.1\r\n\r\n",
        ];
        for &head in read_alike {
            assert!(plain_request(head).is_some(), "{:?}", String::from_utf8_lossy(head));
            assert_eq!(plain_request(head), httparse_request(head), "{:?}", String::from_utf8_lossy(head));
        }
        let left: &[&[u8]] = &[
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1 \r\n\r\n",
            b"GET /a b HTTP/1.1\r\n\r\n",
            b"GET /\xc3\xa9 HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.2\r\n\r\n",
            b"GET / HTTP/1.1\n\n",
            b"\r\nGET / HTTP/1.1\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b" / HTTP/1.1\r\n\r\n",
            b"GET  HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\n",
            b"GET / HTTP/1.1\r\nhost: a\r\n",
            b"GET /",
        ];
        for &head in left {
            assert_eq!(plain_request(head), None, "{:?}", String::from_utf8_lossy(head));
        }
    }

    proptest::proptest! {
        /// Request lines of plain and not-so-plain pieces, then a plain field or two: whenever the
        /// plain reader accepts one, httparse reads it identically.
        #[test]
        fn reads_requests_as_httparse_whenever_it_accepts(
            method in proptest::sample::select(vec!["POST", "GET", "get", "M-1", "", "G(T", "\u{e9}"]),
            gap in proptest::sample::select(vec![" ", " ", " ", "  ", "\t"]),
            target in proptest::collection::vec(proptest::sample::select(vec![
                "/", "v1", "?", "=", "%20", "*", "\"", "{", "\\", " ", "\u{e9}", "\u{7f}", "\t", "http://h",
            ]), 0..5),
            version in proptest::sample::select(vec![
                " HTTP/1.1\r\n", " HTTP/1.1\r\n", " HTTP/1.0\r\n", " HTTP/1.1\n", "  HTTP/1.1\r\n", " HTTP/2.0\r\n",
                " http/1.1\r\n", "\r\n",
            ]),
            fields in proptest::sample::select(vec![
                "host: a\r\n\r\n", "\r\n", "host:a \r\nx: y\r\n\r\n", "host: a\r\n",
            ]),
        ) {
            let head = format!("{method}{gap}{}{version}{fields}body", target.concat());
            if let Some(read) = plain_request(head.as_bytes()) {
                proptest::prop_assert_eq!(Some(read), httparse_request(head.as_bytes()), "{:?}", head);
            }
        }
    }

    proptest::proptest! {
        /// Heads put together from plain and not-so-plain pieces (the plain ones repeated, so that
        /// most heads are plain): whenever the plain reader accepts one, httparse reads it identically.
        #[test]
        fn agrees_with_httparse_whenever_it_accepts(
            status in proptest::sample::select(vec![
                "HTTP/1.1 200 OK", "HTTP/1.0 503 Service Unavailable", "HTTP/1.1 429", "HTTP/1.1 200 ",
                "HTTP/1.1  200 OK", "HTTP/1.1 99 x", "HTTP/1.1 200 \u{e9}", "HTTP/1.3 200 OK",
            ]),
            lines in proptest::collection::vec((
                proptest::sample::select(vec![
                    "content-length", "x-a", "A", "t!#$%&'*+-.^_`|~z", "content-length", "x-a", "", "bad name",
                    "\u{e9}",
                ]),
                proptest::sample::select(vec![":", ": ", ":\t", ":  ", ":", ": ", " :"]),
                proptest::collection::vec(proptest::sample::select(vec![
                    "a", " ", "\t", "0123456789abcdef", ";q=1", "\"x\"", "a", " ", "\t", "0123456789abcdef",
                    "\r", "\n", "\u{7f}", "\u{e9}", "\0",
                ]), 0..6),
                proptest::sample::select(vec!["\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\n", "\r\n ", "\r"]),
            ), 0..6),
            end in proptest::sample::select(vec!["\r\n", "\r\n", "\r\n", "\r\n", "\n", "", "\r"]),
        ) {
            let mut head = format!("{status}\r\n");
            for (name, colon, value, eol) in &lines {
                head.push_str(name);
                head.push_str(colon);
                head.push_str(&value.concat());
                head.push_str(eol);
            }
            head.push_str(end);
            head.push_str("body");
            if let Some(read) = plain(head.as_bytes()) {
                proptest::prop_assert_eq!(Some(read), httparse_view(head.as_bytes()), "{:?}", head);
            }
        }
    }
}
