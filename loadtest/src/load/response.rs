//! Sans-IO reader of one HTTP/1.1 response as a client sees it: an explicit state machine over the
//! head (httparse), then a Content-Length, chunked or close-delimited body, handing out de-chunked
//! body bytes as ranges of the caller's buffer (no copy). It owns framing only: what the body
//! means (SSE or not) and all I/O belong to the caller.

use std::ops::Range;

/// Larger response heads are a protocol error (nothing legitimate comes close).
const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_HEADERS: usize = 64;
/// A chunk-size line or trailer line longer than this is a protocol error.
const MAX_LINE_BYTES: usize = 4 * 1024;

/// What the caller needs from the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    pub status: u16,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// Everything usable was consumed; read more input.
    NeedMore,
    Head(Head),
    /// Body bytes, as a range of the input slice just passed.
    Data(Range<usize>),
    /// The response is complete.
    End,
}

/// Why a response is not valid HTTP/1.1 (the text is for debugging only).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ProtocolError(pub &'static str);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Head,
    Fixed { remaining: u64 },
    UntilClose,
    ChunkSize,
    ChunkData { remaining: u64 },
    ChunkDataEnd,
    Trailers,
    Done,
}

pub(crate) struct ResponseReader {
    state: State,
    /// The request was a HEAD: no body whatever the head says.
    head_request: bool,
}

impl ResponseReader {
    pub fn new(head_request: bool) -> ResponseReader {
        ResponseReader { state: State::Head, head_request }
    }

    /// Advances over `input` (the caller's unread bytes). Returns how many bytes were consumed and
    /// what they held; call again with the rest until `NeedMore` (then read) or `End`.
    pub fn next(&mut self, input: &[u8]) -> Result<(usize, Parsed), ProtocolError> {
        let mut at = 0;
        // Each pass either returns or consumes a framing line, so this ends within input.len() passes.
        loop {
            let rest = &input[at..];
            match self.state {
                State::Head => return self.head(rest).map(|(n, parsed)| (at + n, parsed)),
                State::Done => return Ok((at, Parsed::End)),
                State::UntilClose if rest.is_empty() => return Ok((at, Parsed::NeedMore)),
                State::UntilClose => return Ok((input.len(), Parsed::Data(at..input.len()))),
                State::Fixed { remaining } | State::ChunkData { remaining } => {
                    return Ok(self.data(remaining, at, rest.len()));
                }
                State::ChunkSize | State::ChunkDataEnd | State::Trailers => match split_line(rest)? {
                    None => return Ok((at, Parsed::NeedMore)),
                    Some((used, line)) => {
                        self.framing_line(line)?;
                        at += used;
                    }
                },
            }
        }
    }

    /// The peer closed the connection: fine only for a close-delimited body.
    pub fn at_eof(&mut self) -> bool {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                true
            }
            _ => false,
        }
    }

    fn head(&mut self, input: &[u8]) -> Result<(usize, Parsed), ProtocolError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let used = match response.parse(input) {
            Ok(httparse::Status::Complete(used)) => used,
            Ok(httparse::Status::Partial) if input.len() > MAX_HEAD_BYTES => {
                return Err(ProtocolError("response head too large"));
            }
            Ok(httparse::Status::Partial) => return Ok((0, Parsed::NeedMore)),
            Err(_) => return Err(ProtocolError("malformed response head")),
        };
        let status = response.code.unwrap_or(0);
        // We never send `Expect`, so an interim response means a confused server.
        if status < 200 {
            return Err(ProtocolError("unexpected 1xx response"));
        }
        let fields = HeadFields::read(response.version == Some(1), response.headers)?;
        let no_body = self.head_request || status == 204 || status == 304;
        self.state = match (no_body, fields.chunked, fields.content_length) {
            (true, _, _) => State::Done,
            (false, Some(true), _) => State::ChunkSize,
            // Transfer-Encoding without chunked last: the body runs to the close (RFC 9112 6.3).
            (false, Some(false), _) | (false, None, None) => State::UntilClose,
            (false, None, Some(0)) => State::Done,
            (false, None, Some(len)) => State::Fixed { remaining: len },
        };
        let keep_alive = fields.keep_alive && self.state != State::UntilClose;
        Ok((used, Parsed::Head(Head { status, keep_alive })))
    }

    fn data(&mut self, remaining: u64, at: usize, available: usize) -> (usize, Parsed) {
        if available == 0 {
            return (at, Parsed::NeedMore);
        }
        let take = remaining.min(available as u64) as usize;
        let left = remaining - take as u64;
        self.state = match self.state {
            State::Fixed { .. } if left == 0 => State::Done,
            State::Fixed { .. } => State::Fixed { remaining: left },
            _ if left == 0 => State::ChunkDataEnd,
            _ => State::ChunkData { remaining: left },
        };
        (at + take, Parsed::Data(at..at + take))
    }

    fn framing_line(&mut self, line: &[u8]) -> Result<(), ProtocolError> {
        self.state = match self.state {
            State::ChunkSize => match parse_chunk_size(line)? {
                0 => State::Trailers,
                size => State::ChunkData { remaining: size },
            },
            State::ChunkDataEnd if line.is_empty() => State::ChunkSize,
            State::ChunkDataEnd => return Err(ProtocolError("chunk data longer than its size")),
            State::Trailers if line.is_empty() => State::Done,
            // Trailer fields are allowed and ignored.
            other => other,
        };
        Ok(())
    }
}

/// The header fields that decide framing and connection reuse.
struct HeadFields {
    keep_alive: bool,
    /// `Some(true)` when Transfer-Encoding ends with chunked, `Some(false)` for any other coding.
    chunked: Option<bool>,
    content_length: Option<u64>,
}

