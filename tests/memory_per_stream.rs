//! Holds the gateway's heap per open stream to a budget: the memory an LLM gateway mostly spends is
//! streams waiting on their provider, and what one holds (its connection task, buffers, timers) grew
//! unnoticed before (a 10.7 KiB task at one point). It does not check the events' bytes (the
//! end-to-end tests do) and it is not the RSS measurement (`loadtest/streams` is).
//!
//! Counted: bytes the gateway's worker threads allocate and have not freed (a block a worker frees
//! that another thread allocated would be subtracted wrongly; nothing on the stream path does that).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use loadtest::{MockConfig, MockProvider};

/// Heap bytes per open, waiting pass-through stream, at most, as built for tests (debug: its futures
/// are larger than a release build's). Measured 13,018 before the stream's task shrank from 6,160 to
/// 4,824 bytes in release (arguments no longer held twice, rare paths boxed, TLS reads the size of a
/// plain read) and 11,544-11,697 after; 11,418-11,571 on 2026-12-07, then 11,949-12,102 once the
/// audit kept the last event's payload and its atoms to judge the next one by difference (about
/// 530 bytes: the payload and six bytes per atom, for ~28% fewer instructions per streamed answer).
/// 11,960 on 2026-12-08 with a worker's finished streams' event states reused by the next.
/// What a stream holds besides its task: the upstream read buffer (2 KiB), two boxed timers (640
/// bytes each), the request body, the parsed head and that last payload. Lower it
/// when the figure drops; never raise it without a reason written next to it.
const BUDGET_BYTES_PER_STREAM: i64 = 12 * 1024;

const STREAMS: usize = 100;

struct LiveBytesAllocator;

static LIVE_ON_WORKERS: AtomicI64 = AtomicI64::new(0);

fn count(delta: i64) {
    if common::on_worker() {
        LIVE_ON_WORKERS.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for LiveBytesAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        // SAFETY: forwarded contract of `GlobalAlloc::alloc`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as i64);
        // SAFETY: forwarded contract of `GlobalAlloc::alloc_zeroed`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as i64 - layout.size() as i64);
        // SAFETY: forwarded contract of `GlobalAlloc::realloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as i64));
        // SAFETY: forwarded contract of `GlobalAlloc::dealloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: LiveBytesAllocator = LiveBytesAllocator;

/// A streaming chat request; `connection` is the value of its `connection` header.
fn stream_request(connection: &str) -> Vec<u8> {
    let body = common::chat_body("acme/chat-small", true);
    let mut request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: corelay\r\nconnection: {connection}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    request
}

/// Opens a stream and reads until its first event has arrived (the stream is then committed and
/// waiting on the provider). Returns the connection and what was read. Bounded by the socket's read
/// timeout.
fn open_stream(addr: std::net::SocketAddr, request: &[u8]) -> (TcpStream, Vec<u8>) {
    let mut client = TcpStream::connect(addr).expect("connect");
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    client.write_all(request).expect("send");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(6).any(|w| w == b"data: ") {
        let n = client.read(&mut buf).expect("the first event within the timeout");
        assert!(n > 0, "the stream closed before its first event: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
        assert!(seen.len() < 64 * 1024, "no event in the first 64 KiB");
    }
    assert!(seen.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&seen));
    (client, seen)
}

#[test]
fn an_open_waiting_stream_holds_no_more_heap_than_its_budget() {
    let mock = MockProvider::start(MockConfig::default()).expect("mock starts");
    let base_url = format!("http://{}/v1", mock.addr());
    let gateway = common::start_gateway(&common::config_text(&base_url, "", ""));

    // Warm: lazily built tables, the pool, a worker's grown structures (whole streams, closed by the
    // gateway after each); then the provider holds every stream after its first event for longer
    // than the test.
    let warm_request = stream_request("close");
    for _ in 0..3 {
        let (mut warm, mut seen) = open_stream(gateway.local_addr(), &warm_request);
        warm.read_to_end(&mut seen).expect("the warm-up stream ends");
        assert!(seen.windows(12).any(|w| w == b"data: [DONE]"), "{}", String::from_utf8_lossy(&seen));
    }
    let request = stream_request("keep-alive");
    mock.set_config(MockConfig { events: 3, event_gap: Duration::from_secs(120), ..MockConfig::default() });

    let before = LIVE_ON_WORKERS.load(Ordering::SeqCst);
    let started = Instant::now();
    let open: Vec<(TcpStream, Vec<u8>)> = (0..STREAMS).map(|_| open_stream(gateway.local_addr(), &request)).collect();
    assert!(started.elapsed() < Duration::from_secs(60), "opening the streams took too long");
    let per_stream = (LIVE_ON_WORKERS.load(Ordering::SeqCst) - before) / STREAMS as i64;
    println!("heap per open stream: {per_stream} bytes ({STREAMS} streams)");
    assert!(per_stream > 0, "the count saw the streams at all");
    assert!(
        per_stream <= BUDGET_BYTES_PER_STREAM,
        "{per_stream} heap bytes per open stream, over the budget of {BUDGET_BYTES_PER_STREAM}"
    );
    drop(open);
}
