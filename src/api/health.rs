//! `GET /v1/health`: the merged per-endpoint health as the control thread last published it.

use std::time::Instant;

use serde::Serialize;

use crate::health::{EndpointState, HealthTable};
use crate::routing::Routes;

#[derive(Serialize)]
struct Report<'a> {
    version: u64,
    endpoints: Vec<Endpoint<'a>>,
}

#[derive(Serialize)]
struct Endpoint<'a> {
    provider: &'a str,
    model: &'a str,
    state: &'static str,
    /// Milliseconds until an ejection or a `Retry-After` cooldown ends; 0 when neither applies.
    retry_in_ms: u64,
    requests: u64,
    failures: u64,
    error_rate: f64,
    consecutive_failures: u64,
    ejections: u32,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    ttfb_p50_ms: f64,
    ttfb_p99_ms: f64,
    /// Why the endpoint is ejected or probing (or cooling down after a `Retry-After`); absent
    /// when healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

pub fn health_json(routes: &Routes, table: &HealthTable, now: Instant) -> Vec<u8> {
    serde_json::to_vec(&health_value(routes.endpoint_keys(), table, now)).expect("plain data serializes")
}

/// The health report as a JSON value, for embedding (the dashboard's stats).
pub fn health_value(endpoint_keys: &[(String, String)], table: &HealthTable, now: Instant) -> serde_json::Value {
    let endpoints = endpoint_keys
        .iter()
        .enumerate()
        .map(|(id, (provider, model))| {
            let (provider, model) = (provider.as_str(), model.as_str());
            let h = table.get(id);
            let (state, until) = match h.state {
                EndpointState::Healthy => ("healthy", None),
                EndpointState::Ejected { until } => ("ejected", Some(until)),
                EndpointState::Probing { .. } => ("probing", None),
            };
            let until = until.into_iter().chain(h.cooldown_until).max();
            let retry_in_ms = until.map_or(0, |u| u.saturating_duration_since(now).as_millis() as u64);
            let ms = |us: u64| us as f64 / 1000.0;
            Endpoint {
                provider,
                model,
                state: if state == "healthy" && retry_in_ms > 0 { "cooldown" } else { state },
                retry_in_ms,
                requests: h.requests,
                failures: h.failures,
                error_rate: h.error_rate(),
                consecutive_failures: h.consecutive_failures,
                ejections: h.ejections,
                latency_p50_ms: ms(h.latency_p50_us),
                latency_p99_ms: ms(h.latency_p99_us),
                ttfb_p50_ms: ms(h.ttfb_p50_us),
                ttfb_p99_ms: ms(h.ttfb_p99_us),
                reason: reason(state, retry_in_ms, h.ejection_reason),
            }
        })
        .collect();
    serde_json::to_value(Report { version: table.version, endpoints }).expect("plain data serializes")
}

/// Why an endpoint is not plainly healthy, in words.
fn reason(state: &str, retry_in_ms: u64, ejection: Option<crate::health::ejection::EjectionReason>) -> Option<String> {
    match (state, ejection) {
        ("ejected" | "probing", Some(why)) => Some(why.describe()),
        ("healthy", _) if retry_in_ms > 0 => Some("the provider asked to wait (Retry-After)".into()),
        _ => None,
    }
}
