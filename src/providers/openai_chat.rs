//! OpenAI chat completions as a translated provider: the mappings between the internal chat model
//! (`crate::chat`) and `/v1/chat/completions`, for clients that do not speak OpenAI themselves (the
//! Anthropic front door). OpenAI-format clients keep the `openai` kind's pass-through
//! (`providers::openai`), which also writes the request head for the bodies built here.
//!
//! - [`request_body`]: internal request -> chat-completions body (the inverse of
//!   `api::openai_chat::parse_request`), with `stream_options.include_usage` on for every stream.
//! - [`StreamTranslator`]: `chat.completion.chunk` SSE bytes in, internal stream events out,
//!   incrementally ([`ChunkMapper`] alone for chunk JSON that arrives without SSE framing).
//! - [`parse_response`]: a `chat.completion` body -> internal response.
//! - [`classify_error`]: a non-2xx status and body -> a classified provider error.
//!
//! It does no I/O and builds no HTTP head. It covers OpenAI-compatible servers too, so it reads the
//! dialects they answer in: `reasoning_content` / `reasoning` deltas, a bare string `error`, vLLM's
//! top-level `message`, and an array wrapping the error envelope (Gemini's compatibility layer).

mod request;
mod response;
mod stream;

pub(crate) use request::reasoning_effort;
pub use request::{RequestOptions, request_body};
pub use response::parse_response;
pub use stream::{ChunkMapper, StreamTranslator};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::chat::{FinishReason, ProviderError, ProviderErrorKind};

/// The chat-completions endpoint, relative to a base URL ending in `/v1`.
pub const CHAT_COMPLETIONS_PATH: &str = "/chat/completions";

/// An error object as OpenAI and the compatible servers write it. Every member is optional and
/// loosely typed: `code` is a string at OpenAI and a number at vLLM.
#[derive(Deserialize, Default)]
pub(crate) struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    code: Option<Box<RawValue>>,
}

/// The members an error body may carry at its top level.
#[derive(Deserialize)]
struct ErrorEnvelope {
    #[serde(default)]
    error: Option<Box<RawValue>>,
    /// vLLM and some others put the message at the top level.
    #[serde(default)]
    message: Option<String>,
}

impl ErrorDetail {
    /// The `code` as text, whether it was sent as a string or a number.
    fn code(&self) -> Option<String> {
        let raw = self.code.as_ref()?.get();
        serde_json::from_str::<String>(raw).ok().or_else(|| (raw != "null").then(|| raw.to_owned()))
    }

    /// The error as a provider error. `status_kind` is the HTTP status's kind, which decides
    /// unless the code says billing; `None` (an error inside a 200 stream or body) lets the type and
    /// code decide.
    pub(crate) fn classify(&self, status_kind: Option<ProviderErrorKind>) -> ProviderError {
        let code = self.code();
        let kind = refine_kind(status_kind, self.kind.as_deref(), code.as_deref());
        let message = match self.message.as_deref() {
            Some(message) if !message.is_empty() => message.to_owned(),
            _ => {
                let what = code.as_deref().or(self.kind.as_deref()).unwrap_or("an error");
                format!("OpenAI reported {what} without a message")
            }
        };
        ProviderError::new(kind, message)
    }
}

/// Reads an `error` member: an object, or a bare message string (Ollama).
pub(crate) fn error_detail(raw: &RawValue) -> Option<ErrorDetail> {
    if let Ok(detail) = serde_json::from_str::<ErrorDetail>(raw.get()) {
        return Some(detail);
    }
    let message = serde_json::from_str::<String>(raw.get()).ok()?;
    Some(ErrorDetail { message: Some(message), ..ErrorDetail::default() })
}

/// Classifies a non-2xx answer. The status decides the kind, since OpenAI's `type` is coarse (a
/// bad key is an `invalid_request_error` with 401); the code refines it where the status is
/// ambiguous: a 429 `insufficient_quota` is billing, not a rate limit, and must not be retried.
pub fn classify_error(status: u16, body: &[u8]) -> ProviderError {
    let fallback = kind_for_status(status);
    match body_detail(body) {
        Some(detail) => detail.classify(Some(fallback)),
        None => ProviderError::new(fallback, format!("OpenAI answered HTTP {status} without an error body")),
    }
}

/// The error object of a body: `{"error": ...}`, `[{"error": ...}]` or `{"message": ...}`.
fn body_detail(body: &[u8]) -> Option<ErrorDetail> {
    // serde reads a struct from an array too, so the shape is chosen by the first byte.
    let envelope = match body.trim_ascii_start().first() {
        Some(b'{') => serde_json::from_slice::<ErrorEnvelope>(body).ok()?,
        Some(b'[') => serde_json::from_slice::<[ErrorEnvelope; 1]>(body).ok()?.into_iter().next()?,
        _ => return None,
    };
    match (envelope.error, envelope.message) {
        (Some(raw), _) => error_detail(&raw),
        (None, Some(message)) => Some(ErrorDetail { message: Some(message), ..ErrorDetail::default() }),
        (None, None) => None,
    }
}

/// The status's kind before the body refines it.
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

