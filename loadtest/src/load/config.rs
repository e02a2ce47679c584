//! The load generator's inputs: `LoadConfig` (what to send, how fast, for how long) and its
//! validation, plus the pieces derived from it before any thread starts: the resolved `Target` and
//! the request bytes, built once and sent unchanged by every connection. Running a config is
//! `run.rs`'s job; argument parsing is the binary's.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use serde::Serialize;

/// How requests are paced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// Each connection sends its next request as soon as the previous one finished.
    Closed,
    /// `rate` requests per second in total, on a fixed schedule; latency counts from each request's
    /// scheduled start, so time spent waiting for a free connection shows up (no coordinated
    /// omission).
    Open { rate: f64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// An OpenAI chat completion (`LoadConfig::model`, `stream`, `body_bytes`).
    Post,
    /// A body-less GET, e.g. of `/healthz`.
    Get,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Get => "GET",
        }
    }
}

/// One load run. `Default` gives the binary's defaults.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// `http://host[:port]/path`; https is not supported (the gateway is measured, not TLS).
    pub url: String,
    pub method: Method,
    pub model: String,
    /// Ask for `"stream": true` and read the body as server-sent events.
    pub stream: bool,
    /// Approximate JSON body size; the user message is padded to reach it.
    pub body_bytes: usize,
    /// Extra request headers, e.g. `("Authorization", "Bearer k")`.
    pub headers: Vec<(String, String)>,
    pub pace: Pace,
    /// Connections in total: the concurrency in closed loop, the concurrency cap in open loop.
    pub connections: usize,
    /// Worker threads, each a monoio runtime with its share of connections (and of the rate).
    pub threads: usize,
    /// Stop starting requests after warmup + this; `None` only when `requests` bounds the run.
    pub duration: Option<Duration>,
    /// Stop after this many measured requests (warmup ones not counted).
    pub requests: Option<u64>,
    /// Requests scheduled in this leading window are sent but not measured.
    pub warmup: Duration,
    /// Per request: connect, send and the whole response must fit in it.
    pub timeout: Duration,
    /// Print a progress line on stderr once a second.
    pub progress: bool,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            url: "http://127.0.0.1:8080/v1/chat/completions".to_owned(),
            method: Method::Post,
            model: "bench/chat".to_owned(),
            stream: false,
            body_bytes: 1024,
            headers: Vec::new(),
            pace: Pace::Closed,
            connections: 10,
            threads: 1,
            duration: Some(Duration::from_secs(10)),
            requests: None,
            warmup: Duration::ZERO,
            timeout: Duration::from_secs(30),
            progress: false,
        }
    }
}

impl LoadConfig {
    /// Every problem at once, joined by "; ".
    pub fn validate(&self) -> io::Result<()> {
        let mut problems = Vec::new();
        if self.threads == 0 {
            problems.push("threads must be at least 1".to_owned());
        }
        if self.connections < self.threads {
            problems.push(format!("connections ({}) must be at least threads ({})", self.connections, self.threads));
        }
        if let Pace::Open { rate } = self.pace
            && !(rate.is_finite() && rate > 0.0)
        {
            problems.push(format!("rate must be a positive number, not {rate}"));
        }
        if self.duration.is_none() && self.requests.is_none() {
            problems.push("the run needs a bound: a duration or a request count".to_owned());
        }
        if self.duration.is_some_and(|d| d.is_zero()) || self.requests == Some(0) {
            problems.push("duration and requests must be positive when given".to_owned());
        }
        if self.timeout.is_zero() {
            problems.push("timeout must be positive".to_owned());
        }
        for (name, value) in &self.headers {
            if !valid_header(name, value) {
                problems.push(format!("invalid header {name:?}: {value:?}"));
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(invalid(problems.join("; "))) }
    }
}

fn valid_header(name: &str, value: &str) -> bool {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    !name.is_empty() && name.bytes().all(token) && !value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
}

pub(crate) fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Where requests go: resolved once, before any thread starts, so no worker ever blocks on DNS.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub addr: SocketAddr,
    /// The URL's authority, sent as the Host header.
    pub host: String,
    pub path: String,
}

