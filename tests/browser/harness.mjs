// Shared helpers for the browser tests: start the real `echoforge` binary and the scripted fake
// model (`fakellm`) on free ports with a fresh data directory, read mail from the outbox, and
// launch Debian's Chromium through playwright-core.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SCREENSHOTS = join(ROOT, 'docs', 'screenshots');
mkdirSync(SCREENSHOTS, { recursive: true });

const children = [];
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

function bin(envName, name) {
  const path = process.env[envName];
  if (path) return path;
  const target = process.env.CARGO_TARGET_DIR || join(ROOT, 'target');
  return join(target, 'debug', name);
}

/** Starts the fake model; resolves to {url, script(replies), requests(), stop()}. */
export async function startFake() {
  const child = spawn(bin('ECHOFORGE_FAKELLM_BIN', 'fakellm'), ['--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (\S+)/);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`fakellm exited with ${code}`)));
  });
  return {
    url,
    async script(replies) {
      const r = await fetch(`${url}/_fakellm/replies`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(replies) });
      if (!r.ok) throw new Error(`scripting the fake failed: ${r.status} ${await r.text()}`);
    },
    async requests() { return (await fetch(`${url}/_fakellm/requests`)).json(); },
    stop() { child.kill('SIGTERM'); },
  };
}

/** Starts `echoforge serve` with embedded defaults; resolves to {base, dataDir, stop()}. */
export async function startServer({ fakeUrl, env = {} } = {}) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const dataDir = mkdtempSync(join(tmpdir(), 'echoforge-browser-'));
  const llm = fakeUrl
    ? { ECHOFORGE__LLM__PROVIDER: 'openai', ECHOFORGE__LLM__BASE_URL: `${fakeUrl}/v1`, ECHOFORGE__LLM__API_KEY: 'test-key', ECHOFORGE__LLM__MODEL: 'fake-model' }
    : { ECHOFORGE__LLM__PROVIDER: 'none' };
  const child = spawn(bin('ECHOFORGE_BIN', 'echoforge'), ['serve', '--data-dir', dataDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      ECHOFORGE__SERVER__BIND: `127.0.0.1:${port}`,
      ECHOFORGE__SERVER__PUBLIC_URL: base,
      ECHOFORGE__LOG__LEVEL: 'warn',
      ...llm,
      ...env,
    },
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  children.push(child);
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.ok) return { base, dataDir, stop: () => child.kill('SIGTERM'), logs: () => stderr };
    } catch { /* not up yet */ }
    if (child.exitCode !== null) throw new Error(`echoforge exited: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`echoforge did not become ready: ${stderr}`);
}

/** The newest mail to `to` in the outbox whose text contains `marker`, decoded. */
export async function mailTo(dataDir, to, marker) {
  const dir = join(dataDir, 'outbox');
  for (let i = 0; i < 200; i++) {
    let files = [];
    try { files = readdirSync(dir).filter((f) => f.endsWith('.eml')).sort().reverse(); } catch { /* not yet */ }
    for (const f of files) {
      const raw = readFileSync(join(dir, f), 'utf8');
      const text = raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
      if (text.includes(to) && text.includes(marker)) return text;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no mail to ${to} containing ${marker}`);
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export async function shot(page, name) {
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

let failures = 0;
/** Runs one named check; a failure is reported and makes the process exit non-zero. */
export let currentPage = null;
export function watch(page) { currentPage = page; }
export async function check(name, fn) {
  const started = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
    if (currentPage) {
      const path = join(tmpdir(), `echoforge-fail-${failures}.png`);
      try {
        await currentPage.screenshot({ path, fullPage: true });
        console.log(`     at ${currentPage.url()} (screenshot: ${path})`);
      } catch { /* page gone */ }
    }
  }
}
export function done() {
  if (failures) { console.log(`${failures} check(s) failed`); process.exit(1); }
  process.exit(0);
}

export function assert(cond, message) {
  if (!cond) throw new Error(`assertion failed: ${message}`);
}
