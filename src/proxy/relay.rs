//! Relaying a provider's answer to the client: buffered JSON and error bodies, and SSE streams held
//! until their first event, then pumped one upstream read at a time.
//!
//! The stream pump is a loop over explicit ends (`StreamEnd`): the provider finished, the provider
//! failed after the head went out (an in-band error event, then close), or the client left.

use std::time::Instant;

use super::WorkerContext;
use super::client::ClientConn;
use super::lifecycle::Phase;
use super::serving::{Failure, Meta, Serving, gateway_metadata, note_served, response_headers, usage_comment};
use crate::api::FrontDoor;
use crate::error::{ErrorKind, GatewayError};
use crate::http::response::ResponseHead;
use crate::http::write::{OutFraming, write_chunk, write_last_chunk};
use crate::sse::audit::{StreamAudit, StreamFormat};
use crate::sse::{ModelRewriter, escape_json_str, rewrite_model_in_json};
use crate::upstream::{BodyReader, UpstreamError, UpstreamResponse};

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
    let metadata = gateway_metadata(serving, &usage.unwrap_or_default());
    crate::api::ai_sdk::embeddings_response(bytes, &metadata)
        .map(|body| (status, body))
        .ok_or_else(|| UpstreamError::UnreadableAnswer("not an OpenAI embeddings list".into()))
}

fn rewrite_json_model(json: &[u8], model: &str, out: &mut Vec<u8>) -> bool {
    let mut escaped = Vec::with_capacity(model.len());
    escape_json_str(model, &mut escaped);
    rewrite_model_in_json(json, &escaped, out)
}

/// A stream that has committed (an event past its preamble arrived) or ended cleanly, held before
/// anything went to the client.
pub struct HeldStream {
    rewriter: ModelRewriter,
    audit: StreamAudit,
    /// Rewritten bytes not yet sent to the client.
    pending: Vec<u8>,
}

pub enum Held {
    Ready(HeldStream),
    /// An error event came before anything committed: the attempt failed before the client saw anything.
    ErrorEvent(String),
    Failed(UpstreamError),
}

/// The wire format a passed-through stream is in: the client's own (pass-through never changes it).
pub fn stream_format(front_door: FrontDoor) -> StreamFormat {
    match front_door {
        FrontDoor::Anthropic | FrontDoor::AnthropicCountTokens => StreamFormat::AnthropicMessages,
        FrontDoor::OpenAiResponses => StreamFormat::OpenAiResponses,
        _ => StreamFormat::OpenAiChat,
    }
}

/// Reads until the stream commits (an event past the preamble: for Anthropic, past `message_start`
/// and `ping`), ends, or errs, by `until`. Until then a failure can still go to the next provider:
/// an error event, an event that is not JSON, or a body that ends with nothing committed.
pub async fn hold_first_event(
    body: &mut BodyReader,
    gateway_model: &str,
    format: StreamFormat,
    until: Instant,
) -> Held {
    let mut rewriter = ModelRewriter::new(gateway_model);
    let mut audit = StreamAudit::new(format);
    let mut pending = Vec::with_capacity(16 * 1024);
    loop {
        let piece = match monoio::time::timeout_at(until.into(), body.next_piece()).await {
            Err(_) => return Held::Failed(UpstreamError::FirstByteTimeout),
            Ok(Err(e)) => return Held::Failed(e),
            Ok(Ok(piece)) => piece,
        };
        let ended = match piece {
            Some(bytes) => {
                rewriter.feed(bytes, &mut pending);
                false
            }
            None => {
                rewriter.finish(&mut pending);
                close_final_event(&mut pending);
                true
            }
        };
        if audit.scan(&pending).is_err() {
            return Held::Failed(UpstreamError::UnreadableAnswer("an event of the stream is not JSON".into()));
        }
        if let Some(error) = audit.early_error() {
            return Held::ErrorEvent(error_message(&pending[error]).unwrap_or_else(|| "an error event".into()));
        }
        if audit.is_committed() || audit.is_complete() {
            return Held::Ready(HeldStream { rewriter, audit, pending });
        }
        if ended {
            return Held::Failed(UpstreamError::UnreadableAnswer("the stream ended before any content".into()));
        }
    }
}

