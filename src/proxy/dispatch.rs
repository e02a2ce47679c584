//! Route a request to its handler by method and path, check the gateway key, and render any error
//! once, in the format of the API the path belongs to (OpenAI unless it is Anthropic's or the AI
//! SDK's).

use std::cell::RefCell;
use std::time::{Duration, Instant};

use super::WorkerContext;
use super::client::{ClientConn, Request};
use crate::api::FrontDoor;
use crate::error::{ErrorKind, GatewayError};
use crate::http::request::RequestHead;
use crate::http::write::OutFraming;
use crate::messages::ControlRequest;
use crate::metrics::CallRecord;
use crate::routing::{Auth, Snapshot, bearer_token};

/// Admit, before the body is read: a model call presenting no valid gateway key is answered now (401
/// in the path's format, counted and logged like any call), so an unauthenticated client cannot make
/// the gateway buffer its body. Returns whether it refused; the connection must then close, since the
/// body was never read.
pub async fn refuse_before_body(cx: &WorkerContext, conn: &mut ClientConn, head: &RequestHead) -> bool {
    let door = match model_call_door(head) {
        Some(door) if conn.listener.serves(head.path()) => door,
        _ => return false,
    };
    let snapshot = cx.snapshot();
    let Err(error) = authorize(cx, &snapshot, head) else { return false };
    set_request_id(cx, head, &mut conn.request_id);
    let started = crate::clock::now();
    log_error(cx, &error);
    let written_before = conn.written;
    let _ = conn.send_error_as(&error, false, door).await;
    let mut record = CallRecord {
        request_id: crate::buffers::call_text(&conn.request_id),
        started: Some(started),
        front_door: door.name(),
        status: conn.last_status,
        duration: crate::clock::since(started),
        bytes_out: conn.written - written_before,
        served_model: crate::metrics::UNKNOWN_MODEL_LABEL.into(),
        ..CallRecord::default()
    };
    note_request_line(cx, conn, head, &mut record);
    cx.metrics.record(&record);
    if let Some(log) = &cx.access_log {
        log.log(&record);
    }
    if let Some(history) = &cx.history {
        history.record(&record);
    }
    record.recycle();
    true
}

/// The front door of a model call (the requests `api_call` serves), from the route table.
fn model_call_door(head: &RequestHead) -> Option<FrontDoor> {
    match route_of(head) {
        Route::ModelCall(door) => Some(door),
        _ => None,
    }
}

/// Handles one request. Returns whether the connection may carry another.
/// The request is borrowed: an async fn keeps a by-value argument twice in its future.
pub async fn handle(cx: &WorkerContext, conn: &mut ClientConn, request: &mut Request) -> bool {
    set_request_id(cx, &request.head, &mut conn.request_id);
    // While draining, every response says `connection: close` so clients move to another instance.
    request.head.keep_alive &= !cx.lifecycle.is_draining();
    let keep_alive = request.head.keep_alive;
    let door = error_door(&request.head);
    let written_before = conn.written;
    match super::unwind::catch_panic(route(cx, conn, request)).await {
        // A drain that began during the request closed it too (its head said so).
        Ok(Ok(reusable)) => reusable && keep_alive && !conn.is_draining(),
        Ok(Err(error)) => {
            log_error(cx, &error);
            conn.send_error_as(&error, keep_alive, door).await.is_ok() && keep_alive
        }
        Err(panic) => answer_panic(cx, conn, door, written_before, &panic).await,
    }
}

/// A request panicked: a bug, but one request's. The worker goes on; the client gets a 500 in its
/// format when nothing was written yet, and the connection closes either way (its state is unknown).
async fn answer_panic(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    door: FrontDoor,
    written_before: u64,
    panic: &str,
) -> bool {
    log::error!("worker {}: request {} panicked: {panic}", cx.worker_id, conn.request_id);
    if conn.written == written_before {
        let error = GatewayError::new(ErrorKind::Internal, "the gateway failed to handle this request");
        let _ = conn.send_error_as(&error, false, door).await;
    }
    false
}

