// The `passport` and `passportKeys` filters end to end: a request signed by the app SDK goes through
// the Envoy stand-in; the upstream receives an x-passport it verifies with sdk/upstream against the
// JWKS gatehouse publishes on its own route, also through the stand-in. A client's x-passport never
// reaches the upstream, and a route with no verified identity refuses rather than vouch for nobody.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signRequest } from '../../sdk/app/signing.js';
import { createPassportVerifier, type PassportVerifier } from '../../sdk/upstream/index.js';
import { parseConfig } from '../support/config.js';
import { DENY_REASONS } from '../../src/pipeline/deny.js';
import { createWorld, type World } from '../../src/protocol/signing/test-support.js';
import type { IntegrityLevel } from '../../src/protocol/signing/profile.js';
import { endToEnd, type EndToEnd } from '../support/gatehouse.js';
import { get } from '../harness/helpers.js';
import type { ClientRequest } from '../harness/filter-manager.js';
import { TEST_REGISTRY } from '../support/test-filters.js';
import { skipUnlessCi } from '../support/requires.js';
import { signedFilterConfig } from '../support/signed-config.js';

const AUTHORITY = 'api.example.com';
const ISSUER = 'https://gatehouse.test.invalid';
const JWKS_PATH = '/.well-known/gatehouse-passport-jwks.json';
const BODY = '{"amount":"10.00","currency":"KRW","to":"acct-7"}';
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** A manifest as during a rotation: the new ES256 key signs, the old Ed25519 key is still published. */
function keyManifest(): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-passport-'));
  const pem = (pair: { privateKey: { export(o: { format: 'pem'; type: 'pkcs8' }): string | Buffer } }): string => pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  writeFileSync(join(dir, 'new.pem'), pem(generateKeyPairSync('ec', { namedCurve: 'P-256' })));
  writeFileSync(join(dir, 'old.pem'), pem(generateKeyPairSync('ed25519')));
  const manifest = join(dir, 'keys.json');
  writeFileSync(manifest, JSON.stringify({ keys: [{ kid: 'test-new', status: 'active', file: 'new.pem' }, { kid: 'test-old', status: 'published', file: 'old.pem' }] }));
  return manifest;
}

async function routesFor(world: World, extraRoutes: string): Promise<string> {
  const signed = await signedFilterConfig(world);
  return `
routes:
  - id: passport-keys
    match: { path: { exact: ${JWKS_PATH} }, methods: [GET, HEAD] }
    filters:
      - passportKeys: { keysFile: &keys ${keyManifest()}, maxAgeSeconds: 120 }
  - id: pay
    match: { path: { prefix: /pay/ } }
    filters:
      - signed: ${signed}
      - passport: { audience: payments, issuer: "${ISSUER}", keysFile: *keys, lifetimeSeconds: 20 }
  - id: unsigned
    match: { path: { prefix: /unsigned/ } }
    filters:
      - passport: { audience: payments, issuer: "${ISSUER}", keysFile: *keys }
${extraRoutes.replaceAll('SIGNED', `signed: ${signed}`)}`;
}

async function setUp(t: { after: (fn: () => unknown) => void }, integrity?: IntegrityLevel, extraRoutes = ''): Promise<{ world: World; e2e: EndToEnd; verifier: PassportVerifier }> {
  const world = await createWorld({ now: nowSeconds(), ...(integrity === undefined ? {} : { integrity }) });
  const e2e = await endToEnd(t, await routesFor(world, extraRoutes));
  assert.deepEqual(await e2e.gatehouse.deps.stores.devices.put(world.device), { ok: true });
  // the upstream service's verifier, fetching the JWKS through the gateway as a service in the mesh would
  const verifier = createPassportVerifier({
    audience: 'payments',
    issuer: ISSUER,
    fetchJwks: async () => {
      const r = await e2e.envoy.request({ method: 'GET', path: JWKS_PATH, authority: AUTHORITY });
      assert.equal(r.status, 200);
      assert.equal(get(r.headers, 'content-type'), 'application/jwk-set+json');
      assert.equal(get(r.headers, 'cache-control'), 'public, max-age=120');
      assert.equal(r.upstreamRequest, undefined, 'gatehouse answers the JWKS route itself');
      return JSON.parse(r.body.toString()) as unknown;
    },
  });
  return { world, e2e, verifier };
}

