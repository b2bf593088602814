// Credentials: gatehouse's short-lived JWS binding an ephemeral request-signing key (cnf.jkt, RFC 9449
// style) to an enrolled device, its subject and integrity level. Issued with jose; verified
// synchronously and cached by hash so the per-request path costs one lookup.
import { createHash, createPublicKey, hash, randomBytes, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
import { base64urlEncode } from '../common/base64.js';
import { verifyChallenge, type ChallengeSecrets } from './challenge.js';
import { fail, type SigningFailure } from './codes.js';
import { type EnrolledDevice } from './enrollment.js';
import { decodeCompactJws, verifyDecodedJws } from './jws.js';
import { algorithmOfKey, importPublicJwk } from './keys.js';
import {
  CREDENTIAL_REQUEST_TYPE,
  CREDENTIAL_TYPE,
  JOSE_ALGORITHM,
  MAX_CREDENTIAL_LIFETIME_SECONDS,
  isIntegrityLevel,
  type IntegrityLevel,
  type PublicJwk,
  type SignatureAlgorithm,
} from './profile.js';

// ——— Issuance ———————————————————————————————————————————————————————————————

export interface CredentialIssuer {
  /** `iss` of every credential. */
  readonly issuer: string;
  readonly kid: string;
  /** P-256 or Ed25519 private key; its type decides ES256 or EdDSA. */
  readonly privateKey: KeyObject;
  /** ≤ 600. */
  readonly lifetimeSeconds?: number;
}

/** Unverified look inside a credential request, so the caller knows which device record to load. */
export function inspectCredentialRequest(request: unknown): { ok: true; deviceId: string } | SigningFailure {
  const jws = decodeCompactJws(request);
  if (jws === undefined || typeof jws.payload.dev !== 'string') return fail('credential_request_malformed', 'not a compact JWS with a dev claim');
  return { ok: true, deviceId: jws.payload.dev };
}

export interface CredentialIssued {
  readonly ok: true;
  readonly credential: string;
  readonly expiresAt: number;
  /** The bound ephemeral key's thumbprint: the keyid of every request signed under this credential. */
  readonly keyThumbprint: string;
  readonly challengeId: string;
  readonly challengeExpiresAt: number;
}

/**
 * Verifies a credential request — compact JWS by the enrolled device key, header
 * {alg, typ: "gh-credential-request+jwt"}, payload {chl, dev, jwk} — and issues the credential.
 */
export async function issueCredential(
  request: unknown,
  options: {
    readonly device: EnrolledDevice;
    readonly challengeSecrets: ChallengeSecrets;
    readonly issuer: CredentialIssuer;
    readonly allowedAlgorithms?: readonly SignatureAlgorithm[];
    readonly now: number;
    /** Test seam for reproducible examples; random otherwise. */
    readonly jti?: string;
  },
): Promise<CredentialIssued | SigningFailure> {
  const jws = decodeCompactJws(request);
  if (jws === undefined) return fail('credential_request_malformed', 'not a compact JWS');
  const { chl, dev, jwk } = jws.payload;
  if (typeof chl !== 'string' || typeof dev !== 'string' || jwk === undefined) return fail('credential_request_malformed', 'chl, dev and jwk are required');
  if (dev !== options.device.deviceId) return fail('credential_wrong_device', 'request names another device');
  const deviceKey = importPublicJwk(options.device.publicJwk);
  if (deviceKey === undefined || deviceKey.thumbprint !== options.device.deviceId) return fail('credential_wrong_device', 'device record key does not match its id');
  if (jws.header.alg !== JOSE_ALGORITHM[deviceKey.algorithm]) return fail('algorithm_not_allowed', 'request alg is not the device key algorithm');
  if (!verifyDecodedJws(jws, deviceKey.algorithm, CREDENTIAL_REQUEST_TYPE, deviceKey.key)) return fail('device_proof_invalid', 'device-key signature does not verify');
  const challenge = verifyChallenge(chl, { secrets: options.challengeSecrets, purpose: 'credential', now: options.now });
  if (!challenge.ok) return challenge;
  const ephemeral = importPublicJwk(jwk);
  if (ephemeral === undefined) return fail('key_not_allowed', 'jwk is not a P-256 or Ed25519 public key');
  if (!(options.allowedAlgorithms ?? ['ecdsa-p256-sha256', 'ed25519']).includes(ephemeral.algorithm)) return fail('key_not_allowed', `${ephemeral.algorithm} is not allowed`);

  const issuerAlgorithm = algorithmOfKey(options.issuer.privateKey);
  if (issuerAlgorithm === undefined) return fail('credential_invalid', 'issuer key is neither P-256 nor Ed25519');
  const lifetime = Math.min(options.issuer.lifetimeSeconds ?? MAX_CREDENTIAL_LIFETIME_SECONDS, MAX_CREDENTIAL_LIFETIME_SECONDS);
  const now = Math.floor(options.now);
  const credential = await new SignJWT({
    dev: options.device.deviceId,
    lvl: options.device.integrityLevel,
    cnf: { jkt: ephemeral.thumbprint, jwk: ephemeral.jwk },
  })
    .setProtectedHeader({ alg: JOSE_ALGORITHM[issuerAlgorithm], typ: CREDENTIAL_TYPE, kid: options.issuer.kid })
    .setIssuer(options.issuer.issuer)
    .setSubject(options.device.subject)
    .setIssuedAt(now)
    .setExpirationTime(now + lifetime)
    .setJti(options.jti ?? base64urlEncode(randomBytes(12)))
    .sign(options.issuer.privateKey);
  return { ok: true, credential, expiresAt: now + lifetime, keyThumbprint: ephemeral.thumbprint, challengeId: challenge.id, challengeExpiresAt: challenge.expiresAt };
}

// ——— Verification ———————————————————————————————————————————————————————————

/** The issuer keys gatehouse accepts credentials from. Build one per key-set version: its fingerprint is part of every cache key, so rotating keys invalidates cached credentials. */
export class CredentialTrust {
  readonly fingerprint: string;
  private readonly keys: ReadonlyMap<string, { key: KeyObject; algorithm: SignatureAlgorithm }>;

  constructor(
    readonly issuer: string,
    keys: readonly { kid: string; publicKey: KeyObject }[],
  ) {
    const map = new Map<string, { key: KeyObject; algorithm: SignatureAlgorithm }>();
    const hash = createHash('sha256').update(issuer);
    for (const { kid, publicKey } of keys) {
      const key = publicKey.type === 'private' ? createPublicKey(publicKey) : publicKey;
      const algorithm = algorithmOfKey(key);
      if (algorithm === undefined) throw new TypeError(`issuer key ${kid} is neither P-256 nor Ed25519`);
      map.set(kid, { key, algorithm });
      hash.update(`\n${kid}\n`).update(key.export({ format: 'der', type: 'spki' }));
    }
    this.keys = map;
    this.fingerprint = hash.digest('base64url').slice(0, 16);
  }

  keyFor(kid: unknown): { key: KeyObject; algorithm: SignatureAlgorithm } | undefined {
    return typeof kid === 'string' ? this.keys.get(kid) : undefined;
  }
}

/** A verified credential with everything the per-request check needs precomputed. */
export interface VerifiedCredential {
  readonly subject: string;
  readonly deviceId: string;
  readonly integrityLevel: IntegrityLevel;
  readonly keyThumbprint: string;
  readonly keyJwk: PublicJwk;
  readonly publicKey: KeyObject;
  readonly algorithm: SignatureAlgorithm;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly issuerKid: string;
  readonly jti: string | undefined;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Full verification, no cache. Never throws. */
export function verifyCredential(token: string, trust: CredentialTrust, now: number): { ok: true; credential: VerifiedCredential } | SigningFailure {
  const jws = decodeCompactJws(token);
  if (jws === undefined) return fail('credential_invalid', 'not a compact JWS');
  const issuerKey = trust.keyFor(jws.header.kid);
  if (issuerKey === undefined) return fail('credential_invalid', 'unknown issuer kid (rotated out?)');
  if (!verifyDecodedJws(jws, issuerKey.algorithm, CREDENTIAL_TYPE, issuerKey.key)) return fail('credential_invalid', 'issuer signature, alg or typ is wrong');
  const { iss, sub, dev, lvl, cnf, iat, exp, jti } = jws.payload;
  if (iss !== trust.issuer) return fail('credential_invalid', 'wrong issuer');
  if (typeof sub !== 'string' || typeof dev !== 'string' || !isIntegrityLevel(lvl) || !isTime(iat) || !isTime(exp) || !isRecord(cnf) || (jti !== undefined && typeof jti !== 'string')) {
    return fail('credential_invalid', 'claims are missing or mistyped');
  }
  if (exp - iat > MAX_CREDENTIAL_LIFETIME_SECONDS || exp <= iat) return fail('credential_invalid', 'lifetime exceeds the maximum');
  // Comparisons are written so a NaN clock fails closed.
  if (!(now < exp)) return fail('credential_expired', 'credential has expired');
  if (!(iat <= now + 60)) return fail('credential_expired', 'credential is not valid yet');
  const key = importPublicJwk(cnf.jwk);
  if (key === undefined || key.thumbprint !== cnf.jkt) return fail('credential_invalid', 'cnf.jwk is missing or does not hash to cnf.jkt');
  return {
    ok: true,
    credential: {
      subject: sub,
      deviceId: dev,
      integrityLevel: lvl,
      keyThumbprint: key.thumbprint,
      keyJwk: key.jwk,
      publicKey: key.key,
      algorithm: key.algorithm,
      issuedAt: iat,
      expiresAt: exp,
      issuerKid: jws.header.kid as string,
      jti,
    },
  };
}

/**
 * Bounded cache of verified credentials (oldest entry evicted first; credentials live ≤ 10 min, so
 * recency tracking would buy little), keyed by the trust fingerprint and the SHA-256 of the token:
 * a token is verified once, and a key rotation (new CredentialTrust) misses every old entry.
 * The caller owns it (one per process), so tests and the filter decide its size.
 */
export class CredentialCache {
  private readonly entries = new Map<string, VerifiedCredential>();

  constructor(readonly maxEntries = 10_000) {}

  get size(): number {
    return this.entries.size;
  }

  lookup(token: string, trust: CredentialTrust, now: number): { ok: true; credential: VerifiedCredential; cached: boolean } | SigningFailure {
    const cacheKey = `${trust.fingerprint}:${hash('sha256', token, 'base64url')}`;
    const hit = this.entries.get(cacheKey);
    if (hit !== undefined) {
      if (!(now < hit.expiresAt)) {
        this.entries.delete(cacheKey);
        return fail('credential_expired', 'credential has expired');
      }
      return { ok: true, credential: hit, cached: true };
    }
    const verified = verifyCredential(token, trust, now);
    if (!verified.ok) return verified;
    if (this.entries.size >= this.maxEntries) {
      // Map iteration order is insertion order: the first key is the oldest entry.
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.entries.set(cacheKey, verified.credential);
    return { ok: true, credential: verified.credential, cached: false };
  }
}
