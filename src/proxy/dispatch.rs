//! Route a request to its handler by method and path, check the gateway key, and render any error
//! once, in the OpenAI format.

use super::WorkerContext;
use super::client::ClientConn;
use super::connection::Request;
use crate::error::{ErrorKind, GatewayError};
use crate::http::write::{OutFraming, write_response_head};
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
        (_, "/healthz" | "/v1/health" | "/v1/models" | "/v1/chat/completions") => Err(GatewayError::new(
            ErrorKind::MethodNotAllowed,
            format!("method {} is not allowed on {}", head.method, head.path()),
        )),
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
