//! The OpenAI-compatible front door: error envelopes and the `/v1/models` list.

use serde::Serialize;

use crate::error::{ErrorKind, GatewayError};

/// OpenAI's `type` for an error kind, so SDKs raise the matching exception class.
fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Unauthorized => "authentication_error",
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::Forbidden => "permission_error",
        ErrorKind::BadGateway | ErrorKind::GatewayTimeout | ErrorKind::Internal | ErrorKind::Unavailable => "api_error",
        _ => "invalid_request_error",
    }
}

/// OpenAI's machine-readable `code`, where OpenAI has one for the case.
pub(crate) fn error_code(kind: ErrorKind) -> Option<&'static str> {
    match kind {
        ErrorKind::ModelNotFound => Some("model_not_found"),
        ErrorKind::Unauthorized => Some("invalid_api_key"),
        ErrorKind::PayloadTooLarge => Some("request_too_large"),
        ErrorKind::GatewayTimeout => Some("upstream_timeout"),
        ErrorKind::BadGateway => Some("upstream_error"),
        ErrorKind::RateLimited => Some("rate_limit_exceeded"),
        _ => None,
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<&'a str>,
    code: Option<&'static str>,
}

/// The JSON envelope `{"error":{"message","type","param","code"}}`.
pub fn error_json(error: &GatewayError) -> Vec<u8> {
    let envelope = Envelope {
        error: Body {
            message: &error.message,
            kind: error_type(error.kind),
            param: error.param.as_deref(),
            code: error_code(error.kind),
        },
    };
    serde_json::to_vec(&envelope).expect("serializing plain strings cannot fail")
}

/// An SSE event carrying an error, for failures after a stream has started.
pub fn error_event(error: &GatewayError, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&error_json(error));
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_openai_shape() {
        let e = GatewayError::new(ErrorKind::ModelNotFound, "no such model").with_param("model");
        let v: serde_json::Value = serde_json::from_slice(&error_json(&e)).unwrap();
        assert_eq!(v["error"]["message"], "no such model");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "model");
        assert_eq!(v["error"]["code"], "model_not_found");
    }
}
