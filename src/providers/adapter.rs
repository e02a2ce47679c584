//! One configured endpoint's adapter: everything Corelay knows about a provider kind, asked for by the
//! pipeline so that the proxy never matches on a kind. Which client operations it takes as sent, the
//! complete upstream request (method, path, headers with auth and signing, body) from the internal
//! request or the client's own body, the stream translator for its answers, how its errors classify
//! and how its bodies parse. No I/O here: the proxy sends and relays.
//!
//! Vertex is two adapters: Claude models speak Anthropic's dialect through `rawPredict`, Google's
//! models Gemini's through `generateContent`.

use crate::chat::{ChatRequest, ChatResponse, ProviderError};
use crate::config::resolve::{DEFAULT_MAX_TOKENS, ResolvedProvider};
use crate::config::{BedrockApi, ProviderKind};
use crate::error::{ErrorKind, GatewayError};
use crate::http::request::RequestHead;
use crate::http::response::ResponseHead;
use crate::http::write::{RequestBody, write_request_head, write_request_head_at};

use super::openai::Operation;
use super::{Translator, anthropic, bedrock, gemini, openai, openai_chat, openai_responses};
use crate::aws::sigv4::{Credentials, SigningTime};
use crate::credentials::vertex::TokenTable;

/// A client request Corelay can pass through as sent (only the model, and the credentials, replaced)
/// to providers that speak its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeOperation {
    /// An OpenAI operation (chat, embeddings, Responses).
    OpenAi(Operation),
    /// Anthropic's `/v1/messages/count_tokens`.
    AnthropicCountTokens,
    /// Anthropic's `/v1/messages`: prompt caching, server tools, citations and betas survive, which a
    /// translation cannot carry.
    AnthropicMessages,
}

impl NativeOperation {
    /// The end of "`model` has no endpoint that ...", for a model none of whose endpoints offer it.
    pub fn offered_by(self) -> &'static str {
        match self {
            NativeOperation::OpenAi(Operation::Chat) => "serves chat (openai or azure kinds)",
            NativeOperation::OpenAi(Operation::Embeddings) => "serves embeddings (openai or azure kinds)",
            NativeOperation::OpenAi(Operation::Responses) => "serves the Responses API (openai_responses kind)",
            NativeOperation::AnthropicCountTokens => "counts tokens (anthropic kind)",
            NativeOperation::AnthropicMessages => "speaks Anthropic's Messages API (anthropic, or vertex for claude)",
        }
    }
}

/// How one endpoint (a provider and its model name there) is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    /// `openai` (and every OpenAI-compatible server) and `azure`.
    OpenAiChat,
    /// OpenAI's Responses API.
    OpenAiResponses,
    Anthropic,
    Gemini,
    /// Google's models on Vertex.
    VertexGemini,
    /// Anthropic's models on Vertex.
    VertexClaude,
    Bedrock(bedrock::Api),
}

impl Adapter {
    /// The adapter for `model` at `provider`.
    pub fn of(provider: &ResolvedProvider, model: &str) -> Adapter {
        match provider.kind {
            ProviderKind::Openai | ProviderKind::Azure => Adapter::OpenAiChat,
            ProviderKind::OpenaiResponses => Adapter::OpenAiResponses,
            ProviderKind::Anthropic => Adapter::Anthropic,
            ProviderKind::Gemini => Adapter::Gemini,
            ProviderKind::Vertex if is_vertex_claude(model) => Adapter::VertexClaude,
            ProviderKind::Vertex => Adapter::VertexGemini,
            ProviderKind::Bedrock => Adapter::Bedrock(match provider.bedrock.as_ref().map(|b| b.api) {
                Some(BedrockApi::Invoke) => bedrock::Api::InvokeAnthropic,
                _ => bedrock::Api::Converse,
            }),
        }
    }

    /// Whether this endpoint takes `operation`'s body as the client sent it (model aside).
    pub fn offers(self, operation: NativeOperation) -> bool {
        match operation {
            NativeOperation::OpenAi(Operation::Responses) => self == Adapter::OpenAiResponses,
            NativeOperation::OpenAi(_) => self == Adapter::OpenAiChat,
            NativeOperation::AnthropicMessages => matches!(self, Adapter::Anthropic | Adapter::VertexClaude),
            NativeOperation::AnthropicCountTokens => self == Adapter::Anthropic,
        }
    }

    /// Google says when to come back in the error body (RetryInfo), not in a `Retry-After` header.
    pub fn retry_delay_in_body(self, status: u16, body: &[u8]) -> Option<std::time::Duration> {
        let google = matches!(self, Adapter::Gemini | Adapter::VertexGemini | Adapter::VertexClaude);
        if google && matches!(status, 429 | 503) { gemini::retry_delay(body) } else { None }
    }

