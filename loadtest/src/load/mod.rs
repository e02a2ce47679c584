//! The load generator behind `corelay-load`: an HTTP/1.1 client of its own over monoio that drives
//! OpenAI chat completions (or plain GETs) at a gateway in closed loop (fixed concurrency) or open
//! loop (fixed rate, latency counted from each request's scheduled start), reads SSE streams as
//! they arrive, and reports HDR-histogram percentiles as a table or JSON. It does not start any
//! server; the mock provider is the crate's other half.

mod config;
mod conn;
mod exchange;
mod pacer;
mod report;
mod response;
mod run;
mod schedule;
mod sse;
mod stats;
mod worker;

pub use config::{LoadConfig, Method, Pace};
pub use report::{Report, ReportConfig, Summary};
pub use run::run;
pub use stats::ErrorCounts;
