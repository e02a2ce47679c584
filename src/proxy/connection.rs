//! Admit: one client connection's life. Reads request heads and bodies under the configured limits
//! and timeouts, hands each request to `dispatch`, and keeps the connection alive while both sides
//! allow it.
//!
//! Framing errors are answered once (400/408/413/431/505) and the connection is closed, because after
//! a framing error the byte stream can no longer be trusted to delimit the next request.

use std::rc::Rc;
use std::sync::LazyLock;

use memchr::memmem::Finder;
use monoio::net::TcpStream;
use monoio::time::Instant;

use super::WorkerContext;
use super::client::{ClientConn, Request};
use super::lifecycle::Phase;
use crate::error::{ErrorKind, GatewayError};
use crate::http::BodyFraming;
use crate::http::body::{BodyDecoder, BodyError};
use crate::http::request::{RequestHead, parse_request_head};

/// Why reading a request stopped without a request to serve.
enum Admit {
    /// The client closed or idled out between requests: close quietly.
    Closed,
    /// Answer with this error, then close.
    Reject(GatewayError),
}

/// Serves requests on one client connection, accepted on `listener`, until either side ends it.
///
/// A plain fn returning an `async move` block rather than an `async fn`: an async fn keeps each
/// by-value argument twice in its future (as the argument and as its local), and this future is
/// the connection's task, held for as long as the connection is open (a stream's whole life).
pub fn serve(
    cx: Rc<WorkerContext>,
    stream: TcpStream,
    listener: super::listener::Listener,
) -> impl std::future::Future<Output = ()> {
    let open = cx.lifecycle.connection();
    let _ = stream.set_nodelay(true);
    let mut conn = ClientConn::new(stream);
    conn.listener = listener;
    conn.lifecycle = Some(Rc::clone(&cx.lifecycle));
    conn.waiter = Some(open.waiter());
    async move {
        let _open = open;
        let mut first = true;
        loop {
            let mut request = match read_request(&cx, &mut conn, first).await {
                Ok(request) => request,
                Err(Admit::Closed) => return,
                Err(Admit::Reject(error)) => {
                    let _ = conn.send_error(&error, false).await;
                    return;
                }
            };
            first = false;
            let go_on = super::dispatch::handle(&cx, &mut conn, &mut request).await;
            crate::buffers::CLIENT_BODIES.give_back(std::mem::take(&mut request.body));
            if !go_on {
                return;
            }
            trim_idle_buffers(&mut conn);
        }
    }
}

/// Over the connection limit: a fast 503 without reading anything, then close.
pub async fn refuse(stream: TcpStream) {
    let mut conn = ClientConn::new(stream);
    let error = GatewayError::new(ErrorKind::Unavailable, "the gateway is at its connection limit; retry shortly");
    let _ = conn.send_error(&error, false).await;
}

async fn read_request(cx: &WorkerContext, conn: &mut ClientConn, first: bool) -> Result<Request, Admit> {
    let head = read_head(cx, conn, first).await?;
    if super::dispatch::refuse_before_body(cx, conn, &head).await {
        linger(conn).await;
        return Err(Admit::Closed);
    }
    let body = read_body(cx, conn, &head).await?;
    Ok(Request { head, body, key: None })
}

/// Waits for a complete head. Between requests the wait is the keep-alive timeout; once the first
/// byte of a request is here (or on a new connection) the whole head must arrive within the header
/// timeout, which bounds slow-loris clients.
async fn read_head(cx: &WorkerContext, conn: &mut ClientConn, first: bool) -> Result<RequestHead, Admit> {
    let limits = cx.settings().server;
    let mut deadline = (first || !conn.buf.is_empty()).then(|| crate::clock::timer_now() + limits.header_read_timeout);
    let mut scanned = 0;
    loop {
        // Parsing waits for a blank line (or the size limit): a head sent a byte per packet is then
        // parsed once, not once per byte.
        if head_may_be_complete(&conn.buf, scanned, limits.request.max_head_bytes) {
            match parse_request_head(&conn.buf, &limits.request) {
                Ok(Some((head, used))) => {
                    conn.buf.drain(..used);
                    return Ok(head);
                }
                Ok(None) => {}
                Err(e) => return Err(Admit::Reject(head_error(&e))),
            }
        }
        scanned = conn.buf.len();
        let had_bytes = !conn.buf.is_empty();
        if !had_bytes && !first && cx.lifecycle.is_draining() {
            return Err(Admit::Closed);
        }
        let wait_until = deadline.unwrap_or_else(|| crate::clock::timer_now() + limits.keepalive_timeout);
        let read = if had_bytes || first {
            conn.read_more_until(wait_until).await
        } else {
            // Idle between requests: a drain closes the connection at once.
            let draining = match conn.waiter {
                Some(key) => cx.lifecycle.reached_as(Phase::Draining, key),
                None => cx.lifecycle.reached(Phase::Draining),
            };
            monoio::select! {
                _ = draining => return Err(Admit::Closed),
                read = conn.read_more_until(wait_until) => read,
            }
        };
        match read {
            Err(_) if had_bytes => return Err(Admit::Reject(request_timeout("request head"))),
            Err(_) => return Err(Admit::Closed),
            Ok(Ok(0)) | Ok(Err(_)) => return Err(Admit::Closed),
            Ok(Ok(_)) => {}
        }
        deadline.get_or_insert_with(|| crate::clock::timer_now() + limits.header_read_timeout);
    }
}

