//! Rewrites the top-level `"model"` value of a whole (non-streaming) JSON body
//! ([`ModelReplaced`], written straight into the client's buffer after its head, whose length it
//! knows first; [`rewrite_model_in_json`] into a buffer of its own) and escapes the gateway model id for either path
//! ([`escape_json_str`]). Streamed events are rewritten by `PassThrough`, in the same walk that
//! validates them. It does not parse JSON beyond locating the key (see `json_scan`).

use std::ops::Range;

use super::json_scan::validated_model_value_visiting;
use crate::json_check::JsonFault;

/// Non-streaming body: when `json` is valid JSON (checked, bounded in depth) and an object with a
/// top-level "model" string (or a `message` / `response` object's own, as in stream events), append
/// `json` to `out` with that string's content replaced by `model`, JSON-escaped, and return
/// `Ok(true)`; `Ok(false)` and nothing appended when there is no such string; `Err` when `json` is
/// not JSON. `members` is told every top-level member on the way (key as written, value's range):
/// the same walk that validates is where the caller finds the answer's usage.
pub fn rewrite_model_in_json(
    json: &[u8],
    model: &str,
    members: impl FnMut(&[u8], Range<usize>),
    out: &mut Vec<u8>,
) -> Result<bool, JsonFault> {
    let Some(replaced) = ModelReplaced::find(json, model, members)? else {
        return Ok(false);
    };
    replaced.write_into(out);
    Ok(true)
}

/// A whole JSON body whose top-level model value is to be replaced: its length is known before it
/// is written, so it goes straight after a response head rather than through a copy of its own.
#[derive(Debug, Clone)]
pub struct ModelReplaced<'a> {
    json: &'a [u8],
    /// The model value's content, between its quotes.
    span: Range<usize>,
    model: &'a str,
}

impl<'a> ModelReplaced<'a> {
    /// What [`rewrite_model_in_json`] would write, found and not yet written: `None` when `json` has
    /// no model string to replace.
    pub fn find(
        json: &'a [u8],
        model: &'a str,
        members: impl FnMut(&[u8], Range<usize>),
    ) -> Result<Option<ModelReplaced<'a>>, JsonFault> {
        Ok(validated_model_value_visiting(json, members, |_, _| {})?.map(|span| ModelReplaced { json, span, model }))
    }

    pub fn len(&self) -> usize {
        self.json.len() - self.span.len() + escaped_json_str_len(self.model)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn write_into(&self, out: &mut Vec<u8>) {
        // Grown once to the rewritten size, not doubled on the way.
        out.reserve(self.len());
        out.extend_from_slice(&self.json[..self.span.start]);
        escape_json_str(self.model, out);
        out.extend_from_slice(&self.json[self.span.end..]);
    }
}

/// Whether JSON needs `byte` escaped inside a string.
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// Whether any byte of `s` needs escaping. A fold without an early exit, so the compiler checks a
/// vector of bytes at a time: most strings (model names, most text) need none, and are then copied
/// or counted whole.
fn any_needs_escape(s: &str) -> bool {
    s.bytes().fold(false, |any, byte| any | needs_escape(byte))
}

