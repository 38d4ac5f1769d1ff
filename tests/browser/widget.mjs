// The embeddable chat widget in a real browser (headless Chromium driven by playwright-core).
//
// Run it (from the repository root):
//   cargo build -p echoforge -p fakellm
//   (cd tests/browser && npm ci)
//   ECHOFORGE_BIN=target/debug/echoforge ECHOFORGE_FAKELLM_BIN=target/debug/fakellm \
//     node tests/browser/widget.mjs
// Optional: CHROMIUM_BIN (default /usr/bin/chromium), KEEP_DATA=1 to keep the data directory.
//
// It starts the `echoforge` binary and the scripted fake LLM (`fakellm`) on free ports with a
// fresh data directory, signs up (verification mail read from the outbox), uploads a document,
// makes an agent whose widget allows only `shop.localhost`, and serves a host page (hostile
// CSS, a strict Content-Security-Policy) that embeds the widget with the one-line snippet.
// Checked:
//   - on http://shop.localhost:PORT the bubble appears, a question gets a streamed answer that
//     cites the uploaded document, the persona's name with markup shows as text;
//   - reloading the page and reopening the widget shows the conversation again;
//   - a message sent while the browser is offline is delivered once it is back online;
//   - live handoff: the visitor asks for a person and is told their place in the queue; an
//     operator claims it over the API and the visitor sees them join; the operator's reply
//     appears in the open widget without a reload, with their name; the bot stays silent while
//     the person answers; returning the conversation to the bot is shown too;
//   - on http://localhost:PORT (not allowed) the server refuses the widget (403, no CORS) and
//     no bubble or answer appears;
//   - changed settings apply on the next page load (dark theme, left, open delay, hidden on
//     phones).
// Screenshots go to docs/screenshots/widget-*.png. Exits non-zero on any failure.

import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "..", "..");
const shots = join(repo, "docs", "screenshots");
const ECHOFORGE_BIN = process.env.ECHOFORGE_BIN;
const FAKELLM_BIN = process.env.ECHOFORGE_FAKELLM_BIN;
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
if (!ECHOFORGE_BIN || !FAKELLM_BIN) {
  console.error("set ECHOFORGE_BIN and ECHOFORGE_FAKELLM_BIN (see the header of this file)");
  process.exit(2);
}

const children = [];
const dataDir = mkdtempSync(join(tmpdir(), "echoforge-widget-"));
let hostServer;
let browser;

function log(...args) {
  console.log("[widget]", ...args);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts a process and resolves with the first output line matching `pattern`. */
function start(name, bin, args, env, pattern) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${seen.slice(-2000)}`)), 60_000);
    const onData = (chunk) => {
      seen += chunk.toString();
      const m = seen.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolvePromise(m);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}:\n${seen.slice(-2000)}`));
    });
  });
}

