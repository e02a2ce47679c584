//! Provider adapters: how a client request becomes a provider request, and a provider's stream
//! becomes internal events ([`Translator`]). One module per provider kind, dispatched by enum
//! (`ProviderKind`, `Translator`), never by trait object, on the hot path. No I/O here.

pub mod adapter;
pub mod anthropic;
pub mod bedrock;
pub mod gemini;
pub mod openai;
pub mod openai_chat;
pub mod openai_responses;

use crate::chat::{StreamEvent, Usage};

/// A provider stream decoder, by provider format (enum dispatch on the hot path, no trait objects):
/// provider bytes in, internal stream events out, incrementally.
pub enum Translator {
    Anthropic(anthropic::StreamTranslator),
    Gemini(gemini::StreamTranslator),
    Bedrock(bedrock::StreamTranslator),
    /// An OpenAI-compatible provider behind a client that speaks another format.
    OpenaiChat(openai_chat::StreamTranslator),
    /// OpenAI's Responses API (`/v1/responses`), for models served only there.
    OpenaiResponses(openai_responses::StreamTranslator),
}

impl Translator {
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<StreamEvent>) {
        match self {
            Translator::Anthropic(t) => t.feed(input, out),
            Translator::Gemini(t) => t.feed(input, out),
            Translator::Bedrock(t) => t.feed(input, out),
            Translator::OpenaiChat(t) => t.feed(input, out),
            Translator::OpenaiResponses(t) => t.feed(input, out),
        }
    }

    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        match self {
            Translator::Anthropic(t) => t.finish(out),
            Translator::Gemini(t) => t.finish(out),
            Translator::Bedrock(t) => t.finish(out),
            Translator::OpenaiChat(t) => t.finish(out),
            Translator::OpenaiResponses(t) => t.finish(out),
        }
    }

    /// The usage counted so far (the total once the stream has finished).
    pub fn usage(&self) -> Usage {
        match self {
            Translator::Anthropic(t) => t.usage(),
            Translator::Gemini(t) => t.usage(),
            Translator::Bedrock(t) => t.usage(),
            Translator::OpenaiChat(t) => t.usage(),
            Translator::OpenaiResponses(t) => t.usage(),
        }
    }
}
