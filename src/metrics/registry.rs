//! The control thread's totals of every worker's metrics, rendered as Prometheus text format 0.0.4.
//! Counters only grow; latency is classic histograms (fixed buckets, exact sums) per front door,
//! model and provider, so they add up across workers and across instances. The scrape also carries
//! build info, process metrics, reload and token-fetch counters, and endpoint health.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Counters, LatencyHistograms, LatencyLabels, MetricsDelta, RequestLabels, SpendLabels, TOKEN_KINDS};
use crate::health::{EndpointState, HealthTable};

/// Reads one per-core value out of a worker's gauges.
type GaugeOf = fn(&WorkerGauges) -> u64;

#[derive(Debug, Clone, Default)]
struct WorkerGauges {
    in_flight: u64,
    open_connections: u64,
    pool: Vec<(String, crate::upstream::PoolCounters)>,
    driver: &'static str,
}

pub struct Registry {
    requests: BTreeMap<RequestLabels, u64>,
    spend: BTreeMap<SpendLabels, Counters>,
    attempts: BTreeMap<super::AttemptLabels, u64>,
    failovers: BTreeMap<String, u64>,
    histograms: BTreeMap<LatencyLabels, LatencyHistograms>,
    workers: Vec<WorkerGauges>,
    reloads: Reloads,
    /// Service-account token fetches by provider: successes, failures, the newest token's expiry.
    access_tokens: BTreeMap<String, TokenFetches>,
    /// The response cache's totals (lookups by model and result, saved, stored, evicted).
    cache: super::CacheCounters,
    /// Each core's response-cache memory gauge.
    cache_memory_bytes: Vec<u64>,
}

#[derive(Debug, Clone, Copy, Default)]
struct TokenFetches {
    ok: u64,
    failed: u64,
    expires_at_unix_ms: Option<u64>,
}

/// Config reloads (SIGHUP or `POST /admin/reload`) by outcome.
#[derive(Debug, Clone, Copy, Default)]
struct Reloads {
    succeeded: u64,
    failed: u64,
    last_succeeded: Option<bool>,
    last_success_unix: Option<u64>,
}

type HistogramOf = fn(&LatencyHistograms) -> &super::histogram::Buckets;

const HISTOGRAMS: [(&str, &str, HistogramOf); 3] = [
    ("corelay_request_duration_seconds", "Whole request time, as the client sees it.", |h| &h.duration),
    (
        "corelay_time_to_first_byte_seconds",
        "From the request sent to a provider to its response head (calls a provider answered).",
        |h| &h.ttfb,
    ),
    ("corelay_gateway_overhead_seconds", "Request time minus time spent waiting on providers.", |h| &h.overhead),
];

impl Registry {
    pub fn new(workers: usize) -> Registry {
        Registry {
            requests: BTreeMap::new(),
            spend: BTreeMap::new(),
            attempts: BTreeMap::new(),
            failovers: BTreeMap::new(),
            histograms: BTreeMap::new(),
            workers: vec![WorkerGauges::default(); workers],
            reloads: Reloads::default(),
            access_tokens: BTreeMap::new(),
            cache: super::CacheCounters::default(),
            cache_memory_bytes: vec![0; workers],
        }
    }

    /// Counts one token fetch for `provider`: its new token's expiry, or `None` for a failure.
    pub fn note_access_token(&mut self, provider: String, expires_at_unix_ms: Option<u64>) {
        let fetches = self.access_tokens.entry(provider).or_default();
        match expires_at_unix_ms {
            Some(expiry) => {
                fetches.ok += 1;
                fetches.expires_at_unix_ms = Some(expiry);
            }
            None => fetches.failed += 1,
        }
    }

    /// Counts one config reload, at Unix time `now` when it succeeded.
    pub fn note_reload(&mut self, succeeded: bool, now_unix: u64) {
        let r = &mut self.reloads;
        r.last_succeeded = Some(succeeded);
        if succeeded {
            r.succeeded += 1;
            r.last_success_unix = Some(now_unix);
        } else {
            r.failed += 1;
        }
    }

