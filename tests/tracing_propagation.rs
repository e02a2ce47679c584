//! W3C `traceparent` end to end in an in-process gateway: what the providers receive (the mocks'
//! request logs) and what the client gets back, with tracing on and off. The exported spans are
//! checked against a real OTLP decoder in tests/sdk/test_tracing.py; this file owns propagation.

mod common;

use common::{Client, Response, chat_body, start_gateway};
use corelay::trace_context::{TraceContext, parse_traceparent};
use loadtest::{Fault, MockConfig, MockProvider, RecordedRequest, refused_addr};

const MODEL: &str = "acme/chat";
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn mock(config: MockConfig) -> MockProvider {
    MockProvider::start(config).expect("mock starts")
}

fn failing_then_serving() -> (MockProvider, MockProvider) {
    let failing =
        MockConfig { fault: Fault::Status { code: 503, retry_after_s: None, body: None }, ..Default::default() };
    (mock(failing), mock(MockConfig::default()))
}

/// `acme/chat` served by `first` then `second`; `extra` adds tables (such as [tracing]).
fn config(first: &MockProvider, second: &MockProvider, extra: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ncores = 1\n{extra}\n\
         [providers.first]\nkind = \"openai\"\nbase_url = \"{}\"\n\
         [providers.second]\nkind = \"openai\"\nbase_url = \"{}\"\n\
         [models.\"{MODEL}\"]\nendpoints = [{{ provider = \"first\", model = \"m1\" }}, {{ provider = \"second\", model = \"m2\" }}]\n",
        first.base_url(),
        second.base_url()
    )
}

/// Tracing on, exporting to a port that refuses: export fails (counted), propagation does not care.
fn tracing_on() -> String {
    format!("[tracing]\notlp_endpoint = \"http://{}\"\nexport_timeout_ms = 200\n", refused_addr())
}

fn stream_chat(client: &mut Client, traceparent: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = traceparent.map(|t| ("traceparent", t)).into_iter().collect();
    let response = client.post("/v1/chat/completions", &headers, &chat_body(MODEL, true));
    assert_eq!(response.status, 200, "{}", response.text());
    response
}

fn only_request(provider: &MockProvider) -> RecordedRequest {
    let requests = provider.requests();
    assert_eq!(requests.len(), 1, "one request reached the provider");
    requests.into_iter().next().unwrap()
}

fn upstream_traceparent(provider: &MockProvider) -> Option<String> {
    only_request(provider).header("traceparent").map(str::to_string)
}

/// The request span as the response names it, rebuilt so attempt span ids can be derived from it.
fn request_span(response: &Response) -> TraceContext {
    let header = response.header("traceparent").expect("the response carries a traceparent");
    let remote = parse_traceparent(header.as_bytes()).expect("a valid traceparent");
    TraceContext { trace_id: remote.trace_id, span_id: remote.parent_id, parent_span_id: None, sampled: remote.sampled }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_clients_trace_reaches_every_attempt_under_its_own_span_and_comes_back() {
    let (first, second) = failing_then_serving();
    let gateway = start_gateway(&config(&first, &second, ""));
    let mut client = Client::connect(gateway.local_addr());
    let sent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");

    let response = stream_chat(&mut client, Some(&sent));

    let request = request_span(&response);
    assert_eq!(hex(&request.trace_id), CLIENT_TRACE, "the same trace id comes back");
    assert_ne!(hex(&request.span_id), CLIENT_SPAN, "the gateway's own span, under the client's");
    let upstream: Vec<String> = [&first, &second].iter().map(|p| upstream_traceparent(p).unwrap()).collect();
    for (index, header) in upstream.iter().enumerate() {
        let expected = format!("00-{CLIENT_TRACE}-{}-01", hex(&request.attempt_span_id(index)));
        assert_eq!(header, &expected, "attempt {index} carries its own span id");
    }
    assert_ne!(upstream[0], upstream[1]);
}

#[test]
fn with_tracing_off_and_no_client_header_nothing_is_sent_or_returned() {
    let (first, second) = failing_then_serving();
    let gateway = start_gateway(&config(&first, &second, ""));
    let mut client = Client::connect(gateway.local_addr());

    let response = stream_chat(&mut client, None);

    assert_eq!(response.header("traceparent"), None);
    assert_eq!(upstream_traceparent(&first), None);
    assert_eq!(upstream_traceparent(&second), None);
}

#[test]
fn with_tracing_on_a_new_trace_is_forwarded_and_returned() {
    let (first, second) = failing_then_serving();
    let gateway = start_gateway(&config(&first, &second, &tracing_on()));
    let mut client = Client::connect(gateway.local_addr());

    let response = stream_chat(&mut client, None);

    let request = request_span(&response);
    assert!(request.sampled, "sample_ratio defaults to 1");
    let served = upstream_traceparent(&second).unwrap();
    assert_eq!(served, format!("00-{}-{}-01", hex(&request.trace_id), hex(&request.attempt_span_id(1))));
}

#[test]
fn a_malformed_client_header_is_not_forwarded() {
    let (first, second) = failing_then_serving();
    let gateway = start_gateway(&config(&first, &second, ""));
    let mut client = Client::connect(gateway.local_addr());

    let response = stream_chat(&mut client, Some("00-not-a-trace-01"));

    assert_eq!(response.header("traceparent"), None);
    assert_eq!(upstream_traceparent(&second), None);
}

#[test]
fn a_later_request_on_the_connection_does_not_inherit_the_trace() {
    let (first, second) = failing_then_serving();
    let gateway = start_gateway(&config(&first, &second, ""));
    let mut client = Client::connect(gateway.local_addr());

    stream_chat(&mut client, Some(&format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01")));
    let models = client.get("/v1/models", &[]);

    assert_eq!(models.status, 200);
    assert_eq!(models.header("traceparent"), None);
}
