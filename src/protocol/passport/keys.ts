// Passport key material: the key manifest format, PEM loading with errors that name the file and
// the field, the dev keyring, and the JWK/JWKS forms. Everything here runs once at load; the hot
// path only holds the resulting KeyObjects.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { PassportAlgorithm } from './claims.js';
import { describeValue } from './jws.js';

export type KeyStatus = 'active' | 'published';

export interface PassportKey {
  readonly kid: string;
  readonly alg: PassportAlgorithm;
  /** active: the one signer; published: in the JWKS for verification only (next key, or the previous one during overlap) */
  readonly status: KeyStatus;
  readonly publicKey: KeyObject;
  /** absent for a published key loaded from a public-key PEM */
  readonly privateKey?: KeyObject;
}

export interface PassportKeyring {
  readonly active: PassportKey & { readonly privateKey: KeyObject };
  /** every key, the active one first: the JWKS order */
  readonly keys: readonly PassportKey[];
  /** true for generateDevKeyring(): in-memory keys that must never serve production traffic */
  readonly dev: boolean;
}

export interface PassportJwk {
  readonly kty: 'EC' | 'OKP';
  readonly crv: 'P-256' | 'Ed25519';
  readonly x: string;
  readonly y?: string;
  readonly kid: string;
  readonly alg: PassportAlgorithm;
  readonly use: 'sig';
}

export interface JwksDocument {
  readonly keys: readonly PassportJwk[];
}

/** A key-file problem at load time, naming the file and the field so an operator can fix it. */
export class PassportKeyError extends Error {
  constructor(
    readonly file: string,
    readonly field: string | undefined,
    /** what is wrong, without the file and field (for callers that load other key sets with this format) */
    readonly problem: string,
  ) {
    super(`passport keys: ${file}${field === undefined ? '' : ` ${field}`}: ${problem}`);
    this.name = 'PassportKeyError';
  }
}

export const KID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const DEV_KID_PREFIX = 'DEV-ONLY-';

/** The algorithm a key can only be used with: a key never signs under a second algorithm. */
export function algorithmOfKey(key: KeyObject): PassportAlgorithm | undefined {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  return undefined;
}

function describeKeyType(key: KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return `${key.asymmetricKeyType ?? key.type}${curve === undefined ? '' : ` ${curve}`}`;
}

export interface KeySource {
  readonly kid: string;
  readonly status: KeyStatus;
  /** PEM text: PKCS#8 "PRIVATE KEY", or SPKI "PUBLIC KEY" for a published key */
  readonly pem: string;
  /** where the PEM came from, for error messages */
  readonly file: string;
}

function importPem(source: KeySource): PassportKey {
  const { pem, file, kid, status } = source;
  const isPrivate = pem.includes('-----BEGIN PRIVATE KEY-----');
  const isPublic = pem.includes('-----BEGIN PUBLIC KEY-----');
  if (!isPrivate && !isPublic) {
    throw new PassportKeyError(file, undefined, 'not a PEM "PRIVATE KEY" (PKCS#8) or "PUBLIC KEY" (SPKI) block');
  }
  if (isPublic && status === 'active') {
    throw new PassportKeyError(file, undefined, `key ${kid} is active, so the file must hold its PKCS#8 private key, not a public key`);
  }
  let privateKey: KeyObject | undefined;
  let publicKey: KeyObject;
  try {
    if (isPrivate) {
      privateKey = createPrivateKey({ key: pem, format: 'pem' });
      publicKey = createPublicKey(privateKey);
    } else {
      publicKey = createPublicKey({ key: pem, format: 'pem' });
    }
  } catch (error) {
    throw new PassportKeyError(file, undefined, `unreadable PEM: ${(error as Error).message}`);
  }
  const alg = algorithmOfKey(publicKey);
  if (alg === undefined) {
    throw new PassportKeyError(file, undefined, `key type ${describeKeyType(publicKey)} is not supported (EC P-256 for ES256, or Ed25519 for EdDSA)`);
  }
  return privateKey ? { kid, alg, status, publicKey, privateKey } : { kid, alg, status, publicKey };
}

