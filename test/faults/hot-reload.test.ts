// Fault: the config, the mtls client registry and the passport keys change while requests flow,
// and some of the new files are bad. The real gatehouse process (its file watchers and SIGHUP),
// driven by the Envoy stand-in with the shipped EnvoyFilter. Promises (docs/resilience.md,
// docs/config.md "Hot reload"): zero failed requests through every reload; each valid change takes
// effect for new requests (and, per client, never goes back); a bad file — YAML syntax, a bad
// field, a key file that cannot be used, a broken registry — changes nothing and is reported, in the
// log and in gatehouse_config_reloads_total / gatehouse_client_registry_reloads_total{result="failure"}.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { durationFromMs } from '@bufbuild/protobuf/wkt';
import { ExternalProcessorSchema } from '../../src/gen/envoy/extensions/filters/http/ext_proc/v3/ext_proc_pb.js';
import { ExtProcStandIn } from '../harness/ext-proc.js';
import { get } from '../harness/helpers.js';
import { startUpstream } from '../harness/upstream.js';
import { createTestCa } from '../support/certificates.js';
import { shippedExtProcConfig } from '../support/manifests.js';
import { startGatehouseProcess } from '../support/process.js';

const WAIT_MS = 60_000;
const LANES = 4;

const ca = createTestCa();
const acme = ca.issue({ subject: '/O=Acme/CN=acme', uri: 'spiffe://partners.example.com/acme' });
const beta = ca.issue({ subject: '/O=Beta/CN=beta', uri: 'spiffe://partners.example.com/beta' });
const client = (id: string): string => `  - { id: ${id}, match: { uri: "spiffe://partners.example.com/${id}" }, routes: [partner], scopes: [accounts:read] }\n`;

const config = (version: string): string => `
unmatched: deny
defaults: { budgetMs: 20000 }
envoy: { messageTimeoutMs: 30000 }
telemetry: { logLevel: info, accessLog: false }
mtls: { clientsFile: clients.yaml }
routes:
  - id: api
    match: { path: { prefix: /api/ } }
    filters:
      - headers: { response: { set: { x-version: ${version} } } }
  - id: partner
    match: { path: { prefix: /partner/ } }
    filters: [{ mtls: { scopes: [accounts:read] } }]
  - id: jwks
    match: { path: { exact: /jwks } }
    filters: [{ passportKeys: { keysFile: keys.json } }]
`;

/** the outcome of each request by what it was: "api v1 200", "partner acme 200", "jwks k1 200", ... */
type Tally = Map<string, number>;

