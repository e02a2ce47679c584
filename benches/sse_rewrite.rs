//! Criterion bench for `corelay::sse::PassThrough`, a passed-through stream's per-event work (each
//! `data:` payload judged as JSON, by the full validating walk or by its difference from the last
//! payload judged in full, and its `model` found, the value replaced as the event is copied out): the
//! cost per typical SSE event on either path and over a whole recorded stream, each next to a plain
//! copy of the same bytes. It does not check correctness (the tests do).
//!
//! Run: `cargo bench --bench sse_rewrite -- --warm-up-time 1 --measurement-time 3`
//!
//! Results, 2 vCPU AMD EPYC VM (family 26, 2.6 GHz), 2026-12-07, criterion's median, noise about
//! ±10%; "before" is 3c4ee69 on the same VM, whose every event took the full walk (its per-event
//! bench fed one event again and again):
//!
//! | bench                                                    | before  | now     |
//! |----------------------------------------------------------|---------|---------|
//! | event/pass_through_by_difference (a 261-byte content delta after another) | –  | 51 ns   |
//! | event/pass_through_in_full (the role event and a delta in turn) | 193 ns | 215 ns |
//! | event/audit_in_full (the same without the copy out)      | 185 ns  | 178 ns  |
//! | event/memcpy                                             | 5.1 ns  | 4.5 ns  |
//! | long_content/pass_through_pieces_47252 (181 events)      | 34.6 µs | 9.8 µs  |
//! | long_content/pass_through_pieces_1460                    | 37.6 µs | 10.2 µs |
//! | long_content/pass_through_pieces_37 (most lines split)   | 62.9 µs | 24.5 µs |
//! | long_content/memcpy                                      | 359 ns  | 296 ns  |
//!
//! On the earlier host (2026-12-06): 253 ns per event and 44.6 µs for the long stream. Before the
//! model lookup joined the validating walk (161ab71): a separate rewrite 227 ns plus the audit
//! 211 ns, 438 ns per event. Small pieces cost more because the audit rescans from the last complete
//! line only, but every piece is a call and a copy. The full walk now also notes each atom and keeps
//! the payload, which the by-difference path needs.

use std::hint::black_box;

use corelay::sse::PassThrough;
use corelay::sse::audit::{StreamAudit, StreamFormat};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const CHAT_FIXTURES: &str = corelay::fixture_path!("openai/chat/");
const GATEWAY_MODEL: &str = "acme/chat-small";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{CHAT_FIXTURES}{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `n`th event (from 0) of the usage stream, blank line included: the role event (283 bytes),
/// then content deltas of about 260 bytes, typical of a chat completion chunk.
fn usage_stream_event(n: usize) -> Vec<u8> {
    let stream = fixture("openai-chat-stream-usage.sse");
    let event = stream.split_inclusive(|&b| b == b'\n').filter(|line| *line != b"\n").nth(n).expect("event");
    [event, b"\n"].concat()
}

fn per_event(c: &mut Criterion) {
    let (role, content, next_content) = (usage_stream_event(0), usage_stream_event(1), usage_stream_event(2));
    let mut group = c.benchmark_group("event");
    group.throughput(Throughput::Bytes(next_content.len() as u64));
    let mut out = Vec::with_capacity(2 * role.len());
    // A content delta after another: the audit judges it by its difference from the one judged in
    // full before it (`sse::by_difference`), as it judges most events of a stream.
    let mut events = PassThrough::new(GATEWAY_MODEL, StreamFormat::OpenAiChat, 2 * role.len());
    events.feed(Some(&content)).expect("a JSON event");
    events.release(&mut out);
    group.bench_function("pass_through_by_difference", |b| {
        b.iter(|| {
            out.clear();
            events.feed(Some(black_box(&next_content))).expect("a JSON event");
            events.release(&mut out);
            black_box(out.len())
        })
    });
    // Events of another shape in turn (the role event, a content delta): each is judged by the full
    // validating walk, as a stream's first event is.
    let shapes = [&role, &content];
    let mut turn = 0;
    group.bench_function("pass_through_in_full", |b| {
        b.iter(|| {
            turn ^= 1;
            out.clear();
            events.feed(Some(black_box(shapes[turn]))).expect("a JSON event");
            events.release(&mut out);
            black_box(out.len())
        })
    });
    // The audit alone (what `pass_through` does but the copy out), in full: its share of the cost.
    let mut audit = StreamAudit::new(StreamFormat::OpenAiChat);
    group.bench_function("audit_in_full", |b| {
        b.iter(|| {
            turn ^= 1;
            audit.scan(black_box(shapes[turn])).expect("a JSON event");
            let end = audit.event_end();
            audit.consume(end);
            black_box(end)
        })
    });
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(&next_content));
            black_box(out.len())
        })
    });
    group.finish();
}

fn whole_stream(c: &mut Criterion) {
    let stream = fixture("openai-chat-stream-long-content.sse");
    let mut group = c.benchmark_group("long_content");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    // One stream's state, fed the recording again each time (events after `[DONE]` are still judged).
    let mut events = PassThrough::new(GATEWAY_MODEL, StreamFormat::OpenAiChat, 256);
    let mut out = Vec::with_capacity(2 * stream.len());
    // Whole, pieces of a TCP segment's payload, and small odd pieces that split most lines.
    for piece in [stream.len(), 1460, 37] {
        group.bench_function(format!("pass_through_pieces_{piece}"), |b| {
            b.iter(|| {
                out.clear();
                for chunk in black_box(&stream).chunks(piece) {
                    events.feed(Some(chunk)).expect("recorded events are JSON");
                    events.release(&mut out);
                }
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
