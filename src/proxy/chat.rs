//! Prepare, send and relay one chat completion, failing over between candidate endpoints until a
//! response starts reaching the client.
//!
//! An attempt ends in one of two ways: it served the client (`Attempt::Served`: from then on nothing
//! is retried, and a later failure becomes an in-band SSE error event followed by closing the
//! connection: content is never replayed), or it failed before the first byte (`Attempt::Failed`),
//! and the next candidate is tried within the deadline, `max_attempts` and the retry budget. When
//! every attempt failed, the last failure is what the client gets.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use super::WorkerContext;
use super::cached;
use super::client::{ClientConn, Request};
use super::relay;
use super::serving::{
    Attempt, AttemptRun, CallContext, Failure, MAX_FAILED_BODY_BYTES, Serving, apply_retry_after, is_retryable_status,
    outcome_of,
};
use super::stream::Codec;
use super::translated;
use crate::api::route_fields::{self, RouteFields};
use crate::api::{FrontDoor, openai_chat};
use crate::chat::ChatRequest;
use crate::error::{ErrorKind, GatewayError};
use crate::governance::{KeyRef, Reservation, Usage as GovernedUsage};
use crate::health::Outcome;
use crate::metrics::CallRecord;
use crate::providers::adapter::{Adapter, EndpointCall, NativeOperation};
use crate::providers::openai::Operation;
use crate::routing::{Candidate, Candidates, RouteError, Snapshot, order_candidates};
use crate::upstream::UpstreamResponse;

/// `POST /v1/chat/completions`. `Ok(reusable)` once a response was written; `Err` when nothing was
/// written yet.
pub async fn handle(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    snapshot: &Snapshot,
    request: &Request,
    call: &RefCell<CallRecord>,
) -> Result<bool, GatewayError> {
    let format = ClientFormat {
        operation: NativeOperation::OpenAi(Operation::Chat),
        front_door: FrontDoor::OpenAi,
        parse: openai_chat::parse_request,
    };
    native_or_translated(cx, conn, snapshot, request, call, format).await
}

/// `POST /v1/responses`: OpenAI's Responses API, passed through to `openai_responses` providers
/// (built-in tools and stored conversations work there) and translated for every other kind.
pub async fn handle_responses(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    snapshot: &Snapshot,
    request: &Request,
    call: &RefCell<CallRecord>,
) -> Result<bool, GatewayError> {
    let format = ClientFormat {
        operation: NativeOperation::OpenAi(Operation::Responses),
        front_door: FrontDoor::OpenAiResponses,
        parse: crate::api::openai_responses::parse_request,
    };
    native_or_translated(cx, conn, snapshot, request, call, format).await
}

/// A client format's generation API: passed through to the providers that offer it, translated (from
/// the internal request `parse` gives) for the others.
struct ClientFormat {
    operation: NativeOperation,
    front_door: FrontDoor,
    parse: fn(&[u8]) -> Result<ChatRequest, crate::chat::RequestError>,
}

async fn native_or_translated(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    snapshot: &Snapshot,
    request: &Request,
    call: &RefCell<CallRecord>,
    format: ClientFormat,
) -> Result<bool, GatewayError> {
    let mut fields = route_fields::extract(&request.body)?;
    note_request(conn, call, &fields.model, fields.stream);
    note_attribution(call, fields.user.take(), std::mem::take(&mut fields.tags));
    let head = &request.head;
    fields.options = std::mem::take(&mut fields.options).with_headers(|name| head.header(name));
    let mut candidates = candidates(cx, snapshot, &fields.model, &fields.options)?;
    let ClientFormat { operation, front_door, parse } = format;
    let max_attempts = cx.settings().routing.max_attempts;
    let native = |c: &Candidate<'_>| offers(c.endpoint, operation);
    let ir = match parse_if_translating(&request.body, &candidates, max_attempts, operation, parse) {
        Ok(ir) => ir,
        // The request uses what only its own format carries (a server tool, `n` > 1, ...): the
        // providers that speak that format can still serve it, so only they are tried.
        Err(_) if candidates.iter().any(native) => {
            candidates.retain(|c| native(c));
            None
        }
        Err(error) => return Err(error),
    };
    let plan = Plan::PassThrough { request, fields: &fields, ir: ir.as_ref(), operation, front_door };
    let asked = cached::Asked::of(request, front_door, &fields.model, fields.stream);
    let cache = cached::lookup(cx, call, &asked).await;
    if let cached::Lookup::Hit(entry) = &cache {
        return cached::replay(conn, call, entry, request.head.keep_alive).await;
    }
    let admitted =
        admit(cx, request.key.as_ref(), &fields.model, &mut candidates, (request.body.len(), fields.max_tokens))
            .await?;
    let keep_alive = request.head.keep_alive;
    let result = run_attempts(cx, conn, snapshot, &plan, &candidates, keep_alive, call, cache.capture()).await;
    settle(admitted, call);
    cached::store(cx, call, cache);
    result
}

