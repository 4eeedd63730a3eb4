// The Vercel AI SDK's tool loop (`generateText` / `streamText` with an executing tool) against the gateway.
//   node ai_sdk_tool_loop.mjs <gateway base URL, with /v1> <model> <openai-chat|openai-compatible> [stream]
// Prints one JSON line: {"calls": [<tool inputs>...], "final": <final text>, "steps": n} or {"error": ...}.
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const [
  baseURL = process.env.GATEWAY_URL,
  modelId = "mistral/mistral-large-latest",
  provider = "openai-chat",
  mode = "",
] = process.argv.slice(2);
const model =
  provider === "openai-compatible"
    ? createOpenAICompatible({ name: "gateway", baseURL, apiKey: "client" }).chatModel(modelId)
    : createOpenAI({ baseURL, apiKey: "client" }).chat(modelId);
const calls = [];
const options = {
  model,
  prompt: "please lookup cats",
  tools: {
    lookup: tool({
      description: "Look something up",
      inputSchema: z.object({ q: z.string() }),
      execute: async (input) => {
        calls.push(input);
        return "cats are great";
      },
    }),
  },
  stopWhen: stepCountIs(4),
  maxRetries: 0,
};

try {
  let final, steps;
  if (mode === "stream") {
    let streamError;
    const result = streamText({ ...options, onError: ({ error }) => (streamError = error) });
    final = await result.text;
    steps = (await result.steps).length;
    if (streamError) throw streamError;
  } else {
    const result = await generateText(options);
    final = result.text;
    steps = result.steps.length;
  }
  console.log(JSON.stringify({ calls, final, steps }));
} catch (error) {
  console.log(JSON.stringify({ calls, error: String(error?.stack ?? error) }));
  process.exitCode = 1;
}
