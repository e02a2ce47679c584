//! A non-streaming `generateContent` body -> internal response. Parts map as in the stream
//! (`wire.rs`): text, thought text as reasoning, function calls with `call_<n>` ids; the finish
//! reason follows the same rules, and a prompt blocked before any candidate is an empty
//! `content_filter` answer, as OpenAI reports a filtered prompt. Non-2xx bodies are not read here
//! (`classify_error` in the parent module).

use super::wire::{Piece, WireResponse};
use super::{final_reason, finish_reason};
use crate::chat::{ChatResponse, FinishReason, Part, ProviderError, ProviderErrorKind, ToolCall};

/// Parses a 2xx body. An `error` envelope in it is classified like an error status; a body that is
/// not a `GenerateContentResponse`, or one with neither a candidate nor a blocked prompt, is
/// `Malformed`.
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let mut wire: WireResponse<'_> = serde_json::from_slice(body)
        .map_err(|e| ProviderError::new(ProviderErrorKind::Malformed, format!("malformed Gemini response: {e}")))?;
    if let Some(error) = &wire.error {
        return Err(error.classify(ProviderErrorKind::Server));
    }
    let mut response = ChatResponse {
        id: wire.id(),
        model: wire.model(),
        usage: wire.usage_metadata.map(|usage| usage.usage()).unwrap_or_default(),
        ..ChatResponse::default()
    };
    let reason = match wire.take_candidate() {
        Some(candidate) => {
            for part in candidate.content.into_iter().flat_map(|content| content.parts) {
                let call = u32::try_from(response.tool_calls.len()).unwrap_or(u32::MAX);
                if let Some(piece) = part.into_piece(call) {
                    add_piece(&mut response, piece);
                }
            }
            candidate.finish_reason.as_deref().map(finish_reason).unwrap_or_default()
        }
        None if wire.prompt_blocked() => FinishReason::ContentFilter,
        None => {
            return Err(ProviderError::new(ProviderErrorKind::Malformed, "Gemini answered without a candidate"));
        }
    };
    response.finish_reason = final_reason(reason, !response.tool_calls.is_empty());
    Ok(response)
}

fn add_piece(response: &mut ChatResponse, piece: Piece<'_>) {
    match piece {
        Piece::Text(text) => response.content.push(Part::Text(text.into_owned())),
        Piece::Thought(text) => response.content.push(Part::Reasoning { text: text.into_owned(), signature: None }),
        Piece::Call { id, name, arguments } => response.tool_calls.push(ToolCall { id, name, arguments }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Usage;

    #[test]
    fn maps_parts_usage_and_tool_calls() {
        let body = br#"{"candidates":[{"content":{"role":"model","parts":[
                {"text":"thinking","thought":true},{"text":"Let me look."},
                {"functionCall":{"name":"lookup","args":{"q": "a"}},"thoughtSignature":"c2ln"},
                {"functionCall":{"name":"lookup","args":{"q":"b"}}}]},
              "finishReason":"STOP","avgLogprobs":-0.1}],
            "usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5,"thoughtsTokenCount":2,
                             "cachedContentTokenCount":4,"totalTokenCount":17},
            "modelVersion":"gemini-2.5-flash","responseId":"resp_1"}"#;
        assert_eq!(
            parse_response(body).unwrap(),
            ChatResponse {
                id: "resp_1".into(),
                model: "gemini-2.5-flash".into(),
                content: vec![
                    Part::Reasoning { text: "thinking".into(), signature: None },
                    Part::Text("Let me look.".into()),
                ],
                tool_calls: vec![
                    ToolCall { id: "call_0".into(), name: "lookup".into(), arguments: r#"{"q":"a"}"#.into() },
                    ToolCall { id: "call_1".into(), name: "lookup".into(), arguments: r#"{"q":"b"}"#.into() },
                ],
                finish_reason: FinishReason::ToolCalls,
                usage: Usage {
                    prompt_tokens: 10,
                    completion_tokens: 7,
                    cache_read_tokens: 4,
                    cache_write_tokens: 0,
                    reasoning_tokens: 2
                },
            }
        );
    }

    #[test]
    fn blocked_prompts_and_filtered_answers() {
        let blocked =
            parse_response(br#"{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":3}}"#)
                .unwrap();
        assert_eq!(
            (blocked.finish_reason, blocked.content.len(), blocked.usage.prompt_tokens),
            (FinishReason::ContentFilter, 0, 3)
        );
        let filtered = parse_response(br#"{"candidates":[{"finishReason":"RECITATION"}]}"#).unwrap();
        assert_eq!(filtered.finish_reason, FinishReason::ContentFilter);
        let cut =
            parse_response(br#"{"candidates":[{"content":{"parts":[{"text":"a"}]},"finishReason":"MAX_TOKENS"}]}"#);
        assert_eq!(cut.unwrap().finish_reason, FinishReason::Length);
    }

    #[test]
    fn error_and_garbage_bodies() {
        let unavailable =
            parse_response(br#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#);
        assert_eq!(unavailable, Err(ProviderError::new(ProviderErrorKind::Overloaded, "The model is overloaded.")));
        for body in [&b"<html>"[..], b"[]", b"{}", br#"{"candidates":[]}"#, br#"{"candidates":null}"#] {
            assert_eq!(parse_response(body).unwrap_err().kind, ProviderErrorKind::Malformed, "{body:?}");
        }
    }
}