async function api(base, method, path, { token, body, origin, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  if (origin) h.origin = origin;
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    h["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const resp = await fetch(base + path, { method, headers: h, body: payload });
  const text = await resp.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: resp.status, headers: resp.headers, json, text };
}

async function expectStatus(promise, status, what) {
  const r = await promise;
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
  return r.json;
}

/** The verification token from the mail in the outbox. */
async function verificationToken(email) {
  const outbox = join(dataDir, "outbox");
  for (let i = 0; i < 200; i++) {
    let files = [];
    try {
      files = readdirSync(outbox).filter((f) => f.endsWith(".eml"));
    } catch {
      /* not there yet */
    }
    for (const f of files) {
      const mail = readFileSync(join(outbox, f), "utf8").replace(/=\r?\n/g, "");
      if (mail.toLowerCase().includes(email) && mail.includes("Verification token: ")) {
        return mail.split("Verification token: ")[1].match(/^[A-Za-z0-9_-]+/)[0];
      }
    }
    await sleep(50);
  }
  throw new Error("no verification mail arrived");
}

const HANDBOOK =
  "# Employee handbook\n\n## Holidays\n\nEvery employee gets twenty-eight paid holiday days per year, booked through the people team.\n\n## Expenses\n\nTravel expenses are reimbursed within fourteen days when receipts are attached.\n";

const ANSWER = "Every employee gets twenty-eight paid holiday days per year [1].";

// Hostile CSS: the widget must look right anyway (it lives in a shadow root).
const HOST_CSS = `
  * { color: #ff00ff !important; font-family: "Comic Sans MS", cursive !important; font-size: 30px !important; }
  button, div, textarea { display: none !important; border: 5px dashed lime !important; }
  body { background: #fffbe6; margin: 40px; }
`;

function hostPage(echoforge, publicId) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme shop</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/host.css">
</head>
<body>
  <h1>Acme shop</h1>
  <p>Welcome to our shop. Questions? Ask our assistant in the corner.</p>
  <script src="${echoforge}/widget.js" data-agent="${publicId}" async></script>
</body></html>`;
}

/** A strict policy, as careful sites send: no inline styles or scripts, one API host. */
function hostPolicy(echoforge) {
  return `default-src 'self'; script-src ${echoforge}; connect-src ${echoforge}; style-src 'self'; img-src 'self' https: data:`;
}

async function main() {
  mkdirSync(shots, { recursive: true });

  // ---- servers ----
  const [, fakeRoot] = await start("fakellm", FAKELLM_BIN, ["--port", "0"], {}, /listening on (http:\/\/\S+)/);
  log("fake LLM at", fakeRoot);
  const [, addr] = await start(
    "echoforge",
    ECHOFORGE_BIN,
    ["--data-dir", dataDir, "serve", "--bind", "127.0.0.1:0"],
    {
      ECHOFORGE__LLM__PROVIDER: "openai",
      ECHOFORGE__LLM__BASE_URL: `${fakeRoot}/v1`,
      ECHOFORGE__LLM__API_KEY: "test-key",
      ECHOFORGE__LLM__MODEL: "fake-model",
      ECHOFORGE__LOG__FORMAT: "json",
      ECHOFORGE__LOG__LEVEL: "info",
    },
    /"address":"(127\.0\.0\.1:\d+)"/
  );
  const base = `http://${addr}`;
  log("echoforge at", base);

  // ---- an owner, a document, an agent ----
  const email = "owner@shop.example";
  const password = "Correct1horse";
  await expectStatus(
    api(base, "POST", "/api/v1/auth/register", {
      body: { email, password, name: "Olive Owner", company_name: "Acme" },
    }),
    201,
    "register"
  );
  const token = await verificationToken(email);
  await expectStatus(api(base, "POST", "/api/v1/auth/verify-email", { body: { token } }), 200, "verify");
  const login = await expectStatus(api(base, "POST", "/api/v1/auth/login", { body: { email, password } }), 200, "login");
  const access = login.access_token;

  const kb = await expectStatus(
    api(base, "POST", "/api/v1/knowledge-bases", { token: access, body: { name: "Handbook" } }),
    201,
    "create knowledge base"
  );
  const form = new FormData();
  form.append("file", new Blob([HANDBOOK], { type: "text/markdown" }), "handbook.md");
  const up = await api(base, "POST", `/api/v1/knowledge-bases/${kb.id}/documents`, { token: access, body: form });
  assert.ok(up.status === 201 || up.status === 202 || up.status === 200, `upload: ${up.status} ${up.text}`);
  const docId = up.json.data[0].id;
  let status = "";
  for (let i = 0; i < 300 && status !== "indexed"; i++) {
    const d = await api(base, "GET", `/api/v1/knowledge-bases/${kb.id}/documents/${docId}`, { token: access });
    status = d.json.status;
    assert.notEqual(status, "failed", `ingestion failed: ${d.text}`);
    if (status !== "indexed") await sleep(100);
  }
  assert.equal(status, "indexed", "the document was indexed");

  const personaName = "Ava <img src=x onerror=window.__xss=1>";
  const agent = await expectStatus(
    api(base, "POST", "/api/v1/agents", {
      token: access,
      body: {
        display_name: personaName,
        template: "customer-support-agent",
        answers: { company_name: "Acme", greeting: "Hello!" },
        enabled_capabilities: ["rag", "widget", "escalation"],
        knowledge_base_ids: [kb.id],
        config: {
          handoff_config: { method: "email", email: "help@acme.example" },
          allowed_domains: ["shop.localhost"],
          position: "bottom-right",
          theme: "light",
          size: "medium",
          colors: { primary: "#0F766E", secondary: "#115E59" },
          welcome_message: "Hi! I'm Ava. Ask me about Acme's policies.",
          placeholder_text: "Ask about holidays, expenses…",
        },
      },
    }),
    201,
    "create agent"
  );
  log("agent", agent.id, "public id", agent.public_id);

  // ---- the host page, reachable as two origins ----
  hostServer = createServer((req, res) => {
    if (req.url === "/host.css") {
      res.writeHead(200, { "content-type": "text/css" });
      res.end(HOST_CSS);
      return;
    }
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": hostPolicy(base),
    });
    res.end(hostPage(base, agent.public_id));
  });
  await new Promise((r) => hostServer.listen(0, "127.0.0.1", r));
  const port = hostServer.address().port;
  const allowed = `http://shop.localhost:${port}`;
  const refused = `http://localhost:${port}`;

  // The server itself refuses the other origin, without any CORS allowance.
  const direct = await api(base, "GET", `/api/v1/widget/${agent.public_id}/config`, { origin: refused });
  assert.equal(direct.status, 403, direct.text);
  assert.equal(direct.headers.get("access-control-allow-origin"), null);
  assert.equal(direct.json.code, "origin_not_allowed");

  // ---- the browser ----
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--host-resolver-rules=MAP shop.localhost 127.0.0.1`,
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // What the widget asked the server, printed if a check fails.
  page.on("response", (r) => {
    if (r.url().includes("/api/v1/widget/")) trail.push(`${r.request().method()} ${r.url()} -> ${r.status()}`);
  });
  page.on("requestfailed", (r) => {
    if (r.url().includes("/api/v1/widget/")) trail.push(`${r.method()} ${r.url()} failed: ${r.failure()?.errorText}`);
  });
  page.on("console", (m) => trail.push(`console: ${m.text()}`));

  await fakeScript(fakeRoot, [
    { tool_calls: [{ name: "search_knowledge", arguments: { query: "paid holiday days per year" } }] },
    { text: ANSWER, chunks: 8, chunk_delay_ms: 150 },
  ]);

  await page.goto(allowed + "/");
  const launcher = page.locator("echoforge-widget .ef-launcher");
  await launcher.waitFor({ state: "visible", timeout: 15_000 });
  log("bubble visible on", allowed);
  await page.screenshot({ path: join(shots, "widget-bubble.png") });

  await launcher.click();
  const panel = page.locator("echoforge-widget .ef-panel");
  await panel.waitFor({ state: "visible" });
  const headerName = await page.locator("echoforge-widget .ef-name").textContent();
  assert.equal(headerName, personaName, "the persona's name is shown as text");
  const welcome = await page.locator("echoforge-widget .ef-assistant").first().textContent();
  assert.ok(welcome.includes("Ask me about Acme's policies"), welcome);
  const placeholder = await page.locator("echoforge-widget .ef-input").getAttribute("placeholder");
  assert.equal(placeholder, "Ask about holidays, expenses…");

  // Ask, and watch the answer arrive in pieces.
  const input = page.locator("echoforge-widget .ef-input");
  await input.fill("How many holiday days do employees get?");
  await input.press("Enter");
  const reply = page.locator("echoforge-widget .ef-assistant").nth(1);
  const seen = new Set();
  const deadline = Date.now() + 30_000;
  let final = "";
  while (Date.now() < deadline) {
    const text = ((await reply.locator(".ef-body").textContent().catch(() => "")) || "").trim();
    if (text) seen.add(text);
    if (text === ANSWER && (await reply.locator(".ef-sources li").count()) > 0) {
      final = text;
      break;
    }
    await sleep(40);
  }
  assert.equal(final, ANSWER, `the answer arrived (saw ${JSON.stringify([...seen])})`);
  const partial = [...seen].filter((t) => t.length < ANSWER.length && ANSWER.startsWith(t));
  assert.ok(partial.length >= 1, `the answer streamed in pieces (saw ${JSON.stringify([...seen])})`);
  const source = await reply.locator(".ef-sources li").first().textContent();
  assert.ok(source.includes("Employee handbook"), `the answer cites the document: ${source}`);
  assert.equal(await page.evaluate(() => window.__xss), undefined, "no markup from the name ran");
  // The host page's CSS did not reach the widget.
  const fontSize = await page.locator("echoforge-widget .ef-body").first().evaluate((e) => getComputedStyle(e).fontSize);
  assert.equal(fontSize, "14px", "the widget is styled (despite the CSP) and the page's CSS does not reach it");
  // The run is over (and stored) when the widget takes input again.
  await page.locator("echoforge-widget .ef-send:not([disabled])").waitFor({ timeout: 15_000 });
  await page.screenshot({ path: join(shots, "widget-answer.png") });
  log("streamed answer with citation:", source.trim());

  // ---- remembered: reload, reopen, the conversation is back ----
  await page.reload();
  await launcher.waitFor({ state: "visible", timeout: 15_000 });
  await launcher.click();
  await page
    .locator("echoforge-widget .ef-assistant .ef-body", { hasText: "twenty-eight" })
    .waitFor({ state: "visible", timeout: 15_000 });
  const userMsgs = await page.locator("echoforge-widget .ef-user").allTextContents();
  assert.deepEqual(userMsgs, ["How many holiday days do employees get?"], "the history came back");
  const reloadedSource = await page.locator("echoforge-widget .ef-sources li").first().textContent();
  assert.ok(reloadedSource.includes("Employee handbook"), reloadedSource);
  log("conversation restored after reload");

  // ---- network loss: the message waits for the connection and then goes through ----
  await fakeScript(fakeRoot, [{ text: "Expenses are reimbursed within fourteen days.", chunks: 3 }]);
  await context.setOffline(true);
  await input.fill("And expenses?");
  await input.press("Enter");
  await page
    .locator("echoforge-widget .ef-notice.ef-show")
    .waitFor({ state: "visible", timeout: 10_000 });
  const notice = await page.locator("echoforge-widget .ef-notice").textContent();
  assert.ok(/offline|reconnect/i.test(notice), notice);
  await page.screenshot({ path: join(shots, "widget-offline.png") });
  await sleep(1500);
  await context.setOffline(false);
  await page
    .locator("echoforge-widget .ef-assistant .ef-body", { hasText: "fourteen days" })
    .waitFor({ state: "visible", timeout: 30_000 });
  assert.equal(await page.locator("echoforge-widget .ef-notice.ef-show").count(), 0, "the notice went away");
  const convRequests = (await (await fetch(`${fakeRoot}/_fakellm/requests`)).json()).length;
  log("answer delivered after the connection came back");

  // ---- live handoff: a person takes over in the open widget, and gives it back ----
  await input.fill("Can I talk to a human, please?");
  await input.press("Enter");
  await page
    .locator("echoforge-widget .ef-assistant .ef-body", { hasText: "in the queue" })
    .waitFor({ state: "visible", timeout: 15_000 });
  const inbox = await expectStatus(api(base, "GET", "/api/v1/handoffs", { token: access }), 200, "the inbox");
  assert.equal(inbox.data.length, 1, JSON.stringify(inbox));
  const handoff = inbox.data[0];
  await expectStatus(
    api(base, "POST", `/api/v1/handoffs/${handoff.id}/claim`, { token: access, body: {} }),
    200,
    "claim"
  );
  await page
    .locator("echoforge-widget .ef-handoff", { hasText: "Olive Owner joined" })
    .waitFor({ state: "visible", timeout: 15_000 });
  const sentAt = Date.now();
  await expectStatus(
    api(base, "POST", `/api/v1/handoffs/${handoff.id}/messages`, {
      token: access,
      body: { content: "Hi, I'm Olive. How can I help?" },
    }),
    201,
    "the operator's reply"
  );
  const human = page.locator("echoforge-widget .ef-human");
  await human.waitFor({ state: "visible", timeout: 10_000 });
  const shownAfter = Date.now() - sentAt;
  assert.equal(await human.locator(".ef-author").textContent(), "Olive Owner");
  assert.equal(await human.locator(".ef-body").textContent(), "Hi, I'm Olive. How can I help?");
  // The bot is silent while the person answers.
  const assistantsBefore = await page.locator("echoforge-widget .ef-assistant").count();
  const modelCallsBefore = (await (await fetch(`${fakeRoot}/_fakellm/requests`)).json()).length;
  await input.fill("My order number is 1234");
  await input.press("Enter");
  await page.locator("echoforge-widget .ef-send:not([disabled])").waitFor({ timeout: 15_000 });
  assert.equal(await page.locator("echoforge-widget .ef-assistant").count(), assistantsBefore, "no bot reply");
  const modelCallsAfter = (await (await fetch(`${fakeRoot}/_fakellm/requests`)).json()).length;
  assert.equal(modelCallsAfter, modelCallsBefore, "no model call while a person answers");
  await page.screenshot({ path: join(shots, "widget-handoff.png") });
  await expectStatus(
    api(base, "POST", `/api/v1/handoffs/${handoff.id}/return`, { token: access, body: {} }),
    200,
    "return to the bot"
  );
  await page
    .locator("echoforge-widget .ef-handoff", { hasText: "again" })
    .waitFor({ state: "visible", timeout: 15_000 });
  log(`live handoff: the operator's reply showed in the widget ${shownAfter} ms after it was sent`);

  // ---- a refused origin: no bubble, no answer ----
  const other = await context.newPage();
  const refusedConfig = [];
  other.on("requestfailed", (r) => {
    if (r.url().includes("/api/v1/widget/")) refusedConfig.push(r.failure()?.errorText || "failed");
  });
  const consoleLines = [];
  other.on("console", (m) => consoleLines.push(m.text()));
  await other.goto(refused + "/");
  // The widget tries a few times (it cannot tell a refusal from a network error), then gives up.
  const gaveUp = Date.now() + 20_000;
  while (Date.now() < gaveUp && !consoleLines.some((l) => l.includes("EchoForge widget"))) await sleep(100);
  assert.ok(consoleLines.some((l) => l.includes("EchoForge widget")), `the widget gave up: ${consoleLines}`);
  assert.equal(await other.locator("echoforge-widget .ef-launcher").count(), 0, "no bubble on a refused origin");
  assert.equal(await other.locator("echoforge-widget .ef-assistant").count(), 0, "no answer on a refused origin");
  assert.ok(refusedConfig.length >= 1, "the browser blocked the refused responses");
  const afterRefused = (await (await fetch(`${fakeRoot}/_fakellm/requests`)).json()).length;
  assert.equal(afterRefused, convRequests, "nothing from the refused origin reached the model");
  await other.screenshot({ path: join(shots, "widget-refused-origin.png") });
  log("refused origin: no bubble;", refusedConfig.length, "blocked requests");

  // ---- the look follows the agent's settings: dark theme, open delay, hidden on phones ----
  await expectStatus(
    api(base, "PATCH", `/api/v1/agents/${agent.id}`, {
      token: access,
      body: {
        version: agent.version,
        config: {
          handoff_config: { method: "email", email: "help@acme.example" },
          allowed_domains: ["shop.localhost"],
          position: "bottom-left",
          theme: "dark",
          size: "large",
          colors: { primary: "#7C3AED", secondary: "#5B21B6" },
          welcome_message: "Good evening! Ask me anything about Acme.",
          trigger: { show_on_mobile: false, delay_seconds: 2 },
        },
      },
    }),
    200,
    "update the widget settings"
  );
  const later = await context.newPage();
  const opened = Date.now();
  await later.goto(allowed + "/");
  const lateLauncher = later.locator("echoforge-widget .ef-launcher");
  await lateLauncher.waitFor({ state: "visible", timeout: 15_000 });
  assert.ok(Date.now() - opened >= 1800, `the bubble waited for its delay (${Date.now() - opened} ms)`);
  await lateLauncher.click();
  assert.ok(await later.locator("echoforge-widget .ef-root.ef-dark.ef-left").count(), "dark, on the left");
  await later.locator("echoforge-widget .ef-assistant .ef-body", { hasText: "twenty-eight" }).waitFor({ timeout: 15_000 });
  await later.screenshot({ path: join(shots, "widget-dark.png") });
  const phone = await browser.newContext({ viewport: { width: 390, height: 800 }, isMobile: true });
  const phonePage = await phone.newPage();
  await phonePage.goto(allowed + "/");
  await phonePage.locator("echoforge-widget").waitFor({ state: "attached", timeout: 15_000 });
  assert.equal(await phonePage.locator("echoforge-widget .ef-launcher").isVisible(), false, "hidden on phones");
  await phonePage.screenshot({ path: join(shots, "widget-phone-hidden.png") });
  await phone.close();
  log("settings applied: dark theme, left, 2 s delay, hidden on phones");

  assert.deepEqual(pageErrors, [], "no script errors on the page");
  const violations = trail.filter((l) => l.includes("Content Security Policy"));
  assert.deepEqual(violations, [], "the widget works under the page's strict CSP");
  log("all widget checks passed");
}