    /// The client's body (model already replaced) as a request to this endpoint. `None` when the
    /// endpoint does not offer `operation` (see [`Adapter::offers`]).
    pub fn native_request(
        self,
        call: &EndpointCall<'_>,
        operation: NativeOperation,
        body: &(impl RequestBody + ?Sized),
        stream: bool,
        client: &RequestHead,
    ) -> Result<Vec<u8>, GatewayError> {
        let EndpointCall { provider, model, .. } = *call;
        match (self, operation) {
            (_, NativeOperation::OpenAi(op)) => Ok(openai::request(provider, op, body, stream, model)),
            (Adapter::VertexClaude, NativeOperation::AnthropicMessages) => vertex_claude_native(call, body, stream),
            (_, NativeOperation::AnthropicCountTokens) => {
                Ok(anthropic_native(provider, anthropic::COUNT_TOKENS_PATH, body, false, client))
            }
            (_, NativeOperation::AnthropicMessages) => {
                Ok(anthropic_native(provider, anthropic::MESSAGES_PATH, body, stream, client))
            }
        }
    }

    /// The internal request rendered for this endpoint, authenticated (and signed).
    pub fn translated_request(self, call: &EndpointCall<'_>, ir: &ChatRequest) -> Result<Vec<u8>, GatewayError> {
        let EndpointCall { provider, model, .. } = *call;
        let key = call.credential()?;
        let invalid = |e: crate::chat::RequestError| GatewayError::new(ErrorKind::InvalidField, e.to_string());
        let max_tokens = provider.default_max_tokens;
        let (body, headers, path) = match self {
            Adapter::Anthropic => {
                let options = anthropic::RequestOptions {
                    model,
                    default_max_tokens: max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
                    dialect: anthropic::Dialect::Anthropic,
                };
                let body = anthropic::request_body(ir, &options).map_err(invalid)?;
                (body, anthropic::request_headers(key, ir.stream), anthropic::MESSAGES_PATH.to_string())
            }
            Adapter::Gemini => {
                let body = gemini::request_body(ir, &gemini::RequestOptions { default_max_tokens: max_tokens })
                    .map_err(invalid)?;
                (body, gemini::request_headers(key, ir.stream), gemini::path(model, ir.stream))
            }
            Adapter::VertexGemini => {
                let (project, location) = vertex_place(provider)?;
                let body = gemini::request_body(ir, &gemini::RequestOptions { default_max_tokens: max_tokens })
                    .map_err(invalid)?;
                let path = gemini::vertex_path(project, location, model, ir.stream);
                (body, gemini::vertex_request_headers(key, ir.stream), path)
            }
            Adapter::VertexClaude => {
                let (project, location) = vertex_place(provider)?;
                let options = anthropic::RequestOptions {
                    model,
                    default_max_tokens: max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
                    dialect: anthropic::Dialect::Vertex,
                };
                let body = anthropic::request_body(ir, &options).map_err(invalid)?;
                let path = anthropic::vertex_path(project, location, model, ir.stream);
                (body, bearer_headers(key, ir.stream), path)
            }
            Adapter::OpenAiResponses => {
                let options = openai_responses::RequestOptions { model, reasoning_summary: false };
                let body = openai_responses::request_body(ir, &options).map_err(invalid)?;
                (body, bearer_headers(key, ir.stream), openai_responses::RESPONSES_PATH.to_string())
            }
            Adapter::OpenAiChat => {
                let options = openai_chat::RequestOptions { model, legacy_max_tokens: false, pass_extra: false };
                let body = openai_chat::request_body(ir, &options).map_err(invalid)?;
                return Ok(openai::chat_request(provider, &body, ir.stream, model));
            }
            Adapter::Bedrock(api) => return bedrock_request(provider, api, model, ir, key),
        };
        Ok(post(provider, &path, &headers, &body))
    }

    /// The decoder for this endpoint's stream; `head` gives Bedrock's request id (its stream has none).
    pub fn translator(self, head: &ResponseHead) -> Translator {
        match self {
            Adapter::Anthropic | Adapter::VertexClaude => Translator::Anthropic(anthropic::StreamTranslator::new()),
            Adapter::Gemini | Adapter::VertexGemini => Translator::Gemini(gemini::StreamTranslator::new()),
            Adapter::Bedrock(api) => Translator::Bedrock(bedrock::StreamTranslator::new(api, request_id(head))),
            Adapter::OpenAiChat => Translator::OpenaiChat(openai_chat::StreamTranslator::new()),
            Adapter::OpenAiResponses => Translator::OpenaiResponses(openai_responses::StreamTranslator::new()),
        }
    }

