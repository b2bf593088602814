// The `signed` filter (dynamic security) end to end: requests signed by the app SDK go through the
// Envoy stand-in over ext_proc; valid ones reach the upstream with their body unchanged, every kind of
// bad one is refused with its documented status and code and never reaches the upstream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCredentialRequest, generateSigner, signRequest } from '../../sdk/app/signing.js';
import { issueChallenge } from '../../src/protocol/signing/challenge.js';
import { issueCredential } from '../../src/protocol/signing/credential.js';
import { SIGNING_FAILURES } from '../../src/protocol/signing/codes.js';
import { CREDENTIAL_ISSUER, createWorld, type World } from '../../src/protocol/signing/test-support.js';
import { endToEnd, type EndToEnd } from '../support/gatehouse.js';
import { get } from '../harness/helpers.js';
import type { ClientRequest } from '../harness/filter-manager.js';
import { freePort, skipWithoutRedis, TestRedisServer } from '../support/redis.js';
import { signedFilterConfig } from '../support/signed-config.js';

const AUTHORITY = 'api.example.com';
const BODY = '{"amount":"10.00","currency":"KRW","to":"acct-7"}';
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

async function routesFor(world: World, extra = ''): Promise<string> {
  return `${extra}
routes:
  - id: pay
    match: { path: { prefix: /pay/ } }
    filters:
      - signed: ${await signedFilterConfig(world)}
  - id: pay-open
    match: { path: { prefix: /open/ } }
    filters:
      - signed: ${await signedFilterConfig(world, ', failureMode: open')}
`;
}

interface Unsigned {
  readonly method: string;
  readonly path: string;
  readonly query?: string;
  readonly body?: string;
}

/** The request as the app signs and sends it (SDK signRequest), ready for the stand-in. */
async function signed(world: World, request: Unsigned, options: { now?: number; credential?: string; signer?: World['ephemeralSigner']; id?: string } = {}): Promise<ClientRequest> {
  const body = request.body === undefined ? undefined : Buffer.from(request.body);
  const headers = await signRequest(
    { method: request.method, authority: AUTHORITY, path: request.path, query: request.query ?? '', body },
    { credential: options.credential ?? world.credential, signer: options.signer ?? world.ephemeralSigner, now: options.now ?? nowSeconds() },
  );
  return {
    method: request.method,
    path: request.query === undefined ? request.path : `${request.path}?${request.query}`,
    authority: AUTHORITY,
    headers: [...Object.entries(headers), ['content-type', 'application/json'], ...(options.id === undefined ? [] : [['x-request-id', options.id] as [string, string]])],
    ...(request.body === undefined ? {} : { body: request.body }),
  };
}

async function setUp(t: { after: (fn: () => unknown) => void }, extraConfig = ''): Promise<{ world: World; e2e: EndToEnd }> {
  const world = await createWorld({ now: nowSeconds() });
  const e2e = await endToEnd(t, await routesFor(world, extraConfig));
  assert.deepEqual(await e2e.gatehouse.deps.stores.devices.put(world.device), { ok: true });
  return { world, e2e };
}

function assertRefused(result: { status: number; headers: [string, string][]; upstreamRequest?: unknown }, code: keyof typeof SIGNING_FAILURES, what: string): void {
  assert.equal(get(result.headers, 'x-gatehouse-reason'), code, what);
  assert.equal(result.status, SIGNING_FAILURES[code].status, `${what}: the documented status`);
  assert.equal(result.upstreamRequest, undefined, `${what}: never reaches the upstream`);
  assert.ok(!Number.isNaN(Date.parse(get(result.headers, 'date') ?? '')), `${what}: a Date header the client can set its clock by`);
  const challenge = get(result.headers, 'www-authenticate');
  assert.equal(challenge, result.status === 401 ? `Signature realm="gatehouse", error="${code}"` : undefined, `${what}: WWW-Authenticate on 401 only`);
}