/** Builds a keyring from already-read sources: exactly one active key, unique kids. */
export function keyringFromSources(sources: readonly KeySource[], origin: string): PassportKeyring {
  const keys: PassportKey[] = [];
  const seen = new Set<string>();
  for (const source of sources) {
    if (!KID_PATTERN.test(source.kid)) throw new PassportKeyError(source.file, 'kid', `must match ${String(KID_PATTERN)}, got ${JSON.stringify(source.kid)}`);
    if (seen.has(source.kid)) throw new PassportKeyError(origin, 'kid', `${source.kid} appears twice`);
    seen.add(source.kid);
    keys.push(importPem(source));
  }
  return assembleKeyring(keys, origin, false);
}

function assembleKeyring(keys: readonly PassportKey[], origin: string, dev: boolean): PassportKeyring {
  const active = keys.filter((key) => key.status === 'active');
  if (active.length !== 1) throw new PassportKeyError(origin, 'status', `exactly one key must be "active", found ${active.length}`);
  const signer = active[0]!;
  if (signer.privateKey === undefined) throw new PassportKeyError(origin, 'status', `active key ${signer.kid} has no private key`);
  return {
    active: { ...signer, privateKey: signer.privateKey },
    keys: [signer, ...keys.filter((key) => key !== signer)],
    dev,
  };
}

/**
 * Loads the key manifest, a JSON file:
 *   { "keys": [ { "kid": "2026-11-a", "status": "active", "file": "2026-11-a.pem" },
 *               { "kid": "2026-10-a", "status": "published", "file": "2026-10-a.pem" } ] }
 * `file` is relative to the manifest's directory. Rotation: add the next key as "published", wait
 * for upstream JWKS caches to refresh, make it "active" and the old one "published", later remove it.
 */
export function loadKeyring(manifestPath: string): PassportKeyring {
  const manifestFile = resolve(manifestPath);
  let text: string;
  try {
    text = readFileSync(manifestFile, 'utf8');
  } catch (error) {
    throw new PassportKeyError(manifestFile, undefined, `cannot read: ${(error as Error).message}`);
  }
  let manifest: unknown;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new PassportKeyError(manifestFile, undefined, `not JSON: ${(error as Error).message}`);
  }
  const entries = (manifest as { keys?: unknown } | null)?.keys;
  if (typeof manifest !== 'object' || manifest === null || !Array.isArray(entries)) {
    throw new PassportKeyError(manifestFile, 'keys', 'must be an array of { kid, status, file }');
  }
  const sources = (entries as unknown[]).map((entry, index): KeySource => {
    const field = (name: string): string => `keys[${index}].${name}`;
    if (typeof entry !== 'object' || entry === null) throw new PassportKeyError(manifestFile, `keys[${index}]`, 'must be an object { kid, status, file }');
    const { kid, status, file } = entry as Record<string, unknown>;
    if (typeof kid !== 'string' || !KID_PATTERN.test(kid)) throw new PassportKeyError(manifestFile, field('kid'), `must match ${String(KID_PATTERN)}, got ${describeValue(kid)}`);
    if (entries.slice(0, index).some((earlier) => (earlier as { kid?: unknown } | null)?.kid === kid)) {
      throw new PassportKeyError(manifestFile, field('kid'), `${kid} appears twice`);
    }
    if (status !== 'active' && status !== 'published') {
      throw new PassportKeyError(manifestFile, field('status'), `must be "active" or "published", got ${describeValue(status)}`);
    }
    if (typeof file !== 'string' || file.length === 0) throw new PassportKeyError(manifestFile, field('file'), 'must be a path to a PEM file');
    const pemFile = resolve(dirname(manifestFile), file);
    let pem: string;
    try {
      pem = readFileSync(pemFile, 'utf8');
    } catch (error) {
      throw new PassportKeyError(pemFile, undefined, `cannot read (from ${field('file')}): ${(error as Error).message}`);
    }
    return { kid, status, pem, file: pemFile };
  });
  return keyringFromSources(sources, manifestFile);
}

/** In-memory keys for development and tests only: kids say DEV-ONLY and the keyring says dev. */
export function generateDevKeyring(alg: PassportAlgorithm = 'EdDSA'): PassportKeyring {
  const pair = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  const kid = `${DEV_KID_PREFIX}${randomBytes(6).toString('hex')}`;
  return assembleKeyring([{ kid, alg, status: 'active', publicKey: pair.publicKey, privateKey: pair.privateKey }], 'generateDevKeyring', true);
}

