//! Internal response -> Anthropic `message` body. Parts become blocks in their order (text and
//! refusal as `text`, reasoning as `thinking` with its signature or `""`, redacted reasoning as
//! `redacted_thinking`), then the tool calls as `tool_use` blocks, since the internal response keeps
//! calls apart from the content. A call whose arguments are not a JSON object (cut off by the output
//! budget) gets `input: {}`: Anthropic's `input` is always an object. Usage and stop reason map as in
//! the stream. It reads no provider format; `providers::*::parse_response` made the response.

use serde::Serialize;
use serde_json::value::RawValue;

use super::{WireUsage, stop_reason, wire_usage};
use crate::chat::{ChatResponse, Part, ToolCall};

#[derive(Serialize)]
struct Message<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<Block<'a>>,
    stop_reason: &'static str,
    stop_sequence: Option<()>,
    usage: WireUsage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text { text: &'a str },
    Thinking { thinking: &'a str, signature: &'a str },
    RedactedThinking { data: &'a str },
    ToolUse { id: &'a str, name: &'a str, input: &'a RawValue },
}

/// The body for `response`, showing `gateway_model`.
pub fn encode_response(response: &ChatResponse, gateway_model: &str) -> Vec<u8> {
    let mut content: Vec<Block<'_>> = response.content.iter().filter_map(part_block).collect();
    content.extend(response.tool_calls.iter().map(tool_use_block));
    let message = Message {
        id: &response.id,
        kind: "message",
        role: "assistant",
        model: gateway_model,
        content,
        stop_reason: stop_reason(response.finish_reason),
        stop_sequence: None,
        usage: wire_usage(&response.usage),
    };
    serde_json::to_vec(&message).unwrap_or_default()
}

/// The block for a part; media has none, since no provider mapping puts media in an answer.
fn part_block(part: &Part) -> Option<Block<'_>> {
    Some(match part {
        Part::Text(text) | Part::Refusal(text) => Block::Text { text },
        Part::Reasoning { text, signature } => {
            Block::Thinking { thinking: text, signature: signature.as_deref().unwrap_or_default() }
        }
        Part::RedactedReasoning { data } => Block::RedactedThinking { data },
        Part::Image(_) | Part::File { .. } => return None,
    })
}

fn tool_use_block(call: &ToolCall) -> Block<'_> {
    Block::ToolUse { id: &call.id, name: &call.name, input: tool_input(&call.arguments) }
}

/// The arguments as a JSON object, or `{}` (see the module doc).
fn tool_input(arguments: &str) -> &RawValue {
    match serde_json::from_str::<&RawValue>(arguments) {
        Ok(raw) if raw.get().starts_with('{') => raw,
        _ => empty_object(),
    }
}

fn empty_object() -> &'static RawValue {
    // A literal that parses.
    serde_json::from_str("{}").unwrap_or_else(|_| unreachable!("constant JSON literal"))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::chat::{FinishReason, Usage};

    #[test]
    fn blocks_in_order_with_tool_calls_last() {
        let response = ChatResponse {
            id: "msg_1".into(),
            model: "provider".into(),
            content: vec![
                Part::Reasoning { text: "think".into(), signature: Some("s".into()) },
                Part::Reasoning { text: "foreign".into(), signature: None },
                Part::RedactedReasoning { data: "d".into() },
                Part::Text("Hello".into()),
                Part::Refusal("no".into()),
            ],
            tool_calls: vec![
                ToolCall { id: "t1".into(), name: "f".into(), arguments: "{ \"a\" : [1] }".into() },
                ToolCall { id: "t2".into(), name: "g".into(), arguments: "{\"cut".into() },
                ToolCall { id: "t3".into(), name: "h".into(), arguments: "[1]".into() },
            ],
            finish_reason: FinishReason::ToolCalls,
            usage: Usage { prompt_tokens: 10, completion_tokens: 4, cache_read_tokens: 3, ..Usage::default() },
        };
        let body: Value = serde_json::from_slice(&encode_response(&response, "acme/claude")).unwrap();
        assert_eq!(
            body,
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "acme/claude",
                   "content": [
                       {"type": "thinking", "thinking": "think", "signature": "s"},
                       {"type": "thinking", "thinking": "foreign", "signature": ""},
                       {"type": "redacted_thinking", "data": "d"},
                       {"type": "text", "text": "Hello"},
                       {"type": "text", "text": "no"},
                       {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": [1]}},
                       {"type": "tool_use", "id": "t2", "name": "g", "input": {}},
                       {"type": "tool_use", "id": "t3", "name": "h", "input": {}}],
                   "stop_reason": "tool_use", "stop_sequence": null,
                   "usage": {"input_tokens": 7, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 3,
                             "output_tokens": 4}})
        );
    }

    #[test]
    fn an_empty_answer_is_an_empty_message() {
        let body: Value = serde_json::from_slice(&encode_response(&ChatResponse::default(), "gw")).unwrap();
        assert_eq!(body["content"], json!([]));
        assert_eq!(body["stop_reason"], "end_turn");
    }
}
