// Browser test of the dashboard served at GET /: starts the real binary on a
// free port with a temporary SQLite file, drives Debian's chromium through
// playwright-core, and checks what a user sees against what the API answers.
//   node tests/browser/dashboard.test.mjs
// env: TS_TEST_BIN (default build/tourney-stats), TS_TEST_OUT (default
// tests/out/browser/, gets dashboard.png and dashboard-mobile.png).
// The last line printed is "N passed, M failed"; the exit status is 0 only
// when nothing failed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
// playwright-core lives with the other test tools, not next to this file.
const { chromium } = createRequire(join(root, 'tests', 'tools', 'package.json'))('playwright-core');

const BIN = resolve(process.env.TS_TEST_BIN || join(root, 'build', 'tourney-stats'));
const OUT = process.env.TS_TEST_OUT ? resolve(process.env.TS_TEST_OUT) : join(root, 'tests', 'out', 'browser');
const REFRESH_WAIT = 8000; // the page refreshes every 3 s; allow two ticks and slack
const PAGE_MAX_BYTES = 20 * 1024;

// Names that would run code if the page ever put data into markup.
const XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">';
const EMOJI = '🎲 Zoë 🏆 «名人»';
const UNKNOWN = 'nobody <b>here</b>';

// [player, score, winner]; orders by wins, avg_score and win_percent differ.
const GAMES = [
  ['alice', '10', true], ['alice', '12', true], ['alice', '8', false], ['alice', '14', true],
  ['bob', '30', true], ['bob', '25.5', true],
  [XSS, '5', true], [XSS, '5', false], [XSS, '6', false],
  [EMOJI, '20.25', true], [EMOJI, '19', false], [EMOJI, '21', true], [EMOJI, '22', false], [EMOJI, '18.5', false],
  ['dave', '50', false],
];

const ctx = { tmp: null, server: null, serverLog: [], exit: null, base: null, browser: null, page: null,
  pageErrors: [], consoleErrors: [], external: [], navigations: 0 };

function startServer() {
  ctx.tmp = mkdtempSync(join(tmpdir(), 'ts-browser-'));
  const env = { ...process.env, TS_PORT: '0', TS_BIND: '127.0.0.1', TS_SQLITE_PATH: join(ctx.tmp, 'x.db'),
    TS_STORE: 'sqlite', TS_LOG_LEVEL: 'info' };
  delete env.TS_INGEST_API_KEY;
  const child = spawn(BIN, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  ctx.server = child;
  ctx.exit = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal })));
  return new Promise((res, rej) => {
    let buf = '';
    const t = setTimeout(() => rej(new Error('no "listening" log line within 10 s')), 10000);
    child.on('error', (e) => { clearTimeout(t); rej(e); });
    child.on('exit', (code, signal) => { clearTimeout(t); rej(new Error(`server exited early (${code ?? signal})`)); });
    child.stderr.on('data', (d) => ctx.serverLog.push(String(d)));
    child.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        ctx.serverLog.push(line);
        try {
          const j = JSON.parse(line);
          if (j.msg === 'listening' && j.port) { clearTimeout(t); res(j.port); }
        } catch { /* not a JSON line */ }
      }
    });
  });
}

async function api(path, init) {
  const r = await fetch(ctx.base + path, init);
  return { status: r.status, type: r.headers.get('content-type'), body: await r.json() };
}

function record(i, [player, score, winner]) {
  return { eventID: `ev-${i}`, eventName: 'INSERT',
    dynamodb: { SequenceNumber: String(1000 + i),
      NewImage: { player: { S: player }, score: { N: score }, winner: { BOOL: winner } } } };
}

// What the table shows, read from the DOM.
const readRows = () => ctx.page.$$eval('[data-testid="leaderboard-row"]', (rows) => rows.map((r) => {
  const v = (c) => r.querySelector(`[data-col="${c}"]`);
  return { rank: Number(v('rank').dataset.value), player: r.dataset.player, text: v('player').textContent,
    games: Number(v('games').dataset.value), wins: Number(v('wins').dataset.value),
    win_percent: Number(v('win_percent').dataset.value), avg_score: Number(v('avg_score').dataset.value),
    shown: [v('games'), v('wins'), v('win_percent'), v('avg_score')].map((e) => e.textContent) };
}));

