"""The real Vercel AI SDK (Node, tests/ai-sdk) against Corelay: the seed's generateText and streamText
calls through the AI SDK gateway protocol with createGateway({ baseURL }) as the only change, and the
SDK's OpenAI provider (@ai-sdk/openai) through the OpenAI front doors with createOpenAI({ baseURL })."""

import json
import time
import os
import shutil
import subprocess
from itertools import cycle, islice

from conftest import GATEWAY_KEY, ROOT, SEED_PRICE_INPUT, SEED_PRICE_OUTPUT

AI_SDK = ROOT / "tests" / "ai-sdk"
# corelay-mock's documented reply text: this sentence repeated, cut at its content size (64 bytes by
# default), the same whether streamed (in 6 events here) or not.
MOCK_WORDS = "The quick brown fox jumps over the lazy dog while the mock provider streams tokens. "
MOCK_TEXT = "".join(islice(cycle(MOCK_WORDS), 64))


def seed_reports(stdout):
    """The `SEED {json}` lines seed.test.mjs prints, by call name."""
    reports = {}
    for line in stdout.splitlines():
        if line.startswith("SEED "):
            report = json.loads(line[len("SEED "):])
            reports[report["call"]] = report
    return reports


def assert_seed_call(report):
    """The seed's model is served by the openai-kind mock named `bedrock` after `vertex` answered 503."""
    assert report["text"] == MOCK_TEXT, report
    gateway = report["providerMetadata"]["gateway"]
    routing = gateway["routing"]
    assert [(a["provider"], a["statusCode"], a["outcome"], a["success"]) for a in routing["attempts"]] == [
        ("vertex", 503, "server_error", False),
        ("bedrock", 200, "success", True),
    ], routing
    # As the hosted gateway sends them: Unix milliseconds, in order, the failed attempt first.
    first, served = routing["attempts"]
    assert 0 < first["startTime"] <= first["endTime"] <= served["startTime"] <= served["endTime"], routing
    assert abs(served["endTime"] - time.time() * 1000) < 120_000, routing
    assert routing["finalProvider"] == "bedrock"
    assert routing["originalModelId"] == "anthropic/claude-sonnet-4"
    usage = report["usage"]
    assert usage["inputTokens"] > 0 and usage["outputTokens"] > 0, usage
    micros = usage["inputTokens"] * SEED_PRICE_INPUT + usage["outputTokens"] * SEED_PRICE_OUTPUT
    assert gateway["cost"] == f"{micros / 1_000_000:.6f}", (gateway["cost"], usage)


def test_the_seed_calls_succeed_with_the_real_ai_sdk(gateway):
    node = shutil.which("node")
    assert node, "node is required (the machine's Node.js)"
    assert (AI_SDK / "node_modules" / "ai").is_dir(), "run: npm install --prefix tests/ai-sdk"
    origin = gateway.rsplit("/v1", 1)[0]
    env = dict(os.environ, CORELAY_AI_SDK_BASE_URL=f"{origin}/v4/ai", CORELAY_GATEWAY_KEY=GATEWAY_KEY)
    run = subprocess.run(
        [node, "--test", "--test-reporter=spec", str(AI_SDK / "seed.test.mjs")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    reports = seed_reports(run.stdout)
    assert set(reports) == {"generateText", "streamText"}, run.stdout[-4000:]
    assert_seed_call(reports["generateText"])
    assert_seed_call(reports["streamText"])


def test_the_ai_sdk_openai_provider_works_through_the_openai_front_doors(gateway):
    node = shutil.which("node")
    assert node, "node is required (the machine's Node.js)"
    assert (AI_SDK / "node_modules" / "@ai-sdk" / "openai").is_dir(), "run: npm install --prefix tests/ai-sdk"
    env = dict(os.environ, CORELAY_OPENAI_BASE_URL=gateway, CORELAY_GATEWAY_KEY=GATEWAY_KEY)
    run = subprocess.run(
        [node, "--test", "--test-reporter=tap", str(AI_SDK / "openai.test.mjs")],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "# pass 7" in run.stdout, run.stdout[-4000:]
