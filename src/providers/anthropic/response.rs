//! A non-streaming Anthropic Messages body -> internal response. Blocks map as in the stream
//! (text, thinking with its signature, redacted thinking, client `tool_use`); server-tool blocks are
//! skipped for the same reason. Tool inputs become compact JSON argument text, key order kept.

use std::borrow::Cow;

use serde::Deserialize;

use super::stream::{WireBlock, WireUsage, usage_from};
use super::{ErrorDetail, finish_reason};
use crate::chat::{ChatResponse, Part, ProviderError, ProviderErrorKind, ToolCall};

#[derive(Deserialize)]
struct WireResponse<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "super::borrow_opt")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(borrow, default)]
    content: Vec<WireBlock<'a>>,
    #[serde(borrow, default, deserialize_with = "super::borrow_opt")]
    stop_reason: Option<Cow<'a, str>>,
    usage: Option<WireUsage>,
    #[serde(borrow)]
    error: Option<ErrorDetail<'a>>,
}

/// Parses a 2xx body. An `error` object in it (which a proxy or a future API version could send with
/// 200) is classified like an error status; anything unreadable is `Malformed`.
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let wire: WireResponse<'_> = serde_json::from_slice(body)
        .map_err(|e| ProviderError::new(ProviderErrorKind::Malformed, format!("malformed Anthropic response: {e}")))?;
    if wire.kind.as_deref() == Some("error") {
        return Err(match &wire.error {
            Some(detail) => detail.classify(ProviderErrorKind::Server),
            None => ProviderError::new(ProviderErrorKind::Server, "Anthropic reported an error without details"),
        });
    }
    let mut response = ChatResponse {
        id: wire.id.into_owned(),
        model: wire.model.into_owned(),
        finish_reason: wire.stop_reason.as_deref().map(finish_reason).unwrap_or_default(),
        usage: usage_from(wire.usage.as_ref()),
        ..ChatResponse::default()
    };
    for block in wire.content {
        add_block(&mut response, block);
    }
    Ok(response)
}

fn add_block(response: &mut ChatResponse, block: WireBlock<'_>) {
    let owned = |text: Option<Cow<'_, str>>| text.map(Cow::into_owned).unwrap_or_default();
    match &*block.kind {
        "text" => response.content.push(Part::Text(owned(block.text))),
        "thinking" => response
            .content
            .push(Part::Reasoning { text: owned(block.thinking), signature: block.signature.map(Cow::into_owned) }),
        "redacted_thinking" => response.content.push(Part::RedactedReasoning { data: owned(block.data) }),
        "tool_use" => response.tool_calls.push(ToolCall {
            id: owned(block.id),
            name: owned(block.name),
            arguments: block.input.map_or_else(|| "{}".to_owned(), |raw| compact_json(raw.get())),
        }),
        _ => {}
    }
}

/// `json` (valid JSON) without insignificant whitespace, as OpenAI writes tool arguments.
fn compact_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
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
    fn compacts_outside_strings_only() {
        assert_eq!(compact_json("{\n  \"a b\": [1, \"x \\\" y\"],\n \"c\":{} }"), r#"{"a b":[1,"x \" y"],"c":{}}"#);
    }

    #[test]
    fn maps_blocks_and_usage() {
        let body = br#"{"type":"message","id":"msg_1","model":"claude","stop_reason":"max_tokens",
            "content":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"redacted_thinking","data":"d"},
                       {"type":"server_tool_use","id":"srv","name":"web_search","input":{"q":1}},
                       {"type":"text","text":"a"},{"type":"tool_use","id":"c1","name":"f","input":{ "k" : [ 1 ] }}],
            "usage":{"input_tokens":1,"output_tokens":2,"cache_read_input_tokens":4,"cache_creation_input_tokens":null}}"#;
        let response = parse_response(body).unwrap();
        assert_eq!(
            response,
            ChatResponse {
                id: "msg_1".into(),
                model: "claude".into(),
                content: vec![
                    Part::Reasoning { text: "t".into(), signature: Some("s".into()) },
                    Part::RedactedReasoning { data: "d".into() },
                    Part::Text("a".into()),
                ],
                tool_calls: vec![ToolCall { id: "c1".into(), name: "f".into(), arguments: r#"{"k":[1]}"#.into() }],
                finish_reason: FinishReason::Length,
                usage: Usage { prompt_tokens: 5, completion_tokens: 2, cache_read_tokens: 4, ..Usage::default() },
            }
        );
    }

    #[test]
    fn error_and_garbage_bodies() {
        let overloaded =
            parse_response(br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#);
        assert_eq!(overloaded, Err(ProviderError::new(ProviderErrorKind::Overloaded, "Overloaded")));
        assert_eq!(parse_response(b"<html>").unwrap_err().kind, ProviderErrorKind::Malformed);
        assert_eq!(parse_response(b"[]").unwrap_err().kind, ProviderErrorKind::Malformed);
    }
}
