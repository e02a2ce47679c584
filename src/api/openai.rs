//! The OpenAI-compatible front door: error envelopes and the `/v1/models` list.

use serde::Serialize;

use crate::error::{ErrorKind, GatewayError};

/// OpenAI's `type` for an error kind, so SDKs raise the matching exception class.
fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Unauthorized => "authentication_error",
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

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<ModelEntry<'a>>,
}

#[derive(Serialize)]
struct ModelEntry<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'a str,
}

/// The `GET /v1/models` body for the given (id, owner) pairs. `created` is the config load time:
/// the gateway does not know when a provider released a model.
pub fn model_list_json<'a>(models: impl Iterator<Item = (&'a str, &'a str)>, created: u64) -> Vec<u8> {
    let data = models.map(|(id, owned_by)| ModelEntry { id, object: "model", created, owned_by }).collect();
    serde_json::to_vec(&ModelList { object: "list", data }).expect("serializing plain strings cannot fail")
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

    #[test]
    fn model_list_has_openai_shape() {
        let body = model_list_json([("acme/chat", "acme")].into_iter(), 7);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["object"], "list");
        assert_eq!(v["data"][0]["id"], "acme/chat");
        assert_eq!(v["data"][0]["object"], "model");
        assert_eq!(v["data"][0]["owned_by"], "acme");
        assert_eq!(v["data"][0]["created"], 7);
    }
}
