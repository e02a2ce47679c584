//! One process's counters for one key: requests and tokens this minute, spend this day, month and in
//! total, requests in flight. Shared by every worker thread without a lock.
//!
//! Why atomics and not per-core shards: a limit is global, so per-core counters would need each core
//! to hold an allotment and trade it back and forth to be exact. One `AtomicU64` per counter, updated
//! by compare-and-swap, is exact and costs one cache-line transfer when two cores hit the same key
//! at once (tens of nanoseconds); different keys never share a line's traffic. A counter packs its
//! window (minute, day or month number, 24 bits) with its value (40 bits), so a new window starts
//! from zero in the same CAS that counts the first request in it, with no reset task.
//!
//! Owns counting only: which limits apply is the caller's (`Limits`), and nothing here does I/O.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::denial::{Denial, DenialReason, Usage};
use super::policy::Limits;
use super::windows::Windows;

const VALUE_BITS: u32 = 40;
const VALUE_MASK: u64 = (1 << VALUE_BITS) - 1;
const WINDOW_MASK: u64 = (1 << (64 - VALUE_BITS)) - 1;

/// A value that belongs to one window and reads as zero in any other.
#[derive(Debug, Default)]
struct WindowCounter(AtomicU64);

impl WindowCounter {
    fn pack(window: u64, value: u64) -> u64 {
        ((window & WINDOW_MASK) << VALUE_BITS) | value.min(VALUE_MASK)
    }

    fn value_of(packed: u64, window: u64) -> Option<u64> {
        (packed >> VALUE_BITS == window & WINDOW_MASK).then_some(packed & VALUE_MASK)
    }

    fn value_in(&self, window: u64) -> u64 {
        Self::value_of(self.0.load(Ordering::Acquire), window).unwrap_or(0)
    }

    /// Adds `amount` in `window` unless that would pass `limit`; on refusal returns the current value.
    fn try_add(&self, window: u64, amount: u64, limit: Option<u64>) -> Result<(), u64> {
        let mut current = self.0.load(Ordering::Acquire);
        loop {
            let value = Self::value_of(current, window).unwrap_or(0);
            let next = value.saturating_add(amount);
            if limit.is_some_and(|limit| next > limit) {
                return Err(value);
            }
            match self.0.compare_exchange_weak(current, Self::pack(window, next), Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }

    /// Corrects a reservation made in `reserved` by `delta`. If that window has passed, only an
    /// increase is charged, to the `current` window: what was reserved in it left with it.
    fn adjust(&self, reserved: u64, current: u64, delta: i64) {
        let mut packed = self.0.load(Ordering::Acquire);
        loop {
            let Some(value) = Self::value_of(packed, reserved) else {
                if delta > 0 {
                    let _ = self.try_add(current, delta as u64, None);
                }
                return;
            };
            let next = value.saturating_add_signed(delta);
            match self.0.compare_exchange_weak(packed, Self::pack(reserved, next), Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(actual) => packed = actual,
            }
        }
    }

    /// (window, value) as stored: the window is the low 24 bits of its number.
    fn raw(&self) -> (u64, u64) {
        let packed = self.0.load(Ordering::Acquire);
        (packed >> VALUE_BITS, packed & VALUE_MASK)
    }

    fn set(&self, window: u64, value: u64) {
        self.0.store(Self::pack(window, value), Ordering::Release);
    }
}

/// A plain counter with an optional ceiling, for totals and requests in flight.
fn try_add_total(counter: &AtomicU64, amount: u64, limit: Option<u64>) -> Result<(), u64> {
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |value| {
            let next = value.saturating_add(amount);
            if limit.is_some_and(|limit| next > limit) { None } else { Some(next) }
        })
        .map(|_| ())
}

fn add_signed(counter: &AtomicU64, delta: i64) {
    let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some(v.saturating_add_signed(delta)));
}

/// How far a reservation got, in the order `reserve` takes things.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Nothing,
    Day,
    Month,
    Total,
    InFlight,
    Requests,
}

/// Every counter of one key in one process.
#[derive(Debug, Default)]
pub struct KeyCounters {
    requests_per_minute: WindowCounter,
    tokens_per_minute: WindowCounter,
    spend_per_day: WindowCounter,
    spend_per_month: WindowCounter,
    spend_total: AtomicU64,
    in_flight: AtomicU64,
}

