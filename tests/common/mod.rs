//! Test harness shared by the end-to-end tests: start a gateway in-process on port 0 in front of mock
//! providers, and a small blocking HTTP/1.1 client written independently of the gateway's codec.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use corelay::config::resolve::{AwsCredentials, ResolvedProvider, Secret};
use corelay::config::{Config, resolve};
use corelay::runtime::Gateway;

/// The provider key tests configure; it must reach the mock and nothing else.
pub const PROVIDER_KEY: &str = "sk-provider-secret-0123456789";
/// The AWS access key id injected into Bedrock providers (the secret is never sent, only used to sign).
pub const AWS_ACCESS_KEY_ID: &str = "AKIDCORELAYTEST";

/// A config with one `openai` provider at `base_url` serving `acme/chat-small` as `gpt-4o-mini`,
/// one worker, port 0. `extra` is appended (more tables) and `server_extra` goes into `[server]`.
pub fn config_text(base_url: &str, server_extra: &str, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
cores = 1
{server_extra}

[providers.mock]
kind = "openai"
base_url = "{base_url}"
api_key_env = "CORELAY_TEST_PROVIDER_KEY"

[models."acme/chat-small"]
endpoints = [{{ provider = "mock", model = "gpt-4o-mini" }}]
{extra}
"#
    )
}

/// Starts a gateway from config text. Provider keys are injected directly instead of through the
/// environment, because changing the environment of a multi-threaded test process is unsound.
pub fn start_gateway(text: &str) -> Gateway {
    let config = Config::parse(text).unwrap_or_else(|e| panic!("test config invalid: {e:?}"));
    let mut config = config;
    for provider in config.providers.values_mut() {
        provider.api_key_env = None;
    }
    let mut resolved = resolve(config).unwrap_or_else(|e| panic!("test config does not resolve: {e:?}"));
    for provider in resolved.providers.values_mut() {
        let mut with_key: ResolvedProvider = (**provider).clone();
        with_key.api_key = Some(Secret::new(PROVIDER_KEY.to_string()));
        if let Some(bedrock) = &mut with_key.bedrock {
            bedrock.credentials = Some(AwsCredentials {
                access_key_id: Secret::new(AWS_ACCESS_KEY_ID.into()),
                secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into()),
                session_token: None,
            });
        }
        *provider = Arc::new(with_key);
    }
    Gateway::start(resolved).expect("gateway starts")
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The payload, de-chunked.
    pub body: Vec<u8>,
    /// How many chunks a chunked body came in.
    pub chunks: usize,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The JSON payloads of `data:` lines (excluding `[DONE]`), and whether `[DONE]` was seen.
    pub fn sse_data(&self) -> (Vec<serde_json::Value>, bool) {
        let text = self.text();
        let mut events = Vec::new();
        let mut done = false;
        for line in text.lines() {
            if let Some(data) = line.strip_prefix("data:") {
                let data = data.trim_start();
                if data == "[DONE]" {
                    done = true;
                } else {
                    events.push(serde_json::from_str(data).unwrap_or_else(|e| panic!("bad event {data}: {e}")));
                }
            }
        }
        (events, done)
    }
}

