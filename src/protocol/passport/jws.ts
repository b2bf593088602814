// A thin synchronous JWS (RFC 7515 compact serialisation) over node:crypto for the two passport
// algorithms. jose's API is async and generic; the hot path (one issue per request at the gateway,
// one verify per request upstream) needs one sign or verify and little else. The output is plain
// standard JWS: jose and PyJWT verify it (see the round-trip and interop tests).
import { sign, verify, type KeyObject } from 'node:crypto';
import type { PassportAlgorithm } from './claims.js';

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function base64urlEncode(data: string | Uint8Array): string {
  return Buffer.from(data).toString('base64url');
}

/**
 * Strict base64url (RFC 7515 §2: no padding, no whitespace, URL-safe alphabet). Node's decoder
 * skips invalid characters and ignores non-zero trailing bits, which would let many strings map to
 * one token; here only the canonical encoding of a byte string decodes.
 */
export function base64urlDecode(text: string): Buffer | undefined {
  if (text.length % 4 === 1 || !BASE64URL.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : undefined;
}

/** Strict UTF-8 then JSON; undefined for anything that is not a JSON object. */
export function decodeJsonObject(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(utf8.decode(bytes));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A header or manifest value for an error detail; JSON.stringify answers undefined for undefined. */
export function describeValue(value: unknown): string {
  return value === undefined ? 'absent' : JSON.stringify(value);
}

/** ES256 signatures are raw r‖s (RFC 7518 §3.4), never DER. */
export const SIGNATURE_LENGTH: Readonly<Record<PassportAlgorithm, number>> = { ES256: 64, EdDSA: 64 };

export function signJws(alg: PassportAlgorithm, privateKey: KeyObject, signingInput: string): Buffer {
  const data = Buffer.from(signingInput, 'latin1'); // the input is ASCII (base64url and '.')
  return alg === 'ES256' ? sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }) : sign(null, data, privateKey);
}

export function verifyJws(alg: PassportAlgorithm, publicKey: KeyObject, signingInput: string, signature: Buffer): boolean {
  if (signature.length !== SIGNATURE_LENGTH[alg]) return false;
  const data = Buffer.from(signingInput, 'latin1');
  try {
    return alg === 'ES256'
      ? verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)
      : verify(null, data, publicKey, signature);
  } catch {
    // a key of the wrong type for the algorithm; the caller already matched them, so this is a bad signature
    return false;
  }
}
