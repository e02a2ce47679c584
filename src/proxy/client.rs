//! The client side of one connection: its socket, its read buffer, the requests read from it, and
//! writing responses.

use std::io;

use monoio::net::TcpStream;
use monoio::time::Instant;

use crate::error::{ErrorKind, GatewayError};
use crate::http::request::RequestHead;
use crate::http::write::{OutField, OutFraming, write_response_head_with};
use crate::netio;
use crate::timer::{Elapsed, Timer};

/// A request whose head and body were read completely.
pub struct Request {
    pub head: RequestHead,
    pub body: Vec<u8>,
    /// The governed gateway key that sent it, once authenticated (when keys have limits).
    pub key: Option<crate::governance::KeyRef>,
}

pub struct ClientConn {
    pub stream: TcpStream,
    /// Bytes read but not yet consumed (a pipelined next request may already be here).
    pub buf: Vec<u8>,
    /// Response bytes being assembled; reused across responses.
    pub out: Vec<u8>,
    /// The current request's id, echoed in every response head as `x-request-id`.
    pub request_id: String,
    /// Status of the last response head written (for metrics and the access log).
    pub last_status: u16,
    /// Bytes written to the client so far.
    pub written: u64,
    /// The listener this connection came in on, which decides the paths served.
    pub listener: super::listener::Listener,
    /// The worker's lifecycle: once it drains, every response head says `connection: close`, also
    /// those of requests that were already in flight when the drain began.
    pub lifecycle: Option<std::rc::Rc<super::lifecycle::Lifecycle>>,
    /// This connection's entry among the lifecycle's waiters, which its idle waits share.
    pub waiter: Option<super::lifecycle::WaiterKey>,
    /// The current request's `traceparent` (its span in the gateway), sent with the next response
    /// head only; empty when the request has no trace context.
    pub traceparent: String,
    /// Bounds this connection's reads; lent out (`None` meanwhile) to pace the check for a client
    /// that left while its call waits on a provider, when nothing reads. Made at first use.
    timer: Option<Timer>,
}

impl ClientConn {
    pub fn new(stream: TcpStream) -> ClientConn {
        ClientConn {
            stream,
            buf: Vec::new(),
            out: Vec::new(),
            request_id: String::new(),
            last_status: 0,
            written: 0,
            listener: super::listener::Listener::Both,
            lifecycle: None,
            waiter: None,
            traceparent: String::new(),
            timer: None,
        }
    }

    /// Appends a response head with `x-request-id` added.
    pub fn write_head(&mut self, status: u16, headers: &[OutField<'_>], framing: OutFraming, keep_alive: bool) {
        self.last_status = status;
        let keep_alive = keep_alive && !self.is_draining();
        let own: [OutField<'_>; 2] =
            [("x-request-id", self.request_id.as_bytes()), ("traceparent", self.traceparent.as_bytes())];
        let own = match (self.request_id.is_empty(), self.traceparent.is_empty()) {
            (true, _) => &own[..0],
            (false, true) => &own[..1],
            (false, false) => &own[..],
        };
        write_response_head_with(&mut self.out, status, headers, own, framing, keep_alive);
        if !self.request_id.is_empty() {
            // Sent once; cleared rather than dropped so the next request reuses its room.
            self.traceparent.clear();
        }
    }

    /// For a long wait in which the client is not read (a stream): an empty read buffer is given
    /// back, and made again for the next request.
    pub fn release_read_buffer(&mut self) {
        if self.buf.is_empty() {
            self.buf = Vec::new();
        }
    }

    /// The worker is draining: no response may promise another on this connection.
    pub fn is_draining(&self) -> bool {
        self.lifecycle.as_ref().is_some_and(|l| l.is_draining())
    }

    /// Writes `out` and clears it.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.written += self.out.len() as u64;
        let out = std::mem::take(&mut self.out);
        let (result, mut out) = netio::write_all(&mut self.stream, out).await;
        out.clear();
        self.out = out;
        result
    }

    /// Renders an error response in the OpenAI format and writes it.
    pub async fn send_error(&mut self, error: &GatewayError, keep_alive: bool) -> io::Result<()> {
        self.send_error_as(error, keep_alive, crate::api::FrontDoor::OpenAi).await
    }

    /// Renders an error response in the given front door's format and writes it.
    pub async fn send_error_as(
        &mut self,
        error: &GatewayError,
        keep_alive: bool,
        front_door: crate::api::FrontDoor,
    ) -> io::Result<()> {
        self.out.clear();
        let body = front_door.gateway_error_body(error);
        let mut headers: Vec<(&str, &[u8])> = vec![("content-type", b"application/json")];
        if error.kind == ErrorKind::Unauthorized {
            headers.push(("www-authenticate", b"Bearer"));
        }
        let retry_after = error.retry_after_s.map(|s| s.to_string());
        if let Some(seconds) = &retry_after {
            headers.push(("retry-after", seconds.as_bytes()));
        }
        self.write_head(error.status(), &headers, OutFraming::Length(body.len() as u64), keep_alive);
        self.out.extend_from_slice(&body);
        self.flush().await
    }

    /// Reads once more into `buf`, giving up at `deadline`. Returns bytes read; 0 means the client
    /// closed. After `Elapsed` the buffer is gone with the cancelled read: the connection is done.
    pub async fn read_more_until(&mut self, deadline: Instant) -> Result<io::Result<usize>, Elapsed> {
        let buf = std::mem::take(&mut self.buf);
        let timer = self.timer.get_or_insert_with(Timer::new);
        let (result, buf) = timer.timeout_at(deadline, netio::read_append(&mut self.stream, buf)).await?;
        self.buf = buf;
        Ok(result)
    }

    /// The connection's timer, for a wait in which the connection is not read (give it back).
    pub fn lend_timer(&mut self) -> Timer {
        self.timer.take().unwrap_or_default()
    }

    pub fn give_back_timer(&mut self, timer: Timer) {
        self.timer = Some(timer);
    }
}