/// Counters as written to the state file and shown in stats. Spend includes reservations in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CounterSnapshot {
    pub minute: u64,
    pub requests_this_minute: u64,
    pub tokens_this_minute: u64,
    pub day: u64,
    pub spend_micros_today: u64,
    pub month: u64,
    pub spend_micros_this_month: u64,
    pub spend_micros_total: u64,
    pub in_flight: u64,
}

/// Counters as the state file keeps them: each with the window it belongs to, whatever the time
/// when it is written or read, so a value is only ever restored into its own window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SavedCounters {
    pub requests_per_minute: (u64, u64),
    pub tokens_per_minute: (u64, u64),
    pub spend_per_day: (u64, u64),
    pub spend_per_month: (u64, u64),
    pub spend_total: u64,
}

impl KeyCounters {
    pub fn saved(&self) -> SavedCounters {
        SavedCounters {
            requests_per_minute: self.requests_per_minute.raw(),
            tokens_per_minute: self.tokens_per_minute.raw(),
            spend_per_day: self.spend_per_day.raw(),
            spend_per_month: self.spend_per_month.raw(),
            spend_total: self.spend_total.load(Ordering::Acquire),
        }
    }

    /// Counters as a state file left them; requests in flight then are not restored (they ended with
    /// the process that ran them).
    pub fn from_saved(saved: &SavedCounters) -> KeyCounters {
        let counters = KeyCounters::default();
        let set = |counter: &WindowCounter, (window, value): (u64, u64)| counter.set(window, value);
        set(&counters.requests_per_minute, saved.requests_per_minute);
        set(&counters.tokens_per_minute, saved.tokens_per_minute);
        set(&counters.spend_per_day, saved.spend_per_day);
        set(&counters.spend_per_month, saved.spend_per_month);
        counters.spend_total.store(saved.spend_total, Ordering::Release);
        counters
    }

    /// Reserves one request, `estimate.tokens` and `estimate.cost_micros` in every window, or
    /// nothing: a refusal undoes what was already taken. Budgets are checked first, so a key whose
    /// money is gone hears 403 rather than an invitation to retry.
    pub fn reserve(&self, limits: &Limits, w: &Windows, estimate: Usage) -> Result<(), Denial> {
        let cost = estimate.cost_micros;
        let refused = |taken: Stage, denial: Denial| {
            self.undo(taken, w, estimate);
            Err(denial)
        };
        if let Err(spent) = self.spend_per_day.try_add(w.day, cost, limits.budget_micros_per_day) {
            let budget = limits.budget_micros_per_day;
            return refused(Stage::Nothing, budget_denial(DenialReason::BudgetPerDay, "daily", spent, cost, budget));
        }
        if let Err(spent) = self.spend_per_month.try_add(w.month, cost, limits.budget_micros_per_month) {
            let budget = limits.budget_micros_per_month;
            let denial = budget_denial(DenialReason::BudgetPerMonth, "monthly", spent, cost, budget);
            return refused(Stage::Day, denial);
        }
        if let Err(spent) = try_add_total(&self.spend_total, cost, limits.budget_micros_total) {
            let denial = budget_denial(DenialReason::BudgetTotal, "total", spent, cost, limits.budget_micros_total);
            return refused(Stage::Month, denial);
        }
        if try_add_total(&self.in_flight, 1, limits.max_concurrent).is_err() {
            let max = limits.max_concurrent.unwrap_or(0);
            let denial = Denial::new(DenialReason::Concurrency, Some(1), format!("{max} requests already in flight"));
            return refused(Stage::Total, denial);
        }
        if self.requests_per_minute.try_add(w.minute, 1, limits.rpm).is_err() {
            let message = format!("rate limit of {} requests per minute reached", limits.rpm.unwrap_or(0));
            let denial = Denial::new(DenialReason::RequestsPerMinute, Some(w.seconds_to_next_minute()), message);
            return refused(Stage::InFlight, denial);
        }
        if let Err(used) = self.tokens_per_minute.try_add(w.minute, estimate.tokens, limits.tpm) {
            let tpm = limits.tpm.unwrap_or(0);
            let message =
                format!("rate limit of {tpm} tokens per minute: {used} used, {} more needed", estimate.tokens);
            let denial = Denial::new(DenialReason::TokensPerMinute, Some(w.seconds_to_next_minute()), message);
            return refused(Stage::Requests, denial);
        }
        Ok(())
    }

