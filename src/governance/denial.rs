//! Why a request was refused admission, as the status, `Retry-After` and message the client gets.

use std::fmt;

/// Which rule refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialReason {
    UnknownKey,
    Expired,
    ModelNotAllowed,
    BudgetPerDay,
    BudgetPerMonth,
    BudgetTotal,
    RequestsPerMinute,
    TokensPerMinute,
    Concurrency,
}

impl DenialReason {
    pub const ALL: [DenialReason; 9] = [
        DenialReason::UnknownKey,
        DenialReason::Expired,
        DenialReason::ModelNotAllowed,
        DenialReason::BudgetPerDay,
        DenialReason::BudgetPerMonth,
        DenialReason::BudgetTotal,
        DenialReason::RequestsPerMinute,
        DenialReason::TokensPerMinute,
        DenialReason::Concurrency,
    ];

    /// The label used in logs and `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            DenialReason::UnknownKey => "unknown_key",
            DenialReason::Expired => "expired",
            DenialReason::ModelNotAllowed => "model_not_allowed",
            DenialReason::BudgetPerDay => "budget_day",
            DenialReason::BudgetPerMonth => "budget_month",
            DenialReason::BudgetTotal => "budget_total",
            DenialReason::RequestsPerMinute => "rpm",
            DenialReason::TokensPerMinute => "tpm",
            DenialReason::Concurrency => "concurrency",
        }
    }

    /// 429 for limits that lift with time on their own; 403 for what the key itself does not allow.
    /// A spent budget is 403 (it lifts only at a day or month boundary, or never), as OpenAI answers
    /// an exhausted quota with a non-retryable error.
    pub fn status(self) -> u16 {
        match self {
            DenialReason::UnknownKey => 401,
            DenialReason::RequestsPerMinute | DenialReason::TokensPerMinute | DenialReason::Concurrency => 429,
            _ => 403,
        }
    }
}

/// A refused request: the pipeline answers `status` in the client's API format, with `Retry-After:
/// retry_after_s` when set, and never calls a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub reason: DenialReason,
    pub status: u16,
    pub retry_after_s: Option<u64>,
    pub message: String,
}

impl Denial {
    pub fn new(reason: DenialReason, retry_after_s: Option<u64>, message: impl Into<String>) -> Denial {
        Denial { reason, status: reason.status(), retry_after_s, message: message.into() }
    }
}

impl Denial {
    /// The error `type` both OpenAI's and Anthropic's envelopes use for this status, so each
    /// official SDK raises its own class (`RateLimitError`, `PermissionDeniedError`).
    pub fn error_type(&self) -> &'static str {
        match self.status {
            429 => "rate_limit_error",
            401 => "authentication_error",
            _ => "permission_error",
        }
    }

    /// A stable machine code for the OpenAI envelope's `code`: `key_` and the rule's label.
    pub fn code(&self) -> String {
        format!("key_{}", self.reason.label())
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Usage the pipeline estimates before an attempt, or reports once the answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Input plus output tokens (an estimate: the prompt's plus `max_tokens`).
    pub tokens: u64,
    /// Micro-dollars.
    pub cost_micros: u64,
}
