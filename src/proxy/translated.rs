//! Attempts at providers that speak another format than the client: the client's OpenAI request is
//! parsed once into the internal model (`chat`), each attempt renders it for its provider, and the
//! provider's answer is translated back into OpenAI's JSON or `chat.completion.chunk` stream.
//!
//! The failover rules are the pass-through path's (see `chat`): a translated stream is held until
//! its first committing event, so an error as the first event (Anthropic's `overloaded_error`)
//! still moves on to the next candidate; after that, failures end the stream in-band.

use std::time::{Duration, Instant};

use super::WorkerContext;
use super::chat::{Attempt, Failure, Serving, apply_retry_after, cool_down, is_retryable_status, outcome_of};
use super::client::ClientConn;
use super::lifecycle::Phase;
use super::relay::{Meta, note_served, response_headers, usage_comment};
use crate::api::{FrontDoor, StreamEncoder};
use crate::chat::{ChatRequest, ProviderError, ProviderErrorKind, StreamEvent};
use crate::config::BedrockApi;
use crate::config::ProviderKind;
use crate::config::resolve::DEFAULT_MAX_TOKENS;
use crate::config::resolve::ResolvedProvider;
use crate::error::{ErrorKind, GatewayError};
use crate::health::Outcome;
use crate::http::response::ResponseHead;
use crate::http::write::{OutFraming, write_chunk, write_last_chunk, write_request_head};
use crate::providers::aws::sigv4::{Credentials, SigningTime};
use crate::providers::openai_chat as openai_provider;
use crate::providers::vertex_auth::TokenTable;
use crate::providers::{Translator, anthropic, bedrock, gemini, openai_responses};
use crate::upstream::{self, BodyReader, UpstreamResponse};

/// Largest error body read from a provider.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// The decoder for `provider`'s stream; `head` gives Bedrock's request id (its stream has none).
fn translator_for(provider: &ResolvedProvider, model: &str, head: &ResponseHead) -> Option<Translator> {
    match provider.kind {
        ProviderKind::Anthropic => Some(Translator::Anthropic(anthropic::StreamTranslator::new())),
        ProviderKind::Gemini => Some(Translator::Gemini(gemini::StreamTranslator::new())),
        ProviderKind::Bedrock => {
            let api = bedrock_api(provider);
            Some(Translator::Bedrock(bedrock::StreamTranslator::new(api, request_id(head))))
        }
        ProviderKind::Vertex if is_vertex_anthropic(model) => {
            Some(Translator::Anthropic(anthropic::StreamTranslator::new()))
        }
        ProviderKind::Vertex => Some(Translator::Gemini(gemini::StreamTranslator::new())),
        ProviderKind::Openai | ProviderKind::Azure => {
            Some(Translator::OpenaiChat(openai_provider::StreamTranslator::new()))
        }
        ProviderKind::OpenaiResponses => Some(Translator::OpenaiResponses(openai_responses::StreamTranslator::new())),
    }
}

/// The secret a request to `provider` carries: its service account's current access token, or its
/// static key (empty for a provider without one).
fn credential<'a>(provider: &'a ResolvedProvider, tokens: &'a TokenTable) -> Result<&'a str, GatewayError> {
    if provider.vertex.as_ref().is_some_and(|v| v.service_account.is_some()) {
        let missing = |why| GatewayError::new(ErrorKind::BadGateway, format!("provider `{}`: {why}", provider.name));
        return tokens.valid(&provider.name, crate::clock::unix_now_ms()).map_err(missing);
    }
    Ok(provider.api_key.as_ref().map_or("", |k| k.expose()))
}

