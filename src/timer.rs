//! A reusable timeout for the per-connection futures. Owns nothing but one boxed monoio `Sleep`;
//! what a deadline means is the caller's.
//!
//! Why not `monoio::time::timeout`: its `Sleep` is 640 bytes aligned to 128 (cache-padded timer
//! state), and held inline it grows every async state machine above it and forces each of them to
//! 128-byte alignment, so a connection's task was 10.7 KiB, most of the memory of an open stream.
//! Boxed once per owner (a client connection, an upstream connection) and reset for each wait, a
//! timer costs one allocation per owner, none per wait or per event, and 8 bytes in the future.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use monoio::time::{Duration, Instant, Sleep};

/// The wait ran past its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

pub struct Timer {
    sleep: Pin<Box<Sleep>>,
}

impl Default for Timer {
    fn default() -> Timer {
        Timer::new()
    }
}

impl Timer {
    /// Needs a runtime with its timer enabled, like any monoio sleep.
    pub fn new() -> Timer {
        // Not registered with the timer wheel until first polled; the first wait resets it anyway.
        Timer { sleep: Box::pin(monoio::time::sleep_until(Instant::now())) }
    }

    /// Runs `future` until `deadline`; `Err(Elapsed)` when the deadline came first (the future is
    /// then dropped). A future that is ready when first polled wins even at a passed deadline.
    pub fn timeout_at<F: Future>(&mut self, deadline: Instant, future: F) -> Timeout<'_, F> {
        self.sleep.as_mut().reset(deadline);
        Timeout { sleep: self.sleep.as_mut(), future }
    }

    /// Runs `future` for at most `duration` from now.
    pub fn timeout<F: Future>(&mut self, duration: Duration, future: F) -> Timeout<'_, F> {
        self.timeout_at(Instant::now() + duration, future)
    }

    /// Waits until `deadline`.
    pub async fn sleep_until(&mut self, deadline: Instant) {
        self.sleep.as_mut().reset(deadline);
        self.sleep.as_mut().await;
    }
}

/// A future bounded by a timer. A named type rather than an `async fn`: an async fn would keep its
/// argument and its pinned copy side by side, doubling the wrapped future's size at every use.
pub struct Timeout<'a, F> {
    sleep: Pin<&'a mut Sleep>,
    future: F,
}

impl<F: Future> Future for Timeout<'_, F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is pinned structurally: it is never moved out of `self` (no method hands
        // it out, and `Timeout` has no `Drop` that could), so pinning `self` pins it. `sleep` is a
        // `Pin<&mut>` already and is not structurally pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        if let Poll::Ready(output) = future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        this.sleep.as_mut().poll(cx).map(|()| Err(Elapsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: Future>(future: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build().unwrap().block_on(future)
    }

    #[test]
    fn a_future_that_finishes_first_wins() {
        let answer = run(async { Timer::new().timeout(Duration::from_secs(60), async { 7 }).await });
        assert_eq!(answer, Ok(7));
    }

    #[test]
    fn a_deadline_that_comes_first_ends_the_wait() {
        let answer = run(async {
            let mut timer = Timer::new();
            timer.timeout(Duration::from_millis(5), std::future::pending::<()>()).await
        });
        assert_eq!(answer, Err(Elapsed));
    }

    #[test]
    fn one_timer_serves_successive_waits_after_it_fired() {
        let answers = run(async {
            let mut timer = Timer::new();
            let first = timer.timeout(Duration::from_millis(1), std::future::pending::<u8>()).await;
            let second = timer.timeout(Duration::from_secs(60), async { 2u8 }).await;
            let third = timer.timeout(Duration::from_millis(1), std::future::pending::<u8>()).await;
            timer.sleep_until(Instant::now() + Duration::from_millis(1)).await;
            (first, second, third)
        });
        assert_eq!(answers, (Err(Elapsed), Ok(2), Err(Elapsed)));
    }

    #[test]
    fn a_timed_future_does_not_carry_the_sleep_inline() {
        let (align, size) = run(async {
            let mut timer = Timer::default();
            let wait = timer.timeout(Duration::from_secs(1), async {});
            (std::mem::align_of_val(&wait), std::mem::size_of_val(&wait))
        });
        // The wait holds the timer by reference, not the 640-byte, 128-aligned `Sleep`: a pointer
        // and the (empty) future.
        assert!(align <= 16, "aligned to {align}");
        assert!(size <= 16, "{size} bytes");
    }
}
