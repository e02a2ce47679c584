//! One HTTP/1.1 request/response exchange with a provider: get a connection (pooled or new), write the
//! request in one write, read the response head, then hand out the body piece by piece.
//!
//! Retry rule: a request that failed on a *reused* connection before a single response byte arrived is
//! sent once more on a fresh connection. Idle connections closed by the provider are the common cause,
//! and the pool's liveness check catches most of them before this point; this covers the race where
//! the close arrives while we write.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpStream;
use monoio::time::Instant;
use rustls_pki_types::ServerName;

use super::conn::UpstreamConn;
use super::pool::Pool;
use super::tls::TlsClientConfigs;
use super::tls_stream::TlsStream;
use super::{PoolKey, Scheme};
use crate::config::resolve::ResolvedProvider;
use crate::http::body::{BodyDecoder, BodyError};
use crate::http::response::{ResponseHead, parse_response_head};
use crate::timer::{Elapsed, Timer};

/// Largest response head accepted from a provider.
const MAX_RESPONSE_HEAD_BYTES: usize = 64 * 1024;

/// Why an exchange failed. `before_response` failures may be retried elsewhere by routing later.
#[derive(Debug)]
pub enum UpstreamError {
    Connect(io::Error),
    ConnectTimeout,
    Tls(io::Error),
    Write(io::Error),
    /// The provider closed or reset the connection before sending a response head.
    ClosedBeforeResponse,
    FirstByteTimeout,
    /// Silence longer than the read idle timeout while reading the body.
    ReadIdleTimeout,
    Read(io::Error),
    BadResponseHead(String),
    /// A well-framed body the gateway cannot read as the answer it expected.
    UnreadableAnswer(String),
    BadBody(BodyError),
    /// A buffered body exceeded the configured limit.
    BodyTooLarge,
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Connect(e) => write!(f, "cannot connect to provider: {e}"),
            UpstreamError::ConnectTimeout => f.write_str("timed out connecting to provider"),
            UpstreamError::Tls(e) => write!(f, "TLS handshake with provider failed: {e}"),
            UpstreamError::Write(e) => write!(f, "cannot send request to provider: {e}"),
            UpstreamError::ClosedBeforeResponse => f.write_str("provider closed the connection before responding"),
            UpstreamError::FirstByteTimeout => f.write_str("timed out waiting for the provider's response"),
            UpstreamError::ReadIdleTimeout => f.write_str("provider stopped sending mid-response"),
            UpstreamError::Read(e) => write!(f, "connection to provider failed mid-response: {e}"),
            UpstreamError::BadResponseHead(why) => write!(f, "provider sent an invalid HTTP response: {why}"),
            UpstreamError::UnreadableAnswer(why) => write!(f, "provider sent an answer that cannot be read: {why}"),
            UpstreamError::BadBody(e) => write!(f, "provider sent an invalid response body: {e}"),
            UpstreamError::BodyTooLarge => f.write_str("provider response exceeds the gateway's limit"),
        }
    }
}

impl UpstreamError {
    /// Timeouts map to 504 for the client; everything else is a bad gateway.
    pub fn is_timeout(&self) -> bool {
        matches!(self, UpstreamError::ConnectTimeout | UpstreamError::FirstByteTimeout | UpstreamError::ReadIdleTimeout)
    }
}

/// What an exchange needs from its worker.
pub struct ExchangeContext<'a> {
    pub pool: &'a Pool,
    pub tls: &'a TlsClientConfigs,
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub read_idle_timeout: Duration,
}

/// A response whose head has arrived; the body is read through `body`.
pub struct UpstreamResponse {
    pub head: ResponseHead,
    pub body: BodyReader,
}

