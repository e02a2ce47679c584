//! One history row: what the store keeps of a finished call, and how its error is classed (the
//! client's fault or a provider's). Built on the worker; owns no I/O.

use crate::health::Outcome;
use crate::metrics::CallRecord;

/// Longest client-chosen text kept (user, requested model, one tag), in bytes; longer is cut.
pub const MAX_TEXT: usize = 128;
/// Tags kept per call at most.
pub const MAX_TAGS: usize = 16;

/// A finished call as stored. Text a client chose (user, tags, requested model) is cut to
/// [`MAX_TEXT`]; none of it ever becomes a metric label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// When the call ended (its answer written), Unix milliseconds.
    pub ts_ms: u64,
    pub request_id: String,
    pub key: String,
    pub user: String,
    /// Tags joined with `,` (a tag's own commas become `;`).
    pub tags: String,
    pub door: &'static str,
    /// The model as the client named it.
    pub model: String,
    /// The gateway model that served, or `(unknown)`.
    pub served_model: String,
    /// The provider that served; empty when none did.
    pub provider: String,
    pub attempts: u32,
    pub status: u16,
    pub error_class: &'static str,
    /// prompt, completion, cache read, cache write, reasoning.
    pub tokens: [u64; 5],
    pub cost_micros: u64,
    pub duration_us: u64,
    pub ttfb_us: Option<u64>,
    pub stream: bool,
}

/// Cuts `text` to at most `max` bytes on a character boundary (the access log's rule, shared).
pub use crate::metrics::access_log::cut;

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Row {
    pub fn from_call(call: &CallRecord, ts_ms: u64) -> Row {
        let tags: Vec<String> = call.tags.iter().take(MAX_TAGS).map(|t| cut(t, MAX_TEXT).replace(',', ";")).collect();
        let tokens = call.usage.map_or([0; 5], |u| {
            [u.prompt_tokens, u.completion_tokens, u.cache_read_tokens, u.cache_write_tokens, u.reasoning_tokens]
        });
        Row {
            ts_ms,
            request_id: cut(&call.request_id, MAX_TEXT).to_string(),
            key: call.key.clone(),
            user: cut(&call.user, MAX_TEXT).to_string(),
            tags: tags.join(","),
            door: call.front_door,
            model: cut(&call.model, MAX_TEXT).to_string(),
            served_model: cut(&call.served_model, MAX_TEXT).to_string(),
            provider: call.provider.to_string(),
            attempts: u32::try_from(call.attempts.len()).unwrap_or(u32::MAX),
            status: call.status,
            error_class: error_class(call),
            tokens,
            cost_micros: call.cost_micros,
            duration_us: micros(call.duration),
            ttfb_us: call.ttfb.map(micros),
            stream: call.stream,
        }
    }
}

/// Whose fault a failed call was: `ok` (below 400), `client` (the gateway refused the request
/// itself: bad body, key, route, size, its own limits; or the client left, 499; or a provider
/// rejected the request as malformed), or `provider` (a provider failed, was rate limited, or none
/// could serve).
pub fn error_class(call: &CallRecord) -> &'static str {
    match call.status {
        0..=399 => "ok",
        499 => "client",
        400..=498 if call.attempts.is_empty() => "client",
        429 => "provider",
        400..=498 => match call.attempts.last().map(|a| a.outcome) {
            Some(
                Outcome::RateLimited
                | Outcome::ServerError
                | Outcome::Timeout
                | Outcome::ConnectError
                | Outcome::StreamError,
            ) => "provider",
            _ => "client",
        },
        _ => "provider",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::AttemptRecord;

    fn attempt(outcome: Outcome, status: u16) -> AttemptRecord {
        AttemptRecord { provider: "p".into(), outcome, status: Some(status), start_unix_ms: 0, end_unix_ms: 0 }
    }

    #[test]
    fn errors_are_classed_by_whose_fault_they_were() {
        let call = |status, attempts: Vec<AttemptRecord>| CallRecord {
            status,
            attempts: attempts.into(),
            ..CallRecord::default()
        };
        assert_eq!(error_class(&call(200, vec![attempt(Outcome::Success, 200)])), "ok");
        assert_eq!(error_class(&call(404, vec![])), "client", "unknown route or model");
        assert_eq!(error_class(&call(401, vec![])), "client");
        assert_eq!(error_class(&call(429, vec![])), "client", "the gateway's own limit");
        assert_eq!(error_class(&call(413, vec![])), "client");
        assert_eq!(error_class(&call(499, vec![attempt(Outcome::Success, 200)])), "client");
        assert_eq!(error_class(&call(429, vec![attempt(Outcome::RateLimited, 429)])), "provider");
        assert_eq!(error_class(&call(400, vec![attempt(Outcome::ClientError, 400)])), "client");
        assert_eq!(error_class(&call(502, vec![attempt(Outcome::ServerError, 500)])), "provider");
        assert_eq!(error_class(&call(503, vec![])), "provider", "no endpoint could serve");
    }

    #[test]
    fn client_text_is_cut_on_a_character_boundary_and_tags_keep_their_count() {
        let call = CallRecord {
            user: "é".repeat(100),
            tags: (0..40).map(|i| format!("t{i},x")).collect(),
            ..CallRecord::default()
        };
        let row = Row::from_call(&call, 1);
        assert_eq!(row.user.len(), MAX_TEXT);
        assert_eq!(row.tags.split(',').count(), MAX_TAGS);
        assert!(row.tags.starts_with("t0;x,t1;x"), "{}", row.tags);
    }
}
