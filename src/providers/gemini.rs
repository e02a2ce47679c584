//! The `gemini` provider kind: the `generateContent` mappings between the internal chat model
//! (`crate::chat`) and Google's wire format, served by Google AI Studio
//! (generativelanguage.googleapis.com, `x-goog-api-key`) and, with the same bodies, by Vertex AI
//! (`publishers/google/models`, OAuth bearer token).
//!
//! - [`request_body`] and [`request_headers`] / [`vertex_request_headers`]: internal request ->
//!   request body and headers; [`path`] / [`vertex_path`]: where to send it.
//! - [`StreamTranslator`]: SSE bytes in, internal stream events out, incrementally
//!   ([`ChunkMapper`] alone for chunk JSON that arrives without SSE framing).
//! - [`parse_response`]: a non-streaming body -> internal response.
//! - [`classify_error`]: a non-2xx status and body -> a classified provider error;
//!   [`retry_delay`]: the `RetryInfo` hint of a 429 body.
//!
//! It does no I/O and builds no HTTP head, and it does not obtain Vertex access tokens (service
//! account JWT exchange belongs to the Vertex auth module); it only places the token it is given.

mod partial_args;
mod request;
mod response;
mod stream;
mod wire;

pub use request::{RequestOptions, THOUGHT_SIGNATURE_SENTINEL, effort_budget_tokens, request_body};
pub use response::parse_response;
pub use stream::{ChunkMapper, StreamTranslator};

use std::borrow::Cow;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::chat::{FinishReason, ProviderError, ProviderErrorKind};

/// The header that carries a Google AI Studio key.
pub const API_KEY_HEADER: &str = "x-goog-api-key";

/// The path of `model`'s generate method, relative to a base URL ending in `/v1beta`
/// (`https://generativelanguage.googleapis.com/v1beta`). Streams ask for SSE framing (`alt=sse`);
/// without it Google streams one JSON array, which [`StreamTranslator`] does not read. A model
/// configured with the API's `models/` prefix is accepted as well.
pub fn path(model: &str, stream: bool) -> String {
    let model = model.strip_prefix("models/").unwrap_or(model);
    format!("/models/{model}:{}", method(stream))
}

/// The Vertex AI path of a Gemini model, relative to the regional host
/// (`https://{location}-aiplatform.googleapis.com`, or `aiplatform.googleapis.com` for `global`).
/// The body is the one [`request_body`] writes for AI Studio.
pub fn vertex_path(project: &str, location: &str, model: &str, stream: bool) -> String {
    format!("/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{}", method(stream))
}

fn method(stream: bool) -> &'static str {
    if stream { "streamGenerateContent?alt=sse" } else { "generateContent" }
}

/// The headers AI Studio needs, as (lowercase name, value) pairs for the proxy's head writer. Built
/// fresh for every request so no client header can reach the provider. The key goes in a header,
/// not in `?key=`, so it never lands in a URL that proxies and logs keep.
pub fn request_headers(api_key: &str, stream: bool) -> Vec<(&'static str, Vec<u8>)> {
    let mut headers = common_headers(stream);
    headers.push((API_KEY_HEADER, api_key.as_bytes().to_vec()));
    headers
}

/// The headers Vertex AI needs: `access_token` is an OAuth 2 access token (from a service account
/// or the environment), sent as a bearer token.
pub fn vertex_request_headers(access_token: &str, stream: bool) -> Vec<(&'static str, Vec<u8>)> {
    let mut headers = common_headers(stream);
    let mut authorization = b"Bearer ".to_vec();
    authorization.extend_from_slice(access_token.as_bytes());
    headers.push(("authorization", authorization));
    headers
}

fn common_headers(stream: bool) -> Vec<(&'static str, Vec<u8>)> {
    let accept: &[u8] = if stream { b"text/event-stream" } else { b"application/json" };
    vec![("content-type", b"application/json".to_vec()), ("accept", accept.to_vec())]
}

/// `{"error": {...}}`, Google's envelope around a `google.rpc.Status`.
#[derive(Deserialize)]
struct ErrorEnvelope<'a> {
    #[serde(borrow)]
    error: Option<ErrorDetail<'a>>,
}

/// A `google.rpc.Status`, in error bodies and in stream chunks.
#[derive(Deserialize)]
pub(crate) struct ErrorDetail<'a> {
    code: Option<u16>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    details: Vec<ErrorInfo<'a>>,
}

