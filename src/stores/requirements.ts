// What gatehouse needs of its Redis, checked at start where Redis lets us ask (CONFIG GET, INFO),
// each shortfall a warning naming the setting and what it costs (docs/resilience.md):
//  - maxmemory-policy noeviction: an evicting Redis drops disabled accounts and revoked devices
//    (plain keys without a TTL: the account is silently re-enabled) and live nonces (replays);
//  - persistence (appendonly yes, or save points): a restart without it forgets every device, every
//    disable, and the nonces (the nonce store then refuses recent signatures: nonce_store_reset);
//  - replication with min-replicas-to-write ≥ 1 on a Sentinel master: without it a write the master
//    confirmed just before a failover may never reach the promoted replica.
// A managed Redis may refuse CONFIG (renamed or ACL'd): that is said once, not treated as failure.
import type { Redis } from 'ioredis';
import type { RedisConnection } from './redis.js';

export interface RedisRequirement {
  /** the Redis setting, e.g. maxmemory-policy */
  readonly setting: string;
  /** what it is, or "unknown" when Redis would not say */
  readonly found: string;
  /** why it matters */
  readonly warning: string;
}

async function configGet(client: Redis, name: string): Promise<string | undefined> {
  const reply: unknown = await client.config('GET', name);
  return Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : undefined;
}

/**
 * The requirements this Redis does not meet (empty: all met). Cluster mode asks the node ioredis
 * picks; each master should be configured alike. Bounded by `deadlineMs`; never throws.
 */
export async function checkRedisRequirements(connection: RedisConnection, deadlineMs: number): Promise<readonly RedisRequirement[]> {
  const client = connection.client as Redis;
  const found: RedisRequirement[] = [];
  const ask = async (): Promise<void> => {
    let policy: string | undefined;
    let appendonly: string | undefined;
    let save: string | undefined;
    let minReplicas: string | undefined;
    try {
      [policy, appendonly, save, minReplicas] = await Promise.all([configGet(client, 'maxmemory-policy'), configGet(client, 'appendonly'), configGet(client, 'save'), configGet(client, 'min-replicas-to-write')]);
    } catch (err) {
      found.push({ setting: 'CONFIG GET', found: 'refused', warning: `cannot check the Redis settings gatehouse needs (${err instanceof Error ? err.message : String(err)}): make sure of maxmemory-policy noeviction, persistence (appendonly yes) and, with replicas, min-replicas-to-write 1 (docs/resilience.md)` });
      return;
    }
    if (policy !== 'noeviction') found.push({ setting: 'maxmemory-policy', found: policy ?? 'unknown', warning: 'an evicting Redis drops disabled accounts and revoked devices (they come back enabled) and live nonces (replays): set maxmemory-policy noeviction' });
    if (appendonly !== 'yes' && (save === undefined || save.trim() === '')) found.push({ setting: 'appendonly/save', found: `appendonly ${appendonly ?? 'unknown'}, save "${save ?? ''}"`, warning: 'no persistence: a restart forgets every device and disable; recent signatures are then refused (nonce_store_reset): set appendonly yes' });
    if (connection.mode === 'sentinel' && Number(minReplicas ?? '0') < 1) found.push({ setting: 'min-replicas-to-write', found: minReplicas ?? 'unknown', warning: 'a write the master confirmed may not reach the replica promoted by a failover (a disable or revocation lost): set min-replicas-to-write 1' });
  };
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<void>((resolve) => { timer = setTimeout(() => { found.push({ setting: 'CONFIG GET', found: 'no answer', warning: `Redis did not answer CONFIG GET within ${deadlineMs} ms: the settings gatehouse needs are not checked` }); resolve(); }, deadlineMs); });
  await Promise.race([ask(), gaveUp]);
  clearTimeout(timer);
  return [...found];
}
