//! Candidate ordering: which endpoints a request may try, in which order.
//!
//! The requested model's endpoints come first, then each fallback model's (the request's `models`,
//! then the model's configured `fallbacks`). Within a model: providers named in `order` first (in
//! that order), then by priority (config position by default), then among equal priorities by
//! weight (a weighted random order, when any of them has a `weight`) or else by recent time to first
//! byte. Endpoints that health says to avoid go to the very end: still tried when nothing else is
//! left, never before a healthy one.

use super::options::RoutingOptions;
use super::{Endpoint, ModelRoute, Routes};
use crate::health::EndpointId;

/// A request's candidates in order: a few, held inline (no allocation per request).
pub type Candidates<'a> = smallvec::SmallVec<[Candidate<'a>; 4]>;

/// One endpoint a request may try, with the gateway model it serves.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub model: &'a ModelRoute,
    pub endpoint: &'a Endpoint,
    pub avoided: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    UnknownModel(String),
    UnknownFallbackModels(Vec<String>),
    UnknownProviders(Vec<String>),
    /// `only` left no endpoint for any of the models.
    NothingAllowed,
}

/// The longest client-chosen name echoed back in an error: enough to recognise a typo, not a way to
/// make the gateway write a megabyte back.
const ECHO_MAX_CHARS: usize = 128;

/// `name`, cut to [`ECHO_MAX_CHARS`] characters with an ellipsis when longer.
pub fn echoed(name: &str) -> std::borrow::Cow<'_, str> {
    match name.char_indices().nth(ECHO_MAX_CHARS) {
        None => std::borrow::Cow::Borrowed(name),
        Some((cut, _)) => std::borrow::Cow::Owned(format!("{}…", &name[..cut])),
    }
}

impl std::fmt::Display for RouteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteError::UnknownModel(m) => write!(f, "the model `{}` does not exist on this gateway", echoed(m)),
            RouteError::UnknownFallbackModels(m) => write!(f, "unknown fallback models: {}", m.join(", ")),
            RouteError::UnknownProviders(p) => write!(f, "unknown providers in routing options: {}", p.join(", ")),
            RouteError::NothingAllowed => {
                f.write_str("no endpoint of the requested models is served by the providers in `only`")
            }
        }
    }
}

/// Orders the candidates for `model` under `options`. `avoided` and `ttfb_us` come from health.
/// Weighted priorities draw from this thread's own generator.
pub fn order_candidates<'a>(
    routes: &'a Routes,
    model: &str,
    options: &RoutingOptions,
    avoided: impl Fn(EndpointId) -> bool,
    ttfb_us: impl Fn(EndpointId) -> u64,
) -> Result<Candidates<'a>, RouteError> {
    order_candidates_with_random(routes, model, options, avoided, ttfb_us, &mut thread_random)
}

/// [`order_candidates`] drawing weighted orders from `random` (uniform `u64`s), so tests can seed it.
pub fn order_candidates_with_random<'a>(
    routes: &'a Routes,
    model: &str,
    options: &RoutingOptions,
    avoided: impl Fn(EndpointId) -> bool,
    ttfb_us: impl Fn(EndpointId) -> u64,
    random: &mut dyn FnMut() -> u64,
) -> Result<Candidates<'a>, RouteError> {
    check_providers(routes, options)?;
    let first = routes.model(model).ok_or_else(|| RouteError::UnknownModel(model.to_string()))?;
    let fallbacks = fallback_models(routes, first, options)?;
    let mut healthy = Candidates::new();
    let mut last_resort = Candidates::new();
    for route in std::iter::once(first).chain(fallbacks) {
        let mut endpoints: smallvec::SmallVec<[&Endpoint; 8]> =
            route.endpoints.iter().filter(|e| allowed(e, options)).collect();
        endpoints.sort_by_key(|e| (order_position(e, options), e.priority, ttfb_us(e.id)));
        shuffle_weighted_ties(&mut endpoints, |e| (order_position(e, options), e.priority), random);
        for endpoint in endpoints {
            let is_avoided = avoided(endpoint.id);
            let candidate = Candidate { model: route, endpoint, avoided: is_avoided };
            if is_avoided { last_resort.push(candidate) } else { healthy.push(candidate) }
        }
    }
    healthy.extend(last_resort);
    if healthy.is_empty() {
        return Err(RouteError::NothingAllowed);
    }
    Ok(healthy)
}

