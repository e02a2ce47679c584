//! Routing: the snapshot each worker routes with (routes + health, one version) and the ordering of
//! candidate endpoints for a request.
//!
//! Each worker owns its `Rc<Snapshot>`: lookups touch only core-local memory and take no lock. A new
//! health table or config arrives as a new snapshot between requests; in-flight requests keep theirs.

mod budget;
mod candidates;
mod models_list;
mod options;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

pub use budget::RetryBudget;
pub use candidates::{Candidate, RouteError, order_candidates};
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
}

/// A gateway model and its endpoints in configured order.
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

/// The part of a snapshot that changes only with the config.
#[derive(Debug)]
pub struct Routes {
    models: HashMap<String, ModelRoute>,
    /// Model ids in config order, for listing.
    model_order: Vec<String>,
    /// (provider, provider model) per endpoint id.
    endpoint_keys: Vec<(String, String)>,
    keys: Vec<ResolvedKey>,
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
                    }
                })
                .collect();
            let owned_by = model.owned_by.clone().unwrap_or_else(|| default_owner(id).to_string());
            models.insert(id.clone(), ModelRoute { id: id.clone(), owned_by, endpoints });
            model_order.push(id.clone());
        }
        let listing = model_order.iter().map(|id| (id.as_str(), models[id].owned_by.as_str()));
        let models_body = models_list::model_list_json(listing, created_unix);
        Routes {
            models,
            model_order,
            endpoint_keys,
            keys: config.keys.clone(),
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

impl Routes {
    /// Admin endpoints: `None` when no admin key is configured (they are off), else whether the
    /// presented key is the admin key.
    pub fn authenticate_admin(&self, presented: Option<&[u8]>) -> Option<bool> {
        let key = self.admin_key.as_ref()?;
        Some(presented.is_some_and(|p| constant_time_eq(p, key.expose().as_bytes())))
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
