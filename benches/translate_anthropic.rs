//! Criterion bench of the translated-stream hot path: Anthropic SSE bytes -> `sse::decoder` ->
//! `providers::anthropic::StreamTranslator` -> `api::openai_chat::ChunkEncoder` -> OpenAI chunk
//! bytes, per event and per recorded stream, with the stages apart so their shares show. It does not
//! check correctness (`tests/golden_anthropic.rs` does).
//!
//! Run: `cargo bench --bench translate_anthropic -- --warm-up-time 1 --measurement-time 3`
//!
//! Results, 2 vCPU AMD EPYC VM shared with other builds, rustc 1.95, 2026-11-25; criterion's
//! median at load average ~1.8 (a run at load ~4 came out 20-50% slower throughout):
//!
//! | bench                                                         | time    | per event |
//! |---------------------------------------------------------------|---------|-----------|
//! | text_delta_event/decode_translate_encode (150-byte event)     | 350 ns  | 350 ns    |
//! | text_delta_event/decode_translate                             | 345 ns  | 345 ns    |
//! | text_delta_event/decode (SSE framing only)                    | 46 ns   | 46 ns     |
//! | text_stream/decode_translate_encode (1,123 B, 7 events)       | 3.25 µs | 460 ns    |
//! | thinking_stream/decode_translate_encode (16.6 KB, 118 events) | 49.8 µs | 420 ns    |
//!
//! So a translated event costs about 0.35-0.45 µs against about 0.12 µs for the pass-through model
//! rewrite (`benches/sse_rewrite.rs`). Nearly all of it is serde_json reading the event (the type
//! and index first, then the member the type names); SSE framing is ~45 ns and writing the OpenAI
//! chunk under 10 ns. Measured and settled on the way: serde copied every optional string
//! (`Option<Cow<str>>` does not borrow; perf showed the allocations, `borrow_opt` removed them), and
//! sonic-rs was no faster than serde_json here, as it first copies each small input into a padded
//! buffer.

use std::hint::black_box;

use corelay::api::openai_chat::ChunkEncoder;
use corelay::chat::StreamEvent;
use corelay::providers::anthropic::StreamTranslator;
use corelay::sse::decoder::SseDecoder;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FIXTURES: &str = corelay::fixture_path!("anthropic/");
const GATEWAY_MODEL: &str = "acme/claude";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{FIXTURES}{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The recorded stream's events, each with its blank line.
fn events(stream: &[u8]) -> Vec<&[u8]> {
    let mut events = Vec::new();
    let mut rest = stream;
    while let Some(end) = memchr::memmem::find(rest, b"\n\n") {
        events.push(&rest[..end + 2]);
        rest = &rest[end + 2..];
    }
    events
}

/// Feeds `input` through translator and encoder, as the proxy's relay loop does per upstream read.
fn relay(
    translator: &mut StreamTranslator,
    encoder: &mut ChunkEncoder,
    input: &[u8],
    batch: &mut Vec<StreamEvent>,
    out: &mut Vec<u8>,
) {
    translator.feed(input, batch);
    for event in batch.drain(..) {
        encoder.encode(&event, out);
    }
}

/// One `text_delta` event of the text recording (its 4th, 150 bytes), in a stream already inside
/// that text block: the steady state of a long answer.
fn per_event(c: &mut Criterion) {
    let stream = fixture("anthropic-messages-stream-text.sse");
    let all = events(&stream);
    let delta = all[3];
    assert!(delta.starts_with(b"event: content_block_delta"));
    let mut group = c.benchmark_group("text_delta_event");
    group.throughput(Throughput::Elements(1));
    let (mut batch, mut out) = (Vec::with_capacity(8), Vec::with_capacity(4096));

    let mut translator = StreamTranslator::new();
    let mut encoder = ChunkEncoder::new(GATEWAY_MODEL, 1_764_115_200, true);
    relay(&mut translator, &mut encoder, &[all[0], all[1]].concat(), &mut batch, &mut out);
    group.bench_function("decode_translate_encode", |b| {
        b.iter(|| {
            out.clear();
            relay(&mut translator, &mut encoder, black_box(delta), &mut batch, &mut out);
            black_box(out.len())
        })
    });

    let mut translator = StreamTranslator::new();
    translator.feed(&[all[0], all[1]].concat(), &mut batch);
    group.bench_function("decode_translate", |b| {
        b.iter(|| {
            batch.clear();
            translator.feed(black_box(delta), &mut batch);
            black_box(batch.len())
        })
    });

    let mut decoder = SseDecoder::new();
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut rest = black_box(delta);
            let mut n = 0;
            while let Ok(Some(event)) = decoder.next_event(&mut rest) {
                n += event.data.len();
            }
            black_box(n)
        })
    });
    group.finish();
}

/// Whole recorded streams, from a fresh translator and encoder each time.
fn whole_streams(c: &mut Criterion) {
    for (name, file) in [
        ("text_stream", "anthropic-messages-stream-text.sse"),
        ("thinking_stream", "anthropic-messages-stream-thinking.sse"),
    ] {
        let stream = fixture(file);
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(events(&stream).len() as u64));
        let (mut batch, mut out) = (Vec::with_capacity(256), Vec::with_capacity(64 * 1024));
        group.bench_function("decode_translate_encode", |b| {
            b.iter(|| {
                out.clear();
                let mut translator = StreamTranslator::new();
                let mut encoder = ChunkEncoder::new(GATEWAY_MODEL, 1_764_115_200, true);
                relay(&mut translator, &mut encoder, black_box(&stream), &mut batch, &mut out);
                translator.finish(&mut batch);
                for event in batch.drain(..) {
                    encoder.encode(&event, &mut out);
                }
                black_box(out.len())
            })
        });
        group.finish();
    }
}

criterion_group!(benches, per_event, whole_streams);
criterion_main!(benches);
