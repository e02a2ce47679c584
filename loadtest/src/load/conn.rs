//! One keep-alive client connection over monoio: the socket, its read buffer and when bytes last
//! arrived. Owns the rent-style I/O plumbing only; what a response means is `exchange.rs`'s.

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

/// Free space guaranteed before each read; the buffer grows past it only for an unusually long
/// response head or framing line (both capped by the response reader).
const READ_SPACE: usize = 16 * 1024;

pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` before this were consumed.
    pos: usize,
    /// When the last read completed: the arrival time of everything it brought.
    read_at: Instant,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect_addr(addr).await?;
        // Requests go out in one write; Nagle would only delay the next one on a reused connection.
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::with_capacity(READ_SPACE), pos: 0, read_at: Instant::now() })
    }

    pub async fn send(&mut self, request: Rc<Vec<u8>>) -> io::Result<()> {
        let (result, _) = self.stream.write_all(request).await;
        result.map(|_| ())
    }

    /// Bytes read but not consumed yet.
    pub fn unread(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    pub fn consume(&mut self, n: usize) {
        self.pos += n;
    }

    pub fn read_at(&self) -> Instant {
        self.read_at
    }

    /// Reads more bytes after the unread ones; `false` at end of stream.
    pub async fn fill(&mut self) -> io::Result<bool> {
        // Move the unread tail (usually empty or a partial line) to the front before reading.
        self.buf.drain(..self.pos);
        self.pos = 0;
        self.buf.reserve(READ_SPACE);
        let (len, cap) = (self.buf.len(), self.buf.capacity());
        let buf = std::mem::take(&mut self.buf);
        let (result, slice) = self.stream.read(buf.slice_mut(len..cap)).await;
        self.buf = slice.into_inner();
        let n = result?;
        self.read_at = Instant::now();
        Ok(n > 0)
    }
}
