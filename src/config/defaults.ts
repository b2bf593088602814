// The values a config gets for what it leaves out (docs/config.md states each beside its field).
import { DEFAULT_MAX_MEMORY_NONCES } from '../stores/config.js';
import type { LogLevel, StoresConfig, Unmatched } from './types.js';

export const DEFAULTS = {
  grpcListen: '0.0.0.0:9001',
  adminListen: '0.0.0.0:9002',
  unmatched: 'deny' as Unmatched,
  budgetMs: 150,
  maxBodyBytes: 1_048_576,
  messageTimeoutMs: 200,
  maxStreams: 20_000,
  maxStreamsPerConnection: 1000,
  streamIdleTimeoutMs: 300_000,
  logLevel: 'info' as LogLevel,
  serviceName: 'gatehouse',
  accessLog: true,
  graceMs: 20_000,
  storesKind: 'memory' as StoresConfig['kind'],
  keyPrefix: 'gatehouse:',
  maxMemoryNonces: DEFAULT_MAX_MEMORY_NONCES,
  deviceCache: { maxEntries: 10_000, ttlMs: 5_000 },
  accountCache: { maxEntries: 10_000, ttlMs: 2_000 },
  securityStream: 'security-events',
  securityStreamMaxLen: 100_000,
  securityMaxBuffered: 1_000,
  securityBatchSize: 100,
  securityFlushTimeoutMs: 2_000,
  redisPort: 6379,
  redisSentinelPort: 26379,
  commandTimeoutMs: 50,
  connectTimeoutMs: 1_000,
} as const;