/// A blocking client on one TCP connection, with a read timeout so no test can hang.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to gateway");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client { stream, buf: Vec::new() }
    }

    /// This end of the connection: the client address the gateway sees.
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    /// TCP segments with data this connection has received so far (`tcpi_data_segs_in`). On
    /// loopback one write of the gateway (below 64 KiB) arrives as one segment, so the difference
    /// across a response counts the writes that sent it; no timing is involved.
    pub fn data_segments_in(&self) -> u32 {
        use std::os::fd::AsRawFd;
        // SAFETY: an all-zero tcp_info is a valid value of the plain C struct.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `info`, which is that large.
        let rc = unsafe {
            libc::getsockopt(
                self.stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&raw mut info).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
        info.tcpi_data_segs_in
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to gateway");
    }

    /// A POST with a JSON body and the given extra header lines.
    pub fn post(&mut self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.send_raw(&bytes);
        self.read_response()
    }

    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = format!("GET {path} HTTP/1.1\r\nhost: gateway\r\n");
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        req.push_str("\r\n");
        self.send_raw(req.as_bytes());
        self.read_response()
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            // A signal (an io_uring torn down in this thread) interrupts the read: read again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => self.fill(),
            Err(e) => panic!("read from gateway failed: {e}"),
        }
    }

    /// Reads one response; panics on malformed framing (which is a gateway bug).
    pub fn read_response(&mut self) -> Response {
        let (status, headers, head_len) = self.read_head();
        self.buf.drain(..head_len);
        let header = |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        let (body, chunks) = if (100..200).contains(&status) || status == 204 || status == 304 {
            (Vec::new(), 0)
        } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            self.read_chunked()
        } else if let Some(len) = header("content-length") {
            (self.read_exact_body(len.parse().expect("numeric content-length")), 0)
        } else {
            (self.read_to_close(), 0)
        };
        Response { status, headers, body, chunks }
    }

    fn read_head(&mut self) -> (u16, Vec<(String, String)>, usize) {
        for _ in 0..10_000 {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut slots);
            if let httparse::Status::Complete(len) = parsed.parse(&self.buf).expect("valid response head") {
                let headers = parsed
                    .headers
                    .iter()
                    .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                    .collect();
                return (parsed.code.unwrap(), headers, len);
            }
            assert!(self.fill() > 0, "connection closed before a complete response head");
        }
        panic!("response head never completed");
    }

    fn read_exact_body(&mut self, len: usize) -> Vec<u8> {
        while self.buf.len() < len {
            assert!(self.fill() > 0, "connection closed inside a Content-Length body");
        }
        let rest = self.buf.split_off(len);
        std::mem::replace(&mut self.buf, rest)
    }

    fn read_to_close(&mut self) -> Vec<u8> {
        while self.fill() > 0 {}
        std::mem::take(&mut self.buf)
    }

    fn read_line(&mut self) -> String {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8(self.buf[..pos].to_vec()).expect("ascii chunk line");
                self.buf.drain(..pos + 2);
                return line;
            }
            assert!(self.fill() > 0, "connection closed inside a chunked body");
        }
    }

    fn read_chunked(&mut self) -> (Vec<u8>, usize) {
        let mut body = Vec::new();
        for chunks in 0..1_000_000 {
            let size = usize::from_str_radix(self.read_line().split(';').next().unwrap().trim(), 16).expect("hex size");
            if size == 0 {
                assert_eq!(self.read_line(), "", "no trailers expected");
                return (body, chunks);
            }
            body.extend_from_slice(&self.read_exact_body(size));
            assert_eq!(self.read_line(), "", "chunk data must end with CRLF");
        }
        panic!("unbounded chunked body");
    }

    /// True when the server closed the connection (EOF or reset) and sent nothing more.
    pub fn is_closed(&mut self) -> bool {
        self.buf.is_empty() && self.fill() == 0
    }
}

/// A chat request body.
pub fn chat_body(model: &str, stream: bool) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "Say hello"}],
        "stream": stream,
    }))
    .unwrap()
}

/// A test CA and a `localhost` leaf it issued, all PEM: a TLS mock serves the leaf, the gateway
/// trusts the CA through a `ca_file`.
pub struct TestPki {
    pub ca_pem: String,
    pub leaf_pem: String,
    pub leaf_key_pem: String,
}

impl TestPki {
    pub fn localhost() -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
        TestPki { ca_pem: ca_cert.pem(), leaf_pem: leaf.pem(), leaf_key_pem: leaf_key.serialize_pem() }
    }
}