/// One entry of `details`; only the fields this module acts on.
#[derive(Deserialize)]
struct ErrorInfo<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    reason: Option<Cow<'a, str>>,
    #[serde(rename = "retryDelay", borrow, default, deserialize_with = "borrow_opt")]
    retry_delay: Option<Cow<'a, str>>,
}

impl ErrorDetail<'_> {
    /// The error as a provider error. The status name decides when Google documents it, then the
    /// numeric code, then `fallback` (the HTTP status's kind, or `Server` inside a 200 stream).
    pub(crate) fn classify(&self, fallback: ProviderErrorKind) -> ProviderError {
        let kind = self.kind().or_else(|| self.code.and_then(kind_for_code)).unwrap_or(fallback);
        let message = match self.message.as_deref() {
            Some(message) if !message.is_empty() => message.to_owned(),
            _ => format!("Gemini reported {} without a message", self.status.as_deref().unwrap_or("an error")),
        };
        ProviderError::new(kind, message)
    }

    fn kind(&self) -> Option<ProviderErrorKind> {
        // A bad key is a 400 INVALID_ARGUMENT on AI Studio; only the ErrorInfo reason tells it from
        // a bad request, and it is the gateway's credential, not the client's request, at fault.
        if self.details.iter().any(|d| d.reason.as_deref() == Some("API_KEY_INVALID")) {
            return Some(ProviderErrorKind::Authentication);
        }
        self.status.as_deref().and_then(kind_for_status_name)
    }
}

/// Classifies a non-2xx answer from AI Studio or Vertex AI; see [`ErrorDetail::classify`] for the
/// precedence. Bodies that are not Google's envelope (an HTML page from a proxy) are classified by
/// the HTTP status alone.
pub fn classify_error(status: u16, body: &[u8]) -> ProviderError {
    let fallback = kind_for_http_status(status);
    match error_detail(body) {
        Some(detail) => detail.classify(fallback),
        None => ProviderError::new(fallback, format!("Gemini answered HTTP {status} without an error body")),
    }
}

/// The `RetryInfo.retryDelay` of an error body (`"34.4s"`), which Google sends with 429s instead of
/// a `Retry-After` header.
pub fn retry_delay(body: &[u8]) -> Option<Duration> {
    let detail = error_detail(body)?;
    let delay = detail.details.iter().find_map(|d| d.retry_delay.as_deref())?;
    let seconds: f64 = delay.strip_suffix('s')?.parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

/// The envelope of an error body. Streaming methods called without `alt=sse` wrap it in a JSON
/// array, so the first element of an array counts too. (The array is told apart by its first byte:
/// serde would otherwise read an array into the envelope struct field by field.)
fn error_detail(body: &[u8]) -> Option<ErrorDetail<'_>> {
    let envelope = if body.trim_ascii_start().starts_with(b"[") {
        serde_json::from_slice::<Vec<ErrorEnvelope<'_>>>(body).ok()?.into_iter().next()?
    } else {
        serde_json::from_slice::<ErrorEnvelope<'_>>(body).ok()?
    };
    envelope.error
}

/// Deserializes an optional string borrowed from the input when it has no escapes. serde borrows a
/// `#[serde(borrow)] Cow<str>` field, but not one wrapped in `Option`: without this every text of
/// every chunk would be copied once more.
pub(crate) fn borrow_opt<'de: 'a, 'a, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Borrowed<'de>>::deserialize(deserializer)?.map(|borrowed| borrowed.0))
}

/// The canonical `google.rpc.Code` names (cloud.google.com/apis/design/errors).
fn kind_for_status_name(status: &str) -> Option<ProviderErrorKind> {
    use ProviderErrorKind::*;
    Some(match status {
        "INVALID_ARGUMENT" | "OUT_OF_RANGE" | "ALREADY_EXISTS" | "UNIMPLEMENTED" => InvalidRequest,
        // Google uses it for "not available in your country" and "enable billing": facts about the
        // gateway's account and location, which the client cannot fix.
        "FAILED_PRECONDITION" | "PERMISSION_DENIED" => PermissionDenied,
        "UNAUTHENTICATED" => Authentication,
        "NOT_FOUND" => NotFound,
        "RESOURCE_EXHAUSTED" => RateLimited,
        "UNAVAILABLE" => Overloaded,
        "INTERNAL" | "UNKNOWN" | "DEADLINE_EXCEEDED" | "ABORTED" | "CANCELLED" | "DATA_LOSS" => Server,
        _ => return None,
    })
}

