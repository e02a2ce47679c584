//! Judges a stream's data payload by its difference from the last one judged in full, sans IO: that
//! payload is kept with where its keys, strings, numbers and literals lie, and a new
//! payload that differs from it only inside string values and numbers, and in whitespace between
//! tokens, is valid JSON once those values are. It does not validate whole payloads (`json_check`
//! does, for a stream's first payload and for any whose difference reaches its structure, keys or
//! literals), and knows nothing of SSE lines or formats.
//!
//! Why: one stream's events repeat their shape and most of their bytes (id, object, created, model,
//! fingerprint, the keys and brackets); only the content delta changes, with OpenAI's `obfuscation`
//! string, the Responses API's `sequence_number` and Anthropic's whitespace padding. The full
//! validating walk cost about 2,500 instructions per event, half of the instructions Corelay spent on
//! a 20-event stream (loadtest/RESULTS.md); comparing bytes and checking the changed values costs a
//! fraction of that.
//!
//! Why it is sound: the accepted payload is the kept one (valid JSON, depth bounded) with some string
//! values replaced by strings and some numbers by numbers, each new value checked whole by
//! `json_check`'s own rules, and some whitespace runs between tokens replaced by other whitespace
//! runs (only where the kept payload is outside every key, string, number and literal). Keys,
//! brackets, separators and literals are equal byte for byte and in the same order. So it is valid
//! JSON of the same shape, and what the audit read from the shape carries over: where the top-level
//! model value is (the same value, moved), whether a usage object or envelope is there, and whether a
//! choice has a `finish_reason` string (a `"finish_reason"` match followed by a colon can only be a
//! key). What the audit reads from a value's content (an event's leading `type`) it reads again.

use std::ops::Range;

use crate::json_check::{self, Atom};

/// The largest payload kept for comparison. Events are a few hundred bytes; a bigger one (a whole
/// response in a Responses API lifecycle event) is judged in full, and a stream's memory stays small.
/// Offsets into a kept payload fit in a `u16`.
const MAX_KEPT_BYTES: usize = 4096;
const _: () = assert!(MAX_KEPT_BYTES <= u16::MAX as usize);

/// The most atoms kept per payload: more (a long array) and the payload is judged in full.
const MAX_ATOMS: usize = 96;

/// A key, string value, number or literal of the kept payload: six bytes (a kept payload is at most
/// [`MAX_KEPT_BYTES`] long), as a waiting stream holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Token {
    start: u16,
    end: u16,
    kind: Atom,
}

impl Token {
    /// Whether a difference at `at` falls in this value, so that the value may be replaced: a string
    /// from after its opening quote up to its closing quote; a number anywhere, or right after it (the
    /// new one is longer). Keys and literals never.
    fn may_change_at(&self, at: usize) -> bool {
        let (start, end) = (self.start as usize, self.end as usize);
        match self.kind {
            Atom::String => start < at && at < end,
            Atom::Number => start <= at && at <= end,
            Atom::Key | Atom::Literal => false,
        }
    }

    /// Whether `at` is strictly inside this atom (not at its start or just past its end).
    fn surrounds(&self, at: usize) -> bool {
        (self.start as usize) < at && at < self.end as usize
    }
}

/// What the audit learned from a payload, in that payload's offsets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PayloadFacts {
    /// The model value's content (between its quotes), as `json_scan` finds it.
    pub model: Option<Range<usize>>,
    /// A top-level `usage` object or a `message` / `response` envelope is there.
    pub reports_usage: bool,
    /// A choice says why it finished (OpenAI chat only; false for other formats).
    pub finish: bool,
}

/// The last payload of one stream that passed the full check: the pattern later payloads are
/// compared with. It is not replaced by a payload accepted by difference, so a run of content events
/// costs no copy and no bookkeeping per event, only the comparison.
#[derive(Debug, Clone, Default)]
pub struct LastPayload {
    /// Its bytes; empty when nothing is kept (an empty payload is never valid JSON).
    bytes: Vec<u8>,
    /// Its atoms, in order.
    tokens: Vec<Token>,
    /// More atoms than [`MAX_ATOMS`] were reported while noting, or the payload is too big: keep
    /// nothing.
    overflowed: bool,
    /// Which of `tokens` is the model value.
    model_token: Option<usize>,
    reports_usage: bool,
    finish: bool,
    /// Payloads accepted by difference (tests read it).
    judged: u64,
    /// Tests compare a stream judged with and without the comparison.
    #[cfg(test)]
    pub(super) off: bool,
}

