//! Provider health shared between instances: what this instance avoids (ejected, cooling down after a
//! `Retry-After`, or probing) goes out, and what other instances avoid comes in and is routed around
//! here as a cooldown until the time they announced.
//!
//! Owns only the exchange's state and how it folds into a `HealthTable`: the control thread's each
//! tick, and each worker's as soon as the governance thread reads news ([`Follower`]: one atomic
//! load per routing decision, no lock, so another instance's ejection reaches this instance's
//! requests within Redis's read interval rather than a worker tick later). The transport (Redis, on
//! the governance thread) and the control loop that calls [`SharedHealth::observe`] and
//! [`SharedHealth::apply`] live elsewhere. Endpoints are named by provider and provider
//! model as the config spells them, so instances with the same config agree on names; times cross
//! the wire as Unix milliseconds, since an `Instant` means nothing in another process.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::{EndpointState, HealthTable};

/// How long others avoid an endpoint this instance is probing: its probe decides soon, and until it
/// does the endpoint is as suspect as when it was ejected. Refreshed while the probe lasts.
const PROBING_HOLD: Duration = Duration::from_secs(1);

/// The health exchanged with other instances. One per process, shared by the control thread (which
/// observes and applies) and the thread that talks to the other instances.
#[derive(Debug)]
pub struct SharedHealth {
    state: Mutex<State>,
    /// Signalled when another instance newly avoids an endpoint, so the control thread publishes at
    /// once instead of at its next tick (at most one signal waits).
    news: (Sender<()>, Receiver<()>),
    /// Bumped after every change of what others avoid: workers compare it with what they folded in.
    remote_version: AtomicU64,
}

impl Default for SharedHealth {
    fn default() -> Self {
        SharedHealth { state: Mutex::default(), news: crossbeam_channel::bounded(1), remote_version: AtomicU64::new(0) }
    }
}

#[derive(Debug, Default)]
struct State {
    /// Every endpoint of this instance's config, by name: what to look up.
    endpoints: Vec<String>,
    /// Endpoints this instance avoids now, with when that ends (Unix ms): what to announce.
    avoided: Vec<(String, u64)>,
    /// Endpoints other instances avoid, with when that ends (Unix ms).
    remote: HashMap<String, u64>,
}

/// The name an endpoint is exchanged under.
pub fn endpoint_name(provider: &str, model: &str) -> String {
    format!("{provider}:{model}")
}

impl SharedHealth {
    /// Notes what this instance's own measurements avoid in `table` (before [`apply`](Self::apply)
    /// folds in others', so an instance never re-announces what it only heard).
    pub fn observe(&self, keys: &[(String, String)], table: &HealthTable, now: Instant, now_unix_ms: u64) {
        let to_unix = |until: Instant| now_unix_ms + until.saturating_duration_since(now).as_millis() as u64;
        let mut avoided = Vec::new();
        for (id, (provider, model)) in keys.iter().enumerate() {
            let health = table.get(id);
            let state_until = match health.state {
                EndpointState::Healthy => None,
                EndpointState::Ejected { until } => Some(until),
                EndpointState::Probing { .. } => Some(now + PROBING_HOLD),
            };
            let until = state_until.into_iter().chain(health.cooldown_until).max().map(to_unix);
            if let Some(until) = until.filter(|&until| until > now_unix_ms) {
                avoided.push((endpoint_name(provider, model), until));
            }
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.endpoints = keys.iter().map(|(p, m)| endpoint_name(p, m)).collect();
        state.avoided = avoided;
    }

    /// Names the endpoints to look up before the first [`observe`](Self::observe), so others'
    /// avoidances are read from the start rather than from the control thread's first tick.
    pub fn set_endpoints(&self, keys: &[(String, String)]) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.endpoints = keys.iter().map(|(p, m)| endpoint_name(p, m)).collect();
    }

