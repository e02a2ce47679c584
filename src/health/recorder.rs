//! The worker's side of health: records every attempt into core-local deltas (no locks), hands them
//! to the tick task as a `HealthReport`, and keeps a small local view so this worker reacts at once
//! to what it saw itself (a failure streak, a `Retry-After`) before the control thread's next table.

use hashbrown::HashMap;
use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use super::{EndpointDelta, EndpointId, EndpointState, HealthReport, HealthTable, Outcome, record_micros};

/// What this worker alone knows about an endpoint.
#[derive(Debug, Default, Clone)]
struct LocalView {
    consecutive_failures: u64,
    /// Avoid the endpoint until the published table has merged the report with this sequence number:
    /// by then the control thread has decided with every core's data.
    suspect_until_seq: Option<u64>,
    cooldown_until: Option<Instant>,
    /// This worker already sent its probe for the current probing period.
    probe_sent: bool,
}

pub struct Recorder {
    worker: usize,
    eject_after: Cell<u64>,
    /// Records for other config versions (requests that started before a reload) are dropped: their
    /// endpoint ids mean something else now.
    routes_version: Cell<u64>,
    seq: Cell<u64>,
    deltas: RefCell<HashMap<EndpointId, EndpointDelta>>,
    local: RefCell<HashMap<EndpointId, LocalView>>,
}

impl Recorder {
    pub fn new(worker: usize, eject_after: u64) -> Recorder {
        Recorder {
            worker,
            eject_after: Cell::new(eject_after),
            routes_version: Cell::new(0),
            seq: Cell::new(0),
            deltas: RefCell::new(HashMap::new()),
            local: RefCell::new(HashMap::new()),
        }
    }

    /// Records one finished attempt. `ttfb` is the time to the response head, when one came.
    pub fn record(
        &self,
        routes_version: u64,
        id: EndpointId,
        outcome: Outcome,
        ttfb: Option<Duration>,
        total: Duration,
        probe: bool,
    ) {
        if routes_version != self.routes_version.get() {
            return;
        }
        let mut deltas = self.deltas.borrow_mut();
        let delta = deltas.entry(id).or_default();
        delta.outcomes[outcome.index()] += 1;
        if outcome != Outcome::ClientError {
            record_micros(&mut delta.latency, total.as_micros() as u64);
            if let Some(ttfb) = ttfb {
                record_micros(&mut delta.ttfb, ttfb.as_micros() as u64);
            }
        }
        if outcome == Outcome::Success {
            delta.had_success = true;
            delta.trailing_failures = 0;
        } else if outcome.is_failure() {
            delta.trailing_failures += 1;
        }
        if probe {
            delta.probe_succeeded = Some(!outcome.is_failure());
        }
        drop(deltas);
        self.update_local(id, outcome);
    }

    fn update_local(&self, id: EndpointId, outcome: Outcome) {
        let mut local = self.local.borrow_mut();
        let view = local.entry(id).or_default();
        if outcome == Outcome::Success {
            view.consecutive_failures = 0;
            view.suspect_until_seq = None;
        } else if outcome.is_failure() {
            view.consecutive_failures += 1;
            if view.consecutive_failures >= self.eject_after.get() {
                // The report carrying these failures is the next one sent.
                view.suspect_until_seq = Some(self.seq.get() + 1);
            }
        }
    }

    /// A provider asked for a pause (`Retry-After`): honoured here at once and sent to every core.
    pub fn cooldown(&self, id: EndpointId, until: Instant) {
        let mut local = self.local.borrow_mut();
        let view = local.entry(id).or_default();
        view.cooldown_until = Some(view.cooldown_until.map_or(until, |u| u.max(until)));
        let mut deltas = self.deltas.borrow_mut();
        let delta = deltas.entry(id).or_default();
        delta.cooldown_until = Some(delta.cooldown_until.map_or(until, |u| u.max(until)));
    }

    /// Everything recorded since the last call, as the next report. Always returns one, so the
    /// control thread also learns which table each worker runs on.
    pub fn take_report(&self, applied_version: u64) -> HealthReport {
        let seq = self.seq.get() + 1;
        self.seq.set(seq);
        let endpoints = self.deltas.borrow_mut().drain().collect();
        let routes_version = self.routes_version.get();
        HealthReport { worker: self.worker, seq, applied_version, routes_version, endpoints }
    }

