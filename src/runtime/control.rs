//! The control thread's health loop: receive every worker's report, merge, and publish a new health
//! table to every worker each tick. It is the only thread here that blocks.
//!
//! `HealthHub` lets observers outside the workers (tests, later the admin API) see the latest table
//! and wait until every worker routes with it. It is never touched on the request path.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::StopSignal;
use crate::health::aggregator::Aggregator;
use crate::health::{HealthReport, HealthTable};

/// The latest published table and which version each worker has applied.
pub struct HealthHub {
    state: Mutex<HubState>,
    changed: Condvar,
}

struct HubState {
    latest: Arc<HealthTable>,
    applied: Vec<u64>,
}

impl HealthHub {
    pub fn new(workers: usize, initial: HealthTable) -> HealthHub {
        HealthHub {
            state: Mutex::new(HubState { latest: Arc::new(initial), applied: vec![0; workers] }),
            changed: Condvar::new(),
        }
    }

    pub fn latest(&self) -> Arc<HealthTable> {
        Arc::clone(&self.lock().latest)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, table: Arc<HealthTable>) {
        self.lock().latest = table;
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
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        let mut target: Option<u64> = None;
        loop {
            if pred(&state.latest) {
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

/// Everything the control loop runs with.
pub struct ControlLoop {
    pub aggregator: Aggregator,
    pub reports: Receiver<HealthReport>,
    pub tables: Vec<Sender<Arc<HealthTable>>>,
    pub hub: Arc<HealthHub>,
    pub tick: Duration,
    pub stop: Arc<StopSignal>,
}

impl ControlLoop {
    /// Runs until stopped or until every worker is gone.
    pub fn run(mut self) {
        let mut next_tick = Instant::now() + self.tick;
        while !self.stop.is_stopped() {
            match self.reports.recv_deadline(next_tick) {
                Ok(report) => {
                    self.hub.note_applied(report.worker, report.applied_version);
                    self.aggregator.merge(report, Instant::now());
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.publish();
                    next_tick = Instant::now() + self.tick;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    fn publish(&mut self) {
        let table = Arc::new(self.aggregator.tick(Instant::now()));
        for worker in &self.tables {
            // A worker that has not drained its last table gets this one on a later tick.
            let _ = worker.try_send(Arc::clone(&table));
        }
        self.hub.publish(table);
    }
}
