// The signed filter on its own: its config (issuer keys inline and from a file, never private keys)
// and what it asks of the stores.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportJWK } from 'jose';
import { signRequest } from '../../../sdk/app/signing.js';
import { parseConfig } from '../../../test/support/config.js';
import { createRequestContext } from '../../pipeline/context.js';
import { createFilterDeps } from '../deps.js';
import { HeaderMap } from '../../pipeline/headers.js';
import { createMemoryStores } from '../../stores/index.js';
import type { NonceStore } from '../../stores/types.js';
import { CREDENTIAL_ISSUER, createWorld } from '../../protocol/signing/test-support.js';
import { jwkThumbprint } from '../../protocol/signing/keys.js';
import { signedConfig } from './config.js';
import { compileSigned, SIGNED_IDENTITY_STATE } from './signed.js';

const configErrors = (filterYaml: string): string[] => {
  const parsed = parseConfig(`routes:\n  - id: pay\n    match: { path: { prefix: /pay/ } }\n    filters:\n      - signed: ${filterYaml}\n`, 'signed-test.yaml');
  return parsed.ok ? [] : parsed.errors.map((e) => e.format());
};

test('config errors name the file, the line and the field: private keys, unreadable or malformed JWKS files, no keys, a kid twice', async () => {
  const world = await createWorld();
  const publicJwk = { ...(await exportJWK(world.issuerKey.publicKey)), kid: 'k1' };
  const privateJwk = { ...(await exportJWK(world.issuerKey.privateKey)), kid: 'k1' };
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-jwks-'));
  const good = join(dir, 'good.json');
  writeFileSync(good, JSON.stringify({ keys: [{ ...publicJwk, kid: 'k2' }] }));
  const privateFile = join(dir, 'private.json');
  writeFileSync(privateFile, JSON.stringify({ keys: [privateJwk] }));
  const notJson = join(dir, 'broken.json');
  writeFileSync(notJson, '{"keys": [');

  assert.deepEqual(configErrors(`{ issuer: x, issuerKeys: [${JSON.stringify(publicJwk)}], issuerKeysFile: ${good} }`), []);
  const cases: [string, RegExp][] = [
    [`{ issuer: x, issuerKeys: [${JSON.stringify(privateJwk)}] }`, /signed-test\.yaml:5: .*issuerKeys\[0\].*private key/s],
    [`{ issuer: x, issuerKeysFile: ${privateFile} }`, new RegExp(`issuerKeysFile.*${privateFile}: keys\\[0\\] is a private key`, 's')],
    [`{ issuer: x, issuerKeysFile: ${join(dir, 'missing.json')} }`, /issuerKeysFile.*cannot read JWKS file .*missing\.json/s],
    [`{ issuer: x, issuerKeysFile: ${notJson} }`, /broken\.json is not JSON/],
    ['{ issuer: x }', /issuerKeys.*needs the credential issuer keys: credentialKeysFile/s],
    [`{ issuer: x, issuerKeys: [${JSON.stringify({ ...publicJwk, kid: 'k2' })}], issuerKeysFile: ${good} }`, /kid "k2" is defined twice/],
    [`{ issuer: x, issuerKeys: [${JSON.stringify({ kty: 'RSA', n: 'AQAB', e: 'AQAB', kid: 'r' })}] }`, /not a P-256 .* or Ed25519/],
    [`{ issuer: x, issuerKeys: [${JSON.stringify(publicJwk)}], failureMode: maybe }`, /failureMode/],
  ];
  for (const [yaml, expected] of cases) assert.match(configErrors(yaml).join('\n'), expected, yaml);
});

test('the nonce is claimed under the key id for as long as the signature lives plus the clock skew, and the identity is handed on', async () => {
  const now = Math.floor(Date.now() / 1000);
  const world = await createWorld({ now });
  const claims: { keyId: string; nonce: string; ttlMs: number }[] = [];
  const memory = createMemoryStores();
  const nonces: NonceStore = { claim: (keyId, nonce, ttlMs) => { claims.push({ keyId, nonce, ttlMs }); return Promise.resolve({ ok: true, firstUse: true }); } };
  const deps = createFilterDeps({ now: () => now * 1000, stores: { ...memory, nonces } });
  await deps.stores.devices.put(world.device);
  const config = signedConfig.parse({ issuer: CREDENTIAL_ISSUER, issuerKeys: [{ ...(await exportJWK(world.issuerKey.publicKey)), kid: world.issuerKey.kid }], clockSkewSeconds: 7 });
  const filter = compileSigned(config, deps);
  const headers = await signRequest({ method: 'GET', authority: 'api.example.com', path: '/pay/h' }, { credential: world.credential, signer: world.ephemeralSigner, now, expiresInSeconds: 20, nonce: 'unit-nonce-0123456789' });
  const ctx = createRequestContext(
    { method: 'GET', authority: 'api.example.com', scheme: 'https', path: '/pay/h' },
    new HeaderMap(Object.entries(headers)),
    {},
    { routeId: 'pay', pathTemplate: '/pay/*', params: {} },
    () => new AbortController().signal,
  );
  assert.deepEqual(await filter.onRequestHeaders(ctx), { kind: 'continue' });
  assert.deepEqual(claims, [{ keyId: jwkThumbprint(world.ephemeralSigner.publicJwk), nonce: 'unit-nonce-0123456789', ttlMs: (20 + 7) * 1000 }]);
  assert.deepEqual(ctx.state.get(SIGNED_IDENTITY_STATE), { subject: 'user-42', deviceId: world.device.deviceId, integrityLevel: 'strong', keyId: claims[0]!.keyId });
  assert.deepEqual([...ctx.requestEdits.removals].sort(), ['device-credential', 'signature', 'signature-input']);
});
