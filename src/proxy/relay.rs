//! Relaying a provider's answer to the client: buffered JSON and error bodies, and SSE streams held
//! until their first event, then pumped one upstream read at a time.
//!
//! The stream pump is a loop over explicit ends (`StreamEnd`): the provider finished, the provider
//! failed after the head went out (an in-band error event, then close), or the client left.

use std::time::Instant;

use super::WorkerContext;
use super::chat::{Failure, Serving};
use super::client::ClientConn;
use super::lifecycle::Phase;
use crate::api::FrontDoor;
use crate::error::{ErrorKind, GatewayError};
use crate::http::response::ResponseHead;
use crate::http::write::{OutFraming, write_chunk, write_last_chunk};
use crate::sse::{ModelRewriter, escape_json_str, rewrite_model_in_json};
use crate::upstream::{BodyReader, UpstreamError, UpstreamResponse};

/// Upstream response headers passed on to the client. The rest (provider account ids, rate-limit
/// details, cookies) describe the gateway's provider account, not the client's request.
const FORWARDED_HEADERS: [&str; 2] = ["content-type", "retry-after"];

pub fn is_event_stream(head: &ResponseHead) -> bool {
    head.header("content-type").is_some_and(|v| v.len() >= 17 && v[..17].eq_ignore_ascii_case(b"text/event-stream"))
}

/// Corelay's own response header values for the attempt that serves.
pub struct Meta {
    attempts: String,
    overhead_us: String,
    cost_micros: Option<String>,
}

impl Meta {
    /// `cost_micros` is known before the head only for buffered answers.
    pub fn new(serving: &Serving<'_>, cost_micros: Option<u64>) -> Meta {
        let call = serving.call.borrow();
        let elapsed = call.started.map_or(std::time::Duration::ZERO, |s| s.elapsed());
        let waited = call.upstream + serving.send_time;
        Meta {
            attempts: serving.attempts.to_string(),
            overhead_us: elapsed.saturating_sub(waited).as_micros().to_string(),
            cost_micros: cost_micros.map(|c| c.to_string()),
        }
    }
}

/// The provider's forwarded headers plus Corelay's own: who served, as which model, after how many
/// attempts, the gateway's own time so far, and (for buffered answers) the cost.
pub fn response_headers<'a>(
    head: &'a ResponseHead,
    serving: &'a Serving<'_>,
    meta: &'a Meta,
) -> Vec<(&'a str, &'a [u8])> {
    let mut headers: Vec<(&str, &[u8])> =
        FORWARDED_HEADERS.iter().filter_map(|&name| head.header(name).map(|v| (name, v))).collect();
    headers.push(("x-corelay-provider", serving.candidate.endpoint.provider.name.as_bytes()));
    headers.push(("x-corelay-model", serving.candidate.model.id.as_bytes()));
    headers.push(("x-corelay-attempts", meta.attempts.as_bytes()));
    headers.push(("x-corelay-overhead-us", meta.overhead_us.as_bytes()));
    if let Some(cost) = &meta.cost_micros {
        headers.push(("x-corelay-cost-usd-micros", cost.as_bytes()));
    }
    headers
}

/// Records the serving attempt's outcome in the call: provider, usage, cost, time waited upstream.
pub fn note_served(
    serving: &Serving<'_>,
    usage: Option<crate::chat::Usage>,
    waited_on_body: std::time::Duration,
) -> u64 {
    let mut call = serving.call.borrow_mut();
    call.provider = serving.candidate.endpoint.provider.name.clone();
    call.served_model = serving.candidate.model.id.clone();
    call.ttfb = Some(serving.ttfb);
    call.upstream += serving.send_time + waited_on_body;
    call.usage = usage;
    call.cost_micros = usage.map_or(0, |u| serving.candidate.endpoint.price.cost_micros(&u));
    call.cost_micros
}

