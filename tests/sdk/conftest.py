"""Starts the real binaries for the SDK tests: corelay-mock and corelay on free 127.0.0.1 ports.

The binaries are the debug builds from `cargo build --workspace --bins` (the test script builds them);
CORELAY_BIN_DIR overrides where they are looked for.
"""

import os
import re
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("CORELAY_BIN_DIR", ROOT / "target" / "debug"))
GATEWAY_KEY = "gw-sdk-test-key-0123456789"
PROVIDER_KEY_ENV = "CORELAY_SDK_TEST_PROVIDER_KEY"
STARTUP_TIMEOUT_S = 20
# The recorded provider traffic the mocks replay (provenance in tests/fixtures/INDEX.md).
FIXTURES = ROOT / "tests" / "fixtures"


def _wait_for_line(proc, stream, pattern, what):
    """Reads lines until `pattern` matches; bounded by a deadline and by the process exiting."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    seen = []
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            raise RuntimeError(f"{what} exited early: {''.join(seen)}")
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise RuntimeError(f"{what} did not start in time: {''.join(seen)}")


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _start_mock(*args):
    proc = subprocess.Popen(
        [str(BIN_DIR / "corelay-mock"), "--listen", "127.0.0.1:0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    match = _wait_for_line(proc, proc.stdout, r"listening on (http://\S+)", "corelay-mock")
    return proc, match.group(1)


@pytest.fixture(scope="session")
def gateway():
    """A gateway with one gateway key in front of two mocks: a healthy one and one that answers 429."""
    mock, base_url = _start_mock("--events", "6")
    limited, limited_url = _start_mock("--fault", "status:429:3")
    fixtures = FIXTURES / "anthropic"
    claude_stream, claude_stream_url = _start_mock("--replay-sse", str(fixtures / "anthropic-messages-stream-text.sse"))
    claude_json, claude_json_url = _start_mock("--replay-json", str(fixtures / "anthropic-messages-basic.response.json"))
    unavailable, unavailable_url = _start_mock("--fault", "status:503")
    openai_fixtures = FIXTURES / "openai" / "chat"
    tools, tools_url = _start_mock("--replay-sse", str(openai_fixtures / "openai-chat-stream-tool-call.sse"))
    # Our own OpenAI-shaped embeddings answer (two vectors); no recorded one exists in tests/fixtures.
    embed, embed_url = _start_mock("--replay-json", str(ROOT / "tests" / "sdk" / "data" / "openai-embeddings.json"))
    # Anthropic's documented count_tokens answer shape, our own numbers.
    counter, counter_url = _start_mock("--replay-json", str(ROOT / "tests" / "sdk" / "data" / "anthropic-count-tokens.json"))
    # OpenAI's Responses API, recorded: a body and a stream.
    responses_fixtures = FIXTURES / "openai" / "responses"
    responses_json, responses_json_url = _start_mock(
        "--replay-json", str(responses_fixtures / "openai-responses-basic.response.json")
    )
    responses_sse, responses_sse_url = _start_mock(
        "--replay-sse", str(responses_fixtures / "openai-responses-stream-text.sse")
    )
    config = textwrap.dedent(
        f"""
        [server]
        listen = "127.0.0.1:0"
        cores = 2

        [providers.mock]
        kind = "openai"
        base_url = "{base_url}"
        api_key_env = "{PROVIDER_KEY_ENV}"

        [providers.limited]
        kind = "openai"
        base_url = "{limited_url}"

        [models."acme/chat-small"]
        endpoints = [{{ provider = "mock", model = "gpt-4o-mini" }}]
        price = {{ input = 0.15, output = 0.6 }}

        [models."acme/rate-limited"]
        endpoints = [{{ provider = "limited", model = "gpt-4o-mini" }}]

        [providers.claude-stream]
        kind = "anthropic"
        base_url = "{claude_stream_url}"

        [providers.claude-json]
        kind = "anthropic"
        base_url = "{claude_json_url}"

        [models."anthropic/claude-stream"]
        endpoints = [{{ provider = "claude-stream", model = "claude-sonnet-4-5" }}]

        [models."anthropic/claude-json"]
        endpoints = [{{ provider = "claude-json", model = "claude-sonnet-4-5" }}]

        # The seed's model: the first provider is down (503), the second answers.
        [providers.vertex]
        kind = "openai"
        base_url = "{unavailable_url}"

        [providers.bedrock]
        kind = "openai"
        base_url = "{base_url}"

        [providers.anthropic]
        kind = "anthropic"
        base_url = "{claude_json_url}"

        # Streams a recorded tool call (get_weather for New York City).
        [providers.tools]
        kind = "openai"
        base_url = "{tools_url}"

        [models."acme/tools"]
        endpoints = [{{ provider = "tools", model = "gpt-4o" }}]

        [providers.embed]
        kind = "openai"
        base_url = "{embed_url}"

        [models."acme/embed"]
        endpoints = [{{ provider = "embed", model = "text-embedding-3-small" }}]
        price = {{ input = 0.02, output = 0 }}

        [providers.counter]
        kind = "anthropic"
        base_url = "{counter_url}"

        [models."anthropic/claude-counted"]
        endpoints = [{{ provider = "counter", model = "claude-sonnet-4-5" }}]

        [providers.responses-json]
        kind = "openai_responses"
        base_url = "{responses_json_url}"

        [providers.responses-sse]
        kind = "openai_responses"
        base_url = "{responses_sse_url}"

        [models."openai/o3-pro"]
        endpoints = [{{ provider = "responses-json", model = "o3-pro" }}]

        [models."openai/o3-pro-stream"]
        endpoints = [{{ provider = "responses-sse", model = "o3-pro" }}]

        [models."anthropic/claude-sonnet-4"]
        endpoints = [
          {{ provider = "vertex", model = "claude-sonnet-4" }},
          {{ provider = "bedrock", model = "claude-sonnet-4" }},
          {{ provider = "anthropic", model = "claude-sonnet-4" }},
        ]

        [[keys]]
        name = "sdk-tests"
        key = "{GATEWAY_KEY}"
        """
    )
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(config)
        config_path = f.name
    env = dict(os.environ, **{PROVIDER_KEY_ENV: "sk-provider-sdk-test"})
    proc = subprocess.Popen(
        [str(BIN_DIR / "corelay"), "--config", config_path],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        match = _wait_for_line(proc, proc.stderr, r"listening on http://(\S+)", "corelay")
        yield f"http://{match.group(1)}/v1"
    finally:
        _stop(proc)
        for started in (
            mock, limited, claude_stream, claude_json, unavailable, tools, embed, counter, responses_json, responses_sse
        ):
            _stop(started)
        os.unlink(config_path)
