//! The OpenAI Responses front door (`POST /v1/responses`): the mappings between the Responses wire
//! format a client speaks (the OpenAI SDKs' `client.responses`, the Agents SDK, Codex CLI) and the
//! internal chat model (`crate::chat`), for requests routed to a provider of any kind:
//!
//! - [`parse_request`]: a Responses request body -> `ChatRequest`, or a [`RequestError`] naming the
//!   offending `param` (`input[2].content[0].image_url`).
//! - [`StreamEncoder`]: internal stream events -> Responses SSE (`event: <type>` / `data: <json>`,
//!   `sequence_number` from 0, no `[DONE]`), ending with `response.completed`, `response.incomplete`
//!   or `error` + `response.failed`.
//! - [`encode_response`]: an internal response -> a `response` object body.
//! - [`error_body`], [`error_status`], [`request_error_body`]: re-exported from `api::openai_chat`
//!   unchanged, since the Responses API answers errors in the chat API's envelope and statuses.
//!
//! It is the inverse of the provider adapter `providers::openai_responses` (which writes Responses
//! requests and reads Responses answers), and the two agree: a request parsed here and written by
//! that adapter, or a stream read by it and encoded here, comes back as it was wherever the internal
//! model can carry it (`tests/golden_openai_responses_front.rs` checks this on recorded traffic).
//!
//! The response id, the gateway model and `created_at` are the caller's (this module reads no clock
//! and draws no random ids); item ids are derived from the response id. It does no I/O, keeps no
//! conversation state (so `previous_response_id` and `conversation` are refused) and does not wire
//! itself into routing (`api::FrontDoor` does).

mod request;
mod response;
mod stream;

pub use request::parse_request;
pub use response::encode_response;
pub use stream::StreamEncoder;

pub use crate::api::openai_chat::{error_body, error_status, request_error_body};

use serde::Serialize;

use crate::chat::{FinishReason, ProviderError, ProviderErrorKind, Usage};

/// The usage object of a `response`. Cache writes have no Responses field; they stay in
/// `input_tokens`, which counts every input token (the internal meaning too).
#[derive(Serialize, Debug, Clone, Copy)]
struct WireUsage {
    input_tokens: u64,
    input_tokens_details: InputDetails,
    output_tokens: u64,
    output_tokens_details: OutputDetails,
    total_tokens: u64,
}

#[derive(Serialize, Debug, Clone, Copy)]
struct InputDetails {
    cached_tokens: u64,
}

#[derive(Serialize, Debug, Clone, Copy)]
struct OutputDetails {
    reasoning_tokens: u64,
}

fn wire_usage(usage: &Usage) -> WireUsage {
    WireUsage {
        input_tokens: usage.prompt_tokens,
        input_tokens_details: InputDetails { cached_tokens: usage.cache_read_tokens },
        output_tokens: usage.completion_tokens,
        output_tokens_details: OutputDetails { reasoning_tokens: usage.reasoning_tokens },
        total_tokens: usage.total_tokens(),
    }
}

/// An item's or a response's `status`.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Status {
    InProgress,
    Completed,
    Incomplete,
    Failed,
}

/// An output item, as `response.output` and the `response.output_item.*` events carry it.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Item {
    Message {
        id: String,
        status: Status,
        content: Vec<ContentPart>,
        role: &'static str,
    },
    /// OpenAI writes no `status` on reasoning items.
    Reasoning {
        id: String,
        summary: Vec<SummaryPart>,
        #[serde(skip_serializing_if = "Option::is_none")]
        encrypted_content: Option<String>,
    },
    FunctionCall {
        id: String,
        status: Status,
        arguments: String,
        call_id: String,
        name: String,
    },
}

/// A part of a message item. `annotations` and `logprobs` are always empty: no provider of
/// another format has them.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentPart {
    OutputText { annotations: [(); 0], logprobs: [(); 0], text: String },
    Refusal { refusal: String },
}

impl ContentPart {
    fn text() -> Self {
        ContentPart::OutputText { annotations: [], logprobs: [], text: String::new() }
    }
}

/// A part of a reasoning item's summary.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
struct SummaryPart {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
}

impl SummaryPart {
    fn new(text: String) -> Self {
        SummaryPart { kind: "summary_text", text }
    }
}

/// The id of output item `index`: OpenAI's prefix (`msg`, `rs`, `fc`), then the response id without
/// its `resp_` prefix, so ids are unique across responses, then the index, so they are unique within
/// one.
fn item_id(prefix: &str, response_id: &str, index: usize) -> String {
    let unique = response_id.strip_prefix("resp_").unwrap_or(response_id);
    format!("{prefix}_{unique}_{index}")
}

/// A `response` object: what `response.created` / `.in_progress` / `.completed` / `.incomplete` /
/// `.failed` and the non-streaming body carry. Request echoes (`tools`, `temperature`, ...) are left
/// out: the encoder does not see the request, and the SDKs read none of them.
#[derive(Serialize)]
struct ResponseObject<'a> {
    id: &'a str,
    object: &'static str,
    created_at: u64,
    status: Status,
    error: Option<ResponseError<'a>>,
    incomplete_details: Option<IncompleteDetails>,
    model: &'a str,
    output: &'a [Item],
    usage: Option<WireUsage>,
}

