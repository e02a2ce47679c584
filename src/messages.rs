//! What travels between the control thread, the workers and the main thread (a leaf module of plain
//! types, so both `proxy` and `runtime` can use it without depending on each other). Workers only ever
//! `try_send` and `try_iter`; only the control thread and the main thread block.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::ResolvedConfig;
use crate::health::{HealthReport, HealthTable};

/// Control thread -> one worker.
pub enum WorkerCommand {
    /// A newly published health table.
    Health(Arc<HealthTable>),
    /// Reload phase one: build everything for config `version`, report whether that worked.
    Prepare { version: u64, config: Arc<ResolvedConfig>, workers: usize },
    /// Reload phase two: every worker prepared `version`; switch to it.
    Commit { version: u64 },
    /// Some worker could not prepare `version`; drop it.
    Abort { version: u64 },
    /// The latest Prometheus text (`/metrics`) and dashboard data (`/v1/stats`).
    Metrics { text: Arc<str>, stats: Arc<str> },
    /// A new access token for a provider's service account (from the token refresher).
    AccessToken(Arc<crate::credentials::vertex::AccessToken>),
}

/// A worker -> the control thread.
pub enum ToControl {
    Report(HealthReport),
    Metrics(Box<crate::metrics::MetricsDelta>),
    Prepared {
        worker: usize,
        version: u64,
        result: Result<(), String>,
    },
    /// The worker switched to config `version`: requests it starts from now on use it.
    Committed {
        worker: usize,
        version: u64,
    },
    /// The token refresher (not a worker) tried to fetch a provider's access token: the new
    /// token's expiry in Unix milliseconds, or `None` when the fetch failed.
    AccessToken {
        provider: String,
        expires_at_unix_ms: Option<u64>,
    },
}

/// The main thread (or an admin request) -> the control thread.
pub enum ControlRequest {
    /// Re-read `path`, or the file the running config came from.
    Reload { path: Option<PathBuf>, reply: std::sync::mpsc::Sender<Result<ReloadOutcome, String>> },
}

/// A reload that took effect.
#[derive(Debug, Clone)]
pub struct ReloadOutcome {
    pub version: u64,
    /// Changed settings that only a restart applies, as `key: old -> new`.
    pub needs_restart: Vec<String>,
    pub shutdown_grace_ms: u64,
}
