//! Corelay: a thread-per-core AI gateway. One HTTP endpoint in front of many LLM providers.
//!
//! Module layering (lower never imports higher): `http`, `sse`, `json_check`, `netio` (codecs and I/O
//! helpers) <-
//! `config`, `upstream`, `routing`, `providers`, `api` <- `proxy` (the request pipeline) <- `runtime`
//! (threads). `main.rs` is only the CLI.

pub mod api;
pub mod chat;
pub mod clock;
pub mod config;
pub mod error;
pub mod health;
pub mod http;
pub mod json_check;
pub mod logging;
pub mod messages;
pub mod metrics;
pub mod netio;
pub mod providers;
pub mod proxy;
pub mod routing;
pub mod runtime;
pub mod signals;
pub mod sse;
mod test_fixtures;
pub mod upstream;

pub use config::{Config, ResolvedConfig};
pub use runtime::Gateway;
