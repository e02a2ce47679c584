//! The `anthropic` provider kind: the Messages API mappings between the internal chat model
//! (`crate::chat`) and Anthropic's wire format, served by api.anthropic.com and, with a different body
//! dialect, by Vertex AI (`rawPredict`) and Bedrock (`InvokeModel`).
//!
//! - [`request_body`] and [`request_headers`]: internal request -> request body and headers.
//! - [`StreamTranslator`]: SSE bytes in, internal stream events out, incrementally
//!   ([`EventMapper`] alone for event JSON that arrives without SSE framing, as in Bedrock frames).
//! - [`parse_response`]: a non-streaming body -> internal response.
//! - [`classify_error`]: a non-2xx status and body -> a classified provider error.
//!
//! It does no I/O and builds no HTTP head: the proxy writes the head from the returned headers, and
//! Vertex/Bedrock authentication (OAuth token, SigV4) belongs to those providers' modules.

mod request;
mod response;
mod stream;

pub use request::{Dialect, RequestOptions, effort_budget_tokens, request_body};
pub use response::parse_response;
pub use stream::{EventMapper, StreamTranslator};

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

use crate::chat::{FinishReason, ProviderError, ProviderErrorKind};

/// The API version this module speaks, sent as `anthropic-version`.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// The body's `anthropic_version` on Vertex AI.
pub const VERTEX_ANTHROPIC_VERSION: &str = "vertex-2023-10-16";
/// The body's `anthropic_version` on Bedrock `InvokeModel`.
pub const BEDROCK_ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";
/// The Messages endpoint, relative to a base URL ending in `/v1` (as the `openai` kind's does).
pub const MESSAGES_PATH: &str = "/messages";
/// Token counting (`POST /v1/messages/count_tokens`), relative to the same base URL.
pub const COUNT_TOKENS_PATH: &str = "/messages/count_tokens";

/// The headers api.anthropic.com needs, as (lowercase name, value) pairs for the proxy's head
/// writer. Built fresh for every request so no client header can reach the provider.
pub fn request_headers(api_key: &str, stream: bool) -> Vec<(&'static str, Vec<u8>)> {
    let accept: &[u8] = if stream { b"text/event-stream" } else { b"application/json" };
    vec![
        ("content-type", b"application/json".to_vec()),
        ("accept", accept.to_vec()),
        ("x-api-key", api_key.as_bytes().to_vec()),
        ("anthropic-version", ANTHROPIC_VERSION.as_bytes().to_vec()),
    ]
}

/// The Vertex AI path of an Anthropic model (`streamRawPredict` for streams), relative to the
/// regional host (`https://{location}-aiplatform.googleapis.com`, or `aiplatform.googleapis.com`
/// for `global`).
pub fn vertex_path(project: &str, location: &str, model: &str, stream: bool) -> String {
    let method = if stream { "streamRawPredict" } else { "rawPredict" };
    format!("/v1/projects/{project}/locations/{location}/publishers/anthropic/models/{model}:{method}")
}

#[derive(Deserialize)]
struct ErrorEnvelope<'a> {
    #[serde(borrow)]
    error: Option<ErrorDetail<'a>>,
}

/// Anthropic's `{"type": ..., "message": ...}` error object, in bodies and in stream `error` events.
#[derive(Deserialize)]
pub(crate) struct ErrorDetail<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "borrow_opt")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    message: Option<Cow<'a, str>>,
}

impl ErrorDetail<'_> {
    /// The error as a provider error; `fallback` decides the kind when the type is unknown.
    pub(crate) fn classify(&self, fallback: ProviderErrorKind) -> ProviderError {
        let kind = self.kind.as_deref().and_then(kind_for_type).unwrap_or(fallback);
        let message = match self.message.as_deref() {
            Some(message) if !message.is_empty() => message.to_owned(),
            _ => format!("Anthropic reported {} without a message", self.kind.as_deref().unwrap_or("an error")),
        };
        ProviderError::new(kind, message)
    }
}

/// Classifies a non-2xx answer. The error `type` in the body decides when it is one Anthropic
/// documents (it is more precise than the status: 529 and 500 differ only by it); the status decides
/// otherwise, e.g. for an HTML page from a proxy in front of the API.
pub fn classify_error(status: u16, body: &[u8]) -> ProviderError {
    let fallback = kind_for_status(status);
    match serde_json::from_slice::<ErrorEnvelope<'_>>(body) {
        Ok(ErrorEnvelope { error: Some(detail) }) => detail.classify(fallback),
        _ => ProviderError::new(fallback, format!("Anthropic answered HTTP {status} without an error body")),
    }
}

/// Deserializes an optional string borrowed from the input when it has no escapes. serde borrows a
/// `#[serde(borrow)] Cow<str>` field, but not one wrapped in `Option`: without this every optional
/// text of every stream event would be copied once more.
pub(crate) fn borrow_opt<'de: 'a, 'a, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'de>>::deserialize(deserializer)?.map(|borrowed| borrowed.0))
}

/// Anthropic's documented error types (docs.claude.com/en/api/errors).
fn kind_for_type(error_type: &str) -> Option<ProviderErrorKind> {
    Some(match error_type {
        "invalid_request_error" => ProviderErrorKind::InvalidRequest,
        "authentication_error" => ProviderErrorKind::Authentication,
        "billing_error" => ProviderErrorKind::Billing,
        "permission_error" => ProviderErrorKind::PermissionDenied,
        "not_found_error" => ProviderErrorKind::NotFound,
        "request_too_large" => ProviderErrorKind::RequestTooLarge,
        "rate_limit_error" => ProviderErrorKind::RateLimited,
        "api_error" | "timeout_error" => ProviderErrorKind::Server,
        "overloaded_error" => ProviderErrorKind::Overloaded,
        _ => return None,
    })
}