/// Whether `buf` may hold a whole head: a line terminator followed by an empty line appeared at or
/// after `scanned` (the length already looked at, less the 2 bytes a terminator could straddle), or
/// the buffer reached the head size limit, which the parser then reports.
fn head_may_be_complete(buf: &[u8], scanned: usize, max_head_bytes: usize) -> bool {
    let from = scanned.saturating_sub(2);
    let tail = &buf[from..];
    // Searchers built once: `memmem::find` built one per call, which cost more than the search.
    static CRLF_END: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\n\r\n"));
    static LF_END: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\n\n"));
    buf.len() >= max_head_bytes || CRLF_END.find(tail).is_some() || LF_END.find(tail).is_some()
}

async fn read_body(cx: &WorkerContext, conn: &mut ClientConn, head: &RequestHead) -> Result<Vec<u8>, Admit> {
    let max = super::admin_keys::body_limit(head, cx.settings().server.max_body_bytes);
    let deadline = crate::clock::timer_now() + cx.settings().server.body_read_timeout;
    match head.framing {
        BodyFraming::Length(n) if n > max as u64 => Err(Admit::Reject(too_large(max))),
        BodyFraming::Length(n) => {
            continue_if_expected(conn, head).await?;
            read_length_body(conn, n as usize, deadline).await
        }
        BodyFraming::Chunked => {
            continue_if_expected(conn, head).await?;
            read_chunked_body(conn, max, deadline).await
        }
        BodyFraming::Empty | BodyFraming::UntilClose => Ok(Vec::new()),
    }
}

/// `Expect: 100-continue` clients (curl for large bodies) wait for this before sending the body.
async fn continue_if_expected(conn: &mut ClientConn, head: &RequestHead) -> Result<(), Admit> {
    if head.expect_continue && conn.buf.is_empty() {
        conn.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        conn.flush().await.map_err(|_| Admit::Closed)?;
    }
    Ok(())
}

async fn read_length_body(conn: &mut ClientConn, len: usize, deadline: Instant) -> Result<Vec<u8>, Admit> {
    // The length is known (and within the limit): room for all of it at once, not growth by reads.
    conn.buf.reserve(len.saturating_sub(conn.buf.len()));
    while conn.buf.len() < len {
        read_body_bytes(conn, deadline).await?;
    }
    // The body lives as long as its call (a stream's whole life), so it takes only the memory it
    // needs. A small one is copied out and the read buffer stays for the next request; a large one
    // takes the buffer it was read into (no copy) and gives back its unused end (in place).
    if len <= COPY_BODY_MAX {
        // Into a kept buffer of about its size (given back once the request is answered).
        let mut body = crate::buffers::CLIENT_BODIES.take(len);
        body.extend_from_slice(&conn.buf[..len]);
        conn.buf.drain(..len);
        return Ok(body);
    }
    let rest = conn.buf.split_off(len);
    let mut body = std::mem::replace(&mut conn.buf, rest);
    if body.capacity() - body.len() >= SHRINK_SLACK {
        body.shrink_to_fit();
    }
    Ok(body)
}

/// Bodies up to this size are copied out of the read buffer, which the connection keeps.
const COPY_BODY_MAX: usize = 16 * 1024;

/// Unused capacity worth giving back from a buffer that outlives the request.
const SHRINK_SLACK: usize = 1024;

/// Buffers larger than this are given back between requests (a large body grew them); the next
/// request starts small again.
const IDLE_BUFFER_MAX: usize = 64 * 1024;

/// Between requests: hands back what a large request or response grew the buffers to.
fn trim_idle_buffers(conn: &mut ClientConn) {
    if conn.buf.capacity() > IDLE_BUFFER_MAX && conn.buf.len() < IDLE_BUFFER_MAX {
        conn.buf.shrink_to(IDLE_BUFFER_MAX / 4);
    }
    if conn.out.capacity() > IDLE_BUFFER_MAX {
        conn.out = Vec::new();
    }
}