/// The complete upstream request (head and body) for `provider`, authenticated with `key`.
fn build_request(
    provider: &ResolvedProvider,
    model: &str,
    ir: &ChatRequest,
    key: &str,
) -> Result<Vec<u8>, GatewayError> {
    let invalid = |e: crate::chat::RequestError| GatewayError::new(ErrorKind::InvalidField, e.to_string());
    let (body, headers, path) = match provider.kind {
        ProviderKind::Anthropic => {
            let options = anthropic::RequestOptions {
                model,
                default_max_tokens: provider.default_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
                dialect: anthropic::Dialect::Anthropic,
            };
            let body = anthropic::request_body(ir, &options).map_err(invalid)?;
            (body, anthropic::request_headers(key, ir.stream), anthropic::MESSAGES_PATH.to_string())
        }
        ProviderKind::Gemini => {
            let options = gemini::RequestOptions { default_max_tokens: provider.default_max_tokens };
            let body = gemini::request_body(ir, &options).map_err(invalid)?;
            (body, gemini::request_headers(key, ir.stream), gemini::path(model, ir.stream))
        }
        ProviderKind::Bedrock => return build_bedrock_request(provider, model, ir, key),
        ProviderKind::Vertex => {
            let vertex = provider
                .vertex
                .as_ref()
                .ok_or_else(|| GatewayError::new(ErrorKind::Internal, "vertex provider without vertex settings"))?;
            let (project, location) = (&vertex.project, &vertex.location);
            vertex_request(ir, model, project, location, key, provider.default_max_tokens).map_err(invalid)?
        }
        ProviderKind::OpenaiResponses => {
            let options = openai_responses::RequestOptions { model, reasoning_summary: false };
            let body = openai_responses::request_body(ir, &options).map_err(invalid)?;
            (body, openai_responses_headers(key, ir.stream), openai_responses::RESPONSES_PATH.to_string())
        }
        ProviderKind::Openai | ProviderKind::Azure => {
            let options = openai_provider::RequestOptions { model, legacy_max_tokens: false, pass_extra: false };
            let body = openai_provider::request_body(ir, &options).map_err(invalid)?;
            return Ok(crate::providers::openai::chat_request(provider, &body, ir.stream, model));
        }
    };
    // A provider without a key (a private deployment behind its own auth) gets no empty key header.
    let headers: Vec<(&str, &[u8])> =
        headers.iter().filter(|(_, v)| !v.is_empty()).map(|(n, v)| (*n, v.as_slice())).collect();
    let target = provider.origin.target(&path);
    let mut out = Vec::with_capacity(512 + body.len());
    write_request_head(&mut out, "POST", &target, &provider.origin.authority, &headers, Some(body.len() as u64));
    out.extend_from_slice(&body);
    Ok(out)
}

/// OpenAI's Responses API takes the key as a bearer, like chat completions.
fn openai_responses_headers(key: &str, stream: bool) -> Vec<(&'static str, Vec<u8>)> {
    let accept: &[u8] = if stream { b"text/event-stream" } else { b"application/json" };
    let authorization = if key.is_empty() { Vec::new() } else { [b"Bearer ".as_slice(), key.as_bytes()].concat() };
    vec![("content-type", b"application/json".to_vec()), ("accept", accept.to_vec()), ("authorization", authorization)]
}

/// Vertex serves Anthropic's models through `rawPredict` and Google's through `generateContent`.
pub(super) fn is_vertex_anthropic(model: &str) -> bool {
    model.starts_with("claude")
}

/// An Anthropic client's Messages body (model already replaced) for Vertex's `rawPredict`: the same
/// body without `model` (Vertex takes it from the path) and with Vertex's `anthropic_version`, under
/// the provider's access token. Everything else (`cache_control`, tools) is the client's as sent.
pub(super) fn vertex_anthropic_pass_through(
    cx: &WorkerContext,
    provider: &ResolvedProvider,
    model: &str,
    body: &[u8],
    stream: bool,
) -> Result<Vec<u8>, GatewayError> {
    let vertex = provider
        .vertex
        .as_ref()
        .ok_or_else(|| GatewayError::new(ErrorKind::Internal, "vertex provider without vertex settings"))?;
    let invalid = |why: String| GatewayError::new(ErrorKind::InvalidJson, why);
    let mut json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| invalid(format!("the request body is not a JSON object: {e}")))?;
    json.remove("model");
    json.insert("anthropic_version".into(), anthropic::VERTEX_ANTHROPIC_VERSION.into());
    let body = serde_json::to_vec(&json).map_err(|e| invalid(e.to_string()))?;
    let tokens = cx.access_tokens();
    let token = credential(provider, &tokens)?;
    let accept: &[u8] = if stream { b"text/event-stream" } else { b"application/json" };
    let authorization = [b"Bearer ".as_slice(), token.as_bytes()].concat();
    let mut headers: Vec<(&str, &[u8])> = vec![("content-type", b"application/json"), ("accept", accept)];
    if !token.is_empty() {
        headers.push(("authorization", &authorization));
    }
    let target = provider.origin.target(&anthropic::vertex_path(&vertex.project, &vertex.location, model, stream));
    let mut out = Vec::with_capacity(512 + body.len());
    write_request_head(&mut out, "POST", &target, &provider.origin.authority, &headers, Some(body.len() as u64));
    out.extend_from_slice(&body);
    Ok(out)
}

