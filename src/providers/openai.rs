//! The `openai` and `azure` provider kinds: OpenAI, every OpenAI-compatible server, and Azure OpenAI
//! deployments. The body passes through with only `model` replaced (done by the caller); this module
//! writes the request head: `/chat/completions` with a Bearer key, or Azure's deployment path with
//! `api-version` and an `api-key` header.
//!
//! Headers are built fresh, never copied from the client, so client credentials cannot reach the provider.

use crate::config::ProviderKind;
use crate::config::resolve::ResolvedProvider;
use crate::http::write::{RequestBody, write_request_head_at};

const USER_AGENT: &str = concat!("corelay/", env!("CARGO_PKG_VERSION"));

/// Which OpenAI operation a request calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Chat,
    Embeddings,
    /// OpenAI's Responses API, passed through to `openai_responses` providers.
    Responses,
}

impl Operation {
    fn path(self) -> &'static str {
        match self {
            Operation::Chat => "/chat/completions",
            Operation::Embeddings => "/embeddings",
            Operation::Responses => "/responses",
        }
    }
}

/// The complete upstream request (head and body) for a chat completion.
pub fn chat_request(provider: &ResolvedProvider, body: &[u8], stream: bool, model: &str) -> Vec<u8> {
    request(provider, Operation::Chat, body, stream, model)
}

/// The complete upstream request (head and body) for `operation`; `model` names the Azure deployment.
pub fn request(
    provider: &ResolvedProvider,
    operation: Operation,
    body: &(impl RequestBody + ?Sized),
    stream: bool,
    model: &str,
) -> Vec<u8> {
    let path = operation.path();
    let azure_path;
    let target = match &provider.api_version {
        Some(version) => {
            azure_path = format!("/openai/deployments/{model}{path}?api-version={version}");
            [provider.origin.base_path.as_str(), azure_path.as_str()]
        }
        None => [provider.origin.base_path.as_str(), path],
    };
    let accept: &[u8] = if stream { b"text/event-stream" } else { b"application/json" };
    // On the stack: an API key fits, so the `Bearer` value costs no allocation per request.
    let mut authorization = smallvec::SmallVec::<[u8; 256]>::new();
    let credential: Option<(&str, &[u8])> = match (&provider.api_key, provider.kind) {
        (Some(key), ProviderKind::Azure) => Some(("api-key", key.expose().as_bytes())),
        (Some(key), _) => {
            authorization.extend_from_slice(b"Bearer ");
            authorization.extend_from_slice(key.expose().as_bytes());
            Some(("authorization", &authorization))
        }
        (None, _) => None,
    };
    let headers: [(&str, &[u8]); 4] = [
        ("content-type", b"application/json"),
        ("accept", accept),
        ("user-agent", USER_AGENT.as_bytes()),
        credential.unwrap_or(("", b"")),
    ];
    let headers = if credential.is_some() { &headers[..] } else { &headers[..3] };
    let mut out = crate::buffers::UPSTREAM_REQUESTS.take(512 + body.len());
    write_request_head_at(&mut out, "POST", target, &provider.origin.authority, headers, Some(body.len() as u64));
    body.write_into(&mut out);
    out
}
