//! Rewrites the top-level `"model"` value of a whole (non-streaming) JSON body
//! ([`rewrite_model_in_json`]) and escapes the gateway model id for either path
//! ([`escape_json_str`]). Streamed events are rewritten by `PassThrough`, in the same walk that
//! validates them. It does not parse JSON beyond locating the key (see `json_scan`).

use super::json_scan::{find_model_value, is_complete_object};

/// Non-streaming body: if `json` is a JSON object with a top-level "model" string, append `json` to
/// `out` with that string's content replaced by `replacement_escaped` (already JSON-escaped, without
/// quotes) and return true; otherwise append nothing and return false.
///
/// "A JSON object" is checked structurally (see `json_scan`): one object, closed, with only
/// whitespace around it.
pub fn rewrite_model_in_json(json: &[u8], replacement_escaped: &[u8], out: &mut Vec<u8>) -> bool {
    let Some(span) = find_model_value(json) else {
        return false;
    };
    if !is_complete_object(json) {
        return false;
    }
    out.extend_from_slice(&json[..span.start]);
    out.extend_from_slice(replacement_escaped);
    out.extend_from_slice(&json[span.end..]);
    true
}

/// JSON-escape a plain string into `out` (no quotes added).
///
/// Escapes what JSON requires: `"`, `\` and the control characters below U+0020 (with the short
/// forms where JSON has them). Everything else, non-ASCII included, is copied as UTF-8.
pub fn escape_json_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
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
    fn rewrite_model_in_json_whole_bodies() {
        let mut out = Vec::new();
        assert!(rewrite_model_in_json(b" {\"id\":1,\"model\" : \"m\",\"x\":[{}]}\n", b"a\\\"b", &mut out));
        assert_eq!(out, b" {\"id\":1,\"model\" : \"a\\\"b\",\"x\":[{}]}\n");
        for body in [
            &b"{\"model\":\"m\""[..],
            b"{\"model\":\"m\"}x",
            b"{\"model\":\"m\"}{}",
            b"{\"model\":1}",
            b"{\"x\":{\"model\":\"m\"}}",
            b"[{\"model\":\"m\"}]",
            b"",
            b"null",
        ] {
            out.clear();
            assert!(!rewrite_model_in_json(body, b"r", &mut out), "{}", String::from_utf8_lossy(body));
            assert!(out.is_empty());
        }
    }
}
