//! Internal response -> OpenAI `chat.completion` body. Texts join without a separator (providers
//! split one answer into several text blocks, around citations for instance); reasoning goes out as
//! `message.reasoning_content`, as in the stream; signatures and redacted reasoning stay private.

use serde::Serialize;

use super::{WireUsage, wire_usage};
use crate::chat::{ChatResponse, Part, ToolCall};

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [Choice<'a>; 1],
    usage: WireUsage,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: WireMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: Option<String>,
    refusal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

/// The body for `response`, showing `gateway_model` and `created` (Unix seconds).
pub fn encode_response(response: &ChatResponse, gateway_model: &str, created: u64) -> Vec<u8> {
    let message = WireMessage {
        role: "assistant",
        content: joined(&response.content, |part| match part {
            Part::Text(text) => Some(text),
            _ => None,
        }),
        refusal: joined(&response.content, |part| match part {
            Part::Refusal(text) => Some(text),
            _ => None,
        }),
        reasoning_content: joined(&response.content, |part| match part {
            Part::Reasoning { text, .. } => Some(text),
            _ => None,
        }),
        tool_calls: response.tool_calls.iter().map(wire_tool_call).collect(),
    };
    let completion = Completion {
        id: &response.id,
        object: "chat.completion",
        created,
        model: gateway_model,
        choices: [Choice { index: 0, message, logprobs: None, finish_reason: response.finish_reason.as_str() }],
        usage: wire_usage(&response.usage),
    };
    serde_json::to_vec(&completion).unwrap_or_default()
}

/// The selected texts concatenated, or `None` when there are none (OpenAI's `null`).
fn joined<'a>(parts: &'a [Part], select: impl Fn(&'a Part) -> Option<&'a String>) -> Option<String> {
    let mut texts = parts.iter().filter_map(select).peekable();
    texts.peek()?;
    Some(texts.map(String::as_str).collect())
}

fn wire_tool_call(call: &ToolCall) -> WireToolCall<'_> {
    WireToolCall {
        id: &call.id,
        kind: "function",
        function: WireFunction { name: &call.name, arguments: &call.arguments },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::chat::{FinishReason, Usage};

    #[test]
    fn tool_call_only_answers_have_null_content() {
        let response = ChatResponse {
            id: "msg_1".into(),
            model: "claude".into(),
            content: vec![],
            tool_calls: vec![ToolCall { id: "c".into(), name: "f".into(), arguments: "{}".into() }],
            finish_reason: FinishReason::ToolCalls,
            usage: Usage { prompt_tokens: 3, completion_tokens: 2, ..Usage::default() },
        };
        let body: Value = serde_json::from_slice(&encode_response(&response, "gw", 9)).unwrap();
        assert_eq!(
            body,
            json!({"id": "msg_1", "object": "chat.completion", "created": 9, "model": "gw",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "refusal": null,
                       "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                       "logprobs": null, "finish_reason": "tool_calls"}],
                   "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5,
                             "prompt_tokens_details": {"cached_tokens": 0},
                             "completion_tokens_details": {"reasoning_tokens": 0}}})
        );
    }

    #[test]
    fn texts_join_and_reasoning_is_separate() {
        let response = ChatResponse {
            content: vec![
                Part::Reasoning { text: "think".into(), signature: Some("s".into()) },
                Part::Text("Hello ".into()),
                Part::RedactedReasoning { data: "x".into() },
                Part::Text("world".into()),
            ],
            ..ChatResponse::default()
        };
        let body: Value = serde_json::from_slice(&encode_response(&response, "gw", 0)).unwrap();
        assert_eq!(body["choices"][0]["message"]["content"], "Hello world");
        assert_eq!(body["choices"][0]["message"]["reasoning_content"], "think");
        assert!(body["choices"][0]["message"].get("tool_calls").is_none());
    }
}
