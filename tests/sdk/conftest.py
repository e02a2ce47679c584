"""Starts the real binaries for the SDK tests: corelay-mock and corelay on free 127.0.0.1 ports.

The binaries are the debug builds from `cargo build --workspace --bins` (the test script builds them);
CORELAY_BIN_DIR overrides where they are looked for. Every child's output pipe is drained by its own
thread for the child's whole life (a full pipe would block the gateway's logging), and the startup
line is awaited with a real deadline. Under CI=true a skipped test is reported as a failure: CI
installs every real dependency, so a skip there means one is missing.
"""

import collections
import os
import queue
import re
import subprocess
import tempfile
import textwrap
import threading
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
# USD per million tokens for anthropic/claude-sonnet-4, the seed's model.
SEED_PRICE_INPUT = 3.0
SEED_PRICE_OUTPUT = 15.0
# Lines kept per pipe for error messages; older ones are dropped (the pipe is still read).
KEPT_LINES = 2000


class DrainedPipe:
    """Reads a child's pipe line by line on a daemon thread until EOF, so the child never blocks
    on a full pipe. Lines go to a queue (for `wait_for`) and to a bounded history (for messages)."""

    def __init__(self, stream, name):
        self.name = name
        self.lines = queue.Queue()
        self.history = collections.deque(maxlen=KEPT_LINES)
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._drain, args=(stream,), name=f"drain-{name}", daemon=True)
        self.thread.start()

    def _drain(self, stream):
        try:
            for line in stream:
                self.history.append(line)
                self.lines.put(line)
        finally:
            self.closed.set()
            self.lines.put(None)

    def text(self):
        return "".join(self.history)

    def wait_for(self, pattern, timeout_s=STARTUP_TIMEOUT_S):
        """The first match of `pattern` in a line read from now on, within `timeout_s`; raises
        when the pipe closes (the child exited) or the deadline passes."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name}: no line matching {pattern!r} within {timeout_s} s:\n{self.text()}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"{self.name} exited before printing {pattern!r}:\n{self.text()}")
            match = re.search(pattern, line)
            if match:
                return match


class Child:
    """A started binary with both output pipes drained."""

    def __init__(self, args, name, env=None):
        self.name = name
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env
        )
        self.stdout = DrainedPipe(self.proc.stdout, f"{name} stdout")
        self.stderr = DrainedPipe(self.proc.stderr, f"{name} stderr")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.stdout.thread.join(timeout=5)
        self.stderr.thread.join(timeout=5)


def _stop(child):
    child.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skip is a failure that carries the skip's reason: CI installs Chromium, Node
    and the SDKs, so a skip there means a real dependency is missing and the run must not pass."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must not skip: {reason}"


def _start_mock(*args):
    child = Child([str(BIN_DIR / "corelay-mock"), "--listen", "127.0.0.1:0", *args], "corelay-mock")
    try:
        match = child.stdout.wait_for(r"listening on (http://\S+)")
    except RuntimeError:
        child.stop()
        raise
    return child, match.group(1)


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
        # Per-million-token prices the seed test recomputes the reported cost from.
        price = {{ input = {SEED_PRICE_INPUT}, output = {SEED_PRICE_OUTPUT} }}

        [[keys]]
        name = "sdk-tests"
        key = "{GATEWAY_KEY}"
        """
    )
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(config)
        config_path = f.name
    env = dict(os.environ, **{PROVIDER_KEY_ENV: "sk-provider-sdk-test"})
    proc = Child([str(BIN_DIR / "corelay"), "--config", config_path], "corelay", env=env)
    try:
        match = proc.stderr.wait_for(r"listening on http://(\S+)")
        yield f"http://{match.group(1)}/v1"
    finally:
        _stop(proc)
        for started in (
            mock, limited, claude_stream, claude_json, unavailable, tools, embed, counter, responses_json, responses_sse
        ):
            _stop(started)
        os.unlink(config_path)
