//! One blocking HTTP/1.1 POST over TCP or TLS, for the threads that may block (the access-token
//! refresher). Never used on a worker: workers use the pooled, non-blocking exchange in `exchange`.
//!
//! It reuses the gateway's sans-IO codec (request head writer, response head parser, body decoder),
//! sends `connection: close`, and bounds everything: the answer's size, each read and write, and the
//! whole exchange.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use rustls_pki_types::{CertificateDer, ServerName};

use super::{Origin, Scheme};
use crate::http::body::BodyDecoder;
use crate::http::response::parse_response_head;
use crate::http::write::write_request_head;

/// Largest answer accepted (head and body); token responses are well under a kilobyte.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Why a POST got no answer.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("bad URL `{url}`: {why}")]
    Url { url: String, why: &'static str },
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: std::io::Error },
    #[error("cannot connect to {authority}: {source}")]
    Connect { authority: String, source: std::io::Error },
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("invalid response: {0}")]
    Invalid(String),
}

/// A form POST's answer: status and decoded body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// POSTs `body` as a form to `url`, trusting the Mozilla roots plus `extra_roots` for https.
pub fn post_form(
    url: &str,
    extra_roots: &[CertificateDer<'static>],
    body: &[u8],
    timeout: Duration,
) -> Result<Answer, PostError> {
    post(url, (FORM, "application/json"), extra_roots, body, timeout)
}

/// POSTs `body` to `url` with the given (content type, accept), trusting the Mozilla roots plus
/// `extra_roots` for https (the token refresher's forms, the trace exporter's protobuf).
pub fn post(
    url: &str,
    (content_type, accept): (&str, &str),
    extra_roots: &[CertificateDer<'static>],
    body: &[u8],
    timeout: Duration,
) -> Result<Answer, PostError> {
    let deadline = Instant::now() + timeout;
    let origin = Origin::parse_base_url(url).map_err(|why| PostError::Url { url: url.to_string(), why })?;
    let tcp = connect(&origin, timeout)?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let request = post_request(&origin, (content_type, accept), body);
    match origin.key.scheme {
        Scheme::Http => exchange(tcp, &request, deadline, timeout),
        Scheme::Https => {
            let server_name = ServerName::try_from(origin.host.clone())
                .map_err(|_| PostError::Url { url: url.to_string(), why: "host is not a valid TLS server name" })?;
            let tls = ClientConnection::new(tls_config(extra_roots)?, server_name)?;
            exchange(StreamOwned::new(tls, tcp), &request, deadline, timeout)
        }
    }
}

fn connect(origin: &Origin, timeout: Duration) -> Result<TcpStream, PostError> {
    // Blocking DNS is fine here: this runs on the refresher thread, never on a worker.
    let addrs = (origin.host.as_str(), origin.port)
        .to_socket_addrs()
        .map_err(|source| PostError::Resolve { host: origin.host.clone(), source })?;
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(tcp) => {
                tcp.set_nodelay(true)?;
                return Ok(tcp);
            }
            Err(e) => last = e,
        }
    }
    Err(PostError::Connect { authority: origin.authority.clone(), source: last })
}

