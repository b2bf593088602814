// Interop: an independent Python client (test/interop/python/e2ee_client.py, written from
// docs/protocol/e2ee.md with python3-cryptography) encrypts requests that gatehouse decrypts, and
// decrypts gatehouse's encrypted responses.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  AEAD_AES_128_GCM,
  AEAD_CHACHA20_POLY1305,
  decryptRequest,
  E2EE_REQUEST_MEDIA_TYPE,
  x25519RawPrivateKey,
} from '../../src/protocol/e2ee/index.js';
import { fixtureDevice, fixtureKeyring } from '../../src/protocol/e2ee/fixtures.js';
import { workedExampleRows } from '../../src/protocol/e2ee/worked-example.js';

const PYTHON = '/usr/bin/python3'; // Debian's, with python3-cryptography (the pyenv one lacks it)
const SCRIPT = fileURLToPath(new URL('./python/e2ee_client.py', import.meta.url));

/** One long-lived Python client; each call writes a JSON line and reads the JSON answer line. */
function startPythonClient(): { call: (message: object) => Promise<Record<string, unknown>>; stop: () => void } {
  const child = spawn(PYTHON, [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    async call(message) {
      child.stdin.write(`${JSON.stringify(message)}\n`);
      const next = await lines.next();
      if (next.done === true) throw new Error(`python client exited: ${stderr}`);
      return JSON.parse(next.value as string) as Record<string, unknown>;
    },
    stop: () => {
      child.kill();
    },
  };
}

const keyring = fixtureKeyring();
const device = fixtureDevice('dev-python-01');
const deps = { keyring, deviceKey: (id: string) => (id === device.deviceKeyId ? device.key : undefined) };
const binding = { method: 'POST', path: '/v1/payments/42/confirm?otp=1', audience: 'api.superapp.example' };

describe('Python client (from the spec) ⇄ gatehouse', () => {
  const python = startPythonClient();
  after(() => {
    python.stop();
  });

  test('Python reproduces the spec worked example request byte for byte from its seeds', async () => {
    const rows = new Map(workedExampleRows());
    const answer = await python.call({
      op: 'example',
      key_configs: rows.get('key configuration list (application/ohttp-keys)'),
      device_seed: 'gatehouse e2ee example device dev-01HZX3',
      ephemeral_seed: 'gatehouse e2ee example ephemeral',
      device_key_id: 'dev-01HZX3',
      method: 'POST',
      path: '/v1/transfers',
      audience: 'api.superapp.example',
      content_type: 'application/json',
      body: Buffer.from('{"amount":"12.34","currency":"EUR","to":"acct-9"}').toString('hex'),
    });
    assert.equal(answer.device_public_key, rows.get('device pkS (enrolled for device key id "dev-01HZX3")'));
    assert.equal(answer.request, rows.get('encrypted request body (hdr ‖ enc ‖ ct)'));
  });

  for (const [aeadName, aeadId] of [['AES-128-GCM', AEAD_AES_128_GCM], ['ChaCha20-Poly1305', AEAD_CHACHA20_POLY1305]] as const) {
    for (const size of [0, 1, 1024, 16 * 1024]) {
      test(`${aeadName}, ${size}-byte body: gatehouse opens Python's request and Python opens gatehouse's response`, async () => {
        const body = randomBytes(size);
        const encrypted = await python.call({
          op: 'encrypt',
          key_configs: keyring.encodedKeyConfigs().toString('hex'),
          aead_id: aeadId,
          device_private_key: x25519RawPrivateKey(device.pair.privateKey).toString('hex'),
          device_key_id: device.deviceKeyId,
          ...binding,
          content_type: size === 0 ? null : 'application/octet-stream',
          body: body.toString('hex'),
        });
        assert.equal(encrypted.content_type, E2EE_REQUEST_MEDIA_TYPE);
        const opened = decryptRequest({ ...binding, body: Buffer.from(encrypted.request as string, 'hex'), contentType: encrypted.content_type as string }, deps);
        assert.ok(opened.ok, opened.ok ? '' : `${opened.code}: ${opened.detail}`);
        assert.ok(opened.plaintext.equals(body));
        assert.equal(opened.contentType, size === 0 ? null : 'application/octet-stream');
        assert.equal(opened.deviceKeyId, device.deviceKeyId);
        assert.equal(opened.aeadId, aeadId);

        const responseBody = randomBytes(size + 7);
        const response = opened.response.encrypt(responseBody, 'application/json');
        assert.ok(response.ok);
        const decrypted = await python.call({ op: 'decrypt', body: response.body.toString('hex'), content_type: response.contentType });
        assert.deepEqual(decrypted, { ok: true, body: responseBody.toString('hex'), content_type: 'application/json' });

        const tampered = Buffer.from(response.body);
        tampered[tampered.length - 1]! ^= 0x01;
        assert.deepEqual(await python.call({ op: 'decrypt', body: tampered.toString('hex'), content_type: response.contentType }), { ok: false, error: 'aead' });
      });
    }
  }

  test("gatehouse refuses Python's request at another path (binding) and under another device key id", async () => {
    const encrypted = await python.call({
      op: 'encrypt',
      key_configs: keyring.encodedKeyConfigs().toString('hex'),
      device_private_key: x25519RawPrivateKey(device.pair.privateKey).toString('hex'),
      device_key_id: device.deviceKeyId,
      ...binding,
      content_type: 'application/json',
      body: Buffer.from('{}').toString('hex'),
    });
    const body = Buffer.from(encrypted.request as string, 'hex');
    const elsewhere = decryptRequest({ ...binding, path: '/v1/payments/43/confirm?otp=1', body, contentType: E2EE_REQUEST_MEDIA_TYPE }, deps);
    assert.equal(elsewhere.ok ? 'ok' : elsewhere.code, 'e2ee_decrypt_failed');
    // the gateway has another key enrolled under this device key id: authentication fails
    const wrongKey = decryptRequest({ ...binding, body, contentType: E2EE_REQUEST_MEDIA_TYPE }, { keyring, deviceKey: () => fixtureDevice('dev-someone-else').key });
    assert.equal(wrongKey.ok ? 'ok' : wrongKey.code, 'e2ee_decrypt_failed');
    assert.ok(decryptRequest({ ...binding, body, contentType: E2EE_REQUEST_MEDIA_TYPE }, deps).ok);
  });
});
