// Offline checks of deploy/compose.yaml (no container engine runs here):
//   - YAML (with the merge keys compose uses); every depends_on names a
//     service; the replicas and create-table build this repository's
//     Dockerfile and run on the DynamoDB store with settings the binary
//     knows (server/config.c); create-table runs the `create-table`
//     subcommand before the replicas start; two replicas sit behind nginx;
//   - every file mounted into nginx exists, and nginx (Debian's) accepts the
//     configuration they make (`nginx -t`, upstream hosts mapped to
//     loopback, include paths to the repository's files).
//   node tests/deploy/check-compose.mjs [compose.yaml]
// The last line is "N passed, M failed".
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const YAML = createRequire(join(root, 'tests', 'tools', 'package.json'))('yaml');
const file = resolve(process.argv[2] ?? join(root, 'deploy', 'compose.yaml'));
const base = dirname(file);
let passed = 0, failed = 0;
const freePort = () => new Promise((res) => {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => res(port)); });
});
const check = (ok, what) => { if (ok) passed++; else { failed++; console.log(`FAIL ${what}`); } return ok; };

const doc = YAML.parseDocument(readFileSync(file, 'utf8'), { merge: true, uniqueKeys: true });
check(doc.errors.length === 0, `YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
const c = doc.toJS({ maxAliasCount: 100 }) ?? {};
const services = c.services ?? {};
const names = Object.keys(services);
const settings = new Set([...readFileSync(join(root, 'server', 'config.c'), 'utf8').matchAll(/\{"(TS_[A-Z_]+)"/g)].map((m) => m[1]));

for (const [name, s] of Object.entries(services))
  for (const dep of Object.keys(s.depends_on ?? {}))
    check(names.includes(dep), `${name}: depends_on ${dep}, which is not a service`);

const ours = names.filter((n) => services[n].build);
const replicas = ours.filter((n) => !(services[n].command ?? []).includes('create-table'));
const creator = ours.find((n) => (services[n].command ?? []).includes('create-table'));
check(replicas.length === 2, `two replicas of tourney-stats, found ${replicas.join(', ')}`);
check(Boolean(creator), 'a one-shot create-table service');
for (const n of ours) {
  const s = services[n];
  const ctx = resolve(base, s.build.context ?? '.');
  check(existsSync(join(ctx, s.build.dockerfile ?? 'Dockerfile')), `${n}: no Dockerfile in ${ctx}`);
  check(s.environment?.TS_STORE === 'dynamodb', `${n}: TS_STORE must be dynamodb`);
  for (const k of Object.keys(s.environment ?? {}))
    check(settings.has(k) || k.startsWith('AWS_'), `${n}: ${k} is not a setting of tourney-stats`);
  check(/^http:\/\/dynalite:\d+$/.test(s.environment?.AWS_ENDPOINT_URL_DYNAMODB ?? ''), `${n}: endpoint must be the dynalite service`);
}
for (const n of replicas)
  check(services[n].depends_on?.[creator]?.condition === 'service_completed_successfully',
    `${n}: must start after ${creator} completed`);
check(services[creator]?.depends_on?.dynalite?.condition === 'service_healthy', `${creator}: must wait for a healthy dynalite`);
const dynCmd = services.dynalite?.command ?? [];
const port = Number(dynCmd[dynCmd.indexOf('--port') + 1]);
check(ours.every((n) => services[n].environment.AWS_ENDPOINT_URL_DYNAMODB === `http://dynalite:${port}`),
  `the endpoint port matches dynalite's --port ${port}`);

// nginx: the mounted files exist, and nginx accepts them.
const nginx = services.nginx;
if (check(Boolean(nginx), 'an nginx service')) {
  for (const r of replicas) check(nginx.depends_on?.[r]?.condition === 'service_healthy', `nginx: waits for a healthy ${r}`);
  const mounts = (nginx.volumes ?? []).map((v) => v.split(':'));
  for (const [src] of mounts) check(existsSync(resolve(base, src)), `nginx: mounted ${src} does not exist`);
  const conf = mounts.find(([, dst]) => dst.startsWith('/etc/nginx/conf.d/'));
  if (check(Boolean(conf), 'nginx: a conf.d file') && existsSync('/usr/sbin/nginx')) {
    const tmp = mkdtempSync(join(tmpdir(), 'ts-compose-nginx-'));
    try {
      let text = readFileSync(resolve(base, conf[0]), 'utf8');
      for (const [src, dst] of mounts) text = text.replaceAll(dst, resolve(base, src));
      let k = 0;
      text = text.replace(/server ([a-z0-9-]+):(\d+)/g, (m, host) => {
        check(names.includes(host), `nginx upstream ${host} is not a service`);
        return `server 127.0.0.${++k}:8080`;
      });
      // nginx -t binds what it listens on: a free loopback port, not 80.
      text = text.replace(/listen 80;/, `listen 127.0.0.1:${await freePort()};`);
      writeFileSync(join(tmp, 'nginx.conf'), `pid ${tmp}/nginx.pid;\nerror_log ${tmp}/error.log;\n` +
        `events {}\nhttp {\naccess_log off;\n` +
        // Every temp path of its own: as a user, nginx may not touch /var/lib/nginx.
        ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `${k}_temp_path ${tmp}/${k};\n`).join('') +
        `${text}\n}\n`);
      let ok = true, out = '';
      try { execFileSync('/usr/sbin/nginx', ['-t', '-q', '-p', tmp, '-c', join(tmp, 'nginx.conf'), '-e', join(tmp, 'error.log')], { encoding: 'utf8', stdio: 'pipe' }); }
      catch (e) { ok = false; out = `${e.stderr}${e.stdout}`; }
      check(ok, `nginx -t rejects the compose configuration: ${out}`);
    } finally { rmSync(tmp, { recursive: true, force: true }); }
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