/// How many bytes [`escape_json_str`] writes for `s`.
pub fn escaped_json_str_len(s: &str) -> usize {
    if !any_needs_escape(s) {
        return s.len();
    }
    s.bytes()
        .map(|byte| match byte {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0x00..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

/// JSON-escape a plain string into `out` (no quotes added).
///
/// Escapes what JSON requires: `"`, `\` and the control characters below U+0020 (with the short
/// forms where JSON has them). Everything else, non-ASCII included, is copied as UTF-8.
pub fn escape_json_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if !any_needs_escape(s) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    for &byte in s.as_bytes() {
        let short = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0x00..=0x1f => {
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 0xf)],
                ]);
                continue;
            }
            _ => {
                out.push(byte);
                continue;
            }
        };
        out.extend_from_slice(&[b'\\', short]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_json_str_covers_control_chars() {
        let mut out = Vec::new();
        escape_json_str("\u{0}\u{8}\u{c}\t\r\u{1f} /\u{7f}", &mut out);
        assert_eq!(out, b"\\u0000\\b\\f\\t\\r\\u001f /\x7f");
    }

    #[test]
    fn every_ascii_byte_in_a_string_is_escaped_as_serde_json_escapes_it() {
        // Strings with nothing to escape take the copy-whole path, the rest the byte loop; both must
        // write what an independent JSON writer writes, after what `out` already held.
        for byte in 0..=0x7fu8 {
            let text = format!("model-{}/é", char::from(byte));
            let mut out = b"x".to_vec();
            escape_json_str(&text, &mut out);
            let quoted = serde_json::to_string(&text).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), format!("x{}", &quoted[1..quoted.len() - 1]), "byte {byte:#x}");
            assert_eq!(any_needs_escape(&text), quoted.len() - 2 != text.len(), "byte {byte:#x}");
        }
    }

    #[test]
    fn escaped_length_is_what_escaping_writes_for_every_byte() {
        for byte in 0..=0x7fu8 {
            let text = format!("a{}é", char::from(byte));
            let mut out = Vec::new();
            escape_json_str(&text, &mut out);
            assert_eq!(escaped_json_str_len(&text), out.len(), "byte {byte:#x}");
        }
    }

    #[test]
    fn rewrite_model_in_json_whole_bodies() {
        let rewrite = |body: &[u8], out: &mut Vec<u8>| rewrite_model_in_json(body, "a\"b", |_, _| {}, out);
        let mut out = Vec::new();
        assert_eq!(rewrite(b" {\"id\":1,\"model\" : \"m\",\"x\":[{}]}\n", &mut out), Ok(true));
        assert_eq!(out, b" {\"id\":1,\"model\" : \"a\\\"b\",\"x\":[{}]}\n");
        for (body, judged) in [
            (&b"{\"model\":\"m\""[..], Err(())),
            (b"{\"model\":\"m\"}x", Err(())),
            (b"{\"model\":\"m\"}{}", Err(())),
            (b"", Err(())),
            (b"{\"model\":1}", Ok(false)),
            (b"{\"x\":{\"model\":\"m\"}}", Ok(false)),
            (b"[{\"model\":\"m\"}]", Ok(false)),
            (b"null", Ok(false)),
        ] {
            out.clear();
            assert_eq!(rewrite(body, &mut out).map_err(|_| ()), judged, "{}", String::from_utf8_lossy(body));
            assert!(out.is_empty());
        }
        // The members are told to the caller in the same walk.
        let mut keys = Vec::new();
        let body = b"{\"id\":\"x\",\"model\":\"m\",\"usage\":{\"prompt_tokens\":1}}";
        rewrite_model_in_json(body, "r", |key, value| keys.push((key.to_vec(), value)), &mut out).unwrap();
        assert_eq!(
            keys.iter().map(|(key, _)| key.as_slice()).collect::<Vec<_>>(),
            [&b"\"id\""[..], b"\"model\"", b"\"usage\""]
        );
        assert_eq!(&body[keys[2].1.clone()], b"{\"prompt_tokens\":1}");
    }

    #[test]
    fn a_replaced_body_is_as_long_as_it_says() {
        for model in ["r", "", "a\"b\u{1}c", "é/model"] {
            let body = b" {\"model\" : \"some-provider-model\",\"x\":[{}]}\n";
            let replaced = ModelReplaced::find(body, model, |_, _| {}).unwrap().unwrap();
            let mut out = b"head".to_vec();
            replaced.write_into(&mut out);
            assert_eq!(out.len() - 4, replaced.len(), "{model}");
            serde_json::from_slice::<serde_json::Value>(&out[4..]).expect("still JSON");
        }
    }
}
