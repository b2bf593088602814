// verifyPassport() for upstream services: the core's pure checks plus the JWKS cache. The promise
// never rejects: every failure, including an unreachable JWKS, resolves to a verdict whose code is
// in PASSPORT_FAILURES (with the HTTP status the middleware answers).
import {
  compilePassportPolicy, parsePassport, reject, verifyParsedPassport, type PassportPolicy, type PassportVerdict,
} from '../../src/protocol/passport/index.js';
import { createJwksCache, httpJwksFetcher, type FetchJwks, type JwksCache } from './jwks.js';

export type PassportVerifierOptions = PassportPolicy & {
  /** minRefreshIntervalMs, maxAgeMs and maxStaleMs as in JwksCacheOptions */
  readonly minRefreshIntervalMs?: number;
  readonly maxAgeMs?: number;
  readonly maxStaleMs?: number;
  /** the clock in milliseconds, for expiry and for the cache; Date.now unless a test pins it */
  readonly now?: () => number;
} & (
  | { readonly jwksUrl: string; readonly fetchJwks?: never }
  /** injectable fetch: tests and service meshes with their own client */
  | { readonly fetchJwks: FetchJwks; readonly jwksUrl?: never }
);

export interface PassportVerifier {
  verifyPassport(token: unknown): Promise<PassportVerdict>;
  readonly jwks: JwksCache;
}

export function createPassportVerifier(options: PassportVerifierOptions): PassportVerifier {
  const policy = compilePassportPolicy(options);
  const now = options.now ?? Date.now;
  const fetchJwks = options.fetchJwks ?? httpJwksFetcher(options.jwksUrl);
  const jwks = createJwksCache({
    fetchJwks,
    now,
    ...(options.minRefreshIntervalMs === undefined ? {} : { minRefreshIntervalMs: options.minRefreshIntervalMs }),
    ...(options.maxAgeMs === undefined ? {} : { maxAgeMs: options.maxAgeMs }),
    ...(options.maxStaleMs === undefined ? {} : { maxStaleMs: options.maxStaleMs }),
  });

  return {
    jwks,
    async verifyPassport(token) {
      try {
        const parsed = parsePassport(token, policy);
        if (!parsed.ok) return parsed;
        let key = jwks.cachedKey(parsed.kid);
        if (key === undefined) {
          const found = await jwks.lookup(parsed.kid);
          if (found.status === 'jwks_unavailable') return reject('jwks_unavailable', found.detail, parsed.kid);
          if (found.status === 'unknown_kid') return reject('unknown_kid', `no key ${parsed.kid} after refresh`, parsed.kid);
          key = found.key;
        }
        return verifyParsedPassport(parsed, key, policy, now() / 1000);
      } catch (error) {
        // unreachable by design (the core does not throw); kept so the promise can never reject
        return reject('malformed', `verifier error: ${error instanceof Error ? error.message : String(error)}`);
      }
    },
  };
}