    /// A new config version: endpoint ids change meaning, so everything per endpoint starts afresh.
    pub fn reset(&self, routes_version: u64, eject_after: u64) {
        self.routes_version.set(routes_version);
        self.eject_after.set(eject_after);
        self.deltas.borrow_mut().clear();
        self.local.borrow_mut().clear();
    }

    /// Whether routing on this worker should avoid the endpoint now: the published state, this
    /// worker's own unreported failure streak, a cooldown, or a probe already sent.
    pub fn is_avoided(&self, id: EndpointId, table: &HealthTable, now: Instant) -> bool {
        let published = table.get(id);
        let local = self.local.borrow();
        let view = local.get(&id);
        let acked = table.acked_seq.get(self.worker).copied().unwrap_or(0);
        let suspect = view.and_then(|v| v.suspect_until_seq).is_some_and(|seq| acked < seq);
        let cooling = view.and_then(|v| v.cooldown_until).is_some_and(|until| now < until);
        let probe_spent =
            matches!(published.state, EndpointState::Probing { .. }) && view.is_some_and(|v| v.probe_sent);
        suspect || cooling || probe_spent || published.is_avoided(now, self.worker)
    }

    /// Claims this worker's probe of an endpoint in the `Probing` state; true once per probing period.
    pub fn claim_probe(&self, id: EndpointId, table: &HealthTable) -> bool {
        if table.get(id).state != (EndpointState::Probing { worker: self.worker }) {
            return false;
        }
        let mut local = self.local.borrow_mut();
        let view = local.entry(id).or_default();
        !std::mem::replace(&mut view.probe_sent, true)
    }

    /// Called when a new table is installed: clears probe claims once probing is over.
    pub fn on_table(&self, table: &HealthTable) {
        for (id, view) in self.local.borrow_mut().iter_mut() {
            if !matches!(table.get(*id).state, EndpointState::Probing { .. }) {
                view.probe_sent = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(acked: u64, state: EndpointState) -> HealthTable {
        let mut t = HealthTable::new(1, 1);
        t.acked_seq[0] = acked;
        t.endpoints[0].state = state;
        t
    }

    #[test]
    fn a_local_streak_is_avoided_until_the_control_thread_has_seen_it() {
        let r = Recorder::new(0, 2);
        let now = Instant::now();
        r.record(0, 0, Outcome::ConnectError, None, Duration::from_millis(1), false);
        assert!(!r.is_avoided(0, &table(0, EndpointState::Healthy), now));
        r.record(0, 0, Outcome::ConnectError, None, Duration::from_millis(1), false);
        assert!(r.is_avoided(0, &table(0, EndpointState::Healthy), now), "streak reached locally");
        let report = r.take_report(0);
        assert_eq!(report.seq, 1);
        assert_eq!(report.endpoints[0].1.trailing_failures, 2);
        assert!(!r.is_avoided(0, &table(1, EndpointState::Healthy), now), "the control thread decided otherwise");
    }

    #[test]
    fn cooldowns_apply_locally_and_travel_in_the_report() {
        let r = Recorder::new(0, 5);
        let now = Instant::now();
        r.cooldown(0, now + Duration::from_secs(2));
        assert!(r.is_avoided(0, &table(0, EndpointState::Healthy), now));
        assert!(!r.is_avoided(0, &table(0, EndpointState::Healthy), now + Duration::from_secs(2)));
        assert_eq!(r.take_report(0).endpoints[0].1.cooldown_until, Some(now + Duration::from_secs(2)));
    }

    #[test]
    fn one_probe_per_probing_period() {
        let r = Recorder::new(0, 5);
        let probing = table(0, EndpointState::Probing { worker: 0 });
        assert!(!r.is_avoided(0, &probing, Instant::now()));
        assert!(r.claim_probe(0, &probing));
        assert!(!r.claim_probe(0, &probing));
        assert!(r.is_avoided(0, &probing, Instant::now()), "the probe is out");
        r.on_table(&table(0, EndpointState::Healthy));
        assert!(!r.is_avoided(0, &table(0, EndpointState::Healthy), Instant::now()));
        assert!(!r.claim_probe(0, &table(0, EndpointState::Probing { worker: 1 })), "another worker's probe");
    }
}
