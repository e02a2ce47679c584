//! Criterion bench for the HTTP/1.1 codec hot paths: request and response
//! head parsing and chunked body decoding. It does not measure I/O, TLS or
//! SSE rewriting (see `sse_rewrite`).
//!
//! Results (2 vCPU AMD EPYC VM, shared and noisy; criterion `--warm-up-time 1
//! --measurement-time 3`, median [95% CI]). Before and after the heads stopped
//! copying each header into its own `String` and `Vec<u8>` (one copy of the
//! head, fields as spans into it), both measured back to back on 2026-11-26:
//!
//! | bench                                        | owned fields        | spans               |
//! |----------------------------------------------|---------------------|---------------------|
//! | parse_request_head/openai_sdk (17 headers)   | 815 ns [813, 817]   | 450 ns [448, 451]   |
//! | parse_request_head/minimal (1 header)        | 109 ns [108, 111]   | 85 ns [85, 86]      |
//! | parse_response_head/openai_stream (20 hdrs)  | 963 ns [961, 965]   | 499 ns [497, 502]   |
//! | body_chunked_sse_20_events/step (zero-copy)  | 323 ns [319, 327]   | 275 ns [273, 277]   |
//! | body_chunked_sse_20_events/decode_into       | 433 ns [430, 436]   | 405 ns [403, 408]   |
//!
//! The body rows did not change (their code did not): their difference is this
//! machine's noise. (An earlier, busier run on 2026-11-25 measured the owned
//! request head at 1.68 µs.) Raw httparse on the SDK head is ~0.5 µs of the
//! 0.45: the rest is the framing checks and the one copy.
//!
//! Since 2026-12-08 plain heads are read by `http::plain_head` instead of httparse. Base
//! (d5b466f) then the new reader, back to back: request openai_sdk 477 -> 420 ns, minimal 75 ->
//! 102 ns (its 32-field list on the stack is set up for one field), response openai_stream 478 ->
//! 404 ns; the unchanged body rows moved 337 -> 318 and 365 -> 408 ns, this host's noise. Per
//! proxied request the heads cost ~1,000 instructions less (`loadtest/instructions`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use corelay::http::BodyFraming;
use corelay::http::body::BodyDecoder;
use corelay::http::request::{RequestLimits, parse_request_head};
use corelay::http::response::parse_response_head;
use corelay::http::write::{write_chunk, write_last_chunk};

/// Shaped like what the official OpenAI Python SDK sends.
const OPENAI_SDK_REQUEST: &[u8] = b"POST /v1/chat/completions HTTP/1.1\r\n\
host: api.openai.com\r\n\
accept-encoding: gzip, deflate\r\n\
connection: keep-alive\r\n\
accept: application/json\r\n\
content-type: application/json\r\n\
user-agent: OpenAI/Python 1.54.4\r\n\
x-stainless-lang: python\r\n\
x-stainless-package-version: 1.54.4\r\n\
x-stainless-os: Linux\r\n\
x-stainless-arch: x64\r\n\
x-stainless-runtime: CPython\r\n\
x-stainless-runtime-version: 3.12.7\r\n\
authorization: Bearer sk-proj-4f9Qx2LmT7vB8nK1pR6sW3yZ0aC5dE9hJ2kM7nP4qS8tU1vX6wY3zA0bC5dE9fG2hJ\r\n\
x-stainless-async: false\r\n\
x-stainless-retry-count: 0\r\n\
content-length: 142\r\n\
\r\n";

const MINIMAL_REQUEST: &[u8] = b"GET /health HTTP/1.1\r\nhost: a\r\n\r\n";

