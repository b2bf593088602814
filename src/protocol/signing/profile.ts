// The gatehouse profile of RFC 9421: every fixed name and limit of the protocol, in one place. Pure
// (no node:crypto), so the app SDK imports the same facts the verifier enforces.
import { base64urlDecode } from '../common/base64.js';

/** The `tag` parameter that marks the one signature gatehouse verifies (RFC 9421 §2.3). */
export const SIGNATURE_TAG = 'gatehouse-v1';
/** Header carrying the gatehouse-issued credential that binds the request-signing key. */
export const CREDENTIAL_HEADER = 'device-credential';
/** RFC 9421 §4.1 and §4.2 fields, and RFC 9530's digest of the body they cover. */
export const SIGNATURE_INPUT_HEADER = 'signature-input';
export const SIGNATURE_HEADER = 'signature';
export const CONTENT_DIGEST_HEADER = 'content-digest';

/** Components every signature must cover; any order, each exactly once. */
export const REQUIRED_COMPONENTS = ['@method', '@authority', '@path', '@query', CONTENT_DIGEST_HEADER, CREDENTIAL_HEADER] as const;
/** Derived components the profile knows how to rebuild; anything else starting with '@' is refused. */
export const DERIVED_COMPONENTS = ['@method', '@authority', '@path', '@query'] as const;
/** Signature parameters that must all be present; no others are accepted. */
export const REQUIRED_PARAMETERS = ['created', 'expires', 'nonce', 'keyid', 'alg', 'tag'] as const;

export const SIGNATURE_ALGORITHMS = ['ecdsa-p256-sha256', 'ed25519'] as const;
export type SignatureAlgorithm = (typeof SIGNATURE_ALGORITHMS)[number];

/** The JOSE name of each algorithm, used for device-signed JWS (credential requests, proofs). */
export const JOSE_ALGORITHM: Readonly<Record<SignatureAlgorithm, 'ES256' | 'EdDSA'>> = {
  'ecdsa-p256-sha256': 'ES256',
  ed25519: 'EdDSA',
};

/** Nonce: 16–64 characters of the base64url alphabet (≥ 96 bits when random). */
export const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

export const CREDENTIAL_TYPE = 'gh-credential+jwt';
export const CREDENTIAL_REQUEST_TYPE = 'gh-credential-request+jwt';
export const ENROLLMENT_PROOF_TYPE = 'gh-enrollment+jwt';
/**
 * The enrollment proof claim that binds it to the login: base64url (unpadded) SHA-256 of the ASCII
 * bytes of the login token the enrollment is posted with, as DPoP's `ath` (RFC 9449 §4.2). Without it
 * a body seen in transit could be re-posted under another account's token (signing.md §3).
 */
export const LOGIN_TOKEN_HASH_CLAIM = 'ath';
/** Credentials live at most this long; the issuer may choose shorter. */
export const MAX_CREDENTIAL_LIFETIME_SECONDS = 600;

/** Defaults the verifier applies unless configured otherwise. */
export const DEFAULT_FRESHNESS = {
  /** created may be this far in the past … */
  maxAgeSeconds: 30,
  /** … or this far in the future (client clock skew). */
  maxSkewSeconds: 5,
  /** expires − created may not exceed this. */
  maxLifetimeSeconds: 60,
} as const;

/** A public key as JSON Web Key, only the members RFC 7638 hashes. */
export type PublicJwk =
  | { readonly kty: 'EC'; readonly crv: 'P-256'; readonly x: string; readonly y: string }
  | { readonly kty: 'OKP'; readonly crv: 'Ed25519'; readonly x: string };

const B64URL_32 = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;

/**
 * Accepts a P-256 or Ed25519 public JWK and returns just its required members; undefined for any
 * other key type, private keys, or coordinates that are not 32 bytes of canonical base64url.
 */
export function normalizePublicJwk(value: unknown): PublicJwk | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const jwk = value as Record<string, unknown>;
  if ('d' in jwk) return undefined;
  const { kty, crv, x, y } = jwk;
  if (typeof x !== 'string' || !B64URL_32.test(x)) return undefined;
  if (kty === 'EC' && crv === 'P-256' && typeof y === 'string' && B64URL_32.test(y)) return { kty, crv, x, y };
  if (kty === 'OKP' && crv === 'Ed25519' && y === undefined) return { kty, crv, x };
  return undefined;
}

