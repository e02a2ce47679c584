//! Routing: the snapshot each worker routes with (routes + health, one version) and the ordering of
//! candidate endpoints for a request.
//!
//! Each worker owns its `Rc<Snapshot>`: lookups touch only core-local memory and take no lock. A new
//! health table or config arrives as a new snapshot between requests; in-flight requests keep theirs.

mod budget;
mod candidates;
mod models_list;
mod options;

use hashbrown::HashMap;
use std::rc::Rc;
use std::sync::Arc;

pub use budget::RetryBudget;
pub use candidates::{Candidate, Candidates, RouteError, echoed, order_candidates, order_candidates_with_random};
pub use options::RoutingOptions;

use crate::config::resolve::{ResolvedConfig, ResolvedKey, ResolvedProvider};
use crate::health::{EndpointId, HealthTable};

/// One way to serve a model.
#[derive(Debug)]
pub struct Endpoint {
    pub id: EndpointId,
    pub provider: Arc<ResolvedProvider>,
    /// The model name the provider knows.
    pub model: String,
    pub priority: u32,
    /// What a call through this endpoint costs (zero when no price is configured).
    pub price: crate::metrics::cost::Price,
    /// Configured share among endpoints of equal priority; `None` leaves that priority to latency.
    pub weight: Option<u32>,
}

/// A gateway model and its endpoints in configured order.
#[derive(Debug)]
pub struct ModelRoute {
    pub id: std::sync::Arc<str>,
    pub owned_by: String,
    pub endpoints: Vec<Endpoint>,
    /// Config-level fallback models, tried after this model's endpoints and a request's own fallbacks.
    pub fallbacks: Vec<String>,
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

/// The part of a snapshot that changes only with the config.
#[derive(Debug)]
pub struct Routes {
    models: HashMap<String, ModelRoute>,
    /// Model ids in config order, for listing.
    model_order: Vec<String>,
    /// (provider, provider model) per endpoint id.
    endpoint_keys: Vec<(String, String)>,
    keys: Vec<ResolvedKey>,
    /// `[[keys]]` given as `key_sha256`: (name, digest). Checked by hashing the presented key.
    hashed_keys: Vec<(String, [u8; 32])>,
    admin_key: Option<crate::config::resolve::Secret>,
    /// Pre-rendered `GET /v1/models` body: it only changes with the config.
    pub models_body: Vec<u8>,
}

/// What a worker routes with: routes and health of one version.
#[derive(Debug)]
pub struct Snapshot {
    pub routes: Rc<Routes>,
    pub health: HealthTable,
}

impl Snapshot {
    pub fn new(routes: Rc<Routes>, health: HealthTable) -> Snapshot {
        Snapshot { routes, health }
    }
}

impl Routes {
    pub fn build(config: &ResolvedConfig, created_unix: u64) -> Routes {
        let mut models = HashMap::new();
        let mut model_order = Vec::new();
        let mut endpoint_ids: HashMap<(String, String), EndpointId> = HashMap::new();
        let mut endpoint_keys = Vec::new();
        for (id, model) in &config.config.models {
            let endpoints = model
                .endpoints
                .iter()
                .enumerate()
                .map(|(position, e)| {
                    let key = (e.provider.clone(), e.model.clone());
                    let next = endpoint_keys.len();
                    let endpoint_id = *endpoint_ids.entry(key.clone()).or_insert_with(|| {
                        endpoint_keys.push(key);
                        next
                    });
                    Endpoint {
                        id: endpoint_id,
                        provider: Arc::clone(&config.providers[&e.provider]),
                        model: e.model.clone(),
                        priority: e.priority.unwrap_or(position as u32),
                        price: e
                            .price
                            .or(model.price)
                            .map(|p| crate::metrics::cost::Price::from_config(&p))
                            .unwrap_or_default(),
                        weight: e.weight,
                    }
                })
                .collect();
            let owned_by = model.owned_by.clone().unwrap_or_else(|| default_owner(id).to_string());
            models.insert(
                id.clone(),
                ModelRoute { id: id.as_str().into(), owned_by, endpoints, fallbacks: model.fallbacks.clone() },
            );
            model_order.push(id.clone());
        }
        let listing = model_order.iter().map(|id| (id.as_str(), models[id].owned_by.as_str()));
        let models_body = models_list::model_list_json(listing, created_unix);
        Routes {
            models,
            model_order,
            endpoint_keys,
            keys: config.keys.clone(),
            hashed_keys: hashed_keys(config),
            admin_key: config.admin_key.clone(),
            models_body,
        }
    }

    pub fn model(&self, id: &str) -> Option<&ModelRoute> {
        self.models.get(id)
    }

