//! Candidate ordering: which endpoints a request may try, in which order.
//!
//! The requested model's endpoints come first, then each fallback model's. Within a model: providers
//! named in `order` first (in that order), then by priority (config position by default), then by
//! recent time to first byte among equal priorities. Endpoints that health says to avoid go to the
//! very end: still tried when nothing else is left, never before a healthy one.

use super::options::RoutingOptions;
use super::{Endpoint, ModelRoute, Routes};
use crate::health::EndpointId;

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
pub fn order_candidates<'a>(
    routes: &'a Routes,
    model: &str,
    options: &RoutingOptions,
    avoided: impl Fn(EndpointId) -> bool,
    ttfb_us: impl Fn(EndpointId) -> u64,
) -> Result<Vec<Candidate<'a>>, RouteError> {
    check_providers(routes, options)?;
    let first = routes.model(model).ok_or_else(|| RouteError::UnknownModel(model.to_string()))?;
    let fallbacks = fallback_models(routes, model, options)?;
    let mut healthy = Vec::new();
    let mut last_resort = Vec::new();
    for route in std::iter::once(first).chain(fallbacks) {
        let mut endpoints: Vec<&Endpoint> = route.endpoints.iter().filter(|e| allowed(e, options)).collect();
        endpoints.sort_by_key(|e| (order_position(e, options), e.priority, ttfb_us(e.id)));
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

fn fallback_models<'a>(
    routes: &'a Routes,
    model: &str,
    options: &RoutingOptions,
) -> Result<Vec<&'a ModelRoute>, RouteError> {
    let mut found = Vec::new();
    let mut unknown = Vec::new();
    for id in options.models.iter().filter(|m| m.as_str() != model) {
        match routes.model(id) {
            Some(route) if !found.iter().any(|r: &&ModelRoute| r.id == route.id) => found.push(route),
            Some(_) => {}
            None => unknown.push(id.clone()),
        }
    }
    if unknown.is_empty() { Ok(found) } else { Err(RouteError::UnknownFallbackModels(unknown)) }
}

fn allowed(endpoint: &Endpoint, options: &RoutingOptions) -> bool {
    options.only.as_ref().is_none_or(|only| only.iter().any(|p| *p == endpoint.provider.name))
}

fn order_position(endpoint: &Endpoint, options: &RoutingOptions) -> usize {
    options.order.iter().position(|p| *p == endpoint.provider.name).unwrap_or(options.order.len())
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
}
