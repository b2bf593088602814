// The dynamic-security protocol core, as the gateway filter and the user API will import it. Pure: no
// network, no storage — verdicts carry what the caller's stores must check (nonce, key id, challenge id).
export { SIGNING_FAILURES, httpStatusOf, type SigningFailure, type SigningFailureCode } from './codes.js';
export {
  CREDENTIAL_HEADER,
  DEFAULT_FRESHNESS,
  INTEGRITY_LEVELS,
  REQUIRED_COMPONENTS,
  SIGNATURE_ALGORITHMS,
  SIGNATURE_TAG,
  type IntegrityLevel,
  type PublicJwk,
  type SignatureAlgorithm,
} from './profile.js';
export {
  DEFAULT_CHALLENGE_TTL_SECONDS,
  MAX_CHALLENGE_TTL_SECONDS,
  issueChallenge,
  verifyChallenge,
  type ChallengePurpose,
  type ChallengeSecrets,
  type IssuedChallenge,
  type VerifiedChallenge,
} from './challenge.js';
export { LEDGER_CLOCK_SKEW_SECONDS, MemoryChallengeLedger, type ChallengeConsumption, type ChallengeLedger } from './challenge-ledger.js';
export { JWS_VERDICT_FORMAT, jwsVerdictVerifier, type AttestationExpectation, type AttestationVerdict, type AttestationVerifier, type JwsVerdictConfig } from './attestation.js';
export {
  ANDROID_KEY_ATTESTATION_FORMAT,
  androidAttestationChallenge,
  androidKeyAttestationVerifier,
  encodeAndroidKeyAttestationEvidence,
  type AndroidApp,
  type AndroidKeyAttestationConfig,
} from './android-key-attestation.js';
export {
  APPLE_APP_ATTEST_FORMAT,
  appleAppAttestVerifier,
  appleClientDataHash,
  encodeAppleAppAttestEvidence,
  type AppleApp,
  type AppleAppAttestConfig,
} from './apple-app-attest.js';
export { loginTokenHash, verifyEnrollment, type EnrolledDevice, type EnrollmentAccepted, type EnrollmentOptions, type EnrollmentRequest } from './enrollment.js';
export {
  CredentialCache,
  CredentialTrust,
  inspectCredentialRequest,
  issueCredential,
  verifyCredential,
  type CredentialIssued,
  type CredentialIssuer,
  type VerifiedCredential,
} from './credential.js';
export { createRequestVerifier, type RequestVerdict, type RequestVerifierConfig, type SignedRequest, type VerifiedRequest } from './verifier.js';
export { checkContentDigest, computeContentDigest } from './content-digest.js';
