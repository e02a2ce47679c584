//! Governance hot paths: authenticating a bearer token (SHA-256 and a map lookup), and one request's
//! admission plus settlement, embedded (atomics in this process) and shared (a round trip through
//! the governance thread to a local redis-server, when one is installed).
//!
//! Figures (2 vCPU Intel Xeon VM shared with other builds, Linux 6.18, rustc 1.95, 2026-12-06,
//! criterion medians, `--measurement-time 3`):
//!
//! | bench | time |
//! |---|---:|
//! | governance/authenticate (SHA-256 of the token, map lookup) | 335 ns |
//! | governance/embedded_admit_settle (6 limits checked, reserved, reconciled) | 252 ns |
//! | governance/shared_admit_settle (thread hop + one EVALSHA on loopback Redis, sequential) | 248 µs |
//!
//! The shared figure is one request alone: its latency is a channel hop, a wake, and a Redis round
//! trip on the same two busy cores. Concurrent requests share a pipeline, so throughput is not
//! bounded by it.

use std::hint::black_box;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use corelay::config::{Config, resolve};
use corelay::governance::{Governor, Usage, hash_hex, sha256};
use criterion::{Criterion, criterion_group, criterion_main};

const T0: u64 = 1_800_000_000_000;

fn keys(extra: &str) -> String {
    let hash = hash_hex(&sha256(b"sk-bench-0123456789"));
    format!(
        "{extra}[[keys]]\nname = \"bench\"\nkey_sha256 = \"{hash}\"\nrpm = 1000000000\ntpm = 1000000000000\n\
         max_concurrent = 1000\nbudget_micros_per_day = 1000000000000\nmodels = [\"acme/*\"]\n"
    )
}

fn governor(text: &str) -> Governor {
    Governor::start(&resolve(Config::parse(text).unwrap()).unwrap()).unwrap()
}

fn admit_and_settle(g: &Governor, c: &mut Criterion, name: &str) {
    let key = g.key("bench").unwrap();
    let mut minute = 0;
    c.bench_function(name, |b| {
        b.iter(|| {
            // A fresh minute now and then keeps RPM far from its limit however long criterion runs.
            minute += 1;
            let now = T0 + (minute / 1_000_000) * 60_000;
            let r = g.admit(&key, black_box("acme/chat"), now, Usage { tokens: 500, cost_micros: 40 }).wait().unwrap();
            r.settle(now, Usage { tokens: 300, cost_micros: 25 });
        })
    });
}

fn bench_embedded(c: &mut Criterion) {
    let g = governor(&keys(""));
    c.bench_function("governance/authenticate", |b| {
        b.iter(|| g.authenticate(black_box(b"sk-bench-0123456789")).is_some())
    });
    admit_and_settle(&g, c, "governance/embedded_admit_settle");
}

fn start_redis() -> Option<(Child, u16)> {
    let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let mut child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--logfile", ""])
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let stdout = child.stdout.take()?;
    let ready = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .take(200)
        .map_while(Result::ok)
        .any(|l| l.contains("Ready to accept connections"));
    ready.then_some((child, port))
}

fn bench_shared(c: &mut Criterion) {
    let Some((mut redis, port)) = start_redis() else {
        eprintln!("redis-server not available: skipping governance/shared_admit_settle");
        return;
    };
    let g = governor(&keys(&format!("[governance]\nredis_url = \"redis://127.0.0.1:{port}\"\n")));
    admit_and_settle(&g, c, "governance/shared_admit_settle (loopback redis round trip)");
    g.shutdown();
    let _ = redis.kill();
    let _ = redis.wait();
}

criterion_group!(benches, bench_embedded, bench_shared);
criterion_main!(benches);
