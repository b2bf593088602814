// Where security events go, off the request path. `report` is synchronous and O(1): it writes the log
// line, counts the event and queues it; a worker then appends queued events to the FDS stream (Redis)
// and applies the disable rules, in batches. The queue is bounded (`maxBuffered`): while Redis is slow
// or down, events wait there and are retried with a backoff; a new event finding it full is dropped
// and counted (gatehouse_security_events_dropped_total{reason="buffer_full"}). A request never waits
// for any of it. `close` flushes within a bound; what is left then is dropped and counted (`shutdown`).
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Counter, Registry } from 'prom-client';
import { CounterFamily, GaugeFamily, type CounterChild } from '../telemetry/metrics.js';
import { METRIC } from '../telemetry/metric-names.js';
import type { RedisConnection } from '../stores/redis.js';
import type { StoreFailure } from '../stores/types.js';
import { eventFields, type SecurityEvent } from './events.js';
import { ruleAuthor, type DisableRules } from './rules.js';

/** Appends one event to the FDS stream. */
export interface EventStream {
  /** what /readyz and the start log say: `redis-stream <key>` or `log-only` */
  readonly description: string;
  append(fields: Readonly<Record<string, string>>): Promise<{ readonly ok: true } | StoreFailure>;
}

export class RedisEventStream implements EventStream {
  readonly description: string;

  constructor(
    private readonly redis: RedisConnection,
    private readonly key: string,
    private readonly maxLen: number,
  ) {
    this.description = `redis stream ${key}`;
  }

  async append(fields: Readonly<Record<string, string>>): Promise<{ readonly ok: true } | StoreFailure> {
    const args = Object.entries(fields).flat();
    const answer = await this.redis.call('security', 'append', (client) => client.xadd(this.key, 'MAXLEN', '~', this.maxLen, '*', ...args), () => 'ok');
    return answer.ok ? { ok: true } : answer;
  }
}

export type DropReason = 'buffer_full' | 'shutdown';

export interface SecuritySinkOptions {
  readonly logger: Logger;
  /** gatehouse's registry (the metrics below are registered there); a private one in tests */
  readonly registry?: Registry;
  /** undefined: memory stores, the log and the metrics are the only outputs */
  readonly stream: EventStream | undefined;
  readonly rules: DisableRules;
  readonly maxBuffered: number;
  readonly batchSize: number;
  /** identifies this replica in the events */
  readonly instance: string;
  /** backoff after a failed round, doubled up to maxRetryMs */
  readonly minRetryMs?: number;
  readonly maxRetryMs?: number;
  /** how many recent events `recent()` keeps (this replica's, for the admin API) */
  readonly recentEvents?: number;
}

interface Pending {
  readonly event: SecurityEvent;
  readonly fields: Readonly<Record<string, string>>;
  readonly id: string;
  written: boolean;
  counted: boolean;
}

const DROP_WARNING_INTERVAL_MS = 10_000;

export class SecurityEventSink {
  private readonly queue: Pending[] = [];
  private readonly recentFields: Readonly<Record<string, string>>[] = [];
  private running = false;
  private closing = false;
  private retryMs: number;
  private sleeper: { timer: NodeJS.Timeout; wake: () => void } | undefined;
  private idleWaiters: (() => void)[] = [];
  private lastDropWarning = 0;
  private dropsSinceWarning = 0;

  private readonly eventsFamily: CounterFamily;
  private readonly eventCounters = new Map<string, CounterChild>();
  private readonly dropped: Record<DropReason, CounterChild>;
  private readonly written: CounterChild;
  private readonly failedRounds: CounterChild;
  private readonly disabledFamily: CounterFamily;
  private readonly buffered: CounterChild;

  constructor(private readonly options: SecuritySinkOptions) {
    this.retryMs = options.minRetryMs ?? 100;
    this.eventsFamily = new CounterFamily(METRIC.securityEvents, 'Suspicious denials reported as security events, by deny code and route.', ['code', 'route'], 2000);
    const droppedFamily = new CounterFamily(METRIC.securityEventsDropped, 'Security events dropped before reaching the FDS stream: buffer_full (Redis slow or down, the buffer was full), shutdown (not flushed within the bound).', ['reason'], 10);
    this.dropped = { buffer_full: droppedFamily.child(['buffer_full']), shutdown: droppedFamily.child(['shutdown']) };
    const writtenFamily = new CounterFamily(METRIC.securityEventsWritten, 'Security events appended to the FDS Redis stream.', [], 1);
    this.written = writtenFamily.child([]);
    const failedFamily = new CounterFamily(METRIC.securityEventRetries, 'Rounds of the security-event worker that a store could not complete (retried after a backoff).', [], 1);
    this.failedRounds = failedFamily.child([]);
    const bufferedFamily = new GaugeFamily(METRIC.securityEventsBuffered, 'Security events waiting for the FDS stream or the disable rules.', [], 1);
    this.buffered = bufferedFamily.child([]);
    this.disabledFamily = new CounterFamily(METRIC.securityAccountsDisabled, 'Accounts disabled by a disable rule, by rule (counted on the replica that crossed the threshold).', ['rule'], 100);
    for (const rule of options.rules.rules) this.disabledFamily.child([rule.name]);
    for (const family of [this.eventsFamily, droppedFamily, writtenFamily, failedFamily, bufferedFamily, this.disabledFamily]) {
      // prom-client's typings only admit its own classes; the Registry reads name/help/type/get()
      options.registry?.registerMetric(family as unknown as Counter);
    }
  }

