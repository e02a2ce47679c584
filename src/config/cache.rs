//! `[cache]`: the response cache's settings (memory bound, TTLs, Redis) and their validation. The
//! per-model and per-key opt-ins are `cache = true` on `[models."ID"]` and `[[keys]]`.
//!
//! Owns parsing and checking only; what is cached and how is the `cache` module's.

use serde::Deserialize;

use super::{ConfigIssue, UnknownKeys, issue, parse_redis_url};

/// `[cache]`: exact-match response caching. Off unless `enabled`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CacheConfig {
    /// Nothing is looked up or stored (and no `x-corelay-cache` header is sent) unless true.
    pub enabled: bool,
    /// Bytes of answers each worker keeps in memory (least recently used go first).
    pub memory_bytes: usize,
    /// Answers larger than this are not stored.
    pub max_entry_bytes: usize,
    /// Lifetime of an entry when the request names none (`Cache-Control: max-age`).
    pub default_ttl_s: u64,
    /// Upper bound on any lifetime a request asks for.
    pub max_ttl_s: u64,
    /// Also cache requests sampled with a temperature other than 0 (or none given).
    pub allow_nondeterministic: bool,
    /// `redis://HOST:PORT`: entries are also kept there, shared by every instance.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key the cache writes.
    pub redis_prefix: String,
    /// A Redis read unanswered this long is a miss.
    pub redis_timeout_ms: u64,
    #[serde(flatten)]
    pub(super) unknown: UnknownKeys,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: false,
            memory_bytes: 64 * 1024 * 1024,
            max_entry_bytes: 1024 * 1024,
            default_ttl_s: 300,
            max_ttl_s: 86_400,
            allow_nondeterministic: false,
            redis_url: None,
            redis_prefix: "corelay-cache".into(),
            redis_timeout_ms: 50,
            unknown: UnknownKeys::new(),
        }
    }
}

impl CacheConfig {
    pub(super) fn validate(&self, issues: &mut Vec<ConfigIssue>) {
        if self.max_entry_bytes == 0 {
            issues.push(issue("cache.max_entry_bytes", "must be greater than 0"));
        }
        if self.default_ttl_s == 0 || self.max_ttl_s == 0 {
            issues.push(issue("cache.default_ttl_s", "TTLs must be greater than 0"));
        }
        if self.redis_timeout_ms == 0 {
            issues.push(issue("cache.redis_timeout_ms", "must be greater than 0"));
        }
        if let Some(url) = &self.redis_url
            && let Err(why) = parse_redis_url(url)
        {
            issues.push(issue("cache.redis_url", format!("`{url}`: {why}")));
        }
        if self.redis_prefix.is_empty() || self.redis_prefix.contains(char::is_whitespace) {
            issues.push(issue("cache.redis_prefix", "must be non-empty and contain no whitespace"));
        }
    }
}
