// Fuzzing (fast-check) e2ee envelopes through the whole route, over ext_proc: a valid envelope
// sealed by an enrolled device (AES-128-GCM or ChaCha20-Poly1305), then mutated — a byte flipped
// (biased to the header and encapsulated key), cut short, extended, bytes inserted or overwritten,
// spliced with another envelope, replaced by random bytes, or sent with another method or path than
// it was sealed for — and a content type that still names e2ee (or not). On `sealed` (e2ee alone)
// and on `both` (signed, then e2ee), where the request is signed over the mutated body so that only
// e2ee stands between it and the upstream. The property: every mutation is refused with a
// documented denial, never an exception, never the upstream; valid envelopes still pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { createE2eeClient, generateDeviceKey, type E2eeClient } from '../../sdk/app/e2ee.js';
import { signRequest } from '../../sdk/app/signing.js';
import { E2EE_REQUEST_MEDIA_TYPE, x25519RawPrivateKey } from '../../src/protocol/e2ee/index.js';
import { fixtureGatewayKey } from '../../src/protocol/e2ee/fixtures.js';
import { createWorld } from '../../src/protocol/signing/test-support.js';
import { get } from '../harness/helpers.js';
import type { ClientRequest } from '../harness/filter-manager.js';
import { endToEnd } from '../support/gatehouse.js';
import { documentedDenial, fuzzParameters, Tally, watchProcessFaults } from '../support/fuzz.js';
import { signedFilterConfig } from '../support/signed-config.js';
import { tempDir } from '../support/temp-dir.js';

const RUNS = 200;
const AUDIENCE = 'api.superapp.example';
const AUTHORITY = 'gateway.internal:8443';
const KEYS_PATH = '/.well-known/gatehouse-e2ee-keys';
const MAX_REQUEST_BYTES = 4096;
const BODY = '{"amount":"12.34","currency":"EUR","to":"acct-9"}';
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

type Mutation =
  | { readonly kind: 'flip'; readonly at: number; readonly xor: number }
  | { readonly kind: 'cut'; readonly at: number }
  | { readonly kind: 'append'; readonly bytes: Uint8Array }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'overwrite'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'splice'; readonly at: number }
  | { readonly kind: 'random'; readonly bytes: Uint8Array }
  | { readonly kind: 'relocate'; readonly method: string; readonly path: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.oneof(fc.nat({ max: 80 }), fc.nat()), xor: fc.integer({ min: 1, max: 255 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('append' as const), bytes: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 32 }), fc.uint8Array({ minLength: MAX_REQUEST_BYTES, maxLength: MAX_REQUEST_BYTES + 16 })) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('overwrite' as const), at: fc.oneof(fc.nat({ max: 80 }), fc.nat()), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('splice' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('random' as const), bytes: fc.uint8Array({ maxLength: 200 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('relocate' as const),
      method: fc.constantFrom('POST', 'PUT', 'PATCH', 'post'),
      path: fc.constantFrom('transfers', 'transfers/', 'Transfers', 'transfers?x=1', 'other', 'transfers%2F'),
    }),
  },
);

/** The mutated body (and request line), or undefined when the mutation left the envelope as it was. */
function mutate(envelope: Buffer, other: Buffer, m: Mutation, method: string, path: string): { body: Buffer; method: string; path: string } | undefined {
  const at = (n: number): number => (envelope.length === 0 ? 0 : n % envelope.length);
  let body: Buffer;
  switch (m.kind) {
    case 'flip':
      body = Buffer.from(envelope);
      body[at(m.at)] = body[at(m.at)]! ^ m.xor;
      break;
    case 'cut':
      body = envelope.subarray(0, at(m.at));
      break;
    case 'append':
      body = Buffer.concat([envelope, m.bytes]);
      break;
    case 'insert':
      body = Buffer.concat([envelope.subarray(0, at(m.at)), m.bytes, envelope.subarray(at(m.at))]);
      break;
    case 'overwrite':
      body = Buffer.from(envelope);
      body.set(m.bytes.subarray(0, Math.max(0, body.length - at(m.at))), at(m.at));
      break;
    case 'splice':
      body = Buffer.concat([envelope.subarray(0, at(m.at)), other.subarray(at(m.at))]);
      if (body.equals(other)) return undefined;
      break;
    case 'random':
      body = Buffer.from(m.bytes);
      break;
    case 'relocate': {
      const relocated = { body: envelope, method: m.method, path: `${path.slice(0, path.lastIndexOf('/') + 1)}${m.path}` };
      return relocated.method === method && relocated.path === path ? undefined : relocated;
    }
  }
  return body.equals(envelope) ? undefined : { body, method, path };
}

