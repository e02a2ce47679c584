//! The routing snapshot: which models exist, which endpoints serve them, which gateway keys are valid.
//!
//! Each worker builds and owns its copy (`Rc<Snapshot>`), so lookups touch only core-local memory and
//! take no lock; a new version replaces the `Rc` between requests while in-flight requests keep theirs.
//! Ordering beyond "first endpoint" (request order, health) comes with the failover work.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::resolve::{ResolvedConfig, ResolvedKey, ResolvedProvider};

/// One way to serve a model.
#[derive(Debug)]
pub struct Endpoint {
    pub provider: Arc<ResolvedProvider>,
    /// The model name the provider knows.
    pub model: String,
}

/// A gateway model and its endpoints in preference order.
#[derive(Debug)]
pub struct ModelRoute {
    pub id: String,
    pub owned_by: String,
    pub endpoints: Vec<Endpoint>,
}

/// Result of checking a client's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth<'a> {
    /// No gateway keys are configured: the gateway is open.
    Open,
    /// The presented key matched this key's name.
    Key(&'a str),
    Denied,
}

#[derive(Debug)]
pub struct Snapshot {
    pub version: u64,
    models: HashMap<String, ModelRoute>,
    /// Model ids in config order, for listing.
    model_order: Vec<String>,
    keys: Vec<ResolvedKey>,
    /// Pre-rendered `GET /v1/models` body: it only changes with the config.
    pub models_body: Vec<u8>,
}

impl Snapshot {
    pub fn build(config: &ResolvedConfig, version: u64, created_unix: u64) -> Snapshot {
        let mut models = HashMap::new();
        let mut model_order = Vec::new();
        for (id, model) in &config.config.models {
            let endpoints = model
                .endpoints
                .iter()
                .map(|e| Endpoint { provider: Arc::clone(&config.providers[&e.provider]), model: e.model.clone() })
                .collect();
            let owned_by = model.owned_by.clone().unwrap_or_else(|| default_owner(id).to_string());
            models.insert(id.clone(), ModelRoute { id: id.clone(), owned_by, endpoints });
            model_order.push(id.clone());
        }
        let listing = model_order.iter().map(|id| (id.as_str(), models[id].owned_by.as_str()));
        let models_body = crate::api::openai::model_list_json(listing, created_unix);
        Snapshot { version, models, model_order, keys: config.keys.clone(), models_body }
    }

    pub fn model(&self, id: &str) -> Option<&ModelRoute> {
        self.models.get(id)
    }

    pub fn model_ids(&self) -> impl Iterator<Item = &str> {
        self.model_order.iter().map(String::as_str)
    }

    /// Checks a presented key against every configured key in constant time per key, without stopping
    /// at the first match, so timing does not reveal which key (or how much of one) matched.
    pub fn authenticate(&self, presented: Option<&[u8]>) -> Auth<'_> {
        if self.keys.is_empty() {
            return Auth::Open;
        }
        let Some(presented) = presented else { return Auth::Denied };
        let mut found = None;
        for key in &self.keys {
            if constant_time_eq(presented, key.secret.expose().as_bytes()) && found.is_none() {
                found = Some(key.name.as_str());
            }
        }
        found.map_or(Auth::Denied, Auth::Key)
    }
}

/// `acme/chat-small` is owned by `acme`; an id without a slash by `corelay`.
fn default_owner(id: &str) -> &str {
    id.split_once('/').map_or("corelay", |(owner, _)| owner)
}

/// Compares without an early exit on the first differing byte. Length is not secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The bearer token of an `Authorization` header value, if it is one.
pub fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at(header.iter().position(|&b| b == b' ')?);
    scheme.eq_ignore_ascii_case(b"bearer").then(|| rest.trim_ascii()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_parsed_case_insensitively() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer"), None);
        assert_eq!(bearer_token(b"Bearer   "), None);
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"secret-key", b"secret-key"));
        assert!(!constant_time_eq(b"secret-key", b"secret-kez"));
        assert!(!constant_time_eq(b"secret", b"secret-key"));
    }

    #[test]
    fn owners_default_from_the_id() {
        assert_eq!(default_owner("acme/chat-small"), "acme");
        assert_eq!(default_owner("plain"), "corelay");
    }
}
