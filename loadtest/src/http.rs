//! The mock's own minimal HTTP/1.1 codec: parsing one request (head via httparse, body by
//! Content-Length or chunked) out of a byte buffer, and encoding response heads and chunks. Pure
//! functions over bytes; no sockets (see `conn.rs`) and no knowledge of OpenAI (see `openai.rs`).
//! Deliberately independent of the gateway's codec, so the two cannot share a bug.

/// Largest request head accepted.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted.
pub(crate) const MAX_BODY: usize = 64 << 20;
const MAX_HEADERS: usize = 96;
/// Longest chunk-size line (size plus extensions) accepted in a chunked body.
const MAX_CHUNK_LINE: usize = 1024;

/// The terminating chunk of a chunked body (no trailers).
pub(crate) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the client allows the connection to be reused after this exchange.
    pub keep_alive: bool,
}

impl Request {
    /// The request path without its query string.
    pub(crate) fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parse {
    /// More bytes are needed. `expect_continue`: the head is complete and asked for
    /// `100 Continue` before sending its body.
    Incomplete { expect_continue: bool },
    /// A whole request, and how many buffer bytes it used.
    Done { request: Request, consumed: usize },
    /// Unparseable; answer with `status` and close.
    Bad { status: u16, message: &'static str },
}

enum BodyKind {
    Length(usize),
    Chunked,
}

/// Parses the request at the start of `buf`.
pub(crate) fn parse_request(buf: &[u8]) -> Parse {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut slots);
    let head_len = match head.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return bad(431, "head too large"),
        Ok(httparse::Status::Partial) => {
            return Parse::Incomplete { expect_continue: false };
        }
        Err(httparse::Error::TooManyHeaders) => return bad(431, "too many headers"),
        Err(_) => return bad(400, "malformed request head"),
    };
    let headers: Vec<(String, String)> = head
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).into_owned();
            (h.name.to_ascii_lowercase(), value)
        })
        .collect();
    let kind = match body_kind(&headers) {
        Ok(kind) => kind,
        Err(message) => return bad(400, message),
    };
    let rest = &buf[head_len..];
    let (body, body_len) = match kind {
        BodyKind::Length(n) if n > MAX_BODY => return bad(413, "body too large"),
        BodyKind::Length(n) if rest.len() < n => (None, 0),
        BodyKind::Length(n) => (Some(rest[..n].to_vec()), n),
        BodyKind::Chunked => match decode_chunked(rest) {
            Ok(Some((body, used))) => (Some(body), used),
            Ok(None) => (None, 0),
            Err(message) => return bad(400, message),
        },
    };
    let Some(body) = body else {
        return Parse::Incomplete {
            expect_continue: header(&headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")),
        };
    };
    let keep_alive = keep_alive(head.version.unwrap_or(1), header(&headers, "connection"));
    Parse::Done {
        request: Request {
            method: head.method.unwrap_or_default().to_owned(),
            target: head.path.unwrap_or_default().to_owned(),
            headers,
            body,
            keep_alive,
        },
        consumed: head_len + body_len,
    }
}

fn bad(status: u16, message: &'static str) -> Parse {
    Parse::Bad { status, message }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn has_token(value: &str, token: &str) -> bool {
    value.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn keep_alive(minor_version: u8, connection: Option<&str>) -> bool {
    match connection {
        Some(v) if has_token(v, "close") => false,
        Some(v) if has_token(v, "keep-alive") => true,
        _ => minor_version >= 1,
    }
}

fn body_kind(headers: &[(String, String)]) -> Result<BodyKind, &'static str> {
    if let Some(te) = header(headers, "transfer-encoding") {
        // Chunked must be the final coding; anything else cannot be delimited by us.
        let last = te.rsplit(',').next().unwrap_or_default().trim();
        return if last.eq_ignore_ascii_case("chunked") {
            Ok(BodyKind::Chunked)
        } else {
            Err("unsupported transfer-encoding")
        };
    }
    let mut length = None;
    for (_, v) in headers.iter().filter(|(n, _)| n == "content-length") {
        let n: usize = v.trim().parse().map_err(|_| "bad content-length")?;
        if length.is_some_and(|l| l != n) {
            return Err("conflicting content-length");
        }
        length = Some(n);
    }
    Ok(BodyKind::Length(length.unwrap_or(0)))
}

fn find_crlf(data: &[u8]) -> Option<usize> {
    data.windows(2).position(|w| w == b"\r\n")
}

/// Decodes a chunked body at the start of `data`: `Ok(None)` when more bytes are needed,
/// otherwise the body and how many bytes it used (trailers included, and discarded).
pub(crate) fn decode_chunked(data: &[u8]) -> Result<Option<(Vec<u8>, usize)>, &'static str> {
    let mut body = Vec::new();
    let mut pos = 0;
    // Every pass consumes at least the CRLF of a size line, so this ends within data.len() passes.
    loop {
        let Some(line_len) = find_crlf(&data[pos..]) else {
            let too_long = data.len() - pos > MAX_CHUNK_LINE;
            return if too_long { Err("chunk size line too long") } else { Ok(None) };
        };
        let line = &data[pos..pos + line_len];
        let size = chunk_size(line)?;
        pos += line_len + 2;
        if size == 0 {
            return Ok(skip_trailers(data, pos).map(|end| (body, end)));
        }
        if body.len() + size > MAX_BODY {
            return Err("body too large");
        }
        if data.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[pos..pos + size]);
        if &data[pos + size..pos + size + 2] != b"\r\n" {
            return Err("chunk not followed by CRLF");
        }
        pos += size + 2;
    }
}

