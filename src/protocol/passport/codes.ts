// The one table of passport failures: stable code → HTTP status the upstream middleware answers →
// meaning. The verifier answers exactly one of these codes for every refused token; the spec
// (docs/protocol/passport.md) prints this table and a test checks the two agree.

export interface PassportFailure {
  readonly status: 401 | 503;
  readonly meaning: string;
}

export const PASSPORT_FAILURES = {
  missing_passport: { status: 401, meaning: 'the request carries no passport (no x-passport header, or an empty one)' },
  malformed: {
    status: 401,
    meaning: 'not a compact JWS of three strict base64url parts with a JSON-object header and payload, or too large, or a repeated header',
  },
  bad_typ: { status: 401, meaning: 'the JWS header typ is not exactly "passport+jwt"' },
  alg_not_allowed: { status: 401, meaning: 'the JWS header alg is not one the verifier pins (ES256, EdDSA), or does not match the key' },
  crit_unsupported: { status: 401, meaning: 'the JWS header has a crit parameter; passports use no extensions' },
  unknown_kid: { status: 401, meaning: 'no key with this kid is published, even after a JWKS refresh' },
  signature_invalid: { status: 401, meaning: 'the signature does not verify with the published key for this kid' },
  missing_claim: { status: 401, meaning: 'a required claim (iss, sub, aud, iat, exp, txn, dev, amr, aal, itl) is absent' },
  invalid_claim: { status: 401, meaning: 'a claim has the wrong type or an out-of-range value' },
  wrong_issuer: { status: 401, meaning: 'iss is not the issuer the verifier expects' },
  wrong_audience: { status: 401, meaning: 'aud is not one of the audiences the verifier accepts' },
  expired: { status: 401, meaning: 'exp is in the past by more than the allowed clock skew' },
  not_yet_valid: { status: 401, meaning: 'iat is in the future by more than the allowed clock skew' },
  lifetime_too_long: { status: 401, meaning: 'exp − iat is more than 60 seconds (or exp is not after iat)' },
  jwks_unavailable: { status: 503, meaning: 'the verifier has no key set: the JWKS could not be fetched or parsed; retry later' },
} as const satisfies Record<string, PassportFailure>;

export type PassportFailureCode = keyof typeof PASSPORT_FAILURES;

export const PASSPORT_FAILURE_CODES = Object.keys(PASSPORT_FAILURES) as readonly PassportFailureCode[];
