"""/metrics as a Prometheus server reads it: parsed with the official Python client's parser."""

import time
import urllib.request

from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

from conftest import GATEWAY_KEY


def test_metrics_parse_with_the_prometheus_parser_and_count_requests(gateway):
    client = OpenAI(base_url=gateway, api_key=GATEWAY_KEY, max_retries=0, timeout=10)
    client.chat.completions.create(model="acme/chat-small", messages=[{"role": "user", "content": "hi"}])
    origin = gateway.rsplit("/v1", 1)[0]
    families = {}
    # The scrape is refreshed every health tick: read until the request shows, bounded by time and count.
    deadline = time.monotonic() + 10
    for _ in range(100_000):
        if time.monotonic() > deadline:
            break
        with urllib.request.urlopen(f"{origin}/metrics", timeout=5) as response:
            assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
            text = response.read().decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        requests = families.get("corelay_requests")
        if requests and any(s.labels.get("model") == "acme/chat-small" for s in requests.samples):
            break
    assert families["corelay_requests"].type == "counter"
    assert families["corelay_request_duration_seconds"].type == "histogram"
    assert families["corelay_worker_driver"].type == "gauge"
    served = [s for s in families["corelay_requests"].samples if s.labels.get("model") == "acme/chat-small"]
    assert served and all(s.value >= 1 for s in served)
