//! The `openai` provider kind: OpenAI and every OpenAI-compatible server. The body passes through with
//! only `model` replaced (done by the caller); this module writes the request head.
//!
//! Headers are built fresh, never copied from the client, so client credentials cannot reach the provider.

use crate::config::resolve::ResolvedProvider;
use crate::http::write::write_request_head;

const USER_AGENT: &str = concat!("corelay/", env!("CARGO_PKG_VERSION"));

/// The complete upstream request (head and body) for a chat completion.
pub fn chat_request(provider: &ResolvedProvider, body: &[u8], stream: bool) -> Vec<u8> {
    let target = provider.origin.target("/chat/completions");
    let accept: &[u8] = if stream { b"text/event-stream" } else { b"application/json" };
    let mut authorization = Vec::new();
    let mut headers: Vec<(&str, &[u8])> =
        vec![("content-type", b"application/json"), ("accept", accept), ("user-agent", USER_AGENT.as_bytes())];
    if let Some(key) = &provider.api_key {
        authorization.extend_from_slice(b"Bearer ");
        authorization.extend_from_slice(key.expose().as_bytes());
        headers.push(("authorization", &authorization));
    }
    let mut out = Vec::with_capacity(512 + body.len());
    write_request_head(&mut out, "POST", &target, &provider.origin.authority, &headers, Some(body.len() as u64));
    out.extend_from_slice(body);
    out
}
