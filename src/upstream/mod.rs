//! Calling providers: origins, the per-core connection pool, TCP/TLS connecting, and one HTTP/1.1
//! exchange with its response body reader.
//!
//! Everything here runs inside one worker and is `!Send` by design: connections never cross cores.
//! It knows nothing of routing, client formats or SSE; it moves bytes to and from an origin.

pub mod blocking;
mod conn;
mod exchange;

mod pool;
mod tls;
mod tls_stream;

pub use crate::http::origin::{Origin, PoolKey, Scheme};
pub use conn::UpstreamConn;
pub use exchange::{BodyReader, ExchangeContext, UpstreamError, UpstreamResponse, send};
pub use pool::{LIVENESS_CHECK_AFTER, Pool, PoolCounters, PoolSettings};
pub use tls::TlsClientConfigs;
