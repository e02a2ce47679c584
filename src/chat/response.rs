//! The internal non-streaming answer, its finish reason and its token usage. Wire shapes are the
//! mappings' business.

use super::request::{Part, ToolCall};

/// A complete assistant answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatResponse {
    /// The provider's message id.
    pub id: String,
    /// The provider's model name (front doors show the gateway id instead).
    pub model: String,
    /// Text, reasoning (signed or redacted) and refusal parts, in the provider's order.
    pub content: Vec<Part>,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: FinishReason,
    pub usage: Usage,
}

/// Why generation stopped, in OpenAI's vocabulary (the one most clients know).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    #[default]
    Stop,
    /// The output budget ran out.
    Length,
    /// The model wants tool results.
    ToolCalls,
    /// The provider refused or filtered the answer.
    ContentFilter,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::ToolCalls => "tool_calls",
            Self::ContentFilter => "content_filter",
        }
    }
}

/// Token counts of one call.
///
/// `prompt_tokens` counts every input token, cached ones included (OpenAI's meaning); the cache
/// fields break part of it down. Providers that report uncached input separately (Anthropic) add
/// their counters up when mapping in, and front doors that want them apart subtract.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    /// Output tokens, reasoning included.
    pub completion_tokens: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_write_tokens: u64,
    /// The part of `completion_tokens` spent reasoning; 0 when the provider does not say.
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Every count the larger of two reports. Counts in a stream only grow, and Anthropic's come in
    /// two parts: the input in `message_start`, the output (cumulative) in each `message_delta`.
    pub fn most_of(self, other: Usage) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens.max(other.prompt_tokens),
            completion_tokens: self.completion_tokens.max(other.completion_tokens),
            cache_read_tokens: self.cache_read_tokens.max(other.cache_read_tokens),
            cache_write_tokens: self.cache_write_tokens.max(other.cache_write_tokens),
            reasoning_tokens: self.reasoning_tokens.max(other.reasoning_tokens),
        }
    }

    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}
