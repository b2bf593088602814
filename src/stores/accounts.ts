// The disabled-account list: a fraud team or an operator disables a subject, and every replica refuses
// it within the cache TTL (its propagation bound; this replica at once).
import type { KeyLayout } from './keys.js';
import { LocalCache, type LocalCacheOptions } from './local-cache.js';
import type { StoreMetrics } from './metrics.js';
import type { RedisConnection } from './redis.js';
import { Cluster, type Redis } from 'ioredis';
import { storeFailure, type AccountDisabled, type AccountList, type AccountLookup, type AccountStatus, type ListedAccount, type StoreChange, type StoreWrite } from './types.js';

/** an admin listing walks the keyspace in several SCANs, off the request path: a deadline for all of them */
const LIST_SCAN_DEADLINE_MS = 2_000;

/** the cache holds both answers: most subjects are enabled, and those are the lookups to save */
const ENABLED = Symbol('enabled');

function parseDisabled(text: string): (AccountDisabled & { readonly subject?: string }) | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null) return undefined;
    const { reason, by, at, subject } = value as Record<string, unknown>;
    if (typeof reason !== 'string' || typeof by !== 'string' || typeof at !== 'number') return undefined;
    return typeof subject === 'string' ? { reason, by, at, subject } : { reason, by, at };
  } catch {
    return undefined;
  }
}

/** SCAN on every master (a Cluster keeps keys on several) until `limit` keys or the end */
async function scanKeys(client: Redis | Cluster, pattern: string, limit: number): Promise<{ keys: string[]; truncated: boolean }> {
  const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client];
  const keys: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, found] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      for (const key of found) {
        if (keys.length >= limit) return { keys, truncated: true };
        keys.push(key);
      }
    } while (cursor !== '0');
  }
  return { keys, truncated: false };
}

/** One key per disabled subject holding {reason, by, at}; absent = enabled. */
export class RedisAccountStatus implements AccountStatus {
  private readonly cache: LocalCache<AccountDisabled | typeof ENABLED>;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: KeyLayout,
    cache: LocalCacheOptions,
    now: () => number = Date.now,
  ) {
    this.cache = new LocalCache(cache, now);
  }

  async disable(subject: string, reason: string, by: string, now: number): Promise<StoreWrite> {
    const disabled: AccountDisabled = { reason, by, at: now };
    const key = this.keys.disabledAccount(subject);
    // the subject is stored too: a key may hold only its hash (keys.ts), and listing needs the name
    // confirmed only once a replica has it: a failover must not silently re-enable the account
    const answer = await this.redis.writeDurably('accounts', 'disable', key, (server) => server.set(key, JSON.stringify({ ...disabled, subject })), () => 'ok');
    if (!answer.ok) return answer;
    this.cache.set(subject, disabled);
    return { ok: true };
  }

  async enable(subject: string): Promise<StoreChange> {
    const key = this.keys.disabledAccount(subject);
    const answer = await this.redis.call('accounts', 'enable', (client) => client.del(key), (n) => (n === 1 ? 'ok' : 'not_found'));
    if (!answer.ok) return answer;
    this.cache.set(subject, ENABLED);
    return { ok: true, existed: answer.value === 1 };
  }

  async isDisabled(subject: string): Promise<AccountLookup> {
    const cached = this.cache.get(subject);
    if (cached !== undefined) {
      this.redis.metrics.count('accounts', 'is_disabled', 'cached');
      return { ok: true, disabled: cached === ENABLED ? undefined : cached };
    }
    const key = this.keys.disabledAccount(subject);
    const answer = await this.redis.call('accounts', 'is_disabled', (client) => client.get(key), (text) => (text === null ? 'not_found' : 'found'));
    if (!answer.ok) return answer;
    if (answer.value === null) {
      this.cache.set(subject, ENABLED);
      return { ok: true, disabled: undefined };
    }
    const disabled = parseDisabled(answer.value);
    // fails closed for the filter (a failure), but says why: someone wrote the key by hand
    if (disabled === undefined) return storeFailure('corrupt', `disabled-account record of ${JSON.stringify(subject)} does not parse`);
    const { reason, by, at } = disabled;
    this.cache.set(subject, { reason, by, at });
    return { ok: true, disabled: { reason, by, at } };
  }

  async list(limit: number): Promise<AccountList> {
    const pattern = this.keys.disabledAccountPattern();
    const scanned = await this.redis.call('accounts', 'list', (client) => scanKeys(client, pattern, limit), () => 'ok', LIST_SCAN_DEADLINE_MS);
    if (!scanned.ok) return scanned;
    const accounts: ListedAccount[] = [];
    for (const key of scanned.value.keys) {
      const answer = await this.redis.call('accounts', 'get', (client) => client.get(key), (text) => (text === null ? 'not_found' : 'found'));
      if (!answer.ok) return answer;
      if (answer.value === null) continue; // enabled since the scan
      const record = parseDisabled(answer.value);
      const fromKey = key.slice(this.keys.prefix.length + 1, key.length - '}:disabled'.length);
      if (record === undefined) accounts.push({ subject: fromKey, reason: '(record does not parse)', by: 'unknown', at: 0 });
      else accounts.push({ subject: record.subject ?? fromKey, reason: record.reason, by: record.by, at: record.at });
    }
    return { ok: true, accounts, truncated: scanned.value.truncated };
  }
}

export class MemoryAccountStatus implements AccountStatus {
  private readonly disabled = new Map<string, AccountDisabled>();

  constructor(private readonly metrics: StoreMetrics) {}

  disable(subject: string, reason: string, by: string, now: number): Promise<StoreWrite> {
    this.disabled.set(subject, { reason, by, at: now });
    this.metrics.count('accounts', 'disable', 'ok');
    return Promise.resolve({ ok: true });
  }

  enable(subject: string): Promise<StoreChange> {
    const existed = this.disabled.delete(subject);
    this.metrics.count('accounts', 'enable', existed ? 'ok' : 'not_found');
    return Promise.resolve({ ok: true, existed });
  }

  isDisabled(subject: string): Promise<AccountLookup> {
    const disabled = this.disabled.get(subject);
    this.metrics.count('accounts', 'is_disabled', disabled === undefined ? 'not_found' : 'found');
    return Promise.resolve({ ok: true, disabled });
  }

  list(limit: number): Promise<AccountList> {
    const accounts: ListedAccount[] = [];
    for (const [subject, disabled] of this.disabled) {
      if (accounts.length >= limit) return Promise.resolve({ ok: true, accounts, truncated: true });
      accounts.push({ subject, ...disabled });
    }
    this.metrics.count('accounts', 'list', 'ok');
    return Promise.resolve({ ok: true, accounts, truncated: false });
  }
}
