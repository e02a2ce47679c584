//! One-pass JSON validation with a nesting bound, run on untrusted bytes before any parser that
//! recurses sees them; and, for bytes it has passed, a walk of an object's members that trusts them
//! ([`visit_valid_members`]). It does not build anything, allocate, or look at what the values mean.
//!
//! Why: sonic-rs skips values recursively, so a body of 20,000 `[` overflowed a worker's stack and
//! aborted the whole process. serde_json stops at 128 levels on its own, but it is not the only
//! parser here, and a stream check must not allocate per event. One iterative validator, its
//! container stack a 128-bit set, makes every later parse of the same bytes bounded.
//!
//! Strict RFC 8259: one value, optional whitespace around it, UTF-8, no trailing commas, no
//! comments, no leading zeros, no control characters in strings.

use std::ops::Range;

/// The deepest nesting Corelay accepts anywhere (serde_json's own limit, so nothing that serde_json
/// would have parsed is refused). Real requests (JSON Schemas of tools included) stay far below it.
pub const MAX_DEPTH: usize = 128;

/// Why bytes are not acceptable JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonFault {
    /// Containers nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Not JSON, with the byte offset where that became clear.
    Syntax(usize),
}

impl std::fmt::Display for JsonFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JsonFault::TooDeep => write!(f, "JSON nested deeper than {MAX_DEPTH} levels"),
            JsonFault::Syntax(at) => write!(f, "invalid JSON at byte {at}"),
        }
    }
}

/// The open containers, innermost last: `is_object[i]` says whether level `i` is an object. A byte per
/// level (128 bytes on the stack) rather than a 128-bit set: the innermost level is read after every
/// value, and a `u128` shift there cost more than the rest of the bookkeeping.
struct Stack {
    is_object: [bool; MAX_DEPTH],
    depth: usize,
}

impl Stack {
    #[inline(always)]
    fn push(&mut self, is_object: bool) -> Result<(), JsonFault> {
        let level = self.is_object.get_mut(self.depth).ok_or(JsonFault::TooDeep)?;
        *level = is_object;
        self.depth += 1;
        Ok(())
    }

    #[inline(always)]
    fn innermost_is_object(&self) -> bool {
        self.depth.checked_sub(1).is_some_and(|level| self.is_object[level])
    }
}

/// Checks that `bytes` are exactly one JSON value nested at most [`MAX_DEPTH`] deep.
pub fn validate(bytes: &[u8]) -> Result<(), JsonFault> {
    visit_members(bytes, |_, _| {})
}

/// [`validate`], telling `member` about each member of the top-level object as it goes: its key as
/// written (quotes and escapes included) and the byte range of its value, in document order. One
/// pass for "is this JSON, bounded in depth" and "where are the fields routing needs".
///
/// Two alternating loops instead of one dispatch per token: "a value starts here" and "a value just
/// ended", with an object's key and colon read in line where they must come. Passed-through stream
/// events run through here once each, so the shape was chosen by instruction counts
/// (loadtest/instructions) and `benches/sse_rewrite.rs` (`event/audit`).
#[inline]
pub fn visit_members(bytes: &[u8], member: impl FnMut(&[u8], Range<usize>)) -> Result<(), JsonFault> {
    visit_members_and_atoms(bytes, member, |_, _| {})
}

/// What a walk met that is not a bracket or separator: [`visit_members_and_atoms`] reports each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Atom {
    /// An object's key, quotes included.
    Key,
    /// A string value, quotes included.
    String,
    Number,
    /// `true`, `false` or `null`.
    Literal,
}

