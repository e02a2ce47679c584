//! Configuration: the TOML file's shape, its defaults, and validation into a `Config` the workers can trust.
//!
//! Owns parsing and checking only. It does not resolve secrets or DNS (see `config::resolve`) and knows
//! nothing of workers. Every problem found is collected, so `corelay check` reports them all at once.

mod cache;
mod expand;
mod governance;
mod history;
mod locate;
pub mod resolve;
mod traces;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use cache::CacheConfig;
pub use governance::{
    GovernanceConfig, days_from_civil as governance_days_from_civil, expiry_unix_seconds, parse_redis_url,
};
pub use history::HistoryConfig;
pub use resolve::{HostLookup, ResolvedConfig, resolve};
pub use traces::TracingConfig;

/// Keys a table did not recognise, captured by `#[serde(flatten)]` so every one can be reported.
type UnknownKeys = BTreeMap<String, toml::Value>;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub pool: PoolConfig,
    #[serde(default)]
    pub routing: RoutingConfig,
    #[serde(default)]
    pub health: HealthConfig,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    #[serde(default)]
    pub models: BTreeMap<String, ModelConfig>,
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub governance: GovernanceConfig,
    #[serde(default)]
    pub history: HistoryConfig,
    #[serde(default)]
    pub tracing: TracingConfig,
    #[serde(default)]
    pub cache: CacheConfig,
    #[serde(flatten)]
    unknown: UnknownKeys,
}

/// `[log]`: where the access log goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// "off", "stdout", or a file path (appended to; reopened on SIGHUP for rotation).
    pub access: String,
    /// Process log levels (`CORELAY_LOG` wins): `info,corelay::upstream=debug`.
    pub level: Option<String>,
    /// Process log format, `logfmt` or `json` (`CORELAY_LOG_FORMAT` wins).
    pub format: Option<String>,
    #[serde(flatten)]
    unknown: UnknownKeys,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { access: "off".into(), level: None, format: None, unknown: UnknownKeys::new() }
    }
}

/// `[admin]`: the key that guards admin endpoints (`POST /admin/reload`; `/metrics`, `/v1/stats`
/// when set), and optionally a listener of their own. Without a key, `POST /admin/reload` is off.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AdminConfig {
    /// Environment variable holding the admin key.
    pub key_env: Option<String>,
    /// File holding the admin key, re-read on every reload (rotation without restart).
    pub key_file: Option<PathBuf>,
    /// The admin key inline (at least 16 characters).
    pub key: Option<String>,
    /// `IP:port` of a listener serving only the admin endpoints (`/metrics`, `/v1/stats`,
    /// `/admin/*`, `/dashboard`); when set, the client listener no longer serves them.
    pub listen: Option<String>,
    #[serde(flatten)]
    unknown: UnknownKeys,
}

/// `[server]`: the client-facing listener and its limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    pub listen: String,
    /// Worker threads; 0 means one per available core.
    pub cores: usize,
    pub pin_cores: bool,
    /// Submission queue entries per io_uring ring.
    pub io_uring_entries: u32,
    /// Time allowed to receive a complete request head once its first byte arrived.
    pub header_read_timeout_ms: u64,
    /// Time allowed to receive a request body.
    pub body_read_timeout_ms: u64,
    /// How long an idle keep-alive client connection is kept open.
    pub keepalive_timeout_ms: u64,
    pub max_head_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: usize,
    /// On SIGTERM/SIGINT, requests and streams in flight get this long to finish.
    pub shutdown_grace_ms: u64,
    /// Open client connections per core; beyond it new connections get a fast 503 and are closed.
    pub max_connections_per_core: usize,
    #[serde(flatten)]
    unknown: UnknownKeys,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            cores: 0,
            pin_cores: false,
            io_uring_entries: 1024,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            keepalive_timeout_ms: 75_000,
            max_head_bytes: 32 * 1024,
            max_headers: 100,
            max_body_bytes: 16 * 1024 * 1024,
            shutdown_grace_ms: 30_000,
            max_connections_per_core: 10_000,
            unknown: UnknownKeys::new(),
        }
    }
}

