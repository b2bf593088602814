// The `e2ee` filter end to end: the app SDK fetches the key configurations through the Envoy
// stand-in, seals request bodies, and opens the sealed responses; the upstream sees plaintext.
// Every kind of bad envelope is refused with its documented status and code and never reaches the
// upstream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createE2eeClient, generateDeviceKey, type E2eeClient } from '../../sdk/app/e2ee.js';
import { signRequest } from '../../sdk/app/signing.js';
import { DENY_REASONS, type DenyReasonCode } from '../../src/pipeline/deny.js';
import { E2EE_KEYS_MEDIA_TYPE, E2EE_RESPONSE_MEDIA_TYPE, E2eeKeyring, x25519RawPrivateKey, type GatewayKey } from '../../src/protocol/e2ee/index.js';
import { fixtureGatewayKey } from '../../src/protocol/e2ee/fixtures.js';
import { createWorld } from '../../src/protocol/signing/test-support.js';
import type { EnrolledDevice } from '../../src/protocol/signing/enrollment.js';
import { enrolledDevice } from '../../src/stores/test-devices.js';
import { endToEnd, type EndToEnd } from '../support/gatehouse.js';
import { get } from '../harness/helpers.js';
import type { ClientRequest } from '../harness/filter-manager.js';
import { echoResponse, type RecordedRequest, type UpstreamResponse } from '../harness/upstream.js';
import { freePort } from '../support/redis.js';
import { signedFilterConfig } from '../support/signed-config.js';

const AUDIENCE = 'api.superapp.example';
const AUTHORITY = 'gateway.internal:8443';
const KEYS_PATH = '/.well-known/gatehouse-e2ee-keys';
const BODY = '{"amount":"12.34","currency":"EUR","to":"acct-9"}';
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

function keyFile(dir: string, key: GatewayKey): string {
  const file = join(dir, `gateway-${key.keyId}.key`);
  writeFileSync(file, `${x25519RawPrivateKey(key.privateKey).toString('hex')}\n`);
  return file;
}

/** Keys 7 (new, published first) and 6 (old, still accepted), as during a rotation. */
function routes(extra = '', signedEntry = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-e2ee-'));
  const keys = `[{ keyId: 7, privateKeyFile: ${keyFile(dir, fixtureGatewayKey(7))} }, { keyId: 6, privateKeyFile: ${keyFile(dir, fixtureGatewayKey(6))} }]`;
  return `${extra}
routes:
  - id: e2ee-keys
    match: { path: { exact: ${KEYS_PATH} }, methods: [GET, HEAD] }
    filters:
      - e2eeKeys: { keys: &keys ${keys}, maxAgeSeconds: 600 }
  - id: sealed
    match: { path: { prefix: /sealed/ } }
    filters:
      - e2ee: { keys: *keys, audience: ${AUDIENCE}, maxRequestBytes: 4096, maxResponseBytes: 2048, removeResponseHeaders: [X-Body-SHA256] }
  - id: optional
    match: { path: { prefix: /optional/ } }
    filters:
      - e2ee: { keys: *keys, audience: ${AUDIENCE}, plaintext: pass }
${signedEntry === '' ? '' : `  - id: both
    match: { path: { prefix: /both/ } }
    filters:
      - e2ee: { keys: *keys, audience: ${AUDIENCE} }
      - signed: ${signedEntry}
`}`;
}

