//! Corelay's mock OpenAI-compatible provider: a handle (`MockProvider`) that runs an independent
//! HTTP/1.1 server on its own monoio thread(s) and answers Chat Completions (streaming and not)
//! with configurable content, framing, delays and faults, recording every request. It does not
//! depend on the gateway crate: sharing the gateway's codec would hide the gateway's bugs.

mod alarm;
mod config;
mod conn;
mod http;
mod openai;
mod plan;
mod server;
mod shutdown;
mod state;
mod timer_slack;
mod tls;
mod writer;

/// The load generator behind `corelay-load` (closed and open loop, SSE timing, HDR reports).
pub mod load;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use config::{Fault, Framing, MockConfig, MockOptions, MockTls, Reply};
pub use state::RecordedRequest;

use server::WorkerEnv;
use shutdown::Stop;
use state::Shared;

/// A running mock provider. Dropping it stops every runtime thread, closes every connection
/// (stalled ones included) and joins the threads.
pub struct MockProvider {
    shared: Arc<Shared>,
    stop: Arc<Stop>,
    threads: Vec<JoinHandle<()>>,
    addr: SocketAddr,
    tls: bool,
}

impl MockProvider {
    /// One worker on `127.0.0.1:0`, plain HTTP.
    pub fn start(config: MockConfig) -> io::Result<MockProvider> {
        MockProvider::start_with(config, MockOptions::default())
    }

    pub fn start_with(config: MockConfig, options: MockOptions) -> io::Result<MockProvider> {
        if options.workers == 0 {
            let message = "MockOptions::workers must be at least 1";
            return Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        }
        let env = WorkerEnv {
            shared: Arc::new(Shared::new(config, options.record_requests)),
            stop: Arc::new(Stop::default()),
            tls: options.tls.as_ref().map(tls::server_config).transpose()?,
        };
        let (addr, threads) = server::start_workers(options.listen, options.workers, &env)?;
        Ok(MockProvider { shared: env.shared, stop: env.stop, threads, addr, tls: options.tls.is_some() })
    }

    /// The bound address (the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/v1`, or `https://ADDR/v1` when serving TLS.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/v1", self.addr)
    }

    /// Every request received so far, in arrival order (none when
    /// `MockOptions::record_requests` is off).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Connections accepted so far (TCP accepts, before any TLS handshake).
    pub fn connections_accepted(&self) -> u64 {
        self.shared.connections_accepted()
    }

    /// Replaces the config for requests read from now on.
    pub fn set_config(&self, config: MockConfig) {
        self.shared.set_config(config);
    }

    /// Blocks (at most `timeout`) until at least `n` requests were recorded; returns whether it
    /// happened. A request is recorded as soon as it is read, before any reply is written.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait_for_requests(n, timeout)
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        server::stop_workers(&self.stop, std::mem::take(&mut self.threads));
    }
}

/// A 127.0.0.1 address on which nothing listens, for connection-refused tests: a socket bound to
/// port 0 that never listens (a connect gets RST) and is never closed, so no other test or process
/// can take the port while this one runs. Each call reserves one more port, for the process's life.
pub fn refused_addr() -> SocketAddr {
    // SAFETY: plain socket calls on a descriptor this function owns and deliberately never closes;
    // `addr` and `len` are valid for the calls that write them.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(Ipv4Addr::LOCALHOST).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let bound = libc::bind(fd, (&raw const addr).cast(), len);
        assert_eq!(bound, 0, "bind 127.0.0.1:0: {}", std::io::Error::last_os_error());
        let mut len = len;
        let named = libc::getsockname(fd, (&raw mut addr).cast(), &mut len);
        assert_eq!(named, 0, "getsockname: {}", std::io::Error::last_os_error());
        SocketAddr::from((Ipv4Addr::LOCALHOST, u16::from_be(addr.sin_port)))
    }
}
