//! Relay: one state machine for every streamed answer, passed through or translated. The `Codec`
//! turns provider bytes into client bytes (whole events only); the relay moves through its states:
//!
//! - `Holding`: events are read, nothing is sent. A failure here (an error event, an event that is
//!   not JSON, a timeout, an end with nothing committed) still goes to the next candidate.
//! - `Streaming`: the head went out; each upstream read's events go to the client in one write.
//! - `Ending`: a stream that reached its format's end completes (its connection back to the pool);
//!   one that broke, was cut or carried garbage gets one error event in the client's format.
//!
//! It does not choose candidates, build requests or read non-streamed answers (`chat`, `relay`,
//! `translated` do).

use std::time::Instant;

use super::WorkerContext;
use super::client::ClientConn;
use super::lifecycle::Phase;
use super::serving::{
    Meta, Serving, fallback_answer_id, gateway_metadata, note_served, outcome_of, response_headers, usage_comment,
};
use crate::api::{FrontDoor, StreamEncoder};
use crate::cache::Ending;
use crate::chat::{ProviderError, ProviderErrorKind, StreamEvent};
use crate::error::{ErrorKind, GatewayError};
use crate::health::Outcome;
use crate::http::response::ResponseHead;
use crate::http::write::{OpenChunk, OutFraming, write_chunk, write_last_chunk};
use crate::providers::Translator;
use crate::sse::PassThrough;
use crate::sse::audit::{EventFault, StreamFormat};
use crate::upstream::{BodyReader, UpstreamError, UpstreamResponse};

/// How an attempt's stream ended: `Ok((outcome, reusable))` once the client got a head, `Err` for a
/// failure before it (the next candidate may serve).
pub type Ended = Result<(Outcome, bool), (Outcome, GatewayError)>;

/// The relay's states, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Holding,
    Streaming,
    Ending,
}

/// What a codec learned from a piece.
enum Fed {
    Fine,
    /// An event that is not the JSON its format promises, or that outgrew the event size bound
    /// (pass-through only: translators report their own failures as error events).
    Garbage(EventFault),
}

/// Provider stream bytes to client stream bytes.
pub enum Codec {
    PassThrough(Box<PassThroughCodec>),
    Translated(Box<TranslatedCodec>),
}

/// The client's own format: bytes pass with the `model` of each event rewritten, each event audited
/// (`sse::PassThrough`); the usage the events report is read where the audit found it.
pub struct PassThroughCodec {
    events: PassThrough,
    /// The token usage the events reported, each count the largest seen: counts in a stream only
    /// grow, and Anthropic's come in two parts (`message_start`, `message_delta`).
    usage: Option<crate::chat::Usage>,
    /// The message of an error event that came before anything committed.
    early_error: Option<String>,
}

