//! The spans of one finished call, built from its `CallRecord` on the exporter thread: one server
//! span for the request and one client span per provider attempt, with the OpenTelemetry GenAI
//! semantic-convention attributes. Owns naming and attributes; not encoding (`otlp`) or sending.
//!
//! Model names come from `model_label` (a configured id, or `(unknown)`), never as the client sent
//! them; provider names are the config's. Nothing secret is in a `CallRecord`.

use super::otlp::{Span, SpanKind, StatusCode, Value};
use crate::health::Outcome;
use crate::metrics::{AttemptRecord, CallRecord};
use crate::trace_context::TraceContext;

const NANOS_PER_MS: u64 = 1_000_000;

/// The request span and its attempt spans; none when the call has no sampled trace.
/// `end_unix_ns` is when the call ended (its record only knows how long it took).
pub fn call_spans(call: &CallRecord, end_unix_ns: u64) -> Vec<Span> {
    let Some(trace) = call.trace.filter(|t| t.sampled) else { return Vec::new() };
    let request = request_span(call, &trace, end_unix_ns);
    let bounds = (request.start_unix_ns, request.end_unix_ns);
    let mut spans = Vec::with_capacity(1 + call.attempts.len());
    spans.push(request);
    for (index, attempt) in call.attempts.iter().enumerate() {
        spans.push(attempt_span(call, &trace, index, attempt, bounds));
    }
    spans
}

/// `gen_ai.operation.name` by front door.
fn operation(front_door: &str) -> &'static str {
    match front_door {
        "openai_embeddings" | "ai_sdk_embeddings" => "embeddings",
        "anthropic_count_tokens" => "count_tokens",
        _ => "chat",
    }
}

fn request_span(call: &CallRecord, trace: &TraceContext, end_unix_ns: u64) -> Span {
    let operation = operation(call.front_door);
    let model = call.model_label();
    let mut attributes = vec![
        ("gen_ai.operation.name", text(operation)),
        ("gen_ai.request.model", text(model)),
        ("http.response.status_code", Value::Int(i64::from(call.status))),
        ("corelay.front_door", text(call.front_door)),
        ("corelay.request_id", text(&call.request_id)),
        ("corelay.stream", Value::Bool(call.stream)),
        ("corelay.attempts", Value::Int(call.attempts.len() as i64)),
    ];
    if !call.provider.is_empty() {
        attributes.push(("gen_ai.provider.name", text(&call.provider)));
        attributes.push(("gen_ai.response.model", text(&call.served_model)));
    }
    if !call.key.is_empty() {
        attributes.push(("corelay.key", text(&call.key)));
    }
    if let Some(usage) = &call.usage {
        attributes.push(("gen_ai.usage.input_tokens", Value::Int(saturating_i64(usage.prompt_tokens))));
        attributes.push(("gen_ai.usage.output_tokens", Value::Int(saturating_i64(usage.completion_tokens))));
    }
    if call.status >= 500 {
        attributes.push(("error.type", text(&call.status.to_string())));
    }
    let start_unix_ns = end_unix_ns.saturating_sub(u64::try_from(call.duration.as_nanos()).unwrap_or(u64::MAX));
    Span {
        trace_id: trace.trace_id,
        span_id: trace.span_id,
        parent_span_id: trace.parent_span_id,
        parent_is_remote: trace.parent_span_id.is_some(),
        sampled: true,
        name: format!("{operation} {model}"),
        kind: SpanKind::Server,
        start_unix_ns,
        end_unix_ns,
        attributes,
        // Server spans mark only 5xx as errors: a 4xx is the client's doing.
        status: if call.status >= 500 { StatusCode::Error } else { StatusCode::Unset },
    }
}

/// `bounds` are the request span's start and end: attempt times have millisecond precision, so
/// they are clamped into it rather than shown starting before their parent.
fn attempt_span(
    call: &CallRecord,
    trace: &TraceContext,
    index: usize,
    attempt: &AttemptRecord,
    (earliest, latest): (u64, u64),
) -> Span {
    let operation = operation(call.front_door);
    let model = call.model_label();
    let mut attributes = vec![
        ("gen_ai.operation.name", text(operation)),
        ("gen_ai.request.model", text(model)),
        ("gen_ai.provider.name", text(&attempt.provider)),
        ("corelay.attempt", Value::Int(index as i64 + 1)),
        ("corelay.outcome", text(attempt.outcome.name())),
    ];
    if let Some(status) = attempt.status {
        attributes.push(("http.response.status_code", Value::Int(i64::from(status))));
    }
    let failed = attempt.outcome != Outcome::Success;
    if failed {
        attributes.push(("error.type", text(&error_type(attempt))));
    }
    // The serving attempt is the last; usage belongs to it.
    if let Some(usage) = call.usage.as_ref().filter(|_| index + 1 == call.attempts.len() && !failed) {
        attributes.push(("gen_ai.usage.input_tokens", Value::Int(saturating_i64(usage.prompt_tokens))));
        attributes.push(("gen_ai.usage.output_tokens", Value::Int(saturating_i64(usage.completion_tokens))));
    }
    Span {
        trace_id: trace.trace_id,
        span_id: trace.attempt_span_id(index),
        parent_span_id: Some(trace.span_id),
        parent_is_remote: false,
        sampled: true,
        name: format!("{operation} {model}"),
        kind: SpanKind::Client,
        start_unix_ns: attempt.start_unix_ms.saturating_mul(NANOS_PER_MS).clamp(earliest, latest),
        end_unix_ns: attempt.end_unix_ms.saturating_mul(NANOS_PER_MS).clamp(earliest, latest),
        attributes,
        status: if failed { StatusCode::Error } else { StatusCode::Unset },
    }
}

