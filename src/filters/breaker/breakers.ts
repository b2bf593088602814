// The breakers of the whole process, one per (route, feature), kept across config reloads: a reload
// must not close an open breaker (the upstream is still failing) or forget the window. An entry is
// rebuilt only when its options change. Each is an opossum CircuitBreaker (rolling window, volume
// threshold, error percentage, open → half-open → closed) fed with the upstream answers gatehouse
// watches: a request let through is counted when its response headers arrive.
import CircuitBreaker from 'opossum';
import type { Admission, BreakerOptions, BreakerState, CircuitBreakers, PendingCall } from '../../pipeline/services.js';

export type { Admission, BreakerState, PendingCall };

export interface BreakerEvents {
  onStateChange(routeId: string, feature: string, state: BreakerState): void;
}

class UpstreamFailure extends Error {}

type Options = BreakerOptions;

class Breaker {
  private readonly circuit: CircuitBreaker<[Promise<void>], void>;
  private openedAt = 0;

  constructor(
    readonly optionsKey: string,
    private readonly options: Options,
    private readonly now: () => number,
    onState: (state: BreakerState) => void,
  ) {
    this.circuit = new CircuitBreaker((pending: Promise<void>) => pending, {
      errorThresholdPercentage: options.errorThresholdPercentage,
      volumeThreshold: options.volumeThreshold,
      rollingCountTimeout: options.rollingWindowMs,
      rollingCountBuckets: options.rollingBuckets,
      resetTimeout: options.resetTimeoutMs,
      // slow calls are judged by callOf when the answer arrives; opossum's own timer is not used
      timeout: false,
    });
    this.circuit.on('open', () => {
      this.openedAt = this.now();
      onState('open');
    });
    this.circuit.on('halfOpen', () => { onState('half_open'); });
    this.circuit.on('close', () => { onState('closed'); });
  }

  get state(): BreakerState {
    if (this.circuit.closed) return 'closed';
    return this.circuit.halfOpen ? 'half_open' : 'open';
  }

  admit(): Admission {
    const admittedAt = this.now();
    if (this.circuit.closed) {
      // Counted when the outcome is known, not now: a request that ends without an upstream answer
      // (cancelled, denied later, ext_authz) then counts neither way instead of diluting the
      // failure rate as a success. An outcome that arrives after the breaker left `closed` is
      // dropped: it must not take the half-open probe's place.
      let settled = false;
      const record = (failure: Error | undefined): void => {
        if (settled) return;
        settled = true;
        if (!this.circuit.closed) return;
        this.circuit.fire(failure === undefined ? Promise.resolve() : Promise.reject(failure)).catch(() => undefined);
      };
      return { admitted: true, call: this.callOf(admittedAt, record, () => { settled = true; }) };
    }
    if (this.circuit.pendingClose) {
      // The one probe of half-open: fired now, so opossum refuses every other request until it settles.
      let settle!: (failure: Error | undefined) => void;
      const pending = new Promise<void>((resolve, reject) => {
        settle = (failure) => {
          if (failure === undefined) resolve();
          else reject(failure);
        };
      });
      this.circuit.fire(pending).catch(() => undefined);
      let settled = false;
      const record = (failure: Error | undefined): void => {
        if (settled) return;
        settled = true;
        settle(failure);
      };
      // a probe that ends without an answer proves nothing: the breaker stays open for another round
      return { admitted: true, call: this.callOf(admittedAt, record, () => { record(new UpstreamFailure('the probe ended without an upstream answer')); }) };
    }
    const remainingMs = this.state === 'open' ? this.openedAt + this.options.resetTimeoutMs - this.now() : 1_000;
    return { admitted: false, retryAfterSeconds: Math.max(1, Math.ceil(remainingMs / 1000)), state: this.state };
  }

  private callOf(admittedAt: number, record: (failure: Error | undefined) => void, forget: () => void): PendingCall {
    const { slowCallMs } = this.options;
    let releasedAt = admittedAt;
    return {
      released: () => {
        releasedAt = this.now();
      },
      succeed: () => {
        const tookMs = this.now() - releasedAt;
        record(slowCallMs !== undefined && tookMs > slowCallMs ? new UpstreamFailure(`answered after ${tookMs} ms > ${slowCallMs}`) : undefined);
      },
      fail: (why) => { record(new UpstreamFailure(why)); },
      forget,
    };
  }

  shutdown(): void {
    this.circuit.shutdown();
  }
}

export class Breakers implements CircuitBreakers {
  private readonly byKey = new Map<string, Breaker>();
  /** options object (one per filter instance, made at config load) → its canonical text, so a request does not re-serialise it */
  private readonly optionKeys = new WeakMap<Options, string>();

  constructor(
    private readonly events: BreakerEvents,
    private readonly now: () => number = Date.now,
  ) {}

  /** The breaker of (route, feature) with these options: the existing one when its options are the same. */
  get(routeId: string, feature: string, options: Options): { admit(): Admission; readonly state: BreakerState } {
    const key = `${routeId}\u0000${feature}`;
    let optionsKey = this.optionKeys.get(options);
    if (optionsKey === undefined) {
      optionsKey = JSON.stringify(options, Object.keys(options).sort());
      this.optionKeys.set(options, optionsKey);
    }
    const existing = this.byKey.get(key);
    if (existing?.optionsKey === optionsKey) return existing;
    existing?.shutdown();
    const created = new Breaker(optionsKey, options, this.now, (state) => { this.events.onStateChange(routeId, feature, state); });
    this.byKey.set(key, created);
    this.events.onStateChange(routeId, feature, 'closed');
    return created;
  }

  /** Stops every breaker's timers (gatehouse stopping). */
  shutdown(): void {
    for (const breaker of this.byKey.values()) breaker.shutdown();
    this.byKey.clear();
  }
}