    /// Avoids in `table` what other instances avoid: a cooldown until the time they announced (kept
    /// if this instance's own lasts longer).
    pub fn apply(&self, keys: &[(String, String)], table: &mut HealthTable, now: Instant, now_unix_ms: u64) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.remote.is_empty() {
            return;
        }
        for (id, (provider, model)) in keys.iter().enumerate() {
            let Some(&until) = state.remote.get(&endpoint_name(provider, model)) else { continue };
            let Some(health) = table.endpoints.get_mut(id) else { continue };
            if until > now_unix_ms {
                let until = now + Duration::from_millis(until - now_unix_ms);
                health.cooldown_until = health.cooldown_until.max(Some(until));
            }
        }
    }

    /// What to announce (name, until in Unix ms) and the names to look up.
    pub fn outgoing(&self) -> (Vec<(String, u64)>, Vec<String>) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (state.avoided.clone(), state.endpoints.clone())
    }

    /// Replaces what other instances avoid (name to until in Unix ms); signals [`news`](Self::news)
    /// when an endpoint is avoided that was not, or for longer.
    pub fn set_remote(&self, remote: HashMap<String, u64>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let newer = remote.iter().any(|(name, until)| state.remote.get(name).is_none_or(|known| until > known));
        let changed = state.remote != remote;
        state.remote = remote;
        drop(state);
        if changed {
            // After the map: a worker that sees the new version reads the new map.
            self.remote_version.fetch_add(1, Ordering::Release);
        }
        if newer {
            let _ = self.news.0.try_send(());
        }
    }

    /// Receives a signal whenever others' avoidances grew: publish then.
    pub fn news(&self) -> Receiver<()> {
        self.news.1.clone()
    }
}

/// Whether a worker's report holds what other instances should hear of at once (failures, or a
/// provider's `Retry-After`): the control thread then publishes, and so announces, without waiting
/// for its tick.
pub fn worth_announcing(report: &super::HealthReport) -> bool {
    report.endpoints.iter().any(|(_, delta)| delta.trailing_failures > 0 || delta.cooldown_until.is_some())
}

/// One worker's follower of the exchange: knows which version of others' avoidances its routing
/// table holds, so a worker folds news in on its next routing decision instead of its next tick.
/// Single-threaded, like the worker.
#[derive(Debug)]
pub struct Follower {
    shared: Arc<SharedHealth>,
    /// The version folded into the worker's table; `u64::MAX` once a new table replaced it.
    folded: Cell<u64>,
}

impl Follower {
    pub fn new(shared: Arc<SharedHealth>) -> Follower {
        Follower { shared, folded: Cell::new(u64::MAX) }
    }

    /// Whether the worker's table lacks news: one atomic load, no lock (called per routing decision).
    pub fn is_behind(&self) -> bool {
        self.shared.remote_version.load(Ordering::Acquire) != self.folded.get()
    }

    /// `table` with what others avoid now folded in, or `None` when nothing is avoided (the table
    /// stands as it is). Either way the worker is up to date afterwards.
    pub fn fold(
        &self,
        keys: &[(String, String)],
        table: &HealthTable,
        now: Instant,
        now_unix_ms: u64,
    ) -> Option<HealthTable> {
        let version = self.shared.remote_version.load(Ordering::Acquire);
        self.folded.set(version);
        if self.shared.state.lock().unwrap_or_else(|e| e.into_inner()).remote.is_empty() {
            return None;
        }
        let mut table = table.clone();
        self.shared.apply(keys, &mut table, now, now_unix_ms);
        Some(table)
    }

