//! Keeps a panic in one request from taking the worker (and every connection on it) down: the
//! request's future is polled under `catch_unwind`, and a panic becomes a value the caller answers
//! with a 500. It does not make panics harmless: whatever the request had borrowed is dropped with
//! its future, and the connection is closed after the answer.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A request future that reports a panic as `Err(message)` instead of unwinding into the runtime.
pub struct CatchPanic<F> {
    inner: F,
}

/// Wraps `inner`. Unwind safety is asserted: after a panic the future is never polled again, and the
/// caller only writes an error to the (still owned) client connection and closes it.
pub fn catch_panic<F: Future>(inner: F) -> CatchPanic<F> {
    CatchPanic { inner }
}

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `inner` is structurally pinned: it is never moved out of `self`.
        let inner = unsafe { self.map_unchecked_mut(|s| &mut s.inner) };
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with no message".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F: Future>(future: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build().unwrap().block_on(future)
    }

    #[test]
    fn a_panic_after_an_await_becomes_an_error_and_the_runtime_goes_on() {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let caught = run(async {
            let outcome = catch_panic(async {
                monoio::time::sleep(std::time::Duration::from_millis(1)).await;
                let depth: Vec<u8> = Vec::new();
                if depth.is_empty() {
                    panic!("parser blew up at {}", depth.len());
                }
                7
            })
            .await;
            // The same runtime still runs futures afterwards.
            let after = catch_panic(async { 8 }).await;
            (outcome, after)
        });
        std::panic::set_hook(hook);
        assert_eq!(caught.0, Err("parser blew up at 0".to_string()));
        assert_eq!(caught.1, Ok(8));
    }
}
