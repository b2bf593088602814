// Security events and disable rules, made from the `securityEvents:` config and the stores: the FDS
// stream and shared rule windows on Redis, or (memory stores) the log and this process's own windows.
// The adapters hand every denial to `onDenial`; SUSPICIOUS_REASONS (src/pipeline/deny.ts) decides.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { SecurityEventsConfig } from './config.js';
import type { DenyReasonCode } from '../pipeline/deny.js';
import type { RequestContext } from '../pipeline/types.js';
import type { KeyLayout } from '../stores/keys.js';
import type { RedisConnection } from '../stores/redis.js';
import type { Stores } from '../stores/types.js';
import { securityEventOf } from './events.js';
import { DisableRules, MemoryRuleWindows, RedisRuleWindows } from './rules.js';
import { RedisEventStream, SecurityEventSink } from './sink.js';

export { securityEventOf, recordClaimant, SECURITY_CLAIMANT_STATE, type Claimant, type SecurityEvent } from './events.js';
export { DisableRules, ruleAuthor } from './rules.js';
export { SecurityEventSink } from './sink.js';

/** what the adapters call at each denial, with the trace id their access line carries; never throws */
export type DenialObserver = (ctx: RequestContext, reason: DenyReasonCode, detail: string | undefined, traceId?: string) => void;

export interface SecurityEvents {
  readonly sink: SecurityEventSink;
  readonly rules: DisableRules;
  /** `redis stream <key>`, or `log only` with memory stores */
  readonly output: string;
  readonly onDenial: DenialObserver;
  close(timeoutMs: number): Promise<{ flushed: boolean; dropped: number }>;
}

export interface SecurityEventsOptions {
  readonly config: SecurityEventsConfig;
  readonly stores: Stores;
  /** present with kind redis */
  readonly redis?: { readonly connection: RedisConnection; readonly keys: KeyLayout };
  readonly logger: Logger;
  readonly registry?: Registry;
  readonly instance: string;
  readonly now?: () => number;
}

export function createSecurityEvents(options: SecurityEventsOptions): SecurityEvents {
  const { config, redis, logger } = options;
  const now = options.now ?? Date.now;
  const windows = redis === undefined ? new MemoryRuleWindows(now) : new RedisRuleWindows(redis.connection, redis.keys);
  const rules = new DisableRules(config.rules, windows, options.stores.accounts, now);
  const stream = redis === undefined ? undefined : new RedisEventStream(redis.connection, config.streamKey, config.streamMaxLen);
  const sink = new SecurityEventSink({
    logger,
    ...(options.registry === undefined ? {} : { registry: options.registry }),
    stream,
    rules,
    maxBuffered: config.maxBuffered,
    batchSize: config.batchSize,
    instance: options.instance,
  });
  return {
    sink,
    rules,
    output: stream === undefined ? 'log only' : stream.description,
    onDenial(ctx, reason, detail, traceId) {
      try {
        const event = securityEventOf(ctx, reason, detail, now(), traceId);
        if (event !== undefined) sink.report(event);
      } catch (error) {
        logger.error({ err: error, request_id: ctx.requestId }, 'security event could not be built');
      }
    },
    close: (timeoutMs) => sink.close(timeoutMs),
  };
}