    pub fn merge(&mut self, delta: MetricsDelta) {
        for (labels, n) in delta.requests {
            *self.requests.entry(labels).or_default() += n;
        }
        for (labels, c) in delta.spend {
            let total = self.spend.entry(labels).or_default();
            total.requests += c.requests;
            total.cost_micros += c.cost_micros;
            total.without_usage += c.without_usage;
            for (t, add) in total.tokens.iter_mut().zip(c.tokens) {
                *t += add;
            }
        }
        for (labels, n) in delta.attempts {
            *self.attempts.entry(labels).or_default() += n;
        }
        for (model, n) in delta.failovers {
            *self.failovers.entry(model).or_default() += n;
        }
        for (labels, histograms) in delta.histograms {
            self.histograms.entry(labels).or_default().merge(&histograms);
        }
        self.merge_cache(delta.worker, &delta.cache);
        if let Some(gauges) = self.workers.get_mut(delta.worker) {
            *gauges = WorkerGauges {
                in_flight: delta.in_flight,
                open_connections: delta.open_connections,
                pool: delta.pool,
                driver: delta.driver,
            };
        }
    }

    /// Prometheus text for everything counted so far, plus endpoint health from `table` and the
    /// process's resources read now.
    pub fn render(&self, table: &HealthTable, endpoint_keys: &[(String, String)]) -> String {
        let mut out = String::with_capacity(16 * 1024);
        render_build_info(&mut out);
        self.render_requests(&mut out);
        self.render_spend(&mut out);
        self.render_histograms(&mut out);
        self.render_workers(&mut out);
        self.render_reloads(&mut out);
        self.render_access_tokens(&mut out);
        self.render_cache(&mut out);
        render_health(&mut out, table, endpoint_keys);
        super::process::ProcessSample::read().render(&mut out);
        out
    }

    fn merge_cache(&mut self, worker: usize, delta: &super::CacheCounters) {
        for (labels, n) in &delta.lookups {
            *self.cache.lookups.entry(labels.clone()).or_default() += n;
        }
        self.cache.saved_micros += delta.saved_micros;
        self.cache.stored_bytes += delta.stored_bytes;
        self.cache.evictions += delta.evictions;
        if let Some(gauge) = self.cache_memory_bytes.get_mut(worker) {
            *gauge = delta.memory_bytes;
        }
    }

    /// The response cache's series, once it has seen a request (absent while it is off).
    fn render_cache(&self, out: &mut String) {
        if self.cache.lookups.is_empty() {
            return;
        }
        let name = "corelay_cache_requests_total";
        header(out, name, "counter", "Model calls by response-cache result (hit, miss, bypass) and requested model.");
        let mut lookups: Vec<_> = self.cache.lookups.iter().collect();
        lookups.sort();
        for ((model, result), n) in lookups {
            sample(out, name, &[("model", model), ("result", result)], *n);
        }
        let totals = [
            (
                "corelay_cache_saved_usd_micros_total",
                "What cache hits would have cost (micro-dollars).",
                self.cache.saved_micros,
            ),
            ("corelay_cache_stored_bytes_total", "Bytes of answers stored in the cache.", self.cache.stored_bytes),
            (
                "corelay_cache_evictions_total",
                "Entries evicted from memory to stay within its bound.",
                self.cache.evictions,
            ),
        ];
        for (name, help, value) in totals {
            header(out, name, "counter", help);
            let _ = writeln!(out, "{name} {value}");
        }
        let name = "corelay_cache_memory_bytes";
        header(out, name, "gauge", "Bytes the response cache holds in memory, per core.");
        for (core, bytes) in self.cache_memory_bytes.iter().enumerate() {
            sample(out, name, &[("core", &core.to_string())], *bytes);
        }
    }

    fn render_reloads(&self, out: &mut String) {
        let name = "corelay_config_reloads_total";
        header(out, name, "counter", "Config reloads (SIGHUP or POST /admin/reload), by outcome.");
        sample(out, name, &[("outcome", "success")], self.reloads.succeeded);
        sample(out, name, &[("outcome", "failure")], self.reloads.failed);
        let last = "corelay_config_last_reload_successful";
        header(
            out,
            last,
            "gauge",
            "Whether the last reload succeeded (1) or failed and changed nothing (0); 1 before any.",
        );
        let _ = writeln!(out, "{last} {}", u8::from(self.reloads.last_succeeded.unwrap_or(true)));
        if let Some(at) = self.reloads.last_success_unix {
            let at_name = "corelay_config_last_reload_success_timestamp_seconds";
            header(out, at_name, "gauge", "Unix time of the last successful reload.");
            let _ = writeln!(out, "{at_name} {at}");
        }
    }

    /// Written only when some provider uses a service account, so other setups show no empty family.
    fn render_access_tokens(&self, out: &mut String) {
        if self.access_tokens.is_empty() {
            return;
        }
        let refreshes = "corelay_access_token_fetches_total";
        header(out, refreshes, "counter", "Service-account access token fetches, by provider and outcome.");
        for (provider, f) in &self.access_tokens {
            sample(out, refreshes, &[("provider", provider), ("outcome", "ok")], f.ok);
            sample(out, refreshes, &[("provider", provider), ("outcome", "failed")], f.failed);
        }
        let expiry = "corelay_access_token_expiry_timestamp_seconds";
        header(out, expiry, "gauge", "Unix time at which the newest access token of a provider expires.");
        for (provider, f) in &self.access_tokens {
            if let Some(ms) = f.expires_at_unix_ms {
                sample(out, expiry, &[("provider", provider)], ms / 1000);
            }
        }
    }

