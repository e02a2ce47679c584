//! The internal chat request: what a client asked for, independent of the format it asked in. It does
//! not know any wire format; front doors build it and providers read it.

use serde_json::value::RawValue;

/// One chat request, as parsed by a front door.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// The model id the client asked for (the gateway's id, not a provider's).
    pub model: String,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)` asks for at most one tool call per turn.
    pub parallel_tool_calls: Option<bool>,
    /// The output budget the client gave; `None` lets the provider mapping default it.
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Vec<String>,
    pub seed: Option<i64>,
    pub response_format: Option<ResponseFormat>,
    pub reasoning: Option<Reasoning>,
    pub stream: bool,
    /// The client wants token usage at the end of a stream (OpenAI `stream_options.include_usage`).
    pub include_usage: bool,
    /// An end-user id the client passed for abuse tracking.
    pub user: Option<String>,
    /// Top-level fields the front door does not model, verbatim, in arrival order. A mapping to a
    /// provider of the same format may pass them on; mappings to other formats ignore them, since
    /// their meaning is format-specific.
    pub extra: Vec<ExtraField>,
}

/// A top-level request field kept as raw JSON.
#[derive(Debug, Clone)]
pub struct ExtraField {
    pub name: String,
    pub value: Box<RawValue>,
}

impl PartialEq for ExtraField {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.value.get() == other.value.get()
    }
}

/// One conversation turn. Roles are variants so a tool result cannot lack its call id and a user
/// turn cannot carry tool calls.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Instructions. `developer` keeps OpenAI's distinction for front doors that round-trip it;
    /// providers with a single system slot treat both alike.
    System {
        content: Vec<Part>,
        developer: bool,
    },
    User {
        content: Vec<Part>,
    },
    Assistant {
        content: Vec<Part>,
        tool_calls: Vec<ToolCall>,
    },
    /// The result of the assistant's tool call `tool_call_id`.
    Tool {
        tool_call_id: String,
        content: Vec<Part>,
    },
}

/// A piece of message content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Image(Media),
    File {
        media: Media,
        filename: Option<String>,
    },
    /// Model reasoning from an earlier assistant turn, with the provider's signature when it gave one
    /// (Anthropic requires thinking blocks back, signed, during tool use).
    Reasoning {
        text: String,
        signature: Option<String>,
    },
    /// Reasoning the provider encrypted; only that provider can read `data`.
    RedactedReasoning {
        data: String,
    },
    /// A refusal in an earlier assistant turn.
    Refusal(String),
}

/// Where binary content lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    /// An `http(s)` URL the provider fetches itself.
    Url(String),
    /// Inline bytes, base64-encoded, with their media type (`image/png`, `application/pdf`).
    Base64 { media_type: String, data: String },
    /// A file stored with the client's provider (OpenAI `file_id`); other providers cannot read it.
    FileId(String),
}

/// A tool call made by the assistant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as JSON text, exactly as produced (it may be truncated when the output was cut).
    pub arguments: String,
}

/// A function the model may call.
#[derive(Debug, Clone)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// The JSON schema of the arguments, verbatim (key order kept).
    pub parameters: Option<Box<RawValue>>,
    pub strict: Option<bool>,
}

impl PartialEq for Tool {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.description == other.description
            && self.parameters.as_ref().map(|p| p.get()) == other.parameters.as_ref().map(|p| p.get())
            && self.strict == other.strict
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    /// At least one tool call.
    Required,
    /// This tool must be called.
    Named(String),
}

/// The shape the client wants the answer in.
#[derive(Debug, Clone)]
pub enum ResponseFormat {
    Text,
    /// Any JSON object, no schema.
    JsonObject,
    JsonSchema {
        name: String,
        schema: Option<Box<RawValue>>,
        strict: Option<bool>,
    },
}

impl PartialEq for ResponseFormat {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Text, Self::Text) | (Self::JsonObject, Self::JsonObject) => true,
            (
                Self::JsonSchema { name: a, schema: sa, strict: ta },
                Self::JsonSchema { name: b, schema: sb, strict: tb },
            ) => a == b && ta == tb && sa.as_ref().map(|s| s.get()) == sb.as_ref().map(|s| s.get()),
            _ => false,
        }
    }
}

/// How much the model should think before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reasoning {
    Disabled,
    /// A relative level (OpenAI `reasoning_effort`); providers with token budgets pick one.
    Effort(Effort),
    /// An explicit thinking budget in tokens (Anthropic `thinking.budget_tokens`).
    Budget(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    Minimal,
    Low,
    Medium,
    High,
    XHigh,
}
