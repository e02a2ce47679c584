//! The response cache in the pipeline: decides and looks up before admission (a hit never reaches
//! governance or a provider), replays a hit in the format it was stored in, and stores a miss's
//! answer once it ended cleanly. The cache itself (key, policy, memory, Redis) is `crate::cache`;
//! copying the answer while it is relayed is the relays' `Serving::tap`.

use std::cell::RefCell;
use std::rc::Rc;

use super::WorkerContext;
use super::client::{ClientConn, Request};
use super::serving::usage_comment;
use crate::api::FrontDoor;
use crate::cache::{Capture, Decision, Entry, Key, KeyInput, Status};
use crate::error::GatewayError;
use crate::http::request::RequestHead;
use crate::http::write::{OutFraming, write_chunk, write_last_chunk};
use crate::metrics::CallRecord;

/// The parts of a request the cache looks at.
pub struct Asked<'r> {
    head: &'r RequestHead,
    body: &'r [u8],
    governed: Option<&'r crate::governance::KeyRef>,
    front_door: FrontDoor,
    model: &'r str,
    stream: bool,
}

impl<'r> Asked<'r> {
    pub fn of(request: &'r Request, front_door: FrontDoor, model: &'r str, stream: bool) -> Asked<'r> {
        let (head, body, governed) = (&request.head, request.body.as_slice(), request.key.as_ref());
        Asked { head, body, governed, front_door, model, stream }
    }
}

/// What the lookup found.
pub enum Lookup {
    /// The cache is off: nothing to do, no header.
    Off,
    Bypass,
    Hit(Rc<Entry>),
    /// Not found (or revalidating): the answer is captured and stored under `key` for `ttl_s`.
    Miss {
        key: Key,
        ttl_s: u64,
        capture: RefCell<Capture>,
    },
}

impl Lookup {
    /// Where the relays copy the answer, on a miss.
    pub fn capture(&self) -> Option<&RefCell<Capture>> {
        match self {
            Lookup::Miss { capture, .. } => Some(capture),
            _ => None,
        }
    }
}

/// Decides whether the request uses the cache and, when it does, looks it up (memory, then Redis).
/// The call's record learns the verdict (`x-corelay-cache`, the access log, `/metrics`).
pub async fn lookup(cx: &WorkerContext, call: &RefCell<CallRecord>, asked: &Asked<'_>) -> Lookup {
    let found = decide_and_find(cx, call, asked).await;
    let status = match &found {
        Lookup::Off => return found,
        Lookup::Bypass => Status::Bypass,
        Lookup::Hit(_) => Status::Hit,
        Lookup::Miss { .. } => Status::Miss,
    };
    call.borrow_mut().cache = Some(status.name());
    found
}

async fn decide_and_find(cx: &WorkerContext, call: &RefCell<CallRecord>, asked: &Asked<'_>) -> Lookup {
    let policy = cx.cache.policy();
    if !policy.enabled {
        return Lookup::Off;
    }
    let directives = crate::cache::policy::directives(|name| asked.head.header(name));
    let decision = policy.decide(asked.model, &call.borrow().key, &directives);
    let (ttl_s, look) = match decision {
        Decision::Off => return Lookup::Off,
        Decision::Bypass => return Lookup::Bypass,
        Decision::Use { ttl_s, lookup } => (ttl_s, lookup),
    };
    // A key no longer allowed the model must be refused by admission, not served from its past.
    if asked.governed.is_some_and(|key| !key.policy.allows_model(asked.model)) {
        return Lookup::Bypass;
    }
    let namespace = call.borrow().key.clone();
    let front_door = format!("{:?}", asked.front_door);
    let input = KeyInput {
        front_door: &front_door,
        model: asked.model,
        namespace: &namespace,
        stream: asked.stream,
        body: asked.body,
    };
    let Some((key, temperature)) = crate::cache::key::derive(&input) else { return Lookup::Bypass };
    if !policy.allows_temperature(temperature) {
        return Lookup::Bypass;
    }
    if look && let Some(entry) = cx.cache.lookup(&key).await {
        return Lookup::Hit(entry);
    }
    Lookup::Miss { key, ttl_s, capture: RefCell::new(Capture::new(policy.max_entry_bytes)) }
}

