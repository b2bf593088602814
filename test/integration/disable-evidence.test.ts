// Account actions only on evidence the account's holder produced (issue 17): whatever an attacker
// does with what it can see — the device's credential, requests it captured in transit (delivered,
// replayed, retargeted, cut, with another body or a garbled signature), a key of its own, envelopes
// it seals itself — through either adapter, no sequence of such requests disables the account, with
// a rule that counts every suspicious code at threshold 1. The control at the end shows the rule is
// live: one fresh request the revoked device's own key signed disables the account at once.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { createE2eeClient, generateDeviceKey } from '../../sdk/app/e2ee.js';
import { generateSigner, signRequest } from '../../sdk/app/signing.js';
import { SUSPICIOUS_REASONS } from '../../src/pipeline/deny.js';
import { fixtureGatewayKey } from '../../src/protocol/e2ee/fixtures.js';
import { x25519RawPrivateKey } from '../../src/protocol/e2ee/index.js';
import { createWorld } from '../../src/protocol/signing/test-support.js';
import type { ClientRequest } from '../harness/filter-manager.js';
import { get } from '../harness/helpers.js';
import { endToEnd } from '../support/gatehouse.js';
import { signedFilterConfig } from '../support/signed-config.js';

const AUTHORITY = 'api.example.com';
const KEYS_PATH = '/.well-known/gatehouse-e2ee-keys';
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

