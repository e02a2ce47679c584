//! A non-streaming `chat.completion` body -> internal response. Only choice 0 is read (the gateway
//! never asks for more). Parts come in the stream's order: reasoning (`reasoning_content` or
//! `reasoning`), text, refusal. `content` may be a string or, from some compatible servers, an array
//! of text parts. Tool-call arguments are kept as sent. It encodes nothing for clients.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::stream::WireUsage;
use super::{error_detail, finish_reason};
use crate::chat::{ChatResponse, Part, ProviderError, ProviderErrorKind, ToolCall};

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<WireChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<Box<RawValue>>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunction>,
}

#[derive(Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireTextPart {
    #[serde(default)]
    text: Option<String>,
}

fn malformed(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Malformed, message)
}

/// Parses a 2xx body. An `error` member (which compatible servers send with 200) is classified by its
/// type and code; a body that is not a completion with a choice 0 is `Malformed`.
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    if !body.trim_ascii_start().starts_with(b"{") {
        return Err(malformed("the OpenAI response is not a JSON object"));
    }
    let wire: WireResponse =
        serde_json::from_slice(body).map_err(|e| malformed(format!("malformed OpenAI response: {e}")))?;
    if let Some(raw) = &wire.error {
        return Err(match error_detail(raw) {
            Some(detail) => detail.classify(None),
            None => ProviderError::new(ProviderErrorKind::Server, "OpenAI reported an error without details"),
        });
    }
    let choice = wire
        .choices
        .into_iter()
        .flatten()
        .find(|choice| choice.index == 0)
        .ok_or_else(|| malformed("the OpenAI response has no choice 0"))?;
    let mut response = ChatResponse {
        id: wire.id.unwrap_or_default(),
        model: wire.model.unwrap_or_default(),
        finish_reason: choice.finish_reason.as_deref().map(finish_reason).unwrap_or_default(),
        usage: wire.usage.unwrap_or_default().usage(),
        ..ChatResponse::default()
    };
    if let Some(message) = choice.message {
        add_message(&mut response, message)?;
    }
    Ok(response)
}

fn add_message(response: &mut ChatResponse, message: WireMessage) -> Result<(), ProviderError> {
    let non_empty = |text: Option<String>| text.filter(|t| !t.is_empty());
    let reasoning = non_empty(message.reasoning_content).or_else(|| non_empty(message.reasoning));
    response.content.extend(reasoning.map(|text| Part::Reasoning { text, signature: None }));
    if let Some(raw) = &message.content {
        response.content.extend(content_texts(raw)?.into_iter().map(Part::Text));
    }
    response.content.extend(non_empty(message.refusal).map(Part::Refusal));
    response.tool_calls = message.tool_calls.into_iter().flatten().map(tool_call).collect();
    Ok(())
}

/// The texts of `content`: a string, an array of text parts, or `null`.
fn content_texts(raw: &RawValue) -> Result<Vec<String>, ProviderError> {
    let bad = |e: serde_json::Error| malformed(format!("malformed message content: {e}"));
    match raw.get().trim_start().as_bytes().first() {
        Some(b'"') => Ok(vec![serde_json::from_str::<String>(raw.get()).map_err(bad)?]),
        Some(b'[') => {
            let parts: Vec<WireTextPart> = serde_json::from_str(raw.get()).map_err(bad)?;
            Ok(parts.into_iter().filter_map(|part| part.text).collect())
        }
        Some(b'n') => Ok(Vec::new()),
        _ => Err(malformed("message content is neither a string nor an array")),
    }
}

fn tool_call(call: WireToolCall) -> ToolCall {
    let (name, arguments) = match call.function {
        Some(function) => (function.name, function.arguments),
        None => (None, None),
    };
    ToolCall {
        id: call.id.unwrap_or_default(),
        name: name.unwrap_or_default(),
        arguments: arguments.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{FinishReason, Usage};

    const CHAT: &str = crate::fixture_path!("openai/chat/");

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{CHAT}{name}")).expect("fixture present")
    }

    #[test]
    fn recorded_text_and_tool_call_responses() {
        let basic = parse_response(&fixture("openai-chat-basic.response.json")).unwrap();
        assert_eq!(
            basic,
            ChatResponse {
                id: "chatcmpl-BJjf61mLb9z5H45ClJzbx0UWKwjo1".into(),
                model: "gpt-4o-2024-08-06".into(),
                content: vec![Part::Text("The capital of France is Paris.".into())],
                tool_calls: vec![],
                finish_reason: FinishReason::Stop,
                usage: Usage { prompt_tokens: 24, completion_tokens: 8, ..Usage::default() },
            }
        );
        let tool = parse_response(&fixture("openai-chat-tool-call.response.json")).unwrap();
        assert_eq!(tool.content, vec![]);
        assert_eq!(
            tool.tool_calls,
            vec![ToolCall {
                id: "call_iXFttys57ap0o16JSlC8yhYo".into(),
                name: "get_user_country".into(),
                arguments: "{}".into()
            }]
        );
        assert_eq!((tool.finish_reason, tool.usage.total_tokens()), (FinishReason::ToolCalls, 80));
    }

    #[test]
    fn reasoning_parts_refusals_and_details() {
        let body = br#"{"id":"x","model":"m","choices":[{"index":0,"finish_reason":"content_filter","message":{
            "role":"assistant","reasoning":"hmm","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],
            "refusal":"no"}}],"usage":{"prompt_tokens":5,"completion_tokens":3,
            "prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}"#;
        let response = parse_response(body).unwrap();
        assert_eq!(
            response.content,
            vec![
                Part::Reasoning { text: "hmm".into(), signature: None },
                Part::Text("a".into()),
                Part::Text("b".into()),
                Part::Refusal("no".into()),
            ]
        );
        assert_eq!(response.finish_reason, FinishReason::ContentFilter);
        assert_eq!(
            response.usage,
            Usage {
                prompt_tokens: 5,
                completion_tokens: 3,
                cache_read_tokens: 4,
                cache_write_tokens: 0,
                reasoning_tokens: 2
            }
        );
    }

    #[test]
    fn error_and_garbage_bodies() {
        let quota = parse_response(br#"{"error":{"message":"pay up","type":"insufficient_quota"}}"#);
        assert_eq!(quota, Err(ProviderError::new(ProviderErrorKind::Billing, "pay up")));
        for body in [
            &b"<html>"[..],
            b"[]",
            b"{}",
            br#"{"choices":[{"index":1}]}"#,
            br#"{"choices":[{"message":{"content":7}}]}"#,
        ] {
            assert_eq!(parse_response(body).unwrap_err().kind, ProviderErrorKind::Malformed, "{body:?}");
        }
    }
}