async function signed(world: World, request: { method: string; path: string; body?: string }, extraHeaders: [string, string][] = []): Promise<ClientRequest> {
  const headers = await signRequest(
    { method: request.method, authority: AUTHORITY, path: request.path, query: '', body: request.body === undefined ? undefined : Buffer.from(request.body) },
    { credential: world.credential, signer: world.ephemeralSigner, now: nowSeconds() },
  );
  return {
    method: request.method,
    path: request.path,
    authority: AUTHORITY,
    headers: [...Object.entries(headers), ['content-type', 'application/json'], ...extraHeaders],
    ...(request.body === undefined ? {} : { body: request.body }),
  };
}

const upstreamPassports = (result: { upstreamRequest?: { headers: [string, string][] } }): string[] =>
  (result.upstreamRequest?.headers ?? []).filter(([name]) => name === 'x-passport').map(([, value]) => value);

test('a signed POST and GET reach the upstream with one passport it verifies against the published JWKS; a client-sent x-passport is replaced', async (t) => {
  const { world, e2e, verifier } = await setUp(t);
  const forged = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.';
  for (const request of [{ method: 'POST', path: '/pay/transfers', body: BODY }, { method: 'GET', path: '/pay/history' }]) {
    const what = `signed ${request.method}`;
    const result = await e2e.envoy.request(await signed(world, request, [['x-passport', forged], ['x-request-id', `passport-${request.method}`]]));
    assert.equal(result.status, 200, what);
    const passports = upstreamPassports(result);
    assert.equal(passports.length, 1, `${what}: exactly one x-passport upstream`);
    assert.notEqual(passports[0], forged, `${what}: the client's x-passport never reaches the upstream`);
    const verdict = await verifier.verifyPassport(passports[0]);
    assert.ok(verdict.ok, `${what}: ${verdict.ok ? '' : `${verdict.code} ${verdict.detail}`}`);
    assert.equal(verdict.kid, 'test-new', `${what}: signed with the active key`);
    const { claims } = verdict;
    assert.equal(claims.sub, 'user-42');
    assert.deepEqual(claims.dev, { id: world.device.deviceId }, 'dev.id is the signing device id');
    // txn is gatehouse's decision id for the request: its own, never the client's x-request-id
    assert.match(claims.txn, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'txn is the decision id');
    assert.equal((await e2e.accessLine(`passport-${request.method}`))['decision_id'], claims.txn, 'the access log line joins the two ids');
    assert.equal(claims.aud, 'payments');
    assert.equal(claims.iss, ISSUER);
    assert.equal(claims.exp - claims.iat, 20, 'the configured lifetime');
    assert.deepEqual([claims.amr, claims.aal, claims.itl], [[], 0, 3], 'a device-only session; strong integrity is itl 3');
  }
  const jwks = JSON.parse((await e2e.envoy.request({ method: 'GET', path: JWKS_PATH, authority: AUTHORITY })).body.toString()) as { keys: { kid: string }[] };
  assert.deepEqual(jwks.keys.map((key) => key.kid), ['test-new', 'test-old'], 'the active key first, the published one still there for the overlap');
});

test('itl follows the credential integrity: basic is 1, device is 2', async (t) => {
  for (const [integrity, itl] of [['basic', 1], ['device', 2]] as const) {
    const { world, e2e, verifier } = await setUp(t, integrity);
    const result = await e2e.envoy.request(await signed(world, { method: 'GET', path: '/pay/history' }));
    const verdict = await verifier.verifyPassport(upstreamPassports(result)[0]);
    assert.ok(verdict.ok);
    assert.equal(verdict.claims.itl, itl, integrity);
  }
});

