// Runs every browser test file here (each starts its own server) and fails if any fails.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const files = readdirSync(here).filter((f) => f.endsWith('.mjs') && !['harness.mjs', 'run-all.mjs'].includes(f)).sort();
let failed = 0;
for (const f of files) {
  console.log(`== ${f}`);
  const r = spawnSync(process.execPath, [join(here, f)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
if (failed) { console.log(`${failed} browser test file(s) failed`); process.exit(1); }
