//! One worker thread's request schedule: which request a free connection sends next, when it is
//! due, whether it is measured, and when the run stops. Closed loop hands out "now"; open loop
//! hands out fixed slots `t0 + (i·threads + k)/rate`, in order, to whichever connection frees up
//! first, so a request that waited for a connection still counts from its slot. Pure logic on a
//! clock passed in; waiting and sending belong to `worker.rs`.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// One request to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    /// The request's place in this thread's schedule (open loop: its slot).
    pub slot: u64,
    /// Latency counts from here.
    pub scheduled: Instant,
    /// False for warmup requests, whose results are dropped.
    pub measured: bool,
}

/// Open-loop slots of one thread: slot i is global request `i·threads + index`, due
/// `(i·threads + index)/rate` seconds after t0.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slots {
    pub index: usize,
    pub threads: usize,
    pub rate: f64,
}

impl Slots {
    /// Thread `index` of `threads` sharing `rate` requests/s: the threads interleave, so together
    /// they keep one evenly spaced schedule.
    pub fn for_thread(rate: f64, index: usize, threads: usize) -> Slots {
        Slots { index, threads, rate }
    }

    pub fn due(&self, t0: Instant, i: u64) -> Instant {
        // Whole nanoseconds from the global index, so round rates give exact slots.
        let global = i as f64 * self.threads as f64 + self.index as f64;
        t0 + Duration::from_nanos((global * 1e9 / self.rate).round() as u64)
    }

    /// The first slot due at or after `at`. The float estimate is corrected against `due`
    /// itself so that counting and claiming agree exactly.
    fn first_at_or_after(&self, t0: Instant, at: Instant) -> u64 {
        let since = at.saturating_duration_since(t0).as_secs_f64();
        let global = since * self.rate;
        let mut i = ((global - self.index as f64) / self.threads as f64).ceil().max(0.0) as u64;
        // Rounding is off by at most one or two slots; the bounds only guard against surprises.
        for _ in 0..4 {
            if i > 0 && self.due(t0, i - 1) >= at {
                i -= 1;
            }
        }
        for _ in 0..4 {
            if self.due(t0, i) < at {
                i += 1;
            }
        }
        i
    }
}

pub(crate) struct Schedule {
    t0: Instant,
    warm_end: Instant,
    /// No request starts at or after this; `None` when only the request count bounds the run.
    deadline: Option<Instant>,
    /// `None` for closed loop.
    slots: Option<Slots>,
    /// Measured requests this thread may send.
    limit: Option<u64>,
    next_slot: Cell<u64>,
    measured: Cell<u64>,
}

impl Schedule {
    pub fn new(
        t0: Instant,
        warmup: Duration,
        duration: Option<Duration>,
        slots: Option<Slots>,
        limit: Option<u64>,
    ) -> Schedule {
        let warm_end = t0 + warmup;
        let deadline = duration.map(|d| warm_end + d);
        Schedule { t0, warm_end, deadline, slots, limit, next_slot: Cell::new(0), measured: Cell::new(0) }
    }

    /// The next request for a connection that is free at `now`, or `None` when the run is over.
    pub fn claim(&self, now: Instant) -> Option<Ticket> {
        if self.deadline.is_some_and(|d| now >= d) {
            return None;
        }
        let scheduled = match self.slots {
            None => now,
            Some(slots) => slots.due(self.t0, self.next_slot.get()),
        };
        if self.deadline.is_some_and(|d| scheduled >= d) {
            return None;
        }
        let measured = scheduled >= self.warm_end;
        if measured && self.limit.is_some_and(|limit| self.measured.get() >= limit) {
            return None;
        }
        let slot = self.next_slot.get();
        self.next_slot.set(slot + 1);
        self.measured.set(self.measured.get() + u64::from(measured));
        Some(Ticket { slot, scheduled, measured })
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Open loop: measured slots that fell due before the deadline but were never sent because no
    /// connection came free in time. Always 0 in closed loop.
    pub fn unsent(&self) -> u64 {
        let (Some(slots), Some(deadline)) = (self.slots, self.deadline) else {
            return 0;
        };
        let first = slots.first_at_or_after(self.t0, self.warm_end);
        let end = slots.first_at_or_after(self.t0, deadline);
        let due = end.saturating_sub(first);
        let due = self.limit.map_or(due, |limit| due.min(limit));
        due.saturating_sub(self.measured.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn closed_loop_hands_out_now_until_the_deadline() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, 10 * MS, Some(100 * MS), None, None);
        assert_eq!(s.claim(t0 + 5 * MS), Some(Ticket { slot: 0, scheduled: t0 + 5 * MS, measured: false }));
        assert_eq!(s.claim(t0 + 10 * MS), Some(Ticket { slot: 1, scheduled: t0 + 10 * MS, measured: true }));
        assert_eq!(s.claim(t0 + 110 * MS), None);
        assert_eq!(s.unsent(), 0);
    }

    #[test]
    fn request_limit_counts_measured_requests_only() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, 10 * MS, None, None, Some(2));
        assert!(s.claim(t0).is_some_and(|t| !t.measured));
        assert!(s.claim(t0 + 20 * MS).is_some_and(|t| t.measured));
        assert!(s.claim(t0 + 20 * MS).is_some());
        assert_eq!(s.claim(t0 + 20 * MS), None);
    }

    #[test]
    fn open_loop_slots_interleave_threads() {
        let t0 = Instant::now();
        // 100 req/s over 2 threads: thread 1 owns slots 10 ms, 30 ms, 50 ms, ...
        let s = Schedule::new(t0, Duration::ZERO, Some(60 * MS), Some(Slots::for_thread(100.0, 1, 2)), None);
        let due: Vec<_> = (0..4).filter_map(|_| s.claim(t0)).map(|t| t.scheduled - t0).collect();
        assert_eq!(due, vec![10 * MS, 30 * MS, 50 * MS]);
    }

    #[test]
    fn late_claims_keep_their_slot_and_stop_at_the_deadline() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, Duration::ZERO, Some(100 * MS), Some(Slots::for_thread(100.0, 0, 1)), None);
        // A connection frees up 35 ms in: the request due at 0 ms is sent now, still timed from 0.
        assert_eq!(s.claim(t0 + 35 * MS).map(|t| t.scheduled), Some(t0));
        assert_eq!(s.claim(t0 + 35 * MS).map(|t| t.scheduled), Some(t0 + 10 * MS));
        // Past the deadline nothing more is sent; the 8 slots left are reported.
        assert_eq!(s.claim(t0 + 100 * MS), None);
        assert_eq!(s.unsent(), 8);
    }

    #[test]
    fn warmup_slots_are_not_counted_as_unsent() {
        let t0 = Instant::now();
        let s = Schedule::new(t0, 50 * MS, Some(50 * MS), Some(Slots::for_thread(100.0, 0, 1)), Some(3));
        assert!(s.claim(t0).is_some_and(|t| !t.measured));
        // 5 measured slots (50..90 ms), capped at the limit of 3.
        assert_eq!(s.unsent(), 3);
    }
}
