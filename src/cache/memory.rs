//! One worker's in-memory cache: entries by key, least recently used evicted first, bounded by the
//! bytes it holds (`Entry::size`). Single-threaded (one per core, no locks). Time is passed in, so
//! expiry is tested without waiting.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use super::entry::Entry;
use super::key::Key;

pub struct MemoryLru {
    limit: usize,
    used: usize,
    /// Bumped on every use; a slot's tick orders it in `order`.
    tick: u64,
    slots: HashMap<Key, Slot>,
    /// Ticks to keys, oldest first: the eviction order.
    order: BTreeMap<u64, Key>,
}

struct Slot {
    entry: Rc<Entry>,
    size: usize,
    tick: u64,
}

impl MemoryLru {
    pub fn new(limit: usize) -> MemoryLru {
        MemoryLru { limit, used: 0, tick: 0, slots: HashMap::new(), order: BTreeMap::new() }
    }

    /// Bytes held now; never above the limit.
    pub fn used(&self) -> usize {
        self.used
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The fresh entry under `key`, now the most recently used; an expired one is dropped.
    pub fn get(&mut self, key: &Key, now_unix_ms: u64) -> Option<Rc<Entry>> {
        let fresh = self.slots.get(key)?.entry.is_fresh(now_unix_ms);
        if !fresh {
            self.remove(key);
            return None;
        }
        self.tick += 1;
        let slot = self.slots.get_mut(key)?;
        self.order.remove(&slot.tick);
        slot.tick = self.tick;
        self.order.insert(self.tick, *key);
        Some(Rc::clone(&slot.entry))
    }

    /// Stores `entry` (replacing any under `key`), evicting the least recently used until it fits.
    /// Returns how many entries were evicted; an entry larger than the whole bound is not stored.
    pub fn insert(&mut self, key: Key, entry: Rc<Entry>) -> u64 {
        let size = entry.size();
        self.remove(&key);
        if size > self.limit {
            return 0;
        }
        let mut evicted = 0;
        while self.used + size > self.limit {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            if let Some(slot) = self.slots.remove(&oldest) {
                self.used -= slot.size;
                evicted += 1;
            }
        }
        self.tick += 1;
        self.order.insert(self.tick, key);
        self.slots.insert(key, Slot { entry, size, tick: self.tick });
        self.used += size;
        evicted
    }

    fn remove(&mut self, key: &Key) {
        if let Some(slot) = self.slots.remove(key) {
            self.order.remove(&slot.tick);
            self.used -= slot.size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body_bytes: usize, expires_unix_ms: u64) -> Rc<Entry> {
        Rc::new(Entry {
            status: 200,
            stream: false,
            usage_comment: false,
            content_type: Vec::new(),
            served_model: String::new(),
            usage: None,
            cost_micros: 0,
            expires_unix_ms,
            body: vec![b'x'; body_bytes],
        })
    }

    fn key(n: u32) -> Key {
        let mut k = [0; 32];
        k[..4].copy_from_slice(&n.to_le_bytes());
        Key(k)
    }

    #[test]
    fn writing_ten_times_the_bound_never_exceeds_it() {
        let limit = 64 * 1024;
        let mut lru = MemoryLru::new(limit);
        let mut written = 0;
        let mut evictions = 0;
        for n in 0..10_000u32 {
            let e = entry(100 + (n as usize * 37) % 3000, u64::MAX);
            written += e.size();
            evictions += lru.insert(key(n), e);
            assert!(lru.used() <= limit, "{} > {limit} after {n}", lru.used());
            if written > 10 * limit {
                break;
            }
        }
        assert!(written > 10 * limit);
        assert!(evictions > 0);
        let held: usize = (0..10_000).filter_map(|n| lru.slots.get(&key(n)).map(|s| s.size)).sum();
        assert_eq!(held, lru.used(), "the byte count matches what is held");
    }

    #[test]
    fn the_least_recently_used_goes_first() {
        let one = entry(100, u64::MAX).size();
        let mut lru = MemoryLru::new(3 * one);
        for n in 0..3 {
            lru.insert(key(n), entry(100, u64::MAX));
        }
        assert!(lru.get(&key(0), 0).is_some(), "0 is now the most recent");
        assert_eq!(lru.insert(key(3), entry(100, u64::MAX)), 1);
        assert!(lru.get(&key(1), 0).is_none(), "1 was the least recently used");
        assert!(lru.get(&key(0), 0).is_some());
        assert!(lru.get(&key(3), 0).is_some());
    }

    #[test]
    fn entries_expire_at_their_ttl_and_oversized_ones_are_not_kept() {
        let mut lru = MemoryLru::new(10_000);
        lru.insert(key(1), entry(10, 1_000));
        assert!(lru.get(&key(1), 999).is_some());
        assert!(lru.get(&key(1), 1_000).is_none());
        assert_eq!(lru.used(), 0, "an expired entry is dropped when found");
        assert_eq!(lru.insert(key(2), entry(20_000, u64::MAX)), 0);
        assert!(lru.is_empty());
    }
}
