// The gateway side: one issuer built at load (key imported, header pre-encoded), then per request
// one JSON encode and one signature. issuePassport throws only for a programming error in the
// caller (a subject the verifier would refuse), as PassportIssueError carrying the stable code.
import { checkSubject, MAX_PASSPORT_LIFETIME_SECONDS, PASSPORT_TYP, type PassportAlgorithm, type PassportSubject } from './claims.js';
import { base64urlEncode, signJws } from './jws.js';
import { jwksDocument, type JwksDocument, type PassportKeyring } from './keys.js';

export interface PassportIssuerOptions {
  readonly keyring: PassportKeyring;
  /** the iss claim, e.g. "https://gatehouse.superapp.internal" */
  readonly issuer: string;
  /** exp − iat in seconds; 1..60, default 30 */
  readonly lifetimeSeconds?: number;
  /** the clock in milliseconds; Date.now unless a test pins it */
  readonly now?: () => number;
}

export interface PassportIssuer {
  /** A compact JWS for one request. */
  issuePassport(subject: PassportSubject): string;
  readonly kid: string;
  readonly alg: PassportAlgorithm;
  /** what the passportKeys route serves: every key of the keyring, active first */
  readonly jwks: JwksDocument;
}

export class PassportIssueError extends Error {
  constructor(
    readonly code: 'missing_claim' | 'invalid_claim',
    detail: string,
  ) {
    super(`cannot issue a passport: ${detail}`);
    this.name = 'PassportIssueError';
  }
}

export const DEFAULT_PASSPORT_LIFETIME_SECONDS = 30;

export function createPassportIssuer(options: PassportIssuerOptions): PassportIssuer {
  const lifetime = options.lifetimeSeconds ?? DEFAULT_PASSPORT_LIFETIME_SECONDS;
  if (!Number.isInteger(lifetime) || lifetime < 1 || lifetime > MAX_PASSPORT_LIFETIME_SECONDS) {
    throw new RangeError(`passport lifetimeSeconds must be a whole number in 1..${MAX_PASSPORT_LIFETIME_SECONDS}, got ${lifetime}`);
  }
  if (options.issuer.length === 0) throw new RangeError('passport issuer must not be empty');
  const { issuer, keyring } = options;
  const now = options.now ?? Date.now;
  const { kid, alg, privateKey } = keyring.active;
  const encodedHeader = base64urlEncode(JSON.stringify({ alg, typ: PASSPORT_TYP, kid }));

  return {
    kid,
    alg,
    jwks: jwksDocument(keyring),
    issuePassport(subject: PassportSubject): string {
      const checked = checkSubject(subject);
      if (!checked.ok) throw new PassportIssueError(checked.code, checked.detail);
      const { sub, aud, txn, dev, amr, aal, itl } = checked.value;
      const iat = Math.floor(now() / 1000);
      // a broken clock would mint iat/exp of null (JSON has no NaN): refuse rather than sign that
      if (!Number.isSafeInteger(iat) || iat < 0) throw new RangeError(`passport clock reads ${iat} s, not a time`);
      // Fixed member order; the copy drops anything the request context carried beyond the claims.
      const payload = JSON.stringify({ iss: issuer, sub, aud, iat, exp: iat + lifetime, txn, dev, amr, aal, itl });
      const signingInput = `${encodedHeader}.${base64urlEncode(payload)}`;
      return `${signingInput}.${signJws(alg, privateKey, signingInput).toString('base64url')}`;
    },
  };
}
