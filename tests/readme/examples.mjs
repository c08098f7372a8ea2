// Runs every ```sh example of README.md, in order, against a fresh
// tourney-stats on a free loopback port, so the examples cannot rot.
// A command must exit 0 (curl -f semantics are added: an HTTP error fails
// it, except for examples whose shown answer is a problem+json); when a
// ```json block follows, the answer must be JSON with the same fields,
// recursively, and the same values except where the README shows "...".
// Usage: node tests/readme/examples.mjs [README.md]   (TS_TEST_BIN: binary)
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const readme = process.argv[2] ?? 'README.md';
const bin = process.env.TS_TEST_BIN ?? 'build/tourney-stats';

// Blocks in order: {lang, text}.
function blocks(md) {
  const out = [];
  const re = /^```(\w+)\n([\s\S]*?)^```$/gm;
  let m;
  while ((m = re.exec(md)) !== null) out.push({ lang: m[1], text: m[2] });
  return out;
}

// Commands of a sh block: lines joined at trailing backslashes.
function commands(text) {
  return text.replace(/\\\n\s*/g, ' ').split('\n').map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

// Same shape and values, with "..." in the README matching anything.
function matches(want, got, path = '$') {
  if (want === '...') return [];
  if (Array.isArray(want)) {
    if (!Array.isArray(got) || got.length !== want.length)
      return [`${path}: want an array of ${want.length}, got ${JSON.stringify(got)}`];
    return want.flatMap((w, i) => matches(w, got[i], `${path}[${i}]`));
  }
  if (want && typeof want === 'object') {
    if (!got || typeof got !== 'object' || Array.isArray(got))
      return [`${path}: want an object, got ${JSON.stringify(got)}`];
    const wk = Object.keys(want).sort().join(','), gk = Object.keys(got).sort().join(',');
    if (wk !== gk) return [`${path}: fields ${gk}, README shows ${wk}`];
    return Object.keys(want).flatMap((k) => matches(want[k], got[k], `${path}.${k}`));
  }
  return want === got ? [] : [`${path}: README shows ${JSON.stringify(want)}, got ${JSON.stringify(got)}`];
}

async function startServer(dir) {
  const child = spawn(bin, [], {
    env: { ...process.env, TS_PORT: '0', TS_BIND: '127.0.0.1', TS_STORE: 'sqlite',
           TS_SQLITE_PATH: join(dir, 'readme.db'), TS_INGEST_API_KEY: '' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start')), 10000);
    lines.on('line', (l) => {
      try {
        const j = JSON.parse(l);
        if (j.msg === 'listening') { clearTimeout(timer); resolve(j.port); }
      } catch { /* not a log line */ }
    });
    child.on('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  return { child, port };
}

const dir = mkdtempSync(join(tmpdir(), 'ts-readme-'));
let passed = 0, failed = 0;
const { child, port } = await startServer(dir);
try {
  const bs = blocks(readFileSync(readme, 'utf8'));
  for (let i = 0; i < bs.length; i++) {
    if (bs[i].lang !== 'sh') continue;
    const cmds = commands(bs[i].text).filter((c) => c.startsWith('curl '));
    const want = bs[i + 1]?.lang === 'json' ? JSON.parse(bs[i + 1].text) : undefined;
    for (const cmd of cmds) {
      const problem = want && typeof want === 'object' && 'code' in want && 'status' in want;
      const run = cmd.replaceAll('localhost:8080', `127.0.0.1:${port}`)
        .replace(/^curl /, problem ? 'curl ' : 'curl -f ');
      let out = '', errs = [];
      try {
        out = execFileSync('bash', ['-c', run], { encoding: 'utf8', timeout: 10000 });
      } catch (e) {
        errs = [`exit ${e.status}: ${e.stderr || e.message}`];
      }
      if (!errs.length && out.length === 0) errs = ['no output'];
      if (!errs.length && want !== undefined && cmds.length === 1) {
        try { errs = matches(want, JSON.parse(out)); }
        catch { errs = [`not JSON: ${out.slice(0, 200)}`]; }
      }
      if (errs.length) {
        failed++;
        console.log(`FAIL ${cmd}\n  ${errs.join('\n  ')}\n  output: ${out.slice(0, 300)}`);
      } else {
        passed++;
        console.log(`ok   ${cmd.slice(0, 100)}`);
      }
    }
  }
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
if (passed === 0) failed++;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