fn check_providers(routes: &Routes, options: &RoutingOptions) -> Result<(), RouteError> {
    let named = options.order.iter().chain(options.only.iter().flatten());
    let mut unknown: Vec<String> = named.filter(|p| !routes.has_provider(p)).cloned().collect();
    unknown.dedup();
    if unknown.is_empty() { Ok(()) } else { Err(RouteError::UnknownProviders(unknown)) }
}

/// The request's fallback models, then the model's configured ones, each once, never the model itself.
/// Only the request's can be unknown (config fallbacks were validated).
fn fallback_models<'a>(
    routes: &'a Routes,
    first: &ModelRoute,
    options: &RoutingOptions,
) -> Result<Vec<&'a ModelRoute>, RouteError> {
    let mut found = Vec::new();
    let mut unknown = Vec::new();
    let requested = options.models.iter().map(|id| (id, true));
    let configured = first.fallbacks.iter().map(|id| (id, false));
    for (id, from_request) in requested.chain(configured).filter(|(m, _)| m.as_str() != &*first.id) {
        match routes.model(id) {
            Some(route) if !found.iter().any(|r: &&ModelRoute| r.id == route.id) => found.push(route),
            Some(_) => {}
            None if from_request => unknown.push(id.clone()),
            None => {}
        }
    }
    if unknown.is_empty() { Ok(found) } else { Err(RouteError::UnknownFallbackModels(unknown)) }
}

/// Within each run of endpoints sharing a `group` (already sorted together), when any has a weight,
/// reorders the run by weighted sampling without replacement: the first place goes to each endpoint
/// with probability weight / total, the second among the rest alike, and so on. Unweighted members
/// of a weighted run count as weight 1.
fn shuffle_weighted_ties<K: PartialEq>(
    endpoints: &mut [&Endpoint],
    group: impl Fn(&Endpoint) -> K,
    random: &mut dyn FnMut() -> u64,
) {
    let mut start = 0;
    while start < endpoints.len() {
        let key = group(endpoints[start]);
        let len = endpoints[start..].iter().take_while(|e| group(e) == key).count();
        let run = &mut endpoints[start..start + len];
        if run.len() > 1 && run.iter().any(|e| e.weight.is_some()) {
            weighted_order(run, random);
        }
        start += len;
    }
}

fn weighted_order(run: &mut [&Endpoint], random: &mut dyn FnMut() -> u64) {
    let weight = |e: &Endpoint| u64::from(e.weight.unwrap_or(1));
    for place in 0..run.len() {
        let total: u64 = run[place..].iter().map(|e| weight(e)).sum();
        let mut ticket = random() % total;
        let mut chosen = place;
        for (i, e) in run.iter().enumerate().skip(place) {
            if ticket < weight(e) {
                chosen = i;
                break;
            }
            ticket -= weight(e);
        }
        run.swap(place, chosen);
    }
}

/// A per-thread xorshift64* generator: routing needs spread, not secrecy, and no lock or syscall.
fn thread_random() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// A nonzero seed that differs per thread and per run.
fn seed() -> u64 {
    let local = 0u8;
    let address = &local as *const u8 as u64;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    (address ^ nanos.rotate_left(17)) | 1
}

fn allowed(endpoint: &Endpoint, options: &RoutingOptions) -> bool {
    options.only.as_ref().is_none_or(|only| only.iter().any(|p| **p == *endpoint.provider.name))
}

