//! One-pass JSON validation with a nesting bound, run on untrusted bytes before any parser that
//! recurses sees them. It does not build anything, allocate, or look at what the values mean.
//!
//! Why: sonic-rs skips values recursively, so a body of 20,000 `[` overflowed a worker's stack and
//! aborted the whole process. serde_json stops at 128 levels on its own, but it is not the only
//! parser here, and a stream check must not allocate per event. One iterative validator, its
//! container stack a 128-bit set, makes every later parse of the same bytes bounded.
//!
//! Strict RFC 8259: one value, optional whitespace around it, UTF-8, no trailing commas, no
//! comments, no leading zeros, no control characters in strings.

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

/// What the validator expects next.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value (the document's, an array element's, or a member's).
    Value,
    /// A value or `]` right after `[`.
    FirstElement,
    /// A key or `}` right after `{`.
    FirstKey,
    /// A key after a comma.
    Key,
    /// `:` after a key.
    Colon,
    /// `,` or the container's close, or the end of the document at depth 0.
    AfterValue,
}

/// The open containers, innermost last: bit `i` set means level `i` is an object.
struct Stack {
    objects: u128,
    depth: usize,
}

impl Stack {
    fn push(&mut self, is_object: bool) -> Result<(), JsonFault> {
        if self.depth == MAX_DEPTH {
            return Err(JsonFault::TooDeep);
        }
        self.objects = (self.objects & !(1 << self.depth)) | (u128::from(is_object) << self.depth);
        self.depth += 1;
        Ok(())
    }

    /// Closes the innermost container if it is of the given kind.
    fn pop(&mut self, is_object: bool) -> bool {
        if self.depth == 0 || self.innermost_is_object() != is_object {
            return false;
        }
        self.depth -= 1;
        true
    }

    fn innermost_is_object(&self) -> bool {
        self.depth > 0 && self.objects & (1 << (self.depth - 1)) != 0
    }
}

/// Checks that `bytes` are exactly one JSON value nested at most [`MAX_DEPTH`] deep.
pub fn validate(bytes: &[u8]) -> Result<(), JsonFault> {
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(JsonFault::Syntax(e.valid_up_to()));
    }
    let mut stack = Stack { objects: 0, depth: 0 };
    let mut expect = Expect::Value;
    let mut at = 0;
    let mut seen_value = false;
    while at < bytes.len() {
        let byte = bytes[at];
        if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            at += 1;
            continue;
        }
        let syntax = JsonFault::Syntax(at);
        (expect, at) = match (expect, byte) {
            (Expect::AfterValue, _) if stack.depth == 0 => return Err(syntax),
            (Expect::AfterValue, b',') if stack.innermost_is_object() => (Expect::Key, at + 1),
            (Expect::AfterValue, b',') => (Expect::Value, at + 1),
            (Expect::AfterValue | Expect::FirstKey, b'}') if stack.pop(true) => (Expect::AfterValue, at + 1),
            (Expect::AfterValue | Expect::FirstElement, b']') if stack.pop(false) => (Expect::AfterValue, at + 1),
            (Expect::FirstKey | Expect::Key, b'"') => (Expect::Colon, string_end(bytes, at).ok_or(syntax)?),
            (Expect::Colon, b':') => (Expect::Value, at + 1),
            (Expect::Value | Expect::FirstElement, b'[') => {
                stack.push(false)?;
                (Expect::FirstElement, at + 1)
            }
            (Expect::Value | Expect::FirstElement, b'{') => {
                stack.push(true)?;
                (Expect::FirstKey, at + 1)
            }
            (Expect::Value | Expect::FirstElement, _) => (Expect::AfterValue, scalar_end(bytes, at).ok_or(syntax)?),
            _ => return Err(syntax),
        };
        seen_value |= expect == Expect::AfterValue;
    }
    if seen_value && stack.depth == 0 && expect == Expect::AfterValue {
        Ok(())
    } else {
        Err(JsonFault::Syntax(bytes.len()))
    }
}

/// The end (exclusive) of the scalar at `at`: a string, number or literal.
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

fn literal_end(bytes: &[u8], at: usize, literal: &[u8]) -> Option<usize> {
    bytes[at..].starts_with(literal).then_some(at + literal.len())
}

/// The end of the string whose opening quote is at `at`, past its closing quote.
fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut pos = at + 1;
    loop {
        // Quotes and backslashes are rare inside strings: jump to the next one, then check the
        // stretch in between for raw control characters.
        let next = pos + memchr::memchr2(b'"', b'\\', &bytes[pos..])?;
        if has_control_byte(&bytes[pos..next]) {
            return None;
        }
        if bytes[next] == b'"' {
            return Some(next + 1);
        }
        pos = escape_end(bytes, next)?;
    }
}

/// Whether `text` holds a byte below 0x20, eight bytes at a time (the string body is most of a JSON
/// request; a byte loop there was the validator's main cost).
fn has_control_byte(text: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = text.chunks_exact(8);
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        // A byte b < 0x20 makes (b - 0x20) borrow into its high bit while b's own high bit is 0.
        if w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0 {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b < 0x20)
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
    fn control_bytes_are_found_at_any_position_and_only_below_0x20() {
        for len in 0..20 {
            for at in 0..len {
                let mut text = vec![b'a'; len];
                text[at] = 0x1f;
                assert!(has_control_byte(&text), "{len} {at}");
                text[at] = 0x20;
                assert!(!has_control_byte(&text), "{len} {at}");
                text[at] = 0xc3;
                assert!(!has_control_byte(&text), "{len} {at}");
            }
        }
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
