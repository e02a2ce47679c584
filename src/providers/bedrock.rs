//! The `bedrock` provider kind: Amazon Bedrock Runtime's mappings to and from the internal chat
//! model (`crate::chat`), for two APIs ([`Api`]):
//!
//! - Converse / ConverseStream, Bedrock's own model-neutral format (any model Bedrock serves);
//! - InvokeModel / InvokeModelWithResponseStream for Anthropic models, whose bodies and stream
//!   events are Anthropic's own (reusing `providers::anthropic`, Bedrock dialect).
//!
//! What it offers, per request: [`path`] and [`host`], [`request_body`], [`request_headers`] (content
//! headers plus SigV4 or bearer authentication); per answer: [`StreamTranslator`] (event-stream bytes
//! in, internal events out), [`parse_response`] (a 2xx JSON body), [`classify_error`] (a non-2xx
//! body and its `x-amzn-errortype` header).
//!
//! It does no I/O and reads no clock or environment: the proxy passes in the credentials, the signing
//! time and the response's request id, and writes the HTTP head. The event-stream framing and the
//! SigV4 algorithm themselves are `providers::aws`'s.

mod auth;
mod error;
mod request;
mod response;
mod stream;

pub use auth::{Auth, SignedRequest, content_headers, request_headers, sign};
pub use error::classify_error;
pub use request::{ModelFamily, RequestOptions, request_body};
pub use response::parse_response;
pub use stream::StreamTranslator;

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

use crate::aws::sigv4::encode_path_segment;
use crate::chat::{FinishReason, Usage};

/// SigV4's service name for Bedrock Runtime (the host says `bedrock-runtime`, the signature does not).
pub const SIGNING_SERVICE: &str = "bedrock";

/// Which Bedrock Runtime API an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/converse` and `/converse-stream`: Bedrock's own message format, for any model.
    Converse,
    /// `/invoke` and `/invoke-with-response-stream` with an Anthropic Messages body: for Anthropic
    /// models, when the client needs what only the native API has.
    InvokeAnthropic,
}

/// The regional Bedrock Runtime host, e.g. `bedrock-runtime.us-east-1.amazonaws.com`.
pub fn host(region: &str) -> String {
    format!("bedrock-runtime.{region}.amazonaws.com")
}

/// The request path for `model` (a model id, inference-profile id or ARN), encoded for the request
/// line: `anthropic.claude-3-5-sonnet-20240620-v1:0` is sent as `...-v1%3A0`, which is also what
/// SigV4 must see (it encodes it once more in the canonical request).
pub fn path(api: Api, model: &str, stream: bool) -> String {
    let operation = match (api, stream) {
        (Api::Converse, false) => "converse",
        (Api::Converse, true) => "converse-stream",
        (Api::InvokeAnthropic, false) => "invoke",
        (Api::InvokeAnthropic, true) => "invoke-with-response-stream",
    };
    format!("/model/{}/{operation}", encode_path_segment(model))
}

/// Converse's `stopReason` in OpenAI's vocabulary. Guardrails and content filters are the
/// provider refusing; malformed model output ends the answer as it stands; unknown future reasons
/// end it normally rather than failing a good answer.
fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// Converse's `usage` (also the stream's `metadata.usage`). `inputTokens` excludes cached input, as
/// `totalTokens` = input + output + cache read + cache write shows; the internal prompt count
/// includes it.
#[derive(Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "camelCase")]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_write_input_tokens: Option<u64>,
}

impl WireUsage {
    fn usage(&self) -> Usage {
        let cache_read = self.cache_read_input_tokens.unwrap_or(0);
        let cache_write = self.cache_write_input_tokens.unwrap_or(0);
        Usage {
            prompt_tokens: self.input_tokens.unwrap_or(0).saturating_add(cache_read).saturating_add(cache_write),
            completion_tokens: self.output_tokens.unwrap_or(0),
            cache_read_tokens: cache_read,
            cache_write_tokens: cache_write,
            reasoning_tokens: 0,
        }
    }
}

/// Deserializes an optional string borrowed from the input when it has no escapes (serde does not
/// borrow through `Option` on its own, and every text delta would be copied once more).
fn borrow_opt<'de: 'a, 'a, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'de>>::deserialize(deserializer)?.map(|borrowed| borrowed.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_encode_the_model_once() {
        assert_eq!(
            path(Api::Converse, "us.amazon.nova-micro-v1:0", false),
            "/model/us.amazon.nova-micro-v1%3A0/converse"
        );
        assert_eq!(path(Api::Converse, "m", true), "/model/m/converse-stream");
        assert_eq!(path(Api::InvokeAnthropic, "m", false), "/model/m/invoke");
        assert_eq!(
            path(Api::InvokeAnthropic, "arn:aws:bedrock:us-east-1:1:inference-profile/us.anthropic.x", true),
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.anthropic.x/invoke-with-response-stream"
        );
        assert_eq!(host("eu-west-3"), "bedrock-runtime.eu-west-3.amazonaws.com");
    }

    #[test]
    fn stop_reasons() {
        for (reason, expected) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("model_context_window_exceeded", FinishReason::Length),
            ("tool_use", FinishReason::ToolCalls),
            ("guardrail_intervened", FinishReason::ContentFilter),
            ("content_filtered", FinishReason::ContentFilter),
            ("malformed_model_output", FinishReason::Stop),
            ("something_new", FinishReason::Stop),
        ] {
            assert_eq!(finish_reason(reason), expected, "{reason}");
        }
    }

    #[test]
    fn cached_input_counts_as_prompt() {
        let wire: WireUsage = serde_json::from_str(
            r#"{"inputTokens":4,"outputTokens":277,"totalTokens":1617,"cacheReadInputTokens":1336,"cacheWriteInputTokens":0}"#,
        )
        .unwrap();
        let usage = wire.usage();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens, usage.cache_read_tokens), (1340, 277, 1336));
        assert_eq!(usage.total_tokens(), 1617);
        let huge: WireUsage =
            serde_json::from_str(r#"{"inputTokens":18446744073709551615,"cacheReadInputTokens":5}"#).unwrap();
        assert_eq!(huge.usage().prompt_tokens, u64::MAX);
    }
}
