// Enrollment: a device registers its long-term device key with an app-integrity verdict. Pure: the
// caller consumes the challenge id in its ChallengeLedger, then stores the returned device record.
import { createHash } from 'node:crypto';
import { type AttestationVerifier } from './attestation.js';
import { verifyChallenge, type ChallengeSecrets } from './challenge.js';
import { fail, type SigningFailure } from './codes.js';
import { decodeCompactJws, verifyDecodedJws } from './jws.js';
import { importPublicJwk, importX25519PublicJwk } from './keys.js';
import { E2EE_KEY_MEMBER, ENROLLMENT_PROOF_TYPE, LOGIN_TOKEN_HASH_CLAIM, meetsIntegrity, type IntegrityLevel, type PublicJwk, type SignatureAlgorithm, type X25519PublicJwk } from './profile.js';

/** The JSON body an app posts to enroll (see docs/protocol/signing.md §Enrollment). */
export interface EnrollmentRequest {
  readonly challenge: string;
  readonly deviceKey: PublicJwk;
  /** Optional: the device's X25519 public key for e2ee. An app that never uses e2ee leaves it out. */
  readonly e2eeKey?: X25519PublicJwk;
  readonly attestation: { readonly format: string; readonly evidence: string };
  /**
   * Compact JWS by the device key: header {alg, typ: "gh-enrollment+jwt"}, payload {"chl": challenge,
   * "ath": SHA-256 of the login token the request is posted with} plus {"e2eeKey": the same JWK} when
   * the body has one.
   */
  readonly proof: string;
}

/** What the caller persists; credential issuance needs it back. */
export interface EnrolledDevice {
  /** RFC 7638 thumbprint of the device key. */
  readonly deviceId: string;
  readonly publicJwk: PublicJwk;
  readonly algorithm: SignatureAlgorithm;
  /**
   * The device's X25519 public key for e2ee, raw 32 bytes (for e2ee's deviceKeyFromRaw), when it
   * enrolled one. Its e2ee device key id is `deviceId`: an envelope naming another id is not this device.
   */
  readonly e2eePublicKey?: Uint8Array;
  readonly integrityLevel: IntegrityLevel;
  readonly appId: string;
  /** The account the device is enrolled for (the caller authenticated it). */
  readonly subject: string;
  readonly enrolledAt: number;
}

export interface EnrollmentOptions {
  readonly challengeSecrets: ChallengeSecrets;
  readonly verifiers: readonly AttestationVerifier[];
  readonly minIntegrity: IntegrityLevel;
  readonly allowedAlgorithms?: readonly SignatureAlgorithm[];
  readonly subject: string;
  /** The login token (the bearer token) the enrollment was posted with, that authenticated `subject`: the proof's `ath` must be its hash. */
  readonly loginToken: string;
  /**
   * A proof without `ath` (an app built for profile v1.0): `refuse` (enrollment_unbound, the
   * default) or `accept` for a deployment's transition while old app versions still enroll. A proof
   * that carries `ath` is checked either way.
   */
  readonly unboundProofs?: 'refuse' | 'accept';
  /** Unix seconds. */
  readonly now: number;
}

export interface EnrollmentAccepted {
  readonly ok: true;
  readonly device: EnrolledDevice;
  /** For the caller's ChallengeLedger: consume before storing the device (a second use is challenge_used). */
  readonly challengeId: string;
  readonly challengeExpiresAt: number;
  /** false: the proof had no `ath` and `unboundProofs: accept` let it through */
  readonly boundToLogin: boolean;
}