/** The upstream: echoes the request as JSON, except for a few paths that answer otherwise. */
function upstream(req: RecordedRequest): UpstreamResponse {
  if (req.path.endsWith('/no-content')) return { status: 204, headers: [], body: '' };
  if (req.path.endsWith('/big')) return { status: 200, headers: [['content-type', 'text/plain']], body: 'x'.repeat(3000) };
  if (req.path.endsWith('/balance')) {
    // what a framework adds to a small answer, every one computed over the plaintext
    const plain = '{"balance":1234.56}';
    const sha256 = createHash('sha256').update(plain).digest('base64');
    return {
      status: 200,
      headers: [
        ['content-type', 'application/json'],
        ['content-length', String(plain.length)],
        ['etag', `"${createHash('sha1').update(plain).digest('hex')}"`],
        ['content-digest', `sha-256=:${sha256}:`],
        ['repr-digest', `sha-256=:${sha256}:`],
        ['content-md5', createHash('md5').update(plain).digest('base64')],
        ['digest', `SHA-256=${sha256}`],
        ['x-body-sha256', sha256],
        ['cache-control', 'no-store'],
      ],
      body: plain,
    };
  }
  if (req.path.endsWith('/created')) return { status: 201, headers: [['content-type', 'application/json']], body: '{"status":"accepted","id":"tr_123"}' };
  return echoResponse(req);
}

interface Device {
  readonly enrolled: EnrolledDevice;
  readonly client: E2eeClient;
}

async function fetchKeyConfigs(e2e: EndToEnd): Promise<Buffer> {
  const r = await e2e.envoy.request({ method: 'GET', path: KEYS_PATH, authority: AUTHORITY });
  assert.equal(r.status, 200);
  assert.equal(get(r.headers, 'content-type'), E2EE_KEYS_MEDIA_TYPE);
  assert.equal(get(r.headers, 'cache-control'), 'public, max-age=600');
  assert.equal(r.upstreamRequest, undefined, 'gatehouse answers it itself');
  return r.body;
}

function deviceWith(keyConfigs: Uint8Array, enrolled: (e2eePublicKey: Buffer) => EnrolledDevice = (key) => enrolledDevice({ e2eePublicKey: new Uint8Array(key) })): Device {
  const { privateKey, publicKey } = generateDeviceKey();
  const record = enrolled(publicKey);
  const made = createE2eeClient({ keyConfigs, deviceKeyId: record.deviceId, devicePrivateKey: privateKey, audience: AUDIENCE });
  assert.ok(made.ok);
  return { enrolled: record, client: made.client };
}

async function setUp(t: { after: (fn: () => unknown) => void }, extra = ''): Promise<{ e2e: EndToEnd; device: Device; keyConfigs: Buffer }> {
  const e2e = await endToEnd(t, routes(extra), upstream);
  const keyConfigs = await fetchKeyConfigs(e2e);
  const device = deviceWith(keyConfigs);
  assert.deepEqual(await e2e.gatehouse.deps.stores.devices.put(device.enrolled), { ok: true });
  return { e2e, device, keyConfigs };
}

/** The request as the app sends it: the body sealed for this method and path. */
function sealed(device: Device, path: string, body = BODY, options: { contentLength?: boolean; id?: string } = {}): ClientRequest & { body: Buffer; open: (r: { headers: [string, string][]; body: Buffer }) => ReturnType<ReturnType<typeof sealFor>['decryptResponse']> } {
  const made = sealFor(device, path, body);
  return {
    method: 'POST',
    path,
    authority: AUTHORITY,
    headers: [
      ['content-type', made.headers['content-type']],
      ...(options.contentLength === false ? [] : [['content-length', String(made.body.length)] as [string, string]]),
      ...(options.id === undefined ? [] : [['x-request-id', options.id] as [string, string]]),
    ],
    body: made.body,
    open: (r) => made.decryptResponse({ contentType: get(r.headers, 'content-type'), body: r.body }),
  };
}

function sealFor(device: Device, path: string, body: string) {
  const made = device.client.encryptRequest({ method: 'POST', path, body: Buffer.from(body), contentType: 'application/json' });
  assert.ok(made.ok);
  return made;
}

function assertRefused(result: { status: number; headers: [string, string][]; upstreamRequest?: unknown }, code: DenyReasonCode, what: string): void {
  assert.equal(get(result.headers, 'x-gatehouse-reason'), code, what);
  assert.equal(result.status, DENY_REASONS[code].status, `${what}: the documented status`);
  assert.equal(result.upstreamRequest, undefined, `${what}: never reaches the upstream`);
}

