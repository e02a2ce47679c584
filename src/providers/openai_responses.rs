//! OpenAI's Responses API (`POST /v1/responses`) as a translated provider: the mappings between the
//! internal chat model (`crate::chat`) and Responses bodies, events and errors. OpenAI serves some
//! models (o1-pro, o3-pro, the codex models) only through this API, so a chat request for them must
//! be rewritten here rather than passed through.
//!
//! - [`request_body`]: internal request -> Responses request body (`store: false`, see `request`).
//! - [`StreamTranslator`]: Responses SSE bytes in, internal stream events out, incrementally
//!   ([`EventMapper`] alone for event JSON that arrives without SSE framing).
//! - [`parse_response`]: a non-streaming `response` object -> internal response.
//! - [`classify_error`]: a non-2xx status and body -> a classified provider error. The error
//!   envelope is the chat API's, so this is `openai_chat`'s classifier.
//!
//! It does no I/O and builds no HTTP head (`providers::openai` writes heads; this module only names
//! the path). What the parts share lives here: the usage object, the finish reason of an incomplete
//! response, and the classification of errors reported inside a 200 answer.

mod request;
mod response;
mod stream;

pub use request::{RequestOptions, request_body};
pub use response::parse_response;
pub use stream::{EventMapper, StreamTranslator};

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::chat::{FinishReason, ProviderError, ProviderErrorKind, Usage};
use crate::providers::anthropic::borrow_opt;
use crate::providers::openai_chat::{self, error_detail};

/// The Responses endpoint, relative to a base URL ending in `/v1`.
pub const RESPONSES_PATH: &str = "/responses";

/// Classifies a non-2xx answer. Responses errors use the chat API's envelope
/// (`{"error": {"message", "type", "param", "code"}}`) and statuses, so the chat classifier decides:
/// a 429 `insufficient_quota` is billing and not retried, other 429s and 5xx are.
pub fn classify_error(status: u16, body: &[u8]) -> ProviderError {
    openai_chat::classify_error(status, body)
}

/// The usage object of a `response`, streamed or not.
#[derive(Deserialize, Debug, Clone, Copy, Default)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Deserialize, Debug, Clone, Copy, Default)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Debug, Clone, Copy, Default)]
struct OutputDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    /// Internal usage. `input_tokens` already counts the cached tokens and `output_tokens` the
    /// reasoning ones, which is the internal meaning too.
    fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.input_tokens.unwrap_or(0),
            completion_tokens: self.output_tokens.unwrap_or(0),
            cache_read_tokens: self.input_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
            cache_write_tokens: 0,
            reasoning_tokens: self.output_tokens_details.and_then(|d| d.reasoning_tokens).unwrap_or(0),
        }
    }
}

/// An output item, in a `response`'s `output` or a `response.output_item.*` event. `content` and
/// `summary` stay raw until the type says what they hold (only the body reads them).
#[derive(Deserialize)]
struct WireItem<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    call_id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    arguments: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    encrypted_content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    summary: Option<&'a RawValue>,
}

/// A response's `incomplete_details`.
#[derive(Deserialize, Debug, Default)]
struct IncompleteDetails<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    reason: Option<Cow<'a, str>>,
}

/// Why an incomplete response stopped. `max_output_tokens` is the budget; `content_filter` the
/// filter. Any other (future) reason still means the answer was cut short, which `Length` says
/// better than `Stop`.
fn incomplete_finish(details: Option<&IncompleteDetails<'_>>) -> FinishReason {
    match details.and_then(|d| d.reason.as_deref()) {
        Some("content_filter") => FinishReason::ContentFilter,
        _ => FinishReason::Length,
    }
}

/// The finish reason of a response that ended normally: tool calls win, as in chat completions.
fn completed_finish(has_tool_calls: bool) -> FinishReason {
    if has_tool_calls { FinishReason::ToolCalls } else { FinishReason::Stop }
}

/// The members of an in-band error object that refine its classification.
#[derive(Deserialize)]
struct ErrorHints<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    param: Option<Cow<'a, str>>,
}

/// An error reported inside a 200 answer (`error` event, `response.failed`, a failed body):
/// `raw` is the error object, which has a `code` and a `message` but often no `type` (the `error`
/// event's own `type` is `"error"`). The chat classifier reads the common codes
/// (`insufficient_quota` is billing, `rate_limit_exceeded` a rate limit, an unknown code a server
/// failure). What it would call a server failure is refined here when the object blames the
/// request: it names a `param` (OpenAI names one only for a bad request parameter), or has one of
/// the Responses-only codes about the input (`invalid_prompt`, the `*image*` family). Those are the
/// client's to fix and must not be retried elsewhere.
fn in_band_error(raw: Option<&RawValue>) -> ProviderError {
    let Some(raw) = raw else {
        return ProviderError::new(ProviderErrorKind::Server, "OpenAI reported a failed response without details");
    };
    let mut error = match error_detail(raw) {
        Some(detail) => detail.classify(None),
        None => ProviderError::new(ProviderErrorKind::Server, "OpenAI reported an error without details"),
    };
    if error.kind == ProviderErrorKind::Server && blames_request(raw) {
        error.kind = ProviderErrorKind::InvalidRequest;
    }
    error
}

