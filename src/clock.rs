//! Reading the clocks: wall-clock time as Unix seconds or milliseconds, for what leaves the process
//! or must survive it (`created` fields, token expiry, request signing, log lines); and the
//! monotonic time a proxied call's deadlines and durations are taken from ([`now`]), read at most
//! once per poll of a connection's task ([`read_once_per_poll`]). It does not keep timers
//! (`timer.rs`).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// What [`now`] answers on this thread.
#[derive(Clone, Copy)]
enum PollClock {
    /// No connection task is being polled: every call reads the clock.
    Outside,
    /// Inside a poll that has not asked for the time yet.
    Unread,
    /// Inside a poll, which first asked for the time at this instant.
    Read(Instant),
}

thread_local! {
    static POLL_CLOCK: Cell<PollClock> = const { Cell::new(PollClock::Outside) };
}

/// Monotonic now for a call's deadlines and durations: inside a connection task's poll (see
/// [`read_once_per_poll`]), the time that poll first asked for it; elsewhere the clock itself.
///
/// Why: a proxied request took ~13 clock reads (attempt start and end, deadlines, the pool's idle
/// times, metrics), ~2% of its CPU in `perf` (`__vdso_clock_gettime`), all within a handful of
/// polls that each run for microseconds. Within one poll time stands still: a deadline set there
/// is at most that poll's running time early, and a duration that ends in a later poll is measured
/// from within the poll that began it, which runs when its cause (a read's completion) arrived.
/// Read on first use rather than when the poll begins: most polls (a send's completion, a wake-up
/// that finds nothing to do) never ask, and a read at the start of each was still ~1.9% of the
/// worker's user-space CPU (`perf`, 50 connections).
pub fn now() -> Instant {
    POLL_CLOCK.with(|cell| match cell.get() {
        PollClock::Read(at) => at,
        PollClock::Unread => {
            let at = Instant::now();
            cell.set(PollClock::Read(at));
            at
        }
        PollClock::Outside => Instant::now(),
    })
}

/// [`now`] as the timer wheel's `Instant`, for deadlines that bound a read.
pub fn timer_now() -> monoio::time::Instant {
    monoio::time::Instant::from_std(now())
}

/// The time elapsed since `earlier`, by [`now`] (zero if `earlier` is later).
pub fn since(earlier: Instant) -> std::time::Duration {
    now().saturating_duration_since(earlier)
}

/// `task` with the clock read at most once in each of its polls, for [`now`] inside it.
pub fn read_once_per_poll<F: Future>(task: F) -> OncePerPoll<F> {
    OncePerPoll { task }
}

/// See [`read_once_per_poll`]. A plain wrapper: it adds nothing to the task's size but alignment.
pub struct OncePerPoll<F> {
    task: F,
}

impl<F: Future> Future for OncePerPoll<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _poll = PollScope::begin();
        // SAFETY: `task` is structurally pinned: it is never moved out of `self` nor accessed other
        // than through this pinned projection, and `OncePerPoll` has no Drop impl that could move it.
        let task = unsafe { self.map_unchecked_mut(|this| &mut this.task) };
        task.poll(cx)
    }
}

/// A poll in which the clock is read at most once; puts back what was there (a poll inside
/// another, or none) when dropped, also when the poll unwinds.
struct PollScope {
    before: PollClock,
}

impl PollScope {
    fn begin() -> PollScope {
        PollScope { before: POLL_CLOCK.with(|cell| cell.replace(PollClock::Unread)) }
    }
}

impl Drop for PollScope {
    fn drop(&mut self) {
        POLL_CLOCK.with(|cell| cell.set(self.before));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A future that records `now()` at each poll and is ready at its second.
    struct Probe {
        seen: Vec<Instant>,
    }

    impl Future for Probe {
        type Output = Vec<Instant>;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<Instant>> {
            let (first, second) = (now(), now());
            assert_eq!(first, second, "time stands still within a poll");
            self.seen.push(first);
            if self.seen.len() == 2 {
                return Poll::Ready(std::mem::take(&mut self.seen));
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    /// Spins (bounded) until the clock reads later than `t`, and returns that reading.
    fn after(t: Instant) -> Instant {
        (0..10_000_000).map(|_| Instant::now()).find(|later| *later > t).expect("the clock moves")
    }

    #[test]
    fn each_poll_reads_the_clock_once_and_outside_a_poll_now_is_the_clock() {
        let mut task = std::pin::pin!(read_once_per_poll(Probe { seen: Vec::new() }));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let before = Instant::now();
        assert!(task.as_mut().poll(&mut cx).is_pending());
        // Outside the poll there is no cached time: two reads can differ, and are not before it.
        let outside = now();
        assert!(outside >= before);
        assert!(matches!(POLL_CLOCK.with(Cell::get), PollClock::Outside), "the poll's time is cleared when it ends");
        // The clock visibly moves before the next poll, so that poll must see a later time.
        let moved = after(outside);
        let Poll::Ready(seen) = task.as_mut().poll(&mut cx) else { panic!("ready at the second poll") };
        assert!(seen[0] >= before && seen[0] <= outside);
        assert!(seen[1] >= moved, "the second poll read the clock again");
    }

    #[test]
    fn a_poll_reads_the_clock_when_first_asked_not_when_it_begins() {
        let began = Instant::now();
        let _poll = PollScope::begin();
        // Time passes inside the poll before anything asks for it.
        let asked = after(began);
        let first = now();
        assert!(first >= asked, "read on first use");
        after(first);
        assert_eq!(now(), first, "and then it stands still");
    }

    #[test]
    fn a_poll_inside_another_puts_the_outer_time_back() {
        let _outer = PollScope::begin();
        let outer = now();
        {
            let _inner = PollScope::begin();
            after(outer);
            let inner = now();
            assert!(inner > outer, "the inner poll reads the clock itself");
        }
        assert_eq!(now(), outer);
        assert_eq!(since(outer + std::time::Duration::from_secs(5)), std::time::Duration::ZERO);
    }
}
