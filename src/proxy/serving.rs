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
    pub probe: bool,
    /// The routes version the attempt's endpoint ids belong to.
    pub routes_version: u64,
    /// The request's record for metrics and the access log.
    pub call: &'a RefCell<CallRecord>,
    /// Time `upstream::send` took (connect, write, wait for the head): time waited on the provider.
    pub send_time: Duration,
    /// The client asked for usage at the end of a stream.
    pub include_usage: bool,
    /// The client's format.
    pub front_door: crate::api::FrontDoor,
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

/// A provider's 401 or 403 is about the gateway's credentials for it (revoked, wrong project), not
/// the client's: another endpoint may still serve, and the provider's text (which may quote the key)
/// never goes on.
pub fn is_credential_refusal(status: u16) -> bool {
    matches!(status, 401 | 403)
}

/// Reads and drops a credential refusal's body (the connection stays reusable) and says what
/// happened without the provider's words.
pub async fn credential_refused(cx: &WorkerContext, provider: &str, response: UpstreamResponse) -> GatewayError {
    let UpstreamResponse { head, mut body } = response;
    let _ = body.read_to_end(MAX_FAILED_BODY_BYTES).await;
    body.release(&cx.pool);
    log::warn!("provider `{provider}` refused the gateway's credentials (HTTP {}); trying elsewhere", head.status);
    let why = format!("provider `{provider}` refused the gateway's credentials for it (HTTP {})", head.status);
    GatewayError::new(ErrorKind::BadGateway, why)
}

/// Upstream response headers passed on to the client. The rest (provider account ids, rate-limit
/// details, cookies) describe the gateway's provider account, not the client's request.
const FORWARDED_HEADERS: [&str; 2] = ["content-type", "retry-after"];

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

/// `providerMetadata.gateway` for the AI SDK: every attempt of this request (the serving one last),
/// the cost, and a generation id.
pub fn gateway_metadata(serving: &Serving<'_>, usage: &crate::chat::Usage) -> serde_json::Value {
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