test('mutated, spliced, relocated and random e2ee envelopes are refused with a documented denial on an e2ee route and on a signed + e2ee route (fast-check)', async (t) => {
  const faults = watchProcessFaults(t);
  const dir = tempDir(t, 'gatehouse-fuzz-e2ee-');
  const keyFile = (keyId: number): string => {
    const file = join(dir, `gateway-${keyId}.key`);
    writeFileSync(file, `${x25519RawPrivateKey(fixtureGatewayKey(keyId).privateKey).toString('hex')}\n`);
    return file;
  };
  const world = await createWorld({ now: nowSeconds() });
  const e2e = await endToEnd(t, `
routes:
  - id: e2ee-keys
    match: { path: { exact: ${KEYS_PATH} }, methods: [GET] }
    filters:
      - e2eeKeys: { keys: &keys [{ keyId: 7, privateKeyFile: ${keyFile(7)} }, { keyId: 6, privateKeyFile: ${keyFile(6)} }] }
  - id: sealed
    match: { path: { prefix: /sealed/ } }
    filters:
      - e2ee: { keys: *keys, audience: ${AUDIENCE}, maxRequestBytes: ${MAX_REQUEST_BYTES} }
  - id: both
    match: { path: { prefix: /both/ } }
    filters:
      - e2ee: { keys: *keys, audience: ${AUDIENCE}, maxRequestBytes: ${MAX_REQUEST_BYTES} }
      - signed: ${await signedFilterConfig(world)}
`);
  const keyConfigs = (await e2e.envoy.request({ method: 'GET', path: KEYS_PATH, authority: AUTHORITY })).body;
  // the world's device, enrolled with an X25519 key: it seals, and it signs on `both`
  const { privateKey, publicKey } = generateDeviceKey();
  assert.deepEqual(await e2e.gatehouse.deps.stores.devices.put({ ...world.device, e2eePublicKey: new Uint8Array(publicKey) }), { ok: true });
  const clients: Record<'aes-128-gcm' | 'chacha20-poly1305', E2eeClient> = {
    'aes-128-gcm': made(createE2eeClient({ keyConfigs, deviceKeyId: world.device.deviceId, devicePrivateKey: privateKey, audience: AUDIENCE, aeads: ['aes-128-gcm'] })),
    'chacha20-poly1305': made(createE2eeClient({ keyConfigs, deviceKeyId: world.device.deviceId, devicePrivateKey: privateKey, audience: AUDIENCE, aeads: ['chacha20-poly1305'] })),
  };

  const seal = (client: E2eeClient, method: string, path: string, plaintext: string, contentType: string | null): Buffer => {
    const sealed = client.encryptRequest({ method, path, body: Buffer.from(plaintext), contentType });
    assert.ok(sealed.ok, JSON.stringify(sealed));
    return sealed.body;
  };

  /** the request as the app sends it; on `both` signed over the body as sent */
  async function request(route: 'sealed' | 'both', method: string, path: string, body: Buffer, contentType: string | undefined, withLength: boolean): Promise<ClientRequest> {
    const headers: [string, string][] = [...(contentType === undefined ? [] : [['content-type', contentType] as [string, string]]), ...(withLength ? [['content-length', String(body.length)] as [string, string]] : [])];
    if (route === 'both') {
      const [pathOnly = path, query = ''] = path.split(/\?(.*)/s);
      const signature = await signRequest({ method, authority: AUTHORITY, path: pathOnly, query, body }, { credential: world.credential, signer: world.ephemeralSigner, now: nowSeconds() });
      headers.push(...Object.entries(signature));
    }
    return { method, path, authority: AUTHORITY, headers, body };
  }

  // valid envelopes pass on both routes, with either AEAD: what the fuzzer mutates is accepted as it is
  for (const route of ['sealed', 'both'] as const) {
    for (const client of Object.values(clients)) {
      const path = `/${route}/transfers`;
      const r = await e2e.envoy.request(await request(route, 'POST', path, seal(client, 'POST', path, BODY, 'application/json'), E2EE_REQUEST_MEDIA_TYPE, true));
      assert.equal(r.status, 200, `a valid envelope on ${route}: ${get(r.headers, 'x-gatehouse-reason') ?? ''}`);
      assert.equal(r.upstreamRequest?.body.toString(), BODY);
    }
  }

  const input = fc
    .record({
      route: fc.constantFrom('sealed' as const, 'both' as const),
      aead: fc.constantFrom('aes-128-gcm' as const, 'chacha20-poly1305' as const),
      plaintext: fc.oneof(fc.constant(BODY), fc.string({ maxLength: 100 })),
      innerType: fc.option(fc.constantFrom('application/json', 'text/plain; charset=utf-8'), { nil: null }),
      mutation,
      contentType: fc.oneof({ weight: 6, arbitrary: fc.constant(E2EE_REQUEST_MEDIA_TYPE) }, { weight: 1, arbitrary: fc.constantFrom(`${E2EE_REQUEST_MEDIA_TYPE}; v=1`, E2EE_REQUEST_MEDIA_TYPE.toUpperCase(), 'application/json', 'application/ohttp-req', '') }, { weight: 1, arbitrary: fc.constant(undefined) }),
      withLength: fc.boolean(),
    });

  const reasons = new Tally();
  const kinds = new Tally();
  let sent = 0;
  let unchanged = 0;
  await fc.assert(
    fc.asyncProperty(input, async (i) => {
      const path = `/${i.route}/transfers`;
      const client = clients[i.aead];
      const envelope = seal(client, 'POST', path, i.plaintext, i.innerType);
      const changed = mutate(envelope, seal(client, 'POST', path, i.plaintext, i.innerType), i.mutation, 'POST', path);
      if (changed === undefined) {
        unchanged++;
        return;
      }
      sent++;
      kinds.add(i.mutation.kind);
      const r = await e2e.envoy.request(await request(i.route, changed.method, changed.path, changed.body, i.contentType, i.withLength));
      assert.equal(r.upstreamRequest, undefined, `${i.mutation.kind} on ${i.route} reached the upstream (${r.status})`);
      const denial = documentedDenial(r.status, get(r.headers, 'x-gatehouse-reason'));
      assert.ok(denial.ok, `${i.mutation.kind} on ${i.route}: ${denial.ok ? '' : denial.why}`);
      reasons.add(denial.reason);
    }),
    fuzzParameters(RUNS),
  );
  faults.assertNone();
  const after = await e2e.envoy.request(await request('both', 'POST', '/both/transfers', seal(clients['aes-128-gcm'], 'POST', '/both/transfers', BODY, 'application/json'), E2EE_REQUEST_MEDIA_TYPE, true));
  assert.equal(after.status, 200, 'a valid envelope still passes after the fuzzing');
  t.diagnostic(`fuzz e2ee: ${sent} mutated envelopes (${unchanged} mutations left it unchanged, not sent), 0 let through; mutations: ${kinds.toString()}; denials: ${reasons.toString()}`);
});

function made(result: ReturnType<typeof createE2eeClient>): E2eeClient {
  assert.ok(result.ok, JSON.stringify(result));
  return result.client;
}