impl LastPayload {
    /// A new stream's (nothing kept) in this one's buffers, emptied.
    pub fn emptied(self) -> LastPayload {
        let LastPayload { mut bytes, mut tokens, .. } = self;
        bytes.clear();
        tokens.clear();
        LastPayload { bytes, tokens, ..LastPayload::default() }
    }

    /// The heap it holds, in bytes.
    pub fn held_bytes(&self) -> usize {
        self.bytes.capacity() + self.tokens.capacity() * size_of::<Token>()
    }

    /// `Some` with the payload's facts when `payload` differs from the kept one only inside string
    /// values and numbers (each still a valid string or number) and in whitespace between tokens.
    /// `None`: judge it in full (and [`Self::keep`] it if it passes).
    pub fn judge(&mut self, payload: &[u8]) -> Option<PayloadFacts> {
        #[cfg(test)]
        if self.off {
            return None;
        }
        if self.bytes.is_empty() {
            return None;
        }
        let model = self.line_up(payload)?;
        self.judged += 1;
        Some(PayloadFacts { model, reports_usage: self.reports_usage, finish: self.finish })
    }

    /// Walks both payloads from the start. At each difference, the kept payload's value there must be
    /// a string or number whose counterpart in `payload` is one of the same kind, or one side must
    /// have whitespace there, outside every atom. Returns where the model value is in `payload`.
    fn line_up(&self, payload: &[u8]) -> Option<Option<Range<usize>>> {
        let kept = self.bytes.as_slice();
        let model = self.model_token.map(|index| self.tokens[index]);
        // Where `payload`'s model value starts, relative to the kept one's, and where it ends if it changed.
        let (mut model_shift, mut model_end) = (0, None);
        let (mut i, mut j, mut next) = (0, 0, 0);
        loop {
            let same = common_prefix(&kept[i..], &payload[j..]);
            i += same;
            j += same;
            if i == kept.len() && j == payload.len() {
                break;
            }
            while self.tokens.get(next).is_some_and(|token| (token.end as usize) < i) {
                next += 1;
            }
            let token = self.tokens.get(next).copied();
            if let Some(token) = token.filter(|token| token.may_change_at(i)) {
                // Everything from the token's start to `i` was equal: the new one starts as far before `j`.
                let new_start = j - (i - token.start as usize);
                let new_end = replaced_value_end(payload, new_start, token.kind)?;
                // A value that matched up to `j` cannot end before it; refuse rather than trust that.
                if new_end < j {
                    return None;
                }
                if Some(next) == self.model_token {
                    model_end = Some(new_end);
                }
                (i, j, next) = (token.end as usize, new_end, next + 1);
            } else if token.is_some_and(|token| token.surrounds(i)) {
                // Inside a key or literal, or a string's quote changed.
                return None;
            } else {
                // Between atoms: only whitespace may differ.
                let (after_kept, after_new) =
                    (json_check::skip_whitespace(kept, i), json_check::skip_whitespace(payload, j));
                if (after_kept, after_new) == (i, j) {
                    return None;
                }
                (i, j) = (after_kept, after_new);
            }
            if model.is_some_and(|model| i <= model.start as usize) {
                model_shift = j as isize - i as isize;
            }
        }
        Some(model.map(|model| {
            let start = (model.start as isize + model_shift) as usize;
            let end = model_end.unwrap_or(start + (model.end - model.start) as usize);
            start + 1..end - 1
        }))
    }

    /// Before a payload of `len` bytes is judged in full: forgets the kept one and starts noting the
    /// new one's atoms ([`Self::note_atom`]) if it is small enough to keep.
    pub fn start_noting(&mut self, len: usize) {
        self.bytes.clear();
        self.tokens.clear();
        self.overflowed = len > MAX_KEPT_BYTES;
        if !self.overflowed && self.tokens.capacity() == 0 {
            // Room for a typical event's atoms at once, rather than growing through 4, 8, 16 and 32.
            self.tokens.reserve_exact(32);
        }
    }