/// The `code` of a status whose name is missing or unknown: an HTTP status.
fn kind_for_code(code: u16) -> Option<ProviderErrorKind> {
    (400..=599).contains(&code).then(|| kind_for_http_status(code))
}

fn kind_for_http_status(status: u16) -> ProviderErrorKind {
    match status {
        401 => ProviderErrorKind::Authentication,
        402 => ProviderErrorKind::Billing,
        403 => ProviderErrorKind::PermissionDenied,
        404 => ProviderErrorKind::NotFound,
        413 => ProviderErrorKind::RequestTooLarge,
        429 => ProviderErrorKind::RateLimited,
        503 => ProviderErrorKind::Overloaded,
        400..=499 => ProviderErrorKind::InvalidRequest,
        500..=599 => ProviderErrorKind::Server,
        // A success or redirect handed in as an error is not an answer this module understands.
        _ => ProviderErrorKind::Malformed,
    }
}

/// Gemini's `finishReason` in OpenAI's vocabulary, before the tool-call rule (a `STOP` after
/// function calls is `tool_calls`; the caller knows whether calls came). Every reason that means
/// "blocked by a filter" is `content_filter`; `OTHER`, `LANGUAGE`, `MALFORMED_FUNCTION_CALL` and
/// reasons added later end the answer normally rather than failing a good one.
fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// The finish reason once the answer is complete: function calls turn a normal stop into
/// `tool_calls` (Gemini says `STOP` for both), while a cut-off or filtered answer keeps its reason.
fn final_reason(reason: FinishReason, made_tool_calls: bool) -> FinishReason {
    match reason {
        FinishReason::Stop if made_tool_calls => FinishReason::ToolCalls,
        other => other,
    }
}