    /// Takes back what a refused reservation took, up to and including `taken`.
    fn undo(&self, taken: Stage, w: &Windows, estimate: Usage) {
        let cost = estimate.cost_micros as i64;
        if taken >= Stage::Requests {
            self.requests_per_minute.adjust(w.minute, w.minute, -1);
        }
        if taken >= Stage::InFlight {
            add_signed(&self.in_flight, -1);
        }
        if taken >= Stage::Total {
            add_signed(&self.spend_total, -cost);
        }
        if taken >= Stage::Month {
            self.spend_per_month.adjust(w.month, w.month, -cost);
        }
        if taken >= Stage::Day {
            self.spend_per_day.adjust(w.day, w.day, -cost);
        }
    }

    /// Replaces a reservation's estimate with what the request really used.
    pub fn settle(&self, reserved: &Windows, now: &Windows, estimate: Usage, actual: Usage) {
        let tokens = actual.tokens as i64 - estimate.tokens as i64;
        let cost = actual.cost_micros as i64 - estimate.cost_micros as i64;
        self.tokens_per_minute.adjust(reserved.minute, now.minute, tokens);
        self.spend_per_day.adjust(reserved.day, now.day, cost);
        self.spend_per_month.adjust(reserved.month, now.month, cost);
        add_signed(&self.spend_total, cost);
        add_signed(&self.in_flight, -1);
    }

    /// Gives a failed request's tokens, spend and concurrency slot back. It still counts as a request
    /// this minute: RPM limits attempts, and a failing client retrying in a loop is what it is for.
    pub fn release(&self, reserved: &Windows, now: &Windows, estimate: Usage) {
        self.settle(reserved, now, estimate, Usage::default());
    }

    /// Adds spend and tokens that were not reserved here (spend settled on another path).
    pub fn charge(&self, now: &Windows, usage: Usage) {
        let _ = self.tokens_per_minute.try_add(now.minute, usage.tokens, None);
        let _ = self.spend_per_day.try_add(now.day, usage.cost_micros, None);
        let _ = self.spend_per_month.try_add(now.month, usage.cost_micros, None);
        add_signed(&self.spend_total, usage.cost_micros as i64);
    }

    pub fn snapshot(&self, w: &Windows) -> CounterSnapshot {
        CounterSnapshot {
            minute: w.minute,
            requests_this_minute: self.requests_per_minute.value_in(w.minute),
            tokens_this_minute: self.tokens_per_minute.value_in(w.minute),
            day: w.day,
            spend_micros_today: self.spend_per_day.value_in(w.day),
            month: w.month,
            spend_micros_this_month: self.spend_per_month.value_in(w.month),
            spend_micros_total: self.spend_total.load(Ordering::Acquire),
            in_flight: self.in_flight.load(Ordering::Acquire),
        }
    }

    /// Forgets spend and tokens counted locally (after they were handed to Redis), keeping requests
    /// in flight.
    pub fn clear_usage(&self) {
        let in_flight = self.in_flight.load(Ordering::Acquire);
        self.requests_per_minute.set(0, 0);
        self.tokens_per_minute.set(0, 0);
        self.spend_per_day.set(0, 0);
        self.spend_per_month.set(0, 0);
        self.spend_total.store(0, Ordering::Release);
        self.in_flight.store(in_flight, Ordering::Release);
    }
}

