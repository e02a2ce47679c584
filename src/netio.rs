//! Small helpers over monoio's rent-style I/O that both sides of the proxy use.
//!
//! monoio's `read(Vec)` fills from offset 0 and takes ownership of the buffer; these helpers append
//! instead and hand the buffer back, so callers can keep one buffer per connection.

use std::io;

use monoio::buf::{IoBuf, IoBufMut, SliceMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

use crate::timer::Timer;

/// What a non-blocking one-byte peek at a socket finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek {
    /// Nothing to read and the peer still there.
    Empty,
    /// Bytes wait to be read.
    Data,
    /// End of stream or an error: the peer is gone.
    Closed,
}

/// One `recv(MSG_PEEK | MSG_DONTWAIT)`: valid under io_uring and epoll, consumes nothing.
pub fn peek(fd: std::os::fd::RawFd) -> Peek {
    let mut byte = [0u8; 1];
    // SAFETY: `byte` is a valid 1-byte buffer for the duration of the call; a stale or foreign `fd`
    // makes recv fail (EBADF, ENOTSOCK), which reads as Closed.
    let n = unsafe { libc::recv(fd, byte.as_mut_ptr().cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    match n {
        0 => Peek::Closed,
        n if n > 0 => Peek::Data,
        _ if io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock => Peek::Empty,
        _ => Peek::Closed,
    }
}

/// Resolves once the peer of `fd` has gone, checking every `every`. For waits in which nothing
/// reads the socket (a call waiting on its provider), so a client that left is noticed.
pub async fn until_peer_gone(fd: std::os::fd::RawFd, every: std::time::Duration, timer: &mut Timer) {
    loop {
        timer.sleep_until(monoio::time::Instant::now() + every).await;
        if peek(fd) == Peek::Closed {
            return;
        }
    }
}

/// Free space a buffer is grown by when a read would get less than a quarter of it. Small on
/// purpose: a read buffer lives as long as its connection, and most of what a gateway reads (a
/// request, an SSE event, a short answer) fits; a larger body doubles the buffer as it comes.
const READ_SPACE: usize = 2 * 1024;

/// Reads once, appending to `buf` (grown by `READ_SPACE` when less than a quarter of it is free).
/// Returns the bytes read (0 = end of stream) and the buffer.
pub async fn read_append<R: AsyncReadRent>(reader: &mut R, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
    reserve_read_space(&mut buf);
    let len = buf.len();
    let cap = buf.capacity();
    let slice: SliceMut<Vec<u8>> = buf.slice_mut(len..cap);
    let (result, slice) = reader.read(slice).await;
    (result, slice.into_inner())
}

/// Grows `buf` by `READ_SPACE` when less than a quarter of that is free: the growth rule of every
/// appending read, socket or TLS.
pub fn reserve_read_space(buf: &mut Vec<u8>) {
    if buf.capacity() - buf.len() < READ_SPACE / 4 {
        buf.reserve(READ_SPACE);
    }
}

/// Writes the whole buffer and hands it back cleared, ready for reuse.
pub async fn write_all<W: AsyncWriteRent, B: IoBuf>(writer: &mut W, buf: B) -> (io::Result<()>, B) {
    let (result, buf) = writer.write_all(buf).await;
    (result.map(|_| ()), buf)
}

/// True when an error means the peer went away rather than something we did wrong.
pub fn is_disconnect(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::NotConnected
    )
}