fn tls_config(extra_roots: &[CertificateDer<'static>]) -> Result<Arc<ClientConfig>, PostError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in extra_roots {
        roots.add(cert.clone())?;
    }
    let crypto = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(crypto)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

const FORM: &str = "application/x-www-form-urlencoded";

#[cfg(test)]
fn form_request(origin: &Origin, body: &[u8]) -> Vec<u8> {
    post_request(origin, (FORM, "application/json"), body)
}

fn post_request(origin: &Origin, (content_type, accept): (&str, &str), body: &[u8]) -> Vec<u8> {
    let target = if origin.base_path.is_empty() { "/" } else { origin.base_path.as_str() };
    let headers: [(&str, &[u8]); 4] = [
        ("content-type", content_type.as_bytes()),
        ("accept", accept.as_bytes()),
        ("user-agent", concat!("corelay/", env!("CARGO_PKG_VERSION")).as_bytes()),
        ("connection", b"close"),
    ];
    let mut out = Vec::with_capacity(256 + body.len());
    write_request_head(&mut out, "POST", target, &origin.authority, &headers, Some(body.len() as u64));
    out.extend_from_slice(body);
    out
}

/// Writes the request and reads one response, head then body, within `deadline`.
fn exchange<S: Read + Write>(
    mut stream: S,
    request: &[u8],
    deadline: Instant,
    timeout: Duration,
) -> Result<Answer, PostError> {
    stream.write_all(request)?;
    stream.flush()?;
    let mut received = Vec::with_capacity(4096);
    let mut head = None;
    let mut body = Vec::new();
    let mut read = [0u8; 4096];
    loop {
        if Instant::now() >= deadline {
            return Err(PostError::Timeout(timeout));
        }
        let n = match stream.read(&mut read) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(PostError::Timeout(timeout));
            }
            Err(e) => return Err(e.into()),
        };
        received.extend_from_slice(&read[..n]);
        if received.len() > MAX_RESPONSE_BYTES {
            return Err(PostError::Invalid(format!("larger than {MAX_RESPONSE_BYTES} bytes")));
        }
        if head.is_none() {
            match parse_response_head(&received, MAX_RESPONSE_BYTES, false) {
                Ok(Some((parsed, consumed))) if !parsed.is_informational() => {
                    received.drain(..consumed);
                    head = Some((parsed.status, BodyDecoder::new(parsed.framing)));
                }
                // A 1xx (100 Continue) is dropped; the real answer follows.
                Ok(Some((_, consumed))) => {
                    received.drain(..consumed);
                    continue;
                }
                Ok(None) if n == 0 => return Err(PostError::Invalid("closed before a complete head".into())),
                Ok(None) => continue,
                Err(e) => return Err(PostError::Invalid(format!("{e:?}"))),
            }
        }
        let Some((status, decoder)) = head.as_mut() else { continue };
        let used = decoder
            .decode_into(&received, &mut body, MAX_RESPONSE_BYTES)
            .map_err(|e| PostError::Invalid(e.to_string()))?;
        received.drain(..used);
        if n == 0 && !decoder.is_done() {
            decoder.on_eof().map_err(|e| PostError::Invalid(e.to_string()))?;
        }
        if decoder.is_done() {
            return Ok(Answer { status: *status, body });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted peer: what it answers, and what it was sent.
    struct Scripted {
        answer: std::io::Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            // One byte at a time: every split of the answer is exercised.
            let n = buf.len().min(1);
            self.answer.read(&mut buf[..n])
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.sent.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn run(answer: &[u8]) -> Result<Answer, PostError> {
        let peer = Scripted { answer: std::io::Cursor::new(answer.to_vec()), sent: Vec::new() };
        let timeout = Duration::from_secs(5);
        exchange(peer, b"POST / HTTP/1.1\r\n\r\n", Instant::now() + timeout, timeout)
    }

    #[test]
    fn the_request_is_a_form_post_to_the_urls_path_that_closes() {
        let origin = Origin::parse_base_url("https://oauth2.googleapis.com/token").unwrap();
        let text = String::from_utf8(form_request(&origin, b"a=b")).unwrap();
        assert!(text.starts_with("POST /token HTTP/1.1\r\nhost: oauth2.googleapis.com\r\n"), "{text}");
        assert!(text.contains("content-type: application/x-www-form-urlencoded\r\n"));
        assert!(text.contains("connection: close\r\n"));
        assert!(text.ends_with("content-length: 3\r\n\r\na=b"));
    }

    #[test]
    fn length_chunked_and_close_delimited_answers_are_read_whole() {
        let length = run(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((length.status, length.body.as_slice()), (200, b"{}".as_slice()));
        let chunked =
            run(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!((chunked.status, chunked.body.as_slice()), (400, b"{}".as_slice()));
        let until_close = run(b"HTTP/1.0 200 OK\r\n\r\nabc").unwrap();
        assert_eq!(until_close.body, b"abc");
    }

    #[test]
    fn truncated_and_garbage_answers_are_errors() {
        assert!(matches!(run(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab"), Err(PostError::Invalid(_))));
        assert!(matches!(run(b"HTTP/1.1 200"), Err(PostError::Invalid(_))));
        assert!(matches!(run(b"\x16\x03\x01garbage\r\n\r\n"), Err(PostError::Invalid(_))));
    }
}
