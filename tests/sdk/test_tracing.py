"""OpenTelemetry export end to end: the real `corelay` binary exports to an OTLP/HTTP receiver that
decodes every request with the official `opentelemetry-proto` package (generated from the protocol's
.proto files), so the gateway's hand-written protobuf is checked by an independent decoder.

Owns the receiver and the tracing gateway's fixture; the binaries and pipe draining are conftest's.
Failover is real: the first endpoint is a corelay-mock answering 503, the second replays a recorded
Anthropic stream (tests/fixtures/anthropic/anthropic-messages-stream-text.sse: 20 input tokens,
5 output tokens).
"""

import http.client
import http.server
import json
import os
import secrets
import tempfile
import textwrap
import threading
import time

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from conftest import FIXTURES, BIN_DIR, Child, _start_mock, _stop

MODEL = "anthropic/claude-sonnet-4"
SERVICE = "corelay-tracing-test"
PROVIDER_KEY_ENV = "CORELAY_TRACING_TEST_PROVIDER_KEY"
PROVIDER_KEY = "sk-ant-tracing-test-secret-0123456789"
WAIT_S = 15


class Receiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1: decodes each POST /v1/traces and keeps its spans
    (with the resource's attributes), answering as the protocol asks (an empty
    ExportTraceServiceResponse, 200)."""

    def __init__(self):
        self.spans = []  # (resource attributes, span)
        self.bodies = []
        self.content_types = set()
        self.cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with receiver.cond:
                    receiver.content_types.add(self.headers["content-type"])
                    receiver.bodies.append(body)
                    for resource_spans in request.resource_spans:
                        resource = attributes(resource_spans.resource.attributes)
                        for scope_spans in resource_spans.scope_spans:
                            for span in scope_spans.spans:
                                receiver.spans.append((resource, span))
                    receiver.cond.notify_all()
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for_trace(self, trace_id_hex, count):
        """The spans of one trace once `count` of them arrived, within WAIT_S."""
        deadline = time.monotonic() + WAIT_S
        with self.cond:
            while True:
                found = [(r, s) for r, s in self.spans if s.trace_id.hex() == trace_id_hex]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(found)} of {count} spans of trace {trace_id_hex} within {WAIT_S} s")
                self.cond.wait(left)

    def trace_ids(self):
        with self.cond:
            return {s.trace_id.hex() for _, s in self.spans}

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def any_value(value):
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    return getattr(value, kind)


def attributes(key_values):
    return {kv.key: any_value(kv.value) for kv in key_values}


@pytest.fixture(scope="module")
def traced():
    """A gateway exporting every trace to a Receiver; MODEL fails over from `down` (503) to `good`."""
    receiver = Receiver()
    down, down_url = _start_mock("--fault", "status:503")
    stream = FIXTURES / "anthropic" / "anthropic-messages-stream-text.sse"
    good, good_url = _start_mock("--replay-sse", str(stream))
    config = textwrap.dedent(
        f"""
        [server]
        listen = "127.0.0.1:0"
        cores = 1

        # Every request must try `down` first and then fail over: `down` is never ejected and
        # the retry budget never runs out within this module.
        [health]
        eject_consecutive_failures = 1000000

        [routing]
        retry_budget_min_per_sec = 1000.0

        [tracing]
        otlp_endpoint = "{receiver.url}"
        service_name = "{SERVICE}"
        batch_delay_ms = 20

        [providers.down]
        kind = "anthropic"
        base_url = "{down_url}"
        api_key_env = "{PROVIDER_KEY_ENV}"

        [providers.good]
        kind = "anthropic"
        base_url = "{good_url}"
        api_key_env = "{PROVIDER_KEY_ENV}"

        [models."{MODEL}"]
        endpoints = [{{ provider = "down", model = "claude-sonnet-4" }}, {{ provider = "good", model = "claude-sonnet-4" }}]
        """
    )
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(config)
    env = dict(os.environ, **{PROVIDER_KEY_ENV: PROVIDER_KEY})
    proc = Child([str(BIN_DIR / "corelay"), "--config", f.name], "corelay", env=env)
    try:
        match = proc.stderr.wait_for(r"listening on http://(\S+)")
        host, port = match.group(1).rsplit(":", 1)
        yield receiver, (host, int(port))
    finally:
        _stop(proc)
        for child in (down, good):
            _stop(child)
        receiver.stop()
        os.unlink(f.name)


def stream_messages(address, headers=None):
    """A streaming Anthropic Messages call; returns (status, response headers, body)."""
    body = json.dumps(
        {"model": MODEL, "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
    )
    conn = http.client.HTTPConnection(*address, timeout=WAIT_S)
    try:
        conn.request(
            "POST",
            "/v1/messages",
            body=body,
            headers={"content-type": "application/json", "anthropic-version": "2023-06-01", **(headers or {})},
        )
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        conn.close()


def traceparent(trace_id, span_id, sampled=True):
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def test_a_failed_over_stream_is_one_server_span_over_two_attempt_spans(traced):
    receiver, address = traced
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)

    status, headers, body = stream_messages(address, {"traceparent": traceparent(trace_id, client_span)})

    assert status == 200, body
    assert "message_stop" in body
    version, returned_trace, server_span_id, flags = headers["traceparent"].split("-")
    assert (version, returned_trace, flags) == ("00", trace_id, "01")
    spans = receiver.wait_for_trace(trace_id, 3)
    assert len(spans) == 3
    assert receiver.content_types == {"application/x-protobuf"}
    resource = spans[0][0]
    assert resource["service.name"] == SERVICE

    servers = [s for _, s in spans if s.kind == Span.SPAN_KIND_SERVER]
    clients = sorted((s for _, s in spans if s.kind == Span.SPAN_KIND_CLIENT), key=lambda s: s.start_time_unix_nano)
    assert len(servers) == 1 and len(clients) == 2
    server = servers[0]
    assert server.span_id.hex() == server_span_id, "the response names the request span"
    assert server.parent_span_id.hex() == client_span, "the request span's parent is the client's span"
    assert server.name == f"chat {MODEL}"
    request = attributes(server.attributes)
    assert request["gen_ai.operation.name"] == "chat"
    assert request["gen_ai.request.model"] == MODEL
    assert request["gen_ai.provider.name"] == "good"
    assert request["gen_ai.usage.input_tokens"] == 20
    assert request["gen_ai.usage.output_tokens"] == 5
    assert request["http.response.status_code"] == 200
    assert request["corelay.stream"] is True
    assert request["corelay.attempts"] == 2
    assert "error.type" not in request
    assert server.start_time_unix_nano < server.end_time_unix_nano

    failed, served = clients
    for attempt in clients:
        assert attempt.parent_span_id == server.span_id
        assert attempt.span_id not in (server.span_id, b"")
        assert attempt.name == f"chat {MODEL}"
    assert failed.span_id != served.span_id
    first = attributes(failed.attributes)
    assert first["gen_ai.provider.name"] == "down"
    assert first["http.response.status_code"] == 503
    assert first["error.type"] == "503"
    assert "gen_ai.usage.input_tokens" not in first
    assert failed.status.code == Status.STATUS_CODE_ERROR
    second = attributes(served.attributes)
    assert second["gen_ai.provider.name"] == "good"
    assert second["http.response.status_code"] == 200
    assert second["gen_ai.usage.output_tokens"] == 5
    assert "error.type" not in second
    assert served.status.code == Status.STATUS_CODE_UNSET
    assert failed.end_time_unix_nano <= served.start_time_unix_nano <= served.end_time_unix_nano
    assert server.start_time_unix_nano <= failed.start_time_unix_nano
    assert served.end_time_unix_nano <= server.end_time_unix_nano
    with receiver.cond:
        assert not any(PROVIDER_KEY.encode() in body for body in receiver.bodies), "the provider key is never exported"


def test_without_a_traceparent_the_gateway_starts_a_trace_and_returns_its_id(traced):
    receiver, address = traced

    status, headers, body = stream_messages(address)

    assert status == 200, body
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert (version, flags) == ("00", "01") and len(trace_id) == 32 and len(span_id) == 16
    spans = receiver.wait_for_trace(trace_id, 3)
    (server,) = [s for _, s in spans if s.kind == Span.SPAN_KIND_SERVER]
    assert server.span_id.hex() == span_id
    assert server.parent_span_id == b""


def test_an_unsampled_client_trace_is_propagated_but_not_exported(traced):
    receiver, address = traced
    unsampled, sampled = secrets.token_hex(16), secrets.token_hex(16)

    _, unsampled_headers, _ = stream_messages(address, {"traceparent": traceparent(unsampled, "1" * 16, False)})
    stream_messages(address, {"traceparent": traceparent(sampled, "2" * 16)})

    assert unsampled_headers["traceparent"].startswith(f"00-{unsampled}-")
    assert unsampled_headers["traceparent"].endswith("-00")
    # The exporter sends in order: once the later, sampled trace arrived, the unsampled one would have.
    receiver.wait_for_trace(sampled, 3)
    assert unsampled not in receiver.trace_ids()


def test_a_malformed_traceparent_starts_a_new_trace(traced):
    receiver, address = traced
    bad = "00-" + "0" * 32 + "-" + "1" * 16 + "-01"

    status, headers, _ = stream_messages(address, {"traceparent": bad})

    assert status == 200
    trace_id = headers["traceparent"].split("-")[1]
    assert trace_id != "0" * 32
    spans = receiver.wait_for_trace(trace_id, 3)
    (server,) = [s for _, s in spans if s.kind == Span.SPAN_KIND_SERVER]
    assert server.parent_span_id == b""
