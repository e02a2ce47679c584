//! The request pipeline, wired together: admit (`connection`), route and dispatch (`dispatch`),
//! then prepare, send and relay a chat completion (`chat`).
//!
//! Runs inside one worker. Owns no sockets beyond the client connection it is handed; upstream
//! connections come from `upstream`.

mod admin_keys;
mod cached;
mod chat;
mod client;
pub mod connection;
mod dispatch;
pub mod lifecycle;
pub mod listener;
mod relay;
mod serving;
mod stream;
mod translated;
mod unwind;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::config::ResolvedConfig;
use crate::health::HealthTable;
use crate::health::recorder::Recorder;
use crate::http::request::RequestLimits;
use crate::routing::{RetryBudget, Routes, Snapshot};
use crate::upstream::{Pool, PoolSettings, TlsClientConfigs};

/// Limits applied to client connections, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    pub request: RequestLimits,
    pub max_body_bytes: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub keepalive_timeout: Duration,
}

/// Provider-side timeouts and limits, from `[pool]`.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamLimits {
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub read_idle_timeout: Duration,
    pub max_response_bytes: usize,
}

/// Failover settings, from `[routing]`.
#[derive(Debug, Clone, Copy)]
pub struct RoutingLimits {
    pub max_attempts: usize,
    pub deadline: Duration,
    pub first_event_timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

/// Every limit a worker applies, replaced as a whole by a config reload.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub server: ServerLimits,
    pub upstream: UpstreamLimits,
    pub routing: RoutingLimits,
}

impl Settings {
    pub fn from_config(config: &ResolvedConfig) -> Settings {
        let c = &config.config;
        let ms = Duration::from_millis;
        Settings {
            server: ServerLimits {
                request: RequestLimits { max_head_bytes: c.server.max_head_bytes, max_headers: c.server.max_headers },
                max_body_bytes: c.server.max_body_bytes,
                header_read_timeout: ms(c.server.header_read_timeout_ms),
                body_read_timeout: ms(c.server.body_read_timeout_ms),
                keepalive_timeout: ms(c.server.keepalive_timeout_ms),
            },
            upstream: UpstreamLimits {
                connect_timeout: ms(c.pool.connect_timeout_ms),
                first_byte_timeout: ms(c.pool.first_byte_timeout_ms),
                read_idle_timeout: ms(c.pool.read_idle_timeout_ms),
                max_response_bytes: c.pool.max_response_bytes,
            },
            routing: RoutingLimits {
                max_attempts: c.routing.max_attempts,
                deadline: ms(c.routing.deadline_ms),
                first_event_timeout: ms(c.routing.first_event_timeout_ms),
                backoff_base: ms(c.routing.backoff_base_ms),
                backoff_max: ms(c.routing.backoff_max_ms),
            },
        }
    }
}

/// What a worker builds for a new config version before it is told to switch (two-phase reload).
pub struct PreparedConfig {
    pub version: u64,
    routes: Routes,
    tls: TlsClientConfigs,
    settings: Settings,
    pool: PoolSettings,
    budget: (f64, f64),
    eject_after: u64,
    workers: usize,
    cache_policy: crate::cache::Policy,
}

/// Everything one worker's requests share. Single-threaded: `Rc` and `RefCell`, never locks.
pub struct WorkerContext {
    pub worker_id: usize,
    snapshot: RefCell<Rc<Snapshot>>,
    pub pool: Pool,
    tls: RefCell<Rc<TlsClientConfigs>>,
    pub health: Recorder,
    pub retry_budget: RefCell<RetryBudget>,
    settings: Cell<Settings>,
    pub lifecycle: Rc<lifecycle::Lifecycle>,
    /// Requests to the control thread (admin reload); absent in contexts built outside a gateway.
    control: Option<crossbeam_channel::Sender<crate::messages::ControlRequest>>,
    pub metrics: crate::metrics::WorkerMetrics,
    pub access_log: Option<crate::metrics::access_log::AccessLog>,
    /// Virtual keys: authentication, admission and settling when any key is configured.
    pub governor: Option<crate::governance::Governor>,
    /// The latest Prometheus text the control thread rendered, served as is by `/metrics`.
    metrics_text: RefCell<std::sync::Arc<str>>,
    /// The latest dashboard JSON, served by `/v1/stats`.
    stats_json: RefCell<std::sync::Arc<str>>,
    requests_seen: Cell<u64>,
    rng: Cell<u64>,
    /// This worker's copy of the service-account access tokens the refresher publishes.
    access_tokens: RefCell<crate::credentials::vertex::TokenTable>,
    /// The request history (`[history]`): every finished call, and `/v1/stats` range queries.
    pub history: Option<crate::history::History>,
    /// The trace exporter, when tracing is on: finished calls go to it, and it sets the sampling.
    pub telemetry: Option<crate::telemetry::Exporter>,
    /// The response cache: this worker's memory tier and its link to Redis.
    pub cache: crate::cache::WorkerCache,
    /// Provider health other instances announce (Redis), folded into routing as soon as it is read.
    remote_health: Option<crate::health::remote::Follower>,
}

