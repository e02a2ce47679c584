//! TLS to a provider: one rustls client session over one monoio TCP stream, with its handshake, its
//! plaintext reads and its writes. Owns moving ciphertext between the socket and rustls; not the
//! client configuration or trust (`tls.rs`) and not HTTP.
//!
//! Why not monoio-rustls, which this replaced: its read future is 720 bytes (784 with an appending
//! read around it), because its read path also holds a write to answer a bad record with an alert,
//! and a connection's read future sits in every open stream's task, plain or TLS alike (the
//! transport is an enum), for the stream's whole life. Here a read is one socket read around
//! synchronous rustls calls, so its future is the size of a plain read. A fatal TLS error drops the
//! connection without an alert: the provider sees it close, and nothing on it is reused.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use monoio::io::AsyncWriteRent;
use monoio::net::TcpStream;
use rustls::ClientConnection;
use rustls_pki_types::ServerName;

use crate::netio;

/// Plaintext handed out per read at most: a record's worth and some, so a large spare buffer is not
/// zeroed in full on every read.
const MAX_PLAINTEXT_PER_READ: usize = 32 * 1024;

/// Free space the ciphertext buffer is grown to before a socket read: a full TLS record (16 KiB of
/// plaintext) then comes in a few reads rather than eight, while a waiting stream holds little.
const CIPHERTEXT_READ_SPACE: usize = 4 * 1024;

/// A written request's ciphertext buffer is kept for the next request up to this size.
const KEPT_OUTGOING_MAX: usize = 16 * 1024;

pub struct TlsStream {
    io: TcpStream,
    session: ClientConnection,
    /// Ciphertext read from the socket; `incoming[consumed..]` is not yet taken by rustls.
    incoming: Vec<u8>,
    consumed: usize,
    /// Ciphertext on its way to the socket (reused between writes).
    outgoing: Vec<u8>,
    /// The socket reached end of stream (and rustls was told).
    eof: bool,
}

impl TlsStream {
    /// Runs the client handshake on `io` for `name`.
    pub async fn connect(
        io: TcpStream,
        config: Arc<rustls::ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<TlsStream> {
        let session = ClientConnection::new(config, name).map_err(io::Error::other)?;
        let mut tls = TlsStream { io, session, incoming: Vec::new(), consumed: 0, outgoing: Vec::new(), eof: false };
        tls.handshake().await?;
        Ok(tls)
    }

    async fn handshake(&mut self) -> io::Result<()> {
        while self.session.is_handshaking() {
            if self.session.wants_write() {
                self.flush_tls().await?;
            } else if !self.feed()? && self.read_ciphertext().await? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the provider closed the TLS handshake"));
            }
        }
        // The client's last flight (its Finished) may still be waiting.
        self.flush_tls().await
    }