    pub fn model_ids(&self) -> impl Iterator<Item = &str> {
        self.model_order.iter().map(String::as_str)
    }

    /// Number of distinct (provider, provider model) endpoints.
    pub fn endpoint_count(&self) -> usize {
        self.endpoint_keys.len()
    }

    /// (provider, provider model) of every endpoint, indexed by endpoint id.
    pub fn endpoint_keys(&self) -> &[(String, String)] {
        &self.endpoint_keys
    }

    /// The (provider, provider model) of an endpoint id.
    pub fn endpoint_key(&self, id: EndpointId) -> Option<(&str, &str)> {
        self.endpoint_keys.get(id).map(|(p, m)| (p.as_str(), m.as_str()))
    }

    /// The endpoint id of a (provider, provider model) pair.
    pub fn endpoint_id(&self, provider: &str, model: &str) -> Option<EndpointId> {
        self.endpoint_keys.iter().position(|(p, m)| p == provider && m == model)
    }

    /// Every endpoint id served by `provider` (a provider cooldown covers all of its models).
    pub fn endpoints_of_provider<'a>(&'a self, provider: &'a str) -> impl Iterator<Item = EndpointId> + 'a {
        self.endpoint_keys.iter().enumerate().filter(move |(_, (p, _))| p == provider).map(|(id, _)| id)
    }

    pub fn has_provider(&self, name: &str) -> bool {
        self.endpoint_keys.iter().any(|(p, _)| p == name)
    }

    /// No gateway key is configured: every request is let in.
    pub fn is_open(&self) -> bool {
        self.keys.is_empty() && self.hashed_keys.is_empty()
    }

    /// Checks a presented key against every configured key in constant time per key, without stopping
    /// at the first match, so timing does not reveal which key (or how much of one) matched.
    pub fn authenticate(&self, presented: Option<&[u8]>) -> Auth<'_> {
        if self.is_open() {
            return Auth::Open;
        }
        let Some(presented) = presented else { return Auth::Denied };
        let mut found = None;
        for key in &self.keys {
            if constant_time_eq(presented, key.secret.expose().as_bytes()) && found.is_none() {
                found = Some(key.name.as_str());
            }
        }
        if !self.hashed_keys.is_empty() {
            let digest = ring::digest::digest(&ring::digest::SHA256, presented);
            for (name, hash) in &self.hashed_keys {
                if constant_time_eq(digest.as_ref(), hash) && found.is_none() {
                    found = Some(name.as_str());
                }
            }
        }
        found.map_or(Auth::Denied, Auth::Key)
    }
}

impl Routes {
    /// Admin endpoints: `None` when no admin key is configured (they are off), else whether the
    /// presented key is the admin key.
    pub fn authenticate_admin(&self, presented: Option<&[u8]>) -> Option<bool> {
        let key = self.admin_key.as_ref()?;
        Some(presented.is_some_and(|p| constant_time_eq(p, key.expose().as_bytes())))
    }
}

/// The `key_sha256` entries of `[[keys]]` (validated as 64 hex digits by the config).
fn hashed_keys(config: &ResolvedConfig) -> Vec<(String, [u8; 32])> {
    let parse = |hex: &str| -> Option<[u8; 32]> {
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(out)
    };
    let hashed = config.config.keys.iter().filter_map(|k| Some((k.name.clone(), parse(k.key_sha256.as_deref()?)?)));
    hashed.collect()
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
    fn keys_given_by_hash_close_the_gateway_and_match_their_secret() {
        use crate::config::{Config, resolve};
        let hash = "b9a5d3ed2bf1bd1cd2a1cb1dc8ef7d5a9a2a0f4e4e7a8aa3c1c57c1b8fd7a1e0";
        let digest = ring::digest::digest(&ring::digest::SHA256, b"sk-hashed-0123456789");
        let real: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let text = format!(
            "[[keys]]\nname = \"decoy\"\nkey_sha256 = \"{hash}\"\n[[keys]]\nname = \"h\"\nkey_sha256 = \"{real}\"\n"
        );
        let routes = Routes::build(&resolve(Config::parse(&text).unwrap()).unwrap(), 0);
        assert_eq!(routes.authenticate(None), Auth::Denied, "hash-only keys must not leave the gateway open");
        assert_eq!(routes.authenticate(Some(b"sk-hashed-0123456789")), Auth::Key("h"));
        assert_eq!(routes.authenticate(Some(b"sk-hashed-012345678")), Auth::Denied);
    }

    #[test]
    fn owners_default_from_the_id() {
        assert_eq!(default_owner("acme/chat-small"), "acme");
        assert_eq!(default_owner("plain"), "corelay");
    }
}