type RenderedRequest = (Vec<u8>, Vec<(&'static str, Vec<u8>)>, String);

/// Body, headers and path of a Vertex request: Anthropic's dialect (no model in the body, the Vertex
/// `anthropic_version`) or Gemini's body, both with the access token as a bearer.
fn vertex_request(
    ir: &ChatRequest,
    model: &str,
    project: &str,
    location: &str,
    token: &str,
    default_max_tokens: Option<u32>,
) -> Result<RenderedRequest, crate::chat::RequestError> {
    if !is_vertex_anthropic(model) {
        let body = gemini::request_body(ir, &gemini::RequestOptions { default_max_tokens })?;
        let path = gemini::vertex_path(project, location, model, ir.stream);
        return Ok((body, gemini::vertex_request_headers(token, ir.stream), path));
    }
    let options = anthropic::RequestOptions {
        model,
        default_max_tokens: default_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        dialect: anthropic::Dialect::Vertex,
    };
    let body = anthropic::request_body(ir, &options)?;
    let accept: &[u8] = if ir.stream { b"text/event-stream" } else { b"application/json" };
    let headers = vec![
        ("content-type", b"application/json".to_vec()),
        ("accept", accept.to_vec()),
        ("authorization", [b"Bearer ".as_slice(), token.as_bytes()].concat()),
    ];
    Ok((body, headers, anthropic::vertex_path(project, location, model, ir.stream)))
}

fn bedrock_api(provider: &ResolvedProvider) -> bedrock::Api {
    match provider.bedrock.as_ref().map(|b| b.api) {
        Some(BedrockApi::Invoke) => bedrock::Api::InvokeAnthropic,
        _ => bedrock::Api::Converse,
    }
}

fn request_id(head: &ResponseHead) -> &str {
    head.header("x-amzn-requestid").and_then(|v| std::str::from_utf8(v).ok()).unwrap_or("")
}

/// A Bedrock request, signed with SigV4 over exactly the host and path that go on the wire (or
/// carrying a Bedrock API key as a bearer token when no AWS credentials are configured).
fn build_bedrock_request(
    provider: &ResolvedProvider,
    model: &str,
    ir: &ChatRequest,
    api_key: &str,
) -> Result<Vec<u8>, GatewayError> {
    let settings = provider
        .bedrock
        .as_ref()
        .ok_or_else(|| GatewayError::new(ErrorKind::Internal, "bedrock provider without bedrock settings"))?;
    let api = bedrock_api(provider);
    let options = bedrock::RequestOptions {
        model,
        api,
        family: bedrock::ModelFamily::detect(model),
        default_max_tokens: provider.default_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
    };
    let body =
        bedrock::request_body(ir, &options).map_err(|e| GatewayError::new(ErrorKind::InvalidField, e.to_string()))?;
    let target = provider.origin.target(&bedrock::path(api, model, ir.stream));
    let host = provider.origin.authority.as_str();
    let signed = bedrock::SignedRequest { method: "POST", path: &target, host, body: &body };
    let unsigned =
        |why: String| GatewayError::new(ErrorKind::BadGateway, format!("provider `{}`: {why}", provider.name));
    let headers = match &settings.credentials {
        Some(c) => {
            let mut credentials = Credentials::new(c.access_key_id.expose(), c.secret_access_key.expose());
            if let Some(token) = &c.session_token {
                credentials = credentials.with_session_token(token.expose());
            }
            let now = crate::clock::unix_now();
            let time = SigningTime::from_unix_seconds(now).map_err(|e| unsigned(format!("cannot sign: {e:?}")))?;
            let auth = bedrock::Auth::SigV4 { region: &settings.region, credentials: &credentials, time };
            bedrock::request_headers(api, ir.stream, &auth, &signed)
        }
        None if !api_key.is_empty() => {
            bedrock::request_headers(api, ir.stream, &bedrock::Auth::Bearer(api_key), &signed)
        }
        None => return Err(unsigned("no AWS credentials or Bedrock API key configured".into())),
    }
    .map_err(|e| unsigned(format!("cannot sign the request: {e:?}")))?;
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
    let mut out = Vec::with_capacity(1024 + body.len());
    write_request_head(&mut out, "POST", &target, host, &headers, Some(body.len() as u64));
    out.extend_from_slice(&body);
    Ok(out)
}

fn classify_error(provider: &ResolvedProvider, model: &str, head: &ResponseHead, body: &[u8]) -> ProviderError {
    let status = head.status;
    match provider.kind {
        ProviderKind::Anthropic => anthropic::classify_error(status, body),
        ProviderKind::Vertex if is_vertex_anthropic(model) => anthropic::classify_error(status, body),
        ProviderKind::Gemini | ProviderKind::Vertex => gemini::classify_error(status, body),
        ProviderKind::Bedrock => {
            let error_type = head.header("x-amzn-errortype").and_then(|v| std::str::from_utf8(v).ok());
            bedrock::classify_error(status, error_type, body)
        }
        ProviderKind::Openai | ProviderKind::Azure => openai_provider::classify_error(status, body),
        ProviderKind::OpenaiResponses => openai_responses::classify_error(status, body),
    }
}

fn parse_response(
    provider: &ResolvedProvider,
    model: &str,
    head: &ResponseHead,
    body: &[u8],
) -> Result<crate::chat::ChatResponse, ProviderError> {
    match provider.kind {
        ProviderKind::Anthropic => anthropic::parse_response(body),
        ProviderKind::Vertex if is_vertex_anthropic(model) => anthropic::parse_response(body),
        ProviderKind::Gemini | ProviderKind::Vertex => gemini::parse_response(body),
        ProviderKind::Bedrock => bedrock::parse_response(bedrock_api(provider), body, request_id(head)),
        ProviderKind::Openai | ProviderKind::Azure => openai_provider::parse_response(body),
        ProviderKind::OpenaiResponses => openai_responses::parse_response(body),
    }
}

fn outcome_of_provider_error(error: &ProviderError) -> Outcome {
    match error.kind {
        ProviderErrorKind::RateLimited => Outcome::RateLimited,
        k if k.is_client_fault() => Outcome::ClientError,
        _ => Outcome::ServerError,
    }
}

/// One attempt at a translated provider.
#[allow(clippy::too_many_arguments)]
pub async fn attempt(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    snapshot: &crate::routing::Snapshot,
    ir: &ChatRequest,
    candidate: &crate::routing::Candidate<'_>,
    attempts: usize,
    keep_alive: bool,
    deadline: Instant,
    call: &std::cell::RefCell<crate::metrics::CallRecord>,
    front_door: FrontDoor,
) -> Attempt {
    let started = Instant::now();
    let endpoint = candidate.endpoint;
    let provider = &endpoint.provider;
    let probe = cx.health.claim_probe(endpoint.id, &snapshot.health);
    let routes_version = snapshot.health.routes_version;
    let record = |outcome: Outcome, ttfb: Option<Duration>| {
        cx.health.record(routes_version, endpoint.id, outcome, ttfb, started.elapsed(), probe);
        call.borrow_mut().attempts.push((provider.name.clone(), outcome));
    };
    let request = {
        let tokens = cx.access_tokens();
        credential(provider, &tokens).map(|key| build_request(provider, &endpoint.model, ir, key))
    };
    let request = match request {
        Ok(Ok(request)) => request,
        Ok(Err(error)) => return Attempt::Failed(Failure::Error(error)),
        Err(no_token) => {
            // The provider cannot be called at all: to health, that is as good as unreachable.
            record(Outcome::ConnectError, None);
            return Attempt::Failed(Failure::Error(no_token));
        }
    };
    let settings = cx.settings();
    let tls = cx.tls();
    let exchange = upstream::ExchangeContext {
        pool: &cx.pool,
        tls: &tls,
        connect_timeout: settings.upstream.connect_timeout,
        first_byte_timeout: settings.upstream.first_byte_timeout.min(deadline.saturating_duration_since(started)),
        read_idle_timeout: settings.upstream.read_idle_timeout,
    };
    let response = match upstream::send(&exchange, provider, request).await {
        Ok(response) => response,
        Err(e) => {
            record(outcome_of(&e), None);
            call.borrow_mut().upstream += started.elapsed();
            return Attempt::Failed(Failure::Error(GatewayError::from_upstream(&provider.name, &e)));
        }
    };
    let ttfb = started.elapsed();
    let serving = Serving {
        candidate,
        attempts,
        keep_alive,
        started,
        ttfb,
        probe,
        routes_version,
        call,
        send_time: ttfb,
        include_usage: ir.include_usage,
        front_door,
    };
    if !(200..300).contains(&response.head.status) {
        return provider_error(cx, conn, snapshot, &serving, response, &record).await;
    }
    let end = if ir.stream {
        stream(cx, conn, &serving, response, ir, deadline).await
    } else {
        buffered(cx, conn, &serving, response).await
    };
    match end {
        Ok((outcome, reusable)) => {
            record(outcome, Some(ttfb));
            Attempt::Served(reusable)
        }
        Err((outcome, error)) => {
            record(outcome, Some(ttfb));
            call.borrow_mut().upstream += started.elapsed();
            Attempt::Failed(Failure::Error(error))
        }
    }
}

/// A non-2xx answer: translated into an OpenAI error; retried elsewhere when it says so.
async fn provider_error(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    snapshot: &crate::routing::Snapshot,
    serving: &Serving<'_>,
    response: UpstreamResponse,
    record: &impl Fn(Outcome, Option<Duration>),
) -> Attempt {
    let provider = &serving.candidate.endpoint.provider;
    if super::chat::is_credential_refusal(response.head.status) {
        record(Outcome::ServerError, Some(serving.ttfb));
        serving.call.borrow_mut().upstream += serving.started.elapsed();
        return Attempt::Failed(Failure::Error(super::chat::credential_refused(cx, &provider.name, response).await));
    }
    apply_retry_after(cx, snapshot, serving.candidate, &response.head);
    let UpstreamResponse { head, mut body } = response;
    let bytes = body.read_to_end(MAX_ERROR_BODY_BYTES).await.unwrap_or_default();
    body.release(&cx.pool);
    let mut error = classify_error(provider, &serving.candidate.endpoint.model, &head, &bytes);
    // A provider's message may quote what it was sent, the gateway's key included.
    error.message = provider.scrub_str(&error.message);
    // Google says when to come back in the body (RetryInfo), not in a Retry-After header.
    let google = matches!(provider.kind, ProviderKind::Gemini | ProviderKind::Vertex);
    if google
        && matches!(head.status, 429 | 503)
        && let Some(pause) = gemini::retry_delay(&bytes)
    {
        cool_down(cx, snapshot, serving.candidate, pause);
    }
    record(outcome_of_provider_error(&error), Some(serving.ttfb));
    let status = serving.front_door.error_status(&error);
    let body = serving.front_door.error_body(&error);
    let retry_after = head.header("retry-after").map(<[u8]>::to_vec);
    if is_retryable_status(head.status) || error.retryable() {
        serving.call.borrow_mut().upstream += serving.started.elapsed();
        let content_type = Some(b"application/json".to_vec());
        return Attempt::Failed(Failure::Status { status, retry_after, content_type, body });
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
    let answer = match parse_response(provider, &serving.candidate.endpoint.model, &head, &bytes) {
        Ok(answer) => answer,
        Err(error) => {
            let why = format!("provider `{}` sent an answer that cannot be read: {}", provider.name, error.message);
            return Err((Outcome::ServerError, GatewayError::new(ErrorKind::BadGateway, why)));
        }
    };
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

/// `providerMetadata.gateway` for the AI SDK: every attempt of this request (the serving one last),
/// the cost, and a generation id.
pub(super) fn gateway_metadata(serving: &Serving<'_>, usage: &crate::chat::Usage) -> serde_json::Value {
    let call = serving.call.borrow();
    let provider = &serving.candidate.endpoint.provider.name;
    let mut attempts: Vec<serde_json::Value> = call
        .attempts
        .iter()
        .map(|(p, outcome)| serde_json::json!({"provider": p, "success": false, "outcome": outcome.name()}))
        .collect();
    attempts.push(serde_json::json!({"provider": provider, "success": true, "outcome": "success"}));
    let cost_micros = serving.candidate.endpoint.price.cost_micros(usage);
    serde_json::json!({
        "routing": {
            "originalModelId": serving.candidate.model.id,
            "resolvedProvider": provider,
            "resolvedProviderApiModelId": serving.candidate.endpoint.model,
            "finalProvider": provider,
            "attempts": attempts,
        },
        "cost": format!("{}.{:06}", cost_micros / 1_000_000, cost_micros % 1_000_000),
        "generationId": format!("gen_{}", call.request_id),
    })
}

impl TranslatedStream {
    /// Translates and encodes one piece (or the end, with `None`). Returns the first error event when
    /// it arrives before anything committing, which the caller turns into a failover.
    fn absorb(&mut self, piece: Option<&[u8]>, committed: &mut bool, serving: &Serving<'_>) -> Option<ProviderError> {
        match piece {
            Some(bytes) => self.translator.feed(bytes, &mut self.events),
            None => self.translator.finish(&mut self.events),
        }
        for event in self.events.drain(..) {
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
    let translator = translator_for(provider, model, &response.head).expect("translated kinds have translators");
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
