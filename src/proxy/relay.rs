//! Relaying a provider's answer to the client: buffered JSON and error bodies, and SSE streams held
//! until their first event, then pumped one upstream read at a time.
//!
//! The stream pump is a loop over explicit ends (`StreamEnd`): the provider finished, the provider
//! failed after the head went out (an in-band error event, then close), or the client left.

use std::borrow::Cow;

use super::WorkerContext;
use super::client::ClientConn;
use super::serving::{Failure, Meta, Serving, gateway_metadata, note_served, response_headers};
use crate::api::FrontDoor;
use crate::error::GatewayError;
use crate::http::response::ResponseHead;
use crate::http::write::OutFraming;
use crate::metrics::usage::UsageMembers;
use crate::sse::ModelReplaced;
use crate::upstream::{UpstreamError, UpstreamResponse};

pub fn is_event_stream(head: &ResponseHead) -> bool {
    head.header("content-type").is_some_and(|v| v.len() >= 17 && v[..17].eq_ignore_ascii_case(b"text/event-stream"))
}

/// Non-streaming answers and non-retryable provider errors: read the whole body, rewrite `model` in
/// successful JSON answers, send it with the provider's status. Fails only if the body could not be
/// read, before anything reached the client.
pub async fn relay_buffered(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    serving: &Serving<'_>,
    response: &mut UpstreamResponse,
    is_success: bool,
) -> Result<bool, UpstreamError> {
    let UpstreamResponse { head, body } = response;
    let whole = body.read_whole(cx.settings().upstream.max_response_bytes).await?;
    let waited = body.waited();
    // Read from the upstream connection's buffer, which goes back to the pool once the answer is
    // written below.
    let bytes = body.whole_bytes(&whole);
    // A provider's error may quote what it was sent, the gateway's key included.
    let bytes = if is_success { Cow::Borrowed(bytes) } else { serving.candidate.endpoint.provider.scrub(bytes) };
    let model = &serving.candidate.model.id;
    // What the client gets: the provider's bytes as they are, with the gateway's model in place of
    // the provider's (written straight after the head), or the AI SDK's embeddings shape.
    let (usage, answer) = match (is_success, serving.front_door) {
        // The AI SDK's embeddings door re-shapes OpenAI's answers and errors into its own.
        (_, FrontDoor::AiSdkEmbeddings) => {
            let usage = if is_success { crate::metrics::usage::from_json(&bytes) } else { None };
            match reshape_for_ai_sdk(serving, head.status, &bytes, is_success, usage) {
                Ok((status, reshaped)) => (usage, Answer::Reshaped { status, body: reshaped }),
                Err(e) => {
                    // The answer was read whole: its connection can serve another request.
                    body.release(&cx.pool);
                    return Err(e);
                }
            }
        }
        (false, _) => (None, Answer::AsSent),
        (true, _) => match usage_and_model_place(&bytes, model) {
            (usage, Some(replaced)) => (usage, Answer::ModelReplaced(replaced)),
            (usage, None) => (usage, Answer::AsSent),
        },
    };
    let cost = note_served(serving, usage, waited);
    let meta = Meta::new(serving, is_success.then_some(cost));
    let mut headers = response_headers(head, serving, &meta);
    let (status, length) = match &answer {
        Answer::Reshaped { status, body } => {
            headers.retain(|(name, _)| *name != "content-type");
            headers.push(("content-type", b"application/json"));
            (*status, body.len())
        }
        Answer::ModelReplaced(replaced) => (head.status, replaced.len()),
        Answer::AsSent => (head.status, bytes.len()),
    };
    conn.write_head(status, &headers, OutFraming::Length(length as u64), serving.keep_alive);
    let payload_start = conn.out.len();
    match &answer {
        Answer::Reshaped { body, .. } => conn.out.extend_from_slice(body),
        Answer::ModelReplaced(replaced) => replaced.write_into(&mut conn.out),
        Answer::AsSent => conn.out.extend_from_slice(&bytes),
    }
    let reshaped = matches!(answer, Answer::Reshaped { .. });
    body.release(&cx.pool);
    if is_success && !reshaped {
        serving.tap(&conn.out[payload_start..]);
        let content_type = head.header("content-type").unwrap_or(b"application/json");
        serving.tap_end(crate::cache::Ending { status, content_type, stream: false, usage_comment: false });
    }
    Ok(conn.flush().await.is_ok() && serving.keep_alive)
}

