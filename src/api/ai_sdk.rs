//! The Vercel AI SDK gateway front door (`@ai-sdk/gateway`, `POST {base}/language-model`): its
//! mappings to and from the internal chat model (`crate::chat`), for spec versions 4 (`/v4/ai`) and,
//! where they differ only in the finish-reason and usage shapes, 2 (`/v1/ai`) and 3 (`/v3/ai`):
//!
//! - [`parse_request`]: a `LanguageModelV4CallOptions` body -> `ChatRequest`; [`gateway_options`]:
//!   its `providerOptions.gateway` routing options.
//! - [`StreamEncoder`]: internal stream events -> SSE `data: <LanguageModelV4StreamPart>` lines.
//! - [`encode_response`] / [`encode_response_with`]: an internal response -> a
//!   `LanguageModelV4GenerateResult` body.
//! - [`error_status`], [`error_body`], [`request_error_body`], [`gateway_error_body`],
//!   [`model_not_found_body`]: the gateway error envelope `{"error":{"message","type","param","code"}}`
//!   whose `type` picks the SDK's typed error class.
//! - [`config_json`]: the `GET {base}/config` model list.
//!
//! It does no I/O and reads no headers: the proxy reads `ai-language-model-id`,
//! `ai-language-model-streaming` and `ai-language-model-specification-version` ([`SpecVersion::from_header`])
//! and passes them in. It knows nothing of routing beyond handing the options over and writing the
//! routing metadata it is given.
//!
//! Error types and statuses: the SDK picks its error class from `type` and retries on the status
//! (408, 409, 429, >= 500). The client's own mistakes are 400 `invalid_request_error`, provider rate
//! limits 429 `rate_limit_exceeded`, provider failures and capacity problems 500/503
//! `internal_server_error` (retryable). Failures of the gateway's own provider account (credential,
//! permission, billing, unknown model at the provider) and broken provider answers are 502
//! `internal_server_error`: `authentication_error` would tell the client that *its* key is wrong.

mod request;
mod response;
mod stream;

pub use request::{GatewayOptions, gateway_options, parse_request};
pub use response::{encode_response, encode_response_with};
pub use stream::StreamEncoder;

use serde::Serialize;
use serde_json::{Value, json};

use crate::chat::{FinishReason, ProviderError, ProviderErrorKind, RequestError, Usage};
use crate::error::{ErrorKind, GatewayError};

/// The `LanguageModel` specification version a client speaks; it decides the finish-reason and
/// usage shapes (spec §1.12). Getting it wrong fails silently in the SDK, so it must follow the
/// client's header or path prefix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SpecVersion {
    /// `ai@5`, `/v1/ai`: string finish reason, flat usage.
    V2,
    /// `ai@6`, `/v3/ai`: `{unified, raw}` finish reason, nested usage.
    V3,
    /// `ai@7`, `/v4/ai`: as V3.
    #[default]
    V4,
}

impl SpecVersion {
    /// From `ai-language-model-specification-version` (`2`, `3`, `4`, or `v4`); unknown -> `None`.
    pub fn from_header(value: &str) -> Option<Self> {
        match value.trim().trim_start_matches('v') {
            "2" => Some(Self::V2),
            "3" => Some(Self::V3),
            "4" => Some(Self::V4),
            _ => None,
        }
    }

    /// From the base path prefix (`/v1/ai`, `/v3/ai`, `/v4/ai`).
    pub fn from_path_prefix(path: &str) -> Option<Self> {
        match path.trim_end_matches('/') {
            "/v1/ai" => Some(Self::V2),
            "/v3/ai" => Some(Self::V3),
            "/v4/ai" => Some(Self::V4),
            _ => None,
        }
    }

    /// The `specificationVersion` literal of `/config` entries.
    fn config_literal(self) -> &'static str {
        match self {
            Self::V2 => "v2",
            Self::V3 => "v3",
            Self::V4 => "v4",
        }
    }
}

/// The unified finish reason (spec 3/4 `unified`; spec 2 uses the same words as a plain string).
fn unified_finish(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool-calls",
        FinishReason::ContentFilter => "content-filter",
    }
}

