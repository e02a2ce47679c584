//! Server-side request head parsing: turns client bytes into a validated
//! `RequestHead` and decides body framing, persistence and `Expect`. It does
//! not read bodies (see `body`) or decide routing, auth or limits policy.
//!
//! This is the request-smuggling boundary, so every ambiguity is refused
//! rather than resolved: duplicate or list-valued Content-Length, any
//! Transfer-Encoding other than a lone `chunked`, both at once, TE on
//! HTTP/1.0, missing or repeated Host on HTTP/1.1.

use std::mem::MaybeUninit;

use super::{
    BodyFraming, HeadError, Headers, MAX_HEADER_SLOTS, Span, ascii_text, count_headers, find_header, first_line,
    has_token, keep_alive_from, map_parse_error, parse_content_length, plain_head, trim_ows, values_of, version_error,
};

/// Bounds applied while the head is still arriving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Largest accepted head, including the final CRLFCRLF.
    pub max_head_bytes: usize,
    /// Largest accepted header count; values above 128 act as 128.
    pub max_headers: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits { max_head_bytes: 16 * 1024, max_headers: 64 }
    }
}

/// A parsed and validated request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The request line's method and target, as spans of the head's bytes in `headers`.
    method: Span,
    target: Span,
    /// The target without its `?query`, found once: routing asks for it several times a request.
    path: Span,
    pub minor_version: u8,
    pub headers: Headers,
    /// `Empty` (no framing headers), `Length` (including `Length(0)`) or `Chunked`.
    pub framing: BodyFraming,
    pub keep_alive: bool,
    /// Only ever true for HTTP/1.1: RFC 9110 §10.1.1 says to ignore it on 1.0.
    pub expect_continue: bool,
}

impl RequestHead {
    /// The first header with this name (compared in any case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        find_header(&self.headers, name)
    }

    pub fn method(&self) -> &str {
        self.request_line_text(self.method)
    }

    /// The request target as sent (origin-form, or `*`).
    pub fn target(&self) -> &str {
        self.request_line_text(self.target)
    }

    /// The target without its `?query`.
    pub fn path(&self) -> &str {
        self.request_line_text(self.path)
    }

    /// The text of a span of the request line, without a UTF-8 check per call: routing asks for
    /// the method and path ~9 times a request, and `str::from_utf8` each time was ~700 of a
    /// request's ~37,000 instructions.
    fn request_line_text(&self, span: Span) -> &str {
        let bytes = span.of(&self.headers.raw);
        // These spans are ASCII: `build_head` makes them from the method (an HTTP token: httparse
        // admits only visible ASCII there) and from a target that passed `check_target`'s ASCII
        // check (`path` is a prefix of it).
        debug_assert!(bytes.is_ascii(), "request line spans are ASCII");
        super::ascii_text(bytes)
    }
}

/// Ok(None): incomplete and still under max_head_bytes.
/// Ok(Some((head, consumed))): consumed = bytes of the head incl. final CRLFCRLF
/// (and any empty lines httparse skipped before the request line).
pub fn parse_request_head(buf: &[u8], limits: &RequestLimits) -> Result<Option<(RequestHead, usize)>, HeadError> {
    // Parsing only the allowed window both bounds the work and turns "complete
    // but too long" into the same Partial-at-limit case as "still arriving".
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    let max_fields = limits.max_headers.min(MAX_HEADER_SLOTS);
    if let Some(plain) = read_plain(window, max_fields) {
        return plain.map(Some);
    }
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADER_SLOTS];
    let slots = &mut slots[..max_fields];
    let mut req = httparse::Request::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut req, window, slots)
        .map_err(|e| map_parse_error(e, || request_version_error(window)))?;
    match parsed {
        httparse::Status::Partial if window.len() >= limits.max_head_bytes => Err(HeadError::TooLarge),
        httparse::Status::Partial => Ok(None),
        httparse::Status::Complete(consumed) => {
            let (Some(method), Some(target), Some(minor_version)) = (req.method, req.path, req.version) else {
                return Err(HeadError::Malformed("incomplete request line"));
            };
            let bytes = &window[..consumed];
            let headers = Headers::copy(bytes, req.headers);
            build_head(method, target, minor_version, headers, bytes).map(|head| Some((head, consumed)))
        }
    }
}

