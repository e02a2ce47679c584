//! The per-core pool of idle upstream connections, keyed by scheme+host+port.
//!
//! Lives inside one worker (`RefCell`, no locks). Connections come back only after a response ended
//! cleanly; a connection taken out is checked for liveness first, and expired ones are closed by
//! `evict_expired`, which the worker calls on a timer.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::conn::UpstreamConn;
use crate::http::origin::PoolKey;

/// Pool limits, from `[pool]`.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_idle_per_host: usize,
    pub idle_timeout: Duration,
}

struct IdleConn {
    conn: UpstreamConn,
    idle_since: Instant,
}

/// Per origin: connections reused, connections that had to be opened, and idle connections found
/// dead or expired and closed. Only this worker writes them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PoolCounters {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

pub struct Pool {
    settings: Cell<PoolSettings>,
    idle: RefCell<HashMap<PoolKey, Vec<IdleConn>>>,
    stats: RefCell<HashMap<PoolKey, PoolCounters>>,
}

impl Pool {
    pub fn new(settings: PoolSettings) -> Pool {
        Pool { settings: Cell::new(settings), idle: RefCell::new(HashMap::new()), stats: RefCell::new(HashMap::new()) }
    }

    /// New limits from a reload; idle connections beyond them go at the next sweep or put.
    pub fn set_settings(&self, settings: PoolSettings) {
        self.settings.set(settings);
    }

    /// The most recently used live connection for `key`, if any. LIFO keeps the warmest connections
    /// busy and lets the coldest expire.
    pub fn take(&self, key: &PoolKey) -> Option<UpstreamConn> {
        let now = Instant::now();
        let mut idle = self.idle.borrow_mut();
        let Some(conns) = idle.get_mut(key) else {
            self.count(key, |c| c.misses += 1);
            return None;
        };
        while let Some(entry) = conns.pop() {
            if now.duration_since(entry.idle_since) < self.settings.get().idle_timeout && entry.conn.is_idle_and_open()
            {
                self.count(key, |c| c.hits += 1);
                let mut conn = entry.conn;
                conn.reused = true;
                return Some(conn);
            }
            self.count(key, |c| c.evictions += 1);
        }
        self.count(key, |c| c.misses += 1);
        None
    }

    /// Returns a connection whose last response ended cleanly. Dropped when the host is at its limit.
    pub fn put(&self, key: &PoolKey, conn: UpstreamConn) {
        let mut idle = self.idle.borrow_mut();
        let conns = idle.entry(key.clone()).or_default();
        if conns.len() < self.settings.get().max_idle_per_host {
            conns.push(IdleConn { conn, idle_since: Instant::now() });
        }
    }

    /// Closes idle connections past the idle timeout or already closed by the provider.
    pub fn evict_expired(&self) {
        let now = Instant::now();
        let mut idle = self.idle.borrow_mut();
        for (key, conns) in idle.iter_mut() {
            let before = conns.len();
            conns.retain(|e| {
                now.duration_since(e.idle_since) < self.settings.get().idle_timeout && e.conn.is_idle_and_open()
            });
            let evicted = (before - conns.len()) as u64;
            if evicted > 0 {
                self.count(key, |c| c.evictions += evicted);
            }
        }
        idle.retain(|_, conns| !conns.is_empty());
    }

    fn count(&self, key: &PoolKey, update: impl FnOnce(&mut PoolCounters)) {
        let mut stats = self.stats.borrow_mut();
        match stats.get_mut(key) {
            Some(counters) => update(counters),
            None => update(stats.entry(key.clone()).or_default()),
        }
    }

    /// Cumulative counters per origin (`scheme://host:port`), for metrics.
    pub fn counters(&self) -> Vec<(String, PoolCounters)> {
        self.stats.borrow().iter().map(|(key, c)| (key.to_string(), *c)).collect()
    }

    pub fn idle_count(&self) -> usize {
        self.idle.borrow().values().map(Vec::len).sum()
    }
}
