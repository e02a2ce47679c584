//! `[tracing]`: whether and where OpenTelemetry traces are exported, and `[log] level`/`format`
//! checks. Owns parsing and checking only; the exporter is `telemetry`, the subscriber `logging`.

use serde::Deserialize;

use super::{ConfigIssue, UnknownKeys, issue, report_unknown};

/// `[tracing]`: OTLP/HTTP export of one span per request and one per provider attempt.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TracingConfig {
    /// `http://HOST:PORT` of an OTLP/HTTP receiver (`/v1/traces` is appended unless a path is
    /// given); empty turns export off.
    pub otlp_endpoint: String,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// Share of traces started here that are exported (0 to 1); a client's `traceparent` decides
    /// for its own traces.
    pub sample_ratio: f64,
    /// Spans sent in one export request at most.
    pub batch_size: usize,
    /// A partial batch waits this long at most before it is sent.
    pub batch_delay_ms: u64,
    /// Finished calls queued for the exporter at most; beyond that they are dropped and counted.
    pub queue_size: usize,
    /// One export request may take this long before it is abandoned.
    pub export_timeout_ms: u64,
    #[serde(flatten)]
    pub(super) unknown: UnknownKeys,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            otlp_endpoint: String::new(),
            service_name: "corelay".into(),
            sample_ratio: 1.0,
            batch_size: 512,
            batch_delay_ms: 1_000,
            queue_size: 8_192,
            export_timeout_ms: 5_000,
            unknown: UnknownKeys::new(),
        }
    }
}

impl TracingConfig {
    /// Export is on.
    pub fn enabled(&self) -> bool {
        !self.otlp_endpoint.is_empty()
    }

    /// Every setting on one line, to say what a reload could not apply.
    pub fn describe(&self) -> String {
        format!(
            "otlp_endpoint {:?}, service_name {:?}, sample_ratio {}, batch_size {}, batch_delay_ms {}, \
             queue_size {}, export_timeout_ms {}",
            self.otlp_endpoint,
            self.service_name,
            self.sample_ratio,
            self.batch_size,
            self.batch_delay_ms,
            self.queue_size,
            self.export_timeout_ms
        )
    }

    pub(super) fn validate(&self, issues: &mut Vec<ConfigIssue>) {
        report_unknown("tracing", &self.unknown, issues);
        let endpoint = &self.otlp_endpoint;
        let http = endpoint.starts_with("http://") || endpoint.starts_with("https://");
        if !endpoint.is_empty() && !http {
            issues.push(issue("tracing.otlp_endpoint", format!("`{endpoint}` must start with http:// or https://")));
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            issues.push(issue("tracing.sample_ratio", "must be between 0 and 1"));
        }
        if self.service_name.is_empty() {
            issues.push(issue("tracing.service_name", "must not be empty"));
        }
        for (key, value) in [
            ("tracing.batch_size", self.batch_size as u64),
            ("tracing.batch_delay_ms", self.batch_delay_ms),
            ("tracing.queue_size", self.queue_size as u64),
            ("tracing.export_timeout_ms", self.export_timeout_ms),
        ] {
            if value == 0 {
                issues.push(issue(key, "must be greater than 0"));
            }
        }
    }
}

/// `[log] level` (directives like `info,corelay::upstream=debug`) and `[log] format`.
pub(super) fn validate_log(level: Option<&str>, format: Option<&str>, issues: &mut Vec<ConfigIssue>) {
    if let Some(Err(why)) = level.map(crate::logging::parse_directives) {
        issues.push(issue("log.level", why));
    }
    if let Some(format) = format.filter(|f| crate::logging::Format::parse(f).is_none()) {
        issues.push(issue("log.format", format!("`{format}` is not `logfmt` or `json`")));
    }
}
