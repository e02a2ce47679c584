//! Client-side response head parsing for upstream provider responses: status,
//! headers, body framing (RFC 9112 §6.3) and whether the connection can be
//! reused. It does not read bodies (see `body`) or interpret status codes.
//!
//! Unlike the request side this is lenient where RFC 9112 lets a client be
//! (reason phrase, repeated identical Content-Length, unknown codings) but
//! never lets an ambiguous body delimit a reusable connection.

use std::mem::MaybeUninit;

use super::{
    BodyFraming, HeadError, Headers, MAX_HEADER_SLOTS, count_headers, find_header, first_line, keep_alive_from,
    list_elements, map_parse_error, parse_content_length, plain_head, trim_ows, values_of, version_error,
};

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub minor_version: u8,
    pub headers: Headers,
    pub framing: BodyFraming,
    /// False whenever the body is delimited by close or its framing was ambiguous.
    pub keep_alive: bool,
}

impl ResponseHead {
    /// The first header with this name (compared in any case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        find_header(&self.headers, name)
    }

    /// 1xx: another head follows on the same connection.
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status)
    }
}

/// Ok(None): incomplete and still under max_head_bytes.
/// Ok(Some((head, consumed))): consumed = bytes of the head incl. final CRLFCRLF.
/// At most 128 headers are accepted (`TooManyHeaders` beyond).
pub fn parse_response_head(
    buf: &[u8],
    max_head_bytes: usize,
    request_was_head: bool,
) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    let window = &buf[..buf.len().min(max_head_bytes)];
    if let Some(plain) = read_plain(window, request_was_head) {
        return plain.map(Some);
    }
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADER_SLOTS];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, window, &mut slots)
        .map_err(|e| map_parse_error(e, || response_version_error(window)))?;
    match parsed {
        httparse::Status::Partial if window.len() >= max_head_bytes => Err(HeadError::TooLarge),
        httparse::Status::Partial => Ok(None),
        httparse::Status::Complete(consumed) => {
            let (Some(status), Some(minor_version)) = (resp.code, resp.version) else {
                return Err(HeadError::Malformed("incomplete status line"));
            };
            let headers = Headers::copy(&window[..consumed], resp.headers);
            build_head(status, minor_version, headers, request_was_head).map(|head| Some((head, consumed)))
        }
    }
}

/// The head read by `plain_head` when it is written the plain way and complete; `None` leaves it to
/// httparse, which reads the same heads the same way and also names what is wrong with the rest.
fn read_plain(window: &[u8], request_was_head: bool) -> Option<Result<(ResponseHead, usize), HeadError>> {
    let mut fields = plain_head::FieldList::new();
    let (line, consumed) = plain_head::read_response(window, &mut fields, MAX_HEADER_SLOTS)?;
    let headers = Headers::from_spans(&window[..consumed], &fields);
    Some(build_head(line.status, line.minor_version, headers, request_was_head).map(|head| (head, consumed)))
}

fn response_version_error(window: &[u8]) -> HeadError {
    let line = first_line(window);
    let version = line.split(|b| *b == b' ').next().unwrap_or(line);
    version_error(version)
}

fn build_head(
    status: u16,
    minor_version: u8,
    headers: Headers,
    request_was_head: bool,
) -> Result<ResponseHead, HeadError> {
    if status < 100 {
        return Err(HeadError::Malformed("invalid status code"));
    }
    let bodyless = request_was_head || (100..200).contains(&status) || status == 204 || status == 304;
    let decision =
        if bodyless { Decision::reusable(BodyFraming::Empty) } else { response_framing(&headers, minor_version)? };
    let keep_alive = decision.reusable && keep_alive_from(&headers, minor_version);
    Ok(ResponseHead { status, minor_version, headers, framing: decision.framing, keep_alive })
}

struct Decision {
    framing: BodyFraming,
    /// False when the framing leaves the end of the message in doubt, so the
    /// connection must not carry another exchange.
    reusable: bool,
}

impl Decision {
    fn reusable(framing: BodyFraming) -> Self {
        Decision { framing, reusable: true }
    }

    fn close(framing: BodyFraming) -> Self {
        Decision { framing, reusable: false }
    }
}

/// RFC 9112 §6.3 steps 3–8 for a response that may carry a body.
fn response_framing(headers: &Headers, minor_version: u8) -> Result<Decision, HeadError> {
    if count_headers(headers, "transfer-encoding") > 0 {
        return Ok(transfer_coded(headers, minor_version));
    }
    if count_headers(headers, "content-length") > 0 {
        return content_length(headers).map(|n| Decision::reusable(BodyFraming::Length(n)));
    }
    Ok(Decision::close(BodyFraming::UntilClose))
}

