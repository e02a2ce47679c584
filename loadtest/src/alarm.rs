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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
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
    set: Mutex<AlarmSet>,
    stop: AtomicBool,
}

/// The alarms not yet rung. A heap by due time, so thousands of waiting streams (`loadtest/streams`)
/// cost a logarithm per alarm, not a scan; an alarm dropped before it rings leaves the waiting map
/// at once and its heap entry is skipped when it comes up.
#[derive(Default)]
struct AlarmSet {
    due: BinaryHeap<Reverse<(Instant, u64)>>,
    waiting: HashMap<u64, Waker>,
    /// When the thread will look next (`None`: it sleeps until woken); a new alarm due earlier
    /// wakes it, a later one does not.
    thread_wakes_at: Option<Instant>,
    next_id: u64,
}

impl Shared {
    fn set(&self) -> MutexGuard<'_, AlarmSet> {
        self.set.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AlarmSet {
    /// Takes the wakers of the alarms due by `now` into `to_wake`; returns the earliest due time
    /// left (possibly a dropped alarm's: the thread then merely looks once for nothing).
    fn ring_due(&mut self, now: Instant, to_wake: &mut Vec<Waker>) -> Option<Instant> {
        while let Some(&Reverse((due, id))) = self.due.peek() {
            if due > now {
                return Some(due);
            }
            self.due.pop();
            to_wake.extend(self.waiting.remove(&id));
        }
        None
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
        Alarm { alarms: self, due: Instant::now() + delay, id: None, fallback: None }
    }

    /// The alarm thread, started on first use; `None` if it could not be started (then alarms
    /// fall back to the runtime's timer, late but never lost).
    fn thread(&self) -> Option<&Thread> {
        let started = self.thread.get_or_init(|| {
            let shared = Arc::clone(&self.shared);
            let spawned =
                std::thread::Builder::new().name("corelay-mock-alarm".into()).spawn(move || keep_time(&shared));
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

/// The alarm thread: rings what is due, then sleeps until the earliest alarm left or until an
/// earlier one is set.
fn keep_time(shared: &Shared) {
    crate::timer_slack::set_fine();
    let mut to_wake = Vec::new();
    while !shared.stop.load(Ordering::Acquire) {
        let next = {
            let mut set = shared.set();
            let next = set.ring_due(Instant::now(), &mut to_wake);
            set.thread_wakes_at = next;
            next
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
    /// Set once the alarm is handed to the thread; it has rung once the id has left `waiting`.
    id: Option<u64>,
    /// The runtime's timer, used only when no alarm thread could be started.
    fallback: Option<Pin<Box<monoio::time::Sleep>>>,
}

impl Alarm<'_> {
    /// Hands this alarm to the thread, or updates the task it wakes. `Some(rung)` says whether it
    /// has rung; `None`: no thread runs.
    fn arm(&mut self, waker: &Waker) -> Option<bool> {
        let thread = self.alarms.thread()?;
        let mut set = self.alarms.shared.set();
        if let Some(id) = self.id {
            return Some(match set.waiting.get_mut(&id) {
                Some(waiting) => {
                    waiting.clone_from(waker);
                    false
                }
                None => true,
            });
        }
        let id = set.next_id;
        set.next_id += 1;
        set.due.push(Reverse((self.due, id)));
        set.waiting.insert(id, waker.clone());
        self.id = Some(id);
        let wakes_thread = set.thread_wakes_at.is_none_or(|at| self.due < at);
        if wakes_thread {
            set.thread_wakes_at = Some(self.due);
        }
        drop(set);
        if wakes_thread {
            thread.unpark();
        }
        Some(false)
    }
}

impl Future for Alarm<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.id.is_none() && Instant::now() >= self.due {
            return Poll::Ready(());
        }
        match self.arm(cx.waker()) {
            Some(true) => Poll::Ready(()),
            Some(false) => Poll::Pending,
            // No alarm thread: the runtime's timer, late by up to two milliseconds.
            None => {
                let due = self.due;
                self.fallback.get_or_insert_with(|| Box::pin(monoio::time::sleep_until(due.into()))).as_mut().poll(cx)
            }
        }
    }
}

impl Drop for Alarm<'_> {
    /// A connection that goes away while waiting takes its alarm with it.
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.alarms.shared.set().waiting.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

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
    fn alarms_set_out_of_order_ring_in_due_order() {
        let alarms = Rc::new(Alarms::default());
        let rang = Rc::new(RefCell::new(Vec::new()));
        block_on(async {
            // The later alarm is set first, so the thread sleeps towards it; the earlier one set
            // next must wake it, and each rings at or after its own due time.
            let started = Instant::now();
            let tasks: Vec<_> = [(30, "late"), (10, "early")]
                .into_iter()
                .map(|(ms, name)| {
                    let (alarms, rang) = (Rc::clone(&alarms), Rc::clone(&rang));
                    monoio::spawn(async move {
                        alarms.after(Duration::from_millis(ms)).await;
                        assert!(started.elapsed() >= Duration::from_millis(ms), "{name} rang early");
                        rang.borrow_mut().push(name);
                    })
                })
                .collect();
            for task in tasks {
                task.await;
            }
        });
        assert_eq!(*rang.borrow(), ["early", "late"]);
        assert!(alarms.shared.set().waiting.is_empty());
    }

    #[test]
    fn a_dropped_alarm_is_forgotten() {
        let alarms = Alarms::default();
        block_on(async {
            let mut abandoned = std::pin::pin!(alarms.after(Duration::from_secs(3600)));
            let waker = std::task::Waker::noop();
            assert!(abandoned.as_mut().poll(&mut Context::from_waker(waker)).is_pending());
            assert_eq!(alarms.shared.set().waiting.len(), 1);
        });
        assert!(alarms.shared.set().waiting.is_empty(), "the abandoned alarm's task would be woken");
        // The thread still keeps time for the next one.
        block_on(alarms.after(Duration::from_millis(5)));
    }

    #[test]
    fn a_zero_delay_is_ready_at_once_without_a_thread() {
        let alarms = Alarms::default();
        block_on(alarms.pause(Duration::ZERO));
        block_on(alarms.after(Duration::ZERO));
        assert!(alarms.thread.get().is_none());
    }
}
