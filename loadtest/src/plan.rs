//! Deciding the answer to one request: routing, then turning the config (reply kind, framing,
//! delays, fault) into a precomputed `Plan` — head, body pieces, how it ends — that `writer.rs`
//! plays out. Pure: no I/O, no clock reads other than the `created` timestamp.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::{Fault, Framing, MockConfig, Reply};
use crate::http::{BodyFraming, Request};
use crate::openai::{self, ChatRequest, ReplyMeta, StreamShape};

/// What to do after reading a request.
#[derive(Debug)]
pub(crate) enum Action {
    Respond(Plan),
    /// Close with RST, writing nothing.
    Reset,
    /// Close cleanly, writing nothing.
    Close,
}

/// How a response ends once its pieces are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Terminate the body properly (and keep the connection unless `close`).
    Complete,
    /// RST the connection.
    Reset,
    /// Write nothing more; hold the connection open until the mock stops.
    Stall,
}

/// A fully precomputed response.
#[derive(Debug)]
pub(crate) struct Plan {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub framing: BodyFraming,
    /// Body pieces; each is written (and flushed) on its own.
    pub pieces: Vec<Vec<u8>>,
    pub head_delay: Duration,
    pub first_piece_delay: Duration,
    pub gap: Duration,
    pub ending: Ending,
    /// Send `Connection: close` and close after the body.
    pub close: bool,
}

const MALFORMED_EVENT: &[u8] = b"data: {not json\n\n";
const ERROR_EVENT: &[u8] =
    b"data: {\"error\":{\"message\":\"The server is overloaded\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n";

/// Decides the answer to `req`; `seq` numbers the response (request ids, completion ids).
pub(crate) fn plan_response(req: &Request, config: &MockConfig, seq: u64) -> Action {
    let close = config.close_after_response || !req.keep_alive;
    let path = req.path();
    // `/responses` (OpenAI's Responses API), `/messages` and `/messages/count_tokens` (Anthropic), `:rawPredict` / `:streamRawPredict` (Vertex Anthropic),
    // `:generateContent` / `:streamGenerateContent` (Gemini) and `/converse*`, `/invoke*` (Bedrock) share
    // the chat behaviour: tests configure the reply bytes in that provider's format.
    let chat_like = [
        "/chat/completions",
        "/responses",
        "/messages",
        "/messages/count_tokens",
        ":rawPredict",
        ":streamRawPredict",
        ":generateContent",
        ":streamGenerateContent",
        "/converse",
        "/converse-stream",
        "/invoke",
        "/invoke-with-response-stream",
    ];
    if req.method == "POST" && path.ends_with("/embeddings") {
        return embeddings(req, config, seq, close);
    }
    if req.method == "POST" && chat_like.iter().any(|suffix| path.ends_with(suffix)) {
        return chat(req, config, seq, close);
    }
    if req.method == "GET" && path.ends_with("/models") {
        return Action::Respond(simple(200, openai::models_json(), seq, close));
    }
    let message = format!("Unknown request URL: {} {path}.", req.method);
    let body = openai::error_json(&message, "invalid_request_error", None);
    Action::Respond(simple(404, body, seq, close))
}

/// A small JSON response outside the chat route: no delays, no faults, Content-Length framing.
fn simple(status: u16, body: Vec<u8>, seq: u64, close: bool) -> Plan {
    Plan {
        status,
        headers: common_headers("application/json", seq, Duration::ZERO),
        framing: BodyFraming::Length(body.len()),
        pieces: vec![body],
        head_delay: Duration::ZERO,
        first_piece_delay: Duration::ZERO,
        gap: Duration::ZERO,
        ending: Ending::Complete,
        close,
    }
}

/// The answer to a malformed request head or body framing; always closes.
pub(crate) fn bad_request(status: u16, message: &str, seq: u64) -> Plan {
    let body = openai::error_json(message, "invalid_request_error", None);
    simple(status, body, seq, true)
}

fn common_headers(content_type: &str, seq: u64, processing: Duration) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", content_type.to_owned()),
        ("x-request-id", format!("req_mock{seq:012}")),
        ("openai-processing-ms", processing.as_millis().to_string()),
        ("openai-version", "2020-10-01".to_owned()),
    ]
}

