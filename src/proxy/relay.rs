//! Relaying a provider's answer to the client: buffered JSON and error bodies, and SSE streams held
//! until their first event, then pumped one upstream read at a time.
//!
//! The stream pump is a loop over explicit ends (`StreamEnd`): the provider finished, the provider
//! failed after the head went out (an in-band error event, then close), or the client left.

use super::WorkerContext;
use super::client::ClientConn;
use super::serving::{Failure, Meta, Serving, gateway_metadata, note_served, response_headers};
use crate::api::FrontDoor;
use crate::error::GatewayError;
use crate::http::response::ResponseHead;
use crate::http::write::OutFraming;
use crate::metrics::usage::UsageMembers;
use crate::sse::rewrite_model_in_json;
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
    response: UpstreamResponse,
    is_success: bool,
) -> Result<bool, UpstreamError> {
    let UpstreamResponse { head, mut body } = response;
    let bytes = body.read_to_end(cx.settings().upstream.max_response_bytes).await?;
    let waited = body.waited();
    body.release(&cx.pool);
    // A provider's error may quote what it was sent, the gateway's key included.
    let bytes = if is_success { bytes } else { serving.candidate.endpoint.provider.scrub(&bytes).into_owned() };
    let mut rewritten = Vec::new();
    let (usage, model_rewritten) = match (is_success, serving.front_door) {
        (false, _) => (None, false),
        (true, FrontDoor::AiSdkEmbeddings) => (crate::metrics::usage::from_json(&bytes), false),
        (true, _) => usage_and_model_rewrite(&bytes, &serving.candidate.model.id, &mut rewritten),
    };
    // The AI SDK's embeddings door re-shapes OpenAI's answers and errors into its own.
    let reshaped = if serving.front_door == FrontDoor::AiSdkEmbeddings {
        Some(reshape_for_ai_sdk(serving, head.status, &bytes, is_success, usage)?)
    } else {
        None
    };
    let cost = note_served(serving, usage, waited);
    let (status, payload) = match &reshaped {
        Some((status, body)) => (*status, body.as_slice()),
        None if model_rewritten => (head.status, rewritten.as_slice()),
        None => (head.status, bytes.as_slice()),
    };
    let meta = Meta::new(serving, is_success.then_some(cost));
    let mut headers = response_headers(&head, serving, &meta);
    if reshaped.is_some() {
        headers.retain(|(name, _)| *name != "content-type");
        headers.push(("content-type", b"application/json"));
    }
    conn.write_head(status, &headers, OutFraming::Length(payload.len() as u64), serving.keep_alive);
    conn.out.extend_from_slice(payload);
    if is_success && reshaped.is_none() {
        serving.tap(payload);
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

/// One walk over a successful answer: validated, its usage found, and (when it has a model value)
/// the answer with the gateway's `model` written to `out`; the flag says whether it was.
fn usage_and_model_rewrite(json: &[u8], model: &str, out: &mut Vec<u8>) -> (Option<crate::chat::Usage>, bool) {
    let mut usage = UsageMembers::default();
    match rewrite_model_in_json(json, model, |key, value| usage.note(key, value), out) {
        Ok(rewritten) => (usage.parse(json), rewritten),
        Err(_) => (None, false),
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