/// `finishReason` in the client's shape. The provider's own reason is not carried internally, so
/// `raw` is the internal (OpenAI-vocabulary) name.
fn finish_json(reason: FinishReason, spec: SpecVersion) -> Value {
    match spec {
        SpecVersion::V2 => json!(unified_finish(reason)),
        SpecVersion::V3 | SpecVersion::V4 => json!({"unified": unified_finish(reason), "raw": reason.as_str()}),
    }
}

/// The `finishReason` of a stream that ended in an error.
fn error_finish_json(spec: SpecVersion) -> Value {
    match spec {
        SpecVersion::V2 => json!("error"),
        SpecVersion::V3 | SpecVersion::V4 => json!({"unified": "error", "raw": "error"}),
    }
}

/// `usage` in the client's shape. Internally `prompt_tokens` includes cached tokens and
/// `completion_tokens` includes reasoning, so the uncached and text counts are subtracted out.
fn usage_json(usage: &Usage, spec: SpecVersion) -> Value {
    match spec {
        SpecVersion::V2 => json!({
            "inputTokens": usage.prompt_tokens,
            "outputTokens": usage.completion_tokens,
            "totalTokens": usage.total_tokens(),
            "reasoningTokens": usage.reasoning_tokens,
            "cachedInputTokens": usage.cache_read_tokens,
        }),
        SpecVersion::V3 | SpecVersion::V4 => json!({
            "inputTokens": {
                "total": usage.prompt_tokens,
                "noCache": usage.prompt_tokens.saturating_sub(usage.cache_read_tokens).saturating_sub(usage.cache_write_tokens),
                "cacheRead": usage.cache_read_tokens,
                "cacheWrite": usage.cache_write_tokens,
            },
            "outputTokens": {
                "total": usage.completion_tokens,
                "text": usage.completion_tokens.saturating_sub(usage.reasoning_tokens),
                "reasoning": usage.reasoning_tokens,
            },
        }),
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: ErrorObject<'a>,
}

#[derive(Serialize)]
struct ErrorObject<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Value,
    code: Option<&'static str>,
}

fn envelope(kind: &'static str, message: &str, param: Value) -> Vec<u8> {
    serde_json::to_vec(&Envelope { error: ErrorObject { message, kind, param, code: None } }).unwrap_or_default()
}

/// The error `type` for a provider failure (see the module doc).
fn provider_error_type(kind: ProviderErrorKind) -> &'static str {
    match kind {
        ProviderErrorKind::InvalidRequest | ProviderErrorKind::RequestTooLarge => "invalid_request_error",
        ProviderErrorKind::RateLimited => "rate_limit_exceeded",
        _ => "internal_server_error",
    }
}

/// The status for a provider failure before any response byte went out.
pub fn error_status(error: &ProviderError) -> u16 {
    use ProviderErrorKind::*;
    match error.kind {
        InvalidRequest => 400,
        RequestTooLarge => 413,
        RateLimited => 429,
        Overloaded => 503,
        Server => 500,
        Authentication | PermissionDenied | NotFound | Billing | Malformed => 502,
    }
}

/// The body for a provider failure, with the provider's message.
pub fn error_body(error: &ProviderError) -> Vec<u8> {
    envelope(provider_error_type(error.kind), &error.message, Value::Null)
}

/// The 400 body for a request that could not be parsed or translated; `param` names the field.
pub fn request_error_body(error: &RequestError) -> Vec<u8> {
    let param = error.param().map_or(Value::Null, |p| json!(p));
    envelope("invalid_request_error", &error.to_string(), param)
}

/// The error `type` for a gateway error; the status is [`GatewayError::status`].
fn gateway_error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Unauthorized => "authentication_error",
        ErrorKind::ModelNotFound => "model_not_found",
        ErrorKind::RouteNotFound => "not_found",
        ErrorKind::RateLimited => "rate_limit_exceeded",
        ErrorKind::Forbidden => "forbidden",
        ErrorKind::BadGateway
        | ErrorKind::GatewayTimeout
        | ErrorKind::Unavailable
        | ErrorKind::Internal
        | ErrorKind::ClientClosed => "internal_server_error",
        ErrorKind::BadRequest
        | ErrorKind::InvalidJson
        | ErrorKind::InvalidField
        | ErrorKind::MethodNotAllowed
        | ErrorKind::RequestTimeout
        | ErrorKind::PayloadTooLarge
        | ErrorKind::HeadersTooLarge
        | ErrorKind::UnsupportedHttpVersion => "invalid_request_error",
    }
}

