//! The shared tier: entries kept in Redis (lz4-compressed, expiring with `SET … PX`) so every
//! instance serves what any of them stored. One thread per worker owns a blocking RESP connection
//! (the governance client, `governance::resp`); the worker sends it commands over a channel and
//! awaits a read's answer for at most `redis_timeout_ms`, so a slow or absent Redis is a miss, never
//! a stall. Writes are fire-and-forget. Does not decide what is cached.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::entry::Entry;
use super::key::Key;
use crate::governance::oneshot;
use crate::governance::resp::{Connection, Reply};

/// Commands queued for the thread beyond this are dropped (reads then miss at once).
const QUEUE: usize = 1024;

/// After Redis failed, it is not tried again for this long (requests miss without waiting).
const RETRY_AFTER: Duration = Duration::from_millis(500);

enum Command {
    Get { key: String, reply: oneshot::Sender<Option<Vec<u8>>> },
    Set { key: String, value: Vec<u8>, ttl_ms: u64 },
}

/// A worker's handle on its Redis thread.
pub struct RedisLink {
    commands: Sender<Command>,
    prefix: String,
    timeout: Duration,
    max_entry_bytes: usize,
}

impl RedisLink {
    /// Starts the thread; it connects when first needed.
    pub fn start(address: String, prefix: String, timeout: Duration, max_entry_bytes: usize) -> RedisLink {
        let (commands, receiver) = crossbeam_channel::bounded(QUEUE);
        let thread = RedisThread { address, timeout, connection: None, down_until: None };
        // Not joined: it ends when the worker drops its link (the channel closes).
        let spawned =
            std::thread::Builder::new().name("corelay-cache-redis".into()).spawn(move || thread.run(receiver));
        if let Err(e) = spawned {
            log::warn!("cache: cannot start the Redis thread ({e}); the shared cache is off on this worker");
        }
        RedisLink { commands, prefix, timeout, max_entry_bytes }
    }

    fn redis_key(&self, key: &Key) -> String {
        format!("{}:{}", self.prefix, key.hex())
    }

    /// The entry under `key`, or `None` on a miss, an error, or no answer within the timeout.
    pub async fn get(&self, key: &Key) -> Option<Entry> {
        let (reply, answer) = oneshot::channel();
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.commands.try_send(Command::Get { key: self.redis_key(key), reply })
        {
            return None;
        }
        // Boxed: a monoio timer inline would grow (and 128-align) every connection's future.
        let compressed = Box::pin(monoio::time::timeout(self.timeout, answer)).await.ok()???;
        decompress(&compressed, self.max_entry_bytes).and_then(|bytes| Entry::decode(&bytes))
    }

    /// Queues `entry` to be stored until its expiry; dropped when the queue is full.
    pub fn set(&self, key: &Key, entry: &Entry, now_unix_ms: u64) {
        let ttl_ms = entry.expires_unix_ms.saturating_sub(now_unix_ms);
        if ttl_ms == 0 {
            return;
        }
        let value = lz4_flex::compress_prepend_size(&entry.encode());
        let _ = self.commands.try_send(Command::Set { key: self.redis_key(key), value, ttl_ms });
    }
}

/// lz4 with its size prepended, refusing sizes no stored entry can have (a corrupt value must not
/// make the worker allocate gigabytes).
fn decompress(bytes: &[u8], max_entry_bytes: usize) -> Option<Vec<u8>> {
    let size = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    if size > max_entry_bytes + 64 * 1024 {
        return None;
    }
    lz4_flex::decompress_size_prepended(bytes).ok()
}

struct RedisThread {
    address: String,
    timeout: Duration,
    connection: Option<Connection>,
    down_until: Option<Instant>,
}

impl RedisThread {
    fn run(mut self, receiver: Receiver<Command>) {
        while let Ok(command) = receiver.recv() {
            match command {
                Command::Get { key, reply } => {
                    let value = match self.call(&[b"GET".as_slice(), key.as_bytes()]) {
                        Some(Reply::Bulk(Some(value))) => Some(value),
                        _ => None,
                    };
                    reply.send(value);
                }
                Command::Set { key, value, ttl_ms } => {
                    let ttl = ttl_ms.to_string();
                    self.call(&[b"SET".as_slice(), key.as_bytes(), &value, b"PX", ttl.as_bytes()]);
                }
            }
        }
    }

    /// One command; `None` when Redis is down (then not tried again for `RETRY_AFTER`).
    fn call(&mut self, args: &[&[u8]]) -> Option<Reply> {
        if self.connection.is_none() {
            if self.down_until.is_some_and(|until| Instant::now() < until) {
                return None;
            }
            match Connection::connect(&self.address, self.timeout) {
                Ok(connection) => {
                    if self.down_until.take().is_some() {
                        log::info!("cache: Redis at {} is reachable again", self.address);
                    }
                    self.connection = Some(connection);
                }
                Err(e) => return self.lost(&e),
            }
        }
        match self.connection.as_mut()?.call(args) {
            Ok(reply) => Some(reply),
            Err(e) => self.lost(&e),
        }
    }

    fn lost(&mut self, why: &std::io::Error) -> Option<Reply> {
        if self.down_until.is_none() {
            log::warn!("cache: Redis at {} is unreachable ({why}); serving from memory only", self.address);
        }
        self.connection = None;
        self.down_until = Some(Instant::now() + RETRY_AFTER);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_values_round_trip_and_absurd_sizes_are_refused() {
        let value = vec![b'a'; 10_000];
        let packed = lz4_flex::compress_prepend_size(&value);
        assert!(packed.len() < value.len() / 10);
        assert_eq!(decompress(&packed, 10_000).as_deref(), Some(&value[..]));
        let mut lying = packed.clone();
        lying[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decompress(&lying, 10_000), None);
        assert_eq!(decompress(b"ab", 10_000), None);
    }
}
