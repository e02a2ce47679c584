//! Prepare, send and relay one chat completion: pick the endpoint, rewrite the body for the provider,
//! exchange with it, and relay the answer (JSON, an error body, or an SSE stream) to the client.
//!
//! Stream relay is a loop over three states: waiting for the next upstream piece, writing what was
//! rewritten, and finished (cleanly, with an in-band error, or by the client leaving). After the
//! response head went out, a failure can no longer change the status: it becomes an SSE error event
//! and the connection closes. Nothing is ever replayed.

use super::WorkerContext;
use super::client::ClientConn;
use super::connection::Request;
use crate::api::route_fields::{self, RouteFields};
use crate::error::{ErrorKind, GatewayError};
use crate::http::response::ResponseHead;
use crate::http::write::{OutFraming, write_chunk, write_last_chunk, write_response_head};
use crate::providers;
use crate::routing::{Endpoint, Snapshot};
use crate::sse::{ModelRewriter, escape_json_str, rewrite_model_in_json};
use crate::upstream::{self, BodyReader, UpstreamResponse};

/// Upstream response headers passed on to the client. The rest (provider account ids, rate-limit
/// details, cookies) describe the gateway's provider account, not the client's request.
const FORWARDED_HEADERS: [&str; 2] = ["content-type", "retry-after"];

/// `Ok(reusable)` once a response was written; `Err` when nothing was written yet.
pub async fn handle(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    snapshot: &Snapshot,
    request: Request,
) -> Result<bool, GatewayError> {
    let fields = route_fields::extract(&request.body)?;
    let route = snapshot.model(&fields.model).ok_or_else(|| model_not_found(&fields.model))?;
    let endpoint = &route.endpoints[0];
    let body = route_fields::replace_model(&request.body, fields.model_span.clone(), &endpoint.model);
    let upstream_request = providers::openai::chat_request(&endpoint.provider, &body, fields.stream);
    drop(body);

    let exchange = upstream::ExchangeContext {
        pool: &cx.pool,
        tls: &cx.tls,
        connect_timeout: cx.upstream.connect_timeout,
        first_byte_timeout: cx.upstream.first_byte_timeout,
        read_idle_timeout: cx.upstream.read_idle_timeout,
    };
    let response = upstream::send(&exchange, &endpoint.provider, upstream_request)
        .await
        .map_err(|e| GatewayError::from_upstream(&endpoint.provider.name, &e))?;
    let keep_alive = request.head.keep_alive;
    let is_success = (200..300).contains(&response.head.status);
    if is_success && fields.stream && is_event_stream(&response.head) {
        relay_stream(cx, conn, &fields, endpoint, response, keep_alive).await
    } else {
        relay_buffered(cx, conn, &fields, endpoint, response, keep_alive, is_success).await
    }
}

fn model_not_found(model: &str) -> GatewayError {
    GatewayError::new(ErrorKind::ModelNotFound, format!("the model `{model}` does not exist on this gateway"))
        .with_param("model")
}

fn is_event_stream(head: &ResponseHead) -> bool {
    head.header("content-type").is_some_and(|v| v.len() >= 17 && v[..17].eq_ignore_ascii_case(b"text/event-stream"))
}

fn forwarded_headers(head: &ResponseHead) -> Vec<(&'static str, &[u8])> {
    FORWARDED_HEADERS.iter().filter_map(|&name| head.header(name).map(|v| (name, v))).collect()
}

/// Non-streaming answers and provider errors: read the whole body, rewrite `model` in successful
/// JSON answers, and send it with the provider's status.
async fn relay_buffered(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    fields: &RouteFields,
    endpoint: &Endpoint,
    response: UpstreamResponse,
    keep_alive: bool,
    is_success: bool,
) -> Result<bool, GatewayError> {
    let UpstreamResponse { head, mut body } = response;
    let bytes = body
        .read_to_end(cx.upstream.max_response_bytes)
        .await
        .map_err(|e| GatewayError::from_upstream(&endpoint.provider.name, &e))?;
    body.release(&cx.pool);

    let mut rewritten = Vec::new();
    let payload =
        if is_success && rewrite_json_model(&bytes, &fields.model, &mut rewritten) { &rewritten } else { &bytes };
    let headers = forwarded_headers(&head);
    write_response_head(&mut conn.out, head.status, &headers, OutFraming::Length(payload.len() as u64), keep_alive);
    conn.out.extend_from_slice(payload);
    Ok(conn.flush().await.is_ok())
}

fn rewrite_json_model(json: &[u8], model: &str, out: &mut Vec<u8>) -> bool {
    let mut escaped = Vec::with_capacity(model.len());
    escape_json_str(model, &mut escaped);
    rewrite_model_in_json(json, &escaped, out)
}

/// How a stream relay ended.
enum StreamEnd {
    /// The provider finished the body; the client got all of it.
    Complete,
    /// The provider failed mid-stream; the client got an in-band error event.
    ProviderFailed,
    /// The client went away; the provider connection is dropped.
    ClientGone,
}

async fn relay_stream(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    fields: &RouteFields,
    endpoint: &Endpoint,
    response: UpstreamResponse,
    keep_alive: bool,
) -> Result<bool, GatewayError> {
    let UpstreamResponse { head, mut body } = response;
    let mut headers = forwarded_headers(&head);
    headers.push(("cache-control", b"no-cache"));
    write_response_head(&mut conn.out, head.status, &headers, OutFraming::Chunked, keep_alive);
    if conn.flush().await.is_err() {
        return Ok(false);
    }
    let mut rewriter = ModelRewriter::new(&fields.model);
    let end = pump_events(conn, &mut body, &mut rewriter, &endpoint.provider.name).await;
    match end {
        StreamEnd::Complete => {
            body.release(&cx.pool);
            write_last_chunk(&mut conn.out);
            Ok(conn.flush().await.is_ok() && keep_alive)
        }
        StreamEnd::ProviderFailed => {
            write_last_chunk(&mut conn.out);
            let _ = conn.flush().await;
            Ok(false)
        }
        StreamEnd::ClientGone => Ok(false),
    }
}

/// Moves events from provider to client until the body ends, fails, or the client leaves. One
/// chunk per upstream read: every event is flushed as soon as its line is complete.
async fn pump_events(
    conn: &mut ClientConn,
    body: &mut BodyReader,
    rewriter: &mut ModelRewriter,
    provider: &str,
) -> StreamEnd {
    let mut events = Vec::with_capacity(16 * 1024);
    loop {
        let finished = match body.next_piece().await {
            Ok(Some(piece)) => {
                rewriter.feed(piece, &mut events);
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
                return StreamEnd::ProviderFailed;
            }
        };
        if !events.is_empty() {
            write_chunk(&mut conn.out, &events);
            events.clear();
            if !finished && conn.flush().await.is_err() {
                return StreamEnd::ClientGone;
            }
        }
        if finished {
            return StreamEnd::Complete;
        }
    }
}
