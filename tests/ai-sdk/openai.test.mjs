// The AI SDK's own OpenAI provider (@ai-sdk/openai, pinned in package.json) against Corelay's OpenAI
// front doors, unchanged but for createOpenAI({ baseURL }): openai(model) speaks the Responses API
// (POST /v1/responses), openai.chat(model) chat completions. Run by tests/sdk/test_ai_sdk.py, which
// starts Corelay and the mock providers and passes their addresses.
import "./node-version.mjs";
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateText, streamText } from "ai";
import { createOpenAI } from "@ai-sdk/openai";

const openai = createOpenAI({
  baseURL: process.env.CORELAY_OPENAI_BASE_URL,
  apiKey: process.env.CORELAY_GATEWAY_KEY,
});

// [what serves it, model for generateText, model for streamText]
const cases = [
  ["Responses API, translated for an OpenAI chat provider", openai("acme/chat-small"), openai("acme/chat-small")],
  ["Responses API, translated for an Anthropic provider", openai("anthropic/claude-json"), openai("anthropic/claude-stream")],
  ["chat completions", openai.chat("acme/chat-small"), openai.chat("acme/chat-small")],
];

for (const [name, generating, streaming] of cases) {
  test(`generateText: ${name}`, async () => {
    const { text, usage, finishReason } = await generateText({ model: generating, prompt: "Say hello" });
    assert.ok(text.length > 0, "some text came back");
    assert.equal(finishReason, "stop");
    assert.ok(usage.outputTokens > 0, JSON.stringify(usage));
  });

  test(`streamText: ${name}`, async () => {
    const result = streamText({ model: streaming, prompt: "Say hello" });
    let streamed = "";
    for await (const part of result.textStream) streamed += part;
    assert.ok(streamed.length > 0, "streamed text arrived");
    assert.equal(streamed, await result.text);
    assert.ok((await result.usage).outputTokens > 0);
  });
}

test("a Responses provider's recorded answer passes through", async () => {
  const { text, usage } = await generateText({ model: openai("openai/o3-pro"), prompt: "What is the capital of France?" });
  assert.equal(text, "The capital of France is Paris.");
  assert.equal(usage.inputTokens, 24);
  assert.equal(usage.outputTokens, 8);
});
