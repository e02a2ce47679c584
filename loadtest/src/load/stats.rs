//! What one worker thread measured: HDR histograms in microseconds (3 significant digits) and
//! counters, merged across threads at the end. Recording only; turning the numbers into a report
//! is `report.rs`'s job, deciding what happened to a request is `worker.rs`'s.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Longest recordable latency: an hour, far beyond any timeout; larger values saturate.
const MAX_MICROS: u64 = 3_600_000_000;

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Connecting failed or timed out.
    Connect,
    /// The response did not complete within the request timeout.
    Timeout,
    /// A write or read failed, or the peer closed before the response was complete.
    Io,
    /// The response was not valid HTTP/1.1 (or an SSE line was absurdly long).
    Protocol,
    /// A complete response with a non-2xx status.
    Status(u16),
    /// A stream that ended without `[DONE]`.
    StreamIncomplete,
    /// A stream with an error event.
    StreamError,
}

/// Failures by kind. Field names are the JSON report's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ErrorCounts {
    pub total: u64,
    pub connect: u64,
    pub timeout: u64,
    pub io: u64,
    pub protocol: u64,
    pub status_4xx: u64,
    pub status_5xx: u64,
    /// 1xx (never expected) and 3xx responses.
    pub status_other: u64,
    pub stream_incomplete: u64,
    pub stream_error: u64,
}

impl ErrorCounts {
    fn add(&mut self, failure: Failure) {
        self.total += 1;
        let slot = match failure {
            Failure::Connect => &mut self.connect,
            Failure::Timeout => &mut self.timeout,
            Failure::Io => &mut self.io,
            Failure::Protocol => &mut self.protocol,
            Failure::Status(400..=499) => &mut self.status_4xx,
            Failure::Status(500..=599) => &mut self.status_5xx,
            Failure::Status(_) => &mut self.status_other,
            Failure::StreamIncomplete => &mut self.stream_incomplete,
            Failure::StreamError => &mut self.stream_error,
        };
        *slot += 1;
    }

    fn merge(&mut self, other: &ErrorCounts) {
        self.total += other.total;
        self.connect += other.connect;
        self.timeout += other.timeout;
        self.io += other.io;
        self.protocol += other.protocol;
        self.status_4xx += other.status_4xx;
        self.status_5xx += other.status_5xx;
        self.status_other += other.status_other;
        self.stream_incomplete += other.stream_incomplete;
        self.stream_error += other.stream_error;
    }

    /// `(name, count)` of every kind seen, in report order.
    pub fn nonzero(&self) -> Vec<(&'static str, u64)> {
        let all = [
            ("connect", self.connect),
            ("timeout", self.timeout),
            ("io", self.io),
            ("protocol", self.protocol),
            ("status_4xx", self.status_4xx),
            ("status_5xx", self.status_5xx),
            ("status_other", self.status_other),
            ("stream_incomplete", self.stream_incomplete),
            ("stream_error", self.stream_error),
        ];
        all.into_iter().filter(|&(_, n)| n > 0).collect()
    }
}

/// Timing of one successful stream, relative to the request's scheduled start.
#[derive(Debug, Default)]
pub(crate) struct StreamTiming {
    /// Scheduled start to the first event.
    pub first: Option<Duration>,
    /// Between consecutive events, in microseconds.
    pub gaps: Vec<u64>,
    pub events: u64,
}

pub(crate) struct Recorder {
    pub latency: Histogram<u64>,
    pub ttfe: Histogram<u64>,
    pub gap: Histogram<u64>,
    pub stream: Histogram<u64>,
    pub ok: u64,
    pub events: u64,
    pub errors: ErrorCounts,
    /// Non-2xx responses by status code.
    pub status_codes: BTreeMap<u16, u64>,
}

impl Recorder {
    pub fn new() -> Recorder {
        let histogram = || Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant histogram bounds are valid");
        Recorder {
            latency: histogram(),
            ttfe: histogram(),
            gap: histogram(),
            stream: histogram(),
            ok: 0,
            events: 0,
            errors: ErrorCounts::default(),
            status_codes: BTreeMap::new(),
        }
    }

    /// A successful request that took `latency` from its scheduled start; `stream` for streams.
    pub fn success(&mut self, latency: Duration, stream: Option<&StreamTiming>) {
        self.ok += 1;
        self.latency.saturating_record(micros(latency));
        let Some(timing) = stream else { return };
        self.events += timing.events;
        if let Some(first) = timing.first {
            self.ttfe.saturating_record(micros(first));
            self.stream.saturating_record(micros(latency.saturating_sub(first)));
        }
        for &gap in &timing.gaps {
            self.gap.saturating_record(gap);
        }
    }

    pub fn failure(&mut self, failure: Failure) {
        self.errors.add(failure);
        if let Failure::Status(code) = failure {
            *self.status_codes.entry(code).or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: &Recorder) {
        // Same bounds everywhere, so adding cannot fail; saturate rather than panic regardless.
        let pairs = [
            (&mut self.latency, &other.latency),
            (&mut self.ttfe, &other.ttfe),
            (&mut self.gap, &other.gap),
            (&mut self.stream, &other.stream),
        ];
        for (mine, theirs) in pairs {
            let _ = mine.add(theirs);
        }
        self.ok += other.ok;
        self.events += other.events;
        self.errors.merge(&other.errors);
        for (&code, &n) in &other.status_codes {
            *self.status_codes.entry(code).or_default() += n;
        }
    }
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_merges() {
        let mut a = Recorder::new();
        a.success(Duration::from_millis(2), None);
        a.failure(Failure::Status(503));
        let mut b = Recorder::new();
        let timing = StreamTiming { first: Some(Duration::from_millis(1)), gaps: vec![10, 20], events: 3 };
        b.success(Duration::from_millis(4), Some(&timing));
        b.failure(Failure::Status(503));
        b.failure(Failure::StreamIncomplete);
        a.merge(&b);
        assert_eq!((a.ok, a.events, a.latency.len(), a.gap.len()), (2, 3, 2, 2));
        assert_eq!(a.stream.max(), a.stream.highest_equivalent(3000));
        assert_eq!((a.errors.total, a.errors.status_5xx, a.errors.stream_incomplete), (3, 2, 1));
        assert_eq!(a.status_codes.get(&503), Some(&2));
        assert_eq!(a.errors.nonzero(), vec![("status_5xx", 2), ("stream_incomplete", 1)]);
    }
}
