//! The fuzz target bodies, one `pub fn(&[u8])` per target, shared by the cargo-fuzz binaries
//! (fuzz/fuzz_targets/*.rs, nightly) and the corpus replay and proptests (tests/fuzz_replay.rs,
//! stable), both of which include this file with `#[path]`. It owns the properties each decoder must
//! keep on hostile input; it does not own corpora, fuzzer settings or the decoders themselves.
//!
//! Beyond "no panic, no hang", each target checks something that could fail:
//! - every incremental decoder gives the same result whether its input arrives whole or split at
//!   arbitrary offsets (the split points come from the input's first byte, so the fuzzer steers them);
//! - a parsed head parses the same again from exactly the bytes it said it consumed, and a response
//!   head reads exactly as httparse reads it (Corelay reads plain heads itself, see `http::plain_head`);
//! - a provider stream translator ends with exactly one terminal event, last;
//! - every front-door encoder turns any internal stream into SSE whose every `data` is JSON (or
//!   `[DONE]`), so a client's SDK never chokes on a half-written event;
//! - the pass-through stream audit reaches the same verdicts however the provider's bytes arrive,
//!   and every payload it releases is JSON;
//! - a payload judged by its difference from the one before passes exactly as it passes alone.

#![allow(dead_code)]

use corelay::api::{ai_sdk, anthropic_messages, openai_chat, openai_responses, route_fields};
use corelay::aws::eventstream::{self, Decoder as FrameDecoder, EventStreamError};
use corelay::chat::StreamEvent;
use corelay::http::BodyFraming;
use corelay::http::body::{BodyDecoder, BodyError};
use corelay::http::request::{RequestLimits, parse_request_head};
use corelay::http::response::parse_response_head;
use corelay::json_check::{self, JsonFault};
use corelay::providers::bedrock::Api;
use corelay::providers::openai_responses as openai_responses_provider;
use corelay::providers::{Translator, anthropic, bedrock, gemini, openai_chat as openai_chat_provider};
use corelay::sse::PassThrough;
use corelay::sse::audit::StreamFormat;
use corelay::sse::decoder::{SseDecoder, SseError};

/// Response heads are bounded like the proxy bounds them; small enough that the limit is reachable.
const MAX_RESPONSE_HEAD: usize = 8 * 1024;
/// Small limits make the "too large" paths reachable within a fuzzer's input sizes.
const SMALL_SSE_EVENT: usize = 300;
const SMALL_FRAME: usize = 4096;
const SMALL_BODY: usize = 1024;

/// Splits `data` into the input proper and the pieces it is fed in. The first byte picks the piece
/// sizes (1..=32, varying along the input), so a corpus file fixes its own split.
pub fn split(data: &[u8]) -> (&[u8], Vec<&[u8]>) {
    let Some((&seed, rest)) = data.split_first() else { return (data, Vec::new()) };
    let mut pieces = Vec::new();
    let mut at = 0;
    let mut i = 0usize;
    while at < rest.len() {
        let size = 1 + (usize::from(seed).wrapping_mul(i + 7) ^ i) % 32;
        let end = (at + size).min(rest.len());
        pieces.push(&rest[at..end]);
        at = end;
        i += 1;
    }
    (rest, pieces)
}

// ---- HTTP/1.1 ----

/// Request head: no panic; a complete head consumed no more than it had and re-parses identically
/// from exactly those bytes; its body framing then drives a body decoder over what follows.
pub fn request_head(data: &[u8]) {
    let limits = RequestLimits { max_head_bytes: 4096, max_headers: 32 };
    let Ok(Some((head, consumed))) = parse_request_head(data, &limits) else { return };
    assert!(consumed <= data.len(), "consumed {consumed} of {}", data.len());
    let again = parse_request_head(&data[..consumed], &limits);
    assert_eq!(again, Ok(Some((head.clone(), consumed))), "head re-parse from its own bytes differs");
    let fields: Vec<_> = head.headers.iter().map(|(name, value)| (name.to_owned(), value.to_vec())).collect();
    let (method, target, view) = httparse_request(data).expect("httparse reads a head Corelay read");
    assert_eq!(view, (head.minor_version, fields, consumed), "a head read differently from httparse");
    assert_eq!(method, head.method());
    // The origin form of an absolute-form target is its tail.
    assert!(target.ends_with(head.target()) && (target == head.target() || !target.starts_with('/')));
    let _ = (head.method(), head.path(), head.header("host"));
    let mut out = Vec::new();
    let _ = BodyDecoder::new(head.framing).decode_into(&data[consumed..], &mut out, SMALL_BODY);
}