test('a signed POST and a signed GET pass: the upstream gets the body unchanged, without the signing headers', async (t) => {
  const { world, e2e } = await setUp(t);
  const post = await e2e.envoy.request(await signed(world, { method: 'POST', path: '/pay/transfers', query: 'dry_run=1', body: BODY }, { id: 'sig-ok' }));
  assert.equal(post.status, 200);
  const up = post.upstreamRequest!;
  assert.equal(up.body.toString(), BODY, 'the body arrives byte for byte');
  for (const name of ['signature', 'signature-input', 'device-credential']) assert.equal(get(up.headers, name), undefined, `${name} is not forwarded`);
  assert.ok(get(up.headers, 'content-digest')?.startsWith('sha-256=:'), 'content-digest is kept: the upstream may check the body with it');
  const line = await e2e.accessLine('sig-ok');
  assert.equal(line['decision'], 'allow');
  assert.doesNotMatch(JSON.stringify(line), /eyJ/, 'no credential in the log');

  const getRequest = await e2e.envoy.request(await signed(world, { method: 'GET', path: '/pay/history' }));
  assert.equal(getRequest.status, 200, 'a GET is decided at its headers');
  assert.ok(!getRequest.sent.some((m) => m.request.case === 'requestBody'), 'and never waits for a body');
});

