//! The cache key: SHA-256 of what decides an answer (front door, gateway model, stream or not, the
//! gateway key's namespace) and the request body in a canonical form, so bodies that differ only
//! in key order or whitespace share an entry. Does not decide whether to cache (`policy`).

use serde_json::Value;

/// Bumped whenever what goes into a key, or the entry format, changes: old entries then miss.
const KEY_VERSION: &[u8] = b"corelay-cache-v1";

/// Deeper JSON is not canonicalised (the request is then not cached): bounds the recursion.
const MAX_DEPTH: usize = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(pub [u8; 32]);

impl Key {
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What identifies one request to the cache.
pub struct KeyInput<'a> {
    /// The client format, spec version included (answers are stored in it).
    pub front_door: &'a str,
    /// The gateway model the client asked for.
    pub model: &'a str,
    /// The gateway key's name: one tenant never reads another's answers.
    pub namespace: &'a str,
    /// A streamed answer replays only as a stream, a buffered one only as a buffered one.
    pub stream: bool,
    pub body: &'a [u8],
}

/// The key and the request's `temperature` (`None` when absent), or `None` when the body is not a
/// JSON object (such a request is never cached).
pub fn derive(input: &KeyInput<'_>) -> Option<(Key, Option<f64>)> {
    if crate::json_check::validate(input.body).is_err() {
        return None;
    }
    let body: Value = serde_json::from_slice(input.body).ok()?;
    let object = body.as_object()?;
    let temperature = object.get("temperature").and_then(Value::as_f64);
    let mut canonical = Vec::with_capacity(input.body.len());
    write_canonical(&body, 0, &mut canonical)?;
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [KEY_VERSION, input.front_door.as_bytes(), input.model.as_bytes(), input.namespace.as_bytes()] {
        // Length-prefixed, so no two splits of the same bytes collide.
        digest.update(&(part.len() as u64).to_le_bytes());
        digest.update(part);
    }
    digest.update(&[u8::from(input.stream)]);
    digest.update(&canonical);
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.finish().as_ref());
    Some((Key(key), temperature))
}

/// JSON with object keys sorted at every level and no whitespace.
fn write_canonical(value: &Value, depth: usize, out: &mut Vec<u8>) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (name, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, name).ok()?;
                out.push(b':');
                write_canonical(item, depth + 1, out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, depth + 1, out)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).ok()?,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(front_door: &str, namespace: &str, stream: bool, body: &str) -> Key {
        let input = KeyInput { front_door, model: "m", namespace, stream, body: body.as_bytes() };
        derive(&input).expect("a JSON object").0
    }

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        let a =
            key("openai", "", false, r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0}"#);
        let b = key(
            "openai",
            "",
            false,
            r#"{ "temperature": 0, "messages": [ {"content":"hi", "role":"user"} ], "model":"m" }"#,
        );
        assert_eq!(a, b);
    }

    #[test]
    fn namespace_front_door_stream_and_content_all_matter() {
        let body = r#"{"messages":[{"role":"user","content":"hi"}]}"#;
        let base = key("openai", "team-a", false, body);
        assert_ne!(base, key("openai", "team-b", false, body));
        assert_ne!(base, key("anthropic", "team-a", false, body));
        assert_ne!(base, key("openai", "team-a", true, body));
        assert_ne!(base, key("openai", "team-a", false, r#"{"messages":[{"role":"user","content":"ho"}]}"#));
        // Parts are length-prefixed: moving bytes between namespace and front door changes the key.
        assert_ne!(key("ab", "c", false, body), key("a", "bc", false, body));
    }

    #[test]
    fn temperature_is_read_and_non_objects_are_refused() {
        let input =
            KeyInput { front_door: "x", model: "m", namespace: "", stream: false, body: br#"{"temperature":0.5}"# };
        assert_eq!(derive(&input).unwrap().1, Some(0.5));
        for body in [&b"[1]"[..], b"not json", b""] {
            assert!(derive(&KeyInput { body, ..input }).is_none());
        }
    }
}
