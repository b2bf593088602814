// Prometheus metrics. The per-request families live in small purpose-built collectors: a child per
// label tuple, found by walking nested Maps of the label values, holding plain numbers. prom-client's
// own `inc(labels)` / `labels(...).inc()` hash the label object on every call (measured ~430-690 ns
// per call on this code path; a child here costs ~30-60 ns). The collectors are registered in a
// prom-client Registry (one per `createMetrics`, never the global one), so `registry.metrics()`
// renders everything, Node's runtime metrics included.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Phase } from '../pipeline/types.js';
import { USER_API_OUTCOMES, type UserApiCallObserver, type UserApiOutcome } from '../pipeline/services.js';
import { METRIC } from './metric-names.js';
import type { AccessLogEntry, ErrorKind, Metrics, Protocol } from './types.js';

/** Phase timings are mostly sub-millisecond; the top buckets catch I/O (stores, JWKS fetches). */
export const PHASE_BUCKETS: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
];
/** A request's processing time is the sum over its phases: same range, one more decade on top. */
export const PROCESSING_BUCKETS: readonly number[] = [...PHASE_BUCKETS, 0.5, 1, 2.5];

/** Series per family beyond which new label tuples fold into one `overflow` series. */
export const DEFAULT_MAX_SERIES = 5000;
export const OVERFLOW_LABEL = 'overflow';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE']);

/** Client-chosen methods would be unbounded: anything non-standard counts as `OTHER`. */
export function methodLabel(method: string): string {
  return KNOWN_METHODS.has(method) ? method : 'OTHER';
}

/** The status code as a label; `0` when there was none (as Envoy logs it), or it is not HTTP's. */
export function statusLabel(status: number | undefined): string {
  if (status === undefined || !Number.isInteger(status) || status < 100 || status > 599) return '0';
  return STATUS_STRINGS[status - 100]!;
}
const STATUS_STRINGS: readonly string[] = Array.from({ length: 500 }, (_, i) => String(i + 100));

type Labels = Record<string, string>;

/** What prom-client's Registry reads from a metric when it renders or exports JSON. */
interface CollectedMetric {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  aggregator: 'sum';
  values: { value: number; labels: Labels; metricName?: string }[];
}

interface Series<C> {
  readonly labels: Labels;
  readonly child: C;
}

/** Children by label tuple: nested Maps of label values, so a lookup hashes no new string. */
abstract class Family<C> {
  protected readonly series: Series<C>[] = [];
  private readonly root = new Map<string, unknown>();
  private overflow: C | undefined;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    private readonly maxSeries: number,
  ) {}

  protected abstract create(): C;
  abstract get(): Promise<CollectedMetric>;

  /** the child for these label values, in `labelNames` order */
  child(values: readonly string[]): C {
    let node = this.root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      const v = values[i]!;
      let next = node.get(v) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map<string, unknown>();
        node.set(v, next);
      }
      node = next;
    }
    const leaf = values[last]!;
    const found = node.get(leaf) as C | undefined;
    if (found !== undefined) return found;
    if (this.series.length >= this.maxSeries) return this.overflowChild();
    const child = this.create();
    node.set(leaf, child);
    this.series.push({ labels: this.labelsOf(values), child });
    return child;
  }

  private overflowChild(): C {
    if (this.overflow === undefined) {
      this.overflow = this.create();
      this.series.push({ labels: this.labelsOf(this.labelNames.map(() => OVERFLOW_LABEL)), child: this.overflow });
    }
    return this.overflow;
  }

  private labelsOf(values: readonly string[]): Labels {
    if (values.length !== this.labelNames.length) {
      throw new Error(`${this.name}: expected ${this.labelNames.length} label values, got ${values.length}`);
    }
    const labels: Labels = {};
    this.labelNames.forEach((n, i) => { labels[n] = values[i]!; });
    return labels;
  }

  /** for prom-client's Registry, which only checks that it exists */
  reset(): void {
    /* cumulative by design: a reset would break rate() */
  }
}

export interface CounterChild { value: number }

export class CounterFamily extends Family<CounterChild> {
  protected create(): CounterChild { return { value: 0 }; }
  get(): Promise<CollectedMetric> {
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: 'counter',
      aggregator: 'sum',
      values: this.series.map((s) => ({ value: s.child.value, labels: s.labels })),
    });
  }
}

export type GaugeChild = CounterChild;

export class GaugeFamily extends Family<GaugeChild> {
  protected create(): GaugeChild { return { value: 0 }; }
  get(): Promise<CollectedMetric> {
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: 'gauge',
      aggregator: 'sum',
      values: this.series.map((s) => ({ value: s.child.value, labels: s.labels })),
    });
  }
}

