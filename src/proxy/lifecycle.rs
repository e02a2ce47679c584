//! A worker's lifecycle phase (serving, draining, aborting) and its open connections, with wakeups
//! for the tasks that wait on them. Worker-local: `Cell`s and a waker list, no locks.
//!
//! Draining: stop accepting, close idle keep-alive connections, let requests in flight finish and
//! answer them with `connection: close`. Aborting: the grace period is over; streams still open end
//! with an in-band error event.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use hashbrown::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Serving,
    Draining,
    Aborting,
}

#[derive(Default)]
pub struct Lifecycle {
    phase: Cell<Option<Phase>>,
    open_connections: Cell<usize>,
    /// Keyed so a waiter dropped before it fired removes itself, and so a connection's waits share
    /// one entry for the connection's life ([`ConnectionGuard::waiter`]): an idle wait between two
    /// requests then costs a lookup, not an insert and a remove (and a waker clone) per request.
    /// foldhash (hashbrown's), not SipHash.
    waiters: RefCell<HashMap<u64, Waker>>,
    next_waiter: Cell<u64>,
}

impl Lifecycle {
    pub fn phase(&self) -> Phase {
        self.phase.get().unwrap_or(Phase::Serving)
    }

    pub fn is_draining(&self) -> bool {
        self.phase() >= Phase::Draining
    }

    /// Moves forward to `phase` (never back) and wakes every waiter.
    pub fn advance(&self, phase: Phase) {
        if phase > self.phase() {
            self.phase.set(Some(phase));
            self.wake_all();
        }
    }

    pub fn open_connections(&self) -> usize {
        self.open_connections.get()
    }

    /// Counts a connection as open until the guard drops; the guard holds the connection's waiter.
    pub fn connection(self: &Rc<Self>) -> ConnectionGuard {
        self.open_connections.set(self.open_connections.get() + 1);
        ConnectionGuard { lifecycle: Rc::clone(self), waiter: WaiterKey(self.new_waiter_key()) }
    }

    /// Resolves once the phase is at least `phase`.
    pub fn reached(&self, phase: Phase) -> Wait<'_> {
        Wait { lifecycle: self, until: Until::Phase(phase), key: None, owns_key: true }
    }

    /// [`reached`](Self::reached) as the connection whose waiter `key` is
    /// ([`ConnectionGuard::waiter`]): the registration outlives the wait, until the connection
    /// closes, so the next wait of the same task finds it in place.
    pub fn reached_as(&self, phase: Phase, key: WaiterKey) -> Wait<'_> {
        Wait { lifecycle: self, until: Until::Phase(phase), key: Some(key.0), owns_key: false }
    }

    /// Resolves once no connection is open.
    pub fn all_closed(&self) -> Wait<'_> {
        Wait { lifecycle: self, until: Until::NoConnections, key: None, owns_key: true }
    }

    fn new_waiter_key(&self) -> u64 {
        let key = self.next_waiter.get();
        self.next_waiter.set(key + 1);
        key
    }

    fn wake_all(&self) {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waker in waiters.into_values() {
            waker.wake();
        }
    }
}

pub struct ConnectionGuard {
    lifecycle: Rc<Lifecycle>,
    waiter: WaiterKey,
}

/// A connection's entry among the lifecycle's waiters, for [`Lifecycle::reached_as`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaiterKey(u64);

impl ConnectionGuard {
    /// The connection's waiter, removed when the guard drops. Only the connection's own task may
    /// wait with it: the entry holds one waker.
    pub fn waiter(&self) -> WaiterKey {
        self.waiter
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.lifecycle.waiters.borrow_mut().remove(&self.waiter.0);
        let open = self.lifecycle.open_connections.get().saturating_sub(1);
        self.lifecycle.open_connections.set(open);
        if open == 0 {
            self.lifecycle.wake_all();
        }
    }
}

enum Until {
    Phase(Phase),
    NoConnections,
}

pub struct Wait<'a> {
    lifecycle: &'a Lifecycle,
    until: Until,
    key: Option<u64>,
    /// Whether the entry under `key` is this wait's own, removed when it drops (else a
    /// connection's, removed when the connection closes).
    owns_key: bool,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let done = match self.until {
            Until::Phase(phase) => self.lifecycle.phase() >= phase,
            Until::NoConnections => self.lifecycle.open_connections() == 0,
        };
        if done {
            return Poll::Ready(());
        }
        let key = match self.key {
            Some(key) => key,
            None => {
                let key = self.lifecycle.new_waiter_key();
                self.key = Some(key);
                key
            }
        };
        // A stream's relay polls the same waiter on every event: re-register only when the task's
        // waker changed, so the common poll costs a map lookup and no clone.
        let mut waiters = self.lifecycle.waiters.borrow_mut();
        if !waiters.get(&key).is_some_and(|w| w.will_wake(cx.waker())) {
            waiters.insert(key, cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key
            && self.owns_key
        {
            self.lifecycle.waiters.borrow_mut().remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_only_move_forward_and_connections_are_counted() {
        let life = Rc::new(Lifecycle::default());
        assert_eq!(life.phase(), Phase::Serving);
        let a = life.connection();
        let b = life.connection();
        assert_eq!(life.open_connections(), 2);
        life.advance(Phase::Aborting);
        life.advance(Phase::Draining);
        assert_eq!(life.phase(), Phase::Aborting);
        drop(a);
        drop(b);
        assert_eq!(life.open_connections(), 0);
    }

    #[test]
    fn dropped_waiters_leave_nothing_behind() {
        let life = Lifecycle::default();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        for _ in 0..100 {
            let mut wait = Box::pin(life.reached(Phase::Draining));
            assert!(wait.as_mut().poll(&mut cx).is_pending());
        }
        assert!(life.waiters.borrow().is_empty());
    }

    #[test]
    fn a_connections_waits_share_one_entry_that_goes_with_the_connection_and_still_wake() {
        let life = Rc::new(Lifecycle::default());
        let wakes = std::sync::Arc::new(WakeCount::default());
        let waker = Waker::from(std::sync::Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let guard = life.connection();
        let other = life.connection();
        for _ in 0..100 {
            let mut wait = Box::pin(life.reached_as(Phase::Draining, guard.waiter()));
            assert!(wait.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(life.waiters.borrow().len(), 1, "one entry for the connection, not one per wait");
        let mut wait = Box::pin(life.reached_as(Phase::Draining, guard.waiter()));
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        life.advance(Phase::Draining);
        assert_eq!(wakes.0.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert!(wait.as_mut().poll(&mut cx).is_ready());
        drop(wait);
        let mut late = Box::pin(life.reached_as(Phase::Aborting, guard.waiter()));
        assert!(late.as_mut().poll(&mut cx).is_pending());
        drop(late);
        assert_eq!(life.waiters.borrow().len(), 1);
        drop(guard);
        assert!(life.waiters.borrow().is_empty(), "the connection's entry goes when it closes");
        drop(other);
    }

    #[derive(Default)]
    struct WakeCount(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for WakeCount {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