/// `[pool]`: upstream connections. Every limit is per core: N cores keep up to N times as many.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PoolConfig {
    pub max_idle_per_host: usize,
    pub idle_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// From the request written to the provider's response head.
    pub first_byte_timeout_ms: u64,
    /// Longest silence allowed between two reads of a provider's response body (stream stall detection).
    pub read_idle_timeout_ms: u64,
    /// Largest non-streaming provider response body the gateway will buffer.
    pub max_response_bytes: usize,
    #[serde(flatten)]
    unknown: UnknownKeys,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_idle_per_host: 64,
            idle_timeout_ms: 90_000,
            connect_timeout_ms: 2_000,
            first_byte_timeout_ms: 120_000,
            read_idle_timeout_ms: 120_000,
            max_response_bytes: 64 * 1024 * 1024,
            unknown: UnknownKeys::new(),
        }
    }
}

/// `[routing]`: failover and retry discipline.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RoutingConfig {
    /// Most upstream attempts for one client request, the first included.
    pub max_attempts: usize,
    /// Overall time for all attempts until a response starts reaching the client.
    pub deadline_ms: u64,
    /// A streamed 200 is held until its first event arrives, at most this long, so an error as the
    /// first event can still fail over.
    pub first_event_timeout_ms: u64,
    /// Retries allowed per client request, as a fraction: each request adds this many retry tokens,
    /// each retry spends one.
    pub retry_budget_ratio: f64,
    /// Retry tokens granted per second regardless of traffic, so low traffic can still retry.
    pub retry_budget_min_per_sec: f64,
    /// Jittered exponential backoff between two attempts on the same provider.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    #[serde(flatten)]
    unknown: UnknownKeys,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            max_attempts: 3,
            deadline_ms: 180_000,
            first_event_timeout_ms: 30_000,
            retry_budget_ratio: 0.2,
            retry_budget_min_per_sec: 5.0,
            backoff_base_ms: 25,
            backoff_max_ms: 1_000,
            unknown: UnknownKeys::new(),
        }
    }
}

/// `[health]`: how endpoint health is measured and when an endpoint is ejected.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HealthConfig {
    /// How often each worker sends its measurements to the control thread, which then publishes health.
    pub tick_ms: u64,
    /// Length of the sliding window health statistics cover.
    pub window_ms: u64,
    /// Consecutive failures that eject an endpoint.
    pub eject_consecutive_failures: u32,
    /// Error rate over the window that ejects an endpoint, once it saw `min_requests` requests.
    pub eject_error_rate: f64,
    pub min_requests: u64,
    /// First ejection lasts this long; each repeated ejection doubles it, up to `eject_max_ms`.
    pub eject_base_ms: u64,
    pub eject_max_ms: u64,
    #[serde(flatten)]
    unknown: UnknownKeys,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            tick_ms: 250,
            window_ms: 30_000,
            eject_consecutive_failures: 5,
            eject_error_rate: 0.5,
            min_requests: 20,
            eject_base_ms: 5_000,
            eject_max_ms: 300_000,
            unknown: UnknownKeys::new(),
        }
    }
}

/// The wire protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI and every OpenAI-compatible server: the body passes through.
    Openai,
    /// Anthropic's Messages API: requests and answers are translated.
    Anthropic,
    /// Google AI Studio's Gemini API (`generateContent`): translated.
    Gemini,
    /// AWS Bedrock (Converse / ConverseStream, or InvokeModel for Anthropic models), signed with
    /// SigV4: translated.
    Bedrock,
    /// Google Vertex AI: Gemini models (`generateContent`) and Anthropic models (`rawPredict`),
    /// chosen by the model name; translated.
    Vertex,
    /// Azure OpenAI: OpenAI's format (passed through) at a deployment path, `api-key` header.
    Azure,
    /// OpenAI's Responses API (`/responses`), for models served only there (o1-pro, o3-pro, the codex
    /// models): requests and answers are translated.
    #[serde(rename = "openai_responses")]
    OpenaiResponses,
}

impl ProviderKind {
    /// Kinds that speak OpenAI's chat format, so an OpenAI client's body passes through untranslated.
    pub fn speaks_openai(self) -> bool {
        matches!(self, ProviderKind::Openai | ProviderKind::Azure)
    }
}