    fn render_requests(&self, out: &mut String) {
        header(
            out,
            "corelay_requests_total",
            "counter",
            "Client requests by front door, model, provider and status class.",
        );
        for (l, n) in &self.requests {
            let labels = [
                ("front_door", l.front_door),
                ("model", &l.model),
                ("provider", &l.provider),
                ("status_class", l.status_class),
            ];
            sample(out, "corelay_requests_total", &labels, *n);
        }
        header(out, "corelay_upstream_attempts_total", "counter", "Attempts at providers by outcome.");
        for (super::AttemptLabels { provider, outcome }, n) in &self.attempts {
            sample(out, "corelay_upstream_attempts_total", &[("provider", provider), ("outcome", outcome)], *n);
        }
        header(out, "corelay_failovers_total", "counter", "Attempts beyond the first, by requested model.");
        for (model, n) in &self.failovers {
            sample(out, "corelay_failovers_total", &[("model", model)], *n);
        }
    }

    fn render_spend(&self, out: &mut String) {
        header(out, "corelay_tokens_total", "counter", "Tokens of served calls, by model, provider and kind.");
        for (l, c) in &self.spend {
            for (kind, n) in TOKEN_KINDS.iter().zip(c.tokens) {
                let labels = [("model", l.model.as_str()), ("provider", &l.provider), ("kind", kind)];
                sample(out, "corelay_tokens_total", &labels, n);
            }
        }
        header(
            out,
            "corelay_cost_usd_micros_total",
            "counter",
            "Spend in microdollars, by model, provider and gateway key.",
        );
        for (l, c) in &self.spend {
            let labels = [("model", l.model.as_str()), ("provider", &l.provider), ("key", &l.key)];
            sample(out, "corelay_cost_usd_micros_total", &labels, c.cost_micros);
        }
        header(out, "corelay_calls_without_usage_total", "counter", "Served calls whose provider reported no usage.");
        for (l, c) in &self.spend {
            let labels = [("model", l.model.as_str()), ("provider", &l.provider)];
            sample(out, "corelay_calls_without_usage_total", &labels, c.without_usage);
        }
    }

    fn render_histograms(&self, out: &mut String) {
        for (name, help, histogram) in HISTOGRAMS {
            header(out, name, "histogram", &format!("{help} By front door, model and provider."));
            for (l, histograms) in &self.histograms {
                let labels =
                    label_list(&[("front_door", l.front_door), ("model", &l.model), ("provider", &l.provider)]);
                histogram(histograms).render(out, name, &labels);
            }
        }
    }

    fn render_workers(&self, out: &mut String) {
        let gauges: [(&str, &str, GaugeOf); 2] = [
            ("corelay_in_flight_requests", "Requests being served, per core.", |g| g.in_flight),
            ("corelay_open_connections", "Open client connections, per core.", |g| g.open_connections),
        ];
        for (name, help, value) in gauges {
            header(out, name, "gauge", help);
            for (core, g) in self.workers.iter().enumerate() {
                sample(out, name, &[("core", &core.to_string())], value(g));
            }
        }
        type PoolOf = fn(&crate::upstream::PoolCounters) -> u64;
        let pool: [(&str, PoolOf); 3] = [
            ("corelay_pool_hits_total", |c| c.hits),
            ("corelay_pool_misses_total", |c| c.misses),
            ("corelay_pool_evictions_total", |c| c.evictions),
        ];
        for (name, value) in pool {
            header(out, name, "counter", "Upstream connection pool activity, per core and provider origin.");
            for (core, g) in self.workers.iter().enumerate() {
                for (origin, counters) in &g.pool {
                    sample(out, name, &[("core", &core.to_string()), ("origin", origin)], value(counters));
                }
            }
        }
        header(out, "corelay_worker_driver", "gauge", "The I/O driver each core runs (1 = in use).");
        for (core, g) in self.workers.iter().enumerate() {
            let driver = if g.driver.is_empty() { "unknown" } else { g.driver };
            sample(out, "corelay_worker_driver", &[("core", &core.to_string()), ("driver", driver)], 1);
        }
    }
}

