//! Emptied message buffers kept per thread for the next message: a bounded stash, so a worker that
//! parses and writes thousands of heads and requests a second reuses a few dozen allocations
//! instead of asking malloc for each. It owns only the keeping; what a buffer holds, and when it is
//! done with, is its user's business (`Headers`, `upstream::request_buffers`).
//!
//! Every stash is a `thread_local!`, so nothing here is shared between cores or locked.

use std::cell::RefCell;

/// Emptied `Vec<T>`s: at most `most` of them, none with room for more than `largest` items (a rare
/// large message must not stay resident).
pub struct Spares<T> {
    kept: RefCell<Vec<Vec<T>>>,
    most: usize,
    largest: usize,
}

impl<T> Spares<T> {
    pub const fn new(most: usize, largest: usize) -> Spares<T> {
        Spares { kept: RefCell::new(Vec::new()), most, largest }
    }

    /// An empty `Vec` with room for at least `room` items: a kept one when there is one.
    pub fn take(&self, room: usize) -> Vec<T> {
        let mut buf = self.kept.borrow_mut().pop().unwrap_or_default();
        buf.reserve(room);
        buf
    }

    /// Keeps `buf`, emptied, unless the stash is full or the buffer is large or never allocated.
    pub fn give_back(&self, mut buf: Vec<T>) {
        if buf.capacity() == 0 || buf.capacity() > self.largest {
            return;
        }
        buf.clear();
        let mut kept = self.kept.borrow_mut();
        if kept.len() < self.most {
            kept.push(buf);
        }
    }

    /// How many are kept now.
    pub fn len(&self) -> usize {
        self.kept.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_back_buffer_is_taken_again_empty_with_the_room_asked_for() {
        let spares = Spares::<u8>::new(4, 1024);
        let mut first = spares.take(600);
        first.extend_from_slice(b"POST /v1/chat/completions HTTP/1.1\r\n");
        let address = first.as_ptr();
        spares.give_back(first);
        let again = spares.take(100);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), address, "the same allocation");
        assert!(again.capacity() >= 600);
        assert!(spares.take(4000).capacity() >= 4000);
    }

    #[test]
    fn large_or_unallocated_buffers_are_not_kept_and_the_stash_is_bounded() {
        let spares = Spares::<u8>::new(4, 1024);
        spares.give_back(Vec::with_capacity(1025));
        spares.give_back(Vec::new());
        assert!(spares.is_empty());
        for _ in 0..10 {
            spares.give_back(Vec::with_capacity(64));
        }
        assert_eq!(spares.len(), 4);
    }
}