/// Which Bedrock API a provider calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BedrockApi {
    /// Converse / ConverseStream: any model.
    #[default]
    Converse,
    /// InvokeModel / InvokeModelWithResponseStream with Anthropic's Messages body.
    Invoke,
}

/// `[providers.NAME]`.
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    pub base_url: String,
    /// Environment variable holding the provider key; none (and no `api_key_file`) means the
    /// provider needs no key.
    pub api_key_env: Option<String>,
    /// File holding the provider key, re-read on every reload so a key rotates without a restart.
    pub api_key_file: Option<PathBuf>,
    /// PEM file of extra CA certificates trusted for this provider (a private vLLM, a test mock).
    pub ca_file: Option<PathBuf>,
    /// `max_tokens` sent when the client gave none, for providers that require one (Anthropic).
    pub default_max_tokens: Option<u32>,
    /// Bedrock: the AWS region requests are signed for.
    pub region: Option<String>,
    /// Bedrock: environment variables holding the AWS credentials (SigV4). Without them, a Bedrock
    /// API key from `api_key_env` is sent as a bearer token.
    pub aws_access_key_id_env: Option<String>,
    pub aws_secret_access_key_env: Option<String>,
    pub aws_session_token_env: Option<String>,
    /// Bedrock: the same credentials from files, re-read on every reload.
    pub aws_access_key_id_file: Option<PathBuf>,
    pub aws_secret_access_key_file: Option<PathBuf>,
    pub aws_session_token_file: Option<PathBuf>,
    /// Bedrock: which API (default `converse`).
    pub bedrock_api: Option<BedrockApi>,
    /// Azure: the `api-version` query parameter (default 2024-10-21).
    pub api_version: Option<String>,
    /// Vertex: the Google Cloud project and location in every request path.
    pub project: Option<String>,
    pub location: Option<String>,
    /// Vertex: a service-account key file (JSON, as Google issues it). Corelay signs an RS256 JWT with
    /// it, exchanges that for an access token at `token_url`, and refreshes the token before it
    /// expires, off the request path. Instead of `api_key_env` (a static access token).
    pub service_account_file: Option<PathBuf>,
    /// Vertex: where assertions are exchanged for tokens; default: the key file's `token_uri`, else
    /// https://oauth2.googleapis.com/token. `http://` is accepted for loopback hosts only.
    pub token_url: Option<String>,
    #[serde(flatten)]
    unknown: UnknownKeys,
}

/// Prices in USD per million tokens. Cached input and cache writes default to the input price.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    pub input: f64,
    pub output: f64,
    pub cached_input: Option<f64>,
    pub cache_write: Option<f64>,
}

/// `[models."ID"]`: a gateway model id and the endpoints that serve it, in order of preference.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelConfig {
    pub endpoints: Vec<EndpointConfig>,
    /// What a call costs; an endpoint's own `price` overrides it (providers differ).
    pub price: Option<PriceConfig>,
    /// Shown as `owned_by` in `GET /v1/models`; defaults to the text before the first `/` of the id.
    pub owned_by: Option<String>,
    /// Models tried, in order, after every endpoint of this one (and after a request's own fallbacks).
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Answers for this model may be cached (`[cache]` must be enabled).
    #[serde(default)]
    pub cache: bool,
    #[serde(flatten)]
    unknown: UnknownKeys,
}

/// One way to serve a model: a provider and the model name that provider knows it by.
#[derive(Debug, Clone, Deserialize)]
pub struct EndpointConfig {
    pub provider: String,
    pub model: String,
    /// Lower is preferred. Endpoints with equal priority are ordered by recent latency; by default
    /// each endpoint's priority is its position, so config order decides.
    pub priority: Option<u32>,
    /// This endpoint's price when it differs from the model's.
    pub price: Option<PriceConfig>,
    /// Share of traffic among endpoints of equal priority (weighted random order; default 1). Once
    /// any endpoint of a priority has a weight, weights rather than latency order that priority.
    pub weight: Option<u32>,
    #[serde(flatten)]
    unknown: UnknownKeys,
}

