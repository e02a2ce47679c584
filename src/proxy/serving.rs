//! What every attempt shares, whichever way its answer goes: the serving attempt's description
//! (`Serving`), how an attempt ends (`Attempt`, `Failure`), which provider answers fail over and for
//! how long a provider pauses, and how a served answer's head and record are made. A leaf of
//! `proxy/`: the attempt loop (`chat`), the pass-through relay (`relay`) and the translated relay
//! (`translated`) all use it; it uses none of them.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use super::WorkerContext;
use crate::error::{ErrorKind, GatewayError};
use crate::health::Outcome;
use crate::http::response::ResponseHead;
use crate::http::write::{NumberText, OutField};
use crate::metrics::CallRecord;
use crate::routing::{Candidate, Snapshot};
use crate::upstream::{UpstreamError, UpstreamResponse};

/// Largest error body kept from a failed attempt, to pass on if it turns out to be the last one.
pub const MAX_FAILED_BODY_BYTES: usize = 64 * 1024;

/// A `Retry-After` longer than this is capped: a provider cannot bench itself for a day by mistake.
const MAX_COOLDOWN: Duration = Duration::from_secs(600);

/// Why an attempt did not serve the client.
pub enum Failure {
    /// The provider answered with a retryable status; passed through if no attempt does better.
    Status { status: u16, retry_after: Option<Vec<u8>>, content_type: Option<Vec<u8>>, body: Vec<u8> },
    /// No usable answer at all.
    Error(GatewayError),
}

pub enum Attempt {
    /// The client got a response (or went away); `bool` says whether the connection is reusable.
    Served(bool),
    Failed(Failure),
}

/// What a relay needs to know about the attempt that serves.
pub struct Serving<'a> {
    pub candidate: &'a Candidate<'a>,
    pub attempts: usize,
    pub keep_alive: bool,
    pub started: Instant,
    pub ttfb: Duration,
    /// The request's record for metrics and the access log.
    pub call: &'a RefCell<CallRecord>,
    /// Time `upstream::send` took (connect, write, wait for the head): time waited on the provider.
    pub send_time: Duration,
    /// The client asked for usage at the end of a stream.
    pub include_usage: bool,
    /// The client's format.
    pub front_door: crate::api::FrontDoor,
    /// Where the answer is copied while it is sent, when the response cache will store it.
    pub capture: Option<&'a RefCell<crate::cache::Capture>>,
}

impl Serving<'_> {
    /// Copies bytes sent to the client into the cache's capture (when this answer is cached).
    pub fn tap(&self, bytes: &[u8]) {
        if let Some(capture) = self.capture {
            capture.borrow_mut().push(bytes);
        }
    }

    /// The captured answer ended cleanly and may be stored.
    pub fn tap_end(&self, ending: crate::cache::Ending<'_>) {
        if let Some(capture) = self.capture {
            capture.borrow_mut().complete(ending);
        }
    }
}

/// The request's side of every attempt: the worker, the routes it was planned on, its record, its
/// deadline, and how its answer is written. Made once per request by the attempt loop.
#[derive(Clone, Copy)]
pub struct CallContext<'a> {
    pub cx: &'a WorkerContext,
    pub snapshot: &'a Snapshot,
    pub call: &'a RefCell<CallRecord>,
    pub deadline: Instant,
    pub keep_alive: bool,
    /// The client's format.
    pub front_door: crate::api::FrontDoor,
    /// The response cache's copy of the answer, when it will be stored.
    pub capture: Option<&'a RefCell<crate::cache::Capture>>,
}

/// One attempt at one candidate, from its start: what is recorded whichever way it ends.
pub struct AttemptRun<'a> {
    pub call: CallContext<'a>,
    pub candidate: &'a Candidate<'a>,
    /// Attempts made for this request, this one included.
    pub number: usize,
    pub started: Instant,
    /// This attempt is the health checker's probe of an ejected endpoint.
    pub probe: bool,
}