fn chat(req: &Request, config: &MockConfig, seq: u64, close: bool) -> Action {
    match config.fault {
        Fault::ResetBeforeHeaders => return Action::Reset,
        Fault::CloseBeforeHeaders => return Action::Close,
        _ => {}
    }
    let chat = match openai::parse_chat_request(&req.body) {
        // Gemini, Vertex and Bedrock choose streaming by path, not by a body field.
        Ok(mut chat) => {
            let path = req.path();
            let streaming_path =
                [":streamGenerateContent", ":streamRawPredict", "/converse-stream", "/invoke-with-response-stream"];
            chat.stream |= streaming_path.iter().any(|suffix| path.ends_with(suffix));
            chat
        }
        Err(message) => {
            let body = openai::error_json(&message, "invalid_request_error", None);
            return Action::Respond(simple(400, body, seq, close));
        }
    };
    let plan = match &config.fault {
        Fault::Status { code, retry_after_s, body } => {
            status_fault(config, seq, close, *code, *retry_after_s, body.as_deref())
        }
        _ if chat.stream => stream_reply(config, &chat, seq, close),
        _ => json_reply(config, seq, close, || {
            openai::completion_json(&meta(config, &chat, seq), &openai::filler_text(config.content_bytes))
        }),
    };
    Action::Respond(plan)
}

/// `POST …/embeddings`: an OpenAI embeddings list (or the configured JSON), with the same faults
/// as a non-streaming chat reply; embeddings never stream.
fn embeddings(req: &Request, config: &MockConfig, seq: u64, close: bool) -> Action {
    match config.fault {
        Fault::ResetBeforeHeaders => return Action::Reset,
        Fault::CloseBeforeHeaders => return Action::Close,
        _ => {}
    }
    let request = match openai::parse_embeddings_request(&req.body) {
        Ok(request) => request,
        Err(message) => {
            let body = openai::error_json(&message, "invalid_request_error", None);
            return Action::Respond(simple(400, body, seq, close));
        }
    };
    let plan = match &config.fault {
        Fault::Status { code, retry_after_s, body } => {
            status_fault(config, seq, close, *code, *retry_after_s, body.as_deref())
        }
        _ => {
            let model = config.response_model.as_deref().unwrap_or(&request.model);
            json_reply(config, seq, close, || openai::embeddings_json(&request, model))
        }
    };
    Action::Respond(plan)
}

fn meta(config: &MockConfig, chat: &ChatRequest, seq: u64) -> ReplyMeta {
    let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    ReplyMeta {
        id: format!("chatcmpl-mock{seq:012}"),
        created,
        model: config.response_model.clone().unwrap_or_else(|| chat.model.clone()),
        prompt_tokens: chat.prompt_tokens,
    }
}

/// Resolves `Framing::Auto` and sizes Content-Length from the untruncated body.
fn body_framing(framing: Framing, stream: bool, pieces: &[Vec<u8>]) -> BodyFraming {
    let length = BodyFraming::Length(pieces.iter().map(Vec::len).sum());
    match framing {
        Framing::Auto if stream => BodyFraming::Chunked,
        Framing::Auto | Framing::ContentLength => length,
        Framing::Chunked => BodyFraming::Chunked,
        Framing::CloseDelimited => BodyFraming::Close,
    }
}

fn close_for(framing: BodyFraming, close: bool) -> bool {
    close || framing == BodyFraming::Close
}

fn status_fault(
    config: &MockConfig,
    seq: u64,
    close: bool,
    code: u16,
    retry_after_s: Option<u32>,
    body: Option<&[u8]>,
) -> Plan {
    let body = body.map_or_else(|| openai::status_error_json(code), <[u8]>::to_vec);
    let pieces = vec![body];
    let framing = body_framing(config.framing, false, &pieces);
    let mut headers = common_headers("application/json", seq, config.first_event_delay);
    if let Some(secs) = retry_after_s {
        headers.push(("retry-after", secs.to_string()));
    }
    Plan {
        status: code,
        headers,
        framing,
        pieces,
        head_delay: config.first_event_delay,
        first_piece_delay: Duration::ZERO,
        gap: Duration::ZERO,
        ending: Ending::Complete,
        close: close_for(framing, close),
    }
}

