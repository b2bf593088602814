// Enrolled-device fixtures for the store tests: real keys, as enrollment would record them.
import { generateKeyPairSync } from 'node:crypto';
import type { EnrolledDevice } from '../protocol/signing/enrollment.js';
import { importPublicJwk } from '../protocol/signing/keys.js';

export function enrolledDevice(overrides: Partial<EnrolledDevice> = {}, withE2ee = true): EnrolledDevice {
  const imported = importPublicJwk(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }));
  if (imported === undefined) throw new Error('ed25519 key did not import');
  const x = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }).x;
  return {
    deviceId: imported.thumbprint,
    publicJwk: imported.jwk,
    algorithm: imported.algorithm,
    ...(withE2ee && x !== undefined ? { e2eePublicKey: new Uint8Array(Buffer.from(x, 'base64url')) } : {}),
    integrityLevel: 'strong',
    appId: 'com.example.superapp',
    subject: 'user-1',
    enrolledAt: 1_700_000_000,
    ...overrides,
  };
}
