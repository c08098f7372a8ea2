// Capacity consumed per record by one tourney-stats server on the DynamoDB
// store, read from its own /metrics (ts_dynamodb_consumed_capacity_units_total,
// every table summed) around N single-record POSTs. Used by bench/ddb_cost.sh.
//
//   node bench/ddb_cost.mjs <port> <tag> <N>
// Prints one JSON object: {ordinary, busy, redelivery}, each {rcu, wcu} per
// record. Every answer is checked (200, and applied or duplicate as meant).
const [port, tag, nText] = process.argv.slice(2);
const N = Number(nText);
const base = `http://127.0.0.1:${port}`;
const now = Math.floor(Date.now() / 1000);
let seq = 0;

function record(player, created, id) {
  seq++;
  return {
    eventID: id ?? `${tag}-${process.pid}-${seq}`,
    eventName: 'INSERT',
    eventSource: 'aws:dynamodb',
    dynamodb: {
      ApproximateCreationDateTime: created,
      Keys: { game: { S: `${tag}-g${seq}` } },
      NewImage: { player: { S: player }, score: { N: String(seq % 50) },
                  winner: { BOOL: seq % 3 === 0 }, game: { S: `${tag}-g${seq}` } },
      SequenceNumber: String(10n ** 21n + BigInt(seq)),
      StreamViewType: 'NEW_IMAGE',
    },
  };
}

async function post(body, want) {
  const r = await fetch(`${base}/v1/stream-records`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const j = await r.json();
  const n = Array.isArray(body.Records) ? body.Records.length : 1;
  if (r.status !== 200 || j[want] !== n) {
    console.error(`unexpected answer ${r.status}: ${JSON.stringify(j)} (want ${want} ${n})`);
    process.exit(1);
  }
}

async function units() {
  const text = await (await fetch(`${base}/metrics`)).text();
  const u = { read: 0, write: 0 };
  for (const m of text.matchAll(/^ts_dynamodb_consumed_capacity_units_total\{table="[^"]*",kind="(read|write)"\} ([0-9.e+]+)$/gm))
    u[m[1]] += Number(m[2]);
  return u;
}

async function measure(make, want) {
  const before = await units();
  for (let i = 0; i < N; i++) await post(make(i), want);
  const after = await units();
  return { rcu: (after.read - before.read) / N, wcu: (after.write - before.write) / N };
}

// A busy player: 5,000 games within the last 26 hours (creation times
// spread over the last 25 h), through the real POST path, 100 a batch.
const busy = `${tag}-busy`;
const busyRecords = [];
for (let b = 0; b < 50; b++) {
  const recs = [];
  for (let i = 0; i < 100; i++) {
    const k = b * 100 + i;
    recs.push(record(busy, now - 25 * 3600 + Math.floor(k * 25 * 3600 / 5000)));
  }
  busyRecords.push(...recs);
  await post({ Records: recs }, 'applied');
}
// Ordinary players: 3 games each, one batch each.
for (let i = 0; i < N; i++) {
  const p = `${tag}-ordinary-${i}`;
  await post({ Records: [record(p, now - 7200), record(p, now - 3600), record(p, now - 600)] }, 'applied');
}

const ordinary = await measure((i) => record(`${tag}-ordinary-${i}`, now), 'applied');
// The busy player's stream goes on at its pace (5,000 games in 26 h is
// one every ~19 s): creation times advance as they would.
const busyOne = await measure((i) => record(busy, now + 19 * (i + 1)), 'applied');
// A redelivery of one of the busy player's games of about 20 h ago: a
// duplicate, found in the stored log.
const redelivery = await measure((i) => {
  const old = busyRecords[1000 + i * 7];
  return record(busy, old.dynamodb.ApproximateCreationDateTime, old.eventID);
}, 'duplicates');
console.log(JSON.stringify({ ordinary, busy: busyOne, redelivery }));
