//! Bedrock's errors in the shared vocabulary: non-2xx answers (a JSON `{"message": ...}` with the
//! exception's name in the `x-amzn-errortype` header, sometimes in a `__type` field) and the
//! exception frames of event streams (the name in `:exception-type`). It does not decide what to
//! do with them; routing reads `retryable()`.
//!
//! Exception names come in several spellings (`ThrottlingException` in headers,
//! `throttlingException` in frames, `com.amazon.coral.service#...` in `__type`, `...:http://...`
//! suffixes in headers), so they are compared by their bare name, ignoring ASCII case.

use std::borrow::Cow;

use serde::Deserialize;

use super::borrow_opt;
use crate::chat::{ProviderError, ProviderErrorKind};

#[derive(Deserialize)]
struct WireError<'a> {
    #[serde(borrow, default, deserialize_with = "borrow_opt")]
    message: Option<Cow<'a, str>>,
    /// Some AWS services capitalise it.
    #[serde(rename = "Message", borrow, default, deserialize_with = "borrow_opt")]
    message_capitalised: Option<Cow<'a, str>>,
    #[serde(rename = "__type", borrow, default, deserialize_with = "borrow_opt")]
    error_type: Option<Cow<'a, str>>,
}

/// Classifies a non-2xx answer. `error_type` is the `x-amzn-errortype` response header, when there
/// was one; it decides the kind when it names an exception Bedrock documents, then the body's
/// `__type`, then the status (a proxy's HTML page, say).
pub fn classify_error(status: u16, error_type: Option<&str>, body: &[u8]) -> ProviderError {
    let wire = serde_json::from_slice::<WireError<'_>>(body).ok();
    let body_type = wire.as_ref().and_then(|w| w.error_type.as_deref());
    let name = error_type.filter(|t| !t.trim().is_empty()).or(body_type);
    let kind = name.and_then(kind_for_exception).unwrap_or_else(|| kind_for_status(status));
    let message = wire.as_ref().and_then(|w| w.message.as_deref().or(w.message_capitalised.as_deref()));
    let message = match (message.filter(|m| !m.is_empty()), name) {
        (Some(message), _) => message.to_owned(),
        (None, Some(name)) => format!("Bedrock answered HTTP {status} ({}) without a message", bare_name(name)),
        (None, None) => format!("Bedrock answered HTTP {status} without an error body"),
    };
    ProviderError::new(kind, message)
}

/// An exception frame (`:exception-type`, payload `{"message": ...}`) or an unmodelled error frame
/// (`:error-code`, `:error-message`) as a provider error. Unknown names are the provider failing:
/// the request was accepted, so it is not the client's fault.
pub(super) fn stream_exception(name: &str, message: Option<String>) -> ProviderError {
    let kind = kind_for_exception(name).unwrap_or(ProviderErrorKind::Server);
    let message = match message.filter(|m| !m.is_empty()) {
        Some(message) => message,
        None => format!("Bedrock ended the stream with {} without a message", bare_name(name)),
    };
    ProviderError::new(kind, message)
}

/// `ValidationException` from `com.amazon.coral.validate#ValidationException` or
/// `ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/`.
fn bare_name(name: &str) -> &str {
    let after_namespace = name.rsplit('#').next().unwrap_or(name);
    after_namespace.split(':').next().unwrap_or(after_namespace).trim()
}

/// The documented Bedrock Runtime exceptions (the Smithy model's error shapes), plus the AWS-wide
/// authentication failures a gateway meets with a bad or expired credential.
fn kind_for_exception(name: &str) -> Option<ProviderErrorKind> {
    use ProviderErrorKind::*;
    let name = bare_name(name);
    let is = |candidate: &str| name.eq_ignore_ascii_case(candidate);
    Some(if is("ThrottlingException") || is("ServiceQuotaExceededException") {
        // Quotas are per account and region: another endpoint may well have room.
        RateLimited
    } else if is("ServiceUnavailableException") || is("ModelNotReadyException") {
        Overloaded
    } else if is("InternalServerException")
        || is("InternalFailure")
        || is("ModelStreamErrorException")
        || is("ModelErrorException")
        || is("ModelTimeoutException")
    {
        Server
    } else if is("ValidationException") || is("ConflictException") {
        InvalidRequest
    } else if is("AccessDeniedException") {
        PermissionDenied
    } else if is("ResourceNotFoundException") {
        NotFound
    } else if is("UnrecognizedClientException")
        || is("InvalidSignatureException")
        || is("IncompleteSignatureException")
        || is("MissingAuthenticationTokenException")
        || is("ExpiredTokenException")
        || is("InvalidClientTokenId")
    {
        Authentication
    } else {
        return None;
    })
}