/// Sends `request` (head and body, already encoded) to `provider` and waits for the response head.
pub async fn send(
    cx: &ExchangeContext<'_>,
    provider: &ResolvedProvider,
    mut request: Vec<u8>,
) -> Result<UpstreamResponse, UpstreamError> {
    let key = &provider.origin.key;
    // One connection variable for the pooled one and its fresh replacement: each local held across
    // an await is kept in the future, and this one is in every call's task.
    let mut conn = match cx.pool.take(key) {
        Some(conn) => conn,
        None => connect(cx, provider).await?,
    };
    loop {
        let (written, buf) = conn.write_all(request).await;
        // Only a pooled connection's failure is retried (on a fresh one), so only then is the request
        // kept until the head: thousands of streams opened at once each wait on a fresh connection.
        request = if conn.reused {
            buf
        } else {
            crate::buffers::UPSTREAM_REQUESTS.give_back(buf);
            Vec::new()
        };
        let outcome = match written {
            Ok(()) => read_head(cx, &mut conn).await,
            Err(e) => Err(UpstreamError::Write(e)),
        };
        match outcome {
            Ok((head, buf, pos)) => {
                crate::buffers::UPSTREAM_REQUESTS.give_back(request);
                let body = BodyReader::new(conn, key.clone(), &head, buf, pos, cx.read_idle_timeout);
                return Ok(UpstreamResponse { head, body });
            }
            Err(e) if conn.reused && is_stale_connection_error(&e) => {
                log::debug!("stale pooled connection to {key} ({e}); retrying on a fresh one");
                conn = connect(cx, provider).await?;
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_stale_connection_error(error: &UpstreamError) -> bool {
    match error {
        UpstreamError::ClosedBeforeResponse => true,
        UpstreamError::Write(e) | UpstreamError::Read(e) => crate::netio::is_disconnect(e),
        _ => false,
    }
}

async fn connect(cx: &ExchangeContext<'_>, provider: &ResolvedProvider) -> Result<UpstreamConn, UpstreamError> {
    // Boxed: a TLS handshake's state is 2 KiB that every request's future would otherwise carry,
    // though only a new connection needs it. The timer then bounds this connection's reads.
    let mut timer = Timer::new();
    match timer.timeout(cx.connect_timeout, Box::pin(connect_untimed(cx, provider))).await {
        Ok(Ok(mut conn)) => {
            conn.timer = Some(timer);
            Ok(conn)
        }
        Ok(Err(e)) => Err(e),
        Err(Elapsed) => Err(UpstreamError::ConnectTimeout),
    }
}

async fn connect_untimed(cx: &ExchangeContext<'_>, provider: &ResolvedProvider) -> Result<UpstreamConn, UpstreamError> {
    let stream = connect_any(&provider.addrs).await?;
    let _ = stream.set_nodelay(true);
    match provider.origin.key.scheme {
        Scheme::Http => Ok(UpstreamConn::plain(stream)),
        Scheme::Https => {
            let config = cx
                .tls
                .get(&provider.name)
                .ok_or_else(|| UpstreamError::Tls(io::Error::other("no TLS configuration for provider")))?;
            let name = ServerName::try_from(provider.origin.host.clone())
                .map_err(|e| UpstreamError::Tls(io::Error::other(e)))?;
            let tls = TlsStream::connect(stream, Arc::clone(config), name).await.map_err(UpstreamError::Tls)?;
            Ok(UpstreamConn::tls(tls))
        }
    }
}

/// Tries each resolved address in order; the last error wins.
async fn connect_any(addrs: &[SocketAddr]) -> Result<TcpStream, UpstreamError> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address for host");
    for addr in addrs {
        match TcpStream::connect_addr(*addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(UpstreamError::Connect(last))
}

/// Reads until a complete final (non-1xx) response head. Returns it with the buffer and the offset
/// where the body starts.
async fn read_head(
    cx: &ExchangeContext<'_>,
    conn: &mut UpstreamConn,
) -> Result<(ResponseHead, Vec<u8>, usize), UpstreamError> {
    let deadline = crate::clock::timer_now() + cx.first_byte_timeout;
    let mut buf = std::mem::take(&mut conn.read_buf);
    let mut start = 0;
    loop {
        // A pooled connection's buffer is empty when the exchange starts: nothing to parse yet.
        let parsed = match &buf[start..] {
            [] => Ok(None),
            unparsed => parse_response_head(unparsed, MAX_RESPONSE_HEAD_BYTES, false),
        };
        match parsed {
            // A 1xx is dropped; the final head may already be in the buffer behind it, so parse
            // again before reading.
            Ok(Some((head, used))) if head.is_informational() => {
                start += used;
                continue;
            }
            Ok(Some((head, used))) => return Ok((head, buf, start + used)),
            Ok(None) => {}
            Err(e) => return Err(UpstreamError::BadResponseHead(e.to_string())),
        }
        let read = conn.read_append_until(deadline, buf).await;
        let (result, returned) = read.map_err(|_| UpstreamError::FirstByteTimeout)?;
        buf = returned;
        match result {
            Ok(0) if buf.is_empty() => return Err(UpstreamError::ClosedBeforeResponse),
            Ok(0) => return Err(UpstreamError::BadResponseHead("connection closed inside the head".into())),
            Ok(_) => {}
            Err(e) if buf.is_empty() && crate::netio::is_disconnect(&e) => {
                return Err(UpstreamError::ClosedBeforeResponse);
            }
            Err(e) => return Err(UpstreamError::Read(e)),
        }
    }
}

/// The largest read buffer a pooled connection keeps.
const POOLED_READ_BUF_MAX: usize = 16 * 1024;

/// How far a body's read buffer grows while reads keep filling it (more room per read beyond this
/// saved no measurable time, and under overload every open stream would hold it).
const MAX_READ_ROOM: usize = 16 * 1024;

/// A grown read buffer larger than this is given back once a read no longer fills it and it is
/// empty again: a stream that waits between events (most of an LLM stream's life) holds no more,
/// whatever a burst before it (or its pooled connection's last answer) grew the buffer to.
const READ_ROOM_AT_REST: usize = 4 * 1024;

/// Where a whole body read by [`BodyReader::read_whole`] lies.
#[derive(Debug)]
pub enum WholeBody {
    /// In the reader's buffer, in one run.
    InBuffer(Range<usize>),
    /// Gathered from pieces that did not lie back to back (chunk framing between them).
    Gathered(Vec<u8>),
}

impl WholeBody {
    fn len(&self) -> usize {
        match self {
            WholeBody::InBuffer(range) => range.len(),
            WholeBody::Gathered(bytes) => bytes.len(),
        }
    }
}

/// Reads a response body incrementally, without copying the payload out of its read buffer.
pub struct BodyReader {
    conn: Option<UpstreamConn>,
    key: PoolKey,
    keep_alive: bool,
    buf: Vec<u8>,
    pos: usize,
    decoder: BodyDecoder,
    read_idle_timeout: Duration,
    /// Time spent waiting on the provider's reads, for the gateway-overhead measurement.
    waited: Duration,
    /// While a stream is held for its first event: when the wait for it ends (`FirstByteTimeout`).
    /// One deadline folded into each read's, so the hold needs no timer of its own.
    hold_until: Option<Instant>,
    /// The last read filled all the space it was given: the provider sends faster than that, so
    /// the next read gets twice the room (fewer reads, and fewer client writes, per burst), while a
    /// slow stream's buffer stays small.
    read_filled: bool,
    /// A piece [`Self::wait_for_piece`] found, not yet handed out: it lies before `pos`, so no read
    /// may happen until it is taken.
    ready: Option<Range<usize>>,
}

impl BodyReader {
    fn new(
        conn: UpstreamConn,
        key: PoolKey,
        head: &ResponseHead,
        buf: Vec<u8>,
        pos: usize,
        read_idle_timeout: Duration,
    ) -> BodyReader {
        // The head's read filled its buffer: the body is coming faster than that.
        let read_filled = buf.len() == buf.capacity();
        BodyReader {
            conn: Some(conn),
            key,
            keep_alive: head.keep_alive,
            buf,
            pos,
            decoder: BodyDecoder::new(head.framing),
            read_idle_timeout,
            waited: Duration::ZERO,
            hold_until: None,
            read_filled,
            ready: None,
        }
    }

    /// Bounds the reads until `until` (or no longer, with `None`): a read still waiting then fails
    /// with `FirstByteTimeout`, whatever the idle timeout says.
    pub fn hold_until(&mut self, until: Option<Instant>) {
        self.hold_until = until;
    }

    /// How long reads of this body waited on the provider so far.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// Waits, reading as needed, until a piece of payload is buffered (`Ok(true)`:
    /// [`Self::buffered_piece`] gives it, and the rest of its read after it) or the body ended
    /// cleanly (`Ok(false)`). It hands nothing out itself, so a caller can size what it writes by
    /// [`Self::buffered_len`] first.
    pub async fn wait_for_piece(&mut self) -> Result<bool, UpstreamError> {
        if self.ready.is_none() {
            self.ready = self.next_range().await?;
        }
        Ok(self.ready.is_some())
    }

    /// The bytes read and not yet handed out, framing included: an estimate of what
    /// [`Self::buffered_piece`] will give before the next read.
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.ready.as_ref().map_or(self.pos, |range| range.start)
    }

    /// The next piece the last read already brought, without reading; `None` when more input is
    /// needed, the body ended, or it is broken (`wait_for_piece` then reports how). A provider writes
    /// one chunk per event, and one read often holds many: relays drain them with this so that
    /// they reach the client in one write, not one write (and one loopback packet) per event.
    pub fn buffered_piece(&mut self) -> Option<&[u8]> {
        let range = match self.ready.take() {
            Some(range) => range,
            None => self.decode_buffered().ok()??,
        };
        Some(&self.buf[range])
    }

    /// The body ended cleanly and everything before its end was handed out (or was all framing):
    /// `wait_for_piece` would say `Ok(false)` without reading.
    pub fn is_done(&self) -> bool {
        self.ready.is_none() && self.decoder.is_done()
    }

    async fn next_range(&mut self) -> Result<Option<Range<usize>>, UpstreamError> {
        loop {
            if let Some(range) = self.decode_buffered()? {
                return Ok(Some(range));
            }
            if self.decoder.is_done() {
                return Ok(None);
            }
            self.read_more().await?;
        }
    }

    /// Decodes from what is buffered; `None` when more input is needed or the body is done.
    fn decode_buffered(&mut self) -> Result<Option<Range<usize>>, UpstreamError> {
        while self.pos < self.buf.len() && !self.decoder.is_done() {
            let step = self.decoder.step(&self.buf[self.pos..]).map_err(UpstreamError::BadBody)?;
            let base = self.pos;
            self.pos += step.consumed;
            if let Some(data) = step.data {
                return Ok(Some(base + data.start..base + data.end));
            }
            if step.consumed == 0 {
                break;
            }
        }
        Ok(None)
    }

    async fn read_more(&mut self) -> Result<(), UpstreamError> {
        // Everything before `pos` was handed out already; drop it so the buffer does not grow.
        self.read_more_keeping(self.pos).await
    }

    /// Reads once more, first dropping the buffer's bytes before `keep_from` (at most `pos`): earlier
    /// ranges into the buffer move back by `keep_from`.
    async fn read_more_keeping(&mut self, keep_from: usize) -> Result<(), UpstreamError> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(UpstreamError::BadBody(BodyError::Truncated));
        };
        debug_assert!(keep_from <= self.pos);
        debug_assert!(self.ready.is_none(), "a piece found but not handed out would move");
        self.buf.drain(..keep_from);
        self.pos -= keep_from;
        if self.read_filled && self.buf.capacity() < MAX_READ_ROOM {
            // Twice the room: `reserve` counts from the length, and the buffer is most often empty
            // here (every piece handed out), where reserving its capacity would add nothing.
            self.buf.reserve(2 * self.buf.capacity() - self.buf.len());
        } else if !self.read_filled && self.buf.is_empty() && self.buf.capacity() > READ_ROOM_AT_REST {
            // The burst is over: an open stream that waits keeps only a small buffer.
            self.buf = Vec::new();
        }
        let buf = std::mem::take(&mut self.buf);
        let started = crate::clock::timer_now();
        if self.hold_until.is_some_and(|until| until <= started) {
            // Checked before reading too: a read that finds bytes ready at once would win over a
            // deadline already past, and a provider trickling comments could hold forever.
            self.conn = None;
            return Err(UpstreamError::FirstByteTimeout);
        }
        let idle_deadline = started + self.read_idle_timeout;
        let deadline = self.hold_until.map_or(idle_deadline, |until| until.min(idle_deadline));
        let read = conn.read_append_until(deadline, buf).await;
        self.waited += crate::clock::timer_now().saturating_duration_since(started);
        let Ok((result, buf)) = read else {
            self.conn = None;
            let held_too_long = self.hold_until.is_some_and(|until| until <= idle_deadline);
            return Err(if held_too_long { UpstreamError::FirstByteTimeout } else { UpstreamError::ReadIdleTimeout });
        };
        self.buf = buf;
        self.read_filled = self.buf.len() == self.buf.capacity();
        match result {
            Ok(0) => {
                self.conn = None;
                self.decoder.on_eof().map_err(UpstreamError::BadBody)
            }
            Ok(_) => Ok(()),
            Err(e) => {
                self.conn = None;
                Err(UpstreamError::Read(e))
            }
        }
    }

    /// Reads the whole body into a buffer of its own, up to `max` bytes.
    pub async fn read_to_end(&mut self, max: usize) -> Result<Vec<u8>, UpstreamError> {
        Ok(match self.read_whole(max).await? {
            WholeBody::InBuffer(range) => self.buf[range].to_vec(),
            WholeBody::Gathered(bytes) => bytes,
        })
    }

    /// Reads the whole body, up to `max` bytes, leaving it in the read buffer when its pieces lie
    /// back to back there (a `content-length` body, or a chunked one sent as one chunk): a buffered
    /// answer is then written to the client straight from where it was read, with no copy and no
    /// allocation of its own. [`Self::whole_bytes`] gives the bytes; [`Self::release`] only after.
    pub async fn read_whole(&mut self, max: usize) -> Result<WholeBody, UpstreamError> {
        debug_assert!(self.ready.is_none(), "a body is read whole or piece by piece, not both");
        // The pieces so far: one run of the buffer while they lie back to back, else gathered.
        let mut whole: Option<WholeBody> = None;
        loop {
            while let Some(piece) = self.decode_buffered()? {
                if whole.as_ref().map_or(0, WholeBody::len) + piece.len() > max {
                    self.conn = None;
                    return Err(UpstreamError::BodyTooLarge);
                }
                match &mut whole {
                    None => whole = Some(WholeBody::InBuffer(piece)),
                    Some(WholeBody::InBuffer(run)) if run.end == piece.start => run.end = piece.end,
                    Some(WholeBody::InBuffer(run)) => {
                        let all = [&self.buf[run.clone()], &self.buf[piece]].concat();
                        whole = Some(WholeBody::Gathered(all));
                    }
                    Some(WholeBody::Gathered(all)) => all.extend_from_slice(&self.buf[piece]),
                }
            }
            if self.decoder.is_done() {
                break;
            }
            let keep_from = match &whole {
                Some(WholeBody::InBuffer(run)) => run.start,
                _ => self.pos,
            };
            self.read_more_keeping(keep_from).await?;
            if let Some(WholeBody::InBuffer(run)) = &mut whole {
                *run = run.start - keep_from..run.end - keep_from;
            }
        }
        Ok(whole.unwrap_or(WholeBody::InBuffer(self.pos..self.pos)))
    }

    /// The bytes of a body [`Self::read_whole`] read.
    pub fn whole_bytes<'a>(&'a self, whole: &'a WholeBody) -> &'a [u8] {
        match whole {
            WholeBody::InBuffer(range) => &self.buf[range.clone()],
            WholeBody::Gathered(bytes) => bytes,
        }
    }

    /// Gives the connection back to the pool if the response ended cleanly with nothing after it and
    /// the provider allows reuse; otherwise closes it.
    pub fn release(&mut self, pool: &Pool) {
        let clean = self.decoder.is_done() && self.keep_alive && self.pos == self.buf.len();
        if let Some(mut conn) = self.conn.take()
            && clean
        {
            // A buffer a large answer grew is not kept by an idle connection.
            if self.buf.capacity() <= POOLED_READ_BUF_MAX {
                self.buf.clear();
                conn.read_buf = std::mem::take(&mut self.buf);
            }
            pool.put(&self.key, conn);
        }
    }
}
