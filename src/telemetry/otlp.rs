//! The OTLP/protobuf encoding of spans: `ExportTraceServiceRequest` → `ResourceSpans` →
//! `ScopeSpans` → `Span` (with `KeyValue`, `AnyValue`, `Status`), written by a small protobuf
//! writer. Owns the wire format only; which spans a call makes is `spans`'s, sending them `export`'s.
//!
//! Hand-written rather than generated (`opentelemetry-proto` + `prost`): the gateway sends a handful
//! of messages and never decodes one, and the generated crates would add a code generator's output
//! and its dependencies to every build. Field numbers are those of opentelemetry-proto v1
//! (`opentelemetry/proto/trace/v1/trace.proto`, `common/v1/common.proto`,
//! `resource/v1/resource.proto`); the tests decode the output with the official Python package.

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    StrArray(Vec<String>),
}

/// `Span.SpanKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Server = 2,
    Client = 3,
}

/// `Status.StatusCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    Unset = 0,
    Error = 2,
}

/// One finished span, ready to encode.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    /// The parent is another process's span (the client's).
    pub parent_is_remote: bool,
    pub sampled: bool,
    pub name: String,
    pub kind: SpanKind,
    pub start_unix_ns: u64,
    pub end_unix_ns: u64,
    pub attributes: Vec<(&'static str, Value)>,
    pub status: StatusCode,
}

/// What describes the exporting process (`Resource`) and the instrumentation (`InstrumentationScope`).
#[derive(Debug, Clone)]
pub struct Origin {
    pub service_name: String,
    pub service_version: &'static str,
}

// Wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// `Span.flags`: the trace flags' sampled bit, and whether the parent's remoteness is known / true.
const FLAG_SAMPLED: u32 = 0x01;
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

/// A protobuf message being written.
#[derive(Default)]
struct Writer {
    out: Vec<u8>,
}

impl Writer {
    fn varint(&mut self, value: u64) {
        let mut bytes = [0u8; 10];
        let n = varint_into(value, &mut bytes);
        self.out.extend_from_slice(&bytes[..n]);
    }

    fn tag(&mut self, field: u32, wire_type: u32) {
        self.varint(u64::from((field << 3) | wire_type));
    }

    fn bytes(&mut self, field: u32, value: &[u8]) {
        self.tag(field, LEN);
        self.varint(value.len() as u64);
        self.out.extend_from_slice(value);
    }

    fn string(&mut self, field: u32, value: &str) {
        self.bytes(field, value.as_bytes());
    }

    fn uint(&mut self, field: u32, value: u64) {
        self.tag(field, VARINT);
        self.varint(value);
    }