  /** how many events wait now */
  get pending(): number {
    return this.queue.length;
  }

  /** the last events this replica reported (newest last), as their stream fields */
  recent(): readonly Readonly<Record<string, string>>[] {
    return this.recentFields;
  }

  /** Logs, counts and queues the event. Synchronous, never throws, never waits. */
  report(event: SecurityEvent): void {
    try {
      const id = randomUUID();
      const fields = { event_id: id, ...eventFields(event, this.options.instance) };
      this.options.logger.warn(fields, 'security_event');
      const key = `${event.code} ${event.route}`;
      let counter = this.eventCounters.get(key);
      if (counter === undefined) {
        counter = this.eventsFamily.child([event.code, event.route]);
        this.eventCounters.set(key, counter);
      }
      counter.value += 1;
      this.recentFields.push(fields);
      if (this.recentFields.length > (this.options.recentEvents ?? 100)) this.recentFields.shift();
      if (this.closing) {
        this.drop('shutdown', 1);
        return;
      }
      const rules = this.options.rules.matching(event);
      const pending: Pending = { event, fields, id, written: this.options.stream === undefined, counted: rules.length === 0 };
      if (pending.written && pending.counted) return;
      if (this.queue.length >= this.options.maxBuffered) {
        this.drop('buffer_full', 1);
        return;
      }
      this.queue.push(pending);
      this.buffered.value = this.queue.length;
      this.kick();
    } catch (error) {
      this.options.logger.error({ err: error }, 'security event could not be reported');
    }
  }

  private drop(reason: DropReason, n: number): void {
    this.dropped[reason].value += n;
    this.dropsSinceWarning += n;
    const now = Date.now();
    if (reason === 'shutdown' || now - this.lastDropWarning >= DROP_WARNING_INTERVAL_MS) {
      this.options.logger.warn({ reason, dropped: this.dropsSinceWarning, buffered: this.queue.length, max_buffered: this.options.maxBuffered }, 'security events dropped');
      this.lastDropWarning = now;
      this.dropsSinceWarning = 0;
    }
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    setImmediate(() => {
      void this.run();
    });
  }

  private async run(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const batch = this.queue.slice(0, this.options.batchSize);
        const complete = await this.process(batch);
        // finished entries leave the queue; the rest stay at its head for the next round
        const left = batch.filter((p) => !(p.written && p.counted));
        this.queue.splice(0, batch.length, ...left);
        this.buffered.value = this.queue.length;
        if (complete) {
          this.retryMs = this.options.minRetryMs ?? 100;
          continue;
        }
        this.failedRounds.value += 1;
        if (this.isStopped()) break; // close() gave up while the round ran
        // while closing, retry soon: the flush has a deadline
        await this.sleep(this.closing ? Math.min(this.retryMs, 50) : this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, this.options.maxRetryMs ?? 2_000);
      }
    } catch (error) {
      this.options.logger.error({ err: error }, 'security event worker failed');
    } finally {
      this.running = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** set by close() once its time is up: the worker stops after the round in flight */
  private stopped = false;

  private isStopped(): boolean {
    return this.stopped;
  }

  private whenIdle(maxMs: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, maxMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private async process(batch: readonly Pending[]): Promise<boolean> {
    const stream = this.options.stream;
    const work = batch.map(async (p) => {
      if (!p.written && stream !== undefined) {
        const appended = await stream.append(p.fields);
        if (appended.ok) {
          p.written = true;
          this.written.value += 1;
        }
      }
      if (!p.counted) {
        const outcome = await this.options.rules.apply(p.event, p.id, this.options.rules.matching(p.event));
        if (outcome.done) p.counted = true;
        for (const rule of outcome.disabledBy) {
          this.disabledFamily.child([rule.name]).value += 1;
          this.options.logger.warn(
            { subject: p.event.subject, rule: rule.name, by: ruleAuthor(rule.name), reason: rule.reason, threshold: rule.threshold, window_seconds: rule.windowSeconds, event_id: p.id, request_id: p.event.requestId },
            'account disabled by rule',
          );
        }
      }
    });
    await Promise.all(work);
    return batch.every((p) => p.written && p.counted);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleeper = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      timer.unref();
      this.sleeper = { timer, wake };
    });
  }

  /**
   * Stops taking events and flushes the buffer for at most `timeoutMs` (failed rounds are retried
   * meanwhile); what is still buffered then is dropped and counted. Never throws.
   */
  async close(timeoutMs: number): Promise<{ flushed: boolean; dropped: number }> {
    this.closing = true;
    this.sleeper?.wake();
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length > 0 && Date.now() < deadline) {
      if (!this.running) this.kick();
      await this.whenIdle(Math.max(1, Math.min(deadline - Date.now(), 25)));
    }
    this.stopped = true;
    this.sleeper?.wake();
    // the round in flight ends within the Redis command timeout; don't wait forever for it
    await this.whenIdle(1_000);
    const dropped = this.queue.length;
    if (dropped > 0) {
      this.queue.length = 0;
      this.buffered.value = 0;
      this.drop('shutdown', dropped);
    }
    return { flushed: dropped === 0, dropped };
  }
}
