//! The two failures the chat model knows: a client request that cannot be read or translated
//! ([`RequestError`], always the client's to fix) and a provider's refusal or failure
//! ([`ProviderError`], classified so routing can decide whether another provider may try). Turning
//! them into HTTP statuses and envelopes is the front door's and the proxy's job.

use std::fmt;

/// A client request a front door could not parse, or a provider mapping could not express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The body is not JSON, or not an object.
    #[error("{0}")]
    InvalidJson(String),
    /// A field is missing, has the wrong type or an impossible value. `param` names it the way
    /// OpenAI does: `messages[2].content[0].image_url`.
    #[error("{message}")]
    Invalid { param: String, message: String },
    /// A valid field the target provider cannot honour (an OpenAI `file_id` sent to Anthropic).
    #[error("{message}")]
    Unsupported { param: String, message: String },
}

impl RequestError {
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { param: param.into(), message: message.into() }
    }

    pub fn unsupported(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Unsupported { param: param.into(), message: message.into() }
    }

    /// The offending request field, if one is to blame.
    pub fn param(&self) -> Option<&str> {
        match self {
            Self::InvalidJson(_) => None,
            Self::Invalid { param, .. } | Self::Unsupported { param, .. } => Some(param),
        }
    }
}

/// What a provider said went wrong, in a vocabulary shared by all providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// The request was wrong (400): the client's fault, the same at every provider.
    InvalidRequest,
    /// The gateway's provider credential was refused (401).
    Authentication,
    /// The credential lacks access to the model or feature (403).
    PermissionDenied,
    /// The model or path does not exist at this provider (404).
    NotFound,
    /// The request is over the provider's size limit (413).
    RequestTooLarge,
    /// The gateway's provider account is out of credit (402).
    Billing,
    /// Too many requests or tokens for the account right now (429).
    RateLimited,
    /// The provider is out of capacity (Anthropic 529, `overloaded_error`).
    Overloaded,
    /// The provider failed internally (500, other 5xx).
    Server,
    /// The provider's answer broke its own protocol: bad JSON, an oversized event, a stream that
    /// ended before its last event.
    Malformed,
}

impl ProviderErrorKind {
    /// True when another attempt (the next endpoint, or later) may succeed with the same request.
    /// Credential, billing and not-found failures are stable facts about the configuration, and the
    /// client's own mistakes are the same everywhere, so they are not retried.
    pub fn retryable(self) -> bool {
        matches!(self, Self::RateLimited | Self::Overloaded | Self::Server | Self::Malformed)
    }

    /// True when the client, not the gateway or the provider, must change something.
    pub fn is_client_fault(self) -> bool {
        matches!(self, Self::InvalidRequest | Self::RequestTooLarge)
    }
}

/// A classified provider failure with the provider's own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub kind: ProviderErrorKind,
    pub message: String,
}

impl ProviderError {
    pub fn new(kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    pub fn retryable(&self) -> bool {
        self.kind.retryable()
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl std::error::Error for ProviderError {}
