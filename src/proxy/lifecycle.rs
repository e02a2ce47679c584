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
    /// Keyed so a waiter dropped before it fired (an idle connection that got its next request)
    /// removes itself: otherwise every keep-alive cycle would leave a waker behind. foldhash
    /// (hashbrown's), not SipHash: every idle wait between two requests inserts and removes here.
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

    /// Counts a connection as open until the guard drops.
    pub fn connection(self: &Rc<Self>) -> ConnectionGuard {
        self.open_connections.set(self.open_connections.get() + 1);
        ConnectionGuard { lifecycle: Rc::clone(self) }
    }

    /// Resolves once the phase is at least `phase`.
    pub fn reached(&self, phase: Phase) -> Wait<'_> {
        Wait { lifecycle: self, until: Until::Phase(phase), key: None }
    }

    /// Resolves once no connection is open.
    pub fn all_closed(&self) -> Wait<'_> {
        Wait { lifecycle: self, until: Until::NoConnections, key: None }
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
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
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
                let key = self.lifecycle.next_waiter.get();
                self.lifecycle.next_waiter.set(key + 1);
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
        if let Some(key) = self.key {
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
}