/// `[[keys]]`: a gateway key clients present as `Authorization: Bearer KEY`.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyConfig {
    /// A label for logs and metrics; the secret itself is never logged.
    pub name: String,
    /// The key inline. Prefer `key_env` so the file holds no secret.
    pub key: Option<String>,
    /// Environment variable holding the key.
    pub key_env: Option<String>,
    /// File holding the key, re-read on every reload.
    pub key_file: Option<PathBuf>,
    /// The key's SHA-256 in hex (`corelay keys hash`): the file then holds no secret at all.
    pub key_sha256: Option<String>,
    /// After this instant the key is refused (a TOML date or date-time: `2027-01-01` is midnight UTC).
    pub expires_at: Option<toml::value::Datetime>,
    /// Models the key may use: exact ids and `creator/*`; absent means every model.
    pub models: Option<Vec<String>>,
    /// Spend budgets in micro-dollars (1 USD = 1000000), per UTC day, UTC month and in total.
    pub budget_micros_per_day: Option<u64>,
    pub budget_micros_per_month: Option<u64>,
    pub budget_micros_total: Option<u64>,
    /// Requests and tokens per minute, and requests in flight at once.
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub max_concurrent: Option<u64>,
    /// This key's answers may be cached (in its own namespace; `[cache]` must be enabled).
    #[serde(default)]
    pub cache: bool,
    #[serde(flatten)]
    unknown: UnknownKeys,
}

/// One problem in a config file, with where it is when that can be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

/// Everything wrong with one config file.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub file: PathBuf,
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        let count = self.issues.len();
        writeln!(f, "{file}: {count} error(s)")?;
        for issue in &self.issues {
            match issue.line {
                Some(line) => writeln!(f, "  {file}:{line}: {}: {}", issue.key, issue.message)?,
                None => writeln!(f, "  {file}: {}: {}", issue.key, issue.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Reads, validates and resolves a config file: what the gateway and the control thread call.
pub fn load_resolved(path: &Path) -> Result<ResolvedConfig, ConfigError> {
    load_resolved_with(path, HostLookup::Dns)
}

/// [`load_resolved`] with DNS lookups done or skipped (`corelay check --offline`). Reports every
/// issue at once, in file order: a file that parses is resolved (environment, key files, DNS)
/// even when it also has semantic mistakes, so one run shows all of them.
pub fn load_resolved_with(path: &Path, lookup: HostLookup) -> Result<ResolvedConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        issues: vec![ConfigIssue { key: "-".into(), line: None, message: format!("cannot read: {e}") }],
    })?;
    let fail = |mut issues: Vec<ConfigIssue>| {
        for issue in &mut issues {
            issue.line = issue.line.or_else(|| locate::line_of_key(&text, &issue.key));
        }
        // Stable: issues on one line keep the order they were found in; those without a line go last.
        issues.sort_by_key(|issue| (issue.line.is_none(), issue.line));
        ConfigError { file: path.to_path_buf(), issues }
    };
    let (config, mut issues) = Config::parse_collecting(&text).map_err(fail)?;
    match resolve::resolve_with(config, lookup) {
        Ok(mut resolved) if issues.is_empty() => {
            resolved.source = Some(path.to_path_buf());
            Ok(resolved)
        }
        Ok(_) => Err(fail(issues)),
        Err(resolve_issues) => {
            issues.extend(resolve_issues);
            Err(fail(issues))
        }
    }
}

impl Config {
    /// Parses and validates config text; on failure returns every issue found.
    pub fn parse(text: &str) -> Result<Config, Vec<ConfigIssue>> {
        let (config, issues) = Config::parse_collecting(text)?;
        if issues.is_empty() { Ok(config) } else { Err(issues) }
    }

    /// Parses config text and lists its semantic issues alongside the config, so it can still be
    /// resolved for a complete report. Only a syntax or type error, which leaves no config, is `Err`.
    fn parse_collecting(text: &str) -> Result<(Config, Vec<ConfigIssue>), Vec<ConfigIssue>> {
        // Syntax and types are checked on the text as written, so their errors carry a line.
        let config: Config = toml::from_str(text).map_err(|e| vec![syntax_issue(text, &e)])?;
        let mut issues = Vec::new();
        let config = if text.contains("${") { expanded(text, &mut issues)? } else { config };
        config.collect_unknown_keys(&mut issues);
        config.validate(&mut issues);
        for issue in &mut issues {
            if issue.line.is_none() {
                issue.line = locate::line_of_key(text, &issue.key);
            }
        }
        Ok((config, issues))
    }

