//! The client side of one connection: its socket, its read buffer, and writing responses.

use std::io;

use monoio::net::TcpStream;

use crate::api::openai::render_error;
use crate::error::GatewayError;
use crate::netio;

pub struct ClientConn {
    pub stream: TcpStream,
    /// Bytes read but not yet consumed (a pipelined next request may already be here).
    pub buf: Vec<u8>,
    /// Response bytes being assembled; reused across responses.
    pub out: Vec<u8>,
}

impl ClientConn {
    pub fn new(stream: TcpStream) -> ClientConn {
        ClientConn { stream, buf: Vec::with_capacity(16 * 1024), out: Vec::with_capacity(16 * 1024) }
    }

    /// Writes `out` and clears it.
    pub async fn flush(&mut self) -> io::Result<()> {
        let out = std::mem::take(&mut self.out);
        let (result, mut out) = netio::write_all(&mut self.stream, out).await;
        out.clear();
        self.out = out;
        result
    }

    /// Renders an error response in the OpenAI format and writes it.
    pub async fn send_error(&mut self, error: &GatewayError, keep_alive: bool) -> io::Result<()> {
        self.out.clear();
        render_error(error, keep_alive, &mut self.out);
        self.flush().await
    }

    /// Reads once more into `buf`. Returns bytes read; 0 means the client closed.
    pub async fn read_more(&mut self) -> io::Result<usize> {
        let buf = std::mem::take(&mut self.buf);
        let (result, buf) = netio::read_append(&mut self.stream, buf).await;
        self.buf = buf;
        result
    }
}
