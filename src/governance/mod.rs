//! Governance: virtual keys with expiry, model allow-lists, spend budgets, RPM/TPM and concurrency
//! limits, enforced exactly under concurrency, in one process or shared by several through Redis.
//!
//! Owns admission and accounting. It does not parse requests, compute prices or write HTTP answers:
//! the pipeline passes in the model, an estimate and the real usage, and turns a [`Denial`] into
//! its client's error format. Time is always passed in (`now_ms`, Unix milliseconds), so every rule
//! is testable without waiting.
//!
//! The pipeline's three calls, per request:
//! 1. [`Governor::authenticate`] the bearer token (replaces `Routes::authenticate` when keys exist);
//! 2. [`Governor::admit`] before the first upstream attempt, awaiting the [`Admission`]: a
//!    [`Reservation`] or a [`Denial`] to answer with;
//! 3. [`Reservation::settle`] once the answer ended, with the usage and cost of the attempt that
//!    answered; dropping the reservation instead (every attempt failed, the client left) releases it.
//!
//! Modes: embedded (counters in this process, snapshotted to `state_file`) and shared (`redis_url`:
//! a governance thread talks to Redis; workers never block on it).

pub mod cli;
mod denial;
mod ledger;
pub mod oneshot;
mod persist;
pub mod policy;
pub mod records;
pub mod resp;
mod scripts;
mod shared;
mod windows;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};

pub use denial::{Denial, DenialReason, Usage};
pub use ledger::{CounterSnapshot, KeyCounters, SavedCounters};
pub use policy::{KeyHash, KeyPolicy, KeyTable, Limits, hash_hex, sha256};
pub use windows::Windows;

use crate::config::{GovernanceConfig, ResolvedConfig};

/// One key as the pipeline holds it between `authenticate` and `admit`: its policy and counters.
#[derive(Debug, Clone)]
pub struct KeyRef {
    pub policy: Arc<KeyPolicy>,
    counters: Arc<KeyCounters>,
}

impl KeyRef {
    pub fn name(&self) -> &str {
        &self.policy.name
    }
}

/// The keys in force and their counters. Replaced whole by a reload or a refresh of Redis records;
/// counters carry over by key name, so a reload forgets no spend.
#[derive(Debug, Default)]
struct KeySet {
    table: KeyTable,
    counters: HashMap<String, Arc<KeyCounters>>,
}

impl KeySet {
    fn build(policies: Vec<KeyPolicy>, previous: &KeySet) -> KeySet {
        let table = KeyTable::new(policies);
        let counters = table
            .policies()
            .map(|p| {
                let counters = previous.counters.get(&p.name).cloned().unwrap_or_default();
                (p.name.clone(), counters)
            })
            .collect();
        KeySet { table, counters }
    }

    fn key_ref(&self, policy: &Arc<KeyPolicy>) -> KeyRef {
        KeyRef { policy: Arc::clone(policy), counters: Arc::clone(&self.counters[&policy.name]) }
    }
}

/// The key set, shared with the governance thread (which merges in Redis records).
#[derive(Debug, Default)]
struct KeyStore {
    /// Read on every request: a read lock is one atomic increment when no reload is writing, which
    /// only happens on a reload or a record refresh.
    current: RwLock<Arc<KeySet>>,
    /// From `[[keys]]`; Redis records are added after them (a config key wins a name clash).
    configured: Mutex<Vec<KeyPolicy>>,
    /// From Redis, as last refreshed.
    recorded: Mutex<Vec<KeyPolicy>>,
}

impl KeyStore {
    fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn rebuild(&self) {
        let mut policies = self.configured.lock().unwrap_or_else(|e| e.into_inner()).clone();
        policies.extend(self.recorded.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned());
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        *current = Arc::new(KeySet::build(policies, &current));
    }

    fn set_configured(&self, policies: Vec<KeyPolicy>) {
        *self.configured.lock().unwrap_or_else(|e| e.into_inner()) = policies;
        self.rebuild();
    }

    fn set_recorded(&self, policies: Vec<KeyPolicy>) {
        let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        if *recorded == policies {
            return;
        }
        *recorded = policies;
        drop(recorded);
        self.rebuild();
    }
}

