"""The real Vercel AI SDK (Node, tests/ai-sdk) against Corelay: the seed's generateText and streamText
calls through the AI SDK gateway protocol with createGateway({ baseURL }) as the only change, and the
SDK's OpenAI provider (@ai-sdk/openai) through the OpenAI front doors with createOpenAI({ baseURL })."""

import os
import shutil
import subprocess

from conftest import GATEWAY_KEY, ROOT

AI_SDK = ROOT / "tests" / "ai-sdk"


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