    /// Reads plaintext once, appending to `buf` (grown as `netio::read_append` grows it). `Ok(0)`
    /// means the provider closed the session cleanly (close_notify); a close without one is an
    /// `UnexpectedEof` error, as a cut TLS stream must not look complete.
    pub async fn read_append(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        netio::reserve_read_space(&mut buf);
        loop {
            match self.take_plaintext(&mut buf) {
                Ok(Some(n)) => return (Ok(n), buf),
                Ok(None) if self.eof => {
                    let cut = io::Error::new(io::ErrorKind::UnexpectedEof, "TLS stream ended without close_notify");
                    return (Err(cut), buf);
                }
                Ok(None) => {}
                Err(e) => return (Err(e), buf),
            }
            match self.feed() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => return (Err(e), buf),
            }
            match self.read_ciphertext().await {
                Ok(0) => {
                    // Telling rustls of the end makes its reader report a clean or a cut close.
                    let _ = self.session.read_tls(&mut io::empty());
                    self.eof = true;
                }
                Ok(_) => {}
                Err(e) => return (Err(e), buf),
            }
        }
    }

    /// Encrypts and writes all of `buf`, handing it back.
    pub async fn write_all(&mut self, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let mut written = 0;
        while written < buf.len() {
            match self.session.writer().write(&buf[written..]) {
                // rustls buffers up to its limit; flushing below empties that buffer, so no progress
                // here would mean it can take nothing at all.
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => written += n,
                Err(e) => return (Err(e), buf),
            }
            if let Err(e) = self.flush_tls().await {
                return (Err(e), buf);
            }
        }
        (Ok(()), buf)
    }

    /// Sends close_notify and shuts the socket's write side.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.session.send_close_notify();
        self.flush_tls().await?;
        self.io.shutdown().await
    }

    /// Plaintext rustls already decrypted, appended to `buf`; `None` when it has none yet.
    fn take_plaintext(&mut self, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
        let len = buf.len();
        let room = (buf.capacity() - len).min(MAX_PLAINTEXT_PER_READ);
        buf.resize(len + room, 0);
        let read = self.session.reader().read(&mut buf[len..]);
        let taken = match &read {
            Ok(n) => *n,
            Err(_) => 0,
        };
        buf.truncate(len + taken);
        match read {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Hands buffered ciphertext to rustls and processes it; `false` when none was buffered.
    fn feed(&mut self) -> io::Result<bool> {
        if self.consumed == self.incoming.len() {
            return Ok(false);
        }
        let mut rest = &self.incoming[self.consumed..];
        let taken = self.session.read_tls(&mut rest)?;
        if taken == 0 {
            return Err(io::Error::other("the TLS session took no bytes"));
        }
        self.consumed += taken;
        if self.consumed == self.incoming.len() {
            self.incoming.clear();
            self.consumed = 0;
        }
        self.session.process_new_packets().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(true)
    }

    /// One socket read into the (fully fed, so empty) ciphertext buffer.
    async fn read_ciphertext(&mut self) -> io::Result<usize> {
        let mut incoming = std::mem::take(&mut self.incoming);
        if incoming.capacity() - incoming.len() < CIPHERTEXT_READ_SPACE {
            incoming.reserve(CIPHERTEXT_READ_SPACE);
        }
        let (result, incoming) = netio::read_append(&mut self.io, incoming).await;
        self.incoming = incoming;
        result
    }

    /// Writes everything rustls has queued for the socket.
    async fn flush_tls(&mut self) -> io::Result<()> {
        let mut outgoing = std::mem::take(&mut self.outgoing);
        let mut result = Ok(());
        while result.is_ok() && self.session.wants_write() {
            outgoing.clear();
            if let Err(e) = self.session.write_tls(&mut outgoing) {
                result = Err(e);
                break;
            }
            let (written, back) = netio::write_all(&mut self.io, outgoing).await;
            outgoing = back;
            result = written;
        }
        outgoing.clear();
        if outgoing.capacity() <= KEPT_OUTGOING_MAX {
            self.outgoing = outgoing;
        }
        result
    }
}

impl AsRawFd for TlsStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    //! Against a blocking rustls server on a loopback socket: the bytes, a clean close, a cut one and
    //! an untrusted certificate.

    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::sync::Arc;
    use std::thread::JoinHandle;
    use std::time::Duration;

    use monoio::{FusionDriver, RuntimeBuilder};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

    use super::TlsStream;

    /// How the test server ends the connection after writing its answer.
    #[derive(Clone, Copy)]
    enum Ending {
        CloseNotify,
        CutWithoutCloseNotify,
    }

    fn crypto() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// A client configuration trusting `cert` alone.
    fn trusting(cert: CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(crypto())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    /// A one-connection TLS server for `localhost` (a fresh self-signed certificate) that reads
    /// `expect_in` bytes, writes `answer` and ends as told. Returns its address, a client
    /// configuration trusting it, and its thread, which yields the bytes it read.
    fn server(
        expect_in: usize,
        answer: Vec<u8>,
        ending: Ending,
    ) -> (SocketAddr, Arc<rustls::ClientConfig>, JoinHandle<std::io::Result<Vec<u8>>>) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert_der = CertificateDer::from(cert.cert.der().to_vec());
        let key = PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
        let server_config = rustls::ServerConfig::builder_with_provider(crypto())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert_der.clone()], key)
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let (socket, _) = listener.accept()?;
            socket.set_read_timeout(Some(Duration::from_secs(10)))?;
            let session = rustls::ServerConnection::new(Arc::new(server_config)).map_err(std::io::Error::other)?;
            let mut tls = rustls::StreamOwned::new(session, socket);
            let mut received = vec![0u8; expect_in];
            tls.read_exact(&mut received)?;
            tls.write_all(&answer)?;
            if let Ending::CloseNotify = ending {
                tls.conn.send_close_notify();
            }
            tls.flush()?;
            tls.sock.shutdown(std::net::Shutdown::Both)?;
            Ok(received)
        });
        (addr, trusting(cert_der), thread)
    }

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        RuntimeBuilder::<FusionDriver>::new().enable_timer().build().unwrap().block_on(future)
    }

    async fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> std::io::Result<TlsStream> {
        let socket = monoio::net::TcpStream::connect_addr(addr).await?;
        TlsStream::connect(socket, config, ServerName::try_from("localhost").unwrap()).await
    }

    /// Connects, writes `request`, then reads until an error or the clean end (at most 10,000
    /// reads). Returns the plaintext and how the reading ended.
    fn exchange(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
        request: Vec<u8>,
    ) -> (Vec<u8>, std::io::Result<()>) {
        run(async move {
            let mut tls = connect(addr, config).await.unwrap();
            tls.write_all(request).await.0.unwrap();
            let mut plaintext = Vec::new();
            for _ in 0..10_000 {
                let (read, buf) = tls.read_append(plaintext).await;
                plaintext = buf;
                match read {
                    Ok(0) => return (plaintext, Ok(())),
                    Ok(_) => {}
                    Err(e) => return (plaintext, Err(e)),
                }
            }
            panic!("the stream never ended");
        })
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn a_large_request_and_answer_cross_intact_and_close_notify_ends_cleanly() {
        // Both beyond rustls' 64 KiB send buffer and spanning many 16 KiB records.
        let request = pattern(200_000);
        let answer = pattern(300_001);
        let (addr, config, server) = server(request.len(), answer.clone(), Ending::CloseNotify);
        let (plaintext, ended) = exchange(addr, config, request.clone());
        ended.expect("a close_notify is a clean end");
        assert!(plaintext == answer, "the answer arrived intact ({} of {} bytes)", plaintext.len(), answer.len());
        assert!(server.join().unwrap().unwrap() == request, "the request arrived intact");
    }

    #[test]
    fn a_stream_cut_without_close_notify_is_an_error_not_an_end() {
        let answer = pattern(50_000);
        let (addr, config, server) = server(5, answer.clone(), Ending::CutWithoutCloseNotify);
        let (plaintext, ended) = exchange(addr, config, b"hello".to_vec());
        let error = ended.expect_err("a cut TLS stream must not look complete");
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(plaintext == answer, "what came before the cut was delivered");
        server.join().unwrap().unwrap();
    }

    #[test]
    fn a_certificate_the_client_does_not_trust_fails_the_handshake() {
        let (addr, _, server) = server(1, Vec::new(), Ending::CloseNotify);
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let config = trusting(CertificateDer::from(other.cert.der().to_vec()));
        let error = run(connect(addr, config)).map(|_| ()).expect_err("a certificate from another issuer is refused");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData, "{error}");
        assert!(server.join().unwrap().is_err(), "the server saw the handshake fail");
    }
}