impl HeadFields {
    fn read(http11: bool, headers: &[httparse::Header<'_>]) -> Result<HeadFields, ProtocolError> {
        let mut fields = HeadFields { keep_alive: http11, chunked: None, content_length: None };
        for header in headers {
            let value = std::str::from_utf8(header.value).map_err(|_| ProtocolError("non-UTF-8 framing header"))?;
            if header.name.eq_ignore_ascii_case("content-length") {
                let len = value.trim().parse().map_err(|_| ProtocolError("invalid content-length"))?;
                if fields.content_length.is_some_and(|seen| seen != len) {
                    return Err(ProtocolError("conflicting content-length"));
                }
                fields.content_length = Some(len);
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                let last = value.rsplit(',').next().unwrap_or("").trim();
                fields.chunked = Some(last.eq_ignore_ascii_case("chunked"));
            } else if header.name.eq_ignore_ascii_case("connection") {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        fields.keep_alive = false;
                    } else if token.eq_ignore_ascii_case("keep-alive") && !http11 {
                        fields.keep_alive = true;
                    }
                }
            }
        }
        Ok(fields)
    }
}

/// A complete line at the start of `input`: bytes consumed (terminator included) and the line
/// without its `\r\n` (or bare `\n`). `None` when the terminator has not arrived yet.
fn split_line(input: &[u8]) -> Result<Option<(usize, &[u8])>, ProtocolError> {
    let Some(newline) = input.iter().position(|&b| b == b'\n') else {
        return if input.len() > MAX_LINE_BYTES { Err(ProtocolError("framing line too long")) } else { Ok(None) };
    };
    let line = &input[..newline];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(Some((newline + 1, line)))
}

/// `1a3f[;extension]` as a number.
fn parse_chunk_size(line: &[u8]) -> Result<u64, ProtocolError> {
    let digits = line.split(|&b| b == b';').next().unwrap_or(line).trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return Err(ProtocolError("invalid chunk size"));
    }
    digits.iter().try_fold(0u64, |size, &b| {
        let digit = (b as char).to_digit(16).ok_or(ProtocolError("invalid chunk size"))?;
        Ok(size * 16 + u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` in pieces of `step` bytes, as a socket might deliver it; returns the head,
    /// the body and whether `End` was seen.
    fn read_all(wire: &[u8], step: usize, head_request: bool) -> Result<(Head, Vec<u8>, bool), ProtocolError> {
        let mut reader = ResponseReader::new(head_request);
        let (mut buf, mut pos, mut fed) = (Vec::new(), 0, 0);
        let (mut head, mut body) = (None, Vec::new());
        for _ in 0..wire.len() * 4 + 8 {
            let (used, parsed) = reader.next(&buf[pos..])?;
            let start = pos;
            pos += used;
            match parsed {
                Parsed::Head(h) => head = Some(h),
                Parsed::Data(range) => body.extend_from_slice(&buf[start + range.start..start + range.end]),
                Parsed::End => return Ok((head.unwrap(), body, true)),
                Parsed::NeedMore if fed == wire.len() => {
                    let complete = reader.at_eof();
                    return Ok((head.unwrap(), body, complete));
                }
                Parsed::NeedMore => {
                    let end = (fed + step).min(wire.len());
                    buf.extend_from_slice(&wire[fed..end]);
                    fed = end;
                }
            }
        }
        panic!("reader did not finish");
    }

    fn every_split(wire: &[u8]) -> (Head, Vec<u8>) {
        let first = read_all(wire, wire.len(), false).unwrap();
        assert!(first.2, "incomplete");
        for step in 1..8 {
            let again = read_all(wire, step, false).unwrap();
            assert_eq!((again.0, &again.1, again.2), (first.0, &first.1, true), "step {step}");
        }
        (first.0, first.1)
    }

    #[test]
    fn content_length() {
        let (head, body) = every_split(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello");
        assert_eq!(head, Head { status: 200, keep_alive: true });
        assert_eq!(body, b"hello");
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let wire =
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1\r\n!\r\n0\r\nx-t: 1\r\n\r\n";
        let (head, body) = every_split(wire);
        assert_eq!(head.status, 200);
        assert_eq!(body, b"hello!");
    }

    #[test]
    fn close_delimited_and_connection_close() {
        let (head, body, complete) = read_all(b"HTTP/1.1 200 OK\r\n\r\nuntil close", 3, false).unwrap();
        assert_eq!((head.keep_alive, body.as_slice(), complete), (false, &b"until close"[..], true));
        let (head, _) = every_split(b"HTTP/1.1 500 X\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(head, Head { status: 500, keep_alive: false });
        let (head, _) = every_split(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
        assert!(head.keep_alive);
    }

    #[test]
    fn bodiless_responses() {
        let (_, body) = every_split(b"HTTP/1.1 204 No Content\r\ncontent-length: 9\r\n\r\n");
        assert!(body.is_empty());
        let (_, body, complete) = read_all(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n", 4, true).unwrap();
        assert!(body.is_empty() && complete);
    }

    #[test]
    fn truncated_bodies_are_incomplete() {
        let (_, _, complete) = read_all(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nabc", 2, false).unwrap();
        assert!(!complete);
        let (_, _, complete) =
            read_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel", 2, false).unwrap();
        assert!(!complete);
    }

    #[test]
    fn malformed_responses() {
        let bad: [&[u8]; 5] = [
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nab\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"NOT HTTP\r\n\r\n",
        ];
        for wire in bad {
            assert!(read_all(wire, wire.len(), false).is_err(), "{}", String::from_utf8_lossy(wire));
        }
        let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
        huge.extend(std::iter::repeat_n(b'x', MAX_HEAD_BYTES + 1));
        assert_eq!(read_all(&huge, huge.len(), false).err(), Some(ProtocolError("response head too large")));
    }
}