/**
 * The device's static X25519 public key for end-to-end encryption (docs/protocol/e2ee.md), enrolled
 * beside the device key: an RFC 8037 OKP JWK. Its e2ee device key id is the device id.
 */
export interface X25519PublicJwk {
  readonly kty: 'OKP';
  readonly crv: 'X25519';
  readonly x: string;
}

/** The enrollment body member, and the enrollment proof claim, that carry the X25519 JWK. */
export const E2EE_KEY_MEMBER = 'e2eeKey';

/**
 * The shape half of the X25519 key check (the small-order half needs X25519 itself; keys.ts): the
 * three members, no private `d`, and `x` the canonical little-endian encoding of a u-coordinate below
 * 2^255 − 19 with the top bit clear — one encoding per key, the one the device's own HPKE uses in its
 * KEM context. Other members (kid, use) are ignored, as for device keys.
 */
export function normalizeX25519Jwk(value: unknown): { ok: true; jwk: X25519PublicJwk; raw: Uint8Array } | { ok: false; reason: string } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'is not a JWK object' };
  const jwk = value as Record<string, unknown>;
  if ('d' in jwk) return { ok: false, reason: 'has a private member d' };
  const { kty, crv, x } = jwk;
  if (kty !== 'OKP' || crv !== 'X25519') return { ok: false, reason: `is not an X25519 key (kty ${JSON.stringify(kty)}, crv ${JSON.stringify(crv)})` };
  if (typeof x !== 'string' || !B64URL_32.test(x)) return { ok: false, reason: 'x is not 32 bytes of canonical base64url' };
  const raw = base64urlDecode(x);
  if (raw === undefined || raw.length !== 32) return { ok: false, reason: 'x is not 32 bytes of canonical base64url' };
  if (raw[31]! & 0x80 || (raw[31] === 0x7f && raw.subarray(1, 31).every((b) => b === 0xff) && raw[0]! >= 0xed)) {
    return { ok: false, reason: 'x is not a canonical X25519 encoding (top bit set, or u ≥ 2^255 − 19)' };
  }
  return { ok: true, jwk: { kty, crv, x }, raw };
}

/** The algorithm is a property of the key, never of the message that claims it. */
export function algorithmOfJwk(jwk: PublicJwk): SignatureAlgorithm {
  return jwk.kty === 'EC' ? 'ecdsa-p256-sha256' : 'ed25519';
}

/** RFC 7638 §3: the required members in lexicographic order, no whitespace. SHA-256 of this is the thumbprint. */
export function thumbprintInput(jwk: PublicJwk): string {
  return jwk.kty === 'EC'
    ? `{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`
    : `{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}"}`;
}

/**
 * App-integrity levels, weakest first. They follow Play Integrity's device verdicts (basic, device,
 * strong); the App Attest verifier maps a production attestation to "strong" (genuine app on Apple hardware, signing.md §3.2).
 */
export const INTEGRITY_LEVELS = ['basic', 'device', 'strong'] as const;
export type IntegrityLevel = (typeof INTEGRITY_LEVELS)[number];

export function isIntegrityLevel(value: unknown): value is IntegrityLevel {
  return typeof value === 'string' && (INTEGRITY_LEVELS as readonly string[]).includes(value);
}

export function meetsIntegrity(level: IntegrityLevel, minimum: IntegrityLevel): boolean {
  return INTEGRITY_LEVELS.indexOf(level) >= INTEGRITY_LEVELS.indexOf(minimum);
}

// ---- platform attestation commitments (signing.md §3.1, §3.2) ----------------------------------
// What the app hashes (SHA-256) into the platform's nonce field at enrollment. Runtime-neutral, so the
// gateway's verifiers and the app SDK (WebCrypto) hash the same bytes.

/** Android Key Attestation: attestationChallenge = SHA-256 of this (the challenge's UTF-8). */
export const androidAttestationChallengeInput = (challenge: string): string => challenge;

/** Apple App Attest: clientDataHash = SHA-256 of this; the thumbprint is base64url, so the last dot splits it. */
export const appleClientDataInput = (challenge: string, deviceKeyThumbprint: string): string => `${challenge}.${deviceKeyThumbprint}`;
