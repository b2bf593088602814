// The user API client behind `passport.userApi`: what gatehouse learns about the user (amr, aal) once
// per TTL per subject, so no upstream calls the user API. Concurrent lookups of one subject share
// one call (coalescing); a fresh cache entry costs none; at most `maxPendingCalls` calls are open at
// once, a lookup beyond them fails at once. Calls go through a process-wide breaker
// (FilterDeps.breakers, keyed by the base URL, kept across reloads): while it is open the API is
// not called and the lookup fails at once. A lookup never throws: it answers facts or a failure.
import { z } from 'zod';
import { MAX_AMR_ENTRIES, type AuthenticationLevel } from '../../protocol/passport/index.js';
import type { UserApiOutcome } from '../../pipeline/services.js';
import type { FilterDeps } from '../../pipeline/types.js';
import type { UserApiConfig } from './config.js';

/** What the user API answers for GET <baseUrl><encoded subject>: a JSON object; other members are ignored. */
const userFactsResponse = z.object({
  /** RFC 8176 methods of the user's current authentication, e.g. ["pwd", "otp"] */
  amr: z.array(z.string().min(1).max(32)).max(MAX_AMR_ENTRIES),
  /** 0 none, 1 one factor, 2 two factors, 3 two factors one hardware-bound */
  aal: z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)]),
});

export interface UserFacts {
  readonly amr: readonly string[];
  readonly aal: AuthenticationLevel;
}

/**
 * facts; or `unknown`: the API answered that it has no such user (404, 410), a definite answer about
 * the subject, not about the API; or a failure: the API could not answer usefully (down, slow,
 * breaker open, 5xx, another 4xx, a body of the wrong shape).
 */
export type UserLookup =
  | { readonly ok: true; readonly facts: UserFacts }
  | { readonly ok: false; readonly unknown: true; readonly detail: string }
  | { readonly ok: false; readonly unknown?: undefined; readonly detail: string };

/**
 * How an HTTP answer of the user API counts for its breaker. The breaker protects against an API
 * that is failing: 5xx, timeouts and unreadable answers are failures. A 4xx is the API working and
 * answering about the request (no such user, or our request is wrong: a config problem the logs
 * show); it must not open the breaker for every other user.
 */
const NO_SUCH_USER = new Set([404, 410]);


/** a failed call, with how it counts in gatehouse_user_api_calls_total */
class UserApiFailure extends Error {
  constructor(readonly outcome: Exclude<UserApiOutcome, 'ok' | 'unknown_user' | 'refused' | 'breaker_open' | 'too_many_pending'>, message: string) {
    super(message);
  }
}

/** AbortSignal.timeout aborts with a DOMException named TimeoutError (fetch rethrows it as is) */
function isTimeout(error: unknown): boolean {
  return error instanceof Error && error.name === 'TimeoutError';
}

/** the breakers' "route" for user API breakers (a metric label): one breaker per base URL */
export const USER_API_BREAKER_ROUTE = 'passport.userApi';

export class UserApiClient {
  /** facts, or null for a subject the API said it does not know (cached as long: the answer is as definite) */
  private readonly cache = new Map<string, { readonly facts: UserFacts | null; readonly expiresAt: number }>();
  private readonly inFlight = new Map<string, Promise<UserLookup>>();
  /** calls to the API not answered yet (coalesced lookups share one) */
  private pendingCalls = 0;
  private released = false;

  constructor(
    private readonly config: UserApiConfig,
    private readonly deps: Pick<FilterDeps, 'now' | 'breakers' | 'userApiCalls'>,
  ) {}

  lookup(subject: string): Promise<UserLookup> {
    const cached = this.cache.get(subject);
    if (cached !== undefined && cached.expiresAt > this.deps.now()) {
      return Promise.resolve(cached.facts === null ? { ok: false, unknown: true, detail: 'the user API does not know this subject (cached answer)' } : { ok: true, facts: cached.facts });
    }
    const pending = this.inFlight.get(subject);
    if (pending !== undefined) return pending;
    const call = this.fetchFacts(subject).finally(() => this.inFlight.delete(subject));
    this.inFlight.set(subject, call);
    return call;
  }

  private async fetchFacts(subject: string): Promise<UserLookup> {
    const { breaker: breakerOptions, baseUrl, timeoutMs, maxPendingCalls } = this.config;
    // before the breaker: a refusal here says nothing about the API's health
    if (this.pendingCalls >= maxPendingCalls) {
      this.deps.userApiCalls.userApiCall('too_many_pending', undefined);
      return { ok: false, detail: `user API ${baseUrl}: ${maxPendingCalls} calls pending already (maxPendingCalls)` };
    }
    this.pendingCalls++;
    try {
      return await this.callApi(subject, baseUrl, timeoutMs, breakerOptions);
    } finally {
      this.pendingCalls--;
    }
  }

  private async callApi(subject: string, baseUrl: string, timeoutMs: number, breakerOptions: UserApiConfig['breaker']): Promise<UserLookup> {
    const admission = this.deps.breakers.get(USER_API_BREAKER_ROUTE, baseUrl, breakerOptions).admit();
    if (!admission.admitted) {
      this.deps.userApiCalls.userApiCall('breaker_open', undefined);
      return { ok: false, detail: `user API breaker ${admission.state}` };
    }
    const started = performance.now();
    const counted = (outcome: UserApiOutcome): void => {
      this.deps.userApiCalls.userApiCall(outcome, (performance.now() - started) / 1000);
    };
    let facts: UserFacts;
    try {
      let response: Response;
      try {
        response = await fetch(`${baseUrl}${encodeURIComponent(subject)}`, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
      } catch (error) {
        throw new UserApiFailure(isTimeout(error) ? 'timeout' : 'unreachable', error instanceof Error ? error.message : String(error));
      }
      if (response.status >= 400 && response.status < 500) {
        await response.body?.cancel();
        admission.call.succeed(); // the API is up and answered about this request
        const detail = `user API ${baseUrl}: answered ${response.status}`;
        if (!NO_SUCH_USER.has(response.status)) {
          counted('refused');
          return { ok: false, detail };
        }
        counted('unknown_user');
        this.remember(subject, null);
        return { ok: false, unknown: true, detail };
      }
      if (!response.ok) throw new UserApiFailure('server_error', `answered ${response.status}`);
      let body: unknown;
      try {
        body = await response.json();
      } catch (error) {
        // the body stalled past the deadline, or is not JSON
        throw new UserApiFailure(isTimeout(error) ? 'timeout' : 'invalid_answer', `answered an unreadable body: ${error instanceof Error ? error.message : String(error)}`);
      }
      const parsed = userFactsResponse.safeParse(body);
      if (!parsed.success) throw new UserApiFailure('invalid_answer', `answered an unexpected body: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      facts = parsed.data;
    } catch (error) {
      const failure = error instanceof UserApiFailure ? error : new UserApiFailure('unreachable', String(error));
      const detail = `user API ${baseUrl}: ${failure.message}`;
      counted(failure.outcome);
      admission.call.fail(detail);
      return { ok: false, detail };
    }
    counted('ok');
    admission.call.succeed();
    this.remember(subject, facts);
    return { ok: true, facts };
  }

  /** the route table this client serves was replaced: drop the cache, and keep no answer that arrives later */
  release(): void {
    this.released = true;
    this.cache.clear();
  }

  private remember(subject: string, facts: UserFacts | null): void {
    if (this.released) return;
    // bounded: the oldest entry goes first (Map keeps insertion order)
    if (this.cache.size >= this.config.maxEntries) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(subject, { facts, expiresAt: this.deps.now() + this.config.cacheTtlMs });
  }
}