thread_local! {
    /// Finished pass-through streams' event states, kept for this worker's next streams: one made
    /// and grown per stream (its event buffer, model id, the audit's spans, the last payload and its
    /// atoms) was ~9 allocations and frees: malloc, free and realloc took ~2,300 instructions of a
    /// 20-event stream's ~71,000, ~600 since.
    static SPARE_EVENT_STATES: std::cell::RefCell<Vec<PassThrough>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How many finished streams' states a worker keeps, and the most heap one may hold to be kept: a
/// stream that met a large event does not leave its buffer behind (see `memory_per_stream`).
const KEPT_EVENT_STATES: usize = 64;
const KEPT_EVENT_STATE_BYTES: usize = 16 * 1024;

impl Drop for PassThroughCodec {
    fn drop(&mut self) {
        // A placeholder with empty buffers (no allocation) takes the state's place.
        let events = std::mem::replace(&mut self.events, PassThrough::new("", StreamFormat::OpenAiChat, 0));
        if events.held_bytes() > KEPT_EVENT_STATE_BYTES {
            return;
        }
        SPARE_EVENT_STATES.with_borrow_mut(|spare| {
            if spare.len() < KEPT_EVENT_STATES {
                spare.push(events);
            }
        });
    }
}

/// Another format: decoded into internal events, encoded in the client's.
pub struct TranslatedCodec {
    translator: Translator,
    encoder: StreamEncoder,
    events: Vec<StreamEvent>,
    committed: bool,
    finished: bool,
    errored: bool,
    early_error: Option<ProviderError>,
}

impl Codec {
    pub fn pass_through(gateway_model: &str, front_door: FrontDoor) -> Codec {
        let format = stream_format(front_door);
        let events = match SPARE_EVENT_STATES.with_borrow_mut(Vec::pop) {
            Some(spare) => PassThrough::reusing(spare, gateway_model, format),
            None => PassThrough::new(gateway_model, format, EVENT_BUFFER_START),
        };
        Codec::PassThrough(Box::new(PassThroughCodec { events, usage: None, early_error: None }))
    }

    pub fn translated(translator: Translator, encoder: StreamEncoder) -> Codec {
        Codec::Translated(Box::new(TranslatedCodec {
            translator,
            encoder,
            events: Vec::new(),
            committed: false,
            finished: false,
            errored: false,
            early_error: None,
        }))
    }

    /// Feeds one piece (`None`: the body ended) and appends the whole events now ready to `out`.
    fn feed(&mut self, piece: Option<&[u8]>, out: &mut Vec<u8>, serving: &Serving<'_>) -> Fed {
        match self {
            Codec::PassThrough(c) => c.feed(piece, out),
            Codec::Translated(c) => {
                c.feed(piece, out, serving);
                Fed::Fine
            }
        }
    }

    fn is_committed(&self) -> bool {
        match self {
            Codec::PassThrough(c) => c.events.audit().is_committed(),
            Codec::Translated(c) => c.committed,
        }
    }

    /// The stream reached its format's end (an error event counts: the client was told).
    fn is_complete(&self) -> bool {
        match self {
            Codec::PassThrough(c) => c.events.audit().is_complete(),
            Codec::Translated(c) => c.finished,
        }
    }

    /// The stream ended cleanly: complete and without an error event.
    fn is_clean(&self) -> bool {
        match self {
            Codec::PassThrough(c) => c.events.audit().is_complete(),
            Codec::Translated(c) => c.finished && !c.errored,
        }
    }

    /// The message of an error event that came before anything committed.
    fn early_error(&self) -> Option<String> {
        match self {
            Codec::PassThrough(c) => c.early_error.clone(),
            Codec::Translated(c) => c.early_error.as_ref().map(|e| e.message.clone()),
        }
    }

    /// Ends the stream with one error event in the client's format.
    fn end_with_error(&mut self, error: &GatewayError, front_door: FrontDoor, out: &mut Vec<u8>) {
        match self {
            Codec::PassThrough(c) => front_door.gateway_error_event(error, c.events.audit().data_events(), out),
            Codec::Translated(c) => {
                let kind = if error.kind == ErrorKind::Unavailable {
                    ProviderErrorKind::Server
                } else {
                    ProviderErrorKind::Malformed
                };
                c.encoder.encode(&StreamEvent::Error(ProviderError::new(kind, error.message.clone())), out);
                c.finished = true;
                c.errored = true;
            }
        }
    }

    fn usage(&self) -> Option<crate::chat::Usage> {
        match self {
            Codec::PassThrough(c) => c.usage,
            Codec::Translated(c) => Some(c.translator.usage()),
        }
    }

    /// Whether Corelay's closing usage comment goes at the end of a clean stream.
    fn takes_usage_comment(&self, serving: &Serving<'_>) -> bool {
        match self {
            Codec::PassThrough(_) => serving.include_usage,
            Codec::Translated(_) => serving.include_usage && serving.front_door == FrontDoor::OpenAi,
        }
    }
}

/// The wire format a passed-through stream is in: the client's own (pass-through never changes it).
pub fn stream_format(front_door: FrontDoor) -> StreamFormat {
    match front_door {
        FrontDoor::Anthropic | FrontDoor::AnthropicCountTokens => StreamFormat::AnthropicMessages,
        FrontDoor::OpenAiResponses => StreamFormat::OpenAiResponses,
        _ => StreamFormat::OpenAiChat,
    }
}

impl PassThroughCodec {
    fn feed(&mut self, piece: Option<&[u8]>, out: &mut Vec<u8>) -> Fed {
        let judged = self.events.feed(piece);
        let usage = &mut self.usage;
        self.events.drain_usage_payloads(|payload| crate::metrics::usage::fold_reported(usage, payload));
        if judged.is_ok()
            && let Some(payload) = self.events.early_error_payload()
        {
            let message = super::relay::error_message(payload);
            self.early_error = Some(message.unwrap_or_else(|| "an error event".into()));
        }
        // What came before a bad event is still the client's.
        self.events.release(out);
        match judged {
            Ok(()) => Fed::Fine,
            Err(bad) => Fed::Garbage(bad.fault),
        }
    }
}

impl TranslatedCodec {
    fn feed(&mut self, piece: Option<&[u8]>, out: &mut Vec<u8>, serving: &Serving<'_>) {
        match piece {
            Some(bytes) => self.translator.feed(bytes, &mut self.events),
            None => self.translator.finish(&mut self.events),
        }
        for mut event in std::mem::take(&mut self.events) {
            if self.early_error.is_some() {
                break;
            }
            if let StreamEvent::Start { id, .. } = &mut event
                && id.is_empty()
            {
                *id = fallback_answer_id(serving);
            }
            if let StreamEvent::Error(error) = &event
                && !self.committed
            {
                self.early_error = Some(error.clone());
                break;
            }
            self.committed |= event.commits();
            self.finished |= event.is_terminal();
            self.errored |= matches!(event, StreamEvent::Error(_));
            if matches!(event, StreamEvent::Finish(_)) && self.encoder.wants_gateway_metadata() {
                self.encoder.set_gateway_metadata(gateway_metadata(serving, &self.translator.usage()));
            }
            self.encoder.encode(&event, out);
        }
    }
}

/// What a stream's event buffers start with: a typical event (chat chunks are 150-400 bytes), so
/// they seldom grow, while an open stream holds little (see `loadtest/streams`).
const EVENT_BUFFER_START: usize = 256;

/// Relays one streamed 2xx answer through its states. `hold_until` bounds the wait for the stream to
/// commit (the first-event timeout, within the deadline).
pub async fn relay(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    serving: &Serving<'_>,
    // Borrowed, as by the callers: an async fn keeps a by-value argument twice (as the argument and
    // as its local), and the relay's future lives as long as the stream.
    response: &mut UpstreamResponse,
    mut codec: Codec,
    hold_until: Instant,
) -> Ended {
    let UpstreamResponse { head, body } = response;
    let provider = &serving.candidate.endpoint.provider.name;
    let mut out = Vec::with_capacity(EVENT_BUFFER_START);
    let mut state = State::Holding;
    body.hold_until(Some(hold_until.into()));
    let ended_while_holding = hold(body, &mut codec, &mut out, serving).await?;
    body.hold_until(None);
    state = advance(state, State::Streaming);
    let content_type = write_stream_head(conn, head, serving, &codec);
    let mut failure = None;
    if !ended_while_holding {
        // Not flushed yet: the head and the held events go out with what else the last read brought.
        write_chunk(&mut conn.out, &out);
        serving.tap(&out);
        out.clear();
        match stream(cx, conn, body, &mut codec, &mut out, serving).await {
            Streamed::Ended => {}
            Streamed::Failed(error) => failure = Some(error),
            Streamed::ClientGone => return Ok((Outcome::Success, false)),
        }
    }
    state = advance(state, State::Ending);
    if failure.is_none() && !codec.is_complete() {
        log::warn!("stream from {provider} ended before its final event");
        let why = format!("provider `{provider}` ended the stream before it was complete");
        failure = Some(GatewayError::new(ErrorKind::BadGateway, why));
    }
    if let Some(error) = &failure {
        codec.end_with_error(error, serving.front_door, &mut out);
    }
    note_served(serving, codec.usage(), body.waited());
    let clean = failure.is_none() && codec.is_clean();
    let with_usage_comment = clean && codec.takes_usage_comment(serving);
    if clean {
        serving.tap(&out);
        let status = head.status;
        serving.tap_end(Ending {
            status,
            content_type: &content_type,
            stream: true,
            usage_comment: with_usage_comment,
        });
    }
    if with_usage_comment {
        usage_comment(&serving.call.borrow(), &mut out);
    }
    write_chunk(&mut conn.out, &out);
    write_last_chunk(&mut conn.out);
    let flushed = conn.flush().await.is_ok();
    debug_assert_eq!(state, State::Ending);
    if clean {
        body.release(&cx.pool);
    }
    Ok((if clean { Outcome::Success } else { Outcome::StreamError }, flushed && clean && serving.keep_alive))
}

/// Writes the stream's response head (not flushed) and returns its content type for the cache.
/// Not inline in `relay`: the header list is 300+ bytes, and a local of the relay would be kept in
/// its future (so in every open stream's task) for the stream's whole life.
fn write_stream_head(conn: &mut ClientConn, head: &ResponseHead, serving: &Serving<'_>, codec: &Codec) -> Vec<u8> {
    let meta = Meta::new(serving, None);
    let mut headers = response_headers(head, serving, &meta);
    if let Codec::Translated(_) = codec {
        headers.retain(|(name, _)| *name != "content-type");
        headers.push(("content-type", b"text/event-stream; charset=utf-8"));
    }
    headers.push(("cache-control", b"no-cache"));
    conn.write_head(head.status, &headers, OutFraming::Chunked, serving.keep_alive);
    cached_content_type(serving, &headers)
}

/// The stream's content type as the client got it, kept for the response cache (empty when the
/// answer is not being cached).
fn cached_content_type(serving: &Serving<'_>, headers: &[(&str, &[u8])]) -> Vec<u8> {
    match serving.capture {
        Some(_) => {
            headers.iter().rev().find(|(name, _)| *name == "content-type").map_or_else(Vec::new, |(_, v)| v.to_vec())
        }
        None => Vec::new(),
    }
}

/// A transition of the relay's state machine (checked in debug builds: only forward).
fn advance(from: State, to: State) -> State {
    debug_assert!(matches!((from, to), (State::Holding, State::Streaming) | (State::Streaming, State::Ending)));
    to
}

/// Holding: reads until the stream commits or ends, within the body's hold deadline. `Ok(true)`
/// when the body ended while held (the held events are then all there is).
async fn hold(
    body: &mut BodyReader,
    codec: &mut Codec,
    out: &mut Vec<u8>,
    serving: &Serving<'_>,
) -> Result<bool, (Outcome, GatewayError)> {
    let provider = &serving.candidate.endpoint.provider.name;
    let failed = |e: UpstreamError| (outcome_of(&e), GatewayError::from_upstream(provider, &e));
    loop {
        let ended = !body.wait_for_piece().await.map_err(failed)?;
        let piece = if ended { None } else { body.buffered_piece() };
        if let Fed::Garbage(fault) = codec.feed(piece, out, serving) {
            return Err(failed(UpstreamError::UnreadableAnswer(fault_text(fault).into())));
        }
        if let Some(message) = codec.early_error() {
            let why = format!("provider `{provider}` began the stream with an error: {message}");
            return Err((Outcome::StreamError, GatewayError::new(ErrorKind::BadGateway, why)));
        }
        if codec.is_committed() || codec.is_complete() {
            return Ok(ended);
        }
        if ended {
            return Err(failed(UpstreamError::UnreadableAnswer("the stream ended before any content".into())));
        }
    }
}

enum Streamed {
    Ended,
    Failed(GatewayError),
    ClientGone,
}

/// Streaming: moves events from provider to client until the body ends, fails, or the client
/// leaves. Everything one upstream read brought goes out in one write, as one chunk written
/// straight into `conn.out`, together with what the caller left there (the head and the held
/// events). When the body's end came with that read, nothing is written here and the caller's
/// closing write takes it all. A provider's burst is then one client write.
async fn stream(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    body: &mut BodyReader,
    codec: &mut Codec,
    out: &mut Vec<u8>,
    serving: &Serving<'_>,
) -> Streamed {
    let provider = &serving.candidate.endpoint.provider.name;
    // One waiter for the whole stream rather than one per event.
    let mut abort = std::pin::pin!(cx.lifecycle.reached(Phase::Aborting));
    loop {
        if let Fed::Garbage(fault) = relay_read(codec, body, &mut conn.out, serving) {
            return Streamed::Failed(garbage(provider, fault));
        }
        if body.is_done() {
            return end_of_body(codec, out, serving);
        }
        if !conn.out.is_empty() && conn.flush().await.is_err() {
            return Streamed::ClientGone;
        }
        let next = monoio::select! {
            // The shutdown grace period is over: end the stream with an error the client can see.
            _ = &mut abort => None,
            next = body.wait_for_piece() => Some(next),
        };
        match next {
            None => {
                let why = "the gateway is shutting down; the stream was cut short";
                return Streamed::Failed(GatewayError::new(ErrorKind::Unavailable, why));
            }
            Some(Err(e)) => {
                log::warn!("stream from {provider} failed after the response started: {e}");
                return Streamed::Failed(GatewayError::from_upstream(provider, &e));
            }
            Some(Ok(false)) => return end_of_body(codec, out, serving),
            Some(Ok(true)) => {}
        }
    }
}

/// Feeds every piece the last read brought to the codec, its events appended to `client_out` as
/// one chunk (none when no event completed). Stops at a bad event: the events before it are the
/// client's, in the chunk.
fn relay_read(codec: &mut Codec, body: &mut BodyReader, client_out: &mut Vec<u8>, serving: &Serving<'_>) -> Fed {
    let chunk = OpenChunk::open(client_out, body.buffered_len());
    let mut fed = Fed::Fine;
    while let (Fed::Fine, Some(piece)) = (&fed, body.buffered_piece()) {
        fed = codec.feed(Some(piece), client_out, serving);
    }
    serving.tap(chunk.bytes(client_out));
    chunk.close(client_out);
    fed
}

/// The body ended: the codec flushes what it still holds into `out`.
fn end_of_body(codec: &mut Codec, out: &mut Vec<u8>, serving: &Serving<'_>) -> Streamed {
    match codec.feed(None, out, serving) {
        Fed::Fine => Streamed::Ended,
        Fed::Garbage(fault) => Streamed::Failed(garbage(&serving.candidate.endpoint.provider.name, fault)),
    }
}

fn garbage(provider: &str, fault: EventFault) -> GatewayError {
    let what = fault_text(fault);
    log::warn!("stream from {provider}: {what}; ended it with an error");
    GatewayError::new(ErrorKind::BadGateway, format!("provider `{provider}` sent {what}"))
}

// `fault_text` names the bound.
const _: () = assert!(crate::sse::decoder::DEFAULT_MAX_EVENT_BYTES == 4 << 20);

/// What was wrong with a refused event, for the client and the log.
fn fault_text(fault: EventFault) -> &'static str {
    match fault {
        EventFault::NotJson => "a stream event that is not valid JSON",
        EventFault::TooLarge => "a stream event larger than the gateway's bound (4 MiB)",
    }
}
