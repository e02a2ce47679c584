//! `[governance]` and the validation of `[[keys]]` limits: where key state is kept (local file, Redis)
//! and what each key's limits may be.
//!
//! Owns parsing and checking only. Enforcement is the `governance` module's; the key secret's resolution is
//! `config::resolve`.

use serde::Deserialize;

use super::{ConfigIssue, KeyConfig, UnknownKeys, issue};

/// `[governance]`: how virtual-key limits are kept and shared.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct GovernanceConfig {
    /// Where spend and counters are snapshotted so a restart keeps them; none keeps them in memory.
    pub state_file: Option<std::path::PathBuf>,
    /// How often the state file is rewritten (and once more on shutdown).
    pub snapshot_interval_ms: u64,
    /// `redis://HOST:PORT`: share counters, spend and key records with other instances.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key Corelay writes, so several gateways can share one Redis.
    pub redis_prefix: String,
    /// A Redis command unanswered this long counts as Redis being unreachable.
    pub redis_timeout_ms: u64,
    /// While Redis is unreachable, each instance enforces this share of every limit on its own
    /// (1 / the number of instances keeps the sum of all instances within the limit).
    pub local_share: f64,
    /// Tokens reserved for a request that names no `max_tokens`.
    pub default_estimated_tokens: u64,
    #[serde(flatten)]
    pub(super) unknown: UnknownKeys,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        GovernanceConfig {
            state_file: None,
            snapshot_interval_ms: 5_000,
            redis_url: None,
            redis_prefix: "corelay".into(),
            redis_timeout_ms: 250,
            local_share: 1.0,
            default_estimated_tokens: 4_096,
            unknown: UnknownKeys::new(),
        }
    }
}

impl GovernanceConfig {
    pub(super) fn validate(&self, issues: &mut Vec<ConfigIssue>) {
        if self.snapshot_interval_ms == 0 {
            issues.push(issue("governance.snapshot_interval_ms", "must be greater than 0"));
        }
        if self.redis_timeout_ms == 0 {
            issues.push(issue("governance.redis_timeout_ms", "must be greater than 0"));
        }
        if !(self.local_share > 0.0 && self.local_share <= 1.0) {
            issues.push(issue("governance.local_share", "must be greater than 0 and at most 1"));
        }
        if let Some(url) = &self.redis_url
            && let Err(why) = parse_redis_url(url)
        {
            issues.push(issue("governance.redis_url", format!("`{url}`: {why}")));
        }
        if self.redis_prefix.is_empty() || self.redis_prefix.contains(char::is_whitespace) {
            issues.push(issue("governance.redis_prefix", "must be non-empty and contain no whitespace"));
        }
    }
}

/// `redis://HOST:PORT` (port defaults to 6379) as `HOST:PORT`. No auth, TLS or database number yet.
pub fn parse_redis_url(url: &str) -> Result<String, &'static str> {
    let rest = url.strip_prefix("redis://").ok_or("must start with redis://")?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '@', '?']) {
        return Err("expected redis://HOST:PORT (no user, database or options)");
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(authority.to_string()),
        Some(_) => Err("bad port"),
        None => Ok(format!("{authority}:6379")),
    }
}

pub(super) fn validate_sha256_hex(at: &str, hash: &str, issues: &mut Vec<ConfigIssue>) {
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        issues.push(issue(at, "must be 64 hex digits (a SHA-256)"));
    }
}

pub(super) fn validate_key_limits(at: &str, key: &KeyConfig, issues: &mut Vec<ConfigIssue>) {
    let positive = [
        ("budget_micros_per_day", key.budget_micros_per_day),
        ("budget_micros_per_month", key.budget_micros_per_month),
        ("budget_micros_total", key.budget_micros_total),
        ("rpm", key.rpm),
        ("tpm", key.tpm),
        ("max_concurrent", key.max_concurrent),
    ];
    for (name, value) in positive {
        // Counters keep 40 bits next to their window: about 1.1e12, over a million dollars a day.
        if value.is_some_and(|v| v == 0 || v >= 1 << 40) {
            issues.push(issue(&format!("{at}.{name}"), "must be between 1 and 2^40 - 1"));
        }
    }
    if let Some(expiry) = &key.expires_at
        && expiry_unix_seconds(expiry).is_none()
    {
        issues.push(issue(&format!("{at}.expires_at"), "needs a date, and a UTC offset when it has a time"));
    }
    for pattern in key.models.iter().flatten() {
        if !is_model_pattern(pattern) {
            issues.push(issue(
                &format!("{at}.models"),
                format!("`{pattern}`: use an exact model id or `creator/*` (no other wildcards)"),
            ));
        }
    }
}

/// An exact id (no `*`) or `creator/*`.
fn is_model_pattern(pattern: &str) -> bool {
    match pattern.strip_suffix("/*") {
        Some(creator) => !creator.is_empty() && !creator.contains(['*', '/']),
        None => !pattern.is_empty() && !pattern.contains('*'),
    }
}

/// A TOML date or offset date-time as Unix seconds; a bare date is midnight UTC. A local time without
/// an offset is ambiguous across instances in different zones, so it is refused (`None`).
pub fn expiry_unix_seconds(value: &toml::value::Datetime) -> Option<u64> {
    let date = value.date?;
    let days = days_from_civil(i64::from(date.year), u32::from(date.month), u32::from(date.day));
    let (seconds_of_day, offset_minutes) = match (value.time, value.offset) {
        (None, _) => (0, 0),
        (Some(_), None) => return None,
        (Some(t), Some(offset)) => {
            let minutes = match offset {
                toml::value::Offset::Z => 0,
                toml::value::Offset::Custom { minutes } => i64::from(minutes),
            };
            (i64::from(t.hour) * 3600 + i64::from(t.minute) * 60 + i64::from(t.second), minutes)
        }
    };
    u64::try_from(days * 86_400 + seconds_of_day - offset_minutes * 60).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's civil-days algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let m = i64::from(month);
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 12, 6), 20_793);
    }

    #[test]
    fn expiry_accepts_dates_and_offset_times_only() {
        let parse = |s: &str| s.parse::<toml::value::Datetime>().unwrap();
        assert_eq!(expiry_unix_seconds(&parse("2026-12-06")), Some(20_793 * 86_400));
        assert_eq!(expiry_unix_seconds(&parse("2026-12-06T01:00:00+01:00")), Some(20_793 * 86_400));
        assert_eq!(expiry_unix_seconds(&parse("2026-12-06T01:00:00")), None);
    }

    #[test]
    fn model_patterns_are_exact_or_creator_globs() {
        assert!(is_model_pattern("openai/gpt-4o"));
        assert!(is_model_pattern("openai/*"));
        assert!(!is_model_pattern("*"));
        assert!(!is_model_pattern("openai/gpt-*"));
        assert!(!is_model_pattern("a/b/*"));
    }

    #[test]
    fn redis_urls_are_host_and_port() {
        assert_eq!(parse_redis_url("redis://127.0.0.1:7000").unwrap(), "127.0.0.1:7000");
        assert_eq!(parse_redis_url("redis://cache").unwrap(), "cache:6379");
        assert!(parse_redis_url("http://x:1").is_err());
        assert!(parse_redis_url("redis://u:p@x:1").is_err());
    }
}