/// Counts for `/metrics` and the log.
#[derive(Debug, Default)]
pub struct GovernorStats {
    pub admitted: AtomicU64,
    /// Refusals by rule, in the order of [`DenialReason::ALL`].
    pub denied: [AtomicU64; DenialReason::ALL.len()],
    /// Admissions decided locally because Redis was unreachable.
    pub admitted_locally_in_outage: AtomicU64,
    /// Times the connection to Redis was lost.
    pub redis_outages: AtomicU64,
    /// Pipelines the governance thread wrote to Redis, and the admissions and settlements in them:
    /// their ratio is the batch size a busy gateway reaches.
    pub redis_batches: AtomicU64,
    pub redis_batched_items: AtomicU64,
}

/// Admission control for virtual keys. Cheap to clone; share one per process across workers.
#[derive(Clone)]
pub struct Governor {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Arc<KeyStore>,
    settings: GovernanceConfig,
    shared: Option<Arc<shared::Link>>,
    stats: Arc<GovernorStats>,
    persister: Mutex<Option<persist::Persister>>,
}

impl Governor {
    /// The governor a gateway runs: embedded, or shared when `[governance] redis_url` is set. Loads
    /// the state file (embedded) and starts the snapshot and Redis threads as configured.
    pub fn start(config: &ResolvedConfig) -> std::io::Result<Governor> {
        let settings = config.config.governance.clone();
        let keys = Arc::new(KeyStore::default());
        let stats = Arc::new(GovernorStats::default());
        let shared = match &settings.redis_url {
            Some(url) => {
                let address = crate::config::parse_redis_url(url)
                    .map_err(|why| std::io::Error::new(std::io::ErrorKind::InvalidInput, why))?;
                Some(shared::Link::start(address, &settings, Arc::clone(&keys), Arc::clone(&stats))?)
            }
            None => None,
        };
        let governor =
            Governor { inner: Arc::new(Inner { keys, settings, shared, stats, persister: Mutex::new(None) }) };
        governor.reload(config);
        if governor.inner.shared.is_none()
            && let Some(path) = &governor.inner.settings.state_file
        {
            governor.restore_from(path)?;
            let interval = std::time::Duration::from_millis(governor.inner.settings.snapshot_interval_ms);
            let persister = persist::Persister::start(governor.clone(), path.clone(), interval)?;
            *governor.inner.persister.lock().unwrap_or_else(|e| e.into_inner()) = Some(persister);
        }
        Ok(governor)
    }

    /// Takes the `[[keys]]` of a reloaded config; counters of keys that remain are kept.
    pub fn reload(&self, config: &ResolvedConfig) {
        let table = KeyTable::from_config(config);
        let policies = table.policies().map(|p| KeyPolicy::clone(p)).collect();
        self.inner.keys.set_configured(policies);
    }

    /// Whether any key is known: without keys the gateway stays open, as before.
    pub fn has_keys(&self) -> bool {
        !self.inner.keys.current().table.is_empty()
    }

    /// The key whose secret was presented (the bearer token), if any.
    pub fn authenticate(&self, presented: &[u8]) -> Option<KeyRef> {
        let set = self.inner.keys.current();
        set.table.authenticate(presented).map(|p| set.key_ref(p))
    }

    pub fn key(&self, name: &str) -> Option<KeyRef> {
        let set = self.inner.keys.current();
        set.table.by_name(name).map(|p| set.key_ref(p))
    }

    /// Tokens to reserve for a request: its prompt's (about a token per 4 bytes of body) plus its
    /// `max_tokens`, or the configured default when it names none.
    pub fn estimate_tokens(&self, body_bytes: usize, max_tokens: Option<u64>) -> u64 {
        (body_bytes as u64).div_ceil(4) + max_tokens.unwrap_or(self.inner.settings.default_estimated_tokens)
    }