/// A non-streaming reply: the configured JSON, else what `generated` makes.
fn json_reply(config: &MockConfig, seq: u64, close: bool, generated: impl FnOnce() -> Vec<u8>) -> Plan {
    let body = match &config.reply {
        Reply::Json(raw) => raw.clone(),
        _ => generated(),
    };
    let framing = body_framing(config.framing, false, std::slice::from_ref(&body));
    // A single body has no events: the cut faults cut it in half instead.
    let (pieces, ending) = match config.fault {
        Fault::ResetAfterEvents(_) => (first_half(body), Ending::Reset),
        Fault::StallAfterEvents(_) => (first_half(body), Ending::Stall),
        _ if config.replay_piece_bytes > 0 && matches!(config.reply, Reply::Json(_)) => {
            (replay_pieces(&body, config.replay_piece_bytes), Ending::Complete)
        }
        _ => (vec![body], Ending::Complete),
    };
    Plan {
        status: 200,
        headers: common_headers("application/json", seq, config.first_event_delay),
        framing,
        pieces,
        head_delay: config.first_event_delay,
        first_piece_delay: Duration::ZERO,
        gap: Duration::ZERO,
        ending,
        close: close_for(framing, close),
    }
}

fn first_half(mut body: Vec<u8>) -> Vec<Vec<u8>> {
    body.truncate(body.len() / 2);
    vec![body]
}

fn stream_reply(config: &MockConfig, chat: &ChatRequest, seq: u64, close: bool) -> Plan {
    let mut pieces = match &config.reply {
        Reply::Sse(raw) => replay_pieces(raw, config.replay_piece_bytes),
        _ => openai::stream_events(
            &meta(config, chat, seq),
            &StreamShape {
                events: config.events,
                text_bytes: config.content_bytes,
                include_usage: chat.include_usage,
                omit_final: config.fault == Fault::MissingFinalEvent,
            },
        ),
    };
    if let Fault::MalformedEventAfter(n) = config.fault {
        pieces.insert(n.min(pieces.len()), MALFORMED_EVENT.to_vec());
    }
    if config.fault == Fault::ErrorEventFirst {
        pieces = vec![ERROR_EVENT.to_vec()];
    }
    // Content-Length announces the whole stream even when a fault cuts it short.
    let framing = body_framing(config.framing, true, &pieces);
    let ending = match config.fault {
        Fault::ResetAfterEvents(n) => cut(&mut pieces, n, Ending::Reset),
        Fault::StallAfterEvents(n) => cut(&mut pieces, n, Ending::Stall),
        _ => Ending::Complete,
    };
    Plan {
        status: 200,
        headers: common_headers("text/event-stream; charset=utf-8", seq, config.first_event_delay),
        framing,
        pieces,
        head_delay: Duration::ZERO,
        first_piece_delay: config.first_event_delay,
        gap: config.event_gap,
        ending,
        close: close_for(framing, close),
    }
}

fn cut(pieces: &mut Vec<Vec<u8>>, keep: usize, ending: Ending) -> Ending {
    pieces.truncate(keep);
    ending
}

