//! A one-shot stop signal that any thread can raise and any worker can await.
//!
//! The mutex here is touched only when a worker starts waiting and when the signal is raised, never on
//! the request path.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

#[derive(Default)]
pub struct StopSignal {
    stopped: AtomicBool,
    /// How long workers let requests in flight finish after the signal.
    grace_ms: AtomicU64,
    wakers: Mutex<Vec<Waker>>,
}

impl StopSignal {
    pub fn new() -> StopSignal {
        StopSignal::default()
    }

    /// Raises the signal with a grace period for requests in flight.
    pub fn stop_with_grace(&self, grace: Duration) {
        self.grace_ms.store(grace.as_millis() as u64, Ordering::SeqCst);
        self.stop();
    }

    pub fn grace(&self) -> Duration {
        Duration::from_millis(self.grace_ms.load(Ordering::SeqCst))
    }

    /// Raises the signal and wakes every waiting worker. Idempotent.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|e| e.into_inner()));
        for waker in wakers {
            waker.wake();
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Resolves once `stop` was called.
    pub fn wait(&self) -> StopWait<'_> {
        StopWait { signal: self }
    }
}

pub struct StopWait<'a> {
    signal: &'a StopSignal,
}

impl Future for StopWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.is_stopped() {
            return Poll::Ready(());
        }
        let mut wakers = self.signal.wakers.lock().unwrap_or_else(|e| e.into_inner());
        // Checked again under the lock: `stop` may have run between the first check and the lock.
        if self.signal.is_stopped() {
            return Poll::Ready(());
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
