//! The control thread's health loop: receive every worker's report, merge, and publish a new health
//! table to every worker each tick. It is the only thread here that blocks.
//!
//! `HealthHub` lets observers outside the workers (tests, later the admin API) see the latest table
//! and wait until every worker routes with it. It is never touched on the request path.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::StopSignal;
use crate::config::{self, Config, ResolvedConfig};
use crate::health::HealthTable;
use crate::health::aggregator::Aggregator;
use crate::health::ejection::EjectionPolicy;
use crate::messages::{ControlRequest, ReloadOutcome, ToControl, WorkerCommand};
use crate::routing::Routes;

/// How long workers get to prepare a new config version.
const PREPARE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a reload waits for every worker to say it switched, before reporting success anyway
/// (the commit is sent; a lost acknowledgement must not hold the reload for long).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The reload phase whose acknowledgements the control loop is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Prepared(u64),
    Committed(u64),
}

/// The latest published table and which version each worker has applied.
pub struct HealthHub {
    state: Mutex<HubState>,
    changed: Condvar,
}

struct HubState {
    latest: Arc<HealthTable>,
    /// The Prometheus text published with `latest`.
    metrics: Arc<str>,
    applied: Vec<u64>,
}

impl HealthHub {
    pub fn new(workers: usize, initial: HealthTable) -> HealthHub {
        HealthHub {
            state: Mutex::new(HubState {
                latest: Arc::new(initial),
                metrics: Arc::from(""),
                applied: vec![0; workers],
            }),
            changed: Condvar::new(),
        }
    }

    pub fn latest(&self) -> Arc<HealthTable> {
        Arc::clone(&self.lock().latest)
    }

    /// The latest Prometheus text published.
    pub fn latest_metrics(&self) -> Arc<str> {
        Arc::clone(&self.lock().metrics)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, table: Arc<HealthTable>, metrics: Arc<str>) {
        let mut state = self.lock();
        state.latest = table;
        state.metrics = metrics;
        drop(state);
        self.changed.notify_all();
    }

    fn note_applied(&self, worker: usize, version: u64) {
        if let Some(v) = self.lock().applied.get_mut(worker) {
            *v = (*v).max(version);
        }
        self.changed.notify_all();
    }

    /// Blocks until a published table satisfies `pred` and every worker routes with that table or a
    /// later one, or until `timeout`. Returns whether it happened.
    pub fn wait_until(&self, pred: impl Fn(&HealthTable) -> bool, timeout: Duration) -> bool {
        self.wait(|state| pred(&state.latest), timeout)
    }

