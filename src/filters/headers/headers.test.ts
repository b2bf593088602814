// The headers filter on its own: its edits, in Envoy's order, on each side; what its config refuses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRequestContext } from '../../pipeline/context.js';
import { HeaderMap } from '../../pipeline/headers.js';
import type { Filter, RequestContext } from '../../pipeline/types.js';
import { createFilterDeps } from '../deps.js';
import { headersFilterConfig } from './config.js';
import { headersFilter } from './headers.js';

function contextFor(headers: [string, string][] = []): RequestContext {
  return createRequestContext(
    { method: 'GET', authority: 'api.example.com', scheme: 'https', path: '/x' },
    new HeaderMap(headers),
    {},
    { routeId: 'r', pathTemplate: '/x', params: {} },
    () => new AbortController().signal,
  );
}

function filterFor(config: unknown): Filter {
  return headersFilter.create(headersFilterConfig.parse(config), createFilterDeps());
}

test('request edits: removals, then sets, then appends, names lower-cased; the response side untouched', () => {
  const filter = filterFor({ request: { remove: ['X-Debug'], set: { 'X-Env': 'prod' }, append: { Via: 'gatehouse' } } });
  const ctx = contextFor([['x-debug', '1'], ['via', 'edge']]);
  assert.deepEqual(filter.onRequestHeaders?.(ctx), { kind: 'continue' });
  assert.deepEqual(ctx.requestEdits.drain(), {
    removals: ['x-debug'],
    sets: [
      { name: 'x-env', value: 'prod', append: false },
      { name: 'via', value: 'gatehouse', append: true },
    ],
  });
  assert.equal(ctx.responseEdits.isEmpty, true);
  assert.equal(ctx.requestHeaders.get('x-debug'), '1', 'the request as the client sent it stays readable: edits go to Envoy');
});

test('response edits happen in the response phase, and only they make the route ask for response headers', () => {
  const filter = filterFor({ response: { set: { 'Cache-Control': 'no-store' }, remove: ['server'] } });
  const ctx = contextFor();
  assert.deepEqual(filter.onRequestHeaders?.(ctx), { kind: 'continue' });
  assert.equal(ctx.requestEdits.isEmpty, true);
  assert.deepEqual(filter.onResponseHeaders?.(ctx), { kind: 'continue' });
  assert.deepEqual(ctx.responseEdits.drain(), { removals: ['server'], sets: [{ name: 'cache-control', value: 'no-store', append: false }] });
  assert.deepEqual(headersFilter.needs(headersFilterConfig.parse({ response: { remove: ['server'] } })), { responseHeaders: true });
  assert.deepEqual(headersFilter.needs(headersFilterConfig.parse({ request: { set: { a: 'b' } }, response: {} })), { responseHeaders: false });
});

test('the config refuses what Envoy would drop or fail on: pseudo-headers, control characters, unknown keys', () => {
  const refused = (config: unknown): string[] => {
    const parsed = headersFilterConfig.safeParse(config);
    assert.equal(parsed.success, false, JSON.stringify(config));
    return parsed.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  assert.match(refused({ request: { set: { ':authority': 'evil' } } }).join(), /^request\.set\.:authority: /);
  assert.match(refused({ request: { remove: [':path'] } }).join(), /HTTP header name/);
  assert.match(refused({ response: { set: { 'x-a': 'line\r\nx-injected: 1' } } }).join(), /control characters/);
  assert.match(refused({ request: { rename: { a: 'b' } } }).join(), /rename|Unrecognized/);
  assert.match(refused({ upstream: {} }).join(), /upstream|Unrecognized/);
});