/// `corelay_build_info{version,commit} 1`: which build is running, to join onto other series.
fn render_build_info(out: &mut String) {
    let name = "corelay_build_info";
    header(out, name, "gauge", "The running build: its version and git commit (always 1).");
    let labels = [("version", env!("CARGO_PKG_VERSION")), ("commit", env!("CORELAY_COMMIT"))];
    sample(out, name, &labels, 1);
}

fn render_health(out: &mut String, table: &HealthTable, endpoint_keys: &[(String, String)]) {
    header(out, "corelay_endpoint_health", "gauge", "Endpoint health state (1 = current state).");
    for (id, (provider, model)) in endpoint_keys.iter().enumerate() {
        let state = match table.get(id).state {
            EndpointState::Healthy => "healthy",
            EndpointState::Ejected { .. } => "ejected",
            EndpointState::Probing { .. } => "probing",
        };
        for candidate in ["healthy", "ejected", "probing"] {
            let labels = [("provider", provider.as_str()), ("model", model.as_str()), ("state", candidate)];
            sample(out, "corelay_endpoint_health", &labels, u64::from(candidate == state));
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    let _ = writeln!(out, "{name}{{{}}} {value}", label_list(labels));
}

/// `key="value",...` with values escaped, without braces.
fn label_list(labels: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{key}=\"");
        escape_label(value, &mut out);
        out.push('"');
    }
    out
}

/// Label values escape backslash, double quote and newline (text format 0.0.4).
fn escape_label(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{CallRecord, WorkerMetrics};

    #[test]
    fn renders_merged_counters_with_escaped_labels() {
        let worker = WorkerMetrics::new(0);
        let call = CallRecord {
            front_door: "openai",
            model: "acme/\"quoted\"".into(),
            model_known: true,
            served_model: "acme/\"quoted\"".into(),
            provider: "mock".into(),
            attempts: [("bad", crate::health::Outcome::ServerError), ("mock", crate::health::Outcome::Success)]
                .map(|(provider, outcome)| crate::metrics::AttemptRecord {
                    provider: provider.into(),
                    outcome,
                    status: None,
                    start_unix_ms: 0,
                    end_unix_ms: 0,
                })
                .into_iter()
                .collect(),
            status: 200,
            usage: Some(crate::chat::Usage { prompt_tokens: 10, completion_tokens: 5, ..Default::default() }),
            cost_micros: 42,
            ..CallRecord::default()
        };
        worker.record(&call);
        worker.record(&call);
        let mut registry = Registry::new(1);
        let pool =
            vec![("http://mock:80".to_string(), crate::upstream::PoolCounters { hits: 1, misses: 2, evictions: 0 })];
        registry.merge(worker.take_delta(3, pool, "io_uring"));
        let text = registry.render(&HealthTable::new(0, 1), &[]);
        assert!(text.contains("corelay_requests_total{front_door=\"openai\",model=\"acme/\\\"quoted\\\"\",provider=\"mock\",status_class=\"2xx\"} 2"), "{text}");
        assert!(text.contains("corelay_upstream_attempts_total{provider=\"bad\",outcome=\"server_error\"} 2"));
        assert!(text.contains("corelay_failovers_total{model=\"acme/\\\"quoted\\\"\"} 2"));
        assert!(
            text.contains("corelay_tokens_total{model=\"acme/\\\"quoted\\\"\",provider=\"mock\",kind=\"prompt\"} 20")
        );
        assert!(
            text.contains("corelay_cost_usd_micros_total{model=\"acme/\\\"quoted\\\"\",provider=\"mock\",key=\"\"} 84")
        );
        assert!(text.contains("corelay_open_connections{core=\"0\"} 3"));
        assert!(text.contains("corelay_worker_driver{core=\"0\",driver=\"io_uring\"} 1"));
        assert!(text.contains("corelay_pool_misses_total{core=\"0\",origin=\"http://mock:80\"} 2"), "{text}");
        let series = "front_door=\"openai\",model=\"acme/\\\"quoted\\\"\",provider=\"mock\"";
        assert!(text.contains(&format!("corelay_request_duration_seconds_count{{{series}}} 2")), "{text}");
        assert!(text.contains(&format!("corelay_gateway_overhead_seconds_bucket{{{series},le=\"+Inf\"}} 2")));
        assert!(text.contains("# TYPE corelay_time_to_first_byte_seconds histogram"));
        assert!(text.contains("corelay_config_reloads_total{outcome=\"success\"} 0"));
        assert!(text.contains(&format!("corelay_build_info{{version=\"{}\",", env!("CARGO_PKG_VERSION"))));
        assert!(text.contains("# TYPE process_open_fds gauge"));
    }
}