/// The status code when the provider answered (as the HTTP conventions ask), else how it failed.
fn error_type(attempt: &AttemptRecord) -> String {
    match attempt.status {
        Some(status) if status >= 400 => status.to_string(),
        _ => attempt.outcome.name().to_string(),
    }
}

fn text(value: &str) -> Value {
    Value::Str(value.to_string())
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Usage;

    fn failed_over_call() -> CallRecord {
        CallRecord {
            request_id: "r-1".into(),
            front_door: "anthropic",
            model: "anthropic/claude-sonnet-4".into(),
            model_known: true,
            served_model: "anthropic/claude-sonnet-4".into(),
            provider: "good".into(),
            attempts: smallvec::smallvec![
                AttemptRecord {
                    provider: "down".into(),
                    outcome: Outcome::ServerError,
                    status: Some(503),
                    start_unix_ms: 1_000,
                    end_unix_ms: 1_010,
                },
                AttemptRecord {
                    provider: "good".into(),
                    outcome: Outcome::Success,
                    status: Some(200),
                    start_unix_ms: 1_020,
                    end_unix_ms: 1_500,
                },
            ],
            status: 200,
            stream: true,
            duration: std::time::Duration::from_millis(995),
            usage: Some(Usage { prompt_tokens: 12, completion_tokens: 34, ..Usage::default() }),
            trace: TraceContext::start(None, Some(1.0)),
            ..CallRecord::default()
        }
    }

    fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
        span.attributes.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    #[test]
    fn a_failed_over_call_is_one_server_span_over_two_client_spans() {
        let call = failed_over_call();
        let spans = call_spans(&call, 2_000 * NANOS_PER_MS);
        let trace = call.trace.unwrap();
        assert_eq!(spans.len(), 3);
        let (request, down, good) = (&spans[0], &spans[1], &spans[2]);
        assert_eq!((request.kind, request.parent_span_id), (SpanKind::Server, None));
        assert_eq!(request.name, "chat anthropic/claude-sonnet-4");
        assert_eq!(request.start_unix_ns, 1_005 * NANOS_PER_MS);
        assert_eq!(attribute(request, "gen_ai.usage.output_tokens"), Some(&Value::Int(34)));
        for attempt in [down, good] {
            assert_eq!(attempt.kind, SpanKind::Client);
            assert_eq!(attempt.trace_id, trace.trace_id);
            assert_eq!(attempt.parent_span_id, Some(trace.span_id));
        }
        assert_eq!(down.span_id, trace.attempt_span_id(0));
        assert_eq!(attribute(down, "error.type"), Some(&Value::Str("503".into())));
        assert_eq!(down.status, StatusCode::Error);
        assert_eq!(attribute(down, "gen_ai.usage.input_tokens"), None);
        assert_eq!(attribute(good, "gen_ai.provider.name"), Some(&Value::Str("good".into())));
        assert_eq!(attribute(good, "gen_ai.usage.input_tokens"), Some(&Value::Int(12)));
        assert_eq!(good.start_unix_ns, 1_020 * NANOS_PER_MS);
        assert_eq!(down.start_unix_ns, 1_005 * NANOS_PER_MS, "clamped to the request's start");
    }

    #[test]
    fn unsampled_and_untraced_calls_make_no_spans() {
        let mut call = failed_over_call();
        call.trace = call.trace.map(|t| TraceContext { sampled: false, ..t });
        assert!(call_spans(&call, 0).is_empty());
        call.trace = None;
        assert!(call_spans(&call, 0).is_empty());
    }

    #[test]
    fn unknown_models_are_named_by_the_fixed_label() {
        let mut call = failed_over_call();
        call.model = "client-made-up-name".into();
        call.model_known = false;
        let spans = call_spans(&call, 0);
        assert_eq!(spans[0].name, "chat (unknown)");
        assert!(spans.iter().all(|s| !format!("{:?}", s.attributes).contains("client-made-up-name")));
    }
}