async fn read_chunked_body(conn: &mut ClientConn, max: usize, deadline: Instant) -> Result<Vec<u8>, Admit> {
    let mut decoder = BodyDecoder::new(BodyFraming::Chunked);
    let mut body = Vec::new();
    loop {
        let used = decoder.decode_into(&conn.buf, &mut body, max).map_err(|e| match e {
            BodyError::TooLarge => Admit::Reject(too_large(max)),
            other => Admit::Reject(GatewayError::new(ErrorKind::BadRequest, format!("invalid chunked body: {other}"))),
        })?;
        conn.buf.drain(..used);
        if decoder.is_done() {
            if body.capacity() - body.len() >= SHRINK_SLACK {
                body.shrink_to_fit();
            }
            return Ok(body);
        }
        read_body_bytes(conn, deadline).await?;
    }
}

async fn read_body_bytes(conn: &mut ClientConn, deadline: Instant) -> Result<(), Admit> {
    match conn.read_more_until(deadline).await {
        Err(_) => Err(Admit::Reject(request_timeout("request body"))),
        Ok(Ok(0)) | Ok(Err(_)) => Err(Admit::Closed),
        Ok(Ok(_)) => Ok(()),
    }
}

/// How long, and how much, a refused client's unread body is read and dropped before closing.
const LINGER_TIME: std::time::Duration = std::time::Duration::from_millis(500);
const LINGER_BYTES: usize = 256 * 1024;

/// Closing with unread bytes makes the kernel send RST, which can destroy the answer just written
/// before the client reads it; a short, bounded read first lets the answer arrive (nginx's lingering
/// close, in small).
async fn linger(conn: &mut ClientConn) {
    let deadline = Instant::now() + LINGER_TIME;
    let mut dropped = 0;
    while dropped < LINGER_BYTES {
        conn.buf.clear();
        match conn.read_more_until(deadline).await {
            Ok(Ok(n)) if n > 0 => dropped += n,
            _ => return,
        }
    }
}

fn head_error(e: &crate::http::HeadError) -> GatewayError {
    let kind = match e.status() {
        431 => ErrorKind::HeadersTooLarge,
        505 => ErrorKind::UnsupportedHttpVersion,
        _ => ErrorKind::BadRequest,
    };
    GatewayError::new(kind, format!("malformed HTTP request: {e}"))
}

fn too_large(max: usize) -> GatewayError {
    GatewayError::new(ErrorKind::PayloadTooLarge, format!("request body exceeds the gateway's limit of {max} bytes"))
}

fn request_timeout(what: &str) -> GatewayError {
    GatewayError::new(ErrorKind::RequestTimeout, format!("timed out reading the {what}"))
}

#[cfg(test)]
mod tests {
    use super::head_may_be_complete;

    /// The size and alignment of the future an async fn returns, without calling it.
    fn future_layout<A, B, C, F: std::future::Future>(_: &impl Fn(A, B, C) -> F) -> (usize, usize) {
        (std::mem::size_of::<F>(), std::mem::align_of::<F>())
    }

    /// A connection's task is most of an open stream's memory; this keeps it from creeping back. It
    /// was 10.7 KiB before timers were boxed and large arguments borrowed, 6,160 bytes before
    /// by-value arguments stopped being held twice, rare paths (an unusable answer's body) were
    /// boxed and TLS reads became the size of a plain read (`upstream::tls_stream`), 4,824 after.
    #[test]
    fn a_connection_task_stays_small() {
        let (size, align) = future_layout(&super::serve);
        println!("connection task future: {size} bytes, aligned to {align}");
        assert!(size <= CONNECTION_FUTURE_BUDGET, "{size} bytes, over {CONNECTION_FUTURE_BUDGET}");
        // A monoio `Sleep` held inline anywhere below would make this 128 (see `timer`).
        assert!(align <= 16, "aligned to {align}");
    }

    const CONNECTION_FUTURE_BUDGET: usize = 5 * 1024;

    #[test]
    fn a_head_is_parsed_only_once_its_blank_line_may_be_there() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut parses = 0;
        let mut scanned = 0;
        // Fed a byte at a time: one parse, at the last byte.
        for end in 1..=head.len() {
            if head_may_be_complete(&head[..end], scanned, 8192) {
                parses += 1;
                assert_eq!(end, head.len(), "parsed before the blank line");
            }
            scanned = end;
        }
        assert_eq!(parses, 1);
        assert!(head_may_be_complete(b"GET / HTTP/1.1\nHost: a\n\n", 0, 8192), "bare LF heads");
        assert!(head_may_be_complete(b"GET / HTTP/1.1\r\nX: aaaa", 0, 10), "at the size limit the parser decides");
    }
}
