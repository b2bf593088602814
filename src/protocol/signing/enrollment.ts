// Enrollment: a device registers its long-term device key with an app-integrity verdict. Pure: the
// caller consumes the challenge id in its ChallengeLedger, then stores the returned device record.
import { type AttestationVerifier } from './attestation.js';
import { verifyChallenge, type ChallengeSecrets } from './challenge.js';
import { fail, type SigningFailure } from './codes.js';
import { decodeCompactJws, verifyDecodedJws } from './jws.js';
import { importPublicJwk } from './keys.js';
import { ENROLLMENT_PROOF_TYPE, meetsIntegrity, type IntegrityLevel, type PublicJwk, type SignatureAlgorithm } from './profile.js';

/** The JSON body an app posts to enroll (see docs/protocol/signing.md §Enrollment). */
export interface EnrollmentRequest {
  readonly challenge: string;
  readonly deviceKey: PublicJwk;
  readonly attestation: { readonly format: string; readonly evidence: string };
  /** Compact JWS by the device key: header {alg, typ: "gh-enrollment+jwt"}, payload {"chl": challenge}. */
  readonly proof: string;
}

/** What the caller persists; credential issuance needs it back. */
export interface EnrolledDevice {
  /** RFC 7638 thumbprint of the device key. */
  readonly deviceId: string;
  readonly publicJwk: PublicJwk;
  readonly algorithm: SignatureAlgorithm;
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
  /** Unix seconds. */
  readonly now: number;
}

export interface EnrollmentAccepted {
  readonly ok: true;
  readonly device: EnrolledDevice;
  /** For the caller's ChallengeLedger: consume before storing the device (a second use is challenge_used). */
  readonly challengeId: string;
  readonly challengeExpiresAt: number;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

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
  const proof = decodeCompactJws(request.proof);
  if (proof === undefined) return fail('enrollment_malformed', 'proof is not a compact JWS');
  if (!verifyDecodedJws(proof, deviceKey.algorithm, ENROLLMENT_PROOF_TYPE, deviceKey.key) || proof.payload.chl !== request.challenge) {
    return fail('device_proof_invalid', 'proof is not the device key signing this challenge');
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
      integrityLevel: outcome.verdict.integrityLevel,
      appId: outcome.verdict.appId,
      subject: options.subject,
      enrolledAt: options.now,
    },
    challengeId: challenge.id,
    challengeExpiresAt: challenge.expiresAt,
  };
}