/// [`visit_members`], also telling `atom` where each key, string value, number and literal lies, at
/// any depth, in document order. A stream keeps them to judge its next event by difference
/// (`sse::by_difference`); other callers pass `|_, _| {}`, which compiles away.
#[inline]
pub fn visit_members_and_atoms(
    bytes: &[u8],
    mut member: impl FnMut(&[u8], Range<usize>),
    mut atom: impl FnMut(Atom, Range<usize>),
) -> Result<(), JsonFault> {
    let mut stack = Stack { is_object: [false; MAX_DEPTH], depth: 0 };
    // The top-level member whose value is being read: its key and where its value starts.
    let mut pending: Option<(Range<usize>, usize)> = None;
    let mut at = skip_whitespace(bytes, 0);
    loop {
        // A value starts at `at`.
        at = match bytes.get(at) {
            Some(b'{') => {
                stack.push(true)?;
                let next = skip_whitespace(bytes, at + 1);
                if bytes.get(next) == Some(&b'}') {
                    stack.depth -= 1;
                    next + 1
                } else {
                    let (key, value) = member_value_start(bytes, next)?;
                    atom(Atom::Key, key.clone());
                    if stack.depth == 1 {
                        pending = Some((key, value));
                    }
                    at = value;
                    continue;
                }
            }
            Some(b'[') => {
                stack.push(false)?;
                let next = skip_whitespace(bytes, at + 1);
                if bytes.get(next) == Some(&b']') {
                    stack.depth -= 1;
                    next + 1
                } else {
                    at = next;
                    continue;
                }
            }
            Some(_) => {
                let (kind, end) = value_atom_end(bytes, at).ok_or(JsonFault::Syntax(at))?;
                atom(kind, at..end);
                end
            }
            None => return Err(JsonFault::Syntax(at)),
        };
        // A value ended at `at`: close containers until another value must start.
        loop {
            if stack.depth == 1
                && let Some((key, value_start)) = pending.take()
            {
                member(&bytes[key], value_start..at);
            }
            at = skip_whitespace(bytes, at);
            if stack.depth == 0 {
                return if at == bytes.len() { Ok(()) } else { Err(JsonFault::Syntax(at)) };
            }
            let in_object = stack.innermost_is_object();
            match bytes.get(at) {
                Some(b',') if in_object => {
                    let (key, value) = member_value_start(bytes, skip_whitespace(bytes, at + 1))?;
                    atom(Atom::Key, key.clone());
                    if stack.depth == 1 {
                        pending = Some((key, value));
                    }
                    at = value;
                    break;
                }
                Some(b',') => {
                    at = skip_whitespace(bytes, at + 1);
                    break;
                }
                Some(b'}') if in_object => {
                    stack.depth -= 1;
                    at += 1;
                }
                Some(b']') if !in_object => {
                    stack.depth -= 1;
                    at += 1;
                }
                _ => return Err(JsonFault::Syntax(at)),
            }
        }
    }
}

/// The members of an object that a validating walk has already passed ([`visit_members`] or one of
/// its kind), reported as `visit_members` reports them, without judging the bytes again: no number
/// grammar, no depth bound, no container stack. A nested value is skipped by counting brackets
/// outside strings, in a loop (not recursion). For reading a part of a validated body a second
/// time, such as an answer's `usage` object, which a second validating walk read at ~300
/// instructions more a request. Bytes that are not a valid object give `None` or members that
/// mean nothing, never a panic.
pub fn visit_valid_members(object: &[u8], mut member: impl FnMut(&[u8], Range<usize>)) -> Option<()> {
    let mut at = skip_whitespace(object, 0);
    if object.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_whitespace(object, at + 1);
    if object.get(at) == Some(&b'}') {
        return Some(());
    }
    loop {
        let (key, start) = member_value_start(object, at).ok()?;
        let end = valid_value_end(object, start)?;
        member(&object[key], start..end);
        at = skip_whitespace(object, end);
        match object.get(at)? {
            b',' => at = skip_whitespace(object, at + 1),
            b'}' => return Some(()),
            _ => return None,
        }
    }
}