/// Writes `contents` to a temporary file unique to this test process and `name`.
pub fn temp_file(name: &str, extension: &str, contents: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("corelay-test-{}-{name}.{extension}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

// ---- Added for the claims tests (tests/claims_*.rs): unreachable addresses, raw clients, a daemon.

/// A 127.0.0.1 port that refuses connections and stays ours while this value lives: the socket is
/// bound but never listens, so a SYN to it gets a RST (connection refused) and no other test can
/// bind the port meanwhile (`loadtest::refused_addr` does the same for the life of the process).
pub struct RefusingPort {
    socket: socket2::Socket,
}

impl RefusingPort {
    pub fn new() -> RefusingPort {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind 127.0.0.1:0");
        RefusingPort { socket }
    }

    pub fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap().as_socket().unwrap()
    }
}

/// A 127.0.0.1 port where a connect hangs: a listener with backlog 0 whose accept queue is already
/// full (never accepted), so Linux drops further SYNs and the connecting side waits for a SYN-ACK
/// that does not come before its own timeout. This is a provider that does not answer, on loopback.
pub struct SilentPort {
    listener: socket2::Socket,
    _queued: Vec<TcpStream>,
}

impl SilentPort {
    pub fn new() -> SilentPort {
        let listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        listener.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).expect("bind 127.0.0.1:0");
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        // Connections complete until the queue is full; the first one that does not proves it is.
        let mut queued = Vec::new();
        for _ in 0..8 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                Ok(stream) => queued.push(stream),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return SilentPort { listener, _queued: queued };
                }
                Err(e) => panic!("filling the accept queue failed: {e}"),
            }
        }
        panic!("the accept queue of a backlog-0 listener never filled");
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap().as_socket().unwrap()
    }
}

/// A raw client connection for tests that control every byte and every pause.
pub fn raw_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to gateway");
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Everything the peer sends until it closes (EOF or reset), bounded by `READ_TIMEOUT` per read.
pub fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    for _ in 0..100_000 {
        match stream.read(&mut chunk) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return all,
            Err(e) => panic!("reading until the gateway closes failed: {e}"),
        }
    }
    panic!("the gateway never closed the connection");
}

/// The status code of an HTTP/1.1 response's first line.
pub fn status_of(response: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(response);
    let line = text.lines().next().unwrap_or_default().to_string();
    line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status line in {text:?}"))
}

/// A running `corelay` binary with its stderr lines readable as they come (a thread drains the
/// pipe for the child's whole life). Used by the tests that need signals or a separate process.
pub struct Daemon {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    pub config: std::path::PathBuf,
    lines: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

pub const DAEMON_WAIT: Duration = Duration::from_secs(15);

impl Daemon {
    pub fn start(name: &str, config_text: &str) -> Daemon {
        use std::io::BufRead;
        let config = std::env::temp_dir().join(format!("corelay-claims-{}-{name}.toml", std::process::id()));
        std::fs::write(&config, config_text).unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_corelay"))
            .args(["--config", config.to_str().unwrap()])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("corelay starts");
        let (tx, lines) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                // The receiver may be gone; the pipe is still drained to the end.
                let _ = tx.send(line);
            }
        });
        let mut daemon = Daemon { child, addr: "127.0.0.1:1".parse().unwrap(), config, lines, seen: Vec::new() };
        let line = daemon.wait_for_line("listening on http://");
        let addr = line.split("listening on http://").nth(1).unwrap().split_whitespace().next().unwrap();
        daemon.addr = addr.parse().unwrap();
        daemon
    }

    /// The next stderr line containing `needle`, waiting at most `DAEMON_WAIT`.
    pub fn wait_for_line(&mut self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + DAEMON_WAIT;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no stderr line with {needle:?}; saw:\n{}", self.seen.join("\n"));
    }

    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill with a valid signal number on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits (bounded) for the child to exit; its exit code.
    pub fn exit_code_within(&mut self, limit: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(std::time::Instant::now() < deadline, "corelay did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config);
    }
}

thread_local! {
    /// Whether this thread is one of the gateway's workers (`corelay-w<N>`), once known.
    /// Const-initialised without a destructor, so reading it never allocates.
    static ON_WORKER: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Whether the calling thread is one of the gateway's workers, for counting allocators that must
/// see the request path only. Allocates only the first time on a thread, and that allocation sees
/// `false`.
pub fn on_worker() -> bool {
    ON_WORKER
        .try_with(|known| match known.get() {
            Some(is_worker) => is_worker,
            None => {
                // Finding out may allocate: those allocations see `false` and are not counted.
                known.set(Some(false));
                let is_worker = std::thread::current().name().is_some_and(|name| name.starts_with("corelay-w"));
                known.set(Some(is_worker));
                is_worker
            }
        })
        .unwrap_or(false)
}