#[derive(Serialize)]
struct ResponseError<'a> {
    code: &'static str,
    message: &'a str,
}

#[derive(Serialize)]
struct IncompleteDetails {
    reason: &'static str,
}

/// The status a finished response has, and why it is incomplete when it is.
fn finished(reason: FinishReason) -> (Status, Option<IncompleteDetails>) {
    match reason {
        FinishReason::Stop | FinishReason::ToolCalls => (Status::Completed, None),
        FinishReason::Length => (Status::Incomplete, Some(IncompleteDetails { reason: "max_output_tokens" })),
        FinishReason::ContentFilter => (Status::Incomplete, Some(IncompleteDetails { reason: "content_filter" })),
    }
}

/// The in-band error `code` for a provider failure. Where OpenAI has a code for the failure it is
/// used (`insufficient_quota`, `rate_limit_exceeded`, `server_error`), so the SDKs and the
/// `openai_responses` provider read the same kind back; the others are `api::openai_chat`'s codes.
fn error_code(kind: ProviderErrorKind) -> &'static str {
    use ProviderErrorKind::*;
    match kind {
        InvalidRequest => "invalid_request_error",
        RequestTooLarge => "request_too_large",
        Authentication => "upstream_authentication_failed",
        PermissionDenied => "upstream_permission_denied",
        NotFound => "upstream_not_found",
        Billing => "insufficient_quota",
        RateLimited => "rate_limit_exceeded",
        Overloaded => "overloaded",
        Server => "server_error",
        Malformed => "upstream_protocol_error",
    }
}

/// The in-band `error` event for a gateway failure after a passed-through stream started (the
/// provider's stream broke or was cut): `sequence_number` continues the provider's numbering.
pub fn gateway_error_event(error: &crate::error::GatewayError, sequence_number: u64, out: &mut Vec<u8>) {
    let code = crate::api::openai::error_code(error.kind).unwrap_or("server_error");
    let event = serde_json::json!({
        "type": "error",
        "sequence_number": sequence_number,
        "code": code,
        "message": error.message,
        "param": null,
    });
    out.extend_from_slice(b"event: error\ndata: ");
    out.extend_from_slice(&serde_json::to_vec(&event).unwrap_or_default());
    out.extend_from_slice(b"\n\n");
}

fn response_error(error: &ProviderError) -> ResponseError<'_> {
    ResponseError { code: error_code(error.kind), message: &error.message }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::chat::RequestError;

    #[test]
    fn usage_counts_cached_and_reasoning_tokens_inside_the_totals() {
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 7,
            cache_read_tokens: 4,
            cache_write_tokens: 2,
            reasoning_tokens: 5,
        };
        assert_eq!(
            serde_json::to_value(wire_usage(&usage)).unwrap(),
            json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4}, "output_tokens": 7,
                   "output_tokens_details": {"reasoning_tokens": 5}, "total_tokens": 17})
        );
    }

    #[test]
    fn item_ids_hold_the_response_id_and_the_index() {
        assert_eq!(item_id("msg", "resp_abc", 0), "msg_abc_0");
        assert_eq!(item_id("fc", "gw-42", 3), "fc_gw-42_3");
    }

    #[test]
    fn items_have_openai_shapes() {
        let items = [
            Item::Message {
                id: "m".into(),
                status: Status::Completed,
                content: vec![ContentPart::text(), ContentPart::Refusal { refusal: "no".into() }],
                role: "assistant",
            },
            Item::Reasoning { id: "r".into(), summary: vec![SummaryPart::new("s".into())], encrypted_content: None },
            Item::FunctionCall {
                id: "f".into(),
                status: Status::InProgress,
                arguments: "{}".into(),
                call_id: "c".into(),
                name: "n".into(),
            },
        ];
        assert_eq!(
            serde_json::to_value(items).unwrap(),
            json!([
                {"type": "message", "id": "m", "status": "completed", "role": "assistant", "content": [
                    {"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
                    {"type": "refusal", "refusal": "no"}]},
                {"type": "reasoning", "id": "r", "summary": [{"type": "summary_text", "text": "s"}]},
                {"type": "function_call", "id": "f", "status": "in_progress", "arguments": "{}", "call_id": "c",
                 "name": "n"}
            ])
        );
    }

    #[test]
    fn errors_use_the_chat_envelope() {
        let error = ProviderError::new(ProviderErrorKind::RateLimited, "slow");
        let body: Value = serde_json::from_slice(&error_body(&error)).unwrap();
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(error_status(&error), 429);
        let request = RequestError::invalid("input[0]", "bad");
        let body: Value = serde_json::from_slice(&request_error_body(&request)).unwrap();
        assert_eq!(body["error"]["param"], "input[0]");
    }
}
