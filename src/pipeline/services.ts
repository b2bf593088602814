// The process-wide services FilterDeps hands to filters, as the interfaces filters use: their
// implementations live with the filters (filters/breaker/breakers.ts, filters/mtls/clients.ts) and
// are made by createFilterDeps (filters/deps.ts), so the pipeline names no filter.
import { z } from 'zod';
import type { PeerCertificate } from './peer.js';

// ---- circuit breakers (the breaker filter, the passport filter's user API) ---------------------------

export type BreakerState = 'closed' | 'open' | 'half_open';

/** Settles the call a request opened: the upstream answered well, failed, or the request ended without telling. */
export interface PendingCall {
  /**
   * The request was released to the upstream (its body complete): the slow-call clock starts now,
   * so a client's own upload time never counts against the upstream. Until called, the clock runs
   * from admission (a request without a body is released at its headers).
   */
  released(): void;
  succeed(): void;
  fail(why: string): void;
  /** no upstream answer to judge (cancelled, denied by a later filter, ext_authz): counts neither way (a half-open probe: as a failure) */
  forget(): void;
}

export type Admission = { readonly admitted: true; readonly call: PendingCall } | { readonly admitted: false; readonly retryAfterSeconds: number; readonly state: BreakerState };

/** a breaker's settings (the breaker filter's options without its feature fields) */
export interface BreakerOptions {
  readonly errorThresholdPercentage: number;
  readonly volumeThreshold: number;
  readonly rollingWindowMs: number;
  readonly rollingBuckets: number;
  readonly resetTimeoutMs: number;
  readonly slowCallMs?: number | undefined;
}

/**
 * A breaker's settings as a config writes them: the breaker filter's entry (which adds where the
 * feature is read) and the passport filter's `userApi.breaker` both use it. Object only, so it can be
 * extended; `checkBreakerWindow` is its cross-field check.
 */
export const breakerOptionsSchema = z.strictObject({
  /** share of failed requests in the rolling window, in percent, above which the breaker opens */
  errorThresholdPercentage: z.int().min(1).max(100).default(50),
  /** requests in the window before the breaker may open at all (a few failures on a quiet route are not an outage) */
  volumeThreshold: z.int().min(1).max(1_000_000).default(20),
  rollingWindowMs: z.int().min(1_000).max(600_000).default(10_000),
  rollingBuckets: z.int().min(1).max(600).default(10),
  /** how long it stays open before one probe request is let through (half-open) */
  resetTimeoutMs: z.int().min(100).max(600_000).default(30_000),
  /** an upstream answer slower than this counts as a failure too; absent: only the status counts */
  slowCallMs: z.int().min(1).max(600_000).optional(),
});

export function checkBreakerWindow(options: BreakerOptions, ctx: z.RefinementCtx): void {
  if (options.rollingWindowMs % options.rollingBuckets !== 0) {
    ctx.addIssue({ code: 'custom', path: ['rollingBuckets'], message: `must divide rollingWindowMs (${options.rollingWindowMs}) evenly` });
  }
}

/** One breaker per (route, feature), kept across config reloads. */
export interface CircuitBreakers {
  /** the breaker of (route, feature) with these options: the existing one when its options are the same */
  get(routeId: string, feature: string, options: BreakerOptions): { admit(): Admission; readonly state: BreakerState };
  /** stops every breaker's timers (gatehouse stopping) */
  shutdown(): void;
}

// ---- the user API (the passport filter's userApi) ------------------------------------------------

/**
 * How one lookup at the user API went: ok (facts), unknown_user (404/410, a definite answer),
 * refused (another 4xx), server_error (5xx), timeout, unreachable (no HTTP answer), invalid_answer
 * (a body of the wrong shape), breaker_open (not called: its breaker refused), too_many_pending
 * (not called: maxPendingCalls calls were open already). Cached answers are no calls.
 */
export const USER_API_OUTCOMES = ['ok', 'unknown_user', 'refused', 'server_error', 'timeout', 'unreachable', 'invalid_answer', 'breaker_open', 'too_many_pending'] as const;
export type UserApiOutcome = (typeof USER_API_OUTCOMES)[number];

/** Where the user API's health is counted (telemetry's metrics); `seconds` absent when no call was made. */
export interface UserApiCallObserver {
  userApiCall(outcome: UserApiOutcome, seconds: number | undefined): void;
}

// ---- the mtls client registry --------------------------------------------------------------------

/** A registered client as the mtls filter judges it. */
export interface RegisteredClient {
  readonly id: string;
  /** route ids this client may call */
  readonly routes: readonly string[];
  /** methods it may use on them; absent: any */
  readonly methods?: readonly string[] | undefined;
  readonly scopes: readonly string[];
}

export interface ClientDirectory {
  readonly size: number;
  /** the registry lists revoked certificates: one without a readable fingerprint cannot be checked */
  readonly hasRevocations: boolean;
  isRevoked(cert: PeerCertificate): boolean;
  /** the first client, in file order, whose every match field holds */
  find(cert: PeerCertificate): RegisteredClient | undefined;
}

/** What the mtls filter needs from the composition root: the live registry and the audit sink. */
export interface MtlsDeps {
  /** the registry new requests use; swapped on reload */
  readonly clients: () => ClientDirectory;
  /** one line per decision (docs/operations.md "mtls audit") */
  readonly audit: (record: MtlsAuditRecord) => void;
}

export interface MtlsAuditRecord {
  readonly request_id: string;
  readonly route: string;
  readonly method: string;
  readonly path: string;
  readonly decision: 'allow' | 'deny';
  readonly reason: string;
  readonly client_id?: string;
  readonly fingerprint?: string;
  readonly uri_san?: string;
  readonly subject?: string;
  /** where the certificate came from */
  readonly source: 'connection' | 'xfcc' | 'none';
}
