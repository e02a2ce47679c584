//! Byte-level JSON scanning: finds the top-level `"model"` string of an object (or of the `message` /
//! `response` object an Anthropic or Responses API event wraps its answer in) in the same walk that
//! checks the payload is one valid JSON value ([`validated_model_value_visiting`]). It does not know about SSE
//! lines, does not rewrite and never allocates.
//!
//! The validation is `json_check::visit_members`. Only an envelope's own `model` is found by a
//! structural scan of the (already validated) envelope object's head, which stops at the key
//! instead of walking the whole answer a response event may carry. A key is recognised by its raw
//! bytes, so `"mod\u0065l"` is not taken for `"model"` (no provider escapes ASCII key names).

use core::ops::Range;

use crate::json_check::{self, JsonFault};

/// Which top-level key a value belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Model,
    /// `message` (Anthropic's `message_start`) or `response` (the Responses API's lifecycle events):
    /// an object whose own top-level `model` is the answer's.
    Envelope,
    Other,
}

impl Key {
    fn of(name: &[u8]) -> Key {
        match name {
            b"model" => Key::Model,
            b"message" | b"response" => Key::Envelope,
            _ => Key::Other,
        }
    }
}

/// Where the scan of the top-level object stands; one step per token.
#[derive(Clone, Copy)]
enum Top {
    /// After `{` or `,`: a key string must come next.
    ExpectKey,
    /// After a key.
    ExpectColon { key: Key },
    /// After `:`.
    ExpectValue { key: Key },
    /// After a value that was not the model: `,` or the closing `}` must come next.
    AfterValue,
}

/// Range of the content (between the quotes) of the first top-level `"model"` string in `payload`
/// (an envelope's object: [`validated_model_value_visiting`] looks one level in, no further).
///
/// `None` when `payload` does not start (after whitespace) with an object, when the object has no
/// top-level `model` key before its end or before the bytes run out, when that key's value is not a
/// string, or when the object is malformed before the key. Only the first top-level `model` key
/// counts: if its value is not a string the payload is left alone even if a duplicate key follows.
/// The bytes after the model value are not looked at: callers validate the payload themselves.
fn scan_model(payload: &[u8]) -> Option<Range<usize>> {
    let open = skip_ws(payload, 0);
    if payload.get(open) != Some(&b'{') {
        return None;
    }
    let mut pos = open + 1;
    let mut state = Top::ExpectKey;
    loop {
        pos = skip_ws(payload, pos);
        let byte = *payload.get(pos)?;
        state = match state {
            Top::ExpectKey if byte == b'"' => {
                let close = string_end(payload, pos + 1)?;
                let key = Key::of(&payload[pos + 1..close]);
                pos = close + 1;
                Top::ExpectColon { key }
            }
            Top::ExpectColon { key } if byte == b':' => {
                pos += 1;
                Top::ExpectValue { key }
            }
            Top::ExpectValue { key: Key::Model } => {
                if byte != b'"' {
                    return None;
                }
                let close = string_end(payload, pos + 1)?;
                return Some(pos + 1..close);
            }
            Top::ExpectValue { .. } => {
                pos = json_check::valid_value_end(payload, pos)?;
                Top::AfterValue
            }
            Top::AfterValue if byte == b',' => {
                pos += 1;
                Top::ExpectKey
            }
            // `}` (the object ended without a model key) or anything malformed.
            _ => return None,
        };
    }
}

/// `Err` unless `payload` is exactly one JSON value nested at most `json_check::MAX_DEPTH` deep
/// (strictly checked, UTF-8 and escapes included); else the range of the content (between the
/// quotes) of its first top-level `"model"` string or, before it, of the top-level `"model"` string
/// of a top-level `message` or `response` object. `None` when the payload is not an object, has no
/// such key, or the first top-level `model` is not a string (a later duplicate does not count).
///
/// The check and the search are one walk (`json_check::visit_members` reports the top-level
/// members as it validates); only a `message` or `response` envelope is walked a second time, one
/// level in.
///
/// `visit` is told about every top-level member on the way (its key as written and its value's
/// range), so a caller that wants another member too (the audit: `usage`) walks once.
///
/// `atom` is told where each key, string value, number and literal lies
/// (`json_check::visit_members_and_atoms`).
pub fn validated_model_value_visiting(
    payload: &[u8],
    mut visit: impl FnMut(&[u8], Range<usize>),
    atom: impl FnMut(json_check::Atom, Range<usize>),
) -> Result<Option<Range<usize>>, JsonFault> {
    let mut model = None;
    let mut decided = false;
    let members = |key: &[u8], value: Range<usize>| {
        visit(key, value.clone());
        if decided {
            return;
        }
        // `key` is as written, quotes included; JSON keeps them, so it is at least 2 bytes.
        match Key::of(&key[1..key.len() - 1]) {
            Key::Model => {
                // Only the first top-level `model` counts, string or not.
                decided = true;
                if payload[value.start] == b'"' {
                    model = Some(value.start + 1..value.end - 1);
                }
            }
            Key::Envelope if payload[value.start] == b'{' => {
                if let Some(inner) = scan_model(&payload[value.clone()]) {
                    decided = true;
                    model = Some(value.start + inner.start..value.start + inner.end);
                }
            }
            Key::Envelope | Key::Other => {}
        }
    };
    json_check::visit_members_and_atoms(payload, members, atom)?;
    Ok(model)
}

/// First index at or after `pos` that is not JSON whitespace (`payload.len()` if none).
fn skip_ws(payload: &[u8], mut pos: usize) -> usize {
    // A plain loop rather than an iterator chain: this runs a few times per event, and debug builds
    // (the test suite) do not inline iterator adapters.
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = payload.get(pos) {
        pos += 1;
    }
    pos
}

/// Index of the quote closing the string whose content starts at `pos` (just after the opening quote).
fn string_end(payload: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let found = pos + memchr::memchr2(b'"', b'\\', payload.get(pos..)?)?;
        if payload[found] == b'"' {
            return Some(found);
        }
        // A backslash escapes exactly one byte; every multi-byte escape (`\u1234`) is harmless after it.
        pos = found + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_in(payload: &str) -> Option<&str> {
        validated_model_value_visiting(payload.as_bytes(), |_, _| {}, |_, _| {}).ok().flatten().map(|r| &payload[r])
    }

    #[test]
    fn the_model_of_an_anthropic_or_responses_envelope_is_found_one_level_down() {
        assert_eq!(model_in(r#"{"type":"message_start","message":{"id":"m","model":"claude"}}"#), Some("claude"));
        assert_eq!(model_in(r#"{"type":"response.created","response":{"id":"r","model":"o3"}}"#), Some("o3"));
        assert_eq!(model_in(r#"{"model":"top","message":{"model":"inner"}}"#), Some("top"));
        assert_eq!(model_in(r#"{"message":{"content":"x"},"model":"after"}"#), Some("after"));
        assert_eq!(model_in(r#"{"message":"model","other":{"model":"no"}}"#), None);
        assert_eq!(model_in(r#"{"message":{"message":{"model":"too deep"}}}"#), None);
        assert_eq!(model_in(r#"{"delta":{"model":"not an envelope"}}"#), None);
    }
}
