// A bounded cache of parsed records in front of a shared store: at most `maxEntries`, each for at most
// `ttlMs` after it was read. The TTL is the staleness bound: a change made through another replica is
// seen here within ttlMs. Eviction is oldest-inserted first (a Map keeps insertion order): with short
// TTLs this is close to LRU at a fraction of the bookkeeping.
export interface LocalCacheOptions {
  readonly maxEntries: number;
  readonly ttlMs: number;
}

export class LocalCache<V> {
  private readonly entries = new Map<string, { readonly value: V; readonly expiresAt: number }>();

  constructor(
    private readonly options: LocalCacheOptions,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** the cached value, or undefined when absent or older than ttlMs */
  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > this.now()) return entry.value;
    return undefined;
  }

  /**
   * The value even when it is older than ttlMs, never to be answered as current: what a re-read can
   * reuse of it when the store still holds the same bytes (devices: the parsed keys). Expired
   * entries stay until replaced or evicted, so the bound is still maxEntries.
   */
  getExpired(key: string): V | undefined {
    return this.entries.get(key)?.value;
  }

  set(key: string, value: V): void {
    if (this.options.maxEntries <= 0 || this.options.ttlMs <= 0) return;
    this.entries.delete(key);
    while (this.entries.size >= this.options.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done === true) break;
      this.entries.delete(oldest.value);
    }
    this.entries.set(key, { value, expiresAt: this.now() + this.options.ttlMs });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}