/// Just past the value at `at` in bytes a validating walk has already passed: past a string's
/// closing quote or a container's closing bracket (brackets inside strings not counted), or at the
/// byte that ends a number or literal. Nothing is judged; bytes that are not valid JSON give `None`
/// or an end that means nothing, never a panic.
pub fn valid_value_end(bytes: &[u8], at: usize) -> Option<usize> {
    match *bytes.get(at)? {
        b'"' => string_end(bytes, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut pos = at;
            while let Some(&b) = bytes.get(pos) {
                match b {
                    b'"' => {
                        pos = string_end(bytes, pos)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    // Depth is at least 1 here: the value's own bracket came first.
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(pos + 1);
                        }
                    }
                    _ => {}
                }
                pos += 1;
            }
            None
        }
        _ => {
            let rest = &bytes[at..];
            let len = rest.iter().position(|&b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'));
            Some(at + len.unwrap_or(rest.len()))
        }
    }
}

/// Reads `"key" :` starting at `at`; returns the key's range (quotes included) and where the
/// member's value starts.
#[inline(always)]
fn member_value_start(bytes: &[u8], at: usize) -> Result<(Range<usize>, usize), JsonFault> {
    if bytes.get(at) != Some(&b'"') {
        return Err(JsonFault::Syntax(at));
    }
    let key_end = string_end(bytes, at).ok_or(JsonFault::Syntax(at))?;
    let after_key = skip_whitespace(bytes, key_end);
    if bytes.get(after_key) != Some(&b':') {
        return Err(JsonFault::Syntax(after_key));
    }
    Ok((at..key_end, skip_whitespace(bytes, after_key + 1)))
}

/// A piece of a JSON document as text, `None` if it is not UTF-8. Pieces read from requests (a
/// model id, `true`, a token limit) are short and ASCII, and an ASCII check is a few instructions
/// where `str::from_utf8` set out for a long run on each (~95 instructions, twice a request).
pub fn text(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes).ok()
    }
}

/// The first byte at or after `at` that is not JSON whitespace (most often `at` itself).
#[inline(always)]
pub fn skip_whitespace(bytes: &[u8], mut at: usize) -> usize {
    // Machine-written JSON has no whitespace between tokens: one comparison decides most calls.
    if bytes.get(at).is_some_and(|&b| b > b' ') {
        return at;
    }
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(at) {
        at += 1;
    }
    at
}

/// The end (exclusive) of the scalar at `at`: a string, number or literal.
#[inline(always)]
fn scalar_end(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes[at] {
        b'"' => string_end(bytes, at),
        b't' => literal_end(bytes, at, b"true"),
        b'f' => literal_end(bytes, at, b"false"),
        b'n' => literal_end(bytes, at, b"null"),
        b'-' | b'0'..=b'9' => number_end(bytes, at),
        _ => None,
    }
}

/// The string, number or literal value that starts at `at`: its kind and its end, checked as
/// [`validate`] checks one inside a document; `None` when no valid one starts there.
#[inline(always)]
pub fn value_atom_end(bytes: &[u8], at: usize) -> Option<(Atom, usize)> {
    let kind = match *bytes.get(at)? {
        b'"' => Atom::String,
        b't' | b'f' | b'n' => Atom::Literal,
        _ => Atom::Number,
    };
    Some((kind, scalar_end(bytes, at)?))
}

fn literal_end(bytes: &[u8], at: usize, literal: &[u8]) -> Option<usize> {
    bytes[at..].starts_with(literal).then_some(at + literal.len())
}

/// The end of the string whose opening quote is at `at`, past its closing quote.
#[inline(always)]
fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut pos = at + 1;
    loop {
        pos = next_stop(bytes, pos)?;
        match bytes[pos] {
            b'"' => return Some(pos + 1),
            b'\\' => pos = escape_end(bytes, pos)?,
            0x80.. => pos = utf8_run_end(bytes, pos)?,
            // A raw control character.
            _ => return None,
        }
    }
}

/// The end of the run of non-ASCII bytes at `pos`, if they are well-formed UTF-8. Every byte of a
/// multi-byte UTF-8 sequence is non-ASCII, so checking maximal runs checks the whole string.
#[inline(always)]
fn utf8_run_end(bytes: &[u8], pos: usize) -> Option<usize> {
    let end = bytes[pos..].iter().position(u8::is_ascii).map_or(bytes.len(), |n| pos + n);
    std::str::from_utf8(&bytes[pos..end]).ok().map(|_| end)
}