/// Response head, read as the proxy reads one: 1xx heads are skipped and the next parsed from the
/// same buffer. The first byte says whether the request was HEAD.
pub fn response_head(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else { return };
    let request_was_head = flags & 1 == 1;
    // Each round consumes at least the shortest head, so this ends; the cap is a second guard.
    for _ in 0..64 {
        let Ok(Some((head, consumed))) = parse_response_head(rest, MAX_RESPONSE_HEAD, request_was_head) else { return };
        assert!(consumed > 0 && consumed <= rest.len(), "consumed {consumed} of {}", rest.len());
        let again = parse_response_head(&rest[..consumed], MAX_RESPONSE_HEAD, request_was_head);
        assert_eq!(again, Ok(Some((head.clone(), consumed))), "head re-parse from its own bytes differs");
        let fields = head.headers.iter().map(|(name, value)| (name.to_owned(), value.to_vec())).collect();
        assert_eq!(
            httparse_response(rest),
            Some((head.status, head.minor_version, fields, consumed)),
            "a head read differently from httparse"
        );
        rest = &rest[consumed..];
        if !head.is_informational() {
            let mut out = Vec::new();
            let _ = BodyDecoder::new(head.framing).decode_into(rest, &mut out, SMALL_BODY);
            return;
        }
    }
}

/// A request head as read: version, fields, length.
type RequestView = (u8, Vec<(String, Vec<u8>)>, usize);

/// httparse's reading of the complete request head at the start of `bytes`: method, target and
/// the rest.
fn httparse_request(bytes: &[u8]) -> Option<(String, String, RequestView)> {
    let mut slots = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut slots);
    let httparse::Status::Complete(consumed) = request.parse(bytes).ok()? else { return None };
    let fields = request.headers.iter().map(|h| (h.name.to_owned(), h.value.to_vec())).collect();
    let line = (request.method?.to_owned(), request.path?.to_owned());
    Some((line.0, line.1, (request.version?, fields, consumed)))
}

/// A response head as read: status, version, fields, length.
type ResponseView = (u16, u8, Vec<(String, Vec<u8>)>, usize);

/// httparse's reading of the complete response head at the start of `bytes`.
fn httparse_response(bytes: &[u8]) -> Option<ResponseView> {
    let mut slots = [httparse::EMPTY_HEADER; 128];
    let mut response = httparse::Response::new(&mut slots);
    let httparse::Status::Complete(consumed) = response.parse(bytes).ok()? else { return None };
    let fields = response.headers.iter().map(|h| (h.name.to_owned(), h.value.to_vec())).collect();
    Some((response.code?, response.version?, fields, consumed))
}

/// Chunked body: whole and split input decode to the same payload, the same error and the same
/// number of consumed bytes; the payload never exceeds the limit.
pub fn chunked_body(data: &[u8]) {
    let (input, pieces) = split(data);
    let whole = decode_body_whole(input);
    let split = decode_body_pieces(&pieces);
    assert_eq!(whole, split, "chunked decoding depends on how the input was split");
    if let Ok((payload, _)) = &whole {
        assert!(payload.len() <= SMALL_BODY);
    }
}

type BodyOutcome = Result<(Vec<u8>, usize), BodyError>;

fn decode_body_whole(input: &[u8]) -> BodyOutcome {
    let mut decoder = BodyDecoder::new(BodyFraming::Chunked);
    let mut out = Vec::new();
    let consumed = decoder.decode_into(input, &mut out, SMALL_BODY)?;
    Ok((out, consumed))
}

fn decode_body_pieces(pieces: &[&[u8]]) -> BodyOutcome {
    let mut decoder = BodyDecoder::new(BodyFraming::Chunked);
    let mut out = Vec::new();
    let mut consumed = 0;
    for piece in pieces {
        // Unconsumed bytes only remain once the body is done; the bytes after it are not the body's.
        let used = decoder.decode_into(piece, &mut out, SMALL_BODY)?;
        consumed += used;
        if decoder.is_done() {
            break;
        }
    }
    Ok((out, consumed))
}

// ---- SSE ----

/// SSE decoder: whole and split input give the same events and the same error, with the default
/// limit and with a small one.
pub fn sse_decoder(data: &[u8]) {
    let (input, pieces) = split(data);
    for limit in [SMALL_SSE_EVENT, corelay::sse::decoder::DEFAULT_MAX_EVENT_BYTES] {
        let whole = decode_sse(&[input], limit);
        let split = decode_sse(&pieces, limit);
        assert_eq!(whole, split, "SSE decoding depends on how the input was split (limit {limit})");
    }
}

