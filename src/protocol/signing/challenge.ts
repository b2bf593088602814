// Self-verifying, short-lived server challenges: HMAC'd with a server secret and carrying their own
// expiry, so issuing and checking need no storage. Single use is the caller's job: verifyChallenge
// returns the id and expiry, and the caller consumes the id in a ChallengeLedger (challenge-ledger.ts),
// which refuses an id it has seen before that expiry.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { base64urlDecode, base64urlEncode } from '../common/base64.js';
import { fail, type SigningFailure } from './codes.js';

export type ChallengePurpose = 'enroll' | 'credential';
export const DEFAULT_CHALLENGE_TTL_SECONDS = 120;
/** No challenge lives longer: it bounds what the single-use ledger must remember (ids live until they expire). */
export const MAX_CHALLENGE_TTL_SECONDS = 300;

/** MAC secrets, newest first: the first issues, all verify (so a secret can be rotated without a cliff). */
export type ChallengeSecrets = readonly [Uint8Array, ...Uint8Array[]];

export interface IssuedChallenge {
  /** Opaque to the app: `<purpose>.<id>.<expires>.<mac>`. */
  readonly challenge: string;
  readonly id: string;
  /** Unix seconds. */
  readonly expiresAt: number;
}

export interface VerifiedChallenge {
  readonly ok: true;
  readonly id: string;
  readonly expiresAt: number;
}

const CHALLENGE_SHAPE = /^(enroll|credential)\.([A-Za-z0-9_-]{22})\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})$/;

function mac(secret: Uint8Array, signed: string): Buffer {
  // Domain-separated so this MAC can never be confused with another use of the same secret.
  return createHmac('sha256', secret).update(`gatehouse-challenge-v1\n${signed}`).digest();
}

export function issueChallenge(options: {
  secrets: ChallengeSecrets;
  purpose: ChallengePurpose;
  now: number;
  /** Whole seconds, 1..MAX_CHALLENGE_TTL_SECONDS (300); default 120. Anything else is a configuration error and throws. */
  ttlSeconds?: number;
  /** Test seam: 16 bytes for the id. */
  idBytes?: Uint8Array;
}): IssuedChallenge {
  const ttl = options.ttlSeconds ?? DEFAULT_CHALLENGE_TTL_SECONDS;
  // A configuration value, not request input: thrown at issue time, like the module's other bad options.
  if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > MAX_CHALLENGE_TTL_SECONDS) {
    throw new RangeError(`issueChallenge: ttlSeconds must be a whole number of seconds in 1..${MAX_CHALLENGE_TTL_SECONDS}, got ${String(options.ttlSeconds)}`);
  }
  const id = base64urlEncode(options.idBytes ?? randomBytes(16));
  const expiresAt = Math.floor(options.now) + ttl;
  const signed = `${options.purpose}.${id}.${expiresAt}`;
  return { challenge: `${signed}.${base64urlEncode(mac(options.secrets[0], signed))}`, id, expiresAt };
}

export function verifyChallenge(
  challenge: unknown,
  options: { secrets: ChallengeSecrets; purpose: ChallengePurpose; now: number },
): VerifiedChallenge | SigningFailure {
  if (typeof challenge !== 'string') return fail('challenge_invalid', 'challenge is not a string');
  const match = CHALLENGE_SHAPE.exec(challenge);
  if (match === null) return fail('challenge_invalid', 'challenge has the wrong shape');
  const [, purpose, id, expires, tag] = match as unknown as [string, string, string, string, string];
  const given = base64urlDecode(tag);
  if (given === undefined) return fail('challenge_invalid', 'challenge MAC is not base64url');
  const signed = `${purpose}.${id}.${expires}`;
  if (!options.secrets.some((secret) => timingSafeEqual(mac(secret, signed), given))) return fail('challenge_invalid', 'challenge MAC does not verify');
  // Checked after the MAC so an attacker learns nothing from the purpose of a forged challenge.
  if (purpose !== options.purpose) return fail('challenge_invalid', `challenge was issued for ${purpose}`);
  const expiresAt = Number(expires);
  // Written so a NaN clock fails closed.
  if (!(options.now < expiresAt)) return fail('challenge_expired', 'challenge has expired');
  return { ok: true, id, expiresAt };
}