fn kind_for_status(status: u16) -> ProviderErrorKind {
    use ProviderErrorKind::*;
    match status {
        401 => Authentication,
        403 => PermissionDenied,
        404 => NotFound,
        // Bedrock's ModelTimeoutException (408) and ModelErrorException (424): the model failed.
        408 | 424 => Server,
        413 => RequestTooLarge,
        429 => RateLimited,
        503 => Overloaded,
        400..=499 => InvalidRequest,
        500..=599 => Server,
        // A success or redirect handed in as an error is not an answer this module understands.
        _ => Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ERRORS: &str = crate::fixture_path!("bedrock/errors/");

    #[test]
    fn recorded_error_bodies_without_their_header_fall_back_to_the_status() {
        for name in
            ["bedrock-error-400-converse-invalid-model.json", "bedrock-error-400-converse-stream-invalid-model.json"]
        {
            let body = std::fs::read(format!("{ERRORS}{name}")).expect("fixture present");
            let expected =
                ProviderError::new(ProviderErrorKind::InvalidRequest, "The provided model identifier is invalid.");
            assert_eq!(classify_error(400, None, &body), expected, "{name}");
            assert_eq!(classify_error(400, Some("ValidationException"), &body), expected, "{name}");
            assert!(!expected.retryable() && expected.kind.is_client_fault());
        }
    }

    #[test]
    fn documented_exceptions_decide_over_the_status() {
        use ProviderErrorKind::*;
        let cases = [
            ("ThrottlingException", 429, RateLimited, true),
            ("ServiceUnavailableException", 503, Overloaded, true),
            ("ModelNotReadyException", 429, Overloaded, true),
            ("ServiceQuotaExceededException", 400, RateLimited, true),
            ("ValidationException", 400, InvalidRequest, false),
            ("ConflictException", 400, InvalidRequest, false),
            ("AccessDeniedException", 403, PermissionDenied, false),
            ("ResourceNotFoundException", 404, NotFound, false),
            ("InternalServerException", 500, Server, true),
            ("ModelTimeoutException", 408, Server, true),
            ("ModelErrorException", 424, Server, true),
            ("ModelStreamErrorException", 424, Server, true),
            ("UnrecognizedClientException", 403, Authentication, false),
            ("ExpiredTokenException", 403, Authentication, false),
        ];
        for (name, status, kind, retryable) in cases {
            let error = classify_error(status, Some(name), br#"{"message":"why"}"#);
            assert_eq!(error, ProviderError::new(kind, "why"), "{name}");
            assert_eq!(error.retryable(), retryable, "{name}");
            // The same name in a frame, lower camel case.
            let lower = format!("{}{}", name[..1].to_ascii_lowercase(), &name[1..]);
            assert_eq!(stream_exception(&lower, Some("why".into())), ProviderError::new(kind, "why"), "{lower}");
        }
    }

    #[test]
    fn exception_names_in_every_spelling() {
        let with_type = |header: Option<&str>, body: &[u8]| classify_error(500, header, body).kind;
        assert_eq!(
            with_type(Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"), b"{}"),
            ProviderErrorKind::InvalidRequest
        );
        assert_eq!(
            with_type(None, br#"{"__type":"com.amazon.coral.service#ThrottlingException","Message":"slow"}"#),
            ProviderErrorKind::RateLimited
        );
        assert_eq!(with_type(Some(""), br#"{"__type":"AccessDeniedException"}"#), ProviderErrorKind::PermissionDenied);
        assert_eq!(with_type(Some("SomethingNewException"), b"{}"), ProviderErrorKind::Server);
        assert_eq!(
            classify_error(429, None, br#"{"__type":"x#ThrottlingException","Message":"slow"}"#).message,
            "slow"
        );
    }

    #[test]
    fn bodies_without_a_message() {
        assert_eq!(
            classify_error(502, None, b"<html>Bad Gateway</html>"),
            ProviderError::new(ProviderErrorKind::Server, "Bedrock answered HTTP 502 without an error body")
        );
        assert_eq!(
            classify_error(429, Some("ThrottlingException:http://x"), b""),
            ProviderError::new(
                ProviderErrorKind::RateLimited,
                "Bedrock answered HTTP 429 (ThrottlingException) without a message"
            )
        );
        assert_eq!(classify_error(503, None, b"null").kind, ProviderErrorKind::Overloaded);
        assert_eq!(classify_error(418, None, b"{}").kind, ProviderErrorKind::InvalidRequest);
        assert_eq!(classify_error(302, None, b"{}").kind, ProviderErrorKind::Malformed);
        assert_eq!(
            stream_exception("newException", None),
            ProviderError::new(
                ProviderErrorKind::Server,
                "Bedrock ended the stream with newException without a message"
            )
        );
    }
}
