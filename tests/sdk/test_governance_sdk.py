"""Governed gateway keys seen by the official SDKs: a key over its RPM limit gets each SDK's rate-limit
error class, and a model outside its list each SDK's permission error, both without the provider being
called; the AI SDK (Node, tests/ai-sdk/governance.test.mjs) the same through its gateway provider. The
limits themselves are tested in tests/governance_*.rs; this file checks what clients see.
"""

import os
import shutil
import subprocess
import tempfile
import textwrap

import anthropic
import openai
import pytest

from conftest import BIN_DIR, ROOT, Child, _start_mock, _stop

LIMITED = "gw-limited-key-0123456789"
NARROW = "gw-narrow-key-0123456789"
# A token rate no request fits in: every request is refused (429), whatever the minute.
OVER_RATE = "gw-over-rate-key-0123456789"
AI_SDK = ROOT / "tests" / "ai-sdk"


def _config(mock_url):
    return textwrap.dedent(
        f"""
        [server]
        listen = "127.0.0.1:0"
        cores = 1

        [providers.mock]
        kind = "openai"
        base_url = "{mock_url}"

        [models."acme/chat"]
        endpoints = [{{ provider = "mock", model = "gpt-4o-mini" }}]

        [[keys]]
        name = "limited"
        key = "{LIMITED}"
        rpm = 1

        [[keys]]
        name = "narrow"
        key = "{NARROW}"
        models = ["other/*"]

        [[keys]]
        name = "over-rate"
        key = "{OVER_RATE}"
        tpm = 1
        """
    )


@pytest.fixture(scope="module")
def governed():
    """A gateway with two governed keys in front of one mock; yields its base URL."""
    mock, mock_url = _start_mock()
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


def test_openai_sdk_gets_rate_limit_and_permission_errors(governed):
    limited = openai.OpenAI(base_url=f"{governed}/v1", api_key=LIMITED, max_retries=0)
    messages = [{"role": "user", "content": "hi"}]
    assert limited.chat.completions.create(model="acme/chat", messages=messages).choices
    with pytest.raises(openai.RateLimitError) as raised:
        limited.chat.completions.create(model="acme/chat", messages=messages)
    assert raised.value.response.headers.get("retry-after"), "Retry-After tells the SDK when to come back"

    narrow = openai.OpenAI(base_url=f"{governed}/v1", api_key=NARROW, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        narrow.chat.completions.create(model="acme/chat", messages=messages)


def test_anthropic_sdk_gets_its_permission_error(governed):
    narrow = anthropic.Anthropic(base_url=governed, api_key=NARROW, max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as raised:
        narrow.messages.create(model="acme/chat", max_tokens=9, messages=[{"role": "user", "content": "hi"}])
    assert raised.value.body["error"]["type"] == "permission_error"


def test_the_ai_sdk_gets_its_rate_limit_and_forbidden_errors(governed):
    node = shutil.which("node")
    assert node, "node is required (the machine's Node.js)"
    assert (AI_SDK / "node_modules" / "ai").is_dir(), "run: npm install --prefix tests/ai-sdk"
    env = dict(
        os.environ,
        CORELAY_AI_SDK_BASE_URL=f"{governed}/v4/ai",
        CORELAY_GOVERNED_MODEL="acme/chat",
        CORELAY_RATE_LIMITED_KEY=OVER_RATE,
        CORELAY_NARROW_KEY=NARROW,
    )
    run = subprocess.run(
        [node, "--test", "--test-reporter=tap", str(AI_SDK / "governance.test.mjs")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "# pass 3" in run.stdout, run.stdout[-4000:]
