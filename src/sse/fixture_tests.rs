//! Tests [`PassThrough`] against the recorded OpenAI chat streams in `tests/fixtures`, with an
//! expected output built by an independent oracle (serde_json plus plain text substitution). It does
//! not test hand-written edge cases; those sit next to the code in `pass_through.rs`.

use std::path::PathBuf;

use super::PassThrough;
use super::audit::StreamFormat;

const GATEWAY_MODEL: &str = "acme/chat-small";

/// The recorded OpenAI chat streams in this repository (`tests/fixtures/openai/chat`).
fn chat_fixture_dir() -> PathBuf {
    PathBuf::from(crate::fixture_path!("openai/chat"))
}

/// Every `*.sse` file of the OpenAI chat fixtures, sorted, with its bytes.
fn chat_streams() -> Vec<(String, Vec<u8>)> {
    let dir = chat_fixture_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut streams: Vec<(String, Vec<u8>)> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sse"))
        .map(|path| {
            let bytes = std::fs::read(&path).expect("fixture readable");
            (path.file_name().expect("file name").to_string_lossy().into_owned(), bytes)
        })
        .collect();
    streams.sort();
    assert!(streams.len() >= 5, "expected at least 5 .sse fixtures in {}, found {}", dir.display(), streams.len());
    streams
}

/// The oracle: the expected output and the number of JSON data lines.
///
/// It splits on LF (a CR before it stays with the line content's tail and is handled below), parses
/// each `data:` payload with serde_json, and substitutes the exact text `"model":<original as JSON>`,
/// which must occur exactly once on the line, so it shares nothing with the scanner under test.
fn oracle(stream: &[u8]) -> (Vec<u8>, u64) {
    assert!(
        stream.windows(2).all(|w| w[0] != b'\r' || w[1] == b'\n') && stream.last() != Some(&b'\r'),
        "the oracle only knows LF and CRLF terminators"
    );
    let replacement = format!("\"model\":{}", serde_json::to_string(GATEWAY_MODEL).expect("string"));
    let mut expected = Vec::with_capacity(stream.len());
    let mut json_lines = 0;
    for line in stream.split_inclusive(|&b| b == b'\n') {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        let payload = content.strip_prefix(b"data:").map(|p| p.strip_prefix(b" ").unwrap_or(p));
        let parsed = payload.and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok());
        let Some(serde_json::Value::Object(object)) = parsed else {
            expected.extend_from_slice(line);
            continue;
        };
        json_lines += 1;
        let model = object.get("model").and_then(|m| m.as_str()).expect("every recorded chunk has a model");
        let needle = format!("\"model\":{}", serde_json::to_string(model).expect("string"));
        let text = std::str::from_utf8(line).expect("fixture lines are UTF-8");
        assert_eq!(text.matches(&needle).count(), 1, "oracle needs one {needle} in {text}");
        expected.extend_from_slice(text.replacen(&needle, &replacement, 1).as_bytes());
    }
    (expected, json_lines)
}

/// Feeds `pieces` through a new [`PassThrough`], then the body's end, into `out`; returns how many
/// values it replaced. Every recorded event must pass the audit.
fn run(pieces: &[&[u8]], out: &mut Vec<u8>) -> u64 {
    let mut events = PassThrough::new(GATEWAY_MODEL, StreamFormat::OpenAiChat, 256);
    out.clear();
    for piece in pieces.iter().map(|piece| Some(*piece)).chain([None]) {
        events.feed(piece).expect("recorded events are JSON");
        events.release(out);
    }
    assert!(events.audit().is_complete(), "a recorded stream ends at [DONE]");
    events.rewrites()
}

#[test]
fn fixtures_fed_whole() {
    for (name, stream) in chat_streams() {
        let (expected, json_lines) = oracle(&stream);
        assert!(json_lines > 0, "{name}: no JSON data lines");
        let mut out = Vec::new();
        assert_eq!(run(&[&stream], &mut out), json_lines, "{name}");
        assert!(out == expected, "{name}: output differs from the oracle");
    }
}

/// The costliest test (quadratic in the fixture size), so the offsets are spread over all cores.
#[test]
fn fixtures_split_in_two_at_every_offset() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (name, stream) in chat_streams() {
        let (expected, json_lines) = oracle(&stream);
        std::thread::scope(|scope| {
            for first in 0..threads {
                let (name, stream, expected) = (&name, &stream, &expected);
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for split in (first..=stream.len()).step_by(threads) {
                        let (head, tail) = stream.split_at(split);
                        let rewrites = run(&[head, tail], &mut out);
                        assert_eq!(rewrites, json_lines, "{name} split at {split}");
                        assert!(out == *expected, "{name}: output differs from the oracle when split at {split}");
                    }
                });
            }
        });
    }
}

#[test]
fn fixtures_fed_one_byte_at_a_time() {
    for (name, stream) in chat_streams() {
        let (expected, json_lines) = oracle(&stream);
        let mut out = Vec::new();
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run(&bytes, &mut out), json_lines, "{name}");
        assert!(out == expected, "{name}: output differs from the oracle when fed byte by byte");
    }
}

/// The same streams with CRLF and with CR terminators: only the terminators differ from the
/// oracle's LF output.
#[test]
fn fixtures_with_crlf_and_cr_terminators() {
    for (name, stream) in chat_streams() {
        let (expected, json_lines) = oracle(&stream);
        for terminator in [&b"\r\n"[..], b"\r"] {
            let swap = |bytes: &[u8]| -> Vec<u8> {
                bytes
                    .iter()
                    .flat_map(|b| if *b == b'\n' { terminator } else { std::slice::from_ref(b) })
                    .copied()
                    .collect()
            };
            let (input, expected) = (swap(&stream), swap(&expected));
            let mut out = Vec::new();
            for size in [1, 2, 3, 37, 1460] {
                let pieces: Vec<&[u8]> = input.chunks(size).collect();
                assert_eq!(run(&pieces, &mut out), json_lines, "{name} {terminator:?} /{size}");
                assert!(out == expected, "{name}: output differs with {terminator:?} in pieces of {size}");
            }
        }
    }
}
