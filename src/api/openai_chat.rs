//! The OpenAI chat-completions front door's mappings to and from the internal chat model
//! (`crate::chat`), for requests that go to a provider of another format:
//!
//! - [`parse_request`]: a `/v1/chat/completions` body -> `ChatRequest`, or a [`RequestError`] naming
//!   the offending `param`.
//! - [`ChunkEncoder`]: internal stream events -> `chat.completion.chunk` SSE bytes, `[DONE]` included.
//! - [`encode_response`]: an internal response -> a `chat.completion` body.
//! - [`error_body`], [`error_status`], [`request_error_body`]: OpenAI error envelopes for provider
//!   and request errors; [`ChunkEncoder`] writes the in-band error event.
//!
//! The model the client sees is always the gateway's id, passed in by the caller, and `created` is
//! passed in too (this module reads no clock). It does no I/O and is not used for OpenAI-compatible
//! providers, whose bodies pass through untouched (`proxy::chat`).

mod request;
mod response;
mod stream;

pub use request::parse_request;
pub use response::encode_response;
pub use stream::ChunkEncoder;

use serde::Serialize;

use crate::chat::{ProviderError, ProviderErrorKind, RequestError, Usage};

#[derive(Serialize)]
struct Envelope<'a> {
    error: ErrorObject<'a>,
}

#[derive(Serialize)]
struct ErrorObject<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<&'a str>,
    code: Option<&'static str>,
}

/// OpenAI's `type` and `code` for a provider failure, so SDKs raise the matching exception class.
fn error_type_and_code(kind: ProviderErrorKind) -> (&'static str, Option<&'static str>) {
    use ProviderErrorKind::*;
    match kind {
        InvalidRequest => ("invalid_request_error", None),
        RequestTooLarge => ("invalid_request_error", Some("request_too_large")),
        Authentication => ("authentication_error", Some("upstream_authentication_failed")),
        PermissionDenied => ("permission_error", Some("upstream_permission_denied")),
        NotFound => ("not_found_error", Some("upstream_not_found")),
        Billing => ("insufficient_quota", Some("insufficient_quota")),
        RateLimited => ("rate_limit_error", Some("rate_limit_exceeded")),
        Overloaded => ("server_error", Some("overloaded")),
        Server => ("server_error", None),
        Malformed => ("server_error", Some("upstream_protocol_error")),
    }
}

/// The status to answer a provider failure with, before any response byte went out. Credential,
/// permission, billing and not-found failures concern the gateway's account and configuration, not
/// the client's request, so they are 502; capacity problems keep their retry semantics.
pub fn error_status(error: &ProviderError) -> u16 {
    use ProviderErrorKind::*;
    match error.kind {
        InvalidRequest => 400,
        RequestTooLarge => 413,
        RateLimited => 429,
        Overloaded => 503,
        Authentication | PermissionDenied | NotFound | Billing | Server | Malformed => 502,
    }
}

/// `{"error":{"message","type","param","code"}}` for a provider failure, with the provider's message.
pub fn error_body(error: &ProviderError) -> Vec<u8> {
    let (kind, code) = error_type_and_code(error.kind);
    envelope(ErrorObject { message: &error.message, kind, param: None, code })
}

/// The 400 body for a request that could not be parsed or translated.
pub fn request_error_body(error: &RequestError) -> Vec<u8> {
    let message = error.to_string();
    let code = match error {
        RequestError::Unsupported { .. } => Some("unsupported_parameter"),
        _ => None,
    };
    envelope(ErrorObject { message: &message, kind: "invalid_request_error", param: error.param(), code })
}

fn envelope(error: ErrorObject<'_>) -> Vec<u8> {
    serde_json::to_vec(&Envelope { error }).unwrap_or_default()
}

#[derive(Serialize)]
struct WireUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetails,
    completion_tokens_details: CompletionDetails,
}

#[derive(Serialize)]
struct PromptDetails {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct CompletionDetails {
    reasoning_tokens: u64,
}

/// OpenAI's usage object. Cache writes have no OpenAI field; they stay in `prompt_tokens`.
fn wire_usage(usage: &Usage) -> WireUsage {
    WireUsage {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        total_tokens: usage.total_tokens(),
        prompt_tokens_details: PromptDetails { cached_tokens: usage.cache_read_tokens },
        completion_tokens_details: CompletionDetails { reasoning_tokens: usage.reasoning_tokens },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn provider_errors_render_as_openai_envelopes() {
        let overloaded = ProviderError::new(ProviderErrorKind::Overloaded, "Overloaded");
        let body: Value = serde_json::from_slice(&error_body(&overloaded)).unwrap();
        assert_eq!(
            body,
            json!({"error": {"message": "Overloaded", "type": "server_error", "param": null, "code": "overloaded"}})
        );
        assert_eq!(error_status(&overloaded), 503);
        assert_eq!(error_status(&ProviderError::new(ProviderErrorKind::Authentication, "x")), 502);
        assert_eq!(error_status(&ProviderError::new(ProviderErrorKind::InvalidRequest, "x")), 400);
    }

    #[test]
    fn request_errors_name_their_param() {
        let error = RequestError::unsupported("messages[0].content[1]", "no file ids");
        let body: Value = serde_json::from_slice(&request_error_body(&error)).unwrap();
        assert_eq!(
            body,
            json!({"error": {"message": "no file ids", "type": "invalid_request_error",
                             "param": "messages[0].content[1]", "code": "unsupported_parameter"}})
        );
    }
}