/// `POST /v1/embeddings`: passed through to OpenAI-format providers (OpenAI-compatible and Azure);
/// endpoints of other kinds are skipped, and a model with none left is a 400.
pub async fn handle_embeddings(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    snapshot: &Snapshot,
    request: &Request,
    call: &RefCell<CallRecord>,
) -> Result<bool, GatewayError> {
    let operation = NativeOperation::OpenAi(Operation::Embeddings);
    pass_through(cx, conn, snapshot, request, call, operation, FrontDoor::OpenAiEmbeddings).await
}

/// A body passed through to the model's endpoints that offer `operation` (others are skipped; a
/// model with none left is a 400 saying why), answered in `front_door`'s format.
async fn pass_through(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    snapshot: &Snapshot,
    request: &Request,
    call: &RefCell<CallRecord>,
    operation: NativeOperation,
    front_door: FrontDoor,
) -> Result<bool, GatewayError> {
    let mut fields = route_fields::extract(&request.body)?;
    fields.stream = false;
    note_request(conn, call, &fields.model, false);
    let head = &request.head;
    fields.options = std::mem::take(&mut fields.options).with_headers(|name| head.header(name));
    let mut candidates = candidates(cx, snapshot, &fields.model, &fields.options)?;
    candidates.retain(|c| offers(c.endpoint, operation));
    if candidates.is_empty() {
        let why = format!("`{}` has no endpoint that {}", fields.model, operation.offered_by());
        return Err(GatewayError::new(ErrorKind::InvalidField, why).with_param("model"));
    }
    let plan = Plan::PassThrough { request, fields: &fields, ir: None, operation, front_door };
    let admitted =
        admit(cx, request.key.as_ref(), &fields.model, &mut candidates, (request.body.len(), fields.max_tokens))
            .await?;
    let result = run_attempts(cx, conn, snapshot, &plan, &candidates, head.keep_alive, call, None).await;
    settle(admitted, call);
    result
}

/// `POST {base}/embedding-model` from the Vercel AI SDK: the model comes in a header, the values in
/// the body; sent as an OpenAI embeddings request and the answer re-shaped for the SDK.
pub async fn handle_ai_sdk_embeddings(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    snapshot: &Snapshot,
    request: &mut Request,
    call: &RefCell<CallRecord>,
) -> Result<bool, GatewayError> {
    let model = request.head.header("ai-model-id").and_then(|v| std::str::from_utf8(v).ok()).ok_or_else(|| {
        GatewayError::new(ErrorKind::InvalidField, "the ai-model-id header is required").with_param("model")
    })?;
    let body = crate::api::ai_sdk::embeddings_request(&request.body, model).map_err(request_error)?;
    request.body = body;
    let operation = NativeOperation::OpenAi(Operation::Embeddings);
    pass_through(cx, conn, snapshot, request, call, operation, FrontDoor::AiSdkEmbeddings).await
}

