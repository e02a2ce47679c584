//! The ejection state machine of one endpoint: healthy -> ejected until T -> probing -> healthy, with
//! an ejection that doubles each time it repeats. Pure: time and statistics come in as arguments.

use std::time::{Duration, Instant};

use super::EndpointState;

/// When to eject and for how long, from `[health]`.
#[derive(Debug, Clone, Copy)]
pub struct EjectionPolicy {
    pub consecutive_failures: u64,
    pub error_rate: f64,
    pub min_requests: u64,
    pub base: Duration,
    pub max: Duration,
    /// A probe not heard back from within this long is handed to another worker.
    pub probe_timeout: Duration,
}

/// Window statistics the decision looks at.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observed {
    pub consecutive_failures: u64,
    pub requests: u64,
    pub failures: u64,
}

/// Why an endpoint was last ejected, shown by `/v1/health` and the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EjectionReason {
    /// This many failures in a row.
    ConsecutiveFailures(u64),
    /// The window's error rate reached the threshold.
    ErrorRate { failures: u64, requests: u64 },
    /// The probe sent after an ejection failed too.
    ProbeFailed,
}

impl EjectionReason {
    pub fn describe(&self) -> String {
        match *self {
            EjectionReason::ConsecutiveFailures(n) => format!("{n} consecutive failures"),
            EjectionReason::ErrorRate { failures, requests } => {
                let percent = (failures * 100).checked_div(requests).unwrap_or(0);
                format!("error rate {percent}% ({failures} of {requests} requests in the window)")
            }
            EjectionReason::ProbeFailed => "the probe after an ejection failed".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Ejection {
    pub state: EndpointState,
    /// Ejections in a row without a clean window in between; drives the doubling.
    pub ejections: u32,
    /// Why the current (or last) ejection happened; cleared when a probe succeeds.
    pub reason: Option<EjectionReason>,
    probing_since: Option<Instant>,
    next_prober: usize,
}

impl Default for Ejection {
    fn default() -> Self {
        Ejection { state: EndpointState::Healthy, ejections: 0, reason: None, probing_since: None, next_prober: 0 }
    }
}

impl Ejection {
    /// Re-evaluates on a tick. `workers` is how many workers could hold the probe.
    pub fn on_tick(&mut self, now: Instant, observed: Observed, policy: &EjectionPolicy, workers: usize) {
        match self.state {
            EndpointState::Healthy => match should_eject(observed, policy) {
                Some(reason) => self.eject(now, policy, reason),
                None => self.forget_if_clean(observed),
            },
            EndpointState::Ejected { until } if now >= until => self.start_probe(now, workers),
            EndpointState::Ejected { .. } => {}
            EndpointState::Probing { .. } => {
                let waited = self.probing_since.map_or(Duration::ZERO, |since| now.duration_since(since));
                if waited >= policy.probe_timeout {
                    self.start_probe(now, workers);
                }
            }
        }
    }

    fn forget_if_clean(&mut self, observed: Observed) {
        if observed.requests > 0 && observed.failures == 0 {
            self.ejections = 0;
        }
    }

    /// The probe's result: success restores the endpoint, failure ejects it for longer.
    pub fn on_probe(&mut self, succeeded: bool, now: Instant, policy: &EjectionPolicy) {
        if !matches!(self.state, EndpointState::Probing { .. }) {
            return;
        }
        if succeeded {
            self.state = EndpointState::Healthy;
            self.probing_since = None;
            self.reason = None;
        } else {
            self.eject(now, policy, EjectionReason::ProbeFailed);
        }
    }

    fn eject(&mut self, now: Instant, policy: &EjectionPolicy, reason: EjectionReason) {
        self.reason = Some(reason);
        self.ejections = self.ejections.saturating_add(1);
        let factor = 1u32.checked_shl(self.ejections - 1).unwrap_or(u32::MAX);
        let cooldown = policy.base.saturating_mul(factor).min(policy.max);
        self.state = EndpointState::Ejected { until: now + cooldown };
        self.probing_since = None;
    }

    fn start_probe(&mut self, now: Instant, workers: usize) {
        let worker = self.next_prober % workers.max(1);
        self.next_prober = self.next_prober.wrapping_add(1);
        self.state = EndpointState::Probing { worker };
        self.probing_since = Some(now);
    }
}

fn should_eject(observed: Observed, policy: &EjectionPolicy) -> Option<EjectionReason> {
    let by_streak = observed.consecutive_failures >= policy.consecutive_failures;
    let by_rate = observed.requests >= policy.min_requests
        && observed.requests > 0
        && observed.failures as f64 / observed.requests as f64 >= policy.error_rate;
    if by_streak {
        Some(EjectionReason::ConsecutiveFailures(observed.consecutive_failures))
    } else if by_rate {
        Some(EjectionReason::ErrorRate { failures: observed.failures, requests: observed.requests })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> EjectionPolicy {
        EjectionPolicy {
            consecutive_failures: 3,
            error_rate: 0.5,
            min_requests: 10,
            base: Duration::from_secs(1),
            max: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(2),
        }
    }

    fn streak(n: u64) -> Observed {
        Observed { consecutive_failures: n, requests: n, failures: n }
    }

    #[test]
    fn a_streak_ejects_then_a_probe_decides() {
        let (p, t0) = (policy(), Instant::now());
        let mut e = Ejection::default();
        e.on_tick(t0, streak(2), &p, 2);
        assert_eq!(e.state, EndpointState::Healthy, "below the streak threshold");
        e.on_tick(t0, streak(3), &p, 2);
        assert_eq!(e.state, EndpointState::Ejected { until: t0 + Duration::from_secs(1) });
        assert_eq!(e.reason, Some(EjectionReason::ConsecutiveFailures(3)));
        e.on_tick(t0 + Duration::from_millis(999), streak(3), &p, 2);
        assert!(matches!(e.state, EndpointState::Ejected { .. }), "still ejected before the deadline");
        e.on_tick(t0 + Duration::from_secs(1), streak(3), &p, 2);
        assert_eq!(e.state, EndpointState::Probing { worker: 0 });
        e.on_probe(true, t0 + Duration::from_secs(1), &p);
        assert_eq!(e.state, EndpointState::Healthy);
        assert_eq!(e.reason, None, "a healthy endpoint has no ejection reason");
    }

    #[test]
    fn repeated_ejections_double_up_to_the_maximum() {
        let (p, t0) = (policy(), Instant::now());
        let mut e = Ejection::default();
        e.on_tick(t0, streak(3), &p, 1);
        let mut expected = [1u64, 2, 4, 5, 5].into_iter();
        let mut now = t0;
        loop {
            let EndpointState::Ejected { until } = e.state else { panic!("ejected expected: {:?}", e.state) };
            assert_eq!(until - now, Duration::from_secs(expected.next().unwrap()));
            now = until;
            e.on_tick(now, streak(3), &p, 1);
            assert_eq!(e.state, EndpointState::Probing { worker: 0 });
            e.on_probe(false, now, &p);
            assert_eq!(e.reason, Some(EjectionReason::ProbeFailed));
            if e.ejections == 5 {
                break;
            }
        }
        assert_eq!(e.state, EndpointState::Ejected { until: now + Duration::from_secs(5) });
    }

    #[test]
    fn an_error_rate_ejects_only_with_enough_requests() {
        let (p, t0) = (policy(), Instant::now());
        let mut e = Ejection::default();
        e.on_tick(t0, Observed { consecutive_failures: 1, requests: 9, failures: 9 }, &p, 1);
        assert_eq!(e.state, EndpointState::Healthy);
        e.on_tick(t0, Observed { consecutive_failures: 1, requests: 10, failures: 5 }, &p, 1);
        assert!(matches!(e.state, EndpointState::Ejected { .. }));
        let reason = e.reason.unwrap();
        assert_eq!(reason, EjectionReason::ErrorRate { failures: 5, requests: 10 });
        assert_eq!(reason.describe(), "error rate 50% (5 of 10 requests in the window)");
    }

    #[test]
    fn a_silent_prober_loses_the_probe_to_the_next_worker() {
        let (p, t0) = (policy(), Instant::now());
        let mut e = Ejection::default();
        e.on_tick(t0, streak(3), &p, 3);
        let after = t0 + Duration::from_secs(1);
        e.on_tick(after, Observed::default(), &p, 3);
        assert_eq!(e.state, EndpointState::Probing { worker: 0 });
        e.on_tick(after + Duration::from_secs(1), Observed::default(), &p, 3);
        assert_eq!(e.state, EndpointState::Probing { worker: 0 }, "within the probe timeout");
        e.on_tick(after + Duration::from_secs(2), Observed::default(), &p, 3);
        assert_eq!(e.state, EndpointState::Probing { worker: 1 });
    }

    #[test]
    fn a_clean_window_forgets_past_ejections() {
        let (p, t0) = (policy(), Instant::now());
        let mut e = Ejection::default();
        e.on_tick(t0, streak(3), &p, 1);
        e.on_tick(t0 + Duration::from_secs(1), Observed::default(), &p, 1);
        e.on_probe(true, t0 + Duration::from_secs(1), &p);
        assert_eq!(e.ejections, 1);
        e.on_tick(t0 + Duration::from_secs(2), Observed { consecutive_failures: 0, requests: 4, failures: 0 }, &p, 1);
        assert_eq!(e.ejections, 0);
    }
}