test('an encrypted request: the upstream sees the plaintext with its content type and length; the app opens the encrypted response', async (t) => {
  const { e2e, device } = await setUp(t);
  const request = sealed(device, '/sealed/transfers?dry_run=1', BODY, { id: 'e2ee-ok' });
  assert.ok(!request.body.toString('latin1').includes('acct-9'), 'the body on the wire is ciphertext');
  const r = await e2e.envoy.request(request);
  assert.equal(r.status, 200);
  const up = r.upstreamRequest!;
  assert.equal(up.body.toString(), BODY, 'the upstream gets the plaintext byte for byte');
  assert.equal(get(up.headers, 'content-type'), 'application/json', 'with the inner content type');
  assert.equal(get(up.headers, 'content-length'), String(Buffer.byteLength(BODY)), 'and the plaintext length');
  assert.equal(get(r.headers, 'content-type'), E2EE_RESPONSE_MEDIA_TYPE);
  assert.equal(get(r.headers, 'content-length'), String(r.body.length));
  assert.ok(!r.body.toString('latin1').includes('acct-9'), 'the response on the wire is ciphertext');
  const opened = request.open(r);
  assert.ok(opened.ok, JSON.stringify(opened));
  assert.equal(opened.contentType, 'application/json', 'the upstream content type travels inside');
  const echoed = JSON.parse(opened.plaintext.toString()) as { body: string; path: string };
  assert.equal(echoed.body, BODY);
  assert.equal(echoed.path, '/sealed/transfers?dry_run=1');
  assert.equal((await e2e.accessLine('e2ee-ok'))['decision'], 'allow');

  const created = sealed(device, '/sealed/created');
  const answer = await e2e.envoy.request(created);
  assert.equal(answer.status, 201, 'the upstream status is kept');
  const body = created.open(answer);
  assert.ok(body.ok);
  assert.equal(body.plaintext.toString(), '{"status":"accepted","id":"tr_123"}');

  const noContent = await e2e.envoy.request(sealed(device, '/sealed/no-content'));
  assert.equal(noContent.status, 204, 'a response without a body passes as it is: nothing to encrypt');
  assert.equal(get(noContent.headers, 'content-type'), undefined);

  const big = await e2e.envoy.request(sealed(device, '/sealed/big'));
  assert.equal(big.status, DENY_REASONS.e2ee_upstream_too_large.status, 'a response over maxResponseBytes is not sent in plaintext');
  assert.equal(get(big.headers, 'x-gatehouse-reason'), 'e2ee_upstream_too_large');
  assert.ok(!big.body.toString().includes('xxxx'));

  const withoutLength = await e2e.envoy.request(sealed(device, '/sealed/chunked', BODY, { contentLength: false }));
  assert.equal(withoutLength.upstreamRequest?.body.toString(), BODY, 'a body without content-length (chunked) too');
});

test('a sealed response carries no header derived from the plaintext: ETag, Content-Digest, Repr-Digest, Content-MD5, Digest and the route\'s own list are removed, Content-Length is the sealed length; a plaintext-passed answer keeps them', async (t) => {
  const { e2e, device } = await setUp(t);
  const request = sealed(device, '/sealed/balance');
  const answer = await e2e.envoy.request(request);
  assert.equal(answer.status, 200);
  const names = answer.headers.map(([n]) => n);
  for (const name of ['etag', 'content-digest', 'repr-digest', 'content-md5', 'digest', 'x-body-sha256']) assert.ok(!names.includes(name), `${name} removed: ${names.join(', ')}`);
  assert.equal(get(answer.headers, 'content-length'), String(answer.body.length), 'the sealed length');
  assert.equal(get(answer.headers, 'cache-control'), 'no-store', 'headers not derived from the body stay');
  const plaintext = '{"balance":1234.56}';
  assert.doesNotMatch(JSON.stringify(answer.headers), new RegExp(createHash('sha256').update(plaintext).digest('base64').slice(0, 16).replace(/[+/]/g, '.')), 'no digest of the plaintext anywhere');
  const opened = request.open(answer);
  assert.ok(opened.ok);
  assert.equal(opened.plaintext.toString(), plaintext);

  // plaintext: pass on another route: nothing was sealed, the upstream's headers are its own
  const plain = await e2e.envoy.request({ method: 'POST', path: '/optional/balance', authority: AUTHORITY, headers: [['content-type', 'application/json']], body: '{}' });
  assert.equal(plain.status, 200);
  assert.ok(plain.headers.some(([n]) => n === 'etag'), 'kept on a response that is not sealed');
});

