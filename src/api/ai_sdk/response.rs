//! Internal response -> `LanguageModelV4GenerateResult` body (spec 2 and 3 differ only in the
//! finish-reason and usage shapes). Parts become content in their order (text and refusal as
//! `text`; reasoning as `reasoning`, its signature under `providerMetadata.anthropic.signature` and
//! redacted reasoning as an empty `reasoning` with `providerMetadata.anthropic.redactedData`, as
//! `@ai-sdk/anthropic` writes them, so they come back signed in the next prompt), then the tool
//! calls as `tool-call` with the input as a JSON *string*. It reads no provider format.
//!
//! `response` is written (`id`, `modelId`: the provider's, as the real gateway does) although the
//! SDK replaces it for non-streaming calls; `timestamp` is left out since this module reads no clock.

use serde_json::{Map, Value, json};

use super::{SpecVersion, finish_json, usage_json};
use crate::chat::{ChatResponse, Part, ToolCall};

/// The spec-4 body for `response`, with no gateway metadata.
pub fn encode_response(response: &ChatResponse, gateway_model: &str) -> Vec<u8> {
    encode_response_with(response, gateway_model, SpecVersion::V4, None)
}

/// The body for `response` in `spec`'s shape; `gateway_metadata` (routing, cost, `generationId`)
/// goes to `providerMetadata.gateway` when given.
pub fn encode_response_with(
    response: &ChatResponse,
    gateway_model: &str,
    spec: SpecVersion,
    gateway_metadata: Option<&Value>,
) -> Vec<u8> {
    let mut content: Vec<Value> = response.content.iter().filter_map(content_part).collect();
    content.extend(response.tool_calls.iter().map(tool_call_part));
    let model = if response.model.is_empty() { gateway_model } else { &response.model };
    let mut body = Map::new();
    body.insert("content".into(), Value::Array(content));
    body.insert("finishReason".into(), finish_json(response.finish_reason, spec));
    body.insert("usage".into(), usage_json(&response.usage, spec));
    if let Some(gateway) = gateway_metadata {
        body.insert("providerMetadata".into(), json!({ "gateway": gateway }));
    }
    body.insert("response".into(), json!({ "id": response.id, "modelId": model }));
    body.insert("warnings".into(), json!([]));
    serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
}

/// The content part for an answer part; media has none, since no provider mapping puts media in
/// an answer.
fn content_part(part: &Part) -> Option<Value> {
    Some(match part {
        Part::Text(text) | Part::Refusal(text) => json!({"type": "text", "text": text}),
        Part::Reasoning { text, signature: Some(signature) } => json!({
            "type": "reasoning", "text": text,
            "providerMetadata": {"anthropic": {"signature": signature}},
        }),
        Part::Reasoning { text, signature: None } => json!({"type": "reasoning", "text": text}),
        Part::RedactedReasoning { data } => json!({
            "type": "reasoning", "text": "",
            "providerMetadata": {"anthropic": {"redactedData": data}},
        }),
        Part::Image(_) | Part::File { .. } => return None,
    })
}

fn tool_call_part(call: &ToolCall) -> Value {
    json!({"type": "tool-call", "toolCallId": call.id, "toolName": call.name, "input": call.arguments})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{FinishReason, Usage};

    #[test]
    fn tool_calls_follow_content_with_string_input() {
        let response = ChatResponse {
            id: "msg_1".into(),
            model: String::new(),
            content: vec![Part::Reasoning { text: "r".into(), signature: Some("s".into()) }, Part::Text("t".into())],
            tool_calls: vec![ToolCall { id: "c1".into(), name: "w".into(), arguments: "{\"a\":1}".into() }],
            finish_reason: FinishReason::ToolCalls,
            usage: Usage { prompt_tokens: 3, completion_tokens: 2, ..Usage::default() },
        };
        let body: Value = serde_json::from_slice(&encode_response(&response, "gw/m")).unwrap();
        assert_eq!(body["content"][0]["providerMetadata"]["anthropic"]["signature"], "s");
        assert_eq!(
            body["content"][2],
            json!({"type": "tool-call", "toolCallId": "c1", "toolName": "w", "input": "{\"a\":1}"})
        );
        assert_eq!(body["finishReason"], json!({"unified": "tool-calls", "raw": "tool_calls"}));
        assert_eq!(body["response"]["modelId"], "gw/m");
        let v2: Value =
            serde_json::from_slice(&encode_response_with(&response, "gw/m", SpecVersion::V2, None)).unwrap();
        assert_eq!(v2["finishReason"], "tool-calls");
        assert_eq!(v2["usage"]["totalTokens"], 5);
    }
}