/** `ath` of a login token: base64url SHA-256 of its ASCII bytes (RFC 9449 §4.2's access token hash). */
export function loginTokenHash(token: string): string {
  return createHash('sha256').update(token, 'ascii').digest('base64url');
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The proof's claim names the same X25519 key as the body (both absent counts as the same). */
function sameX25519Key(claim: unknown, carried: X25519PublicJwk | undefined): boolean {
  if (carried === undefined) return claim === undefined;
  return isRecord(claim) && claim.kty === carried.kty && claim.crv === carried.crv && claim.x === carried.x && !('d' in claim);
}

/** Cheapest first: shape, challenge MAC, key, device-key proof, then the (possibly remote-shaped) attestation. */
export async function verifyEnrollment(request: unknown, options: EnrollmentOptions): Promise<EnrollmentAccepted | SigningFailure> {
  if (!isRecord(request) || !isRecord(request.attestation)) return fail('enrollment_malformed', 'enrollment request is not an object with an attestation');
  const { format, evidence } = request.attestation;
  if (typeof format !== 'string' || typeof evidence !== 'string') return fail('enrollment_malformed', 'attestation needs string format and evidence');
  const challenge = verifyChallenge(request.challenge, { secrets: options.challengeSecrets, purpose: 'enroll', now: options.now });
  if (!challenge.ok) return challenge;
  const deviceKey = importPublicJwk(request.deviceKey);
  if (deviceKey === undefined) return fail('key_not_allowed', 'device key is not a P-256 or Ed25519 public JWK');
  if (!(options.allowedAlgorithms ?? [deviceKey.algorithm]).includes(deviceKey.algorithm)) return fail('key_not_allowed', `${deviceKey.algorithm} device keys are not allowed`);
  const e2eeKey = request[E2EE_KEY_MEMBER] === undefined ? undefined : importX25519PublicJwk(request[E2EE_KEY_MEMBER]);
  if (e2eeKey?.ok === false) return fail('x25519_key_invalid', `e2ee key ${e2eeKey.reason}`);
  const proof = decodeCompactJws(request.proof);
  if (proof === undefined) return fail('enrollment_malformed', 'proof is not a compact JWS');
  if (!verifyDecodedJws(proof, deviceKey.algorithm, ENROLLMENT_PROOF_TYPE, deviceKey.key) || proof.payload.chl !== request.challenge) {
    return fail('device_proof_invalid', 'proof is not the device key signing this challenge');
  }
  // The proof signs the e2ee key too, so the attested device key vouches for it: a key swapped, added or
  // stripped in transit no longer matches what the device signed.
  if (!sameX25519Key(proof.payload[E2EE_KEY_MEMBER], e2eeKey?.jwk)) return fail('device_proof_invalid', 'proof does not sign the e2ee key the request carries');
  // The proof signs the login it was made for, so a body seen in transit cannot enroll this device key
  // to whoever re-posts it with their own token (it would hand them every credential the device gets).
  const boundTo = proof.payload[LOGIN_TOKEN_HASH_CLAIM];
  if (boundTo === undefined) {
    if (options.unboundProofs !== 'accept') return fail('enrollment_unbound', 'proof has no ath: it is not bound to the login token');
  } else if (boundTo !== loginTokenHash(options.loginToken)) {
    return fail('enrollment_login_mismatch', 'proof ath is not the hash of the login token this request carries');
  }
  const verifier = options.verifiers.find((v) => v.format === format);
  if (verifier === undefined) return fail('attestation_invalid', `no verifier for attestation format ${format}`);
  let outcome: Awaited<ReturnType<AttestationVerifier['verify']>>;
  try {
    outcome = await verifier.verify(evidence, { challenge: request.challenge as string, deviceKeyThumbprint: deviceKey.thumbprint, now: options.now });
  } catch (error) {
    // A plug-in that breaks its contract still yields a code, never an exception.
    return fail('attestation_invalid', `attestation verifier threw: ${error instanceof Error ? error.message : 'unknown'}`);
  }
  if (!outcome.ok) return outcome;
  if (!meetsIntegrity(outcome.verdict.integrityLevel, options.minIntegrity)) {
    return fail('attestation_insufficient', `integrity ${outcome.verdict.integrityLevel} is below ${options.minIntegrity}`);
  }
  return {
    ok: true,
    device: {
      deviceId: deviceKey.thumbprint,
      publicJwk: deviceKey.jwk,
      algorithm: deviceKey.algorithm,
      ...(e2eeKey === undefined ? {} : { e2eePublicKey: e2eeKey.raw }),
      integrityLevel: outcome.verdict.integrityLevel,
      appId: outcome.verdict.appId,
      subject: options.subject,
      enrolledAt: options.now,
    },
    challengeId: challenge.id,
    challengeExpiresAt: challenge.expiresAt,
    boundToLogin: boundTo !== undefined,
  };
}