test('tampered, truncated, swapped, oversized, wrong-key and plaintext requests are refused with their code and status', async (t) => {
  const { e2e, device } = await setUp(t);
  const send = (request: ClientRequest) => e2e.envoy.request(request);
  const withBody = (request: ReturnType<typeof sealed>, body: Buffer): ClientRequest => ({ ...request, headers: request.headers!.map(([n, v]) => [n, n === 'content-length' ? String(body.length) : v]), body });
  const flip = (bytes: Buffer, at: number): Buffer => {
    const copy = Buffer.from(bytes);
    copy[at] = copy[at]! ^ 0x01;
    return copy;
  };

  const good = sealed(device, '/sealed/transfers');
  assertRefused(await send(withBody(good, flip(good.body, good.body.length - 1))), 'e2ee_decrypt_failed', 'tampered ciphertext');
  assertRefused(await send(withBody(good, flip(good.body, 0))), 'e2ee_decrypt_failed', 'key id 7 relabelled 6: a key the gateway has, not the one sealed to');
  const unknownKeyId = Buffer.from(good.body);
  unknownKeyId[0] = 9;
  assertRefused(await send(withBody(good, unknownKeyId)), 'e2ee_unknown_key_id', 'a key id the gateway never had');
  assertRefused(await send(withBody(good, good.body.subarray(0, 20))), 'e2ee_envelope_malformed', 'truncated envelope');
  assertRefused(await send({ ...good, path: '/sealed/other' }), 'e2ee_decrypt_failed', 'the body swapped to another path');
  assertRefused(await send({ ...good, method: 'PUT' }), 'e2ee_decrypt_failed', 'the body sent with another method');
  const large = 'x'.repeat(5000);
  const declaredLarge = await send(sealed(device, '/sealed/transfers', large));
  assertRefused(declaredLarge, 'e2ee_too_large', 'oversized, with content-length');
  assert.ok(!declaredLarge.sent.some((m) => m.request.case === 'requestBody'), 'refused at its headers, never buffered');
  assertRefused(await send(sealed(device, '/sealed/transfers', large, { contentLength: false })), 'e2ee_too_large', 'oversized, chunked (refused with the body)');
  assertRefused(await send({ method: 'POST', path: '/sealed/transfers', authority: AUTHORITY, headers: [['content-type', 'application/json']], body: BODY }), 'e2ee_content_type_invalid', 'a plaintext body');
  assertRefused(await send({ method: 'GET', path: '/sealed/transfers', authority: AUTHORITY }), 'e2ee_content_type_invalid', 'no body at all');
  assertRefused(await send({ method: 'POST', path: '/sealed/transfers', authority: AUTHORITY, headers: [['content-type', 'application/vnd.gatehouse.e2ee-request']] }), 'e2ee_envelope_malformed', 'the e2ee content type without a body');
  assert.equal(e2e.upstream.requests.length, 0, 'none reached the upstream');
});

test('rotation: the old key still opens, a rotated-out key answers e2ee_unknown_key_id', async (t) => {
  const { e2e, device, keyConfigs } = await setUp(t);
  const oldOnly = new E2eeKeyring([fixtureGatewayKey(6)]).encodedKeyConfigs();
  assert.ok(device.client.updateKeyConfigs(oldOnly).ok);
  assert.equal((await e2e.envoy.request(sealed(device, '/sealed/a'))).status, 200, 'key 6 is still accepted during the overlap');
  assert.ok(device.client.updateKeyConfigs(new E2eeKeyring([fixtureGatewayKey(5)]).encodedKeyConfigs()).ok);
  assertRefused(await e2e.envoy.request(sealed(device, '/sealed/a')), 'e2ee_unknown_key_id', 'a key removed from the gateway');
  assert.ok(device.client.updateKeyConfigs(keyConfigs).ok, 'the app refetches the list');
  assert.equal((await e2e.envoy.request(sealed(device, '/sealed/a'))).status, 200, 'and its retry passes');
});