test('with no verified identity the route refuses 401 passport_identity_missing, for a GET and a POST, and the upstream is never called', async (t) => {
  const { e2e } = await setUp(t);
  for (const request of [{ method: 'GET', path: '/unsigned/x' }, { method: 'POST', path: '/unsigned/x', body: BODY }] as const) {
    const result = await e2e.envoy.request({ ...request, authority: AUTHORITY, headers: [['x-passport', 'client-made'], ['content-type', 'application/json']] });
    assert.equal(get(result.headers, 'x-gatehouse-reason'), 'passport_identity_missing', request.method);
    assert.equal(result.status, DENY_REASONS.passport_identity_missing.status);
    assert.equal(result.status, 401);
    assert.equal(result.upstreamRequest, undefined, `${request.method}: never reaches the upstream`);
  }
});

test('a key manifest that cannot be used is a config error naming the file and the field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-passport-bad-'));
  const manifest = join(dir, 'keys.json');
  writeFileSync(manifest, JSON.stringify({ keys: [{ kid: 'k1', status: 'retired', file: 'k1.pem' }] }));
  const parsed = parseConfig(
    `listen: { grpc: "127.0.0.1:0", admin: "127.0.0.1:0" }\nroutes:\n  - id: p\n    match: { path: { prefix: /p/ } }\n    filters:\n      - passport: { audience: payments, issuer: x, keysFile: keys.json }\n`,
    join(dir, 'gatehouse.yaml'),
    { registry: TEST_REGISTRY },
  );
  assert.ok(!parsed.ok);
  const message = parsed.errors.map((e) => e.format()).join('\n');
  assert.match(message, /keysFile/, 'the config field');
  assert.ok(message.includes(`${manifest} keys[0].status: must be "active" or "published", got "retired"`), message);
});

const PYTHON = '/usr/bin/python3';
const pyjwt = spawnSync(PYTHON, ['-c', 'import jwt, cryptography'], { encoding: 'utf8' });

test('PyJWT verifies the passport the upstream received against the JWKS served through the gateway', { skip: skipUnlessCi(pyjwt.status === 0, `${PYTHON} with PyJWT is not available`) }, async (t) => {
  const { world, e2e } = await setUp(t);
  const result = await e2e.envoy.request(await signed(world, { method: 'POST', path: '/pay/transfers', body: BODY }, [['x-request-id', 'passport-py']]));
  const served = await e2e.envoy.request({ method: 'GET', path: JWKS_PATH, authority: AUTHORITY });
  const input = { token: upstreamPassports(result)[0], jwks: JSON.parse(served.body.toString()) as unknown, audience: 'payments', issuer: ISSUER };
  const python = spawnSync(PYTHON, [join(import.meta.dirname, '../interop/python/passport_verify.py')], { input: JSON.stringify(input), encoding: 'utf8', timeout: 20_000 });
  assert.equal(python.status, 0, python.stderr);
  const verdict = JSON.parse(python.stdout) as { ok: boolean; error?: string; claims?: Record<string, unknown> };
  assert.ok(verdict.ok, verdict.error);
  assert.equal((await e2e.accessLine('passport-py'))['decision_id'], verdict.claims?.['txn'], 'txn is the decision id of the request');
  assert.equal(verdict.claims?.['sub'], 'user-42');
});

