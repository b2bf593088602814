// Runs one phase of a route's filter chain. Request phases run filters in FILTER_ORDER; response
// phases unwind in reverse (Spring Cloud Gateway's post-filters), so a filter that decrypts the
// request body early encrypts the response body last. The first deny or respond ends the chain.
// Filters that answer synchronously are run without an await, so a headers-only chain costs no
// promise allocations.
import type { BodyOutcome, CompiledRoute, Phase, PhaseResult, RequestCompletion, RequestContext, RouteChain, RouteFilter } from './types.js';
import { CONTINUE } from './types.js';

const CONTINUED: PhaseResult = Object.freeze({ outcome: CONTINUE });

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

type Step = (ctx: RequestContext, body: Buffer | undefined) => BodyOutcome | Promise<BodyOutcome> | undefined;

/**
 * Shadow mode, in one place: a shadowed filter's denial is recorded on the request and the chain
 * goes on as if it had continued. Only routes with shadowed filters pay for the wrapper.
 */
function shadowed(step: Step, filter: string): Step {
  const record = (ctx: RequestContext, outcome: BodyOutcome): BodyOutcome => {
    if (outcome.kind !== 'deny') return outcome;
    ctx.recordShadowDenial({ filter, reason: outcome.reason, ...(outcome.detail === undefined ? {} : { detail: outcome.detail }) });
    return CONTINUE;
  };
  return (ctx, body) => {
    const result = step(ctx, body);
    if (result === undefined) return undefined;
    return isPromise(result) ? result.then((settled) => record(ctx, settled)) : record(ctx, result);
  };
}

function stepFor(entry: RouteFilter, phase: Phase): Step | undefined {
  const f = entry.filter;
  switch (phase) {
    case 'requestHeaders':
      return f.onRequestHeaders ? (ctx) => f.onRequestHeaders!(ctx) : undefined;
    case 'responseHeaders':
      return f.onResponseHeaders ? (ctx) => f.onResponseHeaders!(ctx) : undefined;
    case 'requestBody':
      return f.onRequestBody ? (ctx, body) => f.onRequestBody!(ctx, body ?? Buffer.alloc(0)) : undefined;
    case 'responseBody':
      return f.onResponseBody ? (ctx, body) => f.onResponseBody!(ctx, body ?? Buffer.alloc(0)) : undefined;
  }
}

/** Compiled once per route: the steps of each phase, already in the order they run. */
export class CompiledChain implements RouteChain {
  private readonly steps: Record<Phase, readonly Step[]>;
  private readonly completions: readonly ((ctx: RequestContext, completion: RequestCompletion) => void)[];

  constructor(filters: readonly RouteFilter[], shadow?: ReadonlySet<string>) {
    const forward = [...filters].sort((a, b) => a.order - b.order);
    const backward = [...forward].reverse();
    const collect = (list: readonly RouteFilter[], phase: Phase): Step[] =>
      list
        .map((f) => {
          const step = stepFor(f, phase);
          return step !== undefined && shadow?.has(f.name) === true ? shadowed(step, f.name) : step;
        })
        .filter((s): s is Step => s !== undefined);
    this.steps = {
      requestHeaders: collect(forward, 'requestHeaders'),
      requestBody: collect(forward, 'requestBody'),
      responseHeaders: collect(backward, 'responseHeaders'),
      responseBody: collect(backward, 'responseBody'),
    };
    this.completions = backward.flatMap((f) => (f.filter.onComplete ? [f.filter.onComplete.bind(f.filter)] : []));
  }

  /**
   * Calls every filter's onComplete, last filter first (as the response phases unwind). Returns the
   * errors thrown, for the adapter to log and count; never throws.
   */
  complete(ctx: RequestContext, completion: RequestCompletion): Error[] {
    const errors: Error[] = [];
    for (const f of this.completions) {
      try {
        f(ctx, completion);
      } catch (error) {
        errors.push(error instanceof Error ? error : new Error(String(error)));
      }
    }
    return errors;
  }

  hasSteps(phase: Phase): boolean {
    return this.steps[phase].length > 0;
  }

  run(phase: Phase, ctx: RequestContext, body?: Buffer): PhaseResult | Promise<PhaseResult> {
    return this.runFrom(this.steps[phase], 0, ctx, body, false);
  }

  private runFrom(
    steps: readonly Step[],
    start: number,
    ctx: RequestContext,
    body: Buffer | undefined,
    replaced: boolean,
  ): PhaseResult | Promise<PhaseResult> {
    for (let i = start; i < steps.length; i++) {
      const result = steps[i]!(ctx, body);
      if (result === undefined) continue;
      if (isPromise(result)) {
        return result.then((settled) => {
          const next = this.settle(settled, body, replaced);
          if ('done' in next) return next.done;
          return this.runFrom(steps, i + 1, ctx, next.body, next.replaced);
        });
      }
      const next = this.settle(result, body, replaced);
      if ('done' in next) return next.done;
      body = next.body;
      replaced = next.replaced;
    }
    if (!replaced) return CONTINUED;
    return body === undefined ? CONTINUED : { outcome: CONTINUE, body };
  }

  private settle(
    result: BodyOutcome,
    body: Buffer | undefined,
    replaced: boolean,
  ): { done: PhaseResult } | { body: Buffer | undefined; replaced: boolean } {
    switch (result.kind) {
      case 'continue':
        return { body, replaced };
      case 'replaceBody':
        return { body: result.body, replaced: true };
      case 'deny':
      case 'respond':
        return { done: { outcome: result } };
    }
  }
}

/**
 * Races an asynchronous phase against the route's budget. On expiry it answers with the
 * `processing_timeout` denial (so Envoy hears from gatehouse before its own timer fires) and calls
 * `onExpire` to abort the work; the late result is ignored. A filter that throws becomes an
 * `internal_error` denial with the error in the detail. Synchronous results pass straight through.
 */
export function withinBudget(
  result: PhaseResult | Promise<PhaseResult>,
  budgetMs: number,
  what: string,
  onExpire: (reason: Error) => void,
  onFailure: () => void = () => undefined,
): PhaseResult | Promise<PhaseResult> {
  if (!isPromise(result)) return result;
  return new Promise<PhaseResult>((resolve) => {
    const timer = setTimeout(() => {
      onExpire(new Error(`budget of ${String(budgetMs)} ms exceeded in ${what}`));
      resolve({ outcome: { kind: 'deny', reason: 'processing_timeout', detail: `${what} took longer than the route budget of ${String(budgetMs)} ms` } });
    }, budgetMs);
    result.then(
      (settled) => {
        clearTimeout(timer);
        resolve(settled);
      },
      (error: unknown) => {
        clearTimeout(timer);
        onFailure();
        resolve({ outcome: { kind: 'deny', reason: 'internal_error', detail: `filter failed in ${what}: ${error instanceof Error ? error.message : String(error)}` } });
      },
    );
  });
}

/** The adapters' end of a request: every filter's onComplete, a throw logged and counted. */
export function completeFilters(
  route: CompiledRoute,
  ctx: RequestContext,
  completion: RequestCompletion,
  telemetry: { readonly logger: { error(obj: object, msg: string): void }; readonly metrics: { error(kind: 'filter_error', routeId: string): void } },
): void {
  for (const error of route.chain.complete(ctx, completion)) {
    telemetry.metrics.error('filter_error', route.id);
    telemetry.logger.error({ err: error, route_id: route.id, request_id: ctx.requestId }, 'filter failed on completion');
  }
}