    /// The listen address, valid after `parse` succeeded.
    pub fn listen_addr(&self) -> SocketAddr {
        self.server.listen.parse().expect("validated in Config::parse")
    }

    /// The admin listener's address (`admin.listen`), valid after `parse` succeeded.
    pub fn admin_listen_addr(&self) -> Option<SocketAddr> {
        self.admin.listen.as_ref().and_then(|listen| listen.parse().ok())
    }

    /// Worker count with `cores = 0` resolved against the machine.
    pub fn worker_count(&self) -> usize {
        match self.server.cores {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    fn collect_unknown_keys(&self, issues: &mut Vec<ConfigIssue>) {
        report_unknown("", &self.unknown, issues);
        report_unknown("server", &self.server.unknown, issues);
        report_unknown("pool", &self.pool.unknown, issues);
        report_unknown("routing", &self.routing.unknown, issues);
        report_unknown("health", &self.health.unknown, issues);
        report_unknown("admin", &self.admin.unknown, issues);
        report_unknown("log", &self.log.unknown, issues);
        report_unknown("governance", &self.governance.unknown, issues);
        report_unknown("history", &self.history.unknown, issues);
        report_unknown("cache", &self.cache.unknown, issues);
        for (name, provider) in &self.providers {
            report_unknown(&format!("providers.{name}"), &provider.unknown, issues);
        }
        for (id, model) in &self.models {
            report_unknown(&format!("models.\"{id}\""), &model.unknown, issues);
            for (i, endpoint) in model.endpoints.iter().enumerate() {
                report_unknown(&format!("models.\"{id}\".endpoints[{i}]"), &endpoint.unknown, issues);
            }
        }
        for (i, key) in self.keys.iter().enumerate() {
            report_unknown(&format!("keys[{i}]"), &key.unknown, issues);
        }
    }

    fn validate(&self, issues: &mut Vec<ConfigIssue>) {
        self.validate_server(issues);
        self.validate_pool(issues);
        self.validate_routing(issues);
        self.validate_health(issues);
        for (name, provider) in &self.providers {
            validate_provider(name, provider, issues);
        }
        for (id, model) in &self.models {
            self.validate_model(id, model, issues);
        }
        self.validate_keys(issues);
        self.governance.validate(issues);
        self.cache.validate(issues);
        self.validate_admin(issues);
        self.history.validate(issues);
        self.tracing.validate(issues);
        traces::validate_log(self.log.level.as_deref(), self.log.format.as_deref(), issues);
    }

    fn validate_admin(&self, issues: &mut Vec<ConfigIssue>) {
        let a = &self.admin;
        if sources_set(&[a.key.is_some(), a.key_env.is_some(), a.key_file.is_some()]) > 1 {
            issues.push(issue("admin", "set one of `key`, `key_env` or `key_file`"));
        }
        if a.key.as_ref().is_some_and(|k| k.len() < 16) {
            issues.push(issue("admin.key", "must be at least 16 characters"));
        }
        if let Some(listen) = &a.listen {
            match listen.parse::<SocketAddr>() {
                Err(_) => issues.push(issue("admin.listen", format!("`{listen}` is not an IP:port address"))),
                Ok(addr) if addr.port() != 0 && Some(addr) == self.server.listen.parse().ok() => {
                    issues.push(issue("admin.listen", "must differ from server.listen"))
                }
                Ok(_) => {}
            }
        }
    }

    fn validate_server(&self, issues: &mut Vec<ConfigIssue>) {
        let s = &self.server;
        if s.listen.parse::<SocketAddr>().is_err() {
            issues.push(issue("server.listen", format!("`{}` is not an IP:port address", s.listen)));
        }
        if s.cores > 1024 {
            issues.push(issue("server.cores", "must be at most 1024 (0 = one per core)"));
        }
        if !(8..=32768).contains(&s.io_uring_entries) || !s.io_uring_entries.is_power_of_two() {
            issues.push(issue("server.io_uring_entries", "must be a power of two from 8 to 32768"));
        }
        require_positive("server.header_read_timeout_ms", s.header_read_timeout_ms, issues);
        require_positive("server.body_read_timeout_ms", s.body_read_timeout_ms, issues);
        require_positive("server.keepalive_timeout_ms", s.keepalive_timeout_ms, issues);
        if s.max_head_bytes < 1024 {
            issues.push(issue("server.max_head_bytes", "must be at least 1024"));
        }
        if !(8..=128).contains(&s.max_headers) {
            issues.push(issue("server.max_headers", "must be between 8 and 128"));
        }
        if s.max_body_bytes == 0 {
            issues.push(issue("server.max_body_bytes", "must be greater than 0"));
        }
        if s.max_connections_per_core == 0 {
            issues.push(issue("server.max_connections_per_core", "must be greater than 0"));
        }
    }

    fn validate_pool(&self, issues: &mut Vec<ConfigIssue>) {
        let p = &self.pool;
        require_positive("pool.idle_timeout_ms", p.idle_timeout_ms, issues);
        require_positive("pool.connect_timeout_ms", p.connect_timeout_ms, issues);
        require_positive("pool.first_byte_timeout_ms", p.first_byte_timeout_ms, issues);
        require_positive("pool.read_idle_timeout_ms", p.read_idle_timeout_ms, issues);
        if p.max_response_bytes == 0 {
            issues.push(issue("pool.max_response_bytes", "must be greater than 0"));
        }
    }

    fn validate_routing(&self, issues: &mut Vec<ConfigIssue>) {
        let r = &self.routing;
        if !(1..=10).contains(&r.max_attempts) {
            issues.push(issue("routing.max_attempts", "must be between 1 and 10"));
        }
        require_positive("routing.deadline_ms", r.deadline_ms, issues);
        require_positive("routing.first_event_timeout_ms", r.first_event_timeout_ms, issues);
        if !(0.0..=1.0).contains(&r.retry_budget_ratio) {
            issues.push(issue("routing.retry_budget_ratio", "must be between 0 and 1"));
        }
        if !(0.0..=1000.0).contains(&r.retry_budget_min_per_sec) {
            issues.push(issue("routing.retry_budget_min_per_sec", "must be between 0 and 1000"));
        }
        if r.backoff_base_ms > r.backoff_max_ms {
            issues.push(issue("routing.backoff_base_ms", "must not exceed routing.backoff_max_ms"));
        }
    }

    fn validate_health(&self, issues: &mut Vec<ConfigIssue>) {
        let h = &self.health;
        if !(5..=60_000).contains(&h.tick_ms) {
            issues.push(issue("health.tick_ms", "must be between 5 and 60000"));
        }
        if h.window_ms < h.tick_ms {
            issues.push(issue("health.window_ms", "must be at least health.tick_ms"));
        }
        if h.eject_consecutive_failures == 0 {
            issues.push(issue("health.eject_consecutive_failures", "must be greater than 0"));
        }
        if !(0.0..=1.0).contains(&h.eject_error_rate) || h.eject_error_rate == 0.0 {
            issues.push(issue("health.eject_error_rate", "must be greater than 0 and at most 1"));
        }
        require_positive("health.eject_base_ms", h.eject_base_ms, issues);
        if h.eject_base_ms > h.eject_max_ms {
            issues.push(issue("health.eject_base_ms", "must not exceed health.eject_max_ms"));
        }
    }

    fn validate_model(&self, id: &str, model: &ModelConfig, issues: &mut Vec<ConfigIssue>) {
        let key = format!("models.\"{id}\"");
        if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            issues.push(issue(&key, "a model id must be non-empty and contain no whitespace"));
        }
        if model.endpoints.is_empty() {
            issues.push(issue(&format!("{key}.endpoints"), "at least one endpoint is required"));
        }
        let prices = model.price.iter().map(|p| (format!("{key}.price"), p));
        let endpoint_prices = model
            .endpoints
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.price.as_ref().map(|p| (format!("{key}.endpoints[{i}].price"), p)));
        for (at, price) in prices.chain(endpoint_prices) {
            let values = [Some(price.input), Some(price.output), price.cached_input, price.cache_write];
            if values.iter().flatten().any(|v| !v.is_finite() || *v < 0.0 || *v > 1_000_000.0) {
                issues.push(issue(&at, "prices are USD per million tokens: finite, from 0 to 1000000"));
            }
        }
        for (i, endpoint) in model.endpoints.iter().enumerate() {
            if !self.providers.contains_key(&endpoint.provider) {
                issues.push(issue(
                    &format!("{key}.endpoints[{i}].provider"),
                    format!("unknown provider `{}` (no [providers.{}] table)", endpoint.provider, endpoint.provider),
                ));
            }
            if endpoint.model.is_empty() {
                issues.push(issue(&format!("{key}.endpoints[{i}].model"), "must not be empty"));
            }
            if endpoint.weight.is_some_and(|w| !(1..=10_000).contains(&w)) {
                issues.push(issue(&format!("{key}.endpoints[{i}].weight"), "must be between 1 and 10000"));
            }
        }
        for fallback in &model.fallbacks {
            if fallback == id || !self.models.contains_key(fallback) {
                let why = if fallback == id { "a model cannot fall back to itself" } else { "no such model" };
                issues.push(issue(&format!("{key}.fallbacks"), format!("`{fallback}`: {why}")));
            }
        }
    }

