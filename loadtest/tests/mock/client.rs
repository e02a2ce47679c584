//! A small blocking HTTP/1.1 client for the mock's tests: writes raw requests and reads
//! responses (Content-Length, chunked or close-delimited) over any `Read + Write`, plain or TLS.
//! Written separately from the mock's own codec so the tests check it rather than mirror it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// Generous: only a broken mock makes a test wait this long.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the mock");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream
}

/// A raw request with `Content-Length`; `extra` lines are `Name: value`.
pub fn request(method: &str, path: &str, body: &str, extra: &[&str]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: mock\r\n");
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body.as_bytes());
    raw
}

pub fn chat(body: &str) -> Vec<u8> {
    request("POST", "/v1/chat/completions", body, &[])
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    /// The payloads of the body's `data:` lines, in order.
    pub fn data_lines(&self) -> Vec<String> {
        data_lines(&self.body)
    }
}

pub fn data_lines(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body).lines().filter_map(|line| line.strip_prefix("data: ")).map(str::to_owned).collect()
}

/// A connection plus the bytes read from it but not yet used.
pub struct Client<S> {
    pub stream: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Client<S> {
    pub fn new(stream: S) -> Self {
        Client { stream, buf: Vec::new() }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).expect("write request");
        self.stream.flush().expect("flush request");
    }

    pub fn exchange(&mut self, raw: &[u8]) -> Response {
        self.send(raw);
        self.read_response().expect("read response")
    }

    /// Reads more bytes into the buffer; 0 at EOF.
    fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = [0u8; 16 * 1024];
        let n = self.stream.read(&mut tmp)?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    fn fill_or_eof(&mut self) -> io::Result<()> {
        match self.fill()? {
            0 => Err(io::ErrorKind::UnexpectedEof.into()),
            _ => Ok(()),
        }
    }

    pub fn read_response(&mut self) -> io::Result<Response> {
        // Every pass reads at least one byte or fails (EOF, error, read timeout).
        let (status, headers, head_len) = loop {
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
            self.fill_or_eof()?;
        };
        self.buf.drain(..head_len);
        let response = Response { status, headers, body: Vec::new() };
        let chunked = response.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let length = response.header("content-length").map(|v| v.parse::<usize>());
        // Interim (1xx) responses never have a body.
        let body = match (chunked, length) {
            _ if status < 200 => Vec::new(),
            (true, _) => self.read_chunked()?,
            (false, Some(Ok(n))) => self.read_exact_body(n)?,
            (false, Some(Err(_))) => return Err(io::ErrorKind::InvalidData.into()),
            (false, None) => self.read_to_eof()?,
        };
        Ok(Response { body, ..response })
    }

    fn read_exact_body(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            self.fill_or_eof()?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    fn read_to_eof(&mut self) -> io::Result<Vec<u8>> {
        while self.fill()? > 0 {}
        Ok(std::mem::take(&mut self.buf))
    }

    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line()?;
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, line.clone()))?;
            if size == 0 {
                // No trailers from the mock: the empty line ends the body.
                let end = self.read_line()?;
                assert_eq!(end, "", "unexpected trailer");
                return Ok(body);
            }
            let mut chunk = self.read_exact_body(size + 2)?;
            assert_eq!(&chunk[size..], b"\r\n", "chunk must end with CRLF");
            chunk.truncate(size);
            body.extend_from_slice(&chunk);
        }
    }

    fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..at + 2).collect();
                return Ok(String::from_utf8_lossy(&line[..at]).into_owned());
            }
            self.fill_or_eof()?;
        }
    }

    /// Everything the peer sends until EOF or an error (reset, read timeout): the bytes
    /// (buffered ones included) and how it ended (`None` = clean EOF).
    pub fn read_until_end(&mut self) -> (Vec<u8>, Option<io::ErrorKind>) {
        let ended = loop {
            match self.fill() {
                Ok(0) => break None,
                Ok(_) => {}
                Err(e) => break Some(e.kind()),
            }
        };
        (std::mem::take(&mut self.buf), ended)
    }
}

type Head = (u16, Vec<(String, String)>, usize);

fn parse_head(buf: &[u8]) -> io::Result<Option<Head>> {
    let mut slots = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut slots);
    let invalid = |e| io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}"));
    match response.parse(buf).map_err(invalid)? {
        httparse::Status::Partial => Ok(None),
        httparse::Status::Complete(len) => {
            let headers = response
                .headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
                .collect();
            Ok(Some((response.code.unwrap_or(0), headers, len)))
        }
    }
}