type SseOutcome = (Vec<(Vec<u8>, Vec<u8>)>, Option<SseError>);

fn decode_sse(pieces: &[&[u8]], limit: usize) -> SseOutcome {
    let mut decoder = SseDecoder::with_max_event_bytes(limit);
    let mut events = Vec::new();
    for piece in pieces {
        let mut rest = *piece;
        loop {
            match decoder.next_event(&mut rest) {
                Ok(Some(event)) => events.push((event.name.to_vec(), event.data.to_vec())),
                Ok(None) => break,
                Err(error) => return (events, Some(error)),
            }
        }
    }
    match decoder.finish() {
        Ok(Some(event)) => events.push((event.name.to_vec(), event.data.to_vec())),
        Ok(None) => {}
        Err(error) => return (events, Some(error)),
    }
    (events, None)
}

// ---- AWS event stream ----

/// Event-stream decoder: whole and split input give the same frames and the same error; every
/// frame's headers and Bedrock helpers can be read without panicking.
pub fn aws_eventstream(data: &[u8]) {
    let (input, pieces) = split(data);
    let whole = decode_frames(&[input]);
    let split = decode_frames(&pieces);
    assert_eq!(whole, split, "event-stream decoding depends on how the input was split");
    let mut scratch = Vec::new();
    let _ = eventstream::decode_chunk_bytes(input, &mut scratch);
    let _ = eventstream::exception_message(input);
}

/// Per frame: its total length, its headers (debug-printed) and its payload.
type FrameOutcome = (Vec<(usize, String, Vec<u8>)>, Option<EventStreamError>);

fn decode_frames(pieces: &[&[u8]]) -> FrameOutcome {
    let mut decoder = FrameDecoder::with_max_frame_len(SMALL_FRAME);
    let mut frames = Vec::new();
    let mut scratch = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    let headers: Vec<_> = frame.headers().collect();
                    let _ = (frame.kind(), frame.exception_message(), frame.decode_chunk_bytes(&mut scratch));
                    frames.push((frame.total_len(), format!("{headers:?}"), frame.payload().to_vec()));
                }
                Ok(None) => break,
                Err(error) => return (frames, Some(error)),
            }
        }
    }
    (frames, decoder.finish().err())
}

// ---- provider stream translators and front-door encoders ----

pub fn translate_anthropic(data: &[u8]) {
    translate(data, || Translator::Anthropic(anthropic::StreamTranslator::new()));
}

pub fn translate_gemini(data: &[u8]) {
    translate(data, || Translator::Gemini(gemini::StreamTranslator::new()));
}

pub fn translate_openai_chat(data: &[u8]) {
    translate(data, || Translator::OpenaiChat(openai_chat_provider::StreamTranslator::new()));
}

pub fn translate_openai_responses(data: &[u8]) {
    translate(data, || Translator::OpenaiResponses(openai_responses_provider::StreamTranslator::new()));
}

pub fn translate_bedrock_converse(data: &[u8]) {
    translate(data, || Translator::Bedrock(bedrock::StreamTranslator::new(Api::Converse, "req-1")));
}

pub fn translate_bedrock_invoke(data: &[u8]) {
    translate(data, || Translator::Bedrock(bedrock::StreamTranslator::new(Api::InvokeAnthropic, "req-1")));
}

/// Feeds the provider bytes whole and split: both give the same events, which end with exactly one
/// terminal event; then every front-door encoder must turn them into well-formed SSE.
fn translate(data: &[u8], make: impl Fn() -> Translator) {
    let (input, pieces) = split(data);
    let whole = run_translator(make(), &[input]);
    let split = run_translator(make(), &pieces);
    assert_eq!(whole, split, "translation depends on how the provider's bytes were split");
    check_stream_contract(&whole);
    encode_for_every_door(&whole);
}

fn run_translator(mut translator: Translator, pieces: &[&[u8]]) -> Vec<StreamEvent> {
    let mut events = Vec::new();
    for piece in pieces {
        translator.feed(piece, &mut events);
    }
    translator.finish(&mut events);
    let _ = translator.usage();
    events
}

/// The internal stream's contract (chat::stream): exactly one terminal event, and it is the last.
fn check_stream_contract(events: &[StreamEvent]) {
    let terminals = events.iter().filter(|e| e.is_terminal()).count();
    assert_eq!(terminals, 1, "a finished stream has exactly one terminal event: {events:?}");
    assert!(events.last().is_some_and(StreamEvent::is_terminal), "the terminal event is last: {events:?}");
}