/// Where the next byte at or after `pos` that needs attention inside a string is: a quote, a
/// backslash, a control byte (below 0x20) or a non-ASCII byte (its UTF-8 is checked). One pass, sixteen bytes at a time with SSE2 (part of
/// every x86_64 CPU), else eight at a time: most strings in LLM traffic are short (keys, ids, one
/// token of content), where a separate search for the quote and a second pass for control bytes
/// cost more than the bytes themselves. Inlined: a call per string was a third of the validator's
/// instructions on stream events.
///
/// A string that runs past its first six blocks (long message content: most of a request's bytes)
/// goes on thirty-two bytes at a time with AVX2 where the CPU has it, out of line so the short strings
/// pay nothing for it; the last bytes are read sixteen at a time again.
#[inline(always)]
fn next_stop(bytes: &[u8], pos: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    let has_avx2 = || std::arch::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    let has_avx2 = || false;
    next_stop_with(bytes, pos, has_avx2)
}

/// [`next_stop`], asking `has_avx2` whether the CPU has AVX2 only when a string is long enough for
/// it to matter (the tests answer both ways). `has_avx2` must say true only on a CPU that has it.
#[inline(always)]
fn next_stop_with(bytes: &[u8], mut pos: usize, has_avx2: impl FnOnce() -> bool) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        // Six blocks in line first: ids, names and most chat turns end within them. The call out
        // costs about what two and a half blocks do, and each 32-byte step saves half of one, so
        // it pays only for a run past ~110 bytes.
        for _ in 0..6 {
            let Some(block) = bytes.get(pos..pos + 16) else { break };
            let stops = stop_mask_16(block.try_into().expect("16 bytes"));
            if stops != 0 {
                return Some(pos + stops.trailing_zeros() as usize);
            }
            pos += 16;
        }
        if bytes.len().saturating_sub(pos) >= 64 && has_avx2() {
            // SAFETY: `has_avx2` said the CPU has AVX2.
            match unsafe { long_run_avx2(bytes, pos) } {
                Ok(stop) => return Some(stop),
                Err(unread) => pos = unread,
            }
        }
        while let Some(block) = bytes.get(pos..pos + 16) {
            let stops = stop_mask_16(block.try_into().expect("16 bytes"));
            if stops != 0 {
                return Some(pos + stops.trailing_zeros() as usize);
            }
            pos += 16;
        }
    }
    while let Some(word) = bytes.get(pos..pos + 8) {
        let stops = stop_bytes(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        if stops != 0 {
            // Little-endian: the lowest flagged byte comes first in memory.
            return Some(pos + (stops.trailing_zeros() / 8) as usize);
        }
        pos += 8;
    }
    bytes.get(pos..)?.iter().position(|&b| is_stop_byte(b)).map(|found| pos + found)
}

/// How many bytes at the start of `text` need no attention inside a string (see [`next_stop`]),
/// with AVX2 if `avx2` (and the CPU has it).
#[cfg(test)]
fn plain_run(text: &[u8], avx2: bool) -> usize {
    #[cfg(target_arch = "x86_64")]
    let has_avx2 = || avx2 && std::arch::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    let has_avx2 = || false;
    next_stop_with(text, 0, has_avx2).unwrap_or(text.len())
}

/// Bit `i` set when byte `i` of `block` is `"`, `\`, below 0x20 or non-ASCII.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn stop_mask_16(block: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics exist on every CPU this code
    // runs on; the load reads exactly the 16 bytes of `block` (unaligned load).
    unsafe {
        let bytes = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
        let quote = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\\' as i8));
        // Unsigned b <= 0x1f exactly when min(b, 0x1f) == b (a signed compare would flag 0x80..).
        let control = _mm_cmpeq_epi8(_mm_min_epu8(bytes, _mm_set1_epi8(0x1f)), bytes);
        // The byte's own high bit: non-ASCII.
        let ascii_stops = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32;
        ascii_stops | _mm_movemask_epi8(bytes) as u32
    }
}