impl WorkerContext {
    pub fn new(worker_id: usize, config: &ResolvedConfig, snapshot: Snapshot) -> Result<WorkerContext, rustls::Error> {
        let c = &config.config;
        let (ratio, min_per_sec) = (c.routing.retry_budget_ratio, c.routing.retry_budget_min_per_sec);
        Ok(WorkerContext {
            worker_id,
            snapshot: RefCell::new(Rc::new(snapshot)),
            lifecycle: Rc::new(lifecycle::Lifecycle::default()),
            health: Recorder::new(worker_id, u64::from(c.health.eject_consecutive_failures)),
            retry_budget: RefCell::new(RetryBudget::new(ratio, min_per_sec, Instant::now())),
            // Any odd seed works for xorshift; mixing in the worker id decorrelates the cores.
            rng: Cell::new(0x9e37_79b9_7f4a_7c15 ^ ((worker_id as u64 + 1) << 32) | 1),
            pool: Pool::new(pool_settings(config)),
            tls: RefCell::new(Rc::new(TlsClientConfigs::build(config.providers.values().map(|p| p.as_ref()))?)),
            settings: Cell::new(Settings::from_config(config)),
            control: None,
            metrics: crate::metrics::WorkerMetrics::new(worker_id),
            access_log: None,
            governor: None,
            metrics_text: RefCell::new(std::sync::Arc::from("")),
            stats_json: RefCell::new(std::sync::Arc::from("{\"seconds\":[],\"health\":null}")),
            requests_seen: Cell::new(0),
            access_tokens: RefCell::default(),
            history: None,
            telemetry: None,
            cache: crate::cache::WorkerCache::new(c),
            remote_health: None,
        })
    }

    /// Installs a freshly fetched access token for requests that start from now on.
    pub fn install_access_token(&self, token: &crate::credentials::vertex::AccessToken) {
        self.access_tokens.borrow_mut().install(token);
    }

