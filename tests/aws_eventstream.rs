//! The AWS event-stream decoder against the shared recordings: the framing vectors in
//! `aws-eventstream/` (valid ones decode to their documented headers and payload, invalid ones fail with
//! their specific error) and the Bedrock streams in `bedrock/` (every frame against its `.decoded.jsonl`
//! line, chunk payloads decoded, exception frames recognised). Each input is fed whole, split in two at
//! every byte offset, and one byte at a time. Hand-written edge cases sit next to the decoder.

use std::path::{Path, PathBuf};

use corelay::aws::eventstream::{Decoder, EventStreamError, Frame, FrameKind, HeaderValue};
use serde_json::Value;

/// The fixture tree in this repository (`tests/fixtures`).
fn fixtures_root() -> PathBuf {
    PathBuf::from(corelay::fixture_path!())
}

/// Every `*.bin` file in `dir`, sorted by name.
fn bin_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "bin"))
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap()))
        .collect();
    files.sort();
    files
}

/// A header value detached from the decoder's buffer, for comparisons.
#[derive(Debug, Clone, PartialEq)]
enum Owned {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    Str(String),
    Timestamp(i64),
    Uuid([u8; 16]),
}

impl From<HeaderValue<'_>> for Owned {
    fn from(value: HeaderValue<'_>) -> Self {
        match value {
            HeaderValue::Bool(v) => Self::Bool(v),
            HeaderValue::Byte(v) => Self::Byte(v),
            HeaderValue::Short(v) => Self::Short(v),
            HeaderValue::Int(v) => Self::Int(v),
            HeaderValue::Long(v) => Self::Long(v),
            HeaderValue::Bytes(v) => Self::Bytes(v.to_vec()),
            HeaderValue::String(v) => Self::Str(v.to_owned()),
            HeaderValue::Timestamp(v) => Self::Timestamp(v),
            HeaderValue::Uuid(v) => Self::Uuid(v),
        }
    }
}

/// A frame's headers, in wire order.
type HeaderList = Vec<(String, Owned)>;

/// A decoded frame detached from the decoder.
#[derive(Debug, Clone, PartialEq)]
struct OwnedFrame {
    headers: HeaderList,
    payload: Vec<u8>,
    total_len: usize,
    headers_len: usize,
    kind: String,
}

impl OwnedFrame {
    fn from_frame(frame: &Frame<'_>) -> Self {
        Self {
            headers: frame.headers().map(|h| (h.name.to_owned(), Owned::from(h.value))).collect(),
            payload: frame.payload().to_vec(),
            total_len: frame.total_len(),
            headers_len: frame.headers_len(),
            kind: format!("{:?}", frame.kind()),
        }
    }
}

/// What a whole stream decodes to: its frames, then the error that ended it, if any (a stream cut
/// inside a frame counts, via `finish`).
#[derive(Debug, PartialEq)]
struct Outcome {
    frames: Vec<OwnedFrame>,
    error: Option<EventStreamError>,
}

fn decode_pieces<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(OwnedFrame::from_frame(&frame)),
                Ok(None) => break,
                Err(error) => return Outcome { frames, error: Some(error) },
            }
        }
    }
    Outcome { frames, error: decoder.finish().err() }
}

/// Decodes `bytes` whole, split in two at every offset, and one byte at a time; every way must give
/// the same outcome, which is returned.
fn decode_every_way(name: &str, bytes: &[u8]) -> Outcome {
    let whole = decode_pieces([bytes]);
    for at in 0..=bytes.len() {
        let (head, tail) = bytes.split_at(at);
        assert_eq!(decode_pieces([head, tail]), whole, "{name} split at {at}");
    }
    assert_eq!(decode_pieces(bytes.chunks(1)), whole, "{name} one byte at a time");
    whole
}

fn string_header(name: &str, value: &str) -> (String, Owned) {
    (name.to_owned(), Owned::Str(value.to_owned()))
}

