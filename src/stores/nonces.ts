// Replay protection: each (key id, nonce) is accepted once while it lives.
import type { KeyLayout } from './keys.js';
import type { StoreMetrics } from './metrics.js';
import type { RedisConnection } from './redis.js';
import { storeFailure, type NonceClaim, type NonceStore } from './types.js';

/** A ttl that is not a positive integer of ms up to a day is a caller's bug: refused, never stored forever. */
const MAX_NONCE_TTL_MS = 86_400_000;

function badTtl(ttlMs: number): NonceClaim | undefined {
  return Number.isInteger(ttlMs) && ttlMs > 0 && ttlMs <= MAX_NONCE_TTL_MS ? undefined : storeFailure('invalid', `nonce ttl must be an integer of 1..${MAX_NONCE_TTL_MS} ms, got ${ttlMs}`);
}

const FORGOTTEN = Symbol('forgotten');

/** One `SET key 1 NX PX ttl`: Redis decides atomically which of concurrent claims is first. */
export class RedisNonceStore implements NonceStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: KeyLayout,
  ) {}

  async claim(keyId: string, nonce: string, ttlMs: number, signedNotBeforeMs?: number): Promise<NonceClaim> {
    const bad = badTtl(ttlMs);
    if (bad !== undefined) {
      this.redis.metrics.count('nonces', 'claim', 'invalid');
      return bad;
    }
    // A Redis that lost its memory forgot the nonces claimed before: a signature that may be older
    // than the loss may be a replay it cannot recognise (see RedisConnection.checkIdentity).
    const lostAt = this.redis.memoryLostAt();
    if (lostAt === undefined) {
      this.redis.metrics.count('nonces', 'claim', 'unavailable');
      return storeFailure('unavailable', `redis claim: ${this.redis.status().lastError ?? 'the server of this connection is not yet checked (restart or failover?)'}`);
    }
    if (signedNotBeforeMs !== undefined && signedNotBeforeMs < lostAt) {
      this.redis.metrics.count('nonces', 'claim', 'forgotten');
      return storeFailure('forgotten', `signed at the earliest ${new Date(signedNotBeforeMs).toISOString()}, before the store lost its memory at ${new Date(lostAt).toISOString()}`);
    }
    const key = this.keys.nonce(keyId, nonce);
    const answer = await this.redis.call(
      'nonces',
      'claim',
      async (client) => {
        const reply = await client.set(key, '1', 'PX', ttlMs, 'NX');
        // checked again after the answer: the claim may have reached a server no check has seen yet
        // (a failover while it ran; a Cluster redirect to a promoted replica), or a check that ran
        // meanwhile may have moved the epoch past this signature
        if (!this.redis.answeredByCheckedServer(key)) throw new Error('answered by a server whose identity is not yet checked (failover?)');
        const lostSince = this.redis.memoryLostAt() ?? lostAt;
        return signedNotBeforeMs !== undefined && signedNotBeforeMs < lostSince ? FORGOTTEN : reply;
      },
      (reply) => (reply === FORGOTTEN ? 'forgotten' : reply === 'OK' ? 'first_use' : 'replayed'),
    );
    if (!answer.ok) return answer;
    if (answer.value === FORGOTTEN) return storeFailure('forgotten', `signed at the earliest ${new Date(signedNotBeforeMs ?? 0).toISOString()}, before the store lost its memory (a check while the claim ran)`);
    return { ok: true, firstUse: answer.value === 'OK' };
  }
}

/**
 * The nonce store of one process (`npm start`, tests). Bounded: beyond maxNonces live nonces it
 * answers `capacity` rather than evict, because forgetting a nonce that is still live would let its
 * request be replayed; the route's failure mode decides (fail closed: 503). Expired nonces are swept
 * as time passes, in expiry order, so the bound counts only nonces that still matter.
 */
export class MemoryNonceStore implements NonceStore {
  /** key → expiresAt (ms) */
  private readonly live = new Map<string, number>();
  /** expiry-ordered queue of [expiresAt, key]; TTLs vary, so it is a binary heap */
  private readonly heap: [number, string][] = [];

  constructor(
    private readonly maxNonces: number,
    private readonly metrics: StoreMetrics,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.live.size;
  }

  claim(keyId: string, nonce: string, ttlMs: number): Promise<NonceClaim> {
    const started = performance.now();
    const result = this.claimNow(keyId, nonce, ttlMs);
    this.metrics.observe('nonces', 'claim', result.ok ? (result.firstUse ? 'first_use' : 'replayed') : result.reason, (performance.now() - started) / 1000);
    return Promise.resolve(result);
  }

  private claimNow(keyId: string, nonce: string, ttlMs: number): NonceClaim {
    const bad = badTtl(ttlMs);
    if (bad !== undefined) return bad;
    const now = this.now();
    this.sweep(now);
    // the length prefix keeps ("a", "b:c") and ("a:b", "c") apart
    const key = `${keyId.length}:${keyId}:${nonce}`;
    const expiresAt = this.live.get(key);
    if (expiresAt !== undefined && expiresAt > now) return { ok: true, firstUse: false };
    if (this.live.size >= this.maxNonces) return storeFailure('capacity', `memory nonce store is full (${this.maxNonces} live nonces; stores.memory.maxNonces)`);
    this.live.set(key, now + ttlMs);
    this.push([now + ttlMs, key]);
    return { ok: true, firstUse: true };
  }

  private sweep(now: number): void {
    const heap = this.heap;
    while (heap.length > 0 && heap[0]![0] <= now) {
      const [at, key] = this.pop();
      if (this.live.get(key) === at) this.live.delete(key);
    }
  }

  private push(item: [number, string]): void {
    const heap = this.heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]![0] <= item[0]) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = item;
  }

  private pop(): [number, string] {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const right = left + 1;
        const child = right < heap.length && heap[right]![0] < heap[left]![0] ? right : left;
        if (heap[child]![0] >= last[0]) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }
}