test('no sequence of requests made without the device key disables its account (every suspicious code counted at threshold 1); one it signed while revoked does', async (t) => {
  const world = await createWorld({ now: nowSeconds() });
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-evidence-'));
  t.after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  writeFileSync(join(dir, 'gateway-7.key'), `${x25519RawPrivateKey(fixtureGatewayKey(7).privateKey).toString('hex')}\n`);
  const signed = await signedFilterConfig(world);
  const e2e = await endToEnd(
    t,
    `securityEvents:
  rules:
    - { name: anything, codes: [${Object.keys(SUSPICIOUS_REASONS).join(', ')}], threshold: 1, windowSeconds: 3600 }
routes:
  - id: keys
    match: { path: { exact: ${KEYS_PATH} }, methods: [GET] }
    filters:
      - e2eeKeys: { keys: &keys [{ keyId: 7, privateKeyFile: ${join(dir, 'gateway-7.key')} }] }
  - id: pay
    match: { path: { prefix: /pay/ } }
    filters:
      - signed: ${signed}
  - id: sealed
    match: { path: { prefix: /sealed/ } }
    filters:
      - signed: ${signed}
      - e2ee: { keys: *keys, audience: ${AUTHORITY} }
  - id: sealed-only
    match: { path: { prefix: /sealed-only/ } }
    filters:
      - e2ee: { keys: *keys, audience: ${AUTHORITY} }
`,
  );
  // the victim's device, with its e2ee key
  const e2eeKey = generateDeviceKey();
  await e2e.gatehouse.deps.stores.devices.put({ ...world.device, e2eePublicKey: new Uint8Array(e2eeKey.publicKey) });
  const keyConfigs = (await e2e.envoy.request({ method: 'GET', path: KEYS_PATH, authority: AUTHORITY })).body;
  const sealer = (privateKey: typeof e2eeKey.privateKey) => {
    const made = createE2eeClient({ keyConfigs, deviceKeyId: world.device.deviceId, devicePrivateKey: privateKey, audience: AUTHORITY });
    assert.ok(made.ok);
    return made.client;
  };
  const victimSealer = sealer(e2eeKey.privateKey);
  // the attacker's own keys: a request key, and an X25519 key it seals with under the victim's device id
  const attackerSigner = await generateSigner('ed25519');
  const attackerSealer = sealer(generateDeviceKey().privateKey);
  const disabled = async (): Promise<boolean> => {
    for (let i = 0; i < 500 && e2e.gatehouse.security.sink.pending > 0; i++) await new Promise((r) => setTimeout(r, 5));
    const state = await e2e.gatehouse.deps.stores.accounts.isDisabled(world.device.subject);
    assert.ok(state.ok);
    return state.disabled !== undefined;
  };

  /** A request the victim's app signed (and, on /sealed, sealed): what the attacker captured in transit. */
  async function captured(route: 'pay' | 'sealed' | 'sealed-only', index: number): Promise<ClientRequest> {
    const path = `/${route}/transfers/${index}`;
    let body: Buffer = Buffer.from(`{"amount":"${index}.00","to":"acct-7"}`);
    let contentType = 'application/json';
    if (route !== 'pay') {
      const sealed = victimSealer.encryptRequest({ method: 'POST', path, body, contentType });
      assert.ok(sealed.ok);
      body = sealed.body;
      contentType = sealed.headers['content-type'];
    }
    const headers = route === 'sealed-only' ? {} : await signRequest({ method: 'POST', authority: AUTHORITY, path, body }, { credential: world.credential, signer: world.ephemeralSigner, now: nowSeconds() });
    return { method: 'POST', path, authority: AUTHORITY, headers: [...Object.entries(headers), ['content-type', contentType]], body };
  }

  const route = fc.constantFrom('pay' as const, 'sealed' as const, 'sealed-only' as const);
  const action = fc.oneof(
    fc.record({ kind: fc.constant('deliver' as const), route, index: fc.nat(3) }),
    fc.record({ kind: fc.constant('replay' as const), route, index: fc.nat(3) }),
    fc.record({ kind: fc.constant('tamper' as const), route, index: fc.nat(3), at: fc.nat(), byte: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ kind: fc.constant('truncate' as const), route, index: fc.nat(3), keep: fc.nat() }),
    fc.record({ kind: fc.constant('retarget' as const), route, index: fc.nat(3) }),
    fc.record({ kind: fc.constant('garble-signature' as const), route, index: fc.nat(3), seed: fc.uint8Array({ minLength: 64, maxLength: 64 }) }),
    fc.record({ kind: fc.constant('swap-envelope' as const), index: fc.nat(3) }),
    fc.record({ kind: fc.constant('own-key' as const), route }),
    fc.record({ kind: fc.constant('own-envelope' as const), route }),
    fc.record({ kind: fc.constant('garble-credential' as const), index: fc.nat(3) }),
  );
  type Action = typeof action extends fc.Arbitrary<infer A> ? A : never;

  /** What the attacker sends for one action, from the pool it captured this run. */
  async function attack(step: Action, pool: Map<string, ClientRequest>): Promise<ClientRequest[]> {
    const copy = (r: 'pay' | 'sealed' | 'sealed-only', index: number): ClientRequest => pool.get(`${r}/${index}`)!;
    const withHeader = (request: ClientRequest, name: string, value: (old: string) => string): ClientRequest => ({ ...request, headers: request.headers!.map(([n, v]) => [n, n === name ? value(v) : v]) });
    const bodyOf = (request: ClientRequest): Buffer => (Array.isArray(request.body) ? Buffer.concat(request.body) : Buffer.from(request.body ?? ''));
    switch (step.kind) {
      case 'deliver':
        // the first time it is the victim's own request; every later time a replay
        return [copy(step.route, step.index)];
      case 'replay':
        return [copy(step.route, step.index), copy(step.route, step.index)];
      case 'tamper': {
        const request = copy(step.route, step.index);
        const body = Buffer.from(bodyOf(request));
        const at = step.at % body.length;
        body[at] = body[at]! ^ step.byte;
        return [{ ...request, body }];
      }
      case 'truncate': {
        // what Envoy's max_request_bytes does to an upload, or an attacker cutting it
        const request = copy(step.route, step.index);
        const body = bodyOf(request);
        return [{ ...request, body: body.subarray(0, step.keep % body.length) }];
      }
      case 'retarget': {
        const request = copy(step.route, step.index);
        return [{ ...request, path: `${request.path}-elsewhere` }];
      }
      case 'garble-signature':
        return [withHeader(copy(step.route, step.index), 'signature', () => `sig=:${Buffer.from(step.seed).toString('base64')}:`)];
      case 'swap-envelope': {
        // the victim's signed headers with another of the victim's envelopes
        const request = copy('sealed', step.index);
        return [{ ...request, body: bodyOf(copy('sealed', (step.index + 1) % 4)) }];
      }
      case 'own-key': {
        // the victim's credential, signed by the attacker's own key (keyid ≠ cnf.jkt)
        const path = `/${step.route}/transfers/own`;
        const body = Buffer.from('{"amount":"9999.00","to":"acct-evil"}');
        const headers = await signRequest({ method: 'POST', authority: AUTHORITY, path, body }, { credential: world.credential, signer: attackerSigner, now: nowSeconds() });
        return [{ method: 'POST', path, authority: AUTHORITY, headers: [...Object.entries(headers), ['content-type', 'application/json']], body }];
      }
      case 'own-envelope': {
        // an envelope the attacker sealed naming the victim's device id, under the victim's signature headers where it has some
        const path = `/${step.route}/transfers/own`;
        const sealed = attackerSealer.encryptRequest({ method: 'POST', path, body: Buffer.from('{"amount":"9999.00"}'), contentType: 'application/json' });
        assert.ok(sealed.ok);
        const base = copy(step.route, 0);
        return [{ ...base, path, headers: base.headers!.map(([n, v]) => [n, n === 'content-type' ? sealed.headers['content-type'] : v]), body: sealed.body }];
      }
      case 'garble-credential':
        return [withHeader(copy('pay', step.index), 'device-credential', (v) => `${v.slice(0, -6)}AAAAAA`)];
    }
  }

  const seen = new Set<string>();
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(action, fc.boolean()), { minLength: 1, maxLength: 10 }), async (steps) => {
      const pool = new Map<string, ClientRequest>();
      for (const r of ['pay', 'sealed', 'sealed-only'] as const) for (let i = 0; i < 4; i++) pool.set(`${r}/${i}`, await captured(r, i));
      for (const [step, overAuthz] of steps) {
        for (const request of await attack(step, pool)) {
          const answer = overAuthz ? await e2e.authz.request(request) : await e2e.envoy.request(request);
          seen.add(get(answer.headers, 'x-gatehouse-reason') ?? String(answer.status));
        }
      }
      assert.equal(await disabled(), false, `disabled after ${JSON.stringify(steps.map(([s]) => s.kind))}`);
    }),
    { numRuns: 40 },
  );
  // the attacks reached the checks they aim at, not only one refusal
  for (const code of ['signature_replayed', 'digest_mismatch', 'signature_invalid', 'credential_wrong_device', 'credential_invalid', 'e2ee_decrypt_failed']) {
    assert.ok(seen.has(code), `${code} among ${[...seen].join(', ')}`);
  }
  const events = e2e.logs.filter((l) => l['msg'] === 'security_event');
  assert.ok(events.length > 30, 'the refusals were reported');
  assert.deepEqual(new Set(events.map((e) => e['trust'])).has('verified'), false, 'none at trust verified');

  // control: the rule is live. The device is revoked; its own key signs one fresh request.
  await e2e.gatehouse.deps.stores.devices.revoke(world.device.deviceId, Date.now());
  const fresh = await captured('pay', 99);
  assert.equal(get((await e2e.envoy.request(fresh)).headers, 'x-gatehouse-reason'), 'device_revoked');
  assert.equal(await disabled(), true, 'one verified event disables at threshold 1');
});
