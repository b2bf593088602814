// Attack class: holding gatehouse's resources (docs/security.md "Bounded resources"). Streams that
// open and then send nothing are bounded in number (RESOURCE_EXHAUSTED beyond envoy.maxStreams) and
// in time (ended after envoy.streamIdleTimeoutMs); once they are gone, new streams are served and
// the in-flight gauge is back to zero.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { GatehouseServer } from '../../src/server.js';
import { RawExtProcStream, rawClient, requestHeaders } from '../support/extproc-client.js';
import { RecordingTelemetry } from '../support/recording-telemetry.js';
import { testRoutes } from '../support/routes.js';

const POST: [string, string][] = [[':method', 'POST'], [':path', '/api/x'], [':authority', 'api.example.com'], ['content-length', '10']];

test('idle streams are bounded in number and in time, and leave nothing behind', async (t) => {
  const telemetry = new RecordingTelemetry();
  const limits = { maxStreams: 5, maxStreamsPerConnection: 100, idleTimeoutMs: 200 };
  const server = new GatehouseServer({ host: '127.0.0.1', port: 0, routes: testRoutes([{ id: 'api', prefix: '/api', filters: [], needs: { requestBody: true } }]), telemetry, limits });
  const port = await server.start();
  const client = rawClient(port);
  t.after(() => {
    client.close();
    server.forceStop();
  });

  // five streams that send request headers, get their answer, then never send the body
  const idle = Array.from({ length: limits.maxStreams }, () => new RawExtProcStream(client));
  for (const stream of idle) stream.send(requestHeaders(POST, false));
  for (const stream of idle) assert.equal((await stream.next(10_000)).response.case, 'requestHeaders');

  const refused = new RawExtProcStream(client);
  refused.send(requestHeaders(POST, false));
  assert.equal((await refused.ended).code, grpc.status.RESOURCE_EXHAUSTED, 'a sixth stream is refused at once');

  for (const stream of idle) assert.equal((await stream.ended).code, grpc.status.DEADLINE_EXCEEDED, 'an idle stream is ended');
  assert.equal(telemetry.inFlight.ext_proc, 0, 'every stream closed');
  const cancelled = telemetry.entries.filter((e) => e.decision === 'cancelled');
  assert.equal(cancelled.length, limits.maxStreams, 'each idle request logged as cancelled');
  assert.ok(telemetry.errors.some((e) => e.kind === 'stream_limit') && telemetry.errors.filter((e) => e.kind === 'stream_idle_timeout').length === limits.maxStreams);

  const fresh = new RawExtProcStream(client);
  fresh.send(requestHeaders([[':method', 'GET'], [':path', '/api/x'], [':authority', 'api.example.com']]));
  assert.equal((await fresh.next(10_000)).response.case, 'requestHeaders', 'served again once the idle ones are gone');
  fresh.closeLikeEnvoy();
});