/// The documented content of the valid vectors (MANIFEST.meta.json; values as in the smithy-rs
/// tests these vectors come from).
fn expected_valid(name: &str) -> Option<(HeaderList, &'static [u8])> {
    let h = |name: &str, value: Owned| (name.to_owned(), value);
    Some(match name {
        "valid_with_all_headers_and_payload.bin" => (
            vec![
                h("true", Owned::Bool(true)),
                h("false", Owned::Bool(false)),
                h("byte", Owned::Byte(50)),
                h("short", Owned::Short(20_000)),
                h("int", Owned::Int(500_000)),
                h("long", Owned::Long(50_000_000_000)),
                h("bytes", Owned::Bytes(b"some bytes".to_vec())),
                h("str", Owned::Str("some str".into())),
                // 5,000,000 seconds after the epoch, in milliseconds.
                h("time", Owned::Timestamp(5_000_000_000)),
                h("uuid", Owned::Uuid(0xb79bc914_de21_4e13_b8b2_bc47e85b7f0b_u128.to_be_bytes())),
            ],
            b"some payload",
        ),
        "valid_no_headers.bin" => (Vec::new(), b"another test payload"),
        "valid_empty_payload.bin" => (vec![h("some-header", Owned::Short(500))], b""),
        _ => return None,
    })
}

/// The specific error each invalid vector must fail with.
fn expected_invalid(name: &str) -> Option<EventStreamError> {
    Some(match name {
        "invalid_prelude_checksum.bin" => {
            EventStreamError::PreludeCrcMismatch { expected: 0xDEAD_BEEF, computed: 0x8BB4_95FB }
        }
        "invalid_message_checksum.bin" => {
            EventStreamError::MessageCrcMismatch { expected: 0xDEAD_BEEF, computed: 0x01A0_5860 }
        }
        // Name length 255 in a 122-byte headers section.
        "invalid_header_name_length.bin" => EventStreamError::InvalidHeaderNameLength,
        // Name length 102 in a 77-byte headers section; the file's bytes after the 93-byte frame are
        // never read as part of it.
        "invalid_header_name_length_too_long.bin" => EventStreamError::InvalidHeaderNameLength,
        // The u16 length of the last string value is itself cut by the end of the headers.
        "invalid_header_string_length_cut_off.bin" => EventStreamError::HeaderValueCutOff,
        // A string value of 65535 bytes in a 122-byte headers section.
        "invalid_header_string_value_length.bin" => EventStreamError::HeaderValueCutOff,
        "invalid_header_value_type.bin" => EventStreamError::InvalidHeaderValueType(0x60),
        // 77 bytes of headers cannot fit an 89-byte frame beside 16 bytes of prelude and CRC.
        "invalid_headers_length.bin" => EventStreamError::HeadersLengthPastFrame { headers_len: 77, total_len: 89 },
        _ => return None,
    })
}

#[test]
fn framing_vectors_decode_or_fail_as_specified() {
    let files = bin_files(&fixtures_root().join("aws-eventstream"));
    let (mut valid, mut invalid, mut recorded) = (0, 0, 0);
    for (name, bytes) in &files {
        let outcome = decode_every_way(name, bytes);
        if let Some((headers, payload)) = expected_valid(name) {
            assert_eq!(outcome.error, None, "{name}");
            assert_eq!(outcome.frames.len(), 1, "{name}");
            assert_eq!(outcome.frames[0].headers, headers, "{name}");
            assert_eq!(outcome.frames[0].payload, payload, "{name}");
            assert_eq!(outcome.frames[0].total_len, bytes.len(), "{name}");
            valid += 1;
        } else if let Some(error) = expected_invalid(name) {
            assert_eq!(outcome.frames, [], "{name}");
            assert_eq!(outcome.error, Some(error), "{name}");
            invalid += 1;
        } else {
            // Anything else must be a recording with its own decode beside it.
            check_against_jsonl(name, bytes, &outcome, &fixtures_root().join("aws-eventstream"));
            recorded += 1;
        }
    }
    assert_eq!((valid, invalid, recorded), (3, 8, 1), "every vector in aws-eventstream/ was checked");
}

#[test]
fn real_transcribe_exception_frame_is_recognised() {
    let bytes = std::fs::read(fixtures_root().join("aws-eventstream/real-exception-frame-transcribe.bin")).unwrap();
    let mut decoder = Decoder::new();
    decoder.push(&bytes);
    let frame = decoder.next_frame().unwrap().expect("one frame");
    assert_eq!(frame.kind(), FrameKind::Exception("BadRequestException"));
    assert_eq!(frame.message_type(), Some("exception"));
    assert_eq!(frame.content_type(), Some("application/json"));
    assert_eq!(
        frame.exception_message().as_deref(),
        Some("A complete signal was sent without the preceding empty frame.")
    );
    assert_eq!(decoder.finish(), Ok(()));
}

