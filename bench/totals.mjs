// Checks that the games summed over every player equal the records the
// server counted as applied (ts_ingest_records_total{outcome="applied"}):
// a benchmark is only worth its figure if nothing was lost or counted
// twice. Usage: node bench/totals.mjs <port>; prints the applied count.
const base = `http://127.0.0.1:${process.argv[2]}`;
// Requests still in flight when wrk stops (a client timeout does not stop
// the server) write games before they are counted: wait until none is.
let metrics = '';
for (let i = 0; i < 200; i++) {
  metrics = await (await fetch(`${base}/metrics`)).text();
  const f = metrics.match(/^ts_http_requests_in_flight (\d+)$/m);
  if (f && Number(f[1]) <= 1) break; // this request itself
  await new Promise((r) => setTimeout(r, 50));
}
const m = metrics.match(/^ts_ingest_records_total\{outcome="applied"\} (\d+)$/m);
const applied = m ? Number(m[1]) : NaN;
let games = 0, cursor = null;
do {
  const url = `${base}/v1/players?limit=1000${cursor ? `&cursor=${cursor}` : ''}`;
  const page = await (await fetch(url)).json();
  for (const p of page.players) games += p.games;
  cursor = page.next_cursor;
} while (cursor);
if (games !== applied) {
  console.error(`TOTALS WRONG: games ${games}, applied records ${applied}`);
  process.exit(1);
}
console.log(applied);
