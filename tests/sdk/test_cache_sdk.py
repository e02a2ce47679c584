"""The official OpenAI and Anthropic SDKs read answers replayed by the response cache: the second of
two identical requests comes from the cache (`x-corelay-cache: hit`) and each SDK parses it, streamed
and not, into the same content as the first. That hits never reach the provider is tested in
tests/cache.rs (requests counted at the mock); this file checks what clients see.
"""

import os
import shutil
import subprocess
import tempfile
import textwrap
import time
import urllib.request

import anthropic
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import BIN_DIR, ROOT, Child, _start_mock, _stop

AI_SDK = ROOT / "tests" / "ai-sdk"

MODEL = "acme/cached"
UNCACHED = "acme/uncached"
MESSAGES = [{"role": "user", "content": "Say hello"}]
# Sent as extra body: not every supported Anthropic SDK version takes `temperature` as an argument.
ZERO = {"temperature": 0}


def _config(mock_url):
    return textwrap.dedent(
        f"""
        [server]
        listen = "127.0.0.1:0"
        cores = 1

        [providers.mock]
        kind = "openai"
        base_url = "{mock_url}"

        [models."{MODEL}"]
        endpoints = [{{ provider = "mock", model = "gpt-4o-mini" }}]
        cache = true

        [models."{UNCACHED}"]
        endpoints = [{{ provider = "mock", model = "gpt-4o-mini" }}]

        [cache]
        enabled = true
        """
    )


@pytest.fixture(scope="module")
def cached():
    """A gateway with the response cache on for one model, in front of one mock; yields its URL."""
    mock, mock_url = _start_mock("--events", "6")
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(_config(mock_url))
        config_path = f.name
    gateway = Child([str(BIN_DIR / "corelay"), "--config", config_path], "corelay")
    try:
        match = gateway.stderr.wait_for(r"listening on (http://\S+)")
        yield match.group(1)
    finally:
        _stop(gateway)
        _stop(mock)
        os.unlink(config_path)


def openai_client(url):
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=10)


def anthropic_client(url):
    return anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0, timeout=10)


def test_openai_sdk_parses_a_cached_completion(cached):
    client = openai_client(cached)
    answers = []
    for expected in ("miss", "hit"):
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=MESSAGES, temperature=0)
        assert raw.headers["x-corelay-cache"] == expected
        answers.append(raw.parse())
    miss, hit = answers
    assert hit.id == miss.id and hit.model == MODEL
    assert hit.choices[0].message.content == miss.choices[0].message.content
    assert hit.usage.total_tokens == miss.usage.total_tokens


def test_openai_sdk_parses_a_replayed_stream_with_usage(cached):
    client = openai_client(cached)
    texts = []
    for expected in ("miss", "hit"):
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=MESSAGES, temperature=0, stream=True, stream_options={"include_usage": True}
        )
        assert raw.headers["x-corelay-cache"] == expected
        chunks = list(raw.parse())
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
        texts.append("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))
    assert texts[0] and texts[0] == texts[1]


def test_a_request_opts_in_through_the_sdks_extra_headers(cached):
    client = openai_client(cached)
    seen = []
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(
            model=UNCACHED, messages=MESSAGES, temperature=0, extra_headers={"Cache-Control": "max-age=60"}
        )
        seen.append(raw.headers["x-corelay-cache"])
    assert seen == ["miss", "hit"]
    no_store = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, temperature=0, extra_headers={"Cache-Control": "no-store"}
    )
    assert no_store.headers["x-corelay-cache"] == "bypass"


def test_anthropic_sdk_parses_a_cached_message_and_a_replayed_stream(cached):
    client = anthropic_client(cached)
    messages = [{"role": "user", "content": "Say hello to Claude"}]
    bodies = []
    for expected in ("miss", "hit"):
        raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=64, messages=messages, extra_body=ZERO)
        assert raw.headers["x-corelay-cache"] == expected
        bodies.append(raw.parse())
    assert bodies[1].content[0].text == bodies[0].content[0].text and bodies[1].stop_reason == "end_turn"

    texts = []
    for expected in ("miss", "hit"):
        with client.messages.stream(model=MODEL, max_tokens=64, messages=messages, extra_body=ZERO) as stream:
            assert stream.response.headers["x-corelay-cache"] == expected
            final = stream.get_final_message()
        assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
        texts.append(final.content[0].text)
    assert texts[0] and texts[0] == texts[1]


def _cache_results(url):
    """`corelay_cache_requests_total` for MODEL by result, read from the gateway's /metrics with
    prometheus_client's parser (which also proves the cache's series are valid exposition)."""
    text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "corelay_cache_requests_total" and sample.labels.get("model") == MODEL:
                found[sample.labels["result"]] = int(sample.value)
    return found


def test_the_ai_sdk_reads_cached_answers_and_replayed_streams(cached):
    node = shutil.which("node")
    assert node, "node is required (the machine's Node.js)"
    assert (AI_SDK / "node_modules" / "ai").is_dir(), "run: npm install --prefix tests/ai-sdk"
    hits_before = _cache_results(cached).get("hit", 0)
    env = dict(os.environ, CORELAY_AI_SDK_BASE_URL=f"{cached}/v4/ai", CORELAY_CACHED_MODEL=MODEL)
    run = subprocess.run(
        [node, "--test", "--test-reporter=tap", str(AI_SDK / "cache.test.mjs")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "# pass 2" in run.stdout, run.stdout[-4000:]
    # /metrics is refreshed on the control thread's tick: poll, bounded.
    deadline = time.monotonic() + 10
    while _cache_results(cached).get("hit", 0) < hits_before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _cache_results(cached).get("hit", 0) >= hits_before + 2, "the second call of each was a hit"