    /// The access tokens in force; hold the borrow only while building a request (never across an
    /// await).
    pub fn access_tokens(&self) -> std::cell::Ref<'_, crate::credentials::vertex::TokenTable> {
        self.access_tokens.borrow()
    }

    /// Connects the context to the gateway's governor.
    pub fn with_governor(mut self, governor: crate::governance::Governor) -> Self {
        self.remote_health = governor.shared_health().map(crate::health::remote::Follower::new);
        self.governor = Some(governor);
        self
    }

    /// Connects the context to the access-log writer.
    pub fn with_access_log(mut self, log: Option<crate::metrics::access_log::AccessLog>) -> Self {
        self.access_log = log;
        self
    }

    /// Connects the context to the request-history writer.
    pub fn with_history(mut self, history: Option<crate::history::History>) -> Self {
        self.history = history;
        self
    }

    /// Connects the context to the trace exporter.
    pub fn with_telemetry(mut self, exporter: Option<crate::telemetry::Exporter>) -> Self {
        self.telemetry = exporter;
        self
    }

    /// The request's trace context, from the client's `traceparent` and whether tracing is on.
    pub fn start_trace(&self, head: &crate::http::request::RequestHead) -> Option<crate::trace_context::TraceContext> {
        let sample_ratio = self.telemetry.as_ref().map(|t| t.sample_ratio());
        crate::trace_context::TraceContext::start(head.header("traceparent"), sample_ratio)
    }

    pub fn metrics_text(&self) -> std::sync::Arc<str> {
        std::sync::Arc::clone(&self.metrics_text.borrow())
    }

    pub fn set_metrics_text(&self, text: std::sync::Arc<str>, stats: std::sync::Arc<str>) {
        *self.metrics_text.borrow_mut() = text;
        *self.stats_json.borrow_mut() = stats;
    }

    pub fn stats_json(&self) -> std::sync::Arc<str> {
        std::sync::Arc::clone(&self.stats_json.borrow())
    }

    /// `{worker}-{sequence}-{random}` in hex: unique within the process, cheap to make.
    /// Writes a new request id, unique to this process, into `id` (its buffer reused: no allocation
    /// per request).
    pub fn write_new_request_id(&self, id: &mut String) {
        let seen = self.requests_seen.get() + 1;
        self.requests_seen.set(seen);
        id.clear();
        // `{worker:x}-{seen:x}-{random:08x}`, written by hand: `write!` took ~800 instructions, a
        // visible share of a proxied request's.
        use crate::http::write::NumberText;
        id.push_str(NumberText::hex(self.worker_id as u64, 1).as_str());
        id.push('-');
        id.push_str(NumberText::hex(seen, 1).as_str());
        id.push('-');
        id.push_str(NumberText::hex(u64::from(self.next_random() as u32), 8).as_str());
    }

    /// Connects the context to its control thread.
    pub fn with_control(mut self, control: crossbeam_channel::Sender<crate::messages::ControlRequest>) -> Self {
        self.control = Some(control);
        self
    }

    pub fn control(&self) -> Option<&crossbeam_channel::Sender<crate::messages::ControlRequest>> {
        self.control.as_ref()
    }

    /// The limits in force for requests that start now.
    pub fn settings(&self) -> Settings {
        self.settings.get()
    }

    /// The TLS connectors of the current config version.
    pub fn tls(&self) -> Rc<TlsClientConfigs> {
        Rc::clone(&self.tls.borrow())
    }

    /// Phase one of a reload: build everything the new config needs, without touching what serves.
    pub fn prepare(&self, version: u64, config: &ResolvedConfig, workers: usize) -> Result<PreparedConfig, String> {
        let tls = TlsClientConfigs::build(config.providers.values().map(|p| p.as_ref()))
            .map_err(|e| format!("TLS configuration: {e}"))?;
        let c = &config.config;
        Ok(PreparedConfig {
            version,
            routes: Routes::build(config, crate::clock::unix_now()),
            tls,
            settings: Settings::from_config(config),
            pool: pool_settings(config),
            budget: (c.routing.retry_budget_ratio, c.routing.retry_budget_min_per_sec),
            eject_after: u64::from(c.health.eject_consecutive_failures),
            workers,
            cache_policy: crate::cache::Policy::from_config(c),
        })
    }

    /// Phase two: switch to a prepared config. Requests in flight keep the snapshot they started with;
    /// pooled connections stay (the pool is keyed by origin, not by config version).
    pub fn commit(&self, prepared: PreparedConfig) {
        let endpoints = prepared.routes.endpoint_count();
        let mut health = HealthTable::new(endpoints, prepared.workers);
        health.routes_version = prepared.version;
        self.health.reset(prepared.version, prepared.eject_after);
        *self.tls.borrow_mut() = Rc::new(prepared.tls);
        self.settings.set(prepared.settings);
        self.pool.set_settings(prepared.pool);
        let (ratio, min_per_sec) = prepared.budget;
        *self.retry_budget.borrow_mut() = RetryBudget::new(ratio, min_per_sec, Instant::now());
        self.cache.set_policy(prepared.cache_policy);
        *self.snapshot.borrow_mut() = Rc::new(Snapshot::new(Rc::new(prepared.routes), health));
        if let Some(remote) = &self.remote_health {
            remote.table_replaced();
        }
    }

    /// The current snapshot. A request holds this `Rc` to its end, so a swap never changes a request
    /// half-way through.
    pub fn snapshot(&self) -> Rc<Snapshot> {
        if let Some(remote) = &self.remote_health
            && remote.is_behind()
        {
            self.fold_remote_health(remote);
        }
        Rc::clone(&self.snapshot.borrow())
    }

    /// Routes around what another instance avoids from now on, without waiting for the next tick.
    fn fold_remote_health(&self, remote: &crate::health::remote::Follower) {
        let current = Rc::clone(&self.snapshot.borrow());
        // Read together from the clocks themselves (not the poll's time): the pair converts between
        // the other instances' wall-clock times and this worker's instants.
        let (now, now_unix_ms) = (Instant::now(), crate::clock::unix_now_ms());
        if let Some(table) = remote.fold(current.routes.endpoint_keys(), &current.health, now, now_unix_ms) {
            *self.snapshot.borrow_mut() = Rc::new(Snapshot::new(Rc::clone(&current.routes), table));
        }
    }

    /// Installs a newly published health table for requests that start from now on; the routes stay.
    /// A table built for other routes (a reload in progress) is ignored.
    pub fn install_health(&self, table: HealthTable) {
        if table.routes_version != self.snapshot.borrow().health.routes_version {
            return;
        }
        self.health.on_table(&table);
        let routes: Rc<Routes> = Rc::clone(&self.snapshot.borrow().routes);
        *self.snapshot.borrow_mut() = Rc::new(Snapshot::new(routes, table));
        if let Some(remote) = &self.remote_health {
            remote.table_replaced();
        }
    }

    /// A pseudo-random number for backoff jitter (xorshift64: cheap, core-local, not for secrets).
    pub fn next_random(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        x
    }
}

fn pool_settings(config: &ResolvedConfig) -> PoolSettings {
    PoolSettings {
        max_idle_per_host: config.config.pool.max_idle_per_host,
        idle_timeout: Duration::from_millis(config.config.pool.idle_timeout_ms),
        liveness_check_after: crate::upstream::LIVENESS_CHECK_AFTER,
    }
}
