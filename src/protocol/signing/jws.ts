// Compact JWS decoding and signing for the protocol's own tokens (credential, credential request,
// enrollment proof). Verification is synchronous on node:crypto so the per-request path never awaits;
// `alg` and `typ` are pinned by the caller, never taken from the token.
import { type KeyObject } from 'node:crypto';
import { base64urlDecode, base64urlEncode, fromUtf8, utf8 } from '../common/base64.js';
import { signRaw, verifyRaw } from './keys.js';
import { JOSE_ALGORITHM, type SignatureAlgorithm } from './profile.js';

export interface DecodedJws {
  readonly header: Readonly<Record<string, unknown>>;
  readonly payload: Readonly<Record<string, unknown>>;
  readonly signingInput: Uint8Array;
  readonly signature: Uint8Array;
}

export const MAX_JWS_LENGTH = 8192;

function jsonObject(segment: string): Record<string, unknown> | undefined {
  const bytes = base64urlDecode(segment);
  const text = bytes === undefined ? undefined : fromUtf8(bytes);
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Splits and decodes a compact JWS without verifying it; undefined for anything that is not one. */
export function decodeCompactJws(token: unknown): DecodedJws | undefined {
  if (typeof token !== 'string' || token.length > MAX_JWS_LENGTH) return undefined;
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [h, p, s] = parts as [string, string, string];
  const header = jsonObject(h);
  const payload = jsonObject(p);
  const signature = base64urlDecode(s);
  if (header === undefined || payload === undefined || signature === undefined) return undefined;
  // crit would oblige us to understand extensions we do not implement (RFC 7515 §4.1.11).
  if ('crit' in header) return undefined;
  return { header, payload, signingInput: utf8(`${h}.${p}`), signature };
}

/** True when the header names exactly the expected alg and typ and the signature verifies. */
export function verifyDecodedJws(jws: DecodedJws, algorithm: SignatureAlgorithm, typ: string, publicKey: KeyObject): boolean {
  return jws.header.alg === JOSE_ALGORITHM[algorithm] && jws.header.typ === typ && verifyRaw(algorithm, publicKey, jws.signingInput, jws.signature);
}

/** Compact JWS with header {alg, typ, ...extra} — for tests and tools; issuance uses jose. */
export function signCompactJws(
  algorithm: SignatureAlgorithm,
  privateKey: KeyObject,
  typ: string,
  payload: object,
  extraHeader: Readonly<Record<string, string>> = {},
): string {
  const header = base64urlEncode(utf8(JSON.stringify({ alg: JOSE_ALGORITHM[algorithm], typ, ...extraHeader })));
  const body = base64urlEncode(utf8(JSON.stringify(payload)));
  return `${header}.${body}.${base64urlEncode(signRaw(algorithm, privateKey, utf8(`${header}.${body}`)))}`;
}