async function fakeScript(root, replies) {
  const r = await fetch(`${root}/_fakellm/replies`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(replies),
  });
  assert.ok(r.ok, `scripting the fake LLM: ${r.status} ${await r.text()}`);
}

let failed = false;
const trail = [];
process.on("exit", () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
});
process.on("uncaughtException", (e) => {
  console.error("[widget] FAILED (uncaught):", e);
  process.exit(1);
});
const watchdog = setTimeout(() => {
  console.error("[widget] timed out");
  failed = true;
  cleanup().then(() => process.exit(1));
}, 240_000);

async function cleanup() {
  try {
    if (browser) await browser.close();
  } catch {
    /* already gone */
  }
  if (hostServer) hostServer.close();
  for (const c of children) {
    if (c.exitCode === null) c.kill("SIGTERM");
  }
  await sleep(300);
  for (const c of children) {
    if (c.exitCode === null) c.kill("SIGKILL");
  }
  if (!process.env.KEEP_DATA) rmSync(dataDir, { recursive: true, force: true });
}

try {
  await main();
} catch (e) {
  failed = true;
  console.error("[widget] FAILED:", e && e.stack ? e.stack : e);
  console.error("[widget] widget requests and console:\n  " + trail.join("\n  "));
} finally {
  clearTimeout(watchdog);
  await cleanup();
}
process.exit(failed ? 1 : 0);
