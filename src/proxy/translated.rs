//! Attempts at providers that speak another format than the client: the client's OpenAI request is
//! parsed once into the internal model (`chat`), each attempt renders it for its provider, and the
//! provider's answer is translated back into OpenAI's JSON or `chat.completion.chunk` stream.
//!
//! The failover rules are the pass-through path's (see `chat`): a translated stream is held until
//! its first committing event, so an error as the first event (Anthropic's `overloaded_error`)
//! still moves on to the next candidate; after that, failures end the stream in-band.

use std::time::{Duration, Instant};

use super::WorkerContext;
use super::client::ClientConn;
use super::lifecycle::Phase;
use super::serving::{
    Attempt, AttemptRun, Failure, Meta, Serving, apply_retry_after, cool_down, gateway_metadata, is_retryable_status,
    note_served, outcome_of, response_headers, usage_comment,
};
use crate::api::{FrontDoor, StreamEncoder};
use crate::chat::{ChatRequest, ProviderError, ProviderErrorKind, StreamEvent};
use crate::error::{ErrorKind, GatewayError};
use crate::health::Outcome;
use crate::http::write::{OutFraming, write_chunk, write_last_chunk};
use crate::providers::Translator;
use crate::providers::adapter::{Adapter, EndpointCall};
use crate::upstream::{BodyReader, UpstreamResponse};

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
    let (response, ttfb) = match run.send(prepared).await {
        Ok(sent) => sent,
        Err(failed) => return failed,
    };
    let serving = run.serving(ttfb, ir.include_usage);
    if !(200..300).contains(&response.head.status) {
        return provider_error(run, conn, &serving, response).await;
    }
    let end = if ir.stream {
        stream(run.call.cx, conn, &serving, response, ir, run.call.deadline).await
    } else {
        buffered(run.call.cx, conn, &serving, response).await
    };
    run.served(ttfb, end)
}

/// A non-2xx answer: translated into an OpenAI error; retried elsewhere when it says so.
async fn provider_error(
    run: &AttemptRun<'_>,
    conn: &mut ClientConn,
    serving: &Serving<'_>,
    response: UpstreamResponse,
) -> Attempt {
    let (cx, snapshot) = (run.call.cx, run.call.snapshot);
    let provider = &serving.candidate.endpoint.provider;
    apply_retry_after(cx, snapshot, serving.candidate, &response.head);
    let UpstreamResponse { head, mut body } = response;
    let bytes = body.read_to_end(MAX_ERROR_BODY_BYTES).await.unwrap_or_default();
    body.release(&cx.pool);
    let adapter = Adapter::of(provider, &serving.candidate.endpoint.model);
    let mut error = adapter.classify_error(&head, &bytes);
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
    let mut headers = response_headers(&head, serving, &meta);
    headers.retain(|(name, _)| *name != "content-type");
    headers.push(("content-type", b"application/json"));
    conn.write_head(status, &headers, OutFraming::Length(body.len() as u64), serving.keep_alive);
    conn.out.extend_from_slice(&body);
    Attempt::Served(conn.flush().await.is_ok() && serving.keep_alive)
}

type Ended = Result<(Outcome, bool), (Outcome, GatewayError)>;

