// The chat page at / in headless Chromium: it loads, sends a message,
// shows the streamed answer with the thinking folded away, and the stop
// button ends a stream. Prints "ok NAME" per step.
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const errors = [];
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(process.env.BASE_URL + "/");
  await page.waitForFunction(() => document.getElementById("model").textContent.includes("fake-qwen3"));
  console.log("ok loads");

  await page.fill("#input", "hello there");
  await page.press("#input", "Enter");
  const first = page.locator(".msg.assistant").nth(0);
  await first.locator(".stats").waitFor();
  assert.equal(await first.locator(".content").textContent(), "You said: hello there");
  assert.equal(await first.locator("details.reasoning > div").textContent(), "Thinking about hello there.");
  assert.equal(await first.locator("details.reasoning").getAttribute("open"), null, "thinking is folded once done");
  assert.equal(await page.locator(".msg.user .content").nth(0).textContent(), "hello there");
  console.log("ok streams");

  await page.fill("#input", "slow");
  await page.click("#send");
  const second = page.locator(".msg.assistant").nth(1);
  await page.waitForFunction(() => {
    const c = document.querySelectorAll(".msg.assistant .content")[1];
    return c && c.textContent.includes("tick2");
  });
  assert.equal(await page.isDisabled("#send"), true);
  await page.click("#stop");
  await second.locator(".stats").waitFor();
  assert.match(await second.locator(".stats").textContent(), /^stopped/);
  const text = await second.locator(".content").textContent();
  await page.waitForTimeout(300);
  assert.equal(await second.locator(".content").textContent(), text, "text grew after stop");
  assert.equal(await page.isDisabled("#send"), false);
  console.log("ok stop");

  // The conversation goes on after a stop: the history is sent again.
  await page.fill("#input", "/no_think again");
  await page.press("#input", "Enter");
  const third = page.locator(".msg.assistant").nth(2);
  await third.locator(".stats").waitFor();
  assert.equal(await third.locator(".content").textContent(), "You said: /no_think again");
  console.log("ok continues");
  assert.deepEqual(errors, []);
} finally {
  await browser.close();
}