/// The head read by `plain_head` when it is written the plain way and complete; `None` leaves it to
/// httparse, which reads the same heads the same way and also names what is wrong with the rest.
fn read_plain(window: &[u8], max_fields: usize) -> Option<Result<(RequestHead, usize), HeadError>> {
    let mut fields = plain_head::FieldList::new();
    let (line, consumed) = plain_head::read_request(window, &mut fields, max_fields)?;
    let bytes = &window[..consumed];
    // Both spans are visible ASCII (the reader admits nothing else there).
    let (method, target) = (ascii_text(line.method.of(bytes)), ascii_text(line.target.of(bytes)));
    let headers = Headers::from_spans(bytes, &fields);
    Some(build_head(method, target, line.minor_version, headers, bytes).map(|head| (head, consumed)))
}

fn request_version_error(window: &[u8]) -> HeadError {
    let line = first_line(window);
    // `GET /a b HTTP/1.1`: the version is fine, the line is not (a space in the target).
    if line.split(|b| *b == b' ').count() != 3 {
        return HeadError::Malformed("request line must be method, target and version separated by single spaces");
    }
    let version = line.rsplit(|b| *b == b' ').next().unwrap_or(line);
    version_error(version)
}

/// `method` and `target` lie inside `bytes`, the whole head, which `headers` holds a copy of.
fn build_head(
    method: &str,
    target: &str,
    minor_version: u8,
    headers: Headers,
    bytes: &[u8],
) -> Result<RequestHead, HeadError> {
    check_target(target)?;
    let target = origin_form(target)?;
    check_host(&headers, minor_version)?;
    let framing = request_framing(&headers, minor_version)?;
    let keep_alive = keep_alive_from(&headers, minor_version);
    let expect_continue = minor_version == 1 && expects_continue(&headers);
    Ok(RequestHead {
        method: Span::within(bytes, method.as_bytes()),
        target: Span::within(bytes, target.as_bytes()),
        path: Span::within(bytes, path_of(target).as_bytes()),
        minor_version,
        headers,
        framing,
        keep_alive,
        expect_continue,
    })
}

/// The target up to its query. A byte search (a `?` byte is always a char boundary), where
/// `split_once('?')` set up a char searcher for every request's short path.
fn path_of(target: &str) -> &str {
    target.as_bytes().iter().position(|&b| b == b'?').map_or(target, |query| &target[..query])
}

/// Origin-form, asterisk-form and absolute-form (`http://host/path`, which RFC 9112 §3.2.2 says a
/// server must accept) are valid at an origin server; authority-form is only for CONNECT.
fn check_target(target: &str) -> Result<(), HeadError> {
    if !target.is_ascii() {
        return Err(HeadError::Malformed("request target must be ASCII"));
    }
    if target == "*" || target.starts_with('/') || absolute_form_rest(target).is_some() {
        Ok(())
    } else {
        Err(HeadError::Malformed("request target must be origin-form or absolute-form"))
    }
}

