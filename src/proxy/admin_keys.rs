//! `/admin/keys`: virtual keys administered over HTTP behind the admin key, on whichever listener
//! serves `/admin/*`. `GET /admin/keys` lists them (never a secret or a hash), `POST /admin/keys`
//! creates one and answers its secret once, `POST /admin/keys/{name}/rotate` gives it a new secret,
//! `DELETE /admin/keys/{name}` revokes it.
//!
//! Owns the HTTP shape only (paths, bodies, statuses). The records live in Redis and are written by
//! the governance thread (`Governor::administer_keys`, as `corelay keys` does); `[[keys]]` entries of
//! the config file are listed but changed only in the file.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::WorkerContext;
use super::client::{ClientConn, Request};
use crate::error::{ErrorKind, GatewayError};
use crate::governance::Governor;
use crate::governance::records::{KeyAdmin, KeyAdminAnswer, KeyRecord};
use crate::http::write::OutFraming;
use crate::routing::bearer_token;

/// A create request is a few hundred bytes; anything far larger is refused before parsing.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest key name accepted (names appear in `/metrics` labels and Redis keys).
const MAX_NAME_BYTES: usize = 64;
/// How long the governance thread may take to answer before the request gives up.
const ANSWER_WAIT: Duration = Duration::from_secs(10);

/// What a request under `/admin/keys` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    List,
    Create,
    Rotate(String),
    Revoke(String),
}

/// The most body bytes to read for a request to `head`: at most 64 KiB under `/admin/keys`, so an
/// oversized `Content-Length` is refused (413) before any of its body is read and a chunked body is
/// cut off as soon as it passes the limit; `server_max` (`server.max_body_bytes`) elsewhere.
pub fn body_limit(head: &crate::http::request::RequestHead, server_max: usize) -> usize {
    let path = head.path();
    if path == "/admin/keys" || path.starts_with("/admin/keys/") { server_max.min(MAX_BODY_BYTES) } else { server_max }
}

/// Serves one request whose path is `/admin/keys` or below it.
pub async fn handle(cx: &WorkerContext, conn: &mut ClientConn, request: &Request) -> Result<bool, GatewayError> {
    authorize_admin(cx, request)?;
    let action = action_of(request.head.method(), request.head.path())?;
    let governor = cx.governor.as_ref().ok_or_else(|| GatewayError::new(ErrorKind::Internal, "no governor"))?;
    let keep_alive = request.head.keep_alive;
    let (status, body) = match action {
        Action::List => (200, list(governor).await?),
        Action::Create => {
            let record = parse_create(&request.body)?;
            refuse_config_key(governor, &record.name)?;
            answer(administer(governor, KeyAdmin::Create(record)).await?)
        }
        Action::Rotate(name) => {
            refuse_config_key(governor, &name)?;
            answer(administer(governor, KeyAdmin::Rotate(name)).await?)
        }
        Action::Revoke(name) => {
            refuse_config_key(governor, &name)?;
            answer(administer(governor, KeyAdmin::Revoke(name)).await?)
        }
    };
    respond(conn, status, &body, keep_alive).await
}

/// Off (404) without an admin key, like every `/admin/*` endpoint; 401 for a wrong one.
fn authorize_admin(cx: &WorkerContext, request: &Request) -> Result<(), GatewayError> {
    let presented = request.head.header("authorization").and_then(bearer_token);
    match cx.snapshot().routes.authenticate_admin(presented) {
        None => Err(GatewayError::new(ErrorKind::RouteNotFound, "admin endpoints are off: no [admin] key")),
        Some(false) => Err(GatewayError::new(ErrorKind::Unauthorized, "invalid admin key")),
        Some(true) => Ok(()),
    }
}

fn action_of(method: &str, path: &str) -> Result<Action, GatewayError> {
    let rest = path.strip_prefix("/admin/keys").unwrap_or_default();
    let wrong_method =
        || GatewayError::new(ErrorKind::MethodNotAllowed, format!("method {method} is not allowed on {path}"));
    if rest.is_empty() {
        return match method {
            "GET" => Ok(Action::List),
            "POST" => Ok(Action::Create),
            _ => Err(wrong_method()),
        };
    }
    let not_found = || GatewayError::new(ErrorKind::RouteNotFound, format!("unknown request URL: {method} {path}"));
    let rest = rest.strip_prefix('/').ok_or_else(not_found)?;
    let (name, verb) = match rest.split_once('/') {
        Some((name, verb)) => (name, Some(verb)),
        None => (rest, None),
    };
    let name = valid_name(name)?;
    match (verb, method) {
        (None, "DELETE") => Ok(Action::Revoke(name)),
        (Some("rotate"), "POST") => Ok(Action::Rotate(name)),
        (None, _) | (Some("rotate"), _) => Err(wrong_method()),
        (Some(_), _) => Err(not_found()),
    }
}