    fn validate_keys(&self, issues: &mut Vec<ConfigIssue>) {
        let mut names = std::collections::BTreeSet::new();
        for (i, key) in self.keys.iter().enumerate() {
            let at = format!("keys[{i}]");
            if key.name.is_empty() {
                issues.push(issue(&format!("{at}.name"), "must not be empty"));
            } else if !names.insert(key.name.as_str()) {
                issues.push(issue(&format!("{at}.name"), format!("duplicate key name `{}`", key.name)));
            }
            let sources = [key.key.is_some(), key.key_env.is_some(), key.key_file.is_some(), key.key_sha256.is_some()];
            match sources_set(&sources) {
                0 => issues.push(issue(&at, "one of `key`, `key_env`, `key_file` or `key_sha256` is required")),
                1 => {}
                _ => issues.push(issue(&at, "set only one of `key`, `key_env`, `key_file` or `key_sha256`")),
            }
            if key.key.as_ref().is_some_and(|k| k.len() < 16) {
                issues.push(issue(&format!("{at}.key"), "a gateway key must be at least 16 characters"))
            }
            if let Some(hash) = &key.key_sha256 {
                governance::validate_sha256_hex(&format!("{at}.key_sha256"), hash, issues);
            }
            governance::validate_key_limits(&at, key, issues);
        }
    }
}

