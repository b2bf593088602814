// The WebCrypto client against the spec's worked example (byte for byte) and the gateway.
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { fromHex, toHex } from './bytes.js';
import { decryptRequest, deviceKeyFromRaw } from './envelope.js';
import { fixtureDevice, fixtureIkm, fixtureKeyring } from './fixtures.js';
import { deriveX25519KeyPair, x25519RawPrivateKey } from './hpke.js';
import { createWebCryptoE2eeClient } from './webcrypto-client.js';
import { E2EE_REQUEST_MEDIA_TYPE, E2EE_RESPONSE_MEDIA_TYPE } from './wire.js';
import { workedExampleRows } from './worked-example.js';

const subtle = webcrypto.subtle;
const PKCS8_X25519_PREFIX = fromHex('302e020100300506032b656e04220420');
const importPrivate = (raw: Uint8Array) => subtle.importKey('pkcs8', Buffer.concat([PKCS8_X25519_PREFIX, raw]), { name: 'X25519' }, false, ['deriveBits']);
const importPublic = (raw: Uint8Array) => subtle.importKey('raw', raw, { name: 'X25519' }, true, []);

test('the WebCrypto client reproduces the worked example request of docs/protocol/e2ee.md byte for byte', async () => {
  const rows = new Map(workedExampleRows());
  const device = fixtureDevice('dev-01HZX3');
  const ephemeral = deriveX25519KeyPair(fixtureIkm('gatehouse e2ee example ephemeral'));
  const made = createWebCryptoE2eeClient({
    subtle,
    keyConfigs: fromHex(rows.get('key configuration list (application/ohttp-keys)') ?? ''),
    deviceKeyId: 'dev-01HZX3',
    devicePrivateKey: await importPrivate(x25519RawPrivateKey(device.pair.privateKey)),
    devicePublicKey: device.pair.publicKey,
    audience: 'api.superapp.example',
  });
  assert.ok(made.ok);
  const sealed = await made.client.encryptRequest(
    { method: 'POST', path: '/v1/transfers', body: new TextEncoder().encode('{"amount":"12.34","currency":"EUR","to":"acct-9"}'), contentType: 'application/json' },
    { ephemeral: { privateKey: await importPrivate(x25519RawPrivateKey(ephemeral.privateKey)), publicKey: await importPublic(ephemeral.publicKey) } },
  );
  assert.ok(sealed.ok);
  assert.equal(toHex(sealed.body), rows.get('encrypted request body (hdr ‖ enc ‖ ct)'));
  const opened = await sealed.decryptResponse({ contentType: E2EE_RESPONSE_MEDIA_TYPE, body: fromHex(rows.get('encrypted response body (response_nonce ‖ ct)') ?? '') });
  assert.ok(opened.ok, opened.ok ? '' : opened.code);
  assert.equal(new TextDecoder().decode(opened.plaintext), '{"status":"accepted","id":"tr_123"}');
  assert.equal(opened.contentType, 'application/json');
});

test('WebCrypto client ⇄ gateway: random requests open, responses open, tampered responses are refused', async () => {
  const keyring = fixtureKeyring();
  const pair = (await subtle.generateKey({ name: 'X25519' }, false, ['deriveBits'])) as webcrypto.CryptoKeyPair;
  const devicePublicKey = new Uint8Array(await subtle.exportKey('raw', pair.publicKey));
  const made = createWebCryptoE2eeClient({ keyConfigs: keyring.encodedKeyConfigs(), deviceKeyId: 'dev-web', devicePrivateKey: pair.privateKey, devicePublicKey, audience: 'api.superapp.example' });
  assert.ok(made.ok);
  const deviceKey = deviceKeyFromRaw(devicePublicKey);
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 1024 }), fc.uint8Array({ maxLength: 1024 }), fc.nat(), async (body, reply, flip) => {
      const sealed = await made.client.encryptRequest({ method: 'POST', path: '/v1/web', body, contentType: 'application/octet-stream' });
      assert.ok(sealed.ok);
      const opened = decryptRequest({ body: sealed.body, contentType: E2EE_REQUEST_MEDIA_TYPE, method: 'POST', path: '/v1/web', audience: 'api.superapp.example' }, { keyring, deviceKey: (id) => (id === 'dev-web' ? deviceKey : undefined) });
      assert.ok(opened.ok, opened.ok ? '' : opened.code);
      assert.deepEqual([...opened.plaintext], [...body]);
      const response = opened.response.encrypt(reply, null);
      assert.ok(response.ok);
      const back = await sealed.decryptResponse({ contentType: response.contentType, body: response.body });
      assert.ok(back.ok);
      assert.deepEqual([...back.plaintext], [...reply]);
      assert.equal(back.contentType, null);
      const tampered = Buffer.from(response.body);
      tampered[flip % tampered.length]! ^= 0x80;
      const refused = await sealed.decryptResponse({ contentType: response.contentType, body: tampered });
      assert.equal(refused.ok ? 'ok' : refused.code, 'e2ee_response_decrypt_failed');
    }),
    { numRuns: 25 },
  );
});

test('the WebCrypto client refuses bad configuration and request lines with client codes', async () => {
  const pair = (await subtle.generateKey({ name: 'X25519' }, false, ['deriveBits'])) as webcrypto.CryptoKeyPair;
  const base = { deviceKeyId: 'd', devicePrivateKey: pair.privateKey, devicePublicKey: new Uint8Array(32), audience: 'a' };
  const code = (result: { ok: boolean; code?: string }) => (result.ok ? 'ok' : result.code);
  assert.equal(code(createWebCryptoE2eeClient({ ...base, keyConfigs: Uint8Array.of(0, 9, 1) })), 'e2ee_key_config_malformed');
  const chachaOnly = fromHex('0029' + '07' + '0020' + '00'.repeat(32) + '0004' + '0001' + '0003');
  assert.equal(code(createWebCryptoE2eeClient({ ...base, keyConfigs: chachaOnly })), 'e2ee_no_usable_key');
  const made = createWebCryptoE2eeClient({ ...base, keyConfigs: fixtureKeyring().encodedKeyConfigs() });
  assert.ok(made.ok);
  assert.equal(code(await made.client.encryptRequest({ method: 'GET', path: 'has space', body: new Uint8Array(0), contentType: null })), 'e2ee_request_invalid');
});