impl Target {
    pub fn resolve(url: &str) -> io::Result<Target> {
        let rest = url.strip_prefix("http://").ok_or_else(|| invalid(format!("url must start with http://: {url}")))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if host.is_empty() {
            return Err(invalid(format!("url has no host: {url}")));
        }
        // No port unless the last ':' comes after an IPv6 literal's closing bracket.
        let has_port = host.rfind(':').is_some_and(|i| host.rfind(']').is_none_or(|j| i > j));
        let with_port = if has_port { host.to_owned() } else { format!("{host}:80") };
        let addr =
            with_port.to_socket_addrs()?.next().ok_or_else(|| invalid(format!("{host} resolved to no address")))?;
        Ok(Target { addr, host: host.to_owned(), path: path.to_owned() })
    }
}

/// The complete request (head and body) every connection sends.
pub(crate) fn request_bytes(config: &LoadConfig, target: &Target) -> Vec<u8> {
    let body = match config.method {
        Method::Post => chat_body(&config.model, config.stream, config.body_bytes),
        Method::Get => Vec::new(),
    };
    let mut head = format!("{} {} HTTP/1.1\r\nhost: {}\r\n", config.method.as_str(), target.path, target.host);
    if config.method == Method::Post {
        head.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len()));
    }
    for (name, value) in &config.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&body);
    bytes
}

// Field order as OpenAI SDKs send it (a `json!` map would sort the keys).
#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    stream: bool,
    messages: [UserMessage<'a>; 1],
}

#[derive(Serialize)]
struct UserMessage<'a> {
    role: &'static str,
    content: &'a str,
}

/// A chat completion of `body_bytes` bytes (exactly, unless the empty message is already longer).
pub(crate) fn chat_body(model: &str, stream: bool, body_bytes: usize) -> Vec<u8> {
    let encode = |content: &str| {
        let body = ChatBody { model, stream, messages: [UserMessage { role: "user", content }] };
        serde_json::to_vec(&body).expect("serialising plain strings cannot fail")
    };
    let bare = encode("");
    // Plain ASCII words need no JSON escaping, so each padding byte adds exactly one body byte.
    const WORDS: &str = "Corelay load test padding, plain words to reach the body size. ";
    let padding: String = WORDS.chars().cycle().take(body_bytes.saturating_sub(bare.len())).collect();
    if padding.is_empty() { bare } else { encode(&padding) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_reaches_the_requested_size() {
        let body = chat_body("bench/chat", true, 1024);
        assert_eq!(body.len(), 1024);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["model"], "bench/chat");
        assert_eq!(v["stream"], true);
        assert_eq!(v["messages"][0]["role"], "user");
        // Smaller than the bare body: the bare body.
        assert!(chat_body("m", false, 1).starts_with(br#"{"model":"m","stream":false"#));
    }

    #[test]
    fn urls() {
        let t = Target::resolve("http://127.0.0.1:9000/v1/chat/completions").unwrap();
        assert_eq!(t.addr, "127.0.0.1:9000".parse().unwrap());
        assert_eq!((t.host.as_str(), t.path.as_str()), ("127.0.0.1:9000", "/v1/chat/completions"));
        let t = Target::resolve("http://127.0.0.1").unwrap();
        assert_eq!((t.addr.port(), t.path.as_str()), (80, "/"));
        let t = Target::resolve("http://[::1]:81/x").unwrap();
        assert_eq!(t.addr.port(), 81);
        assert!(Target::resolve("https://127.0.0.1/").is_err());
        assert!(Target::resolve("http:///x").is_err());
    }

    #[test]
    fn request_head() {
        let config = LoadConfig {
            headers: vec![("Authorization".into(), "Bearer k".into())],
            body_bytes: 200,
            ..LoadConfig::default()
        };
        let target = Target::resolve("http://127.0.0.1:1/v1/chat/completions").unwrap();
        let text = String::from_utf8(request_bytes(&config, &target)).unwrap();
        assert!(text.starts_with("POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:1\r\n"));
        assert!(text.contains("content-length: 200\r\nAuthorization: Bearer k\r\n\r\n{"));
        let get = LoadConfig { method: Method::Get, ..LoadConfig::default() };
        assert!(request_bytes(&get, &target).ends_with(b"HTTP/1.1\r\nhost: 127.0.0.1:1\r\n\r\n"));
    }

    #[test]
    fn validation_lists_every_problem() {
        let bad = LoadConfig {
            threads: 2,
            connections: 1,
            pace: Pace::Open { rate: 0.0 },
            duration: None,
            headers: vec![("Bad Name".into(), "v".into())],
            ..LoadConfig::default()
        };
        let message = bad.validate().unwrap_err().to_string();
        for part in ["connections (1)", "rate", "bound", "invalid header"] {
            assert!(message.contains(part), "{message}");
        }
        assert!(LoadConfig::default().validate().is_ok());
    }
}