/// The answer's id when the provider gives none (Bedrock's body has none, and its request-id header
/// may be missing): derived from the request id, so it is unique and can be found in the access log.
fn fallback_answer_id(serving: &Serving<'_>) -> String {
    format!("gen-{}", serving.call.borrow().request_id)
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
    response: UpstreamResponse,
) -> Ended {
    let provider = &serving.candidate.endpoint.provider;
    let UpstreamResponse { head, mut body } = response;
    let bytes = match body.read_to_end(cx.settings().upstream.max_response_bytes).await {
        Ok(bytes) => bytes,
        Err(e) => return Err((outcome_of(&e), GatewayError::from_upstream(&provider.name, &e))),
    };
    let waited = body.waited();
    body.release(&cx.pool);
    let mut answer = match Adapter::of(provider, &serving.candidate.endpoint.model).parse_response(&head, &bytes) {
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
    let mut headers = response_headers(&head, serving, &meta);
    headers.retain(|(name, _)| *name != "content-type");
    headers.push(("content-type", b"application/json"));
    conn.write_head(200, &headers, OutFraming::Length(json.len() as u64), serving.keep_alive);
    conn.out.extend_from_slice(&json);
    Ok((Outcome::Success, conn.flush().await.is_ok() && serving.keep_alive))
}

/// The state a translated stream carries between upstream reads.
struct TranslatedStream {
    translator: Translator,
    encoder: StreamEncoder,
    events: Vec<StreamEvent>,
    /// Encoded bytes not yet written to the client.
    pending: Vec<u8>,
    finished: bool,
    /// An error event went out: the stream ended, but not cleanly.
    errored: bool,
}

impl TranslatedStream {
    /// Translates and encodes one piece (or the end, with `None`). Returns the first error event when
    /// it arrives before anything committing, which the caller turns into a failover.
    fn absorb(&mut self, piece: Option<&[u8]>, committed: &mut bool, serving: &Serving<'_>) -> Option<ProviderError> {
        match piece {
            Some(bytes) => self.translator.feed(bytes, &mut self.events),
            None => self.translator.finish(&mut self.events),
        }
        for mut event in self.events.drain(..) {
            if let StreamEvent::Start { id, .. } = &mut event
                && id.is_empty()
            {
                *id = fallback_answer_id(serving);
            }
            if let StreamEvent::Error(error) = &event
                && !*committed
            {
                return Some(error.clone());
            }
            *committed |= event.commits();
            self.finished |= event.is_terminal();
            self.errored |= matches!(event, StreamEvent::Error(_));
            if matches!(event, StreamEvent::Finish(_)) && self.encoder.wants_gateway_metadata() {
                self.encoder.set_gateway_metadata(gateway_metadata(serving, &self.translator.usage()));
            }
            self.encoder.encode(&event, &mut self.pending);
        }
        None
    }
}

async fn stream(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    serving: &Serving<'_>,
    mut response: UpstreamResponse,
    ir: &ChatRequest,
    deadline: Instant,
) -> Ended {
    let provider = &serving.candidate.endpoint.provider;
    let model = &serving.candidate.endpoint.model;
    let translator = Adapter::of(provider, model).translator(&response.head);
    let mut state = TranslatedStream {
        translator,
        encoder: serving.front_door.stream_encoder(
            &serving.candidate.model.id,
            crate::clock::unix_now(),
            ir.include_usage,
            &response_id(serving),
        ),
        events: Vec::new(),
        pending: Vec::with_capacity(16 * 1024),
        finished: false,
        errored: false,
    };
    let hold_until = deadline.min(Instant::now() + cx.settings().routing.first_event_timeout);
    let mut committed = false;
    // Hold: read until something commits (or the stream ends), failing over on an early error.
    while !committed && !state.finished {
        let next = monoio::time::timeout_at(hold_until.into(), response.body.next_piece()).await;
        let piece = match next {
            Err(_) => return Err((Outcome::Timeout, timeout_error(&provider.name))),
            Ok(Err(e)) => return Err((outcome_of(&e), GatewayError::from_upstream(&provider.name, &e))),
            Ok(Ok(piece)) => piece,
        };
        let ended = piece.is_none();
        if let Some(error) = state.absorb(piece, &mut committed, serving) {
            let why = format!("provider `{}` began the stream with an error: {}", provider.name, error.message);
            return Err((Outcome::StreamError, GatewayError::new(ErrorKind::BadGateway, why)));
        }
        if ended {
            break;
        }
    }
    let UpstreamResponse { head, body } = response;
    let meta = Meta::new(serving, None);
    let mut headers = response_headers(&head, serving, &meta);
    headers.retain(|(name, _)| *name != "content-type");
    headers.push(("content-type", b"text/event-stream; charset=utf-8"));
    headers.push(("cache-control", b"no-cache"));
    conn.write_head(200, &headers, OutFraming::Chunked, serving.keep_alive);
    write_chunk(&mut conn.out, &state.pending);
    state.pending.clear();
    if conn.flush().await.is_err() {
        return Ok((Outcome::Success, false));
    }
    pump(cx, conn, body, state, serving).await
}

fn timeout_error(provider: &str) -> GatewayError {
    GatewayError::new(ErrorKind::GatewayTimeout, format!("provider `{provider}`: no first event in time"))
}

/// After the head went out: translate each upstream read into one client chunk.
async fn pump(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    mut body: BodyReader,
    mut state: TranslatedStream,
    serving: &Serving<'_>,
) -> Ended {
    let mut committed = true;
    let mut failed = false;
    let mut abort = std::pin::pin!(cx.lifecycle.reached(Phase::Aborting));
    while !state.finished {
        let next = monoio::select! {
            _ = &mut abort => None,
            next = body.next_piece() => Some(next),
        };
        let piece = match next {
            None => {
                fail(&mut state, ProviderErrorKind::Server, "the gateway is shutting down; the stream was cut short");
                failed = true;
                break;
            }
            Some(Err(e)) => {
                fail(
                    &mut state,
                    ProviderErrorKind::Malformed,
                    &format!("the provider connection failed mid-stream: {e}"),
                );
                failed = true;
                break;
            }
            Some(Ok(piece)) => piece,
        };
        let ended = piece.is_none();
        state.absorb(piece, &mut committed, serving);
        // Everything the same read brought goes out in the same client write.
        while !ended && !state.finished {
            let Some(piece) = body.buffered_piece() else { break };
            state.absorb(Some(piece), &mut committed, serving);
        }
        if !state.pending.is_empty() {
            write_chunk(&mut conn.out, &state.pending);
            state.pending.clear();
            if !state.finished && !ended && conn.flush().await.is_err() {
                return Ok((Outcome::Success, false));
            }
        }
        if ended {
            break;
        }
    }
    note_served(serving, Some(state.translator.usage()), body.waited());
    if serving.include_usage && serving.front_door == FrontDoor::OpenAi && !failed && state.finished && !state.errored {
        usage_comment(&serving.call.borrow(), &mut state.pending);
    }
    write_chunk(&mut conn.out, &state.pending);
    write_last_chunk(&mut conn.out);
    let flushed = conn.flush().await.is_ok();
    if failed {
        return Ok((Outcome::StreamError, false));
    }
    let clean = state.finished && !state.errored;
    if clean {
        body.release(&cx.pool);
    }
    Ok((if clean { Outcome::Success } else { Outcome::StreamError }, flushed && clean && serving.keep_alive))
}

/// Ends a committed stream with an in-band error.
fn fail(state: &mut TranslatedStream, kind: ProviderErrorKind, message: &str) {
    state.encoder.encode(&StreamEvent::Error(ProviderError::new(kind, message)), &mut state.pending);
    state.finished = true;
    state.errored = true;
}