    /// An atom of the payload being judged in full, as the walk reports it (`at` into the payload).
    pub fn note_atom(&mut self, kind: Atom, at: Range<usize>) {
        if self.overflowed {
            return;
        }
        if self.tokens.len() == MAX_ATOMS {
            self.overflowed = true;
            return;
        }
        self.tokens.push(Token { start: at.start as u16, end: at.end as u16, kind });
    }

    /// Keeps `payload`, which passed the full check, with what it said, for the next ones to be
    /// judged against. Keeps nothing when it was too big or had too many atoms.
    pub fn keep(&mut self, payload: &[u8], facts: &PayloadFacts) {
        let model_token = match &facts.model {
            None => None,
            // The model value is one of the noted strings: its opening quote is just before it.
            Some(model) => self
                .tokens
                .iter()
                .position(|token| token.kind == Atom::String && token.start as usize + 1 == model.start),
        };
        if self.overflowed || (facts.model.is_some() && model_token.is_none()) {
            self.tokens.clear();
            return;
        }
        self.model_token = model_token;
        self.reports_usage = facts.reports_usage;
        self.finish = facts.finish;
        self.bytes.extend_from_slice(payload);
    }

    /// How many payloads were accepted by difference.
    pub fn judged_by_difference(&self) -> u64 {
        self.judged
    }
}

/// The end of the value of `kind` (a string or a number) that replaces one at `at` in `payload`,
/// checked whole; `None` when no valid value of that kind starts there.
fn replaced_value_end(payload: &[u8], at: usize, kind: Atom) -> Option<usize> {
    let (found, end) = json_check::value_atom_end(payload, at)?;
    (found == kind).then_some(end)
}

