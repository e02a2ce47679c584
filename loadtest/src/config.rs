//! The mock's public knobs: what each reply looks like (`MockConfig`, `Framing`, `Reply`,
//! `Fault`) and where/how it listens (`MockOptions`, `MockTls`). Plain data only: interpreting
//! the knobs is `plan.rs`'s job, serving them is `server.rs`'s.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// How the mock answers `POST …/chat/completions`. Cheap to clone; swap it at run time with
/// `MockProvider::set_config` (a request already being answered keeps the config it started with).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockConfig {
    /// Content chunks per generated stream (between the role chunk and the finish chunk).
    pub events: usize,
    /// Waited before the first SSE event of a stream (the head is already sent), and before the
    /// head of a non-streaming response (including `Fault::Status` responses).
    pub first_event_delay: Duration,
    /// Waited between two consecutive body pieces (SSE events or replay pieces).
    pub event_gap: Duration,
    /// Bytes of assistant text in a generated non-streaming reply. A generated stream carries
    /// `max(content_bytes, events)` bytes split over its `events` deltas.
    pub content_bytes: usize,
    /// How response bodies of chat completions are delimited.
    pub framing: Framing,
    /// Generated replies, or raw bytes to replay.
    pub reply: Reply,
    /// Replayed SSE bytes are written in pieces of this many bytes; 0 = one piece per SSE event.
    /// A replayed JSON body too (0 = the whole body in one piece): with chunked framing, each
    /// piece is one chunk.
    pub replay_piece_bytes: usize,
    /// A deliberate misbehaviour, see [`Fault`].
    pub fault: Fault,
    /// Model name put in generated replies; `None` echoes the request's `"model"`.
    pub response_model: Option<String>,
    /// Answer every request with `Connection: close` and close afterwards.
    pub close_after_response: bool,
    /// Answer with keep-alive, then close the connection silently right after the response, as a
    /// provider whose idle timeout fires would: the client only learns of it when it reuses the
    /// connection.
    pub drop_idle_after_response: bool,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            events: 5,
            first_event_delay: Duration::ZERO,
            event_gap: Duration::ZERO,
            content_bytes: 64,
            framing: Framing::Auto,
            reply: Reply::Generated,
            replay_piece_bytes: 0,
            fault: Fault::None,
            response_model: None,
            close_after_response: false,
            drop_idle_after_response: false,
        }
    }
}

/// How a chat-completions response body is delimited on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Framing {
    /// `Chunked` for streams, `ContentLength` for non-streaming replies.
    #[default]
    Auto,
    /// `Transfer-Encoding: chunked`, one chunk per body piece.
    Chunked,
    /// `Content-Length` announcing the whole (untruncated) body.
    ContentLength,
    /// No length at all: `Connection: close` and the end of the body is the end of the connection.
    CloseDelimited,
}

/// What the body of a successful chat completion contains.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Reply {
    /// OpenAI-shaped replies generated from the request and the config.
    #[default]
    Generated,
    /// Raw `text/event-stream` body replayed verbatim to streaming requests (non-streaming
    /// requests still get a generated reply).
    Sse(Vec<u8>),
    /// Raw JSON body replayed verbatim to non-streaming requests (streaming requests still get a
    /// generated stream).
    Json(Vec<u8>),
}

/// A deliberate misbehaviour of the upstream, applied to chat completions only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Behave.
    #[default]
    None,
    /// Answer with this status (e.g. 429, 500, 503, 529) instead of a completion.
    Status {
        code: u16,
        /// Sent as a `Retry-After` header when set.
        retry_after_s: Option<u32>,
        /// Raw body; `None` sends an OpenAI error envelope.
        body: Option<Vec<u8>>,
    },
    /// Read the request, then close with `SO_LINGER` 0 (RST) without writing anything.
    ResetBeforeHeaders,
    /// Read the request, then close cleanly (FIN) without writing anything.
    CloseBeforeHeaders,
    /// Send the head and the first N body pieces (SSE events, counting the role chunk), then RST.
    /// A non-streaming reply is cut after the head and the first half of its body instead.
    ResetAfterEvents(usize),
    /// Like `ResetAfterEvents`, but then stop writing and keep the connection open until the mock
    /// is dropped.
    StallAfterEvents(usize),
    /// After N events send `data: {not json\n\n`, then continue normally (streams only).
    MalformedEventAfter(usize),
    /// Omit the finish chunk, the usage chunk and `data: [DONE]`, then end the body cleanly
    /// (generated streams only).
    MissingFinalEvent,
    /// Answer a stream with 200, then an OpenAI error object as the only event, as OpenAI-compatible
    /// servers do when they fail after accepting a stream (streams only).
    ErrorEventFirst,
}

/// Where and how the mock listens.
#[derive(Clone, Debug)]
pub struct MockOptions {
    /// Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// Runtime threads; more than one shares the port through `SO_REUSEPORT`.
    pub workers: usize,
    /// Serve HTTPS instead of HTTP.
    pub tls: Option<MockTls>,
    /// Keep every request for `requests()`/`wait_for_requests()` (default true). The benchmark
    /// binary turns it off so a long run does not hoard every request body.
    pub record_requests: bool,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions { listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), workers: 1, tls: None, record_requests: true }
    }
}

/// PEM-encoded server certificate chain (leaf first) and private key.
#[derive(Clone)]
pub struct MockTls {
    pub cert_chain_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl fmt::Debug for MockTls {
    // Key material stays out of test logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockTls")
            .field("cert_chain_pem_len", &self.cert_chain_pem.len())
            .field("key_pem", &"<redacted>")
            .finish()
    }
}