/// Whose error format a routing-level error (unknown path, wrong method, missing key) is written in:
/// an SDK only understands its own API's errors, so the path's API decides, not the handler that
/// never ran.
fn error_door(head: &RequestHead) -> FrontDoor {
    let path = head.path();
    if path == "/v1/messages" || path.starts_with("/v1/messages/") {
        return FrontDoor::Anthropic;
    }
    let prefix = ["/v1/ai", "/v3/ai", "/v4/ai"]
        .into_iter()
        .find(|p| path.strip_prefix(p).is_some_and(|r| r.is_empty() || r.starts_with('/')));
    match prefix {
        Some(prefix) => FrontDoor::AiSdk(ai_sdk_spec(head, "ai-language-model-specification-version", prefix)),
        None => FrontDoor::OpenAi,
    }
}

fn log_error(cx: &WorkerContext, error: &GatewayError) {
    match error.side() {
        crate::error::Side::Client => log::debug!("worker {}: {error}", cx.worker_id),
        _ => log::warn!("worker {}: {error}", cx.worker_id),
    }
}

/// What a request asks for, decided once from its method and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Healthz,
    Models,
    Health,
    /// A model call through a front door (`api_call`).
    ModelCall(FrontDoor),
    /// The AI SDK's `GET {base}/config`.
    AiSdkConfig(crate::api::ai_sdk::SpecVersion),
    Dashboard,
    Stats,
    Metrics,
    AdminReload,
    /// A known path with a method it does not take (405).
    WrongMethod,
    /// A hosted-gateway path Corelay does not serve, with why (404).
    NotServed,
    Unknown,
    /// `/admin/keys` and below: virtual keys over HTTP (`admin_keys` checks the method).
    AdminKeys,
}

/// Paths served, by method: the one table the dispatcher and the early key check read.
fn route_of(head: &RequestHead) -> Route {
    let (method, path) = (head.method(), head.path());
    let read = matches!(method, "GET" | "HEAD");
    let post = method == "POST";
    let by_path = match path {
        "/healthz" => Some((read, Route::Healthz)),
        "/v1/models" => Some((read, Route::Models)),
        "/v1/health" => Some((read, Route::Health)),
        "/dashboard" => Some((read, Route::Dashboard)),
        "/v1/stats" => Some((read, Route::Stats)),
        "/metrics" => Some((read, Route::Metrics)),
        "/admin/reload" => Some((post, Route::AdminReload)),
        "/v1/chat/completions" => Some((post, Route::ModelCall(FrontDoor::OpenAi))),
        "/v1/messages" => Some((post, Route::ModelCall(FrontDoor::Anthropic))),
        "/v1/messages/count_tokens" => Some((post, Route::ModelCall(FrontDoor::AnthropicCountTokens))),
        "/v1/embeddings" => Some((post, Route::ModelCall(FrontDoor::OpenAiEmbeddings))),
        "/v1/responses" => Some((post, Route::ModelCall(FrontDoor::OpenAiResponses))),
        "/v1/credits" | "/v1/report" | "/v1/generation" => Some((true, Route::NotServed)),
        "/admin/keys" => Some((true, Route::AdminKeys)),
        _ if path.starts_with("/admin/keys/") => Some((true, Route::AdminKeys)),
        _ => ai_sdk_route_of(head, post, read),
    };
    match by_path {
        Some((true, route)) => route,
        Some((false, _)) => Route::WrongMethod,
        None => Route::Unknown,
    }
}

/// The AI SDK's endpoints under `/v1/ai`, `/v3/ai` and `/v4/ai`, with whether the method fits.
fn ai_sdk_route_of(head: &RequestHead, post: bool, read: bool) -> Option<(bool, Route)> {
    let path = head.path();
    let spec = |prefix| ai_sdk_spec(head, "ai-language-model-specification-version", prefix);
    if let Some(prefix) = ai_sdk_route(path, "/language-model") {
        return Some((post, Route::ModelCall(FrontDoor::AiSdk(spec(prefix)))));
    }
    if ai_sdk_route(path, "/embedding-model").is_some() {
        return Some((post, Route::ModelCall(FrontDoor::AiSdkEmbeddings)));
    }
    ai_sdk_route(path, "/config").map(|prefix| (read, Route::AiSdkConfig(spec(prefix))))
}

