//! W3C Trace Context for one request: reading a client's `traceparent`, making trace and span ids,
//! and the `traceparent` sent to providers and back to the client. Owns ids and the header's text
//! only; spans and their export are `telemetry`'s.
//!
//! The request span's id is random; attempt span ids are derived from it and the attempt's index
//! (a bijective mix, so attempts of one request never share an id), so the record of a finished
//! call is enough to rebuild every span, and the proxy stores nothing per attempt.

use std::cell::Cell;

/// The context of one request's span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The request span's id (the gateway's server span).
    pub span_id: [u8; 8],
    /// The client's span, when its `traceparent` was valid.
    pub parent_span_id: Option<[u8; 8]>,
    /// Sampled: the client's flag when it sent one, else decided by the sample ratio.
    pub sampled: bool,
}

/// A valid `traceparent` as a client sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remote {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub sampled: bool,
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lowercase, ids not all zero. Anything
/// else (another version included) is ignored, as the specification asks of version 00 parsers.
pub fn parse_traceparent(value: &[u8]) -> Option<Remote> {
    let text = std::str::from_utf8(value).ok()?.trim_matches([' ', '\t']);
    let mut parts = text.split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || version != "00" {
        return None;
    }
    let trace_id: [u8; 16] = hex_bytes(trace)?;
    let parent_id: [u8; 8] = hex_bytes(parent)?;
    let [flags]: [u8; 1] = hex_bytes(flags)?;
    if trace_id == [0; 16] || parent_id == [0; 8] {
        return None;
    }
    Some(Remote { trace_id, parent_id, sampled: flags & 1 == 1 })
}

impl TraceContext {
    /// The context of a new request: the client's trace when its `traceparent` is valid, else a new
    /// trace when tracing is on (`sample_ratio` is `Some`), else none (nothing to propagate).
    pub fn start(client_header: Option<&[u8]>, sample_ratio: Option<f64>) -> Option<TraceContext> {
        if let Some(remote) = client_header.and_then(parse_traceparent) {
            return Some(TraceContext {
                trace_id: remote.trace_id,
                span_id: new_span_id(),
                parent_span_id: Some(remote.parent_id),
                sampled: remote.sampled,
            });
        }
        let ratio = sample_ratio?;
        let trace_id = new_trace_id();
        let sampled = ratio_samples(&trace_id, ratio);
        Some(TraceContext { trace_id, span_id: new_span_id(), parent_span_id: None, sampled })
    }

    /// The `traceparent` naming the request span (returned to the client).
    pub fn traceparent(&self) -> String {
        format_traceparent(&self.trace_id, &self.span_id, self.sampled)
    }

    /// The span id of the request's attempt number `index` (0-based, in the order attempts end).
    pub fn attempt_span_id(&self, index: usize) -> [u8; 8] {
        let base = u64::from_be_bytes(self.span_id);
        let id = mix64(base.wrapping_add((index as u64 + 1).wrapping_mul(GOLDEN)));
        nonzero(id).to_be_bytes()
    }

    /// Adds `traceparent` (naming attempt `index`'s span) to a complete upstream request.
    pub fn forward(&self, request: &mut Vec<u8>, index: usize) {
        let value = format_traceparent(&self.trace_id, &self.attempt_span_id(index), self.sampled);
        insert_header(request, "traceparent", &value);
    }

    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }
}

/// Inserts `name: value` at the end of the head of a serialized HTTP/1.1 request; a request without
/// a complete head is left as it is.
pub fn insert_header(request: &mut Vec<u8>, name: &str, value: &str) -> bool {
    let Some(end) = memchr::memmem::find(request, b"\r\n\r\n") else { return false };
    let line = format!("{name}: {value}\r\n");
    request.splice(end + 2..end + 2, line.into_bytes());
    true
}

