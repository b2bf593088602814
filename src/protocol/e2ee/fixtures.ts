// Deterministic keys for tests, the worked example, the interop test and the bench: derived with
// RFC 9180 DeriveKeyPair from fixed, labelled seeds so every run (and the spec) sees the same bytes.
// Never used for production keys.
import { createHash } from 'node:crypto';
import { deriveX25519KeyPair } from './hpke.js';
import { deviceKeyFromRaw, type DeviceKey } from './envelope.js';
import { E2eeKeyring, loadGatewayKey, type GatewayKey } from './keys.js';

/** ikm = SHA-256(seed label): 32 bytes of "entropy" anyone can recompute from the spec. */
export const fixtureIkm = (label: string): Buffer => createHash('sha256').update(label).digest();

export function fixtureGatewayKey(keyId: number, aeadIds?: readonly number[]): GatewayKey {
  const { privateKey } = deriveX25519KeyPair(fixtureIkm(`gatehouse e2ee example gateway key ${keyId}`));
  return loadGatewayKey({ keyId, privateKey, ...(aeadIds === undefined ? {} : { aeadIds }) });
}

export function fixtureDevice(deviceKeyId: string): { deviceKeyId: string; pair: ReturnType<typeof deriveX25519KeyPair>; key: DeviceKey } {
  const pair = deriveX25519KeyPair(fixtureIkm(`gatehouse e2ee example device ${deviceKeyId}`));
  return { deviceKeyId, pair, key: deviceKeyFromRaw(pair.publicKey) };
}

/** Two keys at once, as during a rotation: 7 (new, published first) and 6 (old, still accepted). */
export const fixtureKeyring = (): E2eeKeyring => new E2eeKeyring([fixtureGatewayKey(7), fixtureGatewayKey(6)]);