/// `Ok(reusable)` once a response was written; `Err` when nothing was written yet.
// The request is borrowed all the way down, not moved: an async fn keeps a by-value argument twice
// (as the argument and as its local), and these futures live as long as a stream.
async fn route(cx: &WorkerContext, conn: &mut ClientConn, request: &mut Request) -> Result<bool, GatewayError> {
    let head = &request.head;
    let is_head = head.method() == "HEAD";
    if !conn.listener.serves(head.path()) {
        let message = format!("unknown request URL: {} {}", head.method(), head.path());
        return Err(GatewayError::new(ErrorKind::RouteNotFound, message));
    }
    match route_of(head) {
        Route::ModelCall(door) => api_call(cx, conn, request, door).await,
        // Boxed, like every rarely used branch that waits on a timer: a monoio timer inline would
        // grow (and 128-align) the future of every connection (see `timer`).
        Route::AdminReload => Box::pin(admin_reload(cx, conn, request)).await,
        Route::AdminKeys => Box::pin(super::admin_keys::handle(cx, conn, request)).await,
        Route::Healthz => respond_json(conn, b"{\"status\":\"ok\"}", head.keep_alive, is_head).await,
        Route::Models => {
            let snapshot = cx.snapshot();
            authorize(cx, &snapshot, head)?;
            respond_json(conn, &snapshot.routes.models_body, head.keep_alive, is_head).await
        }
        Route::Health => {
            let snapshot = cx.snapshot();
            authorize(cx, &snapshot, head)?;
            let body = crate::api::health::health_json(&snapshot.routes, &snapshot.health, std::time::Instant::now());
            respond_json(conn, &body, head.keep_alive, is_head).await
        }
        Route::AiSdkConfig(spec) => ai_sdk_config(cx, conn, head, spec).await,
        Route::Dashboard => dashboard(conn, head.keep_alive, is_head).await,
        Route::Stats => {
            authorize_admin_if_configured(&cx.snapshot(), request)?;
            match crate::history::StatsQuery::from_target(head.target(), crate::clock::unix_now()) {
                None => respond_json(conn, cx.stats_json().as_bytes(), head.keep_alive, is_head).await,
                Some(query) => {
                    let history = cx.history.as_ref().ok_or(crate::history::QueryError::Unavailable)?;
                    let answer = history.stats(query?).await?;
                    respond_json(conn, answer.as_bytes(), head.keep_alive, is_head).await
                }
            }
        }
        Route::Metrics => metrics(cx, conn, request, is_head).await,
        Route::WrongMethod => Err(method_not_allowed(head)),
        Route::NotServed => Err(GatewayError::new(
            ErrorKind::RouteNotFound,
            format!(
                "{} is not served: Corelay keeps no credit balance or per-generation store; spend and volume \
                 are at /v1/stats and /metrics",
                head.path()
            ),
        )),
        Route::Unknown => Err(GatewayError::new(
            ErrorKind::RouteNotFound,
            format!("unknown request URL: {} {}", head.method(), head.path()),
        )),
    }
}

/// `GET {base}/config`: the models, as the AI SDK lists them.
async fn ai_sdk_config(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    head: &RequestHead,
    spec: crate::api::ai_sdk::SpecVersion,
) -> Result<bool, GatewayError> {
    let snapshot = cx.snapshot();
    authorize(cx, &snapshot, head)?;
    let routes = &snapshot.routes;
    let models: Vec<(&str, &str, &str)> =
        routes.model_ids().filter_map(|id| routes.model(id).map(|m| (id, id, m.owned_by.as_str()))).collect();
    let body = crate::api::ai_sdk::config_json_for(spec, &models);
    respond_json(conn, &body, head.keep_alive, head.method() == "HEAD").await
}

/// The dashboard page; it holds no data (`/v1/stats`, which it polls, is guarded like `/metrics`).
async fn dashboard(conn: &mut ClientConn, keep_alive: bool, is_head: bool) -> Result<bool, GatewayError> {
    const PAGE: &str = include_str!("../api/dashboard.html");
    let content_type: &[u8] = b"text/html; charset=utf-8";
    conn.write_head(200, &[("content-type", content_type)], OutFraming::Length(PAGE.len() as u64), keep_alive);
    if !is_head {
        conn.out.extend_from_slice(PAGE.as_bytes());
    }
    Ok(conn.flush().await.is_ok())
}

/// `/metrics`, in Prometheus' text format, guarded by the admin key when one is configured.
async fn metrics(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    request: &Request,
    is_head: bool,
) -> Result<bool, GatewayError> {
    authorize_admin_if_configured(&cx.snapshot(), request)?;
    let text = cx.metrics_text();
    let content_type: &[u8] = b"text/plain; version=0.0.4; charset=utf-8";
    let keep_alive = request.head.keep_alive;
    conn.write_head(200, &[("content-type", content_type)], OutFraming::Length(text.len() as u64), keep_alive);
    if !is_head {
        conn.out.extend_from_slice(text.as_bytes());
    }
    Ok(conn.flush().await.is_ok())
}