test('tampered, replayed, stale, future-dated, expired, wrong-key and unsigned requests are refused with their code and status', async (t) => {
  const { world, e2e } = await setUp(t);
  const send = (request: ClientRequest) => e2e.envoy.request(request);
  const base = (): Promise<ClientRequest> => signed(world, { method: 'POST', path: '/pay/transfers', query: 'dry_run=1', body: BODY });
  const withHeader = (r: ClientRequest, name: string, value: string): ClientRequest => ({ ...r, headers: r.headers!.map(([n, v]) => [n, n === name ? value : v]) });

  const tampered: [string, (r: ClientRequest) => ClientRequest, keyof typeof SIGNING_FAILURES][] = [
    ['method', (r) => ({ ...r, method: 'PUT' }), 'signature_invalid'],
    ['authority', (r) => ({ ...r, authority: 'evil.example.com' }), 'signature_invalid'],
    ['path', (r) => ({ ...r, path: '/pay/other?dry_run=1' }), 'signature_invalid'],
    ['query', (r) => ({ ...r, path: '/pay/transfers?dry_run=0' }), 'signature_invalid'],
    ['body', (r) => ({ ...r, body: BODY.replace('10.00', '99.00') }), 'digest_mismatch'],
    ['content-digest', (r) => withHeader(r, 'content-digest', 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:'), 'signature_invalid'],
    ['device-credential', (r) => withHeader(r, 'device-credential', `${world.credential.slice(0, -4)}AAAA`), 'credential_invalid'],
  ];
  for (const [component, tamper, code] of tampered) assertRefused(await send(tamper(await base())), code, `tampered ${component}`);

  const once = await base();
  assert.equal((await send(once)).status, 200, 'the genuine request passes');
  assertRefused(await send(once), 'signature_replayed', 'the same request again');

  assertRefused(await send(await signed(world, { method: 'GET', path: '/pay/h' }, { now: nowSeconds() - 45 })), 'signature_stale', 'delayed');
  assertRefused(await send(await signed(world, { method: 'GET', path: '/pay/h' }, { now: nowSeconds() + 30 })), 'signature_future_dated', 'future-dated');

  const past = nowSeconds() - 400;
  const challenge = issueChallenge({ secrets: world.secrets, purpose: 'credential', now: past });
  const expired = await issueCredential(await buildCredentialRequest({ challenge: challenge.challenge, deviceSigner: world.deviceSigner, ephemeralSigner: world.ephemeralSigner }), {
    device: world.device,
    challengeSecrets: world.secrets,
    issuer: { issuer: CREDENTIAL_ISSUER, kid: world.issuerKey.kid, privateKey: world.issuerKey.privateKey, lifetimeSeconds: 300 },
    now: past,
  });
  assert.ok(expired.ok);
  assertRefused(await send(await signed(world, { method: 'GET', path: '/pay/h' }, { credential: expired.credential })), 'credential_expired', 'expired credential');

  const otherKey = await generateSigner('ed25519');
  assertRefused(await send(await signed(world, { method: 'GET', path: '/pay/h' }, { signer: otherKey })), 'credential_wrong_device', "signed by a key the credential does not bind");

  assertRefused(await send({ method: 'GET', path: '/pay/h', authority: AUTHORITY }), 'signature_missing', 'unsigned');
  const noCredential = await base();
  assertRefused(await send({ ...noCredential, headers: noCredential.headers!.filter(([n]) => n !== 'device-credential') }), 'credential_missing', 'no credential');
  assert.equal(e2e.upstream.requests.length, 1, 'only the one genuine request reached the upstream');
});

test('a revoked device and a disabled account are refused with 403; enabling the account lets it through again', async (t) => {
  const { world, e2e } = await setUp(t);
  const { stores } = e2e.gatehouse.deps;
  const request = () => signed(world, { method: 'POST', path: '/pay/transfers', body: BODY });
  await stores.accounts.disable('user-42', 'fraud suspected', 'fds', Date.now());
  assertRefused(await e2e.envoy.request(await request()), 'account_disabled', 'disabled account');
  await stores.accounts.enable('user-42');
  assert.equal((await e2e.envoy.request(await request())).status, 200);
  await stores.devices.revoke(world.device.deviceId, Date.now());
  assertRefused(await e2e.envoy.request(await request()), 'device_revoked', 'revoked device');
});

test('a store outage: a fail-closed route answers 503 dependency_unavailable, a fail-open route passes with the action recorded', async (t) => {
  const deadRedis = await freePort();
  const { world, e2e } = await setUpWithoutDevice(t, `stores: { kind: redis, redis: { url: "redis://127.0.0.1:${deadRedis}", connectTimeoutMs: 100 } }\n`);
  const closed = await e2e.envoy.request(await signed(world, { method: 'GET', path: '/pay/h' }, { id: 'sig-closed' }));
  assert.equal(closed.status, 503);
  assert.equal(get(closed.headers, 'x-gatehouse-reason'), 'dependency_unavailable');
  assert.equal(closed.upstreamRequest, undefined);

  const open = await e2e.envoy.request(await signed(world, { method: 'GET', path: '/open/h' }, { id: 'sig-open' }));
  assert.equal(open.status, 200);
  const line = await e2e.accessLine('sig-open');
  assert.deepEqual(line['actions'], [{ filter: 'signed', action: 'failed_open', items: ['nonces', 'devices', 'accounts'] }]);

  const forged = await e2e.envoy.request({ method: 'GET', path: '/open/h', authority: AUTHORITY });
  assert.equal(forged.status, 401, 'failing open never lets an unsigned request through: the stores come after the signature');
});

async function setUpWithoutDevice(t: { after: (fn: () => unknown) => void }, extraConfig: string): Promise<{ world: World; e2e: EndToEnd }> {
  const world = await createWorld({ now: nowSeconds() });
  return { world, e2e: await endToEnd(t, await routesFor(world, extraConfig)) };
}

test('two gatehouse instances sharing one Redis accept a nonce exactly once under concurrent replays', { skip: skipWithoutRedis() }, async (t) => {
  const redis = await TestRedisServer.start();
  t.after(() => redis.close());
  const storesYaml = `stores: { kind: redis, keyPrefix: "sig:", redis: { url: "${redis.url}" } }\n`;
  const { world, e2e: first } = await setUp(t, storesYaml);
  const second = await endToEnd(t, await routesFor(world, storesYaml));
  const request = await signed(world, { method: 'POST', path: '/pay/transfers', body: BODY });
  const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? first : second).envoy.request(request)));
  const statuses = results.map((r) => r.status).sort();
  assert.deepEqual(statuses, [200, ...Array<number>(9).fill(401)]);
  for (const r of results.filter((x) => x.status === 401)) assert.equal(get(r.headers, 'x-gatehouse-reason'), 'signature_replayed');
  assert.equal(first.upstream.requests.length + second.upstream.requests.length, 1);
});
