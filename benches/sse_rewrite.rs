//! Criterion bench for `corelay::sse::ModelRewriter`: the cost per typical SSE event and the
//! throughput over a whole recorded stream, each next to a plain copy of the same bytes so the
//! overhead of the rewrite shows. It does not check correctness (the tests do).
//!
//! Run: `cargo bench --bench sse_rewrite -- --warm-up-time 1 --measurement-time 3`
//!
//! Results, 2 vCPU AMD EPYC VM shared with other builds (load ~2.5), 2026-11-25; criterion's
//! median, noise about ±10%:
//!
//! | bench                                               | time     | throughput |
//! |-----------------------------------------------------|----------|------------|
//! | event/rewrite (one 260-byte chunk event)            | 119 ns   | 2.05 GiB/s |
//! | event/memcpy                                        | 8.1 ns   | 30 GiB/s   |
//! | long_content/rewrite_whole (47,252 B, 181 events)   | 21.2 µs  | 2.07 GiB/s |
//! | long_content/rewrite_pieces_1460                    | 22.4 µs  | 1.96 GiB/s |
//! | long_content/rewrite_pieces_37 (most lines carried) | 39.2 µs  | 1.12 GiB/s |
//! | long_content/memcpy                                 | 0.99 µs  | 44 GiB/s   |
//!
//! So the rewrite costs about 110 ns per event over a plain copy, nearly all of it spent walking
//! the object's head up to `"model"` and finding the line end; splitting lines across pieces adds
//! the carry copy.
//!
//! The pass-through audit (`event/audit`: the event's data validated as JSON, its end and kind
//! noted), 2 vCPU Intel Xeon VM, 2026-12-06, at c85994f: 402 ns per 260-byte event (619 MiB/s),
//! next to rewrite 137 ns and memcpy 7.1 ns in the same run. About 8 µs of a 20-event stream: the
//! audit is most of the streaming cost the hardening added (loadtest/RESULTS.md), and the next
//! thing to make cheaper.

use std::hint::black_box;

use corelay::sse::ModelRewriter;
use corelay::sse::audit::{StreamAudit, StreamFormat};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const CHAT_FIXTURES: &str = corelay::fixture_path!("openai/chat/");
const GATEWAY_MODEL: &str = "acme/chat-small";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{CHAT_FIXTURES}{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The first content-delta event of the usage stream (its second event): a `data:` line of 258
/// bytes plus the blank line, 260 bytes, typical of a chat completion chunk.
fn typical_event() -> Vec<u8> {
    let stream = fixture("openai-chat-stream-usage.sse");
    let start = memchr::memmem::find(&stream, b"\n\n").expect("first event") + 2;
    let len = memchr::memmem::find(&stream[start..], b"\n\n").expect("second event") + 2;
    stream[start..start + len].to_vec()
}

fn per_event(c: &mut Criterion) {
    let event = typical_event();
    let mut group = c.benchmark_group("event");
    group.throughput(Throughput::Bytes(event.len() as u64));
    let mut rewriter = ModelRewriter::new(GATEWAY_MODEL);
    let mut out = Vec::with_capacity(2 * event.len());
    group.bench_function("rewrite", |b| {
        b.iter(|| {
            out.clear();
            rewriter.feed(black_box(&event), &mut out);
            black_box(out.len())
        })
    });
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(&event));
            black_box(out.len())
        })
    });
    // The pass-through audit of the same event (its data validated as JSON, its end and kind noted),
    // as the relay runs it after the rewrite: the per-event price of "no cut stream looks complete".
    let mut audit = StreamAudit::new(StreamFormat::OpenAiChat);
    group.bench_function("audit", |b| {
        b.iter(|| {
            audit.scan(black_box(&event)).expect("a JSON event");
            let end = audit.event_end();
            audit.consume(end);
            black_box(end)
        })
    });
    group.finish();
}

fn whole_stream(c: &mut Criterion) {
    let stream = fixture("openai-chat-stream-long-content.sse");
    let mut group = c.benchmark_group("long_content");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    let mut rewriter = ModelRewriter::new(GATEWAY_MODEL);
    let mut out = Vec::with_capacity(2 * stream.len());
    group.bench_function("rewrite_whole", |b| {
        b.iter(|| {
            out.clear();
            rewriter.feed(black_box(&stream), &mut out);
            rewriter.finish(&mut out);
            black_box(out.len())
        })
    });
    // Pieces of a TCP segment's payload, and small odd pieces that split most lines (carry path).
    for piece in [1460, 37] {
        group.bench_function(format!("rewrite_pieces_{piece}"), |b| {
            b.iter(|| {
                out.clear();
                for chunk in black_box(&stream).chunks(piece) {
                    rewriter.feed(chunk, &mut out);
                }
                rewriter.finish(&mut out);
                black_box(out.len())
            })
        });
    }
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(&stream));
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, per_event, whole_stream);
criterion_main!(benches);