fn chunk_size(line: &[u8]) -> Result<usize, &'static str> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = std::str::from_utf8(digits).map_err(|_| "bad chunk size")?;
    usize::from_str_radix(digits.trim(), 16).map_err(|_| "bad chunk size")
}

/// After the last chunk: skips trailer lines up to the empty line; returns the end offset.
fn skip_trailers(data: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let line_len = find_crlf(&data[pos..])?;
        pos += line_len + 2;
        if line_len == 0 {
            return Some(pos);
        }
    }
}

/// How a response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    Chunked,
    Length(usize),
    /// Ends when the connection closes.
    Close,
}

/// A response status line and headers, ending with the blank line.
pub(crate) fn response_head(status: u16, headers: &[(&str, String)], framing: BodyFraming, close: bool) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match framing {
        BodyFraming::Chunked => head.push_str("transfer-encoding: chunked\r\n"),
        BodyFraming::Length(n) => head.push_str(&format!("content-length: {n}\r\n")),
        BodyFraming::Close => {}
    }
    let close = close || framing == BodyFraming::Close;
    head.push_str(if close { "connection: close\r\n\r\n" } else { "connection: keep-alive\r\n\r\n" });
    head.into_bytes()
}

/// Appends `piece` to `out` as one chunk; an empty piece adds nothing, since a zero-size chunk
/// would end the body.
pub(crate) fn push_chunk(out: &mut Vec<u8>, piece: &[u8]) {
    if piece.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
    out.extend_from_slice(piece);
    out.extend_from_slice(b"\r\n");
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Site Overloaded",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(buf: &[u8]) -> (Request, usize) {
        match parse_request(buf) {
            Parse::Done { request, consumed } => (request, consumed),
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn content_length_body_and_pipelined_rest() {
        let raw = b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /";
        let (req, used) = done(raw);
        assert_eq!(req.method, "POST");
        assert_eq!(req.path(), "/v1/chat/completions");
        assert_eq!(req.body, b"abc");
        assert!(req.keep_alive);
        assert_eq!(&raw[used..], b"GET /");
    }

    #[test]
    fn incomplete_head_and_body() {
        let head = b"POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nab";
        assert_eq!(parse_request(&head[..10]), Parse::Incomplete { expect_continue: false });
        assert_eq!(parse_request(head), Parse::Incomplete { expect_continue: true });
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n";
        let (req, used) = done(raw);
        assert_eq!(req.body, b"abcde");
        assert_eq!(used, raw.len());
        for cut in 0..raw.len() {
            assert!(matches!(parse_request(&raw[..cut]), Parse::Incomplete { .. }));
        }
    }

    #[test]
    fn bad_requests() {
        let conflicting = b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert!(matches!(parse_request(conflicting), Parse::Bad { status: 400, .. }));
        let bad_chunk = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(matches!(parse_request(bad_chunk), Parse::Bad { status: 400, .. }));
        assert!(matches!(parse_request(b"\x01\x02 / HTTP/1.1\r\n\r\n"), Parse::Bad { .. }));
    }

    #[test]
    fn connection_header_and_http10() {
        let (req, _) = done(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n");
        assert!(!req.keep_alive);
        let (req, _) = done(b"GET / HTTP/1.0\r\n\r\n");
        assert!(!req.keep_alive);
        let (req, _) = done(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert!(req.keep_alive);
    }

    #[test]
    fn head_and_chunk_encoding() {
        let head = response_head(429, &[("retry-after", "2".into())], BodyFraming::Length(7), false);
        assert_eq!(
            head,
            b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 2\r\ncontent-length: 7\r\nconnection: keep-alive\r\n\r\n"
        );
        let mut out = Vec::new();
        push_chunk(&mut out, b"");
        push_chunk(&mut out, &[b'x'; 26]);
        assert_eq!(&out[..4], b"1a\r\n");
        assert_eq!(out.len(), 4 + 26 + 2);
    }
}
