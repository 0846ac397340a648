// The Vercel AI SDK's streamText (pinned in package.json) as a client, run by
// tests/clients/test_node_clients.py:  node stream_text.mjs '{"direct": ["URL", "KEY"], ...}'
// Prints one JSON object {base: {case: assembled}}: what the SDK itself assembled.
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { jsonSchema, streamText, tool } from "ai";

const MODEL = "fake-upstream";
const ASK = "weather and time in Paris? fake.replay=";
const tools = {
  get_weather: tool({ description: "weather", inputSchema: jsonSchema({ type: "object", properties: { location: { type: "string" } } }) }),
  get_time: tool({ description: "time", inputSchema: jsonSchema({ type: "object", properties: { timezone: { type: "string" } } }) }),
};

async function run(baseURL, apiKey, fixture) {
  const provider = createOpenAICompatible({ name: "relay", baseURL, apiKey, includeUsage: true });
  const result = streamText({ model: provider.chatModel(MODEL), prompt: ASK + fixture, tools, maxRetries: 0 });
  const parts = [];
  for await (const part of result.fullStream) {
    if (part.type === "error") throw part.error;
    parts.push(part.type);
  }
  const calls = await result.toolCalls;
  return {
    parts,
    toolCalls: calls.map((c) => ({ id: c.toolCallId, name: c.toolName, input: c.input })),
    text: await result.text,
    reasoning: await result.reasoningText,
    finishReason: await result.finishReason,
    usage: await result.usage,
  };
}

const bases = JSON.parse(process.argv[2]);
const out = {};
for (const [name, [url, key]] of Object.entries(bases)) {
  out[name] = { tools: await run(url, key, "tool_calls"), reasoning: await run(url, key, "reasoning") };
}
console.log(JSON.stringify(out));