fn method_not_allowed(head: &crate::http::request::RequestHead) -> GatewayError {
    GatewayError::new(
        ErrorKind::MethodNotAllowed,
        format!("method {} is not allowed on {}", head.method(), head.path()),
    )
}

/// A model call through a front door, measured: whatever happens, one record goes to the metrics and
/// the access log, and errors are written in the front door's format.
async fn api_call(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    request: &mut Request,
    front_door: FrontDoor,
) -> Result<bool, GatewayError> {
    let snapshot = cx.snapshot();
    let started = crate::clock::now();
    let keep_alive = request.head.keep_alive;
    let trace = cx.start_trace(&request.head);
    conn.traceparent = trace.map(|t| t.traceparent()).unwrap_or_default();
    let call = RefCell::new(CallRecord {
        request_id: crate::buffers::call_text(&conn.request_id),
        started: Some(started),
        front_door: front_door.name(),
        bytes_in: request.body.len() as u64,
        trace,
        ..CallRecord::default()
    });
    note_request_line(cx, conn, &request.head, &mut call.borrow_mut());
    let written_before = conn.written;
    let in_flight = InFlight::enter(&cx.metrics.in_flight);
    let client_fd = std::os::fd::AsRawFd::as_raw_fd(&conn.stream);
    let result = match authorize(cx, &snapshot, &request.head) {
        Ok(caller) => {
            call.borrow_mut().key = caller.key.as_ref().map_or(caller.name, |k| k.name()).to_string();
            request.key = caller.key;
            if !front_door.body_validated_by_route_fields() {
                refuse_deep_json(&request.body)?;
            }
            // No call outlives its client: while it waits on a provider nothing reads the client's
            // socket, so it is watched; when the client goes, the call (and its provider
            // connection, which is dropped, not pooled) ends.
            let mut watch_timer = conn.lend_timer();
            let result = monoio::select! {
                result = serve_call(cx, conn, &snapshot, request, &call, front_door) => result,
                _ = crate::netio::until_peer_gone(client_fd, CLIENT_WATCH_EVERY, &mut watch_timer) => {
                    Err(client_gone(cx, &call))
                }
            };
            conn.give_back_timer(watch_timer);
            result
        }
        Err(error) => Err(error),
    };
    drop(in_flight);
    // Errors are written here rather than by the caller, so the record sees their status and size.
    let reusable = match result {
        Ok(reusable) => reusable,
        Err(error) if error.kind == ErrorKind::ClientClosed => false,
        Err(error) => {
            log_error(cx, &error);
            conn.send_error_as(&error, keep_alive, front_door).await.is_ok() && keep_alive
        }
    };
    let mut record = call.into_inner();
    record.duration = crate::clock::since(started);
    record.status = if record.status == CLIENT_CLOSED_STATUS { CLIENT_CLOSED_STATUS } else { conn.last_status };
    record.bytes_out = conn.written - written_before;
    record.model_known = snapshot.routes.model(&record.model).is_some();
    if record.served_model.is_empty() {
        record.served_model = record.model_label().into();
    }
    cx.metrics.record(&record);
    if let Some(log) = &cx.access_log {
        log.log(&record);
    }
    if let Some(history) = &cx.history {
        history.record(&record);
    }
    if let Some(exporter) = &cx.telemetry {
        exporter.export(&record);
    }
    record.recycle();
    Ok(reusable)
}

/// How often a waiting call checks that its client is still there.
const CLIENT_WATCH_EVERY: Duration = Duration::from_millis(250);
/// The status recorded for a call whose client left before its answer (nginx's 499).
const CLIENT_CLOSED_STATUS: u16 = 499;

fn client_gone(cx: &WorkerContext, call: &RefCell<CallRecord>) -> GatewayError {
    let mut record = call.borrow_mut();
    record.status = CLIENT_CLOSED_STATUS;
    log::debug!("worker {}: request {} cancelled: the client left", cx.worker_id, record.request_id);
    GatewayError::new(ErrorKind::ClientClosed, "the client closed the connection")
}

