//! Stopping the mock: a one-shot stop signal that the dropping thread triggers and every task on
//! every runtime thread can await, and a per-thread count of live connections so a worker returns
//! only once each of its connections has dropped its socket. Owns no sockets itself.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

/// Set once by `MockProvider`'s drop; wakes every registered waiter. Wakers come from monoio
/// tasks on other threads; monoio's `sync` feature routes such wakes back to their runtime.
#[derive(Default)]
pub(crate) struct Stop {
    stopped: AtomicBool,
    waiters: Mutex<HashMap<u64, Waker>>,
    next_id: AtomicU64,
}

impl Stop {
    pub(crate) fn trigger(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let waiters: Vec<Waker> = self.lock().drain().map(|(_, w)| w).collect();
        waiters.into_iter().for_each(Waker::wake);
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waker>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait(self: &Arc<Self>) -> StopWait {
        StopWait { stop: self.clone(), id: self.next_id.fetch_add(1, Ordering::Relaxed), registered: None }
    }
}

/// Resolves once the stop signal is set.
struct StopWait {
    stop: Arc<Stop>,
    id: u64,
    // Our own copy of the registered waker: re-registering (a lock) only when it changed keeps
    // the per-poll cost of a busy connection at one atomic load.
    registered: Option<Waker>,
}

impl Future for StopWait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.stop.is_stopped() {
            return Poll::Ready(());
        }
        if !self.registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.stop.lock().insert(self.id, cx.waker().clone());
            self.registered = Some(cx.waker().clone());
            // `trigger` may have drained the map just before our insert: look again.
            if self.stop.is_stopped() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }
}

impl Drop for StopWait {
    fn drop(&mut self) {
        if self.registered.is_some() {
            self.stop.lock().remove(&self.id);
        }
    }
}

/// Runs `fut` until it finishes (`Some`) or the stop signal is set (`None`; `fut` is dropped,
/// which cancels its pending I/O and closes what it owns).
pub(crate) async fn until_stopped<F: Future>(stop: &Arc<Stop>, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut wait = pin!(stop.wait());
    std::future::poll_fn(|cx| {
        if wait.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        fut.as_mut().poll(cx).map(Some)
    })
    .await
}

/// Live connections of one runtime thread.
#[derive(Default)]
pub(crate) struct LiveConns {
    count: Cell<usize>,
    idle_waker: RefCell<Option<Waker>>,
}

impl LiveConns {
    /// Counts a connection until the returned guard is dropped.
    pub(crate) fn enter(self: &Rc<Self>) -> LiveGuard {
        self.count.set(self.count.get() + 1);
        LiveGuard(self.clone())
    }

    /// Resolves when no connection is live.
    pub(crate) async fn all_closed(&self) {
        std::future::poll_fn(|cx| {
            if self.count.get() == 0 {
                return Poll::Ready(());
            }
            *self.idle_waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

pub(crate) struct LiveGuard(Rc<LiveConns>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let live = &self.0;
        live.count.set(live.count.get() - 1);
        if live.count.get() == 0
            && let Some(w) = live.idle_waker.borrow_mut().take()
        {
            w.wake();
        }
    }
}
