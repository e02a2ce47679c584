//! Internal response -> OpenAI Responses `response` body (shape of OpenAI's recorded
//! `openai-responses-basic.response.json`, less the request echoes). It parses nothing.
//!
//! Output items follow the content parts in order, as `providers::openai_responses::parse_response`
//! reads them: consecutive text and refusal parts share one `message` item (each part its own
//! `output_text` / `refusal` part, not joined, so a re-read gives the same parts); each reasoning
//! part is a `reasoning` item with its text as one summary part, and a redacted part right after it
//! is that item's `encrypted_content` (else a reasoning item of its own with an empty summary);
//! reasoning signatures are not sent. Tool calls come last as `function_call` items: the internal
//! response keeps them apart from the content, so their position among the parts is not known.
//! `stop` and `tool_calls` are `completed`; `length` and `content_filter` are `incomplete` with
//! `incomplete_details.reason` `max_output_tokens` / `content_filter`.

use super::{ContentPart, Item, ResponseObject, Status, SummaryPart, finished, item_id, wire_usage};
use crate::chat::{ChatResponse, Part};

/// The body for `response`, showing `gateway_model`, `created_at` (Unix seconds) and the caller's
/// `response_id`, from which item ids are derived.
pub fn encode_response(response: &ChatResponse, gateway_model: &str, created_at: u64, response_id: &str) -> Vec<u8> {
    let (status, incomplete_details) = finished(response.finish_reason);
    let output = output_items(response, response_id, status);
    let body = ResponseObject {
        id: response_id,
        object: "response",
        created_at,
        status,
        error: None,
        incomplete_details,
        model: gateway_model,
        output: &output,
        usage: Some(wire_usage(&response.usage)),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The output items, each message and call with the response's `status`.
fn output_items(response: &ChatResponse, response_id: &str, status: Status) -> Vec<Item> {
    let mut output: Vec<Item> = Vec::with_capacity(response.content.len() + response.tool_calls.len());
    // Whether the last part was reasoning text, whose item a redacted part may still complete.
    let mut after_reasoning = false;
    for part in &response.content {
        let id = item_id_for(part, response_id, output.len());
        match part {
            Part::Text(text) => push_message_part(&mut output, id, status, ContentPart::text_of(text)),
            Part::Refusal(refusal) => {
                push_message_part(&mut output, id, status, ContentPart::Refusal { refusal: refusal.clone() });
            }
            Part::Reasoning { text, .. } => {
                let summary = if text.is_empty() { Vec::new() } else { vec![SummaryPart::new(text.clone())] };
                output.push(Item::Reasoning { id, summary, encrypted_content: None });
            }
            Part::RedactedReasoning { data } => match output.last_mut() {
                Some(Item::Reasoning { encrypted_content: slot @ None, .. }) if after_reasoning => {
                    *slot = Some(data.clone());
                }
                _ => output.push(Item::Reasoning { id, summary: Vec::new(), encrypted_content: Some(data.clone()) }),
            },
            // Media parts are input only; an answer never holds them.
            Part::Image(_) | Part::File { .. } => {}
        }
        after_reasoning = matches!(part, Part::Reasoning { .. });
    }
    for call in &response.tool_calls {
        output.push(Item::FunctionCall {
            id: item_id("fc", response_id, output.len()),
            status,
            arguments: call.arguments.clone(),
            call_id: call.id.clone(),
            name: call.name.clone(),
        });
    }
    output
}

/// The id a new item for `part` would get at `index`.
fn item_id_for(part: &Part, response_id: &str, index: usize) -> String {
    let prefix = match part {
        Part::Reasoning { .. } | Part::RedactedReasoning { .. } => "rs",
        _ => "msg",
    };
    item_id(prefix, response_id, index)
}

/// Adds `part` to the message item at the end, or to a new one.
fn push_message_part(output: &mut Vec<Item>, id: String, status: Status, part: ContentPart) {
    if let Some(Item::Message { content, .. }) = output.last_mut() {
        content.push(part);
        return;
    }
    output.push(Item::Message { id, status, content: vec![part], role: "assistant" });
}

impl ContentPart {
    fn text_of(text: &str) -> Self {
        ContentPart::OutputText { annotations: [], logprobs: [], text: text.to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::chat::{FinishReason, ToolCall, Usage};

    fn encode(response: &ChatResponse) -> Value {
        serde_json::from_slice(&encode_response(response, "acme/gw", 9, "resp_x")).unwrap()
    }

    #[test]
    fn a_text_answer_has_the_recorded_shape() {
        let response = ChatResponse {
            id: "msg_provider".into(),
            model: "claude".into(),
            content: vec![Part::Text("Hello ".into()), Part::Text("world".into())],
            usage: Usage { prompt_tokens: 3, completion_tokens: 2, cache_read_tokens: 1, ..Usage::default() },
            ..ChatResponse::default()
        };
        assert_eq!(
            encode(&response),
            json!({"id": "resp_x", "object": "response", "created_at": 9, "status": "completed", "error": null,
                   "incomplete_details": null, "model": "acme/gw",
                   "output": [{"type": "message", "id": "msg_x_0", "status": "completed", "role": "assistant", "content": [
                       {"type": "output_text", "annotations": [], "logprobs": [], "text": "Hello "},
                       {"type": "output_text", "annotations": [], "logprobs": [], "text": "world"}]}],
                   "usage": {"input_tokens": 3, "input_tokens_details": {"cached_tokens": 1}, "output_tokens": 2,
                             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 5}})
        );
    }

    #[test]
    fn reasoning_refusals_and_calls_in_order() {
        let response = ChatResponse {
            content: vec![
                Part::Reasoning { text: "a\n\nb".into(), signature: Some("sig".into()) },
                Part::RedactedReasoning { data: "gAAA".into() },
                Part::RedactedReasoning { data: "gBBB".into() },
                Part::Refusal("no".into()),
                Part::Reasoning { text: String::new(), signature: None },
            ],
            tool_calls: vec![ToolCall { id: "call_1".into(), name: "f".into(), arguments: "{}".into() }],
            finish_reason: FinishReason::ToolCalls,
            ..ChatResponse::default()
        };
        assert_eq!(
            encode(&response)["output"],
            json!([
                {"type": "reasoning", "id": "rs_x_0", "summary": [{"type": "summary_text", "text": "a\n\nb"}],
                 "encrypted_content": "gAAA"},
                {"type": "reasoning", "id": "rs_x_1", "summary": [], "encrypted_content": "gBBB"},
                {"type": "message", "id": "msg_x_2", "status": "completed", "role": "assistant",
                 "content": [{"type": "refusal", "refusal": "no"}]},
                {"type": "reasoning", "id": "rs_x_3", "summary": []},
                {"type": "function_call", "id": "fc_x_4", "status": "completed", "arguments": "{}",
                 "call_id": "call_1", "name": "f"}
            ])
        );
    }

    #[test]
    fn cut_answers_are_incomplete() {
        for (reason, why) in
            [(FinishReason::Length, "max_output_tokens"), (FinishReason::ContentFilter, "content_filter")]
        {
            let response = ChatResponse {
                content: vec![Part::Text("cut".into())],
                finish_reason: reason,
                ..ChatResponse::default()
            };
            let body = encode(&response);
            assert_eq!(body["status"], "incomplete");
            assert_eq!(body["incomplete_details"], json!({"reason": why}));
            assert_eq!(body["output"][0]["status"], "incomplete");
        }
    }
}