/// The AI SDK embeddings door's status and body for an OpenAI embeddings response: the SDK's shape
/// (with `providerMetadata.gateway`) for a success, its error envelope for an error.
fn reshape_for_ai_sdk(
    serving: &Serving<'_>,
    status: u16,
    bytes: &[u8],
    is_success: bool,
    usage: Option<crate::chat::Usage>,
) -> Result<(u16, Vec<u8>), UpstreamError> {
    if !is_success {
        let error = crate::providers::openai_chat::classify_error(status, bytes);
        return Ok((serving.front_door.error_status(&error), serving.front_door.error_body(&error)));
    }
    let metadata = gateway_metadata(serving, &usage.unwrap_or_default());
    crate::api::ai_sdk::embeddings_response(bytes, &metadata)
        .map(|body| (status, body))
        .ok_or_else(|| UpstreamError::UnreadableAnswer("not an OpenAI embeddings list".into()))
}

/// A buffered answer as the client gets it.
enum Answer<'a> {
    /// The provider's bytes, unchanged (errors, and answers without a model value).
    AsSent,
    /// The provider's bytes with the gateway's model id in place of the provider's.
    ModelReplaced(ModelReplaced<'a>),
    /// The AI SDK embeddings door's own shape, with its status.
    Reshaped { status: u16, body: Vec<u8> },
}

/// One walk over a successful answer: validated, its usage found, and where its model value is (to
/// be replaced by the gateway's `model` as it is written out).
fn usage_and_model_place<'a>(
    json: &'a [u8],
    model: &'a str,
) -> (Option<crate::chat::Usage>, Option<ModelReplaced<'a>>) {
    let mut usage = UsageMembers::default();
    match ModelReplaced::find(json, model, |key, value| usage.note(key, value)) {
        Ok(replaced) => (usage.parse(json), replaced),
        Err(_) => (None, None),
    }
}

/// The message of an in-stream error payload: OpenAI's and Anthropic's `{"error": {"message"}}`,
/// the Responses API's `{"type": "error", "message"}`.
pub(super) fn error_message(data: &[u8]) -> Option<String> {
    // sonic-rs recurses while it skips: bytes nested too deep never reach it.
    if data.first() != Some(&b'{') || crate::json_check::validate(data).is_err() {
        return None;
    }
    let text =
        |path: &[&str]| sonic_rs::get(data, path).ok().and_then(|m| sonic_rs::from_str::<String>(m.as_raw_str()).ok());
    text(&["error", "message"])
        .or_else(|| text(&["message"]))
        .or_else(|| sonic_rs::get(data, &["error"]).ok().map(|e| e.as_raw_str().chars().take(200).collect()))
}

/// Every attempt failed: the client gets the last failure, with how many attempts were made (and
/// `x-corelay-cache` when the response cache is on).
pub async fn send_failure(
    conn: &mut ClientConn,
    failure: Failure,
    attempts: usize,
    keep_alive: bool,
    front_door: crate::api::FrontDoor,
    cache: Option<&'static str>,
) -> Result<bool, GatewayError> {
    let attempts = attempts.to_string();
    let mut headers: Vec<(&str, &[u8])> = vec![("x-corelay-attempts", attempts.as_bytes())];
    if let Some(cache) = cache {
        headers.push(("x-corelay-cache", cache.as_bytes()));
    }
    match failure {
        Failure::Status { status, retry_after, content_type, body } => {
            if let Some(v) = &content_type {
                headers.push(("content-type", v));
            }
            if let Some(v) = &retry_after {
                headers.push(("retry-after", v));
            }
            conn.write_head(status, &headers, OutFraming::Length(body.len() as u64), keep_alive);
            conn.out.extend_from_slice(&body);
            Ok(conn.flush().await.is_ok() && keep_alive)
        }
        Failure::Error(error) => {
            log::warn!("all {attempts} attempt(s) failed: {error}");
            let body = front_door.gateway_error_body(&error);
            headers.insert(0, ("content-type", b"application/json"));
            conn.write_head(error.status(), &headers, OutFraming::Length(body.len() as u64), keep_alive);
            conn.out.extend_from_slice(&body);
            Ok(conn.flush().await.is_ok() && keep_alive)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_payloads_are_recognised() {
        assert_eq!(
            error_message(br#"{"error":{"message":"overloaded","type":"server_error"}}"#).as_deref(),
            Some("overloaded")
        );
        assert!(error_message(br#"{"error":"busy"}"#).is_some());
        assert_eq!(error_message(br#"{"id":"x","choices":[]}"#), None);
        assert_eq!(
            error_message(br#"{"type":"error","code":"server_error","message":"boom"}"#).as_deref(),
            Some("boom")
        );
        assert_eq!(error_message(b"[DONE]"), None);
    }
}
