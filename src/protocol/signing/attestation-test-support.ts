// What the android-key-attestation and apple-app-attest tests share: the challenge their evidence
// answers, and the expectation a verifier checks it against for a given device key.
import type { KeyObject } from 'node:crypto';
import type { AttestationExpectation } from './attestation.js';
import { thumbprintOf } from './x509-chain.js';

/** A challenge of the issued shape; these verifiers check its bytes, not its MAC. */
export const TEST_CHALLENGE = 'enroll.AAAAAAAAAAAAAAAAAAAAAA.1900000000.mac-is-not-checked-here';

/** The RFC 7638 thumbprint of a test key (every key these tests make has one). */
export function keyThumbprint(key: KeyObject): string {
  const thumbprint = thumbprintOf(key);
  if (thumbprint === undefined) throw new Error(`test key of type ${String(key.asymmetricKeyType)} has no JWK thumbprint here`);
  return thumbprint;
}

/** expected(overrides): the expectation for evidence about `deviceKey`, answering TEST_CHALLENGE now. */
export function expectationFor(deviceKey: KeyObject): (overrides?: Partial<AttestationExpectation>) => AttestationExpectation {
  const deviceKeyThumbprint = keyThumbprint(deviceKey);
  return (overrides = {}) => ({ challenge: TEST_CHALLENGE, deviceKeyThumbprint, now: Math.floor(Date.now() / 1000), ...overrides });
}
