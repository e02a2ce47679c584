// The seed's two calls with the real Vercel AI SDK (ai + @ai-sdk/gateway, pinned in package.json),
// unchanged but for createGateway({ baseURL }), against a running Corelay. Run by
// tests/sdk/test_ai_sdk.py, which starts Corelay and the mock providers and passes their addresses.
import "./node-version.mjs";
import { test } from "node:test";
import assert from "node:assert/strict";
import { embed, embedMany, generateText, jsonSchema, streamText, tool } from "ai";
import { createGateway, GatewayAuthenticationError, GatewayModelNotFoundError } from "@ai-sdk/gateway";

const baseURL = process.env.CORELAY_AI_SDK_BASE_URL;
const apiKey = process.env.CORELAY_GATEWAY_KEY;
const gateway = createGateway({ baseURL, apiKey });

// What each seed call returned, one `SEED {json}` line per call on stdout, for
// tests/sdk/test_ai_sdk.py to check against what the mock providers were set up to answer.
const report = (call, fields) => console.log(`SEED ${JSON.stringify({ call, ...fields })}`);

test("generateText from the seed", async () => {
  const { text, providerMetadata, usage } = await generateText({
    model: gateway("anthropic/claude-sonnet-4"),
    prompt: "Why is the sky blue?",
  });
  report("generateText", { text, providerMetadata, usage });
  assert.ok(text.length > 0, "some text came back");
  assert.ok(providerMetadata?.gateway, "gateway metadata is present");
});

test("streamText with providerOptions.gateway.order from the seed", async () => {
  const result = streamText({
    model: gateway("anthropic/claude-sonnet-4"),
    prompt: "Why is the sky blue?",
    providerOptions: { gateway: { order: ["vertex", "bedrock", "anthropic"] } },
  });
  let streamed = "";
  for await (const part of result.textStream) streamed += part;
  assert.ok(streamed.length > 0, "streamed text arrived");
  assert.equal(streamed, await result.text);
  const metadata = await result.providerMetadata;
  report("streamText", { text: streamed, providerMetadata: metadata, usage: await result.usage });
  const attempts = metadata?.gateway?.routing?.attempts ?? [];
  // The first provider in `order` fails (its mock answers 503), so two attempts show.
  assert.equal(attempts.length, 2, JSON.stringify(metadata));
  assert.equal(attempts[0].provider, "vertex");
  assert.equal(attempts[1].provider, "bedrock");
});

test("tool calls stream through as the SDK's tool calls", async () => {
  const result = streamText({
    model: gateway("acme/tools"),
    prompt: "What is the weather in New York City?",
    tools: {
      get_weather: tool({
        description: "Current weather for a city",
        inputSchema: jsonSchema({ type: "object", properties: { city: { type: "string" } }, required: ["city"] }),
      }),
    },
  });
  const calls = await result.toolCalls;
  assert.equal(calls.length, 1, JSON.stringify(calls));
  assert.equal(calls[0].toolName, "get_weather");
  assert.deepEqual(calls[0].input, { city: "New York City" });
  assert.equal(await result.finishReason, "tool-calls");
});

test("embed and embedMany go through the embedding-model endpoint", async () => {
  const single = await embed({ model: gateway.embeddingModel("acme/embed"), value: "hello" });
  assert.equal(single.embedding.length, 3, JSON.stringify(single));
  assert.ok(single.providerMetadata?.gateway?.routing, JSON.stringify(single.providerMetadata));
  const many = await embedMany({ model: gateway.embeddingModel("acme/embed"), values: ["hello", "world"] });
  assert.equal(many.embeddings.length, 2);
  assert.deepEqual(many.embeddings[1], [0.0321, 0.0654, -0.0987]);
  assert.equal(many.usage.tokens, 4);
});

// `ai` bundles its own copy of @ai-sdk/gateway, so the class is recognised by name as well.
const is = (error, cls) => cls.isInstance(error) || error?.name === cls.name;

test("errors map to the SDK's error classes", async () => {
  await assert.rejects(generateText({ model: gateway("acme/does-not-exist"), prompt: "hi" }), (error) =>
    is(error, GatewayModelNotFoundError),
  );
  const wrongKey = createGateway({ baseURL, apiKey: "not-the-key" });
  await assert.rejects(generateText({ model: wrongKey("anthropic/claude-sonnet-4"), prompt: "hi" }), (error) =>
    is(error, GatewayAuthenticationError),
  );
});