test('unknown, e2ee-less and revoked devices are refused; a store outage fails closed', async (t) => {
  const { e2e, device, keyConfigs } = await setUp(t);
  const stranger = deviceWith(keyConfigs);
  assertRefused(await e2e.envoy.request(sealed(stranger, '/sealed/a')), 'e2ee_unknown_device', 'a device never enrolled');
  const withoutKey = deviceWith(keyConfigs, () => enrolledDevice({}, false));
  await e2e.gatehouse.deps.stores.devices.put(withoutKey.enrolled);
  assertRefused(await e2e.envoy.request(sealed(withoutKey, '/sealed/a')), 'e2ee_unknown_device', 'a device enrolled without an e2ee key');
  const impostor = deviceWith(keyConfigs, () => ({ ...device.enrolled }));
  assertRefused(await e2e.envoy.request(sealed(impostor, '/sealed/a')), 'e2ee_decrypt_failed', "another key claiming an enrolled device's id");
  await e2e.gatehouse.deps.stores.devices.revoke(device.enrolled.deviceId, Date.now());
  assertRefused(await e2e.envoy.request(sealed(device, '/sealed/a')), 'device_revoked', 'a revoked device');
  assert.equal(e2e.upstream.requests.length, 0);
  // each is a security event naming the envelope's device: a claim while nothing authenticated it;
  // the revoked device's envelope opened (its key sealed it) but, with no nonce on this route, a copy
  // would open as well: credential, never counted by a disable rule
  const events = e2e.logs.filter((l) => l['msg'] === 'security_event').map((l) => [l['code'], l['device'], l['trust'], l['subject']]);
  assert.deepEqual(events, [
    ['e2ee_unknown_device', stranger.enrolled.deviceId, 'claimed', undefined],
    ['e2ee_unknown_device', withoutKey.enrolled.deviceId, 'claimed', undefined],
    ['e2ee_decrypt_failed', device.enrolled.deviceId, 'claimed', undefined],
    ['device_revoked', device.enrolled.deviceId, 'credential', device.enrolled.subject],
  ]);
  const refusal = await e2e.envoy.request(sealed(stranger, '/sealed/a'));
  assert.ok(!Number.isNaN(Date.parse(get(refusal.headers, 'date') ?? '')), 'an e2ee refusal carries Date, as a signed one does');

  const deadRedis = await freePort();
  const down = await endToEnd(t, routes(`stores: { kind: redis, redis: { url: "redis://127.0.0.1:${deadRedis}", connectTimeoutMs: 100 } }\n`), upstream);
  assertRefused(await down.envoy.request(sealed(device, '/sealed/a')), 'dependency_unavailable', 'the device store is down');
  const staleKey = sealed(device, '/sealed/a');
  staleKey.body[0] = 9;
  assertRefused(await down.envoy.request(staleKey), 'e2ee_unknown_key_id', 'an envelope under an unknown key id is refused before any store call');
});

test('(attack) a disabled account is refused on an e2ee-only route as on a signed one: 403 account_disabled once the envelope authenticates its device; re-enabled, served again', async (t) => {
  const { e2e, device } = await setUp(t);
  assert.equal((await e2e.envoy.request(sealed(device, '/sealed/before'))).status, 200);
  await e2e.gatehouse.deps.stores.accounts.disable(device.enrolled.subject, 'fraud suspected', 'fds', Date.now());
  const refused = await e2e.envoy.request(sealed(device, '/sealed/after', BODY, { id: 'e2ee-disabled' }));
  assertRefused(refused, 'account_disabled', 'the account is disabled');
  assert.ok(get(refused.headers, 'date') !== undefined);
  assert.match(String((await e2e.accessLine('e2ee-disabled'))['detail']), /disabled by fds: fraud suspected/);
  assert.equal(e2e.upstream.requests.filter((r) => r.path === '/sealed/after').length, 0, 'the decrypted body never reaches the upstream');
  await e2e.gatehouse.deps.stores.accounts.enable(device.enrolled.subject);
  assert.equal((await e2e.envoy.request(sealed(device, '/sealed/again'))).status, 200);
});