/** A user API on a real local server: GET /users/<subject> → { amr, aal } (or 404 when it knows nobody); counts its calls. */
async function startUserApi(t: { after: (fn: () => unknown) => void }, knowsNobody = false): Promise<{ baseUrl: string; calls: string[] }> {
  const calls: string[] = [];
  const server = createServer((req, res) => {
    calls.push(req.url ?? '');
    if (knowsNobody) res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no such user"}');
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ amr: ['pwd', 'otp'], aal: 2 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }));
  return { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/users/`, calls };
}

/** nothing listens on port 1: the user API is down */
const DOWN_API = 'http://127.0.0.1:1/users/';

/** /facts/ asks `baseUrl` (with a call timeout generous for a busy machine: these tests are about answers, not speed); /facts-down/ (failureMode closed) and /facts-open/ (open) ask `otherBaseUrl` */
const userApiRoutes = (baseUrl: string, otherBaseUrl = DOWN_API): string => `
  - id: facts
    match: { path: { prefix: /facts/ } }
    filters:
      - SIGNED
      - passport: { audience: payments, issuer: "${ISSUER}", keysFile: *keys, userApi: { baseUrl: "${baseUrl}", timeoutMs: 10000 } }
  - id: facts-down
    match: { path: { prefix: /facts-down/ } }
    filters:
      - SIGNED
      - passport: { audience: payments, issuer: "${ISSUER}", keysFile: *keys, userApi: { baseUrl: "${otherBaseUrl}", timeoutMs: 10000, failureMode: closed } }
  - id: facts-open
    match: { path: { prefix: /facts-open/ } }
    filters:
      - SIGNED
      - passport: { audience: payments, issuer: "${ISSUER}", keysFile: *keys, userApi: { baseUrl: "${otherBaseUrl}", timeoutMs: 10000, failureMode: open } }
`;

test('with a user API: N concurrent requests of one session make one call, a later one none, and every passport carries its amr and aal', async (t) => {
  const api = await startUserApi(t);
  const { world, e2e, verifier } = await setUp(t, undefined, userApiRoutes(api.baseUrl));
  const requests = await Promise.all(Array.from({ length: 4 }, (_, i) => signed(world, { method: 'GET', path: `/facts/${i}` })));
  const results = await Promise.all(requests.map((request) => e2e.envoy.request(request)));
  for (const result of results) {
    assert.equal(result.status, 200);
    const verdict = await verifier.verifyPassport(upstreamPassports(result)[0]);
    assert.ok(verdict.ok);
    assert.deepEqual([verdict.claims.amr, verdict.claims.aal], [['pwd', 'otp'], 2], 'the user facts from the API');
  }
  assert.deepEqual(api.calls, ['/users/user-42'], 'one call for the four');
  assert.equal((await e2e.envoy.request(await signed(world, { method: 'POST', path: '/facts/again', body: BODY }))).status, 200);
  assert.equal(api.calls.length, 1, 'a cache hit makes no call');
});

test('the user API down: failureMode closed refuses 503 dependency_unavailable; open issues a passport without user facts', async (t) => {
  const { world, e2e, verifier } = await setUp(t, undefined, userApiRoutes(DOWN_API));
  const closed = await e2e.envoy.request(await signed(world, { method: 'GET', path: '/facts-down/x' }));
  assert.equal(get(closed.headers, 'x-gatehouse-reason'), 'dependency_unavailable');
  assert.equal(closed.status, 503);
  assert.equal(closed.upstreamRequest, undefined, 'never reaches the upstream');
  const open = await e2e.envoy.request(await signed(world, { method: 'POST', path: '/facts-open/x', body: BODY }, [['x-request-id', 'facts-open-1']]));
  assert.equal(open.status, 200);
  const verdict = await verifier.verifyPassport(upstreamPassports(open)[0]);
  assert.ok(verdict.ok);
  assert.deepEqual([verdict.claims.amr, verdict.claims.aal], [[], 0], 'no user facts: a device-only session');
  const line = await e2e.accessLine('facts-open-1');
  assert.match(JSON.stringify(line['actions']), /user_api_failed_open/, 'the access log says it failed open');
});

test('the user API answering 404 for the subject: 403 user_unknown in either failure mode, no passport, the answer cached', async (t) => {
  const known = await startUserApi(t);
  const missing = await startUserApi(t, true);
  const { world, e2e } = await setUp(t, undefined, userApiRoutes(known.baseUrl, missing.baseUrl));
  for (const path of ['/facts-down/x', '/facts-open/x', '/facts-down/y', '/facts-open/y', '/facts-down/z']) {
    const result = await e2e.envoy.request(await signed(world, { method: 'GET', path }));
    assert.equal(result.status, 403, path);
    assert.equal(get(result.headers, 'x-gatehouse-reason'), 'user_unknown', path);
    assert.equal(result.upstreamRequest, undefined, 'never reaches the upstream');
  }
  assert.equal(missing.calls.length, 2, 'the answer is cached per route for the subject: one call from each of the two routes');
});
