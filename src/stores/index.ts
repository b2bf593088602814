// The stores the filters build on (nonces, challenges, devices, disabled accounts), made from the
// `stores:` config section: in memory for one process (`npm start`, tests), or in Redis for a fleet.
// Filters get them through FilterDeps.stores and see only the interfaces in types.ts.
import type { Registry } from 'prom-client';
import { DEFAULT_MAX_MEMORY_NONCES, type StoresConfig } from './config.js';
import { MemoryAccountStatus, RedisAccountStatus } from './accounts.js';
import { CountedMemoryChallengeLedger, RedisChallengeLedger } from './challenges.js';
import { MemoryDeviceRegistry, RedisDeviceRegistry } from './devices.js';
import { KeyLayout } from './keys.js';
import { StoreMetrics } from './metrics.js';
import { MemoryNonceStore, RedisNonceStore } from './nonces.js';
import { createRedis, RedisConnection } from './redis.js';
import type { Stores } from './types.js';

export type * from './types.js';
export { MemoryChallengeLedger, RedisChallengeLedger } from './challenges.js';
export { keyPart, KeyLayout } from './keys.js';
export { MemoryNonceStore, RedisNonceStore } from './nonces.js';
export { MemoryDeviceRegistry, RedisDeviceRegistry } from './devices.js';
export { MemoryAccountStatus, RedisAccountStatus } from './accounts.js';
export { createRedis, RedisConfigError, RedisConnection } from './redis.js';
export { StoreMetrics } from './metrics.js';
export { checkRedisRequirements, type RedisRequirement } from './requirements.js';

export interface StoreOptions {
  /** where the store metrics go (gatehouse's registry); a private one when absent */
  readonly registry?: Registry;
  /** for passwordEnv */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly now?: () => number;
}

/** The in-memory stores with the default bounds, or those of `config`. Nothing to connect or close. */
export function createMemoryStores(config?: Pick<StoresConfig, 'maxMemoryNonces'>, options: StoreOptions = {}): Stores {
  const metrics = new StoreMetrics(options.registry);
  const stores: Stores = {
    nonces: new MemoryNonceStore(config?.maxMemoryNonces ?? DEFAULT_MAX_MEMORY_NONCES, metrics, options.now),
    challenges: new CountedMemoryChallengeLedger(metrics),
    devices: new MemoryDeviceRegistry(metrics),
    accounts: new MemoryAccountStatus(metrics),
    status: () => ({ kind: 'memory', state: 'ready' }),
    close: () => Promise.resolve(),
  };
  metrics.watch(() => stores.status());
  return stores;
}

export interface OpenedStores {
  readonly stores: Stores;
  /** why the first connection failed, when it did: the stores still work once Redis is reachable */
  readonly connectError?: string;
  /** kind redis: the connection and key layout the stores use, for others on the same Redis (security events) */
  readonly redis?: { readonly connection: RedisConnection; readonly keys: KeyLayout };
}

/**
 * Makes the stores of the config and, for Redis, connects once (within connectTimeoutMs). A Redis
 * that is down does not stop the start: each call answers unavailable and the route's failure mode
 * applies until ioredis reconnects. Throws RedisConfigError when a configured secret is missing.
 */
export async function openStores(config: StoresConfig, options: StoreOptions = {}): Promise<OpenedStores> {
  if (config.kind === 'memory' || config.redis === undefined) return { stores: createMemoryStores(config, options) };
  const metrics = new StoreMetrics(options.registry);
  const redis = new RedisConnection(createRedis(config.redis, options.env), config.redis.mode, metrics, config.redis.connectTimeoutMs, config.redis.commandTimeoutMs);
  const keys = new KeyLayout(config.keyPrefix);
  redis.shareMemoryLossUnder(keys);
  const stores: Stores = {
    nonces: new RedisNonceStore(redis, keys),
    challenges: new RedisChallengeLedger(redis, keys),
    devices: new RedisDeviceRegistry(redis, keys, config.deviceCache, options.now),
    accounts: new RedisAccountStatus(redis, keys, config.accountCache, options.now),
    status: () => redis.status(),
    close: () => redis.close(),
  };
  metrics.watch(() => stores.status());
  const connectError = await redis.connect();
  return connectError === undefined ? { stores, redis: { connection: redis, keys } } : { stores, connectError, redis: { connection: redis, keys } };
}
