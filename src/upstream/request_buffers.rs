//! Spare buffers for upstream requests, kept per worker thread (`http::spare`). The providers take
//! a buffer to write a request into, and the exchange gives it back once the request is sent and
//! its answer has begun.
//!
//! Why: a request (its head and a client's body, ~1.5 KB for a 1 KB chat body) is larger than
//! glibc's per-thread cache of small blocks, so allocating and freeing one per call went through
//! malloc's bins every time (about 450 instructions per request, most of it in `_int_malloc`,
//! `_int_free` and their consolidation).

use crate::http::spare::Spares;

thread_local! {
    /// The requests one turn of a busy worker's loop sends; none above 16 KiB.
    static SPARE: Spares<u8> = const { Spares::new(64, 16 * 1024) };
}

/// An empty buffer with room for at least `capacity` bytes: a kept one when there is one.
pub fn take(capacity: usize) -> Vec<u8> {
    SPARE.with(|spare| spare.take(capacity))
}

/// Keeps `buf` for a later request, unless the stash is full or the buffer is large.
pub fn give_back(buf: Vec<u8>) {
    SPARE.with(|spare| spare.give_back(buf));
}