/// Compares a decoded stream with its `.decoded.jsonl`: one line per frame with headers, lengths,
/// the JSON payload and, for Bedrock `chunk` frames, the decoded `bytes`. Returns the frame count.
fn check_against_jsonl(name: &str, bytes: &[u8], outcome: &Outcome, dir: &Path) -> usize {
    assert_eq!(outcome.error, None, "{name}");
    let jsonl_path = dir.join(name.replace(".bin", ".decoded.jsonl"));
    let jsonl = std::fs::read_to_string(&jsonl_path).unwrap_or_else(|e| panic!("{}: {e}", jsonl_path.display()));
    let lines: Vec<Value> = jsonl.lines().map(|line| serde_json::from_str(line).expect("jsonl line")).collect();
    assert_eq!(outcome.frames.len(), lines.len(), "{name}: frame count");
    assert_eq!(outcome.frames.iter().map(|f| f.total_len).sum::<usize>(), bytes.len(), "{name}: frames cover the body");
    for (index, (frame, line)) in outcome.frames.iter().zip(&lines).enumerate() {
        let at = format!("{name} frame {index}");
        check_frame_line(&at, frame, line);
    }
    lines.len()
}

fn check_frame_line(at: &str, frame: &OwnedFrame, line: &Value) {
    let expected_headers: HeaderList = line["headers"]
        .as_object()
        .expect("headers object")
        .iter()
        .map(|(name, value)| string_header(name, value.as_str().expect("string header")))
        .collect();
    let mut actual_headers = frame.headers.clone();
    let mut expected_sorted = expected_headers;
    actual_headers.sort_by(|a, b| a.0.cmp(&b.0));
    expected_sorted.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(actual_headers, expected_sorted, "{at}: headers");
    assert_eq!(Some(frame.total_len as u64), line["total_length"].as_u64(), "{at}: total length");
    assert_eq!(Some(frame.headers_len as u64), line["headers_length"].as_u64(), "{at}: headers length");
    let payload: Value = serde_json::from_slice(&frame.payload).expect("JSON payload");
    assert_eq!(payload, line["payload"], "{at}: payload");
    if let Some(decoded) = line.get("payload_bytes_decoded") {
        let mut bytes = Vec::new();
        corelay::aws::eventstream::decode_chunk_bytes(&frame.payload, &mut bytes).expect("chunk bytes");
        let event: Value = serde_json::from_slice(&bytes).expect("decoded chunk is JSON");
        assert_eq!(&event, decoded, "{at}: decoded chunk bytes");
    }
}

/// Like [`decode_every_way`] for multi-frame recordings, but each split decodes only the frame that
/// holds the split offset and its two neighbours: decoding the whole file for each of its thousands
/// of offsets re-verifies every CRC each time (about 15 s in a debug build) without exercising
/// anything more, since frames away from the split arrive in one contiguous piece either way.
fn decode_every_way_windowed(name: &str, bytes: &[u8]) -> Outcome {
    let whole = decode_pieces([bytes]);
    assert_eq!(decode_pieces(bytes.chunks(1)), whole, "{name} one byte at a time");
    let mut starts = vec![0];
    for frame in &whole.frames {
        starts.push(starts.last().unwrap() + frame.total_len);
    }
    for index in 0..whole.frames.len() {
        let first = index.saturating_sub(1);
        let last = (index + 1).min(whole.frames.len() - 1);
        let window = &bytes[starts[first]..starts[last + 1]];
        let expected = Outcome { frames: whole.frames[first..=last].to_vec(), error: None };
        for at in starts[index]..starts[index + 1] {
            let (head, tail) = window.split_at(at - starts[first]);
            assert_eq!(decode_pieces([head, tail]), expected, "{name} split at {at}");
        }
    }
    whole
}