/// The message of an in-stream error payload: OpenAI's and Anthropic's `{"error": {"message"}}`,
/// the Responses API's `{"type": "error", "message"}`.
fn error_message(data: &[u8]) -> Option<String> {
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

/// Sends the head and the held events, then pumps the rest of the stream.
pub async fn relay_stream(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    serving: &Serving<'_>,
    response: UpstreamResponse,
    held: HeldStream,
) -> StreamEnd {
    let UpstreamResponse { head, mut body } = response;
    let HeldStream { rewriter, audit, pending } = held;
    let meta = Meta::new(serving, None);
    let mut headers = response_headers(&head, serving, &meta);
    headers.push(("cache-control", b"no-cache"));
    conn.write_head(head.status, &headers, OutFraming::Chunked, serving.keep_alive);
    let mut pump = Pump { rewriter, audit, events: pending, usage: Default::default(), front_door: serving.front_door };
    pump.release_events(conn);
    if conn.flush().await.is_err() {
        return StreamEnd { reusable: false, provider_failed: false };
    }
    let provider = &serving.candidate.endpoint.provider.name;
    let end = pump.run(cx, conn, &mut body, provider).await;
    note_served(serving, pump.usage.usage(), body.waited());
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

/// A passed-through stream between provider and client: the rewriter's output is audited, and only
/// whole events go out, so a failure can always be told in an event of its own.
struct Pump {
    rewriter: ModelRewriter,
    audit: StreamAudit,
    /// Rewritten lines not sent yet: the start of an event whose blank line has not arrived.
    events: Vec<u8>,
    usage: crate::metrics::usage::StreamUsage,
    front_door: FrontDoor,
}

impl Pump {
    /// Moves events from provider to client until the body ends, fails, or the client leaves. One
    /// chunk per upstream read (however many provider chunks it holds): every event is flushed as
    /// soon as the read that completed it.
    async fn run(
        &mut self,
        cx: &WorkerContext,
        conn: &mut ClientConn,
        body: &mut BodyReader,
        provider: &str,
    ) -> PumpEnd {
        // One waiter for the whole stream rather than one per event.
        let mut abort = std::pin::pin!(cx.lifecycle.reached(Phase::Aborting));
        loop {
            let next = monoio::select! {
                // The shutdown grace period is over: end the stream with an error the client can see.
                _ = &mut abort => None,
                next = body.next_piece() => Some(next),
            };
            let Some(next) = next else {
                let why = "the gateway is shutting down; the stream was cut short";
                return self.fail(conn, GatewayError::new(ErrorKind::Unavailable, why));
            };
            match next {
                Ok(Some(piece)) => {
                    self.rewriter.feed(piece, &mut self.events);
                    while let Some(piece) = body.buffered_piece() {
                        self.rewriter.feed(piece, &mut self.events);
                    }
                }
                Ok(None) => return self.finish(conn, provider),
                Err(e) => {
                    log::warn!("stream from {provider} failed after the response started: {e}");
                    return self.fail(conn, GatewayError::from_upstream(provider, &e));
                }
            }
            if let Err(bad) = self.audit.scan(&self.events) {
                return self.fail_at(conn, bad.event_start, malformed(provider));
            }
            if self.release_events(conn) && conn.flush().await.is_err() {
                return PumpEnd::ClientGone;
            }
        }
    }

    /// Appends the complete events to the client's output; keeps the rest. True if any went.
    fn release_events(&mut self, conn: &mut ClientConn) -> bool {
        let end = self.audit.event_end();
        if end == 0 {
            return false;
        }
        self.usage.scan(&self.events[..end]);
        write_chunk(&mut conn.out, &self.events[..end]);
        self.events.drain(..end);
        self.audit.consume(end);
        true
    }

    /// The body ended: a stream that reached its format's end is complete; one that did not was cut,
    /// and the client is told so rather than left to take a truncated answer as final.
    fn finish(&mut self, conn: &mut ClientConn, provider: &str) -> PumpEnd {
        self.rewriter.finish(&mut self.events);
        close_final_event(&mut self.events);
        if let Err(bad) = self.audit.scan(&self.events) {
            return self.fail_at(conn, bad.event_start, malformed(provider));
        }
        if !self.audit.is_complete() {
            log::warn!("stream from {provider} ended before its final event");
            let why = format!("provider `{provider}` ended the stream before it was complete");
            let end = self.audit.event_end();
            return self.fail_at(conn, end, GatewayError::new(ErrorKind::BadGateway, why));
        }
        self.release_events(conn);
        PumpEnd::Complete
    }

    fn fail(&mut self, conn: &mut ClientConn, error: GatewayError) -> PumpEnd {
        let end = self.audit.event_end();
        self.fail_at(conn, end, error)
    }

    /// Sends the events before `event_start`, then one error event in the client's format.
    fn fail_at(&mut self, conn: &mut ClientConn, event_start: usize, error: GatewayError) -> PumpEnd {
        let mut out = std::mem::take(&mut self.events);
        out.truncate(event_start);
        self.usage.scan(&out);
        self.front_door.gateway_error_event(&error, self.audit.data_events(), &mut out);
        write_chunk(&mut conn.out, &out);
        PumpEnd::ProviderFailed
    }
}

/// At the body's end: terminates a last line and event the provider left open (clients treat the
/// end of the body as their end), so the audit judges them like any other.
fn close_final_event(buf: &mut Vec<u8>) {
    if buf.is_empty() {
        return;
    }
    if !matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.push(b'\n');
    }
    let without_terminator = match buf.as_slice() {
        [rest @ .., b'\r', b'\n'] | [rest @ .., b'\n'] | [rest @ .., b'\r'] => rest,
        _ => return,
    };
    if !without_terminator.is_empty() && !matches!(without_terminator.last(), Some(b'\n' | b'\r')) {
        buf.push(b'\n');
    }
}

fn malformed(provider: &str) -> GatewayError {
    log::warn!("stream from {provider} carried an event that is not JSON; ended it with an error");
    GatewayError::new(
        ErrorKind::BadGateway,
        format!("provider `{provider}` sent a stream event that is not valid JSON"),
    )
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
    fn a_final_event_left_open_is_closed_without_touching_a_closed_one() {
        for (given, closed) in [
            (&b"data: x"[..], &b"data: x\n\n"[..]),
            (b"data: x\n", b"data: x\n\n"),
            (b"data: x\r\n", b"data: x\r\n\n"),
            (b"data: x\n\n", b"data: x\n\n"),
            (b"data: x\r\n\r\n", b"data: x\r\n\r\n"),
            (b"", b""),
        ] {
            let mut buf = given.to_vec();
            close_final_event(&mut buf);
            assert_eq!(buf, closed, "{:?}", String::from_utf8_lossy(given));
        }
    }

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