/// `POST /v1/messages/count_tokens`: passed through to the model's `anthropic`-kind endpoints, the
/// only kind that offers it; a model with none is a 400 naming the reason.
pub async fn handle_count_tokens(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    snapshot: &Snapshot,
    request: &Request,
    call: &RefCell<CallRecord>,
) -> Result<bool, GatewayError> {
    let operation = NativeOperation::AnthropicCountTokens;
    pass_through(cx, conn, snapshot, request, call, operation, FrontDoor::AnthropicCountTokens).await
}

/// `POST /v1/messages`: an Anthropic-format request, passed through to `anthropic` providers and
/// translated for every other kind.
pub async fn handle_messages(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    snapshot: &Snapshot,
    request: &Request,
    call: &RefCell<CallRecord>,
) -> Result<bool, GatewayError> {
    let format = ClientFormat {
        operation: NativeOperation::AnthropicMessages,
        front_door: FrontDoor::Anthropic,
        parse: crate::api::anthropic_messages::parse_request,
    };
    native_or_translated(cx, conn, snapshot, request, call, format).await
}

/// `POST {base}/language-model` from the Vercel AI SDK: model and streaming come in headers, routing
/// options in `providerOptions.gateway`; translated for every provider.
pub async fn handle_ai_sdk(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    snapshot: &Snapshot,
    request: &Request,
    call: &RefCell<CallRecord>,
    spec: crate::api::ai_sdk::SpecVersion,
) -> Result<bool, GatewayError> {
    let head = &request.head;
    let text = |name: &str| head.header(name).and_then(|v| std::str::from_utf8(v).ok());
    let model = text("ai-language-model-id").ok_or_else(|| {
        GatewayError::new(ErrorKind::InvalidField, "the ai-language-model-id header is required").with_param("model")
    })?;
    let stream = text("ai-language-model-streaming").is_some_and(|v| v.trim() == "true");
    let ir = crate::api::ai_sdk::parse_request(&request.body, model, stream).map_err(request_error)?;
    note_request(conn, call, &ir.model, ir.stream);
    let gateway = crate::api::ai_sdk::gateway_options(&request.body).map_err(request_error)?;
    note_attribution(call, gateway.user.clone(), gateway.tags.clone());
    let options = crate::routing::RoutingOptions {
        order: gateway.order,
        only: (!gateway.only.is_empty()).then_some(gateway.only),
        models: gateway.models,
    }
    .with_headers(|name| head.header(name));
    let mut candidates = candidates(cx, snapshot, &ir.model, &options)?;
    let plan = Plan::Translated { ir: &ir, front_door: FrontDoor::AiSdk(spec) };
    let cache = cached::lookup(cx, call, &cached::Asked::of(request, plan.front_door(), &ir.model, ir.stream)).await;
    if let cached::Lookup::Hit(entry) = &cache {
        return cached::replay(conn, call, entry, head.keep_alive).await;
    }
    let admitted =
        admit(cx, request.key.as_ref(), &ir.model, &mut candidates, (request.body.len(), ir.max_tokens.map(u64::from)))
            .await?;
    let result = run_attempts(cx, conn, snapshot, &plan, &candidates, head.keep_alive, call, cache.capture()).await;
    settle(admitted, call);
    cached::store(cx, call, cache);
    result
}

/// A governed key's admission, before any provider is called: the key may use the model (fallback
/// models it may not use are dropped), its limits and budgets hold with this request's estimate
/// reserved. A denial is the client's answer (429 with `Retry-After`, or 403), in its format.
async fn admit(
    cx: &WorkerContext,
    key: Option<&KeyRef>,
    model: &str,
    candidates: &mut Candidates<'_>,
    (body_bytes, max_tokens): (usize, Option<u64>),
) -> Result<Option<Reservation>, GatewayError> {
    let (Some(governor), Some(key)) = (cx.governor.as_ref(), key) else { return Ok(None) };
    candidates.retain(|c| *c.model.id == *model || key.policy.allows_model(&c.model.id));
    let estimate = governor.estimate(body_bytes, max_tokens, candidates.iter().map(|c| &c.endpoint.price));
    match governor.admit(key, model, crate::clock::unix_now_ms(), estimate).await {
        Ok(reservation) => Ok(Some(reservation)),
        Err(denial) => {
            let kind = if denial.status == 429 { ErrorKind::RateLimited } else { ErrorKind::Forbidden };
            let mut error = GatewayError::new(kind, denial.message);
            error.retry_after_s = denial.retry_after_s;
            Err(error)
        }
    }
}