pub fn format_traceparent(trace_id: &[u8; 16], span_id: &[u8; 8], sampled: bool) -> String {
    format!("00-{}-{}-{}", hex(trace_id), hex(span_id), if sampled { "01" } else { "00" })
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Exactly `N * 2` lowercase hex digits.
fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// The OpenTelemetry trace-id-ratio rule: sampled when the id's low 8 bytes, as a number, fall
/// below `ratio` of their range, so every instance decides the same for one trace.
fn ratio_samples(trace_id: &[u8; 16], ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let low = u64::from_be_bytes(trace_id[8..].try_into().unwrap_or_default());
    (low as f64) < ratio * (u64::MAX as f64)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64's finaliser: a bijection on u64 that spreads every input bit.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn nonzero(id: u64) -> u64 {
    if id == 0 { 1 } else { id }
}

thread_local! {
    /// splitmix64 state per thread (each worker is one thread), seeded once from the OS so ids
    /// differ across threads, processes and restarts.
    static RNG: Cell<u64> = Cell::new(os_seed());
}

fn os_seed() -> u64 {
    use ring::rand::SecureRandom;
    let mut seed = [0u8; 8];
    if ring::rand::SystemRandom::new().fill(&mut seed).is_err() {
        // No OS randomness: time and thread still make ids unlikely to repeat.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        return nanos.as_nanos() as u64 ^ (std::ptr::addr_of!(seed) as u64);
    }
    u64::from_le_bytes(seed)
}

fn next_random() -> u64 {
    RNG.with(|state| {
        let next = state.get().wrapping_add(GOLDEN);
        state.set(next);
        mix64(next)
    })
}

pub fn new_span_id() -> [u8; 8] {
    nonzero(next_random()).to_be_bytes()
}

pub fn new_trace_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&next_random().to_be_bytes());
    id[8..].copy_from_slice(&nonzero(next_random()).to_be_bytes());
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_read() {
        let remote = parse_traceparent(VALID.as_bytes()).unwrap();
        assert_eq!(hex(&remote.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&remote.parent_id), "00f067aa0ba902b7");
        assert!(remote.sampled);
        assert!(!parse_traceparent(VALID.replace("-01", "-00").as_bytes()).unwrap().sampled);
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert_eq!(parse_traceparent(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(parse_traceparent(&[0xff, 0xfe]), None);
    }

    #[test]
    fn the_clients_trace_is_kept_with_a_new_span_under_its_span() {
        let context = TraceContext::start(Some(VALID.as_bytes()), None).unwrap();
        assert_eq!(context.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.parent_span_id.map(|p| hex(&p)).as_deref(), Some("00f067aa0ba902b7"));
        assert_ne!(context.span_id, [0; 8]);
        assert!(context.traceparent().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(context.traceparent().ends_with("-01"));
    }

    #[test]
    fn without_a_client_header_a_trace_starts_only_when_tracing_is_on() {
        assert_eq!(TraceContext::start(None, None), None);
        assert_eq!(TraceContext::start(Some(b"garbage"), None), None);
        let on = TraceContext::start(None, Some(1.0)).unwrap();
        assert!(on.sampled && on.parent_span_id.is_none());
        assert_ne!(on.trace_id, TraceContext::start(None, Some(1.0)).unwrap().trace_id);
        assert!(!TraceContext::start(None, Some(0.0)).unwrap().sampled);
    }

    #[test]
    fn attempt_spans_are_distinct_and_stable() {
        let context = TraceContext::start(None, Some(1.0)).unwrap();
        let ids: std::collections::HashSet<[u8; 8]> = (0..1000).map(|i| context.attempt_span_id(i)).collect();
        assert_eq!(ids.len(), 1000);
        assert!(!ids.contains(&context.span_id));
        assert_eq!(context.attempt_span_id(1), context.attempt_span_id(1));
    }

    #[test]
    fn the_header_goes_at_the_end_of_the_head_before_the_body() {
        let context = TraceContext::start(Some(VALID.as_bytes()), None).unwrap();
        let mut request = b"POST /v1/x HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\n{}".to_vec();
        context.forward(&mut request, 1);
        let text = String::from_utf8(request).unwrap();
        let expected = format!(
            "content-length: 2\r\ntraceparent: 00-{}-{}-01\r\n\r\n{{}}",
            context.trace_id_hex(),
            hex(&context.attempt_span_id(1))
        );
        assert!(text.ends_with(&expected), "{text}");
        let mut partial = b"POST / HTTP/1.1\r\n".to_vec();
        assert!(!insert_header(&mut partial, "traceparent", "x"));
    }

    #[test]
    fn ratio_sampling_follows_the_trace_ids_low_bytes() {
        let mut id = [0u8; 16];
        id[8] = 0x10;
        assert!(ratio_samples(&id, 0.5));
        id[8] = 0xf0;
        assert!(!ratio_samples(&id, 0.5));
        assert!(ratio_samples(&id, 1.0));
    }
}
