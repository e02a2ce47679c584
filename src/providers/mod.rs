//! Provider adapters: how a client request becomes a provider request. One module per provider kind,
//! dispatched by enum (`ProviderKind`), never by trait object, on the hot path.

pub mod anthropic;
pub mod aws;
pub mod bedrock;
pub mod gemini;
pub mod openai;
pub mod openai_chat;
