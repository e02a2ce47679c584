//! The internal stream: the events a provider translator emits and a front-door encoder consumes.
//!
//! Contract: a stream is `Start`, then any number of content events and `Usage` (cumulative: the
//! last one counts), then exactly one terminal event, `Finish` for a clean end or `Error` for a
//! failed one. Nothing follows a terminal event.

use super::error::ProviderError;
use super::response::{FinishReason, Usage};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// The provider accepted the request: its message id and model name.
    Start {
        id: String,
        model: String,
    },
    TextDelta(String),
    ReasoningDelta(String),
    /// The signature closing the current reasoning part (Anthropic `signature_delta`).
    ReasoningSignature(String),
    /// A whole encrypted reasoning part.
    RedactedReasoning(String),
    /// A new tool call. `index` counts the calls of this answer from 0, whatever the provider numbers.
    ToolCallStart {
        index: u32,
        id: String,
        name: String,
    },
    /// More argument JSON text for call `index`; never empty.
    ToolCallDelta {
        index: u32,
        arguments: String,
    },
    RefusalDelta(String),
    Usage(Usage),
    Finish(FinishReason),
    Error(ProviderError),
}

impl StreamEvent {
    /// True once the event carries something the client must see, so the answer can no longer move
    /// to another provider. `Start` and `Usage` do not commit: a proxy may hold what it encoded for
    /// them and fail over when an `Error` arrives before any committing event.
    pub fn commits(&self) -> bool {
        !matches!(self, Self::Start { .. } | Self::Usage(_) | Self::Error(_))
    }

    /// True for the last event of a stream.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Finish(_) | Self::Error(_))
    }
}
