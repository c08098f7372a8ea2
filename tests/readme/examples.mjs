// Runs every ```sh example of README.md, in order, against a fresh
// tourney-stats on a free loopback port, so the examples cannot rot.
// A command must exit 0 (curl -f semantics are added: an HTTP error fails
// it, except for examples whose shown answer is a problem+json); when a
// ```json block follows, the answer must be JSON with the same fields,
// recursively, and the same values except where the README shows "...".
// Usage: node tests/readme/examples.mjs [README.md]   (TS_TEST_BIN: binary)
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const readme = process.argv[2] ?? 'README.md';
const bin = process.env.TS_TEST_BIN ?? 'build/tourney-stats';

// Blocks in order: {lang, tag, text}; "```sh aws" has lang sh, tag aws.
function blocks(md) {
  const out = [];
  const re = /^```(\w+)(?: (\w+))?\n([\s\S]*?)^```$/gm;
  let m;
  while ((m = re.exec(md)) !== null) out.push({ lang: m[1], tag: m[3] === undefined ? undefined : m[2], text: m[3] });
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
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { parseTemplate } = await import('../deploy/check-template.mjs');

// results: [[command, errors]]
function report(results) {
  for (const [cmd, errs] of results) {
    if (errs.length) { failed++; console.log(`FAIL ${cmd.slice(0, 100)}\n  ${errs.join('\n  ')}`); }
    else { passed++; console.log(`ok   ${cmd.slice(0, 100)}`); }
  }
}

// Arguments of a command line, shell-style quotes removed.
function argv(cmd) {
  return [...cmd.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]);
}

// "```sh aws" blocks need AWS: not run, but what they name must exist.
function checkAwsBlock(cmds) {
  return cmds.map((cmd) => {
    const a = argv(cmd);
    const errs = [];
    const opt = (name) => { const k = a.indexOf(name); return k >= 0 ? a[k + 1] : undefined; };
    if (a[0] === 'aws' && a[1] === 'cloudformation' && a[2] === 'deploy') {
      const file = opt('--template-file');
      let tpl = null;
      if (!file || !existsSync(join(root, file))) errs.push(`no template ${file}`);
      else ({ tpl } = parseTemplate(readFileSync(join(root, file), 'utf8')));
      if (!tpl) { errs.push('the template does not parse'); return [cmd, errs]; }
      const k = a.indexOf('--parameter-overrides');
      const given = new Set();
      for (let j = k + 1; k >= 0 && j < a.length && !a[j].startsWith('--'); j++) given.add(a[j].split('=')[0]);
      for (const p of given) if (!tpl.Parameters?.[p]) errs.push(`--parameter-overrides ${p}: not a parameter of ${file}`);
      for (const [p, d] of Object.entries(tpl.Parameters ?? {}))
        if (!('Default' in d) && !given.has(p)) errs.push(`parameter ${p} has no default and is not given`);
      if (!(opt('--capabilities') ?? '').includes('CAPABILITY_IAM')) errs.push('the stack makes IAM roles: --capabilities CAPABILITY_IAM');
    } else if (a[0] === 'aws' && a[1] === 'dynamodb' && a[2] === 'put-item') {
      const { tpl } = parseTemplate(readFileSync(join(root, 'deploy', 'cloudformation.yaml'), 'utf8'));
      const games = tpl.Resources.GamesTable.Properties;
      if (opt('--table-name') !== tpl.Parameters.SourceTableName.Default) errs.push(`--table-name is not the games table (${tpl.Parameters.SourceTableName.Default})`);
      let item = null;
      try { item = JSON.parse(opt('--item')); } catch { errs.push('--item is not JSON'); }
      if (item) {
        const key = games.KeySchema[0].AttributeName;
        if (!item[key]?.S) errs.push(`the item lacks the games table's key ${key} (S)`);
        if (!item.player?.S && !item.player?.N) errs.push('the item has no player');
        if (!item.score?.N) errs.push('the item has no score (N)');
      }
    } else if (!['aws', 'docker', 'curl'].includes(a[0])) {
      errs.push(`${a[0]}: not a command this check knows (aws, docker, curl)`);
    }
    return [cmd, errs];
  });
}

function freePort() {
  return Number(execFileSync('node', ['-e',
    'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'],
  { encoding: 'utf8' }));
}

// "```sh stack" blocks run in order against deploy/local-stack.sh's stack
// (its port in place of localhost:8090); the stack is stopped whatever
// happens.
function runStackBlock(cmds) {
  const port = freePort();
  const env = { ...process.env, TS_STACK_DIR: join(dir, 'stack'), TS_STACK_PORT: String(port), TS_BIN: resolve(bin) };
  delete env.TS_INGEST_API_KEY;
  const results = [];
  try {
    for (const cmd of cmds) {
      const curl = cmd.startsWith('curl ');
      const run = cmd.replaceAll('localhost:8090', `127.0.0.1:${port}`).replace(/^curl /, 'curl -f ');
      let out = '', errs = [];
      try { out = execFileSync('bash', ['-c', run], { cwd: root, env, encoding: 'utf8', timeout: 60000 }); }
      catch (e) { errs = [`exit ${e.status}: ${e.stderr || e.message}`]; }
      if (!errs.length && curl) {
        try { JSON.parse(out); } catch { errs = [`not JSON: ${out.slice(0, 200)}`]; }
      }
      results.push([cmd, errs]);
      if (errs.length) break;
    }
  } finally {
    try { execFileSync(join(root, 'deploy', 'local-stack.sh'), ['stop'], { env, stdio: 'ignore' }); } catch { /* reported by the block */ }
  }
  return results;
}
const { child, port } = await startServer(dir);
try {
  const bs = blocks(readFileSync(readme, 'utf8'));
  for (let i = 0; i < bs.length; i++) {
    if (bs[i].lang !== 'sh') continue;
    if (bs[i].tag === 'aws') { report(checkAwsBlock(commands(bs[i].text))); continue; }
    if (bs[i].tag === 'stack') { report(runStackBlock(commands(bs[i].text))); continue; }
    if (bs[i].tag) { report([[`a sh block tagged ${bs[i].tag}`, [`unknown tag (aws or stack)`]]]); continue; }
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