    /// A non-2xx answer, classified in the internal error kinds with the provider's message.
    pub fn classify_error(self, head: &ResponseHead, body: &[u8]) -> ProviderError {
        let status = head.status;
        match self {
            Adapter::Anthropic | Adapter::VertexClaude => anthropic::classify_error(status, body),
            Adapter::Gemini | Adapter::VertexGemini => gemini::classify_error(status, body),
            Adapter::Bedrock(_) => {
                let error_type = head.header("x-amzn-errortype").and_then(|v| std::str::from_utf8(v).ok());
                bedrock::classify_error(status, error_type, body)
            }
            Adapter::OpenAiChat => openai_chat::classify_error(status, body),
            Adapter::OpenAiResponses => openai_responses::classify_error(status, body),
        }
    }

    /// A successful non-streaming answer, parsed into the internal response.
    pub fn parse_response(self, head: &ResponseHead, body: &[u8]) -> Result<ChatResponse, ProviderError> {
        match self {
            Adapter::Anthropic | Adapter::VertexClaude => anthropic::parse_response(body),
            Adapter::Gemini | Adapter::VertexGemini => gemini::parse_response(body),
            Adapter::Bedrock(api) => bedrock::parse_response(api, body, request_id(head)),
            Adapter::OpenAiChat => openai_chat::parse_response(body),
            Adapter::OpenAiResponses => openai_responses::parse_response(body),
        }
    }
}

/// One call to an endpoint: the provider, its model name there, and the access tokens of the worker
/// making it (Vertex service accounts).
#[derive(Clone, Copy)]
pub struct EndpointCall<'a> {
    pub provider: &'a ResolvedProvider,
    pub model: &'a str,
    pub tokens: &'a TokenTable,
}

impl<'a> EndpointCall<'a> {
    /// The secret the request carries: the service account's current access token, or the static key
    /// (empty for a provider without one, such as a private deployment behind its own auth).
    pub fn credential(&self) -> Result<&'a str, GatewayError> {
        let provider = self.provider;
        if provider.vertex.as_ref().is_some_and(|v| v.service_account.is_some()) {
            let missing =
                |why| GatewayError::new(ErrorKind::BadGateway, format!("provider `{}`: {why}", provider.name));
            return self.tokens.valid(&provider.name, crate::clock::unix_now_ms()).map_err(missing);
        }
        Ok(provider.api_key.as_ref().map_or("", |k| k.expose()))
    }
}

/// Vertex serves Anthropic's models through `rawPredict` and Google's through `generateContent`.
fn is_vertex_claude(model: &str) -> bool {
    model.starts_with("claude")
}

fn vertex_place(provider: &ResolvedProvider) -> Result<(&str, &str), GatewayError> {
    let vertex = provider
        .vertex
        .as_ref()
        .ok_or_else(|| GatewayError::new(ErrorKind::Internal, "vertex provider without vertex settings"))?;
    Ok((&vertex.project, &vertex.location))
}

/// `content-type`, `accept` and the key as a bearer (OpenAI's Responses API, Vertex's Claude).
fn bearer_headers(key: &str, stream: bool) -> Vec<(&'static str, Vec<u8>)> {
    let accept: &[u8] = if stream { b"text/event-stream" } else { b"application/json" };
    let authorization = if key.is_empty() { Vec::new() } else { [b"Bearer ".as_slice(), key.as_bytes()].concat() };
    vec![("content-type", b"application/json".to_vec()), ("accept", accept.to_vec()), ("authorization", authorization)]
}

/// A complete POST to `path` at `provider`: a header with an empty value (no key configured) is left
/// out rather than sent empty.
fn post(
    provider: &ResolvedProvider,
    path: &str,
    headers: &[(&'static str, Vec<u8>)],
    body: &(impl RequestBody + ?Sized),
) -> Vec<u8> {
    let headers: Vec<(&str, &[u8])> =
        headers.iter().filter(|(_, v)| !v.is_empty()).map(|(n, v)| (*n, v.as_slice())).collect();
    let target = [provider.origin.base_path.as_str(), path];
    let mut out = crate::buffers::UPSTREAM_REQUESTS.take(512 + body.len());
    write_request_head_at(&mut out, "POST", target, &provider.origin.authority, &headers, Some(body.len() as u64));
    body.write_into(&mut out);
    out
}

/// An Anthropic request passed through: the client's body (model replaced) to `path` with the
/// provider's key. Of the client's headers only `anthropic-beta` goes on (it opts into features, such
/// as longer contexts, and carries no credential).
fn anthropic_native(
    provider: &ResolvedProvider,
    path: &str,
    body: &(impl RequestBody + ?Sized),
    stream: bool,
    client: &RequestHead,
) -> Vec<u8> {
    let key = provider.api_key.as_ref().map_or("", |k| k.expose());
    let mut headers = anthropic::request_headers(key, stream);
    if let Some(beta) = client.header("anthropic-beta") {
        headers.push(("anthropic-beta", beta.to_vec()));
    }
    post(provider, path, &headers, body)
}

/// An Anthropic client's Messages body (model already replaced) for Vertex's `rawPredict`: the same
/// body without `model` (Vertex takes it from the path) and with Vertex's `anthropic_version`, under
/// the provider's access token. Everything else (`cache_control`, tools) is the client's as sent.
fn vertex_claude_native(
    call: &EndpointCall<'_>,
    body: &(impl RequestBody + ?Sized),
    stream: bool,
) -> Result<Vec<u8>, GatewayError> {
    let (project, location) = vertex_place(call.provider)?;
    let invalid = |why: String| GatewayError::new(ErrorKind::InvalidJson, why);
    let mut bytes = Vec::with_capacity(body.len());
    body.write_into(&mut bytes);
    let mut json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("the request body is not a JSON object: {e}")))?;
    json.remove("model");
    json.insert("anthropic_version".into(), anthropic::VERTEX_ANTHROPIC_VERSION.into());
    let body = serde_json::to_vec(&json).map_err(|e| invalid(e.to_string()))?;
    let token = call.credential()?;
    let path = anthropic::vertex_path(project, location, call.model, stream);
    Ok(post(call.provider, &path, &bearer_headers(token, stream), &body))
}

