// What a passport says, and the one structural check of it that both the issuer (before signing)
// and the verifier (after the signature) use, so the two sides cannot disagree about a claim.

export const PASSPORT_TYP = 'passport+jwt';
/** The request header the gateway sets and upstream middleware reads (lower case, as node exposes it). */
export const PASSPORT_HEADER = 'x-passport';
export const PASSPORT_ALGORITHMS = ['ES256', 'EdDSA'] as const;
export type PassportAlgorithm = (typeof PASSPORT_ALGORITHMS)[number];
/** The upper bound on exp − iat; a passport is for one request, not a session. */
export const MAX_PASSPORT_LIFETIME_SECONDS = 60;
/** Longer strings are refused: a passport rides in a header on every upstream request. */
export const MAX_CLAIM_STRING_LENGTH = 256;
export const MAX_AMR_ENTRIES = 8;

/** 0 none (device only) · 1 one factor · 2 two factors · 3 two factors, one hardware-bound (NIST AAL-like). */
export type AuthenticationLevel = 0 | 1 | 2 | 3;
/** 0 unknown · 1 app signature checked · 2 platform attestation passed · 3 hardware-backed attestation + signed request. */
export type IntegrityLevel = 0 | 1 | 2 | 3;

export interface PassportDevice {
  /** stable device id assigned at app registration */
  readonly id: string;
  /** e.g. "ios 18.1", "android 15" */
  readonly os?: string;
  readonly model?: string;
  /** app name and version, e.g. "superapp/5.2.0" */
  readonly app?: string;
}

/** What the gateway knows about a request; the issuer adds iss, iat and exp. */
export interface PassportSubject {
  readonly sub: string;
  readonly aud: string;
  /** the request id: one passport per request (IETF Transaction Tokens' txn) */
  readonly txn: string;
  readonly dev: PassportDevice;
  /** RFC 8176 authentication method references, e.g. ["pwd", "otp"] */
  readonly amr: readonly string[];
  readonly aal: AuthenticationLevel;
  readonly itl: IntegrityLevel;
}

export interface PassportClaims extends PassportSubject {
  readonly iss: string;
  /** NumericDate, whole seconds */
  readonly iat: number;
  readonly exp: number;
}

export type ClaimProblem = { readonly code: 'missing_claim' | 'invalid_claim'; readonly detail: string };
export type ClaimCheck<T> = { readonly ok: true; readonly value: T } | ({ readonly ok: false } & ClaimProblem);

type Fields = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const missing = (name: string): ClaimProblem => ({ code: 'missing_claim', detail: `${name} is absent` });
const invalid = (name: string, why: string): ClaimProblem => ({ code: 'invalid_claim', detail: `${name} ${why}` });

function checkString(fields: Fields, name: string, path = name): ClaimProblem | undefined {
  const value = fields[name];
  if (value === undefined) return missing(path);
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_CLAIM_STRING_LENGTH) {
    return invalid(path, `must be a string of 1..${MAX_CLAIM_STRING_LENGTH} characters`);
  }
  return undefined;
}

function checkOptionalString(fields: Fields, name: string, path: string): ClaimProblem | undefined {
  return fields[name] === undefined ? undefined : checkString(fields, name, path);
}

function checkLevel(fields: Fields, name: string): ClaimProblem | undefined {
  const value = fields[name];
  if (value === undefined) return missing(name);
  if (value !== 0 && value !== 1 && value !== 2 && value !== 3) return invalid(name, 'must be 0, 1, 2 or 3');
  return undefined;
}

function checkNumericDate(fields: Fields, name: string): ClaimProblem | undefined {
  const value = fields[name];
  if (value === undefined) return missing(name);
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    return invalid(name, 'must be a non-negative whole number of seconds');
  }
  return undefined;
}

function checkDevice(fields: Fields): ClaimProblem | undefined {
  const dev = fields.dev;
  if (dev === undefined) return missing('dev');
  if (!isObject(dev)) return invalid('dev', 'must be an object');
  return checkString(dev, 'id', 'dev.id') ?? checkOptionalString(dev, 'os', 'dev.os') ??
    checkOptionalString(dev, 'model', 'dev.model') ?? checkOptionalString(dev, 'app', 'dev.app');
}

function checkAmr(fields: Fields): ClaimProblem | undefined {
  const amr = fields.amr;
  if (amr === undefined) return missing('amr');
  if (!Array.isArray(amr) || amr.length > MAX_AMR_ENTRIES) return invalid('amr', `must be an array of at most ${MAX_AMR_ENTRIES} strings`);
  for (const method of amr as unknown[]) {
    if (typeof method !== 'string' || method.length === 0 || method.length > 32) return invalid('amr', 'entries must be strings of 1..32 characters');
  }
  return undefined;
}

function checkSubjectFields(fields: Fields): ClaimProblem | undefined {
  return checkString(fields, 'sub') ?? checkString(fields, 'aud') ?? checkString(fields, 'txn') ?? checkDevice(fields) ??
    checkAmr(fields) ?? checkLevel(fields, 'aal') ?? checkLevel(fields, 'itl');
}

// Copies only the known fields, in one fixed order: the issuer signs exactly these bytes' worth of
// meaning, and the verifier hands callers nothing it did not check.
function copyDevice(dev: Fields): PassportDevice {
  const copy: { id: string; os?: string; model?: string; app?: string } = { id: dev.id as string };
  if (dev.os !== undefined) copy.os = dev.os as string;
  if (dev.model !== undefined) copy.model = dev.model as string;
  if (dev.app !== undefined) copy.app = dev.app as string;
  return copy;
}

function copySubject(fields: Fields): PassportSubject {
  return {
    sub: fields.sub as string,
    aud: fields.aud as string,
    txn: fields.txn as string,
    dev: copyDevice(fields.dev as Fields),
    amr: [...(fields.amr as string[])],
    aal: fields.aal as AuthenticationLevel,
    itl: fields.itl as IntegrityLevel,
  };
}

/** The issuer's input check: what the filter built from the request context. */
export function checkSubject(input: unknown): ClaimCheck<PassportSubject> {
  if (!isObject(input)) return { ok: false, ...invalid('passport subject', 'must be an object') };
  const problem = checkSubjectFields(input);
  return problem ? { ok: false, ...problem } : { ok: true, value: copySubject(input) };
}

/** The verifier's shape check of a signed payload; times, issuer and audience are policy, checked after. */
export function checkClaims(payload: unknown): ClaimCheck<PassportClaims> {
  if (!isObject(payload)) return { ok: false, ...invalid('payload', 'must be a JSON object') };
  const problem = checkString(payload, 'iss') ?? checkNumericDate(payload, 'iat') ?? checkNumericDate(payload, 'exp') ??
    checkSubjectFields(payload);
  if (problem) return { ok: false, ...problem };
  return { ok: true, value: { iss: payload.iss as string, iat: payload.iat as number, exp: payload.exp as number, ...copySubject(payload) } };
}
