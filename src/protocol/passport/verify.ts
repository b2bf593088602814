// The verifier core: pure and synchronous — a token, the keys, a policy and the time in; a verdict
// out. verifyPassport* never throw for any input: every refusal is a verdict with a stable code
// from codes.ts. Only compilePassportPolicy throws, at load, for a bad configuration.
import { checkClaims, MAX_PASSPORT_LIFETIME_SECONDS, PASSPORT_ALGORITHMS, PASSPORT_TYP, type PassportAlgorithm, type PassportClaims } from './claims.js';
import type { PassportFailureCode } from './codes.js';
import { base64urlDecode, decodeJsonObject, describeValue, verifyJws } from './jws.js';
import type { VerificationKey } from './keys.js';

/** Longer input is refused before any decoding: a passport is a few hundred bytes. */
export const MAX_PASSPORT_LENGTH = 4096;
export const DEFAULT_CLOCK_SKEW_SECONDS = 5;
export const MAX_CLOCK_SKEW_SECONDS = 60;

export interface PassportPolicy {
  /** the audiences this service accepts (its own name); aud must equal one of them */
  readonly audience: string | readonly string[];
  /** when set, iss must equal it */
  readonly issuer?: string;
  /** the algorithms accepted; default both ES256 and EdDSA */
  readonly algorithms?: readonly PassportAlgorithm[];
  /** tolerance for clocks that disagree, applied to exp and iat; default 5, at most 60 */
  readonly clockSkewSeconds?: number;
}

export interface CompiledPassportPolicy {
  readonly audiences: ReadonlySet<string>;
  readonly issuer: string | undefined;
  readonly algorithms: ReadonlySet<string>;
  readonly clockSkewSeconds: number;
}

export interface PassportAcceptance {
  readonly ok: true;
  readonly claims: PassportClaims;
  readonly kid: string;
}

export interface PassportRejection {
  readonly ok: false;
  readonly code: PassportFailureCode;
  /** for the log only; clients see the code */
  readonly detail: string;
  readonly kid?: string;
}

export type PassportVerdict = PassportAcceptance | PassportRejection;

/** What the header says, after its checks; the key lookup by kid happens between parse and verify. */
export interface ParsedPassport {
  readonly ok: true;
  readonly kid: string;
  readonly alg: PassportAlgorithm;
  readonly signingInput: string;
  /** decoded, not yet parsed: JSON is parsed only after the signature verifies */
  readonly payloadBytes: Buffer;
  readonly signature: Buffer;
}

export function compilePassportPolicy(policy: PassportPolicy): CompiledPassportPolicy {
  const audiences = typeof policy.audience === 'string' ? [policy.audience] : policy.audience;
  if (audiences.length === 0 || audiences.some((aud) => aud.length === 0)) throw new RangeError('passport policy: audience must name at least one non-empty audience');
  const algorithms = policy.algorithms ?? PASSPORT_ALGORITHMS;
  if (algorithms.length === 0 || algorithms.some((alg) => !(PASSPORT_ALGORITHMS as readonly string[]).includes(alg))) {
    throw new RangeError(`passport policy: algorithms must be a non-empty subset of ${PASSPORT_ALGORITHMS.join(', ')}`);
  }
  const skew = policy.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  if (!Number.isFinite(skew) || skew < 0 || skew > MAX_CLOCK_SKEW_SECONDS) throw new RangeError(`passport policy: clockSkewSeconds must be in 0..${MAX_CLOCK_SKEW_SECONDS}`);
  if (policy.issuer?.length === 0) throw new RangeError('passport policy: issuer must not be empty when set');
  return { audiences: new Set(audiences), issuer: policy.issuer, algorithms: new Set(algorithms), clockSkewSeconds: skew };
}

export function reject(code: PassportFailureCode, detail: string, kid?: string): PassportRejection {
  return kid === undefined ? { ok: false, code, detail } : { ok: false, code, detail, kid };
}

