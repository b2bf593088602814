// The `stores:` section (memory or Redis: standalone, Sentinel, Cluster); its type is stores/config.ts's.
import { z } from 'zod';
import type { CacheConfig } from '../../stores/config.js';
import { DEFAULTS } from '../defaults.js';
import { HOSTNAME, parseRedisUrl } from '../values.js';
import { checkedString, hostPort, positiveInt } from './fields.js';

const REDIS_MODE_FIELDS = {
  standalone: ['url', 'host', 'port', 'db'],
  sentinel: ['sentinels', 'masterName', 'db'],
  cluster: ['nodes'],
} as const;

const redisSection = z
  .strictObject({
    mode: z.enum(['standalone', 'sentinel', 'cluster']).default('standalone'),
    url: checkedString(parseRedisUrl).optional(),
    host: z.string().regex(HOSTNAME, 'must be a host name or IPv4 address').optional(),
    port: positiveInt(65535).optional(),
    db: z.int().min(0).max(65535).optional(),
    sentinels: z.array(hostPort(DEFAULTS.redisSentinelPort)).min(1, 'must list at least one sentinel').optional(),
    masterName: z.string().min(1, 'must not be empty').optional(),
    nodes: z.array(hostPort(DEFAULTS.redisPort)).min(1, 'must list at least one node').optional(),
    username: z.string().min(1, 'must not be empty').optional(),
    passwordEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').optional(),
    passwordFile: z.string().min(1, 'must not be empty').optional(),
    tls: z
      .union([z.boolean(), z.strictObject({ caFile: z.string().min(1, 'must not be empty').optional(), serverName: z.string().min(1, 'must not be empty').optional() })])
      .optional(),
    commandTimeoutMs: positiveInt(10_000).default(DEFAULTS.commandTimeoutMs),
    connectTimeoutMs: positiveInt(60_000).default(DEFAULTS.connectTimeoutMs),
  })
  .superRefine((redis, ctx) => {
    const mode = redis.mode;
    for (const [other, fields] of Object.entries(REDIS_MODE_FIELDS)) {
      if (other === mode) continue;
      for (const field of fields) {
        if (redis[field] !== undefined && !(REDIS_MODE_FIELDS[mode] as readonly string[]).includes(field)) {
          ctx.addIssue({ code: 'custom', path: [field], message: `is only read with mode: ${other} (this is mode: ${mode})` });
        }
      }
    }
    if (mode === 'standalone') {
      if (redis.url === undefined && redis.host === undefined) ctx.addIssue({ code: 'custom', message: 'mode standalone needs url or host' });
      if (redis.url !== undefined) {
        for (const field of ['host', 'port', 'db'] as const) {
          if (redis[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: 'must not be set with url (the URL already says it)' });
        }
      }
    }
    if (mode === 'sentinel') {
      if (redis.sentinels === undefined) ctx.addIssue({ code: 'custom', message: 'mode sentinel needs sentinels (host:port list)' });
      if (redis.masterName === undefined) ctx.addIssue({ code: 'custom', message: 'mode sentinel needs masterName' });
    }
    if (mode === 'cluster' && redis.nodes === undefined) ctx.addIssue({ code: 'custom', message: 'mode cluster needs nodes (host:port list of some cluster nodes)' });
    if (redis.passwordEnv !== undefined && redis.passwordFile !== undefined) ctx.addIssue({ code: 'custom', path: ['passwordFile'], message: 'set passwordEnv or passwordFile, not both' });
  });

const cacheSection = (defaults: CacheConfig) =>
  z
    .strictObject({
      maxEntries: z.int().min(0).max(10_000_000).default(defaults.maxEntries),
      ttlMs: z.int().min(0).max(60_000).default(defaults.ttlMs),
    })
    .prefault({});

export const storesSection = z
  .strictObject({
    kind: z.enum(['memory', 'redis']).default(DEFAULTS.storesKind),
    keyPrefix: z
      .string()
      .regex(/^[A-Za-z0-9:._-]{0,64}$/, { error: (issue) => `must be at most 64 characters of A-Z a-z 0-9 : . _ - (no braces: they would change the Cluster hash tag), got ${JSON.stringify(issue.input)}` })
      .default(DEFAULTS.keyPrefix),
    memory: z.strictObject({ maxNonces: positiveInt(100_000_000).default(DEFAULTS.maxMemoryNonces) }).prefault({}),
    deviceCache: cacheSection(DEFAULTS.deviceCache),
    accountCache: cacheSection(DEFAULTS.accountCache),
    redis: redisSection.optional(),
  })
  .superRefine((stores, ctx) => {
    if (stores.kind === 'redis' && stores.redis === undefined) ctx.addIssue({ code: 'custom', path: ['redis'], message: 'kind redis needs a redis section (mode, url or host, ...)' });
    if (stores.kind === 'memory' && stores.redis !== undefined) ctx.addIssue({ code: 'custom', path: ['redis'], message: 'is only read with kind: redis (this is kind: memory)' });
  });
