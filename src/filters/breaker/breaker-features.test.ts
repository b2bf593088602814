// The breaker filter: which breaker a request meets. A feature's breaker cannot be dodged by
// spelling the feature another way the upstream still routes to the same handler.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRequestContext } from '../../pipeline/context.js';
import { createFilterDeps } from '../deps.js';
import { HeaderMap } from '../../pipeline/headers.js';
import type { RequestContext } from '../../pipeline/types.js';
import { breakerFilter } from './breaker.js';

function contextFor(params: Record<string, string>, headers: [string, string][] = []): RequestContext {
  return createRequestContext(
    { method: 'POST', authority: 'api.example.com', scheme: 'https', path: '/api/payments/x/1' },
    new HeaderMap([[':path', '/api/payments/x/1'], ...headers]),
    {},
    { routeId: 'payments', pathTemplate: '/api/payments/:feature/:id', params },
    () => new AbortController().signal,
  );
}

const denial = (outcome: unknown): string => (outcome !== null && typeof outcome === 'object' && 'kind' in outcome && outcome.kind === 'deny' && 'reason' in outcome ? String(outcome.reason) : 'continue');

test('an open feature breaker is met by every spelling of its feature: case, ";" parameters, trailing dots; other features are not', async () => {
  const deps = createFilterDeps();
  const filter = breakerFilter.create(breakerFilter.configSchema.parse({ volumeThreshold: 2, resetTimeoutMs: 60_000, feature: { param: 'feature' }, features: ['transfers', 'cards'] }), deps);
  const send = (params: Record<string, string>, upstreamStatus?: number): string => {
    const ctx = contextFor(params);
    const verdict = denial(filter.onRequestHeaders?.(ctx));
    if (verdict === 'continue' && upstreamStatus !== undefined) {
      ctx.responseStatus = upstreamStatus;
      void filter.onResponseHeaders?.(ctx);
    }
    filter.onComplete?.(ctx, { decision: verdict === 'continue' ? 'allow' : 'deny' });
    return verdict;
  };
  for (let i = 0; i < 2; i++) assert.equal(send({ feature: 'transfers' }, 500), 'continue');
  await sleep(5); // opossum counts the outcome on a later tick
  assert.equal(send({ feature: 'transfers' }), 'circuit_open');
  for (const spelling of ['Transfers', 'TRANSFERS', 'transfers;jsessionid=x', 'transfers.', 'Transfers;x.']) {
    assert.equal(send({ feature: spelling }), 'circuit_open', spelling);
  }
  assert.equal(send({ feature: 'cards' }), 'continue', 'another feature has its own breaker');
  assert.equal(send({ feature: 'Cards' }), 'continue');
  assert.equal(send({ feature: 'transfer' }), 'continue', 'an unknown feature shares the route breaker, which is closed');
  deps.breakers.shutdown();
});