/// The body for an error the gateway itself raises; send it with `error.status()`. For an unknown
/// model prefer [`model_not_found_body`], whose `param.modelId` the SDK exposes.
pub fn gateway_error_body(error: &GatewayError) -> Vec<u8> {
    let param = error.param.as_deref().map_or(Value::Null, |p| json!(p));
    envelope(gateway_error_type(error.kind), &error.message, param)
}

/// The 404 body for an unknown model: `param: {modelId}` becomes `GatewayModelNotFoundError.modelId`.
pub fn model_not_found_body(model_id: &str, message: &str) -> Vec<u8> {
    envelope("model_not_found", message, json!({ "modelId": model_id }))
}

/// The in-band `error` part's payload: `ai` core reads `statusCode` and `isRetryable` from it.
fn error_part(error: &ProviderError) -> Value {
    json!({
        "type": "error",
        "error": {
            "message": error.message,
            "type": provider_error_type(error.kind),
            "statusCode": error_status(error),
            "isRetryable": error.retryable(),
        }
    })
}

/// One model of the `/config` list: gateway id, display name, provider it is listed under.
pub type ConfigModel<'a> = (&'a str, &'a str, &'a str);

/// The `GET {base}/config` body for spec 4: every model as a `language` model.
pub fn config_json(models: &[ConfigModel<'_>]) -> Vec<u8> {
    config_json_for(SpecVersion::V4, models)
}

/// The `/config` body for `spec`. `specificationVersion` must be the client's literal, or the SDK's
/// schema check rejects the whole list.
pub fn config_json_for(spec: SpecVersion, models: &[ConfigModel<'_>]) -> Vec<u8> {
    let entries: Vec<Value> = models
        .iter()
        .map(|(id, name, owned_by)| {
            json!({
                "id": id,
                "name": name,
                "specification": {
                    "specificationVersion": spec.config_literal(),
                    "provider": owned_by,
                    "modelId": id,
                },
                "modelType": "language",
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "models": entries })).unwrap_or_default()
}

/// The OpenAI embeddings request for an AI SDK `embedding-model` body
/// (`{"values": [...], "dimensions"?, "providerOptions"?}`), with the gateway model id (routing swaps
/// in the provider's). `providerOptions` stays, so routing reads `providerOptions.gateway` as it does
/// for OpenAI clients, and cuts it out before the provider sees the body.
pub fn embeddings_request(body: &[u8], gateway_model: &str) -> Result<Vec<u8>, RequestError> {
    #[derive(serde::Deserialize)]
    struct EmbeddingCall {
        values: Vec<Value>,
        #[serde(default)]
        dimensions: Option<u64>,
        #[serde(default, rename = "providerOptions")]
        provider_options: Option<Value>,
    }
    let call: EmbeddingCall = serde_json::from_slice(body)
        .map_err(|e| RequestError::invalid("values", format!("invalid embedding request: {e}")))?;
    if call.values.is_empty() {
        return Err(RequestError::invalid("values", "at least one value is required"));
    }
    let mut request = json!({ "model": gateway_model, "input": call.values });
    if let Some(dimensions) = call.dimensions {
        request["dimensions"] = json!(dimensions);
    }
    if let Some(options) = call.provider_options {
        request["providerOptions"] = options;
    }
    serde_json::to_vec(&request).map_err(|e| RequestError::invalid("values", e.to_string()))
}

/// An OpenAI embeddings answer re-shaped for the AI SDK: `embeddings` in input order, `usage.tokens`,
/// and `providerMetadata.gateway`. `None` when the answer is not an OpenAI embeddings list.
pub fn embeddings_response(openai: &[u8], gateway_metadata: &Value) -> Option<Vec<u8>> {
    let answer: Value = serde_json::from_slice(openai).ok()?;
    let mut items: Vec<(u64, Value)> = answer
        .get("data")?
        .as_array()?
        .iter()
        .enumerate()
        .map(|(i, item)| {
            (
                item.get("index").and_then(Value::as_u64).unwrap_or(i as u64),
                item.get("embedding").cloned().unwrap_or(Value::Null),
            )
        })
        .collect();
    items.sort_by_key(|(index, _)| *index);
    let tokens = answer.pointer("/usage/prompt_tokens").and_then(Value::as_u64).unwrap_or(0);
    let body = json!({
        "embeddings": items.into_iter().map(|(_, e)| e).collect::<Vec<_>>(),
        "usage": { "tokens": tokens },
        "providerMetadata": { "gateway": gateway_metadata },
    });
    serde_json::to_vec(&body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: &[u8]) -> Value {
        serde_json::from_slice(body).unwrap()
    }

    #[test]
    fn provider_errors() {
        use ProviderErrorKind::*;
        let cases = [
            (InvalidRequest, 400, "invalid_request_error"),
            (RequestTooLarge, 413, "invalid_request_error"),
            (RateLimited, 429, "rate_limit_exceeded"),
            (Overloaded, 503, "internal_server_error"),
            (Server, 500, "internal_server_error"),
            (Authentication, 502, "internal_server_error"),
            (Malformed, 502, "internal_server_error"),
        ];
        for (kind, status, kind_name) in cases {
            let error = ProviderError::new(kind, "why");
            assert_eq!(error_status(&error), status);
            assert_eq!(
                parsed(&error_body(&error)),
                json!({"error": {"message": "why", "type": kind_name, "param": null, "code": null}})
            );
        }
    }

    #[test]
    fn gateway_and_request_errors() {
        let key = GatewayError::new(ErrorKind::Unauthorized, "bad key");
        assert_eq!(parsed(&gateway_error_body(&key))["error"]["type"], "authentication_error");
        let body = parsed(&model_not_found_body("a/b", "no model"));
        assert_eq!(body["error"]["param"]["modelId"], "a/b");
        let req = RequestError::invalid("prompt", "Field required");
        assert_eq!(parsed(&request_error_body(&req))["error"]["param"], "prompt");
    }

    #[test]
    fn spec_versions() {
        assert_eq!(SpecVersion::from_header("4"), Some(SpecVersion::V4));
        assert_eq!(SpecVersion::from_header("v2"), Some(SpecVersion::V2));
        assert_eq!(SpecVersion::from_header("9"), None);
        assert_eq!(SpecVersion::from_path_prefix("/v3/ai/"), Some(SpecVersion::V3));
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            cache_read_tokens: 3,
            cache_write_tokens: 1,
            reasoning_tokens: 2,
        };
        assert_eq!(usage_json(&usage, SpecVersion::V4)["inputTokens"]["noCache"], 6);
        assert_eq!(usage_json(&usage, SpecVersion::V4)["outputTokens"]["text"], 3);
        assert_eq!(usage_json(&usage, SpecVersion::V2)["totalTokens"], 15);
        assert_eq!(finish_json(FinishReason::ToolCalls, SpecVersion::V2), json!("tool-calls"));
    }

    #[test]
    fn an_embedding_call_becomes_an_openai_embeddings_request_with_routing_options_kept() {
        let body = br#"{"values":["hello","world"],"dimensions":3,"providerOptions":{"gateway":{"order":["b"]}}}"#;
        let request: Value = serde_json::from_slice(&embeddings_request(body, "acme/embed").unwrap()).unwrap();
        assert_eq!(
            request,
            json!({"model":"acme/embed","input":["hello","world"],"dimensions":3,"providerOptions":{"gateway":{"order":["b"]}}})
        );
        assert!(embeddings_request(br#"{"values":[]}"#, "m").is_err());
        assert!(embeddings_request(br#"{"value":"x"}"#, "m").is_err());
    }

    #[test]
    fn an_openai_embeddings_answer_is_reshaped_in_input_order() {
        let openai = br#"{"object":"list","data":[{"object":"embedding","index":1,"embedding":[0.2]},{"object":"embedding","index":0,"embedding":[0.1]}],"model":"m","usage":{"prompt_tokens":8,"total_tokens":8}}"#;
        let reshaped: Value =
            serde_json::from_slice(&embeddings_response(openai, &json!({"cost":"0.000001"})).unwrap()).unwrap();
        assert_eq!(
            reshaped,
            json!({"embeddings":[[0.1],[0.2]],"usage":{"tokens":8},"providerMetadata":{"gateway":{"cost":"0.000001"}}})
        );
        assert!(embeddings_response(br#"{"error":{"message":"no"}}"#, &json!({})).is_none());
    }
}
