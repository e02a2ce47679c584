//! Routing and health hot paths: model lookup, candidate ordering, installing a new snapshot on a
//! worker, recording an attempt into the worker's histograms, and merging a report on the control
//! thread.
//!
//! Figures (2 vCPU AMD EPYC VM, Linux 6.18, rustc 1.95, 2026-11-25, criterion medians):
//!
//! | bench | time |
//! |---|---:|
//! | routing/lookup_200_models | 17.8 ns |
//! | routing/order_candidates_default (3 endpoints, health consulted) | 99.6 ns |
//! | routing/order_candidates_with_order | 123.9 ns |
//! | routing/snapshot_swap_600_endpoints (clone the table, new `Rc`) | 1.14 µs |
//! | health/record_attempt (two HDR records + counters, per attempt) | 49.3 ns |
//! | health/merge_report_16_endpoints (control thread; includes cloning the report) | 60.5 µs |
//! | health/tick_16_endpoints (control thread, every tick) | 84.8 µs |

use std::hint::black_box;
use std::time::{Duration, Instant};

use corelay::config::{Config, resolve};
use corelay::health::aggregator::Aggregator;
use corelay::health::ejection::EjectionPolicy;
use corelay::health::recorder::Recorder;
use corelay::health::{HealthTable, Outcome};
use corelay::proxy::WorkerContext;
use corelay::routing::{Routes, RoutingOptions, Snapshot, order_candidates};
use criterion::{Criterion, criterion_group, criterion_main};

/// 200 models over three providers, each model with three endpoints (the seed's shape).
fn config_text() -> String {
    let mut text = String::from("[server]\nlisten = \"127.0.0.1:0\"\n");
    for (i, name) in ["vertex", "bedrock", "anthropic"].iter().enumerate() {
        text.push_str(&format!(
            "[providers.{name}]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:{}/v1\"\n",
            i + 1
        ));
    }
    for i in 0..200 {
        text.push_str(&format!(
            "[models.\"acme/model-{i}\"]\nendpoints = [{{ provider = \"anthropic\", model = \"a{i}\" }}, {{ provider = \"vertex\", model = \"v{i}\" }}, {{ provider = \"bedrock\", model = \"b{i}\" }}]\n"
        ));
    }
    text
}

fn policy() -> EjectionPolicy {
    EjectionPolicy {
        consecutive_failures: 5,
        error_rate: 0.5,
        min_requests: 20,
        base: Duration::from_secs(5),
        max: Duration::from_secs(300),
        probe_timeout: Duration::from_secs(5),
    }
}

fn bench_routing(c: &mut Criterion) {
    let resolved = resolve(Config::parse(&config_text()).unwrap()).unwrap();
    let routes = Routes::build(&resolved, 0);
    let table = HealthTable::new(routes.endpoint_count(), 2);
    c.bench_function("routing/lookup_200_models", |b| {
        b.iter(|| routes.model(black_box("acme/model-137")).map(|m| m.endpoints.len()))
    });
    let recorder = Recorder::new(0, 5);
    let now = Instant::now();
    let plain = RoutingOptions::default();
    c.bench_function("routing/order_candidates_default", |b| {
        b.iter(|| {
            order_candidates(
                &routes,
                black_box("acme/model-137"),
                &plain,
                |id| recorder.is_avoided(id, &table, now),
                |id| table.get(id).ttfb_p50_us,
            )
            .map(|c| c.len())
        })
    });
    let ordered = RoutingOptions { order: vec!["vertex".into(), "bedrock".into()], ..RoutingOptions::default() };
    c.bench_function("routing/order_candidates_with_order", |b| {
        b.iter(|| {
            order_candidates(
                &routes,
                black_box("acme/model-137"),
                &ordered,
                |id| recorder.is_avoided(id, &table, now),
                |id| table.get(id).ttfb_p50_us,
            )
            .map(|c| c.len())
        })
    });
    let snapshot = Snapshot::new(std::rc::Rc::new(Routes::build(&resolved, 0)), table.clone());
    let worker = WorkerContext::new(0, &resolved, snapshot).unwrap();
    c.bench_function("routing/snapshot_swap_600_endpoints", |b| {
        b.iter(|| worker.install_health(black_box(table.clone())))
    });
}

fn bench_health(c: &mut Criterion) {
    let recorder = Recorder::new(0, 5);
    let mut i = 0u64;
    c.bench_function("health/record_attempt", |b| {
        b.iter(|| {
            i = i.wrapping_add(7919);
            let ttfb = Duration::from_micros(200 + i % 5000);
            recorder.record(0, black_box((i % 3) as usize), Outcome::Success, Some(ttfb), ttfb * 4, false)
        })
    });
    let mut aggregator = Aggregator::new(16, 2, Duration::from_secs(30), policy());
    let filled = Recorder::new(0, 5);
    for n in 0..1000u64 {
        let ttfb = Duration::from_micros(100 + n * 37 % 90_000);
        filled.record(0, (n % 16) as usize, Outcome::Success, Some(ttfb), ttfb * 3, false);
    }
    let report = filled.take_report(0);
    c.bench_function("health/merge_report_16_endpoints", |b| {
        b.iter(|| {
            let copy = corelay::health::HealthReport {
                worker: 0,
                seq: 1,
                applied_version: 0,
                routes_version: 0,
                endpoints: report.endpoints.clone(),
            };
            aggregator.merge(black_box(copy), Instant::now())
        })
    });
    c.bench_function("health/tick_16_endpoints", |b| b.iter(|| aggregator.tick(Instant::now()).version));
}

criterion_group!(benches, bench_routing, bench_health);
criterion_main!(benches);