/// The kind an error object names. With a status, only `insufficient_quota` overrides it (a 429
/// that is billing, not a rate limit, and must not be retried); OpenAI's `type` is too coarse to
/// beat the status (a bad key is an `invalid_request_error` with 401). Without one, the type and
/// code are all there is, and an unknown error is a server failure.
fn refine_kind(status_kind: Option<ProviderErrorKind>, kind: Option<&str>, code: Option<&str>) -> ProviderErrorKind {
    let named = |names: &[&str]| names.iter().any(|name| kind == Some(*name) || code == Some(*name));
    if named(&["insufficient_quota"]) {
        return ProviderErrorKind::Billing;
    }
    if let Some(status_kind) = status_kind {
        return status_kind;
    }
    if named(&["rate_limit_exceeded", "rate_limit_error", "tokens", "requests"]) {
        ProviderErrorKind::RateLimited
    } else if named(&["invalid_request_error", "context_length_exceeded"]) {
        ProviderErrorKind::InvalidRequest
    } else if named(&["model_not_found"]) {
        ProviderErrorKind::NotFound
    } else if named(&["authentication_error", "invalid_api_key"]) {
        ProviderErrorKind::Authentication
    } else {
        ProviderErrorKind::Server
    }
}

/// OpenAI's `finish_reason` in the internal vocabulary (which is OpenAI's). The legacy
/// `function_call` is a tool call; unknown future reasons end the answer normally rather than
/// failing a good answer.
fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ERRORS: &str = crate::fixture_path!("openai/errors/");

    fn classify_fixture(status: u16, name: &str) -> ProviderError {
        let body = std::fs::read(format!("{ERRORS}{name}")).expect("fixture present");
        classify_error(status, &body)
    }

    #[test]
    fn recorded_error_bodies_are_classified_with_their_message() {
        use ProviderErrorKind::*;
        let cases = [
            (400, "openai-error-400-context-length-exceeded.json", InvalidRequest, "This model's maximum context"),
            (400, "openai-error-400-responses-invalid-param.json", InvalidRequest, "Invalid 'temperature'"),
            (400, "openai-error-400-unsupported-parameter.json", InvalidRequest, "Unsupported parameter"),
            (400, "openai-error-400-unsupported-value.json", InvalidRequest, "Unsupported value"),
            (401, "openai-error-401-invalid-api-key.json", Authentication, "Incorrect API key provided"),
            (404, "openai-error-404-model-not-found.json", NotFound, "The model `gpt-5.2-proo` does not exist"),
            (429, "openai-error-429-insufficient-quota.json", Billing, "You exceeded your current quota"),
            (429, "openai-error-429-rate-limit-tpm.json", RateLimited, "Rate limit reached for gpt-4"),
        ];
        for (status, name, kind, message) in cases {
            let error = classify_fixture(status, name);
            assert_eq!(error.kind, kind, "{name}");
            assert!(error.message.starts_with(message), "{name}: {}", error.message);
        }
        assert!(!classify_fixture(429, "openai-error-429-insufficient-quota.json").retryable());
        assert!(classify_fixture(429, "openai-error-429-rate-limit-tpm.json").retryable());
    }

    #[test]
    fn compatible_servers_error_dialects() {
        let vllm = classify_error(400, br#"{"object":"error","message":"bad","type":"BadRequestError","code":400}"#);
        assert_eq!(vllm, ProviderError::new(ProviderErrorKind::InvalidRequest, "bad"));
        let ollama = classify_error(404, br#"{"error":"model \"x\" not found"}"#);
        assert_eq!(ollama, ProviderError::new(ProviderErrorKind::NotFound, "model \"x\" not found"));
        let gemini =
            classify_error(429, br#"[{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}]"#);
        assert_eq!(gemini, ProviderError::new(ProviderErrorKind::RateLimited, "quota"));
        let empty = classify_error(500, br#"{"error":{"type":"server_error","message":""}}"#);
        assert_eq!(
            empty,
            ProviderError::new(ProviderErrorKind::Server, "OpenAI reported server_error without a message")
        );
    }

    #[test]
    fn bodies_without_an_error_fall_back_to_the_status() {
        let html = classify_error(502, b"<html>Bad Gateway</html>");
        assert_eq!(
            html,
            ProviderError::new(ProviderErrorKind::Server, "OpenAI answered HTTP 502 without an error body")
        );
        assert_eq!(classify_error(503, b"").kind, ProviderErrorKind::Overloaded);
        assert_eq!(classify_error(403, b"{}").kind, ProviderErrorKind::PermissionDenied);
        assert_eq!(classify_error(418, b"null").kind, ProviderErrorKind::InvalidRequest);
        assert_eq!(classify_error(200, b"{}").kind, ProviderErrorKind::Malformed);
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish_reason("stop"), FinishReason::Stop);
        assert_eq!(finish_reason("length"), FinishReason::Length);
        assert_eq!(finish_reason("tool_calls"), FinishReason::ToolCalls);
        assert_eq!(finish_reason("function_call"), FinishReason::ToolCalls);
        assert_eq!(finish_reason("content_filter"), FinishReason::ContentFilter);
        assert_eq!(finish_reason("eos"), FinishReason::Stop);
    }
}
