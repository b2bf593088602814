// The e2ee filters' config: key files read at load (a bad one names the file and the field), the
// audience, failureMode, and what the key route publishes.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../../../test/support/config.js';
import { decodeKeyConfigList, x25519RawPrivateKey } from '../../protocol/e2ee/index.js';
import { fixtureGatewayKey } from '../../protocol/e2ee/fixtures.js';
import { e2eeKeysConfig } from './config.js';
import { compileE2eeKeys } from './e2ee.js';

const configErrors = (filterYaml: string): string[] => {
  const parsed = parseConfig(`routes:\n  - id: sealed\n    match: { path: { prefix: /sealed/ } }\n    filters:\n      - e2ee: ${filterYaml}\n`, 'e2ee-test.yaml');
  return parsed.ok ? [] : parsed.errors.map((e) => e.format());
};

function keyFiles(): { dir: string; seven: string; six: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-e2ee-keys-'));
  const seven = join(dir, 'seven.key');
  writeFileSync(seven, x25519RawPrivateKey(fixtureGatewayKey(7).privateKey).toString('hex'));
  const six = join(dir, 'six.pem');
  writeFileSync(six, fixtureGatewayKey(6).privateKey.export({ format: 'pem', type: 'pkcs8' }));
  return { dir, seven, six };
}

test('config errors name the file, the line and the field: unreadable, malformed or non-X25519 key files, a key id twice, no keys, a bad audience, failureMode open', () => {
  const { dir, seven, six } = keyFiles();
  const garbage = join(dir, 'garbage.key');
  writeFileSync(garbage, 'not a key at all');
  const ed25519 = join(dir, 'ed25519.pem');
  writeFileSync(ed25519, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }));

  const ok = `{ keys: [{ keyId: 7, privateKeyFile: ${seven} }, { keyId: 6, privateKeyFile: ${six} }], audience: api.superapp.example }`;
  assert.deepEqual(configErrors(ok), []);
  const cases: [string, RegExp][] = [
    [`{ keys: [{ keyId: 7, privateKeyFile: ${join(dir, 'missing.key')} }], audience: a }`, /e2ee-test\.yaml:5: .*keys\[0\]\.privateKeyFile.*cannot read private key file .*missing\.key/s],
    [`{ keys: [{ keyId: 7, privateKeyFile: ${garbage} }], audience: a }`, /keys\[0\]\.privateKeyFile.*garbage\.key is not an X25519 private key/s],
    [`{ keys: [{ keyId: 7, privateKeyFile: ${ed25519} }], audience: a }`, /keys\[0\]\.privateKeyFile.*ed25519\.pem is not an X25519 private key/s],
    [`{ keys: [{ keyId: 7, privateKeyFile: ${seven} }, { keyId: 7, privateKeyFile: ${six} }], audience: a }`, /keys.*key id 7 appears twice/s],
    [`{ keys: [{ keyId: 256, privateKeyFile: ${seven} }], audience: a }`, /keys\[0\]\.keyId.*at most 255/s],
    ['{ keys: [], audience: a }', /keys.*needs at least one gateway key/s],
    [`{ keys: [{ keyId: 7, privateKeyFile: ${seven} }], audience: "has space" }`, /audience.*visible ASCII/s],
    [`{ keys: [{ keyId: 7, privateKeyFile: ${seven} }] }`, /audience/],
    [`{ keys: [{ keyId: 7, privateKeyFile: ${seven} }], audience: a, failureMode: open }`, /failureMode.*must be "closed".*cannot be decrypted/s],
    [`{ keys: [{ keyId: 7, privateKeyFile: ${seven} }], audience: a, plaintext: maybe }`, /plaintext/],
  ];
  for (const [yaml, expected] of cases) assert.match(configErrors(yaml).join('\n'), expected, yaml);
});

test('the key route publishes every configured key, in the configured order, with the AEADs each offers', () => {
  const { seven, six } = keyFiles();
  const config = e2eeKeysConfig.parse({ keys: [{ keyId: 7, privateKeyFile: seven }, { keyId: 6, privateKeyFile: six, aeads: ['chacha20-poly1305'] }], maxAgeSeconds: 60 });
  const answer = compileE2eeKeys(config).onRequestHeaders();
  assert.equal(answer.kind, 'respond');
  assert.ok(answer.kind === 'respond' && answer.body !== undefined);
  assert.deepEqual(answer.headers, { 'content-type': 'application/ohttp-keys', 'cache-control': 'public, max-age=60' });
  const decoded = decodeKeyConfigList(answer.body);
  assert.ok(decoded.ok);
  assert.deepEqual(
    decoded.configs.map((c) => [c.keyId, c.publicKey.toString('hex'), c.symmetric.map((s) => s.aeadId)]),
    [
      [7, fixtureGatewayKey(7).publicKey.toString('hex'), [0x0001, 0x0003]],
      [6, fixtureGatewayKey(6).publicKey.toString('hex'), [0x0003]],
    ],
  );
});
