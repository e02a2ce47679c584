//! State shared between the test thread and the mock's runtime threads: the current config, the
//! request log (with a Condvar for waiting on it) and the counters. Owns no I/O and no runtime.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::alarm::Alarms;
use crate::config::MockConfig;

/// One request as the mock received it, for assertions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// Request target as sent, query string included.
    pub path: String,
    /// In arrival order; names lowercased, values as sent (lossy UTF-8).
    pub headers: Vec<(String, String)>,
    /// Decoded body (chunked transfer coding removed).
    pub body: Vec<u8>,
    /// 1 for the first accepted connection, 2 for the next, and so on.
    pub connection_id: u64,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

pub(crate) struct Shared {
    // An Arc inside the lock so a request clones a pointer, not the config, under a read lock.
    config: RwLock<Arc<MockConfig>>,
    log: Mutex<Vec<RecordedRequest>>,
    logged: Condvar,
    connections: AtomicU64,
    responses: AtomicU64,
    recording: bool,
    /// Punctual delays for replies (the runtime's timer is a millisecond or two late).
    alarms: Alarms,
}

// A panicking test thread must not turn every later lock into a second panic.
fn unpoison<T>(r: Result<T, PoisonError<T>>) -> T {
    r.unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(config: MockConfig, recording: bool) -> Shared {
        Shared {
            config: RwLock::new(Arc::new(config)),
            log: Mutex::new(Vec::new()),
            logged: Condvar::new(),
            connections: AtomicU64::new(0),
            responses: AtomicU64::new(0),
            recording,
            alarms: Alarms::default(),
        }
    }

    pub(crate) fn alarms(&self) -> &Alarms {
        &self.alarms
    }

    pub(crate) fn config(&self) -> Arc<MockConfig> {
        unpoison(self.config.read()).clone()
    }

    pub(crate) fn set_config(&self, config: MockConfig) {
        *unpoison(self.config.write()) = Arc::new(config);
    }

    /// Counts an accepted connection and returns its id.
    pub(crate) fn next_connection_id(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn connections_accepted(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// A fresh number for `x-request-id` and completion ids.
    pub(crate) fn next_response_seq(&self) -> u64 {
        self.responses.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        if !self.recording {
            return;
        }
        self.lock_log().push(request);
        self.logged.notify_all();
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.lock_log().clone()
    }

    pub(crate) fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut log = self.lock_log();
        // Spurious wake-ups are re-checked against the same deadline, so the wait stays bounded.
        while log.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            log = unpoison(self.logged.wait_timeout(log, left)).0;
        }
        true
    }

    fn lock_log(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        unpoison(self.log.lock())
    }
}
