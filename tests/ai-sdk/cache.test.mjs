// The real Vercel AI SDK (ai + @ai-sdk/gateway) reads answers Corelay's response cache replays: each
// call is made twice with temperature 0, the second is served from the cache, and both give the same
// text and finish. Run by tests/sdk/test_cache_sdk.py, which starts a Corelay with the cache on for
// CORELAY_CACHED_MODEL and then checks on /metrics that the second calls were hits.
import "./node-version.mjs";
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateText, streamText } from "ai";
import { createGateway } from "@ai-sdk/gateway";

const gateway = createGateway({ baseURL: process.env.CORELAY_AI_SDK_BASE_URL, apiKey: "unused" });
const model = process.env.CORELAY_CACHED_MODEL;

test("generateText twice gives the same answer", async () => {
  const answers = [];
  for (let i = 0; i < 2; i++) {
    const { text, finishReason, usage } = await generateText({ model: gateway(model), prompt: "Cache me", temperature: 0 });
    assert.equal(finishReason, "stop");
    assert.ok(usage.outputTokens > 0, JSON.stringify(usage));
    answers.push(text);
  }
  assert.ok(answers[0].length > 0);
  assert.equal(answers[1], answers[0]);
});

test("streamText twice streams the same text, the second replayed", async () => {
  const texts = [];
  for (let i = 0; i < 2; i++) {
    const result = streamText({ model: gateway(model), prompt: "Stream me", temperature: 0 });
    let streamed = "";
    for await (const part of result.textStream) streamed += part;
    assert.equal(await result.finishReason, "stop");
    assert.equal(streamed, await result.text);
    texts.push(streamed);
  }
  assert.ok(texts[0].length > 0);
  assert.equal(texts[1], texts[0]);
});
