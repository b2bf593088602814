// Single use of enrollment and credential challenges across the fleet: the Redis side of the
// protocol's ChallengeLedger (src/protocol/signing/challenge-ledger.ts), which keeps the in-memory one.
import { LEDGER_CLOCK_SKEW_SECONDS, MemoryChallengeLedger, type ChallengeConsumption } from '../protocol/signing/challenge-ledger.js';
import { MAX_CHALLENGE_TTL_SECONDS } from '../protocol/signing/challenge.js';
import { fail } from '../protocol/signing/codes.js';
import type { KeyLayout } from './keys.js';
import type { StoreMetrics } from './metrics.js';
import type { RedisConnection } from './redis.js';
import type { ChallengeStore, StoreFailure } from './types.js';

export { MemoryChallengeLedger };

function refusal(expiresAt: number, now: number): ChallengeConsumption | undefined {
  if (!(now < expiresAt)) return fail('challenge_expired', 'challenge has expired');
  if (!(expiresAt - now <= MAX_CHALLENGE_TTL_SECONDS + LEDGER_CLOCK_SKEW_SECONDS)) {
    return fail('challenge_invalid', `challenge expiry is more than ${MAX_CHALLENGE_TTL_SECONDS} s (+${LEDGER_CLOCK_SKEW_SECONDS} s of clock skew) ahead`);
  }
  // EXAT takes whole seconds; challenge expiries are (challenge.ts), anything else is not ours
  if (!Number.isInteger(expiresAt)) return fail('challenge_invalid', 'challenge expiry is not whole seconds');
  return undefined;
}

/**
 * `SET <key> 1 NX EXAT <expiresAt>`: the first consumer sets the key, every later one gets nil
 * (challenge_used) until the challenge's own expiry, when Redis forgets it. The checks before it are
 * MemoryChallengeLedger's, so both ledgers refuse the same expiries (written so NaN fails closed).
 */
export class RedisChallengeLedger implements ChallengeStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: KeyLayout,
  ) {}

  async consume(challengeId: string, expiresAt: number, now: number): Promise<ChallengeConsumption | StoreFailure> {
    const refused = refusal(expiresAt, now);
    if (refused !== undefined) {
      this.redis.metrics.count('challenges', 'consume', 'refused');
      return refused;
    }
    const key = this.keys.challenge(challengeId);
    const answer = await this.redis.call(
      'challenges',
      'consume',
      (client) => client.set(key, '1', 'EXAT', expiresAt, 'NX'),
      (reply) => (reply === 'OK' ? 'first_use' : 'replayed'),
    );
    if (!answer.ok) return answer;
    return answer.value === 'OK' ? { ok: true } : fail('challenge_used', 'challenge id was already used');
  }
}

/** MemoryChallengeLedger with the stores' metrics. */
export class CountedMemoryChallengeLedger implements ChallengeStore {
  private readonly ledger = new MemoryChallengeLedger();

  constructor(private readonly metrics: StoreMetrics) {}

  consume(challengeId: string, expiresAt: number, now: number): ChallengeConsumption {
    const started = performance.now();
    const result = this.ledger.consume(challengeId, expiresAt, now);
    const outcome = result.ok ? 'first_use' : result.code === 'challenge_used' ? 'replayed' : 'refused';
    this.metrics.observe('challenges', 'consume', outcome, (performance.now() - started) / 1000);
    return result;
  }
}