/// [`next_stop`]'s long-string loop: `Ok` with the first byte at or after `pos` that needs attention,
/// or `Err` with where fewer than thirty-two bytes are left unread (none of those before it need
/// any).
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline(never)]
unsafe fn long_run_avx2(bytes: &[u8], mut pos: usize) -> Result<usize, usize> {
    use std::arch::x86_64::{
        __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_min_epu8, _mm256_movemask_epi8, _mm256_or_si256,
        _mm256_set1_epi8,
    };
    let (quote, backslash, control_max) =
        (_mm256_set1_epi8(b'"' as i8), _mm256_set1_epi8(b'\\' as i8), _mm256_set1_epi8(0x1f));
    while let Some(block) = bytes.get(pos..pos + 32) {
        // SAFETY: the load reads exactly the 32 bytes of `block` (unaligned load).
        let chunk = unsafe { _mm256_loadu_si256(block.as_ptr().cast::<__m256i>()) };
        // As in `stop_mask_16`: quote, backslash, unsigned <= 0x1f, and the high bit (non-ASCII).
        let control = _mm256_cmpeq_epi8(_mm256_min_epu8(chunk, control_max), chunk);
        let flagged = _mm256_or_si256(
            _mm256_or_si256(_mm256_cmpeq_epi8(chunk, quote), _mm256_cmpeq_epi8(chunk, backslash)),
            control,
        );
        let stops = _mm256_movemask_epi8(flagged) as u32 | _mm256_movemask_epi8(chunk) as u32;
        if stops != 0 {
            return Ok(pos + stops.trailing_zeros() as usize);
        }
        pos += 32;
    }
    Err(pos)
}

/// The high bit of each byte of `word` that is `"`, `\`, below 0x20 or non-ASCII, possibly with false flags
/// above (later than) a true one, never below it: the lowest flag is exact.
fn stop_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // `x - ONES` borrows into the high bit of a zero byte (and only past the first zero byte can a
    // borrow flag a non-zero one); `!x` drops bytes whose own high bit was set.
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x;
    let quote = zero_byte(word ^ (ONES * u64::from(b'"')));
    let backslash = zero_byte(word ^ (ONES * u64::from(b'\\')));
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    // `word` itself: non-ASCII bytes, exact.
    (quote | backslash | control | word) & HIGH
}

fn is_stop_byte(byte: u8) -> bool {
    byte == b'"' || byte == b'\\' || !(0x20..0x80).contains(&byte)
}

/// Checks nesting only: containers at most [`MAX_DEPTH`] deep, brackets inside strings not
/// counted. Cheaper than [`validate`] (no grammar, no UTF-8 or control-character checks), for bytes
/// whose syntax a parser will judge anyway but whose depth must be bounded before it does.
pub fn check_depth(bytes: &[u8]) -> Result<(), JsonFault> {
    let mut depth = 0usize;
    let mut pos = 0;
    while pos < bytes.len() {
        match bytes[pos] {
            b'"' => match memchr::memchr2(b'"', b'\\', &bytes[pos + 1..]) {
                Some(found) if bytes[pos + 1 + found] == b'\\' => {
                    // Skip the escape and go on inside the string.
                    pos += found + 3;
                    while let Some(next) = bytes.get(pos..).and_then(|rest| memchr::memchr2(b'"', b'\\', rest)) {
                        if bytes[pos + next] == b'"' {
                            pos += next;
                            break;
                        }
                        pos += next + 2;
                    }
                }
                Some(found) => pos += found + 1,
                None => return Ok(()),
            },
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(JsonFault::TooDeep);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        pos += 1;
    }
    Ok(())
}

/// The end of the escape sequence whose backslash is at `at`.
fn escape_end(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at + 1)? {
        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(at + 2),
        b'u' => {
            let hex = bytes.get(at + 2..at + 6)?;
            hex.iter().all(u8::is_ascii_hexdigit).then_some(at + 6)
        }
        _ => None,
    }
}

