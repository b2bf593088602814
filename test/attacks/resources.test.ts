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

/** waits until the condition holds, checking every 20 ms; a generous bound, not a speed claim */
async function eventually(condition: () => boolean, what: string, withinMs = 20_000): Promise<void> {
  const until = Date.now() + withinMs;
  while (!condition()) {
    if (Date.now() > until) assert.fail(`never: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function serve(t: { after: (fn: () => void) => void }, limits: { maxStreams: number; maxStreamsPerConnection: number; idleTimeoutMs: number }): Promise<{ telemetry: RecordingTelemetry; client: grpc.Client }> {
  const telemetry = new RecordingTelemetry();
  const server = new GatehouseServer({ host: '127.0.0.1', port: 0, routes: testRoutes([{ id: 'api', prefix: '/api', filters: [], needs: { requestBody: true } }]), telemetry, limits });
  const port = await server.start();
  const client = rawClient(port);
  t.after(() => {
    client.close();
    server.forceStop();
  });
  return { telemetry, client };
}

function servedAgain(client: grpc.Client): Promise<void> {
  const fresh = new RawExtProcStream(client);
  fresh.send(requestHeaders([[':method', 'GET'], [':path', '/api/x'], [':authority', 'api.example.com']]));
  return fresh.next(10_000).then((answer) => {
    assert.equal(answer.response.case, 'requestHeaders', 'served again once the held ones are gone');
    fresh.closeLikeEnvoy();
  });
}

// The idle timer never fires here (an hour), so how busy the machine is cannot end a held stream
// early and let a sixth one in.
test('held streams are bounded in number: one more is refused RESOURCE_EXHAUSTED, and served again once they are gone', async (t) => {
  const limits = { maxStreams: 5, maxStreamsPerConnection: 100, idleTimeoutMs: 3_600_000 };
  const { telemetry, client } = await serve(t, limits);

  // five streams that send request headers, get their answer, then never send the body
  const held = Array.from({ length: limits.maxStreams }, () => new RawExtProcStream(client));
  for (const stream of held) stream.send(requestHeaders(POST, false));
  for (const stream of held) assert.equal((await stream.next(10_000)).response.case, 'requestHeaders');

  const refused = new RawExtProcStream(client);
  refused.send(requestHeaders(POST, false));
  assert.equal((await refused.ended).code, grpc.status.RESOURCE_EXHAUSTED, 'a sixth stream is refused at once');
  assert.ok(telemetry.errors.some((e) => e.kind === 'stream_limit'));

  for (const stream of held) stream.closeLikeEnvoy();
  await eventually(() => telemetry.inFlight.ext_proc === 0, 'every held stream closed after Envoy reset it');
  assert.equal(telemetry.entries.filter((e) => e.decision === 'cancelled').length, limits.maxStreams, 'each request reset before its body logged as cancelled, not allowed');
  await servedAgain(client);
});

test('idle streams are bounded in time: ended DEADLINE_EXCEEDED after envoy.streamIdleTimeoutMs, leaving nothing behind', async (t) => {
  const limits = { maxStreams: 5, maxStreamsPerConnection: 100, idleTimeoutMs: 200 };
  const { telemetry, client } = await serve(t, limits);

  const idle = Array.from({ length: limits.maxStreams }, () => new RawExtProcStream(client));
  for (const stream of idle) stream.send(requestHeaders(POST, false));
  // On a busy machine the timer may fire before gatehouse read the headers: that stream was idle
  // as far as gatehouse could tell, and ends the same way, without a request to log.
  let requests = 0;
  for (const stream of idle) {
    const first = await Promise.race([stream.next(10_000).then((m) => m.response.case), stream.ended.then(() => 'ended' as const)]);
    if (first === 'requestHeaders') requests++;
  }
  for (const stream of idle) assert.equal((await stream.ended).code, grpc.status.DEADLINE_EXCEEDED, 'an idle stream is ended');
  await eventually(() => telemetry.inFlight.ext_proc === 0, 'every idle stream closed');
  assert.equal(telemetry.errors.filter((e) => e.kind === 'stream_idle_timeout').length, limits.maxStreams);
  assert.equal(telemetry.entries.filter((e) => e.decision === 'cancelled').length, requests, 'each idle request logged as cancelled');
  await servedAgain(client);
});