function sameAsApi(rows, players) {
  assert.equal(rows.length, players.length, 'row count');
  const fmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });
  players.forEach((p, i) => {
    const r = rows[i];
    assert.deepEqual(
      { rank: r.rank, player: r.player, text: r.text, games: r.games, wins: r.wins, win_percent: r.win_percent, avg_score: r.avg_score },
      { rank: p.rank, player: p.player, text: p.player, games: p.games, wins: p.wins, win_percent: p.win_percent, avg_score: p.avg_score },
      `row ${i + 1}`);
    assert.deepEqual(r.shown, [p.games, p.wins, p.win_percent, p.avg_score].map((n) => fmt.format(n)), `row ${i + 1} text`);
  });
}

async function waitBy(by) {
  await ctx.page.waitForFunction((b) => document.getElementById('leaderboard').dataset.by === b
    && document.querySelectorAll('[data-testid="leaderboard-row"]').length > 0, by, { timeout: REFRESH_WAIT });
}

async function search(name) {
  await ctx.page.getByLabel('Player name').fill(name);
  await ctx.page.getByRole('button', { name: 'Show', exact: true }).click();
}

const steps = [
  ['server starts on a free port', true, async () => {
    assert.ok(existsSync(BIN), `no binary at ${BIN} (set TS_TEST_BIN)`);
    const port = await startServer();
    ctx.base = `http://127.0.0.1:${port}`;
  }],
  ['chromium launches', true, async () => {
    ctx.browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, timeout: 20000,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'] });
    const bctx = await ctx.browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light',
      locale: 'en-US', timezoneId: 'UTC' });
    const page = ctx.page = await bctx.newPage();
    page.setDefaultTimeout(REFRESH_WAIT);
    page.on('pageerror', (e) => ctx.pageErrors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') ctx.consoleErrors.push(m.text()); });
    page.on('request', (r) => { if (!r.url().startsWith(ctx.base + '/')) ctx.external.push(r.url()); });
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) ctx.navigations++; });
  }],
  ['GET / serves one small HTML page', true, async () => {
    const r = await ctx.page.goto(ctx.base + '/');
    assert.equal(r.status(), 200);
    assert.match(r.headers()['content-type'], /^text\/html/);
    const bytes = (await r.body()).length;
    assert.ok(bytes > 0 && bytes < PAGE_MAX_BYTES, `page is ${bytes} bytes`);
    assert.equal(await ctx.page.title(), 'tourney-stats');
  }],
  ['empty store: the leaderboard says so and the chart has no bars', true, async () => {
    await ctx.page.getByTestId('leaderboard-empty').waitFor();
    await ctx.page.waitForSelector('#updated');
    assert.equal(await ctx.page.getByTestId('leaderboard-row').count(), 0);
    assert.equal(await ctx.page.getByTestId('chart-bar').count(), 0);
    assert.equal((await api('/v1/leaderboard?limit=10')).body.players.length, 0);
    assert.ok(await ctx.page.getByTestId('error').isHidden());
  }],
  ['controls are labelled', false, async () => {
    assert.equal(await ctx.page.getByLabel('Rank by').getAttribute('id'), 'by');
    assert.equal(await ctx.page.getByLabel('Player name').getAttribute('id'), 'player');
    assert.equal(await ctx.page.locator('svg#chart').getAttribute('role'), 'img');
  }],
  ['posted records appear through the auto-refresh, without a reload', true, async () => {
    await ctx.page.evaluate(() => { window.__sentinel = 'still here'; });
    const before = await ctx.page.locator('#updated').getAttribute('datetime');
    const r = await api('/v1/stream-records', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ Records: GAMES.map((g, i) => record(i, g)) }) });
    assert.equal(r.status, 200);
    assert.equal(r.body.applied, GAMES.length, JSON.stringify(r.body));
    const t0 = Date.now();
    await ctx.page.waitForFunction(() => document.querySelectorAll('[data-testid="leaderboard-row"]').length === 5,
      null, { timeout: REFRESH_WAIT });
    const waited = Date.now() - t0;
    assert.equal(await ctx.page.evaluate(() => window.__sentinel), 'still here', 'page was reloaded');
    assert.equal(ctx.navigations, 1, 'page navigated again');
    assert.notEqual(await ctx.page.locator('#updated').getAttribute('datetime'), before, '"updated" time did not move');
    console.log(`  (rows appeared ${waited} ms after the POST)`);
  }],
  ['ranks and values match GET /v1/leaderboard?by=wins', false, async () => {
    await waitBy('wins');
    const want = (await api('/v1/leaderboard?by=wins&limit=10')).body.players;
    sameAsApi(await readRows(), want);
    assert.equal(want[0].player, 'alice');
  }],
  ['player names are shown as text, never run as markup', false, async () => {
    assert.equal(await ctx.page.evaluate(() => window.__pwned), undefined, 'injected code ran');
    assert.equal(await ctx.page.locator('main script, main img, #chart foreignObject').count(), 0);
    const texts = await ctx.page.$$eval('[data-testid="leaderboard-row"] [data-col="player"]', (c) => c.map((e) => e.textContent));
    assert.ok(texts.includes(XSS), 'XSS name not shown verbatim');
    assert.ok(texts.includes(EMOJI), 'emoji name not shown verbatim');
  }],
  ['switching "Rank by" reorders the table as the API does', false, async () => {
    const byWins = (await readRows()).map((r) => r.player);
    await ctx.page.getByLabel('Rank by').selectOption('avg_score');
    await waitBy('avg_score');
    const want = (await api('/v1/leaderboard?by=avg_score&limit=10')).body.players;
    const rows = await readRows();
    sameAsApi(rows, want);
    assert.notDeepEqual(rows.map((r) => r.player), byWins, 'order did not change');
    assert.equal(rows[0].player, 'dave');
    assert.equal(await ctx.page.locator('th[aria-sort="descending"]').textContent(), 'Avg score');
  }],
  ['the SVG chart has one bar per top player, sized by win percent', false, async () => {
    await ctx.page.getByLabel('Rank by').selectOption('win_percent');
    await waitBy('win_percent');
    const want = (await api('/v1/leaderboard?by=win_percent&limit=10')).body.players;
    const bars = await ctx.page.$$eval('[data-testid="chart-bar"]', (b) => b.map((e) => ({
      player: e.dataset.player, value: Number(e.dataset.value), width: Number(e.getAttribute('width')),
      full: Number(e.previousElementSibling.getAttribute('width')) })));
    assert.equal(bars.length, want.length);
    assert.deepEqual(bars.map((b) => [b.player, b.value]), want.map((p) => [p.player, p.win_percent]));
    for (const b of bars) assert.ok(Math.abs(b.width - b.full * b.value / 100) <= 0.1, `bar of ${b.player}`);
    assert.equal(await ctx.page.locator('#chart > title').count(), 1);
    const desc = await ctx.page.locator('#chart > desc').textContent();
    for (const p of want) assert.ok(desc.includes(p.player), `desc lacks ${p.player}`);
  }],
  ['searching an unknown player shows the not-found problem', false, async () => {
    const r = await api(`/v1/players/${encodeURIComponent(UNKNOWN)}/stats`);
    assert.equal(r.status, 404);
    await search(UNKNOWN);
    const box = ctx.page.getByTestId('player-not-found');
    await box.waitFor();
    const text = await box.textContent();
    assert.ok(text.includes(`No such player: “${UNKNOWN}”`), text);
    assert.ok(text.toLowerCase().includes(r.body.detail.toLowerCase()), `detail missing: ${text}`);
  }],
  ['searching a player shows its stats as the API has them', false, async () => {
    const want = (await api(`/v1/players/${encodeURIComponent(EMOJI)}/stats`)).body;
    await search(EMOJI);
    await ctx.page.waitForFunction((n) => document.querySelector('[data-testid="player-stats"]')?.dataset.player === n, EMOJI);
    assert.equal(await ctx.page.getByTestId('stat-player').textContent(), EMOJI);
    for (const k of ['games', 'wins', 'losses', 'win_percent', 'avg_score', 'total_score'])
      assert.equal(Number(await ctx.page.getByTestId(`stat-${k}`).getAttribute('data-value')), want[k], k);
    assert.deepEqual([want.games, want.wins, want.total_score], [5, 2, 100.75]);
  }],
  ['a player name in the table opens its stats', false, async () => {
    await ctx.page.locator('[data-testid="leaderboard-row"] button', { hasText: 'window.__pwned=1' }).click();
    await ctx.page.waitForFunction((n) => document.querySelector('[data-testid="player-stats"]')?.dataset.player === n, XSS);
    assert.equal(await ctx.page.getByTestId('stat-player').textContent(), XSS);
    assert.equal(await ctx.page.getByTestId('stat-games').getAttribute('data-value'), '3');
    assert.equal(await ctx.page.evaluate(() => window.__pwned), undefined);
    await search(EMOJI); // leave the nicer name on screen for the screenshot
    await ctx.page.waitForFunction((n) => document.querySelector('[data-testid="player-stats"]')?.dataset.player === n, EMOJI);
  }],
  ['a failing API is reported on the page, which keeps its data and recovers', false, async () => {
    const page = ctx.page;
    await page.route('**/v1/leaderboard**', (r) => r.fulfill({ status: 503, headers: { 'Retry-After': '1' },
      contentType: 'application/problem+json',
      body: JSON.stringify({ type: 'about:blank', title: 'Unavailable', status: 503, detail: 'store is busy (test)', code: 'store-unavailable' }) }));
    await page.getByTestId('error').filter({ hasText: 'store is busy (test)' }).waitFor();
    assert.ok(await page.locator('#status.stale').isVisible());
    await page.unroute('**/v1/leaderboard**');
    await page.route('**/v1/leaderboard**', (r) => r.abort('connectionrefused'));
    await page.getByTestId('error').filter({ hasText: 'cannot be reached' }).waitFor();
    assert.equal(await page.getByTestId('leaderboard-row').count(), 5, 'rows lost during the outage');
    await page.unroute('**/v1/leaderboard**');
    await page.getByTestId('error').waitFor({ state: 'hidden' });
    assert.equal(await page.locator('#status.stale').count(), 0);
  }],
  ['at 360 px nothing overflows the viewport; screenshots saved', false, async () => {
    const page = ctx.page;
    mkdirSync(OUT, { recursive: true });
    await page.getByLabel('Rank by').selectOption('wins');
    await waitBy('wins');
    await page.screenshot({ path: join(OUT, 'dashboard.png'), fullPage: true });
    await page.setViewportSize({ width: 360, height: 780 });
    await page.waitForFunction(() => Number(document.getElementById('chart').getAttribute('width')) <= 360);
    const { doc, chart, table } = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth,
      chart: document.getElementById('chart').getBoundingClientRect().right,
      table: document.querySelector('#board .scroll').scrollWidth - document.querySelector('#board .scroll').clientWidth }));
    assert.ok(doc <= 360, `page is ${doc} px wide`);
    assert.ok(table <= 0, `the table needs ${table} px more than its card`);
    assert.ok(chart <= 360, `chart ends at ${chart} px`);
    await page.screenshot({ path: join(OUT, 'dashboard-mobile.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
  }],
  ['no script errors and no requests outside the server', false, async () => {
    assert.deepEqual(ctx.pageErrors, []);
    // Failed loads are expected: the 404 search and the simulated outage.
    assert.deepEqual(ctx.consoleErrors.filter((m) => !/Failed to load resource/.test(m)), []);
    assert.deepEqual(ctx.external, []);
  }],
  ['SIGTERM stops the server with exit status 0', false, async () => {
    await ctx.browser.close();
    ctx.browser = null;
    ctx.server.kill('SIGTERM');
    const r = await Promise.race([ctx.exit, new Promise((res) => setTimeout(() => res('timeout'), 10000))]);
    assert.deepEqual(r, { code: 0, signal: null });
  }],
];

