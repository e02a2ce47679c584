//! Proves that `corelay::sse::PassThrough` (a passed-through stream's audit and model rewrite) does
//! not touch the heap per event once its buffers are warm, by counting this thread's allocations
//! around the System allocator. It does not check the rewritten bytes; the unit and fixture tests in
//! `src/sse/` do.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use corelay::sse::PassThrough;
use corelay::sse::audit::StreamFormat;

/// System allocator that counts allocations and reallocations made by the current thread, so the
/// other tests of this binary, running on other threads, cannot disturb the count.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with`: the thread-local may already be gone while the thread shuts down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded contract of `GlobalAlloc::alloc`.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded contract of `GlobalAlloc::alloc_zeroed`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: forwarded contract of `GlobalAlloc::realloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract of `GlobalAlloc::dealloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const LONG_CONTENT: &str = corelay::fixture_path!("openai/chat/openai-chat-stream-long-content.sse");

/// Feeds `stream` in pieces of `piece` bytes, releasing after each as the relay does.
fn pass(events: &mut PassThrough, stream: &[u8], piece: usize, out: &mut Vec<u8>) {
    for chunk in stream.chunks(piece) {
        events.feed(Some(chunk)).expect("recorded events are JSON");
        events.release(out);
    }
}

#[test]
fn a_warm_pass_through_does_not_allocate() {
    let stream = std::fs::read(LONG_CONTENT).unwrap_or_else(|e| panic!("{LONG_CONTENT}: {e}"));
    // One stream's buffers, warmed by the recording once: what a long answer's later events meet.
    let mut events = PassThrough::new("acme/chat-small", StreamFormat::OpenAiChat, 256);
    let mut out = Vec::new();
    pass(&mut events, &stream, 37, &mut out);
    let warm_rewrites = events.rewrites();
    assert!(warm_rewrites > 100, "the fixture should have its 181 data lines, got {warm_rewrites}");
    let warm_len = out.len();
    out.clear();

    let before = allocations();
    pass(&mut events, &stream, 37, &mut out);
    let allocated = allocations() - before;

    assert_eq!(allocated, 0, "allocations during the warm pass");
    assert_eq!(out.len(), warm_len);
    assert_eq!(events.rewrites(), 2 * warm_rewrites);
}

/// The counter itself works, so a zero above means something.
#[test]
fn counter_sees_allocations() {
    let before = allocations();
    let boxed = std::hint::black_box(Box::new([0u8; 64]));
    assert!(allocations() > before);
    drop(boxed);
}
