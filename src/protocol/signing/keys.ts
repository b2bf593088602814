// node:crypto side of the profile: JWK → KeyObject, RFC 7638 thumbprints, raw signatures.
import { createHash, createPublicKey, diffieHellman, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { base64urlEncode } from '../common/base64.js';
import { algorithmOfJwk, normalizePublicJwk, normalizeX25519Jwk, thumbprintInput, type PublicJwk, type SignatureAlgorithm, type X25519PublicJwk } from './profile.js';

export interface ImportedPublicKey {
  readonly jwk: PublicJwk;
  readonly key: KeyObject;
  readonly algorithm: SignatureAlgorithm;
  /** RFC 7638 SHA-256 thumbprint, base64url: the key's id everywhere in the protocol. */
  readonly thumbprint: string;
}

export function jwkThumbprint(jwk: PublicJwk): string {
  return base64urlEncode(createHash('sha256').update(thumbprintInput(jwk)).digest());
}

/** undefined when the value is not an allowed public key (see normalizePublicJwk) or is not on its curve. */
export function importPublicJwk(value: unknown): ImportedPublicKey | undefined {
  const jwk = normalizePublicJwk(value);
  if (jwk === undefined) return undefined;
  let key: KeyObject;
  try {
    // OpenSSL checks the point is on the curve here.
    key = createPublicKey({ key: { ...jwk }, format: 'jwk' });
  } catch {
    return undefined;
  }
  return { jwk, key, algorithm: algorithmOfJwk(jwk), thumbprint: jwkThumbprint(jwk) };
}

/** Any X25519 private key: with a clamped scalar, DH gives all zeros exactly for small-order points. */
let smallOrderProbe: KeyObject | undefined;

/**
 * An enrollment's e2ee key: normalizeX25519Jwk's checks, then not a small-order point (RFC 7748 §6.1;
 * DH with it gives the all-zero secret RFC 9180 §7.1.4 rejects, so the device could never authenticate
 * an envelope, and nobody should be enrolled under a key anyone can compute with). Never throws.
 */
export function importX25519PublicJwk(value: unknown): { ok: true; jwk: X25519PublicJwk; raw: Uint8Array } | { ok: false; reason: string } {
  const normalized = normalizeX25519Jwk(value);
  if (!normalized.ok) return normalized;
  smallOrderProbe ??= generateKeyPairSync('x25519').privateKey;
  try {
    const publicKey = createPublicKey({ key: { ...normalized.jwk }, format: 'jwk' });
    // OpenSSL fails the derivation itself on an all-zero result; the check below covers a provider that does not.
    if (diffieHellman({ privateKey: smallOrderProbe, publicKey }).every((b) => b === 0)) return { ok: false, reason: 'x is a small-order point' };
  } catch {
    return { ok: false, reason: 'x is a small-order point' };
  }
  return normalized;
}

/** Which algorithm a KeyObject (public or private) signs with; undefined for any other key. */
export function algorithmOfKey(key: KeyObject): SignatureAlgorithm | undefined {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ecdsa-p256-sha256';
  return undefined;
}

/** Raw signature: Ed25519's 64 bytes, or ECDSA P-256 as 64-byte r‖s (ieee-p1363, never DER). */
export function signRaw(algorithm: SignatureAlgorithm, privateKey: KeyObject, data: Uint8Array): Uint8Array {
  return algorithm === 'ed25519'
    ? sign(null, data, privateKey)
    : sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
}

/** Never throws. A signature that is not exactly 64 bytes is refused before any math (this is what refuses DER). */
export function verifyRaw(algorithm: SignatureAlgorithm, publicKey: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  try {
    return algorithm === 'ed25519'
      ? verify(null, data, publicKey, signature)
      : verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}
