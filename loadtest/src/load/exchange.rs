//! One request/response exchange on a (possibly new) keep-alive connection, bounded by the request
//! timeout: connect if needed, send, read the response through `ResponseReader`, time stream events
//! through `SseScanner`, and decide success or the failure kind. Which request to send and when,
//! and recording the outcome, are `worker.rs`'s.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::time::timeout;

use super::conn::Conn;
use super::response::{Head, Parsed, ResponseReader};
use super::sse::{SseScanner, StreamEnd};
use super::stats::{Failure, StreamTiming, micros};

/// What every exchange of one thread shares.
pub(crate) struct Request {
    pub addr: SocketAddr,
    pub bytes: Rc<Vec<u8>>,
    /// Read 2xx bodies as SSE and time their events.
    pub stream: bool,
    pub timeout: Duration,
}

/// Runs one exchange. `slot` holds the connection between exchanges: it is filled on demand and
/// emptied whenever the connection cannot carry another request. On success returns when the
/// response completed; `timing` then holds the stream's event timing (relative to `scheduled`).
pub(crate) async fn exchange(
    request: &Request,
    slot: &mut Option<Conn>,
    scheduled: Instant,
    timing: &mut StreamTiming,
) -> Result<Instant, Failure> {
    let started = Instant::now();
    timing.first = None;
    timing.gaps.clear();
    timing.events = 0;
    let conn = match slot {
        Some(conn) => conn,
        None => match timeout(request.timeout, Conn::connect(request.addr)).await {
            Ok(Ok(conn)) => slot.insert(conn),
            Ok(Err(_)) | Err(_) => return Err(Failure::Connect),
        },
    };
    let left = request.timeout.saturating_sub(started.elapsed());
    let mut reply = Reply { head: None, sse: SseScanner::default(), timing, scheduled, last_event: None };
    let result = match timeout(left, roundtrip(request, conn, &mut reply)).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Timeout),
    };
    // After a failure the connection's state is unknown, and a close-delimited or
    // `Connection: close` response leaves nothing to reuse.
    if !(result.is_ok() && reply.head.is_some_and(|h| h.keep_alive)) {
        *slot = None;
    }
    let end = result?;
    reply.judge(request.stream)?;
    Ok(end)
}

/// What is learned about the response while reading it.
struct Reply<'a> {
    head: Option<Head>,
    sse: SseScanner,
    timing: &'a mut StreamTiming,
    scheduled: Instant,
    last_event: Option<Instant>,
}

impl Reply<'_> {
    fn is_sse(&self, stream: bool) -> bool {
        stream && self.head.is_some_and(|h| (200..300).contains(&h.status))
    }

    /// Body bytes that arrived at `at`.
    fn body(&mut self, stream: bool, data: &[u8], at: Instant) {
        if !self.is_sse(stream) {
            return;
        }
        let dispatched = self.sse.feed(data);
        if dispatched == 0 {
            return;
        }
        // Events that arrived in one read share its arrival time: the first one carries the gap
        // since the previous read's events, the rest a gap of zero.
        match self.last_event {
            None => self.timing.first = Some(at.saturating_duration_since(self.scheduled)),
            Some(last) => self.timing.gaps.push(micros(at.saturating_duration_since(last))),
        }
        self.timing.gaps.extend(std::iter::repeat_n(0, dispatched as usize - 1));
        self.timing.events += dispatched;
        self.last_event = Some(at);
    }

    /// A complete response is a success only with a 2xx status and, for a stream, a clean end.
    fn judge(&self, stream: bool) -> Result<(), Failure> {
        let status = self.head.map_or(0, |h| h.status);
        if !(200..300).contains(&status) {
            return Err(Failure::Status(status));
        }
        if !stream {
            return Ok(());
        }
        match self.sse.end() {
            StreamEnd::Complete => Ok(()),
            StreamEnd::Error => Err(Failure::StreamError),
            StreamEnd::Incomplete => Err(Failure::StreamIncomplete),
            StreamEnd::Malformed => Err(Failure::Protocol),
        }
    }
}

/// Sends the request and reads the whole response; returns when it completed.
async fn roundtrip(request: &Request, conn: &mut Conn, reply: &mut Reply<'_>) -> Result<Instant, Failure> {
    conn.send(Rc::clone(&request.bytes)).await.map_err(|_| Failure::Io)?;
    let mut reader = ResponseReader::new(false);
    // Every pass consumes input, or reads (which the caller's timeout bounds in time).
    loop {
        let (used, parsed) = reader.next(conn.unread()).map_err(|_| Failure::Protocol)?;
        let need_more = match parsed {
            Parsed::Head(head) => {
                reply.head = Some(head);
                false
            }
            Parsed::Data(range) => {
                reply.body(request.stream, &conn.unread()[range], conn.read_at());
                false
            }
            Parsed::End => {
                conn.consume(used);
                return Ok(conn.read_at());
            }
            Parsed::NeedMore => true,
        };
        conn.consume(used);
        if need_more && !conn.fill().await.map_err(|_| Failure::Io)? {
            return if reader.at_eof() { Ok(conn.read_at()) } else { Err(Failure::Io) };
        }
    }
}