    fn fixed64(&mut self, field: u32, value: u64) {
        self.tag(field, FIXED64);
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    fn fixed32(&mut self, field: u32, value: u32) {
        self.tag(field, FIXED32);
        self.out.extend_from_slice(&value.to_le_bytes());
    }

    /// An embedded message, written by `body` in place; its length, known only afterwards, is then
    /// inserted before it. One buffer for the whole request: a buffer per nested message (grown byte
    /// by byte, then copied into its parent) made malloc, realloc and free a third of the
    /// instructions of a traced request (loadtest/RESULTS.md).
    fn message(&mut self, field: u32, body: impl FnOnce(&mut Writer)) {
        self.tag(field, LEN);
        let start = self.out.len();
        body(self);
        let len = (self.out.len() - start) as u64;
        let mut prefix = [0u8; 10];
        let prefix_len = varint_into(len, &mut prefix);
        self.out.splice(start..start, prefix[..prefix_len].iter().copied());
    }
}

/// `value` as a protobuf varint into `out`; returns how many bytes it took (at most 10).
fn varint_into(mut value: u64, out: &mut [u8; 10]) -> usize {
    let mut n = 0;
    while value >= 0x80 {
        out[n] = (value as u8) | 0x80;
        value >>= 7;
        n += 1;
    }
    out[n] = value as u8;
    n + 1
}

/// `ExportTraceServiceRequest` with one resource and one scope holding `spans`.
pub fn encode_request(origin: &Origin, spans: &[Span]) -> Vec<u8> {
    let mut request = Writer { out: Vec::with_capacity(512 * spans.len() + 256) };
    // ExportTraceServiceRequest.resource_spans = 1
    request.message(1, |resource_spans| {
        // ResourceSpans.resource = 1 → Resource.attributes = 1
        resource_spans.message(1, |resource| {
            key_value(resource, 1, "service.name", &Value::Str(origin.service_name.clone()));
            key_value(resource, 1, "service.version", &Value::Str(origin.service_version.to_string()));
        });
        // ResourceSpans.scope_spans = 2
        resource_spans.message(2, |scope_spans| {
            // ScopeSpans.scope = 1: InstrumentationScope { name = 1, version = 2 }
            scope_spans.message(1, |scope| {
                scope.string(1, "corelay");
                scope.string(2, origin.service_version);
            });
            for span in spans {
                // ScopeSpans.spans = 2
                scope_spans.message(2, |w| encode_span(w, span));
            }
        });
    });
    request.out
}

fn encode_span(w: &mut Writer, span: &Span) {
    w.bytes(1, &span.trace_id);
    w.bytes(2, &span.span_id);
    if let Some(parent) = &span.parent_span_id {
        w.bytes(4, parent);
    }
    w.string(5, &span.name);
    w.uint(6, span.kind as u64);
    w.fixed64(7, span.start_unix_ns);
    w.fixed64(8, span.end_unix_ns);
    for (key, value) in &span.attributes {
        key_value(w, 9, key, value);
    }
    if span.status != StatusCode::Unset {
        // Span.status = 15: Status { code = 3 }
        w.message(15, |status| status.uint(3, span.status as u64));
    }
    let mut flags = if span.sampled { FLAG_SAMPLED } else { 0 };
    if span.parent_span_id.is_some() {
        flags |= FLAG_HAS_IS_REMOTE | if span.parent_is_remote { FLAG_IS_REMOTE } else { 0 };
    }
    w.fixed32(16, flags);
}

/// `KeyValue { key = 1, value = 2 }` as field `field` of the enclosing message.
fn key_value(w: &mut Writer, field: u32, key: &str, value: &Value) {
    w.message(field, |kv| {
        kv.string(1, key);
        kv.message(2, |any| any_value(any, value));
    });
}

/// `AnyValue { string_value = 1, bool_value = 2, int_value = 3, array_value = 5 }`.
fn any_value(w: &mut Writer, value: &Value) {
    match value {
        Value::Str(s) => w.string(1, s),
        Value::Bool(b) => w.uint(2, u64::from(*b)),
        // int64 is written as its two's-complement varint.
        Value::Int(i) => w.uint(3, *i as u64),
        // ArrayValue { values = 1 }
        Value::StrArray(items) => w.message(5, |array| {
            for item in items {
                array.message(1, |any| any.string(1, item));
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_use_seven_bits_per_byte() {
        let mut w = Writer::default();
        w.varint(1);
        w.varint(300);
        w.varint(u64::MAX);
        assert_eq!(&w.out[..3], &[0x01, 0xac, 0x02]);
        assert_eq!(w.out.len(), 3 + 10);
    }

    #[test]
    fn a_span_is_written_field_by_field() {
        let span = Span {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: None,
            parent_is_remote: false,
            sampled: true,
            name: "x".into(),
            kind: SpanKind::Client,
            start_unix_ns: 5,
            end_unix_ns: 6,
            attributes: vec![("k", Value::Int(-1))],
            status: StatusCode::Error,
        };
        let mut w = Writer::default();
        encode_span(&mut w, &span);
        let mut expected = vec![0x0a, 16];
        expected.extend_from_slice(&[1; 16]);
        expected.extend_from_slice(&[0x12, 8]);
        expected.extend_from_slice(&[2; 8]);
        expected.extend_from_slice(&[0x2a, 1, b'x', 0x30, 3]);
        expected.extend_from_slice(&[0x39, 5, 0, 0, 0, 0, 0, 0, 0, 0x41, 6, 0, 0, 0, 0, 0, 0, 0]);
        // attributes: KeyValue { key "k", value AnyValue { int_value -1 (10-byte varint) } }
        expected.extend_from_slice(&[0x4a, 16, 0x0a, 1, b'k', 0x12, 11, 0x18]);
        expected.extend_from_slice(&[0xff; 9]);
        expected.push(0x01);
        // status { code 2 }, flags fixed32 1
        expected.extend_from_slice(&[0x7a, 2, 0x18, 2, 0x85, 0x01, 1, 0, 0, 0]);
        assert_eq!(w.out, expected);
    }
}
