import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  decryptRequest,
  deviceKeyFromRaw,
  E2EE_REQUEST_MEDIA_TYPE,
  E2eeKeyring,
  x25519RawPrivateKey,
  type DeviceKey,
} from '../../src/protocol/e2ee/index.js';
import { fixtureGatewayKey } from '../../src/protocol/e2ee/fixtures.js';
import { createE2eeClient, generateDeviceKey, type E2eeClient } from './e2ee.js';

const audience = 'api.superapp.example';

function world(keyring = new E2eeKeyring([fixtureGatewayKey(3)])) {
  const device = generateDeviceKey();
  const enrolled = new Map<string, DeviceKey>([['dev-sdk-1', deviceKeyFromRaw(device.publicKey)]]);
  const made = createE2eeClient({ keyConfigs: keyring.encodedKeyConfigs(), deviceKeyId: 'dev-sdk-1', devicePrivateKey: device.privateKey, audience });
  assert.ok(made.ok);
  const gateway = (body: Uint8Array, method: string, path: string, contentType: string | undefined = E2EE_REQUEST_MEDIA_TYPE, ring = keyring) =>
    decryptRequest({ body, contentType, method, path, audience }, { keyring: ring, deviceKey: (id) => enrolled.get(id) });
  return { client: made.client, device, gateway };
}

test('the SDK encrypts a request the gateway opens and opens the gateway’s response (random bodies)', () => {
  const { client, gateway } = world();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2048 }), fc.uint8Array({ maxLength: 2048 }), (body, reply) => {
      const sealed = client.encryptRequest({ method: 'PUT', path: '/v1/profile', body, contentType: 'application/json' });
      assert.ok(sealed.ok);
      assert.equal(sealed.headers['content-type'], E2EE_REQUEST_MEDIA_TYPE);
      const opened = gateway(sealed.body, 'PUT', '/v1/profile');
      assert.ok(opened.ok, opened.ok ? '' : opened.code);
      assert.deepEqual([...opened.plaintext], [...body]);
      assert.equal(opened.deviceKeyId, 'dev-sdk-1');
      const response = opened.response.encrypt(reply, 'application/json');
      assert.ok(response.ok);
      const back = sealed.decryptResponse({ contentType: response.contentType, body: response.body });
      assert.ok(back.ok, back.ok ? '' : back.code);
      assert.deepEqual([...back.plaintext], [...reply]);
      assert.equal(back.contentType, 'application/json');
    }),
    { numRuns: 50 },
  );
});

test('a raw 32-byte device key works as well as a KeyObject, and ChaCha20-Poly1305 can be preferred', () => {
  const keyring = new E2eeKeyring([fixtureGatewayKey(4)]);
  const device = generateDeviceKey();
  const made = createE2eeClient({
    keyConfigs: keyring.encodedKeyConfigs(),
    deviceKeyId: 'dev-raw',
    devicePrivateKey: x25519RawPrivateKey(device.privateKey),
    audience,
    aeads: ['chacha20-poly1305'],
  });
  assert.ok(made.ok);
  const sealed = made.client.encryptRequest({ method: 'GET', path: '/v1/balance', body: new Uint8Array(0), contentType: null });
  assert.ok(sealed.ok);
  const opened = decryptRequest(
    { body: sealed.body, contentType: E2EE_REQUEST_MEDIA_TYPE, method: 'GET', path: '/v1/balance', audience },
    { keyring, deviceKey: () => deviceKeyFromRaw(device.publicKey) },
  );
  assert.ok(opened.ok);
  assert.equal(opened.aeadId, 0x0003);
  assert.equal(opened.contentType, null);
});

test('rotation: under a removed key id the gateway answers e2ee_unknown_key_id; after updateKeyConfigs it opens', () => {
  const oldRing = new E2eeKeyring([fixtureGatewayKey(1)]);
  const newRing = new E2eeKeyring([fixtureGatewayKey(2)]);
  const { client, gateway } = world(oldRing);
  const before = client.encryptRequest({ method: 'POST', path: '/v1/x', body: Buffer.from('{}'), contentType: 'application/json' });
  assert.ok(before.ok);
  const refused = gateway(before.body, 'POST', '/v1/x', E2EE_REQUEST_MEDIA_TYPE, newRing);
  assert.equal(refused.ok ? 'ok' : refused.code, 'e2ee_unknown_key_id');
  assert.deepEqual(client.updateKeyConfigs(newRing.encodedKeyConfigs()), { ok: true });
  const after = client.encryptRequest({ method: 'POST', path: '/v1/x', body: Buffer.from('{}'), contentType: 'application/json' });
  assert.ok(after.ok);
  assert.equal(after.keyId, 2);
  assert.ok(gateway(after.body, 'POST', '/v1/x', E2EE_REQUEST_MEDIA_TYPE, newRing).ok);
});

test('bad configuration, bad keys, bad request lines and foreign responses answer client codes, never throw', () => {
  const device = generateDeviceKey();
  const code = (result: { ok: boolean; code?: string }) => (result.ok ? 'ok' : result.code);
  assert.equal(code(createE2eeClient({ keyConfigs: Buffer.from([0, 5, 1]), deviceKeyId: 'd', devicePrivateKey: device.privateKey, audience })), 'e2ee_key_config_malformed');
  const aesOnly = new E2eeKeyring([fixtureGatewayKey(5, [0x0001])]).encodedKeyConfigs();
  assert.equal(code(createE2eeClient({ keyConfigs: aesOnly, deviceKeyId: 'd', devicePrivateKey: device.privateKey, audience, aeads: ['chacha20-poly1305'] })), 'e2ee_no_usable_key');
  assert.equal(code(createE2eeClient({ keyConfigs: aesOnly, deviceKeyId: 'd', devicePrivateKey: new Uint8Array(31), audience })), 'e2ee_request_invalid');
  assert.equal(code(createE2eeClient({ keyConfigs: aesOnly, deviceKeyId: 'd', devicePrivateKey: device.privateKey, audience })), 'ok');

  const { client } = world();
  const invalid: [string, Parameters<E2eeClient['encryptRequest']>[0]][] = [
    ['empty path', { method: 'GET', path: '', body: new Uint8Array(0), contentType: null }],
    ['non-ASCII path', { method: 'GET', path: '/ü', body: new Uint8Array(0), contentType: null }],
    ['method with a space', { method: 'G T', path: '/', body: new Uint8Array(0), contentType: null }],
    ['content type too long', { method: 'GET', path: '/', body: new Uint8Array(0), contentType: 'x'.repeat(256) }],
    ['body over 1 MiB', { method: 'POST', path: '/', body: new Uint8Array(1024 * 1024), contentType: null }],
  ];
  for (const [name, request] of invalid) assert.equal(code(client.encryptRequest(request)), 'e2ee_request_invalid', name);

  const sealed = client.encryptRequest({ method: 'GET', path: '/v1/a', body: new Uint8Array(0), contentType: null });
  assert.ok(sealed.ok);
  assert.equal(code(sealed.decryptResponse({ contentType: 'application/problem+json', body: Buffer.from('{"code":"e2ee_decrypt_failed"}') })), 'e2ee_response_content_type_invalid');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
      const result = sealed.decryptResponse({ contentType: 'application/vnd.gatehouse.e2ee-response', body: junk });
      assert.ok(!result.ok && (result.code === 'e2ee_response_malformed' || result.code === 'e2ee_response_decrypt_failed'));
    }),
    { numRuns: 300 },
  );
});