/// Key names: 1 to 64 of `A-Z a-z 0-9 . _ -`, so one is safe in a path, a Redis key and a log line.
fn valid_name(name: &str) -> Result<String, GatewayError> {
    let ok = (1..=MAX_NAME_BYTES).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        return Ok(name.to_string());
    }
    Err(GatewayError::new(
        ErrorKind::InvalidField,
        format!("a key name is 1 to {MAX_NAME_BYTES} characters of A-Z, a-z, 0-9, `.`, `_` and `-`"),
    )
    .with_param("name"))
}

/// The body of `POST /admin/keys`: the name and limits of the key (the secret is made here).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    expires_at: Option<u64>,
    models: Option<Vec<String>>,
    budget_micros_per_day: Option<u64>,
    budget_micros_per_month: Option<u64>,
    budget_micros_total: Option<u64>,
    rpm: Option<u64>,
    tpm: Option<u64>,
    max_concurrent: Option<u64>,
}

fn parse_create(body: &[u8]) -> Result<KeyRecord, GatewayError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(GatewayError::new(
            ErrorKind::PayloadTooLarge,
            format!("a key request is at most {MAX_BODY_BYTES} bytes"),
        ));
    }
    let b: CreateBody = serde_json::from_slice(body)
        .map_err(|e| GatewayError::new(ErrorKind::InvalidJson, format!("invalid key request: {e}")))?;
    if let Some(models) = &b.models
        && models.iter().any(|m| m.is_empty() || m.len() > 256)
    {
        return Err(
            GatewayError::new(ErrorKind::InvalidField, "each model is 1 to 256 characters").with_param("models")
        );
    }
    Ok(KeyRecord {
        name: valid_name(&b.name)?,
        expires_at: b.expires_at,
        models: b.models,
        budget_micros_per_day: b.budget_micros_per_day,
        budget_micros_per_month: b.budget_micros_per_month,
        budget_micros_total: b.budget_micros_total,
        rpm: b.rpm,
        tpm: b.tpm,
        max_concurrent: b.max_concurrent,
        ..KeyRecord::default()
    })
}

/// A `[[keys]]` entry wins over a Redis record of its name, so changing one here would do nothing.
fn refuse_config_key(governor: &Governor, name: &str) -> Result<(), GatewayError> {
    if governor.configured_keys().iter().any(|r| r.name == name) {
        return Err(GatewayError::new(
            ErrorKind::InvalidField,
            format!("`{name}` is a [[keys]] entry of the config file: change it there and reload"),
        )
        .with_param("name"));
    }
    Ok(())
}

/// Sends `request` to the governance thread and awaits its answer without blocking the worker.
async fn administer(governor: &Governor, request: KeyAdmin) -> Result<KeyAdminAnswer, GatewayError> {
    let reply = governor.administer_keys(request).ok_or_else(|| {
        GatewayError::new(
            ErrorKind::InvalidField,
            "keys are created at run time only with [governance] redis_url; without it, add [[keys]] to the config \
             file and reload",
        )
    })?;
    match monoio::time::timeout(ANSWER_WAIT, reply).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(why)) => Err(GatewayError::new(ErrorKind::Unavailable, format!("key store unavailable: {why}"))),
        Err(_) => Err(GatewayError::new(ErrorKind::GatewayTimeout, "the key store did not answer in time")),
    }
}

/// The status and body for what the governance thread did.
fn answer(answer: KeyAdminAnswer) -> (u16, Value) {
    match answer {
        KeyAdminAnswer::Secret { name, secret } => (200, json!({ "name": name, "secret": secret })),
        KeyAdminAnswer::Revoked => (200, json!({ "revoked": true })),
        KeyAdminAnswer::NotFound => (404, error_json("no key of that name in the key store", "not_found")),
        KeyAdminAnswer::Exists => (409, error_json("a key of that name exists; rotate or revoke it", "conflict")),
        KeyAdminAnswer::Listed(_) => (500, error_json("unexpected answer from the key store", "internal")),
    }
}