/** Header checks, in the order the spec gives: shape, typ, alg, crit, kid. Never throws. */
export function parsePassport(token: unknown, policy: CompiledPassportPolicy): ParsedPassport | PassportRejection {
  if (token === undefined || token === null || token === '') return reject('missing_passport', 'no token');
  if (typeof token !== 'string') return reject('malformed', 'the token is not a string');
  if (token.length > MAX_PASSPORT_LENGTH) return reject('malformed', `longer than ${MAX_PASSPORT_LENGTH} characters`);
  const firstDot = token.indexOf('.');
  const secondDot = token.indexOf('.', firstDot + 1);
  if (firstDot < 0 || secondDot < 0 || token.includes('.', secondDot + 1)) return reject('malformed', 'not three dot-separated parts');
  const encodedHeader = token.slice(0, firstDot);
  const headerBytes = base64urlDecode(encodedHeader);
  const payloadBytes = base64urlDecode(token.slice(firstDot + 1, secondDot));
  const signature = base64urlDecode(token.slice(secondDot + 1));
  if (headerBytes === undefined || payloadBytes === undefined || signature === undefined) {
    return reject('malformed', 'a part is not strict base64url');
  }
  const header = decodeJsonObject(headerBytes);
  if (header === undefined) return reject('malformed', 'the header is not a JSON object');
  if (header.typ !== PASSPORT_TYP) return reject('bad_typ', `typ is ${describeValue(header.typ)}`);
  const alg = header.alg;
  if (typeof alg !== 'string' || !policy.algorithms.has(alg)) return reject('alg_not_allowed', `alg ${describeValue(alg)} is not accepted`);
  if (header.crit !== undefined) return reject('crit_unsupported', 'the header has crit');
  const kid = header.kid;
  if (typeof kid !== 'string' || kid.length === 0) return reject('malformed', 'the header has no kid');
  return { ok: true, kid, alg: alg as PassportAlgorithm, signingInput: token.slice(0, secondDot), payloadBytes, signature };
}

/** Signature, then claims, then policy (issuer, audience, lifetime, times). Never throws. */
export function verifyParsedPassport(
  parsed: ParsedPassport,
  key: VerificationKey,
  policy: CompiledPassportPolicy,
  nowSeconds: number,
): PassportVerdict {
  const { kid } = parsed;
  // the key decides the algorithm: a header that names another one is refused, not obeyed
  if (key.alg !== parsed.alg) return reject('alg_not_allowed', `key ${kid} is ${key.alg}, the header says ${parsed.alg}`, kid);
  if (!verifyJws(key.alg, key.publicKey, parsed.signingInput, parsed.signature)) return reject('signature_invalid', 'the signature does not verify', kid);
  const payload = decodeJsonObject(parsed.payloadBytes);
  if (payload === undefined) return reject('malformed', 'the payload is not a JSON object', kid);
  const checked = checkClaims(payload);
  if (!checked.ok) return reject(checked.code, checked.detail, kid);
  const claims = checked.value;
  if (policy.issuer !== undefined && claims.iss !== policy.issuer) return reject('wrong_issuer', `iss ${claims.iss}`, kid);
  if (!policy.audiences.has(claims.aud)) return reject('wrong_audience', `aud ${claims.aud}`, kid);
  const lifetime = claims.exp - claims.iat;
  if (lifetime <= 0 || lifetime > MAX_PASSPORT_LIFETIME_SECONDS) return reject('lifetime_too_long', `exp − iat = ${lifetime} s`, kid);
  const skew = policy.clockSkewSeconds;
  // Written as "not inside the window" so that a clock reading NaN (or ±∞ on the wrong side) fails
  // closed: every comparison with NaN is false.
  if (!(nowSeconds < claims.exp + skew)) return reject('expired', `expired at ${claims.exp}, now ${Math.floor(nowSeconds)}`, kid);
  if (!(claims.iat <= nowSeconds + skew)) return reject('not_yet_valid', `issued at ${claims.iat}, now ${Math.floor(nowSeconds)}`, kid);
  return { ok: true, claims, kid };
}

/** The whole check against a fixed key set (no refresh): what a test or an offline tool needs. */
export function verifyPassportWithKeys(
  token: unknown,
  keys: ReadonlyMap<string, VerificationKey>,
  policy: CompiledPassportPolicy,
  nowSeconds: number,
): PassportVerdict {
  const parsed = parsePassport(token, policy);
  if (!parsed.ok) return parsed;
  const key = keys.get(parsed.kid);
  if (key === undefined) return reject('unknown_kid', `no key ${parsed.kid}`, parsed.kid);
  return verifyParsedPassport(parsed, key, policy, nowSeconds);
}