fn order_position(endpoint: &Endpoint, options: &RoutingOptions) -> usize {
    options.order.iter().position(|p| **p == *endpoint.provider.name).unwrap_or(options.order.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, resolve};

    fn routes() -> Routes {
        let text = r#"
[providers.vertex]
kind = "openai"
base_url = "http://127.0.0.1:1"
[providers.bedrock]
kind = "openai"
base_url = "http://127.0.0.1:2"
[providers.anthropic]
kind = "openai"
base_url = "http://127.0.0.1:3"
[models."anthropic/claude"]
endpoints = [{ provider = "anthropic", model = "a" }, { provider = "vertex", model = "v" }, { provider = "bedrock", model = "b" }]
[models."acme/fallback"]
endpoints = [{ provider = "bedrock", model = "fb" }]
[models."acme/peers"]
endpoints = [{ provider = "vertex", model = "p", priority = 1 }, { provider = "bedrock", model = "p", priority = 1 }, { provider = "anthropic", model = "p", priority = 0 }]
[models."acme/weighted"]
endpoints = [{ provider = "vertex", model = "w", priority = 0, weight = 3 }, { provider = "bedrock", model = "w", priority = 0, weight = 1 }, { provider = "anthropic", model = "w", priority = 1 }]
fallbacks = ["acme/fallback", "acme/peers"]
"#;
        Routes::build(&resolve(Config::parse(text).unwrap()).unwrap(), 0)
    }

    fn names(c: &[Candidate<'_>]) -> Vec<String> {
        c.iter().map(|c| format!("{}:{}", c.endpoint.provider.name, c.endpoint.model)).collect()
    }

    fn order(
        routes: &Routes,
        model: &str,
        options: &RoutingOptions,
        avoid: &[&str],
    ) -> Result<Vec<String>, RouteError> {
        let avoided = |id| avoid.contains(&routes.endpoint_key(id).unwrap().0);
        order_candidates(routes, model, options, avoided, |_| 0).map(|c| names(&c))
    }

    #[test]
    fn config_order_is_the_default() {
        let r = routes();
        assert_eq!(
            order(&r, "anthropic/claude", &RoutingOptions::default(), &[]).unwrap(),
            ["anthropic:a", "vertex:v", "bedrock:b"]
        );
    }

    #[test]
    fn order_only_and_models_are_honoured() {
        let r = routes();
        let o = RoutingOptions { order: vec!["vertex".into(), "bedrock".into()], ..Default::default() };
        assert_eq!(order(&r, "anthropic/claude", &o, &[]).unwrap(), ["vertex:v", "bedrock:b", "anthropic:a"]);
        let o = RoutingOptions {
            only: Some(vec!["bedrock".into()]),
            models: vec!["acme/fallback".into()],
            ..Default::default()
        };
        assert_eq!(order(&r, "anthropic/claude", &o, &[]).unwrap(), ["bedrock:b", "bedrock:fb"]);
        let o = RoutingOptions { only: Some(vec!["vertex".into()]), ..Default::default() };
        assert_eq!(order(&r, "acme/fallback", &o, &[]), Err(RouteError::NothingAllowed));
    }

    #[test]
    fn unknown_names_are_errors_naming_them() {
        let r = routes();
        let o = RoutingOptions {
            order: vec!["vertex".into(), "azure".into()],
            only: Some(vec!["gcp".into()]),
            ..Default::default()
        };
        assert_eq!(
            order(&r, "anthropic/claude", &o, &[]),
            Err(RouteError::UnknownProviders(vec!["azure".into(), "gcp".into()]))
        );
        let o = RoutingOptions { models: vec!["acme/none".into()], ..Default::default() };
        assert_eq!(
            order(&r, "anthropic/claude", &o, &[]),
            Err(RouteError::UnknownFallbackModels(vec!["acme/none".into()]))
        );
        assert_eq!(order(&r, "x/y", &RoutingOptions::default(), &[]), Err(RouteError::UnknownModel("x/y".into())));
    }

    #[test]
    fn avoided_endpoints_go_last_even_when_ordered_first() {
        let r = routes();
        let o =
            RoutingOptions { order: vec!["vertex".into()], models: vec!["acme/fallback".into()], ..Default::default() };
        assert_eq!(
            order(&r, "anthropic/claude", &o, &["vertex"]).unwrap(),
            ["anthropic:a", "bedrock:b", "bedrock:fb", "vertex:v"]
        );
    }

    #[test]
    fn latency_breaks_ties_between_equal_priorities_only() {
        let r = routes();
        let ttfb = |id| if r.endpoint_key(id).unwrap().0 == "vertex" { 900 } else { 100 };
        let c = order_candidates(&r, "acme/peers", &RoutingOptions::default(), |_| false, ttfb).unwrap();
        assert_eq!(names(&c), ["anthropic:p", "bedrock:p", "vertex:p"]);
    }

    /// A fixed-seed xorshift64*, so the split below is the same on every run.
    fn seeded(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    fn first_of_weighted(r: &Routes, avoid: &[&str], picks: usize, random: &mut dyn FnMut() -> u64) -> [usize; 3] {
        let mut counts = [0usize; 3];
        let avoided = |id| avoid.contains(&r.endpoint_key(id).unwrap().0);
        for _ in 0..picks {
            let c =
                order_candidates_with_random(r, "acme/weighted", &RoutingOptions::default(), avoided, |_| 0, random)
                    .unwrap();
            let slot = ["vertex", "bedrock", "anthropic"].iter().position(|p| *p == &*c[0].endpoint.provider.name);
            counts[slot.unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn weights_three_to_one_split_three_to_one() {
        let r = routes();
        let counts = first_of_weighted(&r, &[], 4_000, &mut seeded(0x9E37_79B9_7F4A_7C15));
        assert_eq!(counts[2], 0, "the lower priority is never first while a weighted peer is healthy");
        let vertex_share = counts[0] as f64 / 4_000.0;
        assert!((vertex_share - 0.75).abs() <= 0.75 * 0.05, "3:1 within 5%: {counts:?}");
    }

    #[test]
    fn the_thread_generator_splits_by_weight_too() {
        let r = routes();
        let counts = first_of_weighted(&r, &[], 4_000, &mut thread_random);
        // The heavier endpoint's share: 3/4 expected, binomial standard deviation 0.68 points at
        // n = 4000. Within 5% of 3/4 (3.75 points, 5.5 standard deviations) holds for any seed in
        // practice; a bound on the ratio of the two counts, whose smaller count is noisier, failed in
        // one suite run at 10%.
        let share = counts[0] as f64 / 4_000.0;
        assert!((0.7125..=0.7875).contains(&share), "{counts:?}");
    }

    #[test]
    fn health_still_demotes_a_heavily_weighted_endpoint() {
        let r = routes();
        let counts = first_of_weighted(&r, &["vertex"], 400, &mut seeded(7));
        assert_eq!(counts, [0, 400, 0]);
        let c = order(&r, "acme/weighted", &RoutingOptions::default(), &["vertex"]).unwrap();
        assert_eq!(c[c.len() - 2..], ["vertex:w", "vertex:p"], "avoided endpoints are still the last resort");
    }

    #[test]
    fn config_fallbacks_follow_the_models_own_and_the_requests() {
        let r = routes();
        let c = order(&r, "acme/weighted", &RoutingOptions::default(), &[]).unwrap();
        assert_eq!(c[2..], ["anthropic:w", "bedrock:fb", "anthropic:p", "vertex:p", "bedrock:p"]);
        let o = RoutingOptions { models: vec!["acme/peers".into()], ..Default::default() };
        let c = order(&r, "acme/weighted", &o, &[]).unwrap();
        assert_eq!(
            c[3..],
            ["anthropic:p", "vertex:p", "bedrock:p", "bedrock:fb"],
            "the request's own come first, once"
        );
    }
}