test('plaintext: pass lets a plaintext request through both ways, and still decrypts an encrypted one', async (t) => {
  const { e2e, device } = await setUp(t);
  const plain = await e2e.envoy.request({ method: 'POST', path: '/optional/a', authority: AUTHORITY, headers: [['content-type', 'application/json'], ['x-request-id', 'e2ee-plain']], body: BODY });
  assert.equal(plain.status, 200);
  assert.equal(plain.upstreamRequest?.body.toString(), BODY);
  assert.equal(get(plain.headers, 'content-type'), 'application/json', 'the response is not encrypted: there is no key to encrypt it with');
  assert.deepEqual((await e2e.accessLine('e2ee-plain'))['actions'], [{ filter: 'e2ee', action: 'plaintext_passed' }]);
  const request = sealed(device, '/optional/a');
  const r = await e2e.envoy.request(request);
  assert.equal(r.upstreamRequest?.body.toString(), BODY);
  assert.ok(request.open(r).ok);
});

test('with signed on the route: the signature covers the ciphertext, and the sealing device must be the signing device', async (t) => {
  const world = await createWorld({ now: nowSeconds() });
  const e2e = await endToEnd(t, routes('', await signedFilterConfig(world)), upstream);
  const keyConfigs = await fetchKeyConfigs(e2e);
  const own = deviceWith(keyConfigs, (key) => ({ ...world.device, e2eePublicKey: new Uint8Array(key) }));
  await e2e.gatehouse.deps.stores.devices.put(own.enrolled);
  const other = deviceWith(keyConfigs);
  await e2e.gatehouse.deps.stores.devices.put(other.enrolled);

  const signedAndSealed = async (device: Device): Promise<ReturnType<typeof sealed>> => {
    const request = sealed(device, '/both/transfers');
    const headers = await signRequest({ method: 'POST', authority: AUTHORITY, path: '/both/transfers', body: request.body }, { credential: world.credential, signer: world.ephemeralSigner, now: nowSeconds() });
    return { ...request, headers: [...request.headers!, ...Object.entries(headers)] };
  };
  const ok = await signedAndSealed(own);
  const r = await e2e.envoy.request(ok);
  assert.equal(r.status, 200, get(r.headers, 'x-gatehouse-reason'));
  assert.equal(r.upstreamRequest?.body.toString(), BODY, 'the digest was checked on the ciphertext, the upstream gets the plaintext');
  assert.ok(ok.open(r).ok);

  assertRefused(await e2e.envoy.request(await signedAndSealed(other)), 'credential_wrong_device', 'sealed by another device than the signing one');
  const tampered = await signedAndSealed(own);
  assertRefused(await e2e.envoy.request({ ...tampered, body: Buffer.concat([tampered.body.subarray(0, -1), Buffer.from([tampered.body[tampered.body.length - 1]! ^ 1])]) }), 'digest_mismatch', 'tampered ciphertext under a signature');
  // the events name the account and the signing device: verified where the signer's own request
  // (fresh, its body the signed one) was sealed by another device, credential where the body is not
  // the one signed (anyone can swap a body under captured headers)
  const events = e2e.logs.filter((l) => l['msg'] === 'security_event').map((l) => [l['code'], l['subject'], l['device'], l['trust']]);
  assert.deepEqual(events, [
    ['credential_wrong_device', world.device.subject, world.device.deviceId, 'verified'],
    ['digest_mismatch', world.device.subject, world.device.deviceId, 'credential'],
  ]);
});
