//! Corelay: a thread-per-core AI gateway. One HTTP endpoint in front of many LLM providers.
//!
//! Module layering: a module imports only modules on lower layers. `scripts/check-layering` reads
//! the list below and fails CI when code imports upward or sideways; test modules are exempt.
//! `main.rs` is only the CLI.
//!
//! layer 0: buffers
//! layer 1: clock, json_check, http, signals, logging, test_fixtures, aws, health, trace_context, timer
//! layer 2: sse, credentials, netio
//! layer 3: chat, config
//! layer 4: upstream
//! layer 5: error, metrics
//! layer 6: routing, providers, history, telemetry
//! layer 7: api, governance
//! layer 8: messages, cache
//! layer 9: proxy
//! layer 10: runtime

pub mod api;
pub mod aws;
pub mod buffers;
pub mod cache;
pub mod chat;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod error;
pub mod governance;
pub mod health;
pub mod history;
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
pub mod telemetry;
mod test_fixtures;
pub mod timer;
pub mod trace_context;
pub mod upstream;

pub use config::{Config, ResolvedConfig};
pub use runtime::Gateway;