/// Settles an admitted request with what its answer cost: its usage and cost when a provider served
/// (the reservation's estimate when the usage never came, as when the client left mid-stream). A
/// request no provider served is released (dropping the reservation), not charged.
fn settle(admitted: Option<Reservation>, call: &RefCell<CallRecord>) {
    let Some(reservation) = admitted else { return };
    let record = call.borrow();
    if record.provider.is_empty() {
        return;
    }
    let used = match record.usage {
        Some(u) => GovernedUsage { tokens: u.prompt_tokens + u.completion_tokens, cost_micros: record.cost_micros },
        None => reservation.estimate(),
    };
    reservation.settle(crate::clock::unix_now_ms(), used);
}

fn note_request(conn: &mut ClientConn, call: &RefCell<CallRecord>, model: &str, stream: bool) {
    // A stream keeps its connection busy for its whole life and nothing is read from it meanwhile:
    // its read buffer goes back here, once for every stream (pass-through or translated), rather
    // than at the first event, as thousands of streams opened at once all wait on their providers
    // together (`loadtest/streams`).
    if stream {
        conn.release_read_buffer();
    }
    let mut record = call.borrow_mut();
    record.model = crate::buffers::call_text(model);
    record.stream = stream;
}

/// The end user and tags the client named, for the access log and the history.
fn note_attribution(call: &RefCell<CallRecord>, user: Option<String>, tags: Vec<String>) {
    let mut record = call.borrow_mut();
    record.user = user.unwrap_or_default();
    record.tags = tags;
}

fn candidates<'s>(
    cx: &WorkerContext,
    snapshot: &'s Snapshot,
    model: &str,
    options: &crate::routing::RoutingOptions,
) -> Result<Candidates<'s>, GatewayError> {
    let now = crate::clock::now();
    order_candidates(
        &snapshot.routes,
        model,
        options,
        |id| cx.health.is_avoided(id, &snapshot.health, now),
        |id| snapshot.health.get(id).ttfb_p50_us,
    )
    .map_err(route_error)
}

/// What the attempts send: the client's body passed through (OpenAI's formats to OpenAI-format
/// providers, with the parsed internal request for the others where it is a chat; Anthropic's token
/// counting), or another front door's parsed request, translated for every provider.
enum Plan<'r> {
    /// A body passed through (OpenAI's formats, or Anthropic's token counting).
    PassThrough {
        request: &'r Request,
        fields: &'r RouteFields<'r>,
        ir: Option<&'r ChatRequest>,
        operation: NativeOperation,
        front_door: FrontDoor,
    },
    Translated {
        ir: &'r ChatRequest,
        front_door: FrontDoor,
    },
}

impl Plan<'_> {
    fn front_door(&self) -> FrontDoor {
        match self {
            Plan::PassThrough { front_door, .. } => *front_door,
            Plan::Translated { front_door, .. } => *front_door,
        }
    }
}