test('config, client registry and keys reloaded under load: zero failed requests, each change in effect; bad files change nothing and are reported', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-reload-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); ca.close(); });
  const file = (name: string): string => join(dir, name);
  // an editor's save, or a ConfigMap update: the whole file at once
  const replace = (name: string, text: string): void => {
    writeFileSync(file(`${name}.tmp`), text);
    renameSync(file(`${name}.tmp`), file(name));
  };
  const pem = (): string => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  writeFileSync(file('k1.pem'), pem());
  writeFileSync(file('keys.json'), JSON.stringify({ keys: [{ kid: 'k1', status: 'active', file: 'k1.pem' }] }));
  writeFileSync(file('clients.yaml'), `clients:\n${client('acme')}`);
  writeFileSync(file('gatehouse.yaml'), config('v1'));

  const gatehouse = await startGatehouseProcess({ GATEHOUSE_CONFIG: file('gatehouse.yaml') });
  t.after(() => { gatehouse.child.kill('SIGKILL'); });
  const upstream = await startUpstream();
  t.after(() => upstream.close());
  const envoy = new ExtProcStandIn({
    processorAddress: `127.0.0.1:${gatehouse.grpcPort}`,
    filter: create(ExternalProcessorSchema, { ...shippedExtProcConfig(), messageTimeout: durationFromMs(30_000) }),
    upstream: { host: '127.0.0.1', port: upstream.port },
  });
  t.after(() => { envoy.close(); });

  // load: each lane sends, one after another, an API request, a partner request as acme and as beta, and a JWKS fetch
  const tally: Tally = new Map();
  const failures: string[] = [];
  const seen = { version: new Set<string>(), kids: new Set<string>(), betaAllowed: false };
  let sending = true;
  let sent = 0;
  const count = (key: string): void => { tally.set(key, (tally.get(key) ?? 0) + 1); };
  const lane = async (n: number): Promise<void> => {
    let lastVersion = 'v1';
    let lastKids = 'k1';
    let betaAllowedHere = false;
    for (let i = 0; sending; i++) {
      const api = await envoy.request({ method: 'GET', path: `/api/${n}-${i}`, authority: 'api.example.com' });
      const version = get(api.headers, 'x-version') ?? '?';
      count(`api ${version} ${api.status}`);
      if (api.status !== 200) failures.push(`api ${api.status} ${get(api.headers, 'x-gatehouse-reason') ?? ''}`);
      // new requests use the new table at once and for good: a lane never sees an older version again
      if (version < lastVersion) failures.push(`api answered ${version} after ${lastVersion}`);
      lastVersion = version;
      seen.version.add(version);

      const asAcme = await envoy.request({ method: 'GET', path: `/partner/${n}-${i}`, authority: 'api.example.com' }, { peerCertificate: acme.pem });
      count(`partner acme ${asAcme.status}`);
      if (asAcme.status !== 200) failures.push(`acme ${asAcme.status} ${get(asAcme.headers, 'x-gatehouse-reason') ?? ''}`);
      const asBeta = await envoy.request({ method: 'GET', path: `/partner/${n}-${i}`, authority: 'api.example.com' }, { peerCertificate: beta.pem });
      count(`partner beta ${asBeta.status} ${get(asBeta.headers, 'x-gatehouse-reason') ?? ''}`.trim());
      // unknown until the registry names it, then allowed for good
      if (asBeta.status === 200) {
        betaAllowedHere = true;
        seen.betaAllowed = true;
      } else if (betaAllowedHere || get(asBeta.headers, 'x-gatehouse-reason') !== 'client_unknown') failures.push(`beta ${asBeta.status} ${get(asBeta.headers, 'x-gatehouse-reason') ?? ''} (allowed before: ${betaAllowedHere})`);

      const jwks = await envoy.request({ method: 'GET', path: '/jwks', authority: 'api.example.com' });
      const kids = jwks.status === 200 ? (JSON.parse(jwks.body.toString()) as { keys: { kid: string }[] }).keys.map((k) => k.kid).join('+') : '-';
      count(`jwks ${kids} ${jwks.status}`);
      if (jwks.status !== 200) failures.push(`jwks ${jwks.status}`);
      if (kids.length < lastKids.length) failures.push(`jwks answered ${kids} after ${lastKids}`);
      lastKids = kids;
      seen.kids.add(kids);
      sent += 4;
    }
  };
  const lanes = Array.from({ length: LANES }, (_, n) => lane(n));
  // whatever happens below, the lanes stop with the test
  t.after(async () => {
    sending = false;
    await Promise.allSettled(lanes);
  });
  const until = async (what: string, condition: () => boolean): Promise<void> => {
    const deadline = Date.now() + WAIT_MS;
    while (!condition()) {
      assert.ok(Date.now() < deadline, `not within ${WAIT_MS} ms: ${what}; ${JSON.stringify(Object.fromEntries(tally))}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  // counted in the raw output: parsing every line again at each poll would cost more than the load
  const logged = (msg: string): number => gatehouse.stdout().split(`"msg":${JSON.stringify(msg)}`).length - 1;
  const RELOADED = 'config reloaded: new streams use the new routes';
  const REFUSED = 'config reload refused: the running routes stay';
  const REGISTRY_RELOADED = 'client registry reloaded: new requests use it';
  const REGISTRY_REFUSED = 'client registry reload refused: the running registry stays';
  const moreSent = async (n: number): Promise<void> => { const target = sent + n; await until(`${n} more requests`, () => sent >= target); };
  await moreSent(40);

  // 1. the routes change
  replace('gatehouse.yaml', config('v2'));
  await until('the new routes answer', () => seen.version.has('v2'));
  await until('the reload logged', () => logged(RELOADED) === 1);
  await moreSent(40);

  // 2. a client joins the registry
  replace('clients.yaml', `clients:\n${client('acme')}${client('beta')}`);
  await until('the new client is allowed', () => seen.betaAllowed);
  await until('the registry reload logged', () => logged(REGISTRY_RELOADED) === 1);
  await moreSent(40);

  // 3. key rotation: a new active key, the old one still published; only the key files change, so SIGHUP
  writeFileSync(file('k2.pem'), pem());
  replace('keys.json', JSON.stringify({ keys: [{ kid: 'k2', status: 'active', file: 'k2.pem' }, { kid: 'k1', status: 'published', file: 'k1.pem' }] }));
  gatehouse.child.kill('SIGHUP');
  await until('the new key is published', () => seen.kids.has('k2+k1'));
  await until('the reload logged', () => logged(RELOADED) === 2);
  await moreSent(40);

  // 4. bad files, each refused and reported, nothing changed
  const bad: [string, () => void, string, RegExp][] = [
    ['a YAML syntax error', () => { replace('gatehouse.yaml', `${config('v3')}\n  - id: [unclosed\n`); }, REFUSED, /gatehouse\.yaml/],
    ['a bad field', () => { replace('gatehouse.yaml', config('v3').replace('budgetMs: 20000', 'budgetMs: fast')); }, REFUSED, /budgetMs/],
    ['a broken client registry', () => { replace('clients.yaml', 'clients:\n  - id: broken\n    match: {}\n    routes: []\n'); }, REGISTRY_REFUSED, /clients\.yaml/],
    ['a key file that cannot be used', () => {
      replace('gatehouse.yaml', config('v2')); // the running content again: nothing to reload
      writeFileSync(file('k3.pem'), 'not a key');
      replace('keys.json', JSON.stringify({ keys: [{ kid: 'k3', status: 'active', file: 'k3.pem' }, { kid: 'k2', status: 'published', file: 'k2.pem' }] }));
      gatehouse.child.kill('SIGHUP');
    }, REFUSED, /k3\.pem/],
  ];
  for (const [what, act, message, names] of bad) {
    const before = logged(message);
    act();
    await until(`${what} reported`, () => logged(message) > before);
    const line = gatehouse.lines.filter((l) => l['msg'] === message).at(-1);
    assert.ok(line !== undefined, `${what}: logged`);
    assert.match(JSON.stringify(line['errors']), names, `${what}: the log names the file or field`);
    await moreSent(20);
  }
  sending = false;
  await Promise.all(lanes);

  assert.deepEqual(failures, [], 'zero failed requests');
  assert.deepEqual([...seen.version].sort(), ['v1', 'v2'], 'no bad config took effect');
  assert.deepEqual([...seen.kids].sort(), ['k1', 'k2+k1'], 'no bad key took effect');
  assert.equal(logged(RELOADED), 2, 'no bad file reloaded');
  const metrics = await (await fetch(`http://127.0.0.1:${gatehouse.adminPort}/metrics`)).text();
  assert.match(metrics, /^gatehouse_config_reloads_total\{result="success"\} 2$/m);
  assert.match(metrics, /^gatehouse_config_reloads_total\{result="failure"\} 3$/m);
  assert.match(metrics, /^gatehouse_client_registry_reloads_total\{result="success"\} 1$/m);
  assert.match(metrics, /^gatehouse_client_registry_reloads_total\{result="failure"\} 1$/m);
  t.diagnostic(`hot reload under load: ${sent} requests, ${failures.length} failed; ${JSON.stringify(Object.fromEntries([...tally].sort()))}; reloads: config 2 applied + 3 refused, registry 1 applied + 1 refused`);
});