/// `[[keys]]` entries, then the Redis records (when Redis is configured), each without its hash.
async fn list(governor: &Governor) -> Result<Value, GatewayError> {
    let spend: std::collections::HashMap<String, u64> = governor
        .counters(crate::clock::unix_now_ms())
        .into_iter()
        .map(|(name, c)| (name, c.spend_micros_total))
        .collect();
    let mut keys: Vec<Value> = governor
        .configured_keys()
        .iter()
        .map(|record| {
            // Shared, spend lives in Redis and local counters hold only outage usage: not shown.
            let spent = governor.redis_up().is_none().then(|| spend.get(&record.name).copied().unwrap_or(0));
            public_record(record, "config", spent)
        })
        .collect();
    if governor.redis_up().is_some() {
        match administer(governor, KeyAdmin::List).await? {
            KeyAdminAnswer::Listed(listed) => {
                keys.extend(listed.iter().map(|(record, spent)| public_record(record, "redis", Some(*spent))))
            }
            _ => return Err(GatewayError::new(ErrorKind::Internal, "unexpected answer from the key store")),
        }
    }
    Ok(json!({ "keys": keys }))
}

/// A record as the list shows it: everything but `sha256`.
fn public_record(record: &KeyRecord, source: &str, spent_micros_total: Option<u64>) -> Value {
    let mut value = serde_json::to_value(record).unwrap_or_else(|_| json!({}));
    if let Some(object) = value.as_object_mut() {
        object.remove("sha256");
        object.insert("source".into(), json!(source));
        if let Some(spent) = spent_micros_total {
            object.insert("spent_micros_total".into(), json!(spent));
        }
    }
    value
}

fn error_json(message: &str, code: &str) -> Value {
    json!({ "error": { "message": message, "type": "invalid_request_error", "code": code } })
}

async fn respond(conn: &mut ClientConn, status: u16, body: &Value, keep_alive: bool) -> Result<bool, GatewayError> {
    let body = serde_json::to_vec(body).unwrap_or_default();
    let headers: [(&str, &[u8]); 2] = [("content-type", b"application/json"), ("cache-control", b"no-store")];
    conn.write_head(status, &headers, OutFraming::Length(body.len() as u64), keep_alive);
    conn.out.extend_from_slice(&body);
    Ok(conn.flush().await.is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_methods_map_to_actions() {
        assert_eq!(action_of("GET", "/admin/keys").unwrap(), Action::List);
        assert_eq!(action_of("POST", "/admin/keys").unwrap(), Action::Create);
        assert_eq!(action_of("POST", "/admin/keys/ci-1/rotate").unwrap(), Action::Rotate("ci-1".into()));
        assert_eq!(action_of("DELETE", "/admin/keys/ci.2").unwrap(), Action::Revoke("ci.2".into()));
        assert_eq!(action_of("PUT", "/admin/keys").unwrap_err().status(), 405);
        assert_eq!(action_of("GET", "/admin/keys/ci/rotate").unwrap_err().status(), 405);
        assert_eq!(action_of("POST", "/admin/keys/ci/other").unwrap_err().status(), 404);
        assert_eq!(action_of("DELETE", "/admin/keys/a%20b").unwrap_err().status(), 400);
        assert_eq!(action_of("DELETE", "/admin/keys/").unwrap_err().status(), 400);
        assert_eq!(action_of("GET", "/admin/keysx").unwrap_err().status(), 404);
    }

    #[test]
    fn create_bodies_are_checked_before_anything_is_stored() {
        let record = parse_create(br#"{"name":"ci","rpm":5,"models":["acme/*"]}"#).unwrap();
        assert_eq!((record.name.as_str(), record.rpm, record.sha256.as_str()), ("ci", Some(5), ""));
        assert_eq!(parse_create(br#"{"name":"ci","sha256":"00"}"#).unwrap_err().status(), 400);
        assert_eq!(parse_create(br#"{"name":"a b"}"#).unwrap_err().status(), 400);
        assert_eq!(parse_create(br#"{"name":"ci","rpm":-1}"#).unwrap_err().status(), 400);
        assert_eq!(parse_create(&vec![b' '; MAX_BODY_BYTES + 1]).unwrap_err().status(), 413);
    }

    #[test]
    fn listed_records_never_show_a_hash() {
        let record = KeyRecord { name: "ci".into(), sha256: "ab".repeat(32), rpm: Some(3), ..KeyRecord::default() };
        let shown = public_record(&record, "redis", Some(7)).to_string();
        assert!(!shown.contains("sha256") && !shown.contains(&"ab".repeat(32)), "{shown}");
        assert!(shown.contains("\"spent_micros_total\":7") && shown.contains("\"source\":\"redis\""), "{shown}");
    }
}