#[test]
fn bedrock_recordings_decode_frame_by_frame() {
    let dir = fixtures_root().join("bedrock");
    let files = bin_files(&dir);
    let mut counts = Vec::new();
    for (name, bytes) in &files {
        let outcome = decode_every_way_windowed(name, bytes);
        let frames = check_against_jsonl(name, bytes, &outcome, &dir);
        counts.push((name.as_str(), frames));
    }
    assert_eq!(
        counts,
        [
            ("bedrock-converse-stream-claude-thinking.bin", 25),
            ("bedrock-converse-stream-redacted-thinking.bin", 18),
            ("bedrock-converse-stream-tool-use.bin", 26),
            ("bedrock-converse-stream.bin", 33),
            ("bedrock-invoke-stream-anthropic.RECONSTRUCTED.bin", 6),
            ("bedrock-invoke-stream-throttling-exception.RECONSTRUCTED.bin", 4),
        ]
    );
}

/// Decodes a whole Bedrock recording and returns every frame's kind with its payload.
fn bedrock_frames(name: &str) -> Vec<(String, Vec<u8>, Option<String>)> {
    let bytes = std::fs::read(fixtures_root().join("bedrock").join(name)).unwrap();
    let mut decoder = Decoder::new();
    decoder.push(&bytes);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.next_frame().unwrap() {
        frames.push((format!("{:?}", frame.kind()), frame.payload().to_vec(), frame.exception_message()));
    }
    decoder.finish().unwrap();
    frames
}

#[test]
fn converse_stream_frames_are_events_in_protocol_order() {
    let kinds: Vec<String> = bedrock_frames("bedrock-converse-stream.bin").into_iter().map(|f| f.0).collect();
    assert_eq!(kinds.first().map(String::as_str), Some("Event(\"messageStart\")"));
    assert!(kinds[1..30].iter().all(|k| k == "Event(\"contentBlockDelta\")"), "{kinds:?}");
    assert_eq!(
        kinds[30..],
        ["Event(\"contentBlockStop\")", "Event(\"messageStop\")", "Event(\"metadata\")"].map(String::from)
    );
}

#[test]
fn invoke_stream_chunks_decode_to_anthropic_events() {
    let frames = bedrock_frames("bedrock-invoke-stream-anthropic.RECONSTRUCTED.bin");
    let mut types = Vec::new();
    let mut bytes = Vec::new();
    for (kind, payload, _) in &frames {
        assert_eq!(kind, "Event(\"chunk\")");
        bytes.clear();
        corelay::aws::eventstream::decode_chunk_bytes(payload, &mut bytes).unwrap();
        let event: Value = serde_json::from_slice(&bytes).unwrap();
        types.push(event["type"].as_str().unwrap().to_owned());
        if event["type"] == "message_stop" {
            let metrics = &event["amazon-bedrock-invocationMetrics"];
            assert!(metrics["inputTokenCount"].is_u64() && metrics["outputTokenCount"].is_u64(), "{event}");
        }
    }
    assert_eq!(types.first().map(String::as_str), Some("message_start"));
    assert_eq!(types.last().map(String::as_str), Some("message_stop"));
}

#[test]
fn throttling_exception_arrives_after_chunks() {
    let frames = bedrock_frames("bedrock-invoke-stream-throttling-exception.RECONSTRUCTED.bin");
    let kinds: Vec<&str> = frames.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        kinds,
        ["Event(\"chunk\")", "Event(\"chunk\")", "Event(\"chunk\")", "Exception(\"throttlingException\")"]
    );
    assert_eq!(frames[3].2.as_deref(), Some("Too many requests, please wait before trying again."));
}

#[test]
fn a_stream_cut_inside_a_frame_is_reported() {
    let bytes = std::fs::read(fixtures_root().join("bedrock/bedrock-converse-stream.bin")).unwrap();
    let outcome = decode_pieces([&bytes[..bytes.len() - 5]]);
    assert_eq!(outcome.frames.len(), 32);
    let last_frame_len = bytes.len() - outcome.frames.iter().map(|f| f.total_len).sum::<usize>();
    assert_eq!(outcome.error, Some(EventStreamError::Truncated { buffered: last_frame_len - 5 }));
}

#[test]
fn a_corrupted_recording_fails_with_a_crc_error() {
    let mut bytes = std::fs::read(fixtures_root().join("bedrock/bedrock-converse-stream.bin")).unwrap();
    // A payload byte of the second frame (first frame is 143 bytes; 100 bytes in is past its headers).
    bytes[143 + 100] ^= 0x01;
    let outcome = decode_pieces([&bytes[..]]);
    assert_eq!(outcome.frames.len(), 1);
    assert!(matches!(outcome.error, Some(EventStreamError::MessageCrcMismatch { .. })), "{:?}", outcome.error);
}
