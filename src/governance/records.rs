//! Virtual keys created at run time and kept in Redis (`corelay keys create|list|revoke`): one hash,
//! `PREFIX:keys`, mapping a key's name to its record as JSON. Records hold the secret's SHA-256,
//! never the secret. Every instance re-reads them about once a second.

use std::io;

use serde::{Deserialize, Serialize};

use super::policy::{KeyPolicy, Limits, hash_hex, parse_hex_hash};
use super::resp::{Connection, Reply};

/// One key as stored in Redis.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyRecord {
    pub name: String,
    pub sha256: String,
    pub expires_at: Option<u64>,
    pub models: Option<Vec<String>>,
    pub budget_micros_per_day: Option<u64>,
    pub budget_micros_per_month: Option<u64>,
    pub budget_micros_total: Option<u64>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub max_concurrent: Option<u64>,
    pub created_at: u64,
}

impl KeyRecord {
    pub fn from_policy(policy: &KeyPolicy, created_at: u64) -> KeyRecord {
        let l = &policy.limits;
        KeyRecord {
            name: policy.name.clone(),
            sha256: hash_hex(&policy.hash),
            expires_at: policy.expires_at,
            models: policy.models.clone(),
            budget_micros_per_day: l.budget_micros_per_day,
            budget_micros_per_month: l.budget_micros_per_month,
            budget_micros_total: l.budget_micros_total,
            rpm: l.rpm,
            tpm: l.tpm,
            max_concurrent: l.max_concurrent,
            created_at,
        }
    }

    pub fn to_policy(&self) -> Option<KeyPolicy> {
        Some(KeyPolicy {
            name: self.name.clone(),
            hash: parse_hex_hash(&self.sha256)?,
            expires_at: self.expires_at,
            models: self.models.clone(),
            limits: Limits {
                budget_micros_per_day: self.budget_micros_per_day,
                budget_micros_per_month: self.budget_micros_per_month,
                budget_micros_total: self.budget_micros_total,
                rpm: self.rpm,
                tpm: self.tpm,
                max_concurrent: self.max_concurrent,
            },
        })
    }
}

fn records_key(prefix: &str) -> String {
    format!("{prefix}:keys")
}

fn redis_error(reply: &Reply) -> Option<io::Error> {
    match reply {
        Reply::Error(e) => Some(io::Error::other(format!("redis: {e}"))),
        _ => None,
    }
}

/// Stores a new record; `Ok(false)` if a key of that name exists (rotate = revoke, then create).
pub fn create(conn: &mut Connection, prefix: &str, record: &KeyRecord) -> io::Result<bool> {
    let json = serde_json::to_string(record).map_err(io::Error::other)?;
    let reply = conn.call(&["HSETNX", &records_key(prefix), &record.name, &json])?;
    if let Some(e) = redis_error(&reply) {
        return Err(e);
    }
    Ok(reply.as_int() == Some(1))
}

/// Every stored record (unreadable ones are skipped with a warning), sorted by name.
pub fn list(conn: &mut Connection, prefix: &str) -> io::Result<Vec<KeyRecord>> {
    let reply = conn.call(&["HGETALL", &records_key(prefix)])?;
    if let Some(e) = redis_error(&reply) {
        return Err(e);
    }
    let mut records: Vec<KeyRecord> = reply
        .items()
        .chunks(2)
        .filter_map(|pair| {
            let json = pair.get(1)?.as_text()?;
            serde_json::from_str(&json)
                .inspect_err(|e| log::warn!("governance: skipping an unreadable key record: {e}"))
                .ok()
        })
        .collect();
    records.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(records)
}

/// Deletes a record; `Ok(false)` if there was none. Instances stop accepting it within a refresh.
pub fn revoke(conn: &mut Connection, prefix: &str, name: &str) -> io::Result<bool> {
    let reply = conn.call(&["HDEL", &records_key(prefix), name])?;
    if let Some(e) = redis_error(&reply) {
        return Err(e);
    }
    Ok(reply.as_int() == Some(1))
}

/// Gives an existing key a new secret, keeping its limits (and its spend, which is by name); the
/// old secret stops working within a refresh. `Ok(None)` if there is no such key.
pub fn rotate(conn: &mut Connection, prefix: &str, name: &str) -> io::Result<Option<String>> {
    let reply = conn.call(&["HGET", &records_key(prefix), name])?;
    if let Some(e) = redis_error(&reply) {
        return Err(e);
    }
    let Some(json) = reply.as_text() else { return Ok(None) };
    let mut record: KeyRecord = serde_json::from_str(&json).map_err(io::Error::other)?;
    let secret = new_secret()?;
    record.sha256 = hash_hex(&super::policy::sha256(secret.as_bytes()));
    let json = serde_json::to_string(&record).map_err(io::Error::other)?;
    let reply = conn.call(&["HSET", &records_key(prefix), name, &json])?;
    match redis_error(&reply) {
        Some(e) => Err(e),
        None => Ok(Some(secret)),
    }
}

/// A new secret: `ck-` and 32 random bytes in hex, from the system's generator.
pub fn new_secret() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| io::Error::other("the system random generator failed"))?;
    Ok(format!("ck-{}", hash_hex(&bytes)))
}

/// A key administration request (the admin HTTP endpoint's, run on the governance thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAdmin {
    /// A new key with the record's name and limits; its `sha256` is replaced by a new secret's.
    Create(KeyRecord),
    List,
    Rotate(String),
    Revoke(String),
}

/// What a [`KeyAdmin`] request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyAdminAnswer {
    /// Created or rotated: the secret, to show once.
    Secret {
        name: String,
        secret: String,
    },
    /// Every record with its total spend in micro-dollars.
    Listed(Vec<(KeyRecord, u64)>),
    Revoked,
    /// No key of that name (rotate, revoke), or one exists already (create).
    NotFound,
    Exists,
}

pub fn administer(conn: &mut Connection, prefix: &str, request: KeyAdmin) -> io::Result<KeyAdminAnswer> {
    match request {
        KeyAdmin::Create(mut record) => {
            let secret = new_secret()?;
            record.sha256 = hash_hex(&super::policy::sha256(secret.as_bytes()));
            if record.created_at == 0 {
                record.created_at = crate::clock::unix_now();
            }
            Ok(match create(conn, prefix, &record)? {
                true => KeyAdminAnswer::Secret { name: record.name, secret },
                false => KeyAdminAnswer::Exists,
            })
        }
        KeyAdmin::List => {
            let mut listed = Vec::new();
            for record in list(conn, prefix)? {
                let total = conn.call(&["HGET", &format!("{prefix}:k:{}:counters", record.name), "spent_total"])?;
                listed.push((record, total.as_int().unwrap_or(0).max(0) as u64));
            }
            Ok(KeyAdminAnswer::Listed(listed))
        }
        KeyAdmin::Rotate(name) => Ok(match rotate(conn, prefix, &name)? {
            Some(secret) => KeyAdminAnswer::Secret { name, secret },
            None => KeyAdminAnswer::NotFound,
        }),
        KeyAdmin::Revoke(name) => {
            Ok(if revoke(conn, prefix, &name)? { KeyAdminAnswer::Revoked } else { KeyAdminAnswer::NotFound })
        }
    }
}