impl<'a> AttemptRun<'a> {
    pub fn begin(call: CallContext<'a>, candidate: &'a Candidate<'a>, number: usize) -> AttemptRun<'a> {
        let probe = call.cx.health.claim_probe(candidate.endpoint.id, &call.snapshot.health);
        // The clock itself, not the poll's time (`clock::now`): a failover begins the next attempt in
        // the poll where the last one ended, and the attempts' wall-clock times (the AI SDK's
        // `routing.attempts`) must not put this start before that end.
        AttemptRun { call, candidate, number, started: Instant::now(), probe }
    }

    /// Health and the call's record learn how the attempt went.
    pub fn record(&self, outcome: Outcome, ttfb: Option<Duration>) {
        let endpoint = self.candidate.endpoint;
        let version = self.call.snapshot.health.routes_version;
        // One clock read for both: health's latency and the attempt's span in the record.
        let took = crate::clock::since(self.started);
        self.call.cx.health.record(version, endpoint.id, outcome, ttfb, took, self.probe);
        self.call.call.borrow_mut().push_attempt(&endpoint.provider.name, outcome, took);
    }

    /// The attempt failed before anything reached the client; its time was the provider's.
    pub fn failed(&self, failure: Failure) -> Attempt {
        self.call.call.borrow_mut().upstream += crate::clock::since(self.started);
        Attempt::Failed(failure)
    }

    /// Sends the upstream request `prepared` (or why there is none) and waits for the response head.
    /// Every way of failing before a usable head is decided here, once: no credential, no
    /// connection, a refused credential or a redirect. Whatever the provider then said (success or
    /// error status) is the caller's to read.
    ///
    /// A fn returning an `async move` block, not an `async fn`: an async fn keeps a by-value
    /// argument twice in its future, which is in every call's task.
    #[allow(clippy::manual_async_fn, reason = "an async fn would hold `prepared` twice")]
    pub fn send(
        &self,
        prepared: Result<Vec<u8>, GatewayError>,
    ) -> impl Future<Output = Result<(UpstreamResponse, Duration), Attempt>> + '_ {
        async move {
            let cx = self.call.cx;
            let provider = &self.candidate.endpoint.provider;
            let mut request = match prepared {
                Ok(request) => request,
                // No credential (a service account without a valid token): the provider cannot be
                // called at all, which to health is as good as unreachable.
                Err(no_credential) if no_credential.kind == ErrorKind::BadGateway => {
                    self.record(Outcome::ConnectError, None);
                    return Err(Attempt::Failed(Failure::Error(no_credential)));
                }
                Err(invalid) => return Err(Attempt::Failed(Failure::Error(invalid))),
            };
            // This attempt's span is the upstream parent; its index is the attempts recorded so far.
            if let Some(trace) = &self.call.call.borrow().trace {
                trace.forward(&mut request, self.call.call.borrow().attempts.len());
            }
            let settings = cx.settings();
            let tls = cx.tls();
            let exchange = crate::upstream::ExchangeContext {
                pool: &cx.pool,
                tls: &tls,
                connect_timeout: settings.upstream.connect_timeout,
                first_byte_timeout: settings
                    .upstream
                    .first_byte_timeout
                    .min(self.call.deadline.saturating_duration_since(self.started)),
                read_idle_timeout: settings.upstream.read_idle_timeout,
            };
            let mut response = match crate::upstream::send(&exchange, provider, request).await {
                Ok(response) => response,
                Err(e) => {
                    self.record(outcome_of(&e), None);
                    return Err(self.failed(Failure::Error(GatewayError::from_upstream(&provider.name, &e))));
                }
            };
            let ttfb = crate::clock::since(self.started);
            self.call.call.borrow_mut().attempt_status = Some(response.head.status);
            if let Some(what) = unusable_answer(response.head.status) {
                self.record(Outcome::ServerError, Some(ttfb));
                // Boxed: rare, and inline its state would size every attempt's future (so every open
                // stream's task) for a path no stream is on.
                let refused = Box::pin(refuse_unusable(cx, &provider.name, what, &mut response)).await;
                return Err(self.failed(Failure::Error(refused)));
            }
            Ok((response, ttfb))
        }
    }