fn kind_for_status(status: u16) -> ProviderErrorKind {
    match status {
        401 => ProviderErrorKind::Authentication,
        402 => ProviderErrorKind::Billing,
        403 => ProviderErrorKind::PermissionDenied,
        404 => ProviderErrorKind::NotFound,
        413 => ProviderErrorKind::RequestTooLarge,
        429 => ProviderErrorKind::RateLimited,
        503 | 529 => ProviderErrorKind::Overloaded,
        400..=499 => ProviderErrorKind::InvalidRequest,
        500..=599 => ProviderErrorKind::Server,
        // A success or redirect handed in as an error is not an answer this module understands.
        _ => ProviderErrorKind::Malformed,
    }
}

/// Anthropic's `stop_reason` in OpenAI's vocabulary. `pause_turn` (a server tool paused a long
/// turn) ends this answer normally; unknown future reasons do too, rather than failing a good answer.
fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ERRORS: &str = crate::fixture_path!("anthropic/errors/");

    fn classify_fixture(status: u16, name: &str) -> ProviderError {
        let body = std::fs::read(format!("{ERRORS}{name}")).expect("fixture present");
        classify_error(status, &body)
    }

    #[test]
    fn recorded_error_bodies_are_classified_with_their_message() {
        use ProviderErrorKind::*;
        let cases = [
            (
                400,
                "anthropic-error-400-invalid-request.json",
                InvalidRequest,
                "This model does not support effort level 'xhigh'. Supported levels: high, low, max, medium.",
            ),
            (401, "anthropic-error-401-authentication-error.json", Authentication, "invalid x-api-key"),
            (404, "anthropic-error-404-not-found.json", NotFound, "model: claude-sonet-4-5"),
            (
                413,
                "anthropic-error-413-request-too-large.RECONSTRUCTED.json",
                RequestTooLarge,
                "Request exceeds the maximum allowed number of bytes.",
            ),
            (
                429,
                "anthropic-error-429-rate-limit-error.RECONSTRUCTED.json",
                RateLimited,
                "This request would exceed your account's rate limit. Please try again later.",
            ),
            (500, "anthropic-error-500-api-error.RECONSTRUCTED.json", Server, "Internal server error"),
            (529, "anthropic-error-529-overloaded-error.RECONSTRUCTED.json", Overloaded, "Overloaded"),
        ];
        for (status, name, kind, message) in cases {
            assert_eq!(classify_fixture(status, name), ProviderError::new(kind, message), "{name}");
        }
    }

    #[test]
    fn retryability_follows_the_kind() {
        let retryable = |status, name| classify_fixture(status, name).retryable();
        assert!(!retryable(400, "anthropic-error-400-invalid-request.json"));
        assert!(!retryable(401, "anthropic-error-401-authentication-error.json"));
        assert!(!retryable(404, "anthropic-error-404-not-found.json"));
        assert!(!retryable(413, "anthropic-error-413-request-too-large.RECONSTRUCTED.json"));
        assert!(retryable(429, "anthropic-error-429-rate-limit-error.RECONSTRUCTED.json"));
        assert!(retryable(500, "anthropic-error-500-api-error.RECONSTRUCTED.json"));
        assert!(retryable(529, "anthropic-error-529-overloaded-error.RECONSTRUCTED.json"));
        assert!(classify_fixture(400, "anthropic-error-400-invalid-request.json").kind.is_client_fault());
    }

    #[test]
    fn bodies_without_an_error_object_fall_back_to_the_status() {
        let html = classify_error(502, b"<html>Bad Gateway</html>");
        assert_eq!(html.kind, ProviderErrorKind::Server);
        assert_eq!(html.message, "Anthropic answered HTTP 502 without an error body");
        assert_eq!(classify_error(529, b"").kind, ProviderErrorKind::Overloaded);
        assert_eq!(classify_error(403, b"{}").kind, ProviderErrorKind::PermissionDenied);
        assert_eq!(classify_error(418, b"null").kind, ProviderErrorKind::InvalidRequest);
        let unknown = classify_error(500, br#"{"type":"error","error":{"type":"new_error"}}"#);
        assert_eq!(
            unknown,
            ProviderError::new(ProviderErrorKind::Server, "Anthropic reported new_error without a message")
        );
    }

    #[test]
    fn headers_carry_the_key_and_version() {
        let headers = request_headers("sk-ant-test", true);
        let find = |name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_slice());
        assert_eq!(find("x-api-key"), Some(&b"sk-ant-test"[..]));
        assert_eq!(find("anthropic-version"), Some(&b"2023-06-01"[..]));
        assert_eq!(find("content-type"), Some(&b"application/json"[..]));
        assert_eq!(find("accept"), Some(&b"text/event-stream"[..]));
        assert_eq!(request_headers("k", false)[1].1, b"application/json");
    }

    #[test]
    fn vertex_paths() {
        assert_eq!(
            vertex_path("proj", "us-east5", "claude-sonnet-4@20250514", true),
            "/v1/projects/proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"
        );
        assert!(vertex_path("p", "global", "m", false).ends_with("/models/m:rawPredict"));
    }
}
