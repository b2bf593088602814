// gatehouse_store_operations_total{store,operation,outcome} and
// gatehouse_store_operation_duration_seconds{store,operation}: every label value comes from the fixed
// lists below, never from a key, so the series are bounded (4 stores × a few operations × outcomes).
import { Registry, type Counter } from 'prom-client';
import { CounterFamily, HistogramFamily, PHASE_BUCKETS, type CounterChild, type HistogramChild } from '../telemetry/metrics.js';

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
  constructor(registry: Registry = new Registry()) {
    this.operations = new CounterFamily('gatehouse_store_operations_total', 'Store operations, by store, operation and outcome (cached: answered from the local cache).', ['store', 'operation', 'outcome'], 1000);
    this.durations = new HistogramFamily('gatehouse_store_operation_duration_seconds', 'Time a store operation took at its backend (Redis round trip, or memory), seconds; cached answers are not timed.', ['store', 'operation'], 1000, PHASE_BUCKETS);
    // prom-client's typings only admit its own classes; the Registry reads name/help/type/get()
    registry.registerMetric(this.operations as unknown as Counter);
    registry.registerMetric(this.durations as unknown as Counter);
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
