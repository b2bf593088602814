// e2ee cost beside the node:crypto primitives it cannot avoid. Gateway operation: decrypt a request
// body and encrypt the response body (decryptRequest + ResponseEncrypter.encrypt). Its public-key
// and bulk primitives in HPKE mode_auth: importing enc, two X25519 (ephemeral and device static —
// the device authentication), AES-128-GCM open of the request and seal of the response. A second
// row per size adds the eleven HMAC-SHA256 that RFC 9180 and RFC 9458 prescribe (DHKEM 2, key
// schedule 5, export 1, response key 3), so what remains is this library's own overhead.
// Bounded loops (~1 s per pair, alternating slices, CPU time), one core, nothing printed.
import { createCipheriv, createDecipheriv, createHmac, diffieHellman, randomBytes } from 'node:crypto';
import {
  AEAD_AES_128_GCM,
  chooseKeyConfig,
  decodeKeyConfigList,
  decryptRequest,
  E2EE_REQUEST_MEDIA_TYPE,
  encryptRequest,
  x25519RawPublicKey,
} from '../../src/protocol/e2ee/index.js';
import { fixtureDevice, fixtureKeyring } from '../../src/protocol/e2ee/fixtures.js';
import { x25519PublicKeyFromRaw } from '../../src/protocol/e2ee/hpke.js';
import type { ProtocolBenchRow } from './types.js';

const MEASURE_MS = 1000;
const SLICES = 20;
const BATCH = 5;

/**
 * ops per CPU-second of a and b, measured in alternating slices (~MEASURE_MS in total). CPU time
 * (process.cpuUsage), not wall time: the bench machine is shared, and time spent descheduled
 * is not a cost of the operation; alternating slices give both sides the same cache and clock state.
 */
function opsPerSecPair(a: () => unknown, b: () => unknown): [number, number] {
  for (let i = 0; i < 3000; i++) {
    a();
    b();
  }
  const totals = [
    { fn: a, ops: 0, cpuMicros: 0 },
    { fn: b, ops: 0, cpuMicros: 0 },
  ];
  const sliceNs = BigInt(Math.round((MEASURE_MS / 2 / SLICES) * 1e6));
  for (let slice = 0; slice < SLICES; slice++) {
    for (const total of totals) {
      const cpuBefore = process.cpuUsage();
      const start = process.hrtime.bigint();
      while (process.hrtime.bigint() - start < sliceNs) {
        for (let i = 0; i < BATCH; i++) total.fn();
        total.ops += BATCH;
      }
      const cpu = process.cpuUsage(cpuBefore);
      total.cpuMicros += cpu.user + cpu.system;
    }
  }
  return [totals[0]!.ops / (totals[0]!.cpuMicros / 1e6), totals[1]!.ops / (totals[1]!.cpuMicros / 1e6)];
}

function fail(message: string): never {
  throw new Error(`e2ee bench: ${message}`);
}

export default async function e2eeBench(): Promise<ProtocolBenchRow[]> {
  await Promise.resolve(); // the runner awaits every module; this one is synchronous throughout
  const keyring = fixtureKeyring();
  const gatewayKey = keyring.keys[0] ?? fail('empty keyring');
  const device = fixtureDevice('dev-bench');
  const deps = { keyring, deviceKey: (id: string) => (id === device.deviceKeyId ? device.key : undefined) };
  const decoded = decodeKeyConfigList(keyring.encodedKeyConfigs());
  if (!decoded.ok) fail(decoded.detail);
  const chosen = chooseKeyConfig(decoded.configs, [AEAD_AES_128_GCM]);
  if (!chosen.ok) fail(chosen.detail);
  const binding = { method: 'POST', path: '/v1/transfers', audience: 'api.superapp.example' };

  const rows: ProtocolBenchRow[] = [];
  for (const size of [1024, 16 * 1024]) {
    const requestBody = randomBytes(size);
    const responseBody = randomBytes(size);
    const sealed = encryptRequest({
      ...binding,
      keyConfig: chosen.config,
      suite: chosen.suite,
      deviceKeyId: device.deviceKeyId,
      devicePrivateKey: device.pair.privateKey,
      body: requestBody,
      contentType: 'application/json',
    });
    if (!sealed.ok) fail(sealed.detail);

    const protocol = (): number => {
      const opened = decryptRequest({ ...binding, body: sealed.body, contentType: E2EE_REQUEST_MEDIA_TYPE }, deps);
      if (!opened.ok) fail(opened.code);
      const response = opened.response.encrypt(responseBody, 'application/json');
      if (!response.ok) fail(response.code);
      return response.body.length;
    };

    // The primitives alone, on inputs of the same sizes: import enc, X25519 ×2, AES-GCM open + seal.
    const enc = x25519RawPublicKey(device.pair.privateKey); // any valid point of the same shape
    const key = randomBytes(16);
    const nonce = randomBytes(12);
    const requestCiphertext = (() => {
      const cipher = createCipheriv('aes-128-gcm', key, nonce);
      return Buffer.concat([cipher.update(requestBody), cipher.final(), cipher.getAuthTag()]);
    })();
    const primitives = (): number => {
      const ephemeral = x25519PublicKeyFromRaw(enc);
      const dhE = diffieHellman({ privateKey: gatewayKey.privateKey, publicKey: ephemeral });
      const dhS = diffieHellman({ privateKey: gatewayKey.privateKey, publicKey: device.key.keyObject });
      const decipher = createDecipheriv('aes-128-gcm', key, nonce);
      decipher.setAuthTag(requestCiphertext.subarray(size));
      decipher.update(requestCiphertext.subarray(0, size));
      decipher.final();
      const cipher = createCipheriv('aes-128-gcm', key, nonce);
      cipher.update(responseBody);
      cipher.final();
      return dhE.length + dhS.length + cipher.getAuthTag().length;
    };

    // The same plus the key schedule's HMAC-SHA256 calls on inputs of their real sizes.
    const hmacKey = randomBytes(32);
    const hmacInputs = [32, 64, 140, 32, 80, 80, 80, 80, 48, 32, 32].map((length) => randomBytes(length));
    const primitivesWithKdf = (): number => {
      let length = primitives();
      for (const input of hmacInputs) length += createHmac('sha256', hmacKey).update(input).digest().length;
      return length;
    };

    const label = size === 1024 ? '1 KiB' : '16 KiB';
    const operation = `decrypt and re-encrypt a ${label} body (HPKE mode_auth, AES-128-GCM)`;
    const [opsPerSec, primitiveOpsPerSec] = opsPerSecPair(protocol, primitives);
    rows.push({
      operation,
      opsPerSec: Math.round(opsPerSec),
      primitive: {
        description: `X25519 ×2 (ephemeral + device static) + AES-128-GCM open and seal of ${label}`,
        opsPerSec: Math.round(primitiveOpsPerSec),
      },
      overheadRatio: primitiveOpsPerSec / opsPerSec,
    });
    const [opsPerSecAgain, kdfOpsPerSec] = opsPerSecPair(protocol, primitivesWithKdf);
    rows.push({
      operation: `${operation}, vs. primitives incl. its 11 HMAC-SHA256`,
      opsPerSec: Math.round(opsPerSecAgain),
      primitive: {
        description: `the above + 11 HMAC-SHA256 (RFC 9180 key schedule, RFC 9458 response key)`,
        opsPerSec: Math.round(kdfOpsPerSec),
      },
      overheadRatio: kdfOpsPerSec / opsPerSecAgain,
    });
  }
  return rows;
}
