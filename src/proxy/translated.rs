//! Attempts at providers that speak another format than the client: the client's OpenAI request is
//! parsed once into the internal model (`chat`), each attempt renders it for its provider, and the
//! provider's answer is translated back into OpenAI's JSON or `chat.completion.chunk` stream.
//!
//! Streams go through the one relay (`stream`) with a translating codec: held until their first
//! committing event, so an error as the first event (Anthropic's `overloaded_error`) still moves on
//! to the next candidate; after that, failures end the stream in-band.

use std::time::{Duration, Instant};

use super::WorkerContext;
use super::client::ClientConn;
use super::serving::{
    Attempt, AttemptRun, Failure, Meta, Serving, apply_retry_after, cool_down, fallback_answer_id, gateway_metadata,
    is_retryable_status, note_served, outcome_of, response_headers,
};
use super::stream::{Codec, Ended};
use crate::chat::{ChatRequest, ProviderError, ProviderErrorKind};
use crate::error::{ErrorKind, GatewayError};
use crate::health::Outcome;
use crate::http::write::OutFraming;
use crate::providers::adapter::{Adapter, EndpointCall};
use crate::upstream::UpstreamResponse;

/// Largest error body read from a provider.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

fn outcome_of_provider_error(error: &ProviderError) -> Outcome {
    match error.kind {
        ProviderErrorKind::RateLimited => Outcome::RateLimited,
        k if k.is_client_fault() => Outcome::ClientError,
        _ => Outcome::ServerError,
    }
}

/// One attempt at a provider that speaks another format than the client: the internal request is
/// rendered for it, and its answer translated back.
pub async fn attempt(run: &AttemptRun<'_>, conn: &mut ClientConn, ir: &ChatRequest) -> Attempt {
    let endpoint = run.candidate.endpoint;
    let prepared = {
        let tokens = run.call.cx.access_tokens();
        let call = EndpointCall { provider: &endpoint.provider, model: &endpoint.model, tokens: &tokens };
        Adapter::of(&endpoint.provider, &endpoint.model).translated_request(&call, ir)
    };
    let (mut response, ttfb) = match run.send(prepared).await {
        Ok(sent) => sent,
        Err(failed) => return failed,
    };
    let serving = run.serving(ttfb, ir.include_usage);
    if !(200..300).contains(&response.head.status) {
        return provider_error(run, conn, &serving, &mut response).await;
    }
    let end = if ir.stream {
        stream(run.call.cx, conn, &serving, &mut response, ir, run.call.deadline).await
    } else {
        buffered(run.call.cx, conn, &serving, &mut response).await
    };
    run.served(ttfb, end)
}

/// A non-2xx answer: translated into an OpenAI error; retried elsewhere when it says so.
async fn provider_error(
    run: &AttemptRun<'_>,
    conn: &mut ClientConn,
    serving: &Serving<'_>,
    response: &mut UpstreamResponse,
) -> Attempt {
    let (cx, snapshot) = (run.call.cx, run.call.snapshot);
    let provider = &serving.candidate.endpoint.provider;
    apply_retry_after(cx, snapshot, serving.candidate, &response.head);
    let UpstreamResponse { head, body } = response;
    let bytes = body.read_to_end(MAX_ERROR_BODY_BYTES).await.unwrap_or_default();
    body.release(&cx.pool);
    let adapter = Adapter::of(provider, &serving.candidate.endpoint.model);
    let mut error = adapter.classify_error(head, &bytes);
    // A provider's message may quote what it was sent, the gateway's key included.
    error.message = provider.scrub_str(&error.message);
    if let Some(pause) = adapter.retry_delay_in_body(head.status, &bytes) {
        cool_down(cx, snapshot, serving.candidate, pause);
    }
    run.record(outcome_of_provider_error(&error), Some(serving.ttfb));
    let status = serving.front_door.error_status(&error);
    let body = serving.front_door.error_body(&error);
    let retry_after = head.header("retry-after").map(<[u8]>::to_vec);
    if is_retryable_status(head.status) || error.retryable() {
        let content_type = Some(b"application/json".to_vec());
        return run.failed(Failure::Status { status, retry_after, content_type, body });
    }
    note_served(serving, None, Duration::ZERO);
    let meta = Meta::new(serving, None);
    let mut headers = response_headers(head, serving, &meta);
    headers.retain(|(name, _)| *name != "content-type");
    headers.push(("content-type", b"application/json"));
    conn.write_head(status, &headers, OutFraming::Length(body.len() as u64), serving.keep_alive);
    conn.out.extend_from_slice(&body);
    Attempt::Served(conn.flush().await.is_ok() && serving.keep_alive)
}

/// A streamed 2xx: decoded by the endpoint's translator, encoded in the client's format, relayed.
async fn stream(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    serving: &Serving<'_>,
    response: &mut UpstreamResponse,
    ir: &ChatRequest,
    deadline: Instant,
) -> Ended {
    let endpoint = serving.candidate.endpoint;
    let translator = Adapter::of(&endpoint.provider, &endpoint.model).translator(&response.head);
    let model = &serving.candidate.model.id;
    let encoder =
        serving.front_door.stream_encoder(model, crate::clock::unix_now(), ir.include_usage, &response_id(serving));
    let hold_until = deadline.min(crate::clock::now() + cx.settings().routing.first_event_timeout);
    super::stream::relay(cx, conn, serving, response, Codec::translated(translator, encoder), hold_until).await
}

/// The id a format that names answers shows for this one (the Responses API's `resp_...`): the
/// request id, unique within the process and echoed in `x-request-id`.
fn response_id(serving: &Serving<'_>) -> String {
    format!("resp_{}", serving.call.borrow().request_id)
}

async fn buffered(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    serving: &Serving<'_>,
    response: &mut UpstreamResponse,
) -> Ended {
    let provider = &serving.candidate.endpoint.provider;
    let UpstreamResponse { head, body } = response;
    let bytes = match body.read_to_end(cx.settings().upstream.max_response_bytes).await {
        Ok(bytes) => bytes,
        Err(e) => return Err((outcome_of(&e), GatewayError::from_upstream(&provider.name, &e))),
    };
    let waited = body.waited();
    body.release(&cx.pool);
    let mut answer = match Adapter::of(provider, &serving.candidate.endpoint.model).parse_response(head, &bytes) {
        Ok(answer) => answer,
        Err(error) => {
            let why = format!("provider `{}` sent an answer that cannot be read: {}", provider.name, error.message);
            return Err((Outcome::ServerError, GatewayError::new(ErrorKind::BadGateway, why)));
        }
    };
    if answer.id.is_empty() {
        answer.id = fallback_answer_id(serving);
    }
    let metadata = gateway_metadata(serving, &answer.usage);
    let response_id = response_id(serving);
    let json = serving.front_door.encode_response(
        &answer,
        &serving.candidate.model.id,
        crate::clock::unix_now(),
        Some(&metadata),
        &response_id,
    );
    let cost = note_served(serving, Some(answer.usage), waited);
    let meta = Meta::new(serving, Some(cost));
    let mut headers = response_headers(head, serving, &meta);
    headers.retain(|(name, _)| *name != "content-type");
    headers.push(("content-type", b"application/json"));
    conn.write_head(200, &headers, OutFraming::Length(json.len() as u64), serving.keep_alive);
    conn.out.extend_from_slice(&json);
    serving.tap(&json);
    let content_type = b"application/json";
    serving.tap_end(crate::cache::Ending { status: 200, content_type, stream: false, usage_comment: false });
    Ok((Outcome::Success, conn.flush().await.is_ok() && serving.keep_alive))
}
