//! The pipeline's one error type: what went wrong, which side is at fault, and the status it maps to.
//!
//! Leaf modules keep their own small enums (`HeadError`, `BodyError`, `UpstreamError`); the proxy turns
//! them into a `GatewayError` once, and the front door renders it once, in the client's format.

use std::fmt;

use crate::upstream::UpstreamError;

/// Who caused a failure: decides logging level and, later, whether routing may try elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Provider,
    Gateway,
}

/// What went wrong, at the granularity clients and operators care about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed HTTP framing or an otherwise unusable request.
    BadRequest,
    InvalidJson,
    /// A required or well-typed field is missing or has the wrong type.
    InvalidField,
    Unauthorized,
    RouteNotFound,
    MethodNotAllowed,
    RequestTimeout,
    ModelNotFound,
    PayloadTooLarge,
    HeadersTooLarge,
    UnsupportedHttpVersion,
    BadGateway,
    GatewayTimeout,
    /// The gateway cannot take the request now (shutting down, connection limit).
    Unavailable,
    Internal,
    /// The client left before its answer (recorded, never sent).
    ClientClosed,
    /// A gateway key's rate, token or concurrency limit (429, with `Retry-After`).
    RateLimited,
    /// A gateway key may not do this: model not allowed, budget spent, key expired (403).
    Forbidden,
}

#[derive(Debug, Clone)]
pub struct GatewayError {
    pub kind: ErrorKind,
    pub message: String,
    /// The request field at fault, as OpenAI reports it in `param`.
    pub param: Option<std::borrow::Cow<'static, str>>,
    /// Seconds to wait before retrying, sent as `Retry-After` (limits).
    pub retry_after_s: Option<u64>,
}

impl GatewayError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> GatewayError {
        GatewayError { kind, message: message.into(), param: None, retry_after_s: None }
    }

    pub fn with_param(mut self, param: impl Into<std::borrow::Cow<'static, str>>) -> GatewayError {
        self.param = Some(param.into());
        self
    }

    pub fn status(&self) -> u16 {
        match self.kind {
            ErrorKind::BadRequest | ErrorKind::InvalidJson | ErrorKind::InvalidField => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::RouteNotFound | ErrorKind::ModelNotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::RequestTimeout => 408,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::HeadersTooLarge => 431,
            ErrorKind::UnsupportedHttpVersion => 505,
            ErrorKind::Internal => 500,
            ErrorKind::ClientClosed => 499,
            ErrorKind::RateLimited => 429,
            ErrorKind::Forbidden => 403,
            ErrorKind::BadGateway => 502,
            ErrorKind::GatewayTimeout => 504,
            ErrorKind::Unavailable => 503,
        }
    }

    pub fn side(&self) -> Side {
        match self.kind {
            ErrorKind::BadGateway | ErrorKind::GatewayTimeout => Side::Provider,
            ErrorKind::Internal | ErrorKind::Unavailable => Side::Gateway,
            _ => Side::Client,
        }
    }

    /// Maps a provider exchange failure: timeouts are 504, the rest 502. The message names the
    /// provider but never its URL or key.
    pub fn from_upstream(provider: &str, error: &UpstreamError) -> GatewayError {
        let kind = if error.is_timeout() { ErrorKind::GatewayTimeout } else { ErrorKind::BadGateway };
        GatewayError::new(kind, format!("provider `{provider}`: {error}"))
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status())
    }
}

impl std::error::Error for GatewayError {}
