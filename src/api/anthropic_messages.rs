//! The Anthropic Messages front door's mappings to and from the internal chat model
//! (`crate::chat`), so Anthropic-format clients (the Anthropic SDKs, Claude Code) can use
//! `POST /v1/messages` whatever provider serves the model:
//!
//! - [`parse_request`]: a Messages body -> `ChatRequest`, or a [`RequestError`] naming the offending
//!   `param` in Anthropic's dotted form (`messages.1.content.0.source`).
//! - [`StreamEncoder`]: internal stream events -> Anthropic SSE bytes, as api.anthropic.com sends them.
//! - [`encode_response`]: an internal response -> a `message` body.
//! - [`error_status`], [`error_body`], [`request_error_body`], [`gateway_error_body`],
//!   [`gateway_error_event`]: Anthropic error envelopes (`{"type":"error","error":{"type","message"}}`)
//!   and the statuses to send them with; [`StreamEncoder`] writes the in-band `error` event.
//!
//! The model the client sees is always the gateway's id, passed in by the caller. It does no I/O,
//! reads no headers (`x-api-key`, `anthropic-version`, `anthropic-beta` are the proxy's) and knows
//! nothing of routing.
//!
//! Statuses: the client's own mistakes and the provider's capacity problems keep Anthropic's
//! statuses and types (400, 413, 429, 529 `overloaded_error`, 500 `api_error`), so the SDKs raise
//! and retry as they would against Anthropic. Failures of the gateway's own provider account
//! (credential, permission, billing, a model the provider does not know) and broken provider answers
//! are 502 `api_error`: reporting them as `authentication_error` would tell the client that *its*
//! key is wrong.

mod request;
mod response;
mod stream;

pub use request::parse_request;
pub use response::encode_response;
pub use stream::StreamEncoder;

use serde::Serialize;

use crate::chat::{ProviderError, ProviderErrorKind, RequestError, Usage};
use crate::error::{ErrorKind, GatewayError};

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorObject<'a>,
}

#[derive(Serialize)]
struct ErrorObject<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
}

/// Anthropic's error `type` for a provider failure (docs.claude.com/en/api/errors).
fn provider_error_type(kind: ProviderErrorKind) -> &'static str {
    use ProviderErrorKind::*;
    match kind {
        InvalidRequest => "invalid_request_error",
        RequestTooLarge => "request_too_large",
        RateLimited => "rate_limit_error",
        Overloaded => "overloaded_error",
        Authentication | PermissionDenied | NotFound | Billing | Server | Malformed => "api_error",
    }
}

/// The status to answer a provider failure with, before any response byte went out (see the
/// module doc for why account failures are 502).
pub fn error_status(error: &ProviderError) -> u16 {
    use ProviderErrorKind::*;
    match error.kind {
        InvalidRequest => 400,
        RequestTooLarge => 413,
        RateLimited => 429,
        Overloaded => 529,
        Server => 500,
        Authentication | PermissionDenied | NotFound | Billing | Malformed => 502,
    }
}

/// The error body for a provider failure, with the provider's message.
pub fn error_body(error: &ProviderError) -> Vec<u8> {
    envelope(provider_error_type(error.kind), &error.message)
}

/// The 400 body for a request that could not be parsed or translated. Anthropic has no `param`
/// member; its messages start with the field (`max_tokens: Field required`), and so do these.
pub fn request_error_body(error: &RequestError) -> Vec<u8> {
    let message = match error.param() {
        Some(param) => format!("{param}: {error}"),
        None => error.to_string(),
    };
    envelope("invalid_request_error", &message)
}

/// Anthropic's error `type` for a gateway error; the status is [`GatewayError::status`].
fn gateway_error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Unauthorized => "authentication_error",
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::Forbidden => "permission_error",
        ErrorKind::RouteNotFound | ErrorKind::ModelNotFound => "not_found_error",
        ErrorKind::PayloadTooLarge => "request_too_large",
        ErrorKind::GatewayTimeout => "timeout_error",
        ErrorKind::Unavailable => "overloaded_error",
        ErrorKind::BadGateway | ErrorKind::Internal | ErrorKind::ClientClosed => "api_error",
        ErrorKind::BadRequest
        | ErrorKind::InvalidJson
        | ErrorKind::InvalidField
        | ErrorKind::MethodNotAllowed
        | ErrorKind::RequestTimeout
        | ErrorKind::HeadersTooLarge
        | ErrorKind::UnsupportedHttpVersion => "invalid_request_error",
    }
}

