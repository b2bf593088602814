import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { toHex } from './bytes.js';
import { x25519RawPrivateKey } from './hpke.js';
import {
  chooseKeyConfig,
  decodeKeyConfigList,
  E2eeKeyring,
  encodeKeyConfig,
  encodeKeyConfigList,
  generateGatewayKey,
  keyConfigOf,
  loadGatewayKey,
} from './keys.js';

test('a gateway key loads the same from PKCS#8 PEM, 64 hex digits, raw bytes and a KeyObject', () => {
  const { privateKey } = generateKeyPairSync('x25519');
  const raw = x25519RawPrivateKey(privateKey);
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const loaded = [pem, raw.toString('hex'), raw, privateKey].map((source) => loadGatewayKey({ keyId: 9, privateKey: source }));
  for (const key of loaded) assert.equal(toHex(key.publicKey), toHex(loaded[0]!.publicKey));
  assert.throws(() => loadGatewayKey({ keyId: 9, privateKey: 'not a key' }), RangeError);
  assert.throws(() => loadGatewayKey({ keyId: 256, privateKey: raw }), RangeError);
  assert.throws(() => loadGatewayKey({ keyId: 1, privateKey: generateKeyPairSync('ed25519').privateKey }), RangeError);
  assert.throws(() => loadGatewayKey({ keyId: 1, privateKey: raw, aeadIds: [0x0002] }), RangeError);
});

test('a keyring holds several key ids for rotation, publishes them in order, and refuses a repeated id', () => {
  const ring = new E2eeKeyring([generateGatewayKey(2), generateGatewayKey(1, [0x0001])]);
  const decoded = decodeKeyConfigList(ring.encodedKeyConfigs());
  assert.ok(decoded.ok);
  assert.deepEqual(decoded.configs.map((c) => c.keyId), [2, 1]);
  assert.deepEqual(decoded.configs[1]!.symmetric, [{ kdfId: 1, aeadId: 1 }]);
  assert.ok(ring.find(1) !== undefined && ring.find(3) === undefined);
  assert.throws(() => new E2eeKeyring([generateGatewayKey(4), generateGatewayKey(4)]), RangeError);
  assert.throws(() => new E2eeKeyring([]), RangeError);
});

test('configurations for other KEMs are skipped in a list (RFC 9458 §3.2); a list of only those is refused', () => {
  const ours = keyConfigOf(generateGatewayKey(5));
  const p256 = Buffer.concat([Uint8Array.of(6, 0x00, 0x10), Buffer.alloc(65, 4), Uint8Array.of(0, 4, 0, 1, 0, 1)]);
  const list = Buffer.concat([Uint8Array.of(0, p256.length), p256, encodeKeyConfigList([ours])]);
  const decoded = decodeKeyConfigList(list);
  assert.ok(decoded.ok);
  assert.deepEqual(decoded.configs.map((c) => c.keyId), [5]);
  const onlyP256 = decodeKeyConfigList(Buffer.concat([Uint8Array.of(0, p256.length), p256]));
  assert.equal(onlyP256.ok ? 'ok' : onlyP256.code, 'e2ee_key_config_malformed');
  const chosen = chooseKeyConfig(decoded.configs, [0x0003]);
  assert.ok(chosen.ok && chosen.suite.aead.id === 3);
});

test('any truncation or random bytes decode to a configuration list or a code, never an exception', () => {
  const list = encodeKeyConfigList([keyConfigOf(generateGatewayKey(1)), keyConfigOf(generateGatewayKey(2))]);
  for (let length = 0; length < list.length; length++) {
    const decoded = decodeKeyConfigList(list.subarray(0, length));
    assert.ok(!decoded.ok || length === 0 || length === 2 + encodeKeyConfig(keyConfigOf(generateGatewayKey(1))).length, `length ${length}`);
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const decoded = decodeKeyConfigList(bytes);
      assert.ok(decoded.ok || decoded.code === 'e2ee_key_config_malformed');
    }),
    { numRuns: 500 },
  );
});
