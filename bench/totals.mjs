// The exactness check that ends every ingest scenario of bench/measure.sh:
// a figure is only worth something if nothing was lost or counted twice.
//   node bench/totals.mjs <port> <records generated> <run> <t0> <players>
// 1. waits until no request is in flight (wrk's client timeout does not stop
//    the server), and prints the records the server counted as applied in
//    its answers (ts_ingest_records_total{outcome="applied"}): the rate
//    counts those;
// 2. sends every generated record again, 500 per request, until each batch
//    is answered 200 (what a Pipe does with a batch it got no 200 for: the
//    run may have left batches unanswered, 503'd or half applied);
// 3. requires every player's games and wins to be exactly what the
//    generated records give it, and the resend to have applied only records
//    the run had not (each applied one had to be a duplicate).
// record(n) is the same function as in bench/ingest.lua.
const [port, generated, run, t0, players] = process.argv.slice(2);
const base = `http://127.0.0.1:${port}`;
const n = Number(generated), np = Number(players);

const record = (i) => {
  const player = `p${(i * 7919) % np + 1}`;
  const score = `${(i * 37) % 100}.${String((i * 13) % 100).padStart(2, '0')}`;
  return {
    eventID: `${run}-${i}`, eventName: 'INSERT', eventSource: 'aws:dynamodb',
    awsRegion: 'us-east-1',
    dynamodb: {
      ApproximateCreationDateTime: Number(t0) + (i % 3600),
      Keys: { gameId: { S: `g${i}` } },
      NewImage: { gameId: { S: `g${i}` }, player: { S: player },
        score: { N: score }, winner: { BOOL: i % 3 !== 0 } },
      SequenceNumber: String(i), SizeBytes: 120, StreamViewType: 'NEW_AND_OLD_IMAGES',
    },
  };
};

const metric = (text, name) => {
  const m = text.match(new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let metrics = '';
for (let i = 0; i < 600; i++) {
  metrics = await (await fetch(`${base}/metrics`)).text();
  if (metric(metrics, 'ts_http_requests_in_flight') <= 1) break; // this one
  await sleep(50);
}
const applied = metric(metrics, 'ts_ingest_records_total{outcome="applied"}');

// Expected games and wins per player, and the resend.
const want = new Map();
let resendApplied = 0;
for (let from = 1; from <= n; from += 500) {
  const recs = [];
  for (let i = from; i < Math.min(from + 500, n + 1); i++) {
    const r = record(i);
    recs.push(r);
    const p = r.dynamodb.NewImage.player.S;
    const w = want.get(p) || { games: 0, wins: 0 };
    w.games++; if (r.dynamodb.NewImage.winner.BOOL) w.wins++;
    want.set(p, w);
  }
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${base}/v1/stream-records`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ Records: recs }),
    }).catch(() => null);
    if (res && res.status === 200) {
      const body = await res.json();
      resendApplied += body.applied ?? 0;
      break;
    }
    if (attempt > 50) {
      console.error(`TOTALS WRONG: resend of ${from}.. never answered 200`);
      process.exit(1);
    }
    await sleep(200);
  }
}

let wrong = 0, games = 0;
const seen = new Set();
let cursor = null;
do {
  const url = `${base}/v1/players?limit=1000${cursor ? `&cursor=${cursor}` : ''}`;
  const page = await (await fetch(url)).json();
  for (const p of page.players) {
    seen.add(p.player);
    games += p.games;
    const w = want.get(p.player) || { games: 0, wins: 0 };
    if (p.games !== w.games || p.wins !== w.wins) {
      if (wrong++ < 3) console.error(`${p.player}: games ${p.games} wins ${p.wins}, want ${w.games} ${w.wins}`);
    }
  }
  cursor = page.next_cursor;
} while (cursor);
for (const p of want.keys()) if (!seen.has(p)) wrong++;
if (wrong || games !== n) {
  console.error(`TOTALS WRONG: ${wrong} players wrong; games ${games}, records ${n}`);
  process.exit(1);
}
console.error(`totals exact: ${n} records, ${applied} acknowledged as applied in the run, ${resendApplied} applied by the resend`);
console.log(applied);