    /// What to reserve for a request: [`estimate_tokens`](Self::estimate_tokens), costed at the
    /// dearest of the `prices` of the endpoints it may reach (so no fallback can cost more than was
    /// reserved for it).
    pub fn estimate<'a>(
        &self,
        body_bytes: usize,
        max_tokens: Option<u64>,
        prices: impl IntoIterator<Item = &'a crate::metrics::cost::Price>,
    ) -> Usage {
        let prompt_tokens = (body_bytes as u64).div_ceil(4);
        let completion_tokens = max_tokens.unwrap_or(self.inner.settings.default_estimated_tokens);
        let usage = crate::chat::Usage { prompt_tokens, completion_tokens, ..Default::default() };
        let cost_micros = prices.into_iter().map(|p| p.cost_micros(&usage)).max().unwrap_or(0);
        Usage { tokens: prompt_tokens + completion_tokens, cost_micros }
    }

    /// Decides whether `key` may send a request for `model` now, reserving `estimate` if so.
    /// Embedded, the answer is ready at once; shared, it comes from the governance thread (one Redis
    /// round trip, pipelined with other workers' requests) and the worker awaits it without blocking.
    pub fn admit(&self, key: &KeyRef, model: &str, now_ms: u64, estimate: Usage) -> Admission {
        if let Err(denial) = check_allowances(&key.policy, model, now_ms) {
            return self.ready(Err(denial));
        }
        let windows = Windows::at(now_ms);
        match &self.inner.shared {
            Some(link) if link.is_up() => {
                let receiver = link.admit(key, windows, estimate);
                Admission {
                    state: AdmissionState::Waiting { receiver, key: key.clone(), windows, estimate },
                    governor: self.clone(),
                }
            }
            _ => self.ready(self.admit_locally(key, windows, estimate)),
        }
    }

    fn ready(&self, result: Result<Reservation, Denial>) -> Admission {
        self.count(&result);
        Admission { state: AdmissionState::Ready(Some(result)), governor: self.clone() }
    }

    fn count(&self, result: &Result<Reservation, Denial>) {
        let stats = &self.inner.stats;
        let counter = match result {
            Ok(_) => &stats.admitted,
            Err(denial) => &stats.denied[DenialReason::ALL.iter().position(|r| *r == denial.reason).unwrap_or(0)],
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Embedded: the key's full limits. Shared but Redis unreachable: the configured share of each
    /// limit, and each settled request's usage is handed to Redis once it is back.
    fn admit_locally(&self, key: &KeyRef, windows: Windows, estimate: Usage) -> Result<Reservation, Denial> {
        let limits = match &self.inner.shared {
            None => key.policy.limits,
            Some(link) => {
                self.inner.stats.admitted_locally_in_outage.fetch_add(1, Ordering::Relaxed);
                link.outage_limits(&key.policy, &windows)
            }
        };
        key.counters.reserve(&limits, &windows, estimate)?;
        let held = Held::Local { key: key.clone(), windows, estimate, forward_to: self.inner.shared.clone() };
        Ok(Reservation { held: Some(held) })
    }

    /// Counters of every key now (spend includes reservations in flight). Embedded mode's spend; in
    /// shared mode this instance's local (outage) counters.
    pub fn counters(&self, now_ms: u64) -> Vec<(String, CounterSnapshot)> {
        let set = self.inner.keys.current();
        let windows = Windows::at(now_ms);
        let mut all: Vec<_> = set.counters.iter().map(|(name, c)| (name.clone(), c.snapshot(&windows))).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    pub fn stats(&self) -> &GovernorStats {
        &self.inner.stats
    }

    /// Creates, lists, rotates or revokes keys kept in Redis, on the governance thread: await the
    /// answer on a worker. `None` without Redis (keys then live only in the config file).
    pub fn administer_keys(&self, request: records::KeyAdmin) -> Option<KeyAdminReply> {
        self.inner.shared.as_ref().map(|link| KeyAdminReply(link.administer(request)))
    }

    /// The `[[keys]]` entries of the config file as records (their `sha256` included: never show it).
    pub fn configured_keys(&self) -> Vec<records::KeyRecord> {
        let configured = self.inner.keys.configured.lock().unwrap_or_else(|e| e.into_inner());
        configured.iter().map(|p| records::KeyRecord::from_policy(p, 0)).collect()
    }

    /// Provider health shared with other instances (when Redis is configured): the control thread
    /// announces what it avoids and routes around what others avoid.
    pub fn shared_health(&self) -> Option<Arc<crate::health::remote::SharedHealth>> {
        self.inner.shared.as_ref().map(|link| Arc::clone(&link.health))
    }

    /// Whether shared enforcement is on (Redis configured and reachable now).
    pub fn redis_up(&self) -> Option<bool> {
        self.inner.shared.as_ref().map(|link| link.is_up())
    }

    /// Appends governance series in Prometheus text format.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let s = &self.inner.stats;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(out, "# TYPE corelay_governance_admitted_total counter");
        let _ = writeln!(out, "corelay_governance_admitted_total {}", load(&s.admitted));
        let _ = writeln!(out, "# TYPE corelay_governance_denied_total counter");
        for (reason, count) in DenialReason::ALL.iter().zip(&s.denied) {
            let _ = writeln!(out, "corelay_governance_denied_total{{reason=\"{}\"}} {}", reason.label(), load(count));
        }
        let _ = writeln!(out, "# TYPE corelay_governance_local_admissions_total counter");
        let _ = writeln!(out, "corelay_governance_local_admissions_total {}", load(&s.admitted_locally_in_outage));
        let _ = writeln!(out, "# TYPE corelay_governance_redis_outages_total counter");
        let _ = writeln!(out, "corelay_governance_redis_outages_total {}", load(&s.redis_outages));
        let _ = writeln!(out, "# TYPE corelay_governance_redis_batches_total counter");
        let _ = writeln!(out, "corelay_governance_redis_batches_total {}", load(&s.redis_batches));
        let _ = writeln!(out, "# TYPE corelay_governance_redis_batched_items_total counter");
        let _ = writeln!(out, "corelay_governance_redis_batched_items_total {}", load(&s.redis_batched_items));
        if let Some(up) = self.redis_up() {
            let _ = writeln!(out, "# TYPE corelay_governance_redis_up gauge");
            let _ = writeln!(out, "corelay_governance_redis_up {}", u8::from(up));
        }
    }

    /// Writes the state file now (embedded mode with a `state_file`).
    pub fn snapshot_now(&self) -> std::io::Result<()> {
        match &self.inner.settings.state_file {
            Some(path) if self.inner.shared.is_none() => {
                let set = self.inner.keys.current();
                let saved: Vec<_> = set.counters.iter().map(|(name, c)| (name.clone(), c.saved())).collect();
                persist::write(path, &saved)
            }
            _ => Ok(()),
        }
    }

    fn restore_from(&self, path: &std::path::Path) -> std::io::Result<()> {
        let saved = persist::read(path)?;
        let mut current = self.inner.keys.current.write().unwrap_or_else(|e| e.into_inner());
        let mut counters = current.counters.clone();
        for (name, snapshot) in saved {
            if counters.contains_key(&name) {
                counters.insert(name, Arc::new(KeyCounters::from_saved(&snapshot)));
            }
        }
        let table = KeyTable::new(current.table.policies().map(|p| KeyPolicy::clone(p)).collect::<Vec<_>>());
        *current = Arc::new(KeySet { table, counters });
        Ok(())
    }

    /// Stops the snapshot and Redis threads, writing the state file a last time and handing Redis
    /// what it still owes. Call after workers drained.
    pub fn shutdown(&self) {
        if let Some(persister) = self.inner.persister.lock().unwrap_or_else(|e| e.into_inner()).take() {
            persister.stop();
        }
        if let Err(e) = self.snapshot_now() {
            log::error!("governance: writing the state file failed: {e}");
        }
        if let Some(link) = &self.inner.shared {
            link.stop();
        }
    }
}

/// The answer to [`Governor::administer_keys`]: a future for workers, [`KeyAdminReply::wait`] for threads.
pub struct KeyAdminReply(oneshot::Receiver<Result<records::KeyAdminAnswer, String>>);

impl KeyAdminReply {
    pub fn wait(self) -> Result<records::KeyAdminAnswer, String> {
        self.0.wait().unwrap_or_else(|| Err("the governance thread has stopped".into()))
    }
}

impl Future for KeyAdminReply {
    type Output = Result<records::KeyAdminAnswer, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.get_mut().0)
            .poll(cx)
            .map(|answer| answer.unwrap_or_else(|| Err("the governance thread has stopped".into())))
    }
}

