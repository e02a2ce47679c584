//! A non-streaming Responses `response` object -> internal response. It encodes nothing for
//! clients.
//!
//! Output items map in their order: a `message`'s `output_text` parts are text and its `refusal`
//! parts refusals; a `reasoning` item's summary parts become one reasoning part (parts joined by a
//! blank line, as the stream joins them), its `reasoning_text` content another, and its
//! `encrypted_content` a redacted reasoning part; a `function_call` is a tool call with its
//! `call_id`. Items of built-in tools (web search, file search, ...) ran at OpenAI and are skipped.
//! The finish reason is `length` / `content_filter` for an `incomplete` response, else `tool_calls`
//! when there are calls, else `stop`. A `failed` response or an `error` member is the error it
//! reports; a response still `queued` or `in_progress` (background mode, which Corelay never asks
//! for) is malformed, like a body that is not a response.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{IncompleteDetails, WireItem, WireUsage, completed_finish, in_band_error, incomplete_finish};
use crate::chat::{ChatResponse, Part, ProviderError, ProviderErrorKind, ToolCall};
use crate::providers::anthropic::borrow_opt;

#[derive(Deserialize)]
struct WireResponse<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    output: Option<Vec<WireItem<'a>>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
    #[serde(borrow, default)]
    incomplete_details: Option<IncompleteDetails<'a>>,
}

/// A content or summary part.
#[derive(Deserialize)]
struct WirePart<'a> {
    #[serde(rename = "type", borrow, default, deserialize_with = "borrow_opt")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    refusal: Option<Cow<'a, str>>,
}

fn malformed(message: impl Into<String>) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Malformed, message)
}

/// Parses a 2xx body (see the module doc).
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    if !body.trim_ascii_start().starts_with(b"{") {
        return Err(malformed("the OpenAI response is not a JSON object"));
    }
    let wire: WireResponse<'_> =
        serde_json::from_slice(body).map_err(|e| malformed(format!("malformed OpenAI response: {e}")))?;
    let status = wire.status.as_deref().unwrap_or("completed");
    if wire.error.is_some() || status == "failed" {
        return Err(in_band_error(wire.error));
    }
    if !matches!(status, "completed" | "incomplete") {
        return Err(malformed(format!("the OpenAI response is `{status}`, not finished")));
    }
    let output = wire.output.ok_or_else(|| malformed("the OpenAI response has no output"))?;
    let mut response = ChatResponse {
        id: owned(wire.id),
        model: owned(wire.model),
        usage: wire.usage.unwrap_or_default().usage(),
        ..ChatResponse::default()
    };
    for item in output {
        add_item(&mut response, item)?;
    }
    response.finish_reason = match status {
        "incomplete" => incomplete_finish(wire.incomplete_details.as_ref()),
        _ => completed_finish(!response.tool_calls.is_empty()),
    };
    Ok(response)
}

fn owned(text: Option<Cow<'_, str>>) -> String {
    text.map(Cow::into_owned).unwrap_or_default()
}

fn add_item(response: &mut ChatResponse, item: WireItem<'_>) -> Result<(), ProviderError> {
    match item.kind.as_ref() {
        "message" => add_message(response, parts(item.content, "content")?),
        "reasoning" => add_reasoning(response, item)?,
        "function_call" => response.tool_calls.push(ToolCall {
            // `call_id` is what a tool result must name; the item id is only a fallback.
            id: owned(item.call_id.or(item.id)),
            name: owned(item.name),
            arguments: owned(item.arguments),
        }),
        _ => {}
    }
    Ok(())
}

/// The parts of a `content` or `summary` member; absent or `null` is none.
fn parts<'a>(raw: Option<&'a RawValue>, name: &str) -> Result<Vec<WirePart<'a>>, ProviderError> {
    let Some(raw) = raw else { return Ok(Vec::new()) };
    let parts: Option<Vec<WirePart<'a>>> =
        serde_json::from_str(raw.get()).map_err(|e| malformed(format!("malformed `{name}`: {e}")))?;
    Ok(parts.unwrap_or_default())
}

fn add_message(response: &mut ChatResponse, parts: Vec<WirePart<'_>>) {
    for part in parts {
        match part.kind.as_deref() {
            Some("output_text") => response.content.push(Part::Text(owned(part.text))),
            Some("refusal") => response.content.push(Part::Refusal(owned(part.refusal))),
            _ => {}
        }
    }
}

