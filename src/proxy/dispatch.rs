//! Route a request to its handler by method and path, check the gateway key, and render any error
//! once, in the OpenAI format.

use std::time::{Duration, Instant};

use super::WorkerContext;
use super::client::ClientConn;
use super::connection::Request;
use crate::error::{ErrorKind, GatewayError};
use crate::http::write::{OutFraming, write_response_head};
use crate::messages::ControlRequest;
use crate::routing::{Auth, Snapshot, bearer_token};

/// Handles one request. Returns whether the connection may carry another.
pub async fn handle(cx: &WorkerContext, conn: &mut ClientConn, mut request: Request) -> bool {
    // While draining, every response says `connection: close` so clients move to another instance.
    request.head.keep_alive &= !cx.lifecycle.is_draining();
    let keep_alive = request.head.keep_alive;
    match route(cx, conn, request).await {
        Ok(reusable) => reusable && keep_alive,
        Err(error) => {
            log_error(cx, &error);
            conn.send_error(&error, keep_alive).await.is_ok() && keep_alive
        }
    }
}

fn log_error(cx: &WorkerContext, error: &GatewayError) {
    match error.side() {
        crate::error::Side::Client => log::debug!("worker {}: {error}", cx.worker_id),
        _ => log::warn!("worker {}: {error}", cx.worker_id),
    }
}

/// `Ok(reusable)` once a response was written; `Err` when nothing was written yet.
async fn route(cx: &WorkerContext, conn: &mut ClientConn, request: Request) -> Result<bool, GatewayError> {
    let head = &request.head;
    let is_head = head.method == "HEAD";
    match (head.method.as_str(), head.path()) {
        ("GET" | "HEAD", "/healthz") => respond_json(conn, b"{\"status\":\"ok\"}", head.keep_alive, is_head).await,
        ("GET" | "HEAD", "/v1/models") => {
            let snapshot = cx.snapshot();
            authorize(&snapshot, &request)?;
            respond_json(conn, &snapshot.routes.models_body, head.keep_alive, is_head).await
        }
        ("GET" | "HEAD", "/v1/health") => {
            let snapshot = cx.snapshot();
            authorize(&snapshot, &request)?;
            let body = crate::api::health::health_json(&snapshot.routes, &snapshot.health, std::time::Instant::now());
            respond_json(conn, &body, head.keep_alive, is_head).await
        }
        ("POST", "/v1/chat/completions") => {
            let snapshot = cx.snapshot();
            authorize(&snapshot, &request)?;
            super::chat::handle(cx, conn, &snapshot, request).await
        }
        ("POST", "/admin/reload") => admin_reload(cx, conn, &request).await,
        (_, "/healthz" | "/v1/health" | "/v1/models" | "/v1/chat/completions" | "/admin/reload") => {
            Err(GatewayError::new(
                ErrorKind::MethodNotAllowed,
                format!("method {} is not allowed on {}", head.method, head.path()),
            ))
        }
        (method, path) => {
            Err(GatewayError::new(ErrorKind::RouteNotFound, format!("unknown request URL: {method} {path}")))
        }
    }
}

fn authorize(snapshot: &Snapshot, request: &Request) -> Result<(), GatewayError> {
    let presented = request.head.header("authorization").and_then(bearer_token);
    match snapshot.routes.authenticate(presented) {
        Auth::Open | Auth::Key(_) => Ok(()),
        Auth::Denied => Err(GatewayError::new(
            ErrorKind::Unauthorized,
            if presented.is_some() {
                "invalid gateway key"
            } else {
                "missing gateway key: send Authorization: Bearer KEY"
            },
        )),
    }
}

async fn respond_json(
    conn: &mut ClientConn,
    body: &[u8],
    keep_alive: bool,
    is_head: bool,
) -> Result<bool, GatewayError> {
    write_response_head(
        &mut conn.out,
        200,
        &[("content-type", b"application/json")],
        OutFraming::Length(body.len() as u64),
        keep_alive,
    );
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
