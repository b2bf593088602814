// The breaker filter on its own: what feeds its breaker (upstream statuses, never a request that got
// no answer), the 503 it answers while open, and which breaker a request's feature picks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRequestContext } from '../../pipeline/context.js';
import { HeaderMap } from '../../pipeline/headers.js';
import type { Filter, Outcome, RequestContext } from '../../pipeline/types.js';
import { createFilterDeps } from '../deps.js';
import { breakerFilter } from './breaker.js';
import { breakerConfig } from './config.js';

/** opossum counts an outcome in a promise callback: every pending one has run by the next macrotask */
const counted = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function setup(t: { after: (fn: () => void) => void }, config: Record<string, unknown> = {}): { filter: Filter; states: string[] } {
  const states: string[] = [];
  // a fixed clock: Retry-After is computed from it, never from how long the test took
  const deps = createFilterDeps({ now: () => 1_000_000, breakerEvents: { onStateChange: (route, feature, state) => states.push(`${route}/${feature}:${state}`) } });
  t.after(() => { deps.breakers.shutdown(); });
  const filter = breakerFilter.create(breakerConfig.parse({ volumeThreshold: 2, resetTimeoutMs: 60_000, ...config }), deps);
  return { filter, states };
}

function request(headers: [string, string][] = []): RequestContext {
  return createRequestContext(
    { method: 'POST', authority: 'api.example.com', scheme: 'https', path: '/pay' },
    new HeaderMap(headers),
    {},
    { routeId: 'pay', pathTemplate: '/pay', params: {} },
    () => new AbortController().signal,
  );
}

/** one request through the filter; `status` the upstream's answer, or undefined when none came */
function exchange(filter: Filter, status: number | undefined, headers: [string, string][] = []): Outcome {
  const ctx = request(headers);
  const outcome = filter.onRequestHeaders!(ctx) as Outcome;
  if (outcome.kind !== 'continue') return outcome;
  if (status !== undefined) {
    ctx.responseStatus = status;
    assert.deepEqual(filter.onResponseHeaders!(ctx), { kind: 'continue' });
  }
  filter.onComplete?.(ctx, { decision: 'allow', ...(status === undefined ? {} : { status }) });
  return outcome;
}

test('5xx answers open the route breaker; then requests get 503 circuit_open with Retry-After before any upstream work', async (t) => {
  const { filter, states } = setup(t);
  assert.equal(exchange(filter, 502).kind, 'continue');
  assert.equal(exchange(filter, 500).kind, 'continue');
  await counted();
  const refused = exchange(filter, undefined);
  assert.equal(refused.kind, 'deny');
  assert.ok(refused.kind === 'deny');
  assert.equal(refused.reason, 'circuit_open');
  assert.equal(refused.headers?.['retry-after'], '60');
  assert.match(refused.detail ?? '', /breaker of route pay is open/);
  assert.deepEqual(states, ['pay/*:closed', 'pay/*:open']);
});

test('4xx answers and requests that got no answer (denied later, cancelled, ext_authz) never open it', async (t) => {
  const { filter } = setup(t);
  for (let i = 0; i < 10; i++) {
    exchange(filter, 404);
    exchange(filter, undefined);
  }
  await counted();
  assert.equal(exchange(filter, 200).kind, 'continue');
});

test('a listed feature has a breaker of its own; an unlisted value shares the route\'s', async (t) => {
  const { filter, states } = setup(t, { feature: { header: 'X-Feature' }, features: ['transfer'] });
  exchange(filter, 500, [['x-feature', 'transfer']]);
  exchange(filter, 500, [['x-feature', 'transfer']]);
  await counted();
  const refused = exchange(filter, undefined, [['x-feature', 'transfer']]);
  assert.ok(refused.kind === 'deny' && refused.reason === 'circuit_open');
  assert.match(refused.detail ?? '', /feature transfer/);
  assert.equal(exchange(filter, 200, [['x-feature', 'balance']]).kind, 'continue', 'an unlisted value: the route breaker, still closed');
  assert.equal(exchange(filter, 200).kind, 'continue', 'no feature header: the route breaker');
  assert.deepEqual(states, ['pay/transfer:closed', 'pay/transfer:open', 'pay/*:closed']);
});

test('the filter asks for response headers (the upstream status is what it judges)', () => {
  assert.deepEqual(breakerFilter.needs(breakerConfig.parse({})), { responseHeaders: true });
});
