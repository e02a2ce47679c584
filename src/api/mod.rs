//! Front doors: the client-facing formats. Each knows how to read its requests and render its
//! responses and errors; none knows about sockets or providers.

pub mod anthropic_messages;
pub mod health;
pub mod openai;
pub mod openai_chat;
pub mod route_fields;

use crate::chat::{ChatResponse, ProviderError, StreamEvent};
use crate::error::GatewayError;

/// The client-facing format of a request: decides how answers, streams and errors are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontDoor {
    /// OpenAI chat completions (`/v1/chat/completions`).
    OpenAi,
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
}

/// A stream encoder for one front door (enum dispatch, no trait objects on the hot path).
pub enum StreamEncoder {
    OpenAi(openai_chat::ChunkEncoder),
    Anthropic(anthropic_messages::StreamEncoder),
}

impl StreamEncoder {
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match self {
            StreamEncoder::OpenAi(e) => e.encode(event, out),
            StreamEncoder::Anthropic(e) => e.encode(event, out),
        }
    }
}

impl FrontDoor {
    /// The label in metrics and the access log.
    pub fn name(self) -> &'static str {
        match self {
            FrontDoor::OpenAi => "openai",
            FrontDoor::Anthropic => "anthropic",
        }
    }

    pub fn stream_encoder(self, gateway_model: &str, created: u64, include_usage: bool) -> StreamEncoder {
        match self {
            FrontDoor::OpenAi => {
                StreamEncoder::OpenAi(openai_chat::ChunkEncoder::new(gateway_model, created, include_usage))
            }
            FrontDoor::Anthropic => StreamEncoder::Anthropic(anthropic_messages::StreamEncoder::new(gateway_model)),
        }
    }

    pub fn encode_response(self, answer: &ChatResponse, gateway_model: &str, created: u64) -> Vec<u8> {
        match self {
            FrontDoor::OpenAi => openai_chat::encode_response(answer, gateway_model, created),
            FrontDoor::Anthropic => anthropic_messages::encode_response(answer, gateway_model),
        }
    }

    pub fn error_status(self, error: &ProviderError) -> u16 {
        match self {
            FrontDoor::OpenAi => openai_chat::error_status(error),
            FrontDoor::Anthropic => anthropic_messages::error_status(error),
        }
    }

    pub fn error_body(self, error: &ProviderError) -> Vec<u8> {
        match self {
            FrontDoor::OpenAi => openai_chat::error_body(error),
            FrontDoor::Anthropic => anthropic_messages::error_body(error),
        }
    }

    /// The body of an error the gateway itself answers with (its status is `error.status()`).
    pub fn gateway_error_body(self, error: &GatewayError) -> Vec<u8> {
        match self {
            FrontDoor::OpenAi => openai::error_json(error),
            FrontDoor::Anthropic => anthropic_messages::gateway_error_body(error),
        }
    }
}
