// Governed gateway keys seen by the real AI SDK (ai + @ai-sdk/gateway, pinned in package.json):
// a key over its token rate gets GatewayRateLimitError (429), a model outside its list
// GatewayForbiddenError (403), each with Corelay's message. Run by tests/sdk/test_governance_sdk.py,
// which starts Corelay with those keys and passes the base URL and the keys; the limits themselves
// are tested in tests/governance_*.rs.
import "./node-version.mjs";
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateText, streamText } from "ai";
import { createGateway, GatewayForbiddenError, GatewayRateLimitError } from "@ai-sdk/gateway";

const baseURL = process.env.CORELAY_AI_SDK_BASE_URL;
const model = process.env.CORELAY_GOVERNED_MODEL;
const overRate = createGateway({ baseURL, apiKey: process.env.CORELAY_RATE_LIMITED_KEY });
const narrow = createGateway({ baseURL, apiKey: process.env.CORELAY_NARROW_KEY });

// maxRetries: 0, so the SDK's own error reaches the caller rather than a RetryError around it.
async function failure(call) {
  try {
    await call();
  } catch (error) {
    return error;
  }
  assert.fail("the call succeeded");
}

test("generateText over the key's token rate: GatewayRateLimitError", async () => {
  const error = await failure(() => generateText({ model: overRate(model), prompt: "hi", maxRetries: 0 }));
  assert.ok(GatewayRateLimitError.isInstance(error), `${error?.name}: ${error?.message}`);
  assert.equal(error.statusCode, 429);
  assert.match(error.message, /tokens per minute/);
});

test("streamText over the key's token rate: GatewayRateLimitError", async () => {
  let streamError;
  const result = streamText({
    model: overRate(model),
    prompt: "hi",
    maxRetries: 0,
    onError: ({ error }) => {
      streamError = error;
    },
  });
  await failure(async () => {
    for await (const _ of result.textStream);
    if (streamError) throw streamError;
  });
  assert.ok(GatewayRateLimitError.isInstance(streamError), `${streamError?.name}: ${streamError?.message}`);
});

test("generateText for a model outside the key's list: GatewayForbiddenError", async () => {
  const error = await failure(() => generateText({ model: narrow(model), prompt: "hi", maxRetries: 0 }));
  assert.ok(GatewayForbiddenError.isInstance(error), `${error?.name}: ${error?.message}`);
  assert.equal(error.statusCode, 403);
  assert.match(error.message, /may not use the model/);
});
