// The e2ee route `npm run bench` loads with h2load: its figures mean something only if gatehouse,
// started on the route's config with the device enrolled in Redis, really decrypts and re-encrypts
// the pre-framed stream, and if the bench's verification would notice when it does not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startGatehouse } from '../src/gatehouse.js';
import { tempDir } from '../test/support/temp-dir.js';
import { skipWithoutRedis } from '../test/support/redis.js';
import { startCeilingServer } from './ceiling-server.js';
import { prepareE2eeRoute, startE2eeRouteOnRedis } from './e2ee-route.js';
import { verifyEnvoyStyle, verifyPreFramed } from './extproc-load.js';

const discard = { write: () => undefined };


test('gatehouse on the bench e2ee route, device enrolled in Redis: h2load\'s bytes and Envoy\'s sequence both pass the route check', { skip: skipWithoutRedis() }, async (t) => {
  const started = await startE2eeRouteOnRedis(tempDir(t, 'e2ee-route-test-'));
  assert.ok(started !== undefined);
  t.after(() => started.stop());
  const gatehouse = await startGatehouse({ config: started.route.config, runtimeMetrics: false, logDestination: discard });
  t.after(() => gatehouse.stop(200));
  const preFramed = await verifyPreFramed(gatehouse.grpcPort, started.route.scenario, 2);
  assert.deepEqual(preFramed.answerKinds, ['requestHeaders', 'requestBody', 'responseHeaders', 'responseBody']);
  await verifyEnvoyStyle(gatehouse.grpcPort, started.route.scenario, 2);
});

test('the bench refuses to measure a server that does not decrypt: empty answers, or a device the store does not know', async (t) => {
  const route = prepareE2eeRoute(tempDir(t, 'e2ee-route-test-'), { bodyBytes: 256 });
  const ceiling = await startCeilingServer(0);
  t.after(() => ceiling.close());
  await assert.rejects(verifyPreFramed(ceiling.port, route.scenario, 1), /the upstream would not get the plaintext/);
  await assert.rejects(verifyEnvoyStyle(ceiling.port, route.scenario, 1), /the upstream would not get the plaintext/);

  // the route's own config (memory stores) without enrolling its device: refused, so not measured
  const gatehouse = await startGatehouse({ config: route.config, runtimeMetrics: false, logDestination: discard });
  t.after(() => gatehouse.stop(200));
  await assert.rejects(verifyPreFramed(gatehouse.grpcPort, route.scenario, 1), /answers requestHeaders,immediateResponse, expected/);
});