/// The model call itself, by front door.
async fn serve_call(
    cx: &WorkerContext,
    conn: &mut ClientConn,
    snapshot: &Snapshot,
    request: &mut Request,
    call: &RefCell<CallRecord>,
    front_door: FrontDoor,
) -> Result<bool, GatewayError> {
    match front_door {
        FrontDoor::OpenAi => super::chat::handle(cx, conn, snapshot, request, call).await,
        FrontDoor::OpenAiResponses => super::chat::handle_responses(cx, conn, snapshot, request, call).await,
        FrontDoor::OpenAiEmbeddings => super::chat::handle_embeddings(cx, conn, snapshot, request, call).await,
        FrontDoor::Anthropic => super::chat::handle_messages(cx, conn, snapshot, request, call).await,
        FrontDoor::AnthropicCountTokens => super::chat::handle_count_tokens(cx, conn, snapshot, request, call).await,
        FrontDoor::AiSdk(spec) => super::chat::handle_ai_sdk(cx, conn, snapshot, request, call, spec).await,
        FrontDoor::AiSdkEmbeddings => super::chat::handle_ai_sdk_embeddings(cx, conn, snapshot, request, call).await,
    }
}

/// One call counted in flight until dropped, also when its request panicked.
struct InFlight<'a>(&'a std::cell::Cell<u64>);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a std::cell::Cell<u64>) -> InFlight<'a> {
        gauge.set(gauge.get() + 1);
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// Every door's body is checked for nesting before any parser sees it: some parsers recurse, and a
/// stack overflow would abort the whole process. Syntax errors are left to each door's parser, whose
/// messages name the field. Doors whose body `route_fields::extract` reads first skip this: its one
/// pass validates the whole body with the same bound.
fn refuse_deep_json(body: &[u8]) -> Result<(), GatewayError> {
    match crate::json_check::check_depth(body) {
        Err(fault @ crate::json_check::JsonFault::TooDeep) => {
            Err(GatewayError::new(ErrorKind::InvalidJson, format!("request body is not acceptable: {fault}")))
        }
        _ => Ok(()),
    }
}

/// The AI SDK's base path prefix (`/v1/ai`, `/v3/ai`, `/v4/ai`) when `path` is `{prefix}{endpoint}`.
fn ai_sdk_route<'p>(path: &'p str, endpoint: &str) -> Option<&'p str> {
    let prefix = path.strip_suffix(endpoint)?;
    matches!(prefix, "/v1/ai" | "/v3/ai" | "/v4/ai").then_some(prefix)
}

/// The client's spec version: its header when it sends one, else the one its path prefix implies.
fn ai_sdk_spec(head: &RequestHead, header: &str, prefix: &str) -> crate::api::ai_sdk::SpecVersion {
    use crate::api::ai_sdk::SpecVersion;
    let from_header = head.header(header).and_then(|v| std::str::from_utf8(v).ok()).and_then(SpecVersion::from_header);
    from_header.or_else(|| SpecVersion::from_path_prefix(prefix)).unwrap_or_default()
}

/// The client's `x-request-id` when it is a sane token, else a new one unique to this process,
/// written into the connection's buffer.
fn set_request_id(cx: &WorkerContext, head: &RequestHead, id: &mut String) {
    let given = head.header("x-request-id").and_then(|v| std::str::from_utf8(v).ok());
    match given {
        Some(given) if (1..=128).contains(&given.len()) && given.bytes().all(|b| b.is_ascii_graphic()) => {
            id.clear();
            id.push_str(given);
        }
        _ => cx.write_new_request_id(id),
    }
}

/// `/metrics` shows key names and spend: when an admin key exists, scrapers must present it.
fn authorize_admin_if_configured(snapshot: &Snapshot, request: &Request) -> Result<(), GatewayError> {
    let presented = request.head.header("authorization").and_then(bearer_token);
    match snapshot.routes.authenticate_admin(presented) {
        None | Some(true) => Ok(()),
        Some(false) => Err(GatewayError::new(ErrorKind::Unauthorized, "invalid admin key")),
    }
}

/// Who sent a request: the gateway key's name (empty when the gateway is open) and, when keys are
/// governed (limits, budgets), the key itself for admission.
struct Caller<'a> {
    name: &'a str,
    key: Option<crate::governance::KeyRef>,
}