/// Shaped like an OpenAI streaming chat completion response behind Cloudflare.
const OPENAI_STREAM_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Date: Wed, 25 Nov 2026 10:00:00 GMT\r\n\
Content-Type: text/event-stream; charset=utf-8\r\n\
Transfer-Encoding: chunked\r\n\
Connection: keep-alive\r\n\
access-control-expose-headers: X-Request-ID\r\n\
openai-organization: user-abc123def456\r\n\
openai-processing-ms: 187\r\n\
openai-version: 2020-10-01\r\n\
x-ratelimit-limit-requests: 10000\r\n\
x-ratelimit-limit-tokens: 30000000\r\n\
x-ratelimit-remaining-requests: 9999\r\n\
x-ratelimit-remaining-tokens: 29999975\r\n\
x-ratelimit-reset-requests: 6ms\r\n\
x-ratelimit-reset-tokens: 0s\r\n\
x-request-id: req_8f3a2b1c9d4e5f6a7b8c9d0e1f2a3b4c\r\n\
strict-transport-security: max-age=31536000; includeSubDomains; preload\r\n\
cf-cache-status: DYNAMIC\r\n\
Server: cloudflare\r\n\
CF-RAY: 8e1f2a3b4c5d6e7f-FRA\r\n\
alt-svc: h3=\":443\"; ma=86400\r\n\
\r\n";

/// 20 chat.completion.chunk events, one per chunk as OpenAI sends them.
fn sse_chunked_body() -> Vec<u8> {
    let words = [
        "Hello",
        " there",
        "!",
        " How",
        " can",
        " I",
        " help",
        " you",
        " today",
        "?",
        " I",
        " am",
        " a",
        " large",
        " language",
        " model",
        " built",
        " to",
        " assist",
    ];
    let mut body = Vec::new();
    let mut event = Vec::new();
    for word in words {
        event.clear();
        event.extend_from_slice(
            b"data: {\"id\":\"chatcmpl-AbC123dEf456GhI789\",\"object\":\"chat.completion.chunk\",\
\"created\":1764064800,\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_0ba0d124f1\",\
\"choices\":[{\"index\":0,\"delta\":{\"content\":\"",
        );
        event.extend_from_slice(word.as_bytes());
        event.extend_from_slice(b"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
        write_chunk(&mut body, &event);
    }
    write_chunk(&mut body, b"data: [DONE]\n\n");
    write_last_chunk(&mut body);
    body
}

fn request_heads(c: &mut Criterion) {
    let limits = RequestLimits { max_head_bytes: 16 * 1024, max_headers: 64 };
    let mut group = c.benchmark_group("parse_request_head");
    for (name, raw) in [("openai_sdk", OPENAI_SDK_REQUEST), ("minimal", MINIMAL_REQUEST)] {
        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_function(name, |b| b.iter(|| parse_request_head(black_box(raw), &limits)));
    }
    group.finish();
}

fn response_heads(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse_response_head");
    group.throughput(Throughput::Bytes(OPENAI_STREAM_RESPONSE.len() as u64));
    group.bench_function("openai_stream", |b| {
        b.iter(|| parse_response_head(black_box(OPENAI_STREAM_RESPONSE), 16 * 1024, false))
    });
    group.finish();
}

/// The zero-copy path a streaming proxy uses: walk the body, touch payload ranges.
fn step_all(body: &[u8]) -> usize {
    let mut dec = BodyDecoder::new(BodyFraming::Chunked);
    let mut pos = 0;
    let mut payload = 0;
    while let Ok(step) = dec.step(&body[pos..]) {
        if let Some(range) = step.data {
            payload += black_box(&body[pos + range.start..pos + range.end]).len();
        }
        if step.consumed == 0 {
            break;
        }
        pos += step.consumed;
    }
    payload
}

fn chunked_body(c: &mut Criterion) {
    let body = sse_chunked_body();
    let mut group = c.benchmark_group("body_chunked_sse_20_events");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("step", |b| b.iter(|| step_all(black_box(&body))));
    let mut out = Vec::with_capacity(body.len());
    group.bench_function("decode_into", |b| {
        b.iter(|| {
            out.clear();
            let mut dec = BodyDecoder::new(BodyFraming::Chunked);
            dec.decode_into(black_box(&body), &mut out, 1 << 20)
        })
    });
    group.finish();
}

criterion_group!(benches, request_heads, response_heads, chunked_body);
criterion_main!(benches);