fn request_id(head: &ResponseHead) -> &str {
    head.header("x-amzn-requestid").and_then(|v| std::str::from_utf8(v).ok()).unwrap_or("")
}

/// A Bedrock request, signed with SigV4 over exactly the host and path that go on the wire (or
/// carrying a Bedrock API key as a bearer token when no AWS credentials are configured).
fn bedrock_request(
    provider: &ResolvedProvider,
    api: bedrock::Api,
    model: &str,
    ir: &ChatRequest,
    api_key: &str,
) -> Result<Vec<u8>, GatewayError> {
    let settings = provider
        .bedrock
        .as_ref()
        .ok_or_else(|| GatewayError::new(ErrorKind::Internal, "bedrock provider without bedrock settings"))?;
    let options = bedrock::RequestOptions {
        model,
        api,
        family: bedrock::ModelFamily::detect(model),
        default_max_tokens: provider.default_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
    };
    let body =
        bedrock::request_body(ir, &options).map_err(|e| GatewayError::new(ErrorKind::InvalidField, e.to_string()))?;
    let target = provider.origin.target(&bedrock::path(api, model, ir.stream));
    let host = provider.origin.authority.as_str();
    let signed = bedrock::SignedRequest { method: "POST", path: &target, host, body: &body };
    let unsigned =
        |why: String| GatewayError::new(ErrorKind::BadGateway, format!("provider `{}`: {why}", provider.name));
    let headers = match &settings.credentials {
        Some(c) => {
            let mut credentials = Credentials::new(c.access_key_id.expose(), c.secret_access_key.expose());
            if let Some(token) = &c.session_token {
                credentials = credentials.with_session_token(token.expose());
            }
            let now = crate::clock::unix_now();
            let time = SigningTime::from_unix_seconds(now).map_err(|e| unsigned(format!("cannot sign: {e:?}")))?;
            let auth = bedrock::Auth::SigV4 { region: &settings.region, credentials: &credentials, time };
            bedrock::request_headers(api, ir.stream, &auth, &signed)
        }
        None if !api_key.is_empty() => {
            bedrock::request_headers(api, ir.stream, &bedrock::Auth::Bearer(api_key), &signed)
        }
        None => return Err(unsigned("no AWS credentials or Bedrock API key configured".into())),
    }
    .map_err(|e| unsigned(format!("cannot sign the request: {e:?}")))?;
    let headers: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_slice())).collect();
    let mut out = Vec::with_capacity(1024 + body.len());
    write_request_head(&mut out, "POST", &target, host, &headers, Some(body.len() as u64));
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_operations_go_only_to_endpoints_that_speak_them() {
        use NativeOperation::*;
        let all = [
            Adapter::OpenAiChat,
            Adapter::OpenAiResponses,
            Adapter::Anthropic,
            Adapter::Gemini,
            Adapter::VertexGemini,
            Adapter::VertexClaude,
            Adapter::Bedrock(bedrock::Api::Converse),
        ];
        let offering = |op| all.iter().filter(|a| a.offers(op)).copied().collect::<Vec<_>>();
        assert_eq!(offering(OpenAi(Operation::Chat)), [Adapter::OpenAiChat]);
        assert_eq!(offering(OpenAi(Operation::Embeddings)), [Adapter::OpenAiChat]);
        assert_eq!(offering(OpenAi(Operation::Responses)), [Adapter::OpenAiResponses]);
        assert_eq!(offering(AnthropicMessages), [Adapter::Anthropic, Adapter::VertexClaude]);
        assert_eq!(offering(AnthropicCountTokens), [Adapter::Anthropic]);
    }
}
