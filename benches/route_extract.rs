//! What routing reads from a request body (`model`, `stream`): three JSON parsers side by side on
//! our own payloads.
//!
//! Every "validating" variant rejects malformed JSON anywhere in the body, which the gateway requires
//! (it must not forward a body it never checked); `sonic_get` does not validate and is shown only as
//! the floor. simd-json parses in place, so its timing includes copying the body into a reused buffer:
//! the proxy must still forward the original bytes.
//!
//! Figures (2 vCPU AMD EPYC VM, Linux 6.18, rustc 1.95, 2026-11-25, criterion medians; see README):
//!
//! | case | 1 KB (955 B) | 250 KB |
//! |---|---:|---:|
//! | corelay_extract (sonic-rs struct + model span + providerOptions) | 645 ns | 95.7 µs |
//! | serde_json struct (validating) | 718 ns | 129.9 µs |
//! | sonic-rs struct (validating) | 567 ns | 81.7 µs |
//! | simd-json struct, with the copy it needs | 1.24 µs | 217.2 µs |
//! | sonic-rs `get` (no validation; the floor) | 378 ns | 85.8 µs |
//!
//! sonic-rs wins every validating case; corelay_extract adds the span bookkeeping on top of it.
//!
//! Since then corelay_extract is `json_check`'s own validating walk (README, "JSON"). On
//! 2026-12-08, base d5b466f, then long strings scanned 32 bytes at a time with AVX2, then base
//! again: 1 KB 512 / 603 / 558 ns, 300 KB 86.2 / 96.6 / 90.4 µs, `document_64KB` (a pasted
//! document, a line end every 78 bytes) 7.38 / 7.73 / 6.61 µs. The base moved as much between its
//! two runs as base and new differ: this bench cannot see the change on this host; the instruction
//! counts (`loadtest/instructions`, ~460 fewer on the load generator's one-run 1 KB body) can.

use std::borrow::Cow;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde::Deserialize;

/// A body shaped like the OpenAI Python SDK's: `messages` first, `model` and `stream` after them.
fn chat_body(turns: usize) -> Vec<u8> {
    let mut messages = vec![serde_json::json!({
        "role": "system",
        "content": "You are a careful assistant. Answer in \"plain\" English; cite sources — never invent them.",
    })];
    for i in 0..turns {
        messages.push(serde_json::json!({"role": "user", "content": format!("Question {i}: what is the capital of country number {i}? Ünïcode ✓ and a tab\t.")}));
        messages.push(serde_json::json!({"role": "assistant", "content": format!("The capital of country {i} is City-{i}. It has about {} inhabitants.", i * 1000 + 7)}));
    }
    serde_json::to_vec(&serde_json::json!({
        "messages": messages,
        "tools": [{"type": "function", "function": {"name": "get_capital", "parameters": {"type": "object", "properties": {"country": {"type": "string"}}}}}],
        "temperature": 0.2,
        "model": "acme/chat-small",
        "stream": true,
    }))
    .unwrap()
}

/// A body shaped like a pasted document: one long user message of English prose in lines of about
/// seventy characters (each `\n` an escape in the JSON), the shape of most bytes in long prompts.
fn document_body(bytes: usize) -> Vec<u8> {
    const LINE: &str = "The committee met on Tuesday to review the quarterly figures for the region.\n";
    let document: String = LINE.repeat(bytes / LINE.len() + 1);
    serde_json::to_vec(&serde_json::json!({
        "model": "acme/chat-small",
        "messages": [
            {"role": "system", "content": "Summarise the document the user pastes."},
            {"role": "user", "content": document},
        ],
        "stream": true,
    }))
    .unwrap()
}

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    stream: Option<bool>,
}

/// Uses both fields, as routing does, so no parser gets credit for work the optimiser could skip.
fn route_of(probe: Probe<'_>) -> (usize, bool) {
    (probe.model.map_or(0, |m| m.len()), probe.stream.unwrap_or(false))
}

fn bench_extract(c: &mut Criterion) {
    let small = chat_body(3);
    let large = chat_body(1150);
    let document = document_body(64 * 1024);
    let mut group = c.benchmark_group("route_extract");
    for (name, body) in [("1KB", &small), ("300KB", &large), ("document_64KB", &document)] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("corelay_extract(sonic_rs+span)", name), body, |b, body| {
            b.iter(|| corelay::api::route_fields::extract(black_box(body)).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("serde_json_struct", name), body, |b, body| {
            b.iter(|| route_of(serde_json::from_slice::<Probe>(black_box(body)).unwrap()))
        });
        group.bench_with_input(BenchmarkId::new("sonic_rs_struct", name), body, |b, body| {
            b.iter(|| route_of(sonic_rs::from_slice::<Probe>(black_box(body)).unwrap()))
        });
        let mut scratch = Vec::with_capacity(body.len());
        group.bench_with_input(BenchmarkId::new("simd_json_struct(+copy)", name), body, |b, body| {
            b.iter(|| {
                scratch.clear();
                scratch.extend_from_slice(black_box(body));
                route_of(simd_json::serde::from_slice::<Probe>(&mut scratch).unwrap())
            })
        });
        group.bench_with_input(BenchmarkId::new("sonic_rs_get(no validation)", name), body, |b, body| {
            b.iter(|| sonic_rs::get(black_box(body.as_slice()), &["model"]).unwrap().as_raw_str().len())
        });
    }
    group.finish();
    println!(
        "payload sizes: 1KB = {} bytes, 300KB = {} bytes, document_64KB = {} bytes",
        small.len(),
        large.len(),
        document.len()
    );
}

criterion_group!(benches, bench_extract);
criterion_main!(benches);