    /// The worker installed a table from the control thread: fold again before the next decision,
    /// so news the control thread had not seen yet is not lost.
    pub fn table_replaced(&self) {
        self.folded.set(u64::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::EndpointHealth;

    fn keys() -> Vec<(String, String)> {
        vec![("a".into(), "m".into()), ("b".into(), "m".into())]
    }

    #[test]
    fn ejections_cooldowns_and_probes_are_announced_with_unix_times() {
        let now = Instant::now();
        let mut table = HealthTable::new(2, 1);
        table.endpoints[0].state = EndpointState::Ejected { until: now + Duration::from_millis(5_000) };
        let shared = SharedHealth::default();
        shared.observe(&keys(), &table, now, 1_000_000);
        assert_eq!(shared.outgoing(), (vec![("a:m".into(), 1_005_000)], vec!["a:m".into(), "b:m".into()]));

        table.endpoints[0] = EndpointHealth { state: EndpointState::Probing { worker: 0 }, ..Default::default() };
        table.endpoints[1].cooldown_until = Some(now + Duration::from_millis(30));
        shared.observe(&keys(), &table, now, 1_000_000);
        assert_eq!(shared.outgoing().0, vec![("a:m".into(), 1_001_000), ("b:m".into(), 1_000_030)]);
    }

    #[test]
    fn others_avoidances_become_cooldowns_until_they_end() {
        let now = Instant::now();
        let shared = SharedHealth::default();
        shared.set_remote(HashMap::from([("b:m".to_string(), 1_000_400), ("a:m".to_string(), 999_000)]));
        let mut table = HealthTable::new(2, 1);
        shared.apply(&keys(), &mut table, now, 1_000_000);
        assert_eq!(table.endpoints[0].cooldown_until, None, "an announcement that ended is ignored");
        assert_eq!(table.endpoints[1].cooldown_until, Some(now + Duration::from_millis(400)));
        assert!(table.get(1).is_avoided(now, 0) && !table.get(1).is_avoided(now + Duration::from_millis(400), 0));

        let mine = now + Duration::from_secs(9);
        table.endpoints[1].cooldown_until = Some(mine);
        shared.apply(&keys(), &mut table, now, 1_000_000);
        assert_eq!(table.endpoints[1].cooldown_until, Some(mine), "a longer own cooldown is kept");
    }

    #[test]
    fn a_follower_folds_news_in_once_and_again_after_its_table_is_replaced() {
        let shared = Arc::new(SharedHealth::default());
        let follower = Follower::new(Arc::clone(&shared));
        let table = HealthTable::new(2, 1);
        assert!(follower.is_behind(), "a new worker folds once");
        let (now, now_unix_ms) = (Instant::now(), 1_000_000);
        assert!(follower.fold(&keys(), &table, now, now_unix_ms).is_none(), "nothing avoided: the table stands");
        assert!(!follower.is_behind());

        let until = now_unix_ms + 60_000;
        shared.set_remote(HashMap::from([("b:m".to_string(), until)]));
        assert!(follower.is_behind(), "news is seen at the next decision");
        let folded = follower.fold(&keys(), &table, now, now_unix_ms).expect("b:m is avoided");
        assert!(folded.endpoints[0].cooldown_until.is_none() && folded.endpoints[1].cooldown_until.is_some());
        assert!(!follower.is_behind());
        shared.set_remote(HashMap::from([("b:m".to_string(), until)]));
        assert!(!follower.is_behind(), "the same avoidances are no news");

        follower.table_replaced();
        assert!(follower.is_behind(), "a table from the control thread gets the news folded in again");
    }

    #[test]
    fn reports_with_failures_or_cooldowns_are_announced_at_once() {
        use crate::health::{EndpointDelta, HealthReport};
        let report = |delta: EndpointDelta| HealthReport {
            worker: 0,
            seq: 1,
            applied_version: 0,
            routes_version: 0,
            endpoints: vec![(0, delta)],
        };
        assert!(!worth_announcing(&report(EndpointDelta { had_success: true, ..Default::default() })));
        assert!(worth_announcing(&report(EndpointDelta { trailing_failures: 1, ..Default::default() })));
        let cooldown = Some(Instant::now() + Duration::from_secs(1));
        assert!(worth_announcing(&report(EndpointDelta { cooldown_until: cooldown, ..Default::default() })));
    }

    #[test]
    fn news_is_signalled_only_when_others_avoid_more() {
        let shared = SharedHealth::default();
        let news = shared.news();
        shared.set_remote(HashMap::from([("a:m".to_string(), 10)]));
        assert!(news.try_recv().is_ok());
        shared.set_remote(HashMap::from([("a:m".to_string(), 10)]));
        shared.set_remote(HashMap::new());
        assert!(news.try_recv().is_err(), "the same or less is no news");
        shared.set_remote(HashMap::from([("a:m".to_string(), 11)]));
        assert!(news.try_recv().is_ok());
    }
}
