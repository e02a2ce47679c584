//! Open-loop pacing: a small OS thread per worker that releases the worker's schedule slots at
//! their due time, and the future a connection awaits for its slot. monoio's timer has
//! millisecond ticks (rounded up), so a runtime sleep would send up to a millisecond late and that
//! lateness would count as latency; a thread sleeping with a 1 µs timer slack wakes within
//! microseconds, and a cross-thread wake (monoio's `sync` feature) hands the slot over. Which slot a
//! connection gets is `schedule.rs`'s business.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::Instant;

use super::schedule::Slots;

/// Owns the pacing thread; stopping (or dropping) it ends and joins the thread.
pub(crate) struct Pacer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    /// Slots below this are released.
    released: AtomicU64,
    /// Connections waiting for a slot not yet released, with the slot they wait for.
    waiters: Mutex<Vec<(u64, Waker)>>,
    stop: AtomicBool,
}

impl Shared {
    fn waiters(&self) -> MutexGuard<'_, Vec<(u64, Waker)>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Pacer {
    /// Starts releasing `slots` from `t0`; slots due at or after `deadline` are never released.
    pub fn start(slots: Slots, t0: Instant, deadline: Option<Instant>) -> io::Result<Pacer> {
        let shared = Arc::new(Shared::default());
        let pacing = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("corelay-pacer".into())
            .spawn(move || pace(&pacing, slots, t0, deadline))?;
        Ok(Pacer { shared, thread: Some(thread) })
    }

    /// Resolves once slot `slot` is due.
    pub fn released(&self, slot: u64) -> Released<'_> {
        Released { shared: &self.shared, slot }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// The pacing thread: one pass per slot, until the deadline or until stopped.
fn pace(shared: &Shared, slots: Slots, t0: Instant, deadline: Option<Instant>) {
    crate::timer_slack::set_fine();
    let mut to_wake = Vec::new();
    for slot in 0u64.. {
        let due = slots.due(t0, slot);
        if deadline.is_some_and(|d| due >= d) || !park_until(due, &shared.stop) {
            return;
        }
        shared.released.store(slot + 1, Ordering::Release);
        wake_released(shared, slot + 1, &mut to_wake);
    }
}

/// Sleeps until `due`; false when stopped first. Bounded by `due` (parking may wake early).
fn park_until(due: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Acquire) {
            return false;
        }
        let now = Instant::now();
        if now >= due {
            return true;
        }
        std::thread::park_timeout(due - now);
    }
}

/// Wakes the connections waiting for slots below `released`; `to_wake` is scratch space kept
/// across calls so pacing does not allocate.
fn wake_released(shared: &Shared, released: u64, to_wake: &mut Vec<Waker>) {
    to_wake.extend(shared.waiters().extract_if(.., |(slot, _)| *slot < released).map(|(_, waker)| waker));
    // Woken outside the lock: a cross-thread wake sends to the runtime and unparks it.
    for waker in to_wake.drain(..) {
        waker.wake();
    }
}

/// Awaited by a connection for its slot.
pub(crate) struct Released<'a> {
    shared: &'a Shared,
    slot: u64,
}

impl Future for Released<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let is_released = || self.shared.released.load(Ordering::Acquire) > self.slot;
        if is_released() {
            return Poll::Ready(());
        }
        let mut waiters = self.shared.waiters();
        // Checked again under the lock: the pacer publishes `released` before it takes the lock
        // to wake, so either we see the release here or it sees our waker.
        if is_released() {
            return Poll::Ready(());
        }
        match waiters.iter_mut().find(|(slot, _)| *slot == self.slot) {
            Some((_, waker)) => waker.clone_from(cx.waker()),
            None => waiters.push((self.slot, cx.waker().clone())),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn releases_slots_on_time_and_stops_at_the_deadline() {
        let t0 = Instant::now();
        // 200/s: slots at 0, 5, 10, 15 ms; the deadline excludes the one at 20 ms.
        let pacer = Pacer::start(Slots::for_thread(200.0, 0, 1), t0, Some(t0 + Duration::from_millis(20))).unwrap();
        let mut runtime = monoio::RuntimeBuilder::<monoio::FusionDriver>::new().enable_timer().build().unwrap();
        runtime.block_on(async {
            for slot in 0..4 {
                pacer.released(slot).await;
                assert!(t0.elapsed() >= Duration::from_millis(5 * slot), "slot {slot} released early");
            }
        });
        drop(pacer);
    }
}
