//! The per-core pool of idle upstream connections, keyed by scheme+host+port.
//!
//! Lives inside one worker (`RefCell`, no locks). Connections come back only after a response ended
//! cleanly; a connection taken out after some idle time is checked for liveness first, and expired
//! ones are closed by `evict_expired`, which the worker calls on a timer.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use hashbrown::HashMap;

use super::conn::UpstreamConn;
use crate::http::origin::PoolKey;

/// Pool limits, from `[pool]`.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_idle_per_host: usize,
    pub idle_timeout: Duration,
    /// A connection idle at least this long is checked for liveness (one `recv(MSG_PEEK)`) before
    /// reuse; one back for less is handed out unchecked.
    pub liveness_check_after: Duration,
}

/// Why not check every time: under load a connection is back in the pool for microseconds, and the
/// check was the one syscall per request besides io_uring's (1 to 2% of CPU per request). Providers
/// close idle connections after seconds, not microseconds; and a connection that did die in the
/// meantime fails before any response byte, which `exchange` retries once on a fresh connection
/// because it was reused. What the check still buys, after a second idle: no wasted write and retry
/// for the common keep-alive expiry, and stray bytes from a broken provider caught before a request
/// is sent into them.
pub const LIVENESS_CHECK_AFTER: Duration = Duration::from_secs(1);

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
        let now = crate::clock::now();
        let mut idle = self.idle.borrow_mut();
        let Some(conns) = idle.get_mut(key) else {
            self.count(key, |c| c.misses += 1);
            return None;
        };
        while let Some(entry) = conns.pop() {
            if self.usable(&entry, now) {
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

    fn usable(&self, entry: &IdleConn, now: Instant) -> bool {
        let settings = self.settings.get();
        let idle = now.duration_since(entry.idle_since);
        idle < settings.idle_timeout && (idle < settings.liveness_check_after || entry.conn.is_idle_and_open())
    }

    /// Returns a connection whose last response ended cleanly. Dropped when the host is at its limit.
    pub fn put(&self, key: &PoolKey, conn: UpstreamConn) {
        let mut idle = self.idle.borrow_mut();
        let conns = idle.entry_ref(key).or_default();
        if conns.len() < self.settings.get().max_idle_per_host {
            conns.push(IdleConn { conn, idle_since: crate::clock::now() });
        }
    }

    /// Closes idle connections past the idle timeout or already closed by the provider.
    pub fn evict_expired(&self) {
        let now = crate::clock::now();
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

#[cfg(test)]
mod tests {
    //! The pool's documented limits: `max_idle_per_host` idle connections per origin at most,
    //! `idle_timeout_ms` after which an idle connection is never handed out again, and dead
    //! connections (closed by the provider) evicted instead of reused. Real loopback sockets on a
    //! monoio runtime (io_uring or epoll, as MONOIO_FORCE_LEGACY_DRIVER says).

    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    use monoio::{FusionDriver, RuntimeBuilder};

    use super::{Pool, PoolSettings};
    use crate::http::origin::{PoolKey, Scheme};
    use crate::upstream::conn::UpstreamConn;

    const LONG: Duration = Duration::from_secs(60);

    fn key(port: u16) -> PoolKey {
        PoolKey { scheme: Scheme::Http, host: "127.0.0.1".into(), port }
    }

    /// Settings that check liveness at every take, as the tests of that check need.
    fn settings(max_idle_per_host: usize, idle_timeout: Duration) -> PoolSettings {
        PoolSettings { max_idle_per_host, idle_timeout, liveness_check_after: Duration::ZERO }
    }

    /// Runs `test` on a monoio runtime like a worker's.
    fn on_runtime(test: impl std::future::Future<Output = ()>) {
        let mut runtime = RuntimeBuilder::<FusionDriver>::new().enable_timer().build().expect("monoio runtime");
        runtime.block_on(test);
    }

    /// A listener and `n` connections to it: the pool's side, and the accepted (provider's) side.
    async fn connections(n: usize) -> (TcpListener, Vec<(UpstreamConn, TcpStream)>) {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut pairs = Vec::new();
        for _ in 0..n {
            let stream = monoio::net::TcpStream::connect(addr).await.expect("connect to the local listener");
            let (accepted, _) = listener.accept().unwrap();
            pairs.push((UpstreamConn::plain(stream), accepted));
        }
        (listener, pairs)
    }

    /// Whether `side` reads end-of-stream within `rounds` turns of the runtime (1 ms timer each).
    async fn end_of_stream_within(mut side: &TcpStream, rounds: usize) -> bool {
        for _ in 0..rounds {
            let mut byte = [0u8; 1];
            match std::io::Read::read(&mut side, &mut byte) {
                Ok(0) => return true,
                Ok(_) => return false,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
            monoio::time::sleep(Duration::from_millis(1)).await;
        }
        false
    }

    #[test]
    fn no_more_than_max_idle_per_host_are_kept_per_origin() {
        on_runtime(async {
            let pool = Pool::new(settings(2, LONG));
            let (listener, pairs) = connections(3).await;
            let origin = key(listener.local_addr().unwrap().port());
            let mut provider_sides = Vec::new();
            for (conn, accepted) in pairs {
                pool.put(&origin, conn);
                provider_sides.push(accepted);
            }
            assert_eq!(pool.idle_count(), 2, "the third connection is dropped, not pooled");
            // Another origin has its own allowance.
            let (other_listener, other) = connections(1).await;
            let other_origin = key(other_listener.local_addr().unwrap().port());
            let (conn, _other_side) = other.into_iter().next().unwrap();
            pool.put(&other_origin, conn);
            assert_eq!(pool.idle_count(), 3);
        });
    }

    #[test]
    fn a_lowered_limit_from_a_reload_refuses_further_connections() {
        on_runtime(async {
            let pool = Pool::new(settings(4, LONG));
            let (listener, pairs) = connections(2).await;
            let origin = key(listener.local_addr().unwrap().port());
            let mut pairs = pairs.into_iter();
            let (first, _first_side) = pairs.next().unwrap();
            pool.put(&origin, first);
            pool.set_settings(settings(1, LONG));
            let (second, _second_side) = pairs.next().unwrap();
            pool.put(&origin, second);
            assert_eq!(pool.idle_count(), 1);
        });
    }

    #[test]
    fn the_most_recently_returned_connection_is_reused_first_and_marked_reused() {
        on_runtime(async {
            let pool = Pool::new(settings(8, LONG));
            let (listener, pairs) = connections(2).await;
            let origin = key(listener.local_addr().unwrap().port());
            let mut fds = Vec::new();
            let mut provider_sides = Vec::new();
            for (conn, accepted) in pairs {
                assert!(!conn.reused, "a fresh connection is not marked reused");
                fds.push(conn.as_raw_fd());
                pool.put(&origin, conn);
                provider_sides.push(accepted);
            }
            let taken = pool.take(&origin).expect("a live idle connection");
            assert_eq!(taken.as_raw_fd(), fds[1], "LIFO: the warmest connection");
            assert!(taken.reused);
            let counters = pool.counters();
            assert_eq!(counters.len(), 1);
            assert_eq!((counters[0].1.hits, counters[0].1.misses, counters[0].1.evictions), (1, 0, 0));
        });
    }

    #[test]
    fn a_connection_idle_past_the_timeout_is_closed_not_reused() {
        on_runtime(async {
            // A zero timeout makes every idle connection expired at once, without waiting in the test.
            let pool = Pool::new(settings(8, Duration::ZERO));
            let (listener, pairs) = connections(1).await;
            let origin = key(listener.local_addr().unwrap().port());
            let (conn, _provider_side) = pairs.into_iter().next().unwrap();
            pool.put(&origin, conn);
            assert!(pool.take(&origin).is_none(), "expired: never handed out");
            let counters = pool.counters()[0].1;
            assert_eq!((counters.hits, counters.misses, counters.evictions), (0, 1, 1));
        });
    }

    #[test]
    fn the_sweep_closes_expired_connections_and_keeps_fresh_ones() {
        on_runtime(async {
            let pool = Pool::new(settings(8, LONG));
            let (listener, pairs) = connections(2).await;
            let origin = key(listener.local_addr().unwrap().port());
            let mut provider_sides = Vec::new();
            for (conn, accepted) in pairs {
                pool.put(&origin, conn);
                provider_sides.push(accepted);
            }
            pool.evict_expired();
            assert_eq!(pool.idle_count(), 2, "within the idle timeout both stay");
            pool.set_settings(settings(8, Duration::ZERO));
            pool.evict_expired();
            assert_eq!(pool.idle_count(), 0, "past it both are closed");
            assert_eq!(pool.counters()[0].1.evictions, 2);
            // Closed means the provider sees end-of-stream on both. Under io_uring the close is an
            // operation the runtime submits when it next runs, so the check yields to it between
            // non-blocking reads, bounded in count.
            for side in provider_sides {
                side.set_nonblocking(true).unwrap();
                assert!(end_of_stream_within(&side, 5000).await, "the pool closed it");
            }
        });
    }

    #[test]
    fn a_connection_the_provider_closed_is_evicted_instead_of_reused() {
        on_runtime(async {
            let pool = Pool::new(settings(8, LONG));
            let (listener, pairs) = connections(2).await;
            let origin = key(listener.local_addr().unwrap().port());
            let mut pairs = pairs.into_iter();
            let (live, _live_side) = pairs.next().unwrap();
            let live_fd = live.as_raw_fd();
            pool.put(&origin, live);
            let (dead, dead_side) = pairs.next().unwrap();
            let dead_fd = dead.as_raw_fd();
            pool.put(&origin, dead);
            drop(dead_side);
            // The FIN travels over loopback; wait for it to be readable, bounded, before taking.
            let mut poll = libc::pollfd { fd: dead_fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd for a descriptor the pool owns, 5 s at most.
            assert_eq!(unsafe { libc::poll(&mut poll, 1, 5000) }, 1, "the provider's FIN arrived");
            let taken = pool.take(&origin).expect("the live connection is still there");
            assert_eq!(taken.as_raw_fd(), live_fd, "the dead (most recent) one was skipped");
            assert_eq!(pool.counters()[0].1.evictions, 1);
        });
    }

    #[test]
    fn a_connection_back_for_less_than_the_check_interval_is_handed_out_unchecked() {
        on_runtime(async {
            let pool = Pool::new(PoolSettings { liveness_check_after: LONG, ..settings(8, LONG) });
            let (listener, pairs) = connections(1).await;
            let origin = key(listener.local_addr().unwrap().port());
            let (conn, provider_side) = pairs.into_iter().next().unwrap();
            let fd = conn.as_raw_fd();
            pool.put(&origin, conn);
            drop(provider_side);
            let mut poll = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd for a descriptor the pool owns, 5 s at most.
            assert_eq!(unsafe { libc::poll(&mut poll, 1, 5000) }, 1, "the provider's FIN arrived");
            // Dead, but not checked: the request on it fails before any byte and `exchange` retries.
            let taken = pool.take(&origin).expect("handed out without the syscall");
            assert_eq!(taken.as_raw_fd(), fd);
            assert!(taken.reused, "marked reused, so a failure on it is retried on a fresh connection");
        });
    }
}
