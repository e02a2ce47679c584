//! One cached answer: the bytes the client was sent (a JSON body, or a stream's SSE events in the
//! client's format) and what replaying it needs (status, content type, usage, what it cost). Also
//! the answer being captured while it is relayed, and the entry's compact binary form for Redis.

use crate::chat::Usage;

/// Entry format marker and version (a changed format misses rather than misreads).
const MAGIC: &[u8; 4] = b"CRC1";

/// Bytes counted per entry besides its body and strings: the map slot, the LRU order, the `Rc`.
pub const ENTRY_OVERHEAD_BYTES: usize = 160;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub status: u16,
    /// The body is a stream's events (replayed chunked, as a stream).
    pub stream: bool,
    /// The original stream closed with Corelay's usage comment (replayed with one, cost 0).
    pub usage_comment: bool,
    pub content_type: Vec<u8>,
    /// The gateway model that served (a fallback model, when one did).
    pub served_model: String,
    pub usage: Option<Usage>,
    /// What the original call cost: what each hit saves.
    pub cost_micros: u64,
    /// When the entry stops being served (Unix ms).
    pub expires_unix_ms: u64,
    pub body: Vec<u8>,
}

impl Entry {
    /// Bytes this entry holds in memory, as the LRU's bound counts them.
    pub fn size(&self) -> usize {
        ENTRY_OVERHEAD_BYTES + self.body.len() + self.content_type.len() + self.served_model.len()
    }

    pub fn is_fresh(&self, now_unix_ms: u64) -> bool {
        now_unix_ms < self.expires_unix_ms
    }

    /// The binary form: magic, fixed fields little-endian, then length-prefixed byte strings.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.status.to_le_bytes());
        out.push(u8::from(self.stream) | u8::from(self.usage_comment) << 1 | u8::from(self.usage.is_some()) << 2);
        let u = self.usage.unwrap_or_default();
        for n in [
            u.prompt_tokens,
            u.completion_tokens,
            u.cache_read_tokens,
            u.cache_write_tokens,
            u.reasoning_tokens,
            self.cost_micros,
            self.expires_unix_ms,
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        for bytes in [&self.content_type[..], self.served_model.as_bytes(), &self.body] {
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }

    /// Reads `encode`'s form back; `None` for anything else (another version, truncated bytes).
    pub fn decode(bytes: &[u8]) -> Option<Entry> {
        let mut r = Reader(bytes);
        if r.take(4)? != MAGIC {
            return None;
        }
        let status = u16::from_le_bytes(r.take(2)?.try_into().ok()?);
        let flags = r.take(1)?[0];
        let mut n = [0u64; 7];
        for slot in &mut n {
            *slot = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
        }
        let usage = Usage {
            prompt_tokens: n[0],
            completion_tokens: n[1],
            cache_read_tokens: n[2],
            cache_write_tokens: n[3],
            reasoning_tokens: n[4],
        };
        let content_type = r.bytes()?.to_vec();
        let served_model = String::from_utf8(r.bytes()?.to_vec()).ok()?;
        let body = r.bytes()?.to_vec();
        if !r.0.is_empty() {
            return None;
        }
        Some(Entry {
            status,
            stream: flags & 1 != 0,
            usage_comment: flags & 2 != 0,
            content_type,
            served_model,
            usage: (flags & 4 != 0).then_some(usage),
            cost_micros: n[5],
            expires_unix_ms: n[6],
            body,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        self.take(len)
    }
}

/// An answer being copied as it is relayed: kept only if it completes cleanly and fits.
#[derive(Debug)]
pub struct Capture {
    limit: usize,
    body: Vec<u8>,
    too_big: bool,
    completed: Option<Completed>,
}

/// How a captured answer ended cleanly.
#[derive(Debug, Clone)]
struct Completed {
    status: u16,
    content_type: Vec<u8>,
    stream: bool,
    usage_comment: bool,
}

/// What the relay knew when a captured answer ended cleanly.
pub struct Ending<'a> {
    pub status: u16,
    pub content_type: &'a [u8],
    pub stream: bool,
    pub usage_comment: bool,
}

impl Capture {
    pub fn new(limit: usize) -> Capture {
        Capture { limit, body: Vec::new(), too_big: false, completed: None }
    }

    /// Bytes that went to the client (a whole body, or whole events).
    pub fn push(&mut self, bytes: &[u8]) {
        if self.too_big || self.body.len() + bytes.len() > self.limit {
            self.too_big = true;
            self.body = Vec::new();
            return;
        }
        self.body.extend_from_slice(bytes);
    }

    /// The answer ended cleanly: it may be stored. Only 2xx answers are.
    pub fn complete(&mut self, ending: Ending<'_>) {
        if (200..300).contains(&ending.status) {
            self.completed = Some(Completed {
                status: ending.status,
                content_type: ending.content_type.to_vec(),
                stream: ending.stream,
                usage_comment: ending.usage_comment,
            });
        }
    }

    /// The entry to store, when the answer completed cleanly within the size limit.
    pub fn into_entry(
        self,
        served_model: String,
        usage: Option<Usage>,
        cost_micros: u64,
        expires_unix_ms: u64,
    ) -> Option<Entry> {
        let done = self.completed.filter(|_| !self.too_big && !self.body.is_empty())?;
        Some(Entry {
            status: done.status,
            stream: done.stream,
            usage_comment: done.usage_comment,
            content_type: done.content_type,
            served_model,
            usage,
            cost_micros,
            expires_unix_ms,
            body: self.body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        Entry {
            status: 200,
            stream: true,
            usage_comment: true,
            content_type: b"text/event-stream".to_vec(),
            served_model: "acme/chat".into(),
            usage: Some(Usage { prompt_tokens: 3, completion_tokens: 5, ..Usage::default() }),
            cost_micros: 42,
            expires_unix_ms: 1_000,
            body: b"data: {}\n\n".to_vec(),
        }
    }

    #[test]
    fn entries_round_trip_and_damaged_bytes_are_refused() {
        let entry = sample();
        let bytes = entry.encode();
        assert_eq!(Entry::decode(&bytes), Some(entry.clone()));
        let without_usage = Entry { usage: None, ..entry };
        assert_eq!(Entry::decode(&without_usage.encode()), Some(without_usage));
        for cut in 0..bytes.len() {
            assert_eq!(Entry::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Entry::decode(&longer), None);
    }

    #[test]
    fn a_capture_is_kept_only_when_complete_successful_and_small_enough() {
        let ending = |status| Ending { status, content_type: b"application/json", stream: false, usage_comment: false };
        let mut capture = Capture::new(8);
        capture.push(b"{}");
        assert!(Capture::new(8).into_entry(String::new(), None, 0, 1).is_none(), "never completed");
        capture.complete(ending(200));
        assert_eq!(capture.into_entry("m".into(), None, 0, 1).unwrap().body, b"{}");
        let mut failed = Capture::new(8);
        failed.push(b"{}");
        failed.complete(ending(400));
        assert!(failed.into_entry(String::new(), None, 0, 1).is_none(), "errors are not stored");
        let mut big = Capture::new(8);
        big.push(b"0123456");
        big.push(b"789");
        big.complete(ending(200));
        assert!(big.into_entry(String::new(), None, 0, 1).is_none(), "over the limit");
    }
}