fn add_reasoning(response: &mut ChatResponse, item: WireItem<'_>) -> Result<(), ProviderError> {
    let texts = |parts: Vec<WirePart<'_>>, kind: &str| -> Vec<String> {
        parts.into_iter().filter(|p| p.kind.as_deref() == Some(kind)).map(|p| owned(p.text)).collect()
    };
    let summary = texts(parts(item.summary, "summary")?, "summary_text").join("\n\n");
    let content = texts(parts(item.content, "content")?, "reasoning_text").concat();
    for text in [summary, content].into_iter().filter(|text| !text.is_empty()) {
        response.content.push(Part::Reasoning { text, signature: None });
    }
    if let Some(data) = item.encrypted_content.filter(|data| !data.is_empty()) {
        response.content.push(Part::RedactedReasoning { data: data.into_owned() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::{FinishReason, Usage};

    #[test]
    fn every_item_kind_in_order() {
        let body = br#"{"id":"resp_1","model":"o3-pro","status":"completed","output":[
            {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"a"},{"type":"summary_text","text":"b"}],
             "content":[{"type":"reasoning_text","text":"raw"}],"encrypted_content":"gAAA"},
            {"type":"web_search_call","id":"ws_1","status":"completed","action":{"query":"q"}},
            {"type":"message","id":"msg_1","role":"assistant","content":[
                {"type":"output_text","text":"Hi \"x\"","annotations":[]},{"type":"refusal","refusal":"no"}]},
            {"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":"{\"a\":1}"},
            {"type":"function_call","id":"fc_2","name":"g","arguments":"{}"}],
            "usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens":7,
                     "output_tokens_details":{"reasoning_tokens":5},"total_tokens":17}}"#;
        let response = parse_response(body).unwrap();
        assert_eq!(
            response,
            ChatResponse {
                id: "resp_1".into(),
                model: "o3-pro".into(),
                content: vec![
                    Part::Reasoning { text: "a\n\nb".into(), signature: None },
                    Part::Reasoning { text: "raw".into(), signature: None },
                    Part::RedactedReasoning { data: "gAAA".into() },
                    Part::Text("Hi \"x\"".into()),
                    Part::Refusal("no".into()),
                ],
                tool_calls: vec![
                    ToolCall { id: "call_1".into(), name: "f".into(), arguments: "{\"a\":1}".into() },
                    ToolCall { id: "fc_2".into(), name: "g".into(), arguments: "{}".into() },
                ],
                finish_reason: FinishReason::ToolCalls,
                usage: Usage {
                    prompt_tokens: 10,
                    completion_tokens: 7,
                    cache_read_tokens: 4,
                    cache_write_tokens: 0,
                    reasoning_tokens: 5
                },
            }
        );
    }

    #[test]
    fn incomplete_responses_say_why() {
        for (reason, finish) in
            [("max_output_tokens", FinishReason::Length), ("content_filter", FinishReason::ContentFilter)]
        {
            let body = format!(
                r#"{{"id":"r","status":"incomplete","incomplete_details":{{"reason":"{reason}"}},"output":[
                    {{"type":"message","content":[{{"type":"output_text","text":"cut"}}]}}]}}"#
            );
            let response = parse_response(body.as_bytes()).unwrap();
            assert_eq!((response.finish_reason, response.content.len()), (finish, 1), "{reason}");
        }
    }

    #[test]
    fn failed_responses_and_error_bodies_are_their_errors() {
        let failed =
            br#"{"id":"r","status":"failed","error":{"code":"insufficient_quota","message":"pay up"},"output":[]}"#;
        assert_eq!(parse_response(failed), Err(ProviderError::new(ProviderErrorKind::Billing, "pay up")));
        let envelope = br#"{"error":{"message":"slow","type":"requests","code":"rate_limit_exceeded"}}"#;
        assert_eq!(parse_response(envelope).unwrap_err().kind, ProviderErrorKind::RateLimited);
        let bare = br#"{"status":"failed","output":[]}"#;
        assert_eq!(parse_response(bare).unwrap_err().kind, ProviderErrorKind::Server);
    }

    #[test]
    fn garbage_and_unfinished_bodies_are_malformed() {
        for body in [
            &b"<html>"[..],
            b"[]",
            b"{}",
            br#"{"status":"in_progress","output":[]}"#,
            br#"{"status":"queued"}"#,
            br#"{"output":[{"type":"message","content":"text"}]}"#,
            br#"{"output":[{"id":"no type"}]}"#,
            br#"{"output":[{"type":"reasoning","summary":7}]}"#,
        ] {
            let error = parse_response(body).unwrap_err();
            assert_eq!(error.kind, ProviderErrorKind::Malformed, "{}", String::from_utf8_lossy(body));
        }
        let empty = parse_response(br#"{"output":[{"type":"message","content":null}]}"#).unwrap();
        assert_eq!((empty.content.len(), empty.finish_reason), (0, FinishReason::Stop));
    }
}