/// Expiry and the model allow-list: decided from the key alone, before any counter is touched.
fn check_allowances(policy: &KeyPolicy, model: &str, now_ms: u64) -> Result<(), Denial> {
    if policy.expired(now_ms) {
        return Err(Denial::new(DenialReason::Expired, None, format!("the key `{}` has expired", policy.name)));
    }
    if !policy.allows_model(model) {
        let model = crate::routing::echoed(model);
        return Err(Denial::new(
            DenialReason::ModelNotAllowed,
            None,
            format!("the key `{}` may not use the model `{model}`", policy.name),
        ));
    }
    Ok(())
}

/// The answer to [`Governor::admit`]: await it on a worker, or [`Admission::wait`] on a thread.
pub struct Admission {
    state: AdmissionState,
    governor: Governor,
}

enum AdmissionState {
    Ready(Option<Result<Reservation, Denial>>),
    Waiting { receiver: oneshot::Receiver<shared::AdmitReply>, key: KeyRef, windows: Windows, estimate: Usage },
}

impl Admission {
    /// The decision if it needed no Redis round trip (embedded mode, or an allowance refusal).
    pub fn now_or_never(&mut self) -> Option<Result<Reservation, Denial>> {
        match &mut self.state {
            AdmissionState::Ready(result) => result.take(),
            AdmissionState::Waiting { .. } => None,
        }
    }

