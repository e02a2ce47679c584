//! The request pipeline, wired together: admit (`connection`), route and dispatch (`dispatch`),
//! then prepare, send and relay a chat completion (`chat`).
//!
//! Runs inside one worker. Owns no sockets beyond the client connection it is handed; upstream
//! connections come from `upstream`.

mod chat;
mod client;
pub mod connection;
mod dispatch;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::config::ResolvedConfig;
use crate::http::request::RequestLimits;
use crate::routing::Snapshot;
use crate::upstream::{Pool, PoolSettings, TlsConnectors};

/// Limits applied to client connections, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    pub request: RequestLimits,
    pub max_body_bytes: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub keepalive_timeout: Duration,
}

/// Provider-side timeouts and limits, from `[pool]`.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamLimits {
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub read_idle_timeout: Duration,
    pub max_response_bytes: usize,
}

/// Everything one worker's requests share. Single-threaded: `Rc` and `RefCell`, never locks.
pub struct WorkerContext {
    pub worker_id: usize,
    snapshot: RefCell<Rc<Snapshot>>,
    pub pool: Pool,
    pub tls: TlsConnectors,
    pub server: ServerLimits,
    pub upstream: UpstreamLimits,
}

impl WorkerContext {
    pub fn new(worker_id: usize, config: &ResolvedConfig, snapshot: Snapshot) -> Result<WorkerContext, rustls::Error> {
        let c = &config.config;
        let ms = Duration::from_millis;
        Ok(WorkerContext {
            worker_id,
            snapshot: RefCell::new(Rc::new(snapshot)),
            pool: Pool::new(PoolSettings {
                max_idle_per_host: c.pool.max_idle_per_host,
                idle_timeout: ms(c.pool.idle_timeout_ms),
            }),
            tls: TlsConnectors::build(config.providers.values().map(|p| p.as_ref()))?,
            server: ServerLimits {
                request: RequestLimits { max_head_bytes: c.server.max_head_bytes, max_headers: c.server.max_headers },
                max_body_bytes: c.server.max_body_bytes,
                header_read_timeout: ms(c.server.header_read_timeout_ms),
                body_read_timeout: ms(c.server.body_read_timeout_ms),
                keepalive_timeout: ms(c.server.keepalive_timeout_ms),
            },
            upstream: UpstreamLimits {
                connect_timeout: ms(c.pool.connect_timeout_ms),
                first_byte_timeout: ms(c.pool.first_byte_timeout_ms),
                read_idle_timeout: ms(c.pool.read_idle_timeout_ms),
                max_response_bytes: c.pool.max_response_bytes,
            },
        })
    }

    /// The current snapshot. A request holds this `Rc` to its end, so a swap never changes a request
    /// half-way through.
    pub fn snapshot(&self) -> Rc<Snapshot> {
        Rc::clone(&self.snapshot.borrow())
    }

    /// Installs a new snapshot for requests that start from now on.
    pub fn swap_snapshot(&self, snapshot: Snapshot) {
        *self.snapshot.borrow_mut() = Rc::new(snapshot);
    }
}