async function cleanup() {
  if (ctx.browser) await Promise.race([ctx.browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  if (ctx.server && ctx.server.exitCode === null && ctx.server.signalCode === null) {
    ctx.server.kill('SIGKILL');
    await Promise.race([ctx.exit, new Promise((r) => setTimeout(r, 2000))]);
  }
  if (ctx.tmp) rmSync(ctx.tmp, { recursive: true, force: true });
}

const watchdog = setTimeout(async () => {
  console.log('not ok - the whole test took over 90 s');
  await cleanup();
  console.log('0 passed, 1 failed');
  process.exit(1);
}, 90000);

let passed = 0, failed = 0, stop = false;
const started = Date.now();
try {
  for (const [name, fatal, fn] of steps) {
    if (stop) { failed++; console.log(`not ok - ${name} (not run: an earlier step failed)`); continue; }
    const t = Date.now();
    try {
      await fn();
      passed++;
      console.log(`ok - ${name} (${Date.now() - t} ms)`);
    } catch (e) {
      failed++;
      console.log(`not ok - ${name}\n  ${String(e && e.stack || e).split('\n').join('\n  ')}`);
      if (fatal) stop = true;
    }
  }
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
if (failed) console.log(`server log (last lines):\n  ${ctx.serverLog.join('\n').split('\n').slice(-15).join('\n  ')}`);
console.log(`took ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${OUT}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