    /// The relay's view of this attempt, now that it serves.
    pub fn serving(&self, ttfb: Duration, include_usage: bool) -> Serving<'a> {
        Serving {
            candidate: self.candidate,
            attempts: self.number,
            keep_alive: self.call.keep_alive,
            started: self.started,
            ttfb,
            call: self.call.call,
            send_time: ttfb,
            include_usage,
            front_door: self.call.front_door,
            capture: self.call.capture,
        }
    }

    /// How the serving relay ended, recorded; `Err` is a failure before the client saw anything.
    pub fn served(&self, ttfb: Duration, end: Result<(Outcome, bool), (Outcome, GatewayError)>) -> Attempt {
        match end {
            Ok((outcome, reusable)) => {
                self.record(outcome, Some(ttfb));
                Attempt::Served(reusable)
            }
            Err((outcome, error)) => {
                self.record(outcome, Some(ttfb));
                self.failed(Failure::Error(error))
            }
        }
    }
}

/// 408, 409, 429, 5xx and Anthropic's 529 say "try elsewhere"; other 4xx are the client's fault.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429 | 500..=599)
}

pub fn outcome_of(error: &UpstreamError) -> Outcome {
    match error {
        e if e.is_timeout() => Outcome::Timeout,
        UpstreamError::Connect(_) | UpstreamError::Tls(_) | UpstreamError::ClosedBeforeResponse => {
            Outcome::ConnectError
        }
        UpstreamError::Write(_) => Outcome::ConnectError,
        _ => Outcome::ServerError,
    }
}

/// `Retry-After: SECONDS` on a 429 or 503 pauses the provider (all its models) on every core.
pub fn apply_retry_after(cx: &WorkerContext, snapshot: &Snapshot, candidate: &Candidate<'_>, head: &ResponseHead) {
    if !matches!(head.status, 429 | 503) {
        return;
    }
    let Some(seconds) =
        head.header("retry-after").and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok())
    else {
        return;
    };
    cool_down(cx, snapshot, candidate, Duration::from_secs(seconds));
}

/// Pauses the candidate's provider (all its models) on every core for `pause` (capped).
pub fn cool_down(cx: &WorkerContext, snapshot: &Snapshot, candidate: &Candidate<'_>, pause: Duration) {
    let until = Instant::now() + pause.min(MAX_COOLDOWN);
    for id in snapshot.routes.endpoints_of_provider(&candidate.endpoint.provider.name) {
        cx.health.cooldown(id, until);
    }
}

/// Provider answers that are the gateway's problem with that provider, never the client's, so they
/// fail over and their text (which may quote the key) never goes on: a 401 or 403 (the gateway's
/// credentials were refused: revoked, wrong project) and a 3xx (a redirect, which Corelay does not
/// follow: the configured `base_url` is wrong). `None` for any other status.
pub fn unusable_answer(status: u16) -> Option<&'static str> {
    match status {
        401 | 403 => Some("refused the gateway's credentials for it"),
        300..=399 => Some("answered with a redirect, which Corelay does not follow (check its base_url)"),
        _ => None,
    }
}

/// Reads and drops an unusable answer's body (the connection stays reusable) and says what happened
/// without the provider's words.
pub async fn refuse_unusable(
    cx: &WorkerContext,
    provider: &str,
    what: &str,
    response: &mut UpstreamResponse,
) -> GatewayError {
    let UpstreamResponse { head, body } = response;
    let _ = body.read_to_end(MAX_FAILED_BODY_BYTES).await;
    body.release(&cx.pool);
    log::warn!("provider `{provider}` {what} (HTTP {}); trying elsewhere", head.status);
    GatewayError::new(ErrorKind::BadGateway, format!("provider `{provider}` {what} (HTTP {})", head.status))
}