/// How many leading bytes `a` and `b` share: sixteen bytes compared at a time with SSE2 (part of
/// every x86_64 CPU), else eight.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut at = 0;
    #[cfg(target_arch = "x86_64")]
    while let (Some(x), Some(y)) = (a.get(at..at + 16), b.get(at..at + 16)) {
        let equal = equal_mask_16(x.try_into().expect("16 bytes"), y.try_into().expect("16 bytes"));
        if equal != 0xffff {
            return at + (!equal).trailing_zeros() as usize;
        }
        at += 16;
    }
    while let (Some(x), Some(y)) = (a.get(at..at + 8), b.get(at..at + 8)) {
        let x = u64::from_le_bytes(x.try_into().expect("8 bytes"));
        let y = u64::from_le_bytes(y.try_into().expect("8 bytes"));
        if x != y {
            // Little-endian: the lowest differing byte comes first in memory.
            return at + ((x ^ y).trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + a[at..].iter().zip(&b[at..]).take_while(|(x, y)| x == y).count()
}

/// Bit `i` set when byte `i` of `x` equals byte `i` of `y`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn equal_mask_16(x: &[u8; 16], y: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{__m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8};
    // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics exist on every CPU this code
    // runs on; each load reads exactly the 16 bytes of its array (unaligned load).
    unsafe {
        let x = _mm_loadu_si128(x.as_ptr().cast::<__m128i>());
        let y = _mm_loadu_si128(y.as_ptr().cast::<__m128i>());
        _mm_movemask_epi8(_mm_cmpeq_epi8(x, y)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sse::audit::{StreamFormat, judge_in_full};

    /// Judges `payload` in full as the audit does (and keeps it in `last` when it passes).
    fn keep_in_full(last: &mut LastPayload, payload: &[u8]) -> Option<PayloadFacts> {
        judge_in_full(payload, StreamFormat::OpenAiChat, last).ok()
    }

    /// The full check's verdict and facts, with nothing kept before.
    fn full(payload: &[u8]) -> Option<PayloadFacts> {
        keep_in_full(&mut LastPayload::default(), payload)
    }

    const BASE: &str = r#"{"id":"c1","object":"chunk","created":17,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null,"obfuscation":"abc"}"#;

    #[test]
    fn a_payload_that_differs_only_inside_values_is_judged_by_difference() {
        let mut last = LastPayload::default();
        keep_in_full(&mut last, BASE.as_bytes()).unwrap();
        let next = BASE
            .replace("\"Hi\"", "\" there, \\\"friend\\\" \u{e9}\"")
            .replace("\"abc\"", "\"x\"")
            .replace(":17", ":-1.5e3");
        let facts = last.judge(next.as_bytes()).expect("judged by difference");
        assert_eq!(&next[facts.model.clone().unwrap()], "gpt-4o");
        assert_eq!(Some(facts), full(next.as_bytes()));
        // The payload judged in full stays the pattern: the one after is compared with it too.
        let third = next.replace("gpt-4o", "gpt-4o-mini").replace("-1.5e3", "0");
        let facts = last.judge(third.as_bytes()).expect("judged by difference");
        assert_eq!(&third[facts.model.unwrap()], "gpt-4o-mini");
        assert_eq!(last.judged_by_difference(), 2);
        // Whitespace between tokens may come and go (Anthropic pads its events with it).
        let padded = third.replace("}],", "}] ,").replacen(":", " :\t", 2).replace("\"}", "\"   \r\n}");
        let facts = last.judge(padded.as_bytes()).expect("judged by difference");
        assert_eq!(Some(facts), full(padded.as_bytes()));
        let facts = last.judge(third.as_bytes()).expect("and back");
        assert_eq!(Some(facts), full(third.as_bytes()));
    }

    #[test]
    fn a_difference_outside_values_or_an_invalid_value_is_judged_in_full() {
        let refused = [
            BASE.replace("\"content\"", "\"contenu\""),               // a key
            BASE.replace("null}]", "\"stop\"}]"),                     // a literal became a string
            BASE.replace(":17", ":\"17\""),                           // a number became a string
            BASE.replace("\"Hi\"", "1"),                              // a string became a number
            BASE.replace("\"Hi\"", "\"H\ni\""),                       // a raw control byte
            BASE.replace("\"Hi\"", "\"H\\qi\""),                      // a bad escape
            BASE.replace("\"Hi\"", "\"H\"i\""),                       // a quote ends it early
            BASE.replace("\"Hi\"", "\"H\\\""),                        // an escaped quote leaves it open
            BASE.replace(":17", ":017"),                              // a leading zero
            BASE.replace(":17", ":1."),                               // a bad fraction
            BASE.replace("null}", "nu ll}"),                          // whitespace inside a literal
            BASE.replace("\"c1\"", "\"c 1\"").replace(":17", ":1 7"), // inside a number
            BASE.replace(",\"model\"", ", \n,\"model\""),             // a separator among whitespace
            BASE.replace("\"abc\"}", "\"abc\"}}"),                    // structure
            BASE.replace("\"abc\"}", "\"abc\""),                      // cut
            format!("{BASE} x"),
            BASE[..BASE.len() - 1].to_string(),
        ];
        for payload in refused {
            let mut last = LastPayload::default();
            keep_in_full(&mut last, BASE.as_bytes()).unwrap();
            assert_eq!(last.judge(payload.as_bytes()), None, "{payload}");
        }
        let mut invalid_utf8 = BASE.as_bytes().to_vec();
        let at = BASE.find("Hi").unwrap();
        invalid_utf8[at] = 0xff;
        let mut last = LastPayload::default();
        keep_in_full(&mut last, BASE.as_bytes()).unwrap();
        assert_eq!(last.judge(&invalid_utf8), None);
    }

    #[test]
    fn nothing_is_kept_after_a_full_check_starts_or_for_a_payload_too_big_or_with_too_many_values() {
        let mut last = LastPayload::default();
        assert_eq!(last.judge(BASE.as_bytes()), None, "nothing kept yet");
        keep_in_full(&mut last, BASE.as_bytes()).unwrap();
        last.start_noting(BASE.len());
        assert_eq!(last.judge(BASE.as_bytes()), None, "a payload being checked in full forgets the last");
        let numbers = format!("[{}]", vec!["1"; MAX_ATOMS + 1].join(","));
        keep_in_full(&mut last, numbers.as_bytes()).unwrap();
        assert_eq!(last.judge(numbers.as_bytes()), None);
        let big = format!("{{\"s\":\"{}\"}}", "a".repeat(MAX_KEPT_BYTES));
        keep_in_full(&mut last, big.as_bytes()).unwrap();
        assert_eq!(last.judge(big.as_bytes()), None);
    }

    /// Every single edit of every byte of two recorded-style payloads (a byte replaced by, or a byte
    /// inserted from, a set that covers JSON's structure, escapes, digits and bad UTF-8; or a byte
    /// removed): whatever is accepted by difference passes the full check with the same facts, and
    /// the edits confined to a value are accepted often enough that the path is exercised.
    #[test]
    fn every_single_edit_accepted_by_difference_passes_the_full_check() {
        let bytes: &[u8] = b"a\"\\nu09-.eE+,:{}[] \n\t\x01\xc3\xa9\xff";
        let anthropic = r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#;
        let mut accepted = 0;
        for base in [BASE, anthropic] {
            let base = base.as_bytes();
            let mut edits: Vec<Vec<u8>> = Vec::new();
            for at in 0..=base.len() {
                for &byte in bytes {
                    let mut inserted = base.to_vec();
                    inserted.insert(at, byte);
                    edits.push(inserted);
                    if at < base.len() {
                        let mut replaced = base.to_vec();
                        replaced[at] = byte;
                        edits.push(replaced);
                    }
                }
                if at < base.len() {
                    let mut removed = base.to_vec();
                    removed.remove(at);
                    edits.push(removed);
                }
            }
            for payload in edits {
                let mut last = LastPayload::default();
                keep_in_full(&mut last, base).unwrap();
                if let Some(facts) = last.judge(&payload) {
                    accepted += 1;
                    assert_eq!(Some(facts), full(&payload), "{}", String::from_utf8_lossy(&payload));
                }
            }
        }
        assert!(accepted > 1_000, "only {accepted} edits were accepted by difference");
    }

    #[test]
    fn the_common_prefix_is_found_at_every_offset() {
        for len in 0..40 {
            let a = vec![b'a'; len];
            assert_eq!(common_prefix(&a, &a), len);
            for at in 0..len {
                let mut b = a.clone();
                b[at] = b'b';
                assert_eq!(common_prefix(&a, &b), at, "{len} {at}");
                assert_eq!(common_prefix(&a, &b[..at]), at);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4000, ..Default::default() })]

        /// Any edit of a kept payload (bytes replaced, inserted or removed anywhere): when the
        /// difference is accepted, the full check accepts the new payload too, with the same facts.
        #[test]
        fn what_is_accepted_by_difference_passes_the_full_check_with_the_same_facts(
            edits in proptest::collection::vec((0usize..400, 0usize..3, proptest::sample::select(vec![
                b'a', b'"', b'\\', b'n', b'u', b'0', b'9', b'-', b'.', b'e', b'+', b',', b':', b'}', b']', b' ', b'\n', b'\r', b't', 0x01, 0xc3, 0xa9, 0xff,
            ])), 1..4),
            base in proptest::sample::select(vec![
                BASE,
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\u00e9\n"}}"#,
                r#"{"type":"response.output_text.delta","sequence_number":12,"item_id":"m","delta":"x"}"#,
                r#"{"message":{"id":"m","model":"claude","usage":{"input_tokens":3}},"n":[1,-2.5,3e4]}"#,
                r#"[1,"a",2]"#,
                "7",
            ]),
        ) {
            let mut payload = base.as_bytes().to_vec();
            for (at, kind, byte) in edits {
                let at = at % (payload.len() + 1);
                match kind {
                    0 if at < payload.len() => payload[at] = byte,
                    1 if at < payload.len() => { payload.remove(at); }
                    _ => payload.insert(at, byte),
                }
            }
            let mut last = LastPayload::default();
            keep_in_full(&mut last, base.as_bytes()).unwrap();
            if let Some(facts) = last.judge(&payload) {
                let full = full(&payload);
                proptest::prop_assert!(full.is_some(), "accepted by difference, refused in full: {:?}", String::from_utf8_lossy(&payload));
                proptest::prop_assert_eq!(Some(facts), full);
            }
        }
    }
}