/// The end of the number at `at`: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn number_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut pos = at + usize::from(bytes[at] == b'-');
    match bytes.get(pos)? {
        b'0' => pos += 1,
        b'1'..=b'9' => pos = digits_end(bytes, pos),
        _ => return None,
    }
    if bytes.get(pos) == Some(&b'.') {
        let end = digits_end(bytes, pos + 1);
        if end == pos + 1 {
            return None;
        }
        pos = end;
    }
    if matches!(bytes.get(pos), Some(b'e' | b'E')) {
        pos += 1;
        if matches!(bytes.get(pos), Some(b'+' | b'-')) {
            pos += 1;
        }
        let end = digits_end(bytes, pos);
        if end == pos {
            return None;
        }
        pos = end;
    }
    Some(pos)
}

fn digits_end(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).is_some_and(u8::is_ascii_digit) {
        pos += 1;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, depth: usize) -> Vec<u8> {
        let mut doc = open.repeat(depth).into_bytes();
        doc.push(b'0');
        doc.extend(close.repeat(depth).bytes());
        doc
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4000, ..Default::default() })]

        /// Random sequences of JSON tokens and stray bytes: the validator agrees with serde_json on
        /// every one (no `\u` escapes: serde_json also judges surrogate pairs, which the gateway
        /// leaves to the parsers behind it).
        #[test]
        fn agrees_with_serde_json_on_token_soup(parts in proptest::collection::vec(proptest::sample::select(vec![
            "{", "}", "[", "]", ",", ":", " ", "\n", "\"k\"", "\"a\\\"b\"", "\"\\n\"", "\"\\x\"", "1", "-0", "0.5", "1e9",
            "01", "-", ".", "true", "null", "fals", "\"", "\u{1}", "é", "x",
        ]), 0..24)) {
            let doc = parts.concat();
            let ours = validate(doc.as_bytes()).is_ok();
            let theirs = serde_json::from_str::<serde_json::Value>(&doc);
            // serde_json also refuses numbers beyond f64 (`1e901`), which JSON's grammar allows.
            let out_of_range = theirs.as_ref().is_err_and(|e| e.to_string().contains("number out of range"));
            if !out_of_range {
                proptest::prop_assert_eq!(ours, theirs.is_ok(), "{:?}", doc);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]

        /// On every valid object the walk that trusts the bytes reports what the validating walk
        /// reports: same keys, same value ranges, in order. Objects of random JSON values (nested
        /// containers, strings with quotes, brackets, escapes and UTF-8, numbers of every kind),
        /// written compact and pretty.
        #[test]
        fn the_trusting_walk_reports_what_the_validating_walk_does(
            object in proptest::collection::btree_map("[a-z\"\\\\]{0,4}", json_value(), 0..6),
            pretty in proptest::bool::ANY,
        ) {
            let object = serde_json::Value::Object(object.into_iter().collect());
            let doc = if pretty { serde_json::to_vec_pretty(&object) } else { serde_json::to_vec(&object) }.unwrap();
            let mut validated = Vec::new();
            proptest::prop_assert!(visit_members(&doc, |key, value| validated.push((key.to_vec(), value))).is_ok());
            let mut trusted = Vec::new();
            let walked = visit_valid_members(&doc, |key, value| trusted.push((key.to_vec(), value)));
            proptest::prop_assert_eq!(walked, Some(()));
            proptest::prop_assert_eq!(trusted, validated);
        }
    }

    /// Random JSON values, nested up to four levels.
    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e30f64..1e30).prop_map(Value::from),
            "[a-z\"\\\\{}\\[\\]é\u{1} ]{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z\"]{0,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn the_trusting_walk_ends_on_bytes_that_are_not_an_object() {
        for doc in ["", "[]", "{", "{\"a\"", "{\"a\":", "{\"a\":[1", "{\"a\":1 x", "{\"a\":\"b"] {
            assert_eq!(visit_valid_members(doc.as_bytes(), |_, _| {}), None, "{doc:?}");
        }
        let mut keys = Vec::new();
        assert_eq!(visit_valid_members(b" { } ", |k, _| keys.push(k.to_vec())), Some(()));
        assert!(keys.is_empty());
    }

    #[test]
    fn text_is_the_bytes_when_utf8() {
        assert_eq!(text(b"gpt-4o-mini"), Some("gpt-4o-mini"));
        assert_eq!(text("modèle-ünï".as_bytes()), Some("modèle-ünï"));
        assert_eq!(text(b""), Some(""));
        assert_eq!(text(b"bad \xff byte"), None);
        assert_eq!(text(b"cut \xc3"), None);
    }

    #[test]
    fn accepts_what_serde_json_accepts() {
        let docs = [
            r#"{"model":"m","messages":[{"role":"user","content":"h\u00e9 \"x\" \\ \/"}],"n":-1.5e+3}"#,
            "[]",
            "{}",
            " [ 1 , 0 , -0.0 , 1E9 , true , false , null , \"\" ] ",
            "\"a string\"",
            "0",
            "[[[{}],{\"a\":[]}]]",
            "{\"é\":\"ü\"}",
        ];
        for doc in docs {
            assert!(serde_json::from_str::<serde_json::Value>(doc).is_ok(), "{doc}");
            assert_eq!(validate(doc.as_bytes()), Ok(()), "{doc}");
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        let docs = [
            "",
            "   ",
            "{not json",
            "{\"a\":1,}",
            "[1,]",
            "[1 2]",
            "{\"a\" 1}",
            "{1:2}",
            "01",
            "1.",
            "1e",
            "-",
            "tru",
            "nul",
            "\"unterminated",
            "\"bad \\x escape\"",
            "\"\\u12G4\"",
            "\"raw \n newline\"",
            "{} {}",
            "[}",
            "{]",
            "]",
            "[1]]",
            "{\"a\":}",
            "{,}",
        ];
        for doc in docs {
            assert!(serde_json::from_str::<serde_json::Value>(doc).is_err(), "serde_json accepts {doc:?}");
            assert!(matches!(validate(doc.as_bytes()), Err(JsonFault::Syntax(_))), "{doc:?}");
        }
        assert!(validate(b"\"\xff\"").is_err(), "invalid UTF-8");
    }

    #[test]
    fn nesting_is_bounded_at_max_depth_for_any_depth_up_to_a_million() {
        assert_eq!(validate(&nested("[", "]", MAX_DEPTH)), Ok(()));
        assert_eq!(validate(&nested("{\"a\":", "}", MAX_DEPTH)), Ok(()));
        for depth in [MAX_DEPTH + 1, 1_000, 20_000, 1_000_000] {
            assert_eq!(validate(&nested("[", "]", depth)), Err(JsonFault::TooDeep), "{depth}");
            assert_eq!(validate(&nested("{\"a\":", "}", depth)), Err(JsonFault::TooDeep), "{depth}");
            // Unclosed: the bound is hit before the end is.
            assert_eq!(validate("[".repeat(depth).as_bytes()), Err(JsonFault::TooDeep), "{depth}");
        }
    }

    #[test]
    fn the_plain_run_stops_at_the_first_quote_backslash_or_control_byte_wherever_it_is() {
        // Past 160 bytes the AVX2 loop runs (where the CPU has it), and its tail goes back to SSE2.
        for (len, avx2) in (0..230).flat_map(|len| [(len, false), (len, true)]) {
            let plain_run = |text: &[u8]| plain_run(text, avx2);
            assert_eq!(plain_run(&vec![b'a'; len]), len);
            for at in 0..len {
                for (stop, plain) in
                    [(b'"', b'#'), (b'\\', b']'), (0x1f, 0x20), (0x00, 0x7f), (0xc3, b'~'), (0x80, 0x7e)]
                {
                    let mut text = vec![b'a'; len];
                    text[at] = plain;
                    assert_eq!(plain_run(&text), len, "{len} {at} {plain:#x}");
                    text[at] = stop;
                    assert_eq!(plain_run(&text), at, "{len} {at} {stop:#x}");
                    // A second stop later, and bytes that borrow, change nothing.
                    text.extend_from_slice(b"\x00\"\xff\x01");
                    assert_eq!(plain_run(&text), at, "{len} {at} {stop:#x} then more");
                }
            }
        }
    }

    #[test]
    fn utf8_is_checked_inside_strings_and_non_ascii_is_refused_outside() {
        for good in [&b"\"\xc3\xa9\""[..], b"{\"\xe2\x82\xac\":\"\xf0\x9f\x98\x80 ok\"}", b"[\"a\xc3\xa9b\xc3\xa9\"]"] {
            assert_eq!(validate(good), Ok(()), "{good:?}");
            assert!(serde_json::from_slice::<serde_json::Value>(good).is_ok());
        }
        let bad: [&[u8]; 7] = [
            b"\"\xff\"",
            b"\"\xc3\"",
            b"\"\xc0\xaf\"",
            b"\"\xed\xa0\x80\"",
            b"\"0123456789abcdef\xe2\x82\"",
            b"[\xc3\xa9]",
            b"{\"a\":1}\xc3\xa9",
        ];
        for doc in bad {
            assert!(validate(doc).is_err(), "{doc:?}");
            assert!(serde_json::from_slice::<serde_json::Value>(doc).is_err(), "serde_json accepts {doc:?}");
        }
    }

    #[test]
    fn members_of_the_top_level_object_are_visited_with_their_keys_and_value_spans() {
        let doc = br#" { "model" : "m", "messages":[{"model":"inner"},[]], "n":{} ,"s\"x":-1.5e3, "t":true } "#;
        let mut seen = Vec::new();
        visit_members(doc, |key, value| seen.push((key.to_vec(), doc[value].to_vec()))).unwrap();
        let expected: [(&[u8], &[u8]); 5] = [
            (br#""model""#, br#""m""#),
            (br#""messages""#, br#"[{"model":"inner"},[]]"#),
            (br#""n""#, b"{}"),
            (br#""s\"x""#, b"-1.5e3"),
            (br#""t""#, b"true"),
        ];
        assert_eq!(seen, expected.map(|(k, v)| (k.to_vec(), v.to_vec())));
        let mut count = 0;
        assert!(visit_members(b"[{\"a\":1}]", |_, _| count += 1).is_ok());
        assert_eq!(count, 0, "an array's objects are not top-level members");
        assert!(visit_members(br#"{"a":1,}"#, |_, _| {}).is_err());
    }

    #[test]
    fn the_depth_check_agrees_with_the_validator_on_depth() {
        for depth in [1, MAX_DEPTH, MAX_DEPTH + 1, 20_000] {
            let doc = nested("[", "]", depth);
            assert_eq!(check_depth(&doc).is_ok(), validate(&doc).is_ok(), "{depth}");
            let doc = nested("{\"a\\\"[\":", "}", depth);
            assert_eq!(check_depth(&doc).is_ok(), depth <= MAX_DEPTH, "{depth}: brackets in strings do not count");
        }
        assert_eq!(check_depth(br#"{"s":"\\"}"#), Ok(()));
        assert_eq!(check_depth(br#"{"s":"a\"]]]]"}"#), Ok(()));
    }

    #[test]
    fn mixed_containers_must_close_in_order() {
        let mut doc = Vec::new();
        for i in 0..MAX_DEPTH {
            doc.extend_from_slice(if i % 2 == 0 { b"[" } else { b"{\"k\":" });
        }
        doc.push(b'1');
        for i in (0..MAX_DEPTH).rev() {
            doc.push(if i % 2 == 0 { b']' } else { b'}' });
        }
        assert_eq!(validate(&doc), Ok(()));
        let last = doc.len() - 1;
        doc[last] = b'}';
        assert!(matches!(validate(&doc), Err(JsonFault::Syntax(_))));
    }
}
