//! Front doors: the client-facing formats. Each knows how to read its requests and render its
//! responses and errors; none knows about sockets or providers.

pub mod ai_sdk;
pub mod anthropic_messages;
pub mod health;
pub mod openai;
pub mod openai_chat;
pub mod openai_responses;
mod request_json;
pub mod route_fields;

use crate::chat::{ChatResponse, ProviderError, StreamEvent};
use crate::error::GatewayError;

/// The client-facing format of a request: decides how answers, streams and errors are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontDoor {
    /// OpenAI chat completions (`/v1/chat/completions`).
    OpenAi,
    /// OpenAI embeddings (`/v1/embeddings`): OpenAI's formats, passed through.
    OpenAiEmbeddings,
    /// OpenAI's Responses API (`/v1/responses`): passed through to `openai_responses` providers,
    /// translated for the others.
    OpenAiResponses,
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
    /// Anthropic's `/v1/messages/count_tokens`: passed through to Anthropic-kind providers.
    AnthropicCountTokens,
    /// The Vercel AI SDK's gateway protocol (`/v{1,3,4}/ai/language-model`), in the client's spec
    /// version.
    AiSdk(ai_sdk::SpecVersion),
    /// The AI SDK's `/v{1,3,4}/ai/embedding-model`: OpenAI-format providers' embeddings, re-shaped.
    AiSdkEmbeddings,
}

/// A stream encoder for one front door (enum dispatch, no trait objects on the hot path).
pub enum StreamEncoder {
    OpenAi(openai_chat::ChunkEncoder),
    OpenAiResponses(Box<openai_responses::StreamEncoder>),
    Anthropic(anthropic_messages::StreamEncoder),
    AiSdk(Box<ai_sdk::StreamEncoder>),
}

impl StreamEncoder {
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match self {
            StreamEncoder::OpenAi(e) => e.encode(event, out),
            StreamEncoder::OpenAiResponses(e) => e.encode(event, out),
            StreamEncoder::Anthropic(e) => e.encode(event, out),
            StreamEncoder::AiSdk(e) => e.encode(event, out),
        }
    }

    /// Whether the format carries the gateway's routing and cost metadata (`providerMetadata.gateway`).
    pub fn wants_gateway_metadata(&self) -> bool {
        matches!(self, StreamEncoder::AiSdk(_))
    }

    /// Routing and cost for the finish part, where the format has a place for them.
    pub fn set_gateway_metadata(&mut self, metadata: serde_json::Value) {
        if let StreamEncoder::AiSdk(e) = self {
            e.set_gateway_metadata(metadata);
        }
    }
}

