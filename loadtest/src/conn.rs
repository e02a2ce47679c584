//! One accepted connection (plain TCP or TLS): read requests, record them, answer each as
//! planned, and end the connection the way the plan says (keep-alive, FIN, RST or stall). Owns
//! the read buffer; routing and content live in `plan.rs`, writing in `writer.rs`.

use std::io;
use std::mem;
use std::os::fd::RawFd;
use std::sync::Arc;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

use crate::http::{self, Parse, Request};
use crate::plan::{self, Action};
use crate::state::{RecordedRequest, Shared};
use crate::writer::{self, After};

/// Reads smaller than this much free space grow the buffer first.
const MIN_READ: usize = 4096;

pub(crate) struct Conn<S> {
    io: S,
    buf: Vec<u8>,
    shared: Arc<Shared>,
    id: u64,
    /// The TCP socket under `io` (also under TLS), for `SO_LINGER`.
    fd: RawFd,
}

impl<S: AsyncReadRent + AsyncWriteRent> Conn<S> {
    pub(crate) fn new(io: S, fd: RawFd, id: u64, shared: Arc<Shared>) -> Self {
        Conn { io, buf: Vec::with_capacity(8192), shared, id, fd }
    }

    /// Serves requests until the connection ends. Stalls forever when a fault says so: the
    /// caller races this against the mock's stop signal.
    pub(crate) async fn serve(mut self) {
        match self.exchange_all().await {
            After::KeepAlive | After::Close => {
                // FIN (and close_notify under TLS); the peer may already be gone.
                let _ = self.io.shutdown().await;
            }
            After::Reset => set_linger_zero(self.fd),
            After::Stall => std::future::pending::<()>().await,
        }
    }

    async fn exchange_all(&mut self) -> After {
        // One pass per request; ends at EOF, on error, or when a response closes.
        loop {
            let request = match self.read_request().await {
                Ok(Some(request)) => request,
                Ok(None) | Err(_) => return After::Close,
            };
            let config = self.shared.config();
            let seq = self.shared.next_response_seq();
            let action = plan::plan_response(&request, &config, seq);
            self.record(request);
            let drop_idle = config.drop_idle_after_response;
            let plan = match action {
                Action::Respond(plan) => plan,
                Action::Reset => return After::Reset,
                Action::Close => return After::Close,
            };
            match writer::write_plan(&mut self.io, plan, self.shared.alarms()).await {
                Ok(After::KeepAlive) if drop_idle => return After::Close,
                Ok(After::KeepAlive) => {}
                Ok(after) => return after,
                Err(_) => return After::Close,
            }
        }
    }

    fn record(&self, request: Request) {
        self.shared.record(RecordedRequest {
            method: request.method,
            path: request.target,
            headers: request.headers,
            body: request.body,
            connection_id: self.id,
        });
    }

    /// The next request; `None` at a clean EOF between requests. A malformed request is
    /// answered here and reported as an error so the connection closes.
    async fn read_request(&mut self) -> io::Result<Option<Request>> {
        let mut sent_continue = false;
        // Each pass either returns or reads at least one byte; the parser bounds head and body.
        loop {
            match http::parse_request(&self.buf) {
                Parse::Done { request, consumed } => {
                    self.buf.drain(..consumed);
                    return Ok(Some(request));
                }
                Parse::Bad { status, message } => {
                    let seq = self.shared.next_response_seq();
                    let plan = plan::bad_request(status, message, seq);
                    writer::write_plan(&mut self.io, plan, self.shared.alarms()).await?;
                    return Err(io::Error::new(io::ErrorKind::InvalidData, message));
                }
                Parse::Incomplete { expect_continue } => {
                    if expect_continue && !sent_continue {
                        sent_continue = true;
                        self.write_raw(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
                    }
                }
            }
            if self.read_more().await? == 0 {
                return if self.buf.is_empty() { Ok(None) } else { Err(io::ErrorKind::UnexpectedEof.into()) };
            }
        }
    }

    /// Appends whatever the peer sent next to the buffer. monoio's reads fill a buffer from its
    /// start, so the read goes into the spare capacity through a slice.
    async fn read_more(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < MIN_READ {
            self.buf.reserve(MIN_READ * 2);
        }
        let (len, cap) = (self.buf.len(), self.buf.capacity());
        let (result, slice) = self.io.read(mem::take(&mut self.buf).slice_mut(len..cap)).await;
        self.buf = slice.into_inner();
        result
    }

    async fn write_raw(&mut self, bytes: &'static [u8]) -> io::Result<()> {
        let (result, _) = self.io.write_all(bytes).await;
        result?;
        self.io.flush().await
    }
}

/// Makes the coming close send RST instead of FIN.
fn set_linger_zero(fd: RawFd) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: `fd` is the live socket owned by the connection being served (it is closed only
    // after this returns); the option value is a properly sized, initialised `linger`.
    let _ = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}