export class HistogramChild {
  /** per-bucket (not cumulative) counts; the last slot is +Inf */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]! += 1;
    this.sum += value;
    this.count += 1;
  }
}

export class HistogramFamily extends Family<HistogramChild> {
  private readonly le: readonly string[];

  constructor(name: string, help: string, labelNames: readonly string[], maxSeries: number, private readonly buckets: readonly number[]) {
    super(name, help, labelNames, maxSeries);
    this.le = [...buckets.map(String), '+Inf'];
  }

  protected create(): HistogramChild { return new HistogramChild(this.buckets); }

  get(): Promise<CollectedMetric> {
    const values: CollectedMetric['values'] = [];
    const bucketName = `${this.name}_bucket`;
    for (const { labels, child } of this.series) {
      let cumulative = 0;
      for (let i = 0; i < this.le.length; i++) {
        cumulative += child.counts[i]!;
        values.push({ value: cumulative, labels: { ...labels, le: this.le[i]! }, metricName: bucketName });
      }
      values.push({ value: child.sum, labels, metricName: `${this.name}_sum` });
      values.push({ value: child.count, labels, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values });
  }
}

/** prom-client default metrics whose names break the exposition conventions; see createMetrics */
export const MISNAMED_DEFAULT_METRICS: readonly string[] = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

export interface MetricsOptions {
  /** gatehouse's version, for `gatehouse_build_info` */
  readonly version: string;
  /** Node runtime metrics (`process_*`, `nodejs_*`); default true. Tests making many registries turn it off. */
  readonly defaultMetrics?: boolean;
  readonly maxSeriesPerFamily?: number;
}

export interface GatehouseMetrics extends Metrics, UserApiCallObserver {
  readonly registry: Registry;
  /** a breaker of (route, feature) is now in `state` (also counted as a transition unless it is new) */
  breakerState(route: string, feature: string, state: 'closed' | 'open' | 'half_open', transition: boolean): void;
}

const BREAKER_STATE_VALUE = { closed: 0, half_open: 1, open: 2 } as const;

export function createMetrics(options: MetricsOptions): GatehouseMetrics {
  const registry = new Registry();
  const maxSeries = options.maxSeriesPerFamily ?? DEFAULT_MAX_SERIES;
  const register = (family: Family<unknown>): void => {
    // prom-client's typings only admit its own classes; the Registry itself calls get() and
    // reads name/help/type/values, which the families provide.
    registry.registerMetric(family as unknown as Counter);
  };

  const requests = new CounterFamily(
    METRIC.requests,
    'HTTP requests gatehouse finished processing, by route, decision and the status the client got (0: none).',
    ['protocol', 'route', 'path_template', 'method', 'decision', 'status'],
    maxSeries,
  );
  const denials = new CounterFamily(
    METRIC.denials,
    'Requests gatehouse denied, by route and deny reason code.',
    ['route', 'reason'],
    maxSeries,
  );
  const shadowDenials = new CounterFamily(
    METRIC.shadowDenials,
    'Denials of filters in shadow mode (logged, not enforced), by route, filter and deny reason code.',
    ['route', 'filter', 'reason'],
    maxSeries,
  );
  const phases = new HistogramFamily(
    METRIC.phaseDuration,
    "Time gatehouse spent on one phase of a request (its filter chain's work), seconds.",
    ['route', 'phase'],
    maxSeries,
    PHASE_BUCKETS,
  );
  const processing = new HistogramFamily(
    METRIC.requestProcessing,
    "Gatehouse's own processing time for a request, summed over its phases (not Envoy's wait), seconds.",
    ['protocol', 'route'],
    maxSeries,
    PROCESSING_BUCKETS,
  );
  const inFlight = new GaugeFamily(
    METRIC.streamsInFlight,
    'Open ext_proc streams and ext_authz checks in progress.',
    ['protocol'],
    maxSeries,
  );
  const actions = new CounterFamily(
    METRIC.filterActions,
    'What filters changed or refused to pass on (e.g. sanitize removed a reserved header), by route, filter and action.',
    ['route', 'filter', 'action'],
    maxSeries,
  );
  const errors = new CounterFamily(
    METRIC.errors,
    'Errors while processing requests, by kind and route (route is "unmatched" before routing).',
    ['kind', 'route'],
    maxSeries,
  );
  for (const f of [requests, denials, shadowDenials, phases, processing, inFlight, actions, errors]) register(f);

  // every outcome's series exists from start, so rate() and alerts see a zero, not an absence
  const userApiCalls = new CounterFamily(
    METRIC.userApiCalls,
    "Lookups at the passport filter's user API, by outcome (breaker_open: not called, its breaker refused); cached answers are not counted.",
    ['outcome'],
    USER_API_OUTCOMES.length,
  );
  const userApiDurations = new HistogramFamily(
    METRIC.userApiCallDuration,
    'Time a user API call took, to its answer or its failure, seconds.',
    ['outcome'],
    USER_API_OUTCOMES.length,
    PHASE_BUCKETS,
  );
  const userApiChildren = new Map(USER_API_OUTCOMES.map((o) => [o, userApiCalls.child([o])] as const));
  for (const f of [userApiCalls, userApiDurations]) register(f);

  const inFlightChildren: Record<Protocol, GaugeChild> = {
    ext_proc: inFlight.child(['ext_proc']),
    ext_authz: inFlight.child(['ext_authz']),
  };

  const registryReloads = new Counter({
    name: METRIC.clientRegistryReloads,
    help: 'mtls client registry reloads, by result (a refused file keeps the running registry).',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const reloads = new Counter({
    name: METRIC.configReloads,
    help: 'Configuration reloads, by result.',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  reloads.inc({ result: 'success' }, 0);
  reloads.inc({ result: 'failure' }, 0);
  registryReloads.inc({ result: 'success' }, 0);
  registryReloads.inc({ result: 'failure' }, 0);

  const breakerStates = new Gauge({
    name: METRIC.breakerState,
    help: 'State of each breaker: 0 closed, 1 half-open (one probe allowed), 2 open (requests refused with 503 circuit_open).',
    labelNames: ['route', 'feature'] as const,
    registers: [registry],
  });
  const breakerTransitions = new Counter({
    name: METRIC.breakerTransitions,
    help: 'Breaker state changes, by route, feature and the state entered.',
    labelNames: ['route', 'feature', 'to'] as const,
    registers: [registry],
  });

  const buildInfo = new Gauge({
    name: METRIC.buildInfo,
    help: 'Always 1; labels carry the gatehouse version and the Node.js version.',
    labelNames: ['version', 'node'] as const,
    registers: [registry],
  });
  buildInfo.set({ version: options.version, node: process.versions.node }, 1);

  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry });
    // prom-client exposes these totals as gauges named `*_total`, which Prometheus' naming rules
    // (and `promtool check metrics`) reserve for counters. The per-type gauges without the suffix
    // stay: `sum(nodejs_active_handles)` is the total.
    for (const name of MISNAMED_DEFAULT_METRICS) registry.removeSingleMetric(name);
  }

  return {
    registry,
    contentType: registry.contentType,
    breakerState(route, feature, state, transition) {
      breakerStates.set({ route, feature }, BREAKER_STATE_VALUE[state]);
      if (transition) breakerTransitions.inc({ route, feature, to: state });
    },
    streamOpened(protocol) {
      inFlightChildren[protocol].value += 1;
    },
    streamClosed(protocol) {
      inFlightChildren[protocol].value -= 1;
    },
    requestCompleted(entry: AccessLogEntry) {
      const route = entry.routeId;
      requests.child([
        entry.protocol,
        route,
        entry.pathTemplate,
        methodLabel(entry.method),
        entry.decision,
        statusLabel(entry.status),
      ]).value += 1;
      processing.child([entry.protocol, route]).observe(entry.processingMs / 1000);
      if (entry.decision === 'deny') denials.child([route, entry.reason ?? 'unknown']).value += 1;
      if (entry.shadow) for (const s of entry.shadow) shadowDenials.child([route, s.filter, s.reason]).value += 1;
      if (entry.actions) for (const a of entry.actions) actions.child([route, a.filter, a.action]).value += 1;
    },
    phaseDuration(routeId: string, phase: Phase, seconds: number) {
      phases.child([routeId, phase]).observe(seconds);
    },
    error(kind: ErrorKind, routeId: string) {
      errors.child([kind, routeId]).value += 1;
    },
    userApiCall(outcome: UserApiOutcome, seconds: number | undefined) {
      userApiChildren.get(outcome)!.value += 1;
      if (seconds !== undefined) userApiDurations.child([outcome]).observe(seconds);
    },
    configReload(result) {
      reloads.inc({ result });
    },
    clientRegistryReload(result) {
      registryReloads.inc({ result });
    },
    render() {
      return registry.metrics();
    },
  };
}
