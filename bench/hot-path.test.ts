// The hot-path figures mean something only if each scenario runs the route it names: these run a
// few requests and let the scenario's own checks (answer kinds, plaintext upstream, the app opening
// the sealed answer) fail the test.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runE2eeRouteHotPath, runHotPath } from './hot-path.js';

test('headers-only hot path runs the bench route and reports its parts', () => {
  const r = runHotPath(20);
  for (const value of [r.gatehouseUsPerRequest, r.emptyAnswerUsPerRequest]) assert.ok(Number.isFinite(value) && value > 0);
  assert.equal(r.ownUsPerRequest, r.gatehouseUsPerRequest - r.emptyAnswerUsPerRequest);
  // a request allocates something, and gatehouse's route more than empty answers to the same messages
  assert.ok(r.emptyAnswerBytesPerRequest > 0 && r.gatehouseBytesPerRequest > r.emptyAnswerBytesPerRequest, JSON.stringify(r));
});

test('e2ee route hot path: the upstream gets the plaintext and the app opens the sealed answer', async () => {
  const r = await runE2eeRouteHotPath(10, 300);
  assert.equal(r.bodyBytes, 300);
  for (const value of [r.gatehouseUsPerRequest, r.emptyAnswerUsPerRequest, r.e2eeUsPerRequest]) assert.ok(Number.isFinite(value) && value > 0);
  assert.equal(r.routeOwnUsPerRequest, r.gatehouseUsPerRequest - r.emptyAnswerUsPerRequest - r.e2eeUsPerRequest);
});
