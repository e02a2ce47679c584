//! Criterion bench of the Bedrock translated-stream hot path: recorded `converse-stream` and
//! `invoke-with-response-stream` bodies (AWS event-stream frames) -> `providers::bedrock::StreamTranslator`
//! (frame decode, CRC checks, event JSON) -> `api::openai_chat::ChunkEncoder` -> OpenAI chunk bytes,
//! per recorded stream, with the cost per frame from the frame count. It does not check correctness
//! (`tests/golden_bedrock.rs` does).
//!
//! Run: `cargo bench --bench translate_bedrock -- --warm-up-time 1 --measurement-time 3`
//!
//! Results, 2 vCPU AMD EPYC VM, rustc 1.95, 2026-11-26, criterion's median at load average ~2.6 (a
//! CI run beside it, so upper bounds; also in loadtest/RESULTS.md):
//!
//! | bench (whole recorded stream)                         | time    | per frame |
//! |-------------------------------------------------------|---------|-----------|
//! | converse_text_stream (33 frames)                      | 20.2 µs | 613 ns    |
//! | converse_tool_stream (26 frames)                      | 18.1 µs | 696 ns    |
//! | converse_thinking_stream (25 frames)                  | 22.0 µs | 881 ns    |
//! | invoke_anthropic_stream (6 frames, base64 events)     | 12.1 µs | 2.0 µs    |

use std::hint::black_box;

use corelay::api::openai_chat::ChunkEncoder;
use corelay::chat::StreamEvent;
use corelay::providers::bedrock::{Api, StreamTranslator};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FIXTURES: &str = corelay::fixture_path!("bedrock/");
const GATEWAY_MODEL: &str = "acme/claude";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{FIXTURES}{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The number of event-stream frames in a recording: one line per frame in its `.decoded.jsonl`.
fn frames(stem: &str) -> u64 {
    let decoded = fixture(&format!("{stem}.decoded.jsonl"));
    decoded.split(|&b| b == b'\n').filter(|line| !line.is_empty()).count() as u64
}

/// One whole stream from a fresh translator and encoder, as the relay loop sees it in one read.
fn relay(api: Api, stream: &[u8], batch: &mut Vec<StreamEvent>, out: &mut Vec<u8>) {
    let mut translator = StreamTranslator::new(api, "bench-request");
    let mut encoder = ChunkEncoder::new(GATEWAY_MODEL, 1_764_115_200, true);
    translator.feed(stream, batch);
    translator.finish(batch);
    for event in batch.drain(..) {
        encoder.encode(&event, out);
    }
}

fn whole_streams(c: &mut Criterion) {
    for (name, stem, api) in [
        ("converse_text_stream", "bedrock-converse-stream", Api::Converse),
        ("converse_tool_stream", "bedrock-converse-stream-tool-use", Api::Converse),
        ("converse_thinking_stream", "bedrock-converse-stream-claude-thinking", Api::Converse),
        ("invoke_anthropic_stream", "bedrock-invoke-stream-anthropic.RECONSTRUCTED", Api::InvokeAnthropic),
    ] {
        let stream = fixture(&format!("{stem}.bin"));
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(frames(stem)));
        let (mut batch, mut out) = (Vec::with_capacity(256), Vec::with_capacity(64 * 1024));
        relay(api, &stream, &mut batch, &mut out);
        assert!(!out.is_empty(), "{stem} gives the client something");
        group.bench_function("decode_translate_encode", |b| {
            b.iter(|| {
                out.clear();
                relay(api, black_box(&stream), &mut batch, &mut out);
                black_box(out.len())
            })
        });
        group.finish();
    }
}

criterion_group!(benches, whole_streams);
criterion_main!(benches);