/// What follows `http://` or `https://` (any case) in an absolute-form target.
fn absolute_form_rest(target: &str) -> Option<&str> {
    // Nearly every target is origin-form: one byte decides it before any search.
    if target.starts_with('/') {
        return None;
    }
    let (scheme, rest) = target.split_once("://")?;
    (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")).then_some(rest)
}

/// The origin-form part of a target (a subslice of it): an absolute-form target's path and query.
/// Only the path routes; the authority in the target names this gateway, whatever it says.
fn origin_form(target: &str) -> Result<&str, HeadError> {
    let Some(rest) = absolute_form_rest(target) else { return Ok(target) };
    match rest.find(['/', '?']) {
        Some(at) if rest.as_bytes()[at] == b'/' => Ok(&rest[at..]),
        _ => Err(HeadError::Malformed("absolute-form request target without a path")),
    }
}

/// RFC 9112 §3.2: a 1.1 request needs exactly one Host; two are refused on any version.
fn check_host(headers: &Headers, minor_version: u8) -> Result<(), HeadError> {
    match count_headers(headers, "host") {
        0 if minor_version >= 1 => Err(HeadError::Malformed("missing Host header")),
        0 | 1 => Ok(()),
        _ => Err(HeadError::Malformed("multiple Host headers")),
    }
}

fn request_framing(headers: &Headers, minor_version: u8) -> Result<BodyFraming, HeadError> {
    let cl = count_headers(headers, "content-length");
    let te = count_headers(headers, "transfer-encoding");
    match (cl, te) {
        (0, 0) => Ok(BodyFraming::Empty),
        (0, _) => transfer_encoding(headers, te, minor_version),
        (_, 0) => content_length(headers, cl),
        _ => Err(HeadError::BadFraming("both Content-Length and Transfer-Encoding present")),
    }
}

fn content_length(headers: &Headers, count: usize) -> Result<BodyFraming, HeadError> {
    if count > 1 {
        return Err(HeadError::BadFraming("multiple Content-Length headers"));
    }
    values_of(headers, "content-length")
        .next()
        .and_then(parse_content_length)
        .map(BodyFraming::Length)
        .ok_or(HeadError::BadFraming("invalid Content-Length"))
}

fn transfer_encoding(headers: &Headers, count: usize, minor_version: u8) -> Result<BodyFraming, HeadError> {
    if minor_version == 0 {
        return Err(HeadError::BadFraming("Transfer-Encoding on an HTTP/1.0 request"));
    }
    if count > 1 {
        return Err(HeadError::BadFraming("multiple Transfer-Encoding headers"));
    }
    let value = values_of(headers, "transfer-encoding").next().map(trim_ows);
    match value {
        Some(v) if v.eq_ignore_ascii_case(b"chunked") => Ok(BodyFraming::Chunked),
        _ => Err(HeadError::BadFraming("unsupported Transfer-Encoding")),
    }
}

fn expects_continue(headers: &Headers) -> bool {
    has_token(headers, "expect", "100-continue")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RequestLimits = RequestLimits { max_head_bytes: 8192, max_headers: 32 };

    fn parse(raw: &str) -> Result<Option<(RequestHead, usize)>, HeadError> {
        parse_request_head(raw.as_bytes(), &LIMITS)
    }

    fn head(raw: &str) -> RequestHead {
        match parse(raw) {
            Ok(Some((h, n))) => {
                assert_eq!(n, raw.len(), "consumed");
                h
            }
            other => panic!("expected a head for {raw:?}, got {other:?}"),
        }
    }

    fn err(raw: &str) -> HeadError {
        match parse(raw) {
            Err(e) => e,
            other => panic!("expected an error for {raw:?}, got {other:?}"),
        }
    }

    fn bad_framing(raw: &str) {
        assert!(matches!(err(raw), HeadError::BadFraming(_)), "expected BadFraming for {raw:?}");
    }

    #[test]
    fn parses_a_simple_post() {
        let raw = "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n";
        let h = head(raw);
        assert_eq!(h.method(), "POST");
        assert_eq!(h.target(), "/v1/chat/completions?x=1");
        assert_eq!(h.path(), "/v1/chat/completions");
        assert_eq!(h.minor_version, 1);
        assert_eq!(h.headers.len(), 3);
        assert_eq!(h.headers.iter().nth(1).map(|(name, _)| name), Some("Content-Type"));
        assert_eq!(h.header("content-type"), Some(&b"application/json"[..]));
        assert_eq!(h.header("Content-Type"), Some(&b"application/json"[..]), "names match in any case");
        assert_eq!(h.framing, BodyFraming::Length(12));
        assert!(h.keep_alive);
        assert!(!h.expect_continue);
    }

    #[test]
    fn consumed_excludes_following_body() {
        let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET";
        let (h, n) = parse_request_head(raw, &LIMITS).unwrap().unwrap();
        assert_eq!(&raw[n..], b"abcGET");
        assert_eq!(h.framing, BodyFraming::Length(3));
    }

    #[test]
    fn every_prefix_is_incomplete() {
        let raw = "GET /a HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
        for cut in 0..raw.len() {
            assert_eq!(parse_request_head(&raw.as_bytes()[..cut], &LIMITS), Ok(None), "cut at {cut}");
        }
        assert!(head(raw).headers.len() == 2);
    }

    #[test]
    fn head_size_limit() {
        let raw = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let exact = RequestLimits { max_head_bytes: raw.len(), max_headers: 8 };
        assert!(matches!(
            parse_request_head(raw.as_bytes(), &exact),
            Ok(Some((_, n))) if n == raw.len()
        ));
        let short = RequestLimits { max_head_bytes: raw.len() - 1, max_headers: 8 };
        assert_eq!(
            parse_request_head(raw.as_bytes(), &short),
            Err(HeadError::TooLarge),
            "complete head longer than the limit"
        );
        let partial = &raw.as_bytes()[..raw.len() - 1];
        assert_eq!(parse_request_head(partial, &short), Err(HeadError::TooLarge), "incomplete head at the limit");
        assert_eq!(
            parse_request_head(&partial[..partial.len() - 1], &short),
            Ok(None),
            "incomplete head below the limit"
        );
        let zero = RequestLimits { max_head_bytes: 0, max_headers: 8 };
        assert_eq!(parse_request_head(b"", &zero), Err(HeadError::TooLarge));
    }

    #[test]
    fn header_count_limit() {
        let raw = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n";
        let three = RequestLimits { max_head_bytes: 1024, max_headers: 3 };
        assert!(parse_request_head(raw.as_bytes(), &three).unwrap().is_some());
        let two = RequestLimits { max_head_bytes: 1024, max_headers: 2 };
        assert_eq!(parse_request_head(raw.as_bytes(), &two), Err(HeadError::TooManyHeaders));
        let mut many = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 0..200 {
            many.push_str(&format!("X-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        let huge = RequestLimits { max_head_bytes: 1 << 20, max_headers: 10_000 };
        assert_eq!(
            parse_request_head(many.as_bytes(), &huge),
            Err(HeadError::TooManyHeaders),
            "max_headers is capped at 128"
        );
    }

    #[test]
    fn versions() {
        assert_eq!(head("GET / HTTP/1.0\r\n\r\n").minor_version, 0);
        assert_eq!(err("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), HeadError::UnsupportedVersion);
        assert_eq!(err("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), HeadError::UnsupportedVersion);
        assert!(matches!(err("GET / HTTX/1.1\r\n\r\n"), HeadError::Malformed(_)));
        assert!(matches!(err("GET / http/1.1\r\n\r\n"), HeadError::Malformed(_)));
        assert!(matches!(err("GET /\r\n\r\n"), HeadError::Malformed(_)));
        // A space in the target is a bad request line, not a version the gateway lacks.
        assert!(matches!(err("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), HeadError::Malformed(_)));
        assert_eq!(HeadError::UnsupportedVersion.status(), 505);
    }

    #[test]
    fn framing_defaults() {
        assert_eq!(head("GET / HTTP/1.1\r\nHost: a\r\n\r\n").framing, BodyFraming::Empty);
        assert_eq!(head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n").framing, BodyFraming::Length(0));
        assert_eq!(
            head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n").framing,
            BodyFraming::Length(u64::MAX)
        );
        assert_eq!(
            head("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n").framing,
            BodyFraming::Chunked
        );
        assert_eq!(
            head("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  CHUNKED \t\r\n\r\n").framing,
            BodyFraming::Chunked
        );
        assert_eq!(head("POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\n").framing, BodyFraming::Length(5));
    }

    #[test]
    fn content_length_smuggling_cases() {
        let base = "POST / HTTP/1.1\r\nHost: a\r\n";
        for cl in [
            "Content-Length: 5\r\nContent-Length: 5\r\n",
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            "Content-Length: 5, 5\r\n",
            "Content-Length: 5,5\r\n",
            "Content-Length:\r\n",
            "Content-Length: abc\r\n",
            "Content-Length: 5a\r\n",
            "Content-Length: 0x5\r\n",
            "Content-Length: +5\r\n",
            "Content-Length: -5\r\n",
            "Content-Length: 5 5\r\n",
            "Content-Length: 18446744073709551616\r\n",
            "Content-Length: 99999999999999999999999\r\n",
        ] {
            bad_framing(&format!("{base}{cl}\r\n"));
        }
    }

    #[test]
    fn transfer_encoding_smuggling_cases() {
        let base = "POST / HTTP/1.1\r\nHost: a\r\n";
        for te in [
            "Transfer-Encoding: gzip\r\n",
            "Transfer-Encoding: gzip, chunked\r\n",
            "Transfer-Encoding: chunked, chunked\r\n",
            "Transfer-Encoding: chunked,\r\n",
            "Transfer-Encoding: identity\r\n",
            "Transfer-Encoding: chunkedx\r\n",
            "Transfer-Encoding: \"chunked\"\r\n",
            "Transfer-Encoding:\r\n",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        ] {
            bad_framing(&format!("{base}{te}\r\n"));
        }
        assert_eq!(
            err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n").to_string(),
            "both Content-Length and Transfer-Encoding present"
        );
        bad_framing("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
    }

    #[test]
    fn header_syntax_is_strict() {
        for raw in [
            "GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\n: empty-name\r\n\r\n",
            "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
            "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            assert!(matches!(err(raw), HeadError::Malformed(_)), "{raw:?}");
        }
    }

    #[test]
    fn host_rules() {
        assert!(matches!(err("GET / HTTP/1.1\r\n\r\n"), HeadError::Malformed(_)));
        assert!(matches!(err("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), HeadError::Malformed(_)));
        assert!(matches!(err("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), HeadError::Malformed(_)));
        assert_eq!(head("GET / HTTP/1.0\r\n\r\n").header("host"), None);
        assert_eq!(head("GET / HTTP/1.1\r\nHOST: x\r\n\r\n").header("host"), Some(&b"x"[..]));
    }

    #[test]
    fn keep_alive_matrix() {
        let cases = [
            ("1.1", "", true),
            ("1.1", "Connection: close\r\n", false),
            ("1.1", "Connection: Keep-Alive, CLOSE\r\n", false),
            ("1.1", "Connection: keep-alive\r\n", true),
            ("1.1", "Connection: upgrade\r\nConnection: close\r\n", false),
            ("1.1", "Connection: closed\r\n", true),
            ("1.0", "", false),
            ("1.0", "Connection: keep-alive\r\n", true),
            ("1.0", "Connection: foo ,KEEP-ALIVE\r\n", true),
            ("1.0", "Connection: foo\r\nConnection: keep-alive\r\n", true),
            ("1.0", "Connection: keep-alive, close\r\n", false),
            ("1.0", "Connection: keep-alives\r\n", false),
        ];
        for (version, extra, want) in cases {
            let raw = format!("GET / HTTP/{version}\r\nHost: a\r\n{extra}\r\n");
            assert_eq!(head(&raw).keep_alive, want, "{raw:?}");
        }
    }

    #[test]
    fn expect_continue() {
        let h = |extra: &str, v: &str| head(&format!("POST / HTTP/{v}\r\nHost: a\r\nContent-Length: 1\r\n{extra}\r\n"));
        assert!(h("Expect: 100-continue\r\n", "1.1").expect_continue);
        assert!(h("Expect: 100-Continue\r\n", "1.1").expect_continue);
        assert!(!h("", "1.1").expect_continue);
        assert!(!h("Expect: 200-ok\r\n", "1.1").expect_continue);
        assert!(!h("Expect: 100-continue\r\n", "1.0").expect_continue);
    }

    #[test]
    fn target_forms() {
        assert_eq!(head("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").path(), "*");
        assert_eq!(head("GET /?q HTTP/1.1\r\nHost: a\r\n\r\n").path(), "/");
        assert_eq!(head("GET /a/b HTTP/1.1\r\nHost: a\r\n\r\n").path(), "/a/b");
        // Absolute-form is accepted (RFC 9112 §3.2.2); only its path and query route.
        assert_eq!(
            head("POST http://gw.example/v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").path(),
            "/v1/chat/completions"
        );
        assert_eq!(head("GET HTTPS://gw/v1/models HTTP/1.1\r\nHost: a\r\n\r\n").target(), "/v1/models");
        for target in ["http://evil", "ftp://evil/x", "evil:443", "a", "*x", "/\u{e9}"] {
            let raw = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
            assert!(matches!(err(&raw), HeadError::Malformed(_)), "{target}");
        }
    }

    #[test]
    fn bare_lf_heads_are_accepted() {
        // RFC 9112 §2.2 lets a recipient accept bare LF in the head; we
        // re-serialise upstream requests ourselves, so no differential leaks.
        let h = head("GET / HTTP/1.1\nHost: a\nContent-Length: 2\n\n");
        assert_eq!(h.framing, BodyFraming::Length(2));
        assert!(matches!(err("GET / HTTP/1.1\rHost: a\r\n\r\n"), HeadError::Malformed(_)));
    }

    #[test]
    fn leading_empty_lines_are_skipped_and_counted() {
        let raw = "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(head(raw).method(), "GET");
    }
}