/// Runs `events` through each front door's stream encoder and checks its output is SSE whose every
/// event carries JSON (OpenAI's `[DONE]` aside).
pub fn encode_for_every_door(events: &[StreamEvent]) {
    let mut chat = openai_chat::ChunkEncoder::new("gw/model", 1_700_000_000, true);
    let mut messages = anthropic_messages::StreamEncoder::new("gw/model");
    let mut responses = openai_responses::StreamEncoder::new("gw/model", 1_700_000_000, "resp_fuzz");
    let mut ai_sdk = ai_sdk::StreamEncoder::new("gw/model").with_timestamp_millis(1_700_000_000_000);
    let mut outs = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for event in events {
        chat.encode(event, &mut outs[0]);
        messages.encode(event, &mut outs[1]);
        responses.encode(event, &mut outs[2]);
        ai_sdk.encode(event, &mut outs[3]);
    }
    for (door, out) in ["openai_chat", "anthropic_messages", "openai_responses", "ai_sdk"].iter().zip(&outs) {
        check_sse_of_json(door, out);
    }
}

fn check_sse_of_json(door: &str, bytes: &[u8]) {
    let (events, error) = decode_sse(&[bytes], corelay::sse::decoder::DEFAULT_MAX_EVENT_BYTES);
    assert_eq!(error, None, "{door}: encoder output is not decodable SSE");
    for (_, data) in events {
        if data == b"[DONE]" {
            continue;
        }
        let parsed = serde_json::from_slice::<serde::de::IgnoredAny>(&data);
        assert!(parsed.is_ok(), "{door}: event data is not JSON: {}", String::from_utf8_lossy(&data));
    }
}

// ---- front-door request parsers ----

/// Every front door's request parser and the routing-field extraction on an arbitrary body, in the
/// gateway's order: the nesting check first (`json_check::validate`), and the recursive
/// `route_fields::extract` only on a body that check did not refuse as too deep (proxy::dispatch).
pub fn request_bodies(data: &[u8]) {
    let checked = json_check::validate(data);
    trusting_walk_agrees(data);
    let _ = openai_chat::parse_request(data);
    let _ = anthropic_messages::parse_request(data);
    let _ = openai_responses::parse_request(data);
    let _ = ai_sdk::parse_request(data, "gw/model", true);
    let _ = ai_sdk::gateway_options(data);
    if checked == Err(JsonFault::TooDeep) {
        return;
    }
    if let Ok(fields) = route_fields::extract(data) {
        let body = route_fields::provider_body(data, &fields, "provider-model");
        let was_json = serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok();
        let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok();
        assert!(is_json || !was_json, "rewriting the model of a JSON body made it invalid JSON");
    }
}

/// The walk that trusts validated bytes (`json_check::visit_valid_members`, how an answer's usage
/// is read) reports what the validating walk does on every object that walk passes, and on any
/// other bytes ends without a panic.
fn trusting_walk_agrees(data: &[u8]) {
    let mut trusted = Vec::new();
    let walked = json_check::visit_valid_members(data, |key, value| trusted.push((key.to_vec(), value)));
    let mut validated = Vec::new();
    let valid = json_check::visit_members(data, |key, value| validated.push((key.to_vec(), value))).is_ok();
    let object = data.iter().find(|b| !b" \t\n\r".contains(b)) == Some(&b'{');
    if valid && object {
        assert_eq!(walked, Some(()), "the trusting walk stopped on a valid object");
        assert_eq!(trusted, validated, "the trusting walk disagrees with the validating walk");
    }
}

// ---- pass-through stream audit ----

pub fn audit_openai_chat(data: &[u8]) {
    audit(data, StreamFormat::OpenAiChat);
}

pub fn audit_anthropic_messages(data: &[u8]) {
    audit(data, StreamFormat::AnthropicMessages);
}

pub fn audit_openai_responses(data: &[u8]) {
    audit(data, StreamFormat::OpenAiResponses);
}

/// A passed-through stream (`PassThrough`: the audit and the model rewrite) fed as the relay feeds
/// it: each read's bytes, then the body's end, releasing whole events after each. Whole and split
/// input must agree on every verdict and on the bytes released.
fn audit(data: &[u8], format: StreamFormat) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let (input, pieces) = split(rest);
    let format = [format, StreamFormat::OpenAiChat, StreamFormat::AnthropicMessages][usize::from(selector % 3)];
    let whole = run_audit(format, &[input]);
    let mut split = run_audit(format, &pieces);
    // A CRLF split across reads ends its line at the CR; the LF then goes out with the next event,
    // so when that event is bad the split run released one byte less, that LF. The client sees the
    // same lines either way, so that one byte is forgiven.
    if let (Err(whole_out), Err(split_out)) = (&whole.3, &mut split.3)
        && whole_out.ends_with(b"\r\n")
        && whole_out[..whole_out.len() - 1] == split_out[..]
    {
        split_out.push(b'\n');
    }
    assert_eq!(whole, split, "the pass-through depends on how the provider's bytes were split");
    let (Ok(released) | Err(released)) = &whole.3;
    every_released_payload_is_json(format, released);
}