/// Checks the gateway key (a Bearer token, or `x-api-key` as Anthropic clients send it). With
/// governed keys the governor decides (it also knows keys created at run time); else the routes'.
fn authorize<'a>(cx: &WorkerContext, snapshot: &'a Snapshot, head: &RequestHead) -> Result<Caller<'a>, GatewayError> {
    let governor = cx.governor.as_ref().filter(|g| g.has_keys());
    if governor.is_none() && snapshot.routes.is_open() {
        // No key to check: the two header searches below would be wasted on every request.
        return Ok(Caller { name: "", key: None });
    }
    let presented = head.header("authorization").and_then(bearer_token).or_else(|| head.header("x-api-key"));
    let denied = || {
        let why = if presented.is_some() {
            "invalid gateway key"
        } else {
            "missing gateway key: send Authorization: Bearer KEY"
        };
        GatewayError::new(ErrorKind::Unauthorized, why)
    };
    if let Some(governor) = governor {
        let key = presented.and_then(|p| governor.authenticate(p)).ok_or_else(denied)?;
        return Ok(Caller { name: "", key: Some(key) });
    }
    match snapshot.routes.authenticate(presented) {
        Auth::Open => Ok(Caller { name: "", key: None }),
        Auth::Key(name) => Ok(Caller { name, key: None }),
        Auth::Denied => Err(denied()),
    }
}

async fn respond_json(
    conn: &mut ClientConn,
    body: &[u8],
    keep_alive: bool,
    is_head: bool,
) -> Result<bool, GatewayError> {
    conn.write_head(200, &[("content-type", b"application/json")], OutFraming::Length(body.len() as u64), keep_alive);
    if !is_head {
        conn.out.extend_from_slice(body);
    }
    Ok(conn.flush().await.is_ok())
}

/// How long an admin reload may take before the request gives up waiting (the reload goes on).
const ADMIN_RELOAD_WAIT: Duration = Duration::from_secs(30);
/// How often the waiting request checks for the control thread's answer.
const ADMIN_RELOAD_POLL: Duration = Duration::from_millis(10);

/// `POST /admin/reload`: the same two-phase reload as SIGHUP, guarded by the admin key. Off (404)
/// when no admin key is configured.
async fn admin_reload(cx: &WorkerContext, conn: &mut ClientConn, request: &Request) -> Result<bool, GatewayError> {
    let presented = request.head.header("authorization").and_then(bearer_token);
    match cx.snapshot().routes.authenticate_admin(presented) {
        None => return Err(GatewayError::new(ErrorKind::RouteNotFound, "admin endpoints are off: no [admin] key")),
        Some(false) => return Err(GatewayError::new(ErrorKind::Unauthorized, "invalid admin key")),
        Some(true) => {}
    }
    let control = cx.control().ok_or_else(|| GatewayError::new(ErrorKind::Internal, "no control thread"))?;
    let (reply, outcome) = std::sync::mpsc::channel();
    control
        .send(ControlRequest::Reload { path: None, reply })
        .map_err(|_| GatewayError::new(ErrorKind::Internal, "the control thread is gone"))?;
    // The worker must not block, so the answer is polled on a timer.
    let deadline = Instant::now() + ADMIN_RELOAD_WAIT;
    let result = loop {
        match outcome.try_recv() {
            Ok(result) => break result,
            Err(std::sync::mpsc::TryRecvError::Disconnected) => break Err("the control thread is gone".to_string()),
            Err(std::sync::mpsc::TryRecvError::Empty) if Instant::now() >= deadline => {
                return Err(GatewayError::new(ErrorKind::GatewayTimeout, "the reload is still running"));
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => monoio::time::sleep(ADMIN_RELOAD_POLL).await,
        }
    };
    let outcome = result
        .map_err(|why| GatewayError::new(ErrorKind::InvalidField, format!("reload failed, nothing changed: {why}")))?;
    let body = serde_json::to_vec(&serde_json::json!({
        "version": outcome.version,
        "needs_restart": outcome.needs_restart,
    }))
    .expect("plain data serializes");
    respond_json(conn, &body, request.head.keep_alive, false).await
}

/// The access log's client address (cached by the socket after its first request), method, path
/// and user agent: copied only when the access log is on, since nothing else reads them.
fn note_request_line(cx: &WorkerContext, conn: &ClientConn, head: &RequestHead, record: &mut CallRecord) {
    if cx.access_log.is_some() {
        record.client = conn.stream.peer_addr().ok();
        record.method = head.method().to_string();
        record.path = head.path().to_string();
        record.user_agent = head.header("user-agent").map(String::from_utf8_lossy).unwrap_or_default().into_owned();
    }
}
