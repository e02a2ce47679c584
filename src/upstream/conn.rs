//! One upstream connection, plain TCP or TLS, and the liveness check run before reusing it.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use monoio::io::AsyncWriteRent;
use monoio::net::TcpStream;
use monoio::time::Instant;

use super::tls_stream::TlsStream;
use crate::netio;
use crate::timer::{Elapsed, Timer};

enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

/// A connection to a provider origin. `reused` tells whether it came from the pool, which decides
/// whether a failure before the response may be retried on a fresh connection.
pub struct UpstreamConn {
    transport: Transport,
    fd: RawFd,
    pub reused: bool,
    /// Bounds its reads; made at the first timed read unless connecting already made one. It stays
    /// with the connection in the pool, so a reused connection's reads allocate no timer.
    pub timer: Option<Timer>,
    /// Its read buffer, kept (emptied) while the connection waits in the pool: a reused connection
    /// reads its next response without allocating.
    pub read_buf: Vec<u8>,
}

impl UpstreamConn {
    pub fn plain(stream: TcpStream) -> UpstreamConn {
        let fd = stream.as_raw_fd();
        UpstreamConn { transport: Transport::Plain(stream), fd, reused: false, timer: None, read_buf: Vec::new() }
    }

    pub fn tls(stream: TlsStream) -> UpstreamConn {
        let fd = stream.as_raw_fd();
        UpstreamConn {
            transport: Transport::Tls(Box::new(stream)),
            fd,
            reused: false,
            timer: None,
            read_buf: Vec::new(),
        }
    }

    /// Reads once, appending to `buf`, giving up at `deadline` (the buffer is then dropped with the
    /// cancelled read, and so should the connection be).
    pub async fn read_append_until(
        &mut self,
        deadline: Instant,
        buf: Vec<u8>,
    ) -> Result<(io::Result<usize>, Vec<u8>), Elapsed> {
        let timer = self.timer.get_or_insert_with(Timer::new);
        match &mut self.transport {
            Transport::Plain(s) => timer.timeout_at(deadline, netio::read_append(s, buf)).await,
            Transport::Tls(s) => timer.timeout_at(deadline, s.read_append(buf)).await,
        }
    }

    pub async fn write_all(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        match &mut self.transport {
            Transport::Plain(s) => netio::write_all(s, buf).await,
            Transport::Tls(s) => s.write_all(buf).await,
        }
    }

    /// An idle pooled connection must have nothing to read: end-of-stream means the provider closed it,
    /// and any bytes (a late response, a TLS close_notify) mean it is out of sync. Either way it is dead.
    /// The check is one non-blocking `recv(MSG_PEEK)` syscall, valid under both io_uring and epoll.
    pub fn is_idle_and_open(&self) -> bool {
        crate::netio::peek(self.fd) == crate::netio::Peek::Empty
    }

    /// Sends TLS close_notify where applicable; errors are irrelevant on a connection being dropped.
    pub async fn shutdown(mut self) {
        let _ = match &mut self.transport {
            Transport::Plain(s) => s.shutdown().await,
            Transport::Tls(s) => s.shutdown().await,
        };
    }
}

impl AsRawFd for UpstreamConn {
    fn as_raw_fd(&self) -> RawFd {
        self.fd
    }
}
