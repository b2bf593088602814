// Envoy closes every ext_proc stream with a half-close and a reset (envoy-behaviours 10.4), so one
// connection carries one RST_STREAM per HTTP request. Node's rapid-reset guard used to close the
// connection after about a thousand of them (INTERNAL_ERROR: every request in flight on it failed);
// src/server.ts raises that limit for gatehouse's port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatehouseServer } from '../../src/server.js';
import { RawExtProcStream, rawClient, requestHeaders } from '../support/extproc-client.js';
import { RecordingTelemetry } from '../support/recording-telemetry.js';
import { testRoutes } from '../support/routes.js';

test('3,000 streams on one connection, each ended as Envoy ends it: every one answered, the connection never dropped', async (t) => {
  const telemetry = new RecordingTelemetry();
  const server = new GatehouseServer({ host: '127.0.0.1', port: 0, routes: testRoutes([{ id: 'api', prefix: '/api', filters: [] }]), telemetry });
  const port = await server.start();
  const client = rawClient(port);
  t.after(() => {
    client.close();
    server.forceStop();
  });
  const failures: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const stream = new RawExtProcStream(client);
    stream.send(requestHeaders([[':method', 'GET'], [':path', '/api/x'], [':authority', 'api.example.com']]));
    try {
      assert.equal((await stream.next(30_000)).response.case, 'requestHeaders');
    } catch (error) {
      failures.push(`stream ${i}: ${error instanceof Error ? error.message : String(error)}`);
    }
    stream.closeLikeEnvoy();
  }
  assert.deepEqual(failures.slice(0, 3), [], `${failures.length} of 3000 streams failed`);
});