/// Upstream response headers passed on to the client. The rest (provider account ids, rate-limit
/// details, cookies) describe the gateway's provider account, not the client's request.
const FORWARDED_HEADERS: [&str; 2] = ["content-type", "retry-after"];

/// Corelay's own response header values for the attempt that serves, as decimal text held inline
/// (formatting them into `String`s was three allocations per response).
pub struct Meta {
    attempts: NumberText,
    overhead_us: NumberText,
    cost_micros: Option<NumberText>,
}

impl Meta {
    /// `cost_micros` is known before the head only for buffered answers.
    pub fn new(serving: &Serving<'_>, cost_micros: Option<u64>) -> Meta {
        let call = serving.call.borrow();
        let elapsed = call.started.map_or(std::time::Duration::ZERO, crate::clock::since);
        let waited = call.upstream + serving.send_time;
        let overhead_us = u64::try_from(elapsed.saturating_sub(waited).as_micros()).unwrap_or(u64::MAX);
        Meta {
            attempts: NumberText::decimal(serving.attempts as u64),
            overhead_us: NumberText::decimal(overhead_us),
            cost_micros: cost_micros.map(NumberText::decimal),
        }
    }
}

/// A response's headers: at most ten, so they live on the stack.
pub type ResponseHeaders<'a> = smallvec::SmallVec<[OutField<'a>; 10]>;

/// The provider's forwarded headers plus Corelay's own: who served, as which model, after how many
/// attempts, the gateway's own time so far, and (for buffered answers) the cost.
pub fn response_headers<'a>(head: &'a ResponseHead, serving: &'a Serving<'_>, meta: &'a Meta) -> ResponseHeaders<'a> {
    // Built in place, not collected: a collected list (330 bytes) was copied once more on its way out.
    let mut headers = ResponseHeaders::new();
    for name in FORWARDED_HEADERS {
        if let Some(value) = head.header(name) {
            headers.push((name, value));
        }
    }
    headers.push(("x-corelay-provider", serving.candidate.endpoint.provider.name.as_bytes()));
    headers.push(("x-corelay-model", serving.candidate.model.id.as_bytes()));
    headers.push(("x-corelay-attempts", meta.attempts.as_bytes()));
    headers.push(("x-corelay-overhead-us", meta.overhead_us.as_bytes()));
    if let Some(cost) = &meta.cost_micros {
        headers.push(("x-corelay-cost-usd-micros", cost.as_bytes()));
    }
    if let Some(cache) = serving.call.borrow().cache {
        headers.push(("x-corelay-cache", cache.as_bytes()));
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

/// `providerMetadata.gateway` for the AI SDK: every attempt of this request (the serving one last),
/// the cost, and a generation id.
pub fn gateway_metadata(serving: &Serving<'_>, usage: &crate::chat::Usage) -> serde_json::Value {
    let call = serving.call.borrow();
    let provider = &serving.candidate.endpoint.provider.name;
    // The hosted gateway's shape: provider, statusCode, success, startTime and endTime (Unix ms).
    let attempt = |a: &crate::metrics::AttemptRecord| {
        serde_json::json!({
            "provider": a.provider,
            "statusCode": a.status,
            "success": false,
            "outcome": a.outcome.name(),
            "startTime": a.start_unix_ms,
            "endTime": a.end_unix_ms,
        })
    };
    let mut attempts: Vec<serde_json::Value> = call.attempts.iter().map(attempt).collect();
    let now_ms = crate::clock::unix_now_ms();
    attempts.push(serde_json::json!({
        "provider": provider,
        "statusCode": call.attempt_status,
        "success": true,
        "outcome": "success",
        "startTime": now_ms.saturating_sub(serving.started.elapsed().as_millis() as u64),
        "endTime": now_ms,
    }));
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

/// The answer's id when the provider gives none (Bedrock's body has none, and its request-id header
/// may be missing): derived from the request id, so it is unique and can be found in the access log.
pub fn fallback_answer_id(serving: &Serving<'_>) -> String {
    format!("gen-{}", serving.call.borrow().request_id)
}
