//! Virtual keys as the governor enforces them: who a presented secret is (by its SHA-256), when the
//! key expires, which models it may use and what it may spend and send.
//!
//! Owns the key records and their lookup. Counting is `ledger` (one process) and `shared` (Redis).

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{KeyConfig, ResolvedConfig};

/// A SHA-256 digest of a key secret: all the governor keeps of it.
pub type KeyHash = [u8; 32];

/// One virtual key's identity, allowances and limits. `None` limits are unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPolicy {
    pub name: String,
    pub hash: KeyHash,
    /// Unix seconds from which the key is refused.
    pub expires_at: Option<u64>,
    /// Exact model ids and `creator/*` patterns; `None` allows every model.
    pub models: Option<Vec<String>>,
    pub limits: Limits,
}

/// The numeric limits of a key (or the share of them enforced locally while Redis is away).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub budget_micros_per_day: Option<u64>,
    pub budget_micros_per_month: Option<u64>,
    pub budget_micros_total: Option<u64>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub max_concurrent: Option<u64>,
}

impl Limits {
    /// Each limit times `share`, rounded down but never below 1 (a limit of 0 would refuse everything).
    pub fn scaled(&self, share: f64) -> Limits {
        let scale = |v: Option<u64>| v.map(|v| ((v as f64 * share).floor() as u64).max(1));
        Limits {
            budget_micros_per_day: scale(self.budget_micros_per_day),
            budget_micros_per_month: scale(self.budget_micros_per_month),
            budget_micros_total: scale(self.budget_micros_total),
            rpm: scale(self.rpm),
            tpm: scale(self.tpm),
            max_concurrent: scale(self.max_concurrent),
        }
    }
}

impl KeyPolicy {
    /// From a `[[keys]]` entry and its resolved secret (`None` when the entry gives `key_sha256`).
    pub fn from_config(key: &KeyConfig, secret: Option<&str>) -> Option<KeyPolicy> {
        let hash = match (secret, &key.key_sha256) {
            (Some(secret), _) => sha256(secret.as_bytes()),
            (None, Some(hex)) => parse_hex_hash(hex)?,
            (None, None) => return None,
        };
        Some(KeyPolicy {
            name: key.name.clone(),
            hash,
            expires_at: key.expires_at.as_ref().and_then(crate::config::expiry_unix_seconds),
            models: key.models.clone(),
            limits: Limits {
                budget_micros_per_day: key.budget_micros_per_day,
                budget_micros_per_month: key.budget_micros_per_month,
                budget_micros_total: key.budget_micros_total,
                rpm: key.rpm,
                tpm: key.tpm,
                max_concurrent: key.max_concurrent,
            },
        })
    }

    /// Whether this key may call `model`: an exact id, or `creator/*` for every id under `creator/`.
    pub fn allows_model(&self, model: &str) -> bool {
        let Some(patterns) = &self.models else { return true };
        patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => model.starts_with(prefix) && model.len() > prefix.len(),
            None => p == model,
        })
    }

    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_at.is_some_and(|at| now_ms / 1000 >= at)
    }
}

/// Every key the governor knows, by hash and by name. Replaced whole on reload.
#[derive(Debug, Default)]
pub struct KeyTable {
    by_hash: HashMap<KeyHash, Arc<KeyPolicy>>,
    by_name: HashMap<String, Arc<KeyPolicy>>,
}

impl KeyTable {
    pub fn new(policies: impl IntoIterator<Item = KeyPolicy>) -> KeyTable {
        let mut table = KeyTable::default();
        for policy in policies {
            let policy = Arc::new(policy);
            // The first of two keys with one name wins (config keys are added before Redis records).
            if table.by_name.contains_key(&policy.name) {
                continue;
            }
            table.by_hash.insert(policy.hash, Arc::clone(&policy));
            table.by_name.insert(policy.name.clone(), policy);
        }
        table
    }

    /// The `[[keys]]` of a resolved config: inline and environment keys are hashed here and the
    /// secret is not kept.
    pub fn from_config(config: &ResolvedConfig) -> KeyTable {
        let secrets: HashMap<&str, &str> = config.keys.iter().map(|k| (k.name.as_str(), k.secret.expose())).collect();
        let policies = config.config.keys.iter().filter_map(|k| {
            let secret = secrets.get(k.name.as_str()).copied().filter(|_| k.key_sha256.is_none());
            KeyPolicy::from_config(k, secret)
        });
        KeyTable::new(policies.collect::<Vec<_>>())
    }

    /// The key whose secret is `presented`. Comparing digests through a hash map reveals nothing
    /// useful by timing: learning a digest's prefix does not help find a secret.
    pub fn authenticate(&self, presented: &[u8]) -> Option<&Arc<KeyPolicy>> {
        self.by_hash.get(&sha256(presented))
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<KeyPolicy>> {
        self.by_name.get(name)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub fn policies(&self) -> impl Iterator<Item = &Arc<KeyPolicy>> {
        self.by_name.values()
    }
}

pub fn sha256(bytes: &[u8]) -> KeyHash {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

pub fn hash_hex(hash: &KeyHash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn parse_hex_hash(hex: &str) -> Option<KeyHash> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(models: Option<&[&str]>) -> KeyPolicy {
        KeyPolicy { models: models.map(|m| m.iter().map(|s| s.to_string()).collect()), ..Default::default() }
    }

    #[test]
    fn model_allow_lists_take_exact_ids_and_creator_globs() {
        let p = policy(Some(&["openai/*", "anthropic/claude-sonnet-4"]));
        assert!(p.allows_model("openai/gpt-4o"));
        assert!(!p.allows_model("openai/"));
        assert!(!p.allows_model("openaix/gpt"));
        assert!(p.allows_model("anthropic/claude-sonnet-4"));
        assert!(!p.allows_model("anthropic/claude-opus-4"));
        assert!(policy(None).allows_model("anything"));
    }

    #[test]
    fn hashes_round_trip_through_hex_and_authenticate() {
        let hash = sha256(b"sk-team-0123456789");
        assert_eq!(parse_hex_hash(&hash_hex(&hash)), Some(hash));
        assert_eq!(hash_hex(&sha256(b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let table = KeyTable::new([KeyPolicy { name: "team".into(), hash, ..Default::default() }]);
        assert_eq!(table.authenticate(b"sk-team-0123456789").map(|p| p.name.as_str()), Some("team"));
        assert!(table.authenticate(b"sk-team-012345678").is_none());
    }

    #[test]
    fn expiry_is_inclusive_of_its_second() {
        let p = KeyPolicy { expires_at: Some(100), ..Default::default() };
        assert!(!p.expired(99_999));
        assert!(p.expired(100_000));
    }
}