/// A trailing SSE comment with the call's usage and cost, sent when the client asked for usage
/// (`stream_options.include_usage`): SSE clients ignore comments, so nothing breaks, and streams
/// from clients that did not ask stay byte for byte what the provider sent.
pub fn usage_comment(call: &crate::metrics::CallRecord, out: &mut Vec<u8>) {
    use std::io::Write;
    let _ = match call.usage {
        Some(u) => writeln!(
            out,
            ": corelay usage prompt_tokens={} completion_tokens={} cost_usd_micros={}\n",
            u.prompt_tokens, u.completion_tokens, call.cost_micros
        ),
        None => writeln!(out, ": corelay usage unreported\n"),
    };
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
    let usage = if is_success { crate::metrics::usage::from_json(&bytes) } else { None };
    // The AI SDK's embeddings door re-shapes OpenAI's answers and errors into its own.
    let reshaped = if serving.front_door == FrontDoor::AiSdkEmbeddings {
        Some(reshape_for_ai_sdk(serving, head.status, &bytes, is_success, usage)?)
    } else {
        None
    };
    let cost = note_served(serving, usage, waited);
    let mut rewritten = Vec::new();
    let (status, payload) = match &reshaped {
        Some((status, body)) => (*status, body.as_slice()),
        None if is_success && rewrite_json_model(&bytes, &serving.candidate.model.id, &mut rewritten) => {
            (head.status, rewritten.as_slice())
        }
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
    let metadata = super::translated::gateway_metadata(serving, &usage.unwrap_or_default());
    crate::api::ai_sdk::embeddings_response(bytes, &metadata)
        .map(|body| (status, body))
        .ok_or_else(|| UpstreamError::UnreadableAnswer("not an OpenAI embeddings list".into()))
}

fn rewrite_json_model(json: &[u8], model: &str, out: &mut Vec<u8>) -> bool {
    let mut escaped = Vec::with_capacity(model.len());
    escape_json_str(model, &mut escaped);
    rewrite_model_in_json(json, &escaped, out)
}

/// A stream whose first event has arrived and is not an error.
pub struct HeldStream {
    rewriter: ModelRewriter,
    /// Rewritten bytes not yet sent to the client.
    pending: Vec<u8>,
}

pub enum Held {
    Ready(HeldStream),
    /// The first event was an error: the attempt failed before the client saw anything.
    ErrorEvent(String),
    Failed(UpstreamError),
}

/// Reads until the first complete event with data, or the body's end, by `until`.
pub async fn hold_first_event(body: &mut BodyReader, gateway_model: &str, until: Instant) -> Held {
    let mut rewriter = ModelRewriter::new(gateway_model);
    let mut pending = Vec::with_capacity(16 * 1024);
    loop {
        let piece = match monoio::time::timeout_at(until.into(), body.next_piece()).await {
            Err(_) => return Held::Failed(UpstreamError::FirstByteTimeout),
            Ok(Err(e)) => return Held::Failed(e),
            Ok(Ok(piece)) => piece,
        };
        match piece {
            Some(bytes) => rewriter.feed(bytes, &mut pending),
            None => {
                rewriter.finish(&mut pending);
                return Held::Ready(HeldStream { rewriter, pending });
            }
        }
        if let Some(data) = first_event_data(&pending) {
            return match error_message(data) {
                Some(message) => Held::ErrorEvent(message),
                None => Held::Ready(HeldStream { rewriter, pending }),
            };
        }
    }
}

/// The data of the first complete SSE event that has any; `None` until one is complete.
fn first_event_data(buf: &[u8]) -> Option<&[u8]> {
    let mut data: Option<&[u8]> = None;
    let mut rest = buf;
    loop {
        let end = rest.iter().position(|&b| b == b'\n' || b == b'\r')?;
        let line = &rest[..end];
        let terminator = if rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n') { 2 } else { 1 };
        rest = &rest[end + terminator..];
        if line.is_empty() {
            if data.is_some() {
                return data;
            }
        } else if let Some(value) = line.strip_prefix(b"data:") {
            data.get_or_insert(value.strip_prefix(b" ").unwrap_or(value));
        }
    }
}

/// The message of an OpenAI-style in-stream error payload (`{"error": {...}}`), if it is one.
fn error_message(data: &[u8]) -> Option<String> {
    if data.first() != Some(&b'{') {
        return None;
    }
    let error = sonic_rs::get(data, &["error"]).ok()?;
    let message =
        sonic_rs::get(data, &["error", "message"]).ok().and_then(|m| sonic_rs::from_str::<String>(m.as_raw_str()).ok());
    Some(message.unwrap_or_else(|| error.as_raw_str().chars().take(200).collect()))
}

/// How a stream relay ended.
pub struct StreamEnd {
    pub reusable: bool,
    pub provider_failed: bool,
}

enum PumpEnd {
    Complete,
    ProviderFailed,
    ClientGone,
}

/// Sends the head and the held bytes, then pumps the rest of the stream.
pub async fn relay_stream(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    serving: &Serving<'_>,
    response: UpstreamResponse,
    held: HeldStream,
) -> StreamEnd {
    let UpstreamResponse { head, mut body } = response;
    let HeldStream { mut rewriter, pending } = held;
    let meta = Meta::new(serving, None);
    let mut headers = response_headers(&head, serving, &meta);
    headers.push(("cache-control", b"no-cache"));
    conn.write_head(head.status, &headers, OutFraming::Chunked, serving.keep_alive);
    write_chunk(&mut conn.out, &pending);
    if conn.flush().await.is_err() {
        return StreamEnd { reusable: false, provider_failed: false };
    }
    let provider = &serving.candidate.endpoint.provider.name;
    let mut usage = crate::metrics::usage::StreamUsage::default();
    usage.scan(&pending);
    let end = pump_events(cx, conn, &mut body, &mut rewriter, &mut usage, provider).await;
    note_served(serving, usage.usage(), body.waited());
    match end {
        PumpEnd::Complete => {
            body.release(&cx.pool);
            if serving.include_usage {
                let mut comment = Vec::new();
                usage_comment(&serving.call.borrow(), &mut comment);
                write_chunk(&mut conn.out, &comment);
            }
            write_last_chunk(&mut conn.out);
            StreamEnd { reusable: conn.flush().await.is_ok() && serving.keep_alive, provider_failed: false }
        }
        PumpEnd::ProviderFailed => {
            write_last_chunk(&mut conn.out);
            let _ = conn.flush().await;
            StreamEnd { reusable: false, provider_failed: true }
        }
        PumpEnd::ClientGone => StreamEnd { reusable: false, provider_failed: false },
    }
}

/// Moves events from provider to client until the body ends, fails, or the client leaves. One
/// chunk per upstream read (however many provider chunks it holds): every event is flushed as soon
/// as the read that completed it.
async fn pump_events(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    body: &mut BodyReader,
    rewriter: &mut ModelRewriter,
    usage: &mut crate::metrics::usage::StreamUsage,
    provider: &str,
) -> PumpEnd {
    let mut events = Vec::with_capacity(16 * 1024);
    // One waiter for the whole stream rather than one per event.
    let mut abort = std::pin::pin!(cx.lifecycle.reached(Phase::Aborting));
    loop {
        let next = monoio::select! {
            // The shutdown grace period is over: end the stream with an error the client can see.
            _ = &mut abort => None,
            next = body.next_piece() => Some(next),
        };
        let Some(next) = next else {
            let error =
                GatewayError::new(ErrorKind::Unavailable, "the gateway is shutting down; the stream was cut short");
            events.extend_from_slice(b"\n");
            crate::api::openai::error_event(&error, &mut events);
            write_chunk(&mut conn.out, &events);
            return PumpEnd::ProviderFailed;
        };
        let finished = match next {
            Ok(Some(piece)) => {
                rewriter.feed(piece, &mut events);
                while let Some(piece) = body.buffered_piece() {
                    rewriter.feed(piece, &mut events);
                }
                false
            }
            Ok(None) => {
                rewriter.finish(&mut events);
                true
            }
            Err(e) => {
                let error = GatewayError::from_upstream(provider, &e);
                log::warn!("stream from {provider} failed after the response started: {e}");
                // A blank line first, so the error never merges into a partially sent event.
                events.extend_from_slice(b"\n");
                crate::api::openai::error_event(&error, &mut events);
                write_chunk(&mut conn.out, &events);
                return PumpEnd::ProviderFailed;
            }
        };
        if !events.is_empty() {
            usage.scan(&events);
            write_chunk(&mut conn.out, &events);
            events.clear();
            if !finished && conn.flush().await.is_err() {
                return PumpEnd::ClientGone;
            }
        }
        if finished {
            return PumpEnd::Complete;
        }
    }
}

/// Every attempt failed: the client gets the last failure, with how many attempts were made.
pub async fn send_failure(
    conn: &mut ClientConn,
    failure: Failure,
    attempts: usize,
    keep_alive: bool,
    front_door: crate::api::FrontDoor,
) -> Result<bool, GatewayError> {
    let attempts = attempts.to_string();
    match failure {
        Failure::Status { status, retry_after, content_type, body } => {
            let mut headers: Vec<(&str, &[u8])> = vec![("x-corelay-attempts", attempts.as_bytes())];
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
            let headers: [(&str, &[u8]); 2] =
                [("content-type", b"application/json"), ("x-corelay-attempts", attempts.as_bytes())];
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
    fn the_first_event_with_data_is_found_only_when_complete() {
        assert_eq!(first_event_data(b"data: {\"a\":1}\n"), None);
        assert_eq!(first_event_data(b"data: {\"a\":1}\n\n"), Some(&b"{\"a\":1}"[..]));
        assert_eq!(first_event_data(b": ping\n\ndata:x\r\n\r\n"), Some(&b"x"[..]));
        assert_eq!(first_event_data(b"event: e\ndata: y\rdata: z\r\r"), Some(&b"y"[..]));
    }

    #[test]
    fn error_payloads_are_recognised() {
        assert_eq!(
            error_message(br#"{"error":{"message":"overloaded","type":"server_error"}}"#).as_deref(),
            Some("overloaded")
        );
        assert!(error_message(br#"{"error":"busy"}"#).is_some());
        assert_eq!(error_message(br#"{"id":"x","choices":[]}"#), None);
        assert_eq!(error_message(b"[DONE]"), None);
    }
}
