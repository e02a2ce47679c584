//! The retry budget: retries are at most a fraction of requests, so an outage cannot multiply the
//! load on providers. A token bucket per worker: each request deposits `ratio` tokens, each retry
//! spends one, and `min_per_sec` tokens trickle in so quiet periods can still retry. The bucket
//! starts with one second's trickle, so the first failures after a start can fail over.

use std::cell::Cell;
use std::time::Instant;

/// Tokens never accumulate past this: a long healthy period must not fund a retry storm.
const MAX_TOKENS: f64 = 10.0;

pub struct RetryBudget {
    ratio: f64,
    min_per_sec: f64,
    tokens: Cell<f64>,
    refilled_at: Cell<Instant>,
}

impl RetryBudget {
    pub fn new(ratio: f64, min_per_sec: f64, now: Instant) -> RetryBudget {
        RetryBudget { ratio, min_per_sec, tokens: Cell::new(min_per_sec.min(MAX_TOKENS)), refilled_at: Cell::new(now) }
    }

    /// A client request arrived.
    pub fn deposit(&self) {
        self.tokens.set((self.tokens.get() + self.ratio).min(MAX_TOKENS));
    }

    /// Takes one token for a retry if there is one.
    pub fn try_spend(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled_at.get()).as_secs_f64();
        self.refilled_at.set(now);
        let tokens = (self.tokens.get() + elapsed * self.min_per_sec).min(MAX_TOKENS);
        if tokens >= 1.0 {
            self.tokens.set(tokens - 1.0);
            true
        } else {
            self.tokens.set(tokens);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn retries_are_a_fraction_of_requests() {
        let t0 = Instant::now();
        let budget = RetryBudget::new(0.2, 0.0, t0);
        let mut retries = 0;
        for _ in 0..100 {
            budget.deposit();
            // Every request would like to retry twice.
            retries += u32::from(budget.try_spend(t0)) + u32::from(budget.try_spend(t0));
        }
        assert_eq!(retries, 20);
    }

    #[test]
    fn a_trickle_allows_retries_when_quiet_and_tokens_are_capped() {
        let t0 = Instant::now();
        let budget = RetryBudget::new(0.2, 2.0, t0);
        assert!(budget.try_spend(t0), "one second's trickle to start with");
        assert!(budget.try_spend(t0));
        assert!(!budget.try_spend(t0));
        assert!(budget.try_spend(t0 + Duration::from_millis(500)));
        assert!(!budget.try_spend(t0 + Duration::from_millis(500)));
        let later = t0 + Duration::from_secs(3600);
        let spent = (0..20).filter(|_| budget.try_spend(later)).count();
        assert_eq!(spent, 10, "an idle hour funds at most MAX_TOKENS retries");
    }
}
