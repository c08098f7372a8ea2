// Seeds a stats table with N players straight through BatchWriteItem (25
// items a call, 8 calls in flight), items shaped as the DynamoDB store
// writes them, so that a leaderboard benchmark does not wait for N players
// to be ingested. dynalite checks the shape of a SigV4 header, not the
// signature. Usage: node bench/seed_players.mjs <endpoint> <table> <n>
const [endpoint, table, nText] = process.argv.slice(2);
const n = Number(nText);
if (!endpoint || !table || !(n > 0)) {
  console.error('usage: seed_players.mjs <endpoint> <table> <n>');
  process.exit(2);
}
let rng = 20261203;
const rnd = (m) => {
  rng = (rng * 1103515245 + 12345) % 2147483648;
  return rng % m;
};
const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
const item = (i) => {
  const games = 1 + rnd(200), wins = rnd(games + 1), total = rnd(100 * games);
  const avg = Math.round((100 * total) / games) / 100;
  const pct = (Math.round((10000 * wins) / games) / 100).toFixed(2);
  return {
    player: {S: `bench-${String(i).padStart(6, '0')}`},
    games: {N: String(games)}, wins: {N: String(wins)},
    total_score: {N: String(total)}, avg_score: {N: String(avg)},
    win_percent: {S: `${pct}%`}, updated_at: {S: now}, version: {N: '1'},
    applied: {M: {}},
  };
};
async function call(items) {
  let body = {RequestItems: {[table]: items.map((Item) => ({PutRequest: {Item}}))}};
  for (let attempt = 0; attempt < 20; attempt++) {
    const r = await fetch(endpoint, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/x-amz-json-1.0',
        'X-Amz-Target': 'DynamoDB_20120810.BatchWriteItem',
        'X-Amz-Date': '20261203T000000Z',
        Authorization: 'AWS4-HMAC-SHA256 Credential=bench/20261203/us-east-1/' +
          'dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0',
      },
      body: JSON.stringify(body),
    });
    const j = await r.json();
    if (r.status !== 200) throw new Error(`BatchWriteItem ${r.status}: ${JSON.stringify(j)}`);
    const left = j.UnprocessedItems?.[table];
    if (!left || left.length === 0) return;
    body = {RequestItems: {[table]: left}};
  }
  throw new Error('unprocessed items after 20 attempts');
}
let next = 0;
async function worker() {
  while (next < n) {
    const from = next;
    next = Math.min(n, next + 25);
    const items = [];
    for (let i = from; i < next; i++) items.push(item(i));
    await call(items);
  }
}
await Promise.all(Array.from({length: 8}, worker));
console.log(n);