fn validate_provider(name: &str, provider: &ProviderConfig, issues: &mut Vec<ConfigIssue>) {
    let key = format!("providers.{name}.base_url");
    if let Err(why) = crate::http::origin::Origin::parse_base_url(&provider.base_url) {
        issues.push(issue(&key, format!("`{}`: {why}", provider.base_url)));
    }
    if let Some(env) = &provider.api_key_env
        && env.is_empty()
    {
        issues.push(issue(&format!("providers.{name}.api_key_env"), "must not be empty"));
    }
    if provider.api_key_env.is_some() && provider.api_key_file.is_some() {
        issues.push(issue(&format!("providers.{name}.api_key_file"), "set api_key_env or api_key_file, not both"));
    }
    let is_bedrock = provider.kind == ProviderKind::Bedrock;
    if is_bedrock && provider.region.as_deref().is_none_or(str::is_empty) {
        issues.push(issue(&format!("providers.{name}.region"), "a bedrock provider needs its AWS region"));
    }
    if is_bedrock {
        validate_aws_credentials(name, provider, issues);
    }
    if provider.kind == ProviderKind::Vertex {
        for (field, value) in [("project", &provider.project), ("location", &provider.location)] {
            if value.as_deref().is_none_or(str::is_empty) {
                issues.push(issue(&format!("providers.{name}.{field}"), "a vertex provider needs it"));
            }
        }
        validate_vertex_auth(name, provider, issues);
    }
    let vertex_only = [("service_account_file", provider.service_account_file.is_some())];
    for (key, set) in vertex_only {
        if set && provider.kind != ProviderKind::Vertex {
            issues.push(issue(&format!("providers.{name}.{key}"), "only applies to kind = \"vertex\""));
        }
    }
    let bedrock_only = [
        ("region", provider.region.is_some()),
        ("bedrock_api", provider.bedrock_api.is_some()),
        ("aws_access_key_id_env", provider.aws_access_key_id_env.is_some()),
        ("aws_access_key_id_file", provider.aws_access_key_id_file.is_some()),
        ("aws_secret_access_key_file", provider.aws_secret_access_key_file.is_some()),
        ("aws_session_token_file", provider.aws_session_token_file.is_some()),
    ];
    for (key, set) in bedrock_only {
        if set && !is_bedrock {
            issues.push(issue(&format!("providers.{name}.{key}"), "only applies to kind = \"bedrock\""));
        }
    }
}

