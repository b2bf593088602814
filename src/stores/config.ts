// The `stores:` section of the config as the stores read it (config/schema/stores.ts parses it).

/** the memory nonce store refuses claims (capacity) beyond this many live nonces, unless configured */
export const DEFAULT_MAX_MEMORY_NONCES = 1_000_000;

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Where the Redis password comes from: never the config file itself. */
export type SecretSource = { readonly env: string } | { readonly file: string };

export interface RedisTlsConfig {
  /** absolute; absent: the system's CAs */
  readonly caFile?: string;
  /** SNI and certificate name to expect, when it differs from the host dialled */
  readonly serverName?: string;
}

export type RedisTopology =
  | { readonly mode: 'standalone'; readonly host: string; readonly port: number; readonly db: number }
  | { readonly mode: 'sentinel'; readonly sentinels: readonly HostPort[]; readonly masterName: string; readonly db: number }
  | { readonly mode: 'cluster'; readonly nodes: readonly HostPort[] };

export type RedisConfig = RedisTopology & {
  readonly username?: string;
  readonly password?: SecretSource;
  readonly tls?: RedisTlsConfig;
  /** each command answers within this, or counts as unavailable */
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs: number;
};

export interface CacheConfig {
  readonly maxEntries: number;
  /** the staleness bound: a change made through another replica is seen within it */
  readonly ttlMs: number;
}

export interface StoresConfig {
  readonly kind: 'memory' | 'redis';
  /** put before every Redis key (outside the Cluster hash tag) */
  readonly keyPrefix: string;
  /** the memory nonce store refuses claims (capacity) beyond this many live nonces */
  readonly maxMemoryNonces: number;
  readonly deviceCache: CacheConfig;
  readonly accountCache: CacheConfig;
  /** present exactly when kind is redis */
  readonly redis?: RedisConfig;
}