impl FrontDoor {
    /// The label in metrics and the access log.
    pub fn name(self) -> &'static str {
        match self {
            FrontDoor::OpenAi => "openai",
            FrontDoor::OpenAiEmbeddings => "openai_embeddings",
            FrontDoor::OpenAiResponses => "openai_responses",
            FrontDoor::Anthropic => "anthropic",
            FrontDoor::AnthropicCountTokens => "anthropic_count_tokens",
            FrontDoor::AiSdk(_) => "ai_sdk",
            FrontDoor::AiSdkEmbeddings => "ai_sdk_embeddings",
        }
    }

    /// Whether this door's body is first read by `route_fields::extract`, whose one pass validates
    /// the whole body with nesting bounded (so no separate depth check is needed before it).
    pub fn body_validated_by_route_fields(self) -> bool {
        !matches!(self, FrontDoor::AiSdk(_) | FrontDoor::AiSdkEmbeddings)
    }

    /// `response_id` names the answer where the format gives it an id the client sees (the Responses
    /// API's `resp_...`); unique per request.
    pub fn stream_encoder(
        self,
        gateway_model: &str,
        created: u64,
        include_usage: bool,
        response_id: &str,
    ) -> StreamEncoder {
        match self {
            FrontDoor::OpenAiResponses => StreamEncoder::OpenAiResponses(Box::new(
                openai_responses::StreamEncoder::new(gateway_model, created, response_id),
            )),
            // Embeddings never stream; the OpenAI encoder stands in.
            FrontDoor::OpenAi | FrontDoor::OpenAiEmbeddings | FrontDoor::AiSdkEmbeddings => {
                StreamEncoder::OpenAi(openai_chat::ChunkEncoder::new(gateway_model, created, include_usage))
            }
            FrontDoor::Anthropic | FrontDoor::AnthropicCountTokens => {
                StreamEncoder::Anthropic(anthropic_messages::StreamEncoder::new(gateway_model))
            }
            FrontDoor::AiSdk(spec) => {
                StreamEncoder::AiSdk(Box::new(ai_sdk::StreamEncoder::new(gateway_model).with_spec(spec)))
            }
        }
    }

    /// `gateway_metadata` (routing, cost) goes where the format has a place for it (the AI SDK's).
    pub fn encode_response(
        self,
        answer: &ChatResponse,
        gateway_model: &str,
        created: u64,
        gateway_metadata: Option<&serde_json::Value>,
        response_id: &str,
    ) -> Vec<u8> {
        match self {
            FrontDoor::OpenAiResponses => {
                openai_responses::encode_response(answer, gateway_model, created, response_id)
            }
            FrontDoor::OpenAi | FrontDoor::OpenAiEmbeddings | FrontDoor::AiSdkEmbeddings => {
                openai_chat::encode_response(answer, gateway_model, created)
            }
            FrontDoor::Anthropic | FrontDoor::AnthropicCountTokens => {
                anthropic_messages::encode_response(answer, gateway_model)
            }
            FrontDoor::AiSdk(spec) => ai_sdk::encode_response_with(answer, gateway_model, spec, gateway_metadata),
        }
    }

    pub fn error_status(self, error: &ProviderError) -> u16 {
        match self {
            FrontDoor::OpenAi | FrontDoor::OpenAiEmbeddings | FrontDoor::OpenAiResponses => {
                openai_chat::error_status(error)
            }
            FrontDoor::Anthropic | FrontDoor::AnthropicCountTokens => anthropic_messages::error_status(error),
            FrontDoor::AiSdk(_) | FrontDoor::AiSdkEmbeddings => ai_sdk::error_status(error),
        }
    }

    pub fn error_body(self, error: &ProviderError) -> Vec<u8> {
        match self {
            FrontDoor::OpenAi | FrontDoor::OpenAiEmbeddings | FrontDoor::OpenAiResponses => {
                openai_chat::error_body(error)
            }
            FrontDoor::Anthropic | FrontDoor::AnthropicCountTokens => anthropic_messages::error_body(error),
            FrontDoor::AiSdk(_) | FrontDoor::AiSdkEmbeddings => ai_sdk::error_body(error),
        }
    }

    /// The body of an error the gateway itself answers with (its status is `error.status()`).
    /// The in-band event that ends a stream with `error` after its head went out, in this door's
    /// format (`events_sent` continues the Responses API's sequence numbers).
    pub fn gateway_error_event(self, error: &GatewayError, events_sent: u64, out: &mut Vec<u8>) {
        match self {
            FrontDoor::Anthropic | FrontDoor::AnthropicCountTokens => {
                anthropic_messages::gateway_error_event(error, out)
            }
            FrontDoor::OpenAiResponses => openai_responses::gateway_error_event(error, events_sent, out),
            FrontDoor::OpenAi | FrontDoor::OpenAiEmbeddings | FrontDoor::AiSdk(_) | FrontDoor::AiSdkEmbeddings => {
                openai::error_event(error, out)
            }
        }
    }

    pub fn gateway_error_body(self, error: &GatewayError) -> Vec<u8> {
        match self {
            FrontDoor::OpenAi | FrontDoor::OpenAiEmbeddings | FrontDoor::OpenAiResponses => openai::error_json(error),
            FrontDoor::Anthropic | FrontDoor::AnthropicCountTokens => anthropic_messages::gateway_error_body(error),
            FrontDoor::AiSdk(_) | FrontDoor::AiSdkEmbeddings => ai_sdk::gateway_error_body(error),
        }
    }
}
