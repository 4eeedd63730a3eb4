// The Vercel AI SDK's tool loop with reasoning on (`reasoning_effort: "low"`) against the gateway, and what the
// SDK sends back of the assistant turn: it keeps the tool-call ids, and (openai-compatible) `reasoning_content`,
// but drops `reasoning_details`, so the gateway's per-provider store must stand in for it.
//   node ai_sdk_reasoning_loop.mjs <gateway base URL, with /v1> <model> <openai-chat|openai-compatible> [stream]
// Prints one JSON line: {"calls": [...], "final": <final text>, "steps": n, "echoed": [<assistant keys sent back>]}
// or {"error": ...}.
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const [baseURL, modelId, provider = "openai-chat", mode = ""] = process.argv.slice(2);
const echoed = [];
// Records the keys of the assistant messages each request carries back (what the SDK kept).
const recordingFetch = async (url, init) => {
  const body = JSON.parse(init.body);
  for (const message of body.messages ?? []) {
    if (message.role === "assistant") echoed.push(Object.keys(message).sort());
  }
  return fetch(url, init);
};
const model =
  provider === "openai-compatible"
    ? createOpenAICompatible({ name: "gateway", baseURL, apiKey: "client", fetch: recordingFetch }).chatModel(modelId)
    : createOpenAI({ baseURL, apiKey: "client", fetch: recordingFetch }).chat(modelId);
const calls = [];
const options = {
  model,
  prompt: "get_weather(city=Paris) please",
  tools: {
    get_weather: tool({
      description: "Current weather in a city",
      inputSchema: z.object({ city: z.string() }),
      execute: async (input) => {
        calls.push(input);
        return "Sunny, 21C";
      },
    }),
  },
  providerOptions: { openai: { reasoningEffort: "low" }, gateway: { reasoningEffort: "low" } },
  stopWhen: stepCountIs(3),
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
  console.log(JSON.stringify({ calls, final, steps, echoed }));
} catch (error) {
  console.log(JSON.stringify({ calls, echoed, error: String(error?.stack ?? error) }));
  process.exitCode = 1;
}