/** A keyring from keys already in memory (tests, the worked example); the same rules as files. */
export function keyringFromKeys(keys: readonly PassportKey[]): PassportKeyring {
  for (const key of keys) {
    if (!KID_PATTERN.test(key.kid)) throw new PassportKeyError('keyringFromKeys', 'kid', `must match ${String(KID_PATTERN)}, got ${JSON.stringify(key.kid)}`);
    if (algorithmOfKey(key.publicKey) !== key.alg) throw new PassportKeyError('keyringFromKeys', 'alg', `key ${key.kid} cannot be used with ${key.alg}`);
  }
  if (new Set(keys.map((key) => key.kid)).size !== keys.length) throw new PassportKeyError('keyringFromKeys', 'kid', 'kids must be unique');
  return assembleKeyring(keys, 'keyringFromKeys', false);
}

export function publicJwk(key: Pick<PassportKey, 'kid' | 'alg' | 'publicKey'>): PassportJwk {
  const jwk = key.publicKey.export({ format: 'jwk' });
  if (key.alg === 'ES256') return { kty: 'EC', crv: 'P-256', x: jwk.x!, y: jwk.y!, kid: key.kid, alg: 'ES256', use: 'sig' };
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x!, kid: key.kid, alg: 'EdDSA', use: 'sig' };
}

export function jwksDocument(keyring: PassportKeyring): JwksDocument {
  return { keys: keyring.keys.map(publicJwk) };
}

export interface VerificationKey {
  readonly kid: string;
  readonly alg: PassportAlgorithm;
  readonly publicKey: KeyObject;
}

export type JwksParse = { readonly ok: true; readonly keys: ReadonlyMap<string, VerificationKey> } | { readonly ok: false; readonly detail: string };

/**
 * Reads a fetched JWKS document into kid → key. Entries that are not passport signing keys (other
 * key types, use "enc") are skipped; a document that is not { keys: [...] }, or repeats a kid, or
 * holds a passport-type key that does not import, is refused as a whole (the caller keeps its
 * previous key set rather than half of a suspicious one).
 */
export function parseJwks(document: unknown): JwksParse {
  const entries = (document as { keys?: unknown } | null)?.keys;
  if (typeof document !== 'object' || document === null || !Array.isArray(entries)) return { ok: false, detail: 'not a JWKS document { keys: [...] }' };
  const keys = new Map<string, VerificationKey>();
  for (const entry of entries as unknown[]) {
    if (typeof entry !== 'object' || entry === null) return { ok: false, detail: 'a JWKS entry is not an object' };
    const jwk = entry as Record<string, unknown>;
    const ours = (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') || (jwk.kty === 'EC' && jwk.crv === 'P-256');
    if (!ours || (jwk.use !== undefined && jwk.use !== 'sig')) continue;
    if (typeof jwk.kid !== 'string' || jwk.kid.length === 0) return { ok: false, detail: 'a signing key has no kid' };
    if (keys.has(jwk.kid)) return { ok: false, detail: `kid ${jwk.kid} appears twice` };
    let publicKey: KeyObject;
    try {
      // only the public members: a JWKS that leaks "d" must not make us hold a private key
      const members = jwk.kty === 'EC' ? { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y } : { kty: 'OKP', crv: 'Ed25519', x: jwk.x };
      publicKey = createPublicKey({ key: members as JsonWebKey, format: 'jwk' });
    } catch {
      return { ok: false, detail: `key ${jwk.kid} does not import` };
    }
    const alg = algorithmOfKey(publicKey)!;
    if (jwk.alg !== undefined && jwk.alg !== alg) return { ok: false, detail: `key ${jwk.kid} says alg ${describeValue(jwk.alg)} but is an ${alg} key` };
    keys.set(jwk.kid, { kid: jwk.kid, alg, publicKey });
  }
  return { ok: true, keys };
}

/** Ed25519 private key from a 32-byte seed (RFC 8032 §5.1.5): deterministic keys for the worked example. */
export function ed25519PrivateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new RangeError('an Ed25519 seed is 32 bytes');
  const pkcs8Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');
  return createPrivateKey({ key: Buffer.concat([pkcs8Prefix, seed]), format: 'der', type: 'pkcs8' });
}
