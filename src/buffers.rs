//! Spare heap buffers kept per worker thread, one stash per use, so the buffers a proxied request
//! needs (its head, its body, the upstream request, the answer's head, its record's strings) come
//! from the requests before it rather than from malloc. It owns only the stashes and their bounds:
//! the code that fills a buffer takes it here and gives it back when it is done with it.
//!
//! Why: with ~40 requests in flight in one turn of a busy worker's loop, glibc's per-thread cache
//! (7 blocks of a size) overflowed, and each of a request's buffers went through malloc's bins:
//! malloc and free were ~12% of the worker's user-space CPU under `perf` at 50 connections, more
//! than their share of instructions. Bounded so that idle memory stays small: a stash keeps at
//! most `KEPT` buffers, none larger than `kept_capacity`, and a buffer much larger than what is
//! asked is not handed out (a stream holds its request's buffers for its whole life).

use std::cell::RefCell;
use std::thread::LocalKey;

/// Buffers a stash keeps per thread, at most: what one turn of a busy worker's loop uses.
const KEPT: usize = 64;

/// One kind of spare buffer, kept per thread.
pub struct Stash<T: 'static> {
    spare: &'static LocalKey<RefCell<Vec<Vec<T>>>>,
    /// A buffer with room for more elements than this is freed, not kept: a rare large body must
    /// not stay resident.
    kept_capacity: usize,
    /// A take asks for at least this much when judging a kept buffer too large: one of up to twice
    /// this room may serve even a tiny request.
    small: usize,
}

impl<T> Stash<T> {
    /// Use [`stash!`], which declares the thread-local spares too.
    pub const fn new(spare: &'static LocalKey<RefCell<Vec<Vec<T>>>>, kept_capacity: usize, small: usize) -> Stash<T> {
        Stash { spare, kept_capacity, small }
    }

    /// An empty buffer with room for at least `capacity` elements: a kept one when there is one
    /// no more than twice the room asked for (or than `small`), else a new one.
    pub fn take(&self, capacity: usize) -> Vec<T> {
        let mut buf = self.spare.with_borrow_mut(Vec::pop).unwrap_or_default();
        if buf.capacity() > 2 * capacity.max(self.small) {
            buf = Vec::new();
        }
        buf.reserve(capacity);
        buf
    }

    /// Keeps `buf` for a later take, emptied, unless the stash is full or the buffer is large.
    pub fn give_back(&self, mut buf: Vec<T>) {
        if buf.capacity() == 0 || buf.capacity() > self.kept_capacity {
            return;
        }
        buf.clear();
        self.spare.with_borrow_mut(|spare| {
            if spare.len() < KEPT {
                spare.push(buf);
            }
        });
    }

    /// Buffers kept on this thread now.
    #[cfg(test)]
    fn kept_now(&self) -> usize {
        self.spare.with_borrow(Vec::len)
    }
}

/// Declares a stash: its thread-local spares and the `Stash` that bounds them.
macro_rules! stash {
    ($(#[$doc:meta])* $vis:vis $name:ident: $t:ty, kept_capacity = $cap:expr, small = $small:expr) => {
        $(#[$doc])*
        $vis static $name: $crate::buffers::Stash<$t> = {
            thread_local! {
                static SPARE: ::std::cell::RefCell<Vec<Vec<$t>>> = const { ::std::cell::RefCell::new(Vec::new()) };
            }
            $crate::buffers::Stash::new(&SPARE, $cap, $small)
        };
    };
}
pub(crate) use stash;

stash!(
    /// Upstream requests: a request head and the client's body (~1.5 KB for a 1 KB chat body),
    /// written by the providers and given back by the exchange once sent and answered.
    pub UPSTREAM_REQUESTS: u8, kept_capacity = 16 * 1024, small = 1024
);

stash!(
    /// Client request bodies read whole (up to `proxy::connection`'s copy limit), given back when
    /// the connection has answered the request.
    pub CLIENT_BODIES: u8, kept_capacity = 16 * 1024, small = 512
);

stash!(
    /// The bytes of a parsed message head (`http::Headers`), request or response.
    pub HEAD_BYTES: u8, kept_capacity = 8 * 1024, small = 256
);

stash!(
    /// The short strings of a call's record (`metrics::CallRecord`'s request id and model), given
    /// back once the record has been counted and logged: a model id and a request id are ~15 bytes.
    pub CALL_TEXT: u8, kept_capacity = 256, small = 32
);

/// `text` in a `String` whose buffer comes from [`CALL_TEXT`]; give it back with
/// [`give_back_call_text`].
pub fn call_text(text: &str) -> String {
    // An empty buffer is valid UTF-8, so this checks nothing and cannot fail.
    let mut owned = String::from_utf8(CALL_TEXT.take(text.len())).unwrap_or_default();
    owned.push_str(text);
    owned
}

/// Keeps `text`'s buffer for a later [`call_text`] (unless [`CALL_TEXT`] is full or it is large).
pub fn give_back_call_text(text: String) {
    CALL_TEXT.give_back(text.into_bytes());
}

#[cfg(test)]
mod tests {
    stash!(TEST: u8, kept_capacity = 4096, small = 64);
    stash!(OTHER: u8, kept_capacity = 4096, small = 64);

    #[test]
    fn a_given_back_buffer_is_taken_again_empty_with_the_room_asked_for() {
        let mut first = TEST.take(1500);
        first.extend_from_slice(b"POST /v1/chat/completions HTTP/1.1\r\n");
        let address = first.as_ptr();
        TEST.give_back(first);
        let again = TEST.take(1000);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), address, "the same allocation");
        assert!(again.capacity() >= 1500);
        TEST.give_back(again);
        let grown = TEST.take(4000);
        assert!(grown.capacity() >= 4000);
    }

    #[test]
    fn a_kept_buffer_much_larger_than_asked_is_not_handed_out() {
        OTHER.give_back(Vec::with_capacity(4000));
        let small = OTHER.take(100);
        assert!(small.capacity() >= 100 && small.capacity() <= 200, "{}", small.capacity());
        assert_eq!(OTHER.kept_now(), 0);
    }

    #[test]
    fn call_text_reuses_a_given_back_string() {
        let first = super::call_text("gpt-4o-mini");
        assert_eq!(first, "gpt-4o-mini");
        let address = first.as_ptr();
        super::give_back_call_text(first);
        let again = super::call_text("0-1a-0badcafe");
        assert_eq!(again, "0-1a-0badcafe");
        assert_eq!(again.as_ptr(), address, "the same allocation");
    }

    #[test]
    fn large_buffers_are_not_kept_and_the_stash_is_bounded() {
        let before = TEST.kept_now();
        TEST.give_back(Vec::with_capacity(4097));
        TEST.give_back(Vec::new());
        assert_eq!(TEST.kept_now(), before);
        for _ in 0..super::KEPT + 10 {
            TEST.give_back(Vec::with_capacity(64));
        }
        assert_eq!(TEST.kept_now(), super::KEPT);
    }
}
