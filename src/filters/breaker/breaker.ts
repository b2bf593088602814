// `breaker`: fast back-pressure. Per route, and per (route, feature) where the config names
// features, an opossum breaker watches the upstream's answers (5xx, and calls slower than
// slowCallMs, are failures; 4xx and gatehouse's own denials are not). While it is open, requests
// are answered at once with 503 circuit_open and Retry-After, before any upstream work; after
// resetTimeoutMs one probe is let through (half-open) and its outcome closes or reopens it.
// Slow calls are timed from the request's release to the upstream, not from its headers: with
// slowCallMs the filter asks Envoy for the request body (BUFFERED: Envoy holds the request until
// the body is complete), and the clock starts at the body, so a client trickling its upload cannot
// make the upstream look slow and open the breaker for everyone.
// The breakers live in the process-wide Breakers (deps.breakers), so a config reload keeps them.
// Needs ext_proc: over ext_authz gatehouse never sees the upstream's answer, so nothing feeds it.
import { canonicalSegment } from '../../pipeline/path.js';
import { HEADER } from '../../pipeline/headers.js';
import { FILTER_ORDER } from '../../pipeline/order.js';
import { CONTINUE, type FilterDefinition, type Outcome, type RequestContext } from '../../pipeline/types.js';
import { stateKey } from '../../pipeline/state.js';
import type { PendingCall } from './breakers.js';
import { breakerConfig, type BreakerConfig } from './config.js';

/** ctx.state key of the call a request opened */
const PENDING = stateKey<PendingCall>('breaker.pending');

/** the route-wide breaker's feature label */
export const ROUTE_FEATURE = '*';

export const breakerFilter: FilterDefinition<typeof breakerConfig> = {
  name: 'breaker',
  order: FILTER_ORDER.breaker,
  configSchema: breakerConfig,
  needs: (config) => (config.slowCallMs === undefined ? { responseHeaders: true } : { responseHeaders: true, requestBody: true }),
  create(config: BreakerConfig, deps) {
    const { feature: featureSource, features, ...options } = config;
    // features compare in canonical form (path.ts canonicalSegment): `Transfers`, `transfers;x` and
    // `transfers.` reach the upstream's transfers handler, so they must meet the transfers breaker
    const ownFeatures = new Map((features ?? []).map((f) => [canonicalSegment(f), f]));
    const featureOf = (ctx: RequestContext): string => {
      if (featureSource === undefined) return ROUTE_FEATURE;
      const value = 'header' in featureSource ? ctx.requestHeaders.get(featureSource.header) : ctx.params[featureSource.param];
      return (value === undefined ? undefined : (ownFeatures.get(value) ?? ownFeatures.get(canonicalSegment(value)))) ?? ROUTE_FEATURE;
    };
    return {
      onRequestHeaders(ctx): Outcome {
        const feature = featureOf(ctx);
        const admission = deps.breakers.get(ctx.routeId, feature, options).admit();
        if (!admission.admitted) {
          return {
            kind: 'deny',
            reason: 'circuit_open',
            detail: `breaker of route ${ctx.routeId}${feature === ROUTE_FEATURE ? '' : `, feature ${feature}`} is ${admission.state}`,
            headers: { [HEADER.retryAfter]: String(admission.retryAfterSeconds) },
          };
        }
        ctx.state.set(PENDING, admission.call);
        return CONTINUE;
      },
      onRequestBody(ctx) {
        // the whole chain runs its body phase before Envoy releases the request: this is its release
        ctx.state.get(PENDING)?.released();
        return CONTINUE;
      },
      onResponseHeaders(ctx): Outcome {
        const call = ctx.state.get(PENDING);
        const status = ctx.responseStatus;
        if (call && status !== undefined) {
          if (status >= 500) call.fail(`upstream answered ${status}`);
          else call.succeed();
        }
        return CONTINUE;
      },
      onComplete(ctx) {
        // denied by a later filter, cancelled, or ext_authz: no answer to judge; settles nothing twice
        ctx.state.get(PENDING)?.forget();
      },
    };
  },
};
