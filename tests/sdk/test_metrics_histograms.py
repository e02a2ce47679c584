"""The latency histograms, build info and process metrics as Prometheus reads them: two real gateway
processes scraped and parsed with the official Python client's parser, their buckets summed the way
`sum by (le, model)` would, and client-chosen model names shown to add no series.

Owns only these checks; the counters' exact values are tests/metrics.rs's, the 10,000-request flood
is tests/operator_metrics.rs's (in-process, faster), this file sends a smaller one through the binary.
"""

import http.client
import json
import os
import tempfile
import textwrap
import time
from collections import defaultdict

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import BIN_DIR, Child, _start_mock, _stop

HISTOGRAMS = (
    "corelay_request_duration_seconds",
    "corelay_time_to_first_byte_seconds",
    "corelay_gateway_overhead_seconds",
)


def _config(mock_url):
    return textwrap.dedent(
        f"""
        [server]
        listen = "127.0.0.1:0"
        cores = 1

        [health]
        tick_ms = 20

        [providers.mock]
        kind = "openai"
        base_url = "{mock_url}"

        [models."acme/a"]
        endpoints = [{{ provider = "mock", model = "gpt-4o-mini" }}]

        [models."acme/b"]
        endpoints = [{{ provider = "mock", model = "gpt-4o-mini" }}]
        """
    )


@pytest.fixture(scope="module")
def two_gateways():
    """Two gateway processes with one config in front of one mock: (host, port) of each."""
    mock, mock_url = _start_mock()
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(_config(mock_url))
        config_path = f.name
    procs, addrs = [], []
    try:
        for _ in range(2):
            child = Child([str(BIN_DIR / "corelay"), "--config", config_path], "corelay")
            procs.append(child)
            match = child.stderr.wait_for(r"listening on http://(\S+):(\d+)")
            addrs.append((match.group(1), int(match.group(2))))
        yield addrs
    finally:
        for proc in procs:
            _stop(proc)
        _stop(mock)
        os.unlink(config_path)


def _chat(conn, model):
    """One chat request on a kept-alive connection; returns the status."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    conn.request("POST", "/v1/chat/completions", body=body, headers={"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    return response.status


def _scrape(addr):
    conn = http.client.HTTPConnection(*addr, timeout=10)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("content-type").startswith("text/plain; version=0.0.4")
    text = response.read().decode()
    conn.close()
    return {family.name: family for family in text_string_to_metric_families(text)}


def _count(families, model):
    family = families.get("corelay_request_duration_seconds")
    samples = family.samples if family else []
    return sum(s.value for s in samples if s.name.endswith("_count") and s.labels.get("model") == model)


def _scrape_until(addr, counts):
    """Scrapes until every model's duration count is as given; bounded by time and by count."""
    deadline = time.monotonic() + 10
    for _ in range(10_000):
        families = _scrape(addr)
        if all(_count(families, model) == n for model, n in counts.items()) or time.monotonic() > deadline:
            return families
        time.sleep(0.02)  # a pause between scrapes, not synchronisation: the loop checks the state
    return families


def _buckets_by_series(family):
    """{labels without le: [(le, cumulative count)]} in scrape order, plus {labels: count}."""
    buckets, counts = defaultdict(list), {}
    for s in family.samples:
        labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        if s.name.endswith("_bucket"):
            buckets[labels].append((s.labels["le"], s.value))
        elif s.name.endswith("_count"):
            counts[labels] = s.value
    return buckets, counts


def test_histograms_of_two_instances_sum_by_le_and_model(two_gateways):
    a, b = two_gateways
    sent = {a: {"acme/a": 3, "acme/b": 1}, b: {"acme/a": 2}}
    for addr, per_model in sent.items():
        conn = http.client.HTTPConnection(*addr, timeout=10)
        for model, n in per_model.items():
            assert all(_chat(conn, model) == 200 for _ in range(n))
        conn.close()
    scrapes = [_scrape_until(addr, sent[addr]) for addr in (a, b)]

    for name in HISTOGRAMS:
        summed = defaultdict(float)  # (model, le) -> count, as `sum by (le, model)`
        bounds = None
        for families in scrapes:
            family = families[name]
            assert family.type == "histogram", name
            buckets, counts = _buckets_by_series(family)
            for labels, series in buckets.items():
                assert {k for k, _ in labels} == {"front_door", "model", "provider"}
                les = [le for le, _ in series]
                assert les[-1] == "+Inf" and len(les) > 10
                assert bounds in (None, les), "every series and instance has the same buckets"
                bounds = les
                values = [v for _, v in series]
                assert values == sorted(values), f"{name}{labels} not cumulative"
                assert values[-1] == counts[labels]
                model = dict(labels)["model"]
                for le, value in series:
                    summed[(model, le)] += value
        assert summed[("acme/a", "+Inf")] == 5, name
        assert summed[("acme/b", "+Inf")] == 1, name


def test_build_info_process_and_reload_metrics_are_there(two_gateways):
    families = _scrape(two_gateways[0])
    (info,) = families["corelay_build_info"].samples
    assert info.value == 1 and info.labels["version"] and info.labels["commit"]
    assert families["process_cpu_seconds"].type == "counter"
    assert families["process_resident_memory_bytes"].samples[0].value > 1_000_000
    assert families["process_open_fds"].samples[0].value >= 3
    started = families["process_start_time_seconds"].samples[0].value
    assert time.time() - 3600 < started <= time.time() + 1
    outcomes = {s.labels["outcome"]: s.value for s in families["corelay_config_reloads"].samples if s.name.endswith("_total")}
    assert outcomes == {"success": 0, "failure": 0}


def _series(families):
    return {(s.name, tuple(sorted(s.labels.items()))) for f in families.values() for s in f.samples}


def test_client_chosen_model_names_add_no_series(two_gateways):
    addr = two_gateways[1]
    conn = http.client.HTTPConnection(*addr, timeout=10)
    assert _chat(conn, "not-configured") == 404
    before = _scrape_until(addr, {"(unknown)": 1})
    flood = 2_000
    for i in range(flood):
        assert _chat(conn, f"random-{os.urandom(8).hex()}-{i}") == 404
    conn.close()
    after = _scrape_until(addr, {"(unknown)": flood + 1})
    assert _count(after, "(unknown)") == flood + 1
    assert _series(before) == _series(after)