/// See [`in_band_error`].
fn blames_request(raw: &RawValue) -> bool {
    let Ok(hints) = serde_json::from_str::<ErrorHints<'_>>(raw.get()) else { return false };
    let input_code = hints.code.as_deref().is_some_and(|code| code == "invalid_prompt" || code.contains("image"));
    input_code || hints.param.is_some_and(|param| !param.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn http_errors_use_the_chat_classifier() {
        let quota = classify_error(
            429,
            br#"{"error":{"message":"pay","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        );
        assert_eq!((quota.kind, quota.retryable(), quota.message.as_str()), (ProviderErrorKind::Billing, false, "pay"));
        let limit =
            classify_error(429, br#"{"error":{"message":"slow","type":"tokens","code":"rate_limit_exceeded"}}"#);
        assert_eq!((limit.kind, limit.retryable()), (ProviderErrorKind::RateLimited, true));
        assert_eq!(classify_error(500, b"").kind, ProviderErrorKind::Server);
    }

    #[test]
    fn in_band_errors_by_code() {
        let kind = |json: &str| in_band_error(Some(&raw(json))).kind;
        assert_eq!(kind(r#"{"code":"insufficient_quota","message":"m"}"#), ProviderErrorKind::Billing);
        assert_eq!(kind(r#"{"code":"rate_limit_exceeded","message":"m"}"#), ProviderErrorKind::RateLimited);
        assert_eq!(kind(r#"{"code":"server_error","message":"m"}"#), ProviderErrorKind::Server);
        assert_eq!(kind(r#"{"code":"vector_store_timeout","message":"m"}"#), ProviderErrorKind::Server);
        assert_eq!(kind(r#"{"code":"invalid_prompt","message":"m"}"#), ProviderErrorKind::InvalidRequest);
        assert_eq!(kind(r#"{"code":"image_too_large","message":"m"}"#), ProviderErrorKind::InvalidRequest);
        assert_eq!(kind(r#"{"code":7}"#), ProviderErrorKind::Server);
        let param = r#"{"type":"error","code":"unsupported_parameter","message":"m","param":"max_tokens"}"#;
        assert_eq!(kind(param), ProviderErrorKind::InvalidRequest);
        assert_eq!(kind(r#"{"code":"server_error","message":"m","param":null}"#), ProviderErrorKind::Server);
        assert_eq!(kind(r#"{"code":"rate_limit_exceeded","message":"m","param":"x"}"#), ProviderErrorKind::RateLimited);
        assert_eq!(kind("[]"), ProviderErrorKind::Server);
        let none = in_band_error(None);
        assert_eq!((none.kind, none.retryable()), (ProviderErrorKind::Server, true));
        assert_eq!(in_band_error(Some(&raw(r#"{"code":"server_error","message":"boom"}"#))).message, "boom");
    }

    #[test]
    fn finish_reasons() {
        let details = |reason: &'static str| IncompleteDetails { reason: Some(Cow::Borrowed(reason)) };
        assert_eq!(incomplete_finish(Some(&details("max_output_tokens"))), FinishReason::Length);
        assert_eq!(incomplete_finish(Some(&details("content_filter"))), FinishReason::ContentFilter);
        assert_eq!(incomplete_finish(Some(&details("something_new"))), FinishReason::Length);
        assert_eq!(incomplete_finish(None), FinishReason::Length);
        assert_eq!(completed_finish(true), FinishReason::ToolCalls);
        assert_eq!(completed_finish(false), FinishReason::Stop);
    }

    #[test]
    fn usage_counts_cached_and_reasoning_tokens_inside_the_totals() {
        let usage: WireUsage = serde_json::from_str(
            r#"{"input_tokens":53,"input_tokens_details":{"cached_tokens":5},"output_tokens":469,
                "output_tokens_details":{"reasoning_tokens":448},"total_tokens":522}"#,
        )
        .unwrap();
        assert_eq!(
            usage.usage(),
            Usage {
                prompt_tokens: 53,
                completion_tokens: 469,
                cache_read_tokens: 5,
                cache_write_tokens: 0,
                reasoning_tokens: 448
            }
        );
        assert_eq!(usage.usage().total_tokens(), 522);
    }
}