fn transfer_coded(headers: &Headers, minor_version: u8) -> Decision {
    // §6.1: TE on a 1.0 message means the framing is faulty; reading to close
    // is the only interpretation that cannot desynchronise us.
    if minor_version == 0 {
        return Decision::close(BodyFraming::UntilClose);
    }
    let chunked_last = list_elements(headers, "transfer-encoding")
        .last()
        .is_some_and(|coding| coding.eq_ignore_ascii_case(b"chunked"));
    if !chunked_last {
        return Decision::close(BodyFraming::UntilClose);
    }
    // §6.3 step 3: TE overrides CL, but a sender that set both may be
    // confused about where the message ends, so do not reuse the connection.
    let with_length = count_headers(headers, "content-length") > 0;
    Decision { framing: BodyFraming::Chunked, reusable: !with_length }
}

/// Identical repeats (as separate fields or as a list) are one length per
/// RFC 9110 §8.6; anything else is unrecoverable.
fn content_length(headers: &Headers) -> Result<u64, HeadError> {
    let mut length = None;
    let elements = values_of(headers, "content-length").flat_map(|v| v.split(|b| *b == b','));
    for element in elements {
        let n = parse_content_length(trim_ows(element)).ok_or(HeadError::BadFraming("invalid Content-Length"))?;
        match length {
            Some(prev) if prev != n => {
                return Err(HeadError::BadFraming("conflicting Content-Length values"));
            }
            _ => length = Some(n),
        }
    }
    length.ok_or(HeadError::BadFraming("invalid Content-Length"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str, head_req: bool) -> Result<Option<(ResponseHead, usize)>, HeadError> {
        parse_response_head(raw.as_bytes(), 8192, head_req)
    }

    fn head_of(raw: &str, head_req: bool) -> ResponseHead {
        match parse(raw, head_req) {
            Ok(Some((h, n))) => {
                assert_eq!(n, raw.len(), "consumed");
                h
            }
            other => panic!("expected a head for {raw:?}, got {other:?}"),
        }
    }

    fn head(raw: &str) -> ResponseHead {
        head_of(raw, false)
    }

    fn framing(status_line: &str, extra: &str) -> (BodyFraming, bool) {
        let h = head(&format!("{status_line}\r\n{extra}\r\n"));
        (h.framing, h.keep_alive)
    }

    use BodyFraming::{Chunked, Empty, Length, UntilClose};

    #[test]
    fn parses_a_streaming_response() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nX-Request-Id: abc\r\n\r\n";
        let h = head(raw);
        assert_eq!(h.status, 200);
        assert_eq!(h.minor_version, 1);
        assert_eq!(h.header("content-type"), Some(&b"text/event-stream"[..]));
        assert_eq!(h.header("x-request-id"), Some(&b"abc"[..]));
        assert_eq!(h.framing, Chunked);
        assert!(h.keep_alive);
        assert!(!h.is_informational());
    }

    #[test]
    fn bodyless_responses() {
        assert_eq!(framing("HTTP/1.1 204 No Content", "Content-Length: 5\r\n"), (Empty, true));
        assert_eq!(framing("HTTP/1.1 304 Not Modified", "Transfer-Encoding: chunked\r\n"), (Empty, true));
        assert_eq!(framing("HTTP/1.1 100 Continue", ""), (Empty, true));
        assert_eq!(framing("HTTP/1.1 103 Early Hints", "Link: </a>\r\n"), (Empty, true));
        let h = head_of("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true);
        assert_eq!((h.framing, h.keep_alive), (Empty, true));
        let h = head_of("HTTP/1.1 200 OK\r\n\r\n", true);
        assert_eq!((h.framing, h.keep_alive), (Empty, true));
        assert!(head("HTTP/1.1 101 Switching Protocols\r\n\r\n").is_informational());
        assert!(head("HTTP/1.1 199 Whatever\r\n\r\n").is_informational());
        assert!(!head("HTTP/1.1 204 No Content\r\n\r\n").is_informational());
    }

    #[test]
    fn transfer_encoding_framing() {
        let ok = "HTTP/1.1 200 OK";
        assert_eq!(framing(ok, "Transfer-Encoding: chunked\r\n"), (Chunked, true));
        assert_eq!(framing(ok, "Transfer-Encoding: gzip, Chunked\r\n"), (Chunked, true));
        assert_eq!(framing(ok, "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), (Chunked, true));
        assert_eq!(framing(ok, "Transfer-Encoding: chunked, gzip\r\n"), (UntilClose, false));
        assert_eq!(framing(ok, "Transfer-Encoding: gzip\r\n"), (UntilClose, false));
        assert_eq!(framing(ok, "Transfer-Encoding:\r\n"), (UntilClose, false));
        assert_eq!(
            framing(ok, "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"),
            (Chunked, false),
            "TE wins over CL but the connection is not reused"
        );
        assert_eq!(framing(ok, "Transfer-Encoding: chunked\r\nContent-Length: nonsense\r\n"), (Chunked, false));
        assert_eq!(
            framing("HTTP/1.0 200 OK", "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n"),
            (UntilClose, false)
        );
    }

    #[test]
    fn content_length_framing() {
        let ok = "HTTP/1.1 200 OK";
        assert_eq!(framing(ok, "Content-Length: 42\r\n"), (Length(42), true));
        assert_eq!(framing(ok, "Content-Length: 0\r\n"), (Length(0), true));
        assert_eq!(framing(ok, "Content-Length: 7\r\nContent-Length: 7\r\n"), (Length(7), true));
        assert_eq!(framing(ok, "Content-Length: 7, 7\r\n"), (Length(7), true));
        for bad in [
            "Content-Length: 7\r\nContent-Length: 8\r\n",
            "Content-Length: 7, 8\r\n",
            "Content-Length: 7,\r\n",
            "Content-Length:\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: +1\r\n",
            "Content-Length: 1e3\r\n",
            "Content-Length: 18446744073709551616\r\n",
        ] {
            assert!(matches!(parse(&format!("{ok}\r\n{bad}\r\n"), false), Err(HeadError::BadFraming(_))), "{bad:?}");
        }
    }

    #[test]
    fn until_close_framing() {
        assert_eq!(framing("HTTP/1.1 200 OK", ""), (UntilClose, false));
        assert_eq!(framing("HTTP/1.1 200 OK", "Connection: keep-alive\r\n"), (UntilClose, false));
        assert_eq!(framing("HTTP/1.0 200 OK", "Connection: keep-alive\r\n"), (UntilClose, false));
    }

    #[test]
    fn keep_alive_matrix() {
        let cl = "Content-Length: 1\r\n";
        let cases = [
            ("HTTP/1.1 200 OK", "", true),
            ("HTTP/1.1 200 OK", "Connection: close\r\n", false),
            ("HTTP/1.1 200 OK", "Connection: Keep-Alive\r\n", true),
            ("HTTP/1.1 200 OK", "Connection: x, Close\r\n", false),
            ("HTTP/1.0 200 OK", "", false),
            ("HTTP/1.0 200 OK", "Connection: keep-alive\r\n", true),
            ("HTTP/1.0 200 OK", "Connection: a\r\nConnection: KEEP-ALIVE\r\n", true),
        ];
        for (line, extra, want) in cases {
            assert_eq!(framing(line, &format!("{cl}{extra}")).1, want, "{line} {extra:?}");
        }
    }

    #[test]
    fn lenient_status_line() {
        assert_eq!(head("HTTP/1.1 200\r\n\r\n").status, 200);
        assert_eq!(head("HTTP/1.1 200 \r\n\r\n").status, 200);
        assert_eq!(head("HTTP/1.1 404 not  found here\r\n\r\n").status, 404);
        assert_eq!(head("HTTP/1.1 200 D\u{fc}rfen\r\n\r\n").status, 200);
        assert_eq!(head("HTTP/1.1 599 Custom\r\n\r\n").status, 599);
        assert!(matches!(parse("HTTP/1.1 099 Low\r\n\r\n", false), Err(HeadError::Malformed(_))));
        assert!(matches!(parse("HTTP/1.1 20 OK\r\n\r\n", false), Err(HeadError::Malformed(_))));
        assert!(matches!(parse("HTTP/1.1 200 O\x01K\r\n\r\n", false), Err(HeadError::Malformed(_))));
    }

    #[test]
    fn versions() {
        assert_eq!(parse("HTTP/2.0 200 OK\r\n\r\n", false), Err(HeadError::UnsupportedVersion));
        assert!(matches!(parse("HTTQ/1.1 200 OK\r\n\r\n", false), Err(HeadError::Malformed(_))));
    }

    #[test]
    fn limits() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        for cut in 0..raw.len() {
            assert_eq!(parse(&raw[..cut], false), Ok(None), "cut at {cut}");
        }
        assert!(parse_response_head(raw.as_bytes(), raw.len(), false).unwrap().is_some());
        assert_eq!(parse_response_head(raw.as_bytes(), raw.len() - 1, false), Err(HeadError::TooLarge));
        assert_eq!(parse_response_head(&raw.as_bytes()[..10], 10, false), Err(HeadError::TooLarge));
        let mut many = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..129 {
            many.push_str(&format!("X-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(parse_response_head(many.as_bytes(), 1 << 20, false), Err(HeadError::TooManyHeaders));
    }

    #[test]
    fn consumed_stops_at_head() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        let (h, n) = parse_response_head(raw, 1024, false).unwrap().unwrap();
        assert_eq!(&raw[n..], b"hi");
        assert_eq!(h.framing, Length(2));
    }

    #[test]
    fn obs_fold_is_rejected() {
        assert!(matches!(parse("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", false), Err(HeadError::Malformed(_))));
    }
}