/// Splits replayed SSE bytes into the pieces written one by one: `piece_bytes` each, or (0)
/// one per event, cutting after every blank line (`\n`, `\r\n` or `\r` line ends).
pub(crate) fn replay_pieces(raw: &[u8], piece_bytes: usize) -> Vec<Vec<u8>> {
    if piece_bytes > 0 {
        return raw.chunks(piece_bytes).map(<[u8]>::to_vec).collect();
    }
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut line_start = 0;
    let mut i = 0;
    while i < raw.len() {
        let end = match raw[i] {
            b'\r' if raw.get(i + 1) == Some(&b'\n') => i + 2,
            b'\r' | b'\n' => i + 1,
            _ => {
                i += 1;
                continue;
            }
        };
        // An empty line ends the event, unless nothing precedes it in this piece.
        if i == line_start && line_start > start {
            pieces.push(raw[start..end].to_vec());
            start = end;
        }
        line_start = end;
        i = end;
    }
    if start < raw.len() {
        pieces.push(raw[start..].to_vec());
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, target: &str, body: &str) -> Request {
        Request {
            method: method.into(),
            target: target.into(),
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
            keep_alive: true,
        }
    }

    fn plan(req: &Request, config: &MockConfig) -> Plan {
        match plan_response(req, config, 1) {
            Action::Respond(plan) => plan,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    const STREAM: &str = r#"{"model":"m","stream":true}"#;

    #[test]
    fn routes() {
        let config = MockConfig::default();
        assert_eq!(plan(&request("GET", "/v1/models", ""), &config).status, 200);
        assert_eq!(plan(&request("GET", "/v1/chat/completions", ""), &config).status, 404);
        assert_eq!(plan(&request("POST", "/x/chat/completions", "{"), &config).status, 400);
        let ok = plan(&request("POST", "/chat/completions?a=b", "{}"), &config);
        assert_eq!((ok.status, ok.framing), (200, BodyFraming::Length(ok.pieces[0].len())));
    }

    #[test]
    fn embeddings_get_an_embeddings_list_and_the_same_faults() {
        let body = r#"{"model":"text-embedding-3-small","input":["a","b"],"stream":true}"#;
        let req = request("POST", "/v1/embeddings", body);
        let ok = plan(&req, &MockConfig::default());
        let json: serde_json::Value = serde_json::from_slice(&ok.pieces[0]).unwrap();
        assert_eq!(
            (ok.status, json["object"].as_str(), json["data"].as_array().map(Vec::len)),
            (200, Some("list"), Some(2))
        );
        assert_eq!(json["model"], "text-embedding-3-small");
        let limited =
            MockConfig { fault: Fault::Status { code: 429, retry_after_s: None, body: None }, ..MockConfig::default() };
        assert_eq!(plan(&req, &limited).status, 429);
        assert_eq!(plan(&request("POST", "/v1/embeddings", r#"{"model":"m"}"#), &MockConfig::default()).status, 400);
        let replay = MockConfig { reply: Reply::Json(b"{}".to_vec()), ..MockConfig::default() };
        assert_eq!(plan(&req, &replay).pieces, vec![b"{}".to_vec()]);
    }

    #[test]
    fn stream_faults_shape_the_pieces() {
        let req = request("POST", "/v1/chat/completions", STREAM);
        let mut config = MockConfig { events: 3, ..MockConfig::default() };
        let full = plan(&req, &config);
        assert_eq!((full.pieces.len(), full.framing), (6, BodyFraming::Chunked));

        config.fault = Fault::StallAfterEvents(2);
        config.framing = Framing::ContentLength;
        let stalled = plan(&req, &config);
        assert_eq!((stalled.pieces.len(), stalled.ending), (2, Ending::Stall));
        let full_len = full.pieces.iter().map(Vec::len).sum();
        assert_eq!(stalled.framing, BodyFraming::Length(full_len));

        config.fault = Fault::MalformedEventAfter(1);
        assert_eq!(plan(&req, &config).pieces[1], MALFORMED_EVENT);

        config.fault = Fault::MissingFinalEvent;
        let missing = plan(&req, &config);
        assert_eq!(missing.pieces.len(), 4);
        assert!(!missing.pieces.iter().any(|p| p.starts_with(b"data: [DONE]")));
    }

    #[test]
    fn non_stream_cut_is_half_the_body() {
        let req = request("POST", "/v1/chat/completions", "{}");
        let config = MockConfig { fault: Fault::ResetAfterEvents(0), ..MockConfig::default() };
        let cut = plan(&req, &config);
        let BodyFraming::Length(full) = cut.framing else { panic!("length framing") };
        assert_eq!((cut.pieces[0].len(), cut.ending), (full / 2, Ending::Reset));
    }

    #[test]
    fn replay_split_per_event() {
        let raw = b"data: a\n\ndata: b\r\n\r\nevent: x\ndata: c\n\n: tail";
        let pieces = replay_pieces(raw, 0);
        let expect: [&[u8]; 4] = [b"data: a\n\n", b"data: b\r\n\r\n", b"event: x\ndata: c\n\n", b": tail"];
        assert_eq!(pieces, expect);
        assert_eq!(replay_pieces(raw, 0).concat(), raw);
        assert_eq!(replay_pieces(raw, 7).len(), raw.len().div_ceil(7));
    }
}
