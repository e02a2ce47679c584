//! A non-streaming Bedrock body -> internal response: Converse's JSON (`output.message.content`,
//! `stopReason`, `usage`) mapped here, InvokeModel's Anthropic Messages JSON by
//! `anthropic::parse_response`. Error statuses are `error`'s.
//!
//! Converse answers carry no message id, so the caller passes the response's `x-amzn-requestid`,
//! which identifies the call in AWS's logs. Blocks map as in the stream: text, reasoning (signed or
//! redacted), tool uses with their input as compact JSON text (key order kept); other blocks
//! (citations, images, server-side tool results) are not the client's and are skipped.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Api, WireUsage, borrow_opt, finish_reason};
use crate::chat::{ChatResponse, Part, ProviderError, ProviderErrorKind, ToolCall};
use crate::providers::anthropic;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse<'a> {
    #[serde(borrow)]
    output: Option<WireOutput<'a>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    stop_reason: Option<Cow<'a, str>>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireOutput<'a> {
    #[serde(borrow)]
    message: Option<WireMessage<'a>>,
}

#[derive(Deserialize)]
struct WireMessage<'a> {
    #[serde(borrow, default)]
    content: Vec<WireBlock<'a>>,
}

/// A content block: a union, so exactly one member is set.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireBlock<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    text: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tool_use: Option<WireToolUse<'a>>,
    #[serde(borrow)]
    reasoning_content: Option<WireReasoning<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireToolUse<'a> {
    #[serde(borrow, default)]
    tool_use_id: Cow<'a, str>,
    #[serde(borrow, default)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireReasoning<'a> {
    #[serde(borrow)]
    reasoning_text: Option<WireReasoningText<'a>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    redacted_content: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WireReasoningText<'a> {
    #[serde(borrow, default)]
    text: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    signature: Option<Cow<'a, str>>,
}

/// Parses a 2xx body of `api`. `request_id` (the `x-amzn-requestid` response header, or empty)
/// becomes the id of a Converse answer; InvokeModel answers carry Anthropic's own. Anything
/// unreadable is `Malformed`.
pub fn parse_response(api: Api, body: &[u8], request_id: &str) -> Result<ChatResponse, ProviderError> {
    match api {
        Api::Converse => parse_converse(body, request_id),
        Api::InvokeAnthropic => anthropic::parse_response(body),
    }
}

fn parse_converse(body: &[u8], request_id: &str) -> Result<ChatResponse, ProviderError> {
    let wire: WireResponse<'_> = serde_json::from_slice(body).map_err(|e| malformed(format!("{e}")))?;
    let message = wire.output.and_then(|output| output.message).ok_or_else(|| malformed("no output.message"))?;
    let mut response = ChatResponse {
        id: request_id.to_owned(),
        finish_reason: wire.stop_reason.as_deref().map(finish_reason).unwrap_or_default(),
        usage: wire.usage.unwrap_or_default().usage(),
        ..ChatResponse::default()
    };
    for block in message.content {
        add_block(&mut response, block);
    }
    Ok(response)
}

fn malformed(why: impl std::fmt::Display) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Malformed, format!("malformed Bedrock Converse response: {why}"))
}

fn add_block(response: &mut ChatResponse, block: WireBlock<'_>) {
    if let Some(text) = block.text {
        response.content.push(Part::Text(text.into_owned()));
    } else if let Some(tool_use) = block.tool_use {
        response.tool_calls.push(ToolCall {
            id: tool_use.tool_use_id.into_owned(),
            name: tool_use.name.into_owned(),
            arguments: tool_use.input.map_or_else(|| "{}".to_owned(), |raw| compact_json(raw.get())),
        });
    } else if let Some(reasoning) = block.reasoning_content {
        add_reasoning(response, reasoning);
    }
}

fn add_reasoning(response: &mut ChatResponse, reasoning: WireReasoning<'_>) {
    if let Some(text) = reasoning.reasoning_text {
        let signature = text.signature.map(Cow::into_owned);
        response.content.push(Part::Reasoning { text: text.text.into_owned(), signature });
    } else if let Some(data) = reasoning.redacted_content {
        response.content.push(Part::RedactedReasoning { data: data.into_owned() });
    }
}

/// `json` (valid JSON) without insignificant whitespace, as OpenAI writes tool arguments.
fn compact_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !c.is_ascii_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{FinishReason, Usage};

    #[test]
    fn maps_blocks_usage_and_the_request_id() {
        let body = br#"{"output":{"message":{"role":"assistant","content":[
            {"reasoningContent":{"reasoningText":{"text":"t","signature":"s"}}},
            {"reasoningContent":{"redactedContent":"ZGF0YQ=="}},
            {"text":"a"},{"citationsContent":{"content":[]}},
            {"toolUse":{"toolUseId":"tooluse_1","name":"f","input":{ "k" : [ 1, "a b" ] }}},
            {"toolUse":{"toolUseId":"tooluse_2","name":"g"}}]}},
            "stopReason":"tool_use","metrics":{"latencyMs":1},
            "usage":{"inputTokens":1,"outputTokens":2,"totalTokens":10,"cacheReadInputTokens":4,"cacheWriteInputTokens":3}}"#;
        assert_eq!(
            parse_response(Api::Converse, body, "req-1").unwrap(),
            ChatResponse {
                id: "req-1".into(),
                model: String::new(),
                content: vec![
                    Part::Reasoning { text: "t".into(), signature: Some("s".into()) },
                    Part::RedactedReasoning { data: "ZGF0YQ==".into() },
                    Part::Text("a".into()),
                ],
                tool_calls: vec![
                    ToolCall { id: "tooluse_1".into(), name: "f".into(), arguments: r#"{"k":[1,"a b"]}"#.into() },
                    ToolCall { id: "tooluse_2".into(), name: "g".into(), arguments: "{}".into() },
                ],
                finish_reason: FinishReason::ToolCalls,
                usage: Usage {
                    prompt_tokens: 8,
                    completion_tokens: 2,
                    cache_read_tokens: 4,
                    cache_write_tokens: 3,
                    reasoning_tokens: 0
                },
            }
        );
    }

    #[test]
    fn unreadable_bodies_are_malformed() {
        for body in [&b"<html>"[..], b"[]", b"{}", br#"{"output":{}}"#, br#"{"output":{"message":{"content":7}}}"#] {
            let error = parse_response(Api::Converse, body, "").unwrap_err();
            assert_eq!(error.kind, ProviderErrorKind::Malformed, "{}", String::from_utf8_lossy(body));
        }
        assert_eq!(parse_response(Api::InvokeAnthropic, b"{", "").unwrap_err().kind, ProviderErrorKind::Malformed);
    }

    #[test]
    fn missing_stop_reason_and_usage_default() {
        let response = parse_response(Api::Converse, br#"{"output":{"message":{"content":[]}}}"#, "").unwrap();
        assert_eq!((response.finish_reason, response.usage), (FinishReason::Stop, Usage::default()));
    }
}
