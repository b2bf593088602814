// gatehouse_store_operations_total{store,operation,outcome},
// gatehouse_store_operation_duration_seconds{store,operation} and gatehouse_store_up{kind}: every
// label value comes from the fixed lists below, never from a key, so the series are bounded
// (4 stores × a few operations × outcomes).
import { Gauge, Registry, type Counter } from 'prom-client';
import { METRIC } from '../telemetry/metric-names.js';
import { CounterFamily, HistogramFamily, PHASE_BUCKETS, type CounterChild, type HistogramChild } from '../telemetry/metrics.js';
import type { StoreStatus } from './types.js';

export type StoreName = 'nonces' | 'challenges' | 'devices' | 'accounts' | 'security';
export type StoreOperation = 'identity' | 'replicate' | 'claim' | 'consume' | 'put' | 'get' | 'revoke' | 'disable' | 'enable' | 'is_disabled' | 'list' | 'append' | 'count' | 'clear';
/**
 * ok: done (for a write, or a read that found nothing to report); first_use / replayed: a nonce or
 * challenge; found / not_found: a read that asked the backend; cached: answered from the local cache;
 * refused: a challenge the ledger would not record (expired, too far ahead);
 * unavailable / capacity / corrupt / invalid / forgotten: a StoreFailure of that reason;
 * changed (operation identity): the Redis server is another one, or restarted: what it held may be lost.
 */
export type StoreOutcome = 'changed' | 'forgotten' | 'ok' | 'first_use' | 'replayed' | 'found' | 'not_found' | 'cached' | 'refused' | 'unavailable' | 'capacity' | 'corrupt' | 'invalid';

export class StoreMetrics {
  private readonly operations: CounterFamily;
  private readonly durations: HistogramFamily;
  private readonly counters = new Map<string, CounterChild>();
  private readonly histograms = new Map<string, HistogramChild>();

  /** registers both families in `registry` (gatehouse's own); a private one when absent (tests, bench) */
  constructor(private readonly registry: Registry = new Registry()) {
    this.operations = new CounterFamily(METRIC.storeOperations, 'Store operations, by store, operation and outcome (cached: answered from the local cache).', ['store', 'operation', 'outcome'], 1000);
    this.durations = new HistogramFamily(METRIC.storeOperationDuration, 'Time a store operation took at its backend (Redis round trip, or memory), seconds; cached answers are not timed.', ['store', 'operation'], 1000, PHASE_BUCKETS);
    // prom-client's typings only admit its own classes; the Registry reads name/help/type/get()
    registry.registerMetric(this.operations as unknown as Counter);
    registry.registerMetric(this.durations as unknown as Counter);
  }

  /**
   * gatehouse_store_up{kind}: read from `status` at each scrape, 1 while the backend answers (memory
   * always; Redis when connected and its server checked), else 0. Once per set of stores.
   */
  watch(status: () => StoreStatus): void {
    new Gauge({
      name: METRIC.storeUp,
      help: 'Whether the stores can answer: 1 memory, or Redis connected and checked; 0 while Redis is unreachable, reconnecting or not yet checked (store calls answer unavailable and routes apply their failure mode).',
      labelNames: ['kind'] as const,
      registers: [this.registry],
      collect() {
        const now = status();
        this.reset();
        this.set({ kind: now.kind }, now.state === 'ready' ? 1 : 0);
      },
    });
  }

  count(store: StoreName, operation: StoreOperation, outcome: StoreOutcome): void {
    const key = `${store} ${operation} ${outcome}`;
    let child = this.counters.get(key);
    if (child === undefined) {
      child = this.operations.child([store, operation, outcome]);
      this.counters.set(key, child);
    }
    child.value += 1;
  }

  /** counts the outcome and times the backend call */
  observe(store: StoreName, operation: StoreOperation, outcome: StoreOutcome, seconds: number): void {
    this.count(store, operation, outcome);
    const key = `${store} ${operation}`;
    let child = this.histograms.get(key);
    if (child === undefined) {
      child = this.durations.child([store, operation]);
      this.histograms.set(key, child);
    }
    child.observe(seconds);
  }
}
