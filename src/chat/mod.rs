//! The internal chat model every front door and provider maps to and from: one typed request, one
//! non-streaming response, one stream-event enum, one provider-error type. With it, each new client
//! format (OpenAI, Anthropic, AI SDK) and each provider (Anthropic, Gemini, Bedrock, ...) is a pair of
//! mappings instead of a matrix of special cases.
//!
//! It owns types only: no JSON, no bytes, no I/O. Parsing a client body is the front door's job
//! (`api::*`), writing a provider body and reading its answers is the provider's (`providers::*`).
//! The types are as rich as the mappings need and no richer; anything a mapping cannot express is
//! rejected by name (`RequestError::Unsupported`), never dropped silently, unless the module doc of
//! the mapping says why dropping is right.

mod error;
mod request;
mod response;
mod sse_translator;
mod stream;

pub use error::{ProviderError, ProviderErrorKind, RequestError};
pub use request::{
    ChatRequest, Effort, ExtraField, Media, Message, Part, Reasoning, ResponseFormat, Tool, ToolCall, ToolChoice,
};
pub use response::{ChatResponse, FinishReason, Usage};
pub use sse_translator::{SseEventMapper, SseTranslator};
pub use stream::StreamEvent;
