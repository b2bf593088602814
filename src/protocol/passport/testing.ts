// Test support shared by the passport core, SDK, interop and bench: fixed time, a typical subject,
// and a token crafter that signs any header and payload with jose (an implementation independent
// of ours), so refusals are tested on real signed tokens rather than on our own encoder's output.
import { CompactSign } from 'jose';
import type { KeyObject } from 'node:crypto';
import type { PassportAlgorithm, PassportSubject } from './claims.js';
import { base64urlEncode, signJws } from './jws.js';
import { createPassportIssuer, type PassportIssuer } from './issue.js';
import type { PassportKey, PassportKeyring, VerificationKey } from './keys.js';

/** 2026-11-24T23:00:00Z */
export const FIXED_NOW_SECONDS = 1_795_561_200;

export const SAMPLE_SUBJECT: PassportSubject = {
  sub: 'u-8c1f2a',
  aud: 'payments',
  txn: 'req-01JDX6T2K9',
  dev: { id: 'dev-5f0e7b', os: 'ios 18.1', model: 'iPhone15,2', app: 'superapp/5.2.0' },
  amr: ['pwd', 'otp'],
  aal: 2,
  itl: 2,
};

export const SAMPLE_ISSUER = 'https://gatehouse.superapp.internal';

export function fixedIssuer(keyring: PassportKeyring, nowSeconds = FIXED_NOW_SECONDS, lifetimeSeconds = 30): PassportIssuer {
  return createPassportIssuer({ keyring, issuer: SAMPLE_ISSUER, lifetimeSeconds, now: () => nowSeconds * 1000 });
}

export function verificationKeys(keyring: PassportKeyring): Map<string, VerificationKey> {
  return new Map(keyring.keys.map((key) => [key.kid, { kid: key.kid, alg: key.alg, publicKey: key.publicKey }]));
}

/** A complete claim set as the issuer would sign it, for crafted tokens to start from. */
export function samplePayload(nowSeconds = FIXED_NOW_SECONDS): Record<string, unknown> {
  return { iss: SAMPLE_ISSUER, ...SAMPLE_SUBJECT, iat: nowSeconds, exp: nowSeconds + 30 };
}

/** Signs exactly this header and payload (a string payload is signed as is) with jose. */
export async function craftToken(header: Record<string, unknown>, payload: Record<string, unknown> | string, key: KeyObject, alg: string): Promise<string> {
  const bytes = new TextEncoder().encode(typeof payload === 'string' ? payload : JSON.stringify(payload));
  return new CompactSign(bytes).setProtectedHeader({ ...header, alg }).sign(key);
}

/** For headers jose refuses to produce (crit with an unknown extension): our own signer, same bytes rule. */
export function craftTokenRaw(header: Record<string, unknown>, payload: unknown, key: KeyObject, alg: PassportAlgorithm): string {
  const input = `${base64urlEncode(JSON.stringify({ ...header, alg }))}.${base64urlEncode(JSON.stringify(payload))}`;
  return `${input}.${signJws(alg, key, input).toString('base64url')}`;
}

export function signingKeyOf(key: PassportKey): KeyObject {
  if (key.privateKey === undefined) throw new Error(`key ${key.kid} has no private key`);
  return key.privateKey;
}
