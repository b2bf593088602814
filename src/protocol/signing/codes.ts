// The one table of dynamic-security failure codes: code → HTTP status → meaning. The gateway's deny
// table (src/pipeline/deny.ts) imports it; docs/protocol/signing.md prints it (a test keeps the two equal).

export const SIGNING_FAILURES = {
  // Per-request verification, in the order the verifier checks.
  signature_missing: { status: 401, meaning: 'The request carries no gatehouse signature (no Signature-Input member tagged "gatehouse-v1", or no Signature).' },
  signature_malformed: { status: 400, meaning: 'Signature, Signature-Input or their parameters are not valid for this profile (structured-field syntax, more than one gatehouse signature, missing or mistyped created/expires/nonce/keyid/alg).' },
  component_missing: { status: 400, meaning: 'A component the profile requires is not covered, a covered component is not allowed, or a covered header is absent from the request.' },
  credential_missing: { status: 401, meaning: 'The Device-Credential header is absent.' },
  credential_invalid: { status: 401, meaning: 'The credential is not a valid gatehouse credential (syntax, issuer signature, unknown or rotated issuer key, type, issuer, claims).' },
  credential_expired: { status: 401, meaning: 'The credential is past its exp (or not yet valid); obtain a new one.' },
  credential_wrong_device: { status: 401, meaning: 'The key that signed is not the key the credential binds (keyid differs from cnf.jkt), a credential request is signed by a key other than the enrolled device key, or (on an e2ee route) the e2ee envelope was sealed by another device than the one the credential names.' },
  algorithm_not_allowed: { status: 401, meaning: 'The alg parameter is unknown, disallowed by configuration, or does not match the type of the key the credential binds.' },
  signature_stale: { status: 401, meaning: 'created is older than the freshness window, or expires has passed.' },
  signature_future_dated: { status: 401, meaning: 'created is later than now plus the allowed clock skew.' },
  signature_invalid: { status: 401, meaning: 'The signature does not verify over the signature base (including ECDSA signatures that are not 64-byte raw r‖s, e.g. DER).' },
  digest_malformed: { status: 400, meaning: 'Content-Digest is not a dictionary with a sha-256 or sha-512 byte sequence of the right length.' },
  digest_mismatch: { status: 400, meaning: 'The body does not match Content-Digest.' },
  // Per request, after the verdict: what the gateway's stores decide (§11).
  signature_replayed: { status: 401, meaning: 'The (keyid, nonce) pair was already used: a replayed request, or a nonce reused under one key; sign again with a fresh nonce.' },
  device_revoked: { status: 403, meaning: 'The device the credential names is revoked or not enrolled; enroll again.' },
  account_disabled: { status: 403, meaning: 'The account the credential names (sub) is disabled.' },
  // Enrollment and credential issuance.
  challenge_invalid: { status: 400, meaning: 'The challenge is not one gatehouse issued for this purpose (syntax, MAC, purpose).' },
  challenge_expired: { status: 400, meaning: 'The challenge is past its expiry; ask for a new one.' },
  challenge_used: { status: 400, meaning: 'The challenge was already used (a challenge is single use, even within its lifetime); ask for a new one.' },
  enrollment_malformed: { status: 400, meaning: 'The enrollment request is not well formed (JSON shape, device key, proof).' },
  attestation_invalid: { status: 403, meaning: 'The app-integrity verdict or attestation is not valid (signature or certificate chain, issuer or root, audience or app, expiry, no verifier for its format, or not bound to this challenge and device key).' },
  attestation_insufficient: { status: 403, meaning: 'The verdict is valid but its integrity level is below what the deployment requires.' },
  device_proof_invalid: { status: 401, meaning: 'The device-key signature over the enrollment or credential request does not verify, or the enrollment proof does not sign exactly the e2ee key the request carries (present in one and not the other, or a different key).' },
  enrollment_unbound: { status: 400, meaning: 'The enrollment proof has no ath claim (an app built before profile v1.1): this deployment only enrolls devices whose proof is bound to the login token it is posted with (§3 step 4).' },
  enrollment_login_mismatch: { status: 403, meaning: 'The enrollment proof is bound (ath) to another login token than the one the request carries: an enrollment body re-posted under another account, or a proof signed before the app changed its token; sign the proof again with the token you send.' },
  credential_request_malformed: { status: 400, meaning: 'The credential request is not a well-formed JWS with the expected header and claims.' },
  key_not_allowed: { status: 400, meaning: 'A device or ephemeral key is not an allowed type (P-256 or Ed25519 public key as a JWK without private members).' },
  x25519_key_invalid: { status: 400, meaning: 'The e2ee key in an enrollment request is not an X25519 public JWK (kty OKP, crv X25519, x the canonical 32-byte encoding, no private member d) or is a small-order point.' },
} as const satisfies Record<string, { status: 400 | 401 | 403; meaning: string }>;

export type SigningFailureCode = keyof typeof SIGNING_FAILURES;

export interface SigningFailure {
  readonly ok: false;
  readonly code: SigningFailureCode;
  /** For logs only, never for the client: the code is the contract. */
  readonly detail: string;
}

export function fail(code: SigningFailureCode, detail: string): SigningFailure {
  return { ok: false, code, detail };
}

export function httpStatusOf(code: SigningFailureCode): 400 | 401 | 403 {
  return SIGNING_FAILURES[code].status;
}