/// The access key id and the secret each from one place (environment or file), both or neither.
fn validate_aws_credentials(name: &str, provider: &ProviderConfig, issues: &mut Vec<ConfigIssue>) {
    let id = sources_set(&[provider.aws_access_key_id_env.is_some(), provider.aws_access_key_id_file.is_some()]);
    let secret =
        sources_set(&[provider.aws_secret_access_key_env.is_some(), provider.aws_secret_access_key_file.is_some()]);
    let token = sources_set(&[provider.aws_session_token_env.is_some(), provider.aws_session_token_file.is_some()]);
    if id > 1 || secret > 1 || token > 1 {
        issues.push(issue(
            &format!("providers.{name}"),
            "each AWS credential comes from its _env or its _file, not both",
        ));
    }
    if (id == 0) != (secret == 0) {
        issues.push(issue(
            &format!("providers.{name}"),
            "set both the AWS access key id and secret access key (_env or _file), or neither",
        ));
    }
}

/// How many of a setting's alternative sources are set.
fn sources_set(set: &[bool]) -> usize {
    set.iter().filter(|s| **s).count()
}

/// One way to authenticate, and a token URL that will not leak an assertion over plain HTTP.
fn validate_vertex_auth(name: &str, provider: &ProviderConfig, issues: &mut Vec<ConfigIssue>) {
    if provider.service_account_file.is_some() && (provider.api_key_env.is_some() || provider.api_key_file.is_some()) {
        issues.push(issue(
            &format!("providers.{name}.service_account_file"),
            "set service_account_file or api_key_env / api_key_file (a static access token), not both",
        ));
    }
    let Some(url) = &provider.token_url else { return };
    let key = format!("providers.{name}.token_url");
    if provider.service_account_file.is_none() {
        issues.push(issue(&key, "only applies with service_account_file"));
    }
    match crate::http::origin::Origin::parse_base_url(url) {
        Err(why) => issues.push(issue(&key, format!("`{url}`: {why}"))),
        Ok(origin) if origin.key.scheme == crate::http::origin::Scheme::Http && !is_loopback(&origin.host) => {
            issues.push(issue(&key, format!("`{url}`: must be https:// (plain http only to a loopback host)")));
        }
        Ok(_) => {}
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The config with `${VAR}` references replaced from the environment. Expansion only changes
/// string values, so the types already checked still hold.
fn expanded(text: &str, issues: &mut Vec<ConfigIssue>) -> Result<Config, Vec<ConfigIssue>> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| vec![syntax_issue(text, &e)])?;
    expand::expand_table(&mut table, "", &|name| std::env::var(name).ok(), issues);
    toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| vec![syntax_issue(text, &e)])
}

fn report_unknown(table: &str, unknown: &UnknownKeys, issues: &mut Vec<ConfigIssue>) {
    for name in unknown.keys() {
        let key = if table.is_empty() { name.clone() } else { format!("{table}.{name}") };
        issues.push(issue(&key, "unknown key"));
    }
}

fn require_positive(key: &str, value: u64, issues: &mut Vec<ConfigIssue>) {
    if value == 0 {
        issues.push(issue(key, "must be greater than 0"));
    }
}

fn issue(key: &str, message: impl Into<String>) -> ConfigIssue {
    ConfigIssue { key: key.to_string(), line: None, message: message.into() }
}

fn syntax_issue(text: &str, error: &toml::de::Error) -> ConfigIssue {
    let line = error.span().map(|span| locate::line_of_offset(text, span.start));
    ConfigIssue { key: "-".into(), line, message: error.message().trim().to_string() }
}

#[cfg(test)]
mod tests;