    /// Like `wait_until`, for the Prometheus text every worker serves.
    pub fn wait_until_metrics(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> bool {
        self.wait(|state| pred(&state.metrics), timeout)
    }

    fn wait(&self, pred: impl Fn(&HubState) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        let mut target: Option<u64> = None;
        loop {
            if pred(&state) {
                target.get_or_insert(state.latest.version);
            } else {
                target = None;
            }
            if let Some(version) = target
                && state.applied.iter().all(|&v| v >= version)
            {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self.changed.wait_timeout(state, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

/// The ejection policy `[health]` describes.
pub fn ejection_policy(config: &Config) -> EjectionPolicy {
    let h = &config.health;
    let ms = Duration::from_millis;
    EjectionPolicy {
        consecutive_failures: u64::from(h.eject_consecutive_failures),
        error_rate: h.eject_error_rate,
        min_requests: h.min_requests,
        base: ms(h.eject_base_ms),
        max: ms(h.eject_max_ms),
        probe_timeout: ms(h.eject_base_ms.max(h.tick_ms * 4)),
    }
}

/// Everything the control loop runs with.
pub struct ControlLoop {
    pub config: Arc<ResolvedConfig>,
    pub aggregator: Aggregator,
    pub endpoint_keys: Vec<(String, String)>,
    pub routes_version: u64,
    pub from_workers: Receiver<ToControl>,
    pub workers: Vec<Sender<WorkerCommand>>,
    pub requests: Receiver<ControlRequest>,
    /// The token refresher learns each committed config's service accounts here.
    pub token_reloads: Sender<Vec<super::tokens::Account>>,
    pub hub: Arc<HealthHub>,
    pub tick: Duration,
    pub stop: Arc<StopSignal>,
    pub registry: crate::metrics::registry::Registry,
    pub timeline: crate::metrics::timeline::Timeline,
    /// The dashboard JSON and the second it was rendered for (rendered at most once a second).
    pub stats: (u64, Arc<str>),
    pub access_log: Option<crate::metrics::access_log::AccessLog>,
    pub governor: crate::governance::Governor,
    /// The request history, for its row counters in `/metrics`.
    pub history: Option<crate::history::History>,
}

impl ControlLoop {
    /// Runs until stopped or until every worker is gone.
    pub fn run(mut self) {
        let mut next_tick = Instant::now() + self.tick;
        // Another instance's new ejection is published at once, not a tick later.
        let health_news = self.governor.shared_health().map_or_else(crossbeam_channel::never, |h| h.news());
        if let Some(shared) = self.governor.shared_health() {
            // Others' avoidances are looked up from the start, not from the first tick.
            shared.set_endpoints(&self.endpoint_keys);
        }
        let shares_health = self.governor.shared_health().is_some();
        while !self.stop.is_stopped() {
            let timeout = next_tick.saturating_duration_since(Instant::now());
            crossbeam_channel::select! {
                recv(self.from_workers) -> message => match message {
                    Ok(message) => {
                        // Failures other instances should avoid are announced now, not a tick later.
                        let announce = shares_health
                            && matches!(&message, ToControl::Report(r) if crate::health::remote::worth_announcing(r));
                        self.on_worker_message(message, None);
                        if announce {
                            self.publish();
                        }
                    }
                    Err(_) => return,
                },
                recv(self.requests) -> request => {
                    if let Ok(ControlRequest::Reload { path, reply }) = request {
                        let path = path.or_else(|| self.config.source.clone());
                        let outcome = match path {
                            Some(path) => self.reload(&path),
                            None => Err("the running config did not come from a file".to_string()),
                        };
                        self.registry.note_reload(outcome.is_ok(), crate::clock::unix_now());
                        let _ = reply.send(outcome);
                    }
                },
                recv(health_news) -> _ => self.publish(),
                default(timeout) => {
                    self.publish();
                    next_tick = Instant::now() + self.tick;
                }
            }
        }
    }

    /// Merges a report; a `Prepared` or `Committed` reply for `awaiting` is returned to the reload
    /// waiting for it.
    fn on_worker_message(
        &mut self,
        message: ToControl,
        awaiting: Option<Awaiting>,
    ) -> Option<(usize, Result<(), String>)> {
        match message {
            ToControl::Report(report) => {
                self.hub.note_applied(report.worker, report.applied_version);
                self.aggregator.merge(report, Instant::now());
                None
            }
            ToControl::Metrics(delta) => {
                self.timeline.merge(&delta, crate::clock::unix_now());
                self.registry.merge(*delta);
                None
            }
            ToControl::Prepared { worker, version, result } if awaiting == Some(Awaiting::Prepared(version)) => {
                Some((worker, result))
            }
            ToControl::Committed { worker, version } if awaiting == Some(Awaiting::Committed(version)) => {
                Some((worker, Ok(())))
            }
            ToControl::Prepared { .. } | ToControl::Committed { .. } => None,
            ToControl::AccessToken { provider, expires_at_unix_ms } => {
                self.registry.note_access_token(provider, expires_at_unix_ms);
                None
            }
        }
    }

    fn publish(&mut self) {
        let mut table = self.aggregator.tick(Instant::now());
        if let Some(shared) = self.governor.shared_health() {
            // Others' ejections are folded in after this instance's own are noted, never re-announced.
            let (now, now_unix_ms) = (Instant::now(), crate::clock::unix_now_ms());
            shared.observe(&self.endpoint_keys, &table, now, now_unix_ms);
            shared.apply(&self.endpoint_keys, &mut table, now, now_unix_ms);
        }
        let table = Arc::new(table);
        let mut text = self.registry.render(&table, &self.endpoint_keys);
        self.governor.render_metrics(&mut text);
        if let Some(history) = &self.history {
            history.render_metrics(&mut text);
        }
        let text: Arc<str> = Arc::from(text);
        let now = crate::clock::unix_now();
        if self.stats.0 != now {
            let health = crate::api::health::health_value(&self.endpoint_keys, &table, Instant::now());
            self.stats = (now, Arc::from(self.timeline.render(now, &health)));
        }
        for worker in &self.workers {
            let _ = worker.send(WorkerCommand::Health(Arc::clone(&table)));
            let stats = Arc::clone(&self.stats.1);
            let _ = worker.send(WorkerCommand::Metrics { text: Arc::clone(&text), stats });
        }
        self.hub.publish(table, text);
    }

    /// Re-reads the config file and switches every worker to it in two phases: all prepare, then
    /// all commit; if any cannot prepare, all abort and nothing changes.
    fn reload(&mut self, path: &std::path::Path) -> Result<ReloadOutcome, String> {
        let new = config::load_resolved(path).map_err(|e| e.to_string().trim_end().to_string())?;
        let version = self.routes_version + 1;
        let new = Arc::new(new);
        let workers = self.workers.len();
        for worker in &self.workers {
            let _ = worker.send(WorkerCommand::Prepare { version, config: Arc::clone(&new), workers });
        }
        if let Err(why) = self.await_workers(Awaiting::Prepared(version), PREPARE_TIMEOUT) {
            for worker in &self.workers {
                let _ = worker.send(WorkerCommand::Abort { version });
            }
            return Err(why);
        }
        for worker in &self.workers {
            let _ = worker.send(WorkerCommand::Commit { version });
        }
        let keys = Routes::build(&new, 0).endpoint_keys().to_vec();
        self.aggregator.remap(version, &self.endpoint_keys, &keys, ejection_policy(&new.config));
        self.endpoint_keys = keys;
        self.routes_version = version;
        let _ = self.token_reloads.send(super::tokens::accounts(&new));
        let needs_restart = restart_only_changes(&self.config.config, &new.config);
        let shutdown_grace_ms = new.config.server.shutdown_grace_ms;
        self.governor.reload(&new);
        self.config = new;
        // SIGHUP is also the rotation signal for an access-log file.
        if let Some(log) = &self.access_log {
            log.reopen();
        }
        // Reported done only once every worker serves with it: the next request uses the new
        // config (a rotated key, a new model), not whichever a worker's next tick would give.
        if let Err(why) = self.await_workers(Awaiting::Committed(version), COMMIT_TIMEOUT) {
            log::warn!("reload to version {version}: {why}; the switch was sent and applies on the next tick");
        }
        Ok(ReloadOutcome { version, needs_restart, shutdown_grace_ms })
    }

    /// Waits for every worker's acknowledgement of `phase`, merging other messages meanwhile.
    fn await_workers(&mut self, phase: Awaiting, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut ready = 0;
        while ready < self.workers.len() {
            let message = match self.from_workers.recv_deadline(deadline) {
                Ok(message) => message,
                Err(RecvTimeoutError::Timeout) => return Err(format!("timed out waiting for workers: {phase:?}")),
                Err(RecvTimeoutError::Disconnected) => return Err("workers are gone".into()),
            };
            match self.on_worker_message(message, Some(phase)) {
                Some((_, Ok(()))) => ready += 1,
                Some((worker, Err(why))) => return Err(format!("worker {worker} cannot apply it: {why}")),
                None => {}
            }
        }
        Ok(())
    }
}

/// Settings a running process cannot change, reported instead of silently ignored.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<String> {
    let (o, n) = (&old.server, &new.server);
    let mut changes = Vec::new();
    let mut check = |key: &str, a: String, b: String| {
        if a != b {
            changes.push(format!("{key}: {a} -> {b}"));
        }
    };
    check("server.listen", o.listen.clone(), n.listen.clone());
    let admin_listen = |c: &Config| c.admin.listen.clone().unwrap_or_else(|| "(none)".into());
    check("admin.listen", admin_listen(old), admin_listen(new));
    check("server.cores", o.cores.to_string(), n.cores.to_string());
    check("server.pin_cores", o.pin_cores.to_string(), n.pin_cores.to_string());
    check("server.io_uring_entries", o.io_uring_entries.to_string(), n.io_uring_entries.to_string());
    check(
        "server.max_connections_per_core",
        o.max_connections_per_core.to_string(),
        n.max_connections_per_core.to_string(),
    );
    check("health.tick_ms", old.health.tick_ms.to_string(), new.health.tick_ms.to_string());
    let history_path = |c: &Config| c.history.path.clone().unwrap_or_else(|| "(unset)".into());
    check("history.path", history_path(old), history_path(new));
    check("history.retention_days", old.history.retention_days.to_string(), new.history.retention_days.to_string());
    check("[tracing]", old.tracing.describe(), new.tracing.describe());
    let log = |c: &Config| format!("level {:?}, format {:?}", c.log.level, c.log.format);
    check("[log] level/format", log(old), log(new));
    changes
}
