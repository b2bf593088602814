import { z } from 'zod';
import { AS_WRITTEN, fileReadAtLoad, schemaPerScope, type FileRead, type FilterConfigScope } from '../../pipeline/filter-config.js';
import { breakerOptionsSchema, checkBreakerWindow } from '../../pipeline/services.js';
import { DEFAULT_PASSPORT_LIFETIME_SECONDS, loadKeyring, MAX_PASSPORT_LIFETIME_SECONDS, type PassportKeyring } from '../../protocol/passport/index.js';

/** Reads the key manifest and its PEM files at config load; the library's error names the file and field. */
function readKeyring(file: string): FileRead<PassportKeyring> {
  try {
    return { ok: true, value: loadKeyring(file) };
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * The passport key manifest (docs/protocol/passport.md §4.2): one `active` key signs, `published`
 * keys are only in the JWKS. Read at load and on every reload, which is how keys rotate.
 */
export const passportKeysFileIn = (scope: FilterConfigScope) => fileReadAtLoad(readKeyring, scope);

/**
 * Where the passport's amr and aal come from: GET <baseUrl><url-encoded subject> answering JSON
 * { "amr": ["pwd", "otp"], "aal": 2 }. Cached per subject, concurrent lookups coalesced, behind a
 * breaker; without this entry a passport says amr [] and aal 0.
 */
export const userApiConfig = z.strictObject({
  /** the subject is appended URL-encoded, so this usually ends with "/" */
  baseUrl: z.url({ protocol: /^https?$/ }),
  /** a call slower than this fails (keep it below the route budget) */
  timeoutMs: z.int().min(1).max(10_000).default(100),
  /** how long an answer is reused for the same subject: the bound on how stale amr/aal may be */
  cacheTtlMs: z.int().min(0).max(3_600_000).default(30_000),
  maxEntries: z.int().min(1).max(10_000_000).default(100_000),
  /**
   * calls to the API open at once from this route, at most: a lookup beyond it fails at once (as the
   * failure mode says) instead of queueing, so a slow API cannot pile up sockets and memory here
   */
  maxPendingCalls: z.int().min(1).max(10_000).default(64),
  /** the API cannot answer (down, slow, breaker open): closed → 503 dependency_unavailable; open → a passport without user facts (amr [], aal 0) */
  failureMode: z.enum(['closed', 'open']).default('closed'),
  /** the breaker in front of the API (the breaker filter's options, without feature) */
  breaker: breakerOptionsSchema.superRefine(checkBreakerWindow).prefault({}),
});

export type UserApiConfig = z.infer<typeof userApiConfig>;

/** A route's `passport` entry: the upstream gets a signed identity token in x-passport. */
export const passportConfigIn = schemaPerScope((scope: FilterConfigScope) =>
  z.strictObject({
    /** the upstream service this route serves: the passport's `aud`, which that service pins */
    audience: z.string().min(1).max(256),
    /** the passport's `iss`, e.g. https://gatehouse.superapp.internal; upstreams pin it */
    issuer: z.string().min(1).max(256),
    /** the key manifest (JSON), relative to the config file */
    keysFile: passportKeysFileIn(scope),
    /** exp − iat: one request's worth, never more than the protocol's 60 s */
    lifetimeSeconds: z.int().min(1).max(MAX_PASSPORT_LIFETIME_SECONDS).default(DEFAULT_PASSPORT_LIFETIME_SECONDS),
    userApi: userApiConfig.optional(),
  }),
);
/** relative paths read as written (the JSON Schema, tests) */
export const passportConfig = passportConfigIn(AS_WRITTEN);

export type PassportConfig = z.infer<typeof passportConfig>;

/**
 * A route's `passportKeys` entry: gatehouse itself answers the route with the JWKS of these keys,
 * for upstream verifiers. Name the same manifest as the passport routes.
 */
export const passportKeysConfigIn = schemaPerScope((scope: FilterConfigScope) =>
  z.strictObject({
    keysFile: passportKeysFileIn(scope),
    /** Cache-Control max-age; keep it at most the upstream verifiers' maxAge (default 300 s) */
    maxAgeSeconds: z.int().min(0).max(3600).default(300),
  }),
);
/** relative paths read as written (the JSON Schema, tests) */
export const passportKeysConfig = passportKeysConfigIn(AS_WRITTEN);

export type PassportKeysConfig = z.infer<typeof passportKeysConfig>;
