// Drives qwgpu's server with the official openai client, as applications
// do. The server's backend is the Go tests' fake, whose answers are known:
// "You said: X", thinking "Thinking about X.", a get_weather call when
// tools are offered and the weather is named. Prints "ok NAME" per case.
import assert from "node:assert/strict";
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.BASE_URL + "/v1", apiKey: "test-key", maxRetries: 0 });
const cases = {};
const test = (name, fn) => (cases[name] = fn);

test("models", async () => {
  const list = await client.models.list();
  assert.equal(list.data[0].id, "fake-qwen3");
  assert.equal(list.data[0].object, "model");
});

test("chat", async () => {
  const r = await client.chat.completions.create({
    model: "qwen3", messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hello there" }],
    temperature: 0.6, top_p: 0.95, seed: 7, max_completion_tokens: 100,
  });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].message.content, "You said: hello there");
  assert.equal(r.choices[0].message.reasoning_content, "Thinking about hello there.");
  assert.equal(r.choices[0].finish_reason, "stop");
  assert.deepEqual([r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens], [4, 8, 12]);
});

test("thinking-off", async () => {
  const r = await client.chat.completions.create({
    model: "qwen3", messages: [{ role: "user", content: "hi" }], chat_template_kwargs: { enable_thinking: false },
  });
  assert.equal(r.choices[0].message.content, "You said: hi");
  assert.equal(r.choices[0].message.reasoning_content, undefined);
});

test("stream", async () => {
  const stream = await client.chat.completions.create({
    model: "qwen3", messages: [{ role: "user", content: "hello there" }], stream: true, stream_options: { include_usage: true },
  });
  let content = "", reasoning = "", finish = null, usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    content += c.delta.content ?? "";
    reasoning += c.delta.reasoning_content ?? "";
    finish = c.finish_reason ?? finish;
  }
  assert.equal(content, "You said: hello there");
  assert.equal(reasoning, "Thinking about hello there.");
  assert.equal(finish, "stop");
  assert.equal(usage.total_tokens, 10);
});

const tools = [{
  type: "function",
  function: { name: "get_weather", description: "Weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
}];

test("tools", async () => {
  const messages = [{ role: "user", content: "weather in Paris? /no_think" }];
  const r = await client.chat.completions.create({ model: "qwen3", messages, tools });
  const msg = r.choices[0].message;
  assert.equal(r.choices[0].finish_reason, "tool_calls");
  assert.equal(msg.tool_calls.length, 1);
  assert.equal(msg.tool_calls[0].function.name, "get_weather");
  assert.deepEqual(JSON.parse(msg.tool_calls[0].function.arguments), { city: "Paris" });
  // The round trip: the assistant's call and the tool's answer go back.
  messages.push(msg, { role: "tool", tool_call_id: msg.tool_calls[0].id, content: "22C" });
  const r2 = await client.chat.completions.create({ model: "qwen3", messages, tools });
  assert.equal(r2.choices[0].message.content, "The tool said: 22C");
});

test("tools-stream", async () => {
  // The client's own stream helper assembles tool call deltas.
  const runner = client.chat.completions.stream({
    model: "qwen3", messages: [{ role: "user", content: "weather? /no_think" }], tools,
  });
  let streamed = "";
  runner.on("content", (delta) => (streamed += delta));
  const final = await runner.finalChatCompletion();
  const msg = final.choices[0].message;
  assert.equal(streamed, "Let me check.");
  assert.equal(msg.content, "Let me check.");
  assert.equal(msg.tool_calls[0].function.name, "get_weather");
  assert.deepEqual(JSON.parse(msg.tool_calls[0].function.arguments), { city: "Paris" });
  assert.equal(final.choices[0].finish_reason, "tool_calls");
});

test("completions", async () => {
  const r = await client.completions.create({ model: "qwen3", prompt: "one two three", max_tokens: 2 });
  assert.equal(r.choices[0].text, " three two");
  assert.equal(r.choices[0].finish_reason, "length");
  const stream = await client.completions.create({ model: "qwen3", prompt: "a b c", stream: true });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
  assert.equal(text, " c b a");
});

test("errors", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "qwen3", messages: [{ role: "user", content: "hi" }], n: 2 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === "n" && /only n=1/.test(e.message));
  await assert.rejects(
    client.chat.completions.create({ model: "qwen3", messages: [{ role: "user", content: "too long" }], stream: true }),
    (e) => e instanceof OpenAI.BadRequestError && /do not fit the context/.test(e.message));
  // An error in the middle of a stream reaches the caller as an APIError.
  const stream = await client.chat.completions.create({ model: "qwen3", messages: [{ role: "user", content: "fail mid" }], stream: true });
  await assert.rejects(async () => { for await (const _ of stream); }, (e) => e instanceof OpenAI.APIError && /device lost/.test(e.message));
});

test("abort", async () => {
  // The server sees the abort: the Go side checks the fake was cancelled.
  const stream = await client.chat.completions.create({ model: "qwen3", messages: [{ role: "user", content: "slow" }], stream: true });
  let n = 0;
  for await (const chunk of stream) {
    if (++n === 3) { stream.controller.abort(); break; }
  }
  assert.equal(n, 3);
});

for (const [name, fn] of Object.entries(cases)) {
  try {
    await fn();
    console.log("ok " + name);
  } catch (e) {
    console.log("FAIL " + name + ": " + (e.stack || e));
    process.exitCode = 1;
  }
}
