//! Punctual delays for the mock's replies: a small OS thread per mock that wakes each waiting
//! connection at its due time, and the future a connection awaits. It owns timing only; what is
//! written when is `writer.rs`'s business.
//!
//! Why not the runtime's timer: monoio's timer has millisecond ticks, rounds a deadline up, and
//! sleeps in whole milliseconds counted from the last time the runtime parked. A 50 ms delay then
//! fires 1-2 ms late, and how late depends on when this mock last had other work: connections
//! that arrive later make every waiting connection's event later. Measured through a proxy that
//! shifts with how the proxy spreads the requests out, which is the mock's artifact, not the
//! proxy's latency. A thread sleeping with a 1 µs timer slack fires within microseconds of the
//! due time, whatever else the mock is doing (as `load::pacer` does for the load generator).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

/// The mock's alarm clock. The thread starts with the first delay asked for (most mocks never
/// delay) and is stopped and joined when this is dropped.
#[derive(Default)]
pub(crate) struct Alarms {
    shared: Arc<Shared>,
    thread: OnceLock<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Shared {
    /// Alarms not yet rung: due time, the flag the future reads, the task to wake.
    pending: Mutex<Vec<Pending>>,
    stop: AtomicBool,
}

struct Pending {
    due: Instant,
    rung: Arc<AtomicBool>,
    waker: Waker,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Vec<Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Alarms {
    /// Waits `delay` from now; a zero delay returns at once without reading the clock (most
    /// replies have none).
    pub(crate) async fn pause(&self, delay: Duration) {
        if !delay.is_zero() {
            self.after(delay).await;
        }
    }

    /// Resolves `delay` from now.
    pub(crate) fn after(&self, delay: Duration) -> Alarm<'_> {
        Alarm { alarms: self, due: Instant::now() + delay, rung: None, fallback: None }
    }

    /// The alarm thread, started on first use; `None` if it could not be started (then alarms
    /// fall back to the runtime's timer, late but never lost).
    fn thread(&self) -> Option<&Thread> {
        let started = self.thread.get_or_init(|| {
            let shared = Arc::clone(&self.shared);
            let spawned =
                std::thread::Builder::new().name("corelay-mock-alarm".into()).spawn(move || ring_due(&shared));
            spawned.ok()
        });
        started.as_ref().map(JoinHandle::thread)
    }
}

impl Drop for Alarms {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(Some(thread)) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// The alarm thread: rings what is due, then sleeps until the earliest alarm left or until a new
/// one is set (setting one unparks it).
fn ring_due(shared: &Shared) {
    crate::timer_slack::set_fine();
    let mut to_wake = Vec::new();
    while !shared.stop.load(Ordering::Acquire) {
        let now = Instant::now();
        let next = {
            let mut pending = shared.pending();
            for alarm in pending.extract_if(.., |alarm| alarm.due <= now) {
                alarm.rung.store(true, Ordering::Release);
                to_wake.push(alarm.waker);
            }
            pending.iter().map(|alarm| alarm.due).min()
        };
        // Woken outside the lock: a cross-thread wake sends to the runtime and unparks it.
        for waker in to_wake.drain(..) {
            waker.wake();
        }
        match next {
            Some(due) => std::thread::park_timeout(due.saturating_duration_since(Instant::now())),
            None => std::thread::park(),
        }
    }
}

/// Awaited by a connection for its delay.
pub(crate) struct Alarm<'a> {
    alarms: &'a Alarms,
    due: Instant,
    /// Set once the alarm is handed to the thread; the thread raises the flag when it rings.
    rung: Option<Arc<AtomicBool>>,
    /// The runtime's timer, used only when no alarm thread could be started.
    fallback: Option<Pin<Box<monoio::time::Sleep>>>,
}

impl Alarm<'_> {
    /// Hands this alarm to the thread (or updates the task to wake); false if no thread runs.
    fn arm(&mut self, waker: &Waker) -> bool {
        let Some(thread) = self.alarms.thread() else { return false };
        let mut pending = self.alarms.shared.pending();
        match &self.rung {
            Some(rung) => {
                if let Some(alarm) = pending.iter_mut().find(|alarm| Arc::ptr_eq(&alarm.rung, rung)) {
                    alarm.waker.clone_from(waker);
                }
            }
            None => {
                let rung = Arc::new(AtomicBool::new(false));
                pending.push(Pending { due: self.due, rung: Arc::clone(&rung), waker: waker.clone() });
                self.rung = Some(rung);
                drop(pending);
                thread.unpark();
            }
        }
        true
    }
}

impl Future for Alarm<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.rung.as_ref().is_some_and(|rung| rung.load(Ordering::Acquire)) || Instant::now() >= self.due {
            return Poll::Ready(());
        }
        if self.arm(cx.waker()) {
            // Checked again after arming: the thread may have rung between the check and the set.
            if self.rung.as_ref().is_some_and(|rung| rung.load(Ordering::Acquire)) {
                return Poll::Ready(());
            }
            return Poll::Pending;
        }
        // No alarm thread: the runtime's timer, late by up to two milliseconds.
        let due = self.due;
        self.fallback.get_or_insert_with(|| Box::pin(monoio::time::sleep_until(due.into()))).as_mut().poll(cx)
    }
}

impl Drop for Alarm<'_> {
    /// A connection that goes away while waiting takes its alarm with it.
    fn drop(&mut self) {
        if let Some(rung) = self.rung.take()
            && !rung.load(Ordering::Acquire)
        {
            self.alarms.shared.pending().retain(|alarm| !Arc::ptr_eq(&alarm.rung, &rung));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: Future>(future: F) -> F::Output {
        let mut runtime = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build().unwrap();
        runtime.block_on(future)
    }

    #[test]
    fn an_alarm_does_not_ring_early() {
        let alarms = Alarms::default();
        let delay = Duration::from_millis(20);
        let started = Instant::now();
        block_on(alarms.after(delay));
        assert!(started.elapsed() >= delay);
    }

    #[test]
    fn alarms_ring_in_due_order_and_a_dropped_one_is_forgotten() {
        let alarms = Alarms::default();
        block_on(async {
            // Set a long alarm and abandon it: the thread must forget it, not ring a dead task.
            let mut abandoned = std::pin::pin!(alarms.after(Duration::from_secs(3600)));
            let waker = std::task::Waker::noop();
            assert!(abandoned.as_mut().poll(&mut Context::from_waker(waker)).is_pending());
        });
        assert!(alarms.shared.pending().is_empty());
        let started = Instant::now();
        block_on(async {
            let short = alarms.after(Duration::from_millis(5));
            let long = alarms.after(Duration::from_millis(15));
            long.await;
            let after_long = started.elapsed();
            short.await;
            assert!(after_long >= Duration::from_millis(15));
        });
        assert!(alarms.shared.pending().is_empty());
    }

    #[test]
    fn a_zero_delay_is_ready_at_once_without_a_thread() {
        let alarms = Alarms::default();
        block_on(alarms.pause(Duration::ZERO));
        block_on(alarms.after(Duration::ZERO));
        assert!(alarms.thread.get().is_none());
    }
}
