//! Response cache: exact-match answers served again without a provider call. Owns the key
//! (`key`), the decision (`policy`), the stored answer and its capture (`entry`), each worker's
//! byte-bounded LRU (`memory`) and the optional Redis tier (`redis`). It reads no sockets and
//! writes no responses: `proxy::cached` looks up, replays and stores through `WorkerCache`.

pub mod entry;
pub mod key;
pub mod memory;
pub mod policy;
pub mod redis;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

pub use entry::{Capture, Ending, Entry};
pub use key::{Key, KeyInput};
pub use policy::{Decision, Directives, Policy};

use crate::config::Config;

/// How a request met the cache, as `x-corelay-cache`, the access log and `/metrics` say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Hit,
    Miss,
    Bypass,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Hit => "hit",
            Status::Miss => "miss",
            Status::Bypass => "bypass",
        }
    }
}

/// What storing one entry did to the memory tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stored {
    pub bytes: u64,
    pub evictions: u64,
}

/// One worker's cache: the policy in force, its memory tier and its link to Redis. Single-threaded.
pub struct WorkerCache {
    policy: RefCell<Rc<Policy>>,
    memory: RefCell<memory::MemoryLru>,
    redis: Option<redis::RedisLink>,
    /// Bytes the memory tier holds, for the gauge.
    memory_bytes: Cell<u64>,
}

impl WorkerCache {
    /// The memory tier and Redis link are sized and opened from the config at start; the policy
    /// (opt-ins, TTLs) follows reloads through `set_policy`.
    pub fn new(config: &Config) -> WorkerCache {
        let c = &config.cache;
        let redis = match (&c.redis_url, c.enabled) {
            (Some(url), true) => crate::config::parse_redis_url(url).ok().map(|address| {
                let timeout = Duration::from_millis(c.redis_timeout_ms);
                redis::RedisLink::start(address, c.redis_prefix.clone(), timeout, c.max_entry_bytes)
            }),
            _ => None,
        };
        WorkerCache {
            policy: RefCell::new(Rc::new(Policy::from_config(config))),
            memory: RefCell::new(memory::MemoryLru::new(if c.enabled { c.memory_bytes } else { 0 })),
            redis,
            memory_bytes: Cell::new(0),
        }
    }

    pub fn policy(&self) -> Rc<Policy> {
        Rc::clone(&self.policy.borrow())
    }

    pub fn set_policy(&self, policy: Policy) {
        *self.policy.borrow_mut() = Rc::new(policy);
    }

    /// The fresh entry under `key`: from memory, else from Redis (at most one round trip, bounded
    /// by its timeout), which then also fills memory.
    pub async fn lookup(&self, key: &Key) -> Option<Rc<Entry>> {
        if let Some(entry) = self.memory.borrow_mut().get(key, crate::clock::unix_now_ms()) {
            return Some(entry);
        }
        let redis = self.redis.as_ref()?;
        let entry = redis.get(key).await.filter(|e| e.is_fresh(crate::clock::unix_now_ms()))?;
        let entry = Rc::new(entry);
        self.remember(*key, Rc::clone(&entry));
        Some(entry)
    }

    /// Stores `entry` in memory and, when configured, in Redis.
    pub fn store(&self, key: Key, entry: Entry) -> Stored {
        if let Some(redis) = &self.redis {
            redis.set(&key, &entry, crate::clock::unix_now_ms());
        }
        let bytes = entry.size() as u64;
        Stored { bytes, evictions: self.remember(key, Rc::new(entry)) }
    }

    fn remember(&self, key: Key, entry: Rc<Entry>) -> u64 {
        let mut memory = self.memory.borrow_mut();
        let evictions = memory.insert(key, entry);
        self.memory_bytes.set(memory.used() as u64);
        evictions
    }

    /// Bytes the memory tier holds now.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes.get()
    }
}
