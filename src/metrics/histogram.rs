//! Classic Prometheus histograms: fixed bucket bounds, per-bucket counts and an exact sum, so the
//! series of many workers and many instances add up bucket by bucket (summaries cannot be added).
//!
//! Owns the bucket layouts and the text rendering of one histogram series. It does not own labels or
//! which calls are measured (see `metrics::WorkerMetrics`), nor percentiles for the dashboard (HDR
//! histograms in `metrics::timeline`).

use std::fmt::Write;

/// Upper bounds (µs) for request duration and time to first byte. LLM calls range from a
/// millisecond (a cached or refused request) to minutes (a long generation), so the bounds go from
/// 1 ms to 5 min in roughly 1-2.5-5 steps: fine where interactive latency matters, coarse in the tail.
pub const LATENCY_BOUNDS_US: &[u64] = &[
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    20_000_000,
    30_000_000,
    60_000_000,
    120_000_000,
    300_000_000,
];

/// Upper bounds (µs) for the gateway's own overhead: tens of microseconds normally, up to 100 ms
/// when a core is saturated.
pub const OVERHEAD_BOUNDS_US: &[u64] =
    &[10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000];

/// One histogram series: a count per bucket (not cumulative; the last one is `+Inf`) and the sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buckets {
    bounds: &'static [u64],
    counts: Vec<u64>,
    sum_us: u64,
}

impl Buckets {
    pub fn new(bounds: &'static [u64]) -> Buckets {
        Buckets { bounds, counts: vec![0; bounds.len() + 1], sum_us: 0 }
    }

    /// Counts one observation of `micros` in the first bucket whose bound is at least it.
    pub fn observe(&mut self, micros: u64) {
        let slot = self.bounds.partition_point(|&bound| bound < micros);
        self.counts[slot] += 1;
        self.sum_us += micros;
    }

    /// Adds another series with the same bounds (another worker's delta).
    pub fn merge(&mut self, other: &Buckets) {
        debug_assert_eq!(self.bounds, other.bounds, "only histograms with the same bounds add up");
        for (total, add) in self.counts.iter_mut().zip(&other.counts) {
            *total += add;
        }
        self.sum_us += other.sum_us;
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Writes the `_bucket` (cumulative, `le` last among the labels), `_sum` and `_count` lines.
    /// `labels` is the rendered label list without braces (already escaped), possibly empty.
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count;
            let le = self.bounds.get(i).map_or_else(|| "+Inf".to_string(), |&us| seconds_label(us));
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}");
        }
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", seconds(self.sum_us));
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// Microseconds as decimal seconds with six places (exact: no float rounding).
pub fn seconds(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// A bucket bound as the shortest decimal: `0.0025`, `1`, `300`. The same bound always renders the
/// same way, which aggregation by `le` relies on.
fn seconds_label(micros: u64) -> String {
    let full = seconds(micros);
    full.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observation_lands_in_the_first_bucket_at_least_its_size() {
        let mut h = Buckets::new(&[10, 100]);
        for micros in [0, 10, 11, 100, 101, 5_000] {
            h.observe(micros);
        }
        assert_eq!(h.counts, vec![2, 2, 2]);
        assert_eq!(h.sum_us, 5_222);
    }

    #[test]
    fn renders_cumulative_buckets_with_short_bounds() {
        let mut h = Buckets::new(&[2_500, 1_000_000]);
        h.observe(2_000);
        h.observe(3_000_000);
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "a=\"b\"");
        let expected = "x_seconds_bucket{a=\"b\",le=\"0.0025\"} 1\nx_seconds_bucket{a=\"b\",le=\"1\"} 1\n\
                        x_seconds_bucket{a=\"b\",le=\"+Inf\"} 2\nx_seconds_sum{a=\"b\"} 3.002000\nx_seconds_count{a=\"b\"} 2\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn merged_series_equal_one_series_of_all_observations() {
        let (mut a, mut b, mut all) =
            (Buckets::new(LATENCY_BOUNDS_US), Buckets::new(LATENCY_BOUNDS_US), Buckets::new(LATENCY_BOUNDS_US));
        for (i, micros) in [1, 900, 40_000, 7_000_000, 400_000_000, 250_000].into_iter().enumerate() {
            if i % 2 == 0 {
                a.observe(micros)
            } else {
                b.observe(micros)
            }
            all.observe(micros);
        }
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(a.count(), 6);
    }

    #[test]
    fn bounds_are_increasing_and_render_distinctly() {
        for bounds in [LATENCY_BOUNDS_US, OVERHEAD_BOUNDS_US] {
            assert!(bounds.windows(2).all(|w| w[0] < w[1]));
            let labels: std::collections::BTreeSet<String> = bounds.iter().map(|&b| seconds_label(b)).collect();
            assert_eq!(labels.len(), bounds.len());
        }
        assert_eq!(seconds_label(10), "0.00001");
        assert_eq!(seconds_label(300_000_000), "300");
    }
}
