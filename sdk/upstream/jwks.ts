// The upstream's JWKS cache: kid → key, replaced wholesale on every successful refresh (a key that
// leaves the document stops verifying at once — no per-kid TTL serving rotated-out keys, the
// failure in ory/oathkeeper#763). Refreshes are single-flight and rate-limited, so a flood of
// tokens with invented kids costs at most one fetch per minRefreshIntervalMs. A failed refresh keeps
// the last set (fail soft), but only for maxStaleMs: then a revoked key cannot outlive an outage.
import { parseJwks, type VerificationKey } from '../../src/protocol/passport/index.js';

/** Answers the parsed JSON of the JWKS document; throws or rejects when it cannot. */
export type FetchJwks = () => Promise<unknown>;

export interface JwksCacheOptions {
  readonly fetchJwks: FetchJwks;
  /** at most one fetch per this interval, whatever the traffic; default 10 s */
  readonly minRefreshIntervalMs?: number;
  /** a key set older than this is refreshed before use; default 5 min */
  readonly maxAgeMs?: number;
  /**
   * how long a key set may still be used while every refresh fails (the JWKS endpoint down); past
   * it, verification answers jwks_unavailable rather than trust keys the gateway may have revoked
   * meanwhile. Default 1 h; must be ≥ maxAgeMs.
   */
  readonly maxStaleMs?: number;
  /** the clock in milliseconds; Date.now unless a test pins it */
  readonly now?: () => number;
}

export type KeyLookup =
  | { readonly status: 'found'; readonly key: VerificationKey }
  | { readonly status: 'unknown_kid' }
  | { readonly status: 'jwks_unavailable'; readonly detail: string };

export interface JwksCache {
  /** the key for kid, refreshing first if the set is stale or the kid is new (within the rate limit) */
  lookup(kid: string): Promise<KeyLookup>;
  /** the key for kid if the current set is fresh and has it: the synchronous hot path */
  cachedKey(kid: string): VerificationKey | undefined;
  /** how many fetches were attempted, for tests and metrics */
  readonly fetchCount: number;
}

export const DEFAULT_MIN_REFRESH_INTERVAL_MS = 10_000;
export const DEFAULT_JWKS_MAX_AGE_MS = 300_000;
export const DEFAULT_JWKS_MAX_STALE_MS = 3_600_000;

export function createJwksCache(options: JwksCacheOptions): JwksCache {
  const minInterval = options.minRefreshIntervalMs ?? DEFAULT_MIN_REFRESH_INTERVAL_MS;
  const maxAge = options.maxAgeMs ?? DEFAULT_JWKS_MAX_AGE_MS;
  const maxStale = options.maxStaleMs ?? Math.max(DEFAULT_JWKS_MAX_STALE_MS, maxAge);
  if (!(maxStale >= maxAge)) throw new RangeError(`JWKS maxStaleMs (${maxStale}) must be at least maxAgeMs (${maxAge})`);
  const now = options.now ?? Date.now;
  let keys: ReadonlyMap<string, VerificationKey> | undefined;
  let loadedAt = 0;
  let lastAttemptAt = Number.NEGATIVE_INFINITY;
  let lastError = 'the JWKS has not been fetched yet';
  let inFlight: Promise<void> | undefined;
  let fetchCount = 0;

  async function fetchAndReplace(): Promise<void> {
    fetchCount++;
    try {
      const parsed = parseJwks(await options.fetchJwks());
      if (!parsed.ok) {
        lastError = `JWKS refused: ${parsed.detail}`;
        return;
      }
      keys = parsed.keys;
      loadedAt = now();
    } catch (error) {
      // a failed refresh keeps the previous set (fail soft); only a missing set answers jwks_unavailable
      lastError = `JWKS fetch failed: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  /** Joins the refresh in flight, or starts one if the rate limit allows; otherwise does nothing. */
  function refresh(): Promise<void> {
    if (inFlight) return inFlight;
    if (now() - lastAttemptAt < minInterval) return Promise.resolve();
    lastAttemptAt = now();
    inFlight = fetchAndReplace().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  const isFresh = (): boolean => keys !== undefined && now() - loadedAt < maxAge;
  /** the set may still be used: fresh, or stale only because refreshes fail, for at most maxStaleMs */
  const usableKeys = (): ReadonlyMap<string, VerificationKey> | undefined => (keys !== undefined && now() - loadedAt < maxStale ? keys : undefined);

  return {
    get fetchCount() {
      return fetchCount;
    },
    cachedKey(kid) {
      return isFresh() ? keys?.get(kid) : undefined;
    },
    async lookup(kid) {
      if (!isFresh()) await refresh();
      let key = usableKeys()?.get(kid);
      if (key === undefined && usableKeys() !== undefined) {
        await refresh();
        key = usableKeys()?.get(kid);
      }
      if (key !== undefined) return { status: 'found', key };
      if (usableKeys() !== undefined) return { status: 'unknown_kid' };
      return { status: 'jwks_unavailable', detail: keys === undefined ? lastError : `${lastError}; the last key set is older than ${maxStale} ms` };
    },
  };
}

/** The default fetcher: global fetch with a timeout; non-2xx and non-JSON answers are failures. */
export function httpJwksFetcher(url: string, timeoutMs = 2_000): FetchJwks {
  return async () => {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
    if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
    return await response.json();
  };
}
