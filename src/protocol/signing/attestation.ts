// App-integrity verification at enrollment, behind one interface so Apple App Attest and Android Key
// Attestation / Play Integrity verifiers plug in beside the one shipped here.
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { fail, type SigningFailure } from './codes.js';
import { isIntegrityLevel, type IntegrityLevel } from './profile.js';

/** What every platform verifier must establish, whatever its evidence looks like. */
export interface AttestationExpectation {
  /** The enrollment challenge: App Attest's clientDataHash, Key Attestation's attestationChallenge or Play Integrity's nonce must commit to it. */
  readonly challenge: string;
  /** RFC 7638 thumbprint of the device public key being enrolled: the evidence must attest this key (Key Attestation attests the key itself) or commit to it (App Attest's clientDataHash, a verdict's jkt). */
  readonly deviceKeyThumbprint: string;
  /** Unix seconds. */
  readonly now: number;
}

export interface AttestationVerdict {
  readonly integrityLevel: IntegrityLevel;
  /** The app the verdict vouches for (bundle id / package name / configured audience). */
  readonly appId: string;
}

export interface AttestationVerifier {
  /** The `attestation.format` value in enrollment requests this verifier handles, e.g. "gh-jws-verdict", "apple-app-attest", "android-key-attestation". */
  readonly format: string;
  /** Must never throw: every failure is attestation_invalid (or another code) with a detail for logs. */
  verify(evidence: string, expected: AttestationExpectation): Promise<{ ok: true; verdict: AttestationVerdict } | SigningFailure>;
}

export interface JwsVerdictConfig {
  /** The `iss` of verdicts the attestation service signs. */
  readonly issuer: string;
  /** The app id: verdicts must carry it as `aud`. */
  readonly audience: string;
  /** The attestation service's public keys (as fetched by the caller; nothing here does I/O). */
  readonly jwks: JSONWebKeySet;
  readonly algorithms?: readonly ('ES256' | 'EdDSA')[];
  /** Verdicts older than this (by iat) are refused even before exp. */
  readonly maxAgeSeconds?: number;
}

export const JWS_VERDICT_FORMAT = 'gh-jws-verdict';
export const JWS_VERDICT_TYPE = 'integrity-verdict+jwt';

/**
 * Accepts a verdict JWT signed by a configured attestation service (the shape a server-side Play
 * Integrity or App Attest relay returns): header typ "integrity-verdict+jwt"; claims iss, aud, iat, exp,
 * `nonce` = the challenge, `jkt` = the device key thumbprint, `integrity` = basic | device | strong.
 */
export function jwsVerdictVerifier(config: JwsVerdictConfig): AttestationVerifier {
  const keys = createLocalJWKSet(config.jwks);
  const algorithms = [...(config.algorithms ?? ['ES256', 'EdDSA'])];
  return {
    format: JWS_VERDICT_FORMAT,
    async verify(evidence, expected) {
      let payload: Record<string, unknown>;
      try {
        ({ payload } = await jwtVerify(evidence, keys, {
          issuer: config.issuer,
          audience: config.audience,
          algorithms,
          typ: JWS_VERDICT_TYPE,
          currentDate: new Date(expected.now * 1000),
          maxTokenAge: config.maxAgeSeconds ?? 300,
          requiredClaims: ['iat', 'exp', 'nonce', 'jkt', 'integrity'],
        }));
      } catch (error) {
        return fail('attestation_invalid', `verdict refused: ${error instanceof Error ? error.message : 'unknown error'}`);
      }
      if (payload.nonce !== expected.challenge) return fail('attestation_invalid', 'verdict is not bound to this challenge');
      if (payload.jkt !== expected.deviceKeyThumbprint) return fail('attestation_invalid', 'verdict does not attest this device key');
      if (!isIntegrityLevel(payload.integrity)) return fail('attestation_invalid', 'verdict integrity level is unknown');
      return { ok: true, verdict: { integrityLevel: payload.integrity, appId: config.audience } };
    },
  };
}
