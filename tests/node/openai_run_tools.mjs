// openai-node's tool loop (`client.chat.completions.runTools`) against the gateway.
//   node openai_run_tools.mjs <gateway base URL, with /v1> <model> [stream]
// Prints one JSON line: {"calls": [<arguments the tool ran with>...], "final": <final text>} or {"error": ...}.
import OpenAI from "openai";

const [baseURL = process.env.GATEWAY_URL, model = "mistral/mistral-large-latest", mode = ""] =
  process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "client", maxRetries: 0, timeout: 30_000 });
const calls = [];

try {
  const runner = client.chat.completions.runTools({
    model,
    messages: [{ role: "user", content: "please lookup cats" }],
    tools: [
      {
        type: "function",
        function: {
          name: "lookup",
          description: "Look something up",
          parameters: {
            type: "object",
            properties: { q: { type: "string" } },
            required: ["q"],
          },
          parse: JSON.parse,
          function: async (args) => {
            calls.push(args);
            return "cats are great";
          },
        },
      },
    ],
    stream: mode === "stream",
  });
  const final = await runner.finalContent();
  const completions = (await runner.allChatCompletions()).length;
  console.log(JSON.stringify({ calls, final, completions }));
} catch (error) {
  console.log(JSON.stringify({ calls, error: String(error?.stack ?? error) }));
  process.exitCode = 1;
}