    /// Blocks this thread for the decision: for threads that may block (the CLI, tests), never a worker.
    pub fn wait(mut self) -> Result<Reservation, Denial> {
        match std::mem::replace(&mut self.state, AdmissionState::Ready(None)) {
            AdmissionState::Ready(result) => result.expect("an admission is taken once"),
            AdmissionState::Waiting { receiver, key, windows, estimate } => {
                let reply = receiver.wait();
                self.governor.decide(reply, &key, windows, estimate)
            }
        }
    }
}

impl Governor {
    fn decide(
        &self,
        reply: Option<shared::AdmitReply>,
        key: &KeyRef,
        windows: Windows,
        estimate: Usage,
    ) -> Result<Reservation, Denial> {
        let result = match reply {
            Some(shared::AdmitReply::Admitted(held)) => Ok(Reservation { held: Some(held) }),
            Some(shared::AdmitReply::Denied(denial)) => Err(denial),
            // Redis went away while this request waited, or the thread stopped: decide here.
            Some(shared::AdmitReply::Unreachable) | None => self.admit_locally(key, windows, estimate),
        };
        self.count(&result);
        result
    }
}

impl Future for Admission {
    type Output = Result<Reservation, Denial>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.state {
            AdmissionState::Ready(result) => {
                Poll::Ready(result.take().expect("an admission is polled to completion once"))
            }
            AdmissionState::Waiting { receiver, key, windows, estimate } => match Pin::new(receiver).poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(reply) => {
                    let (key, windows, estimate) = (key.clone(), *windows, *estimate);
                    this.state = AdmissionState::Ready(None);
                    Poll::Ready(this.governor.decide(reply, &key, windows, estimate))
                }
            },
        }
    }
}

/// Tokens, spend and a concurrency slot held for one admitted request. [`settle`](Self::settle) it
/// with the real usage; dropping it unsettled releases everything but the request's RPM count.
#[must_use = "dropping a reservation releases it as failed; settle it with the real usage"]
pub struct Reservation {
    held: Option<Held>,
}

enum Held {
    Local { key: KeyRef, windows: Windows, estimate: Usage, forward_to: Option<Arc<shared::Link>> },
    Shared(shared::SharedHold),
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation").field("shared", &self.is_shared()).field("estimate", &self.estimate()).finish()
    }
}

impl Reservation {
    /// Replaces the estimate with what the request really used and cost.
    pub fn settle(mut self, now_ms: u64, actual: Usage) {
        if let Some(held) = self.held.take() {
            finish(held, now_ms, actual);
        }
    }

    /// The estimate this reservation holds.
    pub fn estimate(&self) -> Usage {
        match &self.held {
            Some(Held::Local { estimate, .. }) => *estimate,
            Some(Held::Shared(hold)) => hold.estimate,
            None => Usage::default(),
        }
    }

    /// Whether Redis holds this reservation (false: this process does, embedded or in an outage).
    pub fn is_shared(&self) -> bool {
        matches!(self.held, Some(Held::Shared(_)))
    }
}

fn finish(held: Held, now_ms: u64, actual: Usage) {
    let now = Windows::at(now_ms);
    match held {
        Held::Local { key, windows, estimate, forward_to } => {
            key.counters.settle(&windows, &now, estimate, actual);
            if let Some(link) = forward_to.filter(|_| actual != Usage::default()) {
                link.charge(key.name(), now, actual);
            }
        }
        Held::Shared(hold) => hold.settle(now, actual),
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            finish(held, crate::clock::unix_now_ms(), Usage::default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Workers on different threads share one governor and may move a reservation between tasks.
    #[test]
    fn estimates_cost_the_dearest_reachable_endpoint() {
        let config = crate::config::resolve(crate::config::Config::parse("").unwrap()).unwrap();
        let g = Governor::start(&config).unwrap();
        let price = |input, output| {
            crate::metrics::cost::Price::from_config(&crate::config::PriceConfig {
                input,
                output,
                cached_input: None,
                cache_write: None,
            })
        };
        let prices = [price(1.0, 2.0), price(3.0, 15.0)];
        // 4000 bytes ~ 1000 prompt tokens at $3/M, 200 completion tokens at $15/M: 3000 + 3000.
        assert_eq!(g.estimate(4_000, Some(200), &prices), Usage { tokens: 1_200, cost_micros: 6_000 });
        assert_eq!(g.estimate(0, None, &[]), Usage { tokens: 4_096, cost_micros: 0 });
    }

    #[test]
    fn the_pipeline_types_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Governor>();
        send_sync::<KeyRef>();
        send::<Reservation>();
        send::<Admission>();
    }
}
