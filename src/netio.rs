//! Small helpers over monoio's rent-style I/O that both sides of the proxy use.
//!
//! monoio's `read(Vec)` fills from offset 0 and takes ownership of the buffer; these helpers append
//! instead and hand the buffer back, so callers can keep one buffer per connection.

use std::io;

use monoio::buf::{IoBuf, IoBufMut, SliceMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

/// Smallest free space a read is given; avoids many tiny reads when the buffer is nearly full.
const MIN_READ_SPACE: usize = 8 * 1024;

/// Reads once, appending to `buf` (grown by at least `MIN_READ_SPACE` free bytes). Returns the bytes
/// read (0 = end of stream) and the buffer.
pub async fn read_append<R: AsyncReadRent>(reader: &mut R, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
    if buf.capacity() - buf.len() < MIN_READ_SPACE {
        buf.reserve(MIN_READ_SPACE);
    }
    let len = buf.len();
    let cap = buf.capacity();
    let slice: SliceMut<Vec<u8>> = buf.slice_mut(len..cap);
    let (result, slice) = reader.read(slice).await;
    (result, slice.into_inner())
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