/// The id of the `index`-th function call of an answer when Gemini gave none (its answers carry
/// none unless a client sent ids first). Stable for a given answer, so a stream and its replay
/// agree.
fn synthetic_call_id(index: u32) -> String {
    format!("call_{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = crate::fixture_path!("");

    fn classify_fixture(status: u16, name: &str) -> ProviderError {
        let body = std::fs::read(format!("{FIXTURES}{name}")).expect("fixture present");
        classify_error(status, &body)
    }

    #[test]
    fn recorded_error_bodies_are_classified_with_their_message() {
        use ProviderErrorKind::*;
        let cases = [
            (
                400,
                "gemini/errors/gemini-error-400-api-key-invalid.json",
                Authentication,
                "API key not valid. Please pass a valid API key.",
            ),
            (
                404,
                "gemini/errors/gemini-error-404-not-found.json",
                NotFound,
                "models/gemini-3.6-flahs is not found for API version v1beta, or is not supported for generateContent. Call ModelService.ListModels to see the list of available models and their supported methods.",
            ),
            (
                429,
                "gemini/errors/gemini-error-429-resource-exhausted.json",
                RateLimited,
                "You exceeded your current quota, please check your plan.",
            ),
            (
                400,
                "vertex/vertex-gemini-error-400-invalid-argument.json",
                InvalidRequest,
                "Cannot fetch content from the provided URL. Please ensure the URL is valid and accessible by Vertex AI. Vertex AI respects robots.txt rules, so confirm the URL is allowed to be crawled. Status: URL_ROBOTED-ROBOTED_DENIED",
            ),
        ];
        for (status, name, kind, message) in cases {
            assert_eq!(classify_fixture(status, name), ProviderError::new(kind, message), "{name}");
        }
    }

    #[test]
    fn status_names_decide_and_retryability_follows() {
        use ProviderErrorKind::*;
        let body =
            |status: &str, code: u16| format!(r#"{{"error":{{"code":{code},"message":"m","status":"{status}"}}}}"#);
        let cases = [
            ("INVALID_ARGUMENT", 400, InvalidRequest, false),
            ("PERMISSION_DENIED", 403, PermissionDenied, false),
            ("NOT_FOUND", 404, NotFound, false),
            ("RESOURCE_EXHAUSTED", 429, RateLimited, true),
            ("INTERNAL", 500, Server, true),
            ("UNAVAILABLE", 503, Overloaded, true),
            ("DEADLINE_EXCEEDED", 504, Server, true),
            ("UNAUTHENTICATED", 401, Authentication, false),
            ("FAILED_PRECONDITION", 400, PermissionDenied, false),
        ];
        for (status, code, kind, retryable) in cases {
            let error = classify_error(code, body(status, code).as_bytes());
            assert_eq!((error.kind, error.retryable()), (kind, retryable), "{status}");
        }
        // The name wins over the HTTP status, the code over a missing name.
        assert_eq!(classify_error(500, body("RESOURCE_EXHAUSTED", 429).as_bytes()).kind, RateLimited);
        assert_eq!(classify_error(500, br#"{"error":{"code":404,"status":"NEW"}}"#).kind, NotFound);
    }

    #[test]
    fn bodies_without_an_envelope_fall_back_to_the_status() {
        let html = classify_error(502, b"<html>Bad Gateway</html>");
        assert_eq!(
            html,
            ProviderError::new(ProviderErrorKind::Server, "Gemini answered HTTP 502 without an error body")
        );
        assert_eq!(classify_error(503, b"").kind, ProviderErrorKind::Overloaded);
        assert_eq!(classify_error(403, b"{}").kind, ProviderErrorKind::PermissionDenied);
        assert_eq!(classify_error(418, b"null").kind, ProviderErrorKind::InvalidRequest);
        assert_eq!(
            classify_error(500, br#"{"error":{"status":"INTERNAL"}}"#),
            ProviderError::new(ProviderErrorKind::Server, "Gemini reported INTERNAL without a message")
        );
    }

    #[test]
    fn array_wrapped_errors_are_read() {
        let body = br#"[{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}]"#;
        assert_eq!(classify_error(429, body), ProviderError::new(ProviderErrorKind::RateLimited, "slow down"));
    }

    #[test]
    fn retry_delay_comes_from_retry_info() {
        let body = std::fs::read(format!("{FIXTURES}gemini/errors/gemini-error-429-resource-exhausted.json")).unwrap();
        assert_eq!(retry_delay(&body), Some(Duration::from_millis(34_400)));
        assert_eq!(retry_delay(br#"{"error":{"details":[{"retryDelay":"-1s"}]}}"#), None);
        assert_eq!(retry_delay(br#"{"error":{"details":[{"retryDelay":"soon"}]}}"#), None);
        assert_eq!(retry_delay(b"{}"), None);
    }

    #[test]
    fn paths() {
        assert_eq!(path("gemini-2.5-flash", false), "/models/gemini-2.5-flash:generateContent");
        assert_eq!(path("models/gemini-2.5-flash", true), "/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
        assert_eq!(
            vertex_path("proj", "us-central1", "gemini-2.5-pro", true),
            "/v1/projects/proj/locations/us-central1/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
        assert!(vertex_path("p", "global", "m", false).ends_with("/publishers/google/models/m:generateContent"));
    }

    #[test]
    fn headers_carry_the_credential() {
        let find =
            |headers: &[(&str, Vec<u8>)], name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        let studio = request_headers("AIza-test", true);
        assert_eq!(find(&studio, "x-goog-api-key"), Some(b"AIza-test".to_vec()));
        assert_eq!(find(&studio, "accept"), Some(b"text/event-stream".to_vec()));
        assert_eq!(find(&studio, "content-type"), Some(b"application/json".to_vec()));
        assert_eq!(find(&studio, "authorization"), None);
        let vertex = vertex_request_headers("ya29.token", false);
        assert_eq!(find(&vertex, "authorization"), Some(b"Bearer ya29.token".to_vec()));
        assert_eq!(find(&vertex, "accept"), Some(b"application/json".to_vec()));
        assert_eq!(find(&vertex, "x-goog-api-key"), None);
    }

    #[test]
    fn finish_reasons() {
        for (reason, expected) in [
            ("STOP", FinishReason::Stop),
            ("MAX_TOKENS", FinishReason::Length),
            ("SAFETY", FinishReason::ContentFilter),
            ("RECITATION", FinishReason::ContentFilter),
            ("BLOCKLIST", FinishReason::ContentFilter),
            ("PROHIBITED_CONTENT", FinishReason::ContentFilter),
            ("SPII", FinishReason::ContentFilter),
            ("OTHER", FinishReason::Stop),
            ("MALFORMED_FUNCTION_CALL", FinishReason::Stop),
        ] {
            assert_eq!(finish_reason(reason), expected, "{reason}");
        }
        assert_eq!(final_reason(FinishReason::Stop, true), FinishReason::ToolCalls);
        assert_eq!(final_reason(FinishReason::Length, true), FinishReason::Length);
        assert_eq!(final_reason(FinishReason::Stop, false), FinishReason::Stop);
    }
}