/// Whatever went out, judged by the full walk or by its difference from an earlier payload
/// (`sse::by_difference`), is JSON: every `data:` payload released passes `json_check::validate`.
fn every_released_payload_is_json(format: StreamFormat, released: &[u8]) {
    for line in released.split(|&b| b == b'\n' || b == b'\r') {
        let Some(payload) = line.strip_prefix(b"data:") else { continue };
        let start = payload.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(payload.len());
        let payload = &payload[start..];
        if format == StreamFormat::OpenAiChat && payload == b"[DONE]" {
            continue;
        }
        assert!(
            corelay::json_check::validate(payload).is_ok(),
            "a released payload is not JSON: {:?}",
            String::from_utf8_lossy(payload)
        );
    }
}

/// (complete, committed, data events, then the bytes released: `Err` when a bad event stopped the
/// stream, with what went out before it).
type AuditOutcome = (bool, bool, u64, Result<Vec<u8>, Vec<u8>>);

fn run_audit(format: StreamFormat, pieces: &[&[u8]]) -> AuditOutcome {
    let mut events = PassThrough::new("acme/fuzz", format, 0);
    let mut out = Vec::new();
    for piece in pieces.iter().map(|piece| Some(*piece)).chain([None]) {
        let judged = events.feed(piece);
        events.release(&mut out);
        if judged.is_err() {
            let audit = events.audit();
            return (audit.is_complete(), audit.is_committed(), audit.data_events(), Err(out));
        }
    }
    let audit = events.audit();
    (audit.is_complete(), audit.is_committed(), audit.data_events(), Ok(out))
}

/// Two data payloads judged one after the other against each judged alone: the input's first byte
/// picks the format, and its first LF splits the rest into the two payloads (line ends inside them
/// are dropped, so each is one `data:` line). A stream of the first then the second must release
/// exactly what a stream of the first alone and one of the second alone release, one after the
/// other, and fail where they fail. The second is judged by its difference from the first wherever
/// it can be (`sse::by_difference`), a lone payload always by the full walk, so a payload accepted
/// by difference that the walk refuses, or a model value replaced in the wrong place, shows here.
pub fn audit_by_difference(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let format = [StreamFormat::OpenAiChat, StreamFormat::AnthropicMessages, StreamFormat::OpenAiResponses]
        [usize::from(selector % 3)];
    let (first, second) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &b"{}"[..]),
    };
    let event = |payload: &[u8]| {
        let mut event = b"data: ".to_vec();
        event.extend(payload.iter().filter(|&&b| b != b'\n' && b != b'\r'));
        event.extend_from_slice(b"\n\n");
        event
    };
    let (first, second) = (event(first), event(second));
    let released = |stream: &[u8]| run_audit(format, &[stream]).3;
    let together = released(&[first.clone(), second.clone()].concat());
    let (first_alone, second_alone) = (released(&first), released(&second));
    let expected = match first_alone {
        Ok(out) => match second_alone {
            Ok(rest) => Ok([out, rest].concat()),
            Err(_) => Err(out),
        },
        Err(out) => Err(out),
    };
    assert_eq!(together, expected, "judged after another payload, a payload passes otherwise than alone");
}

/// A target body: panics (an assertion or a bug) on input it does not survive.
pub type Target = fn(&[u8]);

/// Every target by name, which is also its corpus directory's name (fuzz/corpus/NAME).
pub const TARGETS: &[(&str, Target)] = &[
    ("request_head", request_head),
    ("response_head", response_head),
    ("chunked_body", chunked_body),
    ("sse_decoder", sse_decoder),
    ("aws_eventstream", aws_eventstream),
    ("translate_anthropic", translate_anthropic),
    ("translate_gemini", translate_gemini),
    ("translate_openai_chat", translate_openai_chat),
    ("translate_openai_responses", translate_openai_responses),
    ("translate_bedrock_converse", translate_bedrock_converse),
    ("translate_bedrock_invoke", translate_bedrock_invoke),
    ("request_bodies", request_bodies),
    ("audit_openai_chat", audit_openai_chat),
    ("audit_by_difference", audit_by_difference),
    ("audit_anthropic_messages", audit_anthropic_messages),
    ("audit_openai_responses", audit_openai_responses),
];
