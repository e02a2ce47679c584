//! Spare buffers for upstream requests, kept per worker thread. It owns only the stash: the
//! providers take a buffer to write a request into, and the exchange gives it back once the
//! request is sent and its answer has begun.
//!
//! Why: a request (its head and a client's body, ~1.5 KB for a 1 KB chat body) is larger than
//! glibc's per-thread cache of small blocks, so allocating and freeing one per call went through
//! malloc's bins every time (about 450 instructions per request, most of it in `_int_malloc`,
//! `_int_free` and their consolidation).

use std::cell::RefCell;

/// Buffers kept per thread: the requests one turn of a busy worker's loop sends.
const KEPT: usize = 64;

/// A larger buffer is freed, not kept: a rare large body must not stay resident.
const KEPT_CAPACITY: usize = 16 * 1024;

thread_local! {
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least `capacity` bytes: a kept one when there is one.
pub fn take(capacity: usize) -> Vec<u8> {
    let mut buf = SPARE.with_borrow_mut(Vec::pop).unwrap_or_default();
    buf.reserve(capacity);
    buf
}

/// Keeps `buf` for a later request, unless the stash is full or the buffer is large.
pub fn give_back(mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > KEPT_CAPACITY {
        return;
    }
    buf.clear();
    SPARE.with_borrow_mut(|spare| {
        if spare.len() < KEPT {
            spare.push(buf);
        }
    });
}

/// Buffers kept on this thread now.
#[cfg(test)]
fn kept() -> usize {
    SPARE.with_borrow(Vec::len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_back_buffer_is_taken_again_empty_with_the_room_asked_for() {
        let mut first = take(1500);
        first.extend_from_slice(b"POST /v1/chat/completions HTTP/1.1\r\n");
        let address = first.as_ptr();
        give_back(first);
        let again = take(1000);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), address, "the same allocation");
        assert!(again.capacity() >= 1500);
        let grown = take(4000);
        assert!(grown.capacity() >= 4000);
    }

    #[test]
    fn large_buffers_are_not_kept_and_the_stash_is_bounded() {
        let before = kept();
        give_back(Vec::with_capacity(KEPT_CAPACITY + 1));
        give_back(Vec::new());
        assert_eq!(kept(), before);
        for _ in 0..KEPT + 10 {
            give_back(Vec::with_capacity(64));
        }
        assert_eq!(kept(), KEPT);
    }
}