/// Tries candidates in order until one serves, within the deadline, `max_attempts` and the retry
/// budget; when none does, the last failure is the answer. `capture` copies the answer for the
/// response cache.
#[allow(clippy::too_many_arguments)]
async fn run_attempts(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    snapshot: &Snapshot,
    plan: &Plan<'_>,
    candidates: &[Candidate<'_>],
    keep_alive: bool,
    call: &RefCell<CallRecord>,
    capture: Option<&RefCell<crate::cache::Capture>>,
) -> Result<bool, GatewayError> {
    let deadline = crate::clock::now() + cx.settings().routing.deadline;
    let front_door = plan.front_door();
    let context = CallContext { cx, snapshot, call, deadline, keep_alive, front_door, capture };
    cx.retry_budget.borrow().deposit();
    let mut last_failure = None;
    let mut attempts = 0;
    for (index, candidate) in candidates.iter().take(cx.settings().routing.max_attempts).enumerate() {
        if index > 0 && !may_retry(cx, &candidates[index - 1], candidate, deadline).await {
            break;
        }
        attempts += 1;
        let run = AttemptRun::begin(context, candidate, attempts);
        let outcome = match plan {
            // A provider that does not speak the client's format gets the parsed request, translated.
            Plan::PassThrough { ir: Some(ir), operation, .. } if !offers(candidate.endpoint, *operation) => {
                translated::attempt(&run, conn, ir).await
            }
            Plan::PassThrough { request, fields, operation, .. } => {
                let exchange = PassThroughExchange { request, fields, operation: *operation };
                attempt(&run, conn, &exchange).await
            }
            Plan::Translated { ir, .. } => translated::attempt(&run, conn, ir).await,
        };
        match outcome {
            Attempt::Served(reusable) => return Ok(reusable),
            Attempt::Failed(failure) => last_failure = Some(failure),
        }
    }
    let failure = last_failure.expect("at least one candidate was tried");
    let cache = call.borrow().cache;
    relay::send_failure(conn, failure, attempts, keep_alive, plan.front_door(), cache).await
}

fn request_error(e: crate::chat::RequestError) -> GatewayError {
    let error = GatewayError::new(ErrorKind::InvalidField, e.to_string());
    match e.param() {
        Some(param) => error.with_param(param.to_string()),
        None => error,
    }
}

/// The internal request, parsed (by `parse`, the client format's parser) only when a candidate that
/// may be tried does not offer `operation` itself.
fn parse_if_translating(
    body: &[u8],
    candidates: &[Candidate<'_>],
    max_attempts: usize,
    operation: NativeOperation,
    parse: fn(&[u8]) -> Result<ChatRequest, crate::chat::RequestError>,
) -> Result<Option<ChatRequest>, GatewayError> {
    let translating = candidates.iter().take(max_attempts).any(|c| !offers(c.endpoint, operation));
    if !translating {
        return Ok(None);
    }
    parse(body).map(Some).map_err(request_error)
}

fn route_error(error: RouteError) -> GatewayError {
    match error {
        RouteError::UnknownModel(_) => {
            GatewayError::new(ErrorKind::ModelNotFound, error.to_string()).with_param("model")
        }
        _ => GatewayError::new(ErrorKind::InvalidField, error.to_string()).with_param("providerOptions"),
    }
}

/// Whether another attempt may start: within the deadline and the retry budget, after a jittered
/// backoff when it goes to the same provider again.
async fn may_retry(cx: &WorkerContext, previous: &Candidate<'_>, next: &Candidate<'_>, deadline: Instant) -> bool {
    let now = crate::clock::now();
    if now >= deadline || !cx.retry_budget.borrow().try_spend(now) {
        return false;
    }
    if previous.endpoint.provider.name == next.endpoint.provider.name {
        let pause = backoff(cx, 1);
        if now + pause >= deadline {
            return false;
        }
        // Boxed: retries are rare, and a monoio timer inline would grow every request's future.
        Box::pin(monoio::time::sleep(pause)).await;
    }
    true
}

/// Full jitter: uniform in [0, min(max, base * 2^retry)].
fn backoff(cx: &WorkerContext, retry: u32) -> Duration {
    let cap =
        cx.settings().routing.backoff_base.saturating_mul(1 << retry.min(16)).min(cx.settings().routing.backoff_max);
    let cap_us = cap.as_micros().max(1) as u64;
    Duration::from_micros(cx.next_random() % cap_us)
}

/// Whether `endpoint` takes `operation`'s body as the client sent it (model aside).
fn offers(endpoint: &crate::routing::Endpoint, operation: NativeOperation) -> bool {
    Adapter::of(&endpoint.provider, &endpoint.model).offers(operation)
}

/// A request passed through with only `model` replaced: the client's request, its routing fields,
/// the provider call.
struct PassThroughExchange<'r> {
    request: &'r Request,
    fields: &'r RouteFields<'r>,
    operation: NativeOperation,
}

/// One attempt at an endpoint that takes the client's body as sent (model and key replaced).
async fn attempt(run: &AttemptRun<'_>, conn: &mut ClientConn, exchange: &PassThroughExchange<'_>) -> Attempt {
    let (mut response, ttfb) = match run.send(native_request(run, exchange)).await {
        Ok(sent) => sent,
        Err(failed) => return failed,
    };
    let (cx, provider) = (run.call.cx, &run.candidate.endpoint.provider);
    let status = response.head.status;
    if is_retryable_status(status) {
        apply_retry_after(cx, run.call.snapshot, run.candidate, &response.head);
        let outcome = if matches!(status, 408 | 409 | 429) { Outcome::RateLimited } else { Outcome::ServerError };
        run.record(outcome, Some(ttfb));
        let failure = failed_status(cx, provider, &mut response).await;
        return run.failed(failure);
    }
    let fields = exchange.fields;
    let serving = run.serving(ttfb, fields.include_usage);
    let is_success = (200..300).contains(&status);
    if is_success && fields.stream && relay::is_event_stream(&response.head) {
        return stream(run, conn, &serving, &mut response).await;
    }
    let outcome = if is_success { Outcome::Success } else { Outcome::ClientError };
    let end = relay::relay_buffered(cx, conn, &serving, &mut response, is_success)
        .await
        .map(|reusable| (outcome, reusable))
        .map_err(|e| (outcome_of(&e), GatewayError::from_upstream(&provider.name, &e)));
    run.served(ttfb, end)
}

/// The client's body with the endpoint's model, as the request the endpoint takes.
fn native_request(run: &AttemptRun<'_>, exchange: &PassThroughExchange<'_>) -> Result<Vec<u8>, GatewayError> {
    let endpoint = run.candidate.endpoint;
    let PassThroughExchange { request, fields, operation, .. } = *exchange;
    let body = route_fields::ProviderBody::new(&request.body, fields, &endpoint.model);
    let tokens = run.call.cx.access_tokens();
    let call = EndpointCall { provider: &endpoint.provider, model: &endpoint.model, tokens: &tokens };
    Adapter::of(&endpoint.provider, &endpoint.model).native_request(
        &call,
        operation,
        &body,
        fields.stream,
        &request.head,
    )
}

/// A streamed 2xx in the client's own format: relayed with the model rewritten, held until it
/// commits, so an error before any content still fails over.
async fn stream(
    run: &AttemptRun<'_>,
    conn: &mut ClientConn,
    serving: &Serving<'_>,
    response: &mut UpstreamResponse,
) -> Attempt {
    let cx = run.call.cx;
    let hold_until = run.call.deadline.min(crate::clock::now() + cx.settings().routing.first_event_timeout);
    let codec = Codec::pass_through(&serving.candidate.model.id, serving.front_door);
    run.served(serving.ttfb, super::stream::relay(cx, conn, serving, response, codec, hold_until).await)
}

/// Keeps what is needed to pass a failed attempt's answer on, should it be the last one, with the
/// provider's secrets cut out.
async fn failed_status(
    cx: &WorkerContext,
    provider: &crate::config::resolve::ResolvedProvider,
    response: &mut UpstreamResponse,
) -> Failure {
    let UpstreamResponse { head, body } = response;
    let bytes = body.read_to_end(MAX_FAILED_BODY_BYTES).await.unwrap_or_default();
    body.release(&cx.pool);
    let bytes = provider.scrub(&bytes).into_owned();
    Failure::Status {
        status: head.status,
        retry_after: head.header("retry-after").map(<[u8]>::to_vec),
        content_type: head.header("content-type").map(<[u8]>::to_vec),
        body: bytes,
    }
}
