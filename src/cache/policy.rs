//! Whether a request may use the cache, and for how long its answer is kept: the operator's opt-ins
//! (`[cache]`, per model, per key) and the request's own directives (`Cache-Control`,
//! `x-corelay-cache-ttl`). Sans-IO: headers come in through a lookup function.
//!
//! A request uses the cache when `[cache] enabled` and it is opted in by its model, its key or its
//! own TTL directive, it does not say `no-store`, and it is deterministic (`temperature` 0) or the
//! operator allows otherwise. Tools are not inspected: a request with tools is cached like any
//! other (the gateway runs no tool; a replayed answer asks the client to call the same tools), and
//! a caller whose tool calls must not repeat sends `Cache-Control: no-store`.

use std::collections::HashSet;

use crate::config::Config;

/// The operator's side of the decision, from the config.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub enabled: bool,
    models: HashSet<String>,
    keys: HashSet<String>,
    default_ttl_s: u64,
    max_ttl_s: u64,
    allow_nondeterministic: bool,
    pub max_entry_bytes: usize,
}

/// What the request itself says about caching.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Directives {
    /// `Cache-Control: no-store`: neither read nor written.
    pub no_store: bool,
    /// `Cache-Control: no-cache`: not read (the provider answers), but the answer is stored.
    pub no_cache: bool,
    /// `Cache-Control: max-age=N` or `x-corelay-cache-ttl: N`: opts in, kept N seconds.
    pub ttl_s: Option<u64>,
}

/// The verdict for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The cache is not enabled: no lookup, no store, no `x-corelay-cache` header.
    Off,
    /// Enabled, but not for this request.
    Bypass,
    /// Stored for `ttl_s`; looked up first unless the request asked to revalidate.
    Use { ttl_s: u64, lookup: bool },
}

impl Policy {
    pub fn from_config(config: &Config) -> Policy {
        let c = &config.cache;
        Policy {
            enabled: c.enabled,
            models: config.models.iter().filter(|(_, m)| m.cache).map(|(id, _)| id.clone()).collect(),
            keys: config.keys.iter().filter(|k| k.cache).map(|k| k.name.clone()).collect(),
            default_ttl_s: c.default_ttl_s,
            max_ttl_s: c.max_ttl_s,
            allow_nondeterministic: c.allow_nondeterministic,
            max_entry_bytes: c.max_entry_bytes,
        }
    }

    /// The decision before the body is read: opt-ins and directives.
    pub fn decide(&self, model: &str, key_name: &str, directives: &Directives) -> Decision {
        if !self.enabled {
            return Decision::Off;
        }
        let opted_in = directives.ttl_s.is_some() || self.models.contains(model) || self.keys.contains(key_name);
        if directives.no_store || !opted_in {
            return Decision::Bypass;
        }
        match directives.ttl_s.unwrap_or(self.default_ttl_s).min(self.max_ttl_s) {
            // `max-age=0`: nothing stored could ever be served.
            0 => Decision::Bypass,
            ttl_s => Decision::Use { ttl_s, lookup: !directives.no_cache },
        }
    }

    /// Whether a request sampled at `temperature` (`None`: the provider's default, which is not 0
    /// for any supported provider) may be cached.
    pub fn allows_temperature(&self, temperature: Option<f64>) -> bool {
        self.allow_nondeterministic || temperature == Some(0.0)
    }
}

/// Reads the request's caching directives. Unknown `Cache-Control` directives are ignored, as HTTP
/// caches do; an unparsable TTL is ignored too (the request is then not opted in by it).
pub fn directives<'h>(header: impl Fn(&str) -> Option<&'h [u8]>) -> Directives {
    let mut found = Directives::default();
    if let Some(value) = header("cache-control").and_then(|v| std::str::from_utf8(v).ok()) {
        for part in value.split(',').map(str::trim) {
            let lower = part.to_ascii_lowercase();
            match lower.split_once('=') {
                None if lower == "no-store" => found.no_store = true,
                None if lower == "no-cache" => found.no_cache = true,
                Some(("max-age", n)) => found.ttl_s = n.trim().trim_matches('"').parse().ok().or(found.ttl_s),
                _ => {}
            }
        }
    }
    if let Some(ttl) = header("x-corelay-cache-ttl").and_then(|v| std::str::from_utf8(v).ok()?.trim().parse().ok()) {
        found.ttl_s = Some(ttl);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        let text = r#"
[cache]
enabled = true
default_ttl_s = 60
max_ttl_s = 600
[providers.p]
kind = "openai"
base_url = "http://127.0.0.1:1"
[models."cached"]
endpoints = [{ provider = "p", model = "x" }]
cache = true
[models."plain"]
endpoints = [{ provider = "p", model = "x" }]
[[keys]]
name = "team-cached"
key = "k-0123456789abcdef"
cache = true
"#;
        Policy::from_config(&Config::parse(text).expect("valid"))
    }

    fn parse(headers: &[(&str, &str)]) -> Directives {
        directives(|name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_bytes()))
    }

    #[test]
    fn opt_in_comes_from_the_model_the_key_or_the_request() {
        let p = policy();
        let none = Directives::default();
        assert_eq!(p.decide("cached", "", &none), Decision::Use { ttl_s: 60, lookup: true });
        assert_eq!(p.decide("plain", "team-cached", &none), Decision::Use { ttl_s: 60, lookup: true });
        assert_eq!(p.decide("plain", "other", &none), Decision::Bypass);
        let asked = parse(&[("cache-control", "max-age=30")]);
        assert_eq!(p.decide("plain", "", &asked), Decision::Use { ttl_s: 30, lookup: true });
        let too_long = parse(&[("x-corelay-cache-ttl", "100000")]);
        assert_eq!(p.decide("plain", "", &too_long), Decision::Use { ttl_s: 600, lookup: true });
        assert_eq!(Policy::default().decide("cached", "", &asked), Decision::Off);
    }

    #[test]
    fn no_store_no_cache_and_max_age_zero() {
        let p = policy();
        assert_eq!(p.decide("cached", "", &parse(&[("cache-control", "No-Store")])), Decision::Bypass);
        let revalidate = parse(&[("cache-control", "no-cache, max-age=5")]);
        assert_eq!(p.decide("cached", "", &revalidate), Decision::Use { ttl_s: 5, lookup: false });
        assert_eq!(p.decide("cached", "", &parse(&[("cache-control", "max-age=0")])), Decision::Bypass);
        assert_eq!(parse(&[("cache-control", "max-age=abc, private")]), Directives::default());
    }

    #[test]
    fn only_temperature_zero_unless_the_operator_allows_more() {
        let mut p = policy();
        assert!(p.allows_temperature(Some(0.0)));
        assert!(!p.allows_temperature(Some(0.7)));
        assert!(!p.allows_temperature(None), "the providers' default temperature is 1");
        p.allow_nondeterministic = true;
        assert!(p.allows_temperature(None));
    }
}