fn budget_denial(reason: DenialReason, which: &str, spent: u64, cost: u64, budget: Option<u64>) -> Denial {
    let budget = budget.unwrap_or(0);
    let message = if spent >= budget {
        format!("the key's {which} budget of {budget} micro-dollars is spent")
    } else {
        format!(
            "this request (up to {cost} micro-dollars) would exceed the key's {which} budget: {} of {budget} micro-dollars left",
            budget - spent
        )
    };
    Denial::new(reason, None, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const MINUTE: u64 = 60_000;

    fn usage(tokens: u64, cost_micros: u64) -> Usage {
        Usage { tokens, cost_micros }
    }

    #[test]
    fn a_request_that_would_overshoot_is_refused_and_nothing_is_taken() {
        let c = KeyCounters::default();
        let limits = Limits { budget_micros_total: Some(100), tpm: Some(50), ..Default::default() };
        let w = Windows::at(10 * MINUTE);
        c.reserve(&limits, &w, usage(10, 60)).unwrap();
        let denial = c.reserve(&limits, &w, usage(10, 60)).unwrap_err();
        assert_eq!((denial.reason, denial.status), (DenialReason::BudgetTotal, 403));
        assert!(denial.message.contains("40 of 100"), "{}", denial.message);
        let denial = c.reserve(&limits, &w, usage(45, 10)).unwrap_err();
        assert_eq!(
            (denial.reason, denial.status, denial.retry_after_s),
            (DenialReason::TokensPerMinute, 429, Some(60))
        );
        let s = c.snapshot(&w);
        assert_eq!((s.spend_micros_total, s.tokens_this_minute, s.requests_this_minute, s.in_flight), (60, 10, 1, 1));
    }

    #[test]
    fn settling_replaces_the_estimate_and_release_returns_it() {
        let c = KeyCounters::default();
        let limits = Limits::default();
        let w = Windows::at(10 * MINUTE);
        c.reserve(&limits, &w, usage(100, 500)).unwrap();
        c.reserve(&limits, &w, usage(100, 500)).unwrap();
        c.settle(&w, &w, usage(100, 500), usage(30, 123));
        c.release(&w, &w, usage(100, 500));
        let s = c.snapshot(&w);
        assert_eq!((s.spend_micros_total, s.spend_micros_today, s.tokens_this_minute, s.in_flight), (123, 123, 30, 0));
        assert_eq!(s.requests_this_minute, 2, "a released request still counts against RPM");
    }

    #[test]
    fn a_new_minute_starts_from_zero_and_late_settlements_charge_only_increases() {
        let c = KeyCounters::default();
        let limits = Limits { rpm: Some(2), ..Default::default() };
        let first = Windows::at(10 * MINUTE);
        c.reserve(&limits, &first, usage(10, 0)).unwrap();
        c.reserve(&limits, &first, usage(10, 0)).unwrap();
        assert_eq!(c.reserve(&limits, &first, usage(10, 0)).unwrap_err().reason, DenialReason::RequestsPerMinute);
        let next = Windows::at(11 * MINUTE + 5);
        c.reserve(&limits, &next, usage(10, 0)).unwrap();
        c.settle(&first, &next, usage(10, 0), usage(25, 0));
        c.settle(&first, &next, usage(10, 0), usage(1, 0));
        assert_eq!(c.snapshot(&next).tokens_this_minute, 10 + 15);
    }

    #[test]
    fn concurrent_admits_never_pass_a_budget() {
        let c = Arc::new(KeyCounters::default());
        let limits = Limits { budget_micros_per_day: Some(1_000), max_concurrent: Some(1_000), ..Default::default() };
        let w = Windows::at(0);
        let admitted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let c = Arc::clone(&c);
                    s.spawn(move || (0..1_000).filter(|_| c.reserve(&limits, &w, usage(0, 3)).is_ok()).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(admitted, 333);
        assert_eq!(c.snapshot(&w).spend_micros_today, 999);
    }

    #[test]
    fn saved_counters_restore_into_their_own_windows_only() {
        let c = KeyCounters::default();
        let w = Windows::at(1_800_000_000_000 + 5 * MINUTE);
        c.reserve(&Limits::default(), &w, usage(7, 11)).unwrap();
        let restored = KeyCounters::from_saved(&c.saved());
        assert_eq!(restored.snapshot(&w), CounterSnapshot { in_flight: 0, ..c.snapshot(&w) });
        let next_day = Windows::at(w.now_ms + 86_400_000);
        let later = restored.snapshot(&next_day);
        assert_eq!((later.spend_micros_today, later.spend_micros_this_month, later.spend_micros_total), (0, 11, 11));
    }
}