/// Stores a miss's answer when a provider served it and it ended cleanly.
pub fn store(cx: &WorkerContext, call: &RefCell<CallRecord>, lookup: Lookup) {
    let Lookup::Miss { key, ttl_s, capture } = lookup else { return };
    let entry = {
        let record = call.borrow();
        if record.provider.is_empty() {
            return;
        }
        let expires = crate::clock::unix_now_ms().saturating_add(ttl_s.saturating_mul(1000));
        let served_model = record.served_model.to_string();
        capture.into_inner().into_entry(served_model, record.usage, record.cost_micros, expires)
    };
    if let Some(entry) = entry {
        let stored = cx.cache.store(key, entry);
        cx.metrics.note_cache_store(stored.bytes, stored.evictions, cx.cache.memory_bytes());
    }
}

/// Serves a hit: the stored bytes with the stored status and content type, a stream as a stream
/// (one chunk per event). Costs nothing; what the original call cost is recorded as saved.
pub async fn replay(
    conn: &mut ClientConn,
    call: &RefCell<CallRecord>,
    entry: &Entry,
    keep_alive: bool,
) -> Result<bool, GatewayError> {
    note_hit(call, entry);
    let mut headers: Vec<(&str, &[u8])> = vec![
        ("content-type", &entry.content_type),
        ("x-corelay-model", entry.served_model.as_bytes()),
        ("x-corelay-attempts", b"0"),
        ("x-corelay-cost-usd-micros", b"0"),
        ("x-corelay-cache", b"hit"),
    ];
    if !entry.stream {
        conn.write_head(entry.status, &headers, OutFraming::Length(entry.body.len() as u64), keep_alive);
        conn.out.extend_from_slice(&entry.body);
        return Ok(conn.flush().await.is_ok() && keep_alive);
    }
    headers.push(("cache-control", b"no-cache"));
    conn.write_head(entry.status, &headers, OutFraming::Chunked, keep_alive);
    for event in events(&entry.body) {
        write_chunk(&mut conn.out, event);
    }
    if entry.usage_comment {
        let mut comment = Vec::new();
        usage_comment(&call.borrow(), &mut comment);
        write_chunk(&mut conn.out, &comment);
    }
    write_last_chunk(&mut conn.out);
    Ok(conn.flush().await.is_ok() && keep_alive)
}

fn note_hit(call: &RefCell<CallRecord>, entry: &Entry) {
    let mut record = call.borrow_mut();
    record.served_model = entry.served_model.as_str().into();
    record.usage = entry.usage;
    record.cost_micros = 0;
    record.cache_saved_micros = entry.cost_micros;
}

/// A stream's bytes split after each blank line, so each SSE event goes in its own chunk.
fn events(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = body;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = event_end(rest).unwrap_or(rest.len());
        let (event, tail) = rest.split_at(end);
        rest = tail;
        Some(event)
    })
}

/// Where the first event ends: after the line break that follows an empty line.
fn event_end(bytes: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\n', &bytes[from..]).map(|i| from + i) {
        match &bytes[i + 1..] {
            [b'\n', ..] => return Some(i + 2),
            [b'\r', b'\n', ..] => return Some(i + 3),
            _ => from = i + 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_split_into_their_events() {
        let body = b"event: a\ndata: {}\n\ndata: 2\r\n\r\ndata: [DONE]\n\n: tail";
        let parts: Vec<&[u8]> = events(body).collect();
        assert_eq!(parts, [&b"event: a\ndata: {}\n\n"[..], b"data: 2\r\n\r\n", b"data: [DONE]\n\n", b": tail"]);
        assert_eq!(parts.concat(), body);
    }
}