/// The body for an error the gateway itself raises (unknown model, bad key, body too large), in
/// Anthropic's envelope; send it with `error.status()`.
pub fn gateway_error_body(error: &GatewayError) -> Vec<u8> {
    let message = match &error.param {
        Some(param) => format!("{param}: {}", error.message),
        None => error.message.clone(),
    };
    envelope(gateway_error_type(error.kind), &message)
}

/// The in-band `error` event for a gateway failure after the stream started (a stalled provider,
/// shutdown).
pub fn gateway_error_event(error: &GatewayError, out: &mut Vec<u8>) {
    write_error_event(&gateway_error_body(error), out);
}

fn envelope(kind: &'static str, message: &str) -> Vec<u8> {
    let envelope = Envelope { kind: "error", error: ErrorObject { kind, message } };
    serde_json::to_vec(&envelope).unwrap_or_default()
}

/// `event: error` with `body` as its data.
fn write_error_event(body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"event: error\ndata: ");
    out.extend_from_slice(body);
    out.extend_from_slice(b"\n\n");
}

/// Anthropic's usage counters. Its `input_tokens` excludes cached tokens, while the internal
/// `prompt_tokens` includes them, so the cache counters are subtracted back out.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
struct WireUsage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

fn wire_usage(usage: &Usage) -> WireUsage {
    WireUsage {
        input_tokens: usage
            .prompt_tokens
            .saturating_sub(usage.cache_read_tokens)
            .saturating_sub(usage.cache_write_tokens),
        cache_creation_input_tokens: usage.cache_write_tokens,
        cache_read_input_tokens: usage.cache_read_tokens,
        output_tokens: usage.completion_tokens,
    }
}

/// Anthropic's `stop_reason` for an internal finish reason. A stop sequence is not told apart
/// from a natural end internally, so both are `end_turn`.
fn stop_reason(reason: crate::chat::FinishReason) -> &'static str {
    use crate::chat::FinishReason::*;
    match reason {
        Stop => "end_turn",
        Length => "max_tokens",
        ToolCalls => "tool_use",
        ContentFilter => "refusal",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn parsed(body: &[u8]) -> Value {
        serde_json::from_slice(body).unwrap()
    }

    #[test]
    fn provider_errors_use_anthropic_types_and_statuses() {
        use ProviderErrorKind::*;
        let cases = [
            (InvalidRequest, 400, "invalid_request_error"),
            (RequestTooLarge, 413, "request_too_large"),
            (RateLimited, 429, "rate_limit_error"),
            (Overloaded, 529, "overloaded_error"),
            (Server, 500, "api_error"),
            (Authentication, 502, "api_error"),
            (PermissionDenied, 502, "api_error"),
            (NotFound, 502, "api_error"),
            (Billing, 502, "api_error"),
            (Malformed, 502, "api_error"),
        ];
        for (kind, status, error_type) in cases {
            let error = ProviderError::new(kind, "why");
            assert_eq!(error_status(&error), status, "{kind:?}");
            assert_eq!(
                parsed(&error_body(&error)),
                json!({"type": "error", "error": {"type": error_type, "message": "why"}}),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn request_errors_lead_with_their_param() {
        let error = RequestError::invalid("max_tokens", "Field required");
        assert_eq!(
            parsed(&request_error_body(&error)),
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"}})
        );
        let json = RequestError::InvalidJson("not JSON".into());
        assert_eq!(parsed(&request_error_body(&json))["error"]["message"], "not JSON");
    }

    #[test]
    fn gateway_errors() {
        let missing = GatewayError::new(ErrorKind::ModelNotFound, "no model `x`").with_param("model");
        assert_eq!(
            parsed(&gateway_error_body(&missing)),
            json!({"type": "error", "error": {"type": "not_found_error", "message": "model: no model `x`"}})
        );
        assert_eq!(missing.status(), 404);
        let key = GatewayError::new(ErrorKind::Unauthorized, "bad key");
        assert_eq!(parsed(&gateway_error_body(&key))["error"]["type"], "authentication_error");
        let mut out = Vec::new();
        gateway_error_event(&GatewayError::new(ErrorKind::GatewayTimeout, "stalled"), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"timeout_error\",\"message\":\"stalled\"}}\n\n"
        );
    }

    #[test]
    fn usage_splits_cache_counters_back_out() {
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 4,
            cache_read_tokens: 3,
            cache_write_tokens: 2,
            reasoning_tokens: 1,
        };
        assert_eq!(
            wire_usage(&usage),
            WireUsage { input_tokens: 5, cache_creation_input_tokens: 2, cache_read_input_tokens: 3, output_tokens: 4 }
        );
        let odd = Usage { prompt_tokens: 1, cache_read_tokens: 5, ..Usage::default() };
        assert_eq!(wire_usage(&odd).input_tokens, 0);
    }
}
