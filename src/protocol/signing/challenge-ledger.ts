// Single use of challenges. verifyEnrollment and issueCredential stay pure: they return the challenge
// id and its expiry, and the caller consumes the id here after the request verified and before it acts
// on it (stores the device, hands out the credential). The interface is what the shared store (Redis:
// `SET <prefix><id> 1 NX EXAT <expiresAt>`, nil → challenge_used) implements for a fleet; the in-memory
// ledger below serves one process and tests.
import { fail, type SigningFailure } from './codes.js';
import { MAX_CHALLENGE_TTL_SECONDS } from './challenge.js';

/**
 * How far behind the issuing replica's clock the consuming one may be: a challenge issued with the
 * full 300 s by one replica and consumed at once by another whose clock is 2 s behind is still
 * accepted.
 */
export const LEDGER_CLOCK_SKEW_SECONDS = 60;

export type ChallengeConsumption = { readonly ok: true } | SigningFailure;

export interface ChallengeLedger {
  /**
   * Marks `challengeId` used until `expiresAt` (Unix seconds) and answers ok the first time; a second
   * call for the same id before `expiresAt` answers challenge_used. Atomic: of two concurrent calls
   * for one id, exactly one is ok. Never throws for any input.
   */
  consume(challengeId: string, expiresAt: number, now: number): ChallengeConsumption | PromiseLike<ChallengeConsumption>;
}

/**
 * The ledger of one process. It remembers an id only until its expiry (after which verifyChallenge
 * refuses the challenge anyway), and refuses expiries further ahead than MAX_CHALLENGE_TTL_SECONDS (plus the
 * clock skew allowance), so it holds at most the ids consumed in the last 360 s: memory is bounded by
 * the consumption rate.
 */
export class MemoryChallengeLedger implements ChallengeLedger {
  /** id → expiresAt */
  private readonly used = new Map<string, number>();
  /** expiresAt → ids expiring then: at most MAX_CHALLENGE_TTL_SECONDS buckets are live. */
  private readonly expiring = new Map<number, string[]>();
  private prunedAt = Number.NEGATIVE_INFINITY;

  /** Ids remembered now (for tests and metrics). */
  get size(): number {
    return this.used.size;
  }

  consume(challengeId: string, expiresAt: number, now: number): ChallengeConsumption {
    // Written so NaN fails closed.
    if (!(now < expiresAt)) return fail('challenge_expired', 'challenge has expired');
    if (!(expiresAt - now <= MAX_CHALLENGE_TTL_SECONDS + LEDGER_CLOCK_SKEW_SECONDS)) {
      return fail('challenge_invalid', `challenge expiry is more than ${MAX_CHALLENGE_TTL_SECONDS} s (+${LEDGER_CLOCK_SKEW_SECONDS} s of clock skew) ahead`);
    }
    this.prune(now);
    if (this.used.has(challengeId)) return fail('challenge_used', 'challenge id was already used');
    this.used.set(challengeId, expiresAt);
    const bucket = this.expiring.get(expiresAt);
    if (bucket === undefined) this.expiring.set(expiresAt, [challengeId]);
    else bucket.push(challengeId);
    return { ok: true };
  }

  /** Forgets every id whose expiry is ≤ now. */
  prune(now: number): void {
    if (!(now > this.prunedAt)) return;
    this.prunedAt = now;
    for (const [at, ids] of this.expiring) {
      if (at > now) continue;
      for (const id of ids) this.used.delete(id);
      this.expiring.delete(at);
    }
  }
}
